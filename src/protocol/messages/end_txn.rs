//! EndTxn (key 26), versions 0-5 (`EndTxnRequest.json`,
//! `EndTxnResponse.json`; KIP-98, KIP-588, KIP-890); flexible from v3.
//!
//! A transactional producer sends it to its transaction coordinator to
//! commit or abort the open transaction. v2 only allows the
//! PRODUCER_FENCED error (KIP-588), v4 TRANSACTION_ABORTABLE (KIP-890 part
//! 1). v5 is transactions v2 (KIP-890 part 2): the coordinator bumps the
//! epoch at the end of every transaction and answers with the producer id
//! and epoch to use next. A coordinator takes a v5 request as "this
//! producer speaks transactions v2", so, as Java's producer does, send v5
//! only when the broker's finalized `transaction.version` is 2 or more (the
//! caller's choice; this module only encodes).
//!
//! ```text
//! request:  TransactionalId STRING, ProducerId int64, ProducerEpoch int16,
//!           Committed bool
//! response: ThrottleTimeMs int32, ErrorCode int16,
//!           v5+: ProducerId int64, ProducerEpoch int16
//! ```

use super::api::Api;
use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// The API: its key, the versions we send and where flexible versions
/// begin (see [`super::api`]).
pub const API: Api = Api {
    key: 26,
    name: "EndTxn",
    min_version: 0,
    max_version: 5,
    flexible_from: 3,
};
/// The API key.
pub const API_KEY: i16 = API.key;
/// The lowest version we send.
pub const MIN_VERSION: i16 = API.min_version;
/// The highest version we send; v5 only with transactions v2 (KIP-890).
pub const MAX_VERSION: i16 = API.max_version;
/// The highest version of the transactions v1 flow.
pub const TXN_V1_MAX_VERSION: i16 = 4;

/// True if `version` uses compact types and tag buffers.
pub fn is_flexible(version: i16) -> bool {
    API.is_flexible(version)
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnRequest {
    /// The transaction's transactional id.
    pub transactional_id: String,
    /// The producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// True to commit, false to abort.
    pub committed: bool,
}

impl EndTxnRequest {
    /// Appends the body at `version`.
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        w.string(&self.transactional_id);
        w.i64(self.producer_id);
        w.i16(self.producer_epoch);
        w.bool(self.committed);
        w.tagged_fields_empty();
    }

    /// Reads a body at `version` (used by tests and fakes).
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let r = EndTxnRequest {
            transactional_id: d.string()?.to_owned(),
            producer_id: d.i64()?,
            producer_epoch: d.i16()?,
            committed: d.bool()?,
        };
        d.skip_tagged_fields()?;
        Ok(r)
    }
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnResponse {
    /// How long the broker throttled the request (KIP-219).
    pub throttle_time_ms: i32,
    /// 0 or the error (NOT_COORDINATOR, CONCURRENT_TRANSACTIONS,
    /// INVALID_TXN_STATE, PRODUCER_FENCED, ...).
    pub error_code: i16,
    /// v5+: the producer id to use next; -1 before v5.
    pub producer_id: i64,
    /// v5+: the epoch to use next; -1 before v5.
    pub producer_epoch: i16,
}

impl EndTxnResponse {
    /// Reads a body sent for a request at `version`.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let mut r = EndTxnResponse {
            throttle_time_ms: d.i32()?,
            error_code: d.i16()?,
            producer_id: -1,
            producer_epoch: -1,
        };
        if version >= 5 {
            r.producer_id = d.i64()?;
            r.producer_epoch = d.i16()?;
        }
        d.skip_tagged_fields()?;
        Ok(r)
    }

    /// Appends the body at `version` (used by tests and fakes).
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        w.i32(self.throttle_time_ms);
        w.i16(self.error_code);
        if version >= 5 {
            w.i64(self.producer_id);
            w.i16(self.producer_epoch);
        }
        w.tagged_fields_empty();
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        agrees_with_kafka_protocol, every_cut_fails, hostile_tag_buffers_fail,
    };
    use super::EndTxnResponse as R;
    use super::*;
    use crate::protocol::ErrorCode;
    use kafka_protocol::messages::{self as kp, ProducerId};
    use kafka_protocol::protocol::Decodable;
    use proptest::prelude::*;

    #[test]
    fn requests_decode_with_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            for committed in [true, false] {
                let req = EndTxnRequest {
                    transactional_id: "tx-1".into(),
                    producer_id: 4000,
                    producer_epoch: 7,
                    committed,
                };
                let mut buf = Vec::new();
                req.encode(&mut buf, v);
                let mut b = bytes::Bytes::from(buf.clone());
                let t = kp::EndTxnRequest::decode(&mut b, v).unwrap();
                assert!(b.is_empty(), "v{v}: bytes left over");
                assert_eq!(&**t.transactional_id, "tx-1");
                assert_eq!((t.producer_id.0, t.producer_epoch), (4000, 7));
                assert_eq!(t.committed, committed);
                assert_eq!(EndTxnRequest::decode(&buf, v).unwrap(), req, "v{v}");
            }
        }
    }

    /// A response as `v` carries it: before v5 no id and epoch.
    fn response(v: i16, error_code: i16) -> EndTxnResponse {
        let next = v >= 5 && error_code == 0;
        EndTxnResponse {
            throttle_time_ms: 2,
            error_code,
            producer_id: if next { 4000 } else { -1 },
            producer_epoch: if next { 8 } else { -1 },
        }
    }

    #[test]
    fn responses_round_trip_through_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            for code in [0, ErrorCode::INVALID_TXN_STATE.0] {
                let ours = response(v, code);
                let t = kp::EndTxnResponse::default()
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
            response(v, 0).encode(&mut buf, v);
            every_cut_fails(&buf, |b| EndTxnResponse::decode(b, v));
        }
    }

    #[test]
    fn hostile_tag_buffers_fail_before_reserving() {
        for v in API.flexible_from..=MAX_VERSION {
            let fields = if v >= 5 { 16 } else { 6 };
            hostile_tag_buffers_fail(&vec![0; fields], |b| EndTxnResponse::decode(b, v));
        }
    }

    proptest! {
        #[test]
        fn hostile_responses_never_panic(v in MIN_VERSION..=MAX_VERSION, b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = EndTxnResponse::decode(&b, v);
        }
    }
}
