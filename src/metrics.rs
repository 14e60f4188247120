//! The producer's metrics: Java's names and groups, a snapshot on demand
//! ([`Producer::metrics`](crate::Producer::metrics)) and, every
//! `statistics.interval.ms`, a statistics callback (librdkafka's
//! `stats_cb`).
//!
//! What it owns: the sensors (one per measured event, each a small window
//! of samples behind its own lock), the registry of per-topic and per-node
//! sensors, and the statistics thread. What it does not: deciding when an
//! event happens. The accumulator (drain, retry, completion, the pool's
//! waits) and the I/O threads (requests, responses, throttling) record
//! where the event happens; see ARCHITECTURE.md, "Metrics".
//!
//! Semantics follow Java's `Sensor`/`SampledStat` (`metrics.num.samples`
//! samples of `metrics.sample.window.ms` each):
//!
//! * a sample takes the values recorded from its start until a window has
//!   passed; then the next sample (the oldest, reset) takes over;
//! * a sample older than `num.samples` windows counts for nothing;
//! * `-avg` is the sum over the live samples divided by their count, NaN
//!   if none (Java's `Avg`); `-max` their maximum, NaN if none;
//! * `-rate` is the sum (or, for a count rate such as `request-rate`, the
//!   count) over the live samples divided by the seconds from the oldest
//!   live sample's start to now, but never fewer than `num.samples - 1`
//!   whole windows (Java's `Rate.windowSize`): with the defaults a rate
//!   covers at least 30 s, so it starts low and settles;
//! * `-total` is cumulative since the producer started.
//!
//! No event on the per-record path of `send` is measured: records are
//! counted per batch when a batch is drained (as Java's
//! `Sender.updateProduceRequestMetrics`), so the cost is one uncontended
//! lock per sensor per batch or request, on the I/O threads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

/// The window configuration: `metrics.sample.window.ms` and
/// `metrics.num.samples`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Windows {
    pub(crate) window_ms: u64,
    pub(crate) samples: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    start_ms: u64,
    count: u64,
    sum: f64,
    max: f64,
}

#[derive(Debug)]
struct SensorInner {
    samples: Vec<Sample>,
    current: usize,
    total_count: u64,
    total_sum: f64,
}

/// Events at one instant, added up (count, sum, max) to be recorded at once
/// ([`Sensor::record_tally`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    count: u64,
    sum: f64,
    max: f64,
}

impl Tally {
    /// One more event of `value`.
    pub(crate) fn add(&mut self, value: f64) {
        self.max = if self.count == 0 {
            value
        } else {
            self.max.max(value)
        };
        self.count += 1;
        self.sum += value;
    }
}

/// What one drain sealed, for [`Metrics::on_drained`]: each sensor is
/// locked once per drain rather than once per batch (with hundreds of
/// small batches per drain, seven locks a batch were a sixth of the I/O
/// thread's work). Every batch of a drain has the same `now`.
#[derive(Default)]
pub(crate) struct DrainTally<'a> {
    records: Tally,
    bytes: Tally,
    /// Each batch's largest record.
    record_size: Tally,
    queue_ms: Tally,
    compression: Tally,
    /// Per topic: records, bytes, compression (usually one topic).
    topics: Vec<(&'a TopicSensors, [Tally; 3])>,
}

impl<'a> DrainTally<'a> {
    /// A batch of `topic`: `records` records, `bytes` bytes, the largest
    /// record `max_record` bytes, queued for `queued`; `compression` its
    /// compressed/uncompressed ratio if sealed now.
    pub(crate) fn add(
        &mut self,
        topic: &'a TopicSensors,
        records: usize,
        bytes: usize,
        max_record: usize,
        queued: Duration,
        compression: Option<f64>,
    ) {
        let (records, bytes) = (records as f64, bytes as f64);
        self.records.add(records);
        self.bytes.add(bytes);
        self.record_size.add(max_record as f64);
        self.queue_ms.add(queued.as_secs_f64() * 1000.0);
        let i = match self
            .topics
            .iter()
            .position(|(t, _)| std::ptr::eq(*t, topic))
        {
            Some(i) => i,
            None => {
                self.topics.push((topic, [Tally::default(); 3]));
                self.topics.len() - 1
            }
        };
        let t = &mut self.topics[i].1;
        t[0].add(records);
        t[1].add(bytes);
        if let Some(c) = compression {
            self.compression.add(c);
            t[2].add(c);
        }
    }
}

