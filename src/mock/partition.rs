//! One partition of the model: its log of record batches, its offsets, and
//! the idempotent producers' sequence state on it, with the checks a Kafka
//! partition leader makes on an append (`UnifiedLog.append`,
//! `ProducerStateManager` / `ProducerAppendInfo`, KIP-98 and KIP-360).
//!
//! Owns no time and no I/O: an append is a pure function of the log, the
//! decoded batch and the producer's state. Transaction coordination (which
//! partitions a transaction added) is `txn.rs`'s; this file only writes
//! the control markers it is told to and tracks which transactions are
//! open on the partition.

use std::collections::{HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::protocol::ErrorCode;

/// How many of a producer's latest batches a partition remembers for
/// duplicate detection (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`,
/// which is also why `max.in.flight.requests.per.connection` is at most 5
/// with idempotence).
pub const BATCHES_TO_RETAIN: usize = 5;

/// The kind of a control batch (the transaction marker's key, KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    /// An abort marker: the producer's open batches on the partition are aborted.
    Abort,
    /// A commit marker: they become visible to `read_committed` consumers.
    Commit,
}

/// What a `read_committed` consumer would make of a data record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Not transactional: visible at once.
    Plain,
    /// In a transaction that has not ended yet: not visible (it holds back
    /// the last stable offset).
    Open,
    /// In a committed transaction: visible.
    Committed,
    /// In an aborted transaction: never visible.
    Aborted,
}

impl Visibility {
    /// True if a `read_committed` consumer returns the record (once the
    /// transactions before it are decided).
    pub fn is_visible(self) -> bool {
        matches!(self, Visibility::Plain | Visibility::Committed)
    }
}

/// One record as the model stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockRecord {
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp (CreateTime, ms).
    pub timestamp: i64,
    /// The key, `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// The value, `None` for a null value (a tombstone).
    pub value: Option<Vec<u8>>,
    /// The headers in record order. (kafka-protocol keeps headers in a map,
    /// so of two headers with the same name only the last one is seen.)
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The batch's producer id (-1 without idempotence).
    pub producer_id: i64,
    /// The batch's producer epoch (-1 without idempotence).
    pub producer_epoch: i16,
    /// The record's sequence number (the batch's base sequence plus its
    /// index; -1 without idempotence).
    pub sequence: i32,
    /// True if the record was written in a transaction.
    pub transactional: bool,
    /// Whether a `read_committed` consumer sees it.
    pub visibility: Visibility,
}

/// One record batch as the model stored it: a producer's batch or a
/// control marker the model wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockBatch {
    /// The offset of its first record.
    pub base_offset: i64,
    /// The offset of its last record.
    pub last_offset: i64,
    /// The producer id from the batch header (-1 without idempotence).
    pub producer_id: i64,
    /// The producer epoch from the batch header.
    pub producer_epoch: i16,
    /// The base sequence from the batch header (-1 without idempotence).
    pub base_sequence: i32,
    /// The transactional attribute.
    pub transactional: bool,
    /// `Some` for a control batch (a transaction marker).
    pub control: Option<ControlType>,
    /// Its data records (empty for a control batch).
    pub records: Vec<MockRecord>,
}

/// A decoded producer batch, ready to append.
#[derive(Debug, Clone)]
pub struct IncomingBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    pub control: bool,
    /// Offset of the last record relative to the first (the batch's
    /// `lastOffsetDelta`).
    pub last_offset_delta: i32,
    /// (timestamp, key, value, headers) per record.
    pub records: Vec<IncomingRecord>,
    /// The batch as the producer sent it (served to Fetch with its base
    /// offset patched, as a Kafka leader does: the CRC does not cover it).
    pub raw: Bytes,
}

/// One decoded record of an [`IncomingBatch`].
pub type IncomingRecord = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Written at this base offset.
    New(i64),
    /// A resend of one of the producer's last [`BATCHES_TO_RETAIN`]
    /// batches: not written again; it was written at this base offset.
    Duplicate(i64),
}

/// One of a producer's recent batches (`BatchMetadata`).
#[derive(Debug, Clone, Copy)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

/// A producer id's state on one partition (`ProducerStateEntry`).
#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    /// Newest last; at most [`BATCHES_TO_RETAIN`].
    recent: VecDeque<BatchMeta>,
    /// The first offset of its open transaction on this partition.
    open_txn: Option<i64>,
}

/// A partition's log.
#[derive(Debug, Default)]
pub struct PartitionLog {
    batches: Vec<MockBatch>,
    /// Each batch's bytes with its base offset in place, as Fetch serves
    /// them (`raw[i]` is `batches[i]`).
    raw: Vec<Bytes>,
    /// Aborted transactions: (producer id, first offset, marker offset),
    /// for Fetch's `aborted_transactions` (read_committed consumers skip them).
    aborted: Vec<(i64, i64, i64)>,
    /// The next offset to assign (the log end offset).
    next_offset: i64,
    producers: HashMap<i64, ProducerEntry>,
}

