//! The entry points of the fuzz targets, one per decoder of bytes from the
//! network. Each `fuzz_targets/<name>.rs` calls one of them, and
//! `tests/fuzz_corpora.rs` replays every file of `corpus/<name>/` through
//! the same one on stable (it includes this file as a module), so what the
//! fuzzer runs and what CI checks cannot drift apart.
//!
//! Every entry point returns `Ok` when its input decodes and `Err` when it
//! is refused; either is fine for the fuzzer. A panic is a bug: in a
//! decoder, or in one of the checks made on what decoded. Those checks are
//! round trips: whatever decodes is encoded again at the same version and
//! must decode to the same value, so the encoders the tests and fakes use
//! are fuzzed as well.
//!
//! A target that takes a version reads it from the input's first byte,
//! mapped onto the supported range (`MIN + byte % (MAX - MIN + 1)`), so a
//! seed for version `v` starts with the byte `v - MIN`.

use kafka_producer::protocol::messages::api::Api;
use kafka_producer::protocol::messages::header::{decode_response_header, split_frame};
use kafka_producer::protocol::messages::{
    add_offsets_to_txn, add_partitions_to_txn, api_versions, end_txn, find_coordinator,
    init_producer_id, metadata, produce, txn_offset_commit,
};
use kafka_producer::protocol::primitives::Decoder;
use kafka_producer::protocol::records::{self, BatchHeader, DecodedBatch};
use kafka_producer::protocol::{DecodeError, ErrorCode};

/// A decoder entry point.
pub type Target = fn(&[u8]) -> Result<(), DecodeError>;

