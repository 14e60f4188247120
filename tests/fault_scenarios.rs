//! Delivery under faults, one scenario per test, each on a private
//! librdkafka mock cluster: bursts of retriable Produce errors, a
//! non-retriable error, a broker slower than `request.timeout.ms`, leaders
//! moved while requests are in flight, leaders moved every few tens of
//! milliseconds, a broker down and up again, a broker
//! down past `delivery.timeout.ms`, and an outage of every broker.
//!
//! Every test counts the callbacks of every record it sent (exactly one
//! each), checks the outcome the scenario promises, and reads the topic
//! back with the independent consumer (`common::consume`, or
//! `common::consume_at_least` where a retry without idempotence may write a
//! batch twice): what succeeded is in the log, at the offset reported.
//!
//! Timeouts are short and explicit; every loop is bounded in count and in
//! time. A sleep is used only where it *is* the scenario (an outage's
//! length, the pace of a stream of records); waits for an event use a
//! signal (flush, a handle, the producer's own log line).
//!
//! The producer's log is captured by a small counting logger (see
//! [`logs`]): the number of retries and of dropped connections is how the
//! tests check that a fault really hit the producer, not only that the
//! records came through.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use common::{consume, consume_at_least, Consumed, MockCluster};
use kafka_producer::ErrorCode;
use kafka_producer::{
    ByteArraySerializer, Error, Producer, ProducerConfig, ProducerRecord, RecordFuture,
    RecordMetadata,
};

type P = Producer<[u8], [u8]>;

/// Every test holds this for reading; the CPU test holds it for writing,
/// so that it measures this process with no other scenario running.
static SERIAL: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    logs::install();
    SERIAL.read().unwrap_or_else(|e| e.into_inner())
}

fn producer(cfg: ProducerConfig) -> Arc<P> {
    Arc::new(Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap())
}

/// Short, explicit timeouts; each test overrides what its scenario needs.
fn base(mock: &MockCluster, client: &str) -> ProducerConfig {
    ProducerConfig::new()
        .bootstrap_servers(mock.bootstrap.clone())
        .client_id(client)
        .max_block(Duration::from_secs(5))
        .linger(Duration::from_millis(5))
        .request_timeout(Duration::from_millis(2000))
        .delivery_timeout(Duration::from_millis(15000))
        .retry_backoff(Duration::from_millis(20))
        .retry_backoff_max(Duration::from_millis(200))
}

/// The leader of each partition of `topic`, as the producer sees it.
fn leaders(p: &P, topic: &str) -> Vec<i32> {
    let mut parts = p.partitions_for(topic).unwrap();
    parts.sort_by_key(|i| i.partition);
    parts
        .iter()
        .map(|i| i.leader.expect("every partition has a leader"))
        .collect()
}

