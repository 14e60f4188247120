//! [`Producer`]: `send`, `flush`, `close`, `partitions_for`. Owns the
//! accumulator, the metadata state and the I/O threads, and joins them on
//! close.
//!
//! `send` runs entirely on the caller's thread: wait for the topic's
//! metadata, serialize, choose the partition, and encode the record into
//! its partition's batch. Everything after that happens on the I/O threads.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::accumulator::callbacks::{NoCallback, Pending, Register};
use crate::accumulator::StickyRef;
use crate::accumulator::{AccumulatorConfig, Layout, RecordAccumulator, RecordParts, TopicQueues};
use crate::config::{PartitionerChoice, ProducerConfig};
use crate::error::{Error, RecordPart, Result};
use crate::future::RecordFuture;
use crate::interceptor::{Acks, InterceptedRecord, Interceptors, ProducerInterceptor};
use crate::io::{in_io_thread, Io};
use crate::lifecycle::Lifecycle;
use crate::metadata::{Cluster, Metadata};
use crate::metrics::{Metrics, MetricsSnapshot, StatsThread};
use crate::partitioner::{murmur2_partition, Partitioner, RoundRobinPartitioner};
use crate::protocol::records::{record_fixed_size, record_size_upper_bound, RECORD_BATCH_OVERHEAD};
use crate::protocol::ErrorCode;
use crate::record::{Data, PartitionInfo, ProducerRecord, RecordMetadata};
use crate::serialize::Serializer;
use crate::transaction::{ConsumerGroupMetadata, OffsetToCommit, TransactionManager};
use crate::util::{later, Budget};

thread_local! {
    /// Serializer scratch buffers (key, value), reused by every `send` on
    /// this thread so serializing allocates nothing per record.
    static SCRATCH: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };

    /// True while this thread is closing a producer: records it fails run
    /// their callbacks here, and a callback must not wait for the close
    /// that runs it.
    static IN_CLOSE: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread runs send callbacks now: an I/O thread, or a thread
/// failing records in `close`.
fn in_callback_context() -> bool {
    in_io_thread() || IN_CLOSE.with(Cell::get)
}

/// Marks this thread as closing until dropped.
struct ClosingGuard(bool);

impl ClosingGuard {
    fn enter() -> Self {
        ClosingGuard(IN_CLOSE.with(|c| c.replace(true)))
    }
}

impl Drop for ClosingGuard {
    fn drop(&mut self) {
        IN_CLOSE.with(|c| c.set(self.0));
    }
}

/// Scratch buffers larger than this are shrunk after use.
const SCRATCH_KEEP: usize = 1 << 20;

struct Inner {
    cfg: Arc<ProducerConfig>,
    accumulator: Arc<RecordAccumulator>,
    metadata: Arc<Metadata>,
    io: Io,
    round_robin: RoundRobinPartitioner,
    /// The phase every component shares; `send` refuses once closing.
    lifecycle: Arc<Lifecycle>,
    /// Serializes `close` calls; holds true once the threads are joined.
    /// Not a phase: only `close` and `drop` read it.
    joined: Mutex<bool>,
    /// With `transactional.id`: the transaction state and thread.
    txn: Option<Arc<TransactionManager>>,
    /// The sensors the accumulator and the I/O threads record into.
    metrics: Arc<Metrics>,
    /// With `statistics.interval.ms`: the thread that calls the
    /// statistics callback, set once right after `Inner` is made (it holds
    /// `Inner` weakly); stopped by `close`.
    stats: std::sync::OnceLock<StatsThread>,
}

impl Inner {
    fn metrics(&self) -> MetricsSnapshot {
        let pool = self.accumulator.pool().gauges();
        self.metrics.snapshot(&self.cfg.client_id, pool)
    }
}

/// A Kafka producer, typed by what its key and value serializers take.
///
/// `Producer<str, str>` sends `ProducerRecord<String, String>`,
/// `ProducerRecord<&str, &str>`, `&String` and any other key and value that
/// is [`Data<str>`](Data); `Producer<[u8], [u8]>` (the default) sends byte
/// vectors, arrays and slices.
///
/// ```no_run
/// use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};
///
/// let config = ProducerConfig::new().bootstrap_servers("localhost:9092");
/// let producer = Producer::new(config, StringSerializer, StringSerializer)?;
/// // Wait for the broker's answer ...
/// let meta = producer.send(ProducerRecord::with_key("orders", "id-1", "created"))?.get()?;
/// println!("written at {meta}");
/// // ... or don't.
/// producer.send_with_callback(ProducerRecord::new("orders", "shipped"), |r| {
///     if let Err(e) = r { eprintln!("delivery failed: {e}") }
/// })?;
/// producer.close()?;
/// # Ok::<(), kafka_producer::Error>(())
/// ```
///
/// # About threads
///
/// * `Producer` is `Send + Sync`: share it (`Arc<Producer>` or a reference
///   in scoped threads) and send from as many threads as you like.
/// * `send` blocks only while it waits for the topic's metadata or for room
///   in `buffer.memory`, and never longer than `max.block.ms` in all. It
///   returns once the record is encoded into its batch.
/// * One I/O thread per broker (named `<client.id>-b<node id>`) writes
///   requests and reads responses, and one metadata thread
///   (`<client.id>-meta`) keeps the cluster view fresh.
/// * Callbacks run before the record's [`RecordFuture`] resolves, on the
///   I/O thread of the partition's leader (in record order per partition),
///   on the metadata thread for a record that expired while its partition
///   had no leader, or on the thread calling `close` for records it fails.
///   A slow callback delays every partition that broker leads; do heavy
///   work elsewhere, and never wait in a callback for another record. A
///   panicking callback is caught and logged.
/// * Inside a callback, `send` and `partitions_for` do not block (they fail
///   at once if they would have to wait, as if `max.block.ms` were 0: a
///   callback waiting for memory only its own thread can free would
///   stall), `flush` is refused, and `close` does not wait.
pub struct Producer<K: ?Sized = [u8], V: ?Sized = [u8]> {
    inner: Arc<Inner>,
    key_serializer: Box<dyn Serializer<K>>,
    value_serializer: Box<dyn Serializer<V>>,
    /// [`with_interceptor`](Producer::with_interceptor)'s, in order.
    interceptors: Interceptors<K, V>,
}

