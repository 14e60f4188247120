//! One row per API this crate speaks: its key, Kafka's name for it, the
//! versions we send, and from which version it is flexible (KIP-482). The
//! header versions follow from those, so a new API is one [`Api`] constant
//! in its module plus a line in [`APIS`]; the connection code asks the row
//! and has no table of its own to keep in step.

use std::ops::RangeInclusive;

/// What the protocol layer and the connection need to know about an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    /// The API key.
    pub key: i16,
    /// Kafka's name for it, for errors and logs.
    pub name: &'static str,
    /// The lowest version we send.
    pub min_version: i16,
    /// The highest version we send.
    pub max_version: i16,
    /// The first flexible version (compact types and tag buffers);
    /// `i16::MAX` if none is.
    pub flexible_from: i16,
}

impl Api {
    /// The versions we send.
    pub const fn versions(&self) -> RangeInclusive<i16> {
        self.min_version..=self.max_version
    }

    /// True if `version` uses compact types and tag buffers.
    pub const fn is_flexible(&self, version: i16) -> bool {
        version >= self.flexible_from
    }

    /// The request header version for `version`: 2 when flexible, else 1.
    pub const fn request_header_version(&self, version: i16) -> i16 {
        if self.is_flexible(version) {
            2
        } else {
            1
        }
    }

    /// The response header version for `version`: 1 when flexible, else
    /// 0; always 0 for ApiVersions (KIP-511), so that a client can read the
    /// answer of a broker that did not understand its request.
    pub const fn response_header_version(&self, version: i16) -> i16 {
        if self.key != super::api_versions::API.key && self.is_flexible(version) {
            1
        } else {
            0
        }
    }
}

/// Every API we send.
pub const APIS: &[Api] = &[
    super::produce::API,
    super::metadata::API,
    super::api_versions::API,
    super::init_producer_id::API,
    super::find_coordinator::API,
    super::end_txn::API,
    super::add_partitions_to_txn::API,
    super::add_offsets_to_txn::API,
    super::txn_offset_commit::API,
    super::sasl_handshake::API,
    super::sasl_authenticate::API,
];

/// The row of `key`, if we send that API.
pub fn by_key(key: i16) -> Option<&'static Api> {
    APIS.iter().find(|a| a.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages as kp;
    use kafka_protocol::protocol::{HeaderVersion, Message};

    /// Checks our row against `kafka-protocol`'s generated code for the
    /// request and response of one API.
    fn check<Req: Message + HeaderVersion, Resp: Message + HeaderVersion>(api: &Api, key: i16) {
        assert_eq!(api.key, key, "{}", api.name);
        for v in api.versions() {
            assert!(
                (Req::VERSIONS.min..=Req::VERSIONS.max).contains(&v)
                    && (Resp::VERSIONS.min..=Resp::VERSIONS.max).contains(&v),
                "{} v{v} is not a version Kafka defines",
                api.name
            );
            assert_eq!(
                api.request_header_version(v),
                Req::header_version(v),
                "{} v{v} request header",
                api.name
            );
            assert_eq!(
                api.response_header_version(v),
                Resp::header_version(v),
                "{} v{v} response header",
                api.name
            );
        }
    }

    #[test]
    fn every_row_agrees_with_kafka_protocol_at_every_version_we_send() {
        use kafka_protocol::messages::ApiKey;
        check::<kp::ProduceRequest, kp::ProduceResponse>(
            &super::super::produce::API,
            ApiKey::Produce as i16,
        );
        check::<kp::MetadataRequest, kp::MetadataResponse>(
            &super::super::metadata::API,
            ApiKey::Metadata as i16,
        );
        check::<kp::ApiVersionsRequest, kp::ApiVersionsResponse>(
            &super::super::api_versions::API,
            ApiKey::ApiVersions as i16,
        );
        check::<kp::InitProducerIdRequest, kp::InitProducerIdResponse>(
            &super::super::init_producer_id::API,
            ApiKey::InitProducerId as i16,
        );
        check::<kp::FindCoordinatorRequest, kp::FindCoordinatorResponse>(
            &super::super::find_coordinator::API,
            ApiKey::FindCoordinator as i16,
        );
        check::<kp::EndTxnRequest, kp::EndTxnResponse>(
            &super::super::end_txn::API,
            ApiKey::EndTxn as i16,
        );
        check::<kp::AddPartitionsToTxnRequest, kp::AddPartitionsToTxnResponse>(
            &super::super::add_partitions_to_txn::API,
            ApiKey::AddPartitionsToTxn as i16,
        );
        check::<kp::AddOffsetsToTxnRequest, kp::AddOffsetsToTxnResponse>(
            &super::super::add_offsets_to_txn::API,
            ApiKey::AddOffsetsToTxn as i16,
        );
        check::<kp::TxnOffsetCommitRequest, kp::TxnOffsetCommitResponse>(
            &super::super::txn_offset_commit::API,
            ApiKey::TxnOffsetCommit as i16,
        );
        check::<kp::SaslHandshakeRequest, kp::SaslHandshakeResponse>(
            &super::super::sasl_handshake::API,
            ApiKey::SaslHandshake as i16,
        );
        check::<kp::SaslAuthenticateRequest, kp::SaslAuthenticateResponse>(
            &super::super::sasl_authenticate::API,
            ApiKey::SaslAuthenticate as i16,
        );
        // Keys are unique, and each is found by its key.
        for a in APIS {
            assert_eq!(by_key(a.key), Some(a));
        }
        assert_eq!(by_key(9999), None);
    }
}
