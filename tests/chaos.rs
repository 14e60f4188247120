//! A chaos run: one private mock cluster (3 brokers, 3 topics, 10
//! partitions), 8 threads sending through one shared producer (acks=all,
//! retries, a delivery timeout of a few seconds), while a fault thread
//! injects random faults drawn from a seeded PRNG: bursts of Produce
//! errors, RTT spikes (some past request.timeout.ms), leader moves, brokers
//! down and up, single slow errors on one broker, and freezes of the whole
//! cluster (SIGSTOP/SIGCONT).
//!
//! A watchdog fails the run (exiting the process, with the seed) if no
//! record completes for 20 s while some are outstanding, or a `send`
//! blocks far past `max.block.ms`. At the end: flush, close, and check that
//! every accepted record got exactly one completion and every refused one
//! none; that the records sent once the faults were over all succeeded;
//! that peak RSS stayed below buffer.memory plus a margin; and, with the
//! independent consumer, that every successful record is in the log
//! (duplicates allowed: retries without idempotence may write twice).
//!
//! The seed is printed; `CHAOS_SEED=<n>` replays the same fault schedule
//! (thread timing still varies), `CHAOS_SECS=<n>` sets the length of the
//! fault phase (default 35). The seed's parity picks
//! `max.in.flight.requests.per.connection` (even: 1, and then each sender's
//! successful records to a partition must have offsets in send order; odd:
//! 5), unless `CHAOS_IN_FLIGHT=<n>` sets it. Run it with
//! `cargo test --release --test chaos -- --nocapture` to see the figures.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{consume_at_least, MockCluster};
use kafka_producer::{ByteArraySerializer, Error, Producer, ProducerConfig, ProducerRecord};

const TOPICS: [(&str, i32); 3] = [("chaos-a", 6), ("chaos-b", 3), ("chaos-c", 1)];
const BROKERS: i32 = 3;
const SENDERS: usize = 8;
const MAX_RECORDS: usize = 400_000;
const VALUE_LEN: usize = 100;
const BUFFER_MEMORY: usize = 8 << 20;
const RSS_MARGIN: u64 = 64 << 20;
const MAX_BLOCK: Duration = Duration::from_secs(3);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// No completion for this long, with records outstanding, is a hang.
const HANG: Duration = Duration::from_secs(20);
/// After the faults stop: how long the records keep flowing, and from
/// when (after the last fault was undone) each of them must succeed.
const CALM: Duration = Duration::from_secs(4);
const SETTLE: Duration = Duration::from_millis(1500);

/// Outcome kinds, per record.
const OK: u8 = 1;
const TIMEOUT: u8 = 2;
const BROKER: u8 = 3;
const NETWORK: u8 = 4;
const ABORTED: u8 = 5;
const OTHER: u8 = 6;
const KIND_NAMES: [&str; 7] = [
    "none",
    "ok",
    "delivery timeout",
    "broker error",
    "network",
    "aborted",
    "other",
];

/// splitmix64: small, seedable, good enough to pick faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

/// What every thread shares.
struct State {
    seed: u64,
    start: Instant,
    /// Callbacks per record.
    counts: Vec<AtomicU8>,
    /// The first outcome's kind, per record.
    kinds: Vec<AtomicU8>,
    /// 1 + topic index once `send` accepted the record; 0 otherwise.
    accepted_in: Vec<AtomicU8>,
    /// Sent after the faults were over and the cluster had settled.
    calm: Vec<AtomicBool>,
    /// The sender thread of each record.
    sender: Vec<AtomicU8>,
    /// Partition and offset of each successful record.
    partition: Vec<AtomicI32>,
    offset: Vec<AtomicI64>,
    next_id: AtomicUsize,
    accepted: AtomicUsize,
    completed: AtomicUsize,
    last_completion_ms: AtomicU64,
    /// Per sender: when its current `send` began (ms since start + 1), or 0.
    in_send_since: Vec<AtomicU64>,
    refused: Mutex<BTreeMap<String, usize>>,
    broker_codes: Mutex<BTreeMap<String, usize>>,
    faults: Mutex<Vec<String>>,
    calm_from_ms: AtomicU64,
}

