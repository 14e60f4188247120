//! `kafka_producer::mock`: the broker model and `MockCluster`, against our
//! producer (round trip, dropped responses, injected errors, leader moves,
//! a broker lost and back, held requests, transactions, fencing), against
//! the model's own checks on hand-built requests (corrupt batches,
//! sequence gaps, transaction rules), and against two clients that are
//! not ours: librdkafka (kcheck.py) and Java (JavaOracle) producing into
//! it (read back through the model) and consuming what our producer
//! wrote (at both isolation levels, compared with the model's view).
//!
//! The foreign-client tests need `KP_PYTHON`/`KP_KCHECK`, `KP_JAVA` and
//! `KP_KAFKA_CLASSPATH` (`scripts/brokers.sh env`); the others need nothing
//! but 127.0.0.1.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_producer::mock::{
    Action, Api, ControlType, DuplicateAnswer, Fault, MockCluster, MockConfig, MockRecord, Model,
    Visibility,
};
use kafka_producer::{
    ConsumerGroupMetadata, Error, ErrorCode, Header, Producer, ProducerConfig, ProducerRecord,
    RecordFuture, RecordMetadata, StringSerializer,
};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProducerId, TransactionalId,
};
use kafka_protocol::messages::{
    ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

type P = Producer<str, str>;

fn config(cluster: &MockCluster) -> ProducerConfig {
    ProducerConfig::new()
        .bootstrap_servers(cluster.bootstrap())
        .retry_backoff(Duration::from_millis(10))
        .retry_backoff_max(Duration::from_millis(100))
        .max_block(Duration::from_secs(20))
        .delivery_timeout(Duration::from_secs(30))
        .request_timeout(Duration::from_secs(10))
}

fn producer(config: ProducerConfig) -> P {
    Producer::new(config, StringSerializer, StringSerializer).expect("producer")
}

/// Sends keyed records `k{i}` -> `v{i}` for each i in `range` to `topic`.
fn send_range(p: &P, topic: &str, range: std::ops::Range<usize>) -> Vec<RecordFuture> {
    range
        .map(|i| {
            let (k, v) = (format!("k{i}"), format!("v{i}"));
            p.send(ProducerRecord::with_key(topic, k.as_str(), v.as_str()))
                .expect("send")
        })
        .collect()
}

/// Waits for every future; panics on a failed delivery.
fn wait_all(futures: Vec<RecordFuture>) -> Vec<RecordMetadata> {
    futures
        .into_iter()
        .map(|f| f.get().expect("delivered"))
        .collect()
}

/// Sends `k{i}` -> `v{i}` for i < n to `topic`, waits for all.
fn send_all(p: &P, topic: &str, n: usize) -> Vec<RecordMetadata> {
    wait_all(send_range(p, topic, 0..n))
}

/// [`assert_exactly_once`] and [`assert_send_order`] for an idempotent producer.
fn assert_delivered_once_in_order(cluster: &MockCluster, topic: &str, metas: &[RecordMetadata]) {
    assert_exactly_once(cluster, topic, metas);
    assert_send_order(cluster, topic, true);
}

/// Every data record of `topic`, by partition.
fn all_records(cluster: &MockCluster, topic: &str) -> BTreeMap<i32, Vec<MockRecord>> {
    let n = cluster.partition_count(topic).expect("topic exists");
    (0..n)
        .map(|p| (p, cluster.records(topic, p).expect("partition")))
        .collect()
}

/// Asserts that the log holds each `k{i}`/`v{i}` (i < n) exactly once, at
/// the partition and offset its send reported, and returns the values
/// per partition in log order.
fn assert_exactly_once(cluster: &MockCluster, topic: &str, metas: &[RecordMetadata]) {
    let logs = all_records(cluster, topic);
    let total: usize = logs.values().map(Vec::len).sum();
    assert_eq!(
        total,
        metas.len(),
        "the log has {total} records, {} were sent",
        metas.len()
    );
    let mut seen = BTreeSet::new();
    for (i, m) in metas.iter().enumerate() {
        let log = &logs[&m.partition()];
        let r = log
            .iter()
            .find(|r| r.offset == m.offset())
            .unwrap_or_else(|| panic!("no record at {}-{}", m.partition(), m.offset()));
        assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(r.value.as_deref(), Some(format!("v{i}").as_bytes()));
        assert!(seen.insert(r.value.clone()), "record {i} twice");
    }
}

/// Per partition, the records' values follow send order, and an
/// idempotent producer's sequences run 0, 1, 2, ... without gaps.
fn assert_send_order(cluster: &MockCluster, topic: &str, idempotent: bool) {
    for (p, log) in all_records(cluster, topic) {
        let idx: Vec<usize> = log
            .iter()
            .map(|r| {
                let v = String::from_utf8(r.value.clone().unwrap()).unwrap();
                v[1..].parse().unwrap()
            })
            .collect();
        let mut sorted = idx.clone();
        sorted.sort_unstable();
        assert_eq!(idx, sorted, "partition {p} is out of send order");
    }
    if idempotent {
        assert_sequences(cluster, topic);
    }
}

#[test]
fn round_trip_keys_values_headers_offsets() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "round-trip";
    let p = producer(config(&cluster).linger(Duration::from_millis(5)));
    let futures: Vec<_> = (0..200)
        .map(|i| {
            let (k, v) = (format!("k{i}"), format!("v{i}"));
            let rec = ProducerRecord::with_key(topic, k.as_str(), v.as_str())
                .header(Header::new("h", format!("x{i}").into_bytes()))
                .header(Header::null("n"));
            p.send(rec).unwrap()
        })
        .collect();
    let metas: Vec<_> = futures.into_iter().map(|f| f.get().unwrap()).collect();
    p.close().unwrap();
    // The topic was created by the producer's Metadata request, with the
    // default 4 partitions, and keys spread over them.
    assert_eq!(cluster.partition_count(topic), Some(4));
    assert!(
        metas
            .iter()
            .map(|m| m.partition())
            .collect::<BTreeSet<_>>()
            .len()
            > 1
    );
    assert_exactly_once(&cluster, topic, &metas);
    assert_send_order(&cluster, topic, true);
    for (p, log) in all_records(&cluster, topic) {
        for r in &log {
            let i = &String::from_utf8(r.value.clone().unwrap()).unwrap()[1..];
            assert_eq!(
                r.headers,
                vec![
                    ("h".to_string(), Some(format!("x{i}").into_bytes())),
                    ("n".to_string(), None)
                ],
                "partition {p} offset {}",
                r.offset
            );
            assert_eq!(r.visibility, Visibility::Plain);
            assert!(!r.transactional);
        }
        // Offsets are dense from 0.
        let offsets: Vec<i64> = log.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..log.len() as i64).collect::<Vec<_>>());
    }
    // Each key sits where Java's partitioner puts it.
    for (i, m) in metas.iter().enumerate() {
        let key = format!("k{i}");
        assert_eq!(
            m.partition(),
            kafka_producer::murmur2_partition(key.as_bytes(), 4)
        );
    }
}

