//! RecordBatch v2 (magic 2), the only record format Kafka 4 accepts
//! (KIP-724 removed v0/v1).
//!
//! Owns the byte layout of a batch header and of one record, the CRC-32C,
//! and a checking decoder. It does not own buffers, batching policy or
//! compression choice; the accumulator encodes records straight into its
//! batch buffer with [`write_record`] and seals the batch with
//! [`BatchHeader::encode`] when it is drained.
//!
//! ```text
//! off len field                  notes
//!  0   8  BaseOffset    int64    producer writes 0
//!  8   4  BatchLength   int32    bytes after this field
//! 12   4  PartitionLeaderEpoch   producer writes -1; not covered by the CRC
//! 16   1  Magic         int8     2
//! 17   4  CRC           uint32   CRC-32C over bytes [21, end)
//! 21   2  Attributes    int16    bits 0-2 codec, 3 timestamp type,
//!                                4 transactional, 5 control
//! 23   4  LastOffsetDelta        record count - 1
//! 27   8  BaseTimestamp          first record's timestamp
//! 35   8  MaxTimestamp
//! 43   8  ProducerId             -1 unless idempotent
//! 51   2  ProducerEpoch          -1 unless idempotent
//! 53   4  BaseSequence           -1 unless idempotent
//! 57   4  RecordsCount
//! 61   …  Records                one blob if compressed
//!
//! Record: Length varint, Attributes int8 (0), TimestampDelta varlong,
//!         OffsetDelta varint, KeyLength varint (-1 null), Key,
//!         ValueLength varint (-1 null), Value, HeadersCount varint,
//!         then per header: KeyLength varint, Key (UTF-8),
//!         ValueLength varint (-1 null), Value
//! ```
//!
//! The header is kept apart from the records section on purpose: a codec can
//! compress the records section in one pass at drain time and the header is
//! written afterwards (see ROADMAP "leave room").

use byteorder::{BigEndian, ByteOrder};

use super::primitives::{put_varint, put_varlong, varint_len, varlong_len, Decoder};
use super::DecodeError;

/// Size of the RecordBatch v2 header (`RECORD_BATCH_OVERHEAD` in Java).
pub const RECORD_BATCH_OVERHEAD: usize = 61;

/// The magic byte of RecordBatch v2.
pub const MAGIC_V2: i8 = 2;

/// Attribute bits 0-2: the compression codec.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: LogAppendTime (1) or CreateTime (0).
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit 4: part of a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit 5: a control batch (transaction markers).
pub const ATTR_CONTROL: i16 = 0x20;

/// The fields of a RecordBatch v2 header that a producer chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record; the producer writes 0.
    pub base_offset: i64,
    /// The producer writes -1; the broker assigns it.
    pub partition_leader_epoch: i32,
    /// Codec, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// Offset delta of the last record: record count - 1.
    pub last_offset_delta: i32,
    /// Timestamp of the first record; records carry deltas from it.
    pub base_timestamp: i64,
    /// Largest record timestamp in the batch.
    pub max_timestamp: i64,
    /// -1 unless the producer is idempotent.
    pub producer_id: i64,
    /// -1 unless the producer is idempotent.
    pub producer_epoch: i16,
    /// -1 unless the producer is idempotent.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeader {
    /// A header for a non-idempotent, uncompressed CreateTime batch.
    pub fn new(record_count: i32, base_timestamp: i64, max_timestamp: i64) -> Self {
        BatchHeader {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            last_offset_delta: record_count - 1,
            base_timestamp,
            max_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count,
        }
    }

    /// Serializes the header of a batch whose records section is `records`
    /// (compressed already if the attributes name a codec), filling in
    /// BatchLength and the CRC-32C.
    pub fn encode(&self, records: &[u8]) -> [u8; RECORD_BATCH_OVERHEAD] {
        let mut h = [0u8; RECORD_BATCH_OVERHEAD];
        let batch_length = (RECORD_BATCH_OVERHEAD - 12 + records.len()) as i32;
        BigEndian::write_i64(&mut h[0..8], self.base_offset);
        BigEndian::write_i32(&mut h[LENGTH], batch_length);
        BigEndian::write_i32(&mut h[12..16], self.partition_leader_epoch);
        h[16] = MAGIC_V2 as u8;
        // h[17..21] is the CRC, filled in last.
        BigEndian::write_i16(&mut h[ATTRIBUTES], self.attributes);
        BigEndian::write_i32(&mut h[23..27], self.last_offset_delta);
        BigEndian::write_i64(&mut h[27..35], self.base_timestamp);
        BigEndian::write_i64(&mut h[35..43], self.max_timestamp);
        write_identity(
            &mut h,
            self.producer_id,
            self.producer_epoch,
            self.base_sequence,
        );
        BigEndian::write_i32(&mut h[57..61], self.record_count);
        write_crc(&mut h, records);
        h
    }
}

