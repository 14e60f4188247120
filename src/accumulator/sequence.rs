//! Idempotence: one partition's sequence state, and the rule for when its
//! batches may be drained.
//!
//! Up to `max.in.flight.requests.per.connection` (at most 5) batches of a
//! partition are out at once, each with its own sequence range, and the
//! broker appends them only in sequence order. So a retry must never be
//! overtaken: a batch handed back for a retry goes back in sequence order
//! (`RecordAccumulator::reenqueue`) and is drained again only once it is
//! the oldest batch not yet settled ([`Sequences::first_pending`]), as
//! Java's `RecordAccumulator.shouldStopDrainBatchesForPartition` does.
//! Until the partition's first batch under an epoch is acknowledged, only
//! one goes at a time: a broker without state for the producer takes any
//! sequence as the first (Kafka since KIP-360), so a later batch could
//! otherwise land ahead of a first one refused for a passing reason.
//!
//! A batch that fails after it took a sequence leaves a possible gap: the
//! broker may or may not have it. Until that resolves no new batch is
//! drained; a later batch acknowledged proves it is in the log (the broker
//! appends only in order); if none is, the producer's epoch is bumped
//! locally (KIP-360: the broker accepts sequence 0 from a higher epoch)
//! and the partition starts again from 0, its queued retries restamped.
//! A partition still holding batches of an older epoch keeps sending their
//! retries under it, and moves to the new epoch once they have settled.
//!
//! All of it lives in the partition's `PartitionInner`, under the
//! partition lock, so it follows the partition from one leader's thread to
//! the next.

use std::collections::VecDeque;

use super::batch::{Identity, ProducerBatch};
use super::next_sequence;

/// One partition's sequences; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Sequences {
    /// The producer id and epoch that `next` and `unacked` count under.
    owner: Option<(i64, i16)>,
    /// The base sequence of the next new batch.
    next: i32,
    /// Batches drained and not yet settled, in sequence order, by base
    /// sequence: pending (in a request, or queued for a retry), or failed
    /// (completed with an error; whether the broker has it is not known
    /// until a later batch is acknowledged).
    unacked: VecDeque<(i32, State)>,
    /// The broker lacks sequences we sent (OUT_OF_ORDER_SEQUENCE_NUMBER,
    /// UNKNOWN_PRODUCER_ID, or a failed batch never resolved): once nothing
    /// of this partition is in a request, its queued retries are restamped
    /// under the current epoch, from 0.
    rewrite: bool,
    /// A batch was acknowledged under `owner`. Until then one batch at a
    /// time: a broker that has no state for the producer takes any
    /// sequence as its first, so a second batch could be appended ahead
    /// of a first one refused for a passing reason (a topic's leader not
    /// ready yet, say) and retried.
    acked_once: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Failed,
}

impl Sequences {
    /// Base sequence of the oldest pending batch.
    pub(super) fn first_pending(&self) -> Option<i32> {
        self.unacked
            .iter()
            .find(|(_, s)| *s == State::Pending)
            .map(|(seq, _)| *seq)
    }

    fn pending(&self) -> usize {
        self.unacked
            .iter()
            .filter(|(_, s)| *s == State::Pending)
            .count()
    }

    fn has_failed(&self) -> bool {
        self.unacked.iter().any(|(_, s)| *s == State::Failed)
    }

    /// Where the batch starting at `seq` stands among the unsettled ones.
    pub(super) fn position(&self, seq: i32) -> Option<usize> {
        self.unacked.iter().position(|(s, _)| *s == seq)
    }

    /// The sequence range of a new batch of `records` under `owner`.
    fn take(&mut self, records: usize) -> i32 {
        let seq = self.next;
        self.next = next_sequence(seq, records);
        self.unacked.push_back((seq, State::Pending));
        seq
    }