impl State {
    fn ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn fault(&self, what: String) {
        let line = format!("{:>6} ms  {what}", self.ms());
        self.faults.lock().unwrap().push(line);
    }

    fn on_done(&self, id: usize, r: &kafka_producer::Result<kafka_producer::RecordMetadata>) {
        let kind = match r {
            Ok(m) => {
                self.partition[id].store(m.partition(), Ordering::SeqCst);
                self.offset[id].store(m.offset(), Ordering::SeqCst);
                OK
            }
            Err(Error::DeliveryTimeout { .. }) => TIMEOUT,
            Err(Error::Broker { code, .. }) => {
                *self
                    .broker_codes
                    .lock()
                    .unwrap()
                    .entry(code.to_string())
                    .or_insert(0) += 1;
                BROKER
            }
            Err(Error::Network { .. }) => NETWORK,
            Err(Error::Aborted(_)) => ABORTED,
            Err(_) => OTHER,
        };
        if self.counts[id].fetch_add(1, Ordering::SeqCst) == 0 {
            self.kinds[id].store(kind, Ordering::SeqCst);
        }
        self.completed.fetch_add(1, Ordering::SeqCst);
        self.last_completion_ms.store(self.ms(), Ordering::SeqCst);
    }

    /// Prints why the run is a failure, with the seed, and ends the
    /// process: a hang cannot be failed from the thread that hangs.
    fn die(&self, why: &str) -> ! {
        let faults = self.faults.lock().unwrap();
        let tail: Vec<&String> = faults.iter().rev().take(25).rev().collect();
        let threads = thread_states("chaos");
        eprintln!(
            "\nchaos FAILED: {why}\nseed {seed} (replay: CHAOS_SEED={seed} cargo test --release \
             --test chaos -- --nocapture)\naccepted {} completed {} at {} ms\nlast faults:\n  {}\n\
             producer threads: {threads:?}\nrecent producer warnings:\n  {}",
            self.accepted.load(Ordering::SeqCst),
            self.completed.load(Ordering::SeqCst),
            self.ms(),
            tail.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  "),
            logs::recent().join("\n  "),
            seed = self.seed,
        );
        std::process::exit(101);
    }
}

/// Name and state letter of this process's threads whose name starts with
/// `prefix`.
fn thread_states(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        if name.starts_with(prefix) {
            out.push(format!("{name}:{}", &stat[close + 2..close + 3]));
        }
    }
    out.sort();
    out
}

/// Peak resident set size of this process (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

fn value(id: usize) -> Vec<u8> {
    let mut v = format!("{id:09}|").into_bytes();
    v.resize(VALUE_LEN, b'.');
    v
}

fn id_of(v: &[u8]) -> Option<usize> {
    std::str::from_utf8(v.get(..9)?).ok()?.parse().ok()
}