/// Rewrites the producer id, epoch and base sequence of an encoded header
/// (from [`BatchHeader::encode`]) over `records`, and its CRC-32C.
pub fn restamp_header(
    h: &mut [u8; RECORD_BATCH_OVERHEAD],
    records: &[u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) {
    write_identity(h, producer_id, producer_epoch, base_sequence);
    write_crc(h, records);
}

/// Byte ranges of the header fields that are read or patched after
/// encoding: BatchLength, the CRC, and the attributes (where the CRC's
/// coverage starts).
pub const LENGTH: std::ops::Range<usize> = 8..12;
/// See [`LENGTH`].
pub const CRC: std::ops::Range<usize> = 17..21;
/// See [`LENGTH`].
pub const ATTRIBUTES: std::ops::Range<usize> = 21..23;

fn write_identity(h: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    BigEndian::write_i64(&mut h[43..51], producer_id);
    BigEndian::write_i16(&mut h[51..53], producer_epoch);
    BigEndian::write_i32(&mut h[53..57], base_sequence);
}

/// Writes the CRC-32C of a header (from its attributes on) and `records`.
pub fn write_crc(h: &mut [u8; RECORD_BATCH_OVERHEAD], records: &[u8]) {
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h[ATTRIBUTES.start..]), records);
    BigEndian::write_u32(&mut h[CRC], crc);
}

/// Bytes of a record after its length prefix.
#[inline]
pub fn record_body_size<'h>(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl Iterator<Item = (&'h str, Option<&'h [u8]>)>,
) -> usize {
    body_size_with_deltas(
        record_fixed_size(key, value, headers),
        offset_delta,
        timestamp_delta,
    )
}

/// The part of a record's body size that does not depend on its place in
/// a batch: attributes, key, value and headers (everything but the offset
/// and timestamp deltas and the length prefix).
#[inline]
pub fn record_fixed_size<'h>(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl Iterator<Item = (&'h str, Option<&'h [u8]>)>,
) -> usize {
    let mut size = 1 + nullable_len(key) + nullable_len(value);
    let mut count = 0;
    for (k, v) in headers {
        count += 1;
        size += varint_len(k.len() as i32) + k.len() + nullable_len(v);
    }
    size + varint_len(count)
}

/// A record's body size from its [`record_fixed_size`] and its deltas.
#[inline]
pub fn body_size_with_deltas(fixed: usize, offset_delta: i32, timestamp_delta: i64) -> usize {
    fixed + varint_len(offset_delta) + varlong_len(timestamp_delta)
}

/// The most bytes a record with this [`record_fixed_size`] can take in any
/// batch, length prefix included (largest deltas).
#[inline]
pub fn record_size_upper_bound(fixed: usize) -> usize {
    5 + fixed + 5 + 10
}

#[inline]
fn nullable_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

/// Bytes a record takes in a batch, length prefix included, given its
/// [`record_body_size`].
#[inline]
pub fn record_size(body_size: usize) -> usize {
    varint_len(body_size as i32) + body_size
}