    /// Decides whether the first of `batches` may be drained now under the
    /// producer's current id and epoch, `current`, with at most
    /// `max_in_flight` batches of the partition unsettled. Restamps the
    /// queued retries first if the partition moves to `current` and they
    /// must start again from 0.
    pub(super) fn gate(
        &mut self,
        batches: &mut VecDeque<ProducerBatch>,
        current: (i64, i16),
        max_in_flight: usize,
    ) -> Gate {
        // Retries sit in sequence order at the front of the deque.
        let queued = batches
            .iter()
            .take_while(|b| b.identity().is_some())
            .count();
        if self.owner != Some(current) && (self.rewrite || self.unacked.is_empty()) {
            if self.pending() > queued {
                return Gate::Wait; // batches in requests settle first
            }
            self.owner = Some(current);
            self.next = 0;
            self.unacked.clear();
            self.rewrite = false;
            self.acked_once = false;
            for b in batches.iter_mut().take(queued) {
                let seq = self.take(b.record_count());
                let transactional = b.identity().is_some_and(|i| i.transactional);
                b.restamp(identity(current, seq, transactional));
            }
        }
        let Some(first) = batches.front() else {
            return Gate::Wait;
        };
        match first.identity() {
            Some(id) if self.first_pending() == Some(id.base_sequence) => Gate::Retry,
            Some(_) => Gate::Wait,
            None if self.owner == Some(current)
                && !self.rewrite
                && !self.has_failed()
                && self.unacked.len() < if self.acked_once { max_in_flight } else { 1 } =>
            {
                Gate::New
            }
            None => Gate::Wait,
        }
    }

    /// Starts the partition's sequences again from 0 under whatever
    /// identity the producer has next (the transaction manager's epoch
    /// bump), once none of its batches is in a request.
    pub(super) fn restart(&mut self) {
        self.owner = None;
        self.rewrite = true;
    }

    /// The identity of a new batch of `records` that [`gate`](Self::gate)
    /// let through, as it leaves the deque.
    pub(super) fn assign(
        &mut self,
        current: (i64, i16),
        records: usize,
        transactional: bool,
    ) -> Identity {
        identity(current, self.take(records), transactional)
    }

    /// The batch starting at `seq` is in the log: so is every failed one
    /// before it. Returns true if the partition is left with failed batches
    /// and nothing pending to resolve them: it needs an epoch bump.
    pub(super) fn acked(&mut self, seq: i32) -> bool {
        if let Some(i) = self.position(seq) {
            self.acked_once = true;
            let mut k = 0;
            self.unacked.retain(|(_, s)| {
                let keep = k > i || (k < i && *s == State::Pending);
                k += 1;
                keep
            });
        }
        self.unresolved()
    }

    /// The batch starting at `seq` failed. Returns true as
    /// [`acked`](Self::acked) does.
    pub(super) fn failed(&mut self, seq: i32) -> bool {
        if let Some(i) = self.position(seq) {
            self.unacked[i].1 = State::Failed;
        }
        self.unresolved()
    }

    fn unresolved(&mut self) -> bool {
        let bump = self.has_failed() && self.pending() == 0;
        if bump {
            self.rewrite = true;
        }
        bump
    }

    /// The broker answered the batch starting at `seq` with a sequence
    /// error. Returns true if that proves a gap (it was the oldest pending
    /// batch, or `unknown_producer`): the epoch must be bumped. Otherwise an
    /// older batch is still out, and its fate decides.
    pub(super) fn gap(&mut self, seq: i32, unknown_producer: bool) -> bool {
        let gap = unknown_producer || self.first_pending() == Some(seq);
        if gap {
            self.rewrite = true;
        }
        gap
    }

    /// The batch starting at `seq` was split; its second half starts at
    /// `second`.
    pub(super) fn split(&mut self, seq: i32, second: i32) {
        if let Some(i) = self.position(seq) {
            self.unacked.insert(i + 1, (second, State::Pending));
        }
    }
}

/// What [`Sequences::gate`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// Not now; a settling batch wakes the partition's leader.
    Wait,
    /// The front batch is the oldest retry: send it as it is.
    Retry,
    /// The front batch is new: it takes the next sequence
    /// ([`Sequences::assign`]).
    New,
}

fn identity((producer_id, epoch): (i64, i16), base_sequence: i32, transactional: bool) -> Identity {
    Identity {
        producer_id,
        epoch,
        base_sequence,
        transactional,
    }
}
