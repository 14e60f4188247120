//! An in-process Kafka cluster for tests: a model of brokers, topics,
//! partition leaders and logs that answers the requests a producer sends
//! as a Kafka 4 cluster would, with faults a test can inject, served on
//! 127.0.0.1 by [`MockCluster`]. Enabled by the `mock` cargo feature.
//!
//! It plays the part librdkafka's mock cluster and franz-go's `kfake` play
//! for their clients: a test starts one in a few milliseconds, points any
//! Kafka producer at [`MockCluster::bootstrap`] (this crate's, librdkafka,
//! Java's), scripts faults, and reads back exactly what was appended,
//! batch by batch, with offsets, producer ids and sequence numbers.
//!
//! ```
//! use std::time::Duration;
//! use kafka_producer::mock::{Api, Fault, MockCluster};
//! use kafka_producer::{ErrorCode, Producer, ProducerConfig, ProducerRecord, StringSerializer};
//!
//! let cluster = MockCluster::new(3)?;
//! cluster.create_topic("orders", 1)?;
//! // The first two Produce requests fail with a retriable error.
//! cluster.inject(Fault::error(Api::Produce, ErrorCode::NOT_LEADER_OR_FOLLOWER).times(2))?;
//!
//! let config = ProducerConfig::new()
//!     .bootstrap_servers(cluster.bootstrap())
//!     .retry_backoff(Duration::from_millis(10));
//! let producer = Producer::new(config, StringSerializer, StringSerializer)?;
//! producer.send(ProducerRecord::with_key("orders", "k", "v"))?.get()?;
//! producer.close()?;
//!
//! // The record is in the log once, at offset 0, although it was sent three times.
//! let records = cluster.records("orders", 0)?;
//! assert_eq!(records.len(), 1);
//! assert_eq!(records[0].offset, 0);
//! assert_eq!(records[0].value.as_deref(), Some(&b"v"[..]));
//! assert_eq!(cluster.stats().faults_fired, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The model ([`Model`]) is sans-IO: request bytes in, response bytes out,
//! `now` passed in. [`MockCluster`] drives it with threads and real
//! sockets; a deterministic simulation can drive the same model on one
//! thread with a virtual clock.
//!
//! Fetch and ListOffsets are served too, so a consumer that assigns its
//! partitions (librdkafka's and Java's are tested, at either isolation
//! level) can read the logs back; a Fetch with nothing
//! to return waits up to its `max_wait_ms` (the [`Outcome`]'s delay).
//!
//! What it does not model: replication (every replica is always in sync,
//! so `acks` only decides whether there is an answer), consumer groups
//! (Fetch and ListOffsets only; no fetch sessions),
//! transactions v2 (KIP-890 part 2), TLS and SASL, topic ids (Metadata
//! v10+ carries the zero id), quotas.

mod fetch;
mod model;
mod partition;
mod server;
pub mod sim;
mod txn;
mod wire;

use std::ops::RangeInclusive;

pub use self::model::{Action, MockStats, Model, Outcome};
pub use self::partition::{ControlType, MockBatch, MockRecord, Visibility};
pub use self::server::MockCluster;
use crate::protocol::ErrorCode;

/// The APIs the model serves, with the versions it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Api {
    /// Produce (key 0), v3-12.
    Produce,
    /// Fetch (key 1), v4-12: enough for a consumer to read the logs back.
    Fetch,
    /// ListOffsets (key 2), v1-7.
    ListOffsets,
    /// Metadata (key 3), v0-12.
    Metadata,
    /// FindCoordinator (key 10), v0-6.
    FindCoordinator,
    /// ApiVersions (key 18), v0-4.
    ApiVersions,
    /// InitProducerId (key 22), v0-5.
    InitProducerId,
    /// AddPartitionsToTxn (key 24), v0-3 (the client versions).
    AddPartitionsToTxn,
    /// AddOffsetsToTxn (key 25), v0-4.
    AddOffsetsToTxn,
    /// EndTxn (key 26), v0-4 (v5 is transactions v2).
    EndTxn,
    /// TxnOffsetCommit (key 28), v0-4 (v5 is transactions v2).
    TxnOffsetCommit,
}

impl Api {
    /// Every API the model serves, as ApiVersions lists them.
    pub const ALL: [Api; 11] = [
        Api::Produce,
        Api::Fetch,
        Api::ListOffsets,
        Api::Metadata,
        Api::FindCoordinator,
        Api::ApiVersions,
        Api::InitProducerId,
        Api::AddPartitionsToTxn,
        Api::AddOffsetsToTxn,
        Api::EndTxn,
        Api::TxnOffsetCommit,
    ];

    /// The API key.
    pub fn key(self) -> i16 {
        match self {
            Api::Produce => 0,
            Api::Fetch => 1,
            Api::ListOffsets => 2,
            Api::Metadata => 3,
            Api::FindCoordinator => 10,
            Api::ApiVersions => 18,
            Api::InitProducerId => 22,
            Api::AddPartitionsToTxn => 24,
            Api::AddOffsetsToTxn => 25,
            Api::EndTxn => 26,
            Api::TxnOffsetCommit => 28,
        }
    }

    /// The API with this key, if the model serves it.
    pub fn from_key(key: i16) -> Option<Api> {
        Api::ALL.into_iter().find(|a| a.key() == key)
    }

