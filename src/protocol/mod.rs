//! The Kafka wire protocol: primitives, RecordBatch v2 and its compression,
//! error codes, and the messages a producer sends (ApiVersions, Metadata,
//! Produce, and the idempotence and transaction APIs).
//!
//! Knows no threads, sockets or configuration: everything here encodes into
//! a `&mut Vec<u8>` or decodes from a `&[u8]`. The reference is Kafka's
//! message specs (`clients/src/main/resources/common/message/*.json`) and
//! the protocol guide; every request we send is checked at every version we
//! send against an independent decoder (the `kafka-protocol` crate) in tests.

pub mod compression;
pub mod error;
pub mod messages;
pub mod primitives;
pub mod records;

pub use error::ErrorCode;

/// Why bytes from the network could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended early.
    #[error("input truncated at offset {offset}: {needed} more bytes needed")]
    Truncated {
        /// Where the read started.
        offset: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// The input is malformed.
    #[error("invalid input at offset {offset}: {what}")]
    Invalid {
        /// What was wrong.
        what: &'static str,
        /// Where.
        offset: usize,
    },
}