/// Every target, by the name of its `fuzz_targets/` file and corpus.
pub const TARGETS: &[(&str, Target)] = &[
    ("api_versions_response", api_versions_response),
    ("metadata_response", metadata_response),
    ("produce_response", produce_response),
    ("init_producer_id_response", init_producer_id_response),
    ("find_coordinator_response", find_coordinator_response),
    ("end_txn_response", end_txn_response),
    ("response_header", response_header),
    ("record_batch", record_batch),
    ("frame_reader", frame_reader),
    (
        "add_partitions_to_txn_response",
        add_partitions_to_txn_response,
    ),
    ("add_offsets_to_txn_response", add_offsets_to_txn_response),
    ("txn_offset_commit_response", txn_offset_commit_response),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The version the first byte of `data` picks in `min..=max`, and the rest.
pub fn version_and_body(data: &[u8], min: i16, max: i16) -> (i16, &[u8]) {
    match data.split_first() {
        Some((&b, body)) => (min + (i16::from(b) % (max - min + 1)), body),
        None => (min, data),
    }
}

/// The first byte a seed for `version` starts with.
pub fn version_byte(version: i16, min: i16) -> u8 {
    (version - min) as u8
}

/// An ApiVersions response body (header excluded) at a version 0-3.
pub fn api_versions_response(data: &[u8]) -> Result<(), DecodeError> {
    use api_versions::{ApiVersionsResponse, MAX_VERSION, MIN_VERSION};
    let (v, body) = version_and_body(data, MIN_VERSION, MAX_VERSION);
    let r = ApiVersionsResponse::decode(body, v)?;
    // An UNSUPPORTED_VERSION reply is read in the v0 layout whatever the
    // version, and the encoder writes the epoch only beside features.
    let lossless = r.error_code != ErrorCode::UNSUPPORTED_VERSION.0
        && (!r.finalized_features.is_empty() || r.finalized_features_epoch == -1);
    if lossless {
        let mut again = Vec::new();
        r.encode(&mut again, v);
        let back = ApiVersionsResponse::decode(&again, v);
        assert_eq!(
            back.as_ref(),
            Ok(&r),
            "ApiVersions v{v} does not round-trip"
        );
    }
    Ok(())
}

/// Decodes a body at the version the input's first byte picks from `api`'s
/// range, encodes what decoded again at that version, and checks that it
/// decodes to the same value.
fn round_trips<T: PartialEq + std::fmt::Debug>(
    data: &[u8],
    api: &Api,
    decode: fn(&[u8], i16) -> Result<T, DecodeError>,
    encode: fn(&T, &mut Vec<u8>, i16),
) -> Result<(), DecodeError> {
    let (v, body) = version_and_body(data, api.min_version, api.max_version);
    let r = decode(body, v)?;
    let mut again = Vec::new();
    encode(&r, &mut again, v);
    let back = decode(&again, v);
    assert_eq!(
        back.as_ref(),
        Ok(&r),
        "{} v{v} does not round-trip",
        api.name
    );
    Ok(())
}

/// A Metadata response body at a version 0-12.
pub fn metadata_response(data: &[u8]) -> Result<(), DecodeError> {
    use metadata::{MetadataResponse as R, API};
    round_trips(data, &API, R::decode, R::encode)
}

/// A Produce response body at a version 3-11.
pub fn produce_response(data: &[u8]) -> Result<(), DecodeError> {
    use produce::{ProduceResponse as R, API};
    round_trips(data, &API, R::decode, R::encode)
}

/// An InitProducerId response body at a version 0-5.
pub fn init_producer_id_response(data: &[u8]) -> Result<(), DecodeError> {
    use init_producer_id::{InitProducerIdResponse as R, API};
    round_trips(data, &API, R::decode, R::encode)
}

/// A FindCoordinator response body at a version 0-6.
pub fn find_coordinator_response(data: &[u8]) -> Result<(), DecodeError> {
    use find_coordinator::{FindCoordinatorResponse as R, API};
    round_trips(data, &API, R::decode, R::encode)
}

/// An EndTxn response body at a version 0-5.
pub fn end_txn_response(data: &[u8]) -> Result<(), DecodeError> {
    use end_txn::{EndTxnResponse as R, API};
    round_trips(data, &API, R::decode, R::encode)
}

/// A response header, v0 or v1 by the first byte's low bit, then anything.
pub fn response_header(data: &[u8]) -> Result<(), DecodeError> {
    let (hv, rest) = version_and_body(data, 0, 1);
    let mut d = Decoder::new(rest, false);
    let correlation_id = decode_response_header(&mut d, hv)?;
    assert!(d.position() >= 4 && d.position() <= rest.len());
    assert_eq!(correlation_id.to_be_bytes(), rest[..4]);
    Ok(())
}

/// Concatenated RecordBatch v2 batches. A mutation almost never leaves a
/// CRC-32C right, so a copy with every checksum recomputed is decoded too:
/// that is how the records behind the checksum get fuzzed.
pub fn record_batch(data: &[u8]) -> Result<(), DecodeError> {
    let _ = batches_round_trip(&with_checksums_fixed(data));
    batches_round_trip(data)
}

fn batches_round_trip(data: &[u8]) -> Result<(), DecodeError> {
    let batches = records::decode_batches(data)?;
    let again = encode_batches(&batches);
    let back = records::decode_batches(&again);
    assert_eq!(back.as_ref(), Ok(&batches), "batches do not round-trip");
    Ok(())
}

/// `data` with the CRC-32C of each batch that its BatchLength frames
/// recomputed, as far as the framing goes.
pub fn with_checksums_fixed(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut at = 0;
    while out.len() - at >= records::RECORD_BATCH_OVERHEAD {
        let length = i32::from_be_bytes([out[at + 8], out[at + 9], out[at + 10], out[at + 11]]);
        let Some(end) = usize::try_from(length)
            .ok()
            .filter(|&n| n >= records::RECORD_BATCH_OVERHEAD - 12)
            .map(|n| at + 12 + n)
            .filter(|&end| end <= out.len())
        else {
            break;
        };
        let crc = crc32c::crc32c(&out[at + 21..end]);
        out[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
    out
}

/// Encodes decoded batches again with the producer's own writers.
pub fn encode_batches(batches: &[DecodedBatch<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in batches {
        let mut body = Vec::new();
        for r in &b.records {
            let headers = || r.headers.iter().copied();
            let size = records::record_body_size(
                r.offset_delta,
                r.timestamp_delta,
                r.key,
                r.value,
                headers(),
            );
            records::write_record(
                &mut body,
                size,
                r.offset_delta,
                r.timestamp_delta,
                r.key,
                r.value,
                headers(),
            );
        }
        let header: BatchHeader = b.header;
        out.extend_from_slice(&header.encode(&body));
        out.extend_from_slice(&body);
    }
    out
}

/// The frame caps the frame reader target picks from (its second byte):
/// tiny ones so that refusals are reached, and the connection's 100 MiB.
pub const FRAME_CAPS: [usize; 4] = [16, 4096, 1 << 20, 100 << 20];

/// A response byte stream cut into frames, as a connection reads it.
///
/// Byte 0 sets the read size (1-32 bytes per read), byte 1 the frame cap
/// ([`FRAME_CAPS`]); the rest is the stream. It is split once whole, and
/// once as it arrives read by read, splitting off every frame that is
/// complete after each read (as `Connection::next_frame` does); both must
/// find the same frames and stop at the same point. `Ok` if the stream is
/// whole frames, each starting with a response header.
pub fn frame_reader(data: &[u8]) -> Result<(), DecodeError> {
    let (chunk, cap, stream) = match data {
        [a, b, rest @ ..] => (
            1 + usize::from(*a) % 32,
            FRAME_CAPS[usize::from(*b) % 4],
            rest,
        ),
        _ => return Ok(()),
    };
    let whole = split_all(stream, cap);

    let mut buf = Vec::new();
    let mut pos = 0;
    let mut found = Vec::new();
    let mut stopped = None;
    'reads: for read in stream.chunks(chunk) {
        buf.extend_from_slice(read);
        loop {
            match split_frame(&buf[pos..], cap) {
                Ok(Some(f)) => {
                    found.push((f.correlation_id, f.bytes.len()));
                    pos += f.stream_len();
                }
                Ok(None) => break,
                Err(e) => {
                    stopped = Some(e);
                    break 'reads;
                }
            }
        }
    }
    assert_eq!(found, whole.frames, "frames differ read by read");
    assert_eq!(stopped, whole.error, "refusals differ read by read");
    if let Some(e) = whole.error {
        return Err(e);
    }
    if whole.consumed != stream.len() {
        return Err(DecodeError::Truncated {
            offset: whole.consumed,
            needed: 1,
        });
    }
    Ok(())
}

struct Split {
    frames: Vec<(i32, usize)>,
    error: Option<DecodeError>,
    consumed: usize,
}

fn split_all(stream: &[u8], cap: usize) -> Split {
    let mut s = Split {
        frames: Vec::new(),
        error: None,
        consumed: 0,
    };
    loop {
        match split_frame(&stream[s.consumed..], cap) {
            Ok(Some(f)) => {
                let n = f.bytes.len();
                assert!((4..=cap).contains(&n), "frame of {n} bytes under cap {cap}");
                assert_eq!(f.stream_len(), 4 + n);
                let mut d = Decoder::new(f.bytes, false);
                let corr = decode_response_header(&mut d, 0).expect("a frame holds an id");
                assert_eq!(corr, f.correlation_id);
                let _ = decode_response_header(&mut Decoder::new(f.bytes, false), 1);
                s.frames.push((f.correlation_id, n));
                s.consumed += f.stream_len();
            }
            Ok(None) => return s,
            Err(e) => {
                s.error = Some(e);
                return s;
            }
        }
    }
}

/// An AddPartitionsToTxn response body at a version 0-3.
pub fn add_partitions_to_txn_response(data: &[u8]) -> Result<(), DecodeError> {
    use add_partitions_to_txn::{AddPartitionsToTxnResponse as R, API};
    round_trips(data, &API, R::decode, R::encode)
}

/// An AddOffsetsToTxn response body at a version 0-4.
pub fn add_offsets_to_txn_response(data: &[u8]) -> Result<(), DecodeError> {
    use add_offsets_to_txn::{AddOffsetsToTxnResponse as R, API};
    round_trips(data, &API, R::decode, R::encode)
}

/// A TxnOffsetCommit response body at a version 0-4.
pub fn txn_offset_commit_response(data: &[u8]) -> Result<(), DecodeError> {
    use txn_offset_commit::{TxnOffsetCommitResponse as R, API};
    round_trips(data, &API, R::decode, R::encode)
}
