//! [`DrainSignal`]: how `send` wakes an I/O thread and tells it which
//! partition has work, and the accumulator's registry of them (one per I/O
//! thread, by node id).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::{PartitionQueue, RecordAccumulator};

/// "Nothing can expire" for [`DrainSignal::expiry`].
pub(super) const NEVER: u64 = u64::MAX;

/// A partition of the thread's node may have a batch to drain from `at`
/// on: a batch was created (ready after linger), filled, handed back for a
/// retry, or its partition was unmuted or had a sequence settled. The
/// thread finds the partition by its `slot` in its list and checks it is
/// the same `queue` (the list may have changed since; then the thread
/// rescans every partition anyway).
#[derive(Debug, Clone, Copy)]
pub(super) struct Touch {
    pub(super) slot: usize,
    /// The partition's address, compared only, never dereferenced.
    pub(super) queue: usize,
    pub(super) at: Instant,
}

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
    /// The partitions touched since the thread last looked
    /// ([`Drainer`](super::Drainer) takes them each drain). A leaf lock.
    pub(super) inbox: Mutex<Vec<Touch>>,
    /// Set by [`RecordAccumulator::wake_all`]: something that concerns
    /// every partition changed (metadata, the producer id or epoch, a
    /// flush, close, a `send` blocked on memory, a transaction's partitions
    /// added): the thread looks at all its partitions once.
    pub(super) rescan: AtomicBool,
    /// A lower bound of when a queued batch of the thread's partitions
    /// reaches `delivery.timeout.ms` (epoch nanoseconds, [`NEVER`] if none
    /// may): lowered by new batches and retries, recomputed by the
    /// thread's expiry pass, which runs only once it is due.
    pub(super) expiry: AtomicU64,
}

impl DrainSignal {
    pub(crate) fn new(wake: Box<dyn Fn() + Send + Sync>) -> Self {
        DrainSignal {
            sleep_until: AtomicU64::new(AWAKE),
            pending: AtomicBool::new(false),
            wake,
            inbox: Mutex::new(Vec::new()),
            rescan: AtomicBool::new(true),
            expiry: AtomicU64::new(NEVER),
        }
    }

    /// Lowers the expiry bound to `at` (epoch nanoseconds). A load first:
    /// the bound is almost always lower already, and a write would pull
    /// the cache line from the other senders.
    pub(super) fn lower_expiry(&self, at: u64) {
        if self.expiry.load(Ordering::SeqCst) > at {
            self.expiry.fetch_min(at, Ordering::SeqCst);
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

    /// Tells the I/O thread of `leader` (read by the caller after it
    /// changed `q`, under or after its lock) that `q` may have a batch to
    /// drain at `ready_at`, and wakes it if it sleeps past that.
    /// `expires`: a batch queued in `q` reaches `delivery.timeout.ms` then
    /// (a new batch, a retry), which lowers the thread's expiry bound.
    pub(super) fn notify_leader(
        &self,
        q: &PartitionQueue,
        leader: i32,
        ready_at: Instant,
        expires: Option<Instant>,
    ) {
        if leader < 0 {
            return;
        }
        if let Some(s) = self.signals.read().get(&leader) {
            if let Some(t) = expires {
                s.lower_expiry(self.nanos(t));
            }
            s.inbox.lock().push(Touch {
                slot: q.slot.load(Ordering::Acquire),
                queue: q as *const PartitionQueue as usize,
                at: ready_at,
            });
            s.notify(self.nanos(ready_at));
        }
    }

    /// Wakes every I/O thread now, and has each look at every partition it
    /// leads once (see [`DrainSignal::rescan`]).
    pub(crate) fn wake_all(&self) {
        for s in self.signals.read().values() {
            s.rescan.store(true, Ordering::SeqCst);
            s.wake_now();
        }
    }
}
