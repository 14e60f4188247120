//! Faults injected into private librdkafka mock clusters: a broker that
//! goes away, injected error codes, a broker too old to talk to, a dead
//! bootstrap address. Every test checks that each record `send` accepted
//! gets exactly one outcome.

mod common;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{consume, MockCluster};
use kafka_producer::protocol::ErrorCode;
use kafka_producer::{ByteArraySerializer, Error, Producer, ProducerConfig, ProducerRecord};

fn producer(cfg: ProducerConfig) -> Producer<[u8], [u8]> {
    Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap()
}

/// buffer.memory = 1 MiB and every broker stops answering: `send` blocks
/// for max.block.ms, then fails with BufferExhausted; the records already
/// accepted all fail (delivery timeout), each exactly once.
#[test]
fn full_buffer_blocks_then_fails_with_buffer_exhausted() {
    let mut mock = MockCluster::start(3, &[("mem", 3)]);
    let max_block = Duration::from_millis(2000);
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .buffer_memory(1024 * 1024)
            .batch_size(16384)
            .max_block(max_block)
            .request_timeout(Duration::from_millis(1000))
            .delivery_timeout(Duration::from_millis(4000)),
    );
    // Connect to every leader first, so the failure is the brokers going
    // away, not an unknown topic.
    for part in 0..3 {
        p.send(ProducerRecord::new("mem", &b"warm-up"[..]).partition(part))
            .unwrap()
            .get()
            .unwrap();
    }
    for id in 1..=3 {
        mock.command(&format!("down {id}"));
    }

    const MAX: usize = 5000; // 5 MB of records: far beyond 1 MiB
    let outcomes: Arc<Vec<AtomicU8>> = Arc::new((0..MAX).map(|_| AtomicU8::new(0)).collect());
    let successes = Arc::new(AtomicUsize::new(0));
    let value = vec![7u8; 1000];
    let mut accepted = 0;
    let mut failure = None;
    for i in 0..MAX {
        let t0 = Instant::now();
        let (o, s) = (outcomes.clone(), successes.clone());
        let r = p.send_with_callback(ProducerRecord::new("mem", value.as_slice()), move |r| {
            o[i].fetch_add(1, Ordering::SeqCst);
            if r.is_ok() {
                s.fetch_add(1, Ordering::SeqCst);
            }
        });
        match r {
            Ok(_) => accepted += 1,
            Err(e) => {
                failure = Some((e, t0.elapsed()));
                break;
            }
        }
    }
    let (err, blocked) = failure.expect("send never failed: memory is not bounded");
    assert!(
        matches!(
            err,
            Error::BufferExhausted {
                max_block_ms: 2000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_retriable());
    assert!(blocked >= max_block, "send blocked only {blocked:?}");
    assert!(
        blocked < max_block + Duration::from_secs(5),
        "send blocked {blocked:?}"
    );
    assert!(
        accepted * value.len() <= 1024 * 1024,
        "{accepted} records of 1000 B were accepted into 1 MiB"
    );
    assert!(accepted > 500, "only {accepted} records fit in 1 MiB");

    // Every accepted record now fails, exactly once, within its delivery
    // timeout; flush() waits for all of them.
    p.flush().unwrap();
    for (i, o) in outcomes.iter().enumerate().take(accepted) {
        assert_eq!(o.load(Ordering::SeqCst), 1, "record {i}: outcomes");
    }
    for o in outcomes.iter().skip(accepted) {
        assert_eq!(
            o.load(Ordering::SeqCst),
            0,
            "a refused record got a callback"
        );
    }
    assert_eq!(
        successes.load(Ordering::SeqCst),
        0,
        "delivered to a down broker?"
    );

    // Memory came back: after the brokers return, sending works again.
    for id in 1..=3 {
        mock.command(&format!("up {id}"));
    }
    let m = p
        .send(ProducerRecord::new("mem", &b"after"[..]))
        .unwrap()
        .get()
        .unwrap_or_else(|e| panic!("after the brokers came back: {e}\n{}", mock.log()));
    assert!(m.has_offset());
    p.close().unwrap();
}

#[test]
fn retriable_errors_are_retried_and_land_once() {
    let mut mock = MockCluster::start(3, &[("retry", 2)]);
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .linger(Duration::ZERO)
            .max_in_flight_requests_per_connection(1)
            .retry_backoff(Duration::from_millis(20)),
    );
    p.partitions_for("retry").unwrap();
    // The next three Produce requests fail: twice NOT_LEADER_OR_FOLLOWER,
    // then REQUEST_TIMED_OUT.
    mock.command("errors 0 6 6 7");
    let handles: Vec<_> = (0..10u8)
        .map(|i| {
            p.send(ProducerRecord::new("retry", vec![i]).partition(0))
                .unwrap()
        })
        .collect();
    let offsets: Vec<i64> = handles
        .into_iter()
        .map(|h| h.get().unwrap().offset())
        .collect();
    let mut sorted = offsets.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 10, "offsets {offsets:?}");
    p.close().unwrap();
    let got = consume(&mock.bootstrap, "retry", 10, Duration::from_secs(30));
    let mut values: Vec<u8> = got.iter().map(|r| r.value.as_ref().unwrap()[0]).collect();
    values.sort_unstable();
    assert_eq!(
        values,
        (0..10).collect::<Vec<u8>>(),
        "each record exactly once"
    );
}

