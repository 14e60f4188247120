//! A deterministic simulation of the producer under faults, on one thread
//! with a virtual clock: the same `BrokerCore` (`io/core.rs`) and `MetadataCore` (`io/metadata.rs`) the
//! I/O threads drive, the same accumulator `send` appends to, against the
//! broker [`Model`], with every choice (configuration, sends, delays,
//! drops, cuts, leader moves, broker loss, `flush`, `close_timeout`) drawn
//! from one seeded generator. A schedule replays exactly from its seed.
//!
//! What stands in for what the threads do:
//!
//! - **Sending threads**: several simulated senders append records at
//!   their drawn instants, as `send` does (`max.block.ms=0`: a send that
//!   would wait is refused, and a refused record is not checked).
//! - **Broker I/O threads**: each core's cycle (`tick`, write, `plan`) runs
//!   every step; its writes go to the model frame by frame, and the
//!   model's answers come back after their latency plus a drawn jitter, in
//!   order, unless the connection is cut first.
//! - **Connector threads**: a connection is set up synchronously against
//!   the model (the real ApiVersions exchange over an in-memory transport)
//!   and handed to the core after a drawn delay; a broker that is down
//!   refuses, or hangs until the set-up timeout.
//! - **The metadata thread**: a `MetadataCore` whose fetches go to the
//!   model the same way (the real Metadata and InitProducerId codecs).
//! - **`close_timeout(d)`**: the close moves, and at `d` the abort, as
//!   `Producer::close_timeout` makes them.
//!
//! After every schedule ([`run`]) the invariants are checked; a violation
//! names the seed that replays it.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Action, Api, Fault, MockConfig, Model};
use crate::accumulator::callbacks::Pending;
use crate::accumulator::{AccumulatorConfig, RecordAccumulator, RecordParts};
use crate::clock::Virtual;
use crate::config::ProducerConfig;
use crate::error::{Error, Result};
use crate::io::conn::{Connection, Transport, Wire};
use crate::io::core::{BrokerCore, Plan, Want};
use crate::io::metadata::{self as meta, FetchOutcome, FetchPlan, MetadataCore};
use crate::io::IoShared;
use crate::lifecycle::Lifecycle;
use crate::metadata::{Metadata, Work};
use crate::metrics::Metrics;
use crate::protocol::records::record_fixed_size;
use crate::protocol::ErrorCode;
use crate::record::RecordMetadata;
use crate::util::Budget;

/// The topic every schedule sends to.
const TOPIC: &str = "sim";

/// A schedule that has not finished after this many steps spins.
const MAX_STEPS: usize = 200_000;

/// The seeded generator every choice of a schedule comes from
/// (SplitMix64: small, fast, and good enough to explore with).
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }

    fn pick<T: Copy>(&mut self, of: &[T]) -> T {
        of[self.next_u64() as usize % of.len()]
    }
}

/// What one schedule did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimReport {
    /// The schedule's seed.
    pub seed: u64,
    /// Brokers in the cluster.
    pub brokers: usize,
    /// Records `send` accepted.
    pub accepted: usize,
    /// Records refused by `send` (no metadata yet, no memory, closed).
    pub refused: usize,
    /// Accepted records that were delivered.
    pub delivered: usize,
    /// Accepted records that failed.
    pub failed: usize,
    /// Faults the schedule injected.
    pub faults: usize,
    /// Virtual milliseconds the schedule ran.
    pub virtual_ms: u64,
    /// A digest of everything observable (outcomes, offsets, the logs):
    /// the same seed gives the same digest.
    pub digest: u64,
}

/// An invariant a schedule broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimViolation {
    /// The seed that replays it (`SIM_SEED=<seed>`).
    pub seed: u64,
    /// What was broken, with the record, partition and instant.
    pub what: String,
    /// The schedule's configuration and events, for the report.
    pub schedule: String,
}

impl fmt::Display for SimViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}: {}\n  replay: SIM_SEED={} cargo test --release --test simulation\n{}",
            self.seed, self.what, self.seed, self.schedule
        )
    }
}

impl std::error::Error for SimViolation {}

/// One event of a schedule, at a virtual instant (ms from its start).
#[derive(Debug, Clone)]
enum Event {
    Send {
        sender: u32,
        id: u32,
        partition: i32,
        pad: usize,
    },
    Flush,
    Close {
        timeout: Duration,
    },
    Inject(Fault),
    Latency {
        broker: i32,
        latency: Duration,
    },
    Down {
        broker: i32,
    },
    Up {
        broker: i32,
    },
    MoveLeader {
        partition: i32,
        to: i32,
    },
    Cut {
        broker: i32,
    },
}