impl<K: ?Sized, V: ?Sized> std::fmt::Debug for Producer<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("client_id", &self.inner.cfg.client_id)
            .field("closed", &self.inner.lifecycle.is_closing())
            .finish()
    }
}

impl<K: ?Sized, V: ?Sized> Producer<K, V> {
    /// Validates `config` and starts the producer's threads. No broker is
    /// contacted until the first `send` or `partitions_for`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] or [`Error::NotSupportedYet`] if the configuration
    /// is invalid, including a `key.serializer`/`value.serializer`
    /// property that names a different serializer than the one passed.
    pub fn new(
        config: ProducerConfig,
        key_serializer: impl Serializer<K> + 'static,
        value_serializer: impl Serializer<V> + 'static,
    ) -> Result<Self> {
        let cfg = config.validate()?;
        for (key, wanted, given) in [
            (
                "key.serializer",
                cfg.key_serializer,
                key_serializer.java_class(),
            ),
            (
                "value.serializer",
                cfg.value_serializer,
                value_serializer.java_class(),
            ),
        ] {
            if let Some(w) = wanted {
                if given != Some(w) {
                    return Err(Error::config(
                        key,
                        format!(
                            "names {w}, but the serializer passed to Producer::new is {}",
                            given.unwrap_or("a custom one")
                        ),
                    ));
                }
            }
        }
        resolve_bootstrap(&cfg.bootstrap_servers)?;
        // The record timestamps' counter calibrates here (0.6 ms, once per
        // process), not in the first send.
        crate::util::calibrate_clock();
        let cfg = Arc::new(cfg);
        let lifecycle = Arc::new(Lifecycle::default());
        let metrics = Arc::new(Metrics::new(cfg.metrics_windows()));
        let accumulator = Arc::new(RecordAccumulator::with_metrics(
            AccumulatorConfig::of(&cfg),
            lifecycle.clone(),
            metrics.clone(),
        ));
        let metadata = Arc::new(Metadata::new(lifecycle.clone()));
        // Before any I/O thread can drain: the accumulator gets its hooks.
        let txn = match cfg.transactional_id {
            Some(_) => Some(TransactionManager::start(
                cfg.clone(),
                accumulator.clone(),
                metadata.clone(),
            )?),
            None => None,
        };
        let io = Io::start(
            cfg.clone(),
            accumulator.clone(),
            metadata.clone(),
            lifecycle.clone(),
        )?;
        let stats_callback = cfg.statistics_callback.clone();
        let inner = Arc::new(Inner {
            cfg,
            accumulator,
            metadata,
            io,
            round_robin: RoundRobinPartitioner::new(),
            lifecycle,
            joined: Mutex::new(false),
            txn,
            metrics,
            stats: std::sync::OnceLock::new(),
        });
        if let Some(cb) = stats_callback {
            // Weakly: a producer dropped without `close` still closes
            // (and stops the thread).
            let weak = Arc::downgrade(&inner);
            let started = StatsThread::start(
                format!("{}-stats", inner.cfg.client_id),
                inner.cfg.statistics_interval,
                cb.0,
                move || weak.upgrade().map(|i| i.metrics()),
            );
            match started {
                Ok(t) => {
                    let _ = inner.stats.set(t);
                }
                Err(e) => log::error!("cannot start the statistics thread: {e}"),
            }
        }
        Ok(Producer {
            inner,
            key_serializer: Box::new(key_serializer),
            value_serializer: Box::new(value_serializer),
            interceptors: Interceptors::default(),
        })
    }

