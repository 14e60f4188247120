//! AddOffsetsToTxn (key 25), versions 0-4 (`AddOffsetsToTxnRequest.json`,
//! `AddOffsetsToTxnResponse.json`); flexible from v3.
//!
//! `send_offsets_to_transaction` sends it to the transaction coordinator
//! first, so that the group's `__consumer_offsets` partition takes part in
//! the transaction; the offsets themselves then go to the group coordinator
//! in a TxnOffsetCommit (KIP-98).
//!
//! ```text
//! request:  TransactionalId STRING, ProducerId int64, ProducerEpoch int16,
//!           GroupId STRING
//! response: ThrottleTimeMs int32, ErrorCode int16
//! ```
//!
//! Every version has these fields. v1 answers before throttling, v2 may
//! answer PRODUCER_FENCED, v3 is flexible, and v4 tells the broker we
//! understand TRANSACTION_ABORTABLE (KIP-890), which whoever handles the
//! answer must then treat as abortable. Java's producer sends up to v4
//! under transactions v1; under transactions v2 (KIP-890 part 2) it sends
//! no AddOffsetsToTxn at all (TxnOffsetCommit v5 does its work), so there
//! is no v5.

use super::api::Api;
use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// The API: its key, the versions we send and where flexible versions
/// begin (see [`super::api`]).
pub const API: Api = Api {
    key: 25,
    name: "AddOffsetsToTxn",
    min_version: 0,
    max_version: 4,
    flexible_from: 3,
};
/// The API key.
pub const API_KEY: i16 = API.key;
/// The lowest version we send.
pub const MIN_VERSION: i16 = API.min_version;
/// The highest version we send, and the highest there is.
pub const MAX_VERSION: i16 = API.max_version;

/// True if `version` uses compact types and tag buffers.
pub fn is_flexible(version: i16) -> bool {
    API.is_flexible(version)
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOffsetsToTxnRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id it holds.
    pub producer_id: i64,
    /// That producer id's epoch.
    pub producer_epoch: i16,
    /// The consumer group whose offsets the transaction will commit.
    pub group_id: String,
}

impl AddOffsetsToTxnRequest {
    /// Appends the body at `version`.
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        w.string(&self.transactional_id);
        w.i64(self.producer_id);
        w.i16(self.producer_epoch);
        w.string(&self.group_id);
        w.tagged_fields_empty();
    }

    /// Reads a body at `version` (used by tests and fakes).
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let r = AddOffsetsToTxnRequest {
            transactional_id: d.string()?.to_owned(),
            producer_id: d.i64()?,
            producer_epoch: d.i16()?,
            group_id: d.string()?.to_owned(),
        };
        d.skip_tagged_fields()?;
        Ok(r)
    }
}

/// The response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddOffsetsToTxnResponse {
    /// How long the broker throttled the request (KIP-219).
    pub throttle_time_ms: i32,
    /// 0 or the error.
    pub error_code: i16,
}

impl AddOffsetsToTxnResponse {
    /// Reads a body sent for a request at `version`.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let r = AddOffsetsToTxnResponse {
            throttle_time_ms: d.i32()?,
            error_code: d.i16()?,
        };
        d.skip_tagged_fields()?;
        Ok(r)
    }

    /// Appends the body at `version` (used by tests and fakes).
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        w.i32(self.throttle_time_ms);
        w.i16(self.error_code);
        w.tagged_fields_empty();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::partition_errors::tests::unknown_tags;
    use crate::protocol::messages::testing::ours_through_kafka_protocol;
    use kafka_protocol::messages::ProducerId;
    use kafka_protocol::protocol::Decodable;
    use proptest::prelude::*;

    #[test]
    fn requests_decode_with_kafka_protocol() {
        let req = AddOffsetsToTxnRequest {
            transactional_id: "tx-1".into(),
            producer_id: 4000,
            producer_epoch: 3,
            group_id: "group-a".into(),
        };
        for v in MIN_VERSION..=MAX_VERSION {
            let mut buf = Vec::new();
            req.encode(&mut buf, v);
            let mut b = bytes::Bytes::from(buf.clone());
            let t = kafka_protocol::messages::AddOffsetsToTxnRequest::decode(&mut b, v).unwrap();
            assert!(b.is_empty(), "v{v}: bytes left over");
            assert_eq!(&**t.transactional_id, "tx-1");
            assert_eq!(t.producer_id, ProducerId(4000));
            assert_eq!(t.producer_epoch, 3);
            assert_eq!(&**t.group_id, "group-a");
            assert_eq!(AddOffsetsToTxnRequest::decode(&buf, v).unwrap(), req);
        }
    }

    #[test]
    fn responses_round_trip_through_kafka_protocol() {
        use kafka_protocol::messages::AddOffsetsToTxnResponse as Theirs;
        let ours = AddOffsetsToTxnResponse {
            throttle_time_ms: 7,
            error_code: 51,
        };
        for v in MIN_VERSION..=MAX_VERSION {
            ours_through_kafka_protocol(
                v,
                is_flexible(v),
                &ours,
                AddOffsetsToTxnResponse::decode,
                AddOffsetsToTxnResponse::encode,
                |t: &Theirs| assert_eq!((t.throttle_time_ms, t.error_code), (7, 51)),
                |t| t.unknown_tagged_fields = unknown_tags(),
            );
        }
    }

    #[test]
    fn hostile_tag_counts_fail_before_reading() {
        // v3: a tag buffer claiming 2^32-1 tags in what is left
        let b = [0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0];
        assert!(matches!(
            AddOffsetsToTxnResponse::decode(&b, 3),
            Err(DecodeError::Invalid { .. })
        ));
    }

    proptest! {
        #[test]
        fn truncated_responses_fail_cleanly(v in MIN_VERSION..=MAX_VERSION, cut in 0usize..400) {
            let mut buf = Vec::new();
            AddOffsetsToTxnResponse { throttle_time_ms: 1, error_code: 0 }.encode(&mut buf, v);
            let cut = cut % buf.len();
            prop_assert!(AddOffsetsToTxnResponse::decode(&buf[..cut], v).is_err());
        }

        #[test]
        fn hostile_responses_never_panic(v in MIN_VERSION..=MAX_VERSION, b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = AddOffsetsToTxnResponse::decode(&b, v);
        }

        #[test]
        fn requests_round_trip(
            v in MIN_VERSION..=MAX_VERSION,
            id in "[a-z0-9.-]{1,20}",
            producer_id in any::<i64>(),
            producer_epoch in any::<i16>(),
            group in ".{0,20}",
        ) {
            let req = AddOffsetsToTxnRequest { transactional_id: id, producer_id, producer_epoch, group_id: group };
            let mut buf = Vec::new();
            req.encode(&mut buf, v);
            prop_assert_eq!(AddOffsetsToTxnRequest::decode(&buf, v).unwrap(), req);
        }
    }
}