/// One measured event: a window of samples (count, sum, max) and totals.
#[derive(Debug)]
pub(crate) struct Sensor {
    windows: Windows,
    epoch: Instant,
    inner: Mutex<SensorInner>,
}

/// What a sensor says at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    /// Sum over the live samples, per second.
    rate: f64,
    /// Events over the live samples, per second.
    count_rate: f64,
    avg: f64,
    max: f64,
    total_sum: f64,
    total_count: u64,
}

impl Sensor {
    fn new(windows: Windows, epoch: Instant) -> Self {
        let samples = windows.samples.max(1);
        Sensor {
            windows,
            epoch,
            inner: Mutex::new(SensorInner {
                samples: vec![Sample::default(); samples],
                current: 0,
                total_count: 0,
                total_sum: 0.0,
            }),
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Records one event of `value` at `now`.
    pub(crate) fn record(&self, value: f64, now: Instant) {
        self.record_tally(
            Tally {
                count: 1,
                sum: value,
                max: value,
            },
            now,
        );
    }

    /// Records the events of `t`, all at `now`: what recording them one by
    /// one would leave, for one lock.
    pub(crate) fn record_tally(&self, t: Tally, now: Instant) {
        if t.count == 0 {
            return;
        }
        let now = self.ms(now);
        let window = self.windows.window_ms.max(1);
        let mut g = self.inner.lock();
        let n = g.samples.len();
        let cur = g.current;
        if now >= g.samples[cur].start_ms + window {
            let next = (cur + 1) % n;
            g.current = next;
            g.samples[next] = Sample {
                start_ms: now,
                ..Sample::default()
            };
        }
        let cur = g.current;
        let s = &mut g.samples[cur];
        s.max = if s.count == 0 {
            t.max
        } else {
            s.max.max(t.max)
        };
        s.count += t.count;
        s.sum += t.sum;
        g.total_count += t.count;
        g.total_sum += t.sum;
    }

    fn read(&self, now: Instant) -> Reading {
        let now = self.ms(now);
        let window = self.windows.window_ms.max(1);
        let g = self.inner.lock();
        let expire = window.saturating_mul(g.samples.len() as u64);
        let live = g
            .samples
            .iter()
            .filter(|s| s.count > 0 && now.saturating_sub(s.start_ms) < expire);
        let (mut count, mut sum, mut max, mut oldest) = (0u64, 0.0f64, f64::NAN, None::<u64>);
        for s in live {
            count += s.count;
            sum += s.sum;
            max = if max.is_nan() { s.max } else { max.max(s.max) };
            oldest = Some(oldest.map_or(s.start_ms, |o| o.min(s.start_ms)));
        }
        // Java's Rate.windowSize: from the oldest sample to now, but at
        // least num.samples - 1 whole windows.
        let elapsed = oldest.map_or(0, |o| now.saturating_sub(o));
        let min_windows = (g.samples.len() as u64).saturating_sub(1);
        let elapsed = elapsed.max(min_windows * window).max(1) as f64 / 1000.0;
        Reading {
            rate: sum / elapsed,
            count_rate: count as f64 / elapsed,
            avg: if count == 0 {
                f64::NAN
            } else {
                sum / count as f64
            },
            max,
            total_sum: g.total_sum,
            total_count: g.total_count,
        }
    }
}

/// What the pool tells the metrics (Java's `BufferPool` sensors and the
/// `buffer-*` gauges).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PoolGauges {
    /// `buffer.memory`.
    pub(crate) total: u64,
    /// Bytes free now, on the free list or not.
    pub(crate) available: u64,
    /// Threads blocked in `allocate` now.
    pub(crate) waiting: u64,
    /// Nanoseconds spent blocked, in total.
    pub(crate) wait_ns: u64,
    /// Allocations that timed out.
    pub(crate) exhausted: u64,
}

/// The sensors of one topic (Java's `producer-topic-metrics`).
#[derive(Debug)]
pub(crate) struct TopicSensors {
    /// Records per drained batch.
    pub(crate) records: Sensor,
    /// Bytes per drained batch.
    pub(crate) bytes: Sensor,
    /// Compressed / uncompressed, per batch sealed.
    pub(crate) compression: Sensor,
    /// Records per batch handed back for a retry.
    pub(crate) retries: Sensor,
    /// Records per batch failed.
    pub(crate) errors: Sensor,
}

/// The sensors of one broker connection (Java's `producer-node-metrics`).
#[derive(Debug)]
pub(crate) struct NodeSensors {
    /// Bytes per request written.
    pub(crate) requests: Sensor,
    /// Bytes per response read.
    pub(crate) responses: Sensor,
    /// Milliseconds from a request's send to its response.
    pub(crate) latency: Sensor,
    /// Requests written and not yet answered, as the I/O thread last went
    /// to sleep (Java's `requests-in-flight` gauge, summed over nodes).
    pub(crate) in_flight: AtomicUsize,
}

/// Every sensor of one producer. Shared (`Arc`) by the accumulator, the
/// pool's caller and the I/O threads.
pub(crate) struct Metrics {
    windows: Windows,
    epoch: Instant,
    // producer-metrics
    pub(crate) records: Sensor,
    pub(crate) errors: Sensor,
    pub(crate) retries: Sensor,
    pub(crate) batch_size: Sensor,
    /// The largest record of each batch sent (Java's `maxRecordSizeSensor`).
    pub(crate) record_size: Sensor,
    /// One per batch split in two after MESSAGE_TOO_LARGE.
    pub(crate) splits: Sensor,
    pub(crate) compression: Sensor,
    pub(crate) queue_time: Sensor,
    pub(crate) records_per_request: Sensor,
    pub(crate) throttle: Sensor,
    /// The sums over every node, for producer-metrics' request-*,
    /// response-* and byte rates.
    pub(crate) all_nodes: NodeSensors,
    topics: RwLock<BTreeMap<Arc<str>, Arc<TopicSensors>>>,
    nodes: RwLock<BTreeMap<i32, Arc<NodeSensors>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub(crate) fn new(windows: Windows) -> Self {
        let epoch = Instant::now();
        let s = || Sensor::new(windows, epoch);
        Metrics {
            windows,
            epoch,
            records: s(),
            errors: s(),
            retries: s(),
            batch_size: s(),
            record_size: s(),
            splits: s(),
            compression: s(),
            queue_time: s(),
            records_per_request: s(),
            throttle: s(),
            all_nodes: NodeSensors {
                requests: s(),
                responses: s(),
                latency: s(),
                in_flight: AtomicUsize::new(0),
            },
            topics: RwLock::new(BTreeMap::new()),
            nodes: RwLock::new(BTreeMap::new()),
        }
    }