/// A drawn schedule: the cluster, the configuration, the events.
struct Schedule {
    brokers: usize,
    partitions: i32,
    config: Vec<(&'static str, String)>,
    events: Vec<(u64, Event)>,
    /// Per-delivery jitter bound and connect delay bound (ms).
    jitter_ms: u64,
    connect_ms: u64,
    /// When the last fault was healed (ms): records sent well after it
    /// must be delivered.
    healed_ms: u64,
    faults: usize,
}

impl Schedule {
    fn draw(rng: &mut SimRng) -> Schedule {
        let brokers = rng.range(1, 5) as usize;
        let partitions = rng.range(1, 4) as i32;
        let idempotent = rng.chance(50);
        let mut config: Vec<(&'static str, String)> = Vec::new();
        let mut set = |k: &'static str, v: String| config.push((k, v));
        let (acks, in_flight) = if idempotent {
            ("all", rng.range(1, 5))
        } else {
            (rng.pick(&["0", "1", "1", "all"]), rng.range(1, 5))
        };
        set("enable.idempotence", idempotent.to_string());
        set("acks", acks.into());
        set(
            "max.in.flight.requests.per.connection",
            in_flight.to_string(),
        );
        if !idempotent {
            set("retries", rng.pick(&["0", "3", "2147483647"]).into());
        }
        let linger = rng.range(0, 20);
        let request_timeout = rng.range(30, 400);
        let delivery = linger + request_timeout + rng.range(0, 3000);
        set("linger.ms", linger.to_string());
        set("request.timeout.ms", request_timeout.to_string());
        set("delivery.timeout.ms", delivery.to_string());
        let batch = rng.pick(&[150u64, 400, 1000, 16384]);
        set("batch.size", batch.to_string());
        set(
            "buffer.memory",
            rng.pick(&[batch * 4, 65536, 1 << 20])
                .max(batch)
                .to_string(),
        );
        set("max.block.ms", "0".into());
        let backoff = rng.range(1, 50);
        let backoff_max = backoff + rng.range(0, 200);
        set("retry.backoff.ms", backoff.to_string());
        set("retry.backoff.max.ms", backoff_max.to_string());
        let reconnect = rng.range(1, 50);
        let reconnect_max = reconnect + rng.range(0, 300);
        set("reconnect.backoff.ms", reconnect.to_string());
        set("reconnect.backoff.max.ms", reconnect_max.to_string());
        let setup = rng.range(20, 300);
        set("socket.connection.setup.timeout.ms", setup.to_string());
        set(
            "socket.connection.setup.timeout.max.ms",
            (setup + rng.range(0, 500)).to_string(),
        );
        set("metadata.max.age.ms", rng.range(100, 3000).to_string());
        if rng.chance(20) {
            set("connections.max.idle.ms", rng.range(20, 500).to_string());
        }
        let bootstrap: Vec<String> = (1..=brokers)
            .map(|b| format!("127.0.0.1:{}", port_of(b as i32)))
            .collect();
        set("bootstrap.servers", bootstrap.join(","));
        set("client.id", "sim".into());

        let mut events = Vec::new();
        // Sends: a few senders, each a run of records at drawn gaps.
        let senders = rng.range(1, 4) as u32;
        let records = rng.range(5, 120) as u32;
        let mut next_id = 0u32;
        let start = rng.range(0, 30);
        for sender in 0..senders {
            let mut t = start + rng.range(0, 20);
            for _ in 0..records / senders {
                t += rng.pick(&[0, 0, 0, 1, 2, 5, 20, 100]);
                let partition = rng.range(0, partitions as u64 - 1) as i32;
                let pad = rng.pick(&[0usize, 10, 60, 200]);
                events.push((
                    t,
                    Event::Send {
                        sender,
                        id: next_id,
                        partition,
                        pad,
                    },
                ));
                next_id += 1;
            }
        }
        let last_send = events.iter().map(|(t, _)| *t).max().unwrap_or(0);
        // Faults, most schedules a few, some none.
        let calm = rng.chance(20);
        let faults = if calm { 0 } else { rng.range(1, 8) as usize };
        let mut healed_ms = 0;
        let broker = |rng: &mut SimRng| rng.range(1, brokers as u64) as i32;
        for _ in 0..faults {
            let t = rng.range(0, last_send + 300);
            let end = match rng.range(0, 10) {
                0 => {
                    let code = rng.pick(&[
                        ErrorCode::NOT_LEADER_OR_FOLLOWER,
                        ErrorCode::REQUEST_TIMED_OUT,
                        ErrorCode::NOT_ENOUGH_REPLICAS,
                        ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        ErrorCode::CORRUPT_MESSAGE,
                    ]);
                    let mut f = Fault::error(Api::Produce, code).times(rng.range(1, 3) as u32);
                    if rng.chance(50) {
                        f = f.on_broker(broker(rng));
                    }
                    events.push((t, Event::Inject(f)));
                    t + 300
                }
                1 => {
                    let f = Fault::drop_response(Api::Produce).times(rng.range(1, 2) as u32);
                    events.push((t, Event::Inject(f)));
                    t + 300
                }
                2 => {
                    events.push((t, Event::Inject(Fault::cut(Api::Produce))));
                    t + 300
                }
                3 => {
                    let b = broker(rng);
                    let d = rng.range(50, 600);
                    events.push((
                        t,
                        Event::Latency {
                            broker: b,
                            latency: Duration::from_millis(rng.range(5, 500)),
                        },
                    ));
                    events.push((
                        t + d,
                        Event::Latency {
                            broker: b,
                            latency: Duration::ZERO,
                        },
                    ));
                    t + d
                }
                4 | 5 => {
                    let b = broker(rng);
                    let d = rng.range(20, 1500);
                    events.push((t, Event::Down { broker: b }));
                    events.push((t + d, Event::Up { broker: b }));
                    t + d + 300
                }
                6 | 7 => {
                    // A leader move, often while the old leader is slow to
                    // answer (a batch in flight to it when it moves).
                    let p = rng.range(0, partitions as u64 - 1) as i32;
                    let slow = rng.chance(50).then(|| broker(rng));
                    if let Some(b) = slow {
                        events.push((
                            t.saturating_sub(5),
                            Event::Latency {
                                broker: b,
                                latency: Duration::from_millis(rng.range(20, 200)),
                            },
                        ));
                    }
                    events.push((
                        t,
                        Event::MoveLeader {
                            partition: p,
                            to: broker(rng),
                        },
                    ));
                    if let Some(b) = slow {
                        events.push((
                            t + 300,
                            Event::Latency {
                                broker: b,
                                latency: Duration::ZERO,
                            },
                        ));
                    }
                    t + 600
                }
                8 => {
                    let code = rng.pick(&[
                        ErrorCode::LEADER_NOT_AVAILABLE,
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    ]);
                    let f = Fault::error(Api::Metadata, code).times(rng.range(1, 3) as u32);
                    events.push((t, Event::Inject(f)));
                    t + 300
                }
                _ => {
                    events.push((
                        t,
                        Event::Cut {
                            broker: broker(rng),
                        },
                    ));
                    t + 100
                }
            };
            healed_ms = healed_ms.max(end);
        }
        if rng.chance(30) {
            for _ in 0..rng.range(1, 2) {
                events.push((rng.range(0, last_send + 50), Event::Flush));
            }
        }
        if rng.chance(25) {
            let timeout = Duration::from_millis(rng.pick(&[0, 0, 10, 100, 1000, 5000]));
            events.push((rng.range(0, last_send + 200), Event::Close { timeout }));
        }
        // Stable: events at one instant keep their drawn order.
        events.sort_by_key(|(t, _)| *t);
        Schedule {
            brokers,
            partitions,
            config,
            events,
            jitter_ms: rng.pick(&[0, 1, 5]),
            connect_ms: rng.pick(&[0, 1, 10]),
            healed_ms: healed_ms + reconnect_max + backoff_max + 200,
            faults,
        }
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "  cluster: {} brokers, topic {TOPIC} with {} partitions\n  config:",
            self.brokers, self.partitions
        );
        for (k, v) in &self.config {
            s.push_str(&format!(" {k}={v}"));
        }
        s.push_str("\n  events (ms):");
        for (t, e) in &self.events {
            if !matches!(e, Event::Send { .. }) {
                s.push_str(&format!("\n    {t}: {e:?}"));
            }
        }
        let sends = self
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Send { .. }))
            .count();
        s.push_str(&format!("\n    and {sends} sends"));
        s
    }
}