/// Flushes, failing the test (instead of hanging) if it takes over `limit`.
fn flush_within(p: &Arc<P>, limit: Duration, what: &str) {
    let p2 = p.clone();
    let t0 = Instant::now();
    let flusher = std::thread::spawn(move || p2.flush());
    while !flusher.is_finished() {
        assert!(
            t0.elapsed() < limit,
            "{what}: flush did not return within {limit:?} (hang)"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    flusher.join().unwrap().unwrap();
}

/// The partition an error names, for the errors that name one.
fn err_partition(e: &Error) -> Option<i32> {
    match e {
        Error::Broker { partition, .. } | Error::DeliveryTimeout { partition, .. } => {
            Some(*partition)
        }
        _ => None,
    }
}

/// One record's outcome, as its callback saw it.
#[derive(Debug, Clone)]
struct Done {
    at: Instant,
    result: Result<(i32, i64), Error>,
}

type Sent = (Instant, Option<i32>);

/// Counts every callback of every record a test sends, and keeps each
/// record's outcome, its send time and the order the callbacks ran in.
/// Record `i` has the value `"{tag}:{i:06}:"` padded with `.` to
/// `value_len` bytes, so the consumer's records map back to `i`.
struct Tracker {
    tag: String,
    value_len: usize,
    counts: Vec<AtomicU32>,
    outcomes: Mutex<Vec<Option<Done>>>,
    /// When each record was sent, and to which partition if explicit.
    sent: Mutex<Vec<Option<Sent>>>,
    /// Record indices in the order their callbacks ran.
    order: Mutex<Vec<usize>>,
    accepted: AtomicUsize,
}

impl Tracker {
    fn new(tag: &str, max: usize, value_len: usize) -> Arc<Tracker> {
        Arc::new(Tracker {
            tag: tag.to_owned(),
            value_len,
            counts: (0..max).map(|_| AtomicU32::new(0)).collect(),
            outcomes: Mutex::new(vec![None; max]),
            sent: Mutex::new(vec![None; max]),
            order: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
        })
    }

    fn value(&self, i: usize) -> Vec<u8> {
        let mut v = format!("{}:{i:06}:", self.tag).into_bytes();
        if v.len() < self.value_len {
            v.resize(self.value_len, b'.');
        }
        v
    }

    /// The record index of a consumed record, if it is one of ours.
    fn index(&self, c: &Consumed) -> Option<usize> {
        let v = std::str::from_utf8(c.value.as_deref()?).ok()?;
        let mut it = v.split(':');
        (it.next()? == self.tag).then_some(())?;
        it.next()?.parse().ok()
    }

    /// Sends record `i` with a callback that counts its outcome; panics if
    /// `send` refuses it (no scenario here expects that).
    fn send(
        self: &Arc<Self>,
        p: &P,
        i: usize,
        topic: &str,
        key: Option<&[u8]>,
        partition: Option<i32>,
    ) -> RecordFuture {
        let value = self.value(i);
        let record =
            ProducerRecord::with_timestamp(topic, partition, None, key, Some(value), vec![]);
        self.sent.lock().unwrap()[i] = Some((Instant::now(), partition));
        let t = self.clone();
        let h = p
            .send_with_callback(record, move |r| t.on_done(i, r))
            .unwrap_or_else(|e| panic!("send of record {i} to {topic} refused: {e}"));
        self.accepted.fetch_add(1, Ordering::SeqCst);
        h
    }

    /// Sends records `0..partitions`, one to each partition, and waits
    /// for each: the producer knows every leader before a scenario starts.
    fn warm_up(self: &Arc<Self>, p: &P, topic: &str, partitions: usize) {
        for part in 0..partitions {
            self.send(p, part, topic, None, Some(part as i32))
                .get()
                .unwrap();
        }
    }

    /// From another thread, sends records `from..max` with 16 keys, one
    /// a millisecond, until `max` or until the returned flag is set. The
    /// thread returns how far it got.
    fn stream_keyed(
        self: &Arc<Self>,
        p: &Arc<P>,
        topic: &str,
        from: usize,
        max: usize,
    ) -> (Arc<AtomicBool>, std::thread::JoinHandle<usize>) {
        let stop = Arc::new(AtomicBool::new(false));
        let (p, t, s, topic) = (p.clone(), self.clone(), stop.clone(), topic.to_owned());
        let sender = std::thread::spawn(move || {
            let mut i = from;
            while i < max && !s.load(Ordering::SeqCst) {
                let key = format!("key-{}", i % 16);
                t.send(&p, i, &topic, Some(key.as_bytes()), None);
                i += 1;
                std::thread::sleep(Duration::from_millis(1)); // the stream's pace
            }
            i
        });
        (stop, sender)
    }

    fn on_done(&self, i: usize, r: kafka_producer::Result<RecordMetadata>) {
        let n = self.counts[i].fetch_add(1, Ordering::SeqCst);
        let result = r.map(|m| (m.partition(), m.offset()));
        if n == 0 {
            self.outcomes.lock().unwrap()[i] = Some(Done {
                at: Instant::now(),
                result,
            });
        }
        self.order.lock().unwrap().push(i);
    }

    /// Every one of the first `n` records got exactly one callback, and no
    /// other record got any. Call after `close` (no callback can follow).
    fn assert_each_once(&self, n: usize) {
        assert_eq!(self.accepted.load(Ordering::SeqCst), n, "records accepted");
        let bad: Vec<(usize, u32)> = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.load(Ordering::SeqCst)))
            .filter(|&(i, c)| c != u32::from(i < n))
            .take(10)
            .collect();
        assert!(
            bad.is_empty(),
            "{}: (record, callbacks) that did not get exactly one callback: {bad:?}",
            self.tag
        );
    }

    fn outcome(&self, i: usize) -> Done {
        self.outcomes.lock().unwrap()[i]
            .clone()
            .unwrap_or_else(|| panic!("{}: record {i} has no outcome", self.tag))
    }

    fn sent_at(&self, i: usize) -> Instant {
        self.sent.lock().unwrap()[i].expect("sent").0
    }

    /// Every one of `indices` succeeded.
    fn assert_all_ok(&self, indices: impl IntoIterator<Item = usize>) {
        for i in indices {
            if let Err(e) = self.outcome(i).result {
                panic!("{}: record {i} failed: {e}", self.tag);
            }
        }
    }

    /// The partition record `i` went to (from its metadata or its error,
    /// else the one it was sent to).
    fn partition_of(&self, i: usize) -> Option<i32> {
        match self.outcome(i).result {
            Ok((p, _)) => Some(p),
            Err(e) => err_partition(&e).or(self.sent.lock().unwrap()[i].and_then(|s| s.1)),
        }
    }

    /// Records sent from one thread, in index order, with
    /// max.in.flight=1: per partition, the callbacks ran in send order and
    /// the offsets grow in send order.
    fn assert_order_per_partition(&self, n: usize) {
        let order = self.order.lock().unwrap().clone();
        let mut last_cb: BTreeMap<i32, usize> = BTreeMap::new();
        for &i in &order {
            let Some(p) = self.partition_of(i) else {
                continue;
            };
            if let Some(prev) = last_cb.insert(p, i) {
                assert!(
                    prev < i,
                    "{}: partition {p}: callback of record {i} ran after that of record {prev}",
                    self.tag
                );
            }
        }
        let mut last_off: BTreeMap<i32, (usize, i64)> = BTreeMap::new();
        for i in 0..n {
            if let Ok((p, off)) = self.outcome(i).result {
                if let Some((prev, prev_off)) = last_off.insert(p, (i, off)) {
                    assert!(
                        prev_off < off,
                        "{}: partition {p}: record {i} got offset {off}, but the earlier record \
                         {prev} got {prev_off}: order broken",
                        self.tag
                    );
                }
            }
        }
    }

    /// The successful records among the first `n`.
    fn successes(&self, n: usize) -> Vec<usize> {
        (0..n).filter(|&i| self.outcome(i).result.is_ok()).collect()
    }

    /// Reads `topic` back with the independent consumer. With `exact`,
    /// the log holds exactly the successful records, once each; without,
    /// it holds at least them (a retry may have written a batch twice).
    /// Each success is found at the partition and offset its metadata
    /// reported. With `ordered`, each partition's records are in send order.
    fn check_log(
        &self,
        mock: &MockCluster,
        topic: &str,
        n: usize,
        exact: bool,
        ordered: bool,
    ) -> Vec<Consumed> {
        let ok = self.successes(n);
        let timeout = Duration::from_secs(30);
        let got = if exact {
            consume(&mock.bootstrap, topic, ok.len(), timeout)
        } else {
            consume_at_least(&mock.bootstrap, topic, ok.len(), timeout)
        };
        let by_pos: BTreeMap<(i32, i64), Option<usize>> = got
            .iter()
            .map(|c| ((c.partition, c.offset), self.index(c)))
            .collect();
        for &i in &ok {
            let Ok((p, off)) = self.outcome(i).result else {
                unreachable!()
            };
            assert_eq!(
                by_pos.get(&(p, off)),
                Some(&Some(i)),
                "{}: record {i} was acknowledged at {topic}-{p}@{off}, but the log has {:?} there",
                self.tag,
                by_pos.get(&(p, off))
            );
        }
        if exact {
            let seen: BTreeSet<usize> = got.iter().filter_map(|c| self.index(c)).collect();
            let want: BTreeSet<usize> = ok.iter().copied().collect();
            assert_eq!(seen, want, "{}: the log's records", self.tag);
        }
        if ordered {
            let mut per: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
            for c in &got {
                if let Some(i) = self.index(c) {
                    per.entry(c.partition).or_default().push((c.offset, i));
                }
            }
            for (p, mut v) in per {
                v.sort();
                let idx: Vec<usize> = v.iter().map(|x| x.1).collect();
                assert!(
                    idx.windows(2).all(|w| w[0] < w[1]),
                    "{}: {topic}-{p} holds the records out of send order: {idx:?}",
                    self.tag
                );
            }
        }
        got
    }
}

