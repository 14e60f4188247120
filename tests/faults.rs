//! Faults injected into private librdkafka mock clusters: a broker that
//! goes away, injected error codes, a broker too old to talk to, a dead
//! bootstrap address. Every test checks that each record `send` accepted
//! gets exactly one outcome.

mod common;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{consume, MockCluster};
use kafka_producer::ErrorCode;
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

    // Every byte came back: with the brokers still down, buffer.memory
    // holds as many batches as at the start. A 9000 B record takes a
    // batch.size buffer of its own (two do not fit in one), so exactly
    // 1 MiB / 16 KiB = 64 are accepted before `send` blocks again; one
    // batch whose memory was not given back would make it 63.
    let big = vec![9u8; 9000];
    let refill_done = Arc::new(AtomicUsize::new(0));
    let mut refilled = 0usize;
    let refused = loop {
        let d = refill_done.clone();
        let record = ProducerRecord::new("mem", big.as_slice()).partition((refilled % 3) as i32);
        match p.send_with_callback(record, move |_| {
            d.fetch_add(1, Ordering::SeqCst);
        }) {
            Ok(_) => refilled += 1,
            Err(e) => break e,
        }
        assert!(refilled <= 64, "more than buffer.memory was accepted");
    };
    assert!(
        matches!(refused, Error::BufferExhausted { .. }),
        "{refused}"
    );
    assert_eq!(
        refilled,
        1024 * 1024 / 16384,
        "batches that fit in buffer.memory once every record completed"
    );

    // Memory came back: after the brokers return, sending works again.
    for id in 1..=3 {
        mock.command(&format!("up {id}"));
    }
    p.flush().unwrap();
    assert_eq!(refill_done.load(Ordering::SeqCst), refilled);
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
            // every record is a batch of its own, so a retry that went
            // behind later batches would show in the offsets
            .batch_size(1)
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
        .map(|h| {
            let m = h.get().unwrap();
            assert_eq!(m.partition(), 0);
            m.offset()
        })
        .collect();
    // One request in flight: the retries keep send order, so the offsets
    // rise in send order ...
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets in send order: {offsets:?}"
    );
    p.close().unwrap();
    // ... and the consumer reads each record once, in that order, at the
    // offset its handle reported.
    let got = consume(&mock.bootstrap, "retry", 10, Duration::from_secs(30));
    let read: Vec<(i32, i64, u8)> = got
        .iter()
        .map(|r| (r.partition, r.offset, r.value.as_ref().unwrap()[0]))
        .collect();
    let sent: Vec<(i32, i64, u8)> = offsets
        .iter()
        .zip(0..10u8)
        .map(|(&o, v)| (0, o, v))
        .collect();
    assert_eq!(read, sent, "consumer order (partition, offset, value)");
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
    common::assert_broker_error("the bad record", &e, ErrorCode::INVALID_RECORD, "fatal", 0);
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

/// zstd needs Produce v7 (KIP-110): a broker that stops at v6 gets no
/// zstd batch; the records fail with an error that says so, while gzip
/// still works there.
#[test]
fn zstd_on_a_broker_without_produce_v7_gives_a_typed_error() {
    let mut mock = MockCluster::start(1, &[("old-zstd", 1)]);
    mock.command("apiversion 0 3 6");
    let zstd = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .compression(kafka_producer::Compression::Zstd(3)),
    );
    let e = zstd
        .send(ProducerRecord::new("old-zstd", &b"x"[..]))
        .unwrap()
        .get()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnsupportedVersion {
                api: "Produce with zstd compression",
                min: 7,
                broker_max: 6,
                ..
            }
        ),
        "{e}"
    );
    let gzip = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .compression(kafka_producer::Compression::Gzip(-1)),
    );
    gzip.send(ProducerRecord::new("old-zstd", &b"y"[..]))
        .unwrap()
        .get()
        .unwrap();
}

