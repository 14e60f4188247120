//! The model's codec: request frames in, response frames out, through the
//! `kafka-protocol` crate (an implementation independent of this crate's
//! `protocol` module, so the mock checks our encoders instead of agreeing
//! with them), and the record batches of a Produce request through its
//! `records` module (CRC-32C checked, decompressed).
//!
//! Owns framing and version gating only; what a request means is
//! `model.rs`'s.
//!
//! ```text
//! request frame (the 4-byte size prefix already stripped by the driver):
//! +---------+-------------+----------------+-----------+------------+-------+
//! | api_key | api_version | correlation_id | client_id | [tags v2+] | body  |
//! |  int16  |   int16     |     int32      | nullable  |            |       |
//! +---------+-------------+----------------+-----------+------------+-------+
//! response frame (size prefix included, ready to write):
//! +--------+----------------+------------+------+
//! |  size  | correlation_id | [tags v1+] | body |
//! +--------+----------------+------------+------+
//! ```

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, ApiVersionsRequest, EndTxnRequest,
    FetchRequest, FindCoordinatorRequest, InitProducerIdRequest, ListOffsetsRequest,
    MetadataRequest, ProduceRequest, RequestHeader, ResponseHeader, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};

use super::partition::IncomingBatch;
use super::Api;

/// A decoded request body.
#[derive(Debug)]
pub enum Body {
    ApiVersions(ApiVersionsRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    Produce(ProduceRequest),
    InitProducerId(InitProducerIdRequest),
    FindCoordinator(FindCoordinatorRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    EndTxn(EndTxnRequest),
}

/// A request frame, as far as it could be read.
#[derive(Debug)]
pub enum Decoded {
    /// A request the model serves, at a version it supports.
    Request {
        api: Api,
        version: i16,
        correlation_id: i32,
        body: Body,
    },
    /// ApiVersions at a version above the model's: Kafka answers with a v0
    /// response carrying UNSUPPORTED_VERSION and its versions (KIP-511).
    ApiVersionsTooNew { correlation_id: i32 },
    /// Anything else (an unknown API or version, a malformed frame): Kafka
    /// closes the connection.
    Unreadable(String),
}

/// The API key and version at the start of a frame.
fn peek_key_version(frame: &[u8]) -> Option<(i16, i16, i32)> {
    if frame.len() < 8 {
        return None;
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    Some((key, version, correlation_id))
}

/// Reads one request frame.
pub fn decode(frame: &[u8]) -> Decoded {
    let Some((key, version, correlation_id)) = peek_key_version(frame) else {
        return Decoded::Unreadable(format!("a {}-byte frame has no header", frame.len()));
    };
    let Some(api) = Api::from_key(key) else {
        return Decoded::Unreadable(format!("API key {key} is not served by the mock"));
    };
    let versions = api.versions();
    if !versions.contains(&version) {
        if api == Api::ApiVersions && version > *versions.end() {
            return Decoded::ApiVersionsTooNew { correlation_id };
        }
        return Decoded::Unreadable(format!(
            "{api:?} v{version} is not supported (the mock serves v{}-{})",
            versions.start(),
            versions.end()
        ));
    }
    let Ok(api_key) = ApiKey::try_from(key) else {
        return Decoded::Unreadable(format!("API key {key} is unknown to kafka-protocol"));
    };
    let mut buf = Bytes::copy_from_slice(frame);
    let header_version = api_key.request_header_version(version);
    if let Err(e) = RequestHeader::decode(&mut buf, header_version) {
        return Decoded::Unreadable(format!("{api:?} v{version} request header: {e}"));
    }
    let body = match api {
        Api::ApiVersions => ApiVersionsRequest::decode(&mut buf, version).map(Body::ApiVersions),
        Api::Fetch => FetchRequest::decode(&mut buf, version).map(Body::Fetch),
        Api::ListOffsets => ListOffsetsRequest::decode(&mut buf, version).map(Body::ListOffsets),
        Api::Metadata => MetadataRequest::decode(&mut buf, version).map(Body::Metadata),
        Api::Produce => ProduceRequest::decode(&mut buf, version).map(Body::Produce),
        Api::InitProducerId => {
            InitProducerIdRequest::decode(&mut buf, version).map(Body::InitProducerId)
        }
        Api::FindCoordinator => {
            FindCoordinatorRequest::decode(&mut buf, version).map(Body::FindCoordinator)
        }
        Api::AddPartitionsToTxn => {
            AddPartitionsToTxnRequest::decode(&mut buf, version).map(Body::AddPartitionsToTxn)
        }
        Api::AddOffsetsToTxn => {
            AddOffsetsToTxnRequest::decode(&mut buf, version).map(Body::AddOffsetsToTxn)
        }
        Api::TxnOffsetCommit => {
            TxnOffsetCommitRequest::decode(&mut buf, version).map(Body::TxnOffsetCommit)
        }
        Api::EndTxn => EndTxnRequest::decode(&mut buf, version).map(Body::EndTxn),
    };
    match body {
        Ok(body) if !buf.has_remaining() => Decoded::Request {
            api,
            version,
            correlation_id,
            body,
        },
        Ok(_) => Decoded::Unreadable(format!(
            "{api:?} v{version}: {} bytes after the body",
            buf.remaining()
        )),
        Err(e) => Decoded::Unreadable(format!("{api:?} v{version} body: {e}")),
    }
}

/// A response frame: size prefix, header (its version follows from the
/// request's API and version), body. The model builds responses valid at
/// the version it negotiated (fields a version lacks stay at their
/// defaults), so `Err` is a model bug; the driver then cuts the connection.
pub fn encode<R: Encodable>(
    api: Api,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Vec<u8>, String> {
    let api_key = ApiKey::try_from(api.key()).map_err(|_| format!("{api:?}: unknown key"))?;
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    header
        .encode(&mut buf, api_key.response_header_version(version))
        .and_then(|()| body.encode(&mut buf, version))
        .map_err(|e| format!("an invalid {api:?} v{version} response: {e}"))?;
    let size = u32::try_from(buf.len() - 4).map_err(|_| "a response over 4 GiB".to_string())?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.to_vec())
}

/// Decodes the record batches of one partition's Produce data, checking
/// each batch's CRC-32C. `Err` means CORRUPT_MESSAGE.
pub fn decode_batches(records: &Bytes) -> Result<Vec<IncomingBatch>, String> {
    let mut buf = records.clone();
    let mut out = Vec::new();
    while buf.has_remaining() {
        let start = records.len() - buf.remaining();
        let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| e.to_string())?;
        let raw = records.slice(start..records.len() - buf.remaining());
        let Some(first) = set.records.first() else {
            return Err("a record batch without records".into());
        };
        let last = set.records.last().expect("not empty");
        if first.timestamp_type == TimestampType::LogAppend {
            return Err("a producer batch with LogAppendTime".into());
        }
        out.push(IncomingBatch {
            producer_id: first.producer_id,
            producer_epoch: first.producer_epoch,
            base_sequence: first.sequence,
            transactional: first.transactional,
            control: first.control,
            last_offset_delta: i32::try_from(last.offset - first.offset)
                .map_err(|_| "offset deltas out of range".to_string())?,
            records: set
                .records
                .iter()
                .map(|r| {
                    (
                        r.timestamp,
                        r.key.as_ref().map(|b| b.to_vec()),
                        r.value.as_ref().map(|b| b.to_vec()),
                        r.headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.as_ref().map(|b| b.to_vec())))
                            .collect(),
                    )
                })
                .collect(),
            raw,
        });
    }
    Ok(out)
}