    /// The versions the model answers (and advertises in ApiVersions).
    /// Produce stops at v12 (v13 names topics by id); the transaction APIs
    /// stop before their transactions-v2 versions.
    pub fn versions(self) -> RangeInclusive<i16> {
        match self {
            Api::Produce => 3..=12,
            // v13+ names topics by id; ListOffsets v8+ adds tiered-storage timestamps.
            Api::Fetch => 4..=12,
            Api::ListOffsets => 1..=7,
            Api::Metadata => 0..=12,
            Api::FindCoordinator => 0..=6,
            Api::ApiVersions => 0..=4,
            Api::InitProducerId => 0..=5,
            Api::AddPartitionsToTxn => 0..=3,
            Api::AddOffsetsToTxn => 0..=4,
            Api::EndTxn => 0..=4,
            Api::TxnOffsetCommit => 0..=4,
        }
    }
}

/// How a partition leader answers the resend of a batch it already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicateAnswer {
    /// Success with the offset the batch was first written at: what Kafka
    /// 1.0 and later do.
    #[default]
    OriginalOffset,
    /// DUPLICATE_SEQUENCE_NUMBER with no offset: what Kafka 0.11 did, and
    /// what clients must still accept as a success.
    DuplicateSequenceNumber,
}

/// How the cluster is set up.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// How many brokers (ids 1..=brokers). Default 3.
    pub brokers: usize,
    /// Partitions of a topic created by a Metadata request. Default 4.
    pub default_partitions: i32,
    /// Whether Metadata requests create missing topics
    /// (`auto.create.topics.enable`). Default true.
    pub auto_create_topics: bool,
    /// The largest record batch a partition accepts (`max.message.bytes`);
    /// a larger one is answered MESSAGE_TOO_LARGE. Default 1048588, Kafka's.
    pub max_message_bytes: usize,
    /// How a resent batch is answered. Default [`DuplicateAnswer::OriginalOffset`].
    pub duplicate_answer: DuplicateAnswer,
    /// The cluster id Metadata v2+ reports.
    pub cluster_id: String,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            brokers: 3,
            default_partitions: 4,
            auto_create_topics: true,
            max_message_bytes: 1_048_588,
            duplicate_answer: DuplicateAnswer::OriginalOffset,
            cluster_id: "kafka-producer-mock".to_string(),
        }
    }
}

/// What a fault does to the request it fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this error code (in every partition or top-level error
    /// field of the response), without carrying the request out.
    Error(ErrorCode),
    /// Carry the request out (a Produce is appended), then close the
    /// connection without answering.
    DropResponse,
    /// Close the connection without carrying the request out.
    Cut,
    /// Keep the request unanswered, and the connection's later requests
    /// behind it, until [`MockCluster::release`].
    Hold,
}

/// A fault for the next `count` requests of one API, on one broker or any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The API whose requests it fires on.
    pub api: Api,
    /// The broker it fires on; `None` for any.
    pub broker: Option<i32>,
    /// What it does.
    pub kind: FaultKind,
    /// How many requests it fires on.
    pub count: u32,
}

impl Fault {
    fn new(api: Api, kind: FaultKind) -> Fault {
        Fault {
            api,
            broker: None,
            kind,
            count: 1,
        }
    }

    /// Answer the next request of `api` with `code`.
    pub fn error(api: Api, code: ErrorCode) -> Fault {
        Fault::new(api, FaultKind::Error(code))
    }

    /// Carry out the next request of `api`, then lose its answer and close the connection.
    pub fn drop_response(api: Api) -> Fault {
        Fault::new(api, FaultKind::DropResponse)
    }

    /// Close the connection the next request of `api` arrives on, unanswered.
    pub fn cut(api: Api) -> Fault {
        Fault::new(api, FaultKind::Cut)
    }

    /// Hold the next request of `api` until released.
    pub fn hold(api: Api) -> Fault {
        Fault::new(api, FaultKind::Hold)
    }

    /// Fire on the next `count` requests instead of one.
    pub fn times(self, count: u32) -> Fault {
        Fault { count, ..self }
    }

    /// Fire only on requests to broker `id`.
    pub fn on_broker(self, id: i32) -> Fault {
        Fault {
            broker: Some(id),
            ..self
        }
    }
}

/// What a mock cluster refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// No broker has this id.
    #[error("mock cluster: no broker {0}")]
    UnknownBroker(i32),
    /// The broker is down.
    #[error("mock cluster: broker {0} is down")]
    BrokerDown(i32),
    /// The topic exists already.
    #[error("mock cluster: topic {0:?} exists")]
    TopicExists(String),
    /// A topic name Kafka refuses, or fewer than 1 partition.
    #[error("mock cluster: cannot create topic {topic:?} with {partitions} partitions")]
    InvalidTopic {
        /// The name asked for.
        topic: String,
        /// The partition count asked for.
        partitions: i32,
    },
    /// No such topic or partition.
    #[error("mock cluster: no partition {topic}-{partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A configuration the cluster cannot start with.
    #[error("mock cluster: {0}")]
    Config(String),
    /// A socket could not be opened.
    #[error("mock cluster: {0}")]
    Io(#[from] std::io::Error),
}
