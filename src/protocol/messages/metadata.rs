//! Metadata (key 3), versions 0-12 (`MetadataRequest.json`,
//! `MetadataResponse.json`); flexible from v9.
//!
//! The producer asks for the topics it sends to and learns brokers,
//! partitions and leaders. Fields by version:
//!
//! ```text
//! request:  Topics [ (v10+: TopicId UUID) Name STRING (nullable v10+) ]
//!                  (v0: empty = all topics; v1+: null = all, empty = none)
//!           v4+: AllowAutoTopicCreation bool
//!           v8-10: IncludeClusterAuthorizedOperations bool
//!           v8+: IncludeTopicAuthorizedOperations bool
//! response: v3+: ThrottleTimeMs int32
//!           Brokers [NodeId int32, Host STRING, Port int32, v1+: Rack NULLABLE_STRING]
//!           v2+: ClusterId NULLABLE_STRING
//!           v1+: ControllerId int32
//!           Topics [ErrorCode int16, Name STRING (nullable v12+), v10+: TopicId UUID,
//!                   v1+: IsInternal bool,
//!                   Partitions [ErrorCode int16, PartitionIndex int32, LeaderId int32,
//!                               v7+: LeaderEpoch int32, ReplicaNodes [int32],
//!                               IsrNodes [int32], v5+: OfflineReplicas [int32]],
//!                   v8+: TopicAuthorizedOperations int32]
//!           v8-10: ClusterAuthorizedOperations int32
//! ```

use super::api::Api;
use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// The API: its key, the versions we send and where flexible versions
/// begin (see [`super::api`]).
pub const API: Api = Api {
    key: 3,
    name: "Metadata",
    min_version: 0,
    max_version: 12,
    flexible_from: 9,
};
/// The API key.
pub const API_KEY: i16 = API.key;
/// The lowest version we send.
pub const MIN_VERSION: i16 = API.min_version;
/// The highest version we send (v13 only adds a top-level error code).
pub const MAX_VERSION: i16 = API.max_version;

/// True if `version` uses compact types and tag buffers.
pub fn is_flexible(version: i16) -> bool {
    API.is_flexible(version)
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    /// Topic names to describe; `None` asks for every topic (v1+).
    pub topics: Option<Vec<String>>,
    /// v4+: let the broker create missing topics (Java's producer: true).
    pub allow_auto_topic_creation: bool,
}

impl MetadataRequest {
    /// Appends the body at `version`.
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        match (&self.topics, version) {
            // v0 has no null: an empty list means all topics.
            (None, 0) => w.array_len(0),
            (None, _) => w.nullable_array_len(None),
            (Some(t), _) => {
                w.array_len(t.len());
                for name in t {
                    if version >= 10 {
                        w.uuid(&[0; 16]);
                        w.nullable_string(Some(name));
                    } else {
                        w.string(name);
                    }
                    w.tagged_fields_empty();
                }
            }
        }
        if version >= 4 {
            w.bool(self.allow_auto_topic_creation);
        }
        if (8..=10).contains(&version) {
            w.bool(false); // include_cluster_authorized_operations
        }
        if version >= 8 {
            w.bool(false); // include_topic_authorized_operations
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
        let topics = match d.nullable_array_len(1)? {
            None => None,
            Some(0) if version == 0 => None,
            Some(n) => Some(d.elements(n, |d| {
                let name = if version >= 10 {
                    d.uuid()?;
                    d.nullable_string()?.unwrap_or_default().to_owned()
                } else {
                    d.string()?.to_owned()
                };
                d.skip_tagged_fields()?;
                Ok(name)
            })?),
        };
        let allow_auto_topic_creation = if version >= 4 { d.bool()? } else { true };
        if (8..=10).contains(&version) {
            d.bool()?;
        }
        if version >= 8 {
            d.bool()?;
        }
        d.skip_tagged_fields()?;
        Ok(MetadataRequest {
            topics,
            allow_auto_topic_creation,
        })
    }
}

