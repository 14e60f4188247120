//! Transactions (`transactional.id`) against Apache Kafka 4: what
//! `read_committed` consumers (Java's `KafkaConsumer` and librdkafka) see
//! after commits and aborts, fencing by a second producer with the same
//! id, the coordinator's abort of a transaction left open past
//! `transaction.timeout.ms`, offsets committed with a transaction (read
//! back with Java's Admin), resuming a timed-out call, and the misuse
//! errors. Tansu's answer is recorded in `tansu_*`. Kafka 4.4 finalizes
//! `transaction.version=2`, so every Kafka test here runs the transactions
//! v2 flow (KIP-890 part 2; `transactions_v2_on_kafka` proves it on the
//! wire); Tansu and the mock run v1 (`tansu_and_the_mock_run_transactions_v1`).

mod common;

use std::time::{Duration, Instant};

use common::kproxy::{check_sequences, KProxy};
use common::{consume_isolation, java, topic, Broker};
use kafka_producer::ErrorCode;
use kafka_producer::{
    ConsumerGroupMetadata, Error, Producer, ProducerConfig, ProducerRecord, RecordFuture,
    StringSerializer,
};

const WAIT: Duration = Duration::from_secs(60);

/// A fresh transactional id.
fn txn_id(prefix: &str) -> String {
    topic(&format!("txid-{prefix}"))
}

fn producer(cfg: ProducerConfig) -> Producer<str, str> {
    Producer::new(cfg, StringSerializer, StringSerializer).unwrap()
}

fn kafka(id: &str) -> ProducerConfig {
    Broker::Kafka.config().transactional_id(id)
}

/// `r` is the timeout of `operation` (`Error::TransactionTimeout`).
fn assert_timed_out(r: kafka_producer::Result<()>, operation: &str) {
    match r {
        Err(Error::TransactionTimeout { operation: op, .. }) => assert_eq!(op, operation),
        other => panic!("expected a timeout of {operation}, got {other:?}"),
    }
}

/// `r` is a refusal (`Error::InvalidOperation`) that says `why`.
fn assert_refused(r: kafka_producer::Result<()>, why: &str) {
    match r {
        Err(Error::InvalidOperation(m)) => assert!(m.contains(why), "{m}"),
        other => panic!("expected a refusal saying {why:?}, got {other:?}"),
    }
}

fn values(records: &[common::Consumed]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    v.sort();
    v
}

fn send_all(p: &Producer<str, str>, t: &str, vals: &[String]) -> Vec<RecordFuture> {
    vals.iter()
        .enumerate()
        .map(|(i, v)| {
            p.send(ProducerRecord::new(t, v.as_str()).partition((i % 2) as i32))
                .unwrap()
        })
        .collect()
}

/// Java's consumer and librdkafka both read exactly `committed` (sorted)
/// of `t` at read_committed, and exactly `all` at read_uncommitted.
fn assert_read_back(bs: &str, t: &str, committed: &[String], all: &[String]) {
    for read_committed in [true, false] {
        let want = if read_committed { committed } else { all };
        let java = java::java_consume(bs, t, want.len(), WAIT, read_committed);
        assert_eq!(values(&java), want, "Java, read_committed={read_committed}");
        let rdkafka = consume_isolation(bs, t, want.len(), WAIT, read_committed);
        assert_eq!(
            values(&rdkafka),
            want,
            "librdkafka, read_committed={read_committed}"
        );
    }
}

fn strings(prefix: &str, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:04}")).collect();
    v.sort();
    v
}

/// Committed records are visible to `read_committed` readers, whole: Java's
/// consumer and librdkafka both read exactly the transaction's records,
/// across partitions and topics.
#[test]
fn commit_makes_records_visible_to_read_committed_consumers() {
    let (t1, t2) = (topic("txc"), topic("txc2"));
    let p = producer(kafka(&txn_id("commit")));
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    let a = strings("a", 200);
    let b = strings("b", 50);
    let mut handles = send_all(&p, &t1, &a);
    handles.extend(send_all(&p, &t2, &b));
    p.commit_transaction().unwrap();
    // Commit flushed: every record is delivered by now.
    for h in &handles {
        assert!(h.is_done(), "commit returned before a record completed");
        assert!(h.get().unwrap().has_offset());
    }
    let bs = Broker::Kafka.bootstrap();
    assert_eq!(values(&java::java_consume(bs, &t1, a.len(), WAIT, true)), a);
    assert_eq!(values(&java::java_consume(bs, &t2, b.len(), WAIT, true)), b);
    assert_eq!(values(&consume_isolation(bs, &t1, a.len(), WAIT, true)), a);
    // A second transaction on the same producer.
    p.begin_transaction().unwrap();
    let c = strings("c", 10);
    send_all(&p, &t2, &c);
    p.commit_transaction().unwrap();
    let mut bc = [b.clone(), c].concat();
    bc.sort();
    assert_eq!(
        values(&consume_isolation(bs, &t2, bc.len(), WAIT, true)),
        bc
    );
    p.close().unwrap();
}

/// An aborted transaction's records are in the log (`read_uncommitted`
/// reads them) but never visible at `read_committed`; records still
/// buffered when the abort comes fail with `Error::Aborted` and are never
/// written. The next transaction commits normally.
#[test]
fn abort_hides_records_from_read_committed_readers() {
    let t = topic("txa");
    let p = producer(kafka(&txn_id("abort")).linger(Duration::from_secs(3)));
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    let sent = strings("aborted", 20);
    let written = send_all(&p, &t, &sent);
    p.flush().unwrap();
    for h in &written {
        h.get().expect("written to the log before the abort");
    }
    // Lingering (3 s) when the abort comes: failed, never sent.
    let unsent: Vec<RecordFuture> = send_all(&p, &t, &strings("never", 5));
    p.abort_transaction().unwrap();
    for h in &unsent {
        match h.get() {
            Err(Error::Aborted(m)) => assert!(m.contains("abort"), "{m}"),
            other => panic!("a buffered record of an aborted transaction: {other:?}"),
        }
    }
    p.begin_transaction().unwrap();
    let committed = strings("committed", 10);
    send_all(&p, &t, &committed);
    p.commit_transaction().unwrap();
    let bs = Broker::Kafka.bootstrap();
    let mut all = [sent, committed.clone()].concat();
    all.sort();
    assert_read_back(bs, &t, &committed, &all);
    p.close().unwrap();
}