    /// Adds an interceptor (Java's `interceptor.classes`, which cannot load
    /// Java classes here): its `on_send` sees every record after those of
    /// the interceptors added before it, and its `on_acknowledgement` every
    /// outcome, in the same order. See [`ProducerInterceptor`] for what a
    /// failing interceptor does.
    ///
    /// ```no_run
    /// use kafka_producer::{InterceptedRecord, InterceptorError, Producer, ProducerConfig};
    /// use kafka_producer::{ProducerInterceptor, StringSerializer};
    ///
    /// struct RequireKey;
    /// impl ProducerInterceptor<str, str> for RequireKey {
    ///     fn on_send(&self, r: &mut InterceptedRecord<'_, str, str>) -> Result<(), InterceptorError> {
    ///         match r.key() {
    ///             Some(_) => Ok(()),
    ///             None => Err(InterceptorError::Reject("records need a key".into())),
    ///         }
    ///     }
    /// }
    ///
    /// let config = ProducerConfig::new().bootstrap_servers("localhost:9092");
    /// let producer = Producer::new(config, StringSerializer, StringSerializer)?
    ///     .with_interceptor(RequireKey);
    /// # Ok::<(), kafka_producer::Error>(())
    /// ```
    #[must_use]
    pub fn with_interceptor(
        mut self,
        interceptor: impl ProducerInterceptor<K, V> + 'static,
    ) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// A snapshot of the producer's metrics, by Java's names: the
    /// `producer-metrics` group, `producer-topic-metrics` per topic and
    /// `producer-node-metrics` per broker. See the README's "Metrics" for
    /// the list and how rates and averages are computed.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics()
    }

    /// The client id (`client.id`, or the generated `producer-N`).
    pub fn client_id(&self) -> &str {
        &self.inner.cfg.client_id
    }

    /// Sends a record: waits for its topic's metadata if needed, serializes
    /// it, picks its partition and appends it to a batch. Returns a handle
    /// to wait on; drop it to fire and forget.
    ///
    /// Every record `send` accepts (returns `Ok` for) gets exactly one
    /// outcome: success, or an error when it cannot be delivered within
    /// `delivery.timeout.ms` or the producer is closed first.
    ///
    /// # Errors
    ///
    /// The record was not accepted (and will not be sent) if:
    /// [`Error::InvalidTimestamp`] (a negative timestamp, which Java's
    /// `ProducerRecord` refuses), [`Error::Serialization`],
    /// [`Error::InvalidPartition`], [`Error::RecordTooLarge`] (larger than
    /// `max.request.size` or `buffer.memory`), [`Error::MetadataTimeout`]
    /// (topic or partition not in metadata within `max.block.ms`),
    /// [`Error::BufferExhausted`] (no room in `buffer.memory` within
    /// `max.block.ms`), [`Error::Rejected`] (by an interceptor), [`Error::Broker`] for a topic metadata refuses
    /// (authorization, invalid name), [`Error::Authentication`] (the
    /// metadata fetch could not authenticate: TLS refused, at once rather
    /// than after `max.block.ms`), or [`Error::Closed`]. Unlike Java,
    /// these come back from `send` itself rather than through the handle or
    /// callback.
    pub fn send<KB, VB>(&self, record: ProducerRecord<'_, KB, VB>) -> Result<RecordFuture>
    where
        KB: Data<K>,
        VB: Data<V>,
    {
        self.route::<KB, VB, fn(Result<RecordMetadata>)>(record, None)
    }

    /// Like [`send`](Self::send), and runs `callback` with the record's
    /// outcome on the I/O thread when it is known. If `send_with_callback`
    /// returns an error, the callback is dropped without being called.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_with_callback<KB, VB, F>(
        &self,
        record: ProducerRecord<'_, KB, VB>,
        callback: F,
    ) -> Result<RecordFuture>
    where
        KB: Data<K>,
        VB: Data<V>,
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        self.route(record, Some(callback))
    }

    /// Both sends: the record as interceptors see it, then straight to
    /// `do_send` without interceptors, or through them.
    fn route<KB, VB, F>(
        &self,
        record: ProducerRecord<'_, KB, VB>,
        callback: Option<F>,
    ) -> Result<RecordFuture>
    where
        KB: Data<K>,
        VB: Data<V>,
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        let (key, value) = (record.key.as_ref(), record.value.as_ref());
        let rec = InterceptedRecord::new(
            record.topic,
            record.partition,
            record.timestamp,
            record.headers,
            key.map(Data::data),
            value.map(Data::data),
        );
        let sent = if self.interceptors.is_empty() {
            match callback {
                None => self.do_send(rec, &mut NoCallback),
                Some(f) => {
                    // Kept unboxed: the batch stores closures by type (no
                    // allocation per record, see `accumulator/callbacks.rs`).
                    let mut pending = Pending(Some(f));
                    self.do_send(rec, &mut pending)
                }
            }
        } else {
            self.intercepted(rec, |acks, topic| {
                Pending(Some(move |r: Result<RecordMetadata>| {
                    acks.on_acknowledgement(&topic, &r);
                    if let Some(f) = callback {
                        f(r);
                    }
                }))
            })
        };
        if let Err(e) = &sent {
            // As Java's `doSend`: every refusal counts in
            // `record-error-total` (producer-wide, not the topic's) but
            // those Java raises as IllegalStateException (closed, a wrong
            // transaction state) or before `doSend` (a negative timestamp,
            // in ProducerRecord's constructor).
            if !matches!(
                e,
                Error::Closed | Error::InvalidOperation(_) | Error::InvalidTimestamp { .. }
            ) {
                self.inner.metrics.on_send_refused();
            }
        }
        sent
    }

    /// `send` through the interceptors: `on_send`, then the send with the
    /// callback `wrap` makes (it runs `on_acknowledgement` first), or, if
    /// the record is refused before it is appended, `on_acknowledgement`
    /// with the error here (the callback is then dropped uncalled).
    fn intercepted<F>(
        &self,
        mut rec: InterceptedRecord<'_, K, V>,
        wrap: impl FnOnce(Acks, Arc<str>) -> Pending<F>,
    ) -> Result<RecordFuture>
    where
        Pending<F>: Register,
    {
        let acks = self.interceptors.acks();
        if let Err(e) = self.interceptors.on_send(&mut rec) {
            acks.on_acknowledgement(&rec.topic, &Err(e.clone()));
            return Err(e);
        }
        let topic: Arc<str> = Arc::from(&*rec.topic);
        let mut pending = wrap(acks.clone(), topic.clone());
        let sent = self.do_send(rec, &mut pending);
        if let Err(e) = &sent {
            acks.on_acknowledgement(&topic, &Err(e.clone()));
        }
        sent
    }

    fn do_send<C: Register>(
        &self,
        mut record: InterceptedRecord<'_, K, V>,
        callback: &mut C,
    ) -> Result<RecordFuture> {
        let inner = &*self.inner;
        // Java refuses this when the record is built, before any check of
        // the producer.
        if let Some(timestamp) = record.timestamp.filter(|t| *t < 0) {
            return Err(Error::InvalidTimestamp {
                topic: record.topic.into_owned(),
                timestamp,
            });
        }
        if inner.lifecycle.is_closing() {
            return Err(Error::Closed);
        }
        if let Some(txn) = &inner.txn {
            txn.check_send()?;
        }
        // The clock is read once per record, for its timestamp and the
        // topic's last use; max.block.ms reads it only if send must wait.
        let now_ms = crate::util::now_ms();
        let budget = Budget::new(self.max_block());
        let partitioner: Option<&dyn Partitioner> = match &inner.cfg.partitioner {
            _ if record.partition.is_some() => None,
            PartitionerChoice::Custom(p) => Some(&**p),
            PartitionerChoice::RoundRobin => Some(&inner.round_robin),
            PartitionerChoice::BuiltIn => None,
        };
        // The common case first: this thread's last topic, current, with
        // the built-in partitioner. Its queues and layout are borrowed from
        // the thread's cache, so no reference count moves (each would be
        // an atomic write to a line every sending thread shares).
        if partitioner.is_none() {
            // The name is lent to the lookup (the rest of `send` names the
            // topic by its queues' name) and put back for the slow path.
            let name = std::mem::take(&mut record.topic);
            let hit = inner.accumulator.with_cached(&name, |t, layout, sticky| {
                let in_range = |p: i32| p >= 0 && (p as usize) < layout.partitions.len();
                if !t.registered.load(Ordering::Acquire) || !record.partition.is_none_or(in_range) {
                    return None; // the slow path renews or refuses it
                }
                // Keyless records follow this thread's own sticky
                // partition here (see `accumulator/sticky.rs`).
                Some(self.append_found(
                    &mut record,
                    &mut *callback,
                    (t, layout, StickyRef::Local(sticky)),
                    None,
                    now_ms,
                    &budget,
                ))
            });
            if let Some(Some(sent)) = hit {
                return sent;
            }
            record.topic = name;
        }
        // A partitioner sees a cluster snapshot that describes the topic,
        // taken before the layout (see `wait_on_metadata`), so any
        // partition it can see exists in the layout we index.
        let (topic_queues, layout, cluster) = self.wait_on_metadata(
            &record.topic,
            record.partition,
            partitioner.is_some(),
            &budget,
        )?;
        let custom = partitioner.zip(cluster.as_deref());
        self.append_found(
            &mut record,
            callback,
            (&topic_queues, &layout, StickyRef::Topic),
            custom,
            now_ms,
            &budget,
        )
    }

    /// The rest of `send`, once the topic's queues and layout are found,
    /// with the sticky state its keyless records follow (and, for a custom
    /// or round-robin partitioner, `custom`: it and the cluster it sees):
    /// serializes the record, picks its partition and appends it.
    fn append_found<C: Register>(
        &self,
        record: &mut InterceptedRecord<'_, K, V>,
        callback: &mut C,
        (topic_queues, layout, sticky): (&TopicQueues, &Layout, StickyRef<'_>),
        custom: Option<(&dyn Partitioner, &Cluster)>,
        now_ms: i64,
        budget: &Budget,
    ) -> Result<RecordFuture> {
        let inner = &*self.inner;
        inner.accumulator.mark_used(topic_queues, now_ms);
        let topic: &str = &topic_queues.name;

        SCRATCH.with(|cell| {
            let mut fallback = (Vec::new(), Vec::new());
            let mut borrowed = cell.try_borrow_mut();
            let (key_buf, value_buf) = match borrowed.as_deref_mut() {
                Ok(s) => s,
                Err(_) => &mut fallback, // re-entered from a serializer
            };
            key_buf.clear();
            value_buf.clear();
            let (wanted_partition, timestamp) = (record.partition, record.timestamp);
            let (headers, key, value) = record.parts_mut();
            let key = match key {
                Some(k) => Some(
                    self.key_serializer
                        .serialize(topic, headers, k, key_buf)
                        .map_err(|e| serialization(RecordPart::Key, e))?,
                ),
                None => None,
            };
            let value = match value {
                Some(v) => Some(
                    self.value_serializer
                        .serialize(topic, headers, v, value_buf)
                        .map_err(|e| serialization(RecordPart::Value, e))?,
                ),
                None => None,
            };
            let headers = &headers[..];
            let fixed_size = record_fixed_size(
                key,
                value,
                headers.iter().map(|h| (h.key.as_str(), h.value.as_deref())),
            );
            let size = RECORD_BATCH_OVERHEAD + record_size_upper_bound(fixed_size);
            if size > inner.cfg.max_request_size {
                return Err(Error::RecordTooLarge {
                    size,
                    limit: inner.cfg.max_request_size,
                    setting: "max.request.size",
                });
            }
            if size > inner.cfg.buffer_memory {
                return Err(Error::RecordTooLarge {
                    size,
                    limit: inner.cfg.buffer_memory,
                    setting: "buffer.memory",
                });
            }
            let count = layout.partitions.len();
            let partition = match (wanted_partition, custom) {
                (Some(p), _) => Some(p),
                (None, Some((p, cluster))) => {
                    Some(custom_partition(p, cluster, topic, key, value, count)?)
                }
                (None, None) => match key {
                    Some(k) if !inner.cfg.partitioner_ignore_keys => {
                        Some(murmur2_partition(k, count))
                    }
                    _ => None, // uniform sticky
                },
            };
            let parts = RecordParts {
                key,
                value,
                headers,
                timestamp: timestamp.unwrap_or(now_ms),
                fixed_size,
            };
            let key_size = key.map_or(-1, |k| k.len() as i32);
            let value_size = value.map_or(-1, |v| v.len() as i32);
            let r = inner.accumulator.append(
                topic_queues,
                layout,
                partition,
                &parts,
                key_size,
                value_size,
                callback,
                budget,
                sticky,
            );
            if key_buf.capacity() > SCRATCH_KEEP {
                *key_buf = Vec::new();
            }
            if value_buf.capacity() > SCRATCH_KEEP {
                *value_buf = Vec::new();
            }
            r
        })
    }

    /// How long a call may block: `max.block.ms`, or nothing inside a
    /// callback, where waiting for memory or metadata that only the
    /// callback's own thread could provide would stall.
    fn max_block(&self) -> Duration {
        if in_callback_context() {
            Duration::ZERO
        } else {
            self.inner.cfg.max_block
        }
    }

    /// Waits until metadata knows `topic` (and `partition`, if given), up to
    /// `deadline` (Java's `waitOnMetadata`).
    ///
    /// With `need_cluster` (a partitioner, or `partitions_for`, will read
    /// the cluster view) it also waits until the published view describes
    /// the topic, and returns that view. A topic idle past
    /// `metadata.max.idle.ms` keeps its queues but leaves the view at the
    /// next refresh; without this wait a partitioner would see a cluster
    /// without the topic (round robin then sent everything to partition 0).
    fn wait_on_metadata(
        &self,
        topic: &str,
        partition: Option<i32>,
        need_cluster: bool,
        budget: &Budget,
    ) -> Result<Found> {
        let inner = &*self.inner;
        if let Some(p) = partition.filter(|p| *p < 0) {
            return Err(Error::InvalidPartition {
                topic: topic.to_owned(),
                message: format!("partition {p} is negative"),
            });
        }
        loop {
            // Read the version first: the metadata thread updates the
            // queues before it bumps the version, so a topic that appears
            // after this read also wakes the wait below.
            let version = inner.metadata.version();
            let known = inner.accumulator.topic_and_layout(topic);
            // A name Kafka refuses never reaches a broker. Only names not
            // yet known are checked: a known one passed already.
            if known.is_none() {
                if let Some(reason) = crate::error::topic_name_problem(topic) {
                    return Err(Error::InvalidTopic {
                        topic: topic.to_owned(),
                        reason,
                    });
                }
            }
            let count = known.as_ref().map(|(_, l)| l.partitions.len());
            let mut cluster = None;
            let mut described = true;
            if let Some((t, _)) = &known {
                let registered = t.registered.load(Ordering::Acquire);
                if need_cluster || !registered {
                    let c = inner.metadata.cluster();
                    described = c.partition_count_for_topic(topic).is_some();
                    cluster = Some(c);
                }
                if !registered {
                    // A topic that went idle is known but no longer
                    // refreshed: ask for it again. It counts as registered
                    // only once the view describes it again; until then the
                    // idle sweep passes it over, so a send waiting here for
                    // its metadata cannot have it dropped again (its last
                    // use is still old).
                    inner.metadata.add_topic(topic);
                    if described {
                        t.registered.store(true, Ordering::Release);
                    }
                }
            }
            let ready = described || !need_cluster;
            let found = match (known, partition) {
                (Some(k), None) if ready => Some(k),
                (Some(k), Some(p)) if ready && (p as usize) < count.unwrap_or(0) => Some(k),
                _ => None,
            };
            if let Some((t, layout)) = found {
                return Ok(match cluster.filter(|_| need_cluster) {
                    // The layout read again after the snapshot (the
                    // metadata thread updates layouts before it publishes
                    // a view), so every partition the snapshot shows a
                    // partitioner exists in the layout `send` indexes.
                    Some(c) => {
                        let layout = t.layout();
                        (t, layout, Some(c))
                    }
                    None => (t, layout, None),
                });
            }
            if let Some(code) = inner.metadata.cluster().topic_error(topic) {
                if matches!(
                    code,
                    ErrorCode::TOPIC_AUTHORIZATION_FAILED | ErrorCode::INVALID_TOPIC_EXCEPTION
                ) {
                    return Err(Error::Broker {
                        code,
                        topic: topic.to_owned(),
                        partition: partition.unwrap_or(-1),
                        message: Some("in the metadata response".into()),
                    });
                }
            }
            if inner.lifecycle.is_closing() {
                return Err(Error::Closed);
            }
            // TLS refused: fail now, as Java's AuthenticationException.
            if let Some(e) = inner.metadata.auth_error() {
                inner.metadata.add_topic(topic);
                return Err(e);
            }
            inner.metadata.add_topic(topic);
            if count.is_some() {
                inner.metadata.request_update(); // the partition is missing
            }
            let deadline = budget.deadline();
            if Instant::now() >= deadline {
                let waited_ms = budget.start().elapsed().as_millis() as u64;
                return Err(Error::MetadataTimeout {
                    topic: topic.to_owned(),
                    partition,
                    partition_count: count,
                    waited_ms,
                    last_error: inner.metadata.last_error(),
                });
            }
            inner.metadata.await_update(version, deadline);
        }
    }

    /// The partitions of `topic`, waiting up to `max.block.ms` for its
    /// metadata (Java's `partitionsFor`).
    ///
    /// # Errors
    ///
    /// [`Error::MetadataTimeout`], [`Error::Closed`] once `close` has
    /// begun, [`Error::InvalidTopic`], [`Error::Authentication`] (at once,
    /// as `send`), or [`Error::Broker`] for a topic metadata refuses.
    pub fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionInfo>> {
        // As Java's: closed is closed, known topic or not.
        if self.inner.lifecycle.is_closing() {
            return Err(Error::Closed);
        }
        let (queues, _, cluster) =
            self.wait_on_metadata(topic, None, true, &Budget::new(self.max_block()))?;
        let cluster = cluster.unwrap_or_else(|| self.inner.metadata.cluster());
        // As Java: asking for a topic's partitions keeps it from going idle.
        self.inner
            .accumulator
            .mark_used(&queues, crate::util::now_ms());
        Ok(cluster.partitions_for_topic(topic).to_vec())
    }

    /// The transaction manager, for a transactional call named `op`.
    fn txn(&self, op: &str) -> Result<&TransactionManager> {
        let inner = &*self.inner;
        let Some(txn) = inner.txn.as_deref() else {
            return Err(Error::InvalidOperation(format!(
                "{op}: transactional method invoked on a non-transactional producer (set \
                 transactional.id)"
            )));
        };
        if inner.lifecycle.is_closing() {
            return Err(Error::Closed);
        }
        if in_callback_context() {
            return Err(Error::InvalidOperation(format!(
                "{op}() inside a send callback would deadlock"
            )));
        }
        Ok(txn)
    }

    /// Java's `initTransactions`: finds the transaction coordinator of
    /// `transactional.id` and gets a producer id and epoch from it, which
    /// fences any older producer with the same id (its later calls and
    /// sends fail with [`Error::TransactionFatal`]) and aborts a
    /// transaction it left open. Call it once, before any other
    /// transactional call or `send`.
    ///
    /// Blocks at most `max.block.ms`. If that runs out, the call returns
    /// [`Error::TransactionTimeout`] and the initialization goes on: call
    /// `init_transactions` again to wait for it.
    ///
    /// ```no_run
    /// use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};
    ///
    /// let config = ProducerConfig::new()
    ///     .bootstrap_servers("localhost:9092")
    ///     .transactional_id("orders-writer-1");
    /// let producer = Producer::new(config, StringSerializer, StringSerializer)?;
    /// producer.init_transactions()?;
    /// producer.begin_transaction()?;
    /// producer.send(ProducerRecord::new("orders", "created"))?;
    /// producer.send(ProducerRecord::new("audit", "order created"))?;
    /// producer.commit_transaction()?; // both or neither, for read_committed consumers
    /// # Ok::<(), kafka_producer::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] on a producer without `transactional.id`,
    /// when called twice, or from a send callback;
    /// [`Error::TransactionTimeout`]; [`Error::TransactionFatal`] (not
    /// authorized for the id, an unsupported broker, an invalid
    /// `transaction.timeout.ms`); [`Error::Closed`].
    pub fn init_transactions(&self) -> Result<()> {
        let txn = self.txn("init_transactions")?;
        txn.init(later(Instant::now(), self.inner.cfg.max_block))
    }

    /// Java's `beginTransaction`: opens a transaction; records sent from
    /// now until `commit_transaction` or `abort_transaction` belong to it.
    /// Local: no broker is asked (partitions join the transaction as their
    /// first batch is about to be sent).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] before `init_transactions` completed,
    /// while a transaction is open, on a non-transactional producer, or
    /// while a timed-out call must be retried; [`Error::TransactionFatal`];
    /// [`Error::Closed`].
    pub fn begin_transaction(&self) -> Result<()> {
        self.txn("begin_transaction")?.begin()
    }

    /// Java's `sendOffsetsToTransaction`: commits consumed offsets of
    /// `group` as part of the open transaction, so that they become visible
    /// exactly when (and if) its records do: AddOffsetsToTxn to the
    /// transaction coordinator, then TxnOffsetCommit to the group
    /// coordinator. Each offset is that of the next record to consume.
    ///
    /// ```no_run
    /// # use kafka_producer::{ConsumerGroupMetadata, Producer};
    /// # fn f(producer: &Producer) -> kafka_producer::Result<()> {
    /// let group = ConsumerGroupMetadata::new("billing");
    /// producer.send_offsets_to_transaction(&[("payments", 0, 1042), ("payments", 1, 977)], &group)?;
    /// # Ok(()) }
    /// ```
    ///
    /// Blocks at most `max.block.ms`; a [`Error::TransactionTimeout`] is
    /// resumed by calling it again.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] outside a transaction (or with an empty
    /// group id); [`Error::TransactionAbortable`] (the group coordinator
    /// refused it: a consumer fenced from its group, not authorized, ...):
    /// abort the transaction; [`Error::TransactionFatal`];
    /// [`Error::TransactionTimeout`]; [`Error::Closed`].
    pub fn send_offsets_to_transaction<I, O>(
        &self,
        offsets: I,
        group: &ConsumerGroupMetadata,
    ) -> Result<()>
    where
        I: IntoIterator<Item = O>,
        O: Into<OffsetToCommit>,
    {
        let txn = self.txn("send_offsets_to_transaction")?;
        let offsets = offsets.into_iter().map(Into::into).collect();
        txn.send_offsets(
            offsets,
            group,
            later(Instant::now(), self.inner.cfg.max_block),
        )
    }

    /// Java's `commitTransaction`: sends every buffered record of the
    /// transaction and waits for all of them (as `flush`); if each was
    /// delivered, ends the transaction with a commit (EndTxn), which makes
    /// its records and offsets visible to `read_committed` consumers.
    ///
    /// Blocks at most `max.block.ms`. On [`Error::TransactionTimeout`] call
    /// it again: it resumes the commit (or its flush) where it stands.
    ///
    /// # Errors
    ///
    /// [`Error::TransactionAbortable`] if a record of the transaction was
    /// not delivered or the coordinator refused the commit: call
    /// `abort_transaction`, then begin a new transaction;
    /// [`Error::TransactionFatal`] (fenced by a newer producer with the same
    /// `transactional.id`, or the coordinator aborted the transaction
    /// after `transaction.timeout.ms` and bumped the epoch);
    /// [`Error::InvalidOperation`] with no open transaction;
    /// [`Error::TransactionTimeout`]; [`Error::Closed`].
    pub fn commit_transaction(&self) -> Result<()> {
        let txn = self.txn("commit_transaction")?;
        txn.commit(later(Instant::now(), self.inner.cfg.max_block))
    }

    /// Java's `abortTransaction`: fails the transaction's records still
    /// buffered (their handles and callbacks get [`Error::Aborted`]), waits
    /// for those already sent, then ends the transaction with an abort
    /// (EndTxn): `read_committed` consumers never see its records. Then a
    /// new transaction may begin. Call it after a
    /// [`Error::TransactionAbortable`].
    ///
    /// Blocks at most `max.block.ms`; a [`Error::TransactionTimeout`] is
    /// resumed by calling it again.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] with no open transaction;
    /// [`Error::TransactionFatal`]; [`Error::TransactionTimeout`];
    /// [`Error::Closed`].
    pub fn abort_transaction(&self) -> Result<()> {
        let txn = self.txn("abort_transaction")?;
        txn.abort(later(Instant::now(), self.inner.cfg.max_block))
    }

    /// Makes every buffered record sendable at once (ignoring `linger.ms`)
    /// and blocks until all records sent before this call have completed,
    /// successfully or not. Records sent meanwhile by other threads are not
    /// waited for.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOperation`] when called from a send callback, where
    /// it would wait for its own thread.
    pub fn flush(&self) -> Result<()> {
        if in_callback_context() {
            return Err(Error::InvalidOperation(
                "flush() inside a send callback would deadlock".into(),
            ));
        }
        let acc = &self.inner.accumulator;
        let mark = acc.begin_flush();
        acc.await_flush(mark);
        Ok(())
    }

    /// Closes the producer, waiting as long as it takes for every record
    /// already sent to complete. Equivalent to Java's `close()`, which waits
    /// without limit; each record is still bounded by `delivery.timeout.ms`.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for close-time failures.
    pub fn close(&self) -> Result<()> {
        self.close_timeout(Duration::MAX)
    }

    /// Closes the producer: new sends fail with [`Error::Closed`], every
    /// buffered record becomes sendable at once, and this waits up to
    /// `timeout` for them all to complete. Records still incomplete at the
    /// deadline fail with [`Error::Aborted`], so none is left without an
    /// outcome. Then the I/O threads stop. Calling it again (or from several
    /// threads) is harmless.
    ///
    /// From a send callback, it behaves like `close_timeout(0)` and does not
    /// wait for the I/O threads (Java does the same).
    ///
    /// A transactional producer with a transaction open aborts it first (as
    /// Java's does): its buffered records fail with [`Error::Aborted`], and
    /// the EndTxn(abort) waits at most `timeout` and `max.block.ms`. A
    /// commit or abort already under way on another thread is waited for,
    /// up to `timeout`, as Java's sender finishes its transactional
    /// requests before it stops.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for close-time failures.
    pub fn close_timeout(&self, timeout: Duration) -> Result<()> {
        let inner = &*self.inner;
        let deadline = later(Instant::now(), timeout);
        inner.io.close();
        if in_callback_context() {
            // Java: close() from a callback is close(0), and it does not
            // wait for the I/O threads (this may be one of them, or the
            // thread of a close already failing records).
            log::warn!("close() called from a send callback: closing without waiting");
            self.abort_all(None);
            inner.io.stop();
            if let Some(stats) = inner.stats.get() {
                stats.stop(false); // its callback may be waiting for this thread
            }
            return Ok(());
        }
        // Records failed below run their callbacks on this thread.
        let _closing = ClosingGuard::enter();
        // As Java's: a transaction left open is aborted, not left to the
        // coordinator's timeout (read_committed readers wait for it).
        if let Some(txn) = &inner.txn {
            txn.abort_on_close(deadline.min(later(Instant::now(), inner.cfg.max_block)));
        }
        // No lock is held while waiting: a later, shorter close on another
        // thread can still abort what this one is waiting for.
        // Past the deadline, threads get this long to fail what they hold
        // and to exit; close returns then, whatever they are doing.
        let grace = later(deadline, CLOSE_GRACE).max(later(Instant::now(), CLOSE_GRACE));
        if !inner.accumulator.await_all_complete(deadline) {
            log::warn!(
                "close timed out with {} batches incomplete; failing them",
                inner.accumulator.incomplete_count()
            );
            self.abort_all(Some(grace));
        }
        // Nothing needs the coordinators any more (every batch is done or
        // failed): the transaction thread may go. A transaction the abort
        // above could not end is left to the coordinator, which aborts it
        // after `transaction.timeout.ms`, or to the next producer with the
        // same id, whose `init_transactions` aborts it.
        if let Some(txn) = &inner.txn {
            txn.shutdown();
        }
        if let Some(stats) = inner.stats.get() {
            stats.stop(true);
        }
        let mut joined = inner.joined.lock();
        if *joined {
            return Ok(());
        }
        // From here a failed batch is not retried (`Stopped` is an abort
        // too), the pool refuses, and the threads are stopping.
        inner.io.stop();
        // Threads finish their in-flight requests (none after a clean
        // drain) and exit at once; one stuck opening a connection holds no
        // batch and is detached, at the deadline (plus the grace) at the
        // latest, and not later than 2 s from now for a long timeout.
        inner
            .io
            .join(grace.min(later(Instant::now(), Duration::from_secs(2))));
        // Nothing can be queued now (appends stopped at `Closing`, retries
        // at `Stopped`), but sweep in case a send's batch landed as the
        // threads stopped.
        inner.accumulator.abort_queued(None, &Error::aborted());
        *joined = true;
        Ok(())
    }

    /// Fails every queued batch and tells the I/O threads to fail what they
    /// hold; with `wait_until`, waits (at most until then) for them and
    /// sweeps the queues once more.
    fn abort_all(&self, wait_until: Option<Instant>) {
        let inner = &*self.inner;
        let err = Error::aborted();
        inner.io.abort(&err);
        if let Some(t) = wait_until {
            inner.accumulator.await_all_complete(t);
            inner.accumulator.abort_queued(None, &err);
        }
    }
}

