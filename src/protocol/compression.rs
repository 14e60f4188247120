//! Batch compression: the records section of a RecordBatch v2 is
//! compressed as one blob with the codec its attributes name (bits 0-2),
//! the 61-byte header staying plain. The framing is what Java writes and
//! every consumer reads:
//!
//! - gzip: an RFC 1952 stream.
//! - snappy: Java's xerial `SnappyOutputStream` framing (a 16-byte header,
//!   then per 32 KiB of input a big-endian length and a raw snappy block).
//!   Reading also accepts raw snappy, which librdkafka writes.
//! - lz4: the LZ4 frame format with independent 64 KiB blocks and no
//!   checksums beyond the header's (what Java's `Lz4BlockOutputStream`
//!   writes).
//! - zstd: a standard zstd frame (Produce v7+).

use std::io::{Read, Write};

use byteorder::{BigEndian, ByteOrder};

use super::DecodeError;

/// `compression.type` and its level: how a batch's records are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// `none`.
    #[default]
    None,
    /// `gzip` at `compression.gzip.level` (-1: the default, 6).
    Gzip(i32),
    /// `snappy` (no levels).
    Snappy,
    /// `lz4`; `compression.lz4.level` is validated but this encoder has one
    /// level (Java's default level uses its fast compressor too).
    Lz4,
    /// `zstd` at `compression.zstd.level`.
    Zstd(i32),
}

/// The xerial snappy stream header: magic, version 1, compatible version 1.
const XERIAL_HEADER: [u8; 16] = *b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Input covered by one xerial block (Java's default).
const XERIAL_BLOCK: usize = 32 * 1024;

impl Compression {
    /// The codec id in a batch's attributes (bits 0-2).
    pub fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip(_) => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd(_) => 4,
        }
    }

    /// The `compression.type` name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip(_) => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd(_) => "zstd",
        }
    }

    /// The lowest Produce version that may carry this codec: zstd needs
    /// v7 (KIP-110), the others any version we send.
    pub fn min_produce_version(self) -> i16 {
        match self {
            Compression::Zstd(_) => 7,
            _ => 0,
        }
    }

    /// Appends `input` compressed to `out`. `None` copies it.
    pub fn compress(self, input: &[u8], out: &mut Vec<u8>) {
        match self {
            Compression::None => out.extend_from_slice(input),
            Compression::Gzip(level) => gzip_compress(level, input, out),
            Compression::Snappy => {
                out.extend_from_slice(&XERIAL_HEADER);
                let mut enc = snap::raw::Encoder::new();
                for chunk in input.chunks(XERIAL_BLOCK) {
                    let at = out.len();
                    out.extend_from_slice(&[0; 4]);
                    out.resize(at + 4 + snap::raw::max_compress_len(chunk.len()), 0);
                    let n = enc
                        .compress(chunk, &mut out[at + 4..])
                        .expect("the buffer has max_compress_len");
                    out.truncate(at + 4 + n);
                    BigEndian::write_u32(&mut out[at..at + 4], n as u32);
                }
            }
            Compression::Lz4 => {
                use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
                let info = FrameInfo::new()
                    .block_size(BlockSize::Max64KB)
                    .block_mode(BlockMode::Independent);
                let mut e = FrameEncoder::with_frame_info(info, out);
                e.write_all(input).expect("lz4 into memory");
                e.finish().expect("lz4 into memory");
            }
            Compression::Zstd(level) => zstd_compress(level, input, out),
        }
    }
}

/// Runs `f` with this thread's codec state in `key`, made by `new` if the
/// thread has none yet or has one for another level (the state is kept
/// from batch to batch; see [`DEFLATE`] and [`ZSTD`]).
fn with_thread_state<L: PartialEq + Copy, S: 'static>(
    key: &'static std::thread::LocalKey<std::cell::RefCell<Option<(L, S)>>>,
    level: L,
    new: impl FnOnce() -> S,
    f: impl FnOnce(&mut S),
) {
    key.with(|cell| {
        // Not re-entered: compressing calls nothing of the producer's.
        let mut cell = cell.borrow_mut();
        let state = match &mut *cell {
            Some((l, state)) if *l == level => state,
            slot => &mut slot.insert((level, new())).1,
        };
        f(state);
    });
}