fn assert_fenced(e: &Error, id: &str) {
    assert!(e.is_fatal(), "expected a fatal error, got {e:?}");
    assert!(
        matches!(
            e.code(),
            Some(ErrorCode::PRODUCER_FENCED | ErrorCode::INVALID_PRODUCER_EPOCH)
        ),
        "expected fencing, got {e:?}"
    );
    assert!(e.to_string().contains(id), "{e}");
}

/// A second producer with the same transactional id fences the first:
/// its open transaction is aborted, its next send to a new partition fails
/// fenced, and every later call fails with a fatal, fenced error naming
/// the id. On Kafka (transactions v2) the partition leader refuses the
/// record's Produce v12 (INVALID_PRODUCER_EPOCH, the broker's own error for
/// the record); on Tansu (v1) AddPartitionsToTxn is refused and the record
/// fails with the producer's fatal error.
#[test]
fn a_second_producer_with_the_same_id_fences_the_first() {
    fence(Broker::Kafka);
}

/// The same on Tansu, which fences too (its read_committed view is not
/// checked: it shows aborted records, see `tansu_commits_and_aborts`).
#[test]
fn a_second_producer_with_the_same_id_fences_the_first_on_tansu() {
    fence(Broker::Tansu);
}

fn fence(broker: Broker) {
    let t = topic("txf");
    let id = txn_id("fence");
    let p1 = producer(broker.config().transactional_id(id.as_str()));
    p1.init_transactions().unwrap();
    p1.begin_transaction().unwrap();
    p1.send(ProducerRecord::new(t.as_str(), "zombie").partition(0))
        .unwrap()
        .get()
        .unwrap();
    let p2 = producer(broker.config().transactional_id(id.as_str()));
    p2.init_transactions().unwrap();
    // p1 does not know yet: the send is accepted, and fails once its
    // partition cannot join p1's transaction.
    let h = p1
        .send(ProducerRecord::new(t.as_str(), "zombie-2").partition(1))
        .unwrap();
    let e = h.get().unwrap_err();
    if broker == Broker::Kafka {
        assert!(
            matches!(
                e.code(),
                Some(ErrorCode::PRODUCER_FENCED | ErrorCode::INVALID_PRODUCER_EPOCH)
            ),
            "expected the leader's fencing error, got {e:?}"
        );
    } else {
        assert_fenced(&e, &id);
    }
    let e = p1
        .send(ProducerRecord::new(t.as_str(), "zombie-3"))
        .unwrap_err();
    assert_fenced(&e, &id);
    assert_fenced(&p1.commit_transaction().unwrap_err(), &id);
    assert_fenced(&p1.abort_transaction().unwrap_err(), &id);
    assert_fenced(&p1.begin_transaction().unwrap_err(), &id);
    // The new producer carries on.
    p2.begin_transaction().unwrap();
    p2.send(ProducerRecord::new(t.as_str(), "current").partition(0))
        .unwrap();
    p2.commit_transaction().unwrap();
    if broker == Broker::Kafka {
        let got = java::java_consume(broker.bootstrap(), &t, 1, WAIT, true);
        assert_eq!(values(&got), ["current"]);
    } else {
        let got = consume_isolation(broker.bootstrap(), &t, 2, WAIT, false);
        assert!(values(&got).contains(&"current".to_string()), "{got:?}");
    }
    p1.close().unwrap();
    p2.close().unwrap();
}

/// A commit of a transaction fenced between its last send and its commit
/// fails with the fatal error too (EndTxn refused).
#[test]
fn a_fenced_commit_is_fatal() {
    let t = topic("txfc");
    let id = txn_id("fence-commit");
    let p1 = producer(kafka(&id));
    p1.init_transactions().unwrap();
    p1.begin_transaction().unwrap();
    p1.send(ProducerRecord::new(t.as_str(), "zombie"))
        .unwrap()
        .get()
        .unwrap();
    let p2 = producer(kafka(&id));
    p2.init_transactions().unwrap();
    assert_fenced(&p1.commit_transaction().unwrap_err(), &id);
    assert_fenced(
        &p1.send(ProducerRecord::new(t.as_str(), "x")).unwrap_err(),
        &id,
    );
    p2.close().unwrap();
    p1.close().unwrap();
}

