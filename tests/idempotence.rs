//! `enable.idempotence=true` on every broker: the producer gets its id
//! from InitProducerId, each partition's batches carry increasing
//! sequences (Tansu refuses a batch whose sequence is not the next one),
//! and the independent consumer reads every record once, in order.
//! Failover without duplicates is in `tests/kafka_nodes.rs`.

mod common;

use std::time::Duration;

use common::kproxy::{check_sequences, KProxy};
use common::{consume, java, topic, Broker, BROKERS};
use kafka_producer::{Acks, Error, Producer, ProducerConfig, ProducerRecord, StringSerializer};

#[test]
fn idempotent_records_arrive_once_in_order_on_every_broker() {
    const N: usize = 3000;
    for broker in BROKERS {
        let t = topic("idem");
        let cfg = broker
            .config()
            .enable_idempotence(true)
            .linger(Duration::from_millis(2));
        let p = Producer::new(cfg, StringSerializer, StringSerializer).unwrap();
        let handles: Vec<_> = (0..N)
            .map(|i| {
                p.send(ProducerRecord::new(t.as_str(), i.to_string()).partition((i % 2) as i32))
                    .unwrap()
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            h.get()
                .unwrap_or_else(|e| panic!("{broker:?}: record {i}: {e}"));
        }
        p.close().unwrap();
        let got = consume(broker.bootstrap(), &t, N, Duration::from_secs(60));
        for part in 0..2 {
            let values: Vec<usize> = got
                .iter()
                .filter(|c| c.partition == part)
                .map(|c| {
                    String::from_utf8(c.value.clone().unwrap())
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect();
            let want: Vec<usize> = (0..N).filter(|i| i % 2 == part as usize).collect();
            assert_eq!(values, want, "{broker:?} partition {part}");
        }
        if broker == Broker::Kafka {
            // From the broker's own disk: every batch has one producer id
            // and epoch, and the sequences run on from batch to batch
            // (one producer on a fresh topic: sequence == offset).
            let batches = java::dump_batches(&t, 0);
            assert!(!batches.is_empty());
            let (_, _, pid, epoch) = batches[0];
            assert!(pid >= 0 && epoch >= 0, "{batches:?}");
            for &(offset, seq, p, e) in &batches {
                assert_eq!((seq, p, e), (offset, pid, epoch), "{batches:?}");
            }
        }
    }
}

/// Java's rules for an explicit `enable.idempotence=true`: `acks` must be
/// all, `retries` above 0, at most 5 requests in flight; each conflict is
/// a config error naming the key.
#[test]
fn idempotence_refuses_conflicting_settings_by_name() {
    let base = || {
        ProducerConfig::new()
            .bootstrap_servers("127.0.0.1:9")
            .enable_idempotence(true)
    };
    for (cfg, key) in [
        (base().acks(Acks::Leader), "acks"),
        (base().retries(0), "retries"),
        (
            base().max_in_flight_requests_per_connection(6),
            "max.in.flight.requests.per.connection",
        ),
    ] {
        match Producer::new(cfg, StringSerializer, StringSerializer) {
            Err(Error::Config { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}: {:?}", other.map(|_| ())),
        }
    }
}

/// Sends `n` records to partition 0 of a private mock cluster through an
/// idempotent producer, after `fault` is armed; every send must succeed,
/// and the independent consumer must read each record once, in send
/// order.
///
/// One request in flight: the mock takes a later sequence after it refused
/// an earlier one (with 5 in flight it appended sequence 3 while 0-2 were
/// being retried), which Kafka and Tansu never do, so with more in flight
/// it would reorder records itself. The rules for several batches in
/// flight are unit-tested in `src/accumulator`, and proven on Kafka and
/// Tansu by the other tests here.
fn survives(fault: &str, n: u8) {
    let mut mock = common::MockCluster::start(1, &[("seq", 1)]);
    let cfg = ProducerConfig::new()
        .bootstrap_servers(mock.bootstrap.clone())
        .linger(Duration::ZERO)
        .max_in_flight_requests_per_connection(1)
        .retry_backoff(Duration::from_millis(20));
    let p = Producer::new(cfg, StringSerializer, StringSerializer).unwrap();
    p.partitions_for("seq").unwrap();
    mock.command(fault);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            p.send(ProducerRecord::new("seq", i.to_string()).partition(0))
                .unwrap()
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        h.get()
            .unwrap_or_else(|e| panic!("{fault}: record {i}: {e}"));
    }
    p.close().unwrap();
    let got = consume(&mock.bootstrap, "seq", n as usize, Duration::from_secs(30));
    let values: Vec<String> = got
        .iter()
        .map(|c| String::from_utf8(c.value.clone().unwrap()).unwrap())
        .collect();
    let want: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(values, want, "{fault}: read back once each, in order");
}

/// The broker refuses the first batch as out of order (it lost what came
/// before, as far as the producer can tell): KIP-360's epoch bump, the
/// later batches in flight refused too and retried behind it, and
/// nothing lost, repeated or reordered.
#[test]
fn an_out_of_order_sequence_bumps_the_epoch_and_loses_nothing() {
    survives("errors 0 45", 20); // OUT_OF_ORDER_SEQUENCE_NUMBER
}

/// The same for a broker that has forgotten the producer.
#[test]
fn an_unknown_producer_id_bumps_the_epoch_and_loses_nothing() {
    survives("errors 0 59", 20); // UNKNOWN_PRODUCER_ID
}

/// Retriable errors (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT) on
/// sequence-numbered batches: retried byte-identical, read back once each
/// in order. (Lost answers with several batches in flight, on Kafka and
/// Tansu, are in `tests/exactly_once.rs`.)
#[test]
fn retriable_errors_keep_sequences_in_order() {
    survives("errors 0 6 7 6 7", 20);
}

/// A batch that fails for good (INVALID_RECORD) leaves a gap in the
/// sequences; the producer bumps its epoch, and the records after it go
/// through.
#[test]
fn a_batch_failed_for_good_does_not_wedge_its_partition() {
    let mut mock = common::MockCluster::start(1, &[("gap", 1)]);
    let cfg = ProducerConfig::new()
        .bootstrap_servers(mock.bootstrap.clone())
        .linger(Duration::ZERO)
        .batch_size(1);
    let p = Producer::new(cfg, StringSerializer, StringSerializer).unwrap();
    p.partitions_for("gap").unwrap();
    mock.command("errors 0 87"); // INVALID_RECORD, once
    let e = p
        .send(ProducerRecord::new("gap", "bad").partition(0))
        .unwrap()
        .get()
        .unwrap_err();
    assert_eq!(
        e.code(),
        Some(kafka_producer::ErrorCode::INVALID_RECORD),
        "{e}"
    );
    let rest: Vec<_> = (0..10)
        .map(|i| {
            p.send(ProducerRecord::new("gap", i.to_string()).partition(0))
                .unwrap()
        })
        .collect();
    for h in rest {
        h.get().unwrap();
    }
    p.close().unwrap();
    assert_eq!(
        consume(&mock.bootstrap, "gap", 10, Duration::from_secs(30)).len(),
        10
    );
}

/// A broker that refuses the producer an id for good (not authorized)
/// makes the producer fatal: the queued record fails with it, and so does
/// every later `send`, at once.
#[test]
fn a_producer_id_refused_for_good_is_fatal_for_every_send() {
    let mut mock = common::MockCluster::start(1, &[("fatal", 1)]);
    mock.command("errors 22 31"); // InitProducerId: CLUSTER_AUTHORIZATION_FAILED
    let cfg = ProducerConfig::new().bootstrap_servers(mock.bootstrap.clone());
    let p = Producer::new(cfg, StringSerializer, StringSerializer).unwrap();
    // Refused by `send` if the refusal came first, else by the handle.
    let e = match p.send(ProducerRecord::new("fatal", "x")) {
        Ok(h) => h.get().unwrap_err(),
        Err(e) => e,
    };
    assert!(
        matches!(&e, Error::Fatal(m) if m.contains("CLUSTER_AUTHORIZATION_FAILED")),
        "{e}"
    );
    let again = p.send(ProducerRecord::new("fatal", "y")).unwrap_err();
    assert!(matches!(again, Error::Fatal(_)), "{again}");
    p.close().unwrap();
}

/// Disconnects on the mock (`down 1` closes the broker's connections and
/// refuses new ones until `up 1`), six times while records drain one batch
/// in flight at a time, answers delayed 10 ms so that a disconnect finds a
/// request in flight; record `i` has sequence `i` and says so in its value
/// (`seq-i`). The producer talks through `kproxy`, which counts the
/// connections (each disconnect forces new ones) and records every batch
/// sent. Every send succeeds; every copy of a batch is byte-identical with
/// the same sequence (`check_sequences`); and the independent consumer reads
/// every record, first copies in sequence order. The mock does not check
/// sequences (see /work/shared/brokers/README.md), so it appends a batch
/// resent after a lost answer a second time, where Kafka and Tansu answer
/// DUPLICATE_SEQUENCE_NUMBER or drop it (`tests/exactly_once.rs`,
/// `tests/tansu_sequences.rs`): the test checks that each extra copy it
/// reads is of a batch the proxy saw resent, and nothing else.
#[test]
fn disconnects_resend_sequence_numbered_batches_unchanged_on_the_mock() {
    const N: usize = 300;
    let mut mock = common::MockCluster::start(1, &[("disc", 1)]);
    let proxy = KProxy::start(&mock.bootstrap);
    let cfg = ProducerConfig::new()
        .bootstrap_servers(proxy.bootstrap.clone())
        .linger(Duration::ZERO)
        .batch_size(1)
        .max_in_flight_requests_per_connection(1)
        .retry_backoff(Duration::from_millis(20))
        .reconnect_backoff(Duration::from_millis(20));
    let p = Producer::new(cfg, StringSerializer, StringSerializer).unwrap();
    p.partitions_for("disc").unwrap();
    // Answers take 10 ms, so a disconnect finds a request in flight.
    mock.command("rtt 1 10");
    let before = proxy.connections();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            p.send(ProducerRecord::new("disc", format!("seq-{i}")).partition(0))
                .unwrap()
        })
        .collect();
    // The batches drain one at a time (10 ms or more each): cut the
    // connection six times meanwhile.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(40));
        mock.command("down 1");
        std::thread::sleep(Duration::from_millis(30));
        mock.command("up 1");
    }
    for (i, h) in handles.into_iter().enumerate() {
        h.get()
            .unwrap_or_else(|e| panic!("record {i}: {e}\n{}", mock.log()));
    }
    p.close().unwrap();
    assert!(proxy.errors().is_empty(), "{:?}", proxy.errors());
    let reconnects = proxy.connections() - before;
    assert!(
        reconnects >= 6,
        "{reconnects} new connections for 6 disconnects"
    );
    let sent = proxy.sent_batches();
    let seqs = check_sequences(&sent).unwrap();
    assert_eq!(seqs.per_partition[&0], N, "{seqs:?}");
    assert_eq!(seqs.epochs[&0].len(), 1, "no epoch bump: {seqs:?}");
    // The sequences of the batches sent more than once.
    let mut copies: std::collections::BTreeMap<i32, (i32, usize)> = Default::default();
    for b in &sent {
        copies.entry(b.base_sequence).or_insert((b.records, 0)).1 += 1;
    }
    let resent = |i: usize| {
        copies
            .iter()
            .any(|(&base, &(n, c))| c > 1 && (base..base + n).contains(&(i as i32)))
    };
    let got = common::consume_at_least(&mock.bootstrap, "disc", N, Duration::from_secs(30));
    let mut seen = vec![false; N];
    let mut firsts = Vec::with_capacity(N);
    let mut extra = 0;
    for c in &got {
        let v = String::from_utf8(c.value.clone().unwrap()).unwrap();
        let i: usize = v.strip_prefix("seq-").unwrap().parse().unwrap();
        if std::mem::replace(&mut seen[i], true) {
            assert!(resent(i), "{v} read twice but never resent");
            extra += 1;
        } else {
            firsts.push(i);
        }
    }
    assert_eq!(
        firsts,
        (0..N).collect::<Vec<_>>(),
        "every record, in sequence order"
    );
    eprintln!(
        "{reconnects} connections after the first, {} batch copies resent, {extra} extra \
         records the mock appended",
        seqs.retries
    );
}