fn dropped_response(answer: DuplicateAnswer) {
    let cluster = MockCluster::start(MockConfig {
        duplicate_answer: answer,
        ..MockConfig::default()
    })
    .unwrap();
    let topic = "dropped";
    cluster.create_topic(topic, 2).unwrap();
    // The first three Produce requests are appended, but their answers are
    // lost with the connection: the producer must resend those batches.
    cluster
        .inject(Fault::drop_response(Api::Produce).times(3))
        .unwrap();
    let p = producer(config(&cluster));
    let metas = send_all(&p, topic, 50);
    p.close().unwrap();
    let stats = cluster.stats();
    assert_eq!(stats.faults_fired, 3);
    assert!(
        stats.duplicates >= 1,
        "no resend reached the model as a duplicate: {stats:?}"
    );
    if answer == DuplicateAnswer::DuplicateSequenceNumber {
        assert_eq!(
            stats
                .errors
                .get(&(Api::Produce, ErrorCode::DUPLICATE_SEQUENCE_NUMBER.0)),
            Some(&stats.duplicates)
        );
    }
    // No duplicates in the log, every record where its send said.
    if answer == DuplicateAnswer::OriginalOffset {
        assert_exactly_once(&cluster, topic, &metas);
    } else {
        // DUPLICATE_SEQUENCE_NUMBER carries no offset (the send reports -1).
        let total: usize = all_records(&cluster, topic).values().map(Vec::len).sum();
        assert_eq!(total, 50);
    }
    assert_send_order(&cluster, topic, true);
}

#[test]
fn dropped_responses_resent_without_duplicates() {
    dropped_response(DuplicateAnswer::OriginalOffset);
}

#[test]
fn duplicate_sequence_number_is_a_success() {
    dropped_response(DuplicateAnswer::DuplicateSequenceNumber);
}

#[test]
fn injected_errors_are_retried() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "retried";
    cluster.create_topic(topic, 1).unwrap();
    let leader = cluster.leader(topic, 0).unwrap();
    cluster
        .inject(Fault::error(Api::Produce, ErrorCode::NOT_LEADER_OR_FOLLOWER).times(2))
        .unwrap();
    cluster
        .inject(Fault::error(Api::Produce, ErrorCode::NOT_ENOUGH_REPLICAS).on_broker(leader))
        .unwrap();
    let p = producer(config(&cluster));
    let metas = send_all(&p, topic, 10);
    p.close().unwrap();
    let stats = cluster.stats();
    assert_eq!(stats.faults_fired, 3);
    assert!(stats.requests[&Api::Produce] >= 4, "{stats:?}");
    assert_delivered_once_in_order(&cluster, topic, &metas);
}

#[test]
fn a_non_retriable_error_fails_the_batch() {
    let cluster = MockCluster::new(1).unwrap();
    let topic = "refused";
    cluster.create_topic(topic, 1).unwrap();
    cluster
        .inject(Fault::error(
            Api::Produce,
            ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        ))
        .unwrap();
    let p = producer(config(&cluster));
    let err = p
        .send(ProducerRecord::with_key(topic, "a", "b"))
        .unwrap()
        .get()
        .unwrap_err();
    assert!(
        format!("{err}").contains("TOPIC_AUTHORIZATION_FAILED"),
        "{err}"
    );
    p.close().unwrap();
    assert!(cluster.records(topic, 0).unwrap().is_empty());
}