thread_local! {
    /// This thread's deflate state and its level, kept from batch to batch
    /// as the zstd context is (a `GzEncoder` per batch allocated and
    /// initialised about 270 KB for each).
    static DEFLATE: std::cell::RefCell<Option<(u32, flate2::Compress)>> =
        const { std::cell::RefCell::new(None) };
}

/// One gzip member of `input` (RFC 1952: the header flate2's `GzEncoder`
/// writes, raw deflate, CRC-32 and size), appended to `out`, with this
/// thread's deflate state. `level` < 0 is zlib's default (6).
fn gzip_compress(level: i32, input: &[u8], out: &mut Vec<u8>) {
    let level = if level < 0 { 6 } else { level as u32 };
    // No mtime, no name; XFL as GzEncoder sets it; OS 255 (unknown).
    let xfl = match level {
        9.. => 2,
        ..=1 => 4,
        _ => 0,
    };
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
    let new = || flate2::Compress::new(flate2::Compression::new(level), false);
    with_thread_state(&DEFLATE, level, new, |c| {
        c.reset(); // a no-op on a new one
                   // Deflate's worst case is a little over its input: reserve that,
                   // and more only if a pass still ends short of the stream's end.
        let mut room = input.len() + input.len() / 1000 + 64;
        loop {
            out.reserve(room);
            let from = (c.total_in() as usize).min(input.len());
            match c.compress_vec(&input[from..], out, flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) => break,
                Ok(_) => room = room.max(4096) * 2,
                Err(e) => panic!("deflate into memory: {e}"),
            }
        }
    });
    out.extend_from_slice(&crc32fast::hash(input).to_le_bytes());
    out.extend_from_slice(&(input.len() as u32).to_le_bytes());
}

