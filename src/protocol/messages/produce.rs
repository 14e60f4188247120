//! Produce (key 0), versions 3-12 (`ProduceRequest.json`,
//! `ProduceResponse.json`); flexible from v9. Kafka 4 removed v0-v2 and may
//! still advertise them (KAFKA-18659), so we never send below v3.
//!
//! v12 has v11's fields (KIP-890 part 2) but, from a transactional
//! producer, tells the partition leader to add the partition to the
//! transaction itself (transactions v2): so a transactional producer sends
//! v12 only when its transaction runs the v2 flow, and at most v11
//! otherwise, as Java's `ProduceRequest.builder(.., useTransactionV1Version)`
//! does (`RecordAccumulator::produce_version_cap`). Others send up to v12.
//!
//! ```text
//! request:  TransactionalId NULLABLE_STRING, Acks int16, TimeoutMs int32,
//!           TopicData [Name STRING,
//!                      PartitionData [Index int32, Records NULLABLE_BYTES]]
//! response: Responses [Name STRING,
//!                      PartitionResponses [Index int32, ErrorCode int16,
//!                        BaseOffset int64, LogAppendTimeMs int64,
//!                        v5+: LogStartOffset int64,
//!                        v8+: RecordErrors [BatchIndex int32, Message NULLABLE_STRING],
//!                        v8+: ErrorMessage NULLABLE_STRING,
//!                        v10+ tag 0: CurrentLeader {LeaderId int32, LeaderEpoch int32}]],
//!           ThrottleTimeMs int32,
//!           v10+ tag 0: NodeEndpoints [NodeId int32, Host STRING, Port int32, Rack NULLABLE_STRING]
//! ```
//!
//! The I/O thread writes requests with the streaming functions
//! ([`write_request_prefix`], [`write_topic`], [`write_partition_prefix`], ...)
//! straight from its drained batches; [`ProduceRequest`] is the owned form
//! built on the same functions, for tests.

use super::api::Api;
use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// The API: its key, the versions we send and where flexible versions
/// begin (see [`super::api`]).
pub const API: Api = Api {
    key: 0,
    name: "Produce",
    min_version: 3,
    max_version: 12,
    flexible_from: 9,
};
/// The API key.
pub const API_KEY: i16 = API.key;
/// The lowest version we send: v3 introduced RecordBatch v2.
pub const MIN_VERSION: i16 = API.min_version;
/// The highest version we send (v12; see the module docs for when a
/// transactional producer stops at v11). v13 names topics by id.
pub const MAX_VERSION: i16 = API.max_version;
/// The highest version of the transactions v1 flow: v12 asks the leader to
/// add the partition to the transaction (KIP-890 part 2).
pub const TXN_V1_MAX_VERSION: i16 = 11;

/// True if `version` uses compact types and tag buffers.
pub fn is_flexible(version: i16) -> bool {
    API.is_flexible(version)
}

/// Writes the request fields before the topic array, and the topic count.
pub fn write_request_prefix(
    buf: &mut Vec<u8>,
    version: i16,
    transactional_id: Option<&str>,
    acks: i16,
    timeout_ms: i32,
    topic_count: usize,
) {
    let mut w = Writer::new(buf, is_flexible(version));
    w.nullable_string(transactional_id);
    w.i16(acks);
    w.i32(timeout_ms);
    w.array_len(topic_count);
}

/// Starts one topic: its name and its partition count.
pub fn write_topic(buf: &mut Vec<u8>, version: i16, name: &str, partition_count: usize) {
    let mut w = Writer::new(buf, is_flexible(version));
    w.string(name);
    w.array_len(partition_count);
}

/// Writes one partition whose records are the concatenation of `parts`
/// (a batch header and its records section, say).
pub fn write_partition(buf: &mut Vec<u8>, version: i16, index: i32, parts: &[&[u8]]) {
    write_partition_prefix(buf, version, index, parts.iter().map(|p| p.len()).sum());
    for p in parts {
        buf.extend_from_slice(p);
    }
    end_partition(buf, version);
}

