//! librdkafka's partitioners (`consistent`, `consistent_random`, `murmur2`,
//! `murmur2_random`, `fnv1a`, `fnv1a_random`), selected with
//! `partitioner.class`, put every key where librdkafka itself
//! (confluent-kafka) puts it: librdkafka produces the keys first, then our
//! producer sends the same keys, and the independent consumer reads back
//! which partition each of ours landed on. Records without a key go to a
//! random partition, as librdkafka's do.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{consume, librdkafka_partitions, topic, Broker};
use kafka_producer::{ByteArraySerializer, LibrdkafkaPartitioner, Producer, ProducerRecord};

const PARTITIONS: usize = 4;

fn keys() -> Vec<Option<Vec<u8>>> {
    let mut keys: Vec<Option<Vec<u8>>> = common::MURMUR2_TEST_KEYS
        .iter()
        .map(|k| Some(k.as_bytes().to_vec()))
        .collect();
    keys.extend((0..300u32).map(|i| Some(format!("user-{i}").into_bytes())));
    keys.extend((0..50u8).map(|i| Some(vec![i, 0xff, i.wrapping_mul(7)])));
    keys.push(Some(Vec::new())); // empty
    keys.push(None); // absent
    keys
}

#[test]
fn every_librdkafka_partitioner_places_keys_as_librdkafka_does() {
    let broker = Broker::Mock;
    let keys = keys();
    for name in [
        "consistent",
        "consistent_random",
        "murmur2",
        "murmur2_random",
        "fnv1a",
        "fnv1a_random",
    ] {
        let p = LibrdkafkaPartitioner::from_name(name).unwrap();
        // librdkafka's placement.
        let theirs = librdkafka_partitions(broker.bootstrap(), &topic("rdk-oracle"), &keys, name);
        assert_eq!(theirs.len(), keys.len(), "{name}");
        // Ours, through partitioner.class, read back by the consumer.
        let t = topic(&format!("rdk-{name}"));
        let mut cfg = broker.config();
        cfg.set("partitioner.class", name).unwrap();
        let producer: Producer<[u8], [u8]> =
            Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap();
        for (i, k) in keys.iter().enumerate() {
            let value = i.to_string().into_bytes();
            let r = ProducerRecord::with_timestamp(
                t.as_str(),
                None,
                None,
                k.as_deref(),
                Some(&value[..]),
                vec![],
            );
            producer.send(r).unwrap();
        }
        producer.close().unwrap();
        let ours: BTreeMap<usize, i32> =
            consume(broker.bootstrap(), &t, keys.len(), Duration::from_secs(60))
                .iter()
                .map(|c| {
                    let i: usize = String::from_utf8(c.value.clone().unwrap())
                        .unwrap()
                        .parse()
                        .unwrap();
                    (i, c.partition)
                })
                .collect();
        let mut random = 0;
        for (i, k) in keys.iter().enumerate() {
            match p.hashed(k.as_deref(), PARTITIONS) {
                // An empty key: confluent-kafka hands librdkafka no key at
                // all for b"", so only our side is checked (librdkafka's C
                // API hashes an empty key as this does).
                Some(expected) if k.as_ref().is_some_and(|k| k.is_empty()) => {
                    assert_eq!(ours[&i], expected, "{name}: we put the empty key elsewhere");
                }
                Some(expected) => {
                    assert_eq!(
                        theirs[i], expected,
                        "{name}: librdkafka put key {k:?} elsewhere"
                    );
                    assert_eq!(ours[&i], expected, "{name}: we put key {k:?} elsewhere");
                }
                None => {
                    random += 1;
                    assert!((0..PARTITIONS as i32).contains(&ours[&i]), "{name}: {k:?}");
                }
            }
        }
        // librdkafka's rules: no key is random for every partitioner, an
        // empty key too for consistent_random.
        let absent = keys.iter().filter(|k| k.is_none()).count();
        let empty = keys
            .iter()
            .filter(|k| k.as_ref().is_some_and(|k| k.is_empty()))
            .count();
        assert!(absent >= 1 && empty >= 1);
        let expect_random = if name == "consistent_random" {
            absent + empty
        } else {
            absent
        };
        assert_eq!(random, expect_random, "{name}");
    }
}
