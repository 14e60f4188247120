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

use byteorder::{BigEndian, ByteOrder};

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
    end_frame_holding(buf, at, 0);
}

/// [`end_frame`] for a frame of which `elsewhere` bytes are not in `buf`
/// but go out with it (buffers a writer holds instead of copying).
pub fn end_frame_holding(buf: &mut [u8], at: usize, elsewhere: usize) {
    let size = (buf.len() - at - 4 + elsewhere) as i32;
    BigEndian::write_i32(&mut buf[at..at + 4], size);
}

/// The size of the response frame at the start of `buf` (the bytes after
/// its int32 size prefix), once the prefix has arrived; `Ok(None)` before.
///
/// A size below 4 (no room for a correlation id), negative, or above `max`
/// is an error: a reader must not grow its buffer for it. `max` is the
/// caller's cap, which may depend on what the request could be answered
/// with.
///
/// # Errors
///
/// [`DecodeError::Invalid`] for a size out of `4..=max`.
pub fn frame_size(buf: &[u8], max: usize) -> Result<Option<usize>, DecodeError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    match BigEndian::read_i32(prefix) {
        n if n < 4 || n as usize > max => Err(DecodeError::Invalid {
            what: "response frame size out of range",
            offset: 0,
        }),
        n => Ok(Some(n as usize)),
    }
}

/// One complete response frame, as [`split_frame`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The correlation id: the frame's first four bytes.
    pub correlation_id: i32,
    /// The frame after its size prefix: response header, then body.
    pub bytes: &'a [u8],
}

impl Frame<'_> {
    /// Bytes the frame took in the stream, size prefix included.
    pub fn stream_len(&self) -> usize {
        4 + self.bytes.len()
    }
}

/// The first complete response frame at the start of `buf`, or `Ok(None)`
/// if it has not all arrived; see [`frame_size`] for `max`.
///
/// # Errors
///
/// [`DecodeError::Invalid`] for a size prefix out of range.
pub fn split_frame(buf: &[u8], max: usize) -> Result<Option<Frame<'_>>, DecodeError> {
    let Some(n) = frame_size(buf, max)? else {
        return Ok(None);
    };
    let Some(bytes) = buf.get(4..4 + n) else {
        return Ok(None);
    };
    let correlation_id = BigEndian::read_i32(&bytes[..4]);
    Ok(Some(Frame {
        correlation_id,
        bytes,
    }))
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
    fn frames_split_only_when_whole_and_in_range() {
        let mut stream = Vec::new();
        let at = begin_frame(&mut stream);
        encode_response_header(&mut stream, 7, 0);
        stream.extend_from_slice(b"body");
        end_frame(&mut stream, at);
        for cut in 0..stream.len() {
            assert_eq!(split_frame(&stream[..cut], 100), Ok(None), "cut {cut}");
        }
        stream.push(0xff); // the next frame's first byte
        let f = split_frame(&stream, 100).unwrap().unwrap();
        assert_eq!(f.correlation_id, 7);
        assert_eq!(f.bytes, &stream[4..12]);
        assert_eq!(f.stream_len(), 12);
        // the cap, sizes too small for a correlation id, negative sizes
        assert_eq!(frame_size(&stream, 8), Ok(Some(8)));
        assert!(split_frame(&stream, 7).is_err());
        for bad in [3i32, 0, -1, i32::MIN] {
            assert!(
                split_frame(&bad.to_be_bytes(), usize::MAX).is_err(),
                "{bad}"
            );
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