/// `ProducerAppendInfo.inSequence`: `next` follows `last`, wrapping at
/// `i32::MAX` to 0.
fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (next == 0 && last == i32::MAX)
}

/// `DefaultRecordBatch.incrementSequence`.
fn add_sequence(base: i32, delta: i32) -> i32 {
    if base > i32::MAX - delta {
        delta - (i32::MAX - base) - 1
    } else {
        base + delta
    }
}

impl PartitionLog {
    /// The log end offset (Kafka's high watermark: every replica is in sync).
    pub fn end_offset(&self) -> i64 {
        self.next_offset
    }

    /// The last stable offset: the first offset of the oldest open
    /// transaction, else the end offset.
    pub fn last_stable_offset(&self) -> i64 {
        self.producers
            .values()
            .filter_map(|p| p.open_txn)
            .min()
            .unwrap_or(self.next_offset)
    }

    /// Every batch, in log order.
    pub fn batches(&self) -> &[MockBatch] {
        &self.batches
    }

    /// Checks `batch` as a partition leader does and appends it, or says
    /// why not. `in_txn` says whether the coordinator has this partition
    /// in the producer's ongoing transaction (only asked of transactional
    /// batches).
    pub fn append(&mut self, batch: IncomingBatch, in_txn: bool) -> Result<Appended, ErrorCode> {
        if batch.control {
            // Only the coordinator writes markers; a client's control batch is refused.
            return Err(ErrorCode::INVALID_RECORD);
        }
        let idempotent = batch.producer_id >= 0;
        if batch.transactional && !idempotent {
            return Err(ErrorCode::INVALID_RECORD);
        }
        if idempotent {
            if let Some(dup) = self.check_sequence(&batch)? {
                return Ok(Appended::Duplicate(dup));
            }
        }
        if batch.transactional && !in_txn {
            // KIP-890 part 1 (Kafka 3.6+): the leader verifies with the
            // coordinator that the partition was added to the transaction.
            return Err(ErrorCode::INVALID_TXN_STATE);
        }
        let base_offset = self.next_offset;
        let last_offset = base_offset + i64::from(batch.last_offset_delta);
        let visibility = if batch.transactional {
            Visibility::Open
        } else {
            Visibility::Plain
        };
        let mut raw = BytesMut::from(&batch.raw[..]);
        raw[..8].copy_from_slice(&base_offset.to_be_bytes());
        self.raw.push(raw.freeze());
        let records = batch
            .records
            .into_iter()
            .enumerate()
            .map(|(i, (timestamp, key, value, headers))| MockRecord {
                offset: base_offset + i as i64,
                timestamp,
                key,
                value,
                headers,
                producer_id: batch.producer_id,
                producer_epoch: batch.producer_epoch,
                sequence: if idempotent {
                    add_sequence(batch.base_sequence, i as i32)
                } else {
                    -1
                },
                transactional: batch.transactional,
                visibility,
            })
            .collect();
        self.batches.push(MockBatch {
            base_offset,
            last_offset,
            producer_id: batch.producer_id,
            producer_epoch: batch.producer_epoch,
            base_sequence: batch.base_sequence,
            transactional: batch.transactional,
            control: None,
            records,
        });
        self.next_offset = last_offset + 1;
        if idempotent {
            let entry = self
                .producers
                .entry(batch.producer_id)
                .or_insert_with(|| ProducerEntry {
                    epoch: batch.producer_epoch,
                    recent: VecDeque::new(),
                    open_txn: None,
                });
            if entry.epoch != batch.producer_epoch {
                entry.epoch = batch.producer_epoch;
                entry.recent.clear();
            }
            if entry.recent.len() == BATCHES_TO_RETAIN {
                entry.recent.pop_front();
            }
            entry.recent.push_back(BatchMeta {
                first_seq: batch.base_sequence,
                last_seq: add_sequence(batch.base_sequence, batch.last_offset_delta),
                base_offset,
            });
            if batch.transactional && entry.open_txn.is_none() {
                entry.open_txn = Some(base_offset);
            }
        }
        Ok(Appended::New(base_offset))
    }

