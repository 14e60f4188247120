//! Apache Kafka's nodes fail under the producer: `scripts/brokers.sh
//! kafka-node kill|start` SIGKILLs the leader of a partition mid-stream and
//! brings it back. This binary holds one test on purpose: it disturbs the
//! shared cluster, and cargo runs test binaries one at a time, so no other
//! test sees a node down.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{consume_at_least, java, topic, Broker};
use kafka_producer::{Acks, Producer, ProducerRecord, StringSerializer};

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
/// whole for the test binaries after this one.
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

#[test]
fn a_leader_killed_mid_stream_loses_no_record() {
    const N: usize = 20_000;
    const PARTS: usize = 3;
    let bootstrap = Broker::Kafka.bootstrap();
    let topic = topic("failover");
    java::create_topic(
        bootstrap,
        &topic,
        PARTS as i32,
        3,
        &[("min.insync.replicas", "2")],
    );
    let config = Broker::Kafka
        .config()
        .acks(Acks::All)
        .linger(Duration::from_millis(5))
        .max_in_flight_requests_per_connection(1);
    let producer = Arc::new(Producer::new(config, StringSerializer, StringSerializer).unwrap());
    let victim = producer.partitions_for(&topic).unwrap()[0]
        .leader
        .expect("partition 0 has a leader");

    let completions: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
    let failures = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (p, c, f, sent) = (
            producer.clone(),
            completions.clone(),
            failures.clone(),
            sent.clone(),
        );
        let topic = topic.clone();
        std::thread::spawn(move || {
            for i in 0..N {
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
                if i % 20 == 0 {
                    // a steady stream, so requests are in flight when the node dies
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let wait_for = |n: usize| {
        let t0 = Instant::now();
        while sent.load(Ordering::SeqCst) < n {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the sender stalled before {n}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(N / 4);
    let mut restart = Restart(Some(victim));
    brokers_sh(&["kafka-node", "kill", &victim.to_string()]);
    wait_for(N / 2);
    restart.now();
    sender.join().unwrap();
    producer.flush().unwrap();

    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} records failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    for (i, c) in completions.iter().enumerate() {
        assert_eq!(c.load(Ordering::SeqCst), 1, "record {i}: completions");
    }
    producer.close().unwrap();

    // Without idempotence a retried batch may be written twice (its first
    // answer died with the node), so the check is "at least once, where it
    // was sent, in order": every value present, on its partition, and the
    // first copies in send order.
    let got = consume_at_least(bootstrap, &topic, N, Duration::from_secs(120));
    let mut seen = vec![false; N];
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
        seen[v] = true;
    }
    let missing: Vec<usize> = (0..N).filter(|&i| !seen[i]).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged records missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    eprintln!(
        "failover: killed node {victim}; {} records read back for {N} sent ({} duplicates)",
        got.len(),
        got.len() - N
    );
}