/// Names Kafka refuses are refused by `send` and `partitions_for` before
/// any broker is asked, with an error that names the topic (the mock
/// accepted "", "bad topic!" and "a/b"). After close, `partitions_for` is
/// `Error::Closed` for a known topic too.
#[test]
fn bad_topic_names_are_refused_before_any_broker_sees_them() {
    let mock = MockCluster::start(1, &[("fine", 1)]);
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .max_block(Duration::from_secs(5)),
    );
    let long = "x".repeat(250);
    for bad in ["", "bad topic!", "a/b", ".", "..", &long] {
        match p.send(ProducerRecord::new(bad, &b"x"[..])) {
            Err(Error::InvalidTopic { topic, .. }) if topic == bad => {}
            other => panic!("send to {bad:?}: {:?}", other.map(|_| ())),
        }
        match p.partitions_for(bad) {
            Err(Error::InvalidTopic { topic, .. }) if topic == bad => {}
            other => panic!("partitions_for {bad:?}: {other:?}"),
        }
    }
    p.send(ProducerRecord::new("fine", &b"x"[..]))
        .unwrap()
        .get()
        .unwrap();
    // After close, partitions_for is refused even for a topic it knows.
    p.close().unwrap();
    assert!(matches!(p.partitions_for("fine"), Err(Error::Closed)));
    assert!(matches!(p.partitions_for("other"), Err(Error::Closed)));
}

