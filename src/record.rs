//! Plain values: [`ProducerRecord`], [`Header`], [`RecordMetadata`] and
//! [`PartitionInfo`].
//!
//! They mirror Java's `ProducerRecord`, `Header`, `RecordMetadata` and
//! `PartitionInfo`. A record borrows or owns its key and value as the caller
//! likes (`ProducerRecord<&str, &[u8]>` or `ProducerRecord<String, Vec<u8>>`);
//! the producer's serializers turn them into bytes.

use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

/// A key or value that can be sent by a producer whose serializer takes a
/// `T`: the record holds a `Self`, the serializer sees `&T`.
///
/// Implemented for `T` itself and `&T` (any type), and for the usual ways
/// of holding strings and bytes: a `Producer<str, _>` takes `String`,
/// `&String`, `&str`, `Box<str>`, `Cow<str>`, `Arc<str>` and `Rc<str>`
/// keys; a `Producer<[u8], _>` takes `Vec<u8>`, `&Vec<u8>`, `&[u8]`,
/// `[u8; N]`, `&[u8; N]`, `Box<[u8]>`, `Cow<[u8]>`, `Arc<[u8]>` and
/// `Rc<[u8]>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent where the producer's serializer takes `{T}`",
    note = "a Producer<str, _> takes String, &String, &str, Cow<str>...; a Producer<[u8], _> takes Vec<u8>, &[u8]...; implement `Data<{T}>` for other types"
)]
pub trait Data<T: ?Sized> {
    /// The data, as the serializer takes it.
    fn data(&self) -> &T;
}

impl<T> Data<T> for T {
    fn data(&self) -> &T {
        self
    }
}

impl<T: ?Sized> Data<T> for &T {
    fn data(&self) -> &T {
        self
    }
}

macro_rules! data_via_deref {
    ($target:ty: $($t:ty),* $(,)?) => {$(
        impl Data<$target> for $t {
            fn data(&self) -> &$target {
                self
            }
        }
    )*};
}
data_via_deref!(str: String, &String, Box<str>, Arc<str>, Rc<str>);
data_via_deref!([u8]: Vec<u8>, &Vec<u8>, Box<[u8]>, Arc<[u8]>, Rc<[u8]>);

impl Data<str> for Cow<'_, str> {
    fn data(&self) -> &str {
        self
    }
}

impl Data<[u8]> for Cow<'_, [u8]> {
    fn data(&self) -> &[u8] {
        self
    }
}

impl<const N: usize> Data<[u8]> for [u8; N] {
    fn data(&self) -> &[u8] {
        self
    }
}

impl<const N: usize> Data<[u8]> for &[u8; N] {
    fn data(&self) -> &[u8] {
        *self
    }
}

/// The type of an absent key or value: a record built with
/// [`ProducerRecord::new`] has a `Null` key, one built with
/// [`ProducerRecord::tombstone`] a `Null` value. It has no values, so it is
/// never serialized; it only tells the compiler which type the missing part
/// has, so `ProducerRecord::new("topic", "value")` needs no annotation.
///
/// It stands in for every type the built-in serializers take. For a custom
/// key type `MyKey`, keyless records work once you add
/// `impl Data<MyKey> for Null { fn data(&self) -> &MyKey { match *self {} } }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Null {}

macro_rules! null_data {
    ($($t:ty),*) => {$(
        impl Data<$t> for Null {
            fn data(&self) -> &$t {
                match *self {}
            }
        }
    )*};
}
null_data!([u8], str, Vec<u8>, String, i16, i32, i64, f32, f64);

/// A record header: a string key and a nullable byte value.
///
/// ```
/// use kafka_producer::{Header, ProducerRecord};
///
/// let record = ProducerRecord::new("orders", "created")
///     .header(Header::new("trace-id", "4bf92f35"))
///     .header(Header { key: "reason".into(), value: None });
/// assert_eq!(record.headers.len(), 2);
/// assert_eq!(record.headers[0].value.as_deref(), Some(&b"4bf92f35"[..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header's key.
    pub key: String,
    /// The header's value; `None` is null.
    pub value: Option<Vec<u8>>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// A header whose value is null.
    pub fn null(key: impl Into<String>) -> Self {
        Header {
            key: key.into(),
            value: None,
        }
    }
}

/// A record to send: topic, optional partition, optional timestamp,
/// optional key, optional value (a null value is a tombstone) and headers.
///
/// The constructors mirror Java's:
///
/// | Java | here |
/// |---|---|
/// | `ProducerRecord(topic, value)` | [`ProducerRecord::new`] |
/// | `ProducerRecord(topic, key, value)` | [`ProducerRecord::with_key`] |
/// | `ProducerRecord(topic, partition, key, value[, headers])` | [`ProducerRecord::with_partition`] |
/// | `ProducerRecord(topic, partition, timestamp, key, value[, headers])` | [`ProducerRecord::with_timestamp`] |
///
/// With `with_partition` and `with_timestamp`, a `None` key or value needs
/// its type spelled (`None::<&str>`); the builder methods on a record from
/// `new` or `with_key` avoid that.
///
/// and the builder methods [`partition`](Self::partition),
/// [`timestamp`](Self::timestamp), [`header`](Self::header) and
/// [`headers`](Self::headers) set the rest.
///
/// ```
/// use kafka_producer::{Header, ProducerRecord};
/// let r = ProducerRecord::with_key("orders", "customer-7", "{\"total\":12}")
///     .header(Header::new("source", "web"))
///     .timestamp(1_700_000_000_000);
/// assert_eq!(r.key, Some("customer-7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord<'t, K, V> {
    /// The topic.
    pub topic: Cow<'t, str>,
    /// The partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// Milliseconds since the Unix epoch; `None` uses the time of `send`.
    /// A negative timestamp is refused by `send`
    /// ([`Error::InvalidTimestamp`](crate::Error::InvalidTimestamp)), as
    /// Java refuses it.
    pub timestamp: Option<i64>,
    /// The key; `None` is a null key.
    pub key: Option<K>,
    /// The value; `None` is a null value (a tombstone).
    pub value: Option<V>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