/// Appends one record; `body_size` must come from [`record_body_size`] with
/// the same arguments.
#[inline]
pub fn write_record<'h>(
    buf: &mut Vec<u8>,
    body_size: usize,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl ExactSizeIterator<Item = (&'h str, Option<&'h [u8]>)>,
) {
    let start = buf.len();
    put_varint(buf, body_size as i32);
    let body_start = buf.len();
    buf.push(0); // record attributes: unused, always 0
    put_varlong(buf, timestamp_delta);
    put_varint(buf, offset_delta);
    put_nullable(buf, key);
    put_nullable(buf, value);
    put_varint(buf, headers.len() as i32);
    for (k, v) in headers {
        put_varint(buf, k.len() as i32);
        buf.extend_from_slice(k.as_bytes());
        put_nullable(buf, v);
    }
    debug_assert_eq!(
        buf.len() - body_start,
        body_size,
        "record_body_size disagrees"
    );
    debug_assert!(buf.len() - start == record_size(body_size));
}

#[inline]
fn put_nullable(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i32);
            buf.extend_from_slice(b);
        }
    }
}

/// One record read back from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord<'a> {
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// The key, `None` for null.
    pub key: Option<&'a [u8]>,
    /// The value, `None` for null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Header keys and values, in order.
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// One batch read back, with its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBatch<'a> {
    /// The header fields.
    pub header: BatchHeader,
    /// The records, in order.
    pub records: Vec<DecodedRecord<'a>>,
}

/// Decodes concatenated uncompressed v2 batches, checking magic, lengths and
/// CRC. Used by tests and as a fuzz target; hostile input yields an error,
/// never a panic, and a claimed count reserves no more than the bytes left
/// (records and headers then take their decoded size as they are read).
///
/// # Errors
///
/// [`DecodeError`] for truncated, inconsistent, compressed or corrupt input.
pub fn decode_batches(mut buf: &[u8]) -> Result<Vec<DecodedBatch<'_>>, DecodeError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let mut d = Decoder::new(buf, false);
        let base_offset = d.i64()?;
        let batch_length = d.i32()?;
        if batch_length < (RECORD_BATCH_OVERHEAD - 12) as i32 {
            return Err(DecodeError::Invalid {
                what: "batch length below the header size",
                offset: 8,
            });
        }
        let total = 12 + batch_length as usize;
        let body = d.take(batch_length as usize)?;
        let mut d = Decoder::new(body, false);
        let partition_leader_epoch = d.i32()?;
        if d.i8()? != MAGIC_V2 {
            return Err(DecodeError::Invalid {
                what: "magic is not 2",
                offset: 16,
            });
        }
        let crc = d.u32()?;
        if crc32c::crc32c(&body[9..]) != crc {
            return Err(DecodeError::Invalid {
                what: "CRC-32C mismatch",
                offset: 17,
            });
        }
        let attributes = d.i16()?;
        let header = BatchHeader {
            base_offset,
            partition_leader_epoch,
            attributes,
            last_offset_delta: d.i32()?,
            base_timestamp: d.i64()?,
            max_timestamp: d.i64()?,
            producer_id: d.i64()?,
            producer_epoch: d.i16()?,
            base_sequence: d.i32()?,
            record_count: d.i32()?,
        };
        if attributes & ATTR_COMPRESSION_MASK != 0 {
            return Err(DecodeError::Invalid {
                what: "compressed batches are not decoded here",
                offset: 21,
            });
        }
        // Each record takes at least 7 bytes (a one-byte length and six
        // one-byte fields); reject counts that cannot fit.
        if header.record_count < 0
            || (header.record_count as usize).saturating_mul(7) > d.remaining()
        {
            return Err(DecodeError::Invalid {
                what: "record count exceeds the batch",
                offset: 57,
            });
        }
        let records = d.elements(header.record_count as usize, decode_record)?;
        if d.remaining() != 0 {
            return Err(DecodeError::Invalid {
                what: "bytes after the last record",
                offset: d.position(),
            });
        }
        out.push(DecodedBatch { header, records });
        buf = &buf[total..];
    }
    Ok(out)
}