/// As Java: a producer none of whose bootstrap addresses resolves fails
/// to start, naming the key and each address's error; one that resolves
/// is enough.
#[test]
fn producer_new_fails_when_no_bootstrap_address_resolves() {
    let e = Producer::new(
        ProducerConfig::new().bootstrap_servers("nohost.invalid:9092"),
        ByteArraySerializer,
        ByteArraySerializer,
    )
    .map(|_| ())
    .unwrap_err();
    match &e {
        Error::Config { key, message } => {
            assert_eq!(key, "bootstrap.servers");
            assert!(message.contains("nohost.invalid:9092"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    Producer::new(
        ProducerConfig::new().bootstrap_servers("nohost.invalid:9092,127.0.0.1:9"),
        ByteArraySerializer,
        ByteArraySerializer,
    )
    .unwrap()
    .close_timeout(Duration::ZERO)
    .unwrap();
}

/// A bootstrap address nothing listens on: the metadata timeout says why
/// (the connection was refused, and where), not only that it timed out.
#[test]
fn a_metadata_timeout_says_why_no_broker_answered() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed again at once: nothing listens there now
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(format!("127.0.0.1:{port}"))
            .max_block(Duration::from_millis(1500)),
    );
    let e = p
        .send(ProducerRecord::new("nowhere", &b"x"[..]))
        .map(|_| ())
        .unwrap_err();
    match &e {
        Error::MetadataTimeout {
            last_error: Some(why),
            ..
        } => assert!(
            why.contains(&format!("127.0.0.1:{port}")) && why.to_lowercase().contains("refused"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("; last error: "), "{e}");
    p.close_timeout(Duration::ZERO).unwrap();
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
    twenty_records_then_a_short_close(&p, "dead");
}

/// A broker that accepts connections but never answers (frozen): the I/O
/// thread is busy connecting when `close_timeout` runs out, and close still
/// returns by its timeout, every record failed.
#[test]
fn close_timeout_returns_in_time_while_a_connect_hangs() {
    let mock = MockCluster::start(1, &[("frozen", 1)]);
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .linger(Duration::ZERO),
    );
    p.partitions_for("frozen").unwrap();
    mock.signal("STOP");
    twenty_records_then_a_short_close(&p, "frozen");
}

/// Sends 20 records `topic` cannot take, then `close_timeout(500 ms)`:
/// close returns by its timeout and every record fails with `Aborted`,
/// its callback run once.
fn twenty_records_then_a_short_close(p: &Producer<[u8], [u8]>, topic: &str) {
    let done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let d = done.clone();
            p.send_with_callback(ProducerRecord::new(topic, vec![i]), move |_| {
                d.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    let t0 = Instant::now();
    p.close_timeout(Duration::from_millis(500)).unwrap();
    let took = t0.elapsed();
    // Java's promise: close(timeout) returns by the timeout; the margin is
    // for scheduling on a loaded test machine, not for extra waiting (the
    // code allows 20 ms).
    assert!(
        took < Duration::from_millis(500 + 500),
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

/// The record of `h`, sent at `t0`, fails with a delivery timeout within
/// `delivery` (plus scheduling slack).
fn assert_expires_on_time(h: kafka_producer::RecordFuture, t0: Instant, delivery: Duration) {
    match h.get() {
        Err(Error::DeliveryTimeout { .. }) => {}
        other => panic!("expected a delivery timeout, got {other:?}"),
    }
    let took = t0.elapsed();
    assert!(
        took < delivery + Duration::from_millis(700),
        "expired after {took:?} (delivery.timeout.ms {delivery:?})"
    );
}

/// While a connection attempt hangs (a broker that accepts and never
/// answers ApiVersions), the I/O thread still expires its records on time:
/// connecting does not block it.
#[test]
fn records_expire_on_time_while_a_connect_hangs() {
    let mock = MockCluster::start(1, &[("stuck", 1)]);
    let delivery = Duration::from_millis(2500);
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .linger(Duration::ZERO)
            .request_timeout(Duration::from_millis(2000))
            .delivery_timeout(delivery),
    );
    p.partitions_for("stuck").unwrap();
    mock.signal("STOP");
    let t0 = Instant::now();
    let h = p.send(ProducerRecord::new("stuck", &b"x"[..])).unwrap();
    // Blocking connects made this about 4 s: the expiry waited for the
    // second ApiVersions attempt to time out.
    assert_expires_on_time(h, t0, delivery);
    p.close_timeout(Duration::ZERO).unwrap();
}

/// A partition without a leader is expired by the metadata thread, on
/// time, even while its metadata fetches hang (every broker accepts
/// connections and answers nothing): the fetch runs off that thread.
#[test]
fn leaderless_records_expire_on_time_while_a_metadata_fetch_hangs() {
    let mut mock = MockCluster::start(1, &[("leaderless", 1)]);
    let delivery = Duration::from_millis(3000);
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .linger(Duration::ZERO)
            .retry_backoff(Duration::from_millis(50))
            .retry_backoff_max(Duration::from_millis(50))
            .request_timeout(Duration::from_millis(2500))
            .delivery_timeout(delivery),
    );
    p.send(ProducerRecord::new("leaderless", &b"warm-up"[..]))
        .unwrap()
        .get()
        .unwrap();
    mock.command("leader leaderless 0 -1");
    // The next Produce gets NOT_LEADER_OR_FOLLOWER and the refresh it asks
    // for finds no leader.
    let first = p
        .send(ProducerRecord::new("leaderless", &b"a"[..]))
        .unwrap();
    let t0 = Instant::now();
    while p.partitions_for("leaderless").unwrap()[0].leader.is_some() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the producer never saw the partition lose its leader"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // From here every fetch hangs: one on the open connection, then one
    // per broker and bootstrap address, each for request.timeout.ms.
    mock.signal("STOP");
    let t0 = Instant::now();
    let h = p
        .send(ProducerRecord::new("leaderless", &b"b"[..]).partition(0))
        .unwrap();
    // With the fetch on the metadata thread this took about 7.5 s.
    assert_expires_on_time(h, t0, delivery);
    assert!(
        first.get().is_err(),
        "the leaderless partition took a record"
    );
    p.close_timeout(Duration::ZERO).unwrap();
}

/// Every broker the producer knows of goes away and a new cluster answers
/// at the bootstrap address (a proxy): with `metadata.recovery.strategy`
/// `rebootstrap` (the default) the producer finds it and delivers there;
/// with `none` it keeps asking the dead brokers and the record expires.
#[test]
fn rebootstrap_finds_a_new_cluster_behind_the_bootstrap_address() {
    use kafka_producer::MetadataRecoveryStrategy as S;
    for strategy in [S::Rebootstrap, S::None] {
        let old = MockCluster::start(1, &[("moved", 1)]);
        let proxy = common::Proxy::start(&old.bootstrap);
        let p = producer(
            ProducerConfig::new()
                .bootstrap_servers(proxy.addr.clone())
                .metadata_recovery_strategy(strategy)
                .linger(Duration::ZERO)
                .request_timeout(Duration::from_millis(2000))
                .delivery_timeout(Duration::from_millis(6000)),
        );
        p.send(ProducerRecord::new("moved", &b"old"[..]))
            .unwrap()
            .get()
            .unwrap();
        drop(old);
        let new = MockCluster::start(1, &[("moved", 1)]);
        proxy.retarget(&new.bootstrap);
        let r = p
            .send(ProducerRecord::new("moved", &b"new"[..]))
            .unwrap()
            .get();
        match (strategy, r) {
            (S::Rebootstrap, Ok(m)) => {
                assert_eq!(m.offset(), 0, "the new cluster's first record");
                let got = consume(&new.bootstrap, "moved", 1, Duration::from_secs(30));
                assert_eq!(got[0].value.as_deref(), Some(&b"new"[..]));
            }
            (S::None, Err(Error::DeliveryTimeout { .. })) => {}
            (s, r) => panic!("{s:?}: {r:?}"),
        }
        p.close_timeout(Duration::ZERO).unwrap();
    }
}

/// TCP connections from this process to `port` on 127.0.0.1 that are
/// established now, from /proc/net/tcp (the kernel's own view).
fn established_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let want = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2] == want && f[3] == "01"
        })
        .count()
}

/// `connections.max.idle.ms`: a connection that carries nothing for that
/// long is closed, the I/O thread's and the metadata thread's alike, and
/// the next record opens a new one.
#[test]
fn idle_connections_are_closed_and_reopened_when_needed() {
    let mock = MockCluster::start(1, &[("idle-conn", 1)]);
    let port: u16 = mock.bootstrap.rsplit(':').next().unwrap().parse().unwrap();
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .linger(Duration::ZERO)
            .connections_max_idle(Some(Duration::from_millis(600))),
    );
    p.send(ProducerRecord::new("idle-conn", &b"a"[..]))
        .unwrap()
        .get()
        .unwrap();
    assert!(established_to(port) >= 1, "no connection to the broker");
    let t0 = Instant::now();
    while established_to(port) > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{} connection(s) still open {:?} after the last record",
            established_to(port),
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = p
        .send(ProducerRecord::new("idle-conn", &b"b"[..]))
        .unwrap()
        .get()
        .unwrap();
    assert_eq!(m.offset(), 1);
    p.close().unwrap();
}

