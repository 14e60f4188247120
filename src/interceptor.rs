//! [`ProducerInterceptor`]: Java's `ProducerInterceptor`, typed by the
//! producer's key and value types, and the chain a producer runs.
//!
//! What it owns: the trait, the record view interceptors see and change
//! ([`InterceptedRecord`]), and the rules for a failing interceptor. What
//! it does not: when the hooks run. `Producer::send` runs `on_send` on the
//! caller's thread before serializing; `on_acknowledgement` runs where the
//! record's callback runs (an I/O thread, or the caller's thread for a
//! record refused before it was appended), just before that callback.
//!
//! Java's rules (`ProducerInterceptors`), kept:
//! * interceptors run in the order they were added, each seeing the record
//!   as the one before left it;
//! * an interceptor that fails (returns [`InterceptorError::Failed`] or
//!   panics) is logged and skipped: the record goes on to the next one;
//! * `on_acknowledgement` runs for every record `send` was called with
//!   once `on_send` has run, also for those that fail before they are
//!   sent (serialization, a record too large, a metadata timeout ...), with
//!   the error `send` returns; a panic there is logged and skipped.
//!
//! One addition: Java's interceptors cannot refuse a record (an exception
//! is logged and ignored). Here [`InterceptorError::Reject`] makes `send`
//! fail with [`Error::Rejected`] (a validation interceptor, see
//! `examples/interceptor.rs`).
//!
//! One difference: `on_send` changes the record in place, so what an
//! interceptor changed before it failed stays changed (Java drops the
//! half-built record it never returned).

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::record::{Header, RecordMetadata};

/// What an interceptor's `on_send` can say besides `Ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InterceptorError {
    /// Refuse the record: `send` returns [`Error::Rejected`] with this
    /// reason, and the interceptors after this one do not see it.
    Reject(String),
    /// This interceptor failed: as in Java, the failure is logged and the
    /// interceptor skipped; the record goes on to the next one.
    Failed(String),
}

/// A hook on every record a producer sends: Java's `ProducerInterceptor`.
///
/// `K` and `V` are the types the producer's serializers take (`str`,
/// `[u8]`, `i64` ...), so an interceptor sees keys and values as the
/// caller gave them. Add interceptors with
/// [`Producer::with_interceptor`](crate::Producer::with_interceptor);
/// both methods have do-nothing defaults.
///
/// ```
/// use kafka_producer::{Header, InterceptedRecord, InterceptorError, ProducerInterceptor};
///
/// /// Tags every record with where it came from.
/// struct Origin;
///
/// impl ProducerInterceptor<str, str> for Origin {
///     fn on_send(&self, record: &mut InterceptedRecord<'_, str, str>) -> Result<(), InterceptorError> {
///         record.headers.push(Header::new("origin", "billing"));
///         Ok(())
///     }
/// }
/// ```
///
/// Both methods run on producer threads: keep them short, and never wait
/// in them for another record.
pub trait ProducerInterceptor<K: ?Sized, V: ?Sized>: Send + Sync {
    /// Called by `send` before the record is serialized and partitioned;
    /// may change any part of it (topic, partition, timestamp, key, value,
    /// headers).
    ///
    /// # Errors
    ///
    /// [`InterceptorError::Reject`] refuses the record;
    /// [`InterceptorError::Failed`] (like a panic) is logged and skipped.
    fn on_send(&self, record: &mut InterceptedRecord<'_, K, V>) -> Result<(), InterceptorError> {
        let _ = record;
        Ok(())
    }

    /// Called once per record that went through `on_send`, when its
    /// outcome is known: the broker's acknowledgement, or the error it
    /// failed with (before or after it was sent). `topic` is the record's
    /// topic after every `on_send`. Runs just before the record's callback,
    /// on the same thread.
    fn on_acknowledgement(&self, topic: &str, result: &Result<RecordMetadata>) {
        let _ = (topic, result);
    }

    /// The name logs and [`Error::Rejected`] give this interceptor; its
    /// type's name by default.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }
}

/// An interceptor behind an `Arc`: add it to a producer and keep a handle
/// (to read what it counted, say).
impl<K: ?Sized, V: ?Sized, T: ProducerInterceptor<K, V> + ?Sized> ProducerInterceptor<K, V>
    for Arc<T>
{
    fn on_send(&self, record: &mut InterceptedRecord<'_, K, V>) -> Result<(), InterceptorError> {
        (**self).on_send(record)
    }

    fn on_acknowledgement(&self, topic: &str, result: &Result<RecordMetadata>) {
        (**self).on_acknowledgement(topic, result)
    }

    fn name(&self) -> &str {
        (**self).name()
    }
}

/// A key or value an interceptor may have replaced.
enum Part<'a, T: ?Sized> {
    Borrowed(&'a T),
    Owned(Box<T>),
}

