//! [`RecordAccumulator`]: per-partition deques of batches between `send` and
//! the I/O threads (Java's `RecordAccumulator`).
//!
//! `send` encodes each record straight into the last batch of its
//! partition's deque ([`RecordAccumulator::append`]); I/O threads take the
//! ready batches of the partitions their broker leads
//! ([`RecordAccumulator::drain`]), hand failed ones back to the front
//! ([`RecordAccumulator::reenqueue`]) and complete them
//! ([`RecordAccumulator::complete`]). Knows no sockets; every function that
//! depends on time takes `now`, so tests never sleep.
//!
//! One file per concern: `signal.rs` ([`DrainSignal`]: waking I/O threads),
//! `queue.rs` (the per-partition and per-topic queues, who owns a
//! partition's state, and the lock order), `sticky.rs` (the sticky
//! partition of keyless records), `incomplete.rs` (the batches `flush` and
//! `close` wait on) and `topology.rs` (applying metadata); this file holds
//! the batches' way through: append, drain, reenqueue, complete, split,
//! expire and abort.

pub(crate) mod batch;
pub(crate) mod callbacks;
mod drainer;
mod incomplete;
mod lookup;
pub(crate) mod pool;
mod queue;
mod ratio;
mod sequence;
mod signal;
mod sticky;
mod topology;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::future::{BatchResult, Delivered, RecordFuture};
use crate::lifecycle::Lifecycle;
use crate::metrics::{DrainTally, Metrics};
use crate::protocol::compression::Compression;
use crate::protocol::records::{record_size_upper_bound, RECORD_BATCH_OVERHEAD};
use crate::util::{later, Budget, FxBuildHasher};
use callbacks::Register;

pub(crate) use batch::{Identity, Ledger, ProducerBatch, RecordParts};
use incomplete::Incomplete;
pub(crate) use pool::BufferPool;
use queue::PartitionInner;
pub(crate) use queue::{Layout, PartitionQueue, TopicQueues};
use sequence::Gate;
pub(crate) use sticky::{LocalSticky, StickyRef};

/// Where a partition's first batch starts, in bytes reserved: it grows
/// (doubling, without waiting) toward `batch.size`, and the partition's
/// next batch starts at the size this one reached. A batch takes from
/// `buffer.memory` what it holds, not `batch.size` up front, so many
/// partitions with a large `batch.size` do not exhaust the pool with empty
/// reservations.
const FIRST_RESERVE: usize = 16 * 1024;
pub(crate) use drainer::Drainer;
pub(crate) use signal::DrainSignal;

/// What the accumulator needs from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct AccumulatorConfig {
    pub(crate) batch_size: usize,
    pub(crate) buffer_memory: usize,
    pub(crate) linger: Duration,
    pub(crate) delivery_timeout: Duration,
    pub(crate) adaptive_partitioning: bool,
    /// One batch per partition in flight at a time, so a retry can never
    /// be overtaken (Java's `guaranteeMessageOrder`:
    /// `max.in.flight.requests.per.connection=1`).
    pub(crate) guarantee_order: bool,
    /// How each batch's records are compressed when it is sealed.
    pub(crate) compression: Compression,
    /// `enable.idempotence`: batches carry the producer id, epoch and a
    /// per-partition sequence, and drain waits for the id.
    pub(crate) idempotent: bool,
    /// Idempotence: at most this many batches of a partition unsettled
    /// (`max.in.flight.requests.per.connection`, at most 5).
    pub(crate) max_in_flight: usize,
}

impl AccumulatorConfig {
    /// What the producer's configuration says.
    pub(crate) fn of(cfg: &crate::config::ProducerConfig) -> Self {
        AccumulatorConfig {
            batch_size: cfg.batch_size,
            buffer_memory: cfg.buffer_memory,
            linger: cfg.linger,
            delivery_timeout: cfg.delivery_timeout,
            adaptive_partitioning: cfg.partitioner_adaptive,
            // Idempotence keeps order its own way, with up to
            // max.in.flight batches per partition (`sequence.rs`).
            guarantee_order: cfg.max_in_flight == 1 && !cfg.idempotence,
            max_in_flight: cfg.max_in_flight,
            compression: cfg.compression_codec(),
            idempotent: cfg.idempotence,
        }
    }
}

/// What a transactional producer's accumulator asks its transaction
/// manager (`transaction/`), through [`RecordAccumulator::set_txn_hooks`].
/// The accumulator knows nothing else of transactions; a producer without
/// `transactional.id` has no hooks, and pays one branch on an `Option`.
pub(crate) trait TxnHooks: Send + Sync {
    /// Called by `drain`, under `q`'s lock, for a partition whose first
    /// batch is ready: may it be drained now? In the transactions v1 flow,
    /// false until the partition is in the open transaction
    /// (AddPartitionsToTxn answered; the call registers it for adding); in
    /// v2, whenever a transaction is open (Produce v12 adds it). Must not
    /// lock a partition.
    fn may_drain(&self, q: &PartitionQueue) -> bool;
    /// The highest Produce version for the transaction's batches: v11 in
    /// the v1 flow, v12 in v2 (KIP-890 part 2). Read by an I/O thread as it
    /// writes a request (no partition lock held).
    fn max_produce_version(&self) -> i16;
    /// Called by `complete` before a batch fails with `err` (no partition
    /// lock held); `sequenced`: it had taken a sequence number.
    fn on_failed(&self, err: &Error, sequenced: bool);
}

/// What one drain decides once for all partitions.
struct DrainContext<'a> {
    /// The idempotent producer's id and epoch.
    producer: Option<(i64, i16)>,
    /// Every batch is ready regardless of linger (`send_now`).
    send_now: bool,
    txn: Option<&'a Arc<dyn TxnHooks>>,
}

/// One partition's answer to a drain ([`RecordAccumulator::take_one`]).
// The batch moves by value once, into the request's list; boxing it would
// allocate per batch.
#[allow(clippy::large_enum_variant)]
enum Take {
    /// Its first batch, sealed; `true` if it has more.
    Batch(Drained, bool),
    /// Its first batch becomes ready then.
    At(Instant),
    /// Ready, but over the room left in the request.
    Full,
    /// Nothing to take until something happens to it, which touches it
    /// (see `signal.rs`): empty, muted, waiting for its sequences or for
    /// the transaction.
    Idle,
}

/// The result of a drain: batches to send to one broker.
pub(crate) struct Drained {
    pub(crate) queue: Arc<PartitionQueue>,
    pub(crate) batch: ProducerBatch,
}

/// Per-partition batch deques; see the module docs.
pub(crate) struct RecordAccumulator {
    cfg: AccumulatorConfig,
    /// This accumulator among all of the process's (`lookup.rs`).
    id: u64,
    /// The pool and the incomplete set, shared with every batch so that a
    /// batch gives its memory and its place back however it ends.
    ledger: Arc<Ledger>,
    /// Time zero for the atomics that hold instants.
    epoch: Instant,
    /// By name, with the Fx hash: looked up once per record.
    topics: RwLock<HashMap<Arc<str>, Arc<TopicQueues>, FxBuildHasher>>,
    /// Partitions by leader, rebuilt on every metadata update.
    by_leader: RwLock<HashMap<i32, Arc<[Arc<PartitionQueue>]>>>,
    leaders_version: AtomicU64,
    /// One per I/O thread, by node id.
    signals: RwLock<HashMap<i32, Arc<DrainSignal>>>,
    next_batch_id: AtomicU64,
    flushes_in_progress: AtomicUsize,
    /// The idempotent producer's id and epoch, once InitProducerId answered.
    producer_id: Mutex<Option<(i64, i16)>>,
    /// Set once by [`fail_fatally`](Self::fail_fatally): every later
    /// append fails with it.
    fatal: OnceLock<Error>,
    /// The producer's phase: closing refuses appends and makes every batch
    /// ready now; aborting fails retries.
    lifecycle: Arc<Lifecycle>,
    /// Set once, before any record, for a transactional producer.
    txn: std::sync::OnceLock<Arc<dyn TxnHooks>>,
    /// The producer's sensors: drain, retries and failures are recorded
    /// here, per batch (each partition holds its topic's sensors).
    metrics: Arc<Metrics>,
}

impl RecordAccumulator {
    #[cfg(test)]
    pub(crate) fn new(cfg: AccumulatorConfig, lifecycle: Arc<Lifecycle>) -> Self {
        let windows = crate::metrics::Windows {
            window_ms: 30_000,
            samples: 2,
        };
        Self::with_metrics(cfg, lifecycle, Arc::new(Metrics::new(windows)))
    }