/// A callback that calls `close()` while `close_timeout` on another thread
/// is failing records (and so running that callback on its own thread)
/// must not deadlock: the nested close acts as `close(0)`.
#[test]
fn close_from_a_callback_during_close_does_not_deadlock() {
    let mut mock = MockCluster::start(1, &[("cb-close", 1)]);
    let p = Arc::new(producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .linger(Duration::from_millis(50)),
    ));
    p.partitions_for("cb-close").unwrap();
    mock.command("down 1");
    let closed_inside = Arc::new(AtomicUsize::new(0));
    for i in 0..5 {
        let (p2, c2) = (p.clone(), closed_inside.clone());
        let _ = p
            .send_with_callback(ProducerRecord::new("cb-close", vec![i]), move |r| {
                if r.is_err() {
                    p2.close().unwrap(); // Java allows close() in a callback
                    p2.flush().unwrap_err(); // but flush would wait for itself
                    c2.fetch_add(1, Ordering::SeqCst);
                }
            })
            .unwrap();
    }
    let p3 = p.clone();
    let closer = std::thread::spawn(move || p3.close_timeout(Duration::from_millis(300)));
    let t0 = Instant::now();
    while !closer.is_finished() {
        assert!(t0.elapsed() < Duration::from_secs(20), "close deadlocked");
        std::thread::sleep(Duration::from_millis(20));
    }
    closer.join().unwrap().unwrap();
    assert_eq!(closed_inside.load(Ordering::SeqCst), 5);
}

