//! A pure-Rust, synchronous Apache Kafka producer with the Java
//! `KafkaProducer`'s semantics and configuration.
//!
//! * No C toolchain, no async runtime, no poll loop to call: `send` returns
//!   a handle you can wait on, or takes a callback that runs when the broker
//!   answers.
//! * Java's property names and defaults ([`ProducerConfig`]), Java's
//!   `send`/`flush`/`close` rules, and Java's partitioner: keyed records go
//!   where a Java producer would put them (murmur2), keyless ones use the
//!   uniform sticky partitioner (KIP-794).
//! * Bounded memory: records wait in at most `buffer.memory` bytes; a full
//!   buffer makes `send` block up to `max.block.ms`, then fail with
//!   [`Error::BufferExhausted`].
//! * Every record `send` accepts gets exactly one outcome.
//! * Speaks Kafka 4's protocol baseline (Produce v3+, RecordBatch v2) and
//!   negotiates versions per broker, down to older brokers.
//!
//! ```no_run
//! use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};
//!
//! let config = ProducerConfig::from_pairs([
//!     ("bootstrap.servers", "localhost:9092"),
//!     ("linger.ms", "10"),
//! ])?;
//! let producer = Producer::new(config, StringSerializer, StringSerializer)?;
//! for i in 0..5 {
//!     let key = format!("key-{i}");
//!     let meta = producer
//!         .send(ProducerRecord::with_key("my-topic", key.as_str(), "hello"))?
//!         .get()?;
//!     println!("{key} -> partition {} offset {}", meta.partition(), meta.offset());
//! }
//! producer.close()?;
//! # Ok::<(), kafka_producer::Error>(())
//! ```
//!
//! The producer is idempotent by default, as Java's, and compresses with
//! gzip, snappy, lz4 or zstd.
//!
//! * Transactions (`transactional.id`): [`Producer::init_transactions`],
//!   `begin_transaction`, `send_offsets_to_transaction`,
//!   `commit_transaction`, `abort_transaction`, with Java's semantics: the
//!   transactions v2 protocol flow (KIP-890) where the cluster finalizes
//!   `transaction.version` >= 2, as Kafka 4 does, and v1 elsewhere.
//!
//! * Testing: with the `mock` feature, `kafka_producer::mock::MockCluster`
//!   is an in-process Kafka cluster on 127.0.0.1 that any producer can
//!   write to, with faults you script and a log you read back.
//!
//! * Metrics with Java's names ([`Producer::metrics`]), a statistics
//!   callback every `statistics.interval.ms`
//!   ([`ProducerConfig::statistics_callback`]), interceptors
//!   ([`ProducerInterceptor`], [`Producer::with_interceptor`]) and KIP-219
//!   quota throttling.
//!
//! * TLS (`security.protocol=SSL`, rustls): PEM trust and client
//!   certificates as Java (KIP-651) or librdkafka names them, host name
//!   verification, [`Error::Authentication`] for every refusal. See the
//!   README's "Security".
//!
//! * SASL (`SASL_PLAINTEXT`, `SASL_SSL`): PLAIN, SCRAM-SHA-256/512 and
//!   OAUTHBEARER (a token provider, [`ProducerConfig::oauth_token_provider`],
//!   or Java's unsecured tokens), `sasl.jaas.config` as Java writes it,
//!   KIP-368 re-authentication. See the README's "Security (SASL)".
//!
//! Not implemented (refused with [`Error::NotSupportedYet`] when
//! configured, never ignored): Kerberos (GSSAPI), Java callback classes,
//! OAuth token endpoints. See the README for the plan.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accumulator;
mod clock;
pub mod config;
mod error;
mod future;
mod interceptor;
mod io;
mod lifecycle;
mod metadata;
mod metrics;
#[cfg(feature = "mock")]
pub mod mock;
pub mod partitioner;
mod producer;
/// The wire protocol: internal. Tests, benches and the fuzz targets reach
/// it through the `internals` feature; it is not part of the public API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod protocol;
// Without the feature, what only the tests use (response encoders, the
// codecs of APIs the producer does not send yet) is dead code here.
#[cfg(not(feature = "internals"))]
#[allow(dead_code)]
mod protocol;
mod record;
mod sasl;
pub mod serialize;
mod transaction;
mod util;

/// The README's examples are compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use config::{Acks, MetadataRecoveryStrategy, ProducerConfig, SecurityProtocol};
pub use error::{Error, RecordPart, Result};
pub use future::RecordFuture;
pub use interceptor::{InterceptedRecord, InterceptorError, ProducerInterceptor};
pub use metadata::{Cluster, Node};
pub use metrics::{Metric, MetricsSnapshot, StatisticsCallback};
pub use partitioner::{
    murmur2, murmur2_partition, LibrdkafkaPartitioner, Partitioner, RoundRobinPartitioner,
};
pub use producer::Producer;
pub use protocol::compression::Compression;
pub use protocol::ErrorCode;
pub use record::{Data, Header, Null, PartitionInfo, ProducerRecord, RecordMetadata};
pub use sasl::{OAuthToken, OAuthTokenResult};
pub use serialize::{
    ByteArraySerializer, DoubleSerializer, FloatSerializer, IntegerSerializer, LongSerializer,
    SerializeError, Serializer, ShortSerializer, StringSerializer,
};
pub use transaction::{ConsumerGroupMetadata, OffsetToCommit};