/// 1. Bursts of NOT_LEADER_OR_FOLLOWER (6) and REQUEST_TIMED_OUT (7) on
///    Produce: every record succeeds after retries, and with
///    max.in.flight=1 each partition keeps send order (callbacks, offsets
///    and the log).
#[test]
fn bursts_of_retriable_errors_are_retried_in_order() {
    let _g = shared();
    let mut mock = MockCluster::start(3, &[("burst", 3)]);
    let p = producer(
        base(&mock, "burst")
            .max_in_flight_requests_per_connection(1)
            .batch_size(1024)
            .linger(Duration::from_millis(2)),
    );
    let t = Tracker::new("burst", 1000, 100);
    let mut n = 0;
    for part in 0..3 {
        t.send(&p, n, "burst", None, Some(part)).get().unwrap();
        n += 1;
    }
    let bursts = [
        "errors 0 6 6 7 6 7 7 6 6 7 6",
        "errors 0 7 7 7 6 6",
        "errors 0 6 7 6 7 6 7 6 7",
    ];
    let mut injected = 0;
    for burst in bursts {
        mock.command(burst);
        injected += burst.split(' ').count() - 2;
        // ~8 records per 1 KiB batch: about 25 batches (and as many
        // requests) per burst, more than the burst has errors.
        for _ in 0..200 {
            let key = format!("key-{}", n % 13);
            t.send(&p, n, "burst", Some(key.as_bytes()), None);
            n += 1;
        }
    }
    flush_within(&p, Duration::from_secs(30), "bursts");
    p.close().unwrap();
    t.assert_each_once(n);
    t.assert_all_ok(0..n);
    t.assert_order_per_partition(n);
    let retries = logs::count("burst", logs::RETRY);
    assert!(
        retries >= injected,
        "{injected} Produce errors were injected but only {retries} retries were logged"
    );
    assert_eq!(logs::count_all(logs::TWICE), 0, "a batch completed twice");
    t.check_log(&mock, "burst", n, true, true);
    eprintln!("bursts: {n} records, {injected} injected errors, {retries} retries");
}

