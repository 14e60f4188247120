//! ApiVersions (key 18), versions 0-3 (`ApiVersionsRequest.json`,
//! `ApiVersionsResponse.json`; KIP-35, KIP-511, KIP-584).
//!
//! A client sends it first on every connection to learn which versions of
//! each API the broker speaks. We try v3 (flexible, carries the client's
//! software name and version) and fall back to v0 when the broker answers
//! UNSUPPORTED_VERSION; that error reply is always in the v0 layout, and the
//! response header is always v0, even for flexible versions.
//!
//! ```text
//! request  v3+: ClientSoftwareName COMPACT_STRING,
//!               ClientSoftwareVersion COMPACT_STRING, TAG_BUFFER
//! response:     ErrorCode int16,
//!               ApiKeys [ApiKey int16, MinVersion int16, MaxVersion int16 (+TAG_BUFFER v3+)],
//!               v1+: ThrottleTimeMs int32,
//!               v3+: TAG_BUFFER {0: SupportedFeatures, 1: FinalizedFeaturesEpoch,
//!                                2: FinalizedFeatures, 3: ZkMigrationReady}
//! ```

use super::api::Api;
use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::{DecodeError, ErrorCode};

/// The API: its key, the versions we send and where flexible versions
/// begin (see [`super::api`]).
pub const API: Api = Api {
    key: 18,
    name: "ApiVersions",
    min_version: 0,
    max_version: 3,
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

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsRequest<'a> {
    /// v3+: name of the client library; must match
    /// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
    pub client_software_name: &'a str,
    /// v3+: its version, same pattern.
    pub client_software_version: &'a str,
}

impl ApiVersionsRequest<'_> {
    /// Appends the body at `version`.
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        if version >= 3 {
            let mut w = Writer::new(buf, true);
            w.string(self.client_software_name);
            w.string(self.client_software_version);
            w.tagged_fields_empty();
        }
    }
}

/// One API's supported range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionRange {
    /// The API key.
    pub api_key: i16,
    /// Lowest version the broker accepts.
    pub min_version: i16,
    /// Highest version the broker accepts.
    pub max_version: i16,
}

/// A finalized feature level (KIP-584), e.g. `transaction.version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalizedFeature {
    /// Feature name.
    pub name: String,
    /// Highest finalized level.
    pub max_version_level: i16,
    /// Lowest finalized level.
    pub min_version_level: i16,
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersionsResponse {
    /// 0, or UNSUPPORTED_VERSION if the request's version was too new.
    pub error_code: i16,
    /// What the broker supports.
    pub api_keys: Vec<ApiVersionRange>,
    /// v1+.
    pub throttle_time_ms: i32,
    /// v3+ tag 1; -1 if absent.
    pub finalized_features_epoch: i64,
    /// v3+ tag 2.
    pub finalized_features: Vec<FinalizedFeature>,
}

impl ApiVersionsResponse {
    /// The range the broker supports for `api_key`, if any.
    pub fn range(&self, api_key: i16) -> Option<ApiVersionRange> {
        self.api_keys.iter().copied().find(|r| r.api_key == api_key)
    }

