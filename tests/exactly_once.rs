//! Exactly-once delivery, seen from outside: the producer talks to the
//! brokers only through a fault proxy (`tests/common/kproxy.rs`) that
//! swallows every 7th Produce response (the broker has appended the batch)
//! and cuts that connection, so the producer retries batches the log
//! already holds. An independent consumer (librdkafka, and Java's on Kafka)
//! then reads the topic straight from the brokers:
//! - with `enable.idempotence=true` every record is there exactly once,
//!   each key's records are in send order, and each record's
//!   acknowledgement names the offset it was read back from (or, where the
//!   broker answered the retry DUPLICATE_SEQUENCE_NUMBER, as Tansu does, no
//!   offset at all);
//! - the control, `enable.idempotence=false`, shows the fault is real: the
//!   retried batches are written twice;
//! - the default settings (no `enable_idempotence` call) will behave as the
//!   first once idempotence is the default, as in Java.
//!
//! On Kafka (3 nodes) and Tansu (which enforces idempotent sequences). On
//! librdkafka's mock cluster, which does not deduplicate the batches of a
//! non-transactional producer, the idempotent case checks the sequences on
//! the wire instead (see [`idempotent_on_mock`]). The proxy also checks the
//! wire on Kafka and Tansu: each retry is the same batch, with the same
//! sequence, and each partition's sequences run on without a gap.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::kproxy::{self, roundtrip, KProxy, SentBatch};
use common::{consume, consume_at_least, java, topic, Broker, Consumed};
use kafka_producer::{Acks, Producer, ProducerRecord, StringSerializer};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;

/// Records per run, spread round-robin over `KEYS` keys.
const N: usize = 20_000;
const KEYS: usize = 50;
/// The proxy swallows every `EVERY`-th Produce response ...
const EVERY: usize = 7;
/// ... until this many records have been sent; the rest flow freely.
const FAULTY: usize = N * 3 / 4;
/// Fewer swallowed responses than this means the fault did not really
/// fire, and the test says so.
const MIN_SWALLOWED: usize = 5;

/// What one run through the proxy did.
struct Run {
    broker: Broker,
    topic: String,
    /// Produce responses the proxy saw, and how many of them it swallowed.
    produce_responses: usize,
    swallowed: usize,
    /// Every batch the producer sent, as the proxy saw it on the wire.
    sent: Vec<SentBatch>,
    /// Per-partition error codes in the Produce responses.
    produce_errors: BTreeMap<i16, usize>,
    /// Per-record outcome of `send`'s future (`Err` as text).
    results: Vec<Result<(i32, i64), String>>,
    elapsed: Duration,
}

fn key(i: usize) -> String {
    format!("k{:02}", i % KEYS)
}

/// Record `i` is the `i / KEYS`-th of its key.
fn value(i: usize) -> String {
    format!("{}:{}", key(i), i / KEYS)
}

/// (key index, per-key sequence) of a record read back.
fn parse(c: &Consumed) -> (usize, usize) {
    let k = String::from_utf8(c.key.clone().expect("a key")).unwrap();
    let v = String::from_utf8(c.value.clone().expect("a value")).unwrap();
    let (vk, seq) = v.split_once(':').expect("key:seq");
    assert_eq!(vk, k, "a value under the wrong key");
    (k[1..].parse().unwrap(), seq.parse().unwrap())
}

