//! FindCoordinator (key 10), versions 0-6 (`FindCoordinatorRequest.json`,
//! `FindCoordinatorResponse.json`; KIP-98, KIP-699); flexible from v3.
//!
//! A transactional producer asks any broker which one is the transaction
//! coordinator of its transactional id (key type 1), and, to add consumer
//! offsets to a transaction, which is the group coordinator of the group
//! (key type 0). Up to v3 a request names one key and the response is that
//! one coordinator; from v4 both are lists (KIP-699 batching), and the
//! structs below carry both forms, each field marked with its versions.
//! v5 only allows the TRANSACTION_ABORTABLE error (KIP-890), v6 the share
//! group key type (KIP-932); their layouts are v4's. v0 has no key type
//! (it finds a group coordinator, never a transaction coordinator) and is
//! deprecated (KIP-896), but the spec still defines it, so we can send it.
//!
//! ```text
//! request:  v0-3: Key STRING, v1+: KeyType int8, v4+: CoordinatorKeys [STRING]
//! response: v1+: ThrottleTimeMs int32,
//!           v0-3: ErrorCode int16, v1-3: ErrorMessage NULLABLE_STRING,
//!           v0-3: NodeId int32, Host STRING, Port int32,
//!           v4+: Coordinators [Key STRING, NodeId int32, Host STRING, Port int32,
//!                              ErrorCode int16, ErrorMessage NULLABLE_STRING]
//! ```

use super::api::Api;
use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// The API: its key, the versions we send and where flexible versions
/// begin (see [`super::api`]).
pub const API: Api = Api {
    key: 10,
    name: "FindCoordinator",
    min_version: 0,
    max_version: 6,
    flexible_from: 3,
};
/// The API key.
pub const API_KEY: i16 = API.key;
/// The lowest version we send.
pub const MIN_VERSION: i16 = API.min_version;
/// The highest version we send.
pub const MAX_VERSION: i16 = API.max_version;

/// True if `version` uses compact types and tag buffers.
pub fn is_flexible(version: i16) -> bool {
    API.is_flexible(version)
}

/// The key is a consumer group id.
pub const KEY_TYPE_GROUP: i8 = 0;
/// The key is a transactional id (v1+).
pub const KEY_TYPE_TRANSACTION: i8 = 1;

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindCoordinatorRequest {
    /// v0-3: the one key.
    pub key: String,
    /// v1+: [`KEY_TYPE_GROUP`] or [`KEY_TYPE_TRANSACTION`]; v0 asks for a
    /// group coordinator whatever this says.
    pub key_type: i8,
    /// v4+: the keys, all of `key_type`.
    pub coordinator_keys: Vec<String>,
}

impl FindCoordinatorRequest {
    /// A request for the coordinator of one key, in both forms, so that
    /// it can be sent at any version.
    pub fn one(key_type: i8, key: &str) -> Self {
        FindCoordinatorRequest {
            key: key.to_owned(),
            key_type,
            coordinator_keys: vec![key.to_owned()],
        }
    }

    /// Appends the body at `version`: `key` up to v3, `coordinator_keys`
    /// from v4.
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        if version < 4 {
            w.string(&self.key);
        }
        if version >= 1 {
            w.i8(self.key_type);
        }
        if version >= 4 {
            w.array_len(self.coordinator_keys.len());
            for k in &self.coordinator_keys {
                w.string(k);
            }
        }
        w.tagged_fields_empty();
    }

    /// Reads a body at `version` (used by tests and fakes); the form the
    /// version lacks reads empty, and v0's key type as group.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let mut r = FindCoordinatorRequest {
            key: String::new(),
            key_type: KEY_TYPE_GROUP,
            coordinator_keys: Vec::new(),
        };
        if version < 4 {
            r.key = d.string()?.to_owned();
        }
        if version >= 1 {
            r.key_type = d.i8()?;
        }
        if version >= 4 {
            let string = d.min_string_size();
            r.coordinator_keys = d.array_of(string, |d| Ok(d.string()?.to_owned()))?;
        }
        d.skip_tagged_fields()?;
        Ok(r)
    }
}

/// One key's coordinator (v4+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// The key asked about.
    pub key: String,
    /// The coordinator's node id, -1 on error.
    pub node_id: i32,
    /// Its host.
    pub host: String,
    /// Its port, -1 on error.
    pub port: i32,
    /// 0 or the error (COORDINATOR_NOT_AVAILABLE, ...).
    pub error_code: i16,
    /// A description of the error.
    pub error_message: Option<String>,
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindCoordinatorResponse {
    /// v1+: how long the broker throttled the request (KIP-219).
    pub throttle_time_ms: i32,
    /// v0-3: 0 or the error (COORDINATOR_NOT_AVAILABLE, ...).
    pub error_code: i16,
    /// v1-3: a description of the error.
    pub error_message: Option<String>,
    /// v0-3: the coordinator's node id.
    pub node_id: i32,
    /// v0-3: its host.
    pub host: String,
    /// v0-3: its port.
    pub port: i32,
    /// v4+: one per key asked about.
    pub coordinators: Vec<Coordinator>,
}