    /// An accumulator that records into `metrics`.
    pub(crate) fn with_metrics(
        cfg: AccumulatorConfig,
        lifecycle: Arc<Lifecycle>,
        metrics: Arc<Metrics>,
    ) -> Self {
        RecordAccumulator {
            producer_id: Mutex::new(None),
            fatal: OnceLock::new(),
            ledger: Arc::new(Ledger {
                pool: BufferPool::new(cfg.buffer_memory, lifecycle.clone()),
                incomplete: Incomplete::default(),
                lost: Mutex::new(Vec::new()),
                any_lost: Default::default(),
            }),
            cfg,
            id: lookup::next_id(),
            epoch: crate::clock::now(),
            topics: RwLock::new(HashMap::default()),
            by_leader: RwLock::new(HashMap::new()),
            leaders_version: AtomicU64::new(0),
            signals: RwLock::new(HashMap::new()),
            next_batch_id: AtomicU64::new(1),
            flushes_in_progress: AtomicUsize::new(0),
            lifecycle,
            txn: std::sync::OnceLock::new(),
            metrics,
        }
    }

    /// The producer's sensors.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Makes this a transactional producer's accumulator (once, before any
    /// record): drain asks `hooks` before it takes a partition's batches,
    /// and failed batches are reported to it.
    pub(crate) fn set_txn_hooks(&self, hooks: Arc<dyn TxnHooks>) {
        let _ = self.txn.set(hooks);
    }

    /// For the transaction manager, after an epoch bump: every partition's
    /// sequence starts again from 0.
    pub(crate) fn reset_sequences(&self) {
        for q in self.all_partitions() {
            q.inner.lock().seq.restart();
        }
        // Their gates change: every thread looks at all its partitions.
        self.wake_all();
    }

    pub(crate) fn pool(&self) -> &BufferPool {
        &self.ledger.pool
    }