#[test]
fn non_retriable_errors_fail_only_their_records() {
    let mut mock = MockCluster::start(1, &[("fatal", 1)]);
    let p = producer(ProducerConfig::new().bootstrap_servers(mock.bootstrap.clone()));
    p.partitions_for("fatal").unwrap();
    mock.command("errors 0 87"); // INVALID_RECORD, once
    let e = p
        .send(ProducerRecord::new("fatal", &b"bad"[..]))
        .unwrap()
        .get()
        .unwrap_err();
    match &e {
        Error::Broker {
            code,
            topic,
            partition,
            ..
        } => {
            assert_eq!(*code, ErrorCode::INVALID_RECORD);
            assert_eq!((topic.as_str(), *partition), ("fatal", 0));
        }
        e => panic!("{e}"),
    }
    assert!(!e.is_retriable());
    let ok = p
        .send(ProducerRecord::new("fatal", &b"good"[..]))
        .unwrap()
        .get();
    assert!(ok.unwrap().has_offset());
}

#[test]
fn a_broker_too_old_for_produce_v3_gives_a_typed_error() {
    let mut mock = MockCluster::start(1, &[("old", 1)]);
    // The broker now claims Produce v0-v2 only (Kafka 4 needs v3+).
    mock.command("apiversion 0 0 2");
    let p = producer(ProducerConfig::new().bootstrap_servers(mock.bootstrap.clone()));
    let e = p
        .send(ProducerRecord::new("old", &b"x"[..]))
        .unwrap()
        .get()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnsupportedVersion {
                api: "Produce",
                broker_max: 2,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_dead_first_bootstrap_address_falls_through_to_the_next() {
    let mock = MockCluster::start(1, &[("boot", 1)]);
    // Port 1 on loopback refuses connections.
    let p = producer(
        ProducerConfig::new().bootstrap_servers(format!("127.0.0.1:1,{}", mock.bootstrap)),
    );
    let m = p
        .send(ProducerRecord::new("boot", &b"x"[..]))
        .unwrap()
        .get()
        .unwrap();
    assert_eq!(m.offset(), 0);
}

#[test]
fn close_timeout_fails_what_cannot_be_delivered() {
    let mut mock = MockCluster::start(1, &[("dead", 1)]);
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .linger(Duration::from_millis(100)),
    );
    p.partitions_for("dead").unwrap();
    mock.command("down 1");
    let done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let d = done.clone();
            p.send_with_callback(ProducerRecord::new("dead", vec![i]), move |_| {
                d.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    let t0 = Instant::now();
    p.close_timeout(Duration::from_millis(500)).unwrap();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "close_timeout(500ms) took {took:?}"
    );
    assert_eq!(
        done.load(Ordering::SeqCst),
        20,
        "every record got its callback"
    );
    for h in handles {
        match h.get() {
            Err(Error::Aborted(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}
