//! AddPartitionsToTxn (key 24), versions 0-3 (`AddPartitionsToTxnRequest.json`,
//! `AddPartitionsToTxnResponse.json`); flexible from v3.
//!
//! A transactional producer sends it to its transaction coordinator before
//! the first batch for a partition in a transaction, so the coordinator
//! knows which partitions to write markers to at the end (KIP-98).
//!
//! ```text
//! request:  TransactionalId STRING, ProducerId int64, ProducerEpoch int16,
//!           Topics [Name STRING, Partitions [int32]]
//! response: ThrottleTimeMs int32,
//!           ResultsByTopic [Name STRING,
//!                           ResultsByPartition [PartitionIndex int32, PartitionErrorCode int16]]
//! ```
//!
//! v1 is v0 (the broker answers before it throttles), v2 may answer
//! PRODUCER_FENCED, v3 is flexible. v4 and v5 are a different message, a
//! batch of transactions with `VerifyOnly`, that brokers send one another
//! (KIP-890): the spec says "versions 3 and below will be exclusively used
//! by clients and versions 4 and above will be used by brokers", and Java's
//! `AddPartitionsToTxnRequest.Builder.forClient` caps the version at 3
//! (`LAST_CLIENT_VERSION`). So we send at most v3, and the v4+ response
//! (a top-level error and results per transaction), which only answers a
//! v4+ request, is not modelled. Under transactions v2 (KIP-890 part 2) a
//! client sends no AddPartitionsToTxn at all: Produce v12+ adds the
//! partition itself.

use super::api::Api;
use super::partition_errors::{self, TopicPartitionErrors};
use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// The API: its key, the versions we send and where flexible versions
/// begin (see [`super::api`]).
pub const API: Api = Api {
    key: 24,
    name: "AddPartitionsToTxn",
    min_version: 0,
    max_version: 3,
    flexible_from: 3,
};
/// The API key.
pub const API_KEY: i16 = API.key;
/// The lowest version we send.
pub const MIN_VERSION: i16 = API.min_version;
/// The highest version we send: v4+ is for brokers only (see the module
/// docs).
pub const MAX_VERSION: i16 = API.max_version;

/// True if `version` uses compact types and tag buffers.
pub fn is_flexible(version: i16) -> bool {
    API.is_flexible(version)
}

/// The partitions of one topic to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnTopic {
    /// The topic.
    pub name: String,
    /// Its partition indexes.
    pub partitions: Vec<i32>,
}

/// The request body (the spec's `V3AndBelow*` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id it holds.
    pub producer_id: i64,
    /// That producer id's epoch.
    pub producer_epoch: i16,
    /// The partitions to add to the transaction.
    pub topics: Vec<AddPartitionsToTxnTopic>,
}

impl AddPartitionsToTxnRequest {
    /// Appends the body at `version`.
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        w.string(&self.transactional_id);
        w.i64(self.producer_id);
        w.i16(self.producer_epoch);
        w.array_len(self.topics.len());
        for t in &self.topics {
            w.string(&t.name);
            w.array_len(t.partitions.len());
            for p in &t.partitions {
                w.i32(*p);
            }
            w.tagged_fields_empty();
        }
        w.tagged_fields_empty();
    }

    /// Reads a body at `version` (used by tests and fakes).
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let transactional_id = d.string()?.to_owned();
        let producer_id = d.i64()?;
        let producer_epoch = d.i16()?;
        let (string, array, tags) = (d.min_string_size(), d.min_array_size(), d.min_tags_size());
        let topics = d.array_of(string + array + tags, |d| {
            let name = d.string()?.to_owned();
            let partitions = d.array_of(4, Decoder::i32)?;
            d.skip_tagged_fields()?;
            Ok(AddPartitionsToTxnTopic { name, partitions })
        })?;
        d.skip_tagged_fields()?;
        Ok(AddPartitionsToTxnRequest {
            transactional_id,
            producer_id,
            producer_epoch,
            topics,
        })
    }
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnResponse {
    /// How long the broker throttled the request (KIP-219).
    pub throttle_time_ms: i32,
    /// Per topic, per partition: 0 or why it was not added.
    pub results_by_topic: Vec<TopicPartitionErrors>,
}