impl<K: ?Sized, V: ?Sized> Drop for Producer<K, V> {
    /// Closes gracefully, waiting at most `delivery.timeout.ms` (by then
    /// every record has its outcome anyway). Unlike rust-rdkafka, which
    /// purges its queue on drop, nothing buffered is discarded unsent.
    fn drop(&mut self) {
        if !*self.inner.joined.lock() {
            let t = self.inner.cfg.delivery_timeout;
            let waiting = self.inner.accumulator.incomplete_count();
            if waiting > 0 && !in_callback_context() {
                log::warn!(
                    "producer {} dropped while {waiting} batch(es) wait for delivery: waiting up \
                     to delivery.timeout.ms ({} ms) for them; call close_timeout to choose how \
                     long",
                    self.inner.cfg.client_id,
                    t.as_millis()
                );
            }
            let _ = self.close_timeout(t);
        }
    }
}

/// As Java's `ClientUtils.parseAndValidateAddresses`: a producer none of
/// whose bootstrap addresses resolves can never reach a cluster, so
/// `Producer::new` fails and says why for each.
fn resolve_bootstrap(servers: &[String]) -> Result<()> {
    use std::net::ToSocketAddrs;
    let mut why = Vec::new();
    for s in servers {
        let (host, port) = crate::config::parse_host_port(s)?;
        match (host.as_str(), port).to_socket_addrs() {
            Ok(addrs) => {
                if addrs.count() > 0 {
                    return Ok(());
                }
                why.push(format!("{s}: no address"));
            }
            Err(e) => why.push(format!("{s}: {e}")),
        }
    }
    Err(Error::config(
        "bootstrap.servers",
        format!("no bootstrap address resolves ({})", why.join("; ")),
    ))
}

