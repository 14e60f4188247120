//! One I/O thread per broker: drains the ready batches of the partitions
//! that broker leads, writes one Produce request covering all of them (up
//! to `max.request.size`), keeps up to
//! `max.in.flight.requests.per.connection` requests in flight, reads the
//! responses and completes, retries or fails each batch.
//!
//! The thread blocks only in `mio::Poll::poll`, which returns when its
//! socket is readable or writable, when `send` or the metadata thread wakes
//! it through its [`DrainSignal`], or when its next deadline (a linger
//! expiry, a retry backoff, a request timeout) comes. Opening a connection
//! (DNS, TCP connect, ApiVersions: blocking calls) runs on a short-lived
//! connector thread, which hands the connection back through a channel and
//! wakes the loop; meanwhile the loop still expires batches and obeys
//! `close`.
//!
//! Callbacks run on this thread, in record order per partition. A slow
//! callback delays every partition this broker leads; a panicking one is
//! caught (see `accumulator/batch.rs`).

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::conn::{Connection, SocketBuffers, Transport};
use super::decide::{self, jittered, Verdict};
use super::IoShared;
use crate::accumulator::{DrainSignal, Drained, Drainer, PartitionQueue, ProducerBatch};
use crate::config::Acks;
use crate::error::Error;
use crate::future::Delivered;
use crate::metadata::LeaderHint;
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

/// The poll token of the thread's waker.
pub(crate) const WAKE: Token = Token(0);
const SOCKET: Token = Token(1);

/// Messages from the producer to an I/O thread.
#[derive(Debug)]
pub(crate) enum Control {
    /// Finish what is in flight, then exit.
    Stop,
    /// Fail everything in flight with this error and exit now.
    Abort(Error),
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

/// The state of one broker's I/O thread.
pub(crate) struct BrokerThread {
    node: i32,
    shared: Arc<IoShared>,
    signal: Arc<DrainSignal>,
    control: Receiver<Control>,
    poll: Poll,
    conn: Option<Connection>,
    produce_version: i16,
    /// Requests in order, acks=0 ones included: they count against
    /// `max.in.flight.requests.per.connection` and `request.timeout.ms`
    /// until their bytes are written.
    in_flight: VecDeque<InFlight>,
    /// The partitions this broker leads, and which of them have work.
    drainer: Drainer,
    reconnect_at: Option<Instant>,
    reconnect_failures: u32,
    /// A connection being opened by a connector thread: its result, once
    /// there, with the negotiated Produce version.
    connecting: Option<Receiver<crate::error::Result<(Connection, i16)>>>,
    last_activity: Instant,
    /// This thread has taken `Control::Stop` off its channel: it drains no
    /// more, hands nothing back for a retry, and exits once its requests
    /// are answered. Not the producer's `Stopped` phase read afresh: it is
    /// set at the top of a cycle, so a whole cycle sees one answer, and it
    /// is an order to this thread, not a fact about the producer. It
    /// implies the phase (`Io::stop` moves to `Stopped` before it sends
    /// `Stop`), so with it the producer is aborting too.
    stopping: bool,
    /// Since when this thread has led no partition and held no request.
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
    /// channel; here the thread drains nothing until then, and still reads
    /// the answers to what is in flight.
    throttled_until: Option<Instant>,
}

impl BrokerThread {
    pub(crate) fn new(
        node: i32,
        shared: Arc<IoShared>,
        poll: Poll,
        signal: Arc<DrainSignal>,
        control: Receiver<Control>,
    ) -> Self {
        BrokerThread {
            node,
            shared: shared.clone(),
            drainer: Drainer::new(node, signal.clone()),
            signal,
            control,
            poll,
            conn: None,
            produce_version: produce::MIN_VERSION,
            in_flight: VecDeque::new(),
            reconnect_at: None,
            reconnect_failures: 0,
            connecting: None,
            last_activity: Instant::now(),
            stopping: false,
            idle_since: None,
            poisoned: None,
            fault_log: LogLimiter::new(super::FAULT_LOG_INTERVAL),
            sensors: shared.accumulator.metrics().node(node),
            throttled_until: None,
        }
    }

