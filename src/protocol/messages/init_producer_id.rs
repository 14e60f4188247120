//! InitProducerId (key 22), versions 0-5 (`InitProducerIdRequest.json`,
//! `InitProducerIdResponse.json`; KIP-98, KIP-360, KIP-588, KIP-890);
//! flexible from v2.
//!
//! An idempotent producer sends it (with a null transactional id) to any
//! broker, a transactional one to its transaction coordinator (found with
//! [`super::find_coordinator`]), to get a producer id and epoch. From v3 it
//! carries the id and epoch it has, so that after an INVALID_PRODUCER_EPOCH
//! the coordinator can bump the epoch instead of handing out a new id
//! (KIP-360). v4 only allows the PRODUCER_FENCED error (KIP-588), v5
//! TRANSACTION_ABORTABLE (KIP-890); their layouts are v3's.
//!
//! ```text
//! request:  TransactionalId NULLABLE_STRING, TransactionTimeoutMs int32,
//!           v3+: ProducerId int64, ProducerEpoch int16
//! response: ThrottleTimeMs int32, ErrorCode int16,
//!           ProducerId int64, ProducerEpoch int16
//! ```
//!
//! We stop at v5, the newest version the `kafka-protocol` crate our tests
//! check against can decode a request of. v6 adds two-phase commit
//! (KIP-939: Enable2Pc and KeepPreparedTxn in the request,
//! OngoingTxnProducerId and OngoingTxnProducerEpoch in the response),
//! which this producer does not do: were v6 sent, both flags would be
//! false, which asks for exactly what v5 does.

use super::api::Api;
use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// The API: its key, the versions we send and where flexible versions
/// begin (see [`super::api`]).
pub const API: Api = Api {
    key: 22,
    name: "InitProducerId",
    min_version: 0,
    max_version: 5,
    flexible_from: 2,
};
/// The API key.
pub const API_KEY: i16 = API.key;
/// The lowest version we send.
pub const MIN_VERSION: i16 = API.min_version;
/// The highest version we send (v6 is two-phase commit, KIP-939).
pub const MAX_VERSION: i16 = API.max_version;

/// True if `version` uses compact types and tag buffers.
pub fn is_flexible(version: i16) -> bool {
    API.is_flexible(version)
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    /// The transactional id; `None` for an idempotent producer.
    pub transactional_id: Option<String>,
    /// How long the coordinator lets a transaction stay open before it
    /// aborts it (`transaction.timeout.ms`); Java sends it whether or not
    /// there is a transactional id.
    pub transaction_timeout_ms: i32,
    /// v3+: the producer id we have, or -1 for a new one.
    pub producer_id: i64,
    /// v3+: its epoch, or -1.
    pub producer_epoch: i16,
}

impl InitProducerIdRequest {
    /// Appends the body at `version`.
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        w.nullable_string(self.transactional_id.as_deref());
        w.i32(self.transaction_timeout_ms);
        if version >= 3 {
            w.i64(self.producer_id);
            w.i16(self.producer_epoch);
        }
        w.tagged_fields_empty();
    }

    /// Reads a body at `version` (used by tests and fakes); before v3 the
    /// producer id and epoch read as -1.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let mut r = InitProducerIdRequest {
            transactional_id: d.nullable_string()?.map(str::to_owned),
            transaction_timeout_ms: d.i32()?,
            producer_id: -1,
            producer_epoch: -1,
        };
        if version >= 3 {
            r.producer_id = d.i64()?;
            r.producer_epoch = d.i16()?;
        }
        d.skip_tagged_fields()?;
        Ok(r)
    }
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    /// How long the broker throttled the request (KIP-219).
    pub throttle_time_ms: i32,
    /// 0 or the error (COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR,
    /// CONCURRENT_TRANSACTIONS, PRODUCER_FENCED, ...).
    pub error_code: i16,
    /// The producer id, -1 on error.
    pub producer_id: i64,
    /// Its epoch, -1 on error.
    pub producer_epoch: i16,
}