/// `close_timeout(0)` while a `close()` without limit waits on a dead
/// cluster: the short one fails the records at once and both return.
#[test]
fn a_short_close_overrides_a_long_one_in_progress() {
    let mut mock = MockCluster::start(1, &[("two-closes", 1)]);
    let p = Arc::new(producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .delivery_timeout(Duration::from_secs(600)),
    ));
    p.partitions_for("two-closes").unwrap();
    mock.command("down 1");
    let h = p
        .send(ProducerRecord::new("two-closes", &b"x"[..]))
        .unwrap();
    let p2 = p.clone();
    let long = std::thread::Builder::new()
        .name("long-close".into())
        .spawn(move || p2.close())
        .unwrap();
    // Wait until the long close has begun (`send` then refuses with
    // Closed; until then a record larger than max.request.size is refused
    // with RecordTooLarge, so probing adds no record) and then blocks
    // (its thread sleeps: it waits for the record).
    let too_large = vec![0u8; 2 << 20];
    let t_start = Instant::now();
    loop {
        let closed = match p.send(ProducerRecord::new("two-closes", too_large.as_slice())) {
            Err(Error::Closed) => true,
            Err(Error::RecordTooLarge { .. }) => false,
            other => panic!("probing for the close: {other:?}"),
        };
        if closed && thread_state("long-close") == Some('S') {
            break;
        }
        assert!(
            t_start.elapsed() < Duration::from_secs(10),
            "close() did not begin to wait"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let t0 = Instant::now();
    p.close_timeout(Duration::ZERO).unwrap();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "close_timeout(0) took {took:?}"
    );
    assert!(matches!(h.get(), Err(Error::Aborted(_))));
    let t1 = Instant::now();
    while !long.is_finished() {
        assert!(
            t1.elapsed() < Duration::from_secs(10),
            "close() never returned"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    long.join().unwrap().unwrap();
}

/// A topic idle past `metadata.max.idle.ms` leaves the metadata requests;
/// its next send puts it back, so a leader move is still learned.
#[test]
fn an_idle_topic_is_refreshed_again_once_used() {
    let mut mock = MockCluster::start(2, &[("idle", 1)]);
    let p = producer(
        ProducerConfig::from_pairs([
            ("bootstrap.servers", mock.bootstrap.as_str()),
            ("metadata.max.idle.ms", "5000"),
            // refresh often, so the idle topic is pruned while we wait
            ("metadata.max.age.ms", "1000"),
            ("delivery.timeout.ms", "8000"),
            ("request.timeout.ms", "2000"),
        ])
        .unwrap(),
    );
    p.send(ProducerRecord::new("idle", &b"before"[..]))
        .unwrap()
        .get()
        .unwrap();
    let leader = p.partitions_for("idle").unwrap()[0].leader.unwrap();
    let meta_cpu0 = metadata_thread_cpu_s();
    std::thread::sleep(Duration::from_millis(7000)); // idle: dropped from metadata
    let meta_cpu = metadata_thread_cpu_s() - meta_cpu0;
    assert!(
        meta_cpu < 0.5,
        "the metadata thread used {meta_cpu:.2} s of CPU while idle"
    );
    let other = if leader == 1 { 2 } else { 1 };
    mock.command(&format!("leader idle 0 {other}"));
    let m = p
        .send(ProducerRecord::new("idle", &b"after"[..]))
        .unwrap()
        .get()
        .unwrap_or_else(|e| panic!("the leader move was not learned: {e}"));
    assert!(m.has_offset());
}

/// Round robin keeps cycling over a topic's partitions after the topic was
/// idle past `metadata.max.idle.ms` and left the metadata requests: its next
/// send waits for the topic's metadata again (as Java's `waitOnMetadata`
/// does) instead of asking the partitioner with a cluster view that lacks
/// the topic, where round robin put every record on partition 0. So does
/// `partitions_for`, which returned no partitions.
#[test]
fn round_robin_spreads_records_after_its_topic_was_idle() {
    let mock = MockCluster::start(2, &[("rr-idle", 4), ("rr-busy", 1), ("pf-idle", 3)]);
    let p = producer(
        ProducerConfig::from_pairs([
            ("bootstrap.servers", mock.bootstrap.as_str()),
            ("partitioner.class", "RoundRobinPartitioner"),
            ("metadata.max.idle.ms", "5000"),
            // refresh often, so the idle topic is pruned while we wait
            ("metadata.max.age.ms", "1000"),
        ])
        .unwrap(),
    );
    let spread = |what: &str| {
        let handles: Vec<_> = (0..8)
            .map(|_| p.send(ProducerRecord::new("rr-idle", &b"x"[..])).unwrap())
            .collect();
        let mut per_partition = [0; 4];
        for h in handles {
            per_partition[h.get().unwrap().partition() as usize] += 1;
        }
        assert_eq!(per_partition, [2; 4], "{what}: records per partition");
    };
    spread("before");
    assert_eq!(p.partitions_for("pf-idle").unwrap().len(), 3, "before");
    // Another topic stays in use, so the refreshes while rr-idle is idle
    // publish a cluster view without it (scenario timing: idle > 5 s).
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(7500) {
        p.send(ProducerRecord::new("rr-busy", &b"busy"[..]))
            .unwrap()
            .get()
            .unwrap();
        std::thread::sleep(Duration::from_millis(250));
    }
    spread("after the idle time");
    assert_eq!(
        p.partitions_for("pf-idle").unwrap().len(),
        3,
        "partitions_for after the idle time"
    );
    p.close().unwrap();
}

/// With every broker gone and the metadata stale, an idle producer waits
/// out its backoff instead of spinning (it once burnt a core here).
#[test]
fn an_outage_with_stale_metadata_does_not_spin() {
    let mock = MockCluster::start(1, &[("outage", 1)]);
    let p = producer(
        ProducerConfig::from_pairs([
            ("bootstrap.servers", mock.bootstrap.as_str()),
            ("client.id", "outage"),
            ("metadata.max.age.ms", "1000"),
            ("request.timeout.ms", "1000"),
        ])
        .unwrap(),
    );
    p.send(ProducerRecord::new("outage", &b"before"[..]))
        .unwrap()
        .get()
        .unwrap();
    drop(mock); // every broker gone, for good
    std::thread::sleep(Duration::from_millis(1500)); // the metadata is stale now
    let cpu0 = thread_cpu_s("outage-meta");
    std::thread::sleep(Duration::from_millis(4000));
    let cpu = thread_cpu_s("outage-meta") - cpu0;
    assert!(
        cpu < 0.4,
        "the metadata thread used {cpu:.2} s of CPU in 4 s of outage"
    );
    p.close_timeout(Duration::from_millis(500)).unwrap();
}

/// max.in.flight=1 keeps order across a leader move: a batch still in
/// flight on the old leader (answered late, with NOT_LEADER_OR_FOLLOWER)
/// is not overtaken by the next batch, drained by the new leader's thread.
#[test]
fn order_holds_across_a_leader_move_with_a_batch_in_flight() {
    let mut mock = MockCluster::start(2, &[("moving", 1), ("other", 1)]);
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .max_in_flight_requests_per_connection(1)
            .linger(Duration::ZERO)
            .retry_backoff(Duration::from_millis(10)),
    );
    let first = p
        .send(ProducerRecord::new("moving", &b"warm-up"[..]))
        .unwrap()
        .get()
        .unwrap();
    let old = p.partitions_for("moving").unwrap()[0].leader.unwrap();
    let new = 3 - old;
    // The old leader's next Produce fails with NOT_LEADER_OR_FOLLOWER,
    // answered 800 ms late.
    mock.command(&format!("broker_error {old} 0 6 800"));
    let a = p.send(ProducerRecord::new("moving", &b"A"[..])).unwrap();
    std::thread::sleep(Duration::from_millis(100)); // A is on the wire (scenario timing)
    mock.command(&format!("leader moving 0 {new}"));
    // A new topic makes the producer fetch metadata now: it learns the move
    // while A is still unanswered.
    p.partitions_for("other").unwrap();
    assert_eq!(p.partitions_for("moving").unwrap()[0].leader, Some(new));
    let b = p.send(ProducerRecord::new("moving", &b"B"[..])).unwrap();
    let (a, b) = (a.get().unwrap(), b.get().unwrap());
    assert!(
        first.offset() < a.offset() && a.offset() < b.offset(),
        "send order warm-up, A, B but offsets {}, {}, {}",
        first.offset(),
        a.offset(),
        b.offset()
    );
    let got = consume(&mock.bootstrap, "moving", 3, Duration::from_secs(30));
    let values: Vec<&[u8]> = got.iter().map(|r| r.value.as_deref().unwrap()).collect();
    assert_eq!(values, [&b"warm-up"[..], b"A", b"B"]);
}

/// Durations too large for `Instant` arithmetic, from a builder or from
/// Java-style properties, mean "practically forever": nothing panics, the
/// producer's threads live on, and records are delivered.
#[test]
fn extreme_durations_do_not_panic() {
    let mock = MockCluster::start(1, &[("extreme", 1), ("extreme2", 1)]);
    let huge = i64::MAX.to_string();
    let p = producer(
        ProducerConfig::from_pairs([
            ("bootstrap.servers", mock.bootstrap.as_str()),
            ("client.id", "xtreme"),
            ("metadata.max.age.ms", huge.as_str()),
            ("reconnect.backoff.ms", huge.as_str()),
            ("reconnect.backoff.max.ms", huge.as_str()),
            ("max.block.ms", huge.as_str()),
            ("linger.ms", "2147483647"),
        ])
        .unwrap(),
    );
    let h = p.send(ProducerRecord::new("extreme", &b"v"[..])).unwrap();
    assert!(
        matches!(
            h.get_timeout(Duration::from_millis(200)),
            Err(Error::WaitTimeout(_))
        ),
        "an endless linger holds the record until flush"
    );
    p.flush().unwrap();
    assert!(h.get_timeout(Duration::MAX).unwrap().has_offset());
    // the metadata thread is alive: a new topic is still looked up
    assert_eq!(p.partitions_for("extreme2").unwrap().len(), 1);
    p.close_timeout(Duration::from_secs(5)).unwrap();

    // Endless retry backoffs, then every broker gone: the failure paths
    // compute their backoff without panicking, and the threads survive.
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .client_id("xtreme2")
            .max_block(Duration::MAX)
            .metadata_max_age(Duration::from_millis(1000))
            .retry_backoff(Duration::MAX)
            .retry_backoff_max(Duration::MAX)
            .request_timeout(Duration::from_millis(1000))
            .delivery_timeout(Duration::from_millis(3000)),
    );
    p.send(ProducerRecord::new("extreme", &b"before"[..]))
        .unwrap()
        .get()
        .unwrap();
    drop(mock);
    let lost = p
        .send(ProducerRecord::new("extreme", &b"lost"[..]))
        .unwrap();
    assert!(lost.get().is_err(), "no broker: the record fails");
    std::thread::sleep(Duration::from_millis(1500)); // stale metadata, failed fetches
    for name in ["xtreme2-meta", "xtreme2-b1"] {
        assert!(thread_alive(name), "thread {name} died");
    }
    p.close_timeout(Duration::from_millis(500)).unwrap();
}