    /// The thread's body. A panic inside the loop (a bug, or a hostile
    /// answer we failed to anticipate) fails what the thread holds instead
    /// of leaving its records without an outcome.
    pub(crate) fn run(mut self) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_loop()));
        self.sensors.in_flight.store(0, Ordering::Relaxed);
        if let Err(p) = r {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error!("{}: I/O thread panicked: {what}", self.label());
            let err = Error::Internal(format!(
                "the I/O thread of node {} panicked: {what}",
                self.node
            ));
            self.fail_all(err.clone());
            // Its partitions must not be stranded: forget this thread, so
            // the next metadata refresh starts a fresh one for the node, or,
            // if the producer is stopping (no new threads), fail what waits.
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

    /// The loop; returns when told to stop (after its in-flight requests
    /// are answered) or to abort.
    fn run_loop(&mut self) {
        let mut events = Events::with_capacity(8);
        loop {
            self.signal.begin_cycle();
            if let Some(abort) = self.handle_control() {
                self.fail_all(abort);
                return;
            }
            let now = Instant::now();
            self.drainer.refresh(&self.shared.accumulator, now);
            self.check_in_flight(now);
            self.drainer.expire(&self.shared.accumulator, now);
            let (mut next_wake, window_full) = self.send_ready(now);
            if let Err(e) = self.flush_writes() {
                self.disconnect(&format!("write failed: {e}"), now);
            }
            // acks=0 requests leave the window once written, with no
            // response to wake us: go round again while there is room.
            if window_full && self.in_flight.len() < self.shared.cfg.max_in_flight {
                continue;
            }
            if self.stopping && self.in_flight.is_empty() {
                self.close_connection();
                return;
            }
            if let Some(f) = self.in_flight.front() {
                next_wake = earliest(
                    next_wake,
                    Some(later(f.sent_at, self.shared.cfg.request_timeout)),
                );
            }
            next_wake = earliest(next_wake, self.idle_deadline());
            match self.retire_at(now) {
                Some(t) if t <= now => {
                    if self.shared.retire_broker(self.node) {
                        log::debug!("{}: leads nothing; thread retired", self.label());
                        self.close_connection();
                        return;
                    }
                    self.idle_since = None;
                }
                t => next_wake = earliest(next_wake, t),
            }
            next_wake = earliest(
                next_wake,
                self.drainer.next_expiry(&self.shared.accumulator),
            );
            let until = next_wake.map_or(u64::MAX, |t| self.shared.accumulator.nanos(t));
            (self.sensors.in_flight).store(self.in_flight.len(), Ordering::Relaxed);
            if !self.signal.prepare_sleep(until) {
                continue;
            }
            let timeout = next_wake.map(|t| {
                let d = t.saturating_duration_since(Instant::now());
                // mio rounds down to whole milliseconds; never spin on 0.
                d.max(Duration::from_millis(1)).min(Duration::from_secs(60))
            });
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("{}: poll failed: {e}", self.label());
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            for ev in events.iter() {
                if ev.token() == SOCKET {
                    self.on_socket_ready(ev.is_readable() || ev.is_read_closed() || ev.is_error());
                }
            }
        }
    }

    fn label(&self) -> String {
        format!("{} node {}", self.shared.cfg.client_id, self.node)
    }

    fn handle_control(&mut self) -> Option<Error> {
        while let Ok(msg) = self.control.try_recv() {
            match msg {
                Control::Stop => self.stopping = true,
                Control::Abort(e) => return Some(e),
            }
        }
        None
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
        if self.conn.is_none() {
            if let Some(t) = self.reconnect_at.filter(|t| *t > now) {
                return (Some(t), false);
            }
            if !self.connect() {
                // While a connector works, its wake-up is the next event.
                let next = if self.connecting.is_some() {
                    None
                } else {
                    self.reconnect_at
                };
                return (next, false);
            }
        }
        // KIP-368: the SASL session nears its end. Send nothing new; once
        // every answer is in, authenticate again on a connector thread.
        if self.conn.as_ref().is_some_and(|c| c.reauth_due(now)) {
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

    /// Returns true once connected. The first call starts a connector
    /// thread; later calls collect its result (false while it works).
    fn connect(&mut self) -> bool {
        if let Some(rx) = &self.connecting {
            let result = match rx.try_recv() {
                Ok(r) => r,
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => Err(Error::Network {
                    broker: self.label(),
                    message: "the connector thread died".into(),
                }),
            };
            self.connecting = None;
            return self.connected(result);
        }
        let cluster = self.shared.metadata.cluster();
        let Some(node) = cluster.node(self.node).cloned() else {
            self.schedule_reconnect(Instant::now());
            return false;
        };
        let cfg = &self.shared.cfg;
        let label = format!("node {node}");
        let setup = cfg
            .connection_setup_timeout
            .saturating_mul(2u32.saturating_pow(self.reconnect_failures.min(8)))
            .min(cfg.connection_setup_timeout_max);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (client_id, request_timeout) = (cfg.client_id.clone(), cfg.request_timeout);
        let buffers = SocketBuffers::of(cfg);
        let tls = cfg.tls.clone();
        let sasl = cfg.sasl.clone();
        let codec = cfg.compression_codec();
        let signal = self.signal.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-c{}", cfg.client_id, self.node))
            .spawn(move || {
                let r = Connection::open(
                    label,
                    &node.host,
                    node.port,
                    &client_id,
                    setup,
                    request_timeout,
                    buffers,
                    tls.as_deref(),
                    sasl.as_deref(),
                )
                .and_then(|c| {
                    // zstd needs Produce v7+ (KIP-110): an older broker
                    // cannot take these batches at all.
                    let v = match codec.min_produce_version() {
                        7.. => c.version_from(&produce::API, 7, "Produce with zstd compression")?,
                        _ => c.version_for(&produce::API)?,
                    };
                    Ok((c, v))
                });
                // The I/O thread may have gone (close): then the connection
                // is simply dropped.
                if tx.send(r).is_ok() {
                    signal.wake_now();
                }
            });
        match spawned {
            Ok(_) => {
                self.connecting = Some(rx);
                false
            }
            Err(e) => self.connected(Err(Error::Network {
                broker: self.label(),
                message: format!("cannot start a connector thread: {e}"),
            })),
        }
    }

    /// Re-authenticates the connection (KIP-368) on a connector thread,
    /// with nothing in flight on it; its outcome comes back as a new
    /// connection's does ([`connected`](Self::connected)), so a refusal is
    /// handled as one at connect time.
    fn start_reauth(&mut self) {
        let Some(sasl) = self.shared.cfg.sasl.clone() else {
            return;
        };
        let Some(mut conn) = self.take_connection() else {
            return;
        };
        log::debug!("{}: re-authenticating ({})", self.label(), sasl.mechanism());
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (v, timeout) = (self.produce_version, self.shared.cfg.request_timeout);
        let signal = self.signal.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-a{}", self.shared.cfg.client_id, self.node))
            .spawn(move || {
                let r = conn.authenticate(&sasl, timeout).map(|()| (conn, v));
                if tx.send(r).is_ok() {
                    signal.wake_now();
                }
            });
        match spawned {
            Ok(_) => self.connecting = Some(rx),
            Err(e) => {
                self.connected(Err(Error::Network {
                    broker: self.label(),
                    message: format!("cannot start a re-authentication thread: {e}"),
                }));
            }
        }
    }

    /// Takes the outcome of a connection attempt.
    fn connected(&mut self, result: crate::error::Result<(Connection, i16)>) -> bool {
        match result {
            Ok((conn, v)) => {
                if let Err(e) = conn.transport().set_nonblocking(true).and_then(|()| {
                    let fd = conn.transport().as_raw_fd();
                    self.poll.registry().register(
                        &mut SourceFd(&fd),
                        SOCKET,
                        Interest::READABLE | Interest::WRITABLE,
                    )
                }) {
                    let (level, note) = self.fault_log.level(log::Level::Warn, Instant::now());
                    log::log!(
                        level,
                        "{}: cannot poll the new connection: {e}{note}",
                        self.label()
                    );
                    self.schedule_reconnect(Instant::now());
                    return false;
                }
                log::debug!("{}: connected, Produce v{v}", self.label());
                self.conn = Some(conn);
                self.produce_version = v;
                self.reconnect_failures = 0;
                self.reconnect_at = None;
                self.last_activity = Instant::now();
                true
            }
            Err(e) => {
                let (level, note) = self.fault_log.level(log::Level::Warn, Instant::now());
                log::log!(level, "{}: {e}{note}", self.label());
                self.shared.metadata.request_update();
                self.schedule_reconnect(Instant::now());
                // A broker that speaks no Produce version we can send will
                // never take these batches: fail them now, loudly.
                // Nor will one that refuses to authenticate us (Java's
                // Sender fails the batches of an AuthenticationException).
                if let Error::UnsupportedVersion { .. } | Error::Authentication { .. } = e {
                    self.fail_queued(&e);
                }
                false
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
        let conn = self.conn.as_mut().expect("connected");
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
        let correlation_id = conn.enqueue(&produce::API, version, |buf| {
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
                produce::write_topic(buf, version, topic, n);
                for d in &drained[i..i + n] {
                    produce::write_partition(
                        buf,
                        version,
                        d.queue.partition,
                        &d.batch.wire_parts(),
                    );
                }
                produce::end_topic(buf, version);
                i += n;
            }
            produce::end_request(buf, version);
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
        self.in_flight.push_back(InFlight {
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
        });
    }

    fn flush_writes(&mut self) -> std::io::Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        conn.write_some()?;
        let written = conn.written_total();
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
        Ok(())
    }

    fn on_socket_ready(&mut self, readable: bool) {
        let now = Instant::now();
        if let Err(e) = self.flush_writes() {
            self.disconnect(&format!("write failed: {e}"), now);
            return;
        }
        if !readable {
            return;
        }
        // Take the connection out so responses can be handled (which needs
        // `&mut self`) straight from its read buffer, without a copy.
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // The next frame answers one of the requests in flight (responses
        // come in order): none can be larger than the largest of their
        // bounds. The floor admits the answers some brokers send to acks=0
        // requests, which are no longer in flight by then.
        conn.set_max_frame(
            self.in_flight
                .iter()
                .map(|f| f.max_response)
                .fold(STRAY_RESPONSE_MAX, usize::max),
        );
        let read = conn.read_some();
        // Handle every complete frame, even if the read then failed: the
        // broker may answer and close.
        let frames = loop {
            match conn.next_frame(|corr, frame| self.on_response(corr, frame, now)) {
                Ok(Some(())) => {}
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.conn = Some(conn);
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
        for f in &mut self.in_flight {
            for slot in &mut f.batches {
                if slot
                    .batch
                    .as_ref()
                    .is_some_and(|b| decide::expired(&self.shared.cfg, b.created, now))
                {
                    let b = slot.batch.take().expect("checked");
                    let e = acc.delivery_timeout_error(&b, now, "in flight");
                    acc.complete(&slot.queue, b, Err(e));
                }
            }
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
        (self.conn.is_some() && self.in_flight.is_empty()).then(|| later(self.last_activity, idle))
    }

    /// Closes the connection the polite way (see
    /// [`Connection::close_gracefully`]), waiting at most a second.
    fn close_connection(&mut self) {
        if let Some(conn) = self.take_connection() {
            conn.close_gracefully(Duration::from_secs(1).min(self.shared.cfg.request_timeout));
        }
    }

    /// Drops the connection at once (after an error, or a forced close).
    fn drop_connection(&mut self) {
        drop(self.take_connection());
    }

    /// Takes the connection out of the poller.
    fn take_connection(&mut self) -> Option<Connection> {
        let conn = self.conn.take()?;
        let fd = conn.transport().as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        Some(conn)
    }

    /// Drops the connection; its in-flight batches are retried or failed
    /// as a network error, and metadata is refreshed (the leader may have
    /// moved).
    fn disconnect(&mut self, why: &str, now: Instant) {
        if self.conn.is_none() {
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

    /// Fails everything this thread holds (forced close).
    fn fail_all(&mut self, err: Error) {
        let acc = self.shared.accumulator.clone();
        for mut f in self.in_flight.drain(..) {
            for d in f.batches.iter_mut().filter_map(Slot::take) {
                acc.complete(&d.queue, d.batch, Err(err.clone()));
            }
            f.done(&acc);
        }
        self.drop_connection();
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
    use std::process::{Child, Command, Stdio};

    /// Client ids whose I/O threads panic at their next send, and how often.
    static PANIC: parking_lot::Mutex<Vec<(String, usize)>> = parking_lot::Mutex::new(Vec::new());

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

    /// A private librdkafka mock cluster (`KP_MOCK_BIN`, exported by
    /// scripts/test.sh), killed on drop.
    struct Mock(Child, std::path::PathBuf);

    impl Mock {
        fn start(topic: &str) -> (Mock, String) {
            let bin = std::env::var("KP_MOCK_BIN").expect(
                "KP_MOCK_BIN is not set: run the tests with scripts/test.sh, or \
                 eval \"$(scripts/brokers.sh env)\"",
            );
            // One directory per mock: tests run in parallel.
            let dir =
                std::env::temp_dir().join(format!("kp-unit-mock-{}-{topic}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let bs = dir.join("bootstrap");
            let child = Command::new(bin)
                .args(["-b", "1", "-t", &format!("{topic}:1")])
                .arg("-f")
                .arg(&bs)
                .arg("-c")
                .arg(dir.join("ctl"))
                .arg("-a")
                .arg(dir.join("ack"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the mock cluster");
            let mock = Mock(child, dir); // killed on drop, even if the wait fails
            let t0 = Instant::now();
            loop {
                if let Ok(s) = std::fs::read_to_string(&bs) {
                    if !s.trim().is_empty() {
                        return (mock, s.trim().to_owned());
                    }
                }
                assert!(t0.elapsed() < Duration::from_secs(10), "mock did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for Mock {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }

    /// A panic in the I/O thread (a bug of ours) strands nothing: the
    /// partitions it led get a fresh thread and their records are
    /// delivered; flush and close return.
    #[test]
    fn a_panicking_io_thread_strands_nothing() {
        use crate::{ByteArraySerializer, Producer, ProducerConfig, ProducerRecord};
        let (_mock, bootstrap) = Mock::start("pan");
        let cfg = ProducerConfig::new()
            .bootstrap_servers(bootstrap)
            .client_id("panicky")
            .linger(Duration::ZERO);
        let p: Producer<[u8], [u8]> =
            Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap();
        p.send(ProducerRecord::new("pan", &b"before"[..]))
            .unwrap()
            .get()
            .unwrap();
        PANIC.lock().push(("panicky".into(), 1));
        let h = p.send(ProducerRecord::new("pan", &b"during"[..])).unwrap();
        let m = h
            .get_timeout(Duration::from_secs(20))
            .expect("the record queued when the thread panicked is delivered");
        assert!(m.has_offset());
        assert!(
            PANIC.lock().iter().all(|(c, n)| c != "panicky" || *n == 0),
            "the panic was injected"
        );
        p.flush().unwrap();
        p.send(ProducerRecord::new("pan", &b"after"[..]))
            .unwrap()
            .get()
            .unwrap();
        p.close_timeout(Duration::from_secs(5)).unwrap();
    }

    /// A panic while a response's batches sit in a local (taken out of
    /// their in-flight slots, not yet completed): they fail with
    /// `Error::Internal` instead of never completing; flush, later sends
    /// and close work.
    #[test]
    fn a_panic_while_handling_a_response_fails_its_batches_and_strands_nothing() {
        use crate::{ByteArraySerializer, Producer, ProducerConfig, ProducerRecord};
        let (_mock, bootstrap) = Mock::start("pan2");
        let cfg = ProducerConfig::new()
            .bootstrap_servers(bootstrap)
            .client_id("panicky2")
            .linger(Duration::ZERO);
        let p: Producer<[u8], [u8]> =
            Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap();
        p.send(ProducerRecord::new("pan2", &b"before"[..]))
            .unwrap()
            .get()
            .unwrap();
        PANIC.lock().push(("panicky2/response".into(), 1));
        let h = p.send(ProducerRecord::new("pan2", &b"during"[..])).unwrap();
        match h.get_timeout(Duration::from_secs(20)) {
            Err(Error::Internal(_)) => {}
            other => panic!("expected an internal error, got {other:?}"),
        }
        p.flush().unwrap();
        p.send(ProducerRecord::new("pan2", &b"after"[..]))
            .unwrap()
            .get()
            .unwrap();
        p.close_timeout(Duration::from_secs(5)).unwrap();
    }
}