    fn sensor(&self) -> Sensor {
        Sensor::new(self.windows, self.epoch)
    }

    /// The sensors of `topic`, created on first use (once per topic, when
    /// its queues are made).
    pub(crate) fn topic(&self, topic: &Arc<str>) -> Arc<TopicSensors> {
        if let Some(t) = self.topics.read().get(topic) {
            return t.clone();
        }
        self.topics
            .write()
            .entry(topic.clone())
            .or_insert_with(|| {
                Arc::new(TopicSensors {
                    records: self.sensor(),
                    bytes: self.sensor(),
                    compression: self.sensor(),
                    retries: self.sensor(),
                    errors: self.sensor(),
                })
            })
            .clone()
    }

    /// The sensors of broker `node`, created on first use (once per I/O
    /// thread).
    pub(crate) fn node(&self, node: i32) -> Arc<NodeSensors> {
        if let Some(n) = self.nodes.read().get(&node) {
            return n.clone();
        }
        self.nodes
            .write()
            .entry(node)
            .or_insert_with(|| {
                Arc::new(NodeSensors {
                    requests: self.sensor(),
                    responses: self.sensor(),
                    latency: self.sensor(),
                    in_flight: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// A batch of `records` records and `bytes` bytes of `topic`, the
    /// largest `max_record` bytes, is in a request now, after `queued` in
    /// the accumulator; `compression` is its compressed/uncompressed ratio
    /// the first time it is sealed.
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_drain(
        &self,
        topic: &TopicSensors,
        records: usize,
        bytes: usize,
        max_record: usize,
        queued: Duration,
        compression: Option<f64>,
        now: Instant,
    ) {
        let mut t = DrainTally::default();
        t.add(topic, records, bytes, max_record, queued, compression);
        self.on_drained(&t, now);
    }

    /// The batches of one drain at `now` (see [`DrainTally`]).
    pub(crate) fn on_drained(&self, t: &DrainTally<'_>, now: Instant) {
        self.records.record_tally(t.records, now);
        self.batch_size.record_tally(t.bytes, now);
        self.record_size.record_tally(t.record_size, now);
        self.queue_time.record_tally(t.queue_ms, now);
        self.compression.record_tally(t.compression, now);
        for (topic, [records, bytes, compression]) in &t.topics {
            topic.records.record_tally(*records, now);
            topic.bytes.record_tally(*bytes, now);
            topic.compression.record_tally(*compression, now);
        }
    }

    /// A request of `bytes` bytes holding `records` records went to `node`.
    pub(crate) fn on_request(&self, node: &NodeSensors, bytes: usize, records: usize) {
        let now = Instant::now();
        node.requests.record(bytes as f64, now);
        self.all_nodes.requests.record(bytes as f64, now);
        self.records_per_request.record(records as f64, now);
    }

    /// A response of `bytes` bytes came from `node`, `latency` after its
    /// request, with `throttle_ms` from its `throttle_time_ms`.
    pub(crate) fn on_response(
        &self,
        node: &NodeSensors,
        bytes: usize,
        latency: Duration,
        throttle_ms: Option<i32>,
        now: Instant,
    ) {
        let ms = latency.as_secs_f64() * 1000.0;
        node.responses.record(bytes as f64, now);
        node.latency.record(ms, now);
        self.all_nodes.responses.record(bytes as f64, now);
        self.all_nodes.latency.record(ms, now);
        if let Some(t) = throttle_ms {
            self.throttle.record(f64::from(t.max(0)), now);
        }
    }

    /// A batch of `records` records of `topic` goes back for a retry.
    pub(crate) fn on_retry(&self, topic: &TopicSensors, records: usize) {
        let now = Instant::now();
        self.retries.record(records as f64, now);
        topic.retries.record(records as f64, now);
    }

    /// A batch was split in two (MESSAGE_TOO_LARGE).
    pub(crate) fn on_split(&self) {
        self.splits.record(1.0, Instant::now());
    }

    /// `send` refused a record (Java's `doSend` records its `errors`
    /// sensor, the producer-wide one, on every refusal but a closed
    /// producer's or a wrong state's).
    pub(crate) fn on_send_refused(&self) {
        self.errors.record(1.0, Instant::now());
    }

    /// A batch of `records` records of `topic` failed.
    pub(crate) fn on_error(&self, topic: &TopicSensors, records: usize) {
        let now = Instant::now();
        self.errors.record(records as f64, now);
        topic.errors.record(records as f64, now);
    }

    /// Everything, now, with the buffer pool's `pool` gauges.
    pub(crate) fn snapshot(&self, client_id: &str, pool: PoolGauges) -> MetricsSnapshot {
        let now = Instant::now();
        let mut out = Vec::with_capacity(64);
        let tags = vec![("client-id".to_owned(), client_id.to_owned())];
        let mut put = |group: &'static str, name: &'static str, tags: &Vec<(String, String)>, v| {
            out.push(Metric {
                name,
                group,
                tags: tags.clone(),
                value: v,
            })
        };
        const P: &str = "producer-metrics";
        let r = self.records.read(now);
        put(P, "record-send-rate", &tags, r.rate);
        put(P, "record-send-total", &tags, r.total_sum);
        let r = self.errors.read(now);
        put(P, "record-error-rate", &tags, r.rate);
        put(P, "record-error-total", &tags, r.total_sum);
        let r = self.retries.read(now);
        put(P, "record-retry-rate", &tags, r.rate);
        put(P, "record-retry-total", &tags, r.total_sum);
        let r = self.batch_size.read(now);
        put(P, "batch-size-avg", &tags, r.avg);
        put(P, "batch-size-max", &tags, r.max);
        let r = self.record_size.read(now);
        put(P, "record-size-avg", &tags, r.avg);
        put(P, "record-size-max", &tags, r.max);
        let r = self.splits.read(now);
        put(P, "batch-split-rate", &tags, r.rate);
        put(P, "batch-split-total", &tags, r.total_sum);
        put(
            P,
            "compression-rate-avg",
            &tags,
            self.compression.read(now).avg,
        );
        let r = self.queue_time.read(now);
        put(P, "record-queue-time-avg", &tags, r.avg);
        put(P, "record-queue-time-max", &tags, r.max);
        let r = self.records_per_request.read(now);
        put(P, "records-per-request-avg", &tags, r.avg);
        let r = self.throttle.read(now);
        put(P, "produce-throttle-time-avg", &tags, r.avg);
        put(P, "produce-throttle-time-max", &tags, r.max);
        node_metrics(&self.all_nodes, now, |name, v| put(P, name, &tags, v));
        let in_flight: usize = (self.nodes.read().values())
            .map(|n| n.in_flight.load(Ordering::Relaxed))
            .sum();
        put(P, "requests-in-flight", &tags, in_flight as f64);
        // Java's bufferpool-wait-time-total (deprecated) is in ns too.
        let wait = pool.wait_ns as f64;
        put(P, "buffer-total-bytes", &tags, pool.total as f64);
        put(P, "buffer-available-bytes", &tags, pool.available as f64);
        put(P, "bufferpool-wait-time-total", &tags, wait);
        put(P, "bufferpool-wait-time-ns-total", &tags, wait);
        put(P, "waiting-threads", &tags, pool.waiting as f64);
        put(P, "buffer-exhausted-total", &tags, pool.exhausted as f64);
        const T: &str = "producer-topic-metrics";
        for (topic, s) in self.topics.read().iter() {
            let mut tags = tags.clone();
            tags.push(("topic".to_owned(), topic.to_string()));
            let r = s.records.read(now);
            put(T, "record-send-rate", &tags, r.rate);
            put(T, "record-send-total", &tags, r.total_sum);
            let r = s.bytes.read(now);
            put(T, "byte-rate", &tags, r.rate);
            put(T, "byte-total", &tags, r.total_sum);
            put(T, "compression-rate", &tags, s.compression.read(now).avg);
            let r = s.retries.read(now);
            put(T, "record-retry-rate", &tags, r.rate);
            put(T, "record-retry-total", &tags, r.total_sum);
            let r = s.errors.read(now);
            put(T, "record-error-rate", &tags, r.rate);
            put(T, "record-error-total", &tags, r.total_sum);
        }
        const N: &str = "producer-node-metrics";
        for (node, s) in self.nodes.read().iter() {
            let mut tags = tags.clone();
            tags.push(("node-id".to_owned(), format!("node-{node}")));
            node_metrics(s, now, |name, v| put(N, name, &tags, v));
        }
        MetricsSnapshot { metrics: out }
    }
}

/// The request, response and latency metrics of one node (or of all).
fn node_metrics(s: &NodeSensors, now: Instant, mut put: impl FnMut(&'static str, f64)) {
    let r = s.requests.read(now);
    put("request-rate", r.count_rate);
    put("request-total", r.total_count as f64);
    put("request-size-avg", r.avg);
    put("request-size-max", r.max);
    put("outgoing-byte-rate", r.rate);
    put("outgoing-byte-total", r.total_sum);
    let r = s.responses.read(now);
    put("response-rate", r.count_rate);
    put("response-total", r.total_count as f64);
    put("incoming-byte-rate", r.rate);
    put("incoming-byte-total", r.total_sum);
    let r = s.latency.read(now);
    put("request-latency-avg", r.avg);
    put("request-latency-max", r.max);
}

/// One metric: Java's name, group and tags, and its value.
///
/// A value with nothing to average (an `-avg` or `-max` with no event in
/// the window) is NaN, as in Java.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric's name, e.g. `record-send-rate`.
    pub name: &'static str,
    /// Its group: `producer-metrics`, `producer-topic-metrics` or
    /// `producer-node-metrics`.
    pub group: &'static str,
    /// Its tags, in order: `client-id`, then `topic` or `node-id`
    /// (`node-<id>`, as Java spells it).
    pub tags: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Metric {
    /// The value of tag `key`, if the metric has it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The producer's metrics at one moment ([`Producer::metrics`], or the
/// statistics callback).
///
/// [`Producer::metrics`]: crate::Producer::metrics
///
/// ```
/// # fn f(p: &kafka_producer::Producer) {
/// let m = p.metrics();
/// let sent = m.value("producer-metrics", "record-send-total").unwrap_or(0.0);
/// let orders = m.topic_value("orders", "record-error-total");
/// println!("{sent} sent; {orders:?} failed for orders; {}", m.to_json());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    metrics: Vec<Metric>,
}

impl MetricsSnapshot {
    /// Every metric: the producer-metrics group first, then each topic's,
    /// then each node's.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// The value of the metric `name` in `group` whose only tag beyond
    /// `client-id` is absent (the producer-wide group) or the first one
    /// found.
    pub fn value(&self, group: &str, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.group == group && m.name == name)
            .map(|m| m.value)
    }

    /// The value of `name` in producer-topic-metrics for `topic`.
    pub fn topic_value(&self, topic: &str, name: &str) -> Option<f64> {
        self.tagged("producer-topic-metrics", "topic", topic, name)
    }

    /// The value of `name` in producer-node-metrics for broker `node`.
    pub fn node_value(&self, node: i32, name: &str) -> Option<f64> {
        let id = format!("node-{node}");
        self.tagged("producer-node-metrics", "node-id", &id, name)
    }

    fn tagged(&self, group: &str, key: &str, tag: &str, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.group == group && m.name == name && m.tag(key) == Some(tag))
            .map(|m| m.value)
    }

    /// The snapshot as one line of JSON (no newline):
    /// `{"producer-metrics":{"client-id":"...","record-send-rate":1.5,...},
    /// "producer-topic-metrics":{"<topic>":{...}},
    /// "producer-node-metrics":{"node-1":{...}}}`. NaN and infinities are
    /// `null`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push('{');
        for (i, group) in [
            "producer-metrics",
            "producer-topic-metrics",
            "producer-node-metrics",
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                out.push(',');
            }
            json_string(&mut out, group);
            out.push_str(":{");
            let members = self.metrics.iter().filter(|m| m.group == group);
            let mut current: Option<&str> = None;
            let mut first = true;
            for m in members {
                let sub = match group {
                    "producer-topic-metrics" => m.tag("topic"),
                    "producer-node-metrics" => m.tag("node-id"),
                    _ => None,
                };
                if let Some(sub) = sub {
                    if current != Some(sub) {
                        if current.is_some() {
                            out.push_str("},");
                        }
                        json_string(&mut out, sub);
                        out.push_str(":{");
                        current = Some(sub);
                        first = true;
                    }
                } else if first {
                    json_string(&mut out, "client-id");
                    out.push(':');
                    json_string(&mut out, m.tag("client-id").unwrap_or(""));
                    first = false;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                json_string(&mut out, m.name);
                out.push(':');
                if m.value.is_finite() {
                    let _ = write!(out, "{}", m.value);
                } else {
                    out.push_str("null");
                }
            }
            if current.is_some() {
                out.push('}');
            }
            out.push('}');
        }
        out.push('}');
        out
    }
}

/// Appends `s` as a JSON string (RFC 8259: quotes, backslashes and control
/// characters escaped).
pub(crate) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The statistics callback (`statistics.interval.ms`): what
/// [`ProducerConfig::statistics_callback`](crate::ProducerConfig::statistics_callback)
/// takes.
pub type StatisticsCallback = Arc<dyn Fn(&MetricsSnapshot) + Send + Sync>;

/// The thread that calls the statistics callback every interval, until
/// stopped.
pub(crate) struct StatsThread {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl StatsThread {
    /// Starts `<client.id>-stats`, calling `callback` with `snapshot()`
    /// every `interval` (first after one interval), until stopped or
    /// `snapshot` returns `None`. A panicking callback
    /// is logged; the thread carries on.
    pub(crate) fn start(
        name: String,
        interval: Duration,
        callback: StatisticsCallback,
        snapshot: impl Fn() -> Option<MetricsSnapshot> + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let (lock, cond) = &*s;
            let mut next = crate::util::later(Instant::now(), interval);
            loop {
                let mut stopped = lock.lock();
                while !*stopped && Instant::now() < next {
                    cond.wait_until(&mut stopped, next);
                }
                if *stopped {
                    return;
                }
                drop(stopped);
                let Some(snap) = snapshot() else {
                    return; // the producer is gone
                };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(&snap)));
                if r.is_err() {
                    log::error!("the statistics callback panicked");
                }
                next = crate::util::later(next, interval).max(Instant::now());
            }
        })?;
        Ok(StatsThread {
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops the thread; with `join`, waits for it (never from the
    /// thread itself: `close` called in the callback does not wait for
    /// the thread that runs it). It calls the callback no more once a call
    /// in progress returns.
    pub(crate) fn stop(&self, join: bool) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if !join {
            return;
        }
        let handle = self.thread.lock().take();
        if let Some(h) = handle {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sensor(window_ms: u64, samples: usize) -> (Sensor, Instant) {
        let t0 = Instant::now();
        (Sensor::new(Windows { window_ms, samples }, t0), t0)
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// A drain's tally leaves a sensor as recording its batches one by
    /// one would, in a fresh window and in one already holding events.
    #[test]
    fn a_tally_records_what_its_events_would_one_by_one() {
        let (one, t0) = sensor(1000, 2);
        let (many, _) = sensor(1000, 2);
        let many = Sensor { epoch: t0, ..many };
        for (ms, values) in [
            (10, &[3.0, 1.0, 2.0][..]),
            (20, &[0.5, 7.0]),
            (1500, &[4.0]),
        ] {
            let mut t = Tally::default();
            for &v in values {
                one.record(v, at(t0, ms));
                t.add(v);
            }
            many.record_tally(t, at(t0, ms));
            assert_eq!(one.read(at(t0, ms)), many.read(at(t0, ms)), "at {ms} ms");
        }
        many.record_tally(Tally::default(), at(t0, 1600));
        assert_eq!(one.read(at(t0, 1600)), many.read(at(t0, 1600)), "nothing");
    }

    #[test]
    fn rates_cover_at_least_samples_minus_one_windows_as_in_java() {
        let (s, t0) = sensor(1000, 2);
        s.record(10.0, at(t0, 0));
        s.record(20.0, at(t0, 200));
        let r = s.read(at(t0, 500));
        // 30 over max(0.5 s, 1 window = 1 s).
        assert_eq!(r.rate, 30.0);
        assert_eq!(r.count_rate, 2.0);
        assert_eq!(
            (r.avg, r.max, r.total_sum, r.total_count),
            (15.0, 20.0, 30.0, 2)
        );
        // Later: 30 over 1.5 s since the oldest sample's start.
        assert_eq!(s.read(at(t0, 1500)).rate, 20.0);
    }

    #[test]
    fn old_samples_expire_but_totals_stay() {
        let (s, t0) = sensor(1000, 2);
        s.record(5.0, at(t0, 0));
        s.record(7.0, at(t0, 1100)); // the second sample
        let r = s.read(at(t0, 1900));
        assert_eq!((r.avg, r.max), (6.0, 7.0));
        // The first sample (started at 0) is 2 windows old at 2000.
        let r = s.read(at(t0, 2000));
        assert_eq!((r.avg, r.max), (7.0, 7.0));
        s.record(1.0, at(t0, 2200)); // reuses the first slot
        let r = s.read(at(t0, 2300));
        assert_eq!(
            (r.avg, r.max, r.total_sum, r.total_count),
            (4.0, 7.0, 13.0, 3)
        );
        let r = s.read(at(t0, 10_000));
        assert!(r.avg.is_nan() && r.max.is_nan());
        assert_eq!((r.rate, r.total_sum), (0.0, 13.0));
    }

    #[test]
    fn snapshot_names_and_json() {
        let m = Metrics::new(Windows {
            window_ms: 30_000,
            samples: 2,
        });
        let topic = m.topic(&Arc::from("a\"b"));
        let node = m.node(3);
        let now = Instant::now();
        m.on_drain(&topic, 4, 100, 30, Duration::from_millis(2), Some(0.5), now);
        m.on_drain(&topic, 1, 70, 10, Duration::from_millis(2), None, now);
        m.on_split();
        m.on_request(&node, 150, 4);
        node.in_flight.store(2, Ordering::Relaxed);
        m.node(5).in_flight.store(1, Ordering::Relaxed);
        m.on_response(&node, 40, Duration::from_millis(8), Some(12), now);
        m.on_error(&topic, 1);
        let pool = PoolGauges {
            total: 1024,
            available: 512,
            ..PoolGauges::default()
        };
        let s = m.snapshot("c1", pool);
        let v = |n| s.value("producer-metrics", n).unwrap();
        assert_eq!(v("record-send-total"), 5.0);
        assert_eq!(v("record-size-max"), 30.0);
        assert_eq!(v("record-size-avg"), 20.0);
        assert_eq!(v("batch-split-total"), 1.0);
        assert!(v("batch-split-rate") > 0.0);
        assert_eq!(v("requests-in-flight"), 3.0);
        assert_eq!(v("record-error-total"), 1.0);
        assert_eq!(v("batch-size-max"), 100.0);
        assert_eq!(v("compression-rate-avg"), 0.5);
        assert_eq!(v("records-per-request-avg"), 4.0);
        assert_eq!(v("request-latency-max"), 8.0);
        assert_eq!(v("produce-throttle-time-avg"), 12.0);
        assert_eq!(v("outgoing-byte-total"), 150.0);
        assert_eq!(v("buffer-available-bytes"), 512.0);
        assert!(v("record-retry-rate") == 0.0);
        assert_eq!(s.topic_value("a\"b", "byte-total"), Some(170.0));
        assert_eq!(s.node_value(3, "response-total"), Some(1.0));
        assert_eq!(s.node_value(4, "response-total"), None);
        let json = s.to_json();
        assert!(
            json.starts_with("{\"producer-metrics\":{\"client-id\":\"c1\",\"record-send-rate\":"),
            "{json}"
        );
        assert!(
            json.contains("\"producer-topic-metrics\":{\"a\\\"b\":{\"record-send-rate\":"),
            "{json}"
        );
        assert!(
            json.contains("\"producer-node-metrics\":{\"node-3\":{\"request-rate\":"),
            "{json}"
        );
        assert!(json.contains("\"record-retry-rate\":0,"), "{json}");
        assert!(json.ends_with("}}}"), "{json}");
        // Balanced braces, and no NaN leaks into JSON.
        assert_eq!(json.matches('{').count(), json.matches('}').count());
        assert!(!json.contains("NaN"));
        let empty = Metrics::new(Windows {
            window_ms: 1,
            samples: 2,
        })
        .snapshot("x", PoolGauges::default());
        let j = empty.to_json();
        assert!(j.contains("\"batch-size-avg\":null"), "{j}");
        assert!(
            j.ends_with(",\"producer-topic-metrics\":{},\"producer-node-metrics\":{}}"),
            "{j}"
        );
    }
}