/// How long past its deadline `close_timeout` lets the I/O threads fail
/// what they hold and exit before it returns.
const CLOSE_GRACE: Duration = Duration::from_millis(20);

/// Asks a partitioner, and checks its answer against the `count`
/// partitions the layout has.
/// What `wait_on_metadata` found: the topic's queues, their layout, and the
/// cluster snapshot when a partitioner needs one.
type Found = (Arc<TopicQueues>, Arc<Layout>, Option<Arc<Cluster>>);

fn custom_partition(
    partitioner: &dyn Partitioner,
    cluster: &Cluster,
    topic: &str,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    count: usize,
) -> Result<i32> {
    let p = partitioner.partition(topic, key, value, cluster);
    if p < 0 || p as usize >= count {
        return Err(Error::InvalidPartition {
            topic: topic.to_owned(),
            message: format!("the partitioner returned {p}; the topic has {count} partitions"),
        });
    }
    Ok(p)
}

fn serialization(part: RecordPart, e: crate::serialize::SerializeError) -> Error {
    Error::Serialization {
        part,
        source: Arc::from(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    /// Compile-time check: the key and value types users reach for.
    #[allow(dead_code)]
    fn accepted_record_types(
        s: &Producer<str, str>,
        b: &Producer<[u8], [u8]>,
        n: &Producer<i64, str>,
    ) -> Result<()> {
        let (k, v) = (String::from("k"), String::from("v"));
        s.send(ProducerRecord::with_key("t", &k, &v))?;
        s.send(ProducerRecord::with_key("t", k.as_str(), v.clone()))?;
        s.send(ProducerRecord::new("t", std::borrow::Cow::Borrowed("v")))?;
        s.send(ProducerRecord::tombstone("t", &k))?;
        let bytes = vec![1u8, 2];
        b.send(ProducerRecord::with_key("t", &bytes, [1u8, 2, 3]))?;
        b.send(ProducerRecord::new("t", &b"literal"[..]))?;
        b.send(ProducerRecord::new("t", b"array ref"))?;
        n.send(ProducerRecord::with_key("t", 42i64, "v"))?;
        n.send(ProducerRecord::new("t", "keyless"))?;
        Ok(())
    }

    #[test]
    fn negative_timestamps_are_refused_with_a_typed_error() {
        // No broker answers there; a record that got past the check would
        // wait max.block.ms for metadata and fail with MetadataTimeout.
        let config = ProducerConfig::new()
            .bootstrap_servers("127.0.0.1:1")
            .max_block(Duration::from_millis(50));
        let p = Producer::new(config, crate::StringSerializer, crate::StringSerializer).unwrap();
        for ts in [-1, i64::MIN] {
            let e = p
                .send(ProducerRecord::new("events", "v").timestamp(ts))
                .unwrap_err();
            match &e {
                Error::InvalidTimestamp { topic, timestamp } => {
                    assert_eq!((topic.as_str(), *timestamp), ("events", ts));
                }
                _ => panic!("timestamp {ts}: {e:?}"),
            }
            assert!(e.to_string().contains(&ts.to_string()), "{e}");
            assert!(e.to_string().contains("events"), "{e}");
            assert!(!e.is_retriable());
        }
        // Zero and unset are fine: those records get as far as metadata.
        for ts in [Some(0), None] {
            let r =
                ProducerRecord::with_timestamp("events", None, ts, None::<&str>, Some("v"), vec![]);
            let e = p.send(r).unwrap_err();
            assert!(matches!(e, Error::MetadataTimeout { .. }), "{ts:?}: {e:?}");
        }
        // Refused like Java's constructor does, whatever the producer's state.
        p.close().unwrap();
        let e = p
            .send(ProducerRecord::new("events", "v").timestamp(-5))
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidTimestamp { timestamp: -5, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<Producer<str, str>>();
        assert_send_sync::<Producer<[u8], [u8]>>();
        assert_send_sync::<Producer<i64, [u8]>>();
        assert_send_sync::<RecordFuture>();
        assert_send_sync::<Error>();
        assert_send_sync::<ProducerConfig>();
        assert_send_sync::<RecordMetadata>();
    }
}