/// A transaction open past `transaction.timeout.ms` is aborted by the
/// coordinator (which checks every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, 10 s by
/// default); the producer learns it at commit, which fails fatally, and the
/// records stay invisible at read_committed. Under transactions v2 (Kafka
/// 4.4) the coordinator answers that EndTxn INVALID_TXN_STATE (the
/// transaction it ended was an abort), fatal as in Java; under v1 it was
/// fencing (PRODUCER_FENCED / INVALID_PRODUCER_EPOCH).
#[test]
fn a_transaction_left_open_past_its_timeout_is_aborted_by_the_coordinator() {
    let t = topic("txt");
    let id = txn_id("timeout");
    let p = producer(kafka(&id).transaction_timeout(Duration::from_millis(2000)));
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new(t.as_str(), "expired").partition(0))
        .unwrap()
        .get()
        .unwrap();
    // Timeout plus one cleanup interval, and a margin.
    std::thread::sleep(Duration::from_secs(15));
    let e = p.commit_transaction().unwrap_err();
    eprintln!("commit after the coordinator's abort: {e}");
    assert!(e.is_fatal(), "{e:?}");
    assert!(
        matches!(
            e.code(),
            Some(
                ErrorCode::PRODUCER_FENCED
                    | ErrorCode::INVALID_PRODUCER_EPOCH
                    | ErrorCode::INVALID_TXN_STATE
            )
        ),
        "{e:?}"
    );
    p.close().unwrap();
    // A record committed after it gives the reader something to wait for:
    // exactly that one is visible.
    let p = producer(kafka(&id));
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new(t.as_str(), "after").partition(0))
        .unwrap();
    p.commit_transaction().unwrap();
    let bs = Broker::Kafka.bootstrap();
    assert_eq!(
        values(&java::java_consume(bs, &t, 1, WAIT, true)),
        ["after"]
    );
    assert_eq!(
        values(&java::java_consume(bs, &t, 2, WAIT, false)),
        ["after", "expired"]
    );
    p.close().unwrap();
}

/// Offsets sent with a transaction become the group's committed offsets
/// when it commits (read back with Java's Admin), and not when it aborts.
#[test]
fn send_offsets_to_transaction_commits_offsets_with_the_transaction() {
    let t = topic("txo");
    let group = ConsumerGroupMetadata::new(topic("group"));
    let bs = Broker::Kafka.bootstrap();
    let p = producer(kafka(&txn_id("offsets")));
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new(t.as_str(), "out").partition(0))
        .unwrap();
    p.send_offsets_to_transaction(
        [
            (t.clone(), 0, 5, "m0".to_string()),
            (t.clone(), 1, 7, "m1".to_string()),
        ],
        &group,
    )
    .unwrap();
    p.commit_transaction().unwrap();
    let want = vec![
        (t.clone(), 0, 5, Some("m0".to_string())),
        (t.clone(), 1, 7, Some("m1".to_string())),
    ];
    assert_eq!(java::group_offsets(bs, &group.group_id), want);
    // Offsets only (no records), aborted: the group keeps its offsets.
    p.begin_transaction().unwrap();
    p.send_offsets_to_transaction([(t.as_str(), 0, 100)], &group)
        .unwrap();
    p.abort_transaction().unwrap();
    assert_eq!(java::group_offsets(bs, &group.group_id), want);
    // Offsets only, committed.
    p.begin_transaction().unwrap();
    p.send_offsets_to_transaction([(t.as_str(), 0, 100)], &group)
        .unwrap();
    p.commit_transaction().unwrap();
    assert_eq!(
        java::group_offsets(bs, &group.group_id),
        [(t.clone(), 0, 100, Some(String::new())), want[1].clone()]
    );
    p.close().unwrap();
}

/// A private mock cluster of `brokers` with `t` (2 partitions), and a
/// transactional producer with id `id` on it, configured further by `cfg`.
fn on_mock(
    brokers: usize,
    t: &str,
    id: &str,
    cfg: impl FnOnce(ProducerConfig) -> ProducerConfig,
) -> (common::MockCluster, Producer<str, str>) {
    let mock = common::MockCluster::start(brokers, &[(t, 2)]);
    let p = producer(cfg(ProducerConfig::new()
        .bootstrap_servers(mock.bootstrap.clone())
        .transactional_id(id)));
    (mock, p)
}

/// Commits, or aborts, the open transaction of `p`.
fn end(p: &Producer<str, str>, commit: bool) {
    if commit {
        p.commit_transaction().unwrap();
    } else {
        p.abort_transaction().unwrap();
    }
}

/// Api keys the v1 and v2 flows differ in.
const PRODUCE: i16 = 0;
const ADD_PARTITIONS_TO_TXN: i16 = 24;
const ADD_OFFSETS_TO_TXN: i16 = 25;
const END_TXN: i16 = 26;
const TXN_OFFSET_COMMIT: i16 = 28;

/// A transactional producer (a fresh id from `prefix`) that reaches
/// `broker` through a new kproxy, which records what it sends.
fn proxied(broker: Broker, prefix: &str) -> (KProxy, Producer<str, str>) {
    let proxy = KProxy::start(broker.bootstrap());
    let p = producer(
        broker
            .config()
            .bootstrap_servers(proxy.bootstrap.as_str())
            .transactional_id(txn_id(prefix)),
    );
    (proxy, p)
}

/// The versions the client sent `key` at, deduplicated.
fn versions_of(proxy: &KProxy, key: i16) -> Vec<i16> {
    let mut v: Vec<i16> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.0 == key)
        .map(|r| r.1)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Kafka 4.4 finalizes `transaction.version=2`: the producer runs the
