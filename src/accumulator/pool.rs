//! [`BufferPool`]: the `buffer.memory` budget (Java's `BufferPool`).
//!
//! Every batch buffer is taken from here and given back when its batch
//! completes, so the bytes held by batches never exceed `buffer.memory`.
//! A buffer given back is kept on a free list, cleared, whatever its size
//! (one that grew with its batch, a compressed batch's, a split half's), as
//! long as its capacity is within what it was reserved for and at least
//! [`MIN_RECYCLED`]: the free list counts each buffer at its capacity, and
//! the rest of its reservation goes back to the budget. So the bytes on the
//! free list plus the bytes handed out never exceed `buffer.memory`. A
//! request takes the smallest free buffer that fits between what it needs
//! and the most it may hold, and reserves that buffer's whole capacity;
//! when the budget runs short, free buffers are dropped to make room,
//! the largest first.
//!
//! When the budget is spent, `allocate` blocks up to `max.block.ms`.
//! Waiters are served first come, first served: each has its own condition
//! variable in a queue, and a new request queues behind existing waiters
//! even if the memory it needs is free (Java's fairness rule, so a stream of
//! small requests cannot starve a large one).
//!
//! Once the producer is [stopped](crate::lifecycle::Phase::Stopped) the
//! pool refuses every allocation, fails its waiters (`Io::stop` wakes them
//! with [`BufferPool::wake_waiters`]) and recycles no more buffers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::lifecycle::Lifecycle;
use crate::metrics::PoolGauges;
use crate::util::Budget;

/// The smallest buffer worth keeping for reuse.
pub(crate) const MIN_RECYCLED: usize = 4 * 1024;

/// Cleared buffers ready for reuse, ordered by capacity: with many
/// partitions hundreds of buffers wait here, and a new batch takes the
/// smallest that fits in O(log n), not by a scan of them all.
#[derive(Debug, Default)]
struct FreeList {
    /// Keyed by (capacity, arrival), so equal capacities do not collide.
    buffers: BTreeMap<(usize, u64), Vec<u8>>,
    arrivals: u64,
}

impl FreeList {
    fn push(&mut self, b: Vec<u8>) {
        self.arrivals += 1;
        self.buffers.insert((b.capacity(), self.arrivals), b);
    }

    /// The smallest buffer of capacity within `size..=up_to`.
    fn take(&mut self, size: usize, up_to: usize) -> Option<Vec<u8>> {
        if size > up_to {
            return None; // an empty range (`range` would panic)
        }
        let (&key, _) = self.buffers.range((size, 0)..=(up_to, u64::MAX)).next()?;
        self.buffers.remove(&key)
    }

    /// The largest buffer, to drop for budget (the fewest drops).
    fn pop(&mut self) -> Option<Vec<u8>> {
        self.buffers.pop_last().map(|(_, b)| b)
    }

    fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buffers.len()
    }
}

#[derive(Debug)]
struct Inner {
    /// Cleared buffers ready for reuse, each counted at its capacity.
    free: FreeList,
    /// The capacities of `free`, added up.
    free_total: usize,
    /// Budget bytes neither on the free list nor handed out.
    non_pooled_available: usize,
    /// FIFO of blocked allocations.
    waiters: VecDeque<Arc<Condvar>>,
}

/// The `buffer.memory` budget.
#[derive(Debug)]
pub(crate) struct BufferPool {
    total: usize,
    inner: Mutex<Inner>,
    /// `inner.waiters.len()`, readable without the lock: the I/O threads
    /// treat every batch as ready while someone waits for memory.
    waiting: AtomicUsize,
    /// Nanoseconds allocations spent blocked, in total
    /// (`bufferpool-wait-time-ns-total`); updated once per blocked
    /// allocation, never on the fast path.
    wait_ns: AtomicU64,
    /// Allocations that gave up at their deadline (`buffer-exhausted-total`).
    exhausted: AtomicU64,
    /// Stopped: no more allocations. A waiter checks it under `inner`,
    /// and `Io::stop` takes `inner` after the move to wake it.
    lifecycle: Arc<Lifecycle>,
}

impl BufferPool {
    /// A pool of `total` bytes.
    pub(crate) fn new(total: usize, lifecycle: Arc<Lifecycle>) -> Self {
        BufferPool {
            total,
            inner: Mutex::new(Inner {
                free: FreeList::default(),
                free_total: 0,
                non_pooled_available: total,
                waiters: VecDeque::new(),
            }),
            waiting: AtomicUsize::new(0),
            wait_ns: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
            lifecycle,
        }
    }

