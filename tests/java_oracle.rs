//! Apache Kafka's own Java client as an oracle (`tests/support/JavaOracle.java`):
//! keyed records go to the partition Java's `KafkaProducer` and its default
//! partitioner choose, and Java's `KafkaConsumer` and librdkafka read back
//! exactly the records we sent, on the 3-node Apache Kafka cluster (and on
//! Tansu for placement).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::java::{create_topic, java_consume, java_partitions, kafka_bootstrap};
use common::{consume, hex, topic, wait_all, Broker, Consumed};
use kafka_producer::{
    ByteArraySerializer, Header, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};

const T: Duration = Duration::from_secs(60);

fn bytes_producer(bootstrap: &str) -> Producer<[u8], [u8]> {
    let cfg = ProducerConfig::new()
        .bootstrap_servers(bootstrap)
        .max_block(Duration::from_secs(20))
        .linger(Duration::from_millis(20));
    Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap()
}

/// SplitMix64: deterministic pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The empty key, fixed strings (Java's own murmur2 test vectors among
/// them), and 1,200 pseudo-random keys of 0 to 40 bytes.
fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = common::MURMUR2_TEST_KEYS
        .iter()
        .chain(&[
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "customer-7",
            "ключ",
            "🦀 key",
        ])
        .map(|k| k.as_bytes().to_vec())
        .collect();
    keys.extend([
        vec![0],
        vec![0xff],
        vec![0x80, 0, 0, 0],
        vec![0xff; 4],
        vec![0xff; 7],
        (0..=255).collect(),
    ]);
    let mut rng = Rng(0x6a61_7661_2d6f_7261);
    for _ in 0..1200 {
        let len = (rng.next() % 41) as usize;
        keys.push((0..len).map(|_| rng.next() as u8).collect());
    }
    keys
}

/// Java's producer puts `keys` on one topic, ours on another with the same
/// partition count; the partitions must agree key for key, and Java's
/// consumer must find each of our records where our producer said.
/// `partitions: None` lets the broker auto-create both topics (Tansu: 4).
fn keyed_placement_matches_java(label: &str, bootstrap: &str, partitions: Option<i32>) {
    let keys = keys();
    let java_topic = topic("java-keys-java");
    let ours_topic = topic("java-keys-ours");
    if let Some(p) = partitions {
        create_topic(bootstrap, &java_topic, p, 3, &[]);
        create_topic(bootstrap, &ours_topic, p, 3, &[]);
    }
    let count = partitions.unwrap_or(4);

    let java = java_partitions(bootstrap, &java_topic, &keys);

    let p = bytes_producer(bootstrap);
    let handles: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let value = i.to_string().into_bytes();
            p.send(ProducerRecord::with_key(
                ours_topic.as_str(),
                k.as_slice(),
                value.as_slice(),
            ))
            .unwrap()
        })
        .collect();
    let ours: Vec<RecordMetadata> = wait_all(handles)
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{label}: send failed: {e}")))
        .collect();
    assert_eq!(
        p.partitions_for(&ours_topic).unwrap().len(),
        count as usize,
        "{label}: our topic's partition count"
    );
    p.close().unwrap();

    let mismatches: Vec<String> = keys
        .iter()
        .zip(ours.iter().zip(&java))
        .filter(|(_, (m, j))| m.partition() != **j)
        .map(|(k, (m, j))| {
            format!(
                "key {:?} ({} bytes): ours {} java {j}",
                hex(k),
                k.len(),
                m.partition()
            )
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{label}, {count} partitions: {} of {} keys placed differently from Java's default \
         partitioner:\n{}",
        mismatches.len(),
        keys.len(),
        mismatches[..mismatches.len().min(30)].join("\n")
    );
    // The keys really spread: every partition is used, none out of range.
    let used: BTreeSet<i32> = java.iter().copied().collect();
    assert_eq!(
        used,
        (0..count).collect::<BTreeSet<i32>>(),
        "{label}: Java used partitions {used:?} of {count}"
    );

    // Java's consumer finds every record of ours where our producer said.
    let got = java_consume(bootstrap, &ours_topic, keys.len(), T, true);
    let mut seen = BTreeSet::new();
    for r in &got {
        let value = r.value.as_deref().expect("a value");
        let i: usize = std::str::from_utf8(value).unwrap().parse().unwrap();
        assert!(seen.insert(i), "{label}: record {i} read twice");
        assert_eq!(r.key.as_ref(), Some(&keys[i]), "{label}: key of record {i}");
        assert_eq!(
            (r.partition, r.offset),
            (ours[i].partition(), ours[i].offset()),
            "{label}: key {:?} (record {i}) was read elsewhere than our producer reported",
            hex(&keys[i])
        );
        assert_eq!(r.partition, java[i], "{label}: key {:?}", hex(&keys[i]));
    }
    assert_eq!(seen.len(), keys.len(), "{label}");
}

