//! [`ProducerBatch`]: the records of one partition, encoded into one pooled
//! buffer, with the completion state and callbacks they share (Java's
//! `ProducerBatch`).
//!
//! A batch lives in its partition's deque while it takes appends, is sealed
//! (header and CRC written, no more appends) when an I/O thread drains it,
//! may come back to the front of the deque for a retry, and is completed
//! exactly once: [`ProducerBatch::complete`] takes it by value, so a batch
//! that has been completed cannot be touched again. A batch dropped
//! without being completed (only a panic in this crate can do that)
//! completes itself on drop with [`Error::Internal`]: its records still
//! get their outcome, and its memory and its place in the incomplete set
//! go back through its [`Ledger`], so `flush` and `close` never wait for
//! it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::callbacks::{Callbacks, Meta, Register};
use super::incomplete::Incomplete;
use super::pool::BufferPool;
use crate::error::{Error, Result};
use crate::future::{BatchResult, Delivered};
use crate::protocol::compression::{decompress_batches, Compression};
use crate::protocol::records::{
    body_size_with_deltas, decode_batches, record_body_size, record_size, restamp_header,
    write_record, BatchHeader, ATTR_TRANSACTIONAL, RECORD_BATCH_OVERHEAD,
};
use crate::record::Header;

/// The serialized parts of one record, ready to append.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordParts<'a> {
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [Header],
    pub(crate) timestamp: i64,
    /// `record_fixed_size` of the above.
    pub(crate) fixed_size: usize,
}

impl RecordParts<'_> {
    fn headers(&self) -> impl ExactSizeIterator<Item = (&str, Option<&[u8]>)> + Clone {
        self.headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_deref()))
    }
}

/// An idempotent batch's producer id, epoch and base sequence, written into
/// its header when it is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) base_sequence: i32,
    /// Part of a transaction: the header's isTransactional bit (0x10).
    pub(crate) transactional: bool,
}

/// Where a batch gives back what it holds when it ends: its buffer to the
/// pool, its id to the incomplete set (which wakes `flush` and `close`).
/// One per accumulator, shared by its batches.
pub(crate) struct Ledger {
    pub(crate) pool: BufferPool,
    pub(super) incomplete: Incomplete,
    /// Sequenced batches dropped without an outcome (see `Drop`): their
    /// partitions' sequence state still counts them as pending, so the
    /// accumulator settles them as failed at its next drain
    /// (`RecordAccumulator::settle_lost`). A leaf lock: `Drop` may run
    /// anywhere, even under a partition lock, so it takes no other.
    pub(super) lost: Mutex<Vec<(Arc<str>, i32, Identity)>>,
    /// `lost` is not empty: the drain's fast path reads only this.
    pub(super) any_lost: AtomicBool,
}

/// A batch's records section: its own pooled buffer while it takes
/// appends, then, once sealed, shared behind an `Arc` so that a request
/// being written can hold it (`Wire`'s output queue) without a copy.
enum Records {
    /// Appends go here.
    Open(Vec<u8>),
    /// Sealed: read-only from now on.
    Sealed(Arc<SealedRecords>),
}

/// A sealed records section with the pool reservation it was built in:
/// whoever lets go of it last (the batch, or a request still being
/// written when its batch completed) gives buffer and reservation back to
/// the pool together. So a buffer is never reused before its bytes are
/// written, and the pool counts it until it is freed: the memory batches
/// hold stays within `buffer.memory`.
pub(crate) struct SealedRecords {
    bytes: Vec<u8>,
    /// The pool to give them back to; `None` for a batch outside any
    /// accumulator (tests).
    ledger: Option<Arc<Ledger>>,
    /// Bytes reserved for them; a split takes them for its halves.
    reserved: AtomicUsize,
}

impl SealedRecords {
    /// The records' bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Takes the reservation out (for a split's halves): the buffer is
    /// then freed without giving anything back.
    fn take_reservation(&self) -> usize {
        self.reserved.swap(0, Ordering::AcqRel)
    }
}

