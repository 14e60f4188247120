//! Kafka's primitive wire types: fixed-width big-endian integers, zigzag
//! varints, (compact) strings, bytes and arrays, and tagged fields.
//!
//! Owns the encoding of single values only; messages compose them. Follows
//! the "Protocol Primitive Types" section of the Kafka protocol guide and
//! KIP-482 (flexible versions: compact types and tagged fields).
//!
//! Encoding writes into a caller's `Vec<u8>` through [`Writer`]; decoding
//! reads from a borrowed slice through [`Decoder`], which never lets a length
//! read from the wire size an allocation beyond what the input can hold:
//! a count is refused if its elements, at their smallest encoding, could not
//! fit in the bytes that remain ([`Decoder::array_len`]), and a `Vec` made
//! for it reserves no more bytes than remain ([`Decoder::vec_for`]), however
//! large the decoded element type is. Strings and bytes borrow the input and
//! are copied only after they have been read whole.

use byteorder::{BigEndian, ByteOrder, WriteBytesExt};

use super::DecodeError;

/// Writing to a `Vec` cannot fail (it grows, or aborts on OOM).
pub(crate) const VEC_WRITE: &str = "writing to a Vec cannot fail";

/// Appends primitives to a buffer, in the classic or the flexible
/// (KIP-482, compact) form depending on `flexible`.
#[derive(Debug)]
pub struct Writer<'a> {
    /// Where the bytes go.
    pub buf: &'a mut Vec<u8>,
    /// True for a flexible message version: strings, bytes and arrays use
    /// the compact (unsigned varint `len + 1`) form and structs end with a
    /// tag buffer.
    pub flexible: bool,
}

impl<'a> Writer<'a> {
    /// A writer appending to `buf`.
    pub fn new(buf: &'a mut Vec<u8>, flexible: bool) -> Self {
        Writer { buf, flexible }
    }

    /// INT8.
    pub fn i8(&mut self, v: i8) {
        self.buf.push(v as u8);
    }
    /// BOOLEAN.
    pub fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    /// INT16, big-endian.
    pub fn i16(&mut self, v: i16) {
        self.buf.write_i16::<BigEndian>(v).expect(VEC_WRITE);
    }
    /// INT32, big-endian.
    pub fn i32(&mut self, v: i32) {
        self.buf.write_i32::<BigEndian>(v).expect(VEC_WRITE);
    }
    /// INT64, big-endian.
    pub fn i64(&mut self, v: i64) {
        self.buf.write_i64::<BigEndian>(v).expect(VEC_WRITE);
    }
    /// UUID: 16 raw bytes.
    pub fn uuid(&mut self, v: &[u8; 16]) {
        self.buf.extend_from_slice(v);
    }
    /// UNSIGNED_VARINT.
    pub fn uvarint(&mut self, v: u32) {
        put_uvarint(self.buf, v);
    }

    fn len_prefix(&mut self, len: Option<usize>, wide: bool) {
        match (self.flexible, len) {
            (true, None) => self.uvarint(0),
            (true, Some(n)) => self.uvarint(n as u32 + 1),
            (false, None) if wide => self.i32(-1),
            (false, None) => self.i16(-1),
            (false, Some(n)) if wide => self.i32(n as i32),
            (false, Some(n)) => self.i16(n as i16),
        }
    }

    /// STRING or COMPACT_STRING.
    pub fn string(&mut self, s: &str) {
        self.len_prefix(Some(s.len()), false);
        self.buf.extend_from_slice(s.as_bytes());
    }
    /// NULLABLE_STRING or COMPACT_NULLABLE_STRING.
    pub fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.len_prefix(None, false),
        }
    }
    /// NULLABLE_STRING in its classic int16 form whatever the version: the
    /// request header's `client_id` keeps this form even in header v2.
    pub fn classic_nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.i16(s.len() as i16);
                self.buf.extend_from_slice(s.as_bytes());
            }
            None => self.i16(-1),
        }
    }
    /// BYTES or COMPACT_BYTES.
    pub fn bytes(&mut self, b: &[u8]) {
        self.len_prefix(Some(b.len()), true);
        self.buf.extend_from_slice(b);
    }
    /// NULLABLE_BYTES or COMPACT_NULLABLE_BYTES (also RECORDS).
    pub fn nullable_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => self.bytes(b),
            None => self.len_prefix(None, true),
        }
    }
    /// Only the length prefix of a (compact) nullable bytes field whose
    /// content the caller appends itself, `len` bytes of it.
    pub fn bytes_len(&mut self, len: usize) {
        self.len_prefix(Some(len), true);
    }
    /// The element count of an ARRAY or COMPACT_ARRAY.
    pub fn array_len(&mut self, n: usize) {
        self.len_prefix(Some(n), true);
    }
    /// The count of a nullable array; `None` is null.
    pub fn nullable_array_len(&mut self, n: Option<usize>) {
        self.len_prefix(n, true);
    }
    /// An empty tag buffer, written only in flexible versions.
    pub fn tagged_fields_empty(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }
}

