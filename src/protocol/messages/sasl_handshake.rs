//! SaslHandshake (key 17), versions 0-1 (`SaslHandshakeRequest.json`,
//! `SaslHandshakeResponse.json`; KIP-43, KIP-152); never flexible.
//!
//! The client names the SASL mechanism it wants; the broker answers with
//! an error code and the mechanisms it has enabled on the listener. v1
//! means the SASL tokens then travel in SaslAuthenticate requests (KIP-152)
//! rather than as raw frames, which is the only way this crate speaks.
//!
//! ```text
//! request:  Mechanism STRING
//! response: ErrorCode int16, Mechanisms [STRING]
//! ```

use super::api::Api;
use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// The API row (see [`super::api`]). Only v1 is sent: v0 would carry the
/// tokens as raw frames.
pub const API: Api = Api {
    key: 17,
    name: "SaslHandshake",
    min_version: 1,
    max_version: 1,
    flexible_from: i16::MAX,
};

/// The request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslHandshakeRequest {
    /// The mechanism asked for (`PLAIN`, `SCRAM-SHA-256`, ...).
    pub mechanism: String,
}

impl SaslHandshakeRequest {
    /// Appends the body at `version`.
    pub fn encode(&self, buf: &mut Vec<u8>, _version: i16) {
        Writer::new(buf, false).string(&self.mechanism);
    }

    /// Reads a body (tests and fakes).
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], _version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, false);
        Ok(SaslHandshakeRequest {
            mechanism: d.string()?.to_owned(),
        })
    }
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslHandshakeResponse {
    /// 0, or UNSUPPORTED_SASL_MECHANISM (33), ILLEGAL_SASL_STATE (34), ...
    pub error_code: i16,
    /// The mechanisms the broker has enabled.
    pub mechanisms: Vec<String>,
}

impl SaslHandshakeResponse {
    /// Reads a body sent for a request at `version`.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], _version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, false);
        let error_code = d.i16()?;
        let min = d.min_string_size();
        let mechanisms = d.array_of(min, |d| Ok(d.string()?.to_owned()))?;
        Ok(SaslHandshakeResponse {
            error_code,
            mechanisms,
        })
    }

    /// Appends the body at `version` (tests and fakes).
    pub fn encode(&self, buf: &mut Vec<u8>, _version: i16) {
        let mut w = Writer::new(buf, false);
        w.i16(self.error_code);
        w.array_len(self.mechanisms.len());
        for m in &self.mechanisms {
            w.string(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{agrees_with_kafka_protocol, every_cut_fails};
    use super::*;
    use kafka_protocol::messages as kp;
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use proptest::prelude::*;

    #[test]
    fn requests_decode_with_kafka_protocol() {
        let req = SaslHandshakeRequest {
            mechanism: "SCRAM-SHA-512".into(),
        };
        let mut buf = Vec::new();
        req.encode(&mut buf, 1);
        let mut b = bytes::Bytes::from(buf.clone());
        let t = kp::SaslHandshakeRequest::decode(&mut b, 1).unwrap();
        assert!(b.is_empty());
        assert_eq!(&*t.mechanism, "SCRAM-SHA-512");
        assert_eq!(SaslHandshakeRequest::decode(&buf, 1).unwrap(), req);
    }

    #[test]
    fn responses_round_trip_through_kafka_protocol() {
        let ours = SaslHandshakeResponse {
            error_code: 33,
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
        };
        let t = kp::SaslHandshakeResponse::default()
            .with_error_code(33)
            .with_mechanisms(vec![
                StrBytes::from_static_str("PLAIN"),
                StrBytes::from_static_str("SCRAM-SHA-256"),
            ]);
        agrees_with_kafka_protocol(
            1,
            &ours,
            std::slice::from_ref(&t),
            &t,
            SaslHandshakeResponse::decode,
            SaslHandshakeResponse::encode,
        );
    }

    #[test]
    fn truncated_responses_fail_cleanly() {
        let mut buf = Vec::new();
        SaslHandshakeResponse {
            error_code: 0,
            mechanisms: vec!["PLAIN".into()],
        }
        .encode(&mut buf, 1);
        every_cut_fails(&buf, |b| SaslHandshakeResponse::decode(b, 1));
    }

    proptest! {
        #[test]
        fn hostile_responses_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = SaslHandshakeResponse::decode(&b, 1);
        }
    }
}