impl AsRef<[u8]> for SealedRecords {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for SealedRecords {
    fn drop(&mut self) {
        if let Some(ledger) = self.ledger.take() {
            let reserved = *self.reserved.get_mut();
            ledger
                .pool
                .deallocate(std::mem::take(&mut self.bytes), reserved);
        }
    }
}

impl Records {
    /// The open buffer; only before [`ProducerBatch::seal`].
    fn open(&mut self) -> &mut Vec<u8> {
        match self {
            Records::Open(v) => v,
            Records::Sealed(_) => unreachable!("a sealed batch takes no appends"),
        }
    }
}

impl std::ops::Deref for Records {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Records::Open(v) => v,
            Records::Sealed(a) => &a.bytes,
        }
    }
}

/// One partition's batch.
pub(crate) struct ProducerBatch {
    /// Increasing per producer; `flush` waits for ids up to a mark.
    pub(crate) id: u64,
    /// Shared with every `RecordFuture` of the batch.
    pub(crate) result: Arc<BatchResult>,
    /// The records section (RecordBatch v2 after the 61-byte header).
    /// Invariant: never grows past `limit`; it reallocates only when the
    /// reservation grows (`grow`), to exactly the new limit. Shared once
    /// sealed.
    records: Records,
    /// Bytes reserved from the pool for `records`.
    pub(crate) reserved: usize,
    /// Most bytes `records` may hold: the reservation minus the header.
    limit: usize,
    /// Most bytes `records` may grow to (`batch.size` minus the header):
    /// the batch is full only there, or once the pool refused to grow it.
    /// Never below `limit`.
    target: usize,
    record_count: u32,
    /// The largest record appended, in bytes as encoded (Java's
    /// `ProducerBatch.maxRecordSize`, for `record-size-max`/`-avg`).
    max_record_size: usize,
    base_timestamp: i64,
    max_timestamp: i64,
    /// When the batch was created: linger and `delivery.timeout.ms` count
    /// from here.
    pub(crate) created: Instant,
    /// How many times it was sent.
    pub(crate) attempts: u32,
    /// When it was last sent.
    pub(crate) last_attempt: Option<Instant>,
    /// A retried batch is not sent again before this, unless its
    /// partition's leader is no longer `sent_to`.
    pub(crate) retry_at: Option<Instant>,
    /// The leader it was last sent to (node id), -1 before its first send.
    pub(crate) sent_to: i32,
    callbacks: Callbacks,
    /// Set when drained; a sealed batch takes no more appends.
    header: Option<[u8; RECORD_BATCH_OVERHEAD]>,
    /// Idempotence: the producer id, epoch and sequences its header
    /// carries, from its first drain on.
    identity: Option<Identity>,
    /// The codec its records are compressed with when it is sealed.
    codec: Compression,
    /// Where its memory and id go back; `None` in unit tests of this file
    /// and once given back.
    ledger: Option<Arc<Ledger>>,
    /// Completed (or split into halves that carry on for it): dropping it
    /// does nothing more.
    done: bool,
}