fn decode_record<'a>(d: &mut Decoder<'a>) -> Result<DecodedRecord<'a>, DecodeError> {
    let len = d.varint()?;
    if len < 0 {
        return Err(DecodeError::Invalid {
            what: "negative record length",
            offset: d.position(),
        });
    }
    let mut r = Decoder::new(d.take(len as usize)?, false);
    let _attributes = r.i8()?;
    let timestamp_delta = r.varlong()?;
    let offset_delta = r.varint()?;
    let key = varint_bytes(&mut r)?;
    let value = varint_bytes(&mut r)?;
    let count = r.varint()?;
    if count < 0 || count as usize > r.remaining() / 2 {
        return Err(DecodeError::Invalid {
            what: "header count exceeds the record",
            offset: r.position(),
        });
    }
    let headers = r.elements(count as usize, |r| {
        let k = varint_bytes(r)?.ok_or(DecodeError::Invalid {
            what: "null header key",
            offset: r.position(),
        })?;
        let k = std::str::from_utf8(k).map_err(|_| DecodeError::Invalid {
            what: "header key is not UTF-8",
            offset: r.position(),
        })?;
        Ok((k, varint_bytes(r)?))
    })?;
    if r.remaining() != 0 {
        return Err(DecodeError::Invalid {
            what: "bytes after the record's headers",
            offset: r.position(),
        });
    }
    Ok(DecodedRecord {
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers,
    })
}