    /// The pool's metrics, now: buffer-total-bytes and the rest.
    pub(crate) fn gauges(&self) -> PoolGauges {
        PoolGauges {
            total: self.total as u64,
            available: self.available_memory() as u64,
            waiting: self.waiting.load(Ordering::Relaxed) as u64,
            wait_ns: self.wait_ns.load(Ordering::Relaxed),
            exhausted: self.exhausted.load(Ordering::Relaxed),
        }
    }

    /// Bytes that could be allocated now without waiting.
    pub(crate) fn available_memory(&self) -> usize {
        self.free_bytes(&self.inner.lock())
    }

    /// Bytes free under `g`: unpooled, and in free buffers.
    fn free_bytes(&self, g: &Inner) -> usize {
        g.non_pooled_available + g.free_total
    }

    /// Takes the smallest free buffer of capacity within `size..=up_to`.
    fn take_free(g: &mut Inner, size: usize, up_to: usize) -> Option<Vec<u8>> {
        let b = g.free.take(size, up_to)?;
        g.free_total -= b.capacity();
        Some(b)
    }

    /// True while some allocation is blocked.
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// Takes a buffer with room for `size` bytes, waiting within `budget`
    /// (`max.block.ms`) for memory. `on_block` runs once, before the first wait, outside the
    /// lock (the producer wakes the I/O threads so full batches drain).
    /// A free buffer of capacity up to `up_to` may serve it. Returns the
    /// buffer and the bytes reserved for it: its capacity, at least `size`.
    ///
    /// # Errors
    ///
    /// [`Error::BufferExhausted`] at the deadline, [`Error::Closed`] once
    /// the producer is stopped, [`Error::RecordTooLarge`] if `size` exceeds the whole
    /// budget.
    pub(crate) fn allocate(
        &self,
        size: usize,
        up_to: usize,
        budget: &Budget,
        on_block: impl FnOnce(),
    ) -> Result<(Vec<u8>, usize)> {
        let up_to = up_to.max(size);
        if size > self.total {
            return Err(Error::RecordTooLarge {
                size,
                limit: self.total,
                setting: "buffer.memory",
            });
        }
        let mut g = self.inner.lock();
        if self.lifecycle.is_stopped() {
            return Err(Error::Closed);
        }
        if g.waiters.is_empty() {
            if let Some(b) = Self::take_free(&mut g, size, up_to) {
                let reserved = b.capacity();
                return Ok((b, reserved));
            }
            if self.free_bytes(&g) >= size {
                self.free_up(&mut g, size);
                g.non_pooled_available -= size;
                drop(g);
                return Ok((Vec::with_capacity(size), size));
            }
        }

        // Not enough memory, or others are waiting first: queue up.
        let me = Arc::new(Condvar::new());
        g.waiters.push_back(me.clone());
        self.waiting.fetch_add(1, Ordering::Relaxed);
        drop(g);
        on_block();
        let deadline = budget.deadline();
        let blocked_at = Instant::now();
        let mut g = self.inner.lock();
        let mut accumulated = 0usize;
        let mut reused: Option<Vec<u8>> = None;
        let outcome = loop {
            let first = g.waiters.front().is_some_and(|w| Arc::ptr_eq(w, &me));
            // Under the lock: see `wake_waiters`.
            if self.lifecycle.is_stopped() {
                break Err(Error::Closed);
            }
            if first {
                // Take what there is, in Java's order: a whole free buffer
                // for a poolable request, else bytes from the budget.
                let free = if accumulated == 0 {
                    Self::take_free(&mut g, size, up_to)
                } else {
                    None
                };
                if let Some(b) = free {
                    accumulated = b.capacity();
                    reused = Some(b);
                } else {
                    self.free_up(&mut g, size - accumulated);
                    let got = (size - accumulated).min(g.non_pooled_available);
                    g.non_pooled_available -= got;
                    accumulated += got;
                }
                if accumulated >= size {
                    break Ok(());
                }
            }
            if me.wait_until(&mut g, deadline).timed_out() {
                break Err(Error::BufferExhausted {
                    requested: size,
                    max_block_ms: budget.limit().as_millis() as u64,
                });
            }
        };
        if let Some(i) = g.waiters.iter().position(|w| Arc::ptr_eq(w, &me)) {
            g.waiters.remove(i);
        }
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.wait_ns
            .fetch_add(blocked_at.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if let Err(Error::BufferExhausted { .. }) = outcome {
            self.exhausted.fetch_add(1, Ordering::Relaxed);
        }
        if outcome.is_err() {
            if let Some(b) = reused.take() {
                g.free_total += b.capacity();
                g.free.push(b);
            } else {
                g.non_pooled_available += accumulated;
            }
        }
        // Whatever is left may serve the next waiter.
        if g.non_pooled_available > 0 || !g.free.is_empty() {
            if let Some(next) = g.waiters.front() {
                next.notify_one();
            }
        }
        drop(g);
        outcome.map(|()| match reused {
            Some(b) => (b, accumulated),
            None => (Vec::with_capacity(size), size),
        })
    }

    /// Releases free-list buffers until `size` bytes are in the budget.
    fn free_up(&self, g: &mut Inner, size: usize) {
        while g.non_pooled_available < size {
            let Some(b) = g.free.pop() else { break };
            g.free_total -= b.capacity();
            g.non_pooled_available += b.capacity();
        }
    }

    /// Takes `extra` more bytes for a batch that grows, without waiting:
    /// false if they are not free now, or if anyone waits for memory (they
    /// come first, in order).
    pub(crate) fn try_grow(&self, extra: usize) -> bool {
        let mut g = self.inner.lock();
        if self.lifecycle.is_stopped() || !g.waiters.is_empty() {
            return false;
        }
        if self.free_bytes(&g) < extra {
            return false;
        }
        self.free_up(&mut g, extra);
        g.non_pooled_available -= extra;
        true
    }

    /// Returns a buffer with the `size` bytes reserved for it (what
    /// `allocate` said, plus what `try_grow` added). Kept for reuse if its
    /// capacity is at least [`MIN_RECYCLED`] and within `size` (counted at
    /// its capacity; the rest of `size` goes back to the budget), else
    /// dropped.
    pub(crate) fn deallocate(&self, mut buffer: Vec<u8>, size: usize) {
        let cap = buffer.capacity();
        let keep = (MIN_RECYCLED..=size).contains(&cap) && !self.lifecycle.is_stopped();
        if !keep {
            drop(buffer); // outside the lock
            buffer = Vec::new();
        }
        let mut g = self.inner.lock();
        if keep {
            buffer.clear();
            g.free_total += cap;
            g.non_pooled_available += size - cap;
            g.free.push(buffer);
        } else {
            g.non_pooled_available += size;
        }
        if let Some(w) = g.waiters.front() {
            w.notify_one();
        }
    }

    /// For `Io::stop`, after the move to `Stopped`: wakes every waiter,
    /// which then fails with [`Error::Closed`]. A waiter checks the phase
    /// under the lock taken here, so it either saw `Stopped` or is waiting
    /// now.
    pub(crate) fn wake_waiters(&self) {
        let g = self.inner.lock();
        for w in &g.waiters {
            w.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn soon(ms: u64) -> Budget {
        Budget::new(Duration::from_millis(ms))
    }

    #[test]
    fn budget_is_never_exceeded_and_buffers_are_recycled() {
        let pool = BufferPool::new(100_000, Arc::default());
        let a = pool.allocate(10_000, 10_000, &soon(0), || {}).unwrap().0;
        let b = pool.allocate(50_000, 50_000, &soon(0), || {}).unwrap().0;
        assert_eq!(pool.available_memory(), 40_000);
        let ptr = a.as_ptr();
        pool.deallocate(a, 10_000);
        let (again, reserved) = pool.allocate(10_000, 10_000, &soon(0), || {}).unwrap();
        assert_eq!(again.as_ptr(), ptr, "the buffer is reused");
        assert_eq!(reserved, 10_000);
        pool.deallocate(b, 50_000);
        pool.deallocate(again, 10_000);
        assert_eq!(pool.available_memory(), 100_000);
    }

    /// A buffer that grew with its batch (its reservation grown by
    /// `try_grow`, its capacity by the batch) is kept and serves a later
    /// request that fits it, which then reserves its whole capacity; one
    /// larger than its reservation, or too small, is dropped. The budget
    /// always adds up, and a request the free buffers cannot serve drops
    /// them to make room, so what is handed out plus what is kept never
    /// exceeds `buffer.memory`.
    #[test]
    fn grown_and_odd_sized_buffers_are_recycled_within_the_budget() {
        const TOTAL: usize = 100_000;
        let pool = BufferPool::new(TOTAL, Arc::default());
        let (mut grown, r) = pool.allocate(16_000, 40_000, &soon(0), || {}).unwrap();
        assert_eq!(r, 16_000);
        assert!(pool.try_grow(16_000));
        grown.reserve_exact(32_000 - 61); // as `ProducerBatch::grow`: the limit, less the header
        let ptr = grown.as_ptr();
        let cap = grown.capacity();
        assert!((16_000..=32_000).contains(&cap));
        pool.deallocate(grown, 32_000);
        assert_eq!(pool.available_memory(), TOTAL);
        // Too large for a request of at most 20,000; right for 30,000.
        let (small, r) = pool.allocate(10_000, 20_000, &soon(0), || {}).unwrap();
        assert_ne!(small.as_ptr(), ptr);
        assert_eq!(r, 10_000);
        let (again, r) = pool.allocate(30_000, 40_000, &soon(0), || {}).unwrap();
        assert_eq!(again.as_ptr(), ptr, "the grown buffer is reused");
        assert!(again.is_empty());
        assert_eq!(r, cap, "reserved at its capacity");
        assert_eq!(pool.available_memory(), TOTAL - 10_000 - cap);
        // A buffer larger than its reservation is not kept (it would hold
        // more than the budget counts), nor one below MIN_RECYCLED.
        let mut over = Vec::with_capacity(20_000);
        over.push(1u8);
        let (tiny, _) = pool.allocate(100, 100, &soon(0), || {}).unwrap();
        let (_, r) = pool.allocate(10_000, 10_000, &soon(0), || {}).unwrap();
        pool.deallocate(over, r);
        pool.deallocate(tiny, 100);
        assert_eq!(pool.available_memory(), TOTAL - 10_000 - cap);
        pool.deallocate(small, 10_000);
        pool.deallocate(again, cap);
        assert_eq!(pool.available_memory(), TOTAL);
        // Everything at once: the kept buffers are dropped to make room.
        let (all, r) = pool.allocate(TOTAL, TOTAL, &soon(0), || {}).unwrap();
        assert_eq!((all.capacity(), r), (TOTAL, TOTAL));
        assert_eq!(pool.available_memory(), 0);
        pool.deallocate(all, TOTAL);
        assert_eq!(pool.available_memory(), TOTAL);
    }

    #[test]
    fn exhausted_pool_times_out_with_a_typed_error() {
        let pool = BufferPool::new(300, Arc::default());
        // 50 bytes stay free: the blocked request gathers them while it
        // waits for the rest, and must give them back when it times out.
        let held = pool.allocate(250, 250, &soon(0), || {}).unwrap().0;
        let mut blocked = false;
        let t0 = Instant::now();
        let e = pool
            .allocate(100, 100, &soon(50), || blocked = true)
            .unwrap_err();
        assert!(blocked, "on_block ran");
        assert!(t0.elapsed() >= Duration::from_millis(50));
        assert!(
            matches!(
                e,
                Error::BufferExhausted {
                    requested: 100,
                    max_block_ms: 50
                }
            ),
            "{e}"
        );
        assert!(!pool.has_waiters());
        // the failed request gave back what it had gathered
        assert_eq!(pool.available_memory(), 50);
        pool.deallocate(held, 250);
        assert_eq!(pool.available_memory(), 300, "the whole budget is back");
    }

    /// Many threads compete for a small pool; some requests are served,
    /// some time out after gathering part of what they asked for, the rest
    /// fail when the pool closes. Once every buffer is given back, the
    /// whole budget is available again: no path keeps bytes.
    #[test]
    fn every_byte_comes_back_after_contention_timeouts_and_close() {
        const TOTAL: usize = 1000;
        let lifecycle = Arc::new(Lifecycle::default());
        let pool = Arc::new(BufferPool::new(TOTAL, lifecycle.clone()));
        let served = Arc::new(AtomicUsize::new(0));
        let timed_out = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|t| {
                let (pool, served, timed_out) = (pool.clone(), served.clone(), timed_out.clone());
                std::thread::spawn(move || {
                    for i in 0..150 {
                        // poolable, odd-sized and large requests, short waits
                        let size = [100, 150, 400, 100, 700][(t + i) % 5];
                        match pool.allocate(size, size, &soon(2), || {}) {
                            Ok((b, _)) => {
                                served.fetch_add(1, Ordering::Relaxed);
                                // hold it for a while, so others wait
                                std::thread::sleep(Duration::from_millis((i % 3) as u64));
                                pool.deallocate(b, size);
                            }
                            Err(Error::BufferExhausted { .. }) => {
                                timed_out.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(served.load(Ordering::Relaxed) > 0);
        assert!(!pool.has_waiters());
        assert_eq!(pool.available_memory(), TOTAL, "after contention");

        // Waiters holding part of their request when the pool closes.
        let held = pool.allocate(900, 900, &soon(0), || {}).unwrap().0;
        let waiter = {
            let p = pool.clone();
            std::thread::spawn(move || p.allocate(300, 300, &soon(10_000), || {}))
        };
        while !pool.has_waiters() {
            std::thread::yield_now();
        }
        lifecycle.stop();
        pool.wake_waiters();
        assert!(matches!(waiter.join().unwrap(), Err(Error::Closed)));
        pool.deallocate(held, 900);
        assert_eq!(pool.available_memory(), TOTAL, "after close");
        eprintln!(
            "served {}, timed out {}",
            served.load(Ordering::Relaxed),
            timed_out.load(Ordering::Relaxed)
        );
    }

    /// Growth never jumps the queue: while an allocation waits, a batch
    /// is not grown (it is full as it is), so the waiter, first in line,
    /// gets the memory that comes back.
    #[test]
    fn a_batch_does_not_grow_while_someone_waits_for_memory() {
        let pool = Arc::new(BufferPool::new(100_000, Arc::default()));
        let held = pool.allocate(90_000, 90_000, &soon(0), || {}).unwrap().0;
        assert!(pool.try_grow(5_000), "free memory and no waiter: granted");
        let p = pool.clone();
        let waiter = std::thread::spawn(move || p.allocate(20_000, 20_000, &soon(10_000), || {}));
        let t0 = Instant::now();
        while !pool.has_waiters() {
            assert!(t0.elapsed() < Duration::from_secs(10), "never waited");
            std::thread::yield_now();
        }
        assert!(!pool.try_grow(1_000), "refused while someone waits");
        pool.deallocate(held, 90_000);
        assert!(waiter.join().unwrap().unwrap().0.capacity() >= 20_000);
        assert!(pool.try_grow(1_000), "granted again once nobody waits");
    }

    #[test]
    fn a_waiter_is_served_when_memory_returns() {
        let pool = Arc::new(BufferPool::new(200, Arc::default()));
        let held = pool.allocate(200, 200, &soon(0), || {}).unwrap().0;
        let p = pool.clone();
        let t = std::thread::spawn(move || p.allocate(150, 150, &soon(10_000), || {}));
        while !pool.has_waiters() {
            std::thread::yield_now();
        }
        pool.deallocate(held, 200);
        let (got, _) = t.join().unwrap().unwrap();
        assert!(got.capacity() >= 150);
        assert_eq!(pool.available_memory(), 50);
    }

    #[test]
    fn requests_larger_than_the_budget_fail_at_once() {
        let pool = BufferPool::new(100, Arc::default());
        assert!(matches!(
            pool.allocate(101, 101, &soon(1000), || {}),
            Err(Error::RecordTooLarge {
                setting: "buffer.memory",
                ..
            })
        ));
    }

    #[test]
    fn close_releases_waiters() {
        let lifecycle = Arc::new(Lifecycle::default());
        let pool = Arc::new(BufferPool::new(10, lifecycle.clone()));
        let _held = pool.allocate(10, 10, &soon(0), || {}).unwrap().0;
        let p = pool.clone();
        let t = std::thread::spawn(move || p.allocate(10, 10, &soon(10_000), || {}));
        while !pool.has_waiters() {
            std::thread::yield_now();
        }
        lifecycle.stop();
        pool.wake_waiters();
        assert!(matches!(t.join().unwrap(), Err(Error::Closed)));
    }

    /// The free list serves the smallest buffer that fits, keeps buffers
    /// of equal capacity apart, and gives up the largest first.
    #[test]
    fn the_free_list_serves_the_smallest_fit_and_drops_the_largest_first() {
        let mut f = FreeList::default();
        for cap in [8192, 4096, 16384, 4096, 32768] {
            f.push(Vec::with_capacity(cap));
        }
        assert_eq!(f.len(), 5, "equal capacities are both kept");
        assert_eq!(f.take(5000, 20000).map(|b| b.capacity()), Some(8192));
        assert_eq!(f.take(5000, 8000).map(|b| b.capacity()), None, "none fits");
        assert_eq!(f.take(9000, 8000), None, "an empty range");
        assert_eq!(f.take(4096, 4096).map(|b| b.capacity()), Some(4096));
        assert_eq!(f.take(1, 4096).map(|b| b.capacity()), Some(4096));
        assert_eq!(f.take(1, 4096), None, "each buffer is served once");
        assert_eq!(f.pop().map(|b| b.capacity()), Some(32768));
        assert_eq!(f.pop().map(|b| b.capacity()), Some(16384));
        assert!(f.is_empty());
        assert_eq!(f.pop(), None);
    }
}
