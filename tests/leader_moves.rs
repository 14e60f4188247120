//! A partition's leader moves on the real Apache Kafka cluster while the
//! producer keeps its old metadata: the old leader answers Produce with
//! NOT_LEADER_OR_FOLLOWER and names the new leader (KIP-951), and the
//! producer re-routes the batch there at once, without waiting for a
//! metadata refresh or a retry backoff. Java's consumer reads back what was
//! sent.

mod common;

use std::time::Duration;

use common::java::{create_topic, java_consume, kafka_bootstrap, move_leader};
use common::topic;
use kafka_producer::{Acks, Producer, ProducerConfig, ProducerRecord, StringSerializer};

/// The retry backoff and the refresh interval are both a minute, longer
/// than the delivery timeout: a batch refused by the old leader can only be
/// delivered in time if the leader hint in the refusal is used. (Metadata
/// is not fetched again within `retry.backoff.ms` of the last fetch, so the
/// refresh that NOT_LEADER_OR_FOLLOWER asks for cannot come in time either.)
#[test]
fn a_moved_leader_named_by_the_old_one_gets_the_batch_at_once() {
    let bootstrap = kafka_bootstrap();
    let topic = topic("hint");
    let created = create_topic(&bootstrap, &topic, 1, 3, &[]);
    let p0 = &created["partitions"][0];
    let old = p0["leader"].as_i64().unwrap() as i32;
    let new = p0["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_i64().unwrap() as i32)
        .find(|&r| r != old)
        .expect("a second replica");

    let minute = Duration::from_secs(60);
    let cfg = ProducerConfig::new()
        .bootstrap_servers(&bootstrap)
        .acks(Acks::All)
        .linger(Duration::ZERO)
        .max_in_flight_requests_per_connection(1)
        .retry_backoff(minute)
        .retry_backoff_max(minute)
        .metadata_max_age(Duration::from_secs(600))
        .request_timeout(Duration::from_secs(10))
        .delivery_timeout(Duration::from_secs(20))
        .max_block(Duration::from_secs(20));
    let producer = Producer::new(cfg, StringSerializer, StringSerializer).unwrap();
    let send = |v: &str| {
        producer
            .send(ProducerRecord::new(&topic, v).partition(0))
            .and_then(|f| f.get())
    };
    let first = send("before the move").expect("first record");
    assert_eq!(first.partition(), 0);

    move_leader(&bootstrap, &topic, 0, new);

    let second = send("after the move").unwrap_or_else(|e| {
        panic!("the record refused by old leader {old} did not reach new leader {new}: {e}")
    });
    assert_eq!(second.offset(), first.offset() + 1);
    producer.close().unwrap();

    let read = java_consume(&bootstrap, &topic, 2, Duration::from_secs(30), false);
    let values: Vec<String> = read
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(values, ["before the move", "after the move"]);
}