/// A broker in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataBroker {
    /// Its node id.
    pub node_id: i32,
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: i32,
    /// v1+: its rack.
    pub rack: Option<String>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataPartition {
    /// Partition-level error (LEADER_NOT_AVAILABLE, ...).
    pub error_code: i16,
    /// The partition number.
    pub partition_index: i32,
    /// Node id of the leader, -1 if none.
    pub leader_id: i32,
    /// v7+: the leader's epoch, -1 if unknown.
    pub leader_epoch: i32,
    /// All replicas.
    pub replica_nodes: Vec<i32>,
    /// In-sync replicas.
    pub isr_nodes: Vec<i32>,
    /// v5+: offline replicas.
    pub offline_replicas: Vec<i32>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataTopic {
    /// Topic-level error (UNKNOWN_TOPIC_OR_PARTITION, ...).
    pub error_code: i16,
    /// Its name (nullable from v12, when asked for by id).
    pub name: Option<String>,
    /// v10+: its id.
    pub topic_id: [u8; 16],
    /// v1+: internal topic.
    pub is_internal: bool,
    /// Its partitions.
    pub partitions: Vec<MetadataPartition>,
    /// v8+: authorized operations bit field, or `i32::MIN`.
    pub topic_authorized_operations: i32,
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataResponse {
    /// v3+.
    pub throttle_time_ms: i32,
    /// The brokers.
    pub brokers: Vec<MetadataBroker>,
    /// v2+.
    pub cluster_id: Option<String>,
    /// v1+: -1 if none.
    pub controller_id: i32,
    /// The topics asked for.
    pub topics: Vec<MetadataTopic>,
}

fn int32_array(d: &mut Decoder<'_>) -> Result<Vec<i32>, DecodeError> {
    d.array_of(4, Decoder::i32)
}

fn put_int32_array(w: &mut Writer<'_>, v: &[i32]) {
    w.array_len(v.len());
    for x in v {
        w.i32(*x);
    }
}

impl MetadataResponse {
    /// Reads a body sent for a request at `version`.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let mut r = MetadataResponse {
            controller_id: -1,
            ..Default::default()
        };
        if version >= 3 {
            r.throttle_time_ms = d.i32()?;
        }
        // The fewest bytes a broker, a topic and a partition take at `version`.
        let (string, array, tags) = (d.min_string_size(), d.min_array_size(), d.min_tags_size());
        let min_broker = 4 + string + 4 + if version >= 1 { string } else { 0 } + tags;
        let min_topic = 2
            + string
            + if version >= 10 { 16 } else { 0 }
            + usize::from(version >= 1)
            + array
            + if version >= 8 { 4 } else { 0 }
            + tags;
        let min_partition = 2
            + 4
            + 4
            + if version >= 7 { 4 } else { 0 }
            + 2 * array
            + if version >= 5 { array } else { 0 }
            + tags;
        r.brokers = d.array_of(min_broker, |d| {
            let broker = MetadataBroker {
                node_id: d.i32()?,
                host: d.string()?.to_owned(),
                port: d.i32()?,
                rack: if version >= 1 {
                    d.nullable_string()?.map(str::to_owned)
                } else {
                    None
                },
            };
            d.skip_tagged_fields()?;
            Ok(broker)
        })?;
        if version >= 2 {
            r.cluster_id = d.nullable_string()?.map(str::to_owned);
        }
        if version >= 1 {
            r.controller_id = d.i32()?;
        }
        r.topics = d.array_of(min_topic, |d| {
            let error_code = d.i16()?;
            let name = if version >= 12 {
                d.nullable_string()?.map(str::to_owned)
            } else {
                Some(d.string()?.to_owned())
            };
            let topic_id = if version >= 10 { d.uuid()? } else { [0; 16] };
            let is_internal = if version >= 1 { d.bool()? } else { false };
            let partitions = d.array_of(min_partition, |d| {
                let partition = MetadataPartition {
                    error_code: d.i16()?,
                    partition_index: d.i32()?,
                    leader_id: d.i32()?,
                    leader_epoch: if version >= 7 { d.i32()? } else { -1 },
                    replica_nodes: int32_array(d)?,
                    isr_nodes: int32_array(d)?,
                    offline_replicas: if version >= 5 {
                        int32_array(d)?
                    } else {
                        Vec::new()
                    },
                };
                d.skip_tagged_fields()?;
                Ok(partition)
            })?;
            let topic_authorized_operations = if version >= 8 { d.i32()? } else { i32::MIN };
            d.skip_tagged_fields()?;
            Ok(MetadataTopic {
                error_code,
                name,
                topic_id,
                is_internal,
                partitions,
                topic_authorized_operations,
            })
        })?;
        if (8..=10).contains(&version) {
            d.i32()?; // cluster_authorized_operations
        }
        d.skip_tagged_fields()?;
        Ok(r)
    }

    /// Appends the body at `version` (used by tests and fakes).
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        if version >= 3 {
            w.i32(self.throttle_time_ms);
        }
        w.array_len(self.brokers.len());
        for b in &self.brokers {
            w.i32(b.node_id);
            w.string(&b.host);
            w.i32(b.port);
            if version >= 1 {
                w.nullable_string(b.rack.as_deref());
            }
            w.tagged_fields_empty();
        }
        if version >= 2 {
            w.nullable_string(self.cluster_id.as_deref());
        }
        if version >= 1 {
            w.i32(self.controller_id);
        }
        w.array_len(self.topics.len());
        for t in &self.topics {
            w.i16(t.error_code);
            if version >= 12 {
                w.nullable_string(t.name.as_deref());
            } else {
                w.string(t.name.as_deref().unwrap_or(""));
            }
            if version >= 10 {
                w.uuid(&t.topic_id);
            }
            if version >= 1 {
                w.bool(t.is_internal);
            }
            w.array_len(t.partitions.len());
            for p in &t.partitions {
                w.i16(p.error_code);
                w.i32(p.partition_index);
                w.i32(p.leader_id);
                if version >= 7 {
                    w.i32(p.leader_epoch);
                }
                put_int32_array(&mut w, &p.replica_nodes);
                put_int32_array(&mut w, &p.isr_nodes);
                if version >= 5 {
                    put_int32_array(&mut w, &p.offline_replicas);
                }
                w.tagged_fields_empty();
            }
            if version >= 8 {
                w.i32(t.topic_authorized_operations);
            }
            w.tagged_fields_empty();
        }
        if (8..=10).contains(&version) {
            w.i32(i32::MIN);
        }
        w.tagged_fields_empty();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Decodable, Encodable};
    use proptest::prelude::*;

    #[test]
    fn requests_decode_with_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            for topics in [
                None,
                Some(vec![]),
                Some(vec!["a".to_string(), "topic-2".into()]),
            ] {
                if v == 0 && topics == Some(vec![]) {
                    continue; // v0 cannot say "no topics"
                }
                let req = MetadataRequest {
                    topics: topics.clone(),
                    allow_auto_topic_creation: true,
                };
                let mut buf = Vec::new();
                req.encode(&mut buf, v);
                let mut b = bytes::Bytes::from(buf.clone());
                let t = kafka_protocol::messages::MetadataRequest::decode(&mut b, v).unwrap();
                assert!(b.is_empty(), "v{v}: bytes left over");
                let names: Option<Vec<String>> = t.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| t.name.map(|n| n.to_string()).unwrap_or_default())
                        .collect()
                });
                if v == 0 && topics.is_none() {
                    assert_eq!(names, Some(vec![]));
                } else {
                    assert_eq!(names, topics, "v{v}");
                }
                if v >= 4 {
                    assert!(t.allow_auto_topic_creation);
                }
                assert_eq!(MetadataRequest::decode(&buf, v).unwrap(), req, "v{v}");
            }
        }
    }

    fn sample() -> MetadataResponse {
        MetadataResponse {
            throttle_time_ms: 3,
            brokers: vec![
                MetadataBroker {
                    node_id: 1,
                    host: "127.0.0.1".into(),
                    port: 9092,
                    rack: Some("r1".into()),
                },
                MetadataBroker {
                    node_id: 2,
                    host: "localhost".into(),
                    port: 9093,
                    rack: None,
                },
            ],
            cluster_id: Some("cluster".into()),
            controller_id: 1,
            topics: vec![MetadataTopic {
                error_code: 0,
                name: Some("t".into()),
                topic_id: [7; 16],
                is_internal: false,
                partitions: vec![
                    MetadataPartition {
                        error_code: 0,
                        partition_index: 0,
                        leader_id: 1,
                        leader_epoch: 5,
                        replica_nodes: vec![1, 2],
                        isr_nodes: vec![1, 2],
                        offline_replicas: vec![],
                    },
                    MetadataPartition {
                        error_code: 5,
                        partition_index: 1,
                        leader_id: -1,
                        leader_epoch: 5,
                        replica_nodes: vec![2],
                        isr_nodes: vec![],
                        offline_replicas: vec![2],
                    },
                ],
                topic_authorized_operations: i32::MIN,
            }],
        }
    }

    /// Clears the fields `version` cannot carry, as a decoder would see them.
    fn at_version(mut r: MetadataResponse, v: i16) -> MetadataResponse {
        if v < 3 {
            r.throttle_time_ms = 0;
        }
        if v < 2 {
            r.cluster_id = None;
        }
        if v < 1 {
            r.controller_id = -1;
        }
        for b in &mut r.brokers {
            if v < 1 {
                b.rack = None;
            }
        }
        for t in &mut r.topics {
            if v < 10 {
                t.topic_id = [0; 16];
            }
            for p in &mut t.partitions {
                if v < 7 {
                    p.leader_epoch = -1;
                }
                if v < 5 {
                    p.offline_replicas.clear();
                }
            }
        }
        r
    }

    #[test]
    fn responses_round_trip_through_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            let ours = at_version(sample(), v);
            let mut buf = Vec::new();
            ours.encode(&mut buf, v);
            // theirs reads ours ...
            let mut b = bytes::Bytes::from(buf.clone());
            let theirs = kafka_protocol::messages::MetadataResponse::decode(&mut b, v).unwrap();
            assert!(b.is_empty(), "v{v}");
            assert_eq!(theirs.brokers.len(), 2);
            assert_eq!(theirs.topics[0].partitions[1].error_code, 5);
            // ... writes it back, and we read theirs
            let mut out = bytes::BytesMut::new();
            theirs.encode(&mut out, v).unwrap();
            assert_eq!(MetadataResponse::decode(&out, v).unwrap(), ours, "v{v}");
            assert_eq!(MetadataResponse::decode(&buf, v).unwrap(), ours, "v{v}");
        }
    }

    #[test]
    fn hostile_counts_fail_before_reserving() {
        // Brokers, then topics, then one topic's partitions claiming 2^31-1
        // (or, compact, 2^32-2) elements in a few bytes.
        let classic = [&i32::MAX.to_be_bytes()[..], &[0; 8]].concat();
        assert!(matches!(
            MetadataResponse::decode(&classic, 0),
            Err(DecodeError::Invalid { .. })
        ));
        let mut v1 = vec![0, 0, 0, 0, 0, 0, 0, 0]; // no brokers, controller
        v1.extend_from_slice(&i32::MAX.to_be_bytes());
        v1.extend_from_slice(&[0; 32]);
        assert!(MetadataResponse::decode(&v1, 1).is_err());
        let mut v12 = vec![0, 0, 0, 0, 1, 0, 0, 0, 0, 0]; // throttle, [], null, controller
        v12.extend_from_slice(&[2, 0, 0, 1]); // one topic: error 0, name ""
        v12.extend_from_slice(&[0; 17]); // topic id, is_internal
        v12.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // partitions
        v12.extend_from_slice(&[0; 40]);
        assert!(MetadataResponse::decode(&v12, 12).is_err());
        // a count that fits the bytes at one byte per element, but not at
        // the 18 bytes a v9 partition takes at least
        let mut b = vec![0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 1];
        b.extend_from_slice(&[0; 17]);
        b.push(41); // 40 partitions
        b.extend_from_slice(&[0; 60]);
        assert!(MetadataResponse::decode(&b, 10).is_err());
    }

    proptest! {
        #[test]
        fn truncated_responses_fail_cleanly(v in MIN_VERSION..=MAX_VERSION, cut in 0usize..400) {
            let mut buf = Vec::new();
            at_version(sample(), v).encode(&mut buf, v);
            let cut = cut % buf.len();
            prop_assert!(MetadataResponse::decode(&buf[..cut], v).is_err());
        }

        #[test]
        fn hostile_responses_never_panic(v in MIN_VERSION..=MAX_VERSION, b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = MetadataResponse::decode(&b, v);
        }
    }
}