/// The port a broker of the model is given (never connected to).
fn port_of(broker: i32) -> u16 {
    10_000 + broker as u16
}

/// The in-memory transport of a connection being set up, or of a
/// metadata fetch: a blocking exchange with the model, answered at once.
struct Link<'m> {
    model: &'m mut Model,
    broker: i32,
    now_ms: i64,
    out: Vec<u8>,
    input: Vec<u8>,
    pos: usize,
    closed: bool,
}

impl Link<'_> {
    /// Hands every complete request frame written so far to the model.
    fn serve(&mut self) {
        while let Some(frame) = take_frame(&mut self.out) {
            match self.model.handle(self.broker, &frame, self.now_ms).action {
                Action::Reply(bytes) => self.input.extend_from_slice(&bytes),
                Action::Silent => {}
                Action::Cut | Action::DropAndCut | Action::Hold => self.closed = true,
            }
        }
    }
}

impl Read for Link<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.input.len() {
            self.serve();
        }
        if self.pos == self.input.len() {
            if self.closed {
                return Ok(0);
            }
            return Err(ErrorKind::TimedOut.into());
        }
        let n = buf.len().min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Link<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if self.closed {
            return Err(ErrorKind::BrokenPipe.into());
        }
        Ok(gather_into(&mut self.out, bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Appends every slice of `bufs` to `out`; returns the bytes appended.
fn gather_into(out: &mut Vec<u8>, bufs: &[io::IoSlice<'_>]) -> usize {
    let before = out.len();
    for b in bufs {
        out.extend_from_slice(b);
    }
    out.len() - before
}

/// The transport of a connection a core runs on: what `conn::write_to`
/// writes (the wire's segments, gathered as for a socket) lands in the
/// broker's inbound bytes, all of it at once.
struct Inbound<'a>(&'a mut Vec<u8>);

impl Read for Inbound<'_> {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(ErrorKind::WouldBlock.into())
    }
}

impl Write for Inbound<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Ok(gather_into(self.0, bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Inbound<'_> {
    crate::io::conn::inert_transport_setup!();
}

impl Transport for Link<'_> {
    crate::io::conn::inert_transport_setup!();
}

/// A connection to `broker` of `model` with ApiVersions done, over
/// [`Link`]; refused if the broker is down.
fn open<'m>(
    model: &'m mut Model,
    cfg: &ProducerConfig,
    broker: i32,
    label: String,
    now_ms: i64,
) -> Result<Connection<Link<'m>>> {
    if !model.is_up(broker) {
        return Err(Error::Network {
            broker: label,
            message: "connection refused".into(),
        });
    }
    let link = Link {
        model,
        broker,
        now_ms,
        out: Vec::new(),
        input: Vec::new(),
        pos: 0,
        closed: false,
    };
    let mut conn = Connection::new(link, label, &cfg.client_id);
    conn.negotiate(cfg.request_timeout)?;
    Ok(conn)
}

/// Takes the first complete size-prefixed frame off `buf`, prefix
/// stripped.
fn take_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    if buf.len() < 4 {
        return None;
    }
    let n = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if buf.len() < 4 + n {
        return None;
    }
    let frame = buf[4..4 + n].to_vec();
    buf.drain(..4 + n);
    Some(frame)
}

/// What travels back to a core over its simulated connection.
enum Delivery {
    Bytes(Vec<u8>),
    /// The connection is cut (the broker closed it).
    Cut,
}

/// One broker's core and its simulated connection.
struct SimBroker {
    core: BrokerCore,
    signal: Arc<crate::accumulator::DrainSignal>,
    /// Set by the signal's wake (where a thread's poll would return).
    woken: Arc<std::sync::atomic::AtomicBool>,
    /// Request bytes written and not yet a whole frame.
    inbound: Vec<u8>,
    /// Answers in flight back to the core, in order.
    deliveries: VecDeque<(Instant, Delivery)>,
    /// A connection being set up: when it is handed over, and with what.
    connecting: Option<(Instant, Result<(Wire, i16)>)>,
    /// The last [`Plan`]'s wake-up.
    wake: Option<Instant>,
    exited: bool,
}

/// One accepted record and what became of it.
#[derive(Debug, Clone)]
struct Sent {
    /// The order `send` accepted it in (across senders).
    seq: usize,
    partition: i32,
    at: Instant,
    /// Completions, in order: the offset of a delivery, or the error.
    outcomes: Vec<std::result::Result<i64, String>>,
    /// When the first completion came (on the virtual clock).
    completed: Option<Instant>,
}