thread_local! {
    /// This thread's zstd context and its level: one per thread that
    /// seals batches, kept from batch to batch. A context per batch (a
    /// streaming encoder) allocated and initialised megabytes for each,
    /// and its window buffer copied the input once more.
    static ZSTD: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// One zstd frame of `input`, appended to `out`, compressed in one call
/// (the frame records its size) with this thread's context.
fn zstd_compress(level: i32, input: &[u8], out: &mut Vec<u8>) {
    let bound = zstd::zstd_safe::compress_bound(input.len());
    let new = || zstd::bulk::Compressor::new(level).expect("a zstd context");
    with_thread_state(&ZSTD, level, new, |c| {
        // The output has compress_bound's room: only a broken library fails.
        let room = "zstd into memory with compress_bound's room";
        if out.is_empty() {
            // Into the spare capacity, not zero-filled first.
            out.reserve(bound);
            c.compress_to_buffer(input, out).expect(room);
        } else {
            let at = out.len();
            out.resize(at + bound, 0);
            let n = c.compress_to_buffer(input, &mut out[at..]).expect(room);
            out.truncate(at + n);
        }
    });
}

/// Decompresses the records section of a batch whose attributes name
/// `codec` (bits 0-2), refusing to produce more than `limit` bytes (a
/// hostile or corrupt blob cannot make us allocate more).
///
/// # Errors
///
/// [`DecodeError`] for an unknown codec, corrupt input, or output above
/// `limit`.
pub fn decompress(codec: i16, input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let corrupt = |what: &'static str| DecodeError::Invalid { what, offset: 0 };
    let mut out = Vec::new();
    let read_all = |r: &mut dyn Read, out: &mut Vec<u8>| -> Result<(), DecodeError> {
        let n = r
            .take(limit as u64 + 1)
            .read_to_end(out)
            .map_err(|_| corrupt("corrupt compressed records"))?;
        if n > limit {
            return Err(corrupt("decompressed records exceed the limit"));
        }
        Ok(())
    };
    match codec {
        0 if input.len() > limit => return Err(corrupt("records exceed the limit")),
        0 => out.extend_from_slice(input),
        1 => read_all(&mut flate2::read::GzDecoder::new(input), &mut out)?,
        2 if input.starts_with(&XERIAL_HEADER[..8]) => {
            let mut rest = input.get(16..).ok_or(corrupt("short xerial header"))?;
            let mut dec = snap::raw::Decoder::new();
            while !rest.is_empty() {
                let len = rest
                    .get(..4)
                    .map(|b| BigEndian::read_u32(b) as usize)
                    .ok_or(corrupt("short xerial block length"))?;
                let block = rest.get(4..4 + len).ok_or(corrupt("short xerial block"))?;
                let n = snap::raw::decompress_len(block)
                    .map_err(|_| corrupt("corrupt snappy block"))?;
                if out.len() + n > limit {
                    return Err(corrupt("decompressed records exceed the limit"));
                }
                out.extend(
                    dec.decompress_vec(block)
                        .map_err(|_| corrupt("corrupt snappy block"))?,
                );
                rest = &rest[4 + len..];
            }
        }
        2 => {
            let n = snap::raw::decompress_len(input).map_err(|_| corrupt("corrupt snappy"))?;
            if n > limit {
                return Err(corrupt("decompressed records exceed the limit"));
            }
            out = snap::raw::Decoder::new()
                .decompress_vec(input)
                .map_err(|_| corrupt("corrupt snappy"))?;
        }
        3 => read_all(&mut lz4_flex::frame::FrameDecoder::new(input), &mut out)?,
        4 => {
            let mut d = zstd::stream::Decoder::new(input).map_err(|_| corrupt("corrupt zstd"))?;
            read_all(&mut d, &mut out)?;
        }
        _ => return Err(corrupt("unknown compression codec")),
    }
    Ok(out)
}

/// Rewrites concatenated v2 batches (`wire`) with their records
/// decompressed and the codec bits cleared (lengths and CRC-32C
/// recomputed), so that [`decode_batches`](super::records::decode_batches)
/// reads them. Each batch's CRC is checked first; no batch may decompress
/// to more than `limit` bytes.
///
/// # Errors
///
/// [`DecodeError`] for truncated, corrupt or oversized input.
pub fn decompress_batches(mut wire: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    use super::records::{
        write_crc, ATTRIBUTES, ATTR_COMPRESSION_MASK, CRC, LENGTH, RECORD_BATCH_OVERHEAD,
    };
    let bad = |what: &'static str| DecodeError::Invalid { what, offset: 0 };
    let mut out = Vec::with_capacity(wire.len());
    while !wire.is_empty() {
        let header = wire
            .get(..RECORD_BATCH_OVERHEAD)
            .ok_or(bad("batch shorter than its header"))?;
        let length = BigEndian::read_i32(&header[LENGTH]);
        let total = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(12))
            .filter(|&t| t >= RECORD_BATCH_OVERHEAD && t <= wire.len())
            .ok_or(bad("batch length out of range"))?;
        let crc = BigEndian::read_u32(&header[CRC]);
        if crc32c::crc32c(&wire[ATTRIBUTES.start..total]) != crc {
            return Err(bad("CRC-32C mismatch"));
        }
        let attributes = BigEndian::read_i16(&header[ATTRIBUTES]);
        let plain = decompress(
            attributes & ATTR_COMPRESSION_MASK,
            &wire[RECORD_BATCH_OVERHEAD..total],
            limit,
        )?;
        let mut h: [u8; RECORD_BATCH_OVERHEAD] = header.try_into().expect("61 bytes");
        BigEndian::write_i32(
            &mut h[LENGTH],
            (RECORD_BATCH_OVERHEAD - 12 + plain.len()) as i32,
        );
        BigEndian::write_i16(&mut h[ATTRIBUTES], attributes & !ATTR_COMPRESSION_MASK);
        write_crc(&mut h, &plain);
        out.extend_from_slice(&h);
        out.extend_from_slice(&plain);
        wire = &wire[total..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip(-1),
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd(3),
    ];

    /// The reused deflate state writes, at every level and after serving
    /// other levels, the same member as the first time, after what `out`
    /// already holds: GzEncoder's header, and a stream flate2's own
    /// `GzDecoder` reads back, CRC-32 and size checked; an incompressible
    /// input, and an empty one, too.
    #[test]
    fn gzip_on_the_thread_state_writes_the_same_valid_member_every_time() {
        use std::io::Read;
        let text: Vec<u8> = (0..80_000u32).map(|i| (i % 89) as u8).collect();
        let noise: Vec<u8> = (0..300_000u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
            .collect();
        for input in [&text[..], &noise[..], &[][..]] {
            let mut first = std::collections::HashMap::new();
            for level in [-1, 6, 1, 9, 0, 6, 1, -1] {
                let mut ours = b"prefix".to_vec();
                Compression::Gzip(level).compress(input, &mut ours);
                let xfl = match level {
                    9 => 2,
                    0 | 1 => 4,
                    _ => 0,
                };
                assert_eq!(&ours[..6], b"prefix");
                assert_eq!(ours[6..16], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]);
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&ours[6..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, input, "level {level}, {} bytes", input.len());
                assert_eq!(decompress(1, &ours[6..], input.len()).unwrap(), input);
                let again = first.entry(level).or_insert_with(|| ours.clone());
                assert_eq!(*again, ours, "level {level}: the same bytes as before");
            }
        }
    }

    /// The thread's zstd context serves one level after another (a
    /// producer per level in one process), and a frame goes after what
    /// `out` already holds, as the other codecs append.
    #[test]
    fn zstd_changes_level_on_its_thread_context_and_appends_to_out() {
        let input: Vec<u8> = (0..50_000u32).map(|i| (i % 97) as u8).collect();
        let mut sizes = Vec::new();
        for level in [3, 19, 3, 1] {
            let mut out = b"prefix".to_vec();
            Compression::Zstd(level).compress(&input, &mut out);
            assert_eq!(&out[..6], b"prefix", "level {level}");
            let frame = &out[6..];
            assert_eq!(
                decompress(4, frame, input.len()).unwrap(),
                input,
                "level {level}"
            );
            let mut fresh = Vec::new();
            Compression::Zstd(level).compress(&input, &mut fresh);
            assert_eq!(
                fresh, frame,
                "level {level}: the same frame into an empty buffer"
            );
            sizes.push(frame.len());
        }
        assert_eq!(sizes[0], sizes[2], "level 3 again after 19");
    }

    #[test]
    fn every_codec_round_trips_and_compresses_repetitive_records() {
        let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 / 8).collect();
        for c in ALL {
            let mut out = Vec::new();
            c.compress(&input, &mut out);
            if c != Compression::None {
                assert!(out.len() < input.len() / 4, "{c:?}: {} bytes", out.len());
            }
            assert_eq!(
                decompress(c.attribute(), &out, input.len()).unwrap(),
                input,
                "{c:?}"
            );
            // One byte less than the output is refused, not allocated.
            assert!(
                decompress(c.attribute(), &out, input.len() - 1).is_err(),
                "{c:?}"
            );
        }
        assert!(decompress(7, b"x", 10).is_err());
    }

    #[test]
    fn snappy_writes_javas_xerial_framing_and_reads_raw_too() {
        let input = vec![7u8; 70_000];
        let mut out = Vec::new();
        Compression::Snappy.compress(&input, &mut out);
        assert_eq!(&out[..16], &XERIAL_HEADER);
        // 70,000 bytes are three 32 KiB blocks.
        let first = u32::from_be_bytes(out[16..20].try_into().unwrap()) as usize;
        let block = &out[20..20 + first];
        assert_eq!(snap::raw::decompress_len(block).unwrap(), XERIAL_BLOCK);
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(decompress(2, &raw, input.len()).unwrap(), input);
    }

    #[test]
    fn lz4_frames_are_javas_layout() {
        let mut out = Vec::new();
        Compression::Lz4.compress(&[1, 2, 3, 4], &mut out);
        assert_eq!(&out[..4], &0x184D_2204u32.to_le_bytes(), "LZ4 frame magic");
        // FLG: version 01, independent blocks, no checksums or size; BD 64 KiB.
        assert_eq!(out[4] & 0b1111_1100, 0x60, "FLG {:#x}", out[4]);
        assert_eq!(out[5], 0x40, "BD");
        assert_eq!(&out[out.len() - 4..], &[0, 0, 0, 0], "EndMark");
    }

    proptest::proptest! {
        #[test]
        fn hostile_blobs_never_panic(codec in 0i16..8, b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decompress(codec, &b, 1 << 16);
        }
    }
}