fn varint_bytes<'a>(d: &mut Decoder<'a>) -> Result<Option<&'a [u8]>, DecodeError> {
    match d.varint()? {
        -1 => Ok(None),
        n if n < -1 => Err(DecodeError::Invalid {
            what: "negative length",
            offset: d.position(),
        }),
        n => d.take(n as usize).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Rec = (
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        i64,
        Vec<(String, Option<Vec<u8>>)>,
    );

    fn encode(records: &[Rec], base_ts: i64) -> Vec<u8> {
        let mut body = Vec::new();
        let mut max_ts = i64::MIN;
        for (i, (k, v, ts, hs)) in records.iter().enumerate() {
            let hi = || hs.iter().map(|(k, v)| (k.as_str(), v.as_deref()));
            let size = record_body_size(i as i32, ts - base_ts, k.as_deref(), v.as_deref(), hi());
            write_record(
                &mut body,
                size,
                i as i32,
                ts - base_ts,
                k.as_deref(),
                v.as_deref(),
                hi(),
            );
            max_ts = max_ts.max(*ts);
        }
        let h = BatchHeader::new(records.len() as i32, base_ts, max_ts).encode(&body);
        let mut out = h.to_vec();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn independent_decoder_reads_our_batch() {
        use kafka_protocol::records::RecordBatchDecoder;
        let recs: Vec<Rec> = vec![
            (
                Some(b"k1".to_vec()),
                Some(b"v1".to_vec()),
                1_700_000_000_000,
                vec![("h".into(), Some(b"x".to_vec())), ("n".into(), None)],
            ),
            (None, Some(vec![7; 300]), 1_700_000_000_005, vec![]),
            (Some(vec![]), None, 1_699_999_999_000, vec![]),
        ];
        let bytes = encode(&recs, 1_700_000_000_000);
        let mut b = bytes::Bytes::from(bytes);
        let set = RecordBatchDecoder::decode(&mut b).expect("kafka-protocol decodes it");
        assert_eq!(set.records.len(), 3);
        let r0 = &set.records[0];
        assert_eq!(r0.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r0.value.as_deref(), Some(&b"v1"[..]));
        assert_eq!(r0.timestamp, 1_700_000_000_000);
        assert_eq!(r0.offset, 0);
        assert_eq!(r0.headers.len(), 2);
        assert!(set.records[1].key.is_none());
        assert_eq!(set.records[1].timestamp, 1_700_000_000_005);
        assert_eq!(set.records[2].key.as_deref(), Some(&b""[..]));
        assert!(set.records[2].value.is_none());
        assert_eq!(set.records[2].timestamp, 1_699_999_999_000);
        assert_eq!(set.records[2].offset, 2);
        assert_eq!(set.records[2].producer_id, -1);
    }

    #[test]
    fn corrupted_batches_are_rejected() {
        let recs: Vec<Rec> = vec![(None, Some(b"hello".to_vec()), 5, vec![])];
        let good = encode(&recs, 5);
        assert_eq!(decode_batches(&good).unwrap().len(), 1);
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(decode_batches(&flipped).is_err());
        for cut in 0..good.len() {
            assert!(decode_batches(&good[..cut]).is_err() || cut == 0);
        }
    }

    #[test]
    fn hostile_counts_fail_before_reserving() {
        // A well-formed, checksummed batch that claims 2^31-1 records.
        let recs: Vec<Rec> = vec![(None, Some(b"hello".to_vec()), 5, vec![])];
        let good = encode(&recs, 5);
        let mut h = BatchHeader::new(i32::MAX, 5, 5);
        h.last_offset_delta = 0;
        let mut lying = h.encode(&good[61..]).to_vec();
        lying.extend_from_slice(&good[61..]);
        assert!(matches!(
            decode_batches(&lying),
            Err(DecodeError::Invalid {
                what: "record count exceeds the batch",
                ..
            })
        ));
        // One record claiming 2^30 headers in its few bytes.
        let mut body = vec![0, 0, 0, 1, 1]; // attributes, deltas, null key and value
        put_varint(&mut body, 1 << 30);
        body.extend_from_slice(&[0; 8]);
        let mut rec = Vec::new();
        put_varint(&mut rec, body.len() as i32);
        rec.extend_from_slice(&body);
        let mut batch = BatchHeader::new(1, 0, 0).encode(&rec).to_vec();
        batch.extend_from_slice(&rec);
        assert!(matches!(
            decode_batches(&batch),
            Err(DecodeError::Invalid {
                what: "header count exceeds the record",
                ..
            })
        ));
    }

    fn rec_strategy() -> impl Strategy<Value = Rec> {
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            -1_000_000i64..1_000_000,
            proptest::collection::vec(
                (
                    "[a-z]{0,8}",
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
                ),
                0..3,
            ),
        )
    }

    proptest! {
        #[test]
        fn batches_round_trip(recs in proptest::collection::vec(rec_strategy(), 1..20), base in 0i64..2_000_000_000_000) {
            let recs: Vec<Rec> = recs.into_iter().map(|(k, v, d, h)| (k, v, base + d, h)).collect();
            let bytes = encode(&recs, base);
            let batches = decode_batches(&bytes).unwrap();
            prop_assert_eq!(batches.len(), 1);
            let b = &batches[0];
            prop_assert_eq!(b.header.record_count as usize, recs.len());
            for (i, (r, (k, v, ts, hs))) in b.records.iter().zip(&recs).enumerate() {
                prop_assert_eq!(r.offset_delta, i as i32);
                prop_assert_eq!(r.key, k.as_deref());
                prop_assert_eq!(r.value, v.as_deref());
                prop_assert_eq!(b.header.base_timestamp + r.timestamp_delta, *ts);
                let want: Vec<(&str, Option<&[u8]>)> = hs.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
                prop_assert_eq!(&r.headers, &want);
            }
        }

        #[test]
        fn hostile_batches_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_batches(&b);
        }

        #[test]
        fn mutated_batches_never_panic(i in 0usize..120, x in 1u8..=255) {
            let recs: Vec<Rec> = vec![(Some(b"key".to_vec()), Some(vec![1; 30]), 9, vec![("a".into(), None)]); 2];
            let mut bytes = encode(&recs, 9);
            let i = i % bytes.len();
            bytes[i] ^= x;
            let _ = decode_batches(&bytes);
        }
    }
}
