//! TxnOffsetCommit (key 28), versions 0-5 (`TxnOffsetCommitRequest.json`,
//! `TxnOffsetCommitResponse.json`); flexible from v3.
//!
//! After AddOffsetsToTxn, `send_offsets_to_transaction` sends the offsets
//! to the group coordinator in this request; they become visible when the
//! transaction commits (KIP-98).
//!
//! ```text
//! request:  TransactionalId STRING, GroupId STRING, ProducerId int64, ProducerEpoch int16,
//!           v3+: GenerationId int32, MemberId STRING, GroupInstanceId NULLABLE_STRING,
//!           Topics [Name STRING,
//!                   Partitions [PartitionIndex int32, CommittedOffset int64,
//!                               v2+: CommittedLeaderEpoch int32,
//!                               CommittedMetadata NULLABLE_STRING]]
//! response: ThrottleTimeMs int32,
//!           Topics [Name STRING, Partitions [PartitionIndex int32, ErrorCode int16]]
//! ```
//!
//! v1 is v0 (the broker answers before it throttles); v2 adds the leader
//! epoch; v3 (KIP-447) adds the consumer group metadata, so the coordinator
//! can fence a zombie member (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
//! FENCED_INSTANCE_ID), and is flexible; v4 tells the broker we understand
//! TRANSACTION_ABORTABLE (KIP-890). Below v3 the group metadata cannot be
//! sent: Java refuses to build such a request when it is set
//! (`UnsupportedVersionException`), and so must whoever picks the version
//! here ([`TxnOffsetCommitRequest::has_group_metadata`],
//! [`GROUP_METADATA_VERSION`]); [`TxnOffsetCommitRequest::encode`] would
//! drop it. v5 has v4's fields but means more: the coordinator also adds
//! the group's offsets partition to the transaction (transactions v2,
//! KIP-890 part 2), and the spec says "if V2 is disabled, the client can't
//! use TxnOffsetCommit request version higher than 4 within a transaction".
//! So the caller sends v5 only in the transactions v2 flow (then without
//! AddOffsetsToTxn, as Java does), and at most [`TXN_V1_MAX_VERSION`]
//! otherwise.

use super::api::Api;
use super::partition_errors::{self, TopicPartitionErrors};
use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// The API: its key, the versions we send and where flexible versions
/// begin (see [`super::api`]).
pub const API: Api = Api {
    key: 28,
    name: "TxnOffsetCommit",
    min_version: 0,
    max_version: 5,
    flexible_from: 3,
};
/// The API key.
pub const API_KEY: i16 = API.key;
/// The lowest version we send.
pub const MIN_VERSION: i16 = API.min_version;
/// The highest version we send: v5, in the transactions v2 flow only (see
/// the module docs).
pub const MAX_VERSION: i16 = API.max_version;
/// The highest version of the transactions v1 flow.
pub const TXN_V1_MAX_VERSION: i16 = 4;
/// The first version that carries the consumer group metadata.
pub const GROUP_METADATA_VERSION: i16 = 3;

/// True if `version` uses compact types and tag buffers.
pub fn is_flexible(version: i16) -> bool {
    API.is_flexible(version)
}

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequestPartition {
    /// The partition.
    pub partition_index: i32,
    /// The offset to commit: the next record to consume.
    pub committed_offset: i64,
    /// v2+: the leader epoch of the last consumed record, -1 if unknown.
    pub committed_leader_epoch: i32,
    /// Metadata kept with the offset, or null.
    pub committed_metadata: Option<String>,
}

/// One topic's offsets to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequestTopic {
    /// The topic.
    pub name: String,
    /// Its partitions.
    pub partitions: Vec<TxnOffsetCommitRequestPartition>,
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The consumer group.
    pub group_id: String,
    /// The producer id the transactional id holds.
    pub producer_id: i64,
    /// That producer id's epoch.
    pub producer_epoch: i16,
    /// v3+: the consumer's generation, -1 when not a member.
    pub generation_id: i32,
    /// v3+: the member id the group coordinator gave it, "" when none.
    pub member_id: String,
    /// v3+: its static membership id (KIP-345), or null.
    pub group_instance_id: Option<String>,
    /// The offsets.
    pub topics: Vec<TxnOffsetCommitRequestTopic>,
}

impl TxnOffsetCommitRequest {
    /// True if the group metadata differs from "not a member" (generation
    /// -1, member id "", no instance id), which only v3+ can carry: as
    /// Java's `groupMetadataSet`.
    pub fn has_group_metadata(&self) -> bool {
        self.generation_id != -1 || !self.member_id.is_empty() || self.group_instance_id.is_some()
    }

