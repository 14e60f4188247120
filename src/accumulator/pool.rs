//! [`BufferPool`]: the `buffer.memory` budget (Java's `BufferPool`).
//!
//! Every batch buffer is taken from here and given back when its batch
//! completes, so the bytes held by batches never exceed `buffer.memory`.
//! Buffers of exactly `batch.size` are kept on a free list and reused;
//! other sizes are dropped and their bytes returned to the budget.
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

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::lifecycle::Lifecycle;
use crate::metrics::PoolGauges;
use crate::util::Budget;

#[derive(Debug)]
struct Inner {
    /// Cleared buffers with capacity `poolable_size`, ready for reuse.
    free: Vec<Vec<u8>>,
    /// Budget bytes neither on the free list nor handed out.
    non_pooled_available: usize,
    /// FIFO of blocked allocations.
    waiters: VecDeque<Arc<Condvar>>,
}

/// The `buffer.memory` budget.
#[derive(Debug)]
pub(crate) struct BufferPool {
    total: usize,
    poolable_size: usize,
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
    /// A pool of `total` bytes that recycles buffers of `poolable_size`.
    pub(crate) fn new(total: usize, poolable_size: usize, lifecycle: Arc<Lifecycle>) -> Self {
        BufferPool {
            total,
            poolable_size,
            inner: Mutex::new(Inner {
                free: Vec::new(),
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
        g.non_pooled_available + g.free.len() * self.poolable_size
    }

    /// True while some allocation is blocked.
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// Takes a buffer with room for `size` bytes, waiting within `budget`
    /// (`max.block.ms`) for memory. `on_block` runs once, before the first wait, outside the
    /// lock (the producer wakes the I/O threads so full batches drain).
    ///
    /// # Errors
    ///
    /// [`Error::BufferExhausted`] at the deadline, [`Error::Closed`] once
    /// the producer is stopped, [`Error::RecordTooLarge`] if `size` exceeds the whole
    /// budget.
    pub(crate) fn allocate(
        &self,
        size: usize,
        budget: &Budget,
        on_block: impl FnOnce(),
    ) -> Result<Vec<u8>> {
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
            if size == self.poolable_size {
                if let Some(b) = g.free.pop() {
                    return Ok(b);
                }
            }
            if self.free_bytes(&g) >= size {
                self.free_up(&mut g, size);
                g.non_pooled_available -= size;
                drop(g);
                return Ok(Vec::with_capacity(size));
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
                if accumulated == 0 && size == self.poolable_size && !g.free.is_empty() {
                    reused = g.free.pop();
                    accumulated = size;
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
        outcome.map(|()| reused.unwrap_or_else(|| Vec::with_capacity(size)))
    }

    /// Releases free-list buffers until `size` bytes are in the budget.
    fn free_up(&self, g: &mut Inner, size: usize) {
        while g.non_pooled_available < size && g.free.pop().is_some() {
            g.non_pooled_available += self.poolable_size;
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

    /// Returns a buffer taken with `allocate(size, ..)` (and grown by
    /// `try_grow` to `size`).
    pub(crate) fn deallocate(&self, mut buffer: Vec<u8>, size: usize) {
        let mut g = self.inner.lock();
        if size == self.poolable_size && buffer.capacity() == size && !self.lifecycle.is_stopped() {
            buffer.clear();
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
        let pool = BufferPool::new(1000, 100, Arc::default());
        let a = pool.allocate(100, &soon(0), || {}).unwrap();
        let b = pool.allocate(500, &soon(0), || {}).unwrap();
        assert_eq!(pool.available_memory(), 400);
        let ptr = a.as_ptr();
        pool.deallocate(a, 100);
        let again = pool.allocate(100, &soon(0), || {}).unwrap();
        assert_eq!(again.as_ptr(), ptr, "the poolable buffer is reused");
        pool.deallocate(b, 500);
        pool.deallocate(again, 100);
        assert_eq!(pool.available_memory(), 1000);
    }

    #[test]
    fn exhausted_pool_times_out_with_a_typed_error() {
        let pool = BufferPool::new(300, 100, Arc::default());
        // 50 bytes stay free: the blocked request gathers them while it
        // waits for the rest, and must give them back when it times out.
        let held = pool.allocate(250, &soon(0), || {}).unwrap();
        let mut blocked = false;
        let t0 = Instant::now();
        let e = pool
            .allocate(100, &soon(50), || blocked = true)
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
        let pool = Arc::new(BufferPool::new(TOTAL, 100, lifecycle.clone()));
        let served = Arc::new(AtomicUsize::new(0));
        let timed_out = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|t| {
                let (pool, served, timed_out) = (pool.clone(), served.clone(), timed_out.clone());
                std::thread::spawn(move || {
                    for i in 0..150 {
                        // poolable, odd-sized and large requests, short waits
                        let size = [100, 150, 400, 100, 700][(t + i) % 5];
                        match pool.allocate(size, &soon(2), || {}) {
                            Ok(b) => {
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
        let held = pool.allocate(900, &soon(0), || {}).unwrap();
        let waiter = {
            let p = pool.clone();
            std::thread::spawn(move || p.allocate(300, &soon(10_000), || {}))
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
        let pool = Arc::new(BufferPool::new(100_000, 50_000, Arc::default()));
        let held = pool.allocate(90_000, &soon(0), || {}).unwrap();
        assert!(pool.try_grow(5_000), "free memory and no waiter: granted");
        let p = pool.clone();
        let waiter = std::thread::spawn(move || p.allocate(20_000, &soon(10_000), || {}));
        let t0 = Instant::now();
        while !pool.has_waiters() {
            assert!(t0.elapsed() < Duration::from_secs(10), "never waited");
            std::thread::yield_now();
        }
        assert!(!pool.try_grow(1_000), "refused while someone waits");
        pool.deallocate(held, 90_000);
        assert!(waiter.join().unwrap().unwrap().capacity() >= 20_000);
        assert!(pool.try_grow(1_000), "granted again once nobody waits");
    }

    #[test]
    fn a_waiter_is_served_when_memory_returns() {
        let pool = Arc::new(BufferPool::new(200, 100, Arc::default()));
        let held = pool.allocate(200, &soon(0), || {}).unwrap();
        let p = pool.clone();
        let t = std::thread::spawn(move || p.allocate(150, &soon(10_000), || {}));
        while !pool.has_waiters() {
            std::thread::yield_now();
        }
        pool.deallocate(held, 200);
        let got = t.join().unwrap().unwrap();
        assert!(got.capacity() >= 150);
        assert_eq!(pool.available_memory(), 50);
    }

    #[test]
    fn requests_larger_than_the_budget_fail_at_once() {
        let pool = BufferPool::new(100, 10, Arc::default());
        assert!(matches!(
            pool.allocate(101, &soon(1000), || {}),
            Err(Error::RecordTooLarge {
                setting: "buffer.memory",
                ..
            })
        ));
    }

    #[test]
    fn close_releases_waiters() {
        let lifecycle = Arc::new(Lifecycle::default());
        let pool = Arc::new(BufferPool::new(10, 10, lifecycle.clone()));
        let _held = pool.allocate(10, &soon(0), || {}).unwrap();
        let p = pool.clone();
        let t = std::thread::spawn(move || p.allocate(10, &soon(10_000), || {}));
        while !pool.has_waiters() {
            std::thread::yield_now();
        }
        lifecycle.stop();
        pool.wake_waiters();
        assert!(matches!(t.join().unwrap(), Err(Error::Closed)));
    }
}
