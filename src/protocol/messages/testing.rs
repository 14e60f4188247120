//! Checks the codec tests of several APIs share (tests only).

use crate::protocol::DecodeError;

/// Every proper prefix of `encoded`, a whole valid body, must be refused
/// with a [`DecodeError`], and none may panic: a body cut anywhere is
/// never mistaken for a shorter valid one.
pub fn every_cut_fails<T: std::fmt::Debug>(
    encoded: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
) {
    assert!(decode(encoded).is_ok(), "the whole body must decode");
    for cut in 0..encoded.len() {
        let r = decode(&encoded[..cut]);
        assert!(r.is_err(), "cut at {cut} of {}: {r:?}", encoded.len());
    }
}

/// `fields`, a flexible body up to its top-level tag buffer, followed by a
/// tag buffer claiming 2^32-1 tags, and by one whose one tag claims 2^32-1
/// bytes: both must be refused before anything is sized by them.
pub fn hostile_tag_buffers_fail<T: std::fmt::Debug>(
    fields: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
) {
    let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
    let count = [fields, &huge].concat();
    let r = decode(&count);
    assert!(matches!(r, Err(DecodeError::Invalid { .. })), "{r:?}");
    let size = [fields, &[1, 0], &huge, &[0; 8]].concat();
    let r = decode(&size);
    assert!(matches!(r, Err(DecodeError::Truncated { .. })), "{r:?}");
}

/// Checks a response body of ours against `kafka-protocol`'s at `v`: ours
/// reads each of `theirs` (one message, with and without tags we do not
/// know) as `ours`; theirs reads what ours writes as `read_back`, with no
/// bytes left over; and ours reads back what it writes.
pub fn agrees_with_kafka_protocol<O, T>(
    v: i16,
    ours: &O,
    theirs: &[T],
    read_back: &T,
    decode: fn(&[u8], i16) -> Result<O, DecodeError>,
    encode: fn(&O, &mut Vec<u8>, i16),
) where
    O: PartialEq + std::fmt::Debug,
    T: kafka_protocol::protocol::Encodable
        + kafka_protocol::protocol::Decodable
        + PartialEq
        + std::fmt::Debug,
{
    for t in theirs {
        let mut b = bytes::BytesMut::new();
        t.encode(&mut b, v).unwrap();
        assert_eq!(decode(&b, v).as_ref(), Ok(ours), "v{v}: ours reads {t:?}");
    }
    let mut buf = Vec::new();
    encode(ours, &mut buf, v);
    let mut b = bytes::Bytes::from(buf.clone());
    assert_eq!(
        &T::decode(&mut b, v).unwrap(),
        read_back,
        "v{v}: theirs reads ours"
    );
    assert!(b.is_empty(), "v{v}: bytes left over");
    assert_eq!(decode(&buf, v).as_ref(), Ok(ours), "v{v}: ours reads ours");
}

/// Checks a response of ours against `kafka-protocol`'s type `T` at `v`,
/// starting from ours: ours reads back what it writes; `T` reads it with no
/// bytes left over, and `check` looks at the fields `T` decoded; with tags
/// we do not know added by `add_tags` (flexible versions only), what `T`
/// writes decodes to ours again.
pub fn ours_through_kafka_protocol<O, T>(
    v: i16,
    flexible: bool,
    ours: &O,
    decode: fn(&[u8], i16) -> Result<O, DecodeError>,
    encode: fn(&O, &mut Vec<u8>, i16),
    check: impl Fn(&T),
    add_tags: impl Fn(&mut T),
) where
    O: PartialEq + std::fmt::Debug,
    T: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::Decodable,
{
    let mut buf = Vec::new();
    encode(ours, &mut buf, v);
    assert_eq!(decode(&buf, v).as_ref(), Ok(ours), "v{v}: ours reads ours");
    let mut b = bytes::Bytes::from(buf);
    let mut theirs = T::decode(&mut b, v).unwrap();
    assert!(b.is_empty(), "v{v}: bytes left over");
    check(&theirs);
    if flexible {
        add_tags(&mut theirs);
    }
    let mut out = bytes::BytesMut::new();
    theirs.encode(&mut out, v).unwrap();
    assert_eq!(
        decode(&out, v).as_ref(),
        Ok(ours),
        "v{v}: ours reads theirs"
    );
}