/// transactions v2 flow (KIP-890 part 2), as a proxy in front of the
/// cluster sees on the wire: Produce v12, never AddPartitionsToTxn nor
/// AddOffsetsToTxn, TxnOffsetCommit v5 and EndTxn v5; each EndTxn bumps
/// the epoch, so the batches of each transaction carry the epoch after the
/// previous one's, every partition from sequence 0 again. Commit and abort
/// are what Java's consumer and librdkafka read at both isolation levels,
/// and the offsets committed with the transaction are the group's (Java's
/// Admin).
#[test]
fn transactions_v2_on_kafka() {
    let bs = Broker::Kafka.bootstrap();
    let t = topic("txv2");
    let group = ConsumerGroupMetadata::new(topic("group-v2"));
    let (proxy, p) = proxied(Broker::Kafka, "v2");
    p.init_transactions().unwrap();
    let mut committed = Vec::new();
    let mut all = Vec::new();
    for (i, commit) in [true, false, true, true].into_iter().enumerate() {
        p.begin_transaction().unwrap();
        let vals = strings(&format!("t{i}"), 6);
        for h in send_all(&p, &t, &vals) {
            h.get().unwrap();
        }
        if i == 2 {
            p.send_offsets_to_transaction([(t.as_str(), 0, 42)], &group)
                .unwrap();
        }
        all.extend(vals.iter().cloned());
        if commit {
            p.commit_transaction().unwrap();
            committed.extend(vals);
        } else {
            p.abort_transaction().unwrap();
        }
    }
    p.close().unwrap();
    assert!(proxy.errors().is_empty(), "{:?}", proxy.errors());
    assert_eq!(versions_of(&proxy, PRODUCE), [12]);
    assert_eq!(versions_of(&proxy, ADD_PARTITIONS_TO_TXN), [] as [i16; 0]);
    assert_eq!(versions_of(&proxy, ADD_OFFSETS_TO_TXN), [] as [i16; 0]);
    assert_eq!(versions_of(&proxy, TXN_OFFSET_COMMIT), [5]);
    assert_eq!(versions_of(&proxy, END_TXN), [5]);
    // One epoch per transaction, one more each time, and within each,
    // per partition, sequences from 0 with no gap (check_sequences).
    let sent = proxy.sent_batches();
    let seqs = check_sequences(&sent).unwrap();
    for (partition, epochs) in &seqs.epochs {
        assert_eq!(epochs.len(), 4, "partition {partition}: {epochs:?}");
        assert!(
            epochs.windows(2).all(|w| w[1] == w[0] + 1),
            "partition {partition}: one epoch bump per transaction: {epochs:?}"
        );
    }
    assert_eq!(seqs.per_partition.values().sum::<usize>(), all.len());
    committed.sort();
    all.sort();
    assert_read_back(bs, &t, &committed, &all);
    assert_eq!(
        java::group_offsets(bs, &group.group_id),
        [(t.clone(), 0, 42, Some(String::new()))]
    );
}

/// Tansu and librdkafka's mock finalize no `transaction.version` (and speak
/// Produce v11 / v7 and EndTxn v4 / v1 at most): the producer runs the v1
/// flow there, as the proxy sees: AddPartitionsToTxn (v3 at most) and
/// AddOffsetsToTxn, TxnOffsetCommit at most v4, Produce and EndTxn at the
/// broker's highest, one epoch for every transaction.
#[test]
fn tansu_and_the_mock_run_transactions_v1() {
    for (broker, produce, end_txn) in [(Broker::Tansu, 11, 4), (Broker::Mock, 7, 1)] {
        let t = topic("txv1");
        let group = ConsumerGroupMetadata::new(topic("group-v1"));
        let (proxy, p) = proxied(broker, "v1");
        p.init_transactions().unwrap();
        for commit in [true, false, true] {
            p.begin_transaction().unwrap();
            for h in send_all(&p, &t, &strings("v1", 4)) {
                h.get().unwrap();
            }
            p.send_offsets_to_transaction([(t.as_str(), 0, 4)], &group)
                .unwrap();
            end(&p, commit);
        }
        p.close().unwrap();
        let what = format!("{broker:?}");
        assert!(proxy.errors().is_empty(), "{what}: {:?}", proxy.errors());
        assert_eq!(versions_of(&proxy, PRODUCE), [produce], "{what}");
        let add = versions_of(&proxy, ADD_PARTITIONS_TO_TXN);
        assert!(
            !add.is_empty() && add.iter().all(|&v| v <= 3),
            "{what}: {add:?}"
        );
        assert!(
            !versions_of(&proxy, ADD_OFFSETS_TO_TXN).is_empty(),
            "{what}"
        );
        let offsets = versions_of(&proxy, TXN_OFFSET_COMMIT);
        assert!(
            !offsets.is_empty() && offsets.iter().all(|&v| v <= 4),
            "{what}: {offsets:?}"
        );
        assert_eq!(versions_of(&proxy, END_TXN), [end_txn], "{what}");
        let seqs = check_sequences(&proxy.sent_batches()).unwrap();
        for (partition, epochs) in &seqs.epochs {
            assert_eq!(epochs.len(), 1, "{what} partition {partition}: {epochs:?}");
        }
        assert_eq!(seqs.per_partition.values().sum::<usize>(), 12, "{what}");
    }
}

/// Java's IllegalStateExceptions: every call out of order is refused with
/// a reason, and nothing is sent.
#[test]
fn calls_out_of_order_are_refused_with_a_reason() {
    let t = topic("txm");
    let invalid = |r: kafka_producer::Result<()>, what: &str| match r {
        Err(Error::InvalidOperation(m)) => {
            assert!(m.contains(what), "expected {what:?} in {m:?}")
        }
        other => panic!("expected InvalidOperation({what:?}), got {other:?}"),
    };
    // Not transactional.
    let plain = producer(Broker::Kafka.config());
    for r in [
        plain.init_transactions(),
        plain.begin_transaction(),
        plain.commit_transaction(),
        plain.abort_transaction(),
        plain.send_offsets_to_transaction([("t", 0, 1)], &ConsumerGroupMetadata::new("g")),
    ] {
        invalid(r, "non-transactional producer");
    }
    plain.close().unwrap();
    // Java: a transactional.id with enable.idempotence=false.
    let e = Producer::new(
        kafka("x").enable_idempotence(false),
        StringSerializer,
        StringSerializer,
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "enable.idempotence"),
        "{e}"
    );
    let p = producer(kafka(&txn_id("misuse")));
    let send = |v: &str| p.send(ProducerRecord::new(t.as_str(), v)).map(|_| ());
    invalid(
        send("early"),
        "before completing a call to init_transactions",
    );
    invalid(p.begin_transaction(), "init_transactions");
    invalid(p.commit_transaction(), "UNINITIALIZED");
    p.init_transactions().unwrap();
    invalid(p.init_transactions(), "already called");
    invalid(send("outside"), "not in a transaction");
    invalid(p.commit_transaction(), "no transaction is open");
    invalid(p.abort_transaction(), "no transaction is open");
    invalid(
        p.send_offsets_to_transaction([("t", 0, 1)], &ConsumerGroupMetadata::new("g")),
        "READY",
    );
    p.begin_transaction().unwrap();
    invalid(p.begin_transaction(), "called twice");
    invalid(
        p.send_offsets_to_transaction([("t", 0, 1)], &ConsumerGroupMetadata::new("")),
        "group id is empty",
    );
    send("inside").unwrap();
    // A commit of an empty transaction, and of one with records, work.
    p.commit_transaction().unwrap();
    p.begin_transaction().unwrap();
    p.commit_transaction().unwrap();
    p.begin_transaction().unwrap();
    p.abort_transaction().unwrap();
    invalid(send("after"), "not in a transaction");
    p.close().unwrap();
    assert!(matches!(p.begin_transaction(), Err(Error::Closed)));
    let got = java::java_consume(Broker::Kafka.bootstrap(), &t, 1, WAIT, true);
    assert_eq!(values(&got), ["inside"]);
}

