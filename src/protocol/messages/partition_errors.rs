//! The response body two transactional APIs share: a throttle time, then
//! per topic, per partition, an error code.
//!
//! ```text
//! ThrottleTimeMs int32, [Name STRING, [PartitionIndex int32, ErrorCode int16]]
//! ```
//!
//! AddPartitionsToTxn v0-3 calls the array `ResultsByTopicV3AndBelow`
//! (`AddPartitionsToTxnTopicResult` / `AddPartitionsToTxnPartitionResult`,
//! its error `PartitionErrorCode`), TxnOffsetCommit calls it `Topics`
//! (`TxnOffsetCommitResponseTopic` / `TxnOffsetCommitResponsePartition`);
//! the bytes are the same at every version, classic or flexible (where each
//! struct and the body end with a tag buffer). One codec and one element
//! type serve both, so the code that acts on either answer walks it once.
//! The modules of those APIs own their messages, versions and docs.

use crate::protocol::primitives::{Decoder, Writer};
use crate::protocol::DecodeError;

/// One partition's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionError {
    /// The partition.
    pub partition_index: i32,
    /// 0 or the error.
    pub error_code: i16,
}

/// One topic's outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitionErrors {
    /// The topic.
    pub name: String,
    /// Its partitions.
    pub partitions: Vec<PartitionError>,
}

/// Reads the array in `d`'s form (classic or flexible); unknown tagged
/// fields are skipped.
///
/// # Errors
///
/// [`DecodeError`] on truncated or malformed input, or a count that could
/// not fit in what remains.
fn decode(d: &mut Decoder<'_>) -> Result<Vec<TopicPartitionErrors>, DecodeError> {
    let (string, array, tags) = (d.min_string_size(), d.min_array_size(), d.min_tags_size());
    d.array_of(string + array + tags, |d| {
        let name = d.string()?.to_owned();
        let partitions = d.array_of(4 + 2 + tags, |d| {
            let p = PartitionError {
                partition_index: d.i32()?,
                error_code: d.i16()?,
            };
            d.skip_tagged_fields()?;
            Ok(p)
        })?;
        d.skip_tagged_fields()?;
        Ok(TopicPartitionErrors { name, partitions })
    })
}

/// Writes the array in `w`'s form.
fn encode(w: &mut Writer<'_>, topics: &[TopicPartitionErrors]) {
    w.array_len(topics.len());
    for t in topics {
        w.string(&t.name);
        w.array_len(t.partitions.len());
        for p in &t.partitions {
            w.i32(p.partition_index);
            w.i16(p.error_code);
            w.tagged_fields_empty();
        }
        w.tagged_fields_empty();
    }
}

/// Reads a whole response body (throttle time, array, tag buffer) in the
/// classic or the `flexible` form.
///
/// # Errors
///
/// [`DecodeError`] on truncated or malformed input.
pub fn decode_response(
    body: &[u8],
    flexible: bool,
) -> Result<(i32, Vec<TopicPartitionErrors>), DecodeError> {
    let mut d = Decoder::new(body, flexible);
    let throttle_time_ms = d.i32()?;
    let topics = decode(&mut d)?;
    d.skip_tagged_fields()?;
    Ok((throttle_time_ms, topics))
}

/// Appends a whole response body in the classic or the `flexible` form.
pub fn encode_response(
    buf: &mut Vec<u8>,
    flexible: bool,
    throttle_time_ms: i32,
    topics: &[TopicPartitionErrors],
) {
    let mut w = Writer::new(buf, flexible);
    w.i32(throttle_time_ms);
    encode(&mut w, topics);
    w.tagged_fields_empty();
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A tag buffer of one tag no version defines, for `kafka-protocol`'s
    /// `unknown_tagged_fields`: our decoders must skip it by its length.
    pub(in crate::protocol::messages) fn unknown_tags(
    ) -> std::collections::BTreeMap<i32, bytes::Bytes> {
        std::collections::BTreeMap::from([(9, bytes::Bytes::from_static(b"xyz"))])
    }

    #[test]
    fn hostile_counts_fail_before_reserving() {
        // classic: throttle, then topics claiming 2^31-1
        let topics = [&[0; 4][..], &i32::MAX.to_be_bytes(), &[0; 16]].concat();
        assert!(matches!(
            decode_response(&topics, false),
            Err(DecodeError::Invalid { .. })
        ));
        // classic: two topics in 11 bytes, where each takes at least 6
        let mut b = vec![0; 4];
        Writer::new(&mut b, false).array_len(2);
        b.extend_from_slice(&[0; 11]);
        assert!(matches!(
            decode_response(&b, false),
            Err(DecodeError::Invalid { .. })
        ));
        // classic: one topic "", its partitions claiming 2^31-1
        let mut parts = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
        parts.extend_from_slice(&i32::MAX.to_be_bytes());
        parts.extend_from_slice(&[0; 64]);
        assert!(matches!(
            decode_response(&parts, false),
            Err(DecodeError::Invalid { .. })
        ));
        // flexible: one topic "", partitions claiming 2^32-2
        let mut compact = vec![0, 0, 0, 0, 2, 1];
        compact.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        compact.extend_from_slice(&[0; 30]);
        assert!(matches!(
            decode_response(&compact, true),
            Err(DecodeError::Invalid { .. })
        ));
        // flexible: two partitions in 13 bytes, where each takes 7 (its
        // tag buffer); with the 15 bytes they and the tags need, it decodes
        let mut b = vec![0, 0, 0, 0, 2, 1, 3];
        b.extend_from_slice(&[0; 13]);
        assert!(matches!(
            decode_response(&b, true),
            Err(DecodeError::Invalid { .. })
        ));
        b.extend_from_slice(&[0; 3]);
        let (_, topics) = decode_response(&b, true).unwrap();
        assert_eq!(topics[0].partitions.len(), 2);
        // a tag buffer claiming more tags than bytes remain
        let tags = [0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0];
        assert!(matches!(
            decode_response(&tags, true),
            Err(DecodeError::Invalid { .. })
        ));
    }

    #[test]
    fn round_trips_in_both_forms() {
        let topics = vec![
            TopicPartitionErrors {
                name: "a".into(),
                partitions: vec![
                    PartitionError {
                        partition_index: 0,
                        error_code: 0,
                    },
                    PartitionError {
                        partition_index: 7,
                        error_code: 51,
                    },
                ],
            },
            TopicPartitionErrors {
                name: "b".into(),
                partitions: vec![],
            },
        ];
        for flexible in [false, true] {
            let mut b = Vec::new();
            encode_response(&mut b, flexible, 3, &topics);
            assert_eq!(decode_response(&b, flexible).unwrap(), (3, topics.clone()));
        }
    }
}