/// Starts one partition whose records, `records_len` bytes, the caller
/// writes next (into `buf`, or as bytes of its own that follow it on the
/// wire); [`end_partition`] then ends it.
pub fn write_partition_prefix(buf: &mut Vec<u8>, version: i16, index: i32, records_len: usize) {
    let mut w = Writer::new(buf, is_flexible(version));
    w.i32(index);
    w.bytes_len(records_len);
}

/// Ends a partition begun with [`write_partition_prefix`], after its
/// records.
pub fn end_partition(buf: &mut Vec<u8>, version: i16) {
    Writer::new(buf, is_flexible(version)).tagged_fields_empty();
}

/// Ends a topic begun with [`write_topic`] after its partitions.
pub fn end_topic(buf: &mut Vec<u8>, version: i16) {
    Writer::new(buf, is_flexible(version)).tagged_fields_empty();
}

/// Ends the request after its topics.
pub fn end_request(buf: &mut Vec<u8>, version: i16) {
    Writer::new(buf, is_flexible(version)).tagged_fields_empty();
}

/// One partition's data in the owned request form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProduceData {
    /// The partition.
    pub index: i32,
    /// Concatenated record batches; `None` is null.
    pub records: Option<Vec<u8>>,
}

/// One topic's data in the owned request form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicProduceData {
    /// The topic.
    pub name: String,
    /// Its partitions.
    pub partition_data: Vec<PartitionProduceData>,
}

/// The request body, owned (tests and fakes; the I/O thread streams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRequest {
    /// v3+: the transactional id, or null.
    pub transactional_id: Option<String>,
    /// 0, 1 or -1 (all).
    pub acks: i16,
    /// How long the broker may wait for replication.
    pub timeout_ms: i32,
    /// The data.
    pub topic_data: Vec<TopicProduceData>,
}

impl ProduceRequest {
    /// Appends the body at `version`.
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        write_request_prefix(
            buf,
            version,
            self.transactional_id.as_deref(),
            self.acks,
            self.timeout_ms,
            self.topic_data.len(),
        );
        for t in &self.topic_data {
            write_topic(buf, version, &t.name, t.partition_data.len());
            for p in &t.partition_data {
                match &p.records {
                    Some(r) => write_partition(buf, version, p.index, &[r]),
                    None => {
                        let mut w = Writer::new(buf, is_flexible(version));
                        w.i32(p.index);
                        w.nullable_bytes(None);
                        w.tagged_fields_empty();
                    }
                }
            }
            end_topic(buf, version);
        }
        end_request(buf, version);
    }

    /// Reads a body at `version` (used by tests and fakes).
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let transactional_id = d.nullable_string()?.map(str::to_owned);
        let acks = d.i16()?;
        let timeout_ms = d.i32()?;
        let (string, array, tags) = (d.min_string_size(), d.min_array_size(), d.min_tags_size());
        let topic_data = d.array_of(string + array + tags, |d| {
            let name = d.string()?.to_owned();
            let partition_data = d.array_of(4 + array + tags, |d| {
                let index = d.i32()?;
                let records = d.nullable_bytes()?.map(<[u8]>::to_vec);
                d.skip_tagged_fields()?;
                Ok(PartitionProduceData { index, records })
            })?;
            d.skip_tagged_fields()?;
            Ok(TopicProduceData {
                name,
                partition_data,
            })
        })?;
        d.skip_tagged_fields()?;
        Ok(ProduceRequest {
            transactional_id,
            acks,
            timeout_ms,
            topic_data,
        })
    }
}

/// A leader hint (KIP-951), sent with NOT_LEADER_OR_FOLLOWER and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderIdAndEpoch {
    /// The new leader, -1 if unknown.
    pub leader_id: i32,
    /// Its epoch, -1 if unknown.
    pub leader_epoch: i32,
}

/// Where a hinted leader can be reached (KIP-951).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    /// Node id.
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Rack.
    pub rack: Option<String>,
}