/// `init_transactions` with `max.block.ms` of 1 ms times out (finding the
/// coordinator takes longer), goes on in the background, and is resumed by
/// calling it again; meanwhile other calls are refused. Then a
/// transaction works.
#[test]
fn a_timed_out_call_is_resumed_by_calling_it_again() {
    let t = topic("txr");
    let p = producer(kafka(&txn_id("resume")).max_block(Duration::from_millis(1)));
    assert_timed_out(p.init_transactions(), "init_transactions");
    assert_refused(
        p.begin_transaction(),
        "previous call to init_transactions timed out",
    );
    let until = Instant::now() + WAIT;
    let mut timeouts = 1;
    loop {
        match p.init_transactions() {
            Ok(()) => break,
            Err(Error::TransactionTimeout { .. }) if Instant::now() < until => timeouts += 1,
            Err(e) => panic!("after {timeouts} timeouts: {e:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Done: init is not started twice.
    assert!(matches!(
        p.init_transactions(),
        Err(Error::InvalidOperation(_))
    ));
    p.close().unwrap();
    let p = producer(kafka(&txn_id("resume2")));
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new(t.as_str(), "v")).unwrap();
    p.commit_transaction().unwrap();
    let got = java::java_consume(Broker::Kafka.bootstrap(), &t, 1, WAIT, true);
    assert_eq!(values(&got), ["v"]);
    p.close().unwrap();
}

/// A record of the transaction that the broker refuses (larger than the
/// topic's `max.message.bytes`) makes the transaction abortable: commit
/// fails naming the cause, `abort_transaction` works, and the next
/// transaction commits (its batches after the failed one's sequence:
/// the epoch is bumped after the abort, KIP-360).
#[test]
fn a_refused_record_makes_the_transaction_abortable() {
    let t = topic("txe");
    let bs = Broker::Kafka.bootstrap();
    java::create_topic(bs, &t, 2, 3, &[("max.message.bytes", "2000")]);
    let p = producer(kafka(&txn_id("abortable")));
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new(t.as_str(), "ok-1"))
        .unwrap()
        .get()
        .unwrap();
    let big = "x".repeat(5000);
    let h = p
        .send(ProducerRecord::new(t.as_str(), big.as_str()))
        .unwrap();
    let e = h.get().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::MESSAGE_TOO_LARGE), "{e:?}");
    // The transaction cannot commit now; sends are refused too.
    let e = p.send(ProducerRecord::new(t.as_str(), "late")).unwrap_err();
    assert!(e.is_abortable(), "{e:?}");
    let e = p.commit_transaction().unwrap_err();
    assert!(e.is_abortable(), "{e:?}");
    assert_eq!(e.code(), Some(ErrorCode::MESSAGE_TOO_LARGE), "{e:?}");
    p.abort_transaction().unwrap();
    for round in 0..2 {
        p.begin_transaction().unwrap();
        let vals = strings(&format!("after{round}"), 5);
        for h in send_all(&p, &t, &vals) {
            h.get().unwrap();
        }
        p.commit_transaction().unwrap();
    }
    let got = java::java_consume(bs, &t, 10, WAIT, true);
    let mut want = [strings("after0", 5), strings("after1", 5)].concat();
    want.sort();
    assert_eq!(values(&got), want);
    p.close().unwrap();
}

/// Tansu (one broker, its own transaction coordinator) takes the whole
/// flow: InitProducerId, AddPartitionsToTxn, transactional Produce, EndTxn
/// commit and abort all succeed, and every record is in the log. But Tansu
/// (0.6) does not hide aborted transactions from read_committed readers:
/// librdkafka reads the aborted records there too (the same records are
/// hidden by Kafka, see `abort_hides_records_from_read_committed_readers`).
/// This test pins that down; if Tansu starts filtering, expect
/// `committed.len()` at read_committed and update the README.
#[test]
fn tansu_commits_and_aborts() {
    let t = topic("txtansu");
    let bs = Broker::Tansu.bootstrap();
    let p = producer(Broker::Tansu.config().transactional_id(txn_id("tansu")));
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    let aborted = strings("aborted", 4);
    for h in send_all(&p, &t, &aborted) {
        h.get().unwrap();
    }
    p.abort_transaction().unwrap();
    p.begin_transaction().unwrap();
    let committed = strings("committed", 6);
    send_all(&p, &t, &committed);
    p.commit_transaction().unwrap();
    p.close().unwrap();
    let mut all = [aborted, committed.clone()].concat();
    all.sort();
    assert_eq!(
        values(&consume_isolation(bs, &t, all.len(), WAIT, false)),
        all
    );
    assert_eq!(
        values(&consume_isolation(bs, &t, all.len(), WAIT, true)),
        all,
        "Tansu at read_committed"
    );
}