    /// Appends the body at `version`. Below v3 the group metadata is not
    /// written (see [`TxnOffsetCommitRequest::has_group_metadata`]), below
    /// v2 the leader epochs are not.
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        w.string(&self.transactional_id);
        w.string(&self.group_id);
        w.i64(self.producer_id);
        w.i16(self.producer_epoch);
        if version >= GROUP_METADATA_VERSION {
            w.i32(self.generation_id);
            w.string(&self.member_id);
            w.nullable_string(self.group_instance_id.as_deref());
        }
        w.array_len(self.topics.len());
        for t in &self.topics {
            w.string(&t.name);
            w.array_len(t.partitions.len());
            for p in &t.partitions {
                w.i32(p.partition_index);
                w.i64(p.committed_offset);
                if version >= 2 {
                    w.i32(p.committed_leader_epoch);
                }
                w.nullable_string(p.committed_metadata.as_deref());
                w.tagged_fields_empty();
            }
            w.tagged_fields_empty();
        }
        w.tagged_fields_empty();
    }

    /// Reads a body at `version` (used by tests and fakes); fields `version`
    /// lacks take their defaults (-1, "", null).
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let mut r = TxnOffsetCommitRequest {
            transactional_id: d.string()?.to_owned(),
            group_id: d.string()?.to_owned(),
            producer_id: d.i64()?,
            producer_epoch: d.i16()?,
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            topics: Vec::new(),
        };
        if version >= GROUP_METADATA_VERSION {
            r.generation_id = d.i32()?;
            r.member_id = d.string()?.to_owned();
            r.group_instance_id = d.nullable_string()?.map(str::to_owned);
        }
        let (string, array, tags) = (d.min_string_size(), d.min_array_size(), d.min_tags_size());
        let min_partition = 4 + 8 + if version >= 2 { 4 } else { 0 } + string + tags;
        r.topics = d.array_of(string + array + tags, |d| {
            let name = d.string()?.to_owned();
            let partitions = d.array_of(min_partition, |d| {
                let p = TxnOffsetCommitRequestPartition {
                    partition_index: d.i32()?,
                    committed_offset: d.i64()?,
                    committed_leader_epoch: if version >= 2 { d.i32()? } else { -1 },
                    committed_metadata: d.nullable_string()?.map(str::to_owned),
                };
                d.skip_tagged_fields()?;
                Ok(p)
            })?;
            d.skip_tagged_fields()?;
            Ok(TxnOffsetCommitRequestTopic { name, partitions })
        })?;
        d.skip_tagged_fields()?;
        Ok(r)
    }
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitResponse {
    /// How long the broker throttled the request (KIP-219).
    pub throttle_time_ms: i32,
    /// Per topic, per partition: 0 or why its offset was not committed.
    pub topics: Vec<TopicPartitionErrors>,
}

