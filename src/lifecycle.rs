//! [`Lifecycle`]: the producer's one close/abort state, shared (by `Arc`)
//! by every component that acts on it: the producer, the accumulator and
//! its buffer pool, the metadata state and the I/O threads. Java spreads
//! the same facts over `RecordAccumulator.closed`, `Sender.running` and
//! `forceClose`, `BufferPool.closed` and `Metadata.isClosed`.
//!
//! ```text
//!   Running ──close──▶ Closing ──abort──▶ Aborting ──stop──▶ Stopped
//! ```
//!
//! The phase only moves forward, and each phase implies the ones before it:
//! `stop` from `Closing` is also an abort. The transitions are the only way
//! to change it; they are called by `Io::close`, `Io::abort` and `Io::stop`
//! (`io/mod.rs`), which wake the waiters each transition concerns, so the
//! transitions and their wake-ups sit in one place. Knows no other module.
//!
//! # Who checks what, under which lock
//!
//! A phase is one atomic. Where a check must not race a transition, the
//! check and the step that follows the transition take the same lock, so
//! each side sees the other's work:
//!
//! | check | under | pairs with |
//! | --- | --- | --- |
//! | `append` refuses once [closing](Lifecycle::is_closing) | the partition lock | close's sweeps (`abort_queued`, under each partition lock, after `close`): a record is refused, or in a batch a sweep or drain finds |
//! | `reenqueue` fails a retry once [aborting](Lifecycle::is_aborting) | the partition lock | the sweeps after the move (`Io::abort`'s, and close's last one once the threads have stopped): a retry lands before a sweep, or is failed |
//! | `ensure_broker`, `retire_broker`, `forget_broker` read [stopped](Lifecycle::is_stopped) | `IoShared::brokers` | `Io::stop` calls `stop` holding that lock and tells every thread in the map: a thread starts before `stop` (and is told) or not at all |
//! | `await_update`, `wait_for_work` (metadata) | `Metadata`'s mutex | `Io::stop` stores `Stopped`, then takes that mutex to notify |
//! | `BufferPool::allocate` waiters | the pool's mutex | `Io::stop` stores `Stopped`, then takes that mutex to notify each waiter |
//!
//! The condvar rows are the usual protocol: a waiter checks the phase while
//! holding the mutex and waits, which releases it atomically; a transition
//! stores the phase and only then takes the mutex to notify. So a waiter
//! either sees the new phase or is already waiting when the notify comes.
//!
//! Other reads take no lock because nothing depends on their timing:
//! `send` and its metadata wait refuse early once closing (`append`'s check
//! is the one that counts), `drain` ignores linger once closing (`Io::close`
//! wakes every I/O thread after the move), the I/O threads stop retrying
//! once aborting (`reenqueue` catches a retry that raced the move), and the
//! pool stops recycling once stopped.
//!
//! Flush and close waiters (the incomplete set) are woken by batches
//! completing (those an abort fails included), not by a phase change.

use std::sync::atomic::{AtomicU8, Ordering};

/// A phase of the producer's life; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Sending.
    Running,
    /// `close` has begun and is draining: `send` and `append` refuse new
    /// records ([`Error::Closed`](crate::Error::Closed)), and every queued
    /// batch is ready now, linger or not. Retries and metadata refreshes
    /// carry on; a `send` already blocked on memory waits on, and is
    /// refused once it has the memory.
    Closing,
    /// Everything left is failed: a batch that fails is not retried or
    /// split, `reenqueue` fails what it is handed, and close sweeps the
    /// queues and tells each I/O thread to fail what it holds.
    Aborting,
    /// The threads are told to stop (they may not have exited yet): no I/O
    /// thread starts, retires or is replaced, the metadata thread exits,
    /// metadata waiters return, and the buffer pool refuses allocations
    /// and stops recycling buffers.
    Stopped,
}

/// The producer's phase, in one atomic; see the module docs.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    /// A [`Phase`] as `u8`; only [`advance`](Self::advance) writes it.
    phase: AtomicU8,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            phase: AtomicU8::new(Phase::Running as u8),
        }
    }
}

impl Lifecycle {
    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Running,
            1 => Phase::Closing,
            2 => Phase::Aborting,
            _ => Phase::Stopped,
        }
    }

    /// Moves to `to` unless the phase is there or past it already.
    fn advance(&self, to: Phase) {
        self.phase.fetch_max(to as u8, Ordering::AcqRel);
    }

    /// True from `Closing` on: no new records; linger is ignored.
    pub(crate) fn is_closing(&self) -> bool {
        self.phase() >= Phase::Closing
    }

    /// True from `Aborting` on: no more retries.
    pub(crate) fn is_aborting(&self) -> bool {
        self.phase() >= Phase::Aborting
    }

    /// True once `Stopped`: no new threads, no more memory.
    pub(crate) fn is_stopped(&self) -> bool {
        self.phase() >= Phase::Stopped
    }

    /// Running -> Closing. The caller (`Io::close`) then wakes every I/O
    /// thread, so lingering batches go now.
    pub(crate) fn close(&self) {
        self.advance(Phase::Closing);
    }

    /// -> Aborting. Wakes no waiter; the caller (`Io::abort`) then sweeps
    /// the queues under each partition lock and tells every I/O thread to
    /// fail what it holds.
    pub(crate) fn abort(&self) {
        self.advance(Phase::Aborting);
    }

    /// -> Stopped. The caller (`Io::stop`) holds `IoShared::brokers`, and
    /// then wakes the metadata waiters and thread, the pool's waiters, and
    /// every I/O thread (with `Control::Stop`).
    pub(crate) fn stop(&self) {
        self.advance(Phase::Stopped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_only_move_forward_and_imply_the_earlier_ones() {
        let l = Lifecycle::default();
        assert!(!l.is_closing() && !l.is_aborting() && !l.is_stopped());
        l.close();
        assert!(l.is_closing() && !l.is_aborting());
        l.stop();
        assert!(l.is_closing() && l.is_aborting() && l.is_stopped());
        l.close();
        l.abort();
        assert_eq!(l.phase(), Phase::Stopped, "no way back");
    }
}