impl<'t, V> ProducerRecord<'t, Null, V> {
    /// A record with a value and no key: Java's `ProducerRecord(topic, value)`.
    pub fn new(topic: impl Into<Cow<'t, str>>, value: V) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            timestamp: None,
            key: None,
            value: Some(value),
            headers: Vec::new(),
        }
    }
}

impl<'t, K> ProducerRecord<'t, K, Null> {
    /// A record with a key and a null value: a tombstone for a compacted
    /// topic.
    pub fn tombstone(topic: impl Into<Cow<'t, str>>, key: K) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            timestamp: None,
            key: Some(key),
            value: None,
            headers: Vec::new(),
        }
    }
}

impl<'t, K, V> ProducerRecord<'t, K, V> {
    /// A keyed record: Java's `ProducerRecord(topic, key, value)`.
    pub fn with_key(topic: impl Into<Cow<'t, str>>, key: K, value: V) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            timestamp: None,
            key: Some(key),
            value: Some(value),
            headers: Vec::new(),
        }
    }

    /// A record for an explicit partition: Java's
    /// `ProducerRecord(topic, partition, key, value)`.
    pub fn with_partition(
        topic: impl Into<Cow<'t, str>>,
        partition: i32,
        key: Option<K>,
        value: Option<V>,
    ) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: Some(partition),
            timestamp: None,
            key,
            value,
            headers: Vec::new(),
        }
    }

    /// Every field: Java's `ProducerRecord(topic, partition, timestamp, key,
    /// value, headers)`.
    pub fn with_timestamp(
        topic: impl Into<Cow<'t, str>>,
        partition: Option<i32>,
        timestamp: Option<i64>,
        key: Option<K>,
        value: Option<V>,
        headers: Vec<Header>,
    ) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition,
            timestamp,
            key,
            value,
            headers,
        }
    }

    /// Sets the partition.
    #[must_use]
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the timestamp, in milliseconds since the Unix epoch. It must
    /// not be negative: `send` refuses such a record with
    /// [`Error::InvalidTimestamp`](crate::Error::InvalidTimestamp).
    #[must_use]
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// Appends a header.
    #[must_use]
    pub fn header(mut self, header: Header) -> Self {
        self.headers.push(header);
        self
    }

    /// Replaces the headers.
    #[must_use]
    pub fn headers(mut self, headers: Vec<Header>) -> Self {
        self.headers = headers;
        self
    }
}

/// What the broker said about a delivered record (Java's `RecordMetadata`).
///
/// ```no_run
/// use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};
///
/// # fn main() -> Result<(), kafka_producer::Error> {
/// let config = ProducerConfig::new().bootstrap_servers("localhost:9092");
/// let producer = Producer::new(config, StringSerializer, StringSerializer)?;
/// let meta = producer
///     .send(ProducerRecord::with_key("orders", "customer-7", "created"))?
///     .get()?;
/// // acks=0 gives no offset: check before relying on it.
/// if meta.has_offset() {
///     let (t, p, o) = (meta.topic(), meta.partition(), meta.offset());
///     println!("{t}-{p} @ {o}, timestamp {}", meta.timestamp());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) serialized_key_size: i32,
    pub(crate) serialized_value_size: i32,
}

impl RecordMetadata {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The record's offset in the partition, or -1 if unknown (acks=0).
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// True if the offset is known.
    pub fn has_offset(&self) -> bool {
        self.offset >= 0
    }

    /// The record's timestamp: the broker's LogAppendTime if the topic uses
    /// it, otherwise the record's CreateTime.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// True if the timestamp is known.
    pub fn has_timestamp(&self) -> bool {
        self.timestamp >= 0
    }

    /// Bytes of the serialized key, or -1 for a null key.
    pub fn serialized_key_size(&self) -> i32 {
        self.serialized_key_size
    }

    /// Bytes of the serialized value, or -1 for a null value.
    pub fn serialized_value_size(&self) -> i32 {
        self.serialized_value_size
    }
}

impl std::fmt::Display for RecordMetadata {
    /// `topic-partition@offset`, as Java prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}@{}", self.topic, self.partition, self.offset)
    }
}

/// One partition of a topic, as metadata describes it (Java's
/// `PartitionInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The leader's node id, or `None` if the partition has no leader now.
    pub leader: Option<i32>,
    /// Node ids of all replicas.
    pub replicas: Vec<i32>,
    /// Node ids of the in-sync replicas.
    pub in_sync_replicas: Vec<i32>,
    /// Node ids of offline replicas.
    pub offline_replicas: Vec<i32>,
}