/// A broker gets an I/O thread only while it leads a partition we use:
/// not one per broker in the metadata, and the old leader's thread retires
/// after a leader move.
#[test]
fn only_leaders_get_an_io_thread_and_idle_ones_retire() {
    let mut mock = MockCluster::start(5, &[("few", 1)]);
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .client_id("fewthr")
            .metadata_max_age(Duration::from_millis(1000)),
    );
    p.send(ProducerRecord::new("few", &b"one"[..]))
        .unwrap()
        .get()
        .unwrap();
    let old = p.partitions_for("few").unwrap()[0].leader.unwrap();
    assert_eq!(
        broker_threads("fewthr"),
        [format!("fewthr-b{old}")],
        "one thread, for the one leader of 5 brokers"
    );
    let new = old % 5 + 1;
    mock.command(&format!("leader few 0 {new}"));
    // the next refresh (metadata.max.age.ms) learns the move; the old
    // leader's thread retires a max-age after it led nothing
    let t0 = Instant::now();
    while broker_threads("fewthr") != [format!("fewthr-b{new}")] {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "threads {:?} after the leader moved from {old} to {new}",
            broker_threads("fewthr")
        );
        if p.partitions_for("few").unwrap()[0].leader == Some(new) {
            // the new leader's thread starts on the next send at the latest
            p.send(ProducerRecord::new("few", &b"two"[..])).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    p.send(ProducerRecord::new("few", &b"three"[..]))
        .unwrap()
        .get()
        .unwrap();
    p.close().unwrap();
}