impl FindCoordinatorResponse {
    /// Reads a body sent for a request at `version`; fields the version
    /// lacks read as zero and empty.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let mut r = FindCoordinatorResponse::default();
        if version >= 1 {
            r.throttle_time_ms = d.i32()?;
        }
        if version < 4 {
            r.error_code = d.i16()?;
            if version >= 1 {
                r.error_message = d.nullable_string()?.map(str::to_owned);
            }
            r.node_id = d.i32()?;
            r.host = d.string()?.to_owned();
            r.port = d.i32()?;
        } else {
            // key, node id, host, port, error code, message, tag buffer
            let (string, tags) = (d.min_string_size(), d.min_tags_size());
            let min_coordinator = string + 4 + string + 4 + 2 + string + tags;
            r.coordinators = d.array_of(min_coordinator, |d| {
                let c = Coordinator {
                    key: d.string()?.to_owned(),
                    node_id: d.i32()?,
                    host: d.string()?.to_owned(),
                    port: d.i32()?,
                    error_code: d.i16()?,
                    error_message: d.nullable_string()?.map(str::to_owned),
                };
                d.skip_tagged_fields()?;
                Ok(c)
            })?;
        }
        d.skip_tagged_fields()?;
        Ok(r)
    }

    /// Appends the body at `version` (used by tests and fakes).
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        if version >= 1 {
            w.i32(self.throttle_time_ms);
        }
        if version < 4 {
            w.i16(self.error_code);
            if version >= 1 {
                w.nullable_string(self.error_message.as_deref());
            }
            w.i32(self.node_id);
            w.string(&self.host);
            w.i32(self.port);
        } else {
            w.array_len(self.coordinators.len());
            for c in &self.coordinators {
                w.string(&c.key);
                w.i32(c.node_id);
                w.string(&c.host);
                w.i32(c.port);
                w.i16(c.error_code);
                w.nullable_string(c.error_message.as_deref());
                w.tagged_fields_empty();
            }
        }
        w.tagged_fields_empty();
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        agrees_with_kafka_protocol, every_cut_fails, hostile_tag_buffers_fail,
    };
    use super::FindCoordinatorResponse as R;
    use super::*;
    use crate::protocol::ErrorCode;
    use kafka_protocol::messages::find_coordinator_response::Coordinator as TheirCoordinator;
    use kafka_protocol::messages::{self as kp, BrokerId};
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use proptest::prelude::*;

    /// The request a caller would send at `v`: one key up to v3 (a group
    /// at v0), two from v4.
    fn request(v: i16) -> FindCoordinatorRequest {
        FindCoordinatorRequest {
            key: if v < 4 { "tx-1".into() } else { String::new() },
            key_type: if v >= 1 {
                KEY_TYPE_TRANSACTION
            } else {
                KEY_TYPE_GROUP
            },
            coordinator_keys: if v >= 4 {
                vec!["tx-1".into(), "tx-2".into()]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn requests_decode_with_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            let req = request(v);
            let mut buf = Vec::new();
            req.encode(&mut buf, v);
            let mut b = bytes::Bytes::from(buf.clone());
            let t = kp::FindCoordinatorRequest::decode(&mut b, v).unwrap();
            assert!(b.is_empty(), "v{v}: bytes left over");
            assert_eq!(&*t.key, req.key, "v{v}");
            assert_eq!(t.key_type, req.key_type, "v{v}");
            let keys: Vec<&str> = t.coordinator_keys.iter().map(|k| &**k).collect();
            assert_eq!(keys, req.coordinator_keys, "v{v}");
            assert_eq!(
                FindCoordinatorRequest::decode(&buf, v).unwrap(),
                req,
                "v{v}"
            );
        }
    }

    #[test]
    fn one_key_is_sent_in_the_form_of_each_version() {
        let req = FindCoordinatorRequest::one(KEY_TYPE_TRANSACTION, "tx-9");
        for v in 1..=MAX_VERSION {
            let mut buf = Vec::new();
            req.encode(&mut buf, v);
            let t = kp::FindCoordinatorRequest::decode(&mut bytes::Bytes::from(buf), v).unwrap();
            assert_eq!(t.key_type, KEY_TYPE_TRANSACTION);
            if v < 4 {
                assert_eq!(&*t.key, "tx-9");
            } else {
                assert_eq!(t.coordinator_keys, [StrBytes::from_static_str("tx-9")]);
            }
        }
    }

    /// A response as `v` carries it: one coordinator found up to v3; from
    /// v4 one found and one not.
    fn response(v: i16) -> FindCoordinatorResponse {
        if v < 4 {
            return FindCoordinatorResponse {
                throttle_time_ms: if v >= 1 { 3 } else { 0 },
                error_code: 0,
                error_message: None,
                node_id: 2,
                host: "127.0.0.1".into(),
                port: 9093,
                coordinators: vec![],
            };
        }
        FindCoordinatorResponse {
            throttle_time_ms: 3,
            coordinators: vec![
                Coordinator {
                    key: "tx-1".into(),
                    node_id: 2,
                    host: "127.0.0.1".into(),
                    port: 9093,
                    error_code: 0,
                    error_message: None,
                },
                Coordinator {
                    key: "tx-2".into(),
                    node_id: -1,
                    host: String::new(),
                    port: -1,
                    error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE.0,
                    error_message: Some("loading".into()),
                },
            ],
            ..Default::default()
        }
    }

    /// The same response built with `kafka-protocol`.
    fn theirs(r: &FindCoordinatorResponse) -> kp::FindCoordinatorResponse {
        let s = |s: &str| StrBytes::from_string(s.to_owned());
        kp::FindCoordinatorResponse::default()
            .with_throttle_time_ms(r.throttle_time_ms)
            .with_error_code(r.error_code)
            .with_error_message(r.error_message.as_deref().map(s))
            .with_node_id(BrokerId(r.node_id))
            .with_host(s(&r.host))
            .with_port(r.port)
            .with_coordinators(
                r.coordinators
                    .iter()
                    .map(|c| {
                        TheirCoordinator::default()
                            .with_key(s(&c.key))
                            .with_node_id(BrokerId(c.node_id))
                            .with_host(s(&c.host))
                            .with_port(c.port)
                            .with_error_code(c.error_code)
                            .with_error_message(c.error_message.as_deref().map(s))
                    })
                    .collect(),
            )
    }

    #[test]
    fn responses_round_trip_through_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            let ours = response(v);
            let t = theirs(&ours);
            let mut all = vec![t.clone()];
            if is_flexible(v) {
                // tags we do not know, at the top and in a coordinator
                let mut tagged = t
                    .clone()
                    .with_unknown_tagged_field(9, bytes::Bytes::from_static(b"xy"));
                for c in &mut tagged.coordinators {
                    let tag = bytes::Bytes::from_static(b"z");
                    c.unknown_tagged_fields.insert(3, tag);
                }
                all.push(tagged);
            }
            let mut read_back = t.clone();
            if !(1..=3).contains(&v) {
                // where the field is absent, theirs reads an empty message
                read_back.error_message = Some(StrBytes::default());
            }
            agrees_with_kafka_protocol(v, &ours, &all, &read_back, R::decode, R::encode);
        }
    }

    #[test]
    fn truncated_responses_fail_cleanly() {
        for v in MIN_VERSION..=MAX_VERSION {
            let mut buf = Vec::new();
            response(v).encode(&mut buf, v);
            every_cut_fails(&buf, |b| FindCoordinatorResponse::decode(b, v));
        }
    }

    #[test]
    fn hostile_counts_fail_before_reserving() {
        fn refused_at_the_count<T>(r: Result<T, DecodeError>) -> bool {
            let what = "array count exceeds the remaining bytes";
            matches!(r, Err(DecodeError::Invalid { what: w, .. }) if w == what)
        }
        // v4: throttle time, then coordinators claiming 2^32-2 (compact)
        let mut b = vec![0; 4];
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        b.extend_from_slice(&[0; 32]);
        assert!(refused_at_the_count(FindCoordinatorResponse::decode(&b, 4)));
        // v6: 100 bytes hold 7 of the smallest coordinators (14 bytes:
        // empty key and host, null message), not the 10 claimed, though
        // they would hold 10 at one byte each
        let smallest = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut b = vec![0, 0, 0, 0, 11];
        for _ in 0..7 {
            b.extend_from_slice(&smallest);
        }
        b.extend_from_slice(&[0, 0]);
        assert!(refused_at_the_count(FindCoordinatorResponse::decode(&b, 6)));
        b[4] = 8; // 7 of them and a tag buffer
        assert_eq!(
            FindCoordinatorResponse::decode(&b[..104], 6)
                .unwrap()
                .coordinators
                .len(),
            7
        );
        // and a request's keys: 2^31-1 keys is not a v4 count in 8 bytes
        let mut r = vec![1];
        r.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07, 0, 0, 0]);
        assert!(refused_at_the_count(FindCoordinatorRequest::decode(&r, 4)));
        // v3's fields (null message, empty host), then hostile tag buffers
        let v3 = [&[0; 6][..], &[0], &[0; 4], &[1], &[0; 4]].concat();
        hostile_tag_buffers_fail(&v3, |b| FindCoordinatorResponse::decode(b, 3));
    }

    proptest! {
        #[test]
        fn hostile_responses_never_panic(v in MIN_VERSION..=MAX_VERSION, b in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = FindCoordinatorResponse::decode(&b, v);
        }
    }
}
