//! Apache Kafka's nodes fail under the producer: `scripts/brokers.sh
//! kafka-node kill|stop|start` SIGKILLs a partition leader mid-stream, or
//! restarts all three nodes one after another, or Admin moves every
//! partition's leader round its replicas for ten seconds, while records
//! flow. The
//! tests of this binary take one lock each, so only one disturbs the shared
//! cluster at a time, and cargo runs test binaries one after another, so no
//! other test sees a node down.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kproxy::{self, KProxy};
use common::{consume_at_least, java, topic, Broker};
use kafka_producer::{Acks, Producer, ProducerRecord, StringSerializer};

/// One test at a time disturbs the cluster.
static CLUSTER: Mutex<()> = Mutex::new(());

const PARTS: usize = 3;

fn brokers_sh(args: &[&str]) {
    let script =
        std::env::var("KP_BROKERS_SH").expect("KP_BROKERS_SH is not set: run scripts/test.sh");
    let out = Command::new(&script)
        .args(args)
        .output()
        .expect("run brokers.sh");
    assert!(
        out.status.success(),
        "brokers.sh {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Restarts the node on drop, so a failing assertion leaves the cluster
/// whole for the tests after this one.
struct Restart(Option<i32>);

impl Restart {
    fn now(&mut self) {
        if let Some(n) = self.0.take() {
            brokers_sh(&["kafka-node", "start", &n.to_string()]);
        }
    }
}

impl Drop for Restart {
    fn drop(&mut self) {
        if let Some(n) = self.0.take() {
            let _ = Command::new(std::env::var("KP_BROKERS_SH").unwrap_or_default())
                .args(["kafka-node", "start", &n.to_string()])
                .status();
        }
    }
}

/// A stream of up to `n` records (value `i` to partition `i % PARTS`) through an
/// acks=all, max.in.flight=1 (unless told otherwise) producer, on a fresh topic with replication
/// factor 3 and min.insync.replicas 2.
struct Stream {
    n: usize,
    topic: String,
    producer: Arc<Producer<str, str>>,
    completions: Arc<Vec<AtomicU8>>,
    failures: Arc<Mutex<Vec<String>>>,
    sent: Arc<AtomicUsize>,
    /// Ends the stream early (at the next record).
    stop: Arc<std::sync::atomic::AtomicBool>,
    sender: Option<std::thread::JoinHandle<()>>,
}

impl Stream {
    /// Starts sending, one short pause every `pause_every` records so that
    /// requests are in flight whenever a node goes.
    fn start(prefix: &str, n: usize, pause_every: usize) -> Stream {
        Self::start_with(prefix, n, pause_every, false, 1, Broker::Kafka.bootstrap())
    }

    /// As [`start`](Self::start), with `enable.idempotence`,
    /// `max.in.flight.requests.per.connection` and `bootstrap.servers` (the
    /// cluster, or a proxy in front of it) as given.
    fn start_with(
        prefix: &str,
        n: usize,
        pause_every: usize,
        idempotent: bool,
        max_in_flight: usize,
        bootstrap: &str,
    ) -> Stream {
        let topic = topic(prefix);
        java::create_topic(
            Broker::Kafka.bootstrap(),
            &topic,
            PARTS as i32,
            3,
            &[("min.insync.replicas", "2")],
        );
        let config = Broker::Kafka
            .config()
            .bootstrap_servers(bootstrap)
            .acks(Acks::All)
            .linger(Duration::from_millis(5))
            .max_in_flight_requests_per_connection(max_in_flight)
            .enable_idempotence(idempotent);
        let producer = Arc::new(Producer::new(config, StringSerializer, StringSerializer).unwrap());
        let completions: Arc<Vec<AtomicU8>> = Arc::new((0..n).map(|_| AtomicU8::new(0)).collect());
        let failures = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sender = {
            let (p, c, f, sent, stop) = (
                producer.clone(),
                completions.clone(),
                failures.clone(),
                sent.clone(),
                stop.clone(),
            );
            let topic = topic.clone();
            std::thread::spawn(move || {
                for i in 0..n {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let (c, f) = (c.clone(), f.clone());
                    let record = ProducerRecord::new(topic.as_str(), i.to_string())
                        .partition((i % PARTS) as i32);
                    p.send_with_callback(record, move |r| {
                        c[i].fetch_add(1, Ordering::SeqCst);
                        if let Err(e) = r {
                            f.lock().unwrap().push(format!("record {i}: {e}"));
                        }
                    })
                    .unwrap();
                    sent.store(i + 1, Ordering::SeqCst);
                    if i % pause_every == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        };
        Stream {
            n,
            topic,
            producer,
            completions,
            failures,
            sent,
            stop,
            sender: Some(sender),
        }
    }

    /// Waits until `k` records have been handed to `send`.
    fn wait_sent(&self, k: usize) {
        let t0 = Instant::now();
        while self.sent.load(Ordering::SeqCst) < k {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "the sender stalled before record {k}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// How many records have completed so far.
    fn completed(&self) -> usize {
        let n = self.sent.load(Ordering::SeqCst);
        self.completions[..n]
            .iter()
            .filter(|c| c.load(Ordering::SeqCst) > 0)
            .count()
    }

    /// Finishes the stream and checks it: every record completed exactly
    /// once and succeeded, and an independent consumer reads every value on
    /// its partition, the first copies in send order. Without idempotence a
    /// retried batch may be written twice (its first answer died with the
    /// node), so duplicates are allowed and counted.
    fn finish(self) -> usize {
        self.finish_counted().1
    }

    /// [`finish`](Self::finish), returning (records sent, duplicates).
    fn finish_counted(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.sender.take().unwrap().join().unwrap();
        self.producer.flush().unwrap();
        let failures = self.failures.lock().unwrap().clone();
        assert!(
            failures.is_empty(),
            "{} records failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        let n = self.sent.load(Ordering::SeqCst);
        assert!(n <= self.n);
        for (i, c) in self.completions.iter().enumerate().take(n) {
            assert_eq!(c.load(Ordering::SeqCst), 1, "record {i}: completions");
        }
        self.producer.close().unwrap();

        let got = consume_at_least(
            Broker::Kafka.bootstrap(),
            &self.topic,
            n,
            Duration::from_secs(120),
        );
        let mut seen = vec![false; n];
        let mut last_new = [None::<usize>; PARTS];
        for r in &got {
            let v: usize = String::from_utf8(r.value.clone().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                r.partition as usize,
                v % PARTS,
                "value {v} on the wrong partition"
            );
            if !seen[v] {
                // max.in.flight=1 (or idempotence): a partition's records
                // first appear in send order
                let p = r.partition as usize;
                assert!(
                    last_new[p].is_none_or(|prev| prev < v),
                    "partition {p}: {v} first appears after {:?}",
                    last_new[p]
                );
                last_new[p] = Some(v);
            }
            seen[v] = true;
        }
        let missing: Vec<usize> = (0..n).filter(|&i| !seen[i]).collect();
        assert!(
            missing.is_empty(),
            "{} acknowledged records missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        (n, got.len() - n)
    }
}

#[test]
fn a_leader_killed_mid_stream_loses_no_record() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 20_000;
    let stream = Stream::start("failover", N, 20);
    let victim = stream.producer.partitions_for(&stream.topic).unwrap()[0]
        .leader
        .expect("partition 0 has a leader");
    stream.wait_sent(N / 4);
    let mut restart = Restart(Some(victim));
    brokers_sh(&["kafka-node", "kill", &victim.to_string()]);
    stream.wait_sent(N / 2);
    restart.now();
    stream.wait_sent(N);
    let duplicates = stream.finish();
    eprintln!("failover: killed node {victim}; {N} records, {duplicates} duplicates read back");
}

/// `enable.idempotence=true` (and up to 5 requests in flight per
/// connection): the leader of some partitions is SIGKILLed mid-stream and
/// restarted. Read back by librdkafka and by Java's consumer, every record
/// is there once, each partition's in send order; and on every node's disk
/// (DumpLogSegments) each partition's batches carry one producer's
/// sequences, contiguous within each producer epoch: no gap, no repeat.
/// The producer talks to the cluster through `common::kproxy` (no fault),
/// which records every batch it sends: the same holds on the wire, and
/// every retry is byte-identical.
#[test]
fn a_leader_killed_mid_stream_with_idempotence_writes_each_record_once() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    // about one record per millisecond until the node is back and 3000
    // more have been sent; the bound only ends a stream that ran away
    const BOUND: usize = 200_000;
    // through a proxy (no faults) that records every batch on the wire
    let proxy = KProxy::start(Broker::Kafka.bootstrap());
    let stream = Stream::start_with("failover-idem", BOUND, 1, true, 5, &proxy.bootstrap);
    let topic = stream.topic.clone();
    let parts = stream.producer.partitions_for(&topic).unwrap();
    let victim = parts[0].leader.expect("partition 0 has a leader");
    let led: Vec<i32> = parts
        .iter()
        .filter(|p| p.leader == Some(victim))
        .map(|p| p.partition)
        .collect();
    stream.wait_sent(3000);
    let mut restart = Restart(Some(victim));
    brokers_sh(&["kafka-node", "kill", &victim.to_string()]);
    let at_kill = stream.sent.load(Ordering::SeqCst);
    stream.wait_sent(at_kill + 3000);
    restart.now();
    let at_restart = stream.sent.load(Ordering::SeqCst);
    stream.wait_sent(at_restart + 3000);
    let t_sent = t0.elapsed();
    let (n, duplicates) = stream.finish_counted();
    assert!(n < BOUND, "the stream ended before the node was back");
    assert_eq!(duplicates, 0, "records written twice despite idempotence");
    let t_finished = t0.elapsed();

    // The wire: one producer id, byte-identical retries, contiguous
    // sequences per partition, each partition's records sent once.
    let errors = proxy.errors();
    assert!(errors.is_empty(), "the proxy failed: {errors:?}");
    let sent = proxy.sent_batches();
    let wire = kproxy::check_sequences(&sent).unwrap_or_else(|e| panic!("on the wire: {e}"));
    let per_partition: std::collections::BTreeMap<i32, usize> = (0..PARTS)
        .map(|p| (p as i32, (0..n).filter(|i| i % PARTS == p).count()))
        .collect();
    assert_eq!(
        wire.per_partition, per_partition,
        "records in distinct batches on the wire"
    );

    // Java's consumer: every record once, in send order per partition.
    let got = java::java_consume(
        Broker::Kafka.bootstrap(),
        &topic,
        n,
        Duration::from_secs(60),
        false,
    );
    let mut sorted: Vec<_> = got.iter().collect();
    sorted.sort_by_key(|c| (c.partition, c.offset));
    for p in 0..PARTS {
        let values: Vec<usize> = sorted
            .iter()
            .filter(|c| c.partition as usize == p)
            .map(|c| {
                String::from_utf8(c.value.clone().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        let want: Vec<usize> = (0..n).filter(|i| i % PARTS == p).collect();
        assert_eq!(values, want, "partition {p}, Java consumer");
    }

    // Every node's log: the restarted one has caught up (bounded wait), and
    // each partition's batches hold one producer id whose sequences run on
    // from 0 without a gap or a repeat within each epoch.
    let t_read = t0.elapsed();
    let logs: Vec<(i32, i32)> = (1..=3)
        .flat_map(|node| (0..PARTS as i32).map(move |p| (node, p)))
        .collect();
    let want_of = |p: i32| (0..n).filter(|i| i % PARTS == p as usize).count() as i64;
    let deadline = Instant::now() + Duration::from_secs(30);
    let dumped = loop {
        let dumped = java::dump_logs(&topic, &logs);
        let caught_up = logs
            .iter()
            .zip(&dumped)
            .all(|(&(_, p), batches)| batches.iter().map(|b| b.count).sum::<i64>() >= want_of(p));
        if caught_up || Instant::now() > deadline {
            break dumped;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut epochs = Vec::new();
    for (&(node, p), batches) in logs.iter().zip(&dumped) {
        let want = want_of(p);
        let total: i64 = batches.iter().map(|b| b.count).sum();
        assert_eq!(total, want, "node {node} partition {p}: records in the log");
        let pid = batches[0].producer_id;
        assert!(pid >= 0, "node {node} partition {p}: no producer id");
        let mut next: Option<(i64, i64, i64)> = None; // (epoch, sequence, offset)
        let mut seen_epochs = Vec::new();
        for b in batches {
            assert_eq!(b.producer_id, pid, "node {node} partition {p}: {b:?}");
            assert_eq!(
                b.last_sequence - b.base_sequence + 1,
                b.count,
                "node {node} partition {p}: {b:?}"
            );
            let (seq, offset) = match next {
                Some((e, seq, offset)) if e == b.producer_epoch => (seq, offset),
                // a new epoch starts its sequences at 0
                _ => {
                    seen_epochs.push(b.producer_epoch);
                    (0, next.map_or(0, |n| n.2))
                }
            };
            assert_eq!(
                (b.base_sequence, b.base_offset),
                (seq, offset),
                "node {node} partition {p}: a gap or a repeat at {b:?}"
            );
            next = Some((b.producer_epoch, b.last_sequence + 1, b.last_offset + 1));
        }
        epochs.push(seen_epochs);
    }
    eprintln!(
        "failover with idempotence: killed node {victim} (leader of partitions {led:?}) after \
         {at_kill} records, restarted after {at_restart}; {n} records in {} batches on the wire, {} of them retries, partition error codes {:?}; 0 \
         duplicates read back; sequences contiguous on 3 nodes x {PARTS} partitions (epochs \
         {epochs:?}); sent by {:.1} s, finished and read back (librdkafka) by {:.1} s, Java \
         consumer done by {:.1} s, logs checked by {:.1} s",
        sent.len(),
        wire.retries,
        proxy.produce_errors(),
        t_sent.as_secs_f64(),
        t_finished.as_secs_f64(),
        t_read.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn a_rolling_restart_of_every_node_loses_no_record() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 500_000;
    // about one record per millisecond until the last node is back (each
    // takes 10-20 s to stop and start again); N only bounds the stream
    let stream = Stream::start("rolling", N, 1);
    stream.wait_sent(N / 10);
    for node in 1..=3 {
        let mut restart = Restart(Some(node));
        brokers_sh(&["kafka-node", "stop", &node.to_string()]);
        restart.now();
    }
    let sent = stream.sent.load(Ordering::SeqCst);
    assert!(sent < N, "the stream ended before the last restart");
    let duplicates = stream.finish();
    eprintln!("rolling restart: {sent} records, {duplicates} duplicates read back");
}

#[test]
fn leader_churn_on_every_partition_loses_no_record() {
    let duplicates = churn(false);
    eprintln!("leader churn without idempotence: {duplicates} duplicates read back");
}

/// The same churn with `enable.idempotence=true`: every record is in the
/// log exactly once. (Without idempotence a batch whose answer was lost to
/// a leader change is written again: 760 and 33 duplicates in two runs here.)
#[test]
fn leader_churn_with_idempotence_writes_each_record_once() {
    assert_eq!(churn(true), 0, "records written twice despite idempotence");
}

/// Moves every partition's leader for ten seconds while a stream flows;
/// checks the stream (see [`Stream::finish`]) and returns the duplicates.
fn churn(idempotent: bool) -> usize {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    const N: usize = 500_000;
    // about one record per millisecond while the leaders move; N only
    // bounds the stream
    let stream = Stream::start_with("churn", N, 1, idempotent, 1, Broker::Kafka.bootstrap());
    stream.wait_sent(500);
    let before = stream.completed();
    let moves = java::churn_leaders(Broker::Kafka.bootstrap(), &stream.topic, 10);
    let during = stream.completed() - before;
    assert!(moves >= PARTS, "only {moves} leader moves in 10 s");
    assert!(
        during > 0,
        "no record completed during {moves} leader moves: the producer stalled"
    );
    let sent = stream.sent.load(Ordering::SeqCst);
    let duplicates = stream.finish();
    eprintln!(
        "leader churn (idempotence {idempotent}): {moves} moves in 10 s, {during} records \
         completed meanwhile; {sent} records, {duplicates} duplicates read back"
    );
    duplicates
}
