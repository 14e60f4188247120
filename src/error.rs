//! The public [`Error`] and [`Result`].
//!
//! One error type whose variants a caller can act on: fix the configuration,
//! shrink the record, back off and retry, look at the broker's error code,
//! or stop using a closed producer. Errors are `Clone` because one broker
//! answer completes every record of a batch.

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::ErrorCode;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which part of a record a serializer failed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordPart {
    /// The key.
    Key,
    /// The value.
    Value,
}

impl std::fmt::Display for RecordPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordPart::Key => "key",
            RecordPart::Value => "value",
        })
    }
}

/// Everything that can go wrong in this crate.
///
/// What `send` refuses comes back from `send`; what happens to an accepted
/// record comes back from its handle or callback. Each variant names the
/// key, topic, partition or broker at fault:
///
/// ```no_run
/// use kafka_producer::{Error, Producer, ProducerConfig, ProducerRecord, StringSerializer};
///
/// # fn main() -> Result<(), Error> {
/// let config = ProducerConfig::new().bootstrap_servers("localhost:9092");
/// let producer = Producer::new(config, StringSerializer, StringSerializer)?;
/// match producer.send(ProducerRecord::new("orders", "created")).and_then(|h| h.get()) {
///     Ok(meta) => println!("at offset {}", meta.offset()),
///     Err(Error::Broker { code, topic, partition, .. }) => {
///         eprintln!("{topic}-{partition} refused it: {code}")
///     }
///     Err(Error::DeliveryTimeout { elapsed_ms, stage, .. }) => {
///         eprintln!("not delivered after {elapsed_ms} ms ({stage})")
///     }
///     // Worth sending again (a broker error that may clear, a timeout, ...).
///     Err(e) if e.is_retriable() => eprintln!("retriable: {e}"),
///     Err(e) => return Err(e),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration key is unknown, or its value is invalid.
    #[error("invalid configuration `{key}`: {message}")]
    Config {
        /// The key (Java's property name).
        key: String,
        /// What is wrong with it.
        message: String,
    },

    /// The configuration asks for something this release does not do yet.
    /// Nothing is silently ignored: such settings are refused instead.
    #[error("configuration `{key}` = `{value}` is not supported yet: {detail}")]
    NotSupportedYet {
        /// The key.
        key: String,
        /// The value that was asked for.
        value: String,
        /// What is supported today.
        detail: String,
    },

    /// A serializer refused the record's key or value.
    #[error("failed to serialize the record's {part}: {source}")]
    Serialization {
        /// Key or value.
        part: RecordPart,
        /// The serializer's error.
        source: Arc<dyn std::error::Error + Send + Sync>,
    },

    /// The record's partition cannot be used: a custom partitioner returned
    /// a partition outside the topic, for example.
    #[error("invalid partition for topic {topic}: {message}")]
    InvalidPartition {
        /// The topic.
        topic: String,
        /// What was wrong.
        message: String,
    },

    /// The topic name is not one Kafka allows: empty, `.` or `..`, longer
    /// than 249 characters, or with a character other than ASCII letters,
    /// digits, `.`, `_` and `-` (Java's `Topic.validate`). Checked before
    /// the producer asks any broker about it.
    #[error("invalid topic name {topic:?}: {reason}")]
    InvalidTopic {
        /// The name as given.
        topic: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The record's timestamp is negative. Java's `ProducerRecord` refuses
    /// it with an `IllegalArgumentException`; a timestamp must be
    /// non-negative, or unset (`None`) for the time of `send`. The record
    /// was not sent.
    #[error("invalid timestamp {timestamp} for a record to topic {topic}: a timestamp must be non-negative, or None for the time of send")]
    InvalidTimestamp {
        /// The record's topic.
        topic: String,
        /// The timestamp it carried.
        timestamp: i64,
    },

    /// A [`ProducerInterceptor`](crate::ProducerInterceptor) refused the
    /// record in `on_send` ([`InterceptorError::Reject`](crate::InterceptorError::Reject)).
    /// The record was not sent; later interceptors did not see it.
    #[error("interceptor {interceptor} rejected a record to topic {topic}: {reason}")]
    Rejected {
        /// The record's topic (as the interceptors had left it).
        topic: String,
        /// The interceptor's [`name`](crate::ProducerInterceptor::name).
        interceptor: String,
        /// Why, in the interceptor's words.
        reason: String,
    },

    /// The serialized record is larger than a limit (`max.request.size` or
    /// `buffer.memory`). The record was not sent.
    #[error(
        "the record is {size} bytes when serialized, which is larger than {setting} ({limit})"
    )]
    RecordTooLarge {
        /// The record's size in a batch.
        size: usize,
        /// The limit it exceeds.
        limit: usize,
        /// The configuration key of that limit.
        setting: &'static str,
    },

    /// `send` waited `max.block.ms` for room in `buffer.memory` and got
    /// none. Java's `BufferExhaustedException`. Retriable: back off and send
    /// again, or give the producer more memory.
    #[error("failed to allocate {requested} bytes of buffer.memory within max.block.ms ({max_block_ms} ms)")]
    BufferExhausted {
        /// Bytes asked for.
        requested: usize,
        /// The configured `max.block.ms`.
        max_block_ms: u64,
    },

    /// The topic, or the record's partition, did not appear in metadata
    /// within `max.block.ms`.
    #[error("{}", metadata_timeout_message(.topic, *.partition, *.partition_count, *.waited_ms, .last_error.as_deref()))]
    MetadataTimeout {
        /// The topic.
        topic: String,
        /// The partition asked for, if one was.
        partition: Option<i32>,
        /// The partition count metadata reported, if the topic is known.
        partition_count: Option<usize>,
        /// How long `send` waited.
        waited_ms: u64,
        /// Why the last metadata fetch failed, if it did (a broker that
        /// cannot be resolved or reached, say): usually the real cause.
        last_error: Option<String>,
    },

    /// The record was not acknowledged within `delivery.timeout.ms` (Java's
    /// `TimeoutException` from batch expiry).
    #[error("expiring {record_count} record(s) for {topic}-{partition}: {elapsed_ms} ms has passed since batch creation ({stage})")]
    DeliveryTimeout {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// How many records of the batch expired.
        record_count: usize,
        /// Time since the batch was created.
        elapsed_ms: u64,
        /// Where the batch was: waiting in the accumulator, or in flight.
        stage: &'static str,
    },

    /// The broker answered with an error code for this record's partition
    /// (or, with `partition` -1, for its topic, in a metadata response).
    #[error("{}", broker_error_message(*.code, .topic, *.partition, .message.as_deref()))]
    Broker {
        /// The Kafka error code.
        code: ErrorCode,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The broker's message, if it sent one (Produce v8+).
        message: Option<String>,
    },

    /// A connection failed, or broke while the record was in flight.
    #[error("network error with broker {broker}: {message}")]
    Network {
        /// The broker (node id and address).
        broker: String,
        /// What happened.
        message: String,
    },

    /// The connection to a broker could not be authenticated: TLS failed
    /// (its certificate is not signed by a trusted CA, is not valid for
    /// the host name, has expired; it refused our client certificate; the
    /// port does not speak TLS, or speaks it to a plaintext client).
    /// Java's `AuthenticationException` (`SslAuthenticationException`):
    /// `send` and `partitions_for` fail with it at once rather than at
    /// `max.block.ms`, and queued records for that broker fail with it.
    /// Not retriable: the configuration (or the broker's) must change.
    #[error("authentication with broker {broker} failed: {message}")]
    Authentication {
        /// The broker (node id and address, or the bootstrap server).
        broker: String,
        /// What failed, and which setting to look at.
        message: String,
    },

    /// A broker does not speak a version of an API that we need.
    #[error("broker {broker} does not support {api} versions {min}-{max} (it supports {broker_min}-{broker_max})")]
    UnsupportedVersion {
        /// The broker.
        broker: String,
        /// The API's name.
        api: &'static str,
        /// Lowest version we send.
        min: i16,
        /// Highest version we send.
        max: i16,
        /// Lowest the broker accepts.
        broker_min: i16,
        /// Highest the broker accepts.
        broker_max: i16,
    },

    /// A broker sent bytes we could not decode.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// The producer is closed; `send` no longer accepts records.
    #[error("cannot send after the producer is closed")]
    Closed,

    /// The producer was closed before this record could be delivered (a
    /// `close_timeout` that ran out, say).
    #[error("the record was aborted before delivery: {0}")]
    Aborted(String),

    /// The producer cannot go on (Java's fatal errors): the broker refused
    /// it a producer id for good (no InitProducerId, or not authorized).
    /// Every queued record fails with it, and every later `send`; close the
    /// producer and make a new one, perhaps with `enable.idempotence=false`.
    #[error("the producer hit a fatal error and must be closed: {0}")]
    Fatal(String),

    /// The call is not allowed here (`flush` from a send callback, say).
    #[error("invalid operation: {0}")]
    InvalidOperation(String),

    /// A bug in this crate lost track of the record (a panic on an I/O
    /// thread, say). Whether the broker has it is unknown, so it is not
    /// retriable. Please report it.
    #[error("internal error: {0}")]
    Internal(String),

    /// A transaction or group coordinator answered a transactional request
    /// (FindCoordinator, InitProducerId, AddPartitionsToTxn,
    /// AddOffsetsToTxn, TxnOffsetCommit, EndTxn) with an error code. Comes
    /// wrapped in [`Error::TransactionFatal`] or
    /// [`Error::TransactionAbortable`]; [`Error::code`] sees through both.
    #[error("{api} failed with {code}")]
    Coordinator {
        /// Kafka's name of the API.
        api: &'static str,
        /// The error code.
        code: ErrorCode,
    },

    /// A transactional call (`init_transactions`, `commit_transaction`,
    /// `abort_transaction`, `send_offsets_to_transaction`) did not complete
    /// within `max.block.ms` (Java's `TimeoutException`). The operation goes
    /// on in the background: call the same method again to wait for it
    /// (it resumes, it does not start over); any other transactional call
    /// is refused until then.
    #[error("{operation} did not complete within max.block.ms ({waited_ms} ms); call it again to resume it")]
    TransactionTimeout {
        /// The method, e.g. `"commit_transaction"`.
        operation: &'static str,
        /// How long this call waited.
        waited_ms: u64,
    },

    /// The transactional producer cannot go on (Java's fatal errors:
    /// `ProducerFencedException` when a newer producer with the same
    /// `transactional.id` has called `init_transactions`, authorization
    /// failures, an unsupported broker). Every later transactional call and
    /// every `send` fails with this error; close the producer.
    #[error("transactional producer {transactional_id:?} has failed fatally: {cause}")]
    TransactionFatal {
        /// The producer's `transactional.id`.
        transactional_id: String,
        /// What happened.
        #[source]
        cause: Arc<Error>,
    },

    /// The open transaction cannot be committed (Java's abortable errors: a
    /// record of it was not delivered, or a coordinator refused a step):
    /// `commit_transaction` and `send` fail with this until
    /// `abort_transaction` is called; then a new transaction may begin.
    #[error("the transaction of {transactional_id:?} must be aborted: {cause}")]
    TransactionAbortable {
        /// The producer's `transactional.id`.
        transactional_id: String,
        /// What happened.
        #[source]
        cause: Arc<Error>,
    },

    /// `RecordFuture::get_timeout` gave up waiting; the record is still in
    /// flight and the future can be waited on again. Not retriable: the
    /// record may still be delivered, and sending it again could write it
    /// twice. Wait on the handle again instead.
    #[error("the record's result was not ready within {0:?}")]
    WaitTimeout(Duration),
}