#[test]
fn leader_move_reroutes() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "moved";
    cluster.create_topic(topic, 1).unwrap();
    let p = producer(config(&cluster));
    let first = send_all(&p, topic, 5);
    let old = cluster.leader(topic, 0).unwrap();
    let new = cluster
        .broker_ids()
        .into_iter()
        .find(|b| *b != old)
        .unwrap();
    cluster.move_leader(topic, 0, new).unwrap();
    let futures = send_range(&p, topic, 5..10);
    let mut metas = first;
    metas.extend(wait_all(futures));
    p.close().unwrap();
    // The old leader refused the first request after the move.
    let stats = cluster.stats();
    assert!(
        stats
            .errors
            .get(&(Api::Produce, ErrorCode::NOT_LEADER_OR_FOLLOWER.0))
            >= Some(&1),
        "{stats:?}"
    );
    assert_delivered_once_in_order(&cluster, topic, &metas);
}

#[test]
fn broker_down_then_up() {
    let cluster = MockCluster::new(1).unwrap();
    let topic = "down-up";
    cluster.create_topic(topic, 1).unwrap();
    let p = producer(config(&cluster));
    let mut metas = send_all(&p, topic, 3);
    cluster.broker_down(1).unwrap();
    assert_eq!(cluster.leader(topic, 0).unwrap(), -1);
    // Sent while the only broker is down: delivered once it is back.
    let futures = send_range(&p, topic, 3..6);
    std::thread::sleep(Duration::from_millis(300));
    assert!(cluster.records(topic, 0).unwrap().len() == 3);
    cluster.broker_up(1).unwrap();
    assert_eq!(cluster.leader(topic, 0).unwrap(), 1);
    metas.extend(wait_all(futures));
    p.close().unwrap();
    assert_delivered_once_in_order(&cluster, topic, &metas);
}

#[test]
fn a_lost_leader_fails_over_to_a_replica() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "failover";
    cluster.create_topic(topic, 3).unwrap();
    let p = producer(config(&cluster));
    let mut metas = send_all(&p, topic, 30);
    cluster.broker_down(2).unwrap();
    for part in 0..3 {
        assert_ne!(cluster.leader(topic, part).unwrap(), 2);
    }
    let futures = send_range(&p, topic, 30..60);
    metas.extend(wait_all(futures));
    p.close().unwrap();
    assert_delivered_once_in_order(&cluster, topic, &metas);
}