    /// The epoch and sequence checks of `ProducerAppendInfo`:
    /// `Ok(Some(offset))` for a duplicate of a retained batch, `Ok(None)`
    /// to append, or the error the leader answers with.
    fn check_sequence(&self, batch: &IncomingBatch) -> Result<Option<i64>, ErrorCode> {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            // No state for the producer here (new, or its state expired):
            // since KIP-360 (Kafka 2.5) the leader accepts any sequence, so
            // UNKNOWN_PRODUCER_ID is not answered any more.
            return Ok(None);
        };
        if batch.producer_epoch < entry.epoch {
            // KIP-588: a produce with an older epoch is INVALID_PRODUCER_EPOCH.
            return Err(ErrorCode::INVALID_PRODUCER_EPOCH);
        }
        if batch.producer_epoch > entry.epoch {
            // A new epoch starts its sequences over at 0.
            return if batch.base_sequence == 0 {
                Ok(None)
            } else {
                Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        let last_seq = add_sequence(batch.base_sequence, batch.last_offset_delta);
        if let Some(dup) = entry
            .recent
            .iter()
            .find(|b| b.first_seq == batch.base_sequence && b.last_seq == last_seq)
        {
            return Ok(Some(dup.base_offset));
        }
        match entry.recent.back() {
            Some(last) if !in_sequence(last.last_seq, batch.base_sequence) => {
                Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
            }
            _ => Ok(None),
        }
    }

    /// Writes a transaction marker for `producer_id` (one control record at
    /// the end of the log) and decides its open batches here. The marker's
    /// epoch becomes the producer's epoch on the partition, as Kafka's
    /// `ProducerAppendInfo.appendEndTxnMarker` does.
    pub fn write_marker(&mut self, producer_id: i64, epoch: i16, kind: ControlType) {
        let offset = self.next_offset;
        self.raw
            .push(encode_marker(offset, producer_id, epoch, kind));
        if kind == ControlType::Abort {
            let first = self
                .producers
                .get(&producer_id)
                .and_then(|p| p.open_txn)
                .unwrap_or(offset);
            self.aborted.push((producer_id, first, offset));
        }
        self.batches.push(MockBatch {
            base_offset: offset,
            last_offset: offset,
            producer_id,
            producer_epoch: epoch,
            base_sequence: -1,
            transactional: true,
            control: Some(kind),
            records: Vec::new(),
        });
        self.next_offset += 1;
        let decided = match kind {
            ControlType::Commit => Visibility::Committed,
            ControlType::Abort => Visibility::Aborted,
        };
        for b in self.batches.iter_mut() {
            if b.producer_id == producer_id && b.control.is_none() {
                for r in b.records.iter_mut() {
                    if r.visibility == Visibility::Open {
                        r.visibility = decided;
                    }
                }
            }
        }
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch,
                recent: VecDeque::new(),
                open_txn: None,
            });
        if entry.epoch != epoch {
            entry.epoch = epoch;
            entry.recent.clear();
        }
        entry.open_txn = None;
    }
}

/// What a Fetch of one partition gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Whole batches from the one holding the fetch offset, concatenated.
    pub records: Bytes,
    /// The aborted transactions overlapping them: (producer id, first offset).
    pub aborted: Vec<(i64, i64)>,
}

impl PartitionLog {
    /// The batches a fetch from `offset` returns: whole batches, starting
    /// with the one that holds `offset`, while they fit in `max_bytes` (the
    /// first always goes, as Kafka makes progress with an oversized batch);
    /// with `read_committed`, none at or past the last stable offset.
    /// `None` if `offset` is past the end.
    pub fn fetch(&self, offset: i64, max_bytes: usize, read_committed: bool) -> Option<Fetched> {
        if offset < 0 || offset > self.next_offset {
            return None;
        }
        let upper = if read_committed {
            self.last_stable_offset()
        } else {
            self.next_offset
        };
        let mut out = BytesMut::new();
        let mut lowest = None;
        let mut highest = offset;
        for (b, raw) in self.batches.iter().zip(&self.raw) {
            if b.last_offset < offset || b.base_offset >= upper {
                continue;
            }
            if !out.is_empty() && out.len() + raw.len() > max_bytes {
                break;
            }
            lowest.get_or_insert(b.base_offset);
            highest = b.last_offset;
            out.extend_from_slice(raw);
        }
        let aborted = match lowest {
            Some(low) if read_committed => self
                .aborted
                .iter()
                .filter(|(_, first, marker)| *marker >= low && *first <= highest)
                .map(|(pid, first, _)| (*pid, *first))
                .collect(),
            _ => Vec::new(),
        };
        Some(Fetched {
            records: out.freeze(),
            aborted,
        })
    }

    /// The offset of the first record with a timestamp at or after `ts`,
    /// or the end offset (ListOffsets by timestamp).
    pub fn offset_for_timestamp(&self, ts: i64) -> i64 {
        self.batches
            .iter()
            .flat_map(|b| b.records.iter())
            .find(|r| r.timestamp >= ts)
            .map_or(self.next_offset, |r| r.offset)
    }
}