impl InitProducerIdResponse {
    /// Reads a body sent for a request at `version`.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let r = InitProducerIdResponse {
            throttle_time_ms: d.i32()?,
            error_code: d.i16()?,
            producer_id: d.i64()?,
            producer_epoch: d.i16()?,
        };
        d.skip_tagged_fields()?;
        Ok(r)
    }

    /// Appends the body at `version` (used by tests and fakes).
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        w.i32(self.throttle_time_ms);
        w.i16(self.error_code);
        w.i64(self.producer_id);
        w.i16(self.producer_epoch);
        w.tagged_fields_empty();
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        agrees_with_kafka_protocol, every_cut_fails, hostile_tag_buffers_fail,
    };
    use super::InitProducerIdResponse as R;
    use super::*;
    use crate::protocol::ErrorCode;
    use kafka_protocol::messages::{self as kp, ProducerId};
    use kafka_protocol::protocol::Decodable;
    use proptest::prelude::*;

    fn request(v: i16, transactional_id: Option<&str>) -> InitProducerIdRequest {
        InitProducerIdRequest {
            transactional_id: transactional_id.map(str::to_owned),
            transaction_timeout_ms: 60_000,
            producer_id: if v >= 3 { 4000 } else { -1 },
            producer_epoch: if v >= 3 { 7 } else { -1 },
        }
    }

    #[test]
    fn requests_decode_with_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            for tid in [None, Some("tx-1")] {
                let req = request(v, tid);
                let mut buf = Vec::new();
                req.encode(&mut buf, v);
                let mut b = bytes::Bytes::from(buf.clone());
                let t = kp::InitProducerIdRequest::decode(&mut b, v).unwrap();
                assert!(b.is_empty(), "v{v}: bytes left over");
                assert_eq!(t.transactional_id.as_deref().map(|s| &**s), tid, "v{v}");
                assert_eq!(t.transaction_timeout_ms, 60_000);
                assert_eq!(
                    (t.producer_id.0, t.producer_epoch),
                    (req.producer_id, req.producer_epoch)
                );
                assert_eq!(InitProducerIdRequest::decode(&buf, v).unwrap(), req, "v{v}");
            }
        }
    }

    fn response(error_code: i16) -> InitProducerIdResponse {
        let ok = error_code == 0;
        InitProducerIdResponse {
            throttle_time_ms: 5,
            error_code,
            producer_id: if ok { 4000 } else { -1 },
            producer_epoch: if ok { 3 } else { -1 },
        }
    }

    #[test]
    fn responses_round_trip_through_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            for code in [0, ErrorCode::PRODUCER_FENCED.0] {
                let ours = response(code);
                let t = kp::InitProducerIdResponse::default()
                    .with_throttle_time_ms(ours.throttle_time_ms)
                    .with_error_code(code)
                    .with_producer_id(ProducerId(ours.producer_id))
                    .with_producer_epoch(ours.producer_epoch);
                let mut theirs = vec![t.clone()];
                if is_flexible(v) {
                    let tag = bytes::Bytes::from_static(b"xy");
                    theirs.push(t.clone().with_unknown_tagged_field(9, tag));
                }
                agrees_with_kafka_protocol(v, &ours, &theirs, &t, R::decode, R::encode);
            }
        }
    }

    #[test]
    fn truncated_responses_fail_cleanly() {
        for v in MIN_VERSION..=MAX_VERSION {
            let mut buf = Vec::new();
            response(0).encode(&mut buf, v);
            every_cut_fails(&buf, |b| InitProducerIdResponse::decode(b, v));
        }
    }

    #[test]
    fn hostile_tag_buffers_fail_before_reserving() {
        for v in API.flexible_from..=MAX_VERSION {
            hostile_tag_buffers_fail(&[0; 16], |b| InitProducerIdResponse::decode(b, v));
        }
    }

    proptest! {
        #[test]
        fn hostile_responses_never_panic(v in MIN_VERSION..=MAX_VERSION, b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = InitProducerIdResponse::decode(&b, v);
        }
    }
}