/// Waits (at most 20 s) until the cluster holds a request.
fn await_held(cluster: &MockCluster) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.held() == 0 {
        assert!(
            Instant::now() < deadline,
            "the Produce request never arrived"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn held_request_answers_when_released() {
    let cluster = MockCluster::new(1).unwrap();
    let topic = "held";
    cluster.create_topic(topic, 1).unwrap();
    let p = producer(config(&cluster));
    send_all(&p, topic, 1);
    cluster.inject(Fault::hold(Api::Produce)).unwrap();
    let f = p.send(ProducerRecord::with_key(topic, "k1", "v1")).unwrap();
    await_held(&cluster);
    // Held: not appended, so not acknowledged.
    assert_eq!(cluster.records(topic, 0).unwrap().len(), 1);
    assert!(!f.is_done());
    // The held request is in flight (the I/O thread publishes the count as
    // it goes to sleep, which it does once the request is written).
    let in_flight = || {
        p.metrics()
            .value("producer-metrics", "requests-in-flight")
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while in_flight() != 1.0 {
        assert!(
            Instant::now() < deadline,
            "requests-in-flight {}",
            in_flight()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    cluster.release();
    let m = f.get().unwrap();
    assert_eq!(m.offset(), 1);
    p.close().unwrap();
    assert_eq!(cluster.held(), 0);
    assert_eq!(in_flight(), 0.0);
}

#[test]
fn latency_and_cut_connections_are_survived() {
    let cluster = MockCluster::new(2).unwrap();
    let topic = "slow";
    cluster.create_topic(topic, 2).unwrap();
    cluster.set_latency(1, Duration::from_millis(30)).unwrap();
    cluster.inject(Fault::cut(Api::Produce).times(2)).unwrap();
    let p = producer(config(&cluster));
    let mut metas = send_all(&p, topic, 20);
    cluster.cut_connections(1);
    cluster.cut_connections(2);
    let futures = send_range(&p, topic, 20..40);
    metas.extend(wait_all(futures));
    p.close().unwrap();
    assert_eq!(cluster.stats().faults_fired, 2);
    assert_delivered_once_in_order(&cluster, topic, &metas);
}

fn txn_producer(cluster: &MockCluster, id: &str) -> P {
    producer(config(cluster).transactional_id(id))
}

#[test]
fn transaction_commit_and_abort() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "txn";
    cluster.create_topic(topic, 2).unwrap();
    let p = txn_producer(&cluster, "txn-commit-abort");
    p.init_transactions().unwrap();

    p.begin_transaction().unwrap();
    for i in 0..6 {
        let (k, v) = (format!("k{i}"), format!("committed{i}"));
        p.send(ProducerRecord::with_key(topic, k.as_str(), v.as_str()))
            .unwrap();
    }
    let group = ConsumerGroupMetadata::new("txn-group");
    p.send_offsets_to_transaction([("source", 0, 42)], &group)
        .unwrap();
    p.commit_transaction().unwrap();

    p.begin_transaction().unwrap();
    let futures: Vec<_> = (0..4)
        .map(|i| {
            let (k, v) = (format!("k{i}"), format!("aborted{i}"));
            p.send(ProducerRecord::with_key(topic, k.as_str(), v.as_str()))
                .unwrap()
        })
        .collect();
    // The records are in the log (the transaction is open) before the abort.
    p.flush().unwrap();
    let open: usize = (0..2)
        .map(|part| {
            cluster
                .records(topic, part)
                .unwrap()
                .iter()
                .filter(|r| r.visibility == Visibility::Open)
                .count()
        })
        .sum();
    assert_eq!(open, 4);
    assert!(
        (0..2).any(|part| cluster.read_committed(topic, part).unwrap().len()
            < cluster.records(topic, part).unwrap().len())
    );
    p.abort_transaction().unwrap();
    for f in futures {
        f.get().unwrap();
    }
    p.close().unwrap();

    let mut committed = 0;
    let mut aborted = 0;
    for part in 0..2 {
        let batches = cluster.batches(topic, part).unwrap();
        let markers: Vec<ControlType> = batches.iter().filter_map(|b| b.control).collect();
        let data: Vec<&MockRecord> = batches.iter().flat_map(|b| b.records.iter()).collect();
        if data.is_empty() {
            continue;
        }
        // One marker per transaction that wrote here, commit before abort.
        let mut want = vec![];
        if data
            .iter()
            .any(|r| r.value.as_deref().unwrap().starts_with(b"committed"))
        {
            want.push(ControlType::Commit);
        }
        if data
            .iter()
            .any(|r| r.value.as_deref().unwrap().starts_with(b"aborted"))
        {
            want.push(ControlType::Abort);
        }
        assert_eq!(markers, want, "partition {part}");
        for r in &data {
            assert!(r.transactional);
            let v = r.value.as_deref().unwrap();
            if v.starts_with(b"committed") {
                assert_eq!(r.visibility, Visibility::Committed);
                committed += 1;
            } else {
                assert_eq!(r.visibility, Visibility::Aborted);
                aborted += 1;
            }
        }
        // read_committed sees exactly the committed records.
        let visible = cluster.read_committed(topic, part).unwrap();
        assert!(visible
            .iter()
            .all(|r| r.value.as_deref().unwrap().starts_with(b"committed")));
        assert_eq!(
            visible.len(),
            data.iter()
                .filter(|r| r.visibility == Visibility::Committed)
                .count()
        );
    }
    assert_eq!((committed, aborted), (6, 4));
    assert_eq!(
        cluster.committed_offsets("txn-group"),
        vec![("source".to_string(), 0, 42, None)]
    );
}

#[test]
fn a_second_transactional_producer_fences_the_first() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "fenced";
    cluster.create_topic(topic, 1).unwrap();
    let a = txn_producer(&cluster, "fence-me");
    a.init_transactions().unwrap();
    a.begin_transaction().unwrap();
    a.send(ProducerRecord::with_key(topic, "a", "from-a"))
        .unwrap()
        .get()
        .unwrap();

    // B takes over the transactional id: A's open transaction is aborted.
    let b = txn_producer(&cluster, "fence-me");
    b.init_transactions().unwrap();
    let err = a.commit_transaction().unwrap_err();
    assert!(
        matches!(err, Error::TransactionFatal { .. }),
        "A's commit after B's init: {err:?}"
    );
    assert!(format!("{err:?}").contains("FENCED"), "{err:?}");

    b.begin_transaction().unwrap();
    b.send(ProducerRecord::with_key(topic, "b", "from-b"))
        .unwrap();
    b.commit_transaction().unwrap();
    b.close().unwrap();
    drop(a);

    let visible = cluster.read_committed(topic, 0).unwrap();
    assert_eq!(visible.len(), 1);
    assert_eq!(visible[0].value.as_deref(), Some(&b"from-b"[..]));
    let records = cluster.records(topic, 0).unwrap();
    assert_eq!(records[0].visibility, Visibility::Aborted);
    assert!(records[0].producer_epoch < visible[0].producer_epoch);
    let stats = cluster.stats();
    assert!(
        stats.errors.keys().any(|(api, code)| *api == Api::EndTxn
            && (*code == ErrorCode::PRODUCER_FENCED.0
                || *code == ErrorCode::INVALID_PRODUCER_EPOCH.0)),
        "{stats:?}"
    );
}

// --- The model's checks, on requests built by kafka-protocol ---

/// A request frame (no size prefix) of API `key` at `version`:
/// kafka-protocol's header, then `body`.
fn frame<R: Encodable>(key: i16, version: i16, body: &R) -> Vec<u8> {
    let api = ApiKey::try_from(key).unwrap();
    let mut header = RequestHeader::default();
    header.request_api_key = key;
    header.request_api_version = version;
    header.correlation_id = 7;
    header.client_id = Some(StrBytes::from_static_str("model-test"));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

/// The model's answer to `frame` (API `key` at `version`) on `broker` at
/// `now_ms`, decoded as `R`.
fn ask<R: Decodable>(
    model: &mut Model,
    broker: i32,
    now_ms: i64,
    key: i16,
    version: i16,
    frame: &[u8],
) -> R {
    let out = model.handle(broker, frame, now_ms);
    let Action::Reply(bytes) = out.action else {
        panic!("no answer: {:?}", out.action)
    };
    let api = ApiKey::try_from(key).unwrap();
    let mut buf = Bytes::from(bytes[4..].to_vec());
    let h = ResponseHeader::decode(&mut buf, api.response_header_version(version)).unwrap();
    assert_eq!(h.correlation_id, 7);
    R::decode(&mut buf, version).unwrap()
}

/// A Produce v9 request frame with `records` for `topic`-0.
fn produce_frame(topic: &str, records: Bytes) -> Vec<u8> {
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_string(topic.to_string()));
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 1000;
    req.topic_data = vec![td];
    frame(0, 9, &req)
}

/// A record batch of `n` records from producer `pid` at `epoch`, `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, n: i32, transactional: bool) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: seq + i,
            timestamp: 1,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

fn batch(pid: i64, seq: i32, n: i32) -> Bytes {
    txn_batch(pid, 0, seq, n, false)
}

/// The one partition error code and base offset of a Produce v9 answer.
fn produce_answer(model: &mut Model, broker: i32, frame: &[u8]) -> (ErrorCode, i64) {
    produce_answer_at(model, broker, 0, frame)
}

fn produce_answer_at(
    model: &mut Model,
    broker: i32,
    now_ms: i64,
    frame: &[u8],
) -> (ErrorCode, i64) {
    let r: ProduceResponse = ask(model, broker, now_ms, 0, 9, frame);
    let p = &r.responses[0].partition_responses[0];
    (ErrorCode(p.error_code), p.base_offset)
}

fn new_model(brokers: u16) -> Model {
    let addrs: Vec<(String, u16)> = (0..brokers)
        .map(|i| ("127.0.0.1".to_string(), 9000 + i))
        .collect();
    Model::new(MockConfig::default(), &addrs)
}

/// The coordinator of transactional id `id`, by FindCoordinator v3.
fn txn_coordinator(model: &mut Model, id: &str) -> i32 {
    let mut req = FindCoordinatorRequest::default();
    req.key = StrBytes::from_string(id.to_string());
    req.key_type = 1;
    let r: FindCoordinatorResponse = ask(model, 1, 0, 10, 3, &frame(10, 3, &req));
    assert_eq!(r.error_code, 0);
    r.node_id.0
}

/// InitProducerId v3 for `id`: (error, producer id, epoch).
fn init_pid(
    model: &mut Model,
    broker: i32,
    now_ms: i64,
    id: &str,
    timeout_ms: i32,
) -> (ErrorCode, i64, i16) {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = Some(TransactionalId(StrBytes::from_string(id.to_string())));
    req.transaction_timeout_ms = timeout_ms;
    let r: InitProducerIdResponse = ask(model, broker, now_ms, 22, 3, &frame(22, 3, &req));
    (ErrorCode(r.error_code), r.producer_id.0, r.producer_epoch)
}

/// AddPartitionsToTxn v3: the error code per (topic, partition) asked for.
fn add_partitions(
    model: &mut Model,
    broker: i32,
    now_ms: i64,
    id: &str,
    (pid, epoch): (i64, i16),
    partitions: &[(&str, i32)],
) -> Vec<ErrorCode> {
    let mut req = AddPartitionsToTxnRequest::default();
    req.v3_and_below_transactional_id = TransactionalId(StrBytes::from_string(id.to_string()));
    req.v3_and_below_producer_id = ProducerId(pid);
    req.v3_and_below_producer_epoch = epoch;
    for (t, p) in partitions {
        let mut topic = AddPartitionsToTxnTopic::default();
        topic.name = TopicName(StrBytes::from_string(t.to_string()));
        topic.partitions = vec![*p];
        req.v3_and_below_topics.push(topic);
    }
    let r: AddPartitionsToTxnResponse = ask(model, broker, now_ms, 24, 3, &frame(24, 3, &req));
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| t.results_by_partition.iter())
        .map(|p| ErrorCode(p.partition_error_code))
        .collect()
}

/// EndTxn v3: its error code.
fn end_txn(
    model: &mut Model,
    broker: i32,
    now_ms: i64,
    id: &str,
    (pid, epoch): (i64, i16),
    commit: bool,
) -> ErrorCode {
    let mut req = EndTxnRequest::default();
    req.transactional_id = TransactionalId(StrBytes::from_string(id.to_string()));
    req.producer_id = ProducerId(pid);
    req.producer_epoch = epoch;
    req.committed = commit;
    let r: EndTxnResponse = ask(model, broker, now_ms, 26, 3, &frame(26, 3, &req));
    ErrorCode(r.error_code)
}

#[test]
fn model_checks_transactions() {
    let mut m = new_model(3);
    m.create_topic("t", 1).unwrap();
    let (leader, _) = m.leader("t", 0).unwrap();
    let c = txn_coordinator(&mut m, "tx");
    let not_c = m.broker_ids().into_iter().find(|b| *b != c).unwrap();
    assert_eq!(
        init_pid(&mut m, not_c, 0, "tx", 60_000).0,
        ErrorCode::NOT_COORDINATOR
    );
    assert_eq!(
        init_pid(&mut m, c, 0, "tx", 0).0,
        ErrorCode::INVALID_TRANSACTION_TIMEOUT
    );
    let (code, pid, epoch) = init_pid(&mut m, c, 0, "tx", 60_000);
    assert_eq!((code, epoch), (ErrorCode::NONE, 0));

    // Transactions v1: a partition must be added before it is written,
    // and a transaction with nothing added cannot end.
    let txn0 = produce_frame("t", txn_batch(pid, 0, 0, 1, true));
    assert_eq!(
        produce_answer(&mut m, leader, &txn0),
        (ErrorCode::INVALID_TXN_STATE, -1)
    );
    assert_eq!(
        end_txn(&mut m, c, 0, "tx", (pid, 0), true),
        ErrorCode::INVALID_TXN_STATE
    );
    // One unknown partition: nothing is added.
    assert_eq!(
        add_partitions(&mut m, c, 0, "tx", (pid, 0), &[("t", 0), ("nope", 0)]),
        vec![
            ErrorCode::OPERATION_NOT_ATTEMPTED,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        ]
    );
    assert_eq!(
        add_partitions(&mut m, c, 0, "tx", (pid + 1, 0), &[("t", 0)]),
        vec![ErrorCode::INVALID_PRODUCER_ID_MAPPING]
    );
    assert_eq!(
        add_partitions(&mut m, c, 0, "tx", (pid, 0), &[("t", 0)]),
        vec![ErrorCode::NONE]
    );
    assert_eq!(produce_answer(&mut m, leader, &txn0), (ErrorCode::NONE, 0));
    assert_eq!(m.last_stable_offset("t", 0).unwrap(), 0);

    // A second InitProducerId fences the first producer: its open
    // transaction is aborted with the new epoch.
    let (_, pid2, epoch2) = init_pid(&mut m, c, 0, "tx", 60_000);
    assert_eq!((pid2, epoch2), (pid, 1));
    assert_eq!(
        end_txn(&mut m, c, 0, "tx", (pid, 0), true),
        ErrorCode::PRODUCER_FENCED
    );
    assert_eq!(
        add_partitions(&mut m, c, 0, "tx", (pid, 0), &[("t", 0)]),
        vec![ErrorCode::PRODUCER_FENCED]
    );
    let stale = produce_frame("t", txn_batch(pid, 0, 1, 1, true));
    assert_eq!(
        produce_answer(&mut m, leader, &stale),
        (ErrorCode::INVALID_PRODUCER_EPOCH, -1)
    );
    let batches = m.batches("t", 0).unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].records[0].visibility, Visibility::Aborted);
    assert_eq!(batches[1].control, Some(ControlType::Abort));
    assert_eq!(batches[1].producer_epoch, 1);
    assert_eq!(m.last_stable_offset("t", 0).unwrap(), 2);

    // Commit at the new epoch; a retried EndTxn is answered the same, an
    // EndTxn of the other kind is refused.
    assert_eq!(
        add_partitions(&mut m, c, 0, "tx", (pid, 1), &[("t", 0)]),
        vec![ErrorCode::NONE]
    );
    let txn1 = produce_frame("t", txn_batch(pid, 1, 0, 2, true));
    assert_eq!(produce_answer(&mut m, leader, &txn1), (ErrorCode::NONE, 2));
    assert_eq!(end_txn(&mut m, c, 0, "tx", (pid, 1), true), ErrorCode::NONE);
    assert_eq!(end_txn(&mut m, c, 0, "tx", (pid, 1), true), ErrorCode::NONE);
    assert_eq!(
        end_txn(&mut m, c, 0, "tx", (pid, 1), false),
        ErrorCode::INVALID_TXN_STATE
    );
    let batches = m.batches("t", 0).unwrap();
    assert_eq!(batches[3].control, Some(ControlType::Commit));
    assert!(batches[2]
        .records
        .iter()
        .all(|r| r.visibility == Visibility::Committed));

    // A transaction open past its timeout is aborted by the coordinator,
    // which bumps the epoch: the producer finds itself fenced.
    let (_, _, e) = init_pid(&mut m, c, 1_000, "tx", 100);
    assert_eq!(e, 2);
    assert_eq!(
        add_partitions(&mut m, c, 1_000, "tx", (pid, 2), &[("t", 0)]),
        vec![ErrorCode::NONE]
    );
    let txn2 = produce_frame("t", txn_batch(pid, 2, 0, 1, true));
    assert_eq!(
        produce_answer_at(&mut m, leader, 1_050, &txn2),
        (ErrorCode::NONE, 5)
    );
    assert_eq!(
        end_txn(&mut m, c, 1_200, "tx", (pid, 2), true),
        ErrorCode::PRODUCER_FENCED
    );
    let batches = m.batches("t", 0).unwrap();
    assert_eq!(batches.last().unwrap().control, Some(ControlType::Abort));
    assert_eq!(batches[4].records[0].visibility, Visibility::Aborted);
}

