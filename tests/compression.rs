//! `compression.type`: every codec's batches are read back intact by
//! librdkafka (`common::consume`) on Kafka, Tansu and the mock, and by
//! Java's consumer on Kafka; and Kafka really stores them compressed (its
//! log segments, read from disk, are far smaller than the same records'
//! uncompressed).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::java::{create_topic, java_consume, kafka_bootstrap};
use common::{consume, topic, Broker, Consumed, BROKERS};
use kafka_producer::{ByteArraySerializer, Compression, Header, Producer, ProducerRecord};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip(-1),
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd(3),
];

const N: usize = 600;

/// Record `i`: a key, a compressible value (a null value every 50th, a
/// tombstone), a header.
fn record(i: usize) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = format!("key-{}", i % 7).into_bytes();
    let value =
        (i % 50 != 49).then(|| format!("value {i:05} {}", "lorem ipsum ".repeat(20)).into_bytes());
    (key, value)
}

/// Sends `N` records to partition 0 of `topic` with `codec` and returns
/// after every one is acknowledged.
fn produce(broker: Broker, topic: &str, codec: Compression) {
    let cfg = broker
        .config()
        .compression(codec)
        .linger(Duration::from_millis(20));
    let p: Producer<[u8], [u8]> =
        Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let (k, v) = record(i);
            let headers = vec![Header::new("i", i.to_string())];
            let r = ProducerRecord::with_timestamp(
                topic,
                Some(0),
                None,
                Some(&k[..]),
                v.as_deref(),
                headers,
            );
            p.send(r).unwrap()
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let m = h
            .get()
            .unwrap_or_else(|e| panic!("{codec:?} to {broker:?}: record {i}: {e}"));
        assert_eq!(m.partition(), 0);
    }
    p.close().unwrap();
}

/// The consumer's records are ours, all of them, in order, headers and
/// tombstones included.
fn check(read: &[Consumed], what: &str) {
    assert_eq!(read.len(), N, "{what}");
    for (i, c) in read.iter().enumerate() {
        let (k, v) = record(i);
        assert_eq!(c.key.as_deref(), Some(&k[..]), "{what}: record {i}'s key");
        assert_eq!(c.value, v, "{what}: record {i}'s value");
        assert_eq!(c.offset, i as i64, "{what}: record {i}'s offset");
    }
}

#[test]
fn every_codec_is_read_back_by_librdkafka_on_every_broker() {
    for broker in BROKERS {
        for codec in CODECS {
            let t = topic(&format!("codec-{}", codec.name()));
            produce(broker, &t, codec);
            let read = consume(broker.bootstrap(), &t, N, Duration::from_secs(60));
            check(
                &read,
                &format!("{codec:?} on {broker:?}, read by librdkafka"),
            );
        }
    }
}

/// The bytes of topic `t`'s log segments on Kafka node 1 (every node holds
/// a replica: replication factor 3).
fn segment_bytes(t: &str) -> u64 {
    let data =
        std::env::var("KP_KAFKA_DATA").expect("KP_KAFKA_DATA is not set: run scripts/test.sh");
    let dir = PathBuf::from(data).join("kafka-1").join(format!("{t}-0"));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn kafka_stores_each_codec_compressed_and_java_reads_it() {
    let bootstrap = kafka_bootstrap();
    let mut sizes = Vec::new();
    for codec in CODECS {
        let t = topic(&format!("jcodec-{}", codec.name()));
        create_topic(&bootstrap, &t, 1, 3, &[]);
        produce(Broker::Kafka, &t, codec);
        let read = java_consume(&bootstrap, &t, N, Duration::from_secs(60), false);
        check(&read, &format!("{codec:?} on Kafka, read by Java"));
        // Node 1 has the records once the consumer read them from the
        // leader and acks=all made every replica have them.
        sizes.push((codec, segment_bytes(&t)));
    }
    let plain = sizes[0].1;
    assert!(
        plain > (N as u64) * 200,
        "uncompressed segment is {plain} bytes"
    );
    for &(codec, bytes) in &sizes[1..] {
        assert!(
            bytes * 3 < plain,
            "{codec:?}: {bytes} bytes on disk against {plain} uncompressed: not compressed"
        );
    }
    eprintln!("segment bytes per codec: {sizes:?}");
}