/// One partition's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProduceResponse {
    /// The partition.
    pub index: i32,
    /// 0 or the error.
    pub error_code: i16,
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// The broker's append time if the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    /// v5+: the log start offset.
    pub log_start_offset: i64,
    /// v8+: records that made the batch fail (index, message).
    pub record_errors: Vec<(i32, Option<String>)>,
    /// v8+: a summary of the failure.
    pub error_message: Option<String>,
    /// v10+ tag 0: the current leader, if the broker says.
    pub current_leader: Option<LeaderIdAndEpoch>,
}

/// One topic's outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicProduceResponse {
    /// The topic.
    pub name: String,
    /// Its partitions.
    pub partition_responses: Vec<PartitionProduceResponse>,
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceResponse {
    /// Per topic.
    pub responses: Vec<TopicProduceResponse>,
    /// How long the broker throttled the request (KIP-219).
    pub throttle_time_ms: i32,
    /// v10+ tag 0: endpoints of hinted leaders.
    pub node_endpoints: Vec<NodeEndpoint>,
}

/// The most bytes an honest broker's answer to one Produce request can
/// take (the frame after its size prefix: header and body), at any version
/// we send. `batches` lists, per batch in the request, its topic name's
/// length and its record count; each is counted as a topic of its own, so
/// the bound holds however they are grouped.
///
/// Every string Kafka writes is at most `i16::MAX` bytes (its generated
/// writers refuse longer ones, compact strings included); per partition
/// the answer holds an error message, one error per record at most and a
/// leader hint with that leader's endpoint (host and rack); each structure
/// gets 1 KiB more for tagged fields a newer broker may add. A frame larger
/// than this is not an answer to the request, and the connection refuses
/// it before reading (or allocating for) its body.
pub fn max_response_size(batches: impl IntoIterator<Item = (usize, usize)>) -> usize {
    const STRING: usize = 5 + i16::MAX as usize; // length varint + bytes
    const TAGS: usize = 1024;
    const FIXED: usize = 4 + 2 + 8 + 8 + 8; // index, error, three offsets
    const LEADER_HINT: usize = 3 + 4 + 4 + 1; // tag, size, id, epoch, tags
    const ENDPOINT: usize = 4 + STRING + 4 + STRING + TAGS; // id, host, port, rack
    const PARTITION: usize = FIXED + 5 + STRING + LEADER_HINT + TAGS + ENDPOINT;
    const RECORD_ERROR: usize = 4 + STRING + TAGS;
    // correlation id, header tags, topics array, throttle, endpoints array
    let mut n: usize = 4 + TAGS + 5 + 4 + 5 + TAGS;
    for (topic_len, records) in batches {
        let topic = topic_len.saturating_add(5 + 5 + TAGS);
        let partition = PARTITION.saturating_add(records.saturating_mul(RECORD_ERROR));
        n = n.saturating_add(topic).saturating_add(partition);
    }
    n
}