#[test]
fn model_checks_crc_sequences_and_leadership() {
    let mut model = new_model(3);
    model.create_topic("t", 1).unwrap();
    let (leader, _) = model.leader("t", 0).unwrap();
    let other = model
        .broker_ids()
        .into_iter()
        .find(|b| *b != leader)
        .unwrap();

    let ok = produce_frame("t", batch(5, 0, 2));
    assert_eq!(
        produce_answer(&mut model, other, &ok),
        (ErrorCode::NOT_LEADER_OR_FOLLOWER, -1)
    );
    assert_eq!(
        produce_answer(&mut model, leader, &ok),
        (ErrorCode::NONE, 0)
    );
    // The same batch again: a duplicate, answered with its first offset.
    assert_eq!(
        produce_answer(&mut model, leader, &ok),
        (ErrorCode::NONE, 0)
    );
    // A gap in the sequence.
    let gap = produce_frame("t", batch(5, 5, 1));
    assert_eq!(
        produce_answer(&mut model, leader, &gap),
        (ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
    );
    // One flipped bit in the records: the CRC-32C no longer matches.
    let mut corrupt = batch(5, 2, 1).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let corrupt = produce_frame("t", Bytes::from(corrupt));
    assert_eq!(
        produce_answer(&mut model, leader, &corrupt),
        (ErrorCode::CORRUPT_MESSAGE, -1)
    );
    let next = produce_frame("t", batch(5, 2, 1));
    assert_eq!(
        produce_answer(&mut model, leader, &next),
        (ErrorCode::NONE, 2)
    );
    assert_eq!(model.end_offset("t", 0).unwrap(), 3);
    assert_eq!(model.stats().duplicates, 1);
    // An unknown API closes the connection, as Kafka does.
    let mut unknown = ok.clone();
    unknown[0..2].copy_from_slice(&1i16.to_be_bytes());
    assert_eq!(model.handle(leader, &unknown, 0).action, Action::Cut);
}

// --- Producers that are not ours, read back through the model ---

fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("key-{i}").into_bytes()).collect()
}