impl std::fmt::Debug for ProducerBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBatch")
            .field("id", &self.id)
            .field("topic", &self.result.topic)
            .field("partition", &self.result.partition)
            .field("records", &self.record_count)
            .field("bytes", &self.size_in_bytes())
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl ProducerBatch {
    /// A new, empty batch over `buffer` (from the pool, `reserved` bytes).
    pub(crate) fn new(
        id: u64,
        result: Arc<BatchResult>,
        buffer: Vec<u8>,
        reserved: usize,
        now: Instant,
        codec: Compression,
        ledger: Option<Arc<Ledger>>,
    ) -> Self {
        debug_assert!(buffer.is_empty());
        ProducerBatch {
            id,
            result,
            records: Records::Open(buffer),
            reserved,
            limit: reserved.saturating_sub(RECORD_BATCH_OVERHEAD),
            target: reserved.saturating_sub(RECORD_BATCH_OVERHEAD),
            record_count: 0,
            max_record_size: 0,
            base_timestamp: 0,
            max_timestamp: i64::MIN,
            created: now,
            attempts: 0,
            last_attempt: None,
            retry_at: None,
            sent_to: -1,
            callbacks: Callbacks::default(),
            header: None,
            identity: None,
            codec,
            ledger,
            done: false,
        }
    }

    /// Lets the batch grow, reservation by reservation, up to
    /// `target_reserved` bytes (header included).
    pub(crate) fn with_growth_to(mut self, target_reserved: usize) -> Self {
        self.target = self
            .limit
            .max(target_reserved.saturating_sub(RECORD_BATCH_OVERHEAD));
        self
    }

    /// The bytes to ask the pool for so that `rec` fits: the reservation
    /// doubled, capped at the target, at least what the record needs.
    /// `None` if it fits already, the batch is sealed, or it would not fit
    /// even grown.
    pub(crate) fn growth_for(&self, rec: &RecordParts<'_>) -> Option<usize> {
        if self.header.is_some() || self.record_count == 0 {
            return None;
        }
        let need = self.records.len() + self.size_here(rec);
        if need <= self.limit || need > self.target {
            return None;
        }
        let doubled = (self.limit + self.reserved).min(self.target);
        Some(doubled.max(need) - self.limit)
    }

    /// Adds `extra` bytes the pool granted to the reservation.
    pub(crate) fn grow(&mut self, extra: usize) {
        self.reserved += extra;
        self.limit += extra;
        debug_assert!(self.limit <= self.target);
        let records = self.records.open();
        records.reserve_exact(self.limit - records.len());
    }

    /// The pool refused to grow the batch: it is as full as it gets.
    pub(crate) fn stop_growing(&mut self) {
        self.target = self.limit;
    }

    /// Bytes the record would take here, or `None` if it does not fit (or
    /// the batch is sealed).
    pub(crate) fn room_for(&self, rec: &RecordParts<'_>) -> Option<usize> {
        if self.header.is_some() {
            return None;
        }
        let size = self.size_here(rec);
        // The first record always fits: the buffer was sized for it.
        (self.record_count == 0 || self.records.len() + size <= self.limit).then_some(size)
    }

    /// Bytes `rec` takes as this batch's next record (its deltas from the
    /// batch's first offset and timestamp).
    fn size_here(&self, rec: &RecordParts<'_>) -> usize {
        let ts_delta = if self.record_count == 0 {
            0
        } else {
            rec.timestamp.wrapping_sub(self.base_timestamp)
        };
        record_size(body_size_with_deltas(
            rec.fixed_size,
            self.record_count as i32,
            ts_delta,
        ))
    }

    /// Appends a record that [`room_for`](Self::room_for) accepted and
    /// returns its offset in the batch.
    pub(crate) fn append(&mut self, rec: &RecordParts<'_>) -> u32 {
        debug_assert!(self.header.is_none());
        if self.record_count == 0 {
            self.base_timestamp = rec.timestamp;
        }
        let offset = self.record_count;
        let ts_delta = rec.timestamp.wrapping_sub(self.base_timestamp);
        let body = body_size_with_deltas(rec.fixed_size, offset as i32, ts_delta);
        let records = self.records.open();
        let before = records.capacity();
        let start = records.len();
        write_record(
            records,
            body,
            offset as i32,
            ts_delta,
            rec.key,
            rec.value,
            rec.headers(),
        );
        debug_assert_eq!(before, records.capacity(), "batch buffer reallocated");
        self.max_record_size = self.max_record_size.max(records.len() - start);
        self.record_count += 1;
        self.max_timestamp = self.max_timestamp.max(rec.timestamp);
        offset
    }

    /// Registers a callback for the record at `relative_offset`.
    #[inline]
    pub(crate) fn add_callback<C: Register>(
        &mut self,
        callback: &mut C,
        relative_offset: u32,
        timestamp: i64,
        key_size: i32,
        value_size: i32,
    ) {
        let meta = Meta {
            relative_offset,
            timestamp,
            key_size,
            value_size,
        };
        callback.register(&mut self.callbacks, meta);
    }

    /// True if no further record can be appended.
    pub(crate) fn is_full(&self) -> bool {
        // The smallest record is 7 bytes (length, attributes, two deltas,
        // null key, null value, no headers).
        self.header.is_some() || self.records.len() + 7 > self.target
    }

    /// Records in the batch.
    pub(crate) fn record_count(&self) -> usize {
        self.record_count as usize
    }

    /// The largest record in the batch, in bytes as encoded.
    pub(crate) fn max_record_size(&self) -> usize {
        self.max_record_size
    }

    /// Bytes on the wire: header plus records.
    pub(crate) fn size_in_bytes(&self) -> usize {
        RECORD_BATCH_OVERHEAD + self.records.len()
    }

    /// Closes the batch to appends and writes its header and CRC. Runs
    /// once; a retried batch keeps its bytes (a retry must be
    /// byte-identical once idempotence assigns sequences at drain time).
    /// Returns, the first time and if the batch is compressed, the bytes
    /// of its records before and after compression.
    pub(crate) fn seal(&mut self, identity: Option<Identity>) -> Option<(usize, usize)> {
        let mut sizes = None;
        if self.header.is_none() {
            let mut h = BatchHeader::new(
                self.record_count as i32,
                self.base_timestamp,
                self.max_timestamp,
            );
            if let Some(id) = identity {
                h.producer_id = id.producer_id;
                h.producer_epoch = id.epoch;
                h.base_sequence = id.base_sequence;
                if id.transactional {
                    h.attributes |= ATTR_TRANSACTIONAL;
                }
            }
            self.identity = identity;
            let mut records = std::mem::take(self.records.open());
            if self.codec != Compression::None {
                // Compressed once, here, as one blob (never per record).
                // The reservation stays as it was: the compressed bytes
                // are counted against buffer.memory within it.
                let mut out = Vec::with_capacity(records.len() / 2 + 64);
                self.codec.compress(&records, &mut out);
                sizes = Some((records.len(), out.len()));
                records = out;
                h.attributes |= self.codec.attribute();
            }
            self.header = Some(h.encode(&records));
            // The reservation moves in with the bytes (see `finish`).
            self.records = Records::Sealed(Arc::new(SealedRecords {
                bytes: records,
                ledger: self.ledger.clone(),
                reserved: AtomicUsize::new(self.reserved),
            }));
        }
        sizes
    }

    /// Idempotence: the producer id, epoch and base sequence in its header,
    /// once it has them.
    pub(crate) fn identity(&self) -> Option<Identity> {
        self.identity
    }

    /// Gives a sealed batch a new producer id, epoch and base sequence
    /// (after an epoch bump, KIP-360), recomputing its CRC. Its records
    /// are not touched.
    pub(crate) fn restamp(&mut self, id: Identity) {
        if let Some(h) = self.header.as_mut() {
            restamp_header(h, &self.records, id.producer_id, id.epoch, id.base_sequence);
            self.identity = Some(id);
        }
    }

    /// Splits a sealed batch of two or more records into two sealed halves
    /// (by record count), for a broker that refused it as too large
    /// (MESSAGE_TOO_LARGE; Java's `ProducerBatch.split`). The halves keep the
    /// batch's id and creation time; their reservations add up to this
    /// batch's, so `buffer.memory` accounting holds, and their buffers are
    /// exactly as large as their records. Each record's handle and callback
    /// follow it: this batch's result forwards to the halves' results.
    ///
    /// # Errors
    ///
    /// Gives the batch back unchanged if it has fewer than two records or
    /// is not sealed (or, a bug, its own bytes do not decode).
    // The batch is given back by value (no allocation on a rare path).
    #[allow(clippy::result_large_err)]
    pub(crate) fn split_in_two(mut self) -> std::result::Result<[ProducerBatch; 2], ProducerBatch> {
        let Some(header) = self.header.filter(|_| self.record_count >= 2) else {
            return Err(self);
        };
        // An idempotent batch's sequence range passes to its halves, the
        // first half starting where it started: the partition's later
        // sequences stay in step with what the broker has seen.
        let identity = self.identity;
        let mut wire = Vec::with_capacity(header.len() + self.records.len());
        wire.extend_from_slice(&header);
        wire.extend_from_slice(&self.records);
        // Compressed: back to the records as appended (never more than the
        // reservation, which held them uncompressed).
        if self.codec != Compression::None {
            match decompress_batches(&wire, self.reserved) {
                Ok(plain) => wire = plain,
                Err(e) => {
                    log::error!(
                        "a sealed batch of {} does not decompress ({e}); not split",
                        self.result.topic
                    );
                    return Err(self);
                }
            }
        }
        let decoded = match decode_batches(&wire) {
            Ok(mut b) if b.len() == 1 && b[0].records.len() == self.record_count as usize => {
                b.remove(0)
            }
            _ => {
                log::error!(
                    "a sealed batch of {} does not decode; not split",
                    self.result.topic
                );
                return Err(self);
            }
        };
        let base = decoded.header.base_timestamp;
        let mid = self.record_count / 2;
        let ranges = [0..mid as usize, mid as usize..self.record_count as usize];
        // Records bytes of each half, with deltas relative to the half.
        let sizes = ranges.clone().map(|r| {
            let recs = &decoded.records[r];
            let first_ts = base + recs[0].timestamp_delta;
            recs.iter()
                .enumerate()
                .map(|(j, rec)| {
                    record_size(record_body_size(
                        j as i32,
                        base + rec.timestamp_delta - first_ts,
                        rec.key,
                        rec.value,
                        rec.headers.iter().copied(),
                    ))
                })
                .sum::<usize>()
        });
        let total: usize = sizes.iter().sum::<usize>().max(1);
        // The halves take the reservation from the sealed records, whose
        // buffer is then freed without giving any back.
        if let Records::Sealed(sealed) = &self.records {
            self.reserved = sealed.take_reservation();
        }
        let first_reserved = (self.reserved as u128 * sizes[0] as u128 / total as u128) as usize;
        let reserved = [first_reserved, self.reserved - first_reserved];
        // The second half's callbacks, their offsets shifted down by `mid`
        // (where the second half starts).
        let second_callbacks = self.callbacks.split_off(mid);
        let mut thunks = [std::mem::take(&mut self.callbacks), second_callbacks];
        let halves: Vec<ProducerBatch> = (0..2)
            .map(|h| {
                let recs = &decoded.records[ranges[h].clone()];
                let first_ts = base + recs[0].timestamp_delta;
                let mut records = Vec::with_capacity(sizes[h]);
                let mut max_ts = i64::MIN;
                let mut max_record_size = 0;
                for (j, rec) in recs.iter().enumerate() {
                    let ts = base + rec.timestamp_delta;
                    max_ts = max_ts.max(ts);
                    let body = record_body_size(
                        j as i32,
                        ts - first_ts,
                        rec.key,
                        rec.value,
                        rec.headers.iter().copied(),
                    );
                    let start = records.len();
                    write_record(
                        &mut records,
                        body,
                        j as i32,
                        ts - first_ts,
                        rec.key,
                        rec.value,
                        rec.headers.iter().copied(),
                    );
                    max_record_size = max_record_size.max(records.len() - start);
                }
                let callbacks = std::mem::take(&mut thunks[h]);
                let mut half = ProducerBatch {
                    id: self.id,
                    result: BatchResult::new(self.result.topic.clone(), self.result.partition),
                    limit: records.len(),
                    target: records.len(),
                    records: Records::Open(records),
                    reserved: reserved[h],
                    record_count: recs.len() as u32,
                    max_record_size,
                    base_timestamp: first_ts,
                    max_timestamp: max_ts,
                    created: self.created,
                    attempts: 0,
                    last_attempt: None,
                    retry_at: None,
                    sent_to: -1,
                    callbacks,
                    header: None,
                    identity: None,
                    codec: self.codec,
                    ledger: self.ledger.clone(),
                    done: false,
                };
                half.seal(identity.map(|id| Identity {
                    base_sequence: if h == 0 {
                        id.base_sequence
                    } else {
                        super::next_sequence(id.base_sequence, ranges[0].len())
                    },
                    ..id
                }));
                half
            })
            .collect();
        self.result.set_split(
            halves
                .iter()
                .zip(ranges.iter())
                .map(|(b, r)| (r.start as u32, b.result.clone()))
                .collect(),
        );
        let [a, b]: [ProducerBatch; 2] = halves.try_into().expect("two halves");
        // The halves carry on for it: its records, callbacks, reservation
        // and id are theirs now. Its own buffer is simply freed.
        self.done = true;
        self.ledger = None;
        Ok([a, b])
    }

    /// The batch's bytes on the wire, in order: header, records. Only after
    /// [`seal`](Self::seal).
    #[cfg(test)]
    pub(crate) fn wire_parts(&self) -> [&[u8]; 2] {
        let h = self.header.as_ref().expect("sealed before writing");
        [&h[..], &self.records[..]]
    }

    /// The batch's bytes on the wire for a request that holds its records
    /// rather than copying them: the header, and the shared records
    /// section that follows it. Only after [`seal`](Self::seal).
    pub(crate) fn wire_shared(&self) -> (&[u8; RECORD_BATCH_OVERHEAD], &Arc<SealedRecords>) {
        let h = self.header.as_ref().expect("sealed before writing");
        match &self.records {
            Records::Sealed(r) => (h, r),
            Records::Open(_) => unreachable!("a batch with a header is sealed"),
        }
    }

    /// Completes every record of the batch: runs their callbacks in order
    /// (a panicking callback is caught and logged), then resolves the shared
    /// result that the handles wait on, then hands back the buffer.
    /// Java's order: callbacks before futures, so a `get()` that returns
    /// sees its callback's effects.
    pub(crate) fn complete(mut self, outcome: Result<Delivered>) {
        self.finish(outcome);
    }

    /// [`complete`](Self::complete)'s work, for it and for `drop`.
    fn finish(&mut self, outcome: Result<Delivered>) {
        self.done = true;
        let result = &self.result;
        let panics = self.callbacks.run(&|m: Meta| match &outcome {
            Ok(d) => {
                Ok(result.metadata(*d, m.relative_offset, m.timestamp, m.key_size, m.value_size))
            }
            Err(e) => Err(e.clone()),
        });
        if panics > 0 {
            log::error!(
                "{panics} send callback(s) for {}-{} panicked; the panics were caught",
                result.topic,
                result.partition
            );
        }
        if !result.set(outcome) {
            log::warn!(
                "batch for {}-{} completed twice; the second outcome was dropped",
                result.topic,
                result.partition
            );
        }
        if let Some(ledger) = self.ledger.take() {
            // Sealed records hold the reservation: they go back to the
            // pool when their last holder lets go, which is now, or, if
            // a request is still being written with them (the batch
            // expired, or was answered, before its request was written in
            // full), once that request is written or its connection gone.
            match std::mem::replace(&mut self.records, Records::Open(Vec::new())) {
                Records::Open(buffer) => ledger.pool.deallocate(buffer, self.reserved),
                Records::Sealed(sealed) => drop(sealed),
            }
            ledger.incomplete.remove(self.id);
        }
    }
}