/// A control batch: one record whose key is (version 0, type) and whose
/// value is (version 0, coordinator epoch 0), KIP-98's marker layout.
fn encode_marker(offset: i64, producer_id: i64, epoch: i16, kind: ControlType) -> Bytes {
    let kind: i16 = match kind {
        ControlType::Abort => 0,
        ControlType::Commit => 1,
    };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: -1,
        timestamp: 0,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    // One uncompressed record always encodes.
    RecordBatchEncoder::encode(&mut buf, [&record], &options).expect("a control batch encodes");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, n: i32) -> IncomingBatch {
        IncomingBatch {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            transactional: false,
            control: false,
            last_offset_delta: n - 1,
            records: (0..n).map(|i| (i64::from(i), None, None, vec![])).collect(),
            raw: Bytes::from(vec![0u8; 61]),
        }
    }

    #[test]
    fn offsets_follow_record_counts() {
        let mut log = PartitionLog::default();
        assert_eq!(
            log.append(batch(-1, -1, -1, 3), false),
            Ok(Appended::New(0))
        );
        assert_eq!(
            log.append(batch(-1, -1, -1, 2), false),
            Ok(Appended::New(3))
        );
        assert_eq!(log.end_offset(), 5);
        assert_eq!(log.batches()[1].records[1].offset, 4);
    }

    #[test]
    fn sequences_duplicates_gaps_and_epochs() {
        let mut log = PartitionLog::default();
        assert_eq!(log.append(batch(7, 0, 0, 2), false), Ok(Appended::New(0)));
        assert_eq!(log.append(batch(7, 0, 2, 2), false), Ok(Appended::New(2)));
        // A resend of a retained batch is a duplicate at its first offset.
        assert_eq!(
            log.append(batch(7, 0, 0, 2), false),
            Ok(Appended::Duplicate(0))
        );
        // A gap.
        assert_eq!(
            log.append(batch(7, 0, 5, 1), false),
            Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        // A new epoch must start at 0; an old one is refused.
        assert_eq!(
            log.append(batch(7, 1, 4, 1), false),
            Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(log.append(batch(7, 1, 0, 1), false), Ok(Appended::New(4)));
        assert_eq!(
            log.append(batch(7, 0, 4, 1), false),
            Err(ErrorCode::INVALID_PRODUCER_EPOCH)
        );
        assert_eq!(log.end_offset(), 5);
    }

    #[test]
    fn only_the_last_five_batches_are_duplicates() {
        let mut log = PartitionLog::default();
        for s in 0..6 {
            log.append(batch(1, 0, s, 1), false).unwrap();
        }
        assert_eq!(
            log.append(batch(1, 0, 1, 1), false),
            Ok(Appended::Duplicate(1))
        );
        assert_eq!(
            log.append(batch(1, 0, 0, 1), false),
            Err(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
    }

    #[test]
    fn markers_decide_open_records_and_the_stable_offset() {
        let mut log = PartitionLog::default();
        let mut b = batch(3, 0, 0, 2);
        b.transactional = true;
        assert_eq!(
            log.append(b.clone(), false),
            Err(ErrorCode::INVALID_TXN_STATE)
        );
        log.append(b, true).unwrap();
        assert_eq!(log.last_stable_offset(), 0);
        log.write_marker(3, 0, ControlType::Commit);
        assert_eq!(log.last_stable_offset(), 3);
        assert!(log.batches()[0]
            .records
            .iter()
            .all(|r| r.visibility == Visibility::Committed));
        assert_eq!(log.batches()[1].control, Some(ControlType::Commit));
    }

    #[test]
    fn fetch_serves_whole_batches_and_stops_at_the_stable_offset() {
        let mut log = PartitionLog::default();
        log.append(batch(-1, -1, -1, 2), false).unwrap();
        let mut open = batch(9, 0, 0, 1);
        open.transactional = true;
        log.append(open, true).unwrap();
        // Offset 1 is inside the first batch: the whole batch comes back,
        // its base offset patched in.
        let f = log.fetch(1, 1 << 20, false).unwrap();
        assert_eq!(f.records.len(), 2 * 61);
        assert_eq!(&f.records[..8], &0i64.to_be_bytes());
        assert_eq!(&f.records[61..69], &2i64.to_be_bytes());
        // read_committed stops before the open transaction.
        assert_eq!(log.fetch(0, 1 << 20, true).unwrap().records.len(), 61);
        // The first batch goes even when it is larger than max_bytes.
        assert_eq!(log.fetch(0, 1, false).unwrap().records.len(), 61);
        assert_eq!(log.fetch(4, 1 << 20, false), None);
        log.write_marker(9, 0, ControlType::Abort);
        let f = log.fetch(0, 1 << 20, true).unwrap();
        assert_eq!(f.aborted, vec![(9, 2)]);
        assert_eq!(log.last_stable_offset(), 4);
    }
}
