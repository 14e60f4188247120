//! [`DrainSignal`]: how `send` wakes an I/O thread, and the accumulator's
//! registry of them (one per I/O thread, by node id).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::RecordAccumulator;

/// "Not sleeping" for [`DrainSignal::sleep_until`].
const AWAKE: u64 = 0;

/// How `send` wakes one I/O thread, and only when it must.
///
/// The I/O thread publishes when it next plans to wake (`sleep_until`,
/// nanoseconds since the accumulator's epoch). `send` wakes it only if a
/// batch it just created is ready before that. The race where the thread
/// scans, a batch appears, and the thread then sleeps past it, is closed by
/// `pending`: see [`DrainSignal::prepare_sleep`].
pub(crate) struct DrainSignal {
    sleep_until: AtomicU64,
    pending: AtomicBool,
    wake: Box<dyn Fn() + Send + Sync>,
}

impl DrainSignal {
    pub(crate) fn new(wake: Box<dyn Fn() + Send + Sync>) -> Self {
        DrainSignal {
            sleep_until: AtomicU64::new(AWAKE),
            pending: AtomicBool::new(false),
            wake,
        }
    }

    /// From `send`: a batch is ready at `ready_at` (epoch nanoseconds).
    fn notify(&self, ready_at: u64) {
        // Order matters (SeqCst): publish `pending` before reading the
        // thread's plan. Either the thread sees `pending` after publishing
        // its plan, or we see its plan here and wake it.
        self.pending.store(true, Ordering::SeqCst);
        if self.sleep_until.load(Ordering::SeqCst) > ready_at {
            (self.wake)();
        }
    }

    /// Wakes the thread whatever its plan.
    pub(crate) fn wake_now(&self) {
        self.pending.store(true, Ordering::SeqCst);
        (self.wake)();
    }

    /// From the I/O thread, before it scans its partitions.
    pub(crate) fn begin_cycle(&self) {
        self.sleep_until.store(AWAKE, Ordering::SeqCst);
        // A swap, not a store: if it takes a `true` from `notify`, it also
        // acquires everything that sender did before (its batch), so the
        // scan that follows sees that batch even on weakly ordered CPUs.
        self.pending.swap(false, Ordering::SeqCst);
    }

    /// From the I/O thread, after its scan: plans to sleep until `until`.
    /// Returns false if work arrived since `begin_cycle`; the thread must
    /// scan again instead of sleeping.
    pub(crate) fn prepare_sleep(&self, until: u64) -> bool {
        self.sleep_until.store(until.max(1), Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) {
            self.sleep_until.store(AWAKE, Ordering::SeqCst);
            return false;
        }
        true
    }
}

impl RecordAccumulator {
    /// Registers the I/O thread of `node`.
    pub(crate) fn register_signal(&self, node: i32, signal: Arc<DrainSignal>) {
        self.signals.write().insert(node, signal);
    }

    /// Forgets the I/O thread of `node`.
    pub(crate) fn unregister_signal(&self, node: i32) {
        self.signals.write().remove(&node);
    }

    pub(super) fn notify_leader(&self, leader: i32, ready_at: Instant) {
        if leader < 0 {
            return;
        }
        if let Some(s) = self.signals.read().get(&leader) {
            s.notify(self.nanos(ready_at));
        }
    }

    /// Wakes every I/O thread now.
    pub(crate) fn wake_all(&self) {
        for s in self.signals.read().values() {
            s.wake_now();
        }
    }
}