/// The simulation of one schedule.
struct Sim {
    seed: u64,
    rng: SimRng,
    schedule: Schedule,
    clock: Virtual,
    start: Instant,
    now: Instant,
    model: Model,
    cfg: Arc<ProducerConfig>,
    shared: Arc<IoShared>,
    acc: Arc<RecordAccumulator>,
    lifecycle: Arc<Lifecycle>,
    metadata_core: MetadataCore,
    /// A metadata fetch's outcome and when it arrives.
    fetch: Option<(Instant, FetchOutcome)>,
    brokers: BTreeMap<i32, SimBroker>,
    sent: Arc<Mutex<BTreeMap<u32, Sent>>>,
    refused: usize,
    /// Records registered so far (the next one's `seq`).
    accepted_so_far: usize,
    flushes: Vec<u64>,
    /// `close_timeout`: when its abort is due, and whether it came.
    close_deadline: Option<Instant>,
    aborted: bool,
    violation: Option<String>,
    /// `SIM_TRACE` is set: events and the cores' plans go to stderr.
    trace: bool,
    wall_start_ms: i64,
}

/// Runs the schedule of `seed` and checks the invariants.
///
/// # Errors
///
/// [`SimViolation`] with the broken invariant and the schedule.
pub fn run(seed: u64) -> std::result::Result<SimReport, SimViolation> {
    let mut rng = SimRng::new(seed);
    let schedule = Schedule::draw(&mut rng);
    let described = schedule.describe();
    let violation = |what: String| SimViolation {
        seed,
        what,
        schedule: described.clone(),
    };
    let mut sim = Sim::new(seed, rng, schedule).map_err(|e| violation(e.to_string()))?;
    let report = sim.run();
    match sim.violation.take() {
        Some(what) => Err(violation(what)),
        None => Ok(report),
    }
}

impl Sim {
    fn new(seed: u64, rng: SimRng, schedule: Schedule) -> Result<Sim> {
        let mut config = ProducerConfig::new();
        for (k, v) in &schedule.config {
            config.set(k, v)?;
        }
        let cfg = Arc::new(config.validate()?);
        // Virtual time starts now; the accumulator's epoch is read on it.
        let start = Instant::now();
        let clock = Virtual::start(start);
        crate::util::seed_thread_rng(seed ^ 0x5EED);
        let lifecycle = Arc::new(Lifecycle::default());
        let metrics = Arc::new(Metrics::new(cfg.metrics_windows()));
        let acc = Arc::new(RecordAccumulator::with_metrics(
            AccumulatorConfig::of(&cfg),
            lifecycle.clone(),
            metrics,
        ));
        let metadata = Arc::new(Metadata::new(lifecycle.clone()));
        let shared = IoShared::simulated(
            cfg.clone(),
            acc.clone(),
            metadata.clone(),
            lifecycle.clone(),
        );
        let addresses: Vec<(String, u16)> = (1..=schedule.brokers as i32)
            .map(|b| ("127.0.0.1".to_string(), port_of(b)))
            .collect();
        let mut model = Model::new(
            MockConfig {
                brokers: schedule.brokers,
                default_partitions: schedule.partitions,
                ..MockConfig::default()
            },
            &addresses,
        );
        model
            .create_topic(TOPIC, schedule.partitions)
            .map_err(|e| Error::Internal(e.to_string()))?;
        metadata.add_topic(TOPIC);
        Ok(Sim {
            seed,
            rng,
            clock,
            start,
            now: start,
            model,
            metadata_core: MetadataCore::new(shared.clone(), start),
            cfg,
            shared,
            acc,
            lifecycle,
            fetch: None,
            brokers: BTreeMap::new(),
            sent: Arc::new(Mutex::new(BTreeMap::new())),
            refused: 0,
            accepted_so_far: 0,
            flushes: Vec::new(),
            close_deadline: None,
            aborted: false,
            violation: None,
            trace: std::env::var_os("SIM_TRACE").is_some(),
            wall_start_ms: crate::util::now_ms(),
            schedule,
        })
    }

