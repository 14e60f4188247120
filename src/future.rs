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

/// What the broker said about a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// Offset of the batch's first record, -1 if unknown (acks=0).
    pub(crate) base_offset: i64,
    /// The broker's append time if the topic uses LogAppendTime, else -1.
    pub(crate) log_append_time: i64,
}

/// What a batch came to.
#[derive(Debug, Clone)]
enum Outcome {
    /// The broker's answer (or the error) for every record of the batch.
    Done(Result<Delivered>),
    /// The batch was split (MESSAGE_TOO_LARGE): records from index
    /// `start` of each piece on, up to the next piece's, are that piece's.
    Split(Arc<[(u32, Arc<BatchResult>)]>),
}

/// The outcome of one batch, shared by the handles of its records.
#[derive(Debug)]
pub(crate) struct BatchResult {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// Mirrors `state.is_some()` for a lock-free `is_done` (a split batch
    /// is not done: its pieces are).
    done: AtomicBool,
    /// Invariant: goes from `None` to `Some` once and never changes again.
    state: Mutex<Option<Outcome>>,
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
        self.set_outcome(Outcome::Done(outcome))
    }

    /// The batch was split into `pieces` (each with the index of its first
    /// record): handles wait on their piece from now on.
    pub(crate) fn set_split(&self, pieces: Vec<(u32, Arc<BatchResult>)>) -> bool {
        self.set_outcome(Outcome::Split(pieces.into()))
    }

    fn set_outcome(&self, outcome: Outcome) -> bool {
        let mut g = self.state.lock();
        if g.is_some() {
            return false;
        }
        let done = matches!(outcome, Outcome::Done(_));
        *g = Some(outcome);
        if done {
            self.done.store(true, Ordering::Release);
        }
        drop(g);
        self.cond.notify_all();
        true
    }

    /// The result that holds record `index`'s outcome, and its index
    /// there: this one, or (after splits) a piece's.
    fn locate(self: &Arc<Self>, mut index: u32) -> (Arc<BatchResult>, u32) {
        let mut r = self.clone();
        loop {
            let next = match &*r.state.lock() {
                Some(Outcome::Split(pieces)) => {
                    let (start, piece) = pieces
                        .iter()
                        .rev()
                        .find(|(start, _)| *start <= index)
                        .unwrap_or(&pieces[0]);
                    index -= (*start).min(index);
                    Some(piece.clone())
                }
                _ => None,
            };
            match next {
                Some(piece) => r = piece,
                None => return (r, index),
            }
        }
    }

    /// True once this batch's own outcome is set (false if it was split).
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// True once record `index`'s outcome is known, following splits.
    fn record_done(self: &Arc<Self>, index: u32) -> bool {
        self.locate(index).0.is_done()
    }

    /// Waits for record `index`'s outcome until `deadline` (forever if
    /// `None`); returns it with the record's index in its (final) batch.
    fn wait(
        self: &Arc<Self>,
        index: u32,
        deadline: Option<Instant>,
    ) -> Option<(Result<Delivered>, u32)> {
        let (mut r, mut index) = self.locate(index);
        loop {
            match r.wait_own(deadline)? {
                Outcome::Done(d) => return Some((d, index)),
                Outcome::Split(_) => (r, index) = r.locate(index),
            }
        }
    }

    /// Waits until this result is set, until `deadline` (forever if `None`).
    fn wait_own(&self, deadline: Option<Instant>) -> Option<Outcome> {
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
///
/// ```no_run
/// use std::time::Duration;
/// use kafka_producer::{Error, Producer, ProducerConfig, ProducerRecord, StringSerializer};
///
/// # fn main() -> Result<(), Error> {
/// let config = ProducerConfig::new().bootstrap_servers("localhost:9092");
/// let producer = Producer::new(config, StringSerializer, StringSerializer)?;
/// let handle = producer.send(ProducerRecord::new("events", "hello"))?;
/// match handle.get_timeout(Duration::from_secs(5)) {
///     Ok(meta) => println!("{}-{} @ {}", meta.topic(), meta.partition(), meta.offset()),
///     // Still in flight: wait again rather than send it twice.
///     Err(Error::WaitTimeout(_)) => {
///         handle.get()?;
///     }
///     Err(e) => return Err(e),
/// }
/// # Ok(())
/// # }
/// ```
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

    fn resolve(&self, r: Result<Delivered>, relative_offset: u32) -> Result<RecordMetadata> {
        r.map(|d| {
            self.batch.metadata(
                d,
                relative_offset,
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
        let (r, i) = self
            .batch
            .wait(self.relative_offset, None)
            .expect("wait without deadline");
        self.resolve(r, i)
    }

    /// Like [`get`](Self::get), but waits at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), and [`Error::WaitTimeout`] if the outcome is
    /// not known within `timeout`; the record is still in flight and the
    /// handle can be waited on again.
    pub fn get_timeout(&self, timeout: Duration) -> Result<RecordMetadata> {
        let deadline = crate::util::later(Instant::now(), timeout);
        match self.batch.wait(self.relative_offset, Some(deadline)) {
            Some((r, i)) => self.resolve(r, i),
            None => Err(Error::WaitTimeout(timeout)),
        }
    }

    /// True once the outcome is known; `get` will not block.
    pub fn is_done(&self) -> bool {
        self.batch.record_done(self.relative_offset)
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
