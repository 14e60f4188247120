//! What Tansu (which enforces idempotent sequences) does with a resent
//! batch, a sequence gap and a transaction's control batches, each checked
//! by an independent reader (librdkafka through `kcheck.py`).
//!
//! - A batch whose answer was lost is sent again with the same sequence
//!   (the proxy swallows the answer and cuts the connection): Tansu answers
//!   it DUPLICATE_SEQUENCE_NUMBER and does not append it twice.
//! - A gap (a batch whose sequence is not the next one) cannot come from
//!   this producer, which never skips one: raw Produce requests with a
//!   sequence of their choice show that Tansu refuses it with
//!   OUT_OF_ORDER_SEQUENCE_NUMBER and appends nothing of it, and that the
//!   right next sequence is still taken.
//! - Commit and abort markers: each takes an offset in the partition, so
//!   the offsets a reader sees jump by one after each transaction.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::kproxy::{check_sequences, roundtrip, KProxy};
use common::{consume_isolation, topic, Broker, Consumed};
use kafka_producer::{Producer, ProducerRecord, StringSerializer};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const WAIT: Duration = Duration::from_secs(60);

fn values(records: &[Consumed]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect()
}

/// A batch whose answer the proxy swallowed (cutting the connection) goes
/// again with the same sequence and bytes; Tansu has it once, and the
/// reader sees the three records once each, in order, at consecutive
/// offsets.
#[test]
fn a_resent_batch_is_not_appended_twice_on_tansu() {
    let bs = Broker::Tansu.bootstrap();
    let proxy = KProxy::start(bs);
    let t = topic("tdup");
    let p: Producer<str, str> = Producer::new(
        Broker::Tansu
            .config()
            .bootstrap_servers(proxy.bootstrap.as_str()),
        StringSerializer,
        StringSerializer,
    )
    .unwrap();
    // The topic's metadata first, so the swallowed answer is the record's.
    p.partitions_for(&t).unwrap();
    proxy.swallow_next(1);
    p.send(ProducerRecord::new(t.as_str(), "r0").partition(0))
        .unwrap()
        .get()
        .unwrap();
    assert_eq!(proxy.swallowed(), 1, "the first answer was swallowed");
    proxy.heal();
    for v in ["r1", "r2"] {
        p.send(ProducerRecord::new(t.as_str(), v).partition(0))
            .unwrap()
            .get()
            .unwrap();
    }
    p.close().unwrap();
    assert!(proxy.errors().is_empty(), "{:?}", proxy.errors());
    let sent = proxy.sent_batches();
    let seqs = check_sequences(&sent).unwrap();
    assert_eq!(
        seqs.retries, 1,
        "sequence 0 sent twice, same bytes: {sent:?}"
    );
    assert_eq!(seqs.per_partition[&0], 3);
    // Tansu answers the resent batch DUPLICATE_SEQUENCE_NUMBER (46), which
    // the producer takes as success (the record's get() above was Ok).
    let answers = proxy.produce_errors();
    assert_eq!(answers.get(&46), Some(&1), "Tansu's answers: {answers:?}");
    assert_eq!(answers.get(&0), Some(&3), "Tansu's answers: {answers:?}");
    // Three records, read up to the third: a duplicate would be read in
    // place of r2.
    let got = consume_isolation(bs, &t, 3, WAIT, false);
    assert_eq!(values(&got), ["r0", "r1", "r2"]);
    let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [offsets[0], offsets[0] + 1, offsets[0] + 2]);
}

/// Produce v9 of one record with sequence `seq` for producer `(id, epoch)`:
/// Tansu's error code for it.
fn produce_raw(addr: &str, t: &str, (id, epoch): (i64, i16), seq: i32, value: &str) -> i16 {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: seq,
        timestamp: common::now_ms(),
        key: None,
        value: Some(bytes::Bytes::copy_from_slice(value.as_bytes())),
        headers: Default::default(),
    };
    let mut records = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut records, [&record], &options).unwrap();
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(t.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records.freeze()))])]);
    let resp: ProduceResponse = roundtrip(addr, ApiKey::Produce, 9, &request);
    resp.responses[0].partition_responses[0].error_code
}

/// Tansu enforces sequences: after sequence 0, a batch at sequence 5 (a
/// gap) is refused with OUT_OF_ORDER_SEQUENCE_NUMBER (45) and not
/// appended; sequence 1 is then taken. librdkafka reads the two accepted
/// records, not the refused one.
#[test]
fn tansu_refuses_a_sequence_gap() {
    let addr = Broker::Tansu.bootstrap().split(',').next().unwrap();
    let t = topic("tgap");
    // The topic, made by our producer (Tansu creates it on first use).
    let p: Producer<str, str> = Producer::new(
        Broker::Tansu.config().enable_idempotence(false),
        StringSerializer,
        StringSerializer,
    )
    .unwrap();
    p.send(ProducerRecord::new(t.as_str(), "first").partition(0))
        .unwrap()
        .get()
        .unwrap();
    p.close().unwrap();
    let init: InitProducerIdResponse = roundtrip(
        addr,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transaction_timeout_ms(i32::MAX)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0, "InitProducerId: {init:?}");
    let producer = (init.producer_id.0, init.producer_epoch);
    assert_eq!(produce_raw(addr, &t, producer, 0, "seq-0"), 0);
    let gap = produce_raw(addr, &t, producer, 5, "seq-5");
    assert_eq!(
        gap, 45,
        "a gap: OUT_OF_ORDER_SEQUENCE_NUMBER expected, got {gap}"
    );
    assert_eq!(produce_raw(addr, &t, producer, 1, "seq-1"), 0);
    let got = consume_isolation(Broker::Tansu.bootstrap(), &t, 3, WAIT, false);
    assert_eq!(values(&got), ["first", "seq-0", "seq-1"]);
}

/// A transaction's end is a control batch in each of its partitions: it
/// takes an offset, which readers skip. After a committed transaction of
/// two records (offsets o, o+1) the marker is at o+2, so the next
/// transaction's first record is at o+3; the same after an abort. What
/// librdkafka reads at read_uncommitted (the aborted records included, and
/// no control record) shows the holes.
#[test]
fn tansu_writes_a_control_batch_at_each_commit_and_abort() {
    let bs = Broker::Tansu.bootstrap();
    let t = topic("tctl");
    let p: Producer<str, str> = Producer::new(
        Broker::Tansu
            .config()
            .transactional_id(topic("txid-tctl").as_str()),
        StringSerializer,
        StringSerializer,
    )
    .unwrap();
    p.init_transactions().unwrap();
    for (vals, commit) in [
        (["c0", "c1"], true),
        (["a0", "a1"], false),
        (["d0", "d1"], true),
    ] {
        p.begin_transaction().unwrap();
        for v in vals {
            p.send(ProducerRecord::new(t.as_str(), v).partition(0))
                .unwrap()
                .get()
                .unwrap();
        }
        if commit {
            p.commit_transaction().unwrap();
        } else {
            p.abort_transaction().unwrap();
        }
    }
    p.close().unwrap();
    let got = consume_isolation(bs, &t, 6, WAIT, false);
    assert_eq!(values(&got), ["c0", "c1", "a0", "a1", "d0", "d1"]);
    let o = got[0].offset;
    let offsets: Vec<i64> = got.iter().map(|r| r.offset - o).collect();
    assert_eq!(
        offsets,
        [0, 1, 3, 4, 6, 7],
        "a marker after each transaction (offsets 2 and 5)"
    );
}