/// Each key once in the model's log, in the partition the foreign
/// producer reported and Java's partitioner picks.
fn assert_foreign_records(cluster: &MockCluster, topic: &str, keys: &[Vec<u8>], parts: &[i32]) {
    let n = cluster.partition_count(topic).unwrap();
    let logs = all_records(cluster, topic);
    let total: usize = logs.values().map(Vec::len).sum();
    assert_eq!(total, keys.len());
    for (k, p) in keys.iter().zip(parts) {
        assert_eq!(*p, kafka_producer::murmur2_partition(k, n as usize));
        let hits = logs[p].iter().filter(|r| r.key.as_ref() == Some(k)).count();
        assert_eq!(
            hits,
            1,
            "key {:?} in partition {p}",
            String::from_utf8_lossy(k)
        );
    }
}

/// Per partition, an idempotent producer's records carry one producer id
/// and sequences 0, 1, 2, ...
fn assert_sequences(cluster: &MockCluster, topic: &str) {
    for (p, log) in all_records(cluster, topic) {
        let seqs: Vec<i32> = log.iter().map(|r| r.sequence).collect();
        assert_eq!(
            seqs,
            (0..log.len() as i32).collect::<Vec<_>>(),
            "partition {p}"
        );
        assert!(log
            .iter()
            .all(|r| r.producer_id >= 0 && r.producer_id == log[0].producer_id));
    }
}