impl AddPartitionsToTxnResponse {
    /// Reads a body sent for a request at `version`.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let (throttle_time_ms, results_by_topic) =
            partition_errors::decode_response(body, is_flexible(version))?;
        Ok(AddPartitionsToTxnResponse {
            throttle_time_ms,
            results_by_topic,
        })
    }

    /// Appends the body at `version` (used by tests and fakes).
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let flexible = is_flexible(version);
        partition_errors::encode_response(
            buf,
            flexible,
            self.throttle_time_ms,
            &self.results_by_topic,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::partition_errors::tests::unknown_tags;
    use crate::protocol::messages::partition_errors::PartitionError;
    use crate::protocol::messages::testing::ours_through_kafka_protocol;
    use kafka_protocol::messages::ProducerId;
    use kafka_protocol::protocol::Decodable;
    use proptest::prelude::*;

    // Hostile counts in the response are checked in `partition_errors`,
    // whose codec it is.

    fn request() -> AddPartitionsToTxnRequest {
        AddPartitionsToTxnRequest {
            transactional_id: "tx-1".into(),
            producer_id: 4000,
            producer_epoch: 3,
            topics: vec![
                AddPartitionsToTxnTopic {
                    name: "a".into(),
                    partitions: vec![0, 2],
                },
                AddPartitionsToTxnTopic {
                    name: "topic-b".into(),
                    partitions: vec![5],
                },
            ],
        }
    }

    #[test]
    fn requests_decode_with_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            let req = request();
            let mut buf = Vec::new();
            req.encode(&mut buf, v);
            let mut b = bytes::Bytes::from(buf.clone());
            let t = kafka_protocol::messages::AddPartitionsToTxnRequest::decode(&mut b, v).unwrap();
            assert!(b.is_empty(), "v{v}: bytes left over");
            assert_eq!(&**t.v3_and_below_transactional_id, "tx-1");
            assert_eq!(t.v3_and_below_producer_id, ProducerId(4000));
            assert_eq!(t.v3_and_below_producer_epoch, 3);
            let topics: Vec<(String, Vec<i32>)> = t
                .v3_and_below_topics
                .iter()
                .map(|t| (t.name.to_string(), t.partitions.clone()))
                .collect();
            assert_eq!(
                topics,
                vec![("a".into(), vec![0, 2]), ("topic-b".into(), vec![5])],
                "v{v}"
            );
            assert!(t.transactions.is_empty());
            assert_eq!(AddPartitionsToTxnRequest::decode(&buf, v).unwrap(), req);
        }
    }

    fn response() -> AddPartitionsToTxnResponse {
        let p = |partition_index, error_code| PartitionError {
            partition_index,
            error_code,
        };
        AddPartitionsToTxnResponse {
            throttle_time_ms: 5,
            results_by_topic: vec![
                TopicPartitionErrors {
                    name: "a".into(),
                    partitions: vec![p(0, 0), p(2, 51)],
                },
                TopicPartitionErrors {
                    name: "topic-b".into(),
                    partitions: vec![p(5, 90)],
                },
            ],
        }
    }

    #[test]
    fn responses_round_trip_through_kafka_protocol() {
        use kafka_protocol::messages::AddPartitionsToTxnResponse as Theirs;
        for v in MIN_VERSION..=MAX_VERSION {
            ours_through_kafka_protocol(
                v,
                is_flexible(v),
                &response(),
                AddPartitionsToTxnResponse::decode,
                AddPartitionsToTxnResponse::encode,
                |t: &Theirs| {
                    assert_eq!(t.throttle_time_ms, 5);
                    let r = &t.results_by_topic_v3_and_below[0].results_by_partition[1];
                    assert_eq!((r.partition_index, r.partition_error_code), (2, 51));
                },
                |t| {
                    let topic = &mut t.results_by_topic_v3_and_below[0];
                    topic.results_by_partition[0].unknown_tagged_fields = unknown_tags();
                    topic.unknown_tagged_fields = unknown_tags();
                    t.unknown_tagged_fields = unknown_tags();
                },
            );
        }
    }

    proptest! {
        #[test]
        fn truncated_responses_fail_cleanly(v in MIN_VERSION..=MAX_VERSION, cut in 0usize..400) {
            let mut buf = Vec::new();
            response().encode(&mut buf, v);
            let cut = cut % buf.len();
            prop_assert!(AddPartitionsToTxnResponse::decode(&buf[..cut], v).is_err());
        }

        #[test]
        fn hostile_responses_never_panic(v in MIN_VERSION..=MAX_VERSION, b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = AddPartitionsToTxnResponse::decode(&b, v);
        }

        #[test]
        fn requests_round_trip(
            v in MIN_VERSION..=MAX_VERSION,
            id in "[a-z0-9.-]{1,20}",
            producer_id in any::<i64>(),
            producer_epoch in any::<i16>(),
            topics in proptest::collection::vec(("[a-z]{1,10}", proptest::collection::vec(any::<i32>(), 0..5)), 0..4),
        ) {
            let req = AddPartitionsToTxnRequest {
                transactional_id: id,
                producer_id,
                producer_epoch,
                topics: topics.into_iter().map(|(name, partitions)| AddPartitionsToTxnTopic { name, partitions }).collect(),
            };
            let mut buf = Vec::new();
            req.encode(&mut buf, v);
            prop_assert_eq!(AddPartitionsToTxnRequest::decode(&buf, v).unwrap(), req);
        }
    }
}
