//! Request headers v1/v2, response headers v0/v1, and the size-prefixed
//! frame around them (`RequestHeader.json`, `ResponseHeader.json`).
//!
//! ```text
//! frame:            int32 size (bytes that follow), header, body
//! request header:   api_key int16, api_version int16, correlation_id int32,
//!                   client_id NULLABLE_STRING (int16 length even in v2),
//!                   v2: TAG_BUFFER
//! response header:  correlation_id int32, v1: TAG_BUFFER
//! ```

use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// The header in front of every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader<'a> {
    /// Which API (0 Produce, 3 Metadata, 18 ApiVersions, ...).
    pub request_api_key: i16,
    /// The version of that API's body.
    pub request_api_version: i16,
    /// Echoed by the response; matches it to this request.
    pub correlation_id: i32,
    /// The client id, or null.
    pub client_id: Option<&'a str>,
}

impl<'a> RequestHeader<'a> {
    /// Appends the header in form v1 (`header_version` 1) or v2 (2).
    pub fn encode(&self, buf: &mut Vec<u8>, header_version: i16) {
        let mut w = Writer::new(buf, header_version >= 2);
        w.i16(self.request_api_key);
        w.i16(self.request_api_version);
        w.i32(self.correlation_id);
        w.classic_nullable_string(self.client_id);
        w.tagged_fields_empty();
    }

    /// Reads a header in form v1 or v2.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] on truncated or malformed input.
    pub fn decode(d: &mut Decoder<'a>, header_version: i16) -> Result<Self, DecodeError> {
        let h = RequestHeader {
            request_api_key: d.i16()?,
            request_api_version: d.i16()?,
            correlation_id: d.i32()?,
            client_id: d.classic_nullable_string()?,
        };
        if header_version >= 2 {
            d.tag_buffer(|_, _| Ok(false))?;
        }
        Ok(h)
    }
}

/// Appends a response header v0 (`header_version` 0) or v1.
pub fn encode_response_header(buf: &mut Vec<u8>, correlation_id: i32, header_version: i16) {
    let mut w = Writer::new(buf, header_version >= 1);
    w.i32(correlation_id);
    w.tagged_fields_empty();
}

/// Reads a response header v0 or v1 and returns its correlation id.
///
/// # Errors
///
/// [`DecodeError`] on truncated or malformed input.
pub fn decode_response_header(
    d: &mut Decoder<'_>,
    header_version: i16,
) -> Result<i32, DecodeError> {
    let correlation_id = d.i32()?;
    if header_version >= 1 {
        d.tag_buffer(|_, _| Ok(false))?;
    }
    Ok(correlation_id)
}

/// Starts a size-prefixed frame: reserves the int32 size and returns where
/// it is, for [`end_frame`].
pub fn begin_frame(buf: &mut Vec<u8>) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    at
}

/// Patches the size of the frame begun at `at` in place.
pub fn end_frame(buf: &mut [u8], at: usize) {
    let size = (buf.len() - at - 4) as i32;
    buf[at..at + 4].copy_from_slice(&size.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_headers_decode_with_kafka_protocol() {
        use kafka_protocol::messages::RequestHeader as Theirs;
        use kafka_protocol::protocol::Decodable;
        for hv in [1i16, 2] {
            for client_id in [None, Some("producer-1")] {
                let h = RequestHeader {
                    request_api_key: 0,
                    request_api_version: 9,
                    correlation_id: 77,
                    client_id,
                };
                let mut buf = Vec::new();
                h.encode(&mut buf, hv);
                let mut b = bytes::Bytes::from(buf.clone());
                let t = Theirs::decode(&mut b, hv).unwrap();
                assert_eq!(t.request_api_key, 0);
                assert_eq!(t.request_api_version, 9);
                assert_eq!(t.correlation_id, 77);
                assert_eq!(t.client_id.as_deref(), client_id);
                assert!(b.is_empty(), "kafka-protocol left bytes");
                let mut d = Decoder::new(&buf, false);
                assert_eq!(RequestHeader::decode(&mut d, hv).unwrap(), h);
                assert_eq!(d.remaining(), 0);
            }
        }
    }

    #[test]
    fn response_headers_round_trip() {
        for hv in [0i16, 1] {
            let mut buf = Vec::new();
            encode_response_header(&mut buf, -5, hv);
            let mut d = Decoder::new(&buf, false);
            assert_eq!(decode_response_header(&mut d, hv).unwrap(), -5);
            assert_eq!(d.remaining(), 0);
        }
    }

    #[test]
    fn frames_are_patched_in_place() {
        let mut buf = vec![9];
        let at = begin_frame(&mut buf);
        buf.extend_from_slice(b"abc");
        end_frame(&mut buf, at);
        assert_eq!(buf, [9, 0, 0, 0, 3, b'a', b'b', b'c']);
    }
}