/// Closing with a transaction open aborts it (as Java's `close` does)
/// instead of leaving it to `transaction.timeout.ms` (60 s here): a
/// read_committed reader is not held back at the open transaction, so
/// another producer's later commit to the same partition is visible at
/// once.
#[test]
fn close_aborts_an_open_transaction() {
    let t = topic("txcl");
    let bs = Broker::Kafka.bootstrap();
    let p1 = producer(kafka(&txn_id("close")));
    p1.init_transactions().unwrap();
    p1.begin_transaction().unwrap();
    p1.send(ProducerRecord::new(t.as_str(), "open").partition(0))
        .unwrap()
        .get()
        .unwrap();
    p1.close().unwrap();
    let p2 = producer(kafka(&txn_id("close-other")));
    p2.init_transactions().unwrap();
    p2.begin_transaction().unwrap();
    p2.send(ProducerRecord::new(t.as_str(), "after").partition(0))
        .unwrap();
    p2.commit_transaction().unwrap();
    p2.close().unwrap();
    // Well inside the 60 s an open transaction would hold the LSO.
    let got = java::java_consume(bs, &t, 1, Duration::from_secs(20), true);
    assert_eq!(values(&got), ["after"]);
    assert_eq!(
        values(&java::java_consume(bs, &t, 2, WAIT, false)),
        ["after", "open"]
    );
}

/// `examples/transactions.rs` commits what it says it committed.
#[test]
fn the_transactions_example_commits_what_it_prints() {
    let t = topic("txex");
    let bs = Broker::Kafka.bootstrap();
    let r = common::run_example("transactions", &[bs, &t, "25", "10"], "");
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        [
            "committed 10 records (transaction 0)",
            "committed 10 records (transaction 1)",
            "committed 5 records (transaction 2)"
        ]
    );
    let got = consume_isolation(bs, &t, 25, WAIT, true);
    let mut want: Vec<String> = (0..25).map(|i| format!("record-{i}")).collect();
    want.sort();
    assert_eq!(values(&got), want);
}

/// The issue's `transactional` example: `commit-0` … `commit-99` committed,
/// `abort-0` … `abort-99` aborted. Java's `read_committed` consumer reads
/// exactly the first hundred; `read_uncommitted` reads all two hundred.
#[test]
fn the_transactional_example_commits_one_hundred_and_aborts_one_hundred() {
    let t = topic("txall");
    let bs = Broker::Kafka.bootstrap();
    let r = common::run_example("transactional", &[bs, &t], "");
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        [
            "committed commit-0 … commit-99",
            "aborted abort-0 … abort-99"
        ]
    );
    let committed = java::java_consume(bs, &t, 100, WAIT, true);
    let mut want: Vec<String> = (0..100).map(|i| format!("commit-{i}")).collect();
    want.sort();
    assert_eq!(values(&committed), want);
    let all = java::java_consume(bs, &t, 200, WAIT, false);
    let aborted = values(&all)
        .iter()
        .filter(|v| v.starts_with("abort-"))
        .count();
    assert_eq!(aborted, 100, "the aborted records are in the log");
}

/// The `exactly_once` example (input from a file, as it says): 45 lines
/// in chunks of 20 give three transactions; at read_committed the output
/// holds every line once, upper-cased and keyed by its input offset, and
/// the group's committed offset for the input topic is 45.
#[test]
fn the_exactly_once_example_commits_output_and_offsets_together() {
    let bs = Broker::Kafka.bootstrap();
    let (input, output, group) = (topic("eosin"), topic("eosout"), topic("eosgroup"));
    java::create_topic(bs, &input, 1, 3, &[]);
    let dir = std::env::temp_dir().join(format!("kp-eos-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("input.txt");
    let lines: Vec<String> = (0..45).map(|i| format!("line {i}")).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let file = file.to_str().expect("a UTF-8 temporary path");
    let r = common::run_example(
        "exactly_once",
        &[bs, file, &input, &output, &group, "20"],
        "",
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        [
            format!("committed lines 0..20, {group} at 20"),
            format!("committed lines 20..40, {group} at 40"),
            format!("committed lines 40..45, {group} at 45"),
        ]
    );
    let got = java::java_consume(bs, &output, 45, WAIT, true);
    let mut pairs: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            let k = String::from_utf8(r.key.clone().unwrap()).unwrap();
            let v = String::from_utf8(r.value.clone().unwrap()).unwrap();
            (k, v)
        })
        .collect();
    pairs.sort_by_key(|(k, _)| k.parse::<usize>().unwrap());
    let want: Vec<(String, String)> = (0..45)
        .map(|i| (i.to_string(), format!("LINE {i}")))
        .collect();
    assert_eq!(pairs, want);
    assert_eq!(
        java::group_offsets(bs, &group),
        vec![(input.clone(), 0, 45, Some(String::new()))]
    );
}