impl TxnOffsetCommitResponse {
    /// Reads a body sent for a request at `version`.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let (throttle_time_ms, topics) =
            partition_errors::decode_response(body, is_flexible(version))?;
        Ok(TxnOffsetCommitResponse {
            throttle_time_ms,
            topics,
        })
    }

    /// Appends the body at `version` (used by tests and fakes).
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let flexible = is_flexible(version);
        partition_errors::encode_response(buf, flexible, self.throttle_time_ms, &self.topics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::partition_errors::tests::unknown_tags;
    use crate::protocol::messages::partition_errors::PartitionError;
    use crate::protocol::messages::testing::ours_through_kafka_protocol;
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use proptest::prelude::*;

    // Hostile counts in the response are checked in `partition_errors`,
    // whose codec it is.

    fn request() -> TxnOffsetCommitRequest {
        let p = |partition_index, committed_offset, committed_metadata: Option<&str>| {
            TxnOffsetCommitRequestPartition {
                partition_index,
                committed_offset,
                committed_leader_epoch: 7,
                committed_metadata: committed_metadata.map(str::to_owned),
            }
        };
        TxnOffsetCommitRequest {
            transactional_id: "tx-1".into(),
            group_id: "group-a".into(),
            producer_id: 4000,
            producer_epoch: 3,
            generation_id: 12,
            member_id: "consumer-1-abc".into(),
            group_instance_id: Some("instance-1".into()),
            topics: vec![
                TxnOffsetCommitRequestTopic {
                    name: "in".into(),
                    partitions: vec![p(0, 100, None), p(3, 42, Some("m"))],
                },
                TxnOffsetCommitRequestTopic {
                    name: "in-2".into(),
                    partitions: vec![p(1, 0, Some(""))],
                },
            ],
        }
    }

    /// `r` as `v` carries it: fields it lacks at their defaults.
    fn at_version(mut r: TxnOffsetCommitRequest, v: i16) -> TxnOffsetCommitRequest {
        if v < GROUP_METADATA_VERSION {
            r.generation_id = -1;
            r.member_id.clear();
            r.group_instance_id = None;
        }
        for t in &mut r.topics {
            for p in &mut t.partitions {
                if v < 2 {
                    p.committed_leader_epoch = -1;
                }
            }
        }
        r
    }

    #[test]
    fn requests_decode_with_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            let req = at_version(request(), v);
            let mut buf = Vec::new();
            req.encode(&mut buf, v);
            let mut b = bytes::Bytes::from(buf.clone());
            let t = kafka_protocol::messages::TxnOffsetCommitRequest::decode(&mut b, v).unwrap();
            assert!(b.is_empty(), "v{v}: bytes left over");
            let string = |s: &StrBytes| s.to_string();
            let theirs = TxnOffsetCommitRequest {
                transactional_id: string(&t.transactional_id),
                group_id: string(&t.group_id),
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                generation_id: t.generation_id,
                member_id: string(&t.member_id),
                group_instance_id: t.group_instance_id.as_ref().map(string),
                topics: t
                    .topics
                    .iter()
                    .map(|t| TxnOffsetCommitRequestTopic {
                        name: string(&t.name),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| TxnOffsetCommitRequestPartition {
                                partition_index: p.partition_index,
                                committed_offset: p.committed_offset,
                                committed_leader_epoch: p.committed_leader_epoch,
                                committed_metadata: p.committed_metadata.as_ref().map(string),
                            })
                            .collect(),
                    })
                    .collect(),
            };
            assert_eq!(theirs, req, "v{v}");
            assert_eq!(TxnOffsetCommitRequest::decode(&buf, v).unwrap(), req);
        }
    }

    #[test]
    fn group_metadata_needs_v3() {
        let mut r = request();
        assert!(r.has_group_metadata());
        r = at_version(r, GROUP_METADATA_VERSION - 1);
        assert!(!r.has_group_metadata());
        r.group_instance_id = Some("i".into());
        assert!(r.has_group_metadata());
    }

    fn response() -> TxnOffsetCommitResponse {
        let p = |partition_index, error_code| PartitionError {
            partition_index,
            error_code,
        };
        TxnOffsetCommitResponse {
            throttle_time_ms: 9,
            topics: vec![
                TopicPartitionErrors {
                    name: "in".into(),
                    partitions: vec![p(0, 0), p(3, 22)],
                },
                TopicPartitionErrors {
                    name: "in-2".into(),
                    partitions: vec![p(1, 82)],
                },
            ],
        }
    }

    #[test]
    fn responses_round_trip_through_kafka_protocol() {
        use kafka_protocol::messages::TxnOffsetCommitResponse as Theirs;
        for v in MIN_VERSION..=MAX_VERSION {
            ours_through_kafka_protocol(
                v,
                is_flexible(v),
                &response(),
                TxnOffsetCommitResponse::decode,
                TxnOffsetCommitResponse::encode,
                |t: &Theirs| {
                    assert_eq!(t.throttle_time_ms, 9);
                    let p = &t.topics[0].partitions[1];
                    assert_eq!((p.partition_index, p.error_code), (3, 22));
                },
                |t| {
                    let topic = &mut t.topics[0];
                    topic.partitions[0].unknown_tagged_fields = unknown_tags();
                    topic.unknown_tagged_fields = unknown_tags();
                    t.unknown_tagged_fields = unknown_tags();
                },
            );
        }
    }

    #[test]
    fn hostile_request_counts_fail_before_reserving() {
        // a request's partitions: 3 claimed where two fit (v2: 18 bytes each)
        let mut req = Vec::new();
        let mut w = Writer::new(&mut req, false);
        w.string("tx");
        w.string("g");
        w.i64(1);
        w.i16(0);
        w.array_len(1);
        w.string("t");
        w.array_len(3);
        req.extend_from_slice(&[0; 50]);
        assert!(matches!(
            TxnOffsetCommitRequest::decode(&req, 2),
            Err(DecodeError::Invalid { .. })
        ));
    }

    proptest! {
        #[test]
        fn truncated_responses_fail_cleanly(v in MIN_VERSION..=MAX_VERSION, cut in 0usize..400) {
            let mut buf = Vec::new();
            response().encode(&mut buf, v);
            let cut = cut % buf.len();
            prop_assert!(TxnOffsetCommitResponse::decode(&buf[..cut], v).is_err());
        }

        #[test]
        fn hostile_responses_never_panic(v in MIN_VERSION..=MAX_VERSION, b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = TxnOffsetCommitResponse::decode(&b, v);
        }

        #[test]
        fn requests_round_trip(
            v in MIN_VERSION..=MAX_VERSION,
            generation_id in any::<i32>(),
            member_id in ".{0,20}",
            group_instance_id in proptest::option::of(".{0,20}"),
            parts in proptest::collection::vec((any::<i32>(), any::<i64>(), any::<i32>(), proptest::option::of(".{0,10}")), 0..5),
        ) {
            let req = TxnOffsetCommitRequest {
                generation_id,
                member_id,
                group_instance_id,
                topics: vec![TxnOffsetCommitRequestTopic {
                    name: "t".into(),
                    partitions: parts
                        .into_iter()
                        .map(|(partition_index, committed_offset, committed_leader_epoch, committed_metadata)| {
                            TxnOffsetCommitRequestPartition { partition_index, committed_offset, committed_leader_epoch, committed_metadata }
                        })
                        .collect(),
                }],
                ..request()
            };
            let req = at_version(req, v);
            let mut buf = Vec::new();
            req.encode(&mut buf, v);
            prop_assert_eq!(TxnOffsetCommitRequest::decode(&buf, v).unwrap(), req);
        }
    }
}