fn metadata_timeout_message(
    topic: &str,
    partition: Option<i32>,
    count: Option<usize>,
    waited_ms: u64,
    last_error: Option<&str>,
) -> String {
    let mut m = match (partition, count) {
        (Some(p), Some(n)) => format!(
            "partition {p} of topic {topic} with partition count {n} is not present in metadata after {waited_ms} ms"
        ),
        _ => format!("topic {topic} not present in metadata after {waited_ms} ms"),
    };
    if let Some(e) = last_error {
        m.push_str("; last error: ");
        m.push_str(e);
    }
    m
}

fn broker_error_message(
    code: ErrorCode,
    topic: &str,
    partition: i32,
    message: Option<&str>,
) -> String {
    let place = if partition < 0 {
        format!("topic {topic}")
    } else {
        format!("{topic}-{partition}")
    };
    match message {
        Some(m) => format!("broker error {code} for {place}: {m}"),
        None => format!("broker error {code} for {place}"),
    }
}

/// Why Kafka would refuse `topic` as a name (Java's `Topic.validate`), if
/// it would.
pub(crate) fn topic_name_problem(topic: &str) -> Option<&'static str> {
    if topic.is_empty() {
        Some("a topic name cannot be empty")
    } else if topic == "." || topic == ".." {
        Some("a topic name cannot be \".\" or \"..\"")
    } else if topic.len() > 249 {
        Some("a topic name cannot be longer than 249 characters")
    } else if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("a topic name may hold only ASCII letters, digits, '.', '_' and '-'")
    } else {
        None
    }
}