    /// Nanoseconds from the epoch to `t` (at least 1).
    pub(crate) fn nanos(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.epoch).as_nanos() as u64).max(1)
    }

    /// The instant `nanos` after the epoch ([`nanos`](Self::nanos)'s inverse).
    pub(super) fn instant(&self, nanos: u64) -> Instant {
        later(self.epoch, Duration::from_nanos(nanos))
    }

    /// The queues of `topic`, if metadata has described it.
    /// The producer cannot go on: fails every queued batch with `err`, and
    /// every later append. Set under no partition lock, then each partition
    /// is swept under its lock (as `close` does), so no record slips in
    /// between. Only the first error counts.
    pub(crate) fn fail_fatally(&self, err: Error) {
        if self.fatal.set(err).is_ok() {
            let err = self.fatal.get().expect("just set");
            log::error!("{err}");
            self.abort_queued(None, err);
        }
    }

    /// True while the idempotent producer has no id and may ask for one:
    /// not transactional (its coordinator gives the id), not fatal. The
    /// metadata thread asks with its next fetch.
    pub(crate) fn wants_producer_id(&self) -> bool {
        self.cfg.idempotent
            && self.txn.get().is_none()
            && self.fatal.get().is_none()
            && self.producer_id.lock().is_none()
    }

    /// The highest Produce version this producer's requests may use: a
    /// transactional producer's transaction flow decides
    /// ([`TxnHooks::max_produce_version`]); `None`: no limit but the
    /// negotiated one.
    pub(crate) fn produce_version_cap(&self) -> Option<i16> {
        self.txn.get().map(|t| t.max_produce_version())
    }

    /// The idempotent producer's id and epoch, if it has them.
    #[cfg(test)]
    pub(crate) fn producer_id(&self) -> Option<(i64, i16)> {
        *self.producer_id.lock()
    }

    /// For the metadata thread: InitProducerId answered; batches may be
    /// drained now. Wakes every I/O thread.
    pub(crate) fn set_producer_id(&self, id: i64, epoch: i16) {
        *self.producer_id.lock() = Some((id, epoch));
        self.wake_all();
    }

    /// A topic's queues, once metadata has described it.
    #[cfg(test)]
    pub(crate) fn topic(&self, topic: &str) -> Option<Arc<TopicQueues>> {
        self.topic_and_layout(topic).map(|(t, _)| t)
    }

    // `topic_and_layout`, read once per `send`, is in `lookup.rs`.

    // ---------------------------------------------------------------- send

    /// Appends a record to `partition` of `topic` (or to the topic's sticky
    /// partition when `partition` is `None`), creating a batch if needed.
    /// May block within `budget` (`max.block.ms`) for buffer memory.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::BufferExhausted`],
    /// [`Error::RecordTooLarge`] (larger than `buffer.memory`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append<C: Register>(
        &self,
        topic: &TopicQueues,
        layout: &Layout,
        partition: Option<i32>,
        rec: &RecordParts<'_>,
        key_size: i32,
        value_size: i32,
        callback: &mut C,
        budget: &Budget,
        st: StickyRef<'_>,
    ) -> Result<RecordFuture> {
        let upper = RECORD_BATCH_OVERHEAD + record_size_upper_bound(rec.fixed_size);
        let mut buffer: Option<(Vec<u8>, usize, usize)> = None;
        let outcome = loop {
            let (p, sticky) = match partition {
                Some(p) => (p, false),
                None => (self.sticky_partition(topic, layout, st), true),
            };
            let queue = &layout.partitions[p as usize];
            let mut g = queue.inner.lock();
            // Checked under the partition lock: `close` enters `Closing`
            // and then sweeps every partition under its lock, so a record
            // is either refused here or in a batch that sweep (or the drain
            // before it) will find.
            if self.lifecycle.is_closing() {
                break Err(Error::Closed);
            }
            if let Some(e) = self.fatal.get() {
                break Err(e.clone()); // swept as `close` is, see below
            }
            if sticky && !self.still_sticky(topic, st, p) {
                continue; // another thread switched partitions; follow it
            }
            // 1. The last batch has room, or grows to make it (without
            //    waiting: a batch the pool cannot grow now is full).
            if let Some(last) = g.batches.back_mut() {
                let mut room = last.room_for(rec);
                if room.is_none() {
                    if let Some(extra) = last.growth_for(rec) {
                        if self.ledger.pool.try_grow(extra) {
                            last.grow(extra);
                            room = last.room_for(rec);
                        } else {
                            last.stop_growing();
                        }
                    }
                }
                if let Some(size) = room {
                    let fut = Self::append_to(last, rec, key_size, value_size, callback);
                    if sticky {
                        self.add_sticky_bytes(topic, st, size);
                    }
                    // Filled to the brim: ready now, not after linger.
                    let full = last.is_full();
                    let leader = queue.leader();
                    drop(g);
                    if full {
                        self.notify_leader(queue, leader, crate::clock::now(), None);
                    }
                    break Ok(fut);
                }
            }
            // 2. A keyless record that would start a new batch on a sticky
            //    partition that has had its batch.size: switch first.
            if sticky && self.switch_sticky_partition(topic, layout, st, upper) {
                drop(g);
                continue;
            }
            // 3. A new batch, with memory taken outside the lock. It starts
            //    where the partition's last batch ended (small for a
            //    trickle, batch.size when busy) and grows from there.
            let Some((buf, reserved, grows_to)) = buffer.take() else {
                let start = g.next_reserve;
                drop(g);
                // Compressed batches fill toward batch.size compressed.
                let target = if self.cfg.compression == Compression::None {
                    self.cfg.batch_size
                } else {
                    // Never more than a quarter of buffer.memory: the
                    // records sit uncompressed until the batch is sealed.
                    let cap = (self.cfg.buffer_memory / 4).max(self.cfg.batch_size);
                    queue.ratio.batch_bytes(self.cfg.batch_size).min(cap)
                };
                let grows_to = target.max(upper);
                let first = if start == 0 { FIRST_RESERVE } else { start };
                let size = first.clamp(upper, grows_to);
                // A recycled buffer may be larger, up to what the batch's
                // first growth would reach (twice the start, within the
                // target): not a whole batch.size for a trickle.
                let up_to = size.saturating_mul(2).min(grows_to);
                let (buf, reserved) = self
                    .ledger
                    .pool
                    .allocate(size, up_to, budget, || self.wake_all())?;
                buffer = Some((buf, reserved, grows_to));
                continue; // re-check: someone may have made a batch meanwhile
            };
            let id = self.next_batch_id.fetch_add(1, Ordering::Relaxed);
            let now = crate::clock::now();
            let result = BatchResult::new(queue.topic.clone(), queue.partition);
            let mut batch = ProducerBatch::new(
                id,
                result,
                buf,
                reserved,
                now,
                self.cfg.compression,
                Some(self.ledger.clone()),
            )
            .with_growth_to(grows_to);
            let size = batch.room_for(rec).expect("first record fits");
            let fut = Self::append_to(&mut batch, rec, key_size, value_size, callback);
            if sticky {
                self.add_sticky_bytes(topic, st, size + RECORD_BATCH_OVERHEAD);
            }
            self.ledger.incomplete.add(id);
            let had_full_batch = !g.batches.is_empty();
            g.batches.push_back(batch);
            queue.queued.store(g.batches.len(), Ordering::Relaxed);
            let leader = queue.leader();
            drop(g);
            // The first batch becomes ready after linger; an older batch
            // that just filled up is ready now.
            let ready_at = if had_full_batch {
                now
            } else {
                later(now, self.cfg.linger)
            };
            // A new batch may be the first of its partition: the thread's
            // expiry bound must cover it.
            let expires = later(now, self.cfg.delivery_timeout);
            self.notify_leader(queue, leader, ready_at, Some(expires));
            break Ok(fut);
        };
        if let Some((buf, size, _)) = buffer {
            self.ledger.pool.deallocate(buf, size);
        }
        outcome
    }

    fn append_to<C: Register>(
        batch: &mut ProducerBatch,
        rec: &RecordParts<'_>,
        key_size: i32,
        value_size: i32,
        callback: &mut C,
    ) -> RecordFuture {
        let offset = batch.append(rec);
        batch.add_callback(callback, offset, rec.timestamp, key_size, value_size);
        RecordFuture::new(
            batch.result.clone(),
            offset,
            rec.timestamp,
            key_size,
            value_size,
        )
    }

    // ------------------------------------------------------------ I/O side

    /// True while batches should be sent regardless of linger: a flush is
    /// waiting, the producer is closing, or `send` is blocked on memory.
    fn send_now(&self) -> bool {
        self.flushes_in_progress.load(Ordering::Acquire) > 0
            || self.lifecycle.is_closing()
            || self.ledger.pool.has_waiters()
    }

    /// What every partition's drain decision shares in one drain: `None`
    /// while an idempotent producer has no id (it sends nothing before;
    /// `set_producer_id` wakes every thread).
    fn drain_context(&self) -> Option<DrainContext<'_>> {
        let producer = if self.cfg.idempotent {
            Some((*self.producer_id.lock())?)
        } else {
            None
        };
        Some(DrainContext {
            producer,
            send_now: self.send_now(),
            txn: self.txn.get(),
        })
    }

    /// Takes the first batch of `q` if it is ready and may go now, and
    /// seals it. `room`: the bytes left in the request, `None` for its
    /// first batch (always taken).
    /// What it takes is counted in `tally`, recorded once per drain.
    fn take_one<'q>(
        &self,
        q: &'q Arc<PartitionQueue>,
        cx: &DrainContext<'_>,
        room: Option<usize>,
        now: Instant,
        tally: &mut DrainTally<'q>,
    ) -> Take {
        if q.queued() == 0 {
            return Take::Idle; // a new batch touches the partition
        }
        let mut g = q.inner.lock();
        if g.muted {
            return Take::Idle; // unmute touches the partition
        }
        // Idempotence: only the oldest retry, or a new batch while fewer
        // than max.in.flight are unsettled (`sequence.rs`). A batch
        // settling touches the partition; an epoch change, every one.
        if let Some(current) = cx.producer {
            let PartitionInner { batches, seq, .. } = &mut *g;
            if seq.gate(batches, current, self.cfg.max_in_flight) == Gate::Wait {
                return Take::Idle;
            }
        }
        let Some(first) = g.batches.front() else {
            return Take::Idle;
        };
        let ready_at = match first.retry_at {
            // Backing off from this leader: wait for it, even in a
            // flush. A new leader gets it at once (Java's
            // `hasLeaderChanged`, KIP-951).
            Some(t) if first.sent_to == q.leader() => t,
            Some(_) => now,
            None if cx.send_now || g.batches.len() > 1 || first.is_full() => now,
            None => later(first.created, self.cfg.linger),
        };
        if ready_at > now {
            return Take::At(ready_at);
        }
        if let Some(txn) = cx.txn {
            if !txn.may_drain(q) {
                return Take::Idle; // the manager wakes every thread once it is added
            }
        }
        if room.is_some_and(|room| first.size_in_bytes() > room) {
            return Take::Full;
        }
        let mut batch = g.batches.pop_front().expect("peeked");
        let more = !g.batches.is_empty();
        q.queued.store(g.batches.len(), Ordering::Relaxed);
        let first_drain = batch.attempts == 0;
        if first_drain {
            g.next_reserve = batch.reserved;
        }
        g.muted = self.cfg.guarantee_order;
        // Idempotence: the sequence is taken under the partition lock
        // the first time the batch is drained; a retry keeps its bytes.
        let identity = match cx.producer {
            Some(current) if batch.identity().is_none() => Some(g.seq.assign(
                current,
                batch.record_count(),
                cx.txn.is_some(),
            )),
            _ => None,
        };
        drop(g);
        let compression = match batch.seal(identity) {
            Some((plain, compressed)) => {
                q.ratio.observe(plain, compressed);
                Some(compressed as f64 / plain.max(1) as f64)
            }
            None => first_drain.then_some(1.0),
        };
        // As Java's Sender: a retried batch counts as sent again.
        tally.add(
            &q.sensors,
            batch.record_count(),
            batch.size_in_bytes(),
            batch.max_record_size(),
            now.saturating_duration_since(batch.created),
            compression,
        );
        batch.attempts += 1;
        batch.last_attempt = Some(now);
        batch.retry_at = None;
        batch.sent_to = q.leader();
        Take::Batch(
            Drained {
                queue: q.clone(),
                batch,
            },
            more,
        )
    }

    /// Takes at most one ready batch from each of `partitions`, starting at
    /// `*cursor` and going round, until `max_bytes` would be exceeded (the
    /// first batch is always taken). Seals what it takes. Returns the
    /// batches and when the next unready batch becomes ready. A scan of
    /// every partition, for tests; the I/O threads drain through a
    /// [`Drainer`], which visits only the partitions that have work.
    #[cfg(test)]
    pub(crate) fn drain(
        &self,
        partitions: &[Arc<PartitionQueue>],
        cursor: &mut usize,
        max_bytes: usize,
        now: Instant,
    ) -> (Vec<Drained>, Option<Instant>) {
        let mut out: Vec<Drained> = Vec::new();
        let mut next: Option<Instant> = None;
        self.settle_lost();
        let n = partitions.len();
        if n == 0 {
            return (out, None);
        }
        let Some(cx) = self.drain_context() else {
            return (out, None);
        };
        let mut bytes = 0usize;
        let mut tally = DrainTally::default();
        let start = *cursor % n;
        for i in 0..n {
            let idx = (start + i) % n;
            let room = (!out.is_empty()).then(|| max_bytes.saturating_sub(bytes));
            match self.take_one(&partitions[idx], &cx, room, now, &mut tally) {
                Take::Batch(d, _) => {
                    bytes += d.batch.size_in_bytes();
                    out.push(d);
                }
                Take::At(t) => next = Some(next.map_or(t, |n: Instant| n.min(t))),
                Take::Full => {
                    *cursor = idx; // start here next time
                    self.metrics.on_drained(&tally, now);
                    return (out, Some(now));
                }
                Take::Idle => {}
            }
        }
        self.metrics.on_drained(&tally, now);
        *cursor = (start + 1) % n;
        (out, next)
    }

    /// Hands a batch back to the front of its deque for another attempt,
    /// not before `retry_at`.
    pub(crate) fn reenqueue(
        &self,
        queue: &PartitionQueue,
        mut batch: ProducerBatch,
        retry_at: Instant,
    ) {
        batch.retry_at = Some(retry_at);
        let mut g = queue.inner.lock();
        // Checked under the partition lock: `abort_queued` runs after the
        // move to `Aborting` under the same lock, so a batch either lands
        // in the deque before that sweep or is failed here; never stranded.
        if self.lifecycle.is_aborting() {
            drop(g);
            self.complete(queue, batch, Err(Error::aborted()));
            return;
        }
        // Idempotence: retries go back in sequence order, whatever order
        // their answers came in (from two leaders, or a dropped connection).
        let at = match batch.identity() {
            Some(id) => {
                let rank = |b: &ProducerBatch| {
                    b.identity()
                        .and_then(|i| g.seq.position(i.base_sequence))
                        .unwrap_or(usize::MAX)
                };
                let mine = g.seq.position(id.base_sequence).unwrap_or(0);
                g.batches.iter().take_while(|b| rank(b) < mine).count()
            }
            // Without idempotence, by age: the answers to several requests
            // in flight come back oldest first, and each retry going to
            // the front would put the newer one ahead, where expiry (which
            // looks at the front only) and the drain would take it first.
            // Batches never sent are newer than any sent: with one request
            // in flight this is the front.
            None => g
                .batches
                .iter()
                .take_while(|b| b.created < batch.created)
                .count(),
        };
        let records = batch.record_count();
        // Older than the batches behind it: it may lower the thread's
        // expiry bound, which a pass made while it was in flight left out.
        let expires = later(batch.created, self.cfg.delivery_timeout);
        g.batches.insert(at, batch);
        queue.queued.store(g.batches.len(), Ordering::Relaxed);
        let leader = queue.leader();
        drop(g);
        self.metrics.on_retry(&queue.sensors, records);
        self.notify_leader(queue, leader, retry_at, Some(expires));
    }

    /// The request that held a batch of each of `queues` has come back (its
    /// batches completed or handed back with [`reenqueue`](Self::reenqueue)
    /// first): their partitions may be drained again. Wakes the leaders'
    /// threads of those with batches waiting.
    pub(crate) fn unmute<'q>(&self, queues: impl IntoIterator<Item = &'q Arc<PartitionQueue>>) {
        if !self.cfg.guarantee_order {
            return; // nothing was muted: no lock to take per batch
        }
        for q in queues {
            let mut g = q.inner.lock();
            g.muted = false;
            let waiting = !g.batches.is_empty();
            drop(g);
            if waiting {
                self.notify_leader(q, q.leader(), crate::clock::now(), None);
            }
        }
    }

    /// Completes a batch of `queue` with `outcome`, returns its buffer to
    /// the pool and releases `flush`/`close` waiters. The only way a batch
    /// ends. An idempotent batch settles its sequence first, which may
    /// bump the epoch and lets the partition drain again.
    pub(crate) fn complete(
        &self,
        queue: &PartitionQueue,
        batch: ProducerBatch,
        outcome: Result<Delivered>,
    ) {
        if let Some(id) = batch.identity() {
            let mut g = queue.inner.lock();
            let bump = if outcome.is_ok() {
                g.seq.acked(id.base_sequence)
            } else {
                g.seq.failed(id.base_sequence)
            };
            let waiting = !g.batches.is_empty();
            drop(g);
            if bump {
                self.bump_epoch(id, &queue.topic, queue.partition);
            }
            if waiting {
                self.notify_leader(queue, queue.leader(), crate::clock::now(), None);
            }
        }
        if outcome.is_err() {
            self.metrics.on_error(&queue.sensors, batch.record_count());
        }
        if let (Err(e), Some(txn)) = (&outcome, self.txn.get()) {
            txn.on_failed(e, batch.identity().is_some());
        }
        batch.complete(outcome);
    }

    /// Sequenced batches dropped without an outcome (only a bug does that:
    /// a panic on an I/O thread while a batch sat in a local; the batch's
    /// `Drop` failed its records and noted it in the ledger): settles each
    /// as failed in its partition's sequences, as `complete` would have, so
    /// the partition does not wait for an answer that will never come. A
    /// gap nothing resolves then bumps the epoch (KIP-360); in a
    /// transaction, the transaction becomes abortable. Called at the top of
    /// every drain, holding no lock; one atomic load when nothing was lost.
    fn settle_lost(&self) {
        // A load first: every drain passes here, and a swap would write.
        if !self.ledger.any_lost.load(Ordering::Acquire)
            || !self.ledger.any_lost.swap(false, Ordering::AcqRel)
        {
            return;
        }
        let lost = std::mem::take(&mut *self.ledger.lost.lock());
        for (topic, partition, id) in lost {
            let t = self.topics.read().get(&topic).cloned();
            let Some(q) = t.and_then(|t| t.layout().partitions.get(partition as usize).cloned())
            else {
                continue;
            };
            let bump = q.inner.lock().seq.failed(id.base_sequence);
            log::warn!(
                "{topic}-{partition}: sequence {} was lost with its batch; settled as failed",
                id.base_sequence
            );
            if bump {
                self.bump_epoch(id, &topic, partition);
            }
            if let Some(txn) = self.txn.get() {
                let why = Error::Internal(format!(
                    "a batch of {topic}-{partition} was lost (a bug in kafka-producer)"
                ));
                txn.on_failed(&why, true);
            }
            self.notify_leader(&q, q.leader(), crate::clock::now(), None);
        }
    }

    /// The broker answered an idempotent batch of `queue` with a sequence
    /// error (`unknown_producer`: UNKNOWN_PRODUCER_ID). Returns whether a
    /// retry can mend it. If the error proves the broker lacks earlier
    /// sequences, the epoch is bumped first and the partition starts again
    /// from 0 once its batches in requests have come back; a transactional
    /// batch then fails instead (Java: the transaction must abort, and the
    /// manager bumps the epoch with its coordinator). Otherwise an earlier
    /// batch is still on its way, and the batch is retried behind it.
    pub(crate) fn sequence_error(
        &self,
        queue: &PartitionQueue,
        batch: &ProducerBatch,
        unknown_producer: bool,
    ) -> bool {
        let Some(id) = batch.identity() else {
            return false;
        };
        let gap = queue
            .inner
            .lock()
            .seq
            .gap(id.base_sequence, unknown_producer);
        if gap {
            self.bump_epoch(id, &queue.topic, queue.partition);
        }
        !(gap && self.txn.get().is_some())
    }

    /// KIP-360 for the idempotent producer: bumps the epoch locally if it
    /// is still the one `from` was sent under (a later error of the same
    /// gap finds it bumped already). Partitions move to the new epoch as
    /// their older batches settle (`sequence.rs`). At the last epoch the
    /// id is dropped and a new one asked for.
    fn bump_epoch(&self, from: Identity, topic: &str, partition: i32) {
        if self.txn.get().is_some() {
            // Only the transaction coordinator may bump a transactional
            // producer's epoch (after the abort this failure forces).
            return;
        }
        let mut p = self.producer_id.lock();
        if *p != Some((from.producer_id, from.epoch)) {
            return;
        }
        *p = if from.epoch < i16::MAX {
            Some((from.producer_id, from.epoch + 1))
        } else {
            // No higher epoch: a new id, asked for by the metadata thread
            // (the I/O thread that sees it gone requests a fetch).
            None
        };
        drop(p);
        // Every partition's gate reads the epoch: each thread looks at all
        // its partitions again (rare: one bump per unresolved gap).
        self.wake_all();
        log::info!(
            "producer {} epoch {} -> {}: sequences of {topic}-{partition} could not be resolved \
             (KIP-360); partitions restart their sequences under the new epoch",
            from.producer_id,
            from.epoch,
            from.epoch.wrapping_add(1)
        );
    }

    /// A batch the broker refused as too large (MESSAGE_TOO_LARGE) goes
    /// back to the front of its deque as two halves, ready at once; a half
    /// still too large is split again on its own answer, down to single
    /// records, which then fail with the broker's error. Returns the batch
    /// if it cannot be split (one record).
    #[allow(clippy::result_large_err)] // the batch comes back by value
    pub(crate) fn split_and_reenqueue(
        &self,
        queue: &PartitionQueue,
        batch: ProducerBatch,
        now: Instant,
    ) -> std::result::Result<(), ProducerBatch> {
        let id = batch.id;
        let [first, second] = batch.split_in_two()?;
        // Counted before either half can complete.
        self.ledger.incomplete.add(id);
        if let (Some(a), Some(b)) = (first.identity(), second.identity()) {
            queue
                .inner
                .lock()
                .seq
                .split(a.base_sequence, b.base_sequence);
        }
        self.reenqueue(queue, second, now);
        self.reenqueue(queue, first, now);
        Ok(())
    }

    /// Fails the queued batches of `partitions` that have waited longer
    /// than `delivery.timeout.ms`. Returns how many batches expired.
    ///
    /// Each I/O thread expires the partitions it leads, so a partition's
    /// callbacks run on one thread in order; the metadata thread expires
    /// the partitions no I/O thread leads.
    pub(crate) fn expire(&self, partitions: &[Arc<PartitionQueue>], now: Instant) -> usize {
        self.expire_in(partitions, now, &mut Vec::new()).0
    }

    /// [`expire`](Self::expire), which also returns when the next of the
    /// batches left can expire, and lists in `touched` the indices of the
    /// partitions that lost batches and have more (their next batch may be
    /// ready now). One pass for a [`Drainer`].
    pub(super) fn expire_in(
        &self,
        partitions: &[Arc<PartitionQueue>],
        now: Instant,
        touched: &mut Vec<usize>,
    ) -> (usize, Option<Instant>) {
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        for (i, q) in partitions.iter().enumerate() {
            if q.queued() == 0 {
                continue;
            }
            let mut g = q.inner.lock();
            let before = expired.len();
            while let Some(first) = g.batches.front() {
                if now.saturating_duration_since(first.created) < self.cfg.delivery_timeout {
                    // The oldest of the partition's batches: retries are
                    // older than what is behind them.
                    let t = later(first.created, self.cfg.delivery_timeout);
                    next = Some(next.map_or(t, |n: Instant| n.min(t)));
                    break;
                }
                expired.push((q, g.batches.pop_front().expect("peeked")));
            }
            if expired.len() > before && !g.batches.is_empty() {
                touched.push(i);
            }
            q.queued.store(g.batches.len(), Ordering::Relaxed);
        }
        let n = expired.len();
        for (q, b) in expired {
            let stage = if b.attempts > 0 {
                "waiting to be retried"
            } else {
                "waiting in the accumulator"
            };
            let err = self.delivery_timeout_error(&b, now, stage);
            self.complete(q, b, Err(err));
        }
        (n, next)
    }

    /// The error for a batch that outlived `delivery.timeout.ms`.
    pub(crate) fn delivery_timeout_error(
        &self,
        batch: &ProducerBatch,
        now: Instant,
        stage: &'static str,
    ) -> Error {
        Error::DeliveryTimeout {
            topic: batch.result.topic.to_string(),
            partition: batch.result.partition,
            record_count: batch.record_count(),
            elapsed_ms: now.saturating_duration_since(batch.created).as_millis() as u64,
            stage,
        }
    }

    /// The earliest time a queued batch of `partitions` can expire.
    pub(crate) fn next_expiry(&self, partitions: &[Arc<PartitionQueue>]) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for q in partitions {
            if q.queued() == 0 {
                continue;
            }
            if let Some(b) = q.inner.lock().batches.front() {
                let t = later(b.created, self.cfg.delivery_timeout);
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        }
        next
    }

    /// Completes every queued batch of `partitions` (all partitions if
    /// `None`) with `err`.
    pub(crate) fn abort_queued(&self, partitions: Option<&[Arc<PartitionQueue>]>, err: &Error) {
        let all;
        let list: &[Arc<PartitionQueue>] = match partitions {
            Some(p) => p,
            None => {
                all = self.all_partitions();
                &all
            }
        };
        for q in list {
            let drained: Vec<ProducerBatch> = {
                let mut g = q.inner.lock();
                q.queued.store(0, Ordering::Relaxed);
                g.batches.drain(..).collect()
            };
            for b in drained {
                self.complete(q, b, Err(err.clone()));
            }
        }
    }
}