impl ProduceResponse {
    /// Reads a body sent for a request at `version`.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        // The fewest bytes a topic, a partition and a record error take.
        let (string, array, tags) = (d.min_string_size(), d.min_array_size(), d.min_tags_size());
        let min_topic = string + array + tags;
        let min_partition = 4
            + 2
            + 8
            + 8
            + if version >= 5 { 8 } else { 0 }
            + if version >= 8 { array + string } else { 0 }
            + tags;
        let min_record_error = 4 + string + tags;
        let responses = d.array_of(min_topic, |d| {
            let name = d.string()?.to_owned();
            let partition_responses = d.array_of(min_partition, |d| {
                let mut p = PartitionProduceResponse {
                    index: d.i32()?,
                    error_code: d.i16()?,
                    base_offset: d.i64()?,
                    log_append_time_ms: d.i64()?,
                    log_start_offset: if version >= 5 { d.i64()? } else { -1 },
                    record_errors: Vec::new(),
                    error_message: None,
                    current_leader: None,
                };
                if version >= 8 {
                    p.record_errors = d.array_of(min_record_error, |d| {
                        let i = d.i32()?;
                        let m = d.nullable_string()?.map(str::to_owned);
                        d.skip_tagged_fields()?;
                        Ok((i, m))
                    })?;
                    p.error_message = d.nullable_string()?.map(str::to_owned);
                }
                let mut leader = None;
                d.tagged_fields(|tag, t| {
                    if tag == 0 && version >= 10 {
                        leader = Some(LeaderIdAndEpoch {
                            leader_id: t.i32()?,
                            leader_epoch: t.i32()?,
                        });
                        Ok(true)
                    } else {
                        Ok(false)
                    }
                })?;
                p.current_leader = leader;
                Ok(p)
            })?;
            d.skip_tagged_fields()?;
            Ok(TopicProduceResponse {
                name,
                partition_responses,
            })
        })?;
        let throttle_time_ms = d.i32()?;
        let mut node_endpoints = Vec::new();
        d.tagged_fields(|tag, t| {
            if tag != 0 || version < 10 {
                return Ok(false);
            }
            // node id, host, port, rack and a tag buffer (tags are flexible)
            node_endpoints = t.array_of(4 + 1 + 4 + 1 + 1, |t| {
                let e = NodeEndpoint {
                    node_id: t.i32()?,
                    host: t.string()?.to_owned(),
                    port: t.i32()?,
                    rack: t.nullable_string()?.map(str::to_owned),
                };
                t.skip_tagged_fields()?;
                Ok(e)
            })?;
            Ok(true)
        })?;
        Ok(ProduceResponse {
            responses,
            throttle_time_ms,
            node_endpoints,
        })
    }

    /// Appends the body at `version` (used by tests and fakes).
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let flexible = is_flexible(version);
        let mut w = Writer::new(buf, flexible);
        w.array_len(self.responses.len());
        for t in &self.responses {
            w.string(&t.name);
            w.array_len(t.partition_responses.len());
            for p in &t.partition_responses {
                w.i32(p.index);
                w.i16(p.error_code);
                w.i64(p.base_offset);
                w.i64(p.log_append_time_ms);
                if version >= 5 {
                    w.i64(p.log_start_offset);
                }
                if version >= 8 {
                    w.array_len(p.record_errors.len());
                    for (i, m) in &p.record_errors {
                        w.i32(*i);
                        w.nullable_string(m.as_deref());
                        w.tagged_fields_empty();
                    }
                    w.nullable_string(p.error_message.as_deref());
                }
                if flexible {
                    match p.current_leader.filter(|_| version >= 10) {
                        Some(l) => {
                            // one tag (0) holding the struct and its own
                            // empty tag buffer: 4 + 4 + 1 bytes
                            w.uvarint(1);
                            w.uvarint(0);
                            w.uvarint(9);
                            w.i32(l.leader_id);
                            w.i32(l.leader_epoch);
                            w.uvarint(0);
                        }
                        None => w.uvarint(0),
                    }
                }
            }
            w.tagged_fields_empty();
        }
        w.i32(self.throttle_time_ms);
        if flexible {
            if self.node_endpoints.is_empty() || version < 10 {
                w.uvarint(0);
            } else {
                let mut tag = Vec::new();
                let mut t = Writer::new(&mut tag, true);
                t.array_len(self.node_endpoints.len());
                for e in &self.node_endpoints {
                    t.i32(e.node_id);
                    t.string(&e.host);
                    t.i32(e.port);
                    t.nullable_string(e.rack.as_deref());
                    t.tagged_fields_empty();
                }
                w.uvarint(1);
                w.uvarint(0);
                w.uvarint(tag.len() as u32);
                w.buf.extend_from_slice(&tag);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::BatchHeader;

    #[test]
    fn the_largest_honest_answer_fits_its_bound() {
        let long = |c: char| Some(std::iter::repeat_n(c, i16::MAX as usize).collect::<String>());
        let topic: String = std::iter::repeat_n('t', 249).collect();
        let records = 3;
        let partition = |index| PartitionProduceResponse {
            index,
            error_code: 6,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            record_errors: (0..records as i32).map(|i| (i, long('r'))).collect(),
            error_message: long('e'),
            current_leader: Some(LeaderIdAndEpoch {
                leader_id: 2,
                leader_epoch: 7,
            }),
        };
        let resp = ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: topic.clone(),
                partition_responses: vec![partition(0), partition(1)],
            }],
            throttle_time_ms: 0,
            node_endpoints: (0..2)
                .map(|node_id| NodeEndpoint {
                    node_id,
                    host: long('h').unwrap(),
                    port: 9092,
                    rack: long('k'),
                })
                .collect(),
        };
        let bound = max_response_size([(topic.len(), records), (topic.len(), records)]);
        for v in MIN_VERSION..=MAX_VERSION {
            let mut body = Vec::new();
            resp.encode(&mut body, v);
            let frame = 4 + usize::from(is_flexible(v)) + body.len();
            assert!(frame <= bound, "v{v}: {frame} > {bound}");
        }
        // A request of one small batch admits a few hundred KiB, not 100 MiB.
        assert!(max_response_size([(10, 1)]) < 256 * 1024);
        assert!(max_response_size([(10, 1)]) < max_response_size([(10, 2)]));
        assert_eq!(max_response_size([(usize::MAX, usize::MAX)]), usize::MAX);
    }
    use kafka_protocol::protocol::{Decodable, Encodable};
    use proptest::prelude::*;

    fn batch() -> Vec<u8> {
        let mut body = Vec::new();
        let size = crate::protocol::records::record_body_size(
            0,
            0,
            Some(b"k"),
            Some(b"v"),
            std::iter::empty(),
        );
        crate::protocol::records::write_record(
            &mut body,
            size,
            0,
            0,
            Some(b"k"),
            Some(b"v"),
            std::iter::empty(),
        );
        let mut out = BatchHeader::new(1, 1000, 1000).encode(&body).to_vec();
        out.extend_from_slice(&body);
        out
    }

    fn request() -> ProduceRequest {
        ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 30_000,
            topic_data: vec![
                TopicProduceData {
                    name: "a".into(),
                    partition_data: vec![
                        PartitionProduceData {
                            index: 0,
                            records: Some(batch()),
                        },
                        PartitionProduceData {
                            index: 3,
                            records: Some(batch()),
                        },
                    ],
                },
                TopicProduceData {
                    name: "b".into(),
                    partition_data: vec![PartitionProduceData {
                        index: 1,
                        records: Some(batch()),
                    }],
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
            let t = kafka_protocol::messages::ProduceRequest::decode(&mut b, v).unwrap();
            assert!(b.is_empty(), "v{v}: bytes left over");
            assert_eq!(t.acks, -1);
            assert_eq!(t.timeout_ms, 30_000);
            assert_eq!(t.topic_data.len(), 2);
            assert_eq!(&*t.topic_data[0].name, "a");
            assert_eq!(t.topic_data[0].partition_data[1].index, 3);
            let mut recs = t.topic_data[1].partition_data[0].records.clone().unwrap();
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut recs).unwrap();
            assert_eq!(set.records[0].value.as_deref(), Some(&b"v"[..]));
            assert_eq!(ProduceRequest::decode(&buf, v).unwrap(), req);
        }
    }

    #[test]
    fn transactional_id_is_carried() {
        let mut req = request();
        req.transactional_id = Some("tx-1".into());
        for v in MIN_VERSION..=MAX_VERSION {
            let mut buf = Vec::new();
            req.encode(&mut buf, v);
            let mut b = bytes::Bytes::from(buf);
            let t = kafka_protocol::messages::ProduceRequest::decode(&mut b, v).unwrap();
            assert_eq!(t.transactional_id.as_deref().map(|s| &**s), Some("tx-1"));
        }
    }

    fn response(v: i16) -> ProduceResponse {
        ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: "a".into(),
                partition_responses: vec![
                    PartitionProduceResponse {
                        index: 0,
                        error_code: 0,
                        base_offset: 42,
                        log_append_time_ms: -1,
                        log_start_offset: if v >= 5 { 0 } else { -1 },
                        record_errors: vec![],
                        error_message: None,
                        current_leader: None,
                    },
                    PartitionProduceResponse {
                        index: 3,
                        error_code: 6,
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                        record_errors: if v >= 8 {
                            vec![(0, Some("bad".into()))]
                        } else {
                            vec![]
                        },
                        error_message: if v >= 8 { Some("moved".into()) } else { None },
                        current_leader: (v >= 10).then_some(LeaderIdAndEpoch {
                            leader_id: 2,
                            leader_epoch: 9,
                        }),
                    },
                ],
            }],
            throttle_time_ms: 0,
            node_endpoints: if v >= 10 {
                vec![NodeEndpoint {
                    node_id: 2,
                    host: "127.0.0.1".into(),
                    port: 9093,
                    rack: None,
                }]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn responses_round_trip_through_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            let ours = response(v);
            let mut buf = Vec::new();
            ours.encode(&mut buf, v);
            let mut b = bytes::Bytes::from(buf.clone());
            let theirs = kafka_protocol::messages::ProduceResponse::decode(&mut b, v).unwrap();
            assert!(b.is_empty(), "v{v}");
            let p = &theirs.responses[0].partition_responses[1];
            assert_eq!(p.error_code, 6);
            if v >= 10 {
                assert_eq!(p.current_leader.leader_id, 2);
                assert_eq!(theirs.node_endpoints.len(), 1);
            }
            let mut out = bytes::BytesMut::new();
            theirs.encode(&mut out, v).unwrap();
            assert_eq!(ProduceResponse::decode(&out, v).unwrap(), ours, "v{v}");
            assert_eq!(ProduceResponse::decode(&buf, v).unwrap(), ours, "v{v}");
        }
    }

    #[test]
    fn hostile_counts_fail_before_reserving() {
        // topics claiming 2^31-1, then one topic's partitions
        let topics = [&i32::MAX.to_be_bytes()[..], &[0; 16]].concat();
        assert!(ProduceResponse::decode(&topics, 3).is_err());
        let mut parts = vec![0, 0, 0, 1, 0, 0];
        parts.extend_from_slice(&i32::MAX.to_be_bytes());
        parts.extend_from_slice(&[0; 64]);
        assert!(ProduceResponse::decode(&parts, 7).is_err());
        // v9: two partitions claimed in 40 bytes, where each takes 33
        let mut v9 = vec![2, 1, 3];
        v9.extend_from_slice(&[0; 40]);
        assert!(matches!(
            ProduceResponse::decode(&v9, 9),
            Err(DecodeError::Invalid { .. })
        ));
        // v11 record errors, compact count 2^32-2
        let mut errs = vec![2, 1, 2];
        errs.extend_from_slice(&[0; 30]);
        errs.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        errs.extend_from_slice(&[0; 30]);
        assert!(ProduceResponse::decode(&errs, 11).is_err());
    }

    proptest! {
        #[test]
        fn truncated_responses_fail_cleanly(v in MIN_VERSION..=MAX_VERSION, cut in 0usize..400) {
            let mut buf = Vec::new();
            response(v).encode(&mut buf, v);
            let cut = cut % buf.len();
            prop_assert!(ProduceResponse::decode(&buf[..cut], v).is_err());
        }

        #[test]
        fn hostile_responses_never_panic(v in MIN_VERSION..=MAX_VERSION, b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = ProduceResponse::decode(&b, v);
        }

        #[test]
        fn requests_round_trip(
            v in MIN_VERSION..=MAX_VERSION,
            acks in prop_oneof![Just(0i16), Just(1), Just(-1)],
            timeout in any::<i32>(),
            parts in proptest::collection::vec((0i32..100, proptest::collection::vec(any::<u8>(), 0..50)), 0..5),
        ) {
            let req = ProduceRequest {
                transactional_id: None,
                acks,
                timeout_ms: timeout,
                topic_data: vec![TopicProduceData {
                    name: "t".into(),
                    partition_data: parts.into_iter().map(|(index, r)| PartitionProduceData { index, records: Some(r) }).collect(),
                }],
            };
            let mut buf = Vec::new();
            req.encode(&mut buf, v);
            prop_assert_eq!(ProduceRequest::decode(&buf, v).unwrap(), req);
        }
    }
}