impl Error {
    /// True if sending the same record again may succeed: a retriable
    /// broker code, a network error, a metadata or delivery timeout, or
    /// buffer exhaustion. [`Error::WaitTimeout`] is not: that record is
    /// still in flight, and sending it again could duplicate it.
    /// [`Error::TransactionTimeout`] is: calling the same transactional
    /// method again resumes it (Java's retriable `TimeoutException`).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Broker { code, .. } => code.is_retriable(),
            Error::TransactionTimeout { .. }
            | Error::Network { .. }
            | Error::BufferExhausted { .. }
            | Error::MetadataTimeout { .. }
            | Error::DeliveryTimeout { .. } => true,
            _ => false,
        }
    }

    /// The Kafka error code, for broker and coordinator errors (also when
    /// wrapped in a transaction error).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker { code, .. } | Error::Coordinator { code, .. } => Some(*code),
            Error::TransactionFatal { cause, .. } | Error::TransactionAbortable { cause, .. } => {
                cause.code()
            }
            _ => None,
        }
    }

    /// True for [`Error::TransactionFatal`] and [`Error::Fatal`]: the
    /// producer is unusable and must be closed.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::TransactionFatal { .. } | Error::Fatal(_))
    }

    /// True for [`Error::TransactionAbortable`]: call `abort_transaction`,
    /// then begin a new transaction.
    pub fn is_abortable(&self) -> bool {
        matches!(self, Error::TransactionAbortable { .. })
    }

    /// The error of a record the producer was closed before delivering.
    pub(crate) fn aborted() -> Error {
        Error::Aborted("the producer was closed before the record was delivered".into())
    }

    pub(crate) fn config(key: &str, message: impl Into<String>) -> Error {
        Error::Config {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_errors_name_the_topic_readably() {
        let e = |partition| Error::Broker {
            code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
            topic: "orders".into(),
            partition,
            message: Some("in the metadata response".into()),
        };
        let topic = e(-1).to_string();
        assert!(
            topic.contains("for topic orders: in the metadata response"),
            "{topic}"
        );
        assert!(!topic.contains("--1"), "{topic}");
        assert!(e(3).to_string().contains("for orders-3: "), "{}", e(3));
    }

    #[test]
    fn topic_names_follow_javas_rules() {
        for ok in ["t", "my.topic_1-x", &"a".repeat(249), "..."] {
            assert_eq!(topic_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "bad topic!",
            "a/b",
            "caf\u{e9}",
            &"a".repeat(250),
        ] {
            assert!(topic_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn a_metadata_timeout_says_what_the_last_fetch_hit() {
        let e = Error::MetadataTimeout {
            topic: "t".into(),
            partition: None,
            partition_count: None,
            waited_ms: 2000,
            last_error: Some("connecting to nohost.invalid:9092: failed to resolve".into()),
        };
        assert_eq!(
            e.to_string(),
            "topic t not present in metadata after 2000 ms; last error: connecting to \
             nohost.invalid:9092: failed to resolve"
        );
    }

    #[test]
    fn a_wait_timeout_is_not_retriable() {
        // The record is still in flight: sending it again could duplicate it.
        assert!(!Error::WaitTimeout(Duration::from_millis(5)).is_retriable());
        // What `send` refused, or what failed for good, may be sent again.
        assert!(Error::BufferExhausted {
            requested: 1,
            max_block_ms: 0
        }
        .is_retriable());
        assert!(Error::DeliveryTimeout {
            topic: "t".into(),
            partition: 0,
            record_count: 1,
            elapsed_ms: 1,
            stage: "in flight",
        }
        .is_retriable());
        assert!(!Error::Closed.is_retriable());
    }
}