#[test]
fn librdkafka_produces_into_the_mock() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "from-librdkafka";
    cluster.create_topic(topic, 4).unwrap();
    let keys = keys(100);
    let parts = common::librdkafka_murmur2(&cluster.bootstrap(), topic, &keys);
    assert_foreign_records(&cluster, topic, &keys, &parts);
    let stats = cluster.stats();
    assert!(stats.requests[&Api::ApiVersions] >= 1, "{stats:?}");
    assert!(all_records(&cluster, topic)
        .values()
        .flatten()
        .all(|r| r.producer_id == -1 && r.sequence == -1));
}

#[test]
fn idempotent_librdkafka_survives_a_dropped_response() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "from-librdkafka-idempotent";
    cluster.create_topic(topic, 4).unwrap();
    cluster
        .inject(Fault::drop_response(Api::Produce).times(2))
        .unwrap();
    let keys = keys(100);
    let some: Vec<Option<Vec<u8>>> = keys.iter().cloned().map(Some).collect();
    let parts = common::librdkafka_produce(&cluster.bootstrap(), topic, &some, &["--idempotence"]);
    assert_foreign_records(&cluster, topic, &keys, &parts);
    assert_sequences(&cluster, topic);
    let stats = cluster.stats();
    assert!(stats.requests[&Api::InitProducerId] >= 1, "{stats:?}");
    assert_eq!(stats.faults_fired, 2);
    assert!(stats.duplicates >= 1, "{stats:?}");
}

#[test]
fn java_produces_into_the_mock() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "from-java";
    cluster.create_topic(topic, 4).unwrap();
    let keys = keys(100);
    // JavaOracle's producer: acks=1, no idempotence.
    let parts = common::java::java_partitions(&cluster.bootstrap(), topic, &keys);
    assert_foreign_records(&cluster, topic, &keys, &parts);
    let stats = cluster.stats();
    assert!(stats.requests[&Api::Produce] >= 1, "{stats:?}");
}

/// The documented example (a user's service tested against MockCluster)
/// runs and passes its own assertions.
#[test]
fn the_mock_cluster_example_passes() {
    use std::process::{Command, Stdio};
    let build = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--example",
            "mock_cluster",
            "--features",
            "mock",
        ])
        .status()
        .expect("cargo build --example mock_cluster");
    assert!(build.success());
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/mock_cluster");
    let mut child = Command::new(bin)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the example");
    let deadline = Instant::now() + common::RUN_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the mock_cluster example did not finish in {:?}",
                common::RUN_TIMEOUT
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{status}: {out}");
    assert!(out.starts_with("ok: 3 orders, each once"), "{out}");
}

// --- An independent consumer (librdkafka) reading the model's logs ---

