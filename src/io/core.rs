//! The sans-IO core of one broker's I/O thread: which batches to send
//! and when, the Produce requests that carry them, what each answer (or
//! its absence) means for them, the connection's state, timeouts and
//! expiry. It owns no socket, no thread and no clock: every call takes
//! `now`, bytes move in and out through its [`Wire`], and what it needs
//! done outside (open a connection, re-authenticate it, close it) it
//! returns as a [`Want`], collected by its driver with
//! [`take_wants`](BrokerCore::take_wants). The dependency runs one way: the
//! core never calls its driver.
//!
//! Two drivers run it: the I/O thread (`io/broker.rs`), with mio, real
//! sockets and connector threads, and the simulation (`mock/sim.rs`),
//! which runs every broker's core on one thread against the broker model
//! with a virtual clock. A driver's cycle is:
//!
//! 1. [`tick`](BrokerCore::tick): expire, check what is in flight, drain
//!    and enqueue Produce requests;
//! 2. carry out the wants; move [`Wire::pending_slices`] to the transport
//!    and report it with [`wrote`](BrokerCore::wrote) (acks=0 requests
//!    complete here);
//! 3. [`plan`](BrokerCore::plan): go round again, exit, or sleep until
//!    the instant it names (or until woken through the [`DrainSignal`],
//!    or until the socket is ready);
//! 4. on a readable socket, [`read_limit`](BrokerCore::read_limit), fill
//!    [`Wire::read_space`], then [`read`](BrokerCore::read), which handles
//!    every complete response frame.
//!
//! The accumulator (shared with the sending threads) and the cluster view
//! are reached through [`IoShared`]; they take `now` too, so the core's
//! decisions depend only on its inputs and the shared state.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::Wire;
use super::decide::{self, jittered, Verdict};
use super::IoShared;
use crate::accumulator::{DrainSignal, Drained, Drainer, PartitionQueue, ProducerBatch};
use crate::config::Acks;
use crate::error::Error;
use crate::future::Delivered;
use crate::metadata::{LeaderHint, Node};
use crate::metrics::NodeSensors;
use crate::protocol::messages::header::decode_response_header;
use crate::protocol::messages::produce::{self, PartitionProduceResponse, ProduceResponse};
use crate::protocol::primitives::Decoder;
use crate::protocol::ErrorCode;
use crate::util::{later, LogLimiter};

/// The largest response frame accepted with no request it could answer in
/// flight (an answer to an acks=0 request, which some brokers send).
const STRAY_RESPONSE_MAX: usize = 1024 * 1024;

/// The first Produce version whose `throttle_time_ms` the client must
/// honour itself (KIP-219; Java's `ProduceResponse.shouldClientThrottle`).
const CLIENT_THROTTLE_VERSION: i16 = 6;

/// What the core asks its driver to do.
#[derive(Debug)]
pub(crate) enum Want {
    /// Open a connection to `node` (TCP, TLS, ApiVersions, SASL: all of
    /// it bounded by `setup` per address plus `request.timeout.ms` per
    /// request) and hand over its wire with the Produce version to send
    /// ([`BrokerCore::connected`]), or the error.
    Connect {
        /// The broker to reach.
        node: Node,
        /// The connection set-up timeout for this attempt (it doubles
        /// with each failure, up to `socket.connection.setup.timeout.max.ms`).
        setup: Duration,
    },
    /// Re-authenticate (KIP-368) the connection whose wire this is, with
    /// nothing in flight on it, and hand it back through
    /// [`BrokerCore::connected`] as a new one is.
    Reauth(Wire),
    /// Close the connection whose wire this is: politely (`graceful`:
    /// half-close, read until the broker closes, at most `linger`), or at
    /// once (after an error, or a forced close).
    Close {
        /// The connection's wire, given back.
        wire: Wire,
        /// Half-close and wait for the broker, or drop at once.
        graceful: bool,
        /// The longest a polite close may wait.
        linger: Duration,
    },
}

/// What the driver does after a cycle ([`BrokerCore::plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Cycle again now (an acks=0 request left the window when written).
    Again,
    /// Sleep until this instant, or forever (`None`), unless woken.
    Sleep(Option<Instant>),
    /// The core is done (stopped with nothing in flight, or retired):
    /// carry out the last wants and end.
    Exit,
}

/// One Produce request awaiting its response, or (acks=0) awaiting the
/// moment its last byte is written.
struct InFlight {
    correlation_id: i32,
    version: i16,
    sent_at: Instant,
    /// acks=0: no response is awaited; the request completes once the
    /// connection has written `end` bytes in total.
    acks0_end: Option<u64>,
    /// The largest answer an honest broker can give it
    /// (`produce::max_response_size`).
    max_response: usize,
    batches: Vec<Slot>,
    /// When the oldest batch still in it reaches `delivery.timeout.ms`
    /// (`None` once none is left): the core wakes then to fail it, even
    /// if no answer or request timeout comes first.
    expires: Option<Instant>,
}