#[test]
fn kafka_4_partitions_keys_go_where_java_puts_them() {
    keyed_placement_matches_java("kafka", &kafka_bootstrap(), Some(4));
}

#[test]
fn kafka_13_partitions_keys_go_where_java_puts_them() {
    keyed_placement_matches_java("kafka", &kafka_bootstrap(), Some(13));
}

#[test]
fn tansu_keys_go_where_java_puts_them() {
    keyed_placement_matches_java("tansu", Broker::Tansu.bootstrap(), None);
}

/// One record as sent.
struct Sent {
    partition: Option<i32>,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

fn sent(
    partition: Option<i32>,
    timestamp: Option<i64>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: Vec<Header>,
) -> Sent {
    Sent {
        partition,
        timestamp,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers,
    }
}

/// Keys, null keys, empty and null values, binary data, headers (a null
/// one, an empty one, repeated and non-ASCII names), explicit and implicit
/// timestamps, explicit partitions, a big value and a run of small records
/// that share batches.
fn varied_records(partitions: i32) -> Vec<Sent> {
    let ts = 1_700_000_000_123i64;
    let binary: Vec<u8> = (0..=255u8).collect();
    let mut v = vec![
        sent(Some(0), Some(ts), Some(b"k1"), Some(b"v1"), vec![]),
        sent(None, Some(ts + 1), None, Some(b"no key"), vec![]),
        sent(
            Some(1),
            Some(ts + 2),
            None,
            Some(b"no key, partition 1"),
            vec![],
        ),
        sent(None, Some(ts + 3), Some(b""), Some(b""), vec![]),
        sent(None, Some(ts + 4), Some(b"tombstone"), None, vec![]),
        sent(
            Some(2),
            Some(ts + 5),
            None,
            None,
            vec![Header::new("only", "headers")],
        ),
        sent(
            None,
            Some(ts - 86_400_000),
            Some(&binary),
            Some(&binary),
            vec![
                Header::new("h1", "x"),
                Header::null("null-header"),
                Header::new("empty", ""),
                Header::new("h1", binary.clone()),
                Header::new("ключ-é-🦀", "non-ascii name"),
                Header::new("", "empty name"),
            ],
        ),
        sent(
            None,
            None,
            Some(b"send time"),
            Some(b"no timestamp"),
            vec![],
        ),
        sent(
            Some(0),
            None,
            None,
            Some(b"send time, no key"),
            vec![Header::null("n")],
        ),
        sent(None, Some(0), Some(b"epoch"), Some(b"timestamp 0"), vec![]),
        sent(
            None,
            Some(ts),
            Some(b"big"),
            Some(&vec![b'z'; 200_000]),
            vec![Header::new("size", "200000")],
        ),
    ];
    for i in 0..60u32 {
        let key = format!("run-{}", i % 7).into_bytes();
        let value = format!("value {i}").into_bytes();
        let headers = if i % 3 == 0 {
            vec![Header::new("i", i.to_string()), Header::null("x")]
        } else {
            vec![]
        };
        v.push(sent(
            (i % 5 == 0).then(|| (i as i32) % partitions),
            (i % 2 == 0).then(|| ts + 1000 + i64::from(i)),
            (i % 4 != 1).then_some(key.as_slice()),
            (i % 6 != 5).then_some(value.as_slice()),
            headers,
        ));
    }
    v
}

fn short(b: &Option<Vec<u8>>) -> String {
    match b {
        None => "null".into(),
        Some(b) if b.len() <= 40 => format!("{:?}", hex(b)),
        Some(b) => format!("{}.. ({} bytes)", hex(&b[..20]), b.len()),
    }
}

fn by_position(mut v: Vec<Consumed>) -> Vec<Consumed> {
    v.sort_by_key(|c| (c.partition, c.offset));
    v
}

/// Both readers saw the same records: compared field by field so that a
/// difference names the record and the field instead of dumping 200 kB.
fn assert_same(what: &str, a: &[Consumed], b: &[Consumed]) {
    assert_eq!(a.len(), b.len(), "{what}: record counts");
    for (x, y) in a.iter().zip(b) {
        let at = format!("{what}: partition {} offset {}", x.partition, x.offset);
        assert_eq!((x.partition, x.offset), (y.partition, y.offset), "{what}");
        assert!(
            x.key == y.key,
            "{at}: key {} vs {}",
            short(&x.key),
            short(&y.key)
        );
        assert!(
            x.value == y.value,
            "{at}: value {} vs {}",
            short(&x.value),
            short(&y.value)
        );
        assert_eq!(x.headers, y.headers, "{at}: headers");
        assert_eq!(x.timestamp_type, y.timestamp_type, "{at}: timestamp type");
        assert_eq!(x.timestamp, y.timestamp, "{at}: timestamp");
    }
}

/// Sends [`varied_records`] to a fresh Kafka topic (created with `configs`)
/// and checks that librdkafka, Java read_committed and Java
/// read_uncommitted all read exactly those records, identically.
/// `timestamp_type` is what the readers must report (1 CreateTime, 2
/// LogAppendTime); either way each record's timestamp must equal what
/// our `RecordMetadata` reported.
fn two_readers_agree(configs: &[(&str, &str)], timestamp_type: i64) {
    let bootstrap = kafka_bootstrap();
    let topic = topic("java-readers");
    let partitions = 3;
    create_topic(&bootstrap, &topic, partitions, 3, configs);
    let records = varied_records(partitions);
    let p = bytes_producer(&bootstrap);
    let handles: Vec<_> = records
        .iter()
        .map(|r| {
            p.send(ProducerRecord::with_timestamp(
                topic.as_str(),
                r.partition,
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                r.headers.clone(),
            ))
            .unwrap()
        })
        .collect();
    let metas: Vec<RecordMetadata> = wait_all(handles).into_iter().map(|r| r.unwrap()).collect();
    p.close().unwrap();
    let mut at: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for (i, (r, m)) in records.iter().zip(&metas).enumerate() {
        if let Some(part) = r.partition {
            assert_eq!(m.partition(), part, "record {i}: explicit partition");
        }
        assert!(m.has_offset() && m.has_timestamp(), "record {i}: {m:?}");
        assert!(
            at.insert((m.partition(), m.offset()), i).is_none(),
            "record {i}: offset reported twice: {m}"
        );
    }

    let n = records.len();
    let librdkafka = by_position(consume(&bootstrap, &topic, n, T));
    let java = by_position(java_consume(&bootstrap, &topic, n, T, true));
    let java_uncommitted = by_position(java_consume(&bootstrap, &topic, n, T, false));
    assert_same("librdkafka vs Java", &librdkafka, &java);
    assert_same(
        "Java read_committed vs read_uncommitted",
        &java,
        &java_uncommitted,
    );

    // ...and they read what we sent, where our producer said it went.
    for c in &java {
        let i = *at
            .get(&(c.partition, c.offset))
            .unwrap_or_else(|| panic!("read {}@{} that we never sent", c.partition, c.offset));
        let (r, m) = (&records[i], &metas[i]);
        assert!(
            c.key == r.key,
            "record {i}: key {} sent {}",
            short(&c.key),
            short(&r.key)
        );
        assert!(
            c.value == r.value,
            "record {i}: value {} sent {}",
            short(&c.value),
            short(&r.value)
        );
        let headers: Vec<(String, Option<Vec<u8>>)> = r
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect();
        assert_eq!(c.headers, headers, "record {i}: headers");
        assert_eq!(c.timestamp_type, timestamp_type, "record {i}");
        assert_eq!(
            c.timestamp,
            m.timestamp(),
            "record {i}: timestamp read vs our RecordMetadata"
        );
        match (timestamp_type, r.timestamp) {
            (1, Some(t)) => assert_eq!(c.timestamp, t, "record {i}: CreateTime as sent"),
            _ => assert!(
                (c.timestamp - common::now_ms()).abs() < 600_000,
                "record {i}: timestamp {} is not about now",
                c.timestamp
            ),
        }
    }
}

#[test]
fn java_consumer_and_librdkafka_read_the_same_records() {
    two_readers_agree(&[], 1);
}

#[test]
fn java_consumer_and_librdkafka_agree_on_log_append_time() {
    two_readers_agree(&[("message.timestamp.type", "LogAppendTime")], 2);
}
