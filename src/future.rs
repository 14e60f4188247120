//! The send handle: [`RecordFuture`], and the one-shot completion state a
//! batch shares with every handle of its records ([`BatchResult`], Java's
//! `ProduceRequestResult`).
//!
//! A handle owns no allocation of its own: it is an `Arc` to its batch's
//! result plus the record's index and sizes, so creating one costs an atomic
//! increment and dropping it (fire-and-forget) costs a decrement. The result
//! is set exactly once, under the mutex, then every waiter is woken.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::record::RecordMetadata;

/// A user callback, run once with the record's outcome.
pub(crate) type Callback = Box<dyn FnOnce(Result<RecordMetadata>) + Send>;

/// What the broker said about a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// Offset of the batch's first record, -1 if unknown (acks=0).
    pub(crate) base_offset: i64,
    /// The broker's append time if the topic uses LogAppendTime, else -1.
    pub(crate) log_append_time: i64,
}

/// The outcome of one batch, shared by the handles of its records.
#[derive(Debug)]
pub(crate) struct BatchResult {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// Mirrors `state.is_some()` for a lock-free `is_done`.
    done: AtomicBool,
    /// Invariant: goes from `None` to `Some` once and never changes again.
    state: Mutex<Option<Result<Delivered>>>,
    cond: Condvar,
}

impl BatchResult {
    pub(crate) fn new(topic: Arc<str>, partition: i32) -> Arc<Self> {
        Arc::new(BatchResult {
            topic,
            partition,
            done: AtomicBool::new(false),
            state: Mutex::new(None),
            cond: Condvar::new(),
        })
    }

    /// Sets the outcome and wakes every waiter. Returns false (and changes
    /// nothing) if it was already set.
    pub(crate) fn set(&self, outcome: Result<Delivered>) -> bool {
        let mut g = self.state.lock();
        if g.is_some() {
            return false;
        }
        *g = Some(outcome);
        self.done.store(true, Ordering::Release);
        drop(g);
        self.cond.notify_all();
        true
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Waits for the outcome until `deadline` (forever if `None`).
    fn wait(&self, deadline: Option<Instant>) -> Option<Result<Delivered>> {
        let mut g = self.state.lock();
        loop {
            if let Some(r) = &*g {
                return Some(r.clone());
            }
            match deadline {
                None => self.cond.wait(&mut g),
                Some(d) => {
                    if self.cond.wait_until(&mut g, d).timed_out() && g.is_none() {
                        return None;
                    }
                }
            }
        }
    }

    pub(crate) fn metadata(
        &self,
        delivered: Delivered,
        relative_offset: u32,
        timestamp: i64,
        key_size: i32,
        value_size: i32,
    ) -> RecordMetadata {
        RecordMetadata {
            topic: self.topic.clone(),
            partition: self.partition,
            // A hostile broker could send a base offset near i64::MAX.
            offset: if delivered.base_offset >= 0 {
                delivered
                    .base_offset
                    .checked_add(i64::from(relative_offset))
                    .unwrap_or(-1)
            } else {
                -1
            },
            timestamp: if delivered.log_append_time >= 0 {
                delivered.log_append_time
            } else {
                timestamp
            },
            serialized_key_size: key_size,
            serialized_value_size: value_size,
        }
    }
}

/// The handle `send` returns: wait on it with [`get`](Self::get) or
/// [`get_timeout`](Self::get_timeout), poll it with
/// [`is_done`](Self::is_done), or drop it to fire and forget (the record is
/// still delivered; dropping only gives up on hearing about it).
#[derive(Debug, Clone)]
pub struct RecordFuture {
    batch: Arc<BatchResult>,
    relative_offset: u32,
    timestamp: i64,
    key_size: i32,
    value_size: i32,
}

impl RecordFuture {
    pub(crate) fn new(
        batch: Arc<BatchResult>,
        relative_offset: u32,
        timestamp: i64,
        key_size: i32,
        value_size: i32,
    ) -> Self {
        RecordFuture {
            batch,
            relative_offset,
            timestamp,
            key_size,
            value_size,
        }
    }

    fn resolve(&self, r: Result<Delivered>) -> Result<RecordMetadata> {
        r.map(|d| {
            self.batch.metadata(
                d,
                self.relative_offset,
                self.timestamp,
                self.key_size,
                self.value_size,
            )
        })
    }

    /// Blocks until the broker has answered for this record (or it failed)
    /// and returns its metadata.
    ///
    /// # Errors
    ///
    /// The record's delivery error: a broker error code, a network error, a
    /// delivery timeout, or [`Error::Aborted`] if the producer was closed
    /// before it could be delivered.
    pub fn get(&self) -> Result<RecordMetadata> {
        let r = self.batch.wait(None).expect("wait without deadline");
        self.resolve(r)
    }

    /// Like [`get`](Self::get), but waits at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), and [`Error::WaitTimeout`] if the outcome is
    /// not known within `timeout`; the record is still in flight and the
    /// handle can be waited on again.
    pub fn get_timeout(&self, timeout: Duration) -> Result<RecordMetadata> {
        match self
            .batch
            .wait(Some(crate::util::later(Instant::now(), timeout)))
        {
            Some(r) => self.resolve(r),
            None => Err(Error::WaitTimeout(timeout)),
        }
    }

    /// True once the outcome is known; `get` will not block.
    pub fn is_done(&self) -> bool {
        self.batch.is_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_of_one_batch_share_one_outcome() {
        let b = BatchResult::new("t".into(), 3);
        let f0 = RecordFuture::new(b.clone(), 0, 10, 1, 2);
        let f1 = RecordFuture::new(b.clone(), 1, 11, -1, 5);
        assert!(!f0.is_done());
        assert!(matches!(
            f1.get_timeout(Duration::from_millis(1)),
            Err(Error::WaitTimeout(_))
        ));
        let waiter = {
            let f1 = f1.clone();
            std::thread::spawn(move || f1.get())
        };
        assert!(b.set(Ok(Delivered {
            base_offset: 100,
            log_append_time: -1
        })));
        assert!(!b.set(Err(Error::Closed)), "set twice");
        let m0 = f0.get().unwrap();
        let m1 = waiter.join().unwrap().unwrap();
        assert_eq!((m0.offset(), m0.timestamp(), m0.partition()), (100, 10, 3));
        assert_eq!((m1.offset(), m1.serialized_key_size()), (101, -1));
        assert_eq!(m1.to_string(), "t-3@101");
    }

    #[test]
    fn a_hostile_base_offset_does_not_overflow() {
        let b = BatchResult::new("t".into(), 0);
        b.set(Ok(Delivered {
            base_offset: i64::MAX - 1,
            log_append_time: -1,
        }));
        assert_eq!(RecordFuture::new(b, 5, 0, 0, 0).get().unwrap().offset(), -1);
    }

    #[test]
    fn log_append_time_and_unknown_offsets() {
        let b = BatchResult::new("t".into(), 0);
        b.set(Ok(Delivered {
            base_offset: -1,
            log_append_time: 555,
        }));
        let m = RecordFuture::new(b, 4, 10, 0, 0).get().unwrap();
        assert_eq!(m.offset(), -1);
        assert!(!m.has_offset());
        assert_eq!(m.timestamp(), 555);
    }
}