/// One sender: records to uniformly chosen partitions (explicit, keyed or
/// keyless), paced, until `until`.
fn sender(p: Arc<Producer<[u8], [u8]>>, st: Arc<State>, me: usize, until: Instant) {
    let mut rng = Rng(st.seed ^ (me as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
    let total: i32 = TOPICS.iter().map(|t| t.1).sum();
    let mut sent = 0usize;
    while Instant::now() < until {
        let id = st.next_id.fetch_add(1, Ordering::SeqCst);
        if id >= MAX_RECORDS {
            break;
        }
        // A partition chosen uniformly over all of them, so each holds
        // about the same volume.
        let mut k = rng.below(total as u64) as i32;
        let mut ti = 0;
        while k >= TOPICS[ti].1 {
            k -= TOPICS[ti].1;
            ti += 1;
        }
        let topic = TOPICS[ti].0;
        let key = format!("key-{}", rng.below(1000));
        let record = match rng.below(3) {
            0 => {
                ProducerRecord::with_timestamp(topic, Some(k), None, None, Some(value(id)), vec![])
            }
            1 => ProducerRecord::with_timestamp(
                topic,
                None,
                None,
                Some(key.into_bytes()),
                Some(value(id)),
                vec![],
            ),
            _ => ProducerRecord::with_timestamp(topic, None, None, None, Some(value(id)), vec![]),
        };
        let calm_from = st.calm_from_ms.load(Ordering::SeqCst);
        if calm_from > 0 && st.ms() >= calm_from {
            st.calm[id].store(true, Ordering::SeqCst);
        }
        st.sender[id].store(me as u8, Ordering::SeqCst);
        st.in_send_since[me].store(st.ms() + 1, Ordering::SeqCst);
        let st2 = st.clone();
        let r = p.send_with_callback(record, move |r| st2.on_done(id, &r));
        st.in_send_since[me].store(0, Ordering::SeqCst);
        match r {
            Ok(_) => {
                st.accepted_in[id].store(ti as u8 + 1, Ordering::SeqCst);
                st.accepted.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                let kind = match e {
                    Error::BufferExhausted { .. } => "buffer exhausted".to_owned(),
                    Error::MetadataTimeout { .. } => "metadata timeout".to_owned(),
                    other => format!("{other}"),
                };
                *st.refused.lock().unwrap().entry(kind).or_insert(0) += 1;
            }
        }
        sent += 1;
        if sent.is_multiple_of(2) {
            std::thread::sleep(Duration::from_millis(3)); // the pace: ~600 records/s per thread
        }
    }
}

/// The fault thread: random faults until `until`, then undoes them all.
fn faults(mock: &mut MockCluster, st: &State, until: Instant) {
    let mut rng = Rng(st.seed);
    let mut down: BTreeSet<i32> = BTreeSet::new();
    // (when, command) to undo a fault.
    let mut undo: Vec<(Instant, String)> = Vec::new();
    let command = |mock: &mut MockCluster, cmd: String| {
        mock.command(&cmd);
        st.fault(cmd);
    };
    while Instant::now() < until {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = undo.drain(..).partition(|(t, _)| *t <= now);
        undo = later;
        for (_, cmd) in due {
            if let Some(b) = cmd.strip_prefix("up ") {
                down.remove(&b.parse::<i32>().unwrap());
            }
            mock.command(&cmd);
            st.fault(format!("undo {cmd}"));
        }
        let broker = rng.range(1, BROKERS as u64) as i32;
        match rng.below(100) {
            0..=24 => {
                let codes = [6, 7, 19, 20, 5, 13];
                let n = rng.range(1, 8);
                let mut list: Vec<String> = (0..n)
                    .map(|_| codes[rng.below(codes.len() as u64) as usize].to_string())
                    .collect();
                if rng.below(10) == 0 {
                    // now and then a non-retriable one: INVALID_RECORD
                    let at = rng.below(list.len() as u64 + 1) as usize;
                    list.insert(at, "87".into());
                }
                command(mock, format!("errors 0 {}", list.join(" ")));
            }
            25..=44 => {
                let ms = rng.range(50, 3000);
                command(mock, format!("rtt {broker} {ms}"));
                let d = Duration::from_millis(rng.range(300, 3000));
                undo.push((now + d, format!("rtt {broker} 0")));
            }
            45..=69 => {
                let (topic, parts) = TOPICS[rng.below(TOPICS.len() as u64) as usize];
                let part = rng.below(parts as u64);
                command(mock, format!("leader {topic} {part} {broker}"));
            }
            70..=84 => {
                // at most two brokers down at once, except now and then all
                if !down.contains(&broker) && (down.len() < 2 || rng.below(4) == 0) {
                    command(mock, format!("down {broker}"));
                    down.insert(broker);
                    let d = Duration::from_millis(rng.range(300, 4000));
                    undo.push((now + d, format!("up {broker}")));
                }
            }
            85..=94 => {
                let codes = [6, 7, 19, 87];
                let code = codes[rng.below(codes.len() as u64) as usize];
                let rtt = rng.range(0, 2000);
                command(mock, format!("broker_error {broker} 0 {code} {rtt}"));
            }
            _ => {
                let d = Duration::from_millis(rng.range(200, 1500));
                st.fault(format!("freeze the cluster for {d:?}"));
                mock.signal("STOP");
                std::thread::sleep(d); // the freeze
                mock.signal("CONT");
            }
        }
        std::thread::sleep(Duration::from_millis(rng.range(100, 1200))); // the pace of faults
    }
    st.fault("end: faults over, undoing them all".into());
    mock.command("clear 0");
    for b in 1..=BROKERS {
        mock.command(&format!("up {b}"));
        mock.command(&format!("rtt {b} 0"));
    }
}

#[test]
fn chaos() {
    logs::install();
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .map(|s| s.trim().parse().expect("CHAOS_SEED must be a u64"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                ^ u64::from(std::process::id()).rotate_left(32)
        });
    let secs: u64 = std::env::var("CHAOS_SECS")
        .ok()
        .map(|s| s.trim().parse().expect("CHAOS_SECS must be a number"))
        .unwrap_or(35);
    // The seed also picks max.in.flight: 1 (order per partition is then
    // checked) or 5 (Java's default).
    let in_flight: usize = std::env::var("CHAOS_IN_FLIGHT")
        .ok()
        .map(|s| s.trim().parse().expect("CHAOS_IN_FLIGHT must be a number"))
        .unwrap_or(if seed.is_multiple_of(2) { 1 } else { 5 });
    eprintln!(
        "chaos: seed {seed} (replay with CHAOS_SEED={seed}), {secs} s of faults, \
         max.in.flight.requests.per.connection={in_flight}"
    );

    let mut mock = MockCluster::start(BROKERS as usize, &TOPICS.map(|(t, n)| (t, n as usize)));
    let bootstrap = mock.bootstrap.clone();
    let cfg = ProducerConfig::new()
        .bootstrap_servers(bootstrap.clone())
        .client_id("chaos")
        .acks(kafka_producer::Acks::All)
        .linger(Duration::from_millis(10))
        .batch_size(16384)
        .buffer_memory(BUFFER_MEMORY)
        .max_block(MAX_BLOCK)
        .request_timeout(Duration::from_millis(1500))
        .delivery_timeout(DELIVERY_TIMEOUT)
        .retry_backoff(Duration::from_millis(50))
        .retry_backoff_max(Duration::from_millis(500))
        .metadata_max_age(Duration::from_secs(3))
        .max_in_flight_requests_per_connection(in_flight);
    let p = Arc::new(Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap());
    for (t, _) in TOPICS {
        p.partitions_for(t).unwrap();
    }

    let st = Arc::new(State {
        seed,
        start: Instant::now(),
        counts: (0..MAX_RECORDS).map(|_| AtomicU8::new(0)).collect(),
        kinds: (0..MAX_RECORDS).map(|_| AtomicU8::new(0)).collect(),
        accepted_in: (0..MAX_RECORDS).map(|_| AtomicU8::new(0)).collect(),
        calm: (0..MAX_RECORDS).map(|_| AtomicBool::new(false)).collect(),
        sender: (0..MAX_RECORDS).map(|_| AtomicU8::new(0)).collect(),
        partition: (0..MAX_RECORDS).map(|_| AtomicI32::new(-1)).collect(),
        offset: (0..MAX_RECORDS).map(|_| AtomicI64::new(-1)).collect(),
        next_id: AtomicUsize::new(0),
        accepted: AtomicUsize::new(0),
        completed: AtomicUsize::new(0),
        last_completion_ms: AtomicU64::new(0),
        in_send_since: (0..SENDERS).map(|_| AtomicU64::new(0)).collect(),
        refused: Mutex::new(BTreeMap::new()),
        broker_codes: Mutex::new(BTreeMap::new()),
        faults: Mutex::new(Vec::new()),
        calm_from_ms: AtomicU64::new(0),
    });

    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (st, done) = (st.clone(), done.clone());
        let hard_limit = Duration::from_secs(secs + 150);
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let now = st.ms();
                let outstanding = st
                    .accepted
                    .load(Ordering::SeqCst)
                    .saturating_sub(st.completed.load(Ordering::SeqCst));
                let idle = now.saturating_sub(st.last_completion_ms.load(Ordering::SeqCst));
                if outstanding > 0 && idle > HANG.as_millis() as u64 {
                    st.die(&format!(
                        "no completion for {idle} ms with {outstanding} records outstanding \
                         (deadlock or hang)"
                    ));
                }
                for (i, s) in st.in_send_since.iter().enumerate() {
                    let since = s.load(Ordering::SeqCst);
                    if since > 0 && now + 1 > since + (MAX_BLOCK + HANG).as_millis() as u64 {
                        st.die(&format!(
                            "sender {i} has been blocked in send for {} ms (max.block.ms {})",
                            now + 1 - since,
                            MAX_BLOCK.as_millis()
                        ));
                    }
                }
                if st.start.elapsed() > hard_limit {
                    st.die(&format!("the run took longer than {hard_limit:?}"));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    let fault_until = Instant::now() + Duration::from_secs(secs);
    let send_until = fault_until + CALM;
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let (p, st) = (p.clone(), st.clone());
            std::thread::Builder::new()
                .name(format!("sender-{i}"))
                .spawn(move || sender(p, st, i, send_until))
                .unwrap()
        })
        .collect();
    faults(&mut mock, &st, fault_until);
    st.calm_from_ms
        .store(st.ms() + SETTLE.as_millis() as u64, Ordering::SeqCst);
    st.fault(format!(
        "end: records sent from now + {SETTLE:?} must succeed"
    ));
    for s in senders {
        s.join().unwrap();
    }
    let t_flush = Instant::now();
    p.flush().unwrap();
    let flush_took = t_flush.elapsed();
    p.close().unwrap();
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    let run_took = st.start.elapsed();
    let rss = peak_rss();

    // Every accepted record got exactly one completion; refused ones none.
    let ids = st.next_id.load(Ordering::SeqCst).min(MAX_RECORDS);
    let mut by_kind = [0usize; 7];
    let mut bad = Vec::new();
    let mut calm_failed = Vec::new();
    let mut successes: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); TOPICS.len()];
    let mut failed_ids: BTreeSet<usize> = BTreeSet::new();
    for id in 0..ids {
        let accepted = st.accepted_in[id].load(Ordering::SeqCst);
        let n = st.counts[id].load(Ordering::SeqCst);
        if n != u8::from(accepted > 0) {
            bad.push((id, accepted > 0, n));
        }
        if accepted == 0 {
            continue;
        }
        let kind = st.kinds[id].load(Ordering::SeqCst);
        by_kind[kind as usize] += 1;
        if kind == OK {
            successes[accepted as usize - 1].insert(id);
        } else {
            failed_ids.insert(id);
            if st.calm[id].load(Ordering::SeqCst) {
                calm_failed.push((id, KIND_NAMES[kind as usize]));
            }
        }
    }
    let accepted = st.accepted.load(Ordering::SeqCst);
    let calm_sent = (0..ids)
        .filter(|&id| st.calm[id].load(Ordering::SeqCst))
        .count();
    let refused = st.refused.lock().unwrap().clone();
    let codes = st.broker_codes.lock().unwrap().clone();
    let faults_log = st.faults.lock().unwrap().clone();
    let mut fault_kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &faults_log {
        let word = f.split_whitespace().nth(2).unwrap_or("?");
        let word = match word {
            "errors" | "rtt" | "leader" | "down" | "broker_error" | "freeze" | "undo" => word,
            _ => continue,
        };
        *fault_kinds.entry(word).or_insert(0) += 1;
    }
    let kinds: Vec<String> = (1..7)
        .filter(|&k| by_kind[k] > 0)
        .map(|k| format!("{}: {}", KIND_NAMES[k], by_kind[k]))
        .collect();
    eprintln!(
        "chaos: seed {seed}; {:.1} s in all, flush {flush_took:?}\n  records: {ids} sent, \
         {accepted} accepted, refused by send: {refused:?}\n  outcomes: {}\n  broker error \
         codes: {codes:?}\n  records sent after the faults: {calm_sent}, failed: {}\n  \
         retries logged: {}, connections dropped: {}\n  faults: {fault_kinds:?}\n  peak RSS \
         (VmHWM): {:.1} MiB (buffer.memory {} MiB)",
        run_took.as_secs_f64(),
        kinds.join(", "),
        calm_failed.len(),
        logs::count(logs::RETRY),
        logs::count(logs::DISCONNECT),
        rss as f64 / (1 << 20) as f64,
        BUFFER_MEMORY >> 20,
    );
    let fail = |why: String| -> ! {
        eprintln!("faults:\n  {}", faults_log.join("\n  "));
        panic!("{why} (seed {seed}; replay with CHAOS_SEED={seed})");
    };
    if !bad.is_empty() {
        fail(format!(
            "{} records without exactly one completion (id, accepted, completions), first: {:?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        ));
    }
    if logs::count(logs::TWICE) > 0 || logs::count(logs::PANIC) > 0 {
        fail(format!(
            "the producer logged {} double completions and {} panics",
            logs::count(logs::TWICE),
            logs::count(logs::PANIC)
        ));
    }
    if by_kind[OK as usize] == 0 {
        fail("no record succeeded".into());
    }
    if !calm_failed.is_empty() {
        fail(format!(
            "{} records sent after the faults were undone failed, first: {:?}",
            calm_failed.len(),
            &calm_failed[..calm_failed.len().min(10)]
        ));
    }
    // With max.in.flight=1, one thread's successful records to one
    // partition have offsets in send order.
    let mut order_checked = 0;
    if in_flight == 1 {
        let mut last: BTreeMap<(u8, u8, i32), (usize, i64)> = BTreeMap::new();
        for (ti, ok) in successes.iter().enumerate() {
            for &id in ok {
                let key = (
                    st.sender[id].load(Ordering::SeqCst),
                    ti as u8,
                    st.partition[id].load(Ordering::SeqCst),
                );
                let off = st.offset[id].load(Ordering::SeqCst);
                if let Some((prev, prev_off)) = last.insert(key, (id, off)) {
                    if prev_off >= off {
                        fail(format!(
                            "order broken with max.in.flight=1: sender {} sent record {prev} \
                             before {id} to {}-{}, but they got offsets {prev_off} and {off}",
                            key.0, TOPICS[ti].0, key.2
                        ));
                    }
                }
                order_checked += 1;
            }
        }
    }
    if rss >= BUFFER_MEMORY as u64 + RSS_MARGIN {
        fail(format!(
            "peak RSS {} MiB is above buffer.memory {} MiB + {} MiB",
            rss >> 20,
            BUFFER_MEMORY >> 20,
            RSS_MARGIN >> 20
        ));
    }

    // Every success is in the log (the faults are undone: the consumer
    // reads from a calm cluster).
    let mut dup_total = 0;
    let mut failed_but_written = 0;
    for (ti, (topic, _)) in TOPICS.iter().enumerate() {
        let want = &successes[ti];
        let got = consume_at_least(&bootstrap, topic, want.len(), Duration::from_secs(120));
        let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
        for c in &got {
            if let Some(id) = c.value.as_deref().and_then(id_of) {
                *seen.entry(id).or_insert(0) += 1;
            }
        }
        let missing: Vec<&usize> = want.iter().filter(|id| !seen.contains_key(id)).collect();
        if !missing.is_empty() {
            fail(format!(
                "{topic}: {} successful records are not in the log, first: {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            ));
        }
        dup_total += seen.values().filter(|&&n| n > 1).count();
        failed_but_written += seen.keys().filter(|id| failed_ids.contains(id)).count();
        eprintln!(
            "  {topic}: {} successes, {} records in the log",
            want.len(),
            got.len()
        );
    }
    if in_flight == 1 {
        eprintln!("  order per (sender, partition) held for {order_checked} successes");
    }
    eprintln!(
        "  log: {dup_total} records written more than once, {failed_but_written} failed records \
         written anyway (at-least-once ambiguity of timeouts)"
    );
    drop(mock);
}

/// The producer's log lines the report counts (`common::logs` keeps its
/// recent warnings too, for a hang's diagnosis).
mod logs {
    pub use crate::common::logs::{count, recent};

    pub const RETRY: usize = 0;
    pub const DISCONNECT: usize = 1;
    pub const TWICE: usize = 2;
    pub const PANIC: usize = 3;
    const PATTERNS: [&str; 4] = [
        ": retrying ",
        ": disconnecting: ",
        "completed twice",
        "panicked",
    ];

    pub fn install() {
        crate::common::logs::install(&PATTERNS);
    }
}