/// 2. A non-retriable error (INVALID_RECORD, 87) on one broker's next
///    Produce: exactly the batches of that request fail, each record with
///    `Error::Broker` naming the code, the topic and its partition; every
///    other record succeeds, and the failed ones are not in the log.
#[test]
fn a_non_retriable_error_fails_exactly_the_affected_batch() {
    let _g = shared();
    let mut mock = MockCluster::start(3, &[("fatal", 3)]);
    let p = producer(
        base(&mock, "fatal")
            .max_in_flight_requests_per_connection(1)
            .batch_size(64 * 1024)
            // one batch per partition per round: flush sends them together
            .linger(Duration::from_millis(800)),
    );
    let t = Tracker::new("fatal", 1000, 50);
    let mut n = 0;
    for part in 0..3 {
        t.send(&p, n, "fatal", None, Some(part));
        n += 1;
    }
    flush_within(&p, Duration::from_secs(10), "warm-up");
    t.assert_all_ok(0..n);
    let leaders = leaders(&p, "fatal");
    let victim = leaders[0];
    let affected: BTreeSet<i32> = (0..3).filter(|&q| leaders[q as usize] == victim).collect();
    mock.command(&format!("broker_error {victim} 0 87 0"));

    let round1 = n..n + 60;
    for i in round1.clone() {
        t.send(&p, i, "fatal", None, Some((i % 3) as i32));
    }
    n = round1.end;
    flush_within(&p, Duration::from_secs(10), "round 1");
    let round2 = n..n + 60;
    for i in round2.clone() {
        t.send(&p, i, "fatal", None, Some((i % 3) as i32));
    }
    n = round2.end;
    flush_within(&p, Duration::from_secs(10), "round 2");
    p.close().unwrap();

    t.assert_each_once(n);
    let mut failed = 0;
    for i in round1 {
        let part = (i % 3) as i32;
        match t.outcome(i).result {
            Ok(_) => assert!(
                !affected.contains(&part),
                "record {i} to fatal-{part} (leader {victim}, which answered 87) succeeded"
            ),
            Err(e) => {
                assert!(
                    affected.contains(&part),
                    "record {i} to fatal-{part} (not led by {victim}) failed: {e}"
                );
                common::assert_broker_error(
                    &format!("record {i}"),
                    &e,
                    ErrorCode::INVALID_RECORD,
                    "fatal",
                    part,
                );
                assert!(!e.is_retriable(), "{e}");
                assert_eq!(e.code(), Some(ErrorCode::INVALID_RECORD));
                let text = e.to_string();
                assert!(
                    text.contains("INVALID_RECORD") && text.contains(&format!("fatal-{part}")),
                    "the message names the code, topic and partition: {text}"
                );
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 20 * affected.len(), "records of the failed batches");
    t.assert_all_ok(round2);
    assert_eq!(
        logs::count("fatal", logs::RETRY),
        0,
        "a non-retriable error was retried"
    );
    t.check_log(&mock, "fatal", n, true, true);
    eprintln!("non-retriable: {failed} records failed on partitions {affected:?}");
}

/// 3a. The leader answers slower than `request.timeout.ms`: the request
///     times out, the connection is dropped (the producer logs it), and
///     once the broker is fast again the batch is retried and succeeds.
///     The first attempt was written by the broker, whose answer was never
///     read: without idempotence the log holds the record twice, and the
///     offset reported is the retry's.
#[test]
fn a_request_slower_than_request_timeout_is_retried_on_a_new_connection() {
    let _g = shared();
    let mut mock = MockCluster::start(2, &[("slow", 1)]);
    let request_timeout = Duration::from_millis(1000);
    let p = producer(
        base(&mock, "slow")
            .linger(Duration::ZERO)
            .request_timeout(request_timeout)
            .delivery_timeout(Duration::from_secs(15)),
    );
    let t = Tracker::new("slow", 10, 20);
    t.send(&p, 0, "slow", None, Some(0)).get().unwrap();
    let leader = leaders(&p, "slow")[0];
    let before = logs::count("slow", logs::REQUEST_TIMEOUT);
    mock.command(&format!("rtt {leader} 5000"));
    let t0 = Instant::now();
    let h = t.send(&p, 1, "slow", None, Some(0));
    logs::wait_for(
        "slow",
        logs::REQUEST_TIMEOUT,
        before + 1,
        Duration::from_secs(8),
    );
    let timed_out_after = t0.elapsed();
    assert!(
        timed_out_after >= request_timeout - Duration::from_millis(50),
        "the request was dropped after {timed_out_after:?}, before request.timeout.ms"
    );
    assert!(
        !h.is_done(),
        "the record completed although its answer is 5 s away"
    );
    mock.command(&format!("rtt {leader} 0"));
    let m = h
        .get()
        .unwrap_or_else(|e| panic!("the retry after the request timeout failed: {e}"));
    p.close().unwrap();
    t.assert_each_once(2);
    let got = t.check_log(&mock, "slow", 2, false, false);
    let copies: Vec<i64> = got
        .iter()
        .filter(|c| t.index(c) == Some(1))
        .map(|c| c.offset)
        .collect();
    assert!(
        copies.len() >= 2,
        "the timed-out attempt and the retry should both be in the log, found offsets {copies:?}"
    );
    assert_ne!(
        m.offset(),
        copies[0],
        "the offset reported is the first attempt's, whose answer was never read"
    );
    eprintln!(
        "slow broker: timed out after {timed_out_after:?}, delivered at offset {} ({} copies in the log)",
        m.offset(),
        copies.len()
    );
}

/// 3b. The leader stays slower than `request.timeout.ms` past
///     `delivery.timeout.ms`: every attempt times out, and the record fails
///     with `Error::DeliveryTimeout` on time. (The first attempt reached the
///     broker: a delivery timeout does not mean "not written".)
#[test]
fn a_broker_slower_than_request_timeout_past_delivery_timeout_fails_the_record() {
    let _g = shared();
    let mut mock = MockCluster::start(2, &[("slower", 1)]);
    let delivery = Duration::from_millis(2500);
    let p = producer(
        base(&mock, "slower")
            .linger(Duration::ZERO)
            .request_timeout(Duration::from_millis(800))
            .delivery_timeout(delivery),
    );
    let t = Tracker::new("slower", 10, 20);
    t.send(&p, 0, "slower", None, Some(0)).get().unwrap();
    let leader = leaders(&p, "slower")[0];
    mock.command(&format!("rtt {leader} 10000"));
    let t0 = Instant::now();
    let h = t.send(&p, 1, "slower", None, Some(0));
    let r = h.get();
    let took = t0.elapsed();
    match &r {
        Err(Error::DeliveryTimeout {
            topic, partition, ..
        }) => assert_eq!((topic.as_str(), *partition), ("slower", 0)),
        other => panic!("expected a delivery timeout, got {other:?}"),
    }
    assert!(
        took >= delivery - Duration::from_millis(50)
            && took < delivery + Duration::from_millis(1500),
        "failed after {took:?}; delivery.timeout.ms is {delivery:?}"
    );
    assert!(
        logs::count("slower", logs::REQUEST_TIMEOUT) >= 1,
        "no request timed out"
    );
    mock.command(&format!("rtt {leader} 0"));
    p.close().unwrap();
    t.assert_each_once(2);
    let got = t.check_log(&mock, "slower", 2, false, false);
    let copies = got.iter().filter(|c| t.index(c) == Some(1)).count();
    assert!(copies >= 1, "the first attempt reached the broker");
    eprintln!("slower: delivery timeout after {took:?}; {copies} copies were written anyway");
}

/// 4. Leaders move while requests are in flight (every broker answers
///    200 ms late, so a move lands mid-request), eight times over, while a
///    stream of keyed records flows: every record completes once and
///    succeeds, and with max.in.flight=1 each partition keeps send order.
#[test]
fn leader_moves_mid_request_keep_order_per_partition() {
    let _g = shared();
    let mut mock = MockCluster::start(3, &[("moves", 4)]);
    let p = producer(
        base(&mock, "moves")
            .max_in_flight_requests_per_connection(1)
            .request_timeout(Duration::from_millis(3000))
            .delivery_timeout(Duration::from_secs(20)),
    );
    const MAX: usize = 6000;
    let t = Tracker::new("moves", MAX, 60);
    t.warm_up(&p, "moves", 4);
    let mut lead = leaders(&p, "moves");
    for b in 1..=3 {
        mock.command(&format!("rtt {b} 200"));
    }
    let (stop, sender) = t.stream_keyed(&p, "moves", 4, MAX);
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(300)); // batches go in flight on the old leaders
        for (part, l) in lead.iter_mut().enumerate() {
            *l = *l % 3 + 1;
            mock.command(&format!("leader moves {part} {l}"));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let n = sender.join().unwrap();
    flush_within(&p, Duration::from_secs(30), "leader moves");
    p.close().unwrap();
    for b in 1..=3 {
        mock.command(&format!("rtt {b} 0"));
    }
    t.assert_each_once(n);
    t.assert_all_ok(0..n);
    t.assert_order_per_partition(n);
    let retries = logs::count("moves", logs::RETRY);
    assert!(retries > 0, "no batch met a moved leader");
    assert_eq!(logs::count_all(logs::TWICE), 0, "a batch completed twice");
    t.check_log(&mock, "moves", n, true, true);
    eprintln!("leader moves: {n} records, {retries} retries");
}

/// 4b. Leader churn: one partition's leader moves every few tens of
///    milliseconds (each move waits for the mock to apply the previous
///    one) for four seconds, while a stream of keyed records flows with
///    max.in.flight=1. The producer keeps making progress: records succeed
///    in every second of the churn, none waits out its delivery timeout,
///    and each partition keeps send order.
#[test]
fn leader_churn_keeps_records_flowing_in_order() {
    let _g = shared();
    let mut mock = MockCluster::start(3, &[("churn", 4)]);
    let p = producer(
        base(&mock, "churn")
            .max_in_flight_requests_per_connection(1)
            .delivery_timeout(Duration::from_secs(20)),
    );
    const MAX: usize = 20_000;
    let t = Tracker::new("churn", MAX, 40);
    t.warm_up(&p, "churn", 4);
    let (stop, sender) = t.stream_keyed(&p, "churn", 4, MAX);
    // SplitMix64: a fixed schedule of moves, different leaders each time.
    let mut seed = 0x5eed_u64;
    let mut next = move || {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let churn_start = Instant::now();
    let churn = Duration::from_secs(4);
    let mut moves = 0;
    while churn_start.elapsed() < churn {
        let part = next() % 4;
        let leader = next() % 3 + 1;
        mock.command(&format!("leader churn {part} {leader}"));
        moves += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let churn_end = Instant::now();
    stop.store(true, Ordering::SeqCst);
    let n = sender.join().unwrap();
    flush_within(&p, Duration::from_secs(30), "leader churn");
    p.close().unwrap();
    t.assert_each_once(n);
    t.assert_all_ok(0..n);
    t.assert_order_per_partition(n);
    // Progress during the churn, not only once it stopped.
    let mut per_second = [0usize; 4];
    for i in 0..n {
        let at = t.outcome(i).at;
        if at >= churn_start && at < churn_end {
            let s = (at - churn_start).as_secs() as usize;
            per_second[s.min(3)] += 1;
        }
    }
    assert!(
        per_second.iter().all(|&c| c > 0),
        "records completed per second of churn: {per_second:?}: the producer stalled"
    );
    let retries = logs::count("churn", logs::RETRY);
    assert!(retries > 0, "no batch met a moved leader");
    assert_eq!(logs::count_all(logs::TWICE), 0, "a batch completed twice");
    t.check_log(&mock, "churn", n, true, true);
    eprintln!(
        "leader churn: {moves} moves, {n} records, {retries} retries, completed per second \
         {per_second:?}"
    );
}

/// 4c. A producer dropped while its broker does not answer warns that it
///    waits, then waits no longer than `delivery.timeout.ms` and fails the
///    record (it is not lost silently, and the drop does not hang). One
///    closed first does not warn.
#[test]
fn a_drop_that_has_to_wait_says_so_and_waits_at_most_the_delivery_timeout() {
    let _g = shared();
    let mock = MockCluster::start(1, &[("dropwait", 1)]);
    let delivery = Duration::from_millis(2500);
    let cfg = |client: &str| {
        base(&mock, client)
            .linger(Duration::ZERO)
            .request_timeout(Duration::from_millis(2000))
            .delivery_timeout(delivery)
    };
    let closed = producer(cfg("dropclosed"));
    closed
        .send(ProducerRecord::new("dropwait", &b"a"[..]))
        .unwrap()
        .get()
        .unwrap();
    closed.close().unwrap();
    drop(closed);
    assert_eq!(logs::count("dropclosed", logs::DROPPED_WAITING), 0);

    let p = Producer::new(cfg("dropwait"), ByteArraySerializer, ByteArraySerializer).unwrap();
    p.partitions_for("dropwait").unwrap();
    mock.signal("STOP");
    let h = p.send(ProducerRecord::new("dropwait", &b"b"[..])).unwrap();
    let t0 = Instant::now();
    drop(p);
    let took = t0.elapsed();
    mock.signal("CONT");
    assert_eq!(logs::count("dropwait", logs::DROPPED_WAITING), 1);
    assert!(
        took < delivery + Duration::from_millis(700),
        "drop took {took:?} (delivery.timeout.ms {delivery:?})"
    );
    // Its delivery timeout and the drop's wait end together: either error.
    match h.get() {
        Err(Error::DeliveryTimeout { .. } | Error::Aborted(_)) => {}
        other => panic!("expected a delivery timeout or an abort, got {other:?}"),
    }
}

/// 5. A broker goes down and comes back up: records to its partitions
///    wait, then succeed once it is up, within delivery.timeout.ms; records
///    to the other brokers' partitions succeed while it is down.
#[test]
fn records_to_a_broker_that_comes_back_succeed() {
    let _g = shared();
    let mut mock = MockCluster::start(3, &[("downup", 3)]);
    let delivery = Duration::from_secs(10);
    let p = producer(
        base(&mock, "downup")
            .request_timeout(Duration::from_millis(1500))
            .delivery_timeout(delivery),
    );
    let t = Tracker::new("downup", 1000, 50);
    for part in 0..3 {
        t.send(&p, part, "downup", None, Some(part as i32))
            .get()
            .unwrap();
    }
    let leaders = leaders(&p, "downup");
    let victim = leaders[0];
    let dead: BTreeSet<i32> = (0..3).filter(|&q| leaders[q as usize] == victim).collect();
    mock.command(&format!("down {victim}"));
    let down_at = Instant::now();
    let mut handles = Vec::new();
    let n = 3 + 150;
    for i in 3..n {
        let part = (i % 3) as i32;
        handles.push((i, part, t.send(&p, i, "downup", None, Some(part))));
    }
    for (i, part, h) in &handles {
        if !dead.contains(part) {
            h.get_timeout(Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("record {i} to a live broker: {e}"));
        }
    }
    for (i, part, h) in &handles {
        if dead.contains(part) {
            assert!(!h.is_done(), "record {i} to the down broker completed");
        }
    }
    let outage = Duration::from_secs(2);
    std::thread::sleep(outage.saturating_sub(down_at.elapsed())); // the outage
    mock.command(&format!("up {victim}"));
    let up_at = Instant::now();
    for (i, _, h) in &handles {
        h.get()
            .unwrap_or_else(|e| panic!("record {i} after the broker came back: {e}"));
    }
    let recovered = up_at.elapsed();
    let last = (3..n).map(|i| t.outcome(i).at).max().unwrap();
    for i in 3..n {
        assert!(t.outcome(i).at.duration_since(t.sent_at(i)) < delivery);
    }
    flush_within(&p, Duration::from_secs(10), "down/up");
    p.close().unwrap();
    t.assert_each_once(n);
    t.assert_all_ok(0..n);
    t.check_log(&mock, "downup", n, true, false);
    eprintln!(
        "down/up: {n} records; the down broker's records done {recovered:?} after it came up \
         ({:?} after it went down)",
        last.duration_since(down_at)
    );
}

/// 6. One broker stays down past delivery.timeout.ms while records keep
///    flowing to every partition: the dead broker's records fail with
///    `Error::DeliveryTimeout` (about delivery.timeout.ms after they were
///    sent), the others succeed, and nothing hangs.
#[test]
fn a_dead_broker_fails_only_its_partitions_with_delivery_timeouts() {
    let _g = shared();
    let mut mock = MockCluster::start(3, &[("dead", 6)]);
    let delivery = Duration::from_millis(2500);
    let p = producer(
        base(&mock, "dead")
            .request_timeout(Duration::from_millis(1000))
            .delivery_timeout(delivery),
    );
    const MAX: usize = 2000;
    let t = Tracker::new("dead", MAX, 50);
    for part in 0..6 {
        t.send(&p, part, "dead", None, Some(part as i32))
            .get()
            .unwrap();
    }
    let leaders = leaders(&p, "dead");
    let victim = leaders[0];
    let dead: BTreeSet<i32> = (0..6).filter(|&q| leaders[q as usize] == victim).collect();
    mock.command(&format!("down {victim}"));
    let t0 = Instant::now();
    let mut n = 6;
    // Records to every partition for 4 s, longer than delivery.timeout.ms.
    while t0.elapsed() < Duration::from_secs(4) && n < MAX {
        t.send(&p, n, "dead", None, Some((n % 6) as i32));
        n += 1;
        std::thread::sleep(Duration::from_millis(5)); // the stream's pace
    }
    flush_within(&p, delivery + Duration::from_secs(10), "dead broker");
    p.close().unwrap();
    t.assert_each_once(n);
    let (mut failed, mut ok) = (0, 0);
    let mut first_dead = BTreeSet::new();
    for i in 6..n {
        let part = (i % 6) as i32;
        let done = t.outcome(i);
        let took = done.at.duration_since(t.sent_at(i));
        match (&done.result, dead.contains(&part)) {
            (Ok(_), false) => ok += 1,
            (
                Err(Error::DeliveryTimeout {
                    partition,
                    elapsed_ms,
                    ..
                }),
                true,
            ) => {
                assert_eq!(*partition, part);
                // A batch expires delivery.timeout.ms after it was created.
                // Records join an undrained batch until it is full, so a
                // later record may expire sooner after its own send (as in
                // Java), never later.
                assert!(
                    *elapsed_ms >= delivery.as_millis() as u64,
                    "record {i}: its batch expired at age {elapsed_ms} ms"
                );
                assert!(
                    took < delivery + Duration::from_millis(1500),
                    "record {i} expired {took:?} after it was sent"
                );
                if first_dead.insert(part) {
                    assert!(
                        took >= delivery - Duration::from_millis(100),
                        "the first record to dead-{part} expired {took:?} after it was sent"
                    );
                }
                failed += 1;
            }
            (r, is_dead) => {
                panic!("record {i} to dead-{part} (its leader is down: {is_dead}) ended with {r:?}")
            }
        }
    }
    assert!(failed > 0 && ok > 0, "failed {failed}, ok {ok}");
    mock.command(&format!("up {victim}"));
    t.check_log(&mock, "dead", n, true, false);
    eprintln!("dead broker: {failed} records expired, {ok} delivered, partitions {dead:?} dead");
}

/// CPU seconds used so far by this whole process (every thread, live or
/// gone), from /proc/self/stat.
fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let close = stat.rfind(')').unwrap();
    let f: Vec<&str> = stat[close + 2..].split(' ').collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

/// CPU seconds of this process's live threads whose names start with
/// `prefix`, by thread name.
fn thread_cpu(prefix: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        if !name.starts_with(prefix) {
            continue;
        }
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        let s = (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0;
        *out.entry(name.to_owned()).or_insert(0.0) += s;
    }
    out
}

/// 7. Every broker down for a few seconds, with records waiting: the
///    producer stays near idle (under 10% of one core over the outage,
///    measured for the whole process, which runs no other test meanwhile),
///    and once the brokers are back every record is delivered.
#[test]
fn an_outage_of_every_broker_keeps_the_producer_idle() {
    logs::install();
    let _g = SERIAL.write().unwrap_or_else(|e| e.into_inner());
    let mut mock = MockCluster::start(3, &[("outage", 3)]);
    let p = producer(
        base(&mock, "outage")
            .request_timeout(Duration::from_millis(1000))
            .delivery_timeout(Duration::from_secs(20))
            .metadata_max_age(Duration::from_millis(1000)),
    );
    let t = Tracker::new("outage", 100, 50);
    for part in 0..3 {
        t.send(&p, part, "outage", None, Some(part as i32))
            .get()
            .unwrap();
    }
    for b in 1..=3 {
        mock.command(&format!("down {b}"));
    }
    let n = 3 + 30;
    let handles: Vec<RecordFuture> = (3..n)
        .map(|i| t.send(&p, i, "outage", None, Some((i % 3) as i32)))
        .collect();
    // Let the I/O threads find every broker gone, then measure.
    std::thread::sleep(Duration::from_millis(500)); // part of the outage
    let (cpu0, threads0, w0) = (process_cpu_s(), thread_cpu("outage"), Instant::now());
    std::thread::sleep(Duration::from_secs(3)); // the outage
    let (cpu, wall) = (process_cpu_s() - cpu0, w0.elapsed().as_secs_f64());
    let threads: Vec<String> = thread_cpu("outage")
        .into_iter()
        .map(|(k, v)| format!("{k}: {:.2} s", v - threads0.get(&k).copied().unwrap_or(0.0)))
        .collect();
    assert!(
        handles.iter().all(|h| !h.is_done()),
        "a record completed during the outage"
    );
    for b in 1..=3 {
        mock.command(&format!("up {b}"));
    }
    let up_at = Instant::now();
    for (k, h) in handles.iter().enumerate() {
        h.get_timeout(Duration::from_secs(25))
            .unwrap_or_else(|e| panic!("record {} after the outage: {e}", k + 3));
    }
    let recovered = up_at.elapsed();
    p.close().unwrap();
    let share = cpu / wall;
    assert!(
        share < 0.10,
        "the process used {cpu:.2} s of CPU in {wall:.1} s of outage ({:.0}% of a core); \
         producer threads: {threads:?}",
        share * 100.0
    );
    t.assert_each_once(n);
    t.assert_all_ok(0..n);
    t.check_log(&mock, "outage", n, true, false);
    eprintln!(
        "outage: {cpu:.2} s CPU in {wall:.1} s ({:.1}% of a core; threads {threads:?}); \
         recovered {recovered:?} after the brokers came up",
        share * 100.0
    );
}

/// A logger that counts the producer's log lines of interest per client
/// id (lines begin `<client.id> node <id>: `), so tests can check that a
/// fault hit (retries, dropped connections) and wait for a line as a
/// signal. Warnings and errors are also printed to stderr.
mod logs {
    use std::collections::HashMap;
    use std::sync::{Condvar, Mutex, Once};
    use std::time::{Duration, Instant};

    /// A batch retried (`io/broker.rs` `fail_or_retry`).
    pub const RETRY: &str = ": retrying ";
    /// A connection dropped because a request outlived request.timeout.ms.
    pub const REQUEST_TIMEOUT: &str = "got no response within request.timeout.ms";
    /// A batch completed twice (`accumulator/batch.rs`).
    pub const TWICE: &str = "completed twice";
    /// A producer dropped with records still waiting (`Producer::drop`).
    pub const DROPPED_WAITING: &str = "dropped while";
    const KINDS: [&str; 4] = [RETRY, REQUEST_TIMEOUT, TWICE, DROPPED_WAITING];

    struct Counter {
        counts: Mutex<HashMap<(String, &'static str), usize>>,
        changed: Condvar,
    }

    static COUNTER: std::sync::OnceLock<Counter> = std::sync::OnceLock::new();

    fn counter() -> &'static Counter {
        COUNTER.get_or_init(|| Counter {
            counts: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
        })
    }

    struct Logger;

    impl log::Log for Logger {
        fn enabled(&self, m: &log::Metadata) -> bool {
            m.level() <= log::Level::Debug && m.target().starts_with("kafka_producer")
        }

        fn log(&self, r: &log::Record) {
            if !self.enabled(r.metadata()) {
                return;
            }
            let line = r.args().to_string();
            if r.level() <= log::Level::Warn {
                eprintln!("[{}] {line}", r.level());
            }
            // I/O threads say "{client} node {id}: ...", the producer
            // "producer {client} ...".
            let client = match line.strip_prefix("producer ") {
                Some(rest) => rest.split(' ').next().unwrap_or(""),
                None => line.split(" node ").next().unwrap_or(""),
            }
            .to_owned();
            let c = counter();
            let mut counts = c.counts.lock().unwrap();
            for kind in KINDS.iter().filter(|k| line.contains(*k)) {
                *counts.entry((client.clone(), kind)).or_insert(0) += 1;
                *counts.entry((String::new(), kind)).or_insert(0) += 1;
            }
            drop(counts);
            c.changed.notify_all();
        }

        fn flush(&self) {}
    }

    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            if log::set_logger(&Logger).is_ok() {
                log::set_max_level(log::LevelFilter::Debug);
            }
        });
    }

    /// Lines of `kind` logged for the producer `client`.
    pub fn count(client: &str, kind: &'static str) -> usize {
        let counts = counter().counts.lock().unwrap();
        counts.get(&(client.to_owned(), kind)).copied().unwrap_or(0)
    }

    /// Lines of `kind` logged by any producer of this process.
    pub fn count_all(kind: &'static str) -> usize {
        count("", kind)
    }

    /// Waits until `client` has logged `n` lines of `kind`; panics after
    /// `limit`.
    pub fn wait_for(client: &str, kind: &'static str, n: usize, limit: Duration) {
        let c = counter();
        let t0 = Instant::now();
        let key = (client.to_owned(), kind);
        let mut counts = c.counts.lock().unwrap();
        while counts.get(&key).copied().unwrap_or(0) < n {
            let left = limit
                .checked_sub(t0.elapsed())
                .unwrap_or_else(|| panic!("{client} did not log `{kind}` within {limit:?}"));
            counts = c.changed.wait_timeout(counts, left).unwrap().0;
        }
    }
}
