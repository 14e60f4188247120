//! SaslAuthenticate (key 36), versions 0-2 (`SaslAuthenticateRequest.json`,
//! `SaslAuthenticateResponse.json`; KIP-152, KIP-368); flexible from v2.
//!
//! Carries one SASL token each way. v1 adds the session's lifetime to the
//! answer (KIP-368): a connection must authenticate again before it ends.
//!
//! ```text
//! request:  AuthBytes BYTES
//! response: ErrorCode int16, ErrorMessage NULLABLE_STRING, AuthBytes BYTES,
//!           v1+: SessionLifetimeMs int64
//! ```

use super::api::Api;
use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// The API row (see [`super::api`]).
pub const API: Api = Api {
    key: 36,
    name: "SaslAuthenticate",
    min_version: 0,
    max_version: 2,
    flexible_from: 2,
};

/// True if `version` uses compact types and tag buffers.
pub fn is_flexible(version: i16) -> bool {
    API.is_flexible(version)
}

/// The request body: one token of the mechanism's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslAuthenticateRequest<'a> {
    /// The client's token.
    pub auth_bytes: &'a [u8],
}

impl SaslAuthenticateRequest<'_> {
    /// Appends the body at `version`.
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        w.bytes(self.auth_bytes);
        w.tagged_fields_empty();
    }

    /// Reads a body (tests and fakes); the token is copied out.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Vec<u8>, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let b = d.bytes()?.to_vec();
        d.skip_tagged_fields()?;
        Ok(b)
    }
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateResponse {
    /// 0, or SASL_AUTHENTICATION_FAILED (58), ILLEGAL_SASL_STATE (34), ...
    pub error_code: i16,
    /// The broker's words on a failure.
    pub error_message: Option<String>,
    /// The server's token.
    pub auth_bytes: Vec<u8>,
    /// v1+: how long the session may last, in ms; 0 for no limit (and
    /// always 0 before v1).
    pub session_lifetime_ms: i64,
}

impl SaslAuthenticateResponse {
    /// Reads a body sent for a request at `version`.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(body: &[u8], version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(body, is_flexible(version));
        let mut r = SaslAuthenticateResponse {
            error_code: d.i16()?,
            error_message: d.nullable_string()?.map(str::to_owned),
            auth_bytes: d.bytes()?.to_vec(),
            session_lifetime_ms: 0,
        };
        if version >= 1 {
            r.session_lifetime_ms = d.i64()?;
        }
        d.skip_tagged_fields()?;
        Ok(r)
    }

    /// Appends the body at `version` (tests and fakes).
    pub fn encode(&self, buf: &mut Vec<u8>, version: i16) {
        let mut w = Writer::new(buf, is_flexible(version));
        w.i16(self.error_code);
        w.nullable_string(self.error_message.as_deref());
        w.bytes(&self.auth_bytes);
        if version >= 1 {
            w.i64(self.session_lifetime_ms);
        }
        w.tagged_fields_empty();
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        agrees_with_kafka_protocol, every_cut_fails, hostile_tag_buffers_fail,
    };
    use super::*;
    use kafka_protocol::messages as kp;
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use proptest::prelude::*;

    #[test]
    fn requests_decode_with_kafka_protocol() {
        for v in API.versions() {
            let token = b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
            let mut buf = Vec::new();
            SaslAuthenticateRequest { auth_bytes: token }.encode(&mut buf, v);
            let mut b = bytes::Bytes::from(buf.clone());
            let t = kp::SaslAuthenticateRequest::decode(&mut b, v).unwrap();
            assert!(b.is_empty(), "v{v}: bytes left over");
            assert_eq!(&t.auth_bytes[..], token);
            assert_eq!(SaslAuthenticateRequest::decode(&buf, v).unwrap(), token);
        }
    }

    fn response(v: i16, message: Option<&str>) -> SaslAuthenticateResponse {
        SaslAuthenticateResponse {
            error_code: if message.is_some() { 58 } else { 0 },
            error_message: message.map(str::to_owned),
            auth_bytes: b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=".to_vec(),
            session_lifetime_ms: if v >= 1 { 3_600_000 } else { 0 },
        }
    }

    #[test]
    fn responses_round_trip_through_kafka_protocol() {
        for v in API.versions() {
            for message in [
                None,
                Some("Authentication failed: Invalid username or password"),
            ] {
                let ours = response(v, message);
                let t = kp::SaslAuthenticateResponse::default()
                    .with_error_code(ours.error_code)
                    .with_error_message(message.map(|m| StrBytes::from_string(m.to_owned())))
                    .with_auth_bytes(bytes::Bytes::from(ours.auth_bytes.clone()))
                    .with_session_lifetime_ms(ours.session_lifetime_ms);
                let mut theirs = vec![t.clone()];
                if is_flexible(v) {
                    let tag = bytes::Bytes::from_static(b"xy");
                    theirs.push(t.clone().with_unknown_tagged_field(9, tag));
                }
                agrees_with_kafka_protocol(
                    v,
                    &ours,
                    &theirs,
                    &t,
                    SaslAuthenticateResponse::decode,
                    SaslAuthenticateResponse::encode,
                );
            }
        }
    }

    #[test]
    fn truncated_responses_fail_cleanly() {
        for v in API.versions() {
            let mut buf = Vec::new();
            response(v, Some("no")).encode(&mut buf, v);
            every_cut_fails(&buf, |b| SaslAuthenticateResponse::decode(b, v));
        }
    }

    #[test]
    fn hostile_tag_buffers_fail_before_reserving() {
        // error 0, null message, empty bytes, lifetime
        let fields = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        hostile_tag_buffers_fail(&fields, |b| SaslAuthenticateResponse::decode(b, 2));
    }

    proptest! {
        #[test]
        fn hostile_responses_never_panic(v in 0i16..=2, b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = SaslAuthenticateResponse::decode(&b, v);
        }
    }
}