/// The sequence after a batch of `records` that starts at `seq`: sequences
/// wrap from `i32::MAX` to 0 (Java's `DefaultRecordBatch.incrementSequence`).
pub(crate) fn next_sequence(seq: i32, records: usize) -> i32 {
    let records = records.min(i32::MAX as usize) as i32;
    if seq > i32::MAX - records {
        records - (i32::MAX - seq) - 1
    } else {
        seq + records
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metadata::{Cluster, Node, TopicMetadata};
    use crate::protocol::records::record_fixed_size;
    use crate::protocol::ErrorCode;
    use crate::record::PartitionInfo;
    use callbacks::NoCallback;

    pub(super) fn cfg() -> AccumulatorConfig {
        AccumulatorConfig {
            batch_size: 1000,
            buffer_memory: 10_000,
            linger: Duration::from_millis(5),
            delivery_timeout: Duration::from_secs(10),
            adaptive_partitioning: false,
            guarantee_order: false,
            compression: Compression::None,
            idempotent: false,
            max_in_flight: 5,
        }
    }

    pub(crate) fn cluster(partitions: i32) -> Cluster {
        let mut c = Cluster::default();
        c.brokers.insert(
            1,
            Node {
                id: 1,
                host: "h".into(),
                port: 1,
                rack: None,
            },
        );
        c.topics.insert(
            "t".into(),
            TopicMetadata {
                error: ErrorCode::NONE,
                partitions: (0..partitions)
                    .map(|p| PartitionInfo {
                        topic: "t".into(),
                        partition: p,
                        leader: Some(1),
                        replicas: vec![1],
                        in_sync_replicas: vec![1],
                        offline_replicas: vec![],
                    })
                    .collect(),
                available: (0..partitions).collect(),
                epochs: vec![],
            },
        );
        c
    }

    fn rec(value: &[u8]) -> RecordParts<'_> {
        RecordParts {
            key: None,
            value: Some(value),
            headers: &[],
            timestamp: 1,
            fixed_size: record_fixed_size(None, Some(value), std::iter::empty()),
        }
    }

    pub(super) fn send(
        acc: &RecordAccumulator,
        p: Option<i32>,
        value: &[u8],
    ) -> Result<RecordFuture> {
        send_following(acc, StickyRef::Topic, p, value)
    }

    /// [`send`] with keyless records following `st`.
    pub(super) fn send_following(
        acc: &RecordAccumulator,
        st: StickyRef<'_>,
        p: Option<i32>,
        value: &[u8],
    ) -> Result<RecordFuture> {
        let t = acc.topic("t").unwrap();
        let l = t.layout();
        acc.append(
            &t,
            &l,
            p,
            &rec(value),
            -1,
            value.len() as i32,
            &mut NoCallback,
            &Budget::new(Duration::ZERO),
            st,
        )
    }

    /// A batch refused as too large comes back as two halves, then (one
    /// half refused again) three pieces: every handle resolves to its own
    /// record's offset, the bytes decode to the same records in order,
    /// flush waits for every piece, and the memory comes back whole.
    #[test]
    fn a_split_batch_keeps_every_record_and_its_handle() {
        for codec in [
            Compression::None,
            Compression::Gzip(-1),
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd(3),
        ] {
            split_keeps_every_record_and_its_handle(codec);
        }
    }

    fn split_keeps_every_record_and_its_handle(codec: Compression) {
        use crate::protocol::compression::decompress_batches;
        use crate::protocol::records::decode_batches;
        let acc = RecordAccumulator::new(
            AccumulatorConfig {
                batch_size: 4000,
                compression: codec,
                ..cfg()
            },
            Arc::default(),
        );
        acc.update_metadata(&cluster(1));
        let values: Vec<Vec<u8>> = (0..9u8).map(|i| vec![i; 10 + i as usize]).collect();
        let handles: Vec<RecordFuture> = values
            .iter()
            .map(|v| send(&acc, Some(0), v).unwrap())
            .collect();
        let all = acc.partitions_led_by(1);
        let now = Instant::now() + Duration::from_secs(1);
        let (mut d, _) = acc.drain(&all, &mut 0, 1 << 20, now);
        let big = d.pop().unwrap();
        assert_eq!(big.batch.record_count(), 9);
        let mark = acc.begin_flush();
        acc.split_and_reenqueue(&big.queue, big.batch, now).unwrap();
        assert_eq!(acc.incomplete_count(), 2);
        // the first half (4 records) is refused again: split once more
        let (mut d, _) = acc.drain(&all, &mut 0, 1, now);
        let first = d.pop().unwrap();
        assert_eq!(first.batch.record_count(), 4);
        acc.split_and_reenqueue(&first.queue, first.batch, now)
            .unwrap();
        let mut pieces = Vec::new();
        let mut decoded = Vec::new();
        loop {
            let (mut d, _) = acc.drain(&all, &mut 0, 1, now);
            let Some(x) = d.pop() else { break };
            let [h, r] = x.batch.wire_parts();
            let wire = [h, r].concat();
            assert_eq!(
                i16::from_be_bytes([h[21], h[22]]) & 7,
                codec.attribute(),
                "the codec is in the attributes"
            );
            let plain = decompress_batches(&wire, 1 << 20).unwrap();
            let b = decode_batches(&plain).unwrap().remove(0);
            decoded.extend(b.records.iter().map(|r| r.value.unwrap().to_vec()));
            pieces.push(x);
        }
        let counts: Vec<usize> = pieces.iter().map(|x| x.batch.record_count()).collect();
        assert_eq!(counts, [2, 2, 5], "pieces in send order");
        assert_eq!(decoded, values, "the pieces hold the records, in order");
        assert!(!handles[0].is_done());
        // complete the pieces at offsets 100, 200, 300
        for (k, x) in pieces.into_iter().enumerate() {
            let base_offset = 100 * (k as i64 + 1);
            acc.complete(
                &x.queue,
                x.batch,
                Ok(Delivered {
                    base_offset,
                    log_append_time: -1,
                }),
            );
        }
        acc.await_flush(mark);
        let offsets: Vec<i64> = handles.iter().map(|h| h.get().unwrap().offset()).collect();
        assert_eq!(offsets, [100, 101, 200, 201, 300, 301, 302, 303, 304]);
        assert_eq!(acc.incomplete_count(), 0);
        assert_eq!(
            acc.pool().available_memory(),
            10_000,
            "every byte came back"
        );
        // a single record cannot be split
        let h = send(&acc, Some(0), b"alone").unwrap();
        let (mut d, _) = acc.drain(&all, &mut 0, 1 << 20, now);
        let one = d.pop().unwrap();
        let back = acc
            .split_and_reenqueue(&one.queue, one.batch, now)
            .unwrap_err();
        acc.complete(&one.queue, back, Err(Error::aborted()));
        assert!(h.get().is_err());
    }

    #[test]
    fn batches_become_ready_on_linger_or_when_full() {
        let acc = RecordAccumulator::new(cfg(), Arc::default());
        acc.update_metadata(&cluster(1));
        let parts = acc.partitions_led_by(1);
        let t0 = Instant::now();
        send(&acc, Some(0), &[0; 100]).unwrap();
        let mut cursor = 0;
        let (d, next) = acc.drain(&parts, &mut cursor, 1 << 20, t0);
        assert!(d.is_empty(), "lingering");
        assert!(next.unwrap() > t0);
        // after linger it is ready
        let (d, _) = acc.drain(&parts, &mut cursor, 1 << 20, t0 + Duration::from_millis(6));
        assert_eq!(d.len(), 1);
        // fill past one batch: the first is ready at once
        for _ in 0..10 {
            send(&acc, Some(0), &[0; 100]).unwrap();
        }
        let (d, _) = acc.drain(&parts, &mut cursor, 1 << 20, Instant::now());
        assert_eq!(d.len(), 1);
        assert!(d[0].batch.size_in_bytes() <= 1000);
        for x in d {
            acc.complete(&x.queue, x.batch, Err(Error::Closed));
        }
    }

    /// Many partitions, a `batch.size` the pool could hold only twice:
    /// each partition's batch takes what it holds (starting at
    /// `FIRST_RESERVE`), so every partition gets one without waiting, a
    /// busy one grows past the start, and what is reserved never exceeds
    /// `buffer.memory`. (Before, each batch took `batch.size` up front and
    /// the third partition's first record failed at once.)
    #[test]
    fn batches_take_what_they_hold_and_grow_within_buffer_memory() {
        let acc = RecordAccumulator::new(
            AccumulatorConfig {
                batch_size: 100_000,
                buffer_memory: 200_000,
                ..cfg()
            },
            Arc::default(),
        );
        acc.update_metadata(&cluster(8));
        for p in 0..8 {
            send(&acc, Some(p), &[1; 100]).unwrap();
        }
        assert_eq!(acc.pool().available_memory(), 200_000 - 8 * FIRST_RESERVE);
        // Partition 0 grows (doubling) until the pool has nothing left to
        // give it; the record that finds no room then waits for memory,
        // which a zero budget turns into BufferExhausted.
        let mut sent = 0;
        let refused = loop {
            match send(&acc, Some(0), &[2; 1000]) {
                Ok(_) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 1000, "partition 0 never stopped growing");
        };
        assert!(
            matches!(refused, Error::BufferExhausted { .. }),
            "{refused:?}"
        );
        let parts = acc.partitions_led_by(1);
        let q0 = parts.iter().find(|q| q.partition == 0).unwrap();
        let reserved: usize = parts
            .iter()
            .map(|q| {
                q.inner
                    .lock()
                    .batches
                    .iter()
                    .map(|b| b.reserved)
                    .sum::<usize>()
            })
            .sum();
        assert!(reserved <= 200_000, "{reserved} reserved");
        assert_eq!(reserved + acc.pool().available_memory(), 200_000);
        assert!(
            q0.inner
                .lock()
                .batches
                .iter()
                .any(|b| b.reserved > FIRST_RESERVE),
            "partition 0's batch grew past its start"
        );
    }

    #[test]
    fn drain_respects_the_request_size_but_takes_one_batch_at_least() {
        let acc = RecordAccumulator::new(cfg(), Arc::default());
        acc.update_metadata(&cluster(3));
        for p in 0..3 {
            send(&acc, Some(p), &[0; 600]).unwrap();
        }
        acc.begin_flush();
        let parts = acc.partitions_led_by(1);
        let mut cursor = 0;
        let (d, _) = acc.drain(&parts, &mut cursor, 100, Instant::now());
        assert_eq!(d.len(), 1, "one oversized batch still goes");
        let (d2, _) = acc.drain(&parts, &mut cursor, 10_000, Instant::now());
        assert_eq!(d2.len(), 2);
    }

    #[test]
    fn expired_batches_fail_with_a_timeout_and_free_memory() {
        let acc = RecordAccumulator::new(cfg(), Arc::default());
        acc.update_metadata(&cluster(1));
        let f = send(&acc, Some(0), b"x").unwrap();
        let all = acc.all_partitions();
        assert_eq!(acc.expire(&all, Instant::now()), 0);
        assert!(acc.next_expiry(&all).unwrap() > Instant::now());
        assert_eq!(acc.unled_partitions().len(), 1, "no I/O thread registered");
        assert_eq!(
            acc.expire(&all, Instant::now() + Duration::from_secs(11)),
            1
        );
        assert!(matches!(
            f.get(),
            Err(Error::DeliveryTimeout {
                stage: "waiting in the accumulator",
                ..
            })
        ));
        assert_eq!(acc.pool().available_memory(), 10_000);
        // A batch handed back for a retry says so when it expires.
        let f = send(&acc, Some(0), b"y").unwrap();
        let now = Instant::now();
        let (mut d, _) = acc.drain(&all, &mut 0, 1 << 20, later(now, Duration::from_secs(1)));
        let x = d.pop().unwrap();
        acc.reenqueue(&x.queue, x.batch, later(now, Duration::from_secs(60)));
        assert_eq!(acc.expire(&all, later(now, Duration::from_secs(11))), 1);
        assert!(matches!(
            f.get(),
            Err(Error::DeliveryTimeout {
                stage: "waiting to be retried",
                ..
            })
        ));
    }

    /// A batch that completes while a request still holds its records
    /// (it expired mid-write) keeps its reservation counted until that
    /// request lets go: buffer and reservation go back together.
    #[test]
    fn a_batch_completed_while_a_request_holds_its_records_stays_counted() {
        let acc = RecordAccumulator::new(cfg(), Arc::default());
        acc.update_metadata(&cluster(1));
        let f = send(&acc, Some(0), &[7; 600]).unwrap();
        let all = acc.all_partitions();
        let now = Instant::now();
        let (mut d, _) = acc.drain(&all, &mut 0, 1 << 20, later(now, Duration::from_secs(1)));
        let x = d.pop().unwrap();
        // What a wire's output holds while the request is unwritten.
        let held = Arc::clone(x.batch.wire_shared().1);
        let in_use = 10_000 - acc.pool().available_memory();
        assert!(
            in_use >= 600,
            "the batch holds its records ({in_use} bytes)"
        );
        x.batch.complete(Err(Error::Closed));
        assert!(f.get().is_err());
        assert_eq!(
            acc.pool().available_memory(),
            10_000 - in_use,
            "counted while a request holds the bytes"
        );
        drop(held);
        assert_eq!(
            acc.pool().available_memory(),
            10_000,
            "all back once let go"
        );
    }

    /// Two requests of one partition in flight fail; their answers come
    /// back oldest first. The retries stay oldest first, so the older
    /// batch expires at its own deadline (expiry looks at the front
    /// batch), not at the newer one's. Found by the simulation.
    #[test]
    fn retries_of_several_requests_stay_in_age_order() {
        let acc = RecordAccumulator::new(cfg(), Arc::default());
        acc.update_metadata(&cluster(1));
        let parts = acc.partitions_led_by(1);
        acc.begin_flush();
        let old = send(&acc, Some(0), b"old").unwrap();
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, Instant::now());
        let a = d.pop().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let new = send(&acc, Some(0), b"new").unwrap();
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, Instant::now());
        let b = d.pop().unwrap();
        let a_deadline = later(a.batch.created, Duration::from_secs(10));
        assert!(b.batch.created > a.batch.created);
        let far = later(Instant::now(), Duration::from_secs(60));
        acc.reenqueue(&a.queue, a.batch, far);
        acc.reenqueue(&b.queue, b.batch, far);
        assert_eq!(acc.next_expiry(&parts), Some(a_deadline));
        assert_eq!(
            acc.expire(&parts, a_deadline),
            1,
            "the older batch, at its deadline"
        );
        assert!(matches!(old.get(), Err(Error::DeliveryTimeout { .. })));
        assert!(!new.is_done());
    }

    #[test]
    fn a_retry_after_an_abort_began_is_failed_not_stranded() {
        let lifecycle = Arc::new(Lifecycle::default());
        let acc = RecordAccumulator::new(cfg(), lifecycle.clone());
        acc.update_metadata(&cluster(1));
        let f = send(&acc, Some(0), b"x").unwrap();
        acc.begin_flush();
        let parts = acc.partitions_led_by(1);
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, Instant::now());
        let x = d.pop().unwrap();
        lifecycle.abort();
        acc.abort_queued(None, &Error::aborted());
        // the I/O thread's retry comes after the sweep
        acc.reenqueue(&x.queue, x.batch, Instant::now());
        assert!(matches!(f.get(), Err(Error::Aborted(_))));
        assert_eq!(acc.incomplete_count(), 0);
    }

    #[test]
    fn retried_batches_wait_for_their_backoff_even_in_a_flush() {
        let acc = RecordAccumulator::new(cfg(), Arc::default());
        acc.update_metadata(&cluster(1));
        send(&acc, Some(0), b"x").unwrap();
        acc.begin_flush();
        let parts = acc.partitions_led_by(1);
        let now = Instant::now();
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, now);
        let x = d.pop().unwrap();
        acc.reenqueue(&x.queue, x.batch, now + Duration::from_millis(100));
        let (d, next) = acc.drain(&parts, &mut 0, 1 << 20, now);
        assert!(d.is_empty());
        assert_eq!(next, Some(now + Duration::from_millis(100)));
        let (d, _) = acc.drain(&parts, &mut 0, 1 << 20, now + Duration::from_millis(100));
        assert_eq!(d[0].batch.attempts, 2);
    }

    #[test]
    fn a_batch_dropped_without_an_outcome_fails_its_records_and_frees_everything() {
        let acc = RecordAccumulator::new(cfg(), Arc::default());
        acc.update_metadata(&cluster(1));
        let f = send(&acc, Some(0), b"x").unwrap();
        let parts = acc.partitions_led_by(1);
        let (mut d, _) = acc.drain(
            &parts,
            &mut 0,
            1 << 20,
            later(Instant::now(), Duration::from_secs(1)),
        );
        assert_eq!(acc.incomplete_count(), 1);
        // What a panic unwinding past a local does to it.
        drop(d.pop().unwrap());
        assert!(matches!(f.get(), Err(Error::Internal(_))));
        assert_eq!(
            acc.incomplete_count(),
            0,
            "flush and close would wait for it"
        );
        assert_eq!(acc.pool().available_memory(), 10_000);
        // A completed batch's drop does nothing more.
        let f = send(&acc, Some(0), b"y").unwrap();
        let (mut d, _) = acc.drain(
            &parts,
            &mut 0,
            1 << 20,
            later(Instant::now(), Duration::from_secs(1)),
        );
        let b = d.pop().unwrap();
        acc.complete(
            &b.queue,
            b.batch,
            Ok(Delivered {
                base_offset: 7,
                log_append_time: -1,
            }),
        );
        assert_eq!(f.get().unwrap().offset(), 7);
        assert_eq!(acc.pool().available_memory(), 10_000);
    }

    #[test]
    fn compressed_batches_grow_toward_batch_size_compressed() {
        let acc = RecordAccumulator::new(
            AccumulatorConfig {
                batch_size: 1000,
                buffer_memory: 1 << 20,
                compression: Compression::Gzip(-1),
                ..cfg()
            },
            Arc::default(),
        );
        acc.update_metadata(&cluster(1));
        let parts = acc.partitions_led_by(1);
        let mut counts = Vec::new();
        // Highly compressible records: each batch compresses to a fraction
        // of its size, and the estimate follows (slowly, as Java's).
        for round in 0..400 {
            for _ in 0..200 {
                send(&acc, Some(0), &[b'a'; 50]).unwrap();
            }
            // Past every batch's linger, however slow this machine is.
            let later_on = later(Instant::now(), Duration::from_secs(1));
            let mut n = Vec::new();
            // Drain takes one batch per partition a time: all of them.
            loop {
                let (d, _) = acc.drain(&parts, &mut 0, usize::MAX, later_on);
                if d.is_empty() {
                    break;
                }
                for x in d {
                    n.push(x.batch.record_count());
                    acc.complete(&x.queue, x.batch, ok());
                }
            }
            if round == 0 || round == 399 {
                counts.push(n.iter().copied().max().unwrap());
            }
        }
        // batch.size 1000 holds about 14 such records uncompressed; once
        // the estimate has learnt, a batch holds up to 8 times as many.
        assert!(counts[0] <= 16, "first batches: {counts:?}");
        assert!(counts[1] >= 100, "later batches: {counts:?}");
        assert!(counts[1] <= 8 * 1000 / 50, "capped: {counts:?}");
        assert_eq!(
            acc.pool().available_memory(),
            1 << 20,
            "every byte came back"
        );
    }

    #[test]
    fn idempotent_batches_wait_for_the_id_then_take_sequences_in_order() {
        use crate::protocol::compression::decompress_batches;
        use crate::protocol::records::decode_batches;
        let acc = RecordAccumulator::new(
            AccumulatorConfig {
                idempotent: true,
                guarantee_order: true,
                ..cfg()
            },
            Arc::default(),
        );
        acc.update_metadata(&cluster(1));
        let parts = acc.partitions_led_by(1);
        let t = later(Instant::now(), Duration::from_secs(1));
        for v in [&b"a"[..], b"bb", b"ccc"] {
            send(&acc, Some(0), v).unwrap();
        }
        assert!(
            acc.drain(&parts, &mut 0, 1 << 20, t).0.is_empty(),
            "no id yet"
        );
        acc.set_producer_id(42, 3);
        let header = |x: &Drained| {
            let [h, r] = x.batch.wire_parts();
            let wire = decompress_batches(&[h, r].concat(), 1 << 20).unwrap();
            decode_batches(&wire).unwrap().remove(0).header
        };
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, t);
        let first = d.pop().unwrap();
        let h = header(&first);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, 0)
        );
        assert_eq!(h.record_count, 3);
        // A retry is byte-identical: same sequence, same CRC.
        let bytes = first.batch.wire_parts().concat();
        acc.reenqueue(&first.queue, first.batch, t);
        acc.unmute([&first.queue]);
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, t);
        let again = d.pop().unwrap();
        assert_eq!(again.batch.wire_parts().concat(), bytes);
        acc.complete(&again.queue, again.batch, ok());
        acc.unmute([&again.queue]);
        // The next batch starts where the last one ended.
        send(&acc, Some(0), b"d").unwrap();
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, t);
        let x = d.pop().unwrap();
        assert_eq!(header(&x).base_sequence, 3);
        // A split idempotent batch's halves share its sequence range.
        acc.complete(&x.queue, x.batch, ok());
        acc.unmute([&x.queue]);
        for v in [&b"e"[..], b"f", b"g"] {
            send(&acc, Some(0), v).unwrap();
        }
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, t);
        let big = d.pop().unwrap();
        assert_eq!(header(&big).base_sequence, 4);
        acc.split_and_reenqueue(&big.queue, big.batch, t).unwrap();
        acc.unmute([&big.queue]);
        let mut seqs = Vec::new();
        for _ in 0..2 {
            let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, t);
            let half = d.pop().unwrap();
            let h = header(&half);
            seqs.push((
                h.base_sequence,
                h.record_count,
                h.producer_id,
                h.producer_epoch,
            ));
            acc.complete(&half.queue, half.batch, ok());
            acc.unmute([&half.queue]);
        }
        assert_eq!(seqs, [(4, 1, 42, 3), (5, 2, 42, 3)]);
        send(&acc, Some(0), b"h").unwrap();
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, t);
        assert_eq!(header(&d.pop().unwrap()).base_sequence, 7);
        // Sequences wrap from i32::MAX to 0, as Java's.
        assert_eq!(next_sequence(i32::MAX - 1, 2), 0);
        assert_eq!(next_sequence(i32::MAX, 1), 0);
        assert_eq!(next_sequence(5, 3), 8);
    }

    /// An idempotent accumulator with its id, one partition, and a way to
    /// drain one batch and read back its (id, epoch, base sequence).
    fn idempotent(max_in_flight: usize) -> (RecordAccumulator, Arc<[Arc<PartitionQueue>]>) {
        let acc = RecordAccumulator::new(
            AccumulatorConfig {
                idempotent: true,
                max_in_flight,
                ..cfg()
            },
            Arc::default(),
        );
        acc.update_metadata(&cluster(1));
        acc.set_producer_id(7, 0);
        let parts = acc.partitions_led_by(1);
        (acc, parts)
    }

    /// As [`idempotent`], after a first batch (sequence 0) was acknowledged:
    /// the partition pipelines from here.
    fn idempotent_acked(max_in_flight: usize) -> (RecordAccumulator, Arc<[Arc<PartitionQueue>]>) {
        let (acc, parts) = idempotent(max_in_flight);
        send(&acc, Some(0), b"w").unwrap();
        let w = drain_one(&acc, &parts).unwrap();
        acc.complete(&w.queue, w.batch, ok());
        (acc, parts)
    }

    fn drain_one(acc: &RecordAccumulator, parts: &[Arc<PartitionQueue>]) -> Option<Drained> {
        let t = later(Instant::now(), Duration::from_secs(1));
        let (mut d, _) = acc.drain(parts, &mut 0, 1 << 20, t);
        assert!(d.len() <= 1);
        d.pop()
    }

    /// (producer id, epoch, base sequence) as the bytes say; the decode
    /// checks the CRC.
    fn stamp(x: &Drained) -> (i64, i16, i32) {
        use crate::protocol::records::decode_batches;
        let wire = x.batch.wire_parts().concat();
        let h = decode_batches(&wire).unwrap().remove(0).header;
        (h.producer_id, h.producer_epoch, h.base_sequence)
    }

    /// A successful outcome at offset 0.
    pub(crate) fn ok() -> Result<Delivered> {
        Ok(Delivered {
            base_offset: 0,
            log_append_time: -1,
        })
    }

    #[test]
    fn idempotent_batches_pipeline_up_to_max_in_flight_and_retry_in_sequence_order() {
        let (acc, parts) = idempotent(3);
        // One at a time until the broker has acknowledged one.
        send(&acc, Some(0), b"first").unwrap();
        let first = drain_one(&acc, &parts).unwrap();
        send(&acc, Some(0), b"x").unwrap();
        assert!(
            drain_one(&acc, &parts).is_none(),
            "not before the first ack"
        );
        acc.complete(&first.queue, first.batch, ok());
        let x = drain_one(&acc, &parts).unwrap();
        acc.complete(&x.queue, x.batch, ok());
        let mut out = Vec::new();
        for v in [&b"a"[..], b"b", b"c"] {
            send(&acc, Some(0), v).unwrap();
            out.push(drain_one(&acc, &parts).expect("room in the window"));
        }
        let seqs: Vec<_> = out.iter().map(stamp).collect();
        assert_eq!(seqs, [(7, 0, 2), (7, 0, 3), (7, 0, 4)]);
        send(&acc, Some(0), b"d").unwrap();
        assert!(
            drain_one(&acc, &parts).is_none(),
            "3 unsettled: window full"
        );
        // b and c come back for a retry in the wrong order; a is still out.
        let c = out.pop().unwrap();
        let b = out.pop().unwrap();
        let a = out.pop().unwrap();
        let now = Instant::now();
        acc.reenqueue(&c.queue, c.batch, now);
        acc.reenqueue(&b.queue, b.batch, now);
        assert!(drain_one(&acc, &parts).is_none(), "b must wait for a");
        acc.complete(&a.queue, a.batch, ok());
        let b = drain_one(&acc, &parts).expect("b, the oldest retry");
        assert_eq!(stamp(&b).2, 3);
        assert!(drain_one(&acc, &parts).is_none(), "c must wait for b");
        acc.complete(&b.queue, b.batch, ok());
        let c = drain_one(&acc, &parts).expect("c");
        assert_eq!(stamp(&c).2, 4);
        let d = drain_one(&acc, &parts).expect("d, new, behind c");
        assert_eq!(stamp(&d), (7, 0, 5));
    }

    #[test]
    fn a_gap_bumps_the_epoch_and_restamps_the_retries_from_zero() {
        let (acc, parts) = idempotent_acked(5);
        send(&acc, Some(0), b"a").unwrap();
        let a = drain_one(&acc, &parts).unwrap();
        send(&acc, Some(0), b"b").unwrap();
        let b = drain_one(&acc, &parts).unwrap();
        // a fails for good: the broker may lack it, so nothing new goes
        // until that is known.
        acc.complete(&a.queue, a.batch, Err(Error::aborted()));
        send(&acc, Some(0), b"e").unwrap();
        assert!(drain_one(&acc, &parts).is_none(), "unresolved: e waits");
        // b, the oldest pending batch, is refused as out of order: a gap.
        acc.sequence_error(&b.queue, &b.batch, false);
        assert_eq!(acc.producer_id(), Some((7, 1)), "epoch bumped");
        acc.reenqueue(&b.queue, b.batch, Instant::now());
        let b = drain_one(&acc, &parts).expect("b restamped");
        assert_eq!(stamp(&b), (7, 1, 0));
        acc.complete(&b.queue, b.batch, ok());
        let e = drain_one(&acc, &parts).expect("e");
        assert_eq!(stamp(&e), (7, 1, 1));
        // A gap bumps once: a second error sent under the old epoch finds
        // it bumped already.
        acc.sequence_error(&e.queue, &e.batch, false);
        acc.sequence_error(&e.queue, &e.batch, false);
        assert_eq!(acc.producer_id(), Some((7, 2)));
    }

    #[test]
    fn a_failed_batch_is_resolved_by_a_later_ack_without_a_bump() {
        let (acc, parts) = idempotent_acked(5);
        send(&acc, Some(0), b"a").unwrap();
        let a = drain_one(&acc, &parts).unwrap();
        send(&acc, Some(0), b"b").unwrap();
        let b = drain_one(&acc, &parts).unwrap();
        let err = acc.delivery_timeout_error(&a.batch, Instant::now(), "in flight");
        acc.complete(&a.queue, a.batch, Err(err));
        // b is in the log, so a is too: the broker appends in order.
        acc.complete(&b.queue, b.batch, ok());
        send(&acc, Some(0), b"c").unwrap();
        assert_eq!(stamp(&drain_one(&acc, &parts).unwrap()), (7, 0, 3));
        assert_eq!(acc.producer_id(), Some((7, 0)));
    }

    #[test]
    fn a_bump_past_the_last_epoch_drops_the_id_and_nothing_drains_until_a_new_one() {
        let (acc, parts) = idempotent(5);
        acc.set_producer_id(7, i16::MAX);
        send(&acc, Some(0), b"a").unwrap();
        let a = drain_one(&acc, &parts).unwrap();
        acc.complete(&a.queue, a.batch, Err(Error::aborted()));
        assert_eq!(acc.producer_id(), None);
        send(&acc, Some(0), b"b").unwrap();
        assert!(drain_one(&acc, &parts).is_none(), "no id: nothing goes");
        acc.set_producer_id(8, 0);
        assert_eq!(stamp(&drain_one(&acc, &parts).unwrap()), (8, 0, 0));
    }

    #[test]
    fn a_failed_batch_with_nothing_after_it_bumps_the_epoch() {
        let (acc, parts) = idempotent(5);
        send(&acc, Some(0), b"a").unwrap();
        let a = drain_one(&acc, &parts).unwrap();
        acc.complete(&a.queue, a.batch, Err(Error::aborted()));
        assert_eq!(acc.producer_id(), Some((7, 1)));
        send(&acc, Some(0), b"b").unwrap();
        assert_eq!(stamp(&drain_one(&acc, &parts).unwrap()), (7, 1, 0));
    }

    /// A sequenced batch dropped without an outcome (a panic's unwinding)
    /// fails its record, and the next drain settles its sequence as failed:
    /// with nothing after it, the epoch is bumped and the partition goes on
    /// from sequence 0. Before, its sequence stayed pending for good and the
    /// partition never drained again.
    #[test]
    fn a_sequenced_batch_dropped_without_an_outcome_does_not_wedge_its_partition() {
        let (acc, parts) = idempotent(5);
        let f = send(&acc, Some(0), b"a").unwrap();
        let a = drain_one(&acc, &parts).unwrap();
        assert_eq!(stamp(&a), (7, 0, 0));
        drop(a);
        assert!(matches!(f.get(), Err(Error::Internal(_))));
        send(&acc, Some(0), b"b").unwrap();
        let b = drain_one(&acc, &parts).expect("the partition drains again");
        assert_eq!(stamp(&b), (7, 1, 0), "a new epoch, from sequence 0");
        assert_eq!(acc.producer_id(), Some((7, 1)));
        acc.complete(&b.queue, b.batch, ok());
    }

    #[test]
    fn a_retry_backs_off_from_its_leader_but_goes_to_a_new_one_at_once() {
        let acc = RecordAccumulator::new(cfg(), Arc::default());
        let mut c = cluster(1);
        acc.update_metadata(&c);
        send(&acc, Some(0), b"x").unwrap();
        let now = Instant::now();
        let hour = now + Duration::from_secs(3600);
        let parts = acc.partitions_led_by(1);
        let (mut d, _) = acc.drain(&parts, &mut 0, 1 << 20, hour);
        let x = d.pop().unwrap();
        assert_eq!(x.batch.sent_to, 1);
        acc.reenqueue(&x.queue, x.batch, hour + Duration::from_secs(3600));
        let (d, _) = acc.drain(&parts, &mut 0, 1 << 20, hour);
        assert!(d.is_empty(), "backing off from the same leader");
        // The partition moves to broker 2: it sends the batch at once.
        let mut n2 = c.brokers[&1].clone();
        n2.id = 2;
        c.brokers.insert(2, n2);
        c.topics.get_mut("t").unwrap().partitions[0].leader = Some(2);
        acc.update_metadata(&c);
        let parts = acc.partitions_led_by(2);
        let (d, _) = acc.drain(&parts, &mut 0, 1 << 20, hour);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].batch.attempts, d[0].batch.sent_to), (2, 2));
    }
}