impl<T: ?Sized> Part<'_, T> {
    fn get(&self) -> &T {
        match self {
            Part::Borrowed(t) => t,
            Part::Owned(b) => b,
        }
    }
}

/// The record as interceptors see it: every field of the
/// [`ProducerRecord`](crate::ProducerRecord) `send` was called with, the
/// key and value as the serializers take them (`&str`, `&[u8]` ...).
///
/// ```
/// # use kafka_producer::{InterceptedRecord, InterceptorError, ProducerInterceptor};
/// struct Upper;
/// impl ProducerInterceptor<str, str> for Upper {
///     fn on_send(&self, r: &mut InterceptedRecord<'_, str, str>) -> Result<(), InterceptorError> {
///         if let Some(v) = r.value() {
///             let upper: Box<str> = v.to_uppercase().into();
///             r.set_value(Some(upper));
///         }
///         Ok(())
///     }
/// }
/// ```
pub struct InterceptedRecord<'a, K: ?Sized, V: ?Sized> {
    /// The topic.
    pub topic: Cow<'a, str>,
    /// The partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The timestamp; `None` is the time of `send`.
    pub timestamp: Option<i64>,
    /// The headers, in order.
    pub headers: Vec<Header>,
    key: Option<Part<'a, K>>,
    value: Option<Part<'a, V>>,
}

impl<K: ?Sized, V: ?Sized> std::fmt::Debug for InterceptedRecord<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterceptedRecord")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("timestamp", &self.timestamp)
            .field("has_key", &self.key.is_some())
            .field("has_value", &self.value.is_some())
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl<'a, K: ?Sized, V: ?Sized> InterceptedRecord<'a, K, V> {
    pub(crate) fn new(
        topic: Cow<'a, str>,
        partition: Option<i32>,
        timestamp: Option<i64>,
        headers: Vec<Header>,
        key: Option<&'a K>,
        value: Option<&'a V>,
    ) -> Self {
        InterceptedRecord {
            topic,
            partition,
            timestamp,
            headers,
            key: key.map(Part::Borrowed),
            value: value.map(Part::Borrowed),
        }
    }

    /// The key; `None` is a null key.
    pub fn key(&self) -> Option<&K> {
        self.key.as_ref().map(Part::get)
    }

    /// The value; `None` is a null value.
    pub fn value(&self) -> Option<&V> {
        self.value.as_ref().map(Part::get)
    }

    /// The headers (mutable) with the key and value, for the serializers.
    pub(crate) fn parts_mut(&mut self) -> (&mut Vec<Header>, Option<&K>, Option<&V>) {
        (
            &mut self.headers,
            self.key.as_ref().map(Part::get),
            self.value.as_ref().map(Part::get),
        )
    }

    /// Replaces the key (`None`: a null key). For `str` keys,
    /// `Some("new".into())`.
    pub fn set_key(&mut self, key: Option<Box<K>>) {
        self.key = key.map(Part::Owned);
    }

    /// Replaces the value (`None`: a null value, a tombstone).
    pub fn set_value(&mut self, value: Option<Box<V>>) {
        self.value = value.map(Part::Owned);
    }
}

/// An interceptor's `on_acknowledgement`, with its panics caught: a
/// closure over the interceptor, so the callbacks that hold it do not
/// depend on the producer's key and value types.
type AckHook = Arc<dyn Fn(&str, &Result<RecordMetadata>) + Send + Sync>;

/// A producer's interceptors, in order.
pub(crate) struct Interceptors<K: ?Sized, V: ?Sized> {
    list: Vec<Arc<dyn ProducerInterceptor<K, V>>>,
    /// The same interceptors' acknowledgement side, shared by every
    /// record's callback (one `Arc` clone per record).
    acks: Acks,
}

impl<K: ?Sized, V: ?Sized> Default for Interceptors<K, V> {
    fn default() -> Self {
        Interceptors {
            list: Vec::new(),
            acks: Acks {
                list: Arc::from(Vec::new()),
            },
        }
    }
}