impl InFlight {
    /// The earliest delivery deadline of the batches still held.
    fn next_expiry(&self, cfg: &crate::config::ProducerConfig) -> Option<Instant> {
        self.batches
            .iter()
            .filter_map(|s| s.batch.as_ref())
            .map(|b| later(b.created, cfg.delivery_timeout))
            .min()
    }
}

/// One batch of an in-flight request. Its partition stays named after the
/// batch has left (expired while in flight, or taken to be completed): the
/// partition is muted until the request comes back (see
/// [`InFlight::done`]).
struct Slot {
    queue: Arc<PartitionQueue>,
    /// `None` once the batch has left the slot; a late answer for an
    /// expired one is ignored.
    batch: Option<ProducerBatch>,
}

impl Slot {
    fn take(&mut self) -> Option<Drained> {
        let batch = self.batch.take()?;
        Some(Drained {
            queue: self.queue.clone(),
            batch,
        })
    }
}

impl InFlight {
    /// The request is over (answered, written for acks=0, or its
    /// connection dropped) and every batch it held has been completed or
    /// handed back: its partitions may be drained again. Called after the
    /// batches are dealt with, so a retried batch is at the front of its
    /// deque before any thread can drain the partition.
    fn done(self, acc: &crate::accumulator::RecordAccumulator) {
        debug_assert!(self.batches.iter().all(|s| s.batch.is_none()));
        acc.unmute(self.batches.iter().map(|s| &s.queue));
    }
}

/// The state of one broker's I/O logic.
pub(crate) struct BrokerCore {
    node: i32,
    shared: Arc<IoShared>,
    /// The connection, once open and not lent out (re-authenticating).
    wire: Option<Wire>,
    produce_version: i16,
    /// Requests in order, acks=0 ones included: they count against
    /// `max.in.flight.requests.per.connection` and `request.timeout.ms`
    /// until their bytes are written.
    in_flight: VecDeque<InFlight>,
    /// The partitions this broker leads, and which of them have work.
    drainer: Drainer,
    reconnect_at: Option<Instant>,
    reconnect_failures: u32,
    /// A connection is being opened or re-authenticated by the driver
    /// (a [`Want::Connect`] or [`Want::Reauth`] not yet answered).
    connecting: bool,
    last_activity: Instant,
    /// Told to stop ([`stop`](Self::stop)): it drains no more, hands
    /// nothing back for a retry, and exits once its requests are
    /// answered. An order to this core, not the producer's phase read
    /// afresh, so a whole cycle sees one answer. It implies the phase
    /// (`Io::stop` moves to `Stopped` before it stops the threads), so
    /// with it the producer is aborting too.
    stopping: bool,
    /// Since when this core has led no partition and held no request.
    idle_since: Option<Instant>,
    /// Set by a response that cannot be decoded: the stream may be out of
    /// step, so the connection is dropped once the frames are handled.
    poisoned: Option<String>,
    /// Rate-limits the warnings of a connection that keeps failing (every
    /// reconnect during an outage): failed connects and disconnects.
    fault_log: LogLimiter,
    /// This broker's sensors (producer-node-metrics).
    sensors: Arc<NodeSensors>,
    /// KIP-219: the broker asked us to send nothing before this instant
    /// (`throttle_time_ms` of a Produce v6+ answer). Java mutes the
    /// channel; here the core drains nothing until then, and still reads
    /// the answers to what is in flight.
    throttled_until: Option<Instant>,
    /// The last [`tick`](Self::tick)'s next deadline (a lingering or
    /// backing-off batch, a reconnect) and whether the window was full.
    next_ready: Option<Instant>,
    window_full: bool,
    wants: VecDeque<Want>,
}

impl BrokerCore {
    pub(crate) fn new(
        node: i32,
        shared: Arc<IoShared>,
        signal: Arc<DrainSignal>,
        now: Instant,
    ) -> Self {
        BrokerCore {
            node,
            drainer: Drainer::new(node, signal),
            sensors: shared.accumulator.metrics().node(node),
            shared,
            wire: None,
            produce_version: produce::MIN_VERSION,
            in_flight: VecDeque::new(),
            reconnect_at: None,
            reconnect_failures: 0,
            connecting: false,
            last_activity: now,
            stopping: false,
            idle_since: None,
            poisoned: None,
            fault_log: LogLimiter::new(super::FAULT_LOG_INTERVAL),
            throttled_until: None,
            next_ready: None,
            window_full: false,
            wants: VecDeque::new(),
        }
    }

    /// "client node 1", for logs and errors.
    pub(crate) fn label(&self) -> String {
        format!("{} node {}", self.shared.cfg.client_id, self.node)
    }

    /// The node this core sends to.
    pub(crate) fn node(&self) -> i32 {
        self.node
    }