#[test]
fn librdkafka_reads_back_what_we_produced() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "read-back";
    cluster.create_topic(topic, 4).unwrap();
    // A lost answer on the way: the consumer must still see each record once.
    cluster.inject(Fault::drop_response(Api::Produce)).unwrap();
    let p = producer(config(&cluster).compression(kafka_producer::Compression::Lz4));
    let futures: Vec<_> = (0..100)
        .map(|i| {
            let (k, v) = (format!("k{i}"), format!("v{i}"));
            let rec = ProducerRecord::with_key(topic, k.as_str(), v.as_str())
                .header(Header::new("i", i.to_string().into_bytes()));
            p.send(rec).unwrap()
        })
        .collect();
    let metas = wait_all(futures);
    p.close().unwrap();
    let read = common::consume(&cluster.bootstrap(), topic, 100, Duration::from_secs(30));
    for (i, m) in metas.iter().enumerate() {
        let c = read
            .iter()
            .find(|c| c.partition == m.partition() && c.offset == m.offset())
            .unwrap_or_else(|| panic!("librdkafka did not read {}-{}", m.partition(), m.offset()));
        assert_eq!(c.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(c.value.as_deref(), Some(format!("v{i}").as_bytes()));
        assert_eq!(
            c.headers,
            vec![("i".to_string(), Some(i.to_string().into_bytes()))]
        );
    }
    assert!(cluster.stats().requests[&Api::Fetch] >= 1);
}

/// One transactional producer (`txn_id`) writes a transaction per round:
/// `n` records `k{i}` -> `{round}-{i}-{commit}`, then commits or aborts.
fn write_transactions(cluster: &MockCluster, topic: &str, txn_id: &str, rounds: &[(usize, bool)]) {
    let p = txn_producer(cluster, txn_id);
    p.init_transactions().unwrap();
    for (round, &(n, commit)) in rounds.iter().enumerate() {
        p.begin_transaction().unwrap();
        for i in 0..n {
            let (k, v) = (format!("k{i}"), format!("{round}-{i}-{commit}"));
            p.send(ProducerRecord::with_key(topic, k.as_str(), v.as_str()))
                .unwrap();
        }
        if commit {
            p.commit_transaction().unwrap();
        } else {
            p.flush().unwrap();
            p.abort_transaction().unwrap();
        }
    }
    p.close().unwrap();
}

#[test]
fn librdkafka_read_committed_skips_aborted_transactions() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "read-committed";
    cluster.create_topic(topic, 2).unwrap();
    write_transactions(&cluster, topic, "rc", &[(5, true), (3, false), (2, true)]);
    let bootstrap = cluster.bootstrap();
    let committed = common::consume_isolation(&bootstrap, topic, 7, Duration::from_secs(30), true);
    assert!(committed
        .iter()
        .all(|c| c.value.as_deref().unwrap().ends_with(b"true")));
    let all = common::consume_isolation(&bootstrap, topic, 10, Duration::from_secs(30), false);
    assert_eq!(
        all.iter()
            .filter(|c| c.value.as_deref().unwrap().ends_with(b"false"))
            .count(),
        3
    );
    // The model agrees with librdkafka on what read_committed sees.
    for part in 0..2 {
        let mut model: Vec<i64> = cluster
            .read_committed(topic, part)
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        let mut lib: Vec<i64> = committed
            .iter()
            .filter(|c| c.partition == part)
            .map(|c| c.offset)
            .collect();
        model.sort_unstable();
        lib.sort_unstable();
        assert_eq!(model, lib, "partition {part}");
    }
}

/// Dropping the cluster with a request held, a Fetch-less idle client and
/// a broker down returns (every thread joined) and closes every port.
#[test]
fn drop_is_bounded_with_held_requests_and_open_connections() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "dropped-cluster";
    cluster.create_topic(topic, 1).unwrap();
    let p = producer(config(&cluster));
    send_all(&p, topic, 1);
    cluster.inject(Fault::hold(Api::Produce)).unwrap();
    let f = p.send(ProducerRecord::with_key(topic, "k", "v")).unwrap();
    await_held(&cluster);
    let down = cluster
        .broker_ids()
        .into_iter()
        .find(|b| *b != cluster.leader(topic, 0).unwrap())
        .unwrap();
    cluster.broker_down(down).unwrap();
    let addrs: Vec<String> = cluster.bootstrap().split(',').map(str::to_string).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(cluster);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("dropping the cluster did not return");
    for a in &addrs {
        assert!(
            std::net::TcpStream::connect(a.as_str()).is_err(),
            "{a} still accepts connections"
        );
    }
    // The held record never got an answer: the producer fails it at close.
    p.close_timeout(Duration::ZERO)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(f.get().is_err());
}

/// Java's `KafkaConsumer` reads our transactional records through the
/// model at both isolation levels.
#[test]
fn java_reads_back_what_we_produced() {
    let cluster = MockCluster::new(3).unwrap();
    let topic = "java-read-back";
    cluster.create_topic(topic, 2).unwrap();
    write_transactions(&cluster, topic, "java-rc", &[(4, true), (3, false)]);
    let read = common::java::java_consume(
        &cluster.bootstrap(),
        topic,
        4,
        Duration::from_secs(30),
        true,
    );
    assert!(read
        .iter()
        .all(|c| c.value.as_deref().unwrap().ends_with(b"true")));
    let mut java: Vec<(i32, i64)> = read.iter().map(|c| (c.partition, c.offset)).collect();
    java.sort_unstable();
    let model: Vec<(i32, i64)> = (0..2)
        .flat_map(|part| {
            cluster
                .read_committed(topic, part)
                .unwrap()
                .into_iter()
                .map(move |r| (part, r.offset))
        })
        .collect();
    assert_eq!(java, model, "Java's read_committed view and the model's");
    let all = common::java::java_consume(
        &cluster.bootstrap(),
        topic,
        7,
        Duration::from_secs(30),
        false,
    );
    assert_eq!(all.len(), 7);
}