impl<K: ?Sized, V: ?Sized> Interceptors<K, V> {
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn push<T: ProducerInterceptor<K, V> + 'static>(&mut self, interceptor: T) {
        let i = Arc::new(interceptor);
        let j = i.clone();
        let hook: AckHook = Arc::new(move |topic, result| {
            let r = catch_unwind(AssertUnwindSafe(|| j.on_acknowledgement(topic, result)));
            if let Err(p) = r {
                log::warn!(
                    "interceptor {} panicked in on_acknowledgement (skipped): {}",
                    j.name(),
                    panic_text(&*p)
                );
            }
        });
        let mut acks = self.acks.list.to_vec();
        acks.push(hook);
        self.acks = Acks { list: acks.into() };
        self.list.push(i);
    }

    /// Runs every `on_send` in order.
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] from the first interceptor that rejects it.
    pub(crate) fn on_send(&self, record: &mut InterceptedRecord<'_, K, V>) -> Result<()> {
        for i in &self.list {
            let r = catch_unwind(AssertUnwindSafe(|| i.on_send(record)));
            match r {
                Ok(Ok(())) => {}
                Ok(Err(InterceptorError::Reject(reason))) => {
                    return Err(Error::Rejected {
                        topic: record.topic.to_string(),
                        interceptor: i.name().to_owned(),
                        reason,
                    })
                }
                Ok(Err(InterceptorError::Failed(why))) => {
                    log::warn!(
                        "interceptor {} failed in on_send (skipped, as Java does): {why}",
                        i.name()
                    );
                }
                Err(p) => {
                    log::warn!(
                        "interceptor {} panicked in on_send (skipped, as Java does): {}",
                        i.name(),
                        panic_text(&*p)
                    );
                }
            }
        }
        Ok(())
    }

    /// The acknowledgement side, for a record's callback to own.
    pub(crate) fn acks(&self) -> Acks {
        self.acks.clone()
    }
}

/// The interceptors' `on_acknowledgement`, shared by the callbacks of the
/// records sent through them.
#[derive(Clone)]
pub(crate) struct Acks {
    list: Arc<[AckHook]>,
}

impl Acks {
    /// Runs every `on_acknowledgement` in order; a panic is logged and
    /// skipped.
    pub(crate) fn on_acknowledgement(&self, topic: &str, result: &Result<RecordMetadata>) {
        for hook in self.list.iter() {
            hook(topic, result);
        }
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    struct Tag(&'static str, Arc<Mutex<Vec<String>>>);

    impl ProducerInterceptor<str, str> for Tag {
        fn on_send(&self, r: &mut InterceptedRecord<'_, str, str>) -> Result<(), InterceptorError> {
            self.1
                .lock()
                .push(format!("{}:{}", self.0, r.value().unwrap_or("-")));
            match self.0 {
                "fail" => return Err(InterceptorError::Failed("broken".into())),
                "panic" => panic!("boom"),
                "reject" if r.key().is_none() => {
                    return Err(InterceptorError::Reject("no key".into()))
                }
                _ => {}
            }
            let v = format!("{}+{}", r.value().unwrap_or(""), self.0);
            r.set_value(Some(v.into()));
            r.headers.push(Header::new(self.0, ""));
            Ok(())
        }

        fn on_acknowledgement(&self, topic: &str, result: &Result<RecordMetadata>) {
            self.1
                .lock()
                .push(format!("ack {}:{topic}:{}", self.0, result.is_ok()));
            if self.0 == "panic" {
                panic!("ack boom");
            }
        }

        fn name(&self) -> &str {
            self.0
        }
    }

    fn chain(names: &[&'static str]) -> (Interceptors<str, str>, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut c = Interceptors::default();
        for n in names {
            c.push(Tag(n, log.clone()));
        }
        (c, log)
    }

    #[test]
    fn chained_in_order_and_failures_skipped() {
        let (c, log) = chain(&["a", "fail", "panic", "b"]);
        let mut r = InterceptedRecord::new("t".into(), None, None, vec![], Some("k"), Some("v"));
        c.on_send(&mut r).unwrap();
        assert_eq!(r.value(), Some("v+a+b"));
        assert_eq!(r.key(), Some("k"));
        let names: Vec<&str> = r.headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(*log.lock(), ["a:v", "fail:v+a", "panic:v+a", "b:v+a"]);
        log.lock().clear();
        c.acks().on_acknowledgement("t", &Err(Error::Closed));
        assert_eq!(
            *log.lock(),
            [
                "ack a:t:false",
                "ack fail:t:false",
                "ack panic:t:false",
                "ack b:t:false"
            ]
        );
    }

    #[test]
    fn a_rejection_stops_the_chain_and_names_the_interceptor() {
        let (c, log) = chain(&["a", "reject", "b"]);
        let mut r =
            InterceptedRecord::<str, str>::new("t".into(), None, None, vec![], None, Some("v"));
        let e = c.on_send(&mut r).unwrap_err();
        match &e {
            Error::Rejected {
                topic,
                interceptor,
                reason,
            } => {
                assert_eq!(
                    (&**topic, &**interceptor, &**reason),
                    ("t", "reject", "no key")
                );
            }
            _ => panic!("{e:?}"),
        }
        assert!(
            e.to_string().contains("reject") && e.to_string().contains("no key"),
            "{e}"
        );
        assert_eq!(*log.lock(), ["a:v", "reject:v+a"]);
        // With a key it passes.
        let mut r = InterceptedRecord::new("t".into(), None, None, vec![], Some("k"), Some("v"));
        c.on_send(&mut r).unwrap();
        assert_eq!(r.value(), Some("v+a+reject+b"));
    }
}