/// On a private librdkafka mock cluster, with errors injected into the
/// coordinator requests: a coordinator that is not available, loading or
/// busy is retried (found again where it says so), the coordinator moving
/// to another broker is followed, and the transaction commits with every
/// record delivered. Then an authorization error on AddPartitionsToTxn is
/// fatal: the record waiting for it fails, and so does everything after.
#[test]
fn coordinator_errors_are_retried_or_fatal_as_java_does() {
    let t = topic("txmock");
    let id = txn_id("mock");
    let (mut mock, p) = on_mock(3, &t, &id, |c| {
        c.retry_backoff(Duration::from_millis(20))
            .max_block(Duration::from_secs(30))
    });
    // FindCoordinator (10): not available, twice; InitProducerId (22):
    // loading, busy, not the coordinator.
    mock.command("errors 10 15 15");
    mock.command("errors 22 14 51 16");
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    // AddPartitionsToTxn (24): busy three times (the 20 ms backoff).
    mock.command("errors 24 51 51 51");
    let vals = strings("m", 10);
    let handles = send_all(&p, &t, &vals);
    for h in &handles {
        h.get_timeout(WAIT).unwrap();
    }
    // EndTxn (26): not the coordinator; and the coordinator moves.
    mock.command("errors 26 16 15");
    mock.command(&format!("coordinator transaction {id} 3"));
    p.commit_transaction().unwrap();
    let got = consume_isolation(&mock.bootstrap, &t, vals.len(), WAIT, false);
    assert_eq!(values(&got), vals);
    // TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53): fatal.
    p.begin_transaction().unwrap();
    mock.command("errors 24 53");
    let h = p
        .send(ProducerRecord::new(t.as_str(), "refused").partition(0))
        .unwrap();
    let e = h.get_timeout(WAIT).unwrap_err();
    assert!(e.is_fatal(), "{e:?}");
    assert_eq!(
        e.code(),
        Some(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
        "{e:?}"
    );
    assert!(p
        .send(ProducerRecord::new(t.as_str(), "x"))
        .unwrap_err()
        .is_fatal());
    assert!(p.commit_transaction().unwrap_err().is_fatal());
    p.close_timeout(Duration::from_secs(5)).unwrap();
}

/// INVALID_TXN_STATE from the coordinator is fatal, as Java's handlers
/// make it: an EndTxn(commit) refused with it (injected on a private mock)
/// fails the commit with `TransactionFatal`, and every later call and send
/// too. (It was abortable before, which let the application abort and go
/// on with a coordinator whose state disagreed with its own.)
#[test]
fn invalid_txn_state_is_fatal() {
    let t = topic("txits");
    let id = txn_id("its");
    let (mut mock, p) = on_mock(1, &t, &id, |c| c);
    p.init_transactions().unwrap();
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new(t.as_str(), "x").partition(0))
        .unwrap()
        .get_timeout(WAIT)
        .unwrap();
    mock.command("errors 26 48"); // EndTxn: INVALID_TXN_STATE
    let e = p.commit_transaction().unwrap_err();
    assert!(
        matches!(&e, Error::TransactionFatal { .. }),
        "expected TransactionFatal, got {e:?}"
    );
    assert_eq!(e.code(), Some(ErrorCode::INVALID_TXN_STATE), "{e:?}");
    assert!(e.to_string().contains(&id), "{e}");
    assert!(p.abort_transaction().unwrap_err().is_fatal());
    assert!(p
        .send(ProducerRecord::new(t.as_str(), "y"))
        .unwrap_err()
        .is_fatal());
    p.close_timeout(Duration::from_secs(5)).unwrap();
}

/// A commit and an abort that run out of `max.block.ms` (the coordinator's
/// broker answers after 1.5 s, `max.block.ms` is 500 ms) report
/// `TransactionTimeout`, refuse other calls and sends meanwhile, and are
/// finished by calling them again; the records are committed once.
#[test]
fn a_timed_out_commit_or_abort_is_resumed_by_calling_it_again() {
    let t = topic("txslow");
    let id = txn_id("slow");
    let (mut mock, p) = on_mock(3, &t, &id, |c| c.max_block(Duration::from_millis(500)));
    mock.command(&format!("coordinator transaction {id} 1"));
    let retry = |what: &str, call: &dyn Fn() -> kafka_producer::Result<()>| {
        let until = Instant::now() + WAIT;
        let mut timeouts = 0;
        loop {
            match call() {
                Ok(()) => return timeouts,
                Err(Error::TransactionTimeout { operation, .. }) if Instant::now() < until => {
                    assert_eq!(operation, what);
                    timeouts += 1;
                }
                Err(e) => panic!("{what} after {timeouts} timeouts: {e:?}"),
            }
        }
    };
    retry("init_transactions", &|| p.init_transactions());
    p.begin_transaction().unwrap();
    let vals = strings("slow", 6);
    let handles = send_all(&p, &t, &vals);
    for h in &handles {
        h.get_timeout(WAIT).unwrap();
    }
    mock.command("rtt 1 1500");
    assert_timed_out(p.commit_transaction(), "commit_transaction");
    assert_refused(
        p.abort_transaction(),
        "previous call to commit_transaction timed out",
    );
    assert!(matches!(
        p.send(ProducerRecord::new(t.as_str(), "during")),
        Err(Error::InvalidOperation(_))
    ));
    retry("commit_transaction", &|| p.commit_transaction());
    // An abort, likewise.
    p.begin_transaction().unwrap();
    mock.command("rtt 1 0");
    let aborted = send_all(&p, &t, &strings("gone", 2));
    for h in &aborted {
        h.get_timeout(WAIT).unwrap();
    }
    mock.command("rtt 1 1500");
    let timeouts = retry("abort_transaction", &|| p.abort_transaction());
    assert!(
        timeouts >= 1,
        "the abort should have timed out at least once"
    );
    mock.command("rtt 1 0");
    p.begin_transaction().unwrap();
    p.commit_transaction().unwrap();
    p.close_timeout(Duration::from_secs(5)).unwrap();
    // Every record once at read_uncommitted, the aborted ones too (what
    // read_committed hides is tested on Kafka above): resuming sent nothing
    // twice.
    let mut all = [vals, strings("gone", 2)].concat();
    all.sort();
    let got = consume_isolation(&mock.bootstrap, &t, all.len(), WAIT, false);
    assert_eq!(values(&got), all);
}