    /// The finalized level of feature `name` (its `max_version_level`),
    /// if the broker finalizes it (KIP-584; ApiVersions v3+).
    pub fn finalized_level(&self, name: &str) -> Option<i16> {
        self.finalized_features
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.max_version_level)
    }

    /// Reads a response body sent for a request at `version`. An error reply
    /// (UNSUPPORTED_VERSION) is read in the v0 layout, as brokers send it.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let code = Decoder::new(body, false).i16()?;
        if code == ErrorCode::UNSUPPORTED_VERSION.0 && version > 0 {
            // Brokers answer in the v0 layout, but not all of them well
            // (librdkafka's mock writes a compact array count into it): read
            // the list if it parses, and otherwise keep just the error.
            return Ok(Self::decode(body, 0).unwrap_or(ApiVersionsResponse {
                error_code: code,
                finalized_features_epoch: -1,
                ..Default::default()
            }));
        }
        let mut d = Decoder::new(body, is_flexible(version));
        let mut r = ApiVersionsResponse {
            error_code: d.i16()?,
            finalized_features_epoch: -1,
            ..Default::default()
        };
        let min_range = 6 + d.min_tags_size();
        r.api_keys = d.array_of(min_range, |d| {
            let range = ApiVersionRange {
                api_key: d.i16()?,
                min_version: d.i16()?,
                max_version: d.i16()?,
            };
            d.skip_tagged_fields()?;
            Ok(range)
        })?;
        if version >= 1 && d.remaining() > 0 {
            r.throttle_time_ms = d.i32()?;
        }
        let (mut epoch, mut features) = (-1, Vec::new());
        d.tagged_fields(|tag, t| match tag {
            1 => {
                epoch = t.i64()?;
                Ok(true)
            }
            2 => {
                // name, two int16s and a tag buffer (tags are flexible)
                features = t.array_of(1 + 2 + 2 + 1, |t| {
                    let f = FinalizedFeature {
                        name: t.string()?.to_owned(),
                        max_version_level: t.i16()?,
                        min_version_level: t.i16()?,
                    };
                    t.skip_tagged_fields()?;
                    Ok(f)
                })?;
                Ok(true)
            }
            _ => Ok(false),
        })?;
        r.finalized_features_epoch = epoch;
        r.finalized_features = features;
        Ok(r)
    }

    /// Appends the body at `version` (used by tests and fakes).
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        w.i16(self.error_code);
        w.array_len(self.api_keys.len());
        for k in &self.api_keys {
            w.i16(k.api_key);
            w.i16(k.min_version);
            w.i16(k.max_version);
            w.tagged_fields_empty();
        }
        if version >= 1 {
            w.i32(self.throttle_time_ms);
        }
        if w.flexible {
            if self.finalized_features.is_empty() {
                w.uvarint(0);
            } else {
                let mut tag = Vec::new();
                let mut t = Writer::new(&mut tag, true);
                t.array_len(self.finalized_features.len());
                for f in &self.finalized_features {
                    t.string(&f.name);
                    t.i16(f.max_version_level);
                    t.i16(f.min_version_level);
                    t.tagged_fields_empty();
                }
                let epoch = self.finalized_features_epoch.to_be_bytes();
                w.uvarint(2);
                w.uvarint(1);
                w.uvarint(8);
                w.buf.extend_from_slice(&epoch);
                w.uvarint(2);
                w.uvarint(tag.len() as u32);
                w.buf.extend_from_slice(&tag);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Decodable, Encodable};

    #[test]
    fn requests_decode_with_kafka_protocol() {
        for v in MIN_VERSION..=MAX_VERSION {
            let req = ApiVersionsRequest {
                client_software_name: "kafka-producer-rs",
                client_software_version: "0.1.0",
            };
            let mut buf = Vec::new();
            req.encode(&mut buf, v);
            let mut b = bytes::Bytes::from(buf);
            let t = kafka_protocol::messages::ApiVersionsRequest::decode(&mut b, v).unwrap();
            if v >= 3 {
                assert_eq!(&*t.client_software_name, "kafka-producer-rs");
                assert_eq!(&*t.client_software_version, "0.1.0");
            }
            assert!(b.is_empty(), "v{v}: bytes left over");
        }
    }

    #[test]
    fn responses_from_kafka_protocol_decode() {
        use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey};
        for v in 0..=3i16 {
            let mut theirs = kafka_protocol::messages::ApiVersionsResponse::default()
                .with_api_keys(vec![
                    ApiVersion::default()
                        .with_api_key(0)
                        .with_min_version(3)
                        .with_max_version(11),
                    ApiVersion::default()
                        .with_api_key(3)
                        .with_min_version(0)
                        .with_max_version(12),
                ])
                .with_throttle_time_ms(if v >= 1 { 7 } else { 0 });
            if v >= 3 {
                theirs = theirs
                    .with_finalized_features_epoch(42)
                    .with_finalized_features(vec![FinalizedFeatureKey::default()
                        .with_name("transaction.version".into())
                        .with_max_version_level(2)
                        .with_min_version_level(0)]);
                // a tag we do not know, to be skipped by length
                theirs = theirs.with_zk_migration_ready(true);
            }
            let mut b = bytes::BytesMut::new();
            theirs.encode(&mut b, v).unwrap();
            let ours = ApiVersionsResponse::decode(&b, v).unwrap();
            assert_eq!(ours.range(0).unwrap().max_version, 11);
            assert_eq!(ours.range(3).unwrap().max_version, 12);
            if v >= 1 {
                assert_eq!(ours.throttle_time_ms, 7);
            }
            if v >= 3 {
                assert_eq!(ours.finalized_features_epoch, 42);
                assert_eq!(ours.finalized_features[0].name, "transaction.version");
                assert_eq!(ours.finalized_features[0].max_version_level, 2);
                assert_eq!(ours.finalized_level("transaction.version"), Some(2));
                assert_eq!(ours.finalized_level("group.version"), None);
            }
            // and ours round-trips through theirs
            let mut buf = Vec::new();
            ours.encode(&mut buf, v);
            let mut bb = bytes::Bytes::from(buf);
            let back = kafka_protocol::messages::ApiVersionsResponse::decode(&mut bb, v).unwrap();
            assert_eq!(back.api_keys.len(), 2);
            assert!(bb.is_empty());
        }
    }

    #[test]
    fn hostile_counts_fail_before_reserving() {
        let keys = [&[0, 0][..], &i32::MAX.to_be_bytes(), &[0; 12]].concat();
        for v in 0..=2 {
            assert!(ApiVersionsResponse::decode(&keys, v).is_err(), "v{v}");
        }
        // v3: finalized features in their tag, claiming 2^32-2
        let mut b = vec![0, 0, 1, 0, 0, 0, 0, 1, 2, 10];
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0]);
        assert!(ApiVersionsResponse::decode(&b, 3).is_err());
    }

    proptest::proptest! {
        #[test]
        fn hostile_responses_never_panic(v in 0i16..=3, b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            let _ = ApiVersionsResponse::decode(&b, v);
        }
    }

    #[test]
    fn unsupported_version_reply_is_read_as_v0() {
        // A broker that only knows v0-v2 answers a v3 request in v0 layout.
        let reply = ApiVersionsResponse {
            error_code: ErrorCode::UNSUPPORTED_VERSION.0,
            api_keys: vec![ApiVersionRange {
                api_key: 18,
                min_version: 0,
                max_version: 2,
            }],
            ..Default::default()
        };
        let mut buf = Vec::new();
        reply.encode(&mut buf, 0);
        let got = ApiVersionsResponse::decode(&buf, 3).unwrap();
        assert_eq!(got.error_code, 35);
        assert_eq!(got.range(18).unwrap().max_version, 2);
        // librdkafka's mock (2.0.2) sends this malformed body; the error
        // code must still come through so the caller falls back to v0.
        let mock = [
            0x00, 0x23, 0x01, 0x00, 0x12, 0x00, 0x00, 0x00, 0x02, 0, 0, 0, 0,
        ];
        let got = ApiVersionsResponse::decode(&mock, 3).unwrap();
        assert_eq!(got.error_code, 35);
    }
}