/// Sends `N` keyed records through a fault proxy in front of `broker`,
/// with `enable.idempotence` as given (`None`: not set at all), acks=all,
/// linger 2 ms, retries and in-flight limits at their defaults. Every
/// `EVERY`-th Produce response is swallowed until `FAULTY` records have
/// been sent.
fn run(broker: Broker, idempotence: Option<bool>) -> Run {
    let t0 = Instant::now();
    let proxy = KProxy::start(broker.bootstrap());
    let topic = topic("eos");
    let mut config = broker
        .config()
        .bootstrap_servers(proxy.bootstrap.as_str())
        .acks(Acks::All)
        .linger(Duration::from_millis(2));
    if let Some(on) = idempotence {
        config = config.enable_idempotence(on);
    }
    let producer = Producer::new(config, StringSerializer, StringSerializer).unwrap();
    proxy.swallow_every(EVERY);
    let mut handles = Vec::with_capacity(N);
    for i in 0..N {
        if i == FAULTY {
            proxy.heal();
        }
        let record = ProducerRecord::with_key(topic.as_str(), key(i), value(i));
        handles.push(producer.send(record).unwrap());
        // short pauses, so that many small requests are in flight
        if i % 4 == 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    proxy.heal();
    let deadline = Instant::now() + Duration::from_secs(60);
    let results: Vec<Result<(i32, i64), String>> = handles
        .into_iter()
        .map(|h| {
            let left = deadline.saturating_duration_since(Instant::now());
            h.get_timeout(left)
                .map(|m| (m.partition(), m.offset()))
                .map_err(|e| e.to_string())
        })
        .collect();
    producer.close_timeout(Duration::from_secs(10)).unwrap();
    let errors = proxy.errors();
    assert!(
        errors.is_empty(),
        "{broker:?}: the proxy failed: {errors:?}"
    );
    assert!(
        proxy.rewritten() > 0,
        "{broker:?}: no Metadata response went through the proxy"
    );
    let run = Run {
        broker,
        topic,
        produce_responses: proxy.produce_responses(),
        swallowed: proxy.swallowed(),
        sent: proxy.sent_batches(),
        produce_errors: proxy.produce_errors(),
        results,
        elapsed: t0.elapsed(),
    };
    assert!(
        run.swallowed >= MIN_SWALLOWED,
        "{broker:?}: only {} of {} Produce responses swallowed: the fault did not fire",
        run.swallowed,
        run.produce_responses
    );
    run
}

impl Run {
    /// Asserts that every `send` future completed Ok.
    fn assert_all_ok(&self) {
        let failed: Vec<(usize, &String)> = self
            .results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e)))
            .collect();
        assert!(
            failed.is_empty(),
            "{:?}: {} of {N} records failed, e.g. {:?}",
            self.broker,
            failed.len(),
            &failed[..failed.len().min(5)]
        );
    }

    /// Checks each acknowledgement (partition, offset) against where the
    /// record was read back from: none may name another place. Returns how
    /// many name its partition but no offset (-1: the broker answered the
    /// retry DUPLICATE_SEQUENCE_NUMBER, which carries no offset; Java's
    /// producer reports -1 then too).
    fn assert_acks_match(&self, read_back: &[Consumed]) -> usize {
        let at: HashMap<(usize, usize), (i32, i64)> = read_back
            .iter()
            .map(|c| (parse(c), (c.partition, c.offset)))
            .collect();
        let mut without_offset = 0;
        for (i, r) in self.results.iter().enumerate() {
            let ack = *r.as_ref().expect("assert_all_ok first");
            let read = at[&(i % KEYS, i / KEYS)];
            if ack.0 == read.0 && ack.1 == -1 {
                without_offset += 1;
            } else {
                assert_eq!(
                    ack,
                    read,
                    "{:?}: record {i} ({}) acknowledged at (partition, offset) {ack:?}, read \
                     back at {read:?}",
                    self.broker,
                    value(i)
                );
            }
        }
        without_offset
    }

    /// Batches whose request's answer was swallowed and that were then
    /// sent again (same partition, same first record).
    fn resent(&self) -> usize {
        self.sent
            .iter()
            .enumerate()
            .filter(|(i, b)| {
                b.swallowed
                    && self.sent[i + 1..].iter().any(|later| {
                        later.partition == b.partition
                            && later.crc == b.crc
                            && later.records == b.records
                    })
            })
            .count()
    }

    /// From the wire (see [`kproxy::check_sequences`]): one producer id,
    /// contiguous sequences, byte-identical retries, `N` records in the
    /// distinct batches, and as many per partition as were read back from
    /// it (`read_back`, if given). Returns the number of retries seen.
    fn assert_sequences(&self, read_back: Option<&[Consumed]>) -> usize {
        let b = self.broker;
        let wire = kproxy::check_sequences(&self.sent).unwrap_or_else(|e| panic!("{b:?}: {e}"));
        assert!(
            wire.producer_id >= 0,
            "{b:?}: batches without a producer id"
        );
        assert_eq!(
            wire.per_partition.values().sum::<usize>(),
            N,
            "{b:?}: records in distinct batches"
        );
        if let Some(read_back) = read_back {
            let mut per_read: BTreeMap<i32, usize> = BTreeMap::new();
            for c in read_back {
                *per_read.entry(c.partition).or_default() += 1;
            }
            assert_eq!(
                wire.per_partition, per_read,
                "{b:?}: records per partition, in distinct batches vs read back"
            );
        }
        wire.retries
    }

    /// One line on the run; `duplicates`: how many were read back, if
    /// known yet.
    fn summary(&self, what: &str, duplicates: Option<usize>) -> String {
        let duplicates = match duplicates {
            Some(d) => format!("{d} duplicates read back"),
            None => "not read back yet".to_owned(),
        };
        format!(
            "{what} on {:?}: {N} records in {} batches sent, {} of {} Produce responses \
             swallowed, {} swallowed batches sent again; partition error codes {:?}; \
             {duplicates}; {:.1} s",
            self.broker,
            self.sent.len(),
            self.swallowed,
            self.produce_responses,
            self.resent(),
            self.produce_errors,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Per key, the sequences read back in log order (partition, offset);
/// asserts that each key stayed on one partition.
fn by_key(records: &[Consumed]) -> Vec<Vec<usize>> {
    let mut sorted: Vec<&Consumed> = records.iter().collect();
    sorted.sort_by_key(|c| (c.partition, c.offset));
    let mut seqs = vec![Vec::new(); KEYS];
    let mut partition_of: HashMap<usize, i32> = HashMap::new();
    for c in sorted {
        let (k, seq) = parse(c);
        let p = *partition_of.entry(k).or_insert(c.partition);
        assert_eq!(
            p, c.partition,
            "key {k} on partitions {p} and {}",
            c.partition
        );
        seqs[k].push(seq);
    }
    seqs
}

/// Asserts that `records` hold every record exactly once, each key's in
/// send order.
fn assert_exactly_once_in_order(what: &str, records: &[Consumed]) {
    assert_eq!(records.len(), N, "{what}: records read back");
    for (k, seqs) in by_key(records).iter().enumerate() {
        let want: Vec<usize> = (0..N / KEYS).collect();
        if *seqs != want {
            let first_bad = seqs
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(seqs.len().min(want.len()));
            panic!(
                "{what}: key {k}: {} records read, want {}; first difference at {first_bad}: \
                 {:?}",
                seqs.len(),
                want.len(),
                &seqs[first_bad.saturating_sub(2)..(first_bad + 3).min(seqs.len())]
            );
        }
    }
}

/// The exactly-once case: every future Ok, every record read back once by
/// librdkafka (and by Java's consumer on Kafka), in per-key send order.
fn exactly_once(broker: Broker, idempotence: Option<bool>) {
    let run = run(broker, idempotence);
    run.assert_all_ok();
    eprintln!(
        "{}",
        run.summary(&format!("idempotence {idempotence:?}"), None)
    );
    assert!(
        run.resent() > 0,
        "{broker:?}: no swallowed batch was sent again"
    );
    let got = consume(broker.bootstrap(), &run.topic, N, Duration::from_secs(60));
    assert_exactly_once_in_order(&format!("{broker:?} (librdkafka)"), &got);
    let retries = run.assert_sequences(Some(&got));
    eprintln!("{broker:?}: {retries} batch retries on the wire, sequences contiguous");
    let without_offset = run.assert_acks_match(&got);
    eprintln!(
        "{broker:?}: every acknowledgement names the record's place, {without_offset} without \
         an offset (answered DUPLICATE_SEQUENCE_NUMBER)"
    );
    if broker == Broker::Kafka {
        // Kafka answers a duplicate with the first copy's offset
        assert_eq!(
            without_offset, 0,
            "{broker:?}: acknowledgements without an offset"
        );
    }
    if broker == Broker::Kafka {
        let got = java::java_consume(
            broker.bootstrap(),
            &run.topic,
            N,
            Duration::from_secs(60),
            false,
        );
        assert_exactly_once_in_order(&format!("{broker:?} (Java consumer)"), &got);
    }
    eprintln!("{broker:?}: every record read back exactly once, per key in send order");
}

/// The idempotent case on librdkafka's mock, where the wire is the oracle.
/// The mock checks sequences only for transactional producers
/// (`rd_kafka_mock_validate_records` returns at once without a
/// transactional id, in the 2.0.2 the tests run and still on librdkafka's
/// master), so it appends a retried batch again: the log cannot show
/// exactly-once. What the producer did can still be checked: every future
/// Ok, every retry byte-identical with contiguous sequences (see
/// [`Run::assert_sequences`]), every record read back at least once and
/// each key's records first appearing in send order.
fn idempotent_on_mock(idempotence: Option<bool>) {
    let broker = Broker::Mock;
    let run = run(broker, idempotence);
    run.assert_all_ok();
    assert!(
        run.resent() > 0,
        "{broker:?}: no swallowed batch was sent again"
    );
    let retries = run.assert_sequences(None);
    let got = consume_at_least(broker.bootstrap(), &run.topic, N, Duration::from_secs(60));
    let mut duplicates = 0;
    for (k, seqs) in by_key(&got).iter().enumerate() {
        let mut next = 0;
        for &s in seqs {
            if s == next {
                next += 1;
            } else {
                assert!(s < next, "{broker:?}: key {k}: {s} before {next}");
                duplicates += 1;
            }
        }
        assert_eq!(next, N / KEYS, "{broker:?}: key {k}: records missing");
    }
    eprintln!(
        "{}",
        run.summary(&format!("idempotence {idempotence:?}"), Some(duplicates))
    );
    eprintln!("{broker:?}: {retries} batch retries on the wire, sequences contiguous");
}

/// The control: without idempotence the retried batches are written again.
/// Nothing is lost, and there are duplicates. Returns how many.
fn control(broker: Broker) -> usize {
    let run = run(broker, Some(false));
    run.assert_all_ok();
    assert!(
        run.sent.iter().all(|b| b.producer_id == -1),
        "{broker:?}: a batch with a producer id without idempotence"
    );
    let got = consume_at_least(broker.bootstrap(), &run.topic, N, Duration::from_secs(60));
    let per_key = by_key(&got);
    let mut distinct = 0;
    for (k, seqs) in per_key.iter().enumerate() {
        let mut s = seqs.clone();
        s.sort_unstable();
        s.dedup();
        let want: Vec<usize> = (0..N / KEYS).collect();
        assert_eq!(s, want, "{broker:?}: key {k}: records missing");
        distinct += s.len();
    }
    let duplicates = got.len() - distinct;
    // not asserted: with 5 requests in flight and no sequences, a retried
    // batch may land after the next one
    let reordered: usize = per_key
        .iter()
        .map(|seqs| {
            let mut next = 0;
            let mut late = 0;
            for &s in seqs {
                if s == next {
                    next += 1;
                } else if s > next {
                    late += 1;
                    next = s + 1;
                }
            }
            late
        })
        .sum();
    eprintln!(
        "{}; {reordered} records first seen out of per-key send order",
        run.summary("idempotence Some(false)", Some(duplicates))
    );
    assert!(
        duplicates > 0,
        "{broker:?}: {} Produce responses swallowed, yet no record was written twice without \
         idempotence: the fault did not make the producer retry appended batches",
        run.swallowed
    );
    duplicates
}

#[test]
fn idempotent_producer_writes_each_record_once_through_lost_answers_on_kafka() {
    exactly_once(Broker::Kafka, Some(true));
}

#[test]
fn idempotent_producer_writes_each_record_once_through_lost_answers_on_tansu() {
    exactly_once(Broker::Tansu, Some(true));
}

#[test]
fn idempotent_producer_resends_the_same_sequences_through_lost_answers_on_mock() {
    idempotent_on_mock(Some(true));
}

#[test]
fn without_idempotence_lost_answers_write_duplicates_on_kafka() {
    control(Broker::Kafka);
}

#[test]
fn without_idempotence_lost_answers_write_duplicates_on_tansu() {
    control(Broker::Tansu);
}

#[test]
fn without_idempotence_lost_answers_write_duplicates_on_mock() {
    control(Broker::Mock);
}

/// Idempotence is the default: no setting needed.
#[test]
fn default_settings_write_each_record_once_through_lost_answers_on_kafka() {
    exactly_once(Broker::Kafka, None);
}

/// Idempotence is the default: no setting needed.
#[test]
fn default_settings_write_each_record_once_through_lost_answers_on_tansu() {
    exactly_once(Broker::Tansu, None);
}

/// Idempotence is the default: no setting needed.
#[test]
fn default_settings_resend_the_same_sequences_through_lost_answers_on_mock() {
    idempotent_on_mock(None);
}

/// The proxy itself: a client that asks any listener for the cluster's
/// brokers (Metadata, old and flexible versions) or a coordinator
/// (FindCoordinator, both layouts) is given only the proxy's listeners, one
/// per broker, each of which leads to the broker it stands for.
#[test]
fn the_proxy_names_only_its_own_listeners() {
    use kafka_protocol::messages::{
        FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse,
    };
    for broker in [Broker::Kafka, Broker::Tansu, Broker::Mock] {
        let proxy = KProxy::start(broker.bootstrap());
        // each broker's range: Kafka 4 dropped v0-3, the mock has v0-2
        let versions: &[i16] = match broker {
            Broker::Kafka => &[4, 9, 12],
            Broker::Tansu => &[1, 9, 12],
            Broker::Mock => &[0, 2],
        };
        for &version in versions {
            let mut ids = Vec::new();
            for addr in proxy.bootstrap.split(',') {
                let m: MetadataResponse = roundtrip(
                    addr,
                    ApiKey::Metadata,
                    version,
                    &MetadataRequest::default().with_topics(Some(vec![])),
                );
                let listeners: Vec<String> = proxy.brokers().into_iter().map(|b| b.1).collect();
                assert!(!m.brokers.is_empty(), "{broker:?} v{version}: no broker");
                for b in &m.brokers {
                    let named = format!("{}:{}", b.host.as_str(), b.port);
                    assert!(
                        listeners.contains(&named),
                        "{broker:?} Metadata v{version} names {named}, not one of the proxy's \
                         listeners {listeners:?}"
                    );
                    // each listener leads to the broker it stands for
                    let again: MetadataResponse = roundtrip(
                        &named,
                        ApiKey::Metadata,
                        version,
                        &MetadataRequest::default().with_topics(Some(vec![])),
                    );
                    assert_eq!(again.brokers.len(), m.brokers.len());
                    ids.push(b.node_id);
                }
            }
            ids.sort();
            ids.dedup();
            let want = if broker == Broker::Tansu { 1 } else { 3 };
            assert_eq!(ids.len(), want, "{broker:?}: brokers named");
            assert_eq!(
                proxy.brokers().len(),
                proxy.bootstrap.split(',').count().max(want),
                "{broker:?}: one listener per broker: {:?}",
                proxy.brokers()
            );
        }
        if broker == Broker::Kafka {
            let addr = proxy.bootstrap.split(',').next().unwrap().to_owned();
            let group = StrBytes::from_static_str("kproxy-test-group");
            let deadline = Instant::now() + Duration::from_secs(30);
            // v1: one coordinator in the top-level fields (the group
            // coordinator may need a moment to exist)
            let v1 = loop {
                let r: FindCoordinatorResponse = roundtrip(
                    &addr,
                    ApiKey::FindCoordinator,
                    1,
                    &FindCoordinatorRequest::default().with_key(group.clone()),
                );
                if r.error_code == 0 || Instant::now() > deadline {
                    break r;
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            assert_eq!(v1.error_code, 0, "FindCoordinator v1: {v1:?}");
            let listeners: Vec<String> = proxy.brokers().into_iter().map(|b| b.1).collect();
            let named = format!("{}:{}", v1.host.as_str(), v1.port);
            assert!(
                listeners.contains(&named),
                "FindCoordinator v1 names {named}"
            );
            // v4: a list of coordinators
            let v4: FindCoordinatorResponse = roundtrip(
                &addr,
                ApiKey::FindCoordinator,
                4,
                &FindCoordinatorRequest::default().with_coordinator_keys(vec![group.clone()]),
            );
            assert_eq!(v4.coordinators.len(), 1, "{v4:?}");
            let c = &v4.coordinators[0];
            assert_eq!(c.error_code, 0, "FindCoordinator v4: {c:?}");
            let named4 = format!("{}:{}", c.host.as_str(), c.port);
            assert_eq!(named4, named, "FindCoordinator v1 and v4 disagree");
        }
        let errors = proxy.errors();
        assert!(errors.is_empty(), "{broker:?}: {errors:?}");
        assert!(proxy.rewritten() > 0);
    }
}