/// Several threads send into one transaction (keyed, over every
/// partition) while partitions join it; the commit waits for all of them
/// and the read_committed reader gets every record once, three
/// transactions in a row.
#[test]
fn threads_share_a_transaction() {
    let t = topic("txthreads");
    let p = producer(kafka(&txn_id("threads")).linger(Duration::from_millis(1)));
    p.init_transactions().unwrap();
    let mut want = Vec::new();
    for round in 0..3 {
        p.begin_transaction().unwrap();
        std::thread::scope(|s| {
            for th in 0..4 {
                let (p, t) = (&p, t.as_str());
                s.spawn(move || {
                    for i in 0..300 {
                        let v = format!("r{round}-t{th}-{i:03}");
                        p.send(ProducerRecord::with_key(t, v.as_str(), v.as_str()))
                            .unwrap();
                    }
                });
            }
        });
        p.commit_transaction().unwrap();
        for th in 0..4 {
            want.extend((0..300).map(|i| format!("r{round}-t{th}-{i:03}")));
        }
    }
    want.sort();
    let got = consume_isolation(Broker::Kafka.bootstrap(), &t, want.len(), WAIT, true);
    assert_eq!(values(&got), want);
    let partitions: std::collections::BTreeSet<i32> = got.iter().map(|c| c.partition).collect();
    assert_eq!(
        partitions.len(),
        4,
        "every partition joined: {partitions:?}"
    );
    p.close().unwrap();
}

/// Two threads call `commit_transaction` at once (as Java allows: both
/// wait for one result): both return Ok, EndTxn goes once (the proxy
/// counts it), the records are committed once, and the next commit with no
/// transaction is refused.
#[test]
fn concurrent_commits_share_one_end_txn() {
    let bs = Broker::Kafka.bootstrap();
    let t = topic("txcc");
    let (proxy, p) = proxied(Broker::Kafka, "concurrent");
    p.init_transactions().unwrap();
    for round in 0..3 {
        p.begin_transaction().unwrap();
        send_all(&p, &t, &strings(&format!("cc{round}"), 20));
        let ends_before = proxy.requests().iter().filter(|r| r.0 == END_TXN).count();
        let results: Vec<kafka_producer::Result<()>> = std::thread::scope(|s| {
            let a = s.spawn(|| p.commit_transaction());
            let b = s.spawn(|| p.commit_transaction());
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        for r in &results {
            // The second caller may come after the first one finished:
            // then there is no transaction left to commit (Java's
            // IllegalStateException), never a second EndTxn.
            match r {
                Ok(()) => {}
                Err(Error::InvalidOperation(m)) => assert!(m.contains("transaction"), "{m}"),
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        assert!(
            results.iter().any(|r| r.is_ok()),
            "round {round}: {results:?}"
        );
        let ends = proxy.requests().iter().filter(|r| r.0 == END_TXN).count() - ends_before;
        assert_eq!(ends, 1, "round {round}: one EndTxn");
    }
    assert_refused(p.commit_transaction(), "");
    p.close().unwrap();
    let mut want: Vec<String> = (0..3)
        .flat_map(|r| strings(&format!("cc{r}"), 20))
        .collect();
    want.sort();
    assert_eq!(
        values(&java::java_consume(bs, &t, want.len(), WAIT, true)),
        want
    );
}

/// `close_timeout` while the transaction thread waits for a slow
/// coordinator (its broker answers EndTxn after 3 s). With less time than
/// that, close returns (it gives up the transaction thread, which holds no
/// batch: every record was delivered), the commit still gets an outcome
/// (the EndTxn's, or `Error::Closed`), and nothing hangs. With more, close
/// waits for the EndTxn under way, as Java's sender runs its transactional
/// requests until the close times out: the EndTxn is answered, and the
/// commit committed, when close returns (the committing thread, woken by
/// that same answer, returns within moments).
#[test]
fn close_during_a_coordinator_request_returns_and_the_commit_gets_an_outcome() {
    for (name, close_in) in [("short", 500), ("long", 20_000)] {
        let t = topic(&format!("txclose{name}"));
        let id = txn_id(&format!("close-coord-{name}"));
        let (mut mock, p) = on_mock(3, &t, &id, |c| c);
        mock.command(&format!("coordinator transaction {id} 1"));
        p.init_transactions().unwrap();
        p.begin_transaction().unwrap();
        for h in send_all(&p, &t, &strings("cl", 4)) {
            h.get_timeout(WAIT).unwrap();
        }
        mock.command("rtt 1 3000");
        std::thread::scope(|s| {
            let commit = s.spawn(|| (p.commit_transaction(), Instant::now()));
            // The commit's flush is instant (all delivered); EndTxn is then
            // in flight on the transaction thread.
            std::thread::sleep(Duration::from_millis(300));
            let t0 = Instant::now();
            let closed = p.close_timeout(Duration::from_millis(close_in));
            let took = t0.elapsed();
            let closed_at = Instant::now();
            eprintln!("close_timeout({close_in} ms) returned {closed:?} after {took:?}");
            let (r, committed_at) = commit.join().unwrap();
            eprintln!("the commit returned {r:?}");
            if close_in > 3_000 {
                // Close waits for the EndTxn under way: its answer comes
                // about 2.7 s after close began. The committing thread
                // returns on that same answer, so it may be scheduled a
                // moment after close returns (seen under load), but not
                // long after.
                assert!(
                    took >= Duration::from_millis(2_000),
                    "close returned after {took:?}, before the EndTxn under way"
                );
                let lag = committed_at.saturating_duration_since(closed_at);
                assert!(
                    lag < Duration::from_secs(1),
                    "the commit returned {lag:?} after close"
                );
                assert!(r.is_ok(), "the commit: {r:?}");
            } else {
                assert!(
                    matches!(r, Err(Error::Closed) | Ok(())),
                    "the commit: {r:?}"
                );
            }
        });
        mock.command("rtt 1 0");
    }
}