impl Drop for ProducerBatch {
    /// Only a bug drops a batch before it completes (a panic on an I/O
    /// thread while the batch sat in a local): its records get
    /// [`Error::Internal`] rather than no outcome at all, and `flush` and
    /// `close` do not wait for it forever.
    fn drop(&mut self) {
        if !self.done {
            log::error!(
                "a batch of {} record(s) for {}-{} was dropped without an outcome; failing it",
                self.record_count,
                self.result.topic,
                self.result.partition
            );
            if let (Some(id), Some(ledger)) = (self.identity, self.ledger.as_ref()) {
                let (topic, partition) = (self.result.topic.clone(), self.result.partition);
                ledger.lost.lock().push((topic, partition, id));
                ledger.any_lost.store(true, Ordering::Release);
            }
            self.finish(Err(Error::Internal(
                "the producer lost track of this record (a bug in kafka-producer, e.g. a panic \
                 on an I/O thread); whether the broker has it is unknown"
                    .into(),
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::{decode_batches, record_fixed_size};
    use crate::record::RecordMetadata;
    use parking_lot::Mutex;

    fn parts<'a>(k: &'a [u8], v: &'a [u8], ts: i64) -> RecordParts<'a> {
        RecordParts {
            key: Some(k),
            value: Some(v),
            headers: &[],
            timestamp: ts,
            fixed_size: record_fixed_size(Some(k), Some(v), std::iter::empty()),
        }
    }

    fn batch(reserved: usize) -> ProducerBatch {
        ProducerBatch::new(
            1,
            BatchResult::new("t".into(), 0),
            Vec::with_capacity(reserved),
            reserved,
            Instant::now(),
            Compression::None,
            None,
        )
    }

    #[test]
    fn appends_until_full_without_reallocating() {
        let mut b = batch(200);
        let mut n = 0;
        while let Some(_size) = b.room_for(&parts(b"k", &[0; 20], 1000 + n)) {
            assert_eq!(b.append(&parts(b"k", &[0; 20], 1000 + n)), n as u32);
            n += 1;
        }
        assert!(n >= 4);
        assert!(b.size_in_bytes() <= 200);
        b.seal(None);
        assert!(b.room_for(&parts(b"k", b"", 0)).is_none(), "sealed");
        let mut wire = Vec::new();
        for p in b.wire_parts() {
            wire.extend_from_slice(p);
        }
        let decoded = decode_batches(&wire).unwrap();
        assert_eq!(decoded[0].records.len(), n as usize);
        assert_eq!(decoded[0].header.base_timestamp, 1000);
        assert_eq!(decoded[0].header.max_timestamp, 1000 + n - 1);
    }

    #[test]
    fn an_oversized_first_record_still_fits() {
        let b = batch(100);
        assert!(b.room_for(&parts(b"", &[1; 500], 0)).is_some());
    }

    #[test]
    fn callbacks_run_in_order_before_the_result_and_survive_panics() {
        let mut b = batch(1000);
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3u32 {
            let off = b.append(&parts(b"k", b"v", 5));
            let seen = seen.clone();
            let result = b.result.clone();
            b.add_callback(
                &mut super::super::callbacks::Pending(Some(move |r: Result<RecordMetadata>| {
                    assert!(!result.is_done(), "callbacks run before the result is set");
                    seen.lock().push(r.unwrap().offset());
                    if i == 1 {
                        panic!("user callback panics");
                    }
                })),
                off,
                5,
                1,
                1,
            );
        }
        let result = b.result.clone();
        b.complete(Ok(Delivered {
            base_offset: 10,
            log_append_time: -1,
        }));
        assert_eq!(*seen.lock(), vec![10, 11, 12]);
        assert!(result.is_done());
    }
}
