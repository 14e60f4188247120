//! The incomplete set: the batches created and not yet completed, which
//! `flush` and `close` wait on.
//!
//! # Locks
//!
//! The `incomplete` lock is a leaf.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::RecordAccumulator;

/// Batches created and not yet completed, for `flush` and `close`: how
/// many batches carry each id (the halves of a split batch keep its id, so
/// a `flush` that waited for it waits for them).
#[derive(Default)]
pub(super) struct Incomplete {
    ids: Mutex<BTreeMap<u64, usize>>,
    cond: Condvar,
}

impl Incomplete {
    /// One more batch carries `id`: a new batch, or the second half of a
    /// split one.
    pub(super) fn add(&self, id: u64) {
        *self.ids.lock().entry(id).or_insert(0) += 1;
    }

    /// A batch that carries `id` has completed; wakes the waiters.
    pub(super) fn remove(&self, id: u64) {
        let mut ids = self.ids.lock();
        if let Some(n) = ids.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                ids.remove(&id);
            }
        }
        drop(ids);
        self.cond.notify_all();
    }
}

impl RecordAccumulator {
    /// Starts a flush: every batch is ready now. Returns the mark to wait
    /// for with [`await_flush`](Self::await_flush).
    pub(crate) fn begin_flush(&self) -> u64 {
        self.flushes_in_progress.fetch_add(1, Ordering::AcqRel);
        self.wake_all();
        self.next_batch_id.load(Ordering::Acquire)
    }

    /// Waits until every batch created before `mark` is complete, then ends
    /// the flush.
    pub(crate) fn await_flush(&self, mark: u64) {
        let mut ids = self.ledger.incomplete.ids.lock();
        while ids.first_key_value().is_some_and(|(&id, _)| id < mark) {
            self.ledger.incomplete.cond.wait(&mut ids);
        }
        drop(ids);
        self.flushes_in_progress.fetch_sub(1, Ordering::AcqRel);
    }

    /// [`await_flush`](Self::await_flush) without the wait, for a driver
    /// on one thread (the simulation): true, and the flush ended, once
    /// every batch created before `mark` is complete.
    #[cfg(feature = "mock")]
    pub(crate) fn try_end_flush(&self, mark: u64) -> bool {
        let ids = self.ledger.incomplete.ids.lock();
        if ids.first_key_value().is_some_and(|(&id, _)| id < mark) {
            return false;
        }
        drop(ids);
        self.flushes_in_progress.fetch_sub(1, Ordering::AcqRel);
        true
    }

    /// As [`await_flush`](Self::await_flush), but gives up at `deadline`
    /// (the flush ends either way). True if every batch created before
    /// `mark` is complete. For `commit_transaction`, which blocks at most
    /// `max.block.ms`.
    pub(crate) fn await_flush_until(&self, mark: u64, deadline: Instant) -> bool {
        let mut ids = self.ledger.incomplete.ids.lock();
        let mut done = true;
        while ids.first_key_value().is_some_and(|(&id, _)| id < mark) {
            if self
                .ledger
                .incomplete
                .cond
                .wait_until(&mut ids, deadline)
                .timed_out()
            {
                done = ids.first_key_value().is_none_or(|(&id, _)| id >= mark);
                break;
            }
        }
        drop(ids);
        self.flushes_in_progress.fetch_sub(1, Ordering::AcqRel);
        done
    }

    /// Waits until no batch is incomplete or `deadline` passes; true if
    /// none is.
    pub(crate) fn await_all_complete(&self, deadline: Instant) -> bool {
        let mut ids = self.ledger.incomplete.ids.lock();
        while !ids.is_empty() {
            if self
                .ledger
                .incomplete
                .cond
                .wait_until(&mut ids, deadline)
                .timed_out()
            {
                return ids.is_empty();
            }
        }
        true
    }

    /// Batches not yet completed.
    pub(crate) fn incomplete_count(&self) -> usize {
        self.ledger.incomplete.ids.lock().values().sum()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::super::tests::{cfg, cluster, send};
    use super::RecordAccumulator;
    use crate::future::Delivered;

    #[test]
    fn flush_waits_for_every_earlier_batch() {
        let acc = Arc::new(RecordAccumulator::new(cfg(), Arc::default()));
        acc.update_metadata(&cluster(2));
        let f = send(&acc, Some(1), b"x").unwrap();
        let mark = acc.begin_flush();
        let a = acc.clone();
        let flusher = std::thread::spawn(move || a.await_flush(mark));
        let parts = acc.partitions_led_by(1);
        let (d, _) = acc.drain(&parts, &mut 0, 1 << 20, Instant::now());
        assert_eq!(d.len(), 1, "flush makes the batch ready despite linger");
        assert!(!flusher.is_finished());
        for x in d {
            acc.complete(
                &x.queue,
                x.batch,
                Ok(Delivered {
                    base_offset: 7,
                    log_append_time: -1,
                }),
            );
        }
        flusher.join().unwrap();
        assert_eq!(f.get().unwrap().offset(), 7);
        assert_eq!(acc.incomplete_count(), 0);
    }
}