    fn ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_millis() as u64
    }

    /// Wall-clock milliseconds, as `send` stamps records and marks
    /// topics used: the real time the schedule started, plus its virtual
    /// time (the producer compares them with the real clock: a topic
    /// unused for `metadata.max.idle.ms` is forgotten).
    fn now_ms(&self) -> i64 {
        self.wall_start_ms + self.ms(self.now) as i64
    }

    fn fail(&mut self, what: String) {
        if self.violation.is_none() {
            self.violation = Some(format!("at {} ms: {what}", self.ms(self.now)));
        }
    }

    /// The whole schedule; returns its report (the invariants broken, if
    /// any, are in `self.violation`).
    fn run(&mut self) -> SimReport {
        let events: VecDeque<(u64, Event)> = self.schedule.events.clone().into();
        let mut events = events;
        let last_event = events.back().map_or(0, |(t, _)| *t);
        // Long enough for every record to reach its delivery timeout,
        // after the last event, with room for retries to back off.
        let cfg = &self.cfg;
        let horizon = Duration::from_millis(last_event)
            + cfg.delivery_timeout
            + cfg.request_timeout * 2
            + cfg.linger
            + Duration::from_secs(2);
        let end = self.start + horizon;
        let mut steps = 0;
        loop {
            steps += 1;
            if steps > MAX_STEPS {
                self.fail(format!("no progress after {MAX_STEPS} steps (a spin?)"));
                break;
            }
            while let Some((t, _)) = events.front() {
                if self.start + Duration::from_millis(*t) > self.now {
                    break;
                }
                let (_, e) = events.pop_front().expect("checked");
                self.event(e);
            }
            self.step_metadata();
            // A core started by another's leader hint runs at once, as a
            // new thread would.
            self.adopt_cores();
            self.step_cores();
            for _ in 0..8 {
                if !self.adopt_cores() {
                    break;
                }
                self.step_cores();
            }
            self.check_close();
            self.check_memory();
            if self.violation.is_some() {
                break;
            }
            let done = events.is_empty()
                && self.incomplete() == 0
                && self.flushes.is_empty()
                && self.fetch.is_none();
            if done || self.now >= end {
                break;
            }
            let next = self.next_instant(&events);
            self.now = next.min(end).max(self.now + Duration::from_micros(50));
            self.clock.set(self.now);
        }
        self.finish()
    }

    fn incomplete(&self) -> usize {
        self.sent
            .lock()
            .values()
            .filter(|s| s.outcomes.is_empty())
            .count()
    }

    /// The next instant anything is due: an event, a core's wake-up, an
    /// answer, a connection, a metadata fetch or its backoff.
    fn next_instant(&self, events: &VecDeque<(u64, Event)>) -> Instant {
        let mut next = self.now + Duration::from_secs(1);
        let mut at = |t: Instant| next = next.min(t);
        if let Some((t, _)) = events.front() {
            at(self.start + Duration::from_millis(*t));
        }
        for b in self.brokers.values() {
            if let Some(t) = b.wake {
                at(t);
            }
            if let Some((t, _)) = b.deliveries.front() {
                at(*t);
            }
            if let Some((t, _)) = &b.connecting {
                at(*t);
            }
        }
        if let Some((t, _)) = &self.fetch {
            at(*t);
        }
        let (deadline, _) = self.metadata_core.deadline(self.now, false);
        at(deadline);
        if self.metadata_core.not_before() > self.now {
            at(self.metadata_core.not_before());
        }
        if let Some(t) = self.close_deadline {
            at(t);
        }
        next
    }

    fn event(&mut self, e: Event) {
        if self.trace && !matches!(e, Event::Send { .. }) {
            eprintln!("sim {} ms: {e:?}", self.ms(self.now));
        }
        match e {
            Event::Send {
                sender,
                id,
                partition,
                pad,
            } => self.send(sender, id, partition, pad),
            Event::Flush => {
                let mark = self.acc.begin_flush();
                self.flushes.push(mark);
            }
            Event::Close { timeout } => {
                if self.close_deadline.is_none() && !self.lifecycle.is_closing() {
                    // Producer::close_timeout: Io::close, then the abort at
                    // the deadline if records are still incomplete.
                    self.lifecycle.close();
                    self.acc.wake_all();
                    self.close_deadline = Some(crate::util::later(self.now, timeout));
                }
            }
            Event::Inject(f) => {
                let _ = self.model.inject(f);
            }
            Event::Latency { broker, latency } => {
                let _ = self.model.set_latency(broker, latency);
            }
            Event::Down { broker } => {
                let _ = self.model.set_broker_up(broker, false);
                self.cut(broker);
            }
            Event::Up { broker } => {
                let _ = self.model.set_broker_up(broker, true);
            }
            Event::MoveLeader { partition, to } => {
                if self.model.is_up(to) {
                    let _ = self.model.move_leader(TOPIC, partition, to);
                }
            }
            Event::Cut { broker } => self.cut(broker),
        }
    }

    /// The broker closes its connection: what is still on its way back
    /// is lost.
    fn cut(&mut self, broker: i32) {
        let now = self.now;
        if let Some(b) = self.brokers.get_mut(&broker) {
            if b.core.wire_mut().is_some() {
                b.deliveries.clear();
                b.deliveries.push_back((now, Delivery::Cut));
            }
        }
    }

    /// `send` as the producer does it, with `max.block.ms=0`.
    fn send(&mut self, sender: u32, id: u32, partition: i32, pad: usize) {
        if self.lifecycle.is_closing() {
            self.refused += 1;
            return;
        }
        let Some((queues, layout)) = self.acc.topic_and_layout(TOPIC) else {
            self.refused += 1; // no metadata yet: send would wait
            return;
        };
        self.acc.mark_used(&queues, self.now_ms());
        let mut value = id.to_be_bytes().to_vec();
        value.extend(std::iter::repeat_n(sender as u8, pad));
        let fixed_size = record_fixed_size(
            None,
            Some(&value),
            std::iter::empty::<(&str, Option<&[u8]>)>(),
        );
        let parts = RecordParts {
            key: None,
            value: Some(&value),
            headers: &[],
            timestamp: self.now_ms(),
            fixed_size,
        };
        let sent = self.sent.clone();
        let mut callback = Pending(Some(move |r: Result<RecordMetadata>| {
            let outcome = match r {
                Ok(m) => Ok(m.offset()),
                Err(e) => Err(e.to_string()),
            };
            if let Some(s) = sent.lock().get_mut(&id) {
                s.outcomes.push(outcome);
                // Callbacks run on the simulation's thread: its clock.
                s.completed.get_or_insert(crate::clock::now());
            }
        }));
        // Registered before the append: a callback may run within it.
        let seq = self.accepted_so_far;
        self.accepted_so_far += 1;
        self.sent.lock().insert(
            id,
            Sent {
                seq,
                partition,
                at: self.now,
                outcomes: Vec::new(),
                completed: None,
            },
        );
        let r = self.acc.append(
            &queues,
            &layout,
            Some(partition),
            &parts,
            -1,
            value.len() as i32,
            &mut callback,
            &Budget::new(Duration::ZERO),
            crate::accumulator::StickyRef::Topic,
        );
        if r.is_err() {
            self.sent.lock().remove(&id);
            self.refused += 1;
        }
    }

    /// The metadata thread's cycle.
    fn step_metadata(&mut self) {
        let now = self.now;
        let (deadline, _) = self.metadata_core.deadline(now, false);
        let work = self.shared.metadata.poll_work(
            now,
            deadline,
            self.metadata_core.not_before(),
            self.metadata_core.fetching(),
        );
        if work == Some(Work::Shutdown) {
            return;
        }
        if self.trace && work.is_some() && work != Some(Work::Tick) {
            eprintln!(
                "sim {} ms: metadata work {work:?} fetching={}",
                self.ms(now),
                self.metadata_core.fetching()
            );
        }
        self.metadata_core.expire(now);
        if self.metadata_core.fetching() {
            if self.fetch.as_ref().is_some_and(|(t, _)| *t <= now) {
                let (_, outcome) = self.fetch.take().expect("checked");
                if self.trace {
                    let what = match &outcome.result {
                        Ok(c) => format!(
                            "{:?}",
                            c.topics.get(TOPIC).map(|t| (
                                t.partitions.iter().map(|p| p.leader).collect::<Vec<_>>(),
                                t.epochs.clone()
                            ))
                        ),
                        Err(e) => e.to_string(),
                    };
                    eprintln!("sim {} ms: metadata fetched: {what}", self.ms(now));
                }
                self.metadata_core.fetched(outcome, now);
            }
            return;
        }
        let Some(work) = work else {
            return;
        };
        if let Some(plan) = self.metadata_core.next_fetch(work, now) {
            if self.trace {
                eprintln!("sim {} ms: metadata fetch {plan:?}", self.ms(now));
            }
            let outcome = self.fetch_now(&plan);
            let delay = self.rng.ms(0, self.schedule.connect_ms + 2);
            self.fetch = Some((now + delay, outcome));
        }
    }

    /// A metadata fetch as `io/metadata.rs` makes it: the candidates in
    /// its order, a fresh connection to each (the simulated metadata
    /// thread keeps none), the first that answers.
    fn fetch_now(&mut self, plan: &FetchPlan) -> FetchOutcome {
        let known = self.shared.metadata.cluster();
        let mut rotate = plan.rotate;
        let candidates =
            match meta::candidates(&self.cfg, &known, &mut rotate, plan.rebootstrap_due) {
                Ok(c) => c,
                Err(e) => {
                    return FetchOutcome {
                        result: Err(e),
                        rotate,
                        producer_id: None,
                    }
                }
            };
        let mut last = None;
        for (label, _host, port) in candidates {
            let broker = i32::from(port - 10_000);
            let now_ms = self.now_ms();
            let cfg = self.cfg.clone();
            let mut conn = match open(&mut self.model, &cfg, broker, label, now_ms) {
                Ok(c) => c,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match meta::request(&mut conn, &plan.topics, cfg.request_timeout) {
                Ok(cluster) => {
                    let producer_id = plan
                        .need_id
                        .then(|| meta::init_producer_id(&mut conn, &cfg));
                    return FetchOutcome {
                        result: Ok(cluster),
                        rotate,
                        producer_id,
                    };
                }
                Err(e) => last = Some(e),
            }
        }
        FetchOutcome {
            result: Err(last.unwrap_or_else(|| Error::Network {
                broker: "bootstrap.servers".into(),
                message: "no broker to ask for metadata".into(),
            })),
            rotate,
            producer_id: None,
        }
    }

    /// Gives every core the metadata asked for a driver.
    fn adopt_cores(&mut self) -> bool {
        let started = self.shared.take_started();
        let any = !started.is_empty();
        for (node, signal, woken) in started {
            let core = BrokerCore::new(node, self.shared.clone(), signal.clone(), self.now);
            self.brokers.insert(
                node,
                SimBroker {
                    core,
                    signal,
                    woken,
                    inbound: Vec::new(),
                    deliveries: VecDeque::new(),
                    connecting: None,
                    wake: None,
                    exited: false,
                },
            );
        }
        any
    }

    /// One cycle of every core, its connection's traffic included; then
    /// again for each core woken meanwhile (by a send, or by another
    /// core's retry or completion), as its thread's poll would return.
    fn step_cores(&mut self) {
        let nodes: Vec<i32> = self.brokers.keys().copied().collect();
        for node in &nodes {
            self.run_core(*node);
        }
        for _ in 0..64 {
            let woken: Vec<i32> = self
                .brokers
                .iter()
                .filter(|(_, b)| b.woken.swap(false, std::sync::atomic::Ordering::SeqCst))
                .map(|(n, _)| *n)
                .collect();
            if woken.is_empty() {
                break;
            }
            for node in woken {
                self.run_core(node);
            }
        }
        self.brokers.retain(|_, b| !b.exited);
    }

    /// Cycles `node`'s core until it plans to sleep: a cycle that asks to
    /// go round again does, a bounded number of times (a real thread
    /// would spin).
    fn run_core(&mut self, node: i32) {
        for _ in 0..64 {
            if !self.cycle(node) {
                break;
            }
        }
    }

    /// One cycle of `node`'s core; true if it asks for another at once.
    fn cycle(&mut self, node: i32) -> bool {
        let now = self.now;
        let Some(b) = self.brokers.get_mut(&node) else {
            return false;
        };
        if b.exited {
            return false;
        }
        b.signal.begin_cycle();
        b.woken.store(false, std::sync::atomic::Ordering::SeqCst);
        // A connection set up earlier is handed over.
        if b.connecting.as_ref().is_some_and(|(t, _)| *t <= now) {
            let (_, r) = b.connecting.take().expect("checked");
            b.inbound.clear();
            b.deliveries.clear();
            b.core.connected(r, now);
        }
        // Answers due now.
        while b.deliveries.front().is_some_and(|(t, _)| *t <= now) {
            let (_, d) = b.deliveries.pop_front().expect("checked");
            match d {
                Delivery::Bytes(bytes) => {
                    b.core.read_limit();
                    let Some(wire) = b.core.wire_mut() else {
                        break;
                    };
                    let r = feed(wire, &bytes);
                    b.core.read(r, now);
                }
                Delivery::Cut => {
                    b.deliveries.clear();
                    let eof = io::Error::new(ErrorKind::UnexpectedEof, "the broker closed");
                    b.core.read(Err(eof), now);
                }
            }
        }
        b.core.tick(now);
        self.wants(node);
        self.write(node);
        let Some(b) = self.brokers.get_mut(&node) else {
            return false;
        };
        let plan = b.core.plan(now);
        self.wants(node);
        let Some(b) = self.brokers.get_mut(&node) else {
            return false;
        };
        match plan {
            Plan::Again => true,
            Plan::Exit => {
                b.exited = true;
                false
            }
            Plan::Sleep(t) => {
                if self.trace && b.wake != t {
                    let at = t.map(|t| t.saturating_duration_since(self.start).as_millis());
                    eprintln!(
                        "sim {} ms: node {node} sleeps until {at:?} ms",
                        now.saturating_duration_since(self.start).as_millis()
                    );
                }
                b.wake = t;
                // As the thread: work that arrived during the cycle means
                // another cycle, not a sleep.
                let until = t.map_or(u64::MAX, |t| self.acc.nanos(t));
                !b.signal.prepare_sleep(until)
            }
        }
    }

    /// The core's output goes to the model, frame by frame.
    fn write(&mut self, node: i32) {
        let now = self.now;
        let now_ms = self.now_ms();
        let jitter = self.schedule.jitter_ms;
        let Some(b) = self.brokers.get_mut(&node) else {
            return;
        };
        let Some(wire) = b.core.wire_mut() else {
            return;
        };
        if !wire.has_output() {
            return;
        }
        // The producer's own write path: the wire's segments, up to
        // `MAX_IOV` slices a call, until none is left.
        let r = crate::io::conn::write_to(&mut Inbound(&mut b.inbound), wire);
        debug_assert!(!wire.has_output(), "the simulated socket takes everything");
        b.core.wrote(r, now);
        while let Some(frame) = take_frame(&mut b.inbound) {
            let outcome = self.model.handle(node, &frame, now_ms);
            let extra = Duration::from_millis(self.rng.range(0, jitter));
            let after = b.deliveries.back().map_or(now, |(t, _)| *t);
            let at = (now + outcome.delay + extra).max(after);
            match outcome.action {
                Action::Reply(bytes) => b.deliveries.push_back((at, Delivery::Bytes(bytes))),
                Action::Silent | Action::Hold => {}
                Action::Cut | Action::DropAndCut => {
                    b.deliveries.push_back((at, Delivery::Cut));
                    b.inbound.clear();
                    break;
                }
            }
        }
        self.wants(node);
    }

    /// Carries out what `node`'s core asked for.
    fn wants(&mut self, node: i32) {
        let Some(b) = self.brokers.get_mut(&node) else {
            return;
        };
        let wants: Vec<Want> = b.core.take_wants().collect();
        for want in wants {
            match want {
                Want::Connect { node: n, setup } => {
                    let label = format!("node {n}");
                    let now_ms = self.now_ms();
                    let cfg = self.cfg.clone();
                    let r = match open(&mut self.model, &cfg, n.id, label, now_ms) {
                        Ok(conn) => {
                            let codec = cfg.compression_codec();
                            let v = match codec.min_produce_version() {
                                7.. => conn.version_from(
                                    &crate::protocol::messages::produce::API,
                                    7,
                                    "Produce with zstd compression",
                                ),
                                _ => conn.version_for(&crate::protocol::messages::produce::API),
                            };
                            // Odd seeds hold every batch's records in the
                            // wire's output, even the smallest; even seeds
                            // copy the small ones, as the producer does.
                            let share_all = self.seed % 2 == 1;
                            v.map(|v| {
                                let mut wire = conn.into_parts().1;
                                if share_all {
                                    wire.set_share_min(0);
                                }
                                (wire, v)
                            })
                        }
                        Err(e) => Err(e),
                    };
                    // A refused connection fails fast, or hangs until the
                    // set-up timeout.
                    let delay = match &r {
                        Err(_) if self.rng.chance(30) => setup,
                        _ => self.rng.ms(0, self.schedule.connect_ms),
                    };
                    let at = self.now + delay;
                    if let Some(b) = self.brokers.get_mut(&node) {
                        b.connecting = Some((at, r));
                    }
                }
                Want::Reauth(wire) => {
                    // No SASL in the simulation: the session is renewed.
                    let v = wire.version_for(&crate::protocol::messages::produce::API);
                    let at = self.now;
                    if let Some(b) = self.brokers.get_mut(&node) {
                        b.connecting = Some((at, v.map(|v| (wire, v))));
                    }
                }
                Want::Close { .. } => {
                    if let Some(b) = self.brokers.get_mut(&node) {
                        b.inbound.clear();
                        b.deliveries.clear();
                    }
                }
            }
        }
    }

    /// `close_timeout`'s deadline: the abort, and then nothing may be
    /// left without an outcome.
    fn check_close(&mut self) {
        let Some(deadline) = self.close_deadline else {
            return;
        };
        if self.aborted || self.now < deadline {
            return;
        }
        self.aborted = true;
        if self.incomplete() > 0 {
            // Io::abort, then Io::stop, as close_timeout makes them.
            let err = Error::aborted();
            self.lifecycle.abort();
            self.acc.abort_queued(None, &err);
            for b in self.brokers.values_mut() {
                b.core.fail_all(err.clone());
            }
            let nodes: Vec<i32> = self.brokers.keys().copied().collect();
            for n in nodes {
                self.wants(n);
            }
        }
        self.lifecycle.stop();
        for b in self.brokers.values_mut() {
            b.core.stop();
        }
        let left = self.incomplete();
        if left > 0 {
            self.fail(format!(
                "close_timeout returned at its deadline with {left} records without an outcome"
            ));
        }
    }

    fn check_memory(&mut self) {
        let g = self.acc.pool().gauges();
        if g.available > g.total {
            self.fail(format!(
                "the pool has {} bytes free of buffer.memory={}",
                g.available, g.total
            ));
        }
    }

    /// Checks what the schedule left behind, and reports.
    fn finish(&mut self) -> SimReport {
        let sent = self.sent.lock().clone();
        let mut report = SimReport {
            seed: self.seed,
            brokers: self.schedule.brokers,
            accepted: sent.len(),
            refused: self.refused,
            faults: self.schedule.faults,
            virtual_ms: self.ms(self.now),
            ..SimReport::default()
        };
        let cfg = self.cfg.clone();
        let ordered = cfg.max_in_flight == 1 || cfg.idempotence;
        let acks0 = cfg.acks == crate::config::Acks::None;
        let mut digest = Digest::default();
        // Every record's log, by partition: (offset, id).
        let mut logs: BTreeMap<i32, Vec<(i64, u32)>> = BTreeMap::new();
        let mut no_id = None;
        for p in 0..self.schedule.partitions {
            let batches = self.model.batches(TOPIC, p).unwrap_or(&[]);
            let log = logs.entry(p).or_default();
            for r in batches.iter().flat_map(|b| b.records.iter()) {
                let id = r
                    .value
                    .as_deref()
                    .and_then(|v| v.get(..4))
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                match id {
                    Some(id) => log.push((r.offset, id)),
                    None => no_id = Some(p),
                }
                digest.add(r.offset as u64);
            }
        }
        if let Some(p) = no_id {
            self.fail(format!("a record in {TOPIC}-{p} has no id"));
        }
        let healed = self.start + Duration::from_millis(self.schedule.healed_ms);
        let mut last_offset: BTreeMap<i32, i64> = BTreeMap::new();
        let mut in_order: Vec<(&u32, &Sent)> = sent.iter().collect();
        in_order.sort_by_key(|(_, s)| s.seq);
        // A record completes within delivery.timeout.ms of its send (its
        // batch was created no later), or at close's abort.
        let bound = cfg.delivery_timeout + Duration::from_millis(1);
        for (id, s) in in_order {
            if let Some(done) = s.completed {
                let late = done.saturating_duration_since(s.at);
                let closed = self.close_deadline.is_some_and(|t| done >= t);
                if late > bound && !closed {
                    self.fail(format!(
                        "record {id} (sent at {} ms to {TOPIC}-{}) completed {} ms later, past \
                         delivery.timeout.ms={}: {:?}",
                        self.ms(s.at),
                        s.partition,
                        late.as_millis(),
                        cfg.delivery_timeout.as_millis(),
                        s.outcomes.first()
                    ));
                }
            }
            match s.outcomes.as_slice() {
                [] => self.fail(format!(
                    "record {id} (sent at {} ms to {TOPIC}-{}) never completed",
                    self.ms(s.at),
                    s.partition
                )),
                [one] => match one {
                    Ok(offset) => {
                        report.delivered += 1;
                        digest.add(*offset as u64);
                        if acks0 {
                            continue;
                        }
                        let log = &logs[&s.partition];
                        if !log.iter().any(|(o, i)| o == offset && i == id) {
                            self.fail(format!(
                                "record {id} was reported at {TOPIC}-{}@{offset}, which holds {:?}",
                                s.partition,
                                log.iter().find(|(o, _)| o == offset).map(|(_, i)| i)
                            ));
                        }
                        if ordered {
                            let last = last_offset.entry(s.partition).or_insert(-1);
                            if *offset <= *last {
                                self.fail(format!(
                                    "record {id} delivered at {TOPIC}-{}@{offset}, before a record \
                                     sent earlier (at offset {last})",
                                    s.partition
                                ));
                            }
                            *last = (*last).max(*offset);
                        }
                    }
                    Err(e) => {
                        report.failed += 1;
                        digest.add(0xFA11);
                        let calm = self.close_deadline.is_none()
                            && s.at >= healed
                            && cfg.retries > 0
                            && !self.schedule.config.iter().any(|(k, v)| {
                                *k == "buffer.memory" && v.parse::<usize>().unwrap_or(0) < 65536
                            });
                        if calm {
                            self.fail(format!(
                                "record {id} (sent at {} ms to {TOPIC}-{}, after every fault \
                                 healed at {} ms) failed: {e}",
                                self.ms(s.at),
                                s.partition,
                                self.schedule.healed_ms
                            ));
                        }
                    }
                },
                many => self.fail(format!(
                    "record {id} completed {} times: {many:?}",
                    many.len()
                )),
            }
        }
        if cfg.idempotence {
            for (p, log) in &logs {
                let mut ids: Vec<u32> = log.iter().map(|(_, i)| *i).collect();
                ids.sort_unstable();
                if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
                    self.fail(format!(
                        "record {} is in {TOPIC}-{p} twice with idempotence on",
                        w[0]
                    ));
                }
            }
        }
        if self.violation.is_none() && self.incomplete() == 0 {
            if !self.flushes.iter().all(|m| self.acc.try_end_flush(*m)) {
                self.fail("a flush did not end once every record had completed".into());
            }
            let g = self.acc.pool().gauges();
            if g.available != g.total {
                self.fail(format!(
                    "every record has completed, but the pool has {} of {} bytes free (a leak)",
                    g.available, g.total
                ));
            }
        }
        report.digest = digest.0;
        report
    }
}

/// Copies `bytes` into the wire's read space, as a socket read would.
fn feed(wire: &mut Wire, mut bytes: &[u8]) -> io::Result<usize> {
    let total = bytes.len();
    while !bytes.is_empty() {
        let space = wire.read_space()?;
        let n = space.len().min(bytes.len());
        space[..n].copy_from_slice(&bytes[..n]);
        wire.received(n);
        bytes = &bytes[n..];
    }
    Ok(total)
}

/// An order-sensitive digest of what a schedule observed (FNV-1a).
struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    fn add(&mut self, v: u64) {
        for b in v.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