    /// What the driver must do, in order.
    pub(crate) fn take_wants(&mut self) -> impl Iterator<Item = Want> + '_ {
        self.wants.drain(..)
    }

    /// The open connection's wire: its output to write, its read space.
    pub(crate) fn wire_mut(&mut self) -> Option<&mut Wire> {
        self.wire.as_mut()
    }

    /// The driver is ending: no request is in flight any more.
    pub(crate) fn sensors_idle(&self) {
        self.sensors.in_flight.store(0, Ordering::Relaxed);
    }

    /// Finish what is in flight, then exit (`Control::Stop`).
    pub(crate) fn stop(&mut self) {
        self.stopping = true;
    }

    /// The first half of a cycle: expiry, request timeouts, and as many
    /// Produce requests as the window and the ready batches allow, written
    /// into the wire.
    pub(crate) fn tick(&mut self, now: Instant) {
        self.drainer.refresh(&self.shared.accumulator, now);
        self.check_in_flight(now);
        self.drainer.expire(&self.shared.accumulator, now);
        let (next, full) = self.send_ready(now);
        self.next_ready = next;
        self.window_full = full;
    }

    /// The second half of a cycle, after the driver has written: go round
    /// again, exit, or sleep until when.
    pub(crate) fn plan(&mut self, now: Instant) -> Plan {
        // acks=0 requests leave the window once written, with no
        // response to wake us: go round again while there is room.
        if self.window_full && self.in_flight.len() < self.shared.cfg.max_in_flight {
            return Plan::Again;
        }
        if self.stopping && self.in_flight.is_empty() {
            self.close_connection();
            return Plan::Exit;
        }
        let mut next_wake = self.next_ready;
        if let Some(f) = self.in_flight.front() {
            next_wake = earliest(
                next_wake,
                Some(later(f.sent_at, self.shared.cfg.request_timeout)),
            );
        }
        // An in-flight batch fails at its delivery timeout, answered or
        // not (KIP-91: the bound covers the time in flight too).
        for f in &self.in_flight {
            next_wake = earliest(next_wake, f.expires);
        }
        next_wake = earliest(next_wake, self.idle_deadline());
        match self.retire_at(now) {
            Some(t) if t <= now => {
                if self.shared.retire_broker(self.node) {
                    log::debug!("{}: leads nothing; thread retired", self.label());
                    self.close_connection();
                    return Plan::Exit;
                }
                self.idle_since = None;
            }
            t => next_wake = earliest(next_wake, t),
        }
        next_wake = earliest(
            next_wake,
            self.drainer.next_expiry(&self.shared.accumulator),
        );
        (self.sensors.in_flight).store(self.in_flight.len(), Ordering::Relaxed);
        Plan::Sleep(next_wake)
    }

    /// Drains and sends while the in-flight window has room. Returns when
    /// the next unready batch becomes ready (or a reconnect is due), and
    /// whether it stopped because the window was full (then nothing is
    /// due before a response, or a write, frees a slot).
    fn send_ready(&mut self, now: Instant) -> (Option<Instant>, bool) {
        if self.stopping {
            return (None, false);
        }
        // Only partitions told to have work (see `accumulator/drainer.rs`),
        // not a scan of all.
        if !self.drainer.has_work(now) {
            return (None, false);
        }
        #[cfg(test)]
        tests::maybe_panic(&self.shared.cfg.client_id);
        if self.connecting {
            // The driver's answer is the next event.
            return (None, false);
        }
        if self.wire.is_none() {
            if let Some(t) = self.reconnect_at.filter(|t| *t > now) {
                return (Some(t), false);
            }
            self.connect(now);
            return (
                if self.connecting {
                    None
                } else {
                    self.reconnect_at
                },
                false,
            );
        }
        // KIP-368: the SASL session nears its end. Send nothing new; once
        // every answer is in, the driver authenticates again.
        if self.wire.as_ref().is_some_and(|w| w.reauth_due(now)) {
            if self.in_flight.is_empty() {
                self.start_reauth();
            }
            return (None, false);
        }
        if let Some(t) = self.throttled_until {
            if t > now {
                return (Some(t), false);
            }
            self.throttled_until = None;
        }
        let cfg = self.shared.cfg.clone();
        loop {
            if self.in_flight.len() >= cfg.max_in_flight {
                return (None, true);
            }
            // The last drain's answer is the next deadline: when the next
            // lingering or backing-off partition becomes ready (`now` if it
            // stopped at max.request.size).
            let (drained, next) =
                self.drainer
                    .drain(&self.shared.accumulator, cfg.max_request_size, now);
            if drained.is_empty() {
                return (next, false);
            }
            self.send_produce(drained, now);
        }
    }

    /// Asks the driver for a connection to this node, or schedules a
    /// retry if the cluster view does not know the node (any more).
    fn connect(&mut self, now: Instant) {
        let cluster = self.shared.metadata.cluster();
        let Some(node) = cluster.node(self.node).cloned() else {
            self.schedule_reconnect(now);
            return;
        };
        let cfg = &self.shared.cfg;
        let setup = cfg
            .connection_setup_timeout
            .saturating_mul(2u32.saturating_pow(self.reconnect_failures.min(8)))
            .min(cfg.connection_setup_timeout_max);
        self.connecting = true;
        self.wants.push_back(Want::Connect { node, setup });
    }

    /// Hands the connection to the driver to re-authenticate (KIP-368),
    /// with nothing in flight on it; it comes back through
    /// [`connected`](Self::connected), so a refusal is handled as one at
    /// connect time.
    fn start_reauth(&mut self) {
        if self.shared.cfg.sasl.is_none() {
            return;
        }
        let Some(wire) = self.wire.take() else {
            return;
        };
        log::debug!("{}: re-authenticating", self.label());
        self.connecting = true;
        self.wants.push_back(Want::Reauth(wire));
    }

    /// The outcome of a [`Want::Connect`] or [`Want::Reauth`]: the wire of
    /// the connection, ready for requests, with the Produce version to
    /// send, or why there is none.
    pub(crate) fn connected(&mut self, result: crate::error::Result<(Wire, i16)>, now: Instant) {
        self.connecting = false;
        match result {
            Ok((wire, v)) => {
                log::debug!("{}: connected, Produce v{v}", self.label());
                self.wire = Some(wire);
                self.produce_version = v;
                self.reconnect_failures = 0;
                self.reconnect_at = None;
                self.last_activity = now;
            }
            Err(e) => {
                let (level, note) = self.fault_log.level(log::Level::Warn, now);
                log::log!(level, "{}: {e}{note}", self.label());
                self.shared.metadata.request_update();
                self.schedule_reconnect(now);
                // A broker that speaks no Produce version we can send will
                // never take these batches: fail them now, loudly.
                // Nor will one that refuses to authenticate us (Java's
                // Sender fails the batches of an AuthenticationException).
                if let Error::UnsupportedVersion { .. } | Error::Authentication { .. } = e {
                    self.fail_queued(&e);
                }
            }
        }
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        let cfg = &self.shared.cfg;
        let backoff = jittered(
            cfg.reconnect_backoff,
            cfg.reconnect_backoff_max,
            self.reconnect_failures,
        );
        self.reconnect_failures = self.reconnect_failures.saturating_add(1);
        self.reconnect_at = Some(later(now, backoff));
    }

    fn fail_queued(&mut self, e: &Error) {
        self.shared
            .accumulator
            .abort_queued(Some(self.drainer.partitions()), e);
    }

    /// Writes one Produce request for `drained` (grouped by topic).
    fn send_produce(&mut self, mut drained: Vec<Drained>, now: Instant) {
        let conn = self.wire.as_mut().expect("connected");
        let cfg = &self.shared.cfg;
        // A transactional producer in the v1 flow stops at Produce v11.
        let version = match self.shared.accumulator.produce_version_cap() {
            Some(cap) => self.produce_version.min(cap),
            None => self.produce_version,
        };
        // The request groups partitions by topic; their order within a
        // topic does not matter. One topic (the common case) needs no sort,
        // and a sort moves whole batches: with hundreds of partitions per
        // request it cost more than the drain.
        if drained
            .windows(2)
            .any(|w| w[0].queue.topic != w[1].queue.topic)
        {
            drained.sort_by(|a, b| a.queue.topic.cmp(&b.queue.topic));
        }
        let acks = cfg.acks;
        let timeout_ms = cfg.request_timeout.as_millis().min(i32::MAX as u128) as i32;
        let before = conn.enqueued_total();
        // The batches' records are held in the wire's output, not copied
        // (`Wire::enqueue_shared`); their headers and the request's own
        // fields are written into its buffer.
        let correlation_id = conn.enqueue_shared(&produce::API, version, |body| {
            let buf = &mut *body.buf;
            let topics = 1 + drained
                .windows(2)
                .filter(|w| w[0].queue.topic != w[1].queue.topic)
                .count();
            let txn_id = cfg.transactional_id.as_deref();
            produce::write_request_prefix(buf, version, txn_id, acks.as_i16(), timeout_ms, topics);
            let mut i = 0;
            while i < drained.len() {
                let topic = &drained[i].queue.topic;
                let n = drained[i..]
                    .iter()
                    .take_while(|d| &d.queue.topic == topic)
                    .count();
                produce::write_topic(body.buf, version, topic, n);
                for d in &drained[i..i + n] {
                    let (header, records) = d.batch.wire_shared();
                    let len = header.len() + records.bytes().len();
                    produce::write_partition_prefix(body.buf, version, d.queue.partition, len);
                    body.buf.extend_from_slice(header);
                    body.share(records);
                    produce::end_partition(body.buf, version);
                }
                produce::end_topic(body.buf, version);
                i += n;
            }
            produce::end_request(body.buf, version);
        });
        self.last_activity = now;
        let records = drained.iter().map(|d| d.batch.record_count()).sum();
        self.shared.accumulator.metrics().on_request(
            &self.sensors,
            (conn.enqueued_total() - before) as usize,
            records,
        );
        // acks=0: no response will be awaited (the test brokers send one
        // anyway; it matches no entry and is dropped).
        let acks0_end = (acks == Acks::None).then(|| conn.enqueued_total());
        let max_response = produce::max_response_size(
            drained
                .iter()
                .map(|d| (d.queue.topic.len(), d.batch.record_count())),
        );
        let mut f = InFlight {
            correlation_id,
            version,
            sent_at: now,
            acks0_end,
            max_response,
            batches: drained
                .into_iter()
                .map(|d| Slot {
                    queue: d.queue,
                    batch: Some(d.batch),
                })
                .collect(),
            expires: None,
        };
        f.expires = f.next_expiry(cfg);
        self.in_flight.push_back(f);
    }

    /// The driver moved output to the transport (`result`: how that
    /// went). acks=0 requests whose last byte is on the socket are done;
    /// a failed write drops the connection.
    pub(crate) fn wrote(&mut self, result: std::io::Result<()>, now: Instant) {
        if let Err(e) = result {
            self.disconnect(&format!("write failed: {e}"), now);
            return;
        }
        let Some(wire) = self.wire.as_ref() else {
            return;
        };
        let written = wire.written_total();
        // acks=0 requests whose last byte is written are done.
        while let Some(i) = self
            .in_flight
            .iter()
            .position(|f| f.acks0_end.is_some_and(|end| end <= written))
        {
            let mut f = self.in_flight.remove(i).expect("found");
            for d in f.batches.iter_mut().filter_map(Slot::take) {
                self.shared.accumulator.complete(
                    &d.queue,
                    d.batch,
                    Ok(Delivered {
                        base_offset: -1,
                        log_append_time: -1,
                    }),
                );
            }
            f.done(&self.shared.accumulator);
        }
    }

    /// Before the driver reads: caps the frames the wire accepts. The
    /// next frame answers one of the requests in flight (responses come in
    /// order): none can be larger than the largest of their bounds. The
    /// floor admits the answers some brokers send to acks=0 requests,
    /// which are no longer in flight by then.
    pub(crate) fn read_limit(&mut self) {
        let max = self
            .in_flight
            .iter()
            .map(|f| f.max_response)
            .fold(STRAY_RESPONSE_MAX, usize::max);
        if let Some(w) = self.wire.as_mut() {
            w.set_max_frame(max);
        }
    }

    /// The driver read into the wire (`read`: how that went, `Err` for a
    /// closed or failed connection). Handles every complete frame, even
    /// if the read then failed (the broker may answer and close), then
    /// drops the connection if it cannot be trusted or is gone.
    pub(crate) fn read(&mut self, read: std::io::Result<usize>, now: Instant) {
        // Take the wire out so responses can be handled (which needs
        // `&mut self`) straight from its read buffer, without a copy.
        let Some(mut wire) = self.wire.take() else {
            return;
        };
        let frames = loop {
            match wire.next_frame(|corr, frame| self.on_response(corr, frame, now)) {
                Ok(Some(())) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.wire = Some(wire);
        if let Some(why) = self.poisoned.take() {
            self.disconnect(&why, now);
        } else if let Err(e) = frames {
            self.disconnect(&format!("bad response: {e}"), now);
        } else if let Err(e) = read {
            self.disconnect(&e.to_string(), now);
        }
    }

    fn on_response(&mut self, corr: i32, frame: &[u8], now: Instant) {
        self.last_activity = now;
        let Some(i) = self
            .in_flight
            .iter()
            .position(|f| f.correlation_id == corr && f.acks0_end.is_none())
        else {
            // acks=0 requests get answers from some brokers; nothing waits.
            log::trace!("{}: ignoring response {corr}", self.label());
            return;
        };
        if i != 0 {
            log::warn!(
                "{}: response {corr} arrived before {} earlier ones",
                self.label(),
                i
            );
        }
        let mut entry = self.in_flight.remove(i).expect("found");
        let batches: Vec<Drained> = entry.batches.iter_mut().filter_map(Slot::take).collect();
        let latency = now.saturating_duration_since(entry.sent_at);
        self.on_produce_response(batches, entry.version, frame, latency, now);
        entry.done(&self.shared.accumulator);
        // An epoch bump past i16::MAX dropped the idempotent producer's id
        // (`RecordAccumulator::bump_epoch`): the metadata thread asks for a
        // new one with its next fetch, which this requests.
        if self.shared.accumulator.wants_producer_id() {
            self.shared.metadata.request_update();
        }
    }

    /// Completes or retries each batch of one answered Produce request,
    /// `latency` after it was sent. The response is counted in the metrics
    /// before any batch completes, so a `flush` that returns sees it.
    fn on_produce_response(
        &mut self,
        batches: Vec<Drained>,
        version: i16,
        frame: &[u8],
        latency: Duration,
        now: Instant,
    ) {
        let resp_hv = produce::API.response_header_version(version);
        let mut d = Decoder::new(frame, false);
        let parsed = decode_response_header(&mut d, resp_hv)
            .and_then(|_| ProduceResponse::decode(&frame[d.position()..], version));
        let metrics = self.shared.accumulator.metrics();
        let throttle = parsed.as_ref().ok().map(|r| r.throttle_time_ms);
        metrics.on_response(&self.sensors, frame.len(), latency, throttle, now);
        let resp = match parsed {
            Ok(r) => r,
            Err(e) => {
                // As Java: the connection cannot be trusted after this.
                let why = format!("undecodable Produce v{version} response: {e}");
                let err = Error::Protocol(format!("Produce response from {}: {e}", self.label()));
                for b in batches {
                    self.fail_or_retry(b, err.clone(), false, now);
                }
                self.poisoned = Some(why);
                return;
            }
        };
        // KIP-219: from Produce v6 the broker answers at once and leaves
        // the wait to the client; before, it held the answer back itself.
        if resp.throttle_time_ms > 0 && version >= CLIENT_THROTTLE_VERSION {
            log::debug!("{}: throttled {} ms", self.label(), resp.throttle_time_ms);
            let until = later(now, Duration::from_millis(resp.throttle_time_ms as u64));
            self.throttled_until = Some(self.throttled_until.map_or(until, |t| t.max(until)));
        }
        self.apply_leader_hints(&resp);
        // The batches are in a local here, out of their slots: a panic now
        // is what `ProducerBatch`'s drop guards against.
        #[cfg(test)]
        tests::maybe_panic(&format!("{}/response", self.shared.cfg.client_id));
        let mut hint = (0, 0);
        for slot in batches {
            let topic = &*slot.queue.topic;
            let p = find_answer(&resp, &mut hint, topic, slot.queue.partition);
            match p {
                Some(p) => self.on_partition_response(slot, p, now),
                None => {
                    let err = Error::Protocol(format!(
                        "Produce response from {} has no result for {topic}-{}",
                        self.label(),
                        slot.queue.partition
                    ));
                    self.fail_or_retry(slot, err, false, now);
                }
            }
        }
    }

    /// KIP-951: a broker that is no longer a partition's leader names the
    /// new one (and how to reach it) in its Produce response. Installing
    /// that at once re-routes the partition's batches without waiting for
    /// a metadata round trip; a hint older than what we know is ignored.
    fn apply_leader_hints(&self, resp: &ProduceResponse) {
        let hints: Vec<LeaderHint> = resp
            .responses
            .iter()
            .flat_map(|t| {
                t.partition_responses.iter().filter_map(|p| {
                    let l = p.current_leader?;
                    Some(LeaderHint {
                        topic: Arc::from(t.name.as_str()),
                        partition: p.index,
                        leader: l.leader_id,
                        epoch: l.leader_epoch,
                    })
                })
            })
            .filter(|h| h.leader >= 0 && h.epoch >= 0)
            .collect();
        if hints.is_empty() {
            return;
        }
        let installed = self
            .shared
            .install(|c| c.with_leader_hints(&hints, &resp.node_endpoints), None);
        if installed.is_some() {
            log::debug!("{}: applied leader hints {hints:?}", self.label());
        }
    }

    fn on_partition_response(&mut self, d: Drained, p: &PartitionProduceResponse, now: Instant) {
        let code = ErrorCode(p.error_code);
        // A leader hint (or a refresh) that has already moved the partition
        // away from this broker makes a metadata request needless.
        if code.is_invalid_metadata() && d.queue.leader() == self.node {
            self.shared.metadata.request_update();
        }
        let acc = &self.shared.accumulator;
        let mut batch = facts(&d);
        // A sequence error is retried only if the accumulator says a retry
        // can mend it (it may bump the epoch first).
        batch.sequenced = decide::is_sequence_error(code)
            && acc.sequence_error(&d.queue, &d.batch, code == ErrorCode::UNKNOWN_PRODUCER_ID);
        let verdict = decide::on_answer(&self.shared.cfg, code, batch, self.can_retry(), now);
        let d = match verdict {
            Verdict::Delivered => {
                acc.complete(
                    &d.queue,
                    d.batch,
                    Ok(Delivered {
                        base_offset: p.base_offset,
                        log_append_time: p.log_append_time_ms,
                    }),
                );
                return;
            }
            // Too large for the broker (its max.message.bytes is below our
            // batch.size): split in two and send again.
            Verdict::Split => {
                let records = d.batch.record_count();
                match acc.split_and_reenqueue(&d.queue, d.batch, now) {
                    Ok(()) => {
                        acc.metrics().on_split();
                        log::debug!(
                            "{}: {}-{} refused {records} records as too large; split in two",
                            self.label(),
                            d.queue.topic,
                            d.queue.partition
                        );
                        return;
                    }
                    Err(batch) => Drained {
                        queue: d.queue,
                        batch,
                    },
                }
            }
            _ => d,
        };
        let message = p
            .error_message
            .clone()
            .or_else(|| p.record_errors.iter().find_map(|(_, m)| m.clone()));
        let err = Error::Broker {
            code,
            topic: d.queue.topic.to_string(),
            partition: d.queue.partition,
            message,
        };
        let verdict = match verdict {
            Verdict::Split => Verdict::Fail, // it could not be split
            v => v,
        };
        self.carry_out(d, verdict, err, now);
    }

    /// False once nothing may be sent again: a stopping thread has no one
    /// to hand a retry to (close has already drained what it could), and an
    /// aborting producer fails everything.
    fn can_retry(&self) -> bool {
        !self.stopping && !self.shared.lifecycle.is_aborting()
    }

    /// Retries or fails a batch whose request failed without an answer
    /// for it (a disconnect is `retriable`; an undecodable answer is not).
    fn fail_or_retry(&mut self, d: Drained, err: Error, retriable: bool, now: Instant) {
        let verdict = decide::on_failure(
            &self.shared.cfg,
            retriable,
            facts(&d),
            self.can_retry(),
            now,
        );
        self.carry_out(d, verdict, err, now);
    }

    /// Does what `verdict` (a retry or a failure) says with a failed batch.
    fn carry_out(&mut self, d: Drained, verdict: Verdict, err: Error, now: Instant) {
        let acc = &self.shared.accumulator;
        match verdict {
            // The backoff is for this leader: if the partition moves (a
            // leader hint, a refresh), its new leader sends it at once.
            Verdict::Retry(backoff) => {
                log::debug!(
                    "{}: retrying {}-{} (attempt {}) in {:?}: {err}",
                    self.label(),
                    d.queue.topic,
                    d.queue.partition,
                    d.batch.attempts + 1,
                    backoff
                );
                acc.reenqueue(&d.queue, d.batch, later(now, backoff));
            }
            Verdict::Expired => {
                let e = acc.delivery_timeout_error(&d.batch, now, "retrying");
                acc.complete(&d.queue, d.batch, Err(e));
            }
            Verdict::Fail | Verdict::Split | Verdict::Delivered => {
                acc.complete(&d.queue, d.batch, Err(err));
            }
        }
    }

    /// Fails in-flight batches past their delivery timeout, and drops the
    /// connection if the oldest request has waited `request.timeout.ms`.
    fn check_in_flight(&mut self, now: Instant) {
        let acc = self.shared.accumulator.clone();
        let cfg = self.shared.cfg.clone();
        for f in &mut self.in_flight {
            if f.expires.is_none_or(|t| now < t) {
                continue;
            }
            for slot in &mut f.batches {
                if slot
                    .batch
                    .as_ref()
                    .is_some_and(|b| decide::expired(&cfg, b.created, now))
                {
                    let b = slot.batch.take().expect("checked");
                    let e = acc.delivery_timeout_error(&b, now, "in flight");
                    acc.complete(&slot.queue, b, Err(e));
                }
            }
            f.expires = f.next_expiry(&cfg);
        }
        if let Some(f) = self.in_flight.front() {
            if decide::request_overdue(&self.shared.cfg, f.sent_at, now) {
                let why = format!(
                    "request {} got no response within request.timeout.ms ({} ms)",
                    f.correlation_id,
                    self.shared.cfg.request_timeout.as_millis()
                );
                self.disconnect(&why, now);
            }
        }
        if let Some(deadline) = self.idle_deadline() {
            if now >= deadline {
                log::debug!("{}: closing idle connection", self.label());
                self.close_connection();
            }
        }
    }

    /// When this thread may retire: `metadata.max.age.ms` after it last
    /// led a partition or held a request.
    fn retire_at(&mut self, now: Instant) -> Option<Instant> {
        if !self.drainer.partitions().is_empty() || !self.in_flight.is_empty() || self.stopping {
            self.idle_since = None;
            return None;
        }
        let since = *self.idle_since.get_or_insert(now);
        Some(later(since, self.shared.cfg.metadata_max_age))
    }

    fn idle_deadline(&self) -> Option<Instant> {
        let idle = self.shared.cfg.connections_max_idle?;
        (self.wire.is_some() && self.in_flight.is_empty()).then(|| later(self.last_activity, idle))
    }

    /// Closes the connection the polite way (see
    /// [`Connection::close_gracefully`](super::conn::Connection::close_gracefully)),
    /// waiting at most a second.
    fn close_connection(&mut self) {
        if let Some(wire) = self.wire.take() {
            let linger = Duration::from_secs(1).min(self.shared.cfg.request_timeout);
            self.wants.push_back(Want::Close {
                wire,
                graceful: true,
                linger,
            });
        }
    }

    /// Drops the connection at once (after an error, or a forced close).
    fn drop_connection(&mut self) {
        if let Some(wire) = self.wire.take() {
            self.wants.push_back(Want::Close {
                wire,
                graceful: false,
                linger: Duration::ZERO,
            });
        }
    }

    /// Drops the connection; its in-flight batches are retried or failed
    /// as a network error, and metadata is refreshed (the leader may have
    /// moved).
    pub(crate) fn disconnect(&mut self, why: &str, now: Instant) {
        if self.wire.is_none() {
            return;
        }
        let (level, note) = self.fault_log.level(log::Level::Warn, now);
        log::log!(level, "{}: disconnecting: {why}{note}", self.label());
        self.drop_connection();
        let err = Error::Network {
            broker: self.label(),
            message: why.to_owned(),
        };
        // Newest first: each retry goes to the front of its deque, so this
        // leaves the oldest batch of a partition at the front.
        let mut in_flight: Vec<InFlight> = self.in_flight.drain(..).collect();
        for f in in_flight.iter_mut().rev() {
            for d in f.batches.iter_mut().filter_map(Slot::take) {
                self.fail_or_retry(d, err.clone(), true, now);
            }
        }
        for f in in_flight {
            f.done(&self.shared.accumulator);
        }
        self.shared.metadata.request_update();
        self.schedule_reconnect(now);
    }

    /// Fails everything this core holds (forced close, `Control::Abort`).
    pub(crate) fn fail_all(&mut self, err: Error) {
        let acc = self.shared.accumulator.clone();
        for mut f in self.in_flight.drain(..) {
            for d in f.batches.iter_mut().filter_map(Slot::take) {
                acc.complete(&d.queue, d.batch, Err(err.clone()));
            }
            f.done(&acc);
        }
        self.drop_connection();
    }

    /// After a panic in the driver's loop (a bug of ours, or a hostile
    /// answer we failed to anticipate): fails what the core holds instead
    /// of leaving its records without an outcome, and makes sure its
    /// partitions are not stranded.
    pub(crate) fn panicked(&mut self, what: &str) {
        self.sensors.in_flight.store(0, Ordering::Relaxed);
        log::error!("{}: I/O thread panicked: {what}", self.label());
        let err = Error::Internal(format!(
            "the I/O thread of node {} panicked: {what}",
            self.node
        ));
        self.fail_all(err.clone());
        // Forget this core, so the next metadata refresh starts a fresh
        // one for the node, or, if the producer is stopping (no new
        // threads), fail what waits.
        if self.shared.forget_broker(self.node) {
            let partitions = self.shared.accumulator.partitions_led_by(self.node);
            self.shared
                .accumulator
                .abort_queued(Some(&partitions), &err);
        } else {
            self.shared.metadata.request_update();
        }
    }
}

/// What the decisions need to know of a drained batch.
fn facts(d: &Drained) -> decide::Batch {
    decide::Batch {
        attempts: d.batch.attempts,
        created: d.batch.created,
        records: d.batch.record_count(),
        sequenced: d.batch.identity().is_some(),
    }
}

/// The answer for `topic`-`partition` in `resp`. Brokers answer in the
/// request's order, so it is looked for first where the last one was found
/// (`hint`: topic and partition index after it), then everywhere: a request
/// of n partitions is matched in O(n) rather than O(n²).
fn find_answer<'r>(
    resp: &'r ProduceResponse,
    hint: &mut (usize, usize),
    topic: &str,
    partition: i32,
) -> Option<&'r PartitionProduceResponse> {
    let at = |t: usize, p: usize| {
        let tr = resp.responses.get(t)?;
        let pr = tr.partition_responses.get(p)?;
        (tr.name == topic && pr.index == partition).then_some(pr)
    };
    let (t, p) = *hint;
    if let Some(pr) = at(t, p) {
        *hint = (t, p + 1);
        return Some(pr);
    }
    if let Some(pr) = at(t + 1, 0) {
        *hint = (t + 1, 1);
        return Some(pr);
    }
    for (t, tr) in resp.responses.iter().enumerate() {
        if tr.name != topic {
            continue;
        }
        if let Some(p) = tr
            .partition_responses
            .iter()
            .position(|r| r.index == partition)
        {
            *hint = (t, p + 1);
            return Some(&tr.partition_responses[p]);
        }
    }
    None
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Client ids whose I/O threads panic at their next send, and how often.
    pub(crate) static PANIC: parking_lot::Mutex<Vec<(String, usize)>> =
        parking_lot::Mutex::new(Vec::new());

    pub(crate) fn maybe_panic(client_id: &str) {
        let mut p = PANIC.lock();
        if let Some(e) = p.iter_mut().find(|(c, n)| c == client_id && *n > 0) {
            e.1 -= 1;
            drop(p);
            panic!("injected panic in the I/O thread of {client_id}");
        }
    }

    /// Answers are found in the request's order, out of it, across
    /// topics, and a partition without one is missing, not another's.
    #[test]
    fn each_batch_finds_its_own_answer_in_any_order() {
        use crate::protocol::messages::produce::TopicProduceResponse;
        let part = |index: i32| PartitionProduceResponse {
            index,
            error_code: 0,
            base_offset: 100 + i64::from(index),
            log_append_time_ms: -1,
            log_start_offset: 0,
            record_errors: Vec::new(),
            error_message: None,
            current_leader: None,
        };
        let resp = ProduceResponse {
            responses: vec![
                TopicProduceResponse {
                    name: "a".into(),
                    partition_responses: vec![part(0), part(1), part(2)],
                },
                TopicProduceResponse {
                    name: "b".into(),
                    partition_responses: vec![part(1), part(0)],
                },
            ],
            ..ProduceResponse::default()
        };
        let mut hint = (0, 0);
        let mut found =
            |t: &str, p: i32| find_answer(&resp, &mut hint, t, p).map(|r| (r.index, r.base_offset));
        assert_eq!(found("a", 0), Some((0, 100)));
        assert_eq!(found("a", 1), Some((1, 101)));
        assert_eq!(found("b", 0), Some((0, 100)), "out of order");
        assert_eq!(found("a", 2), Some((2, 102)), "back to the first topic");
        assert_eq!(found("b", 1), Some((1, 101)));
        assert_eq!(found("b", 2), None);
        assert_eq!(found("c", 0), None);
    }
}