/// Appends an UNSIGNED_VARINT (ULEB128).
#[inline]
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends an unsigned 64-bit ULEB128.
#[inline]
pub fn put_uvarlong(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends a VARINT: zigzag, then ULEB128.
#[inline]
pub fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_uvarint(buf, ((v << 1) ^ (v >> 31)) as u32);
}

/// Appends a VARLONG: zigzag, then ULEB128.
#[inline]
pub fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    put_uvarlong(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Bytes an UNSIGNED_VARINT of `v` takes.
#[inline]
pub fn uvarint_len(v: u32) -> usize {
    // 1 byte per started group of 7 bits; 0 still takes one byte.
    let bits = 32 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes a VARINT of `v` takes.
#[inline]
pub fn varint_len(v: i32) -> usize {
    uvarint_len(((v << 1) ^ (v >> 31)) as u32)
}

/// Bytes a VARLONG of `v` takes.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    let bits = 64 - (z | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads primitives from a borrowed byte slice.
///
/// Every read checks the remaining length first and fails with
/// [`DecodeError`] instead of panicking. Counts and lengths from the wire are
/// checked against the bytes that remain before anything is allocated.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    /// True for a flexible message version (compact forms, tag buffers).
    pub flexible: bool,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`.
    pub fn new(buf: &'a [u8], flexible: bool) -> Self {
        Decoder {
            buf,
            pos: 0,
            flexible,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn invalid(&self, what: &'static str) -> DecodeError {
        DecodeError::Invalid {
            what,
            offset: self.pos,
        }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// INT8.
    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(self.take(1)?[0] as i8)
    }
    /// BOOLEAN (any non-zero byte is true).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }
    /// INT16.
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(BigEndian::read_i16(self.take(2)?))
    }
    /// INT32.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(BigEndian::read_i32(self.take(4)?))
    }
    /// UINT32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }
    /// INT64.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(BigEndian::read_i64(self.take(8)?))
    }
    /// UUID.
    pub fn uuid(&mut self) -> Result<[u8; 16], DecodeError> {
        self.array()
    }

    /// UNSIGNED_VARINT; at most 5 bytes.
    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = self.take(1)?[0];
            if i == 4 && b > 0x0f {
                return Err(self.invalid("varint longer than 32 bits"));
            }
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.invalid("varint longer than 5 bytes"))
    }

    /// Unsigned 64-bit ULEB128; at most 10 bytes.
    pub fn uvarlong(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.take(1)?[0];
            if i == 9 && b > 0x01 {
                return Err(self.invalid("varlong longer than 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.invalid("varlong longer than 10 bytes"))
    }

    /// VARINT (zigzag).
    pub fn varint(&mut self) -> Result<i32, DecodeError> {
        let z = self.uvarint()?;
        Ok(((z >> 1) as i32) ^ -((z & 1) as i32))
    }

    /// VARLONG (zigzag).
    pub fn varlong(&mut self) -> Result<i64, DecodeError> {
        let z = self.uvarlong()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A length prefix: `None` for null. In flexible versions the compact
    /// form, otherwise int16 (`wide == false`) or int32.
    fn len_prefix(&mut self, wide: bool) -> Result<Option<usize>, DecodeError> {
        let n: i64 = if self.flexible {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(self.invalid("negative length")),
            n => Ok(Some(n as usize)),
        }
    }

    fn utf8(&mut self, n: usize) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| DecodeError::Invalid {
            what: "string is not UTF-8",
            offset: start,
        })
    }

    /// STRING or COMPACT_STRING; null is an error.
    pub fn string(&mut self) -> Result<&'a str, DecodeError> {
        self.nullable_string()?
            .ok_or_else(|| self.invalid("null in a non-nullable string"))
    }
    /// NULLABLE_STRING or COMPACT_NULLABLE_STRING.
    pub fn nullable_string(&mut self) -> Result<Option<&'a str>, DecodeError> {
        match self.len_prefix(false)? {
            None => Ok(None),
            Some(n) => self.utf8(n).map(Some),
        }
    }
    /// A NULLABLE_STRING in the classic int16 form whatever the version.
    pub fn classic_nullable_string(&mut self) -> Result<Option<&'a str>, DecodeError> {
        match self.i16()? {
            -1 => Ok(None),
            n if n < 0 => Err(self.invalid("negative length")),
            n => self.utf8(n as usize).map(Some),
        }
    }
    /// BYTES or COMPACT_BYTES; null is an error.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        self.nullable_bytes()?
            .ok_or_else(|| self.invalid("null in non-nullable bytes"))
    }
    /// NULLABLE_BYTES or COMPACT_NULLABLE_BYTES (also RECORDS).
    pub fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.len_prefix(true)? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// The element count of an ARRAY or COMPACT_ARRAY; null is an error.
    ///
    /// `min_element_size` is the fewest bytes one element can take; a count
    /// that could not fit in the remaining input is rejected here, so a
    /// caller may `Vec::with_capacity(count)` safely.
    pub fn array_len(&mut self, min_element_size: usize) -> Result<usize, DecodeError> {
        self.nullable_array_len(min_element_size)?
            .ok_or_else(|| self.invalid("null in a non-nullable array"))
    }

    /// Like [`Decoder::array_len`], but null (`None`) is allowed.
    pub fn nullable_array_len(
        &mut self,
        min_element_size: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let n = self.len_prefix(true)?;
        if let Some(n) = n {
            if n.saturating_mul(min_element_size.max(1)) > self.remaining() {
                return Err(self.invalid("array count exceeds the remaining bytes"));
            }
        }
        Ok(n)
    }

    /// Reads a tag buffer (flexible versions only; a no-op otherwise).
    ///
    /// `known` is called with each tag and a decoder over exactly that tag's
    /// bytes; it returns `Ok(true)` if it understood the tag. Unknown tags,
    /// and any bytes a handler leaves unread, are skipped by their exact
    /// length.
    pub fn tagged_fields(
        &mut self,
        known: impl FnMut(u32, &mut Decoder<'a>) -> Result<bool, DecodeError>,
    ) -> Result<(), DecodeError> {
        if !self.flexible {
            return Ok(());
        }
        self.tag_buffer(known)
    }

    /// Reads a tag buffer whatever the version (headers decide by their own
    /// header version); see [`Decoder::tagged_fields`].
    pub fn tag_buffer(
        &mut self,
        mut known: impl FnMut(u32, &mut Decoder<'a>) -> Result<bool, DecodeError>,
    ) -> Result<(), DecodeError> {
        let count = self.uvarint()?;
        if count as usize > self.remaining() {
            return Err(self.invalid("tag count exceeds the remaining bytes"));
        }
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let body = self.take(size)?;
            let mut sub = Decoder::new(body, true);
            known(tag, &mut sub)?;
        }
        Ok(())
    }

    /// Skips a tag buffer, keeping nothing.
    pub fn skip_tagged_fields(&mut self) -> Result<(), DecodeError> {
        self.tagged_fields(|_, _| Ok(false))
    }

    /// An ARRAY or COMPACT_ARRAY (null is an error) of elements that each
    /// take at least `min_element_size` bytes, each read by `element`.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] from the count (see [`Decoder::array_len`]) or from
    /// an element.
    pub fn array_of<T>(
        &mut self,
        min_element_size: usize,
        element: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.array_len(min_element_size)?;
        self.elements(count, element)
    }

    /// `count` elements read by `element`, for a count already checked
    /// against the remaining input; reserves as [`Decoder::vec_for`] does
    /// and grows toward `count`, never past it.
    ///
    /// # Errors
    ///
    /// The first element's [`DecodeError`].
    pub fn elements<T>(
        &mut self,
        count: usize,
        mut element: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let mut v = self.vec_for(count);
        for _ in 0..count {
            let e = element(self)?;
            if v.len() == v.capacity() {
                // Double, but go straight to `count` once it is near: a
                // last small step would copy the whole Vec for nothing.
                let left = count - v.len();
                let more = if left <= 3 * v.len() {
                    left
                } else {
                    v.len().max(4).min(left)
                };
                v.reserve_exact(more);
            }
            v.push(e);
        }
        Ok(v)
    }

    /// An empty `Vec` for `count` elements just read from the wire.
    ///
    /// Its capacity is `count`, but never more than the remaining input's
    /// length in bytes allows for elements of `T`'s in-memory size: a
    /// decoded element is often larger than its smallest encoding (a
    /// 96-byte struct from 22 wire bytes), and nested arrays reserve one
    /// after another, so reserving `count` outright let a small hostile
    /// input reserve some 27 times its size before failing. Past that
    /// capacity the `Vec` must grow as elements are really decoded
    /// ([`Decoder::elements`] does it).
    pub fn vec_for<T>(&self, count: usize) -> Vec<T> {
        let fit = self.remaining() / std::mem::size_of::<T>().max(1);
        Vec::with_capacity(count.min(fit))
    }

    /// The fewest bytes a (nullable) STRING takes in this decoder's form:
    /// 1 compact, 2 classic.
    pub fn min_string_size(&self) -> usize {
        if self.flexible {
            1
        } else {
            2
        }
    }

    /// The fewest bytes a (nullable) BYTES field or an ARRAY takes in this
    /// decoder's form: 1 compact, 4 classic.
    pub fn min_array_size(&self) -> usize {
        if self.flexible {
            1
        } else {
            4
        }
    }

    /// The fewest bytes a struct's tag buffer takes: 1 in flexible
    /// versions, 0 otherwise.
    pub fn min_tags_size(&self) -> usize {
        usize::from(self.flexible)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varint_vectors_match_the_kafka_spec() {
        // zigzag: 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3 ...
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for (v, want) in cases {
            let mut b = Vec::new();
            put_varint(&mut b, *v);
            assert_eq!(&b[..], *want, "varint {v}");
            assert_eq!(varint_len(*v), want.len());
            assert_eq!(Decoder::new(&b, false).varint().unwrap(), *v);
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        let six = [0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert!(Decoder::new(&six, false).uvarint().is_err());
        let too_big = [0xff, 0xff, 0xff, 0xff, 0x1f];
        assert!(Decoder::new(&too_big, false).uvarint().is_err());
        let eleven = [0x80u8; 11];
        assert!(Decoder::new(&eleven, false).uvarlong().is_err());
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        // An array claiming 2^31-1 elements in a 4-byte input.
        let b = i32::MAX.to_be_bytes();
        assert!(Decoder::new(&b, false).array_len(4).is_err());
        assert!(Decoder::new(&b, false).array_of(1, Decoder::i8).is_err());
        // Bytes claiming 2^31-1 bytes, classic and compact.
        assert!(Decoder::new(&b, false).bytes().is_err());
        let mut c = Vec::new();
        put_uvarint(&mut c, u32::MAX);
        assert!(Decoder::new(&c, true).nullable_bytes().is_err());
        // A compact string claiming 2^32-2 bytes.
        let mut c = Vec::new();
        put_uvarint(&mut c, u32::MAX);
        assert!(Decoder::new(&c, true).string().is_err());
        // A tag buffer claiming more tags than bytes.
        let mut t = Vec::new();
        put_uvarint(&mut t, 1000);
        assert!(Decoder::new(&t, true).skip_tagged_fields().is_err());
    }

    #[test]
    fn reservations_are_bounded_by_the_remaining_bytes() {
        let input = [0u8; 100];
        let d = Decoder::new(&input, false);
        // 96-byte elements: one fits in 100 bytes, whatever the count says
        assert_eq!(d.vec_for::<[u8; 96]>(1_000_000).capacity(), 1);
        assert_eq!(d.vec_for::<u8>(1_000_000).capacity(), 100);
        assert_eq!(d.vec_for::<u8>(10).capacity(), 10);
        assert_eq!(d.vec_for::<()>(usize::MAX).len(), 0);
        // A count of 25 four-byte elements passes the count check; decoded
        // into 96-byte structs it reserves at most the 100 bytes, then
        // grows only as elements really decode, never past the count.
        let mut b = Vec::new();
        Writer::new(&mut b, false).array_len(25);
        b.extend_from_slice(&[0; 100]);
        let mut d = Decoder::new(&b, false);
        let v = d.array_of(4, |d| Ok([d.i32()?; 24])).unwrap();
        assert_eq!((v.len(), v.capacity()), (25, 25));
        // The same count over 99 bytes fails at the count, and a hostile
        // one fails at its first element after reserving at most the input.
        assert!(Decoder::new(&b[..103], false)
            .array_of(4, Decoder::i32)
            .is_err());
        let mut hostile = Vec::new();
        Writer::new(&mut hostile, false).array_len(25);
        hostile.extend_from_slice(&[0xff; 100]);
        let r = Decoder::new(&hostile, false).array_of(4, |d| {
            d.string()?; // length 0xffff: null, refused
            Ok([0u8; 96])
        });
        assert!(matches!(r, Err(DecodeError::Invalid { .. })));
        let after_count = Decoder::new(&hostile[4..], false);
        assert!(after_count.vec_for::<[u8; 96]>(25).capacity() * 96 <= hostile.len());
    }

    #[test]
    fn elements_grow_toward_the_count_and_never_past_it() {
        for n in [1usize, 3, 4, 5, 17, 100, 1000, 1025] {
            let mut b = Vec::new();
            Writer::new(&mut b, true).array_len(n);
            b.extend(std::iter::repeat_n(1u8, n));
            let mut d = Decoder::new(&b, true);
            // 64-byte elements from 1 byte each: must grow past vec_for
            let v = d.array_of(1, |d| Ok([d.i8()?; 64])).unwrap();
            assert_eq!((v.len(), v.capacity()), (n, n), "n = {n}");
        }
    }

    #[test]
    fn unknown_tagged_fields_are_skipped_by_exact_length() {
        let mut b = Vec::new();
        put_uvarint(&mut b, 2); // two tags
        put_uvarint(&mut b, 0);
        put_uvarint(&mut b, 3);
        b.extend_from_slice(&[1, 2, 3]);
        put_uvarint(&mut b, 7);
        put_uvarint(&mut b, 1);
        b.push(9);
        b.extend_from_slice(&42i32.to_be_bytes()); // what follows the buffer
        let mut d = Decoder::new(&b, true);
        let mut seen = Vec::new();
        d.tagged_fields(|tag, sub| {
            seen.push((tag, sub.remaining()));
            // read less than the whole tag: the rest must still be skipped
            Ok(tag == 0 && sub.i8().is_ok())
        })
        .unwrap();
        assert_eq!(seen, vec![(0, 3), (7, 1)]);
        assert_eq!(d.i32().unwrap(), 42);
    }

    proptest! {
        #[test]
        fn varlong_round_trips(v in any::<i64>()) {
            let mut b = Vec::new();
            put_varlong(&mut b, v);
            prop_assert_eq!(b.len(), varlong_len(v));
            let mut d = Decoder::new(&b, false);
            prop_assert_eq!(d.varlong().unwrap(), v);
            prop_assert_eq!(d.remaining(), 0);
        }

        #[test]
        fn uvarint_round_trips(v in any::<u32>()) {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            prop_assert_eq!(b.len(), uvarint_len(v));
            prop_assert_eq!(Decoder::new(&b, false).uvarint().unwrap(), v);
        }

        #[test]
        fn strings_and_bytes_round_trip(
            flexible in any::<bool>(),
            s in proptest::option::of(".{0,40}"),
            bytes in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
            n in 0usize..1000,
        ) {
            let mut b = Vec::new();
            let mut w = Writer::new(&mut b, flexible);
            w.nullable_string(s.as_deref());
            w.nullable_bytes(bytes.as_deref());
            w.array_len(n);
            w.buf.extend(std::iter::repeat_n(7u8, n)); // n one-byte elements
            w.tagged_fields_empty();
            let mut d = Decoder::new(&b, flexible);
            prop_assert_eq!(d.nullable_string().unwrap(), s.as_deref());
            prop_assert_eq!(d.nullable_bytes().unwrap(), bytes.as_deref());
            prop_assert_eq!(d.array_len(1).unwrap(), n);
            d.take(n).unwrap();
            d.skip_tagged_fields().unwrap();
            prop_assert_eq!(d.remaining(), 0);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64), flexible in any::<bool>()) {
            let mut d = Decoder::new(&b, flexible);
            let _ = d.nullable_string();
            let _ = d.array_len(1);
            let _ = d.skip_tagged_fields();
            let _ = d.varlong();
            let _ = d.nullable_bytes();
        }
    }
}