/// The names of this process's I/O threads of the producer `client`.
fn broker_threads(client: &str) -> Vec<String> {
    let prefix = format!("{client}-b");
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .filter(|c| c.starts_with(&prefix))
        .collect();
    names.sort();
    names
}

/// The state letter (`R`, `S`, ...) of this process's thread named `name`.
fn thread_state(name: &str) -> Option<char> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .find_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let (open, close) = (stat.find('(')?, stat.rfind(')')?);
            (&stat[open + 1..close] == name).then(|| stat[close + 2..].chars().next())?
        })
}

fn thread_alive(name: &str) -> bool {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == name))
}

/// CPU seconds used so far by this process's threads named `name`.
fn thread_cpu_s(name: &str) -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != name {
            continue;
        }
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        total += ticks / 100.0;
    }
    total
}

/// CPU seconds used so far by this process's metadata threads.
fn metadata_thread_cpu_s() -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].ends_with("-meta") {
            continue;
        }
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        total += ticks / 100.0;
    }
    total
}

/// acks=0 against a broker that stops reading: the unwritten requests
/// count as in flight, time out, and every record gets its outcome.
#[test]
fn acks_zero_records_time_out_when_the_broker_stops_reading() {
    let mock = MockCluster::start(1, &[("frozen", 1)]);
    let p = producer(
        ProducerConfig::from_pairs([
            ("bootstrap.servers", mock.bootstrap.as_str()),
            ("acks", "0"),
            ("request.timeout.ms", "1000"),
            ("delivery.timeout.ms", "3000"),
            ("socket.connection.setup.timeout.ms", "1000"),
            ("buffer.memory", "8388608"),
            ("max.block.ms", "1000"),
        ])
        .unwrap(),
    );
    p.partitions_for("frozen").unwrap();
    p.send(ProducerRecord::new("frozen", &b"warm"[..]))
        .unwrap()
        .get()
        .unwrap();
    mock.signal("STOP");
    let done = Arc::new(AtomicUsize::new(0));
    let value = vec![1u8; 1000];
    let mut accepted = 0;
    for _ in 0..50_000 {
        let d = done.clone();
        match p.send_with_callback(ProducerRecord::new("frozen", value.as_slice()), move |_| {
            d.fetch_add(1, Ordering::SeqCst);
        }) {
            Ok(_) => accepted += 1,
            Err(Error::BufferExhausted { .. }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let t0 = Instant::now();
    let p = Arc::new(p);
    let p2 = p.clone();
    let flusher = std::thread::spawn(move || p2.flush());
    while !flusher.is_finished() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "flush hung with a frozen broker"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    flusher.join().unwrap().unwrap();
    assert_eq!(
        done.load(Ordering::SeqCst),
        accepted,
        "every record got its outcome"
    );
    mock.signal("CONT");
}
