//! End to end on the three real brokers (Apache Kafka's 3-node cluster,
//! Tansu and the 3-broker librdkafka mock): where records land, what an
//! independent consumer reads back, and what `send().get()` reports.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{consume, librdkafka_murmur2, topic, wait_all, Broker, BROKERS};
use kafka_producer::{
    Acks, ByteArraySerializer, Error, Header, Producer, ProducerRecord, StringSerializer,
};

const T: Duration = Duration::from_secs(60);

fn bytes_producer(cfg: kafka_producer::ProducerConfig) -> Producer<[u8], [u8]> {
    Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap()
}

#[test]
fn explicit_partitions_and_offsets_match_the_consumer() {
    for broker in BROKERS {
        let topic = topic("explicit");
        let p = bytes_producer(broker.config());
        let count = p.partitions_for(&topic).unwrap().len();
        assert_eq!(count, 4, "{broker:?} creates topics with 4 partitions");
        let mut handles = Vec::new();
        for i in 0..40u32 {
            let part = (i % count as u32) as i32;
            let value = format!("record-{i}").into_bytes();
            handles.push((
                part,
                value.clone(),
                p.send(ProducerRecord::new(topic.as_str(), value).partition(part))
                    .unwrap(),
            ));
        }
        let mut sent = BTreeMap::new();
        for (part, value, h) in handles {
            let m = h.get().unwrap_or_else(|e| panic!("{broker:?}: {e}"));
            assert_eq!(m.partition(), part);
            assert_eq!(m.topic(), topic);
            assert!(m.has_offset());
            assert_eq!(m.serialized_value_size(), value.len() as i32);
            assert_eq!(m.serialized_key_size(), -1);
            sent.insert(value, (m.partition(), m.offset()));
        }
        p.close().unwrap();
        let got = consume(broker.bootstrap(), &topic, 40, T);
        assert_eq!(got.len(), 40, "{broker:?}");
        for r in got {
            let v = r.value.unwrap();
            assert_eq!(
                sent[&v],
                (r.partition, r.offset),
                "{broker:?}: {}",
                String::from_utf8_lossy(&v)
            );
        }
    }
}

#[test]
fn keyed_records_go_where_librdkafka_murmur2_puts_them() {
    let mut keys: Vec<Vec<u8>> = common::MURMUR2_TEST_KEYS
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    for i in 0..200u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 24) as usize;
        keys.push(
            (0..len)
                .map(|j| (x >> (j % 8 * 8)) as u8 ^ i as u8)
                .collect(),
        );
    }
    for broker in BROKERS {
        let oracle_topic = topic("murmur-oracle");
        let ours_topic = topic("murmur-ours");
        let expected = librdkafka_murmur2(broker.bootstrap(), &oracle_topic, &keys);
        let p = bytes_producer(broker.config().linger(Duration::from_millis(20)));
        let handles: Vec<_> = keys
            .iter()
            .map(|k| {
                p.send(ProducerRecord::with_key(
                    ours_topic.as_str(),
                    k.as_slice(),
                    &b"v"[..],
                ))
                .unwrap()
            })
            .collect();
        let ours: Vec<i32> = wait_all(handles)
            .into_iter()
            .map(|r| r.unwrap().partition())
            .collect();
        assert_eq!(
            ours, expected,
            "{broker:?}: our partitions differ from librdkafka's murmur2_random"
        );
        assert_eq!(p.partitions_for(&ours_topic).unwrap().len(), 4);
        p.close().unwrap();
        // and the consumer finds each key in that partition
        let got = consume(broker.bootstrap(), &ours_topic, keys.len(), T);
        let by_key: BTreeMap<Vec<u8>, i32> = got
            .into_iter()
            .map(|r| (r.key.unwrap(), r.partition))
            .collect();
        for (k, part) in keys.iter().zip(&expected) {
            assert_eq!(by_key[k], *part, "{broker:?}: key {:?}", common::hex(k));
        }
    }
}

#[test]
fn keyless_records_spread_by_the_sticky_partitioner() {
    for broker in BROKERS {
        let topic = topic("sticky");
        // ~10 records per batch of 1000 bytes
        let p = bytes_producer(
            broker
                .config()
                .batch_size(1000)
                .linger(Duration::from_millis(50)),
        );
        let n = 400;
        let handles: Vec<_> = (0..n)
            .map(|i| {
                p.send(ProducerRecord::new(
                    topic.as_str(),
                    format!("{i:0>90}").into_bytes(),
                ))
                .unwrap()
            })
            .collect();
        let parts: Vec<i32> = wait_all(handles)
            .into_iter()
            .map(|r| r.unwrap().partition())
            .collect();
        p.close().unwrap();
        // Stays on one partition for about a batch, then switches.
        let runs = 1 + parts.windows(2).filter(|w| w[0] != w[1]).count();
        let distinct: BTreeSet<i32> = parts.iter().copied().collect();
        assert!(
            distinct.len() >= 3,
            "{broker:?}: only partitions {distinct:?} used"
        );
        assert!(
            runs >= n / 20 && runs <= n / 5,
            "{broker:?}: {runs} runs for {n} records: {parts:?}"
        );
        let got = consume(broker.bootstrap(), &topic, n, T);
        let mut per_partition = BTreeMap::new();
        for r in &got {
            *per_partition.entry(r.partition).or_insert(0) += 1;
        }
        let expected: BTreeMap<i32, i32> = parts.iter().fold(BTreeMap::new(), |mut m, p| {
            *m.entry(*p).or_insert(0) += 1;
            m
        });
        assert_eq!(per_partition, expected, "{broker:?}");
    }
}

#[test]
fn keys_values_headers_and_timestamps_read_back_intact() {
    for broker in BROKERS {
        let topic = topic("intact");
        let p = bytes_producer(broker.config());
        let ts = 1_700_000_000_123i64;
        let binary: Vec<u8> = (0..=255u8).collect();
        let big = vec![b'z'; 300_000];
        type Rec = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<Header>, Option<i64>);
        let records: Vec<Rec> = vec![
            (Some(b"k1".to_vec()), Some(b"v1".to_vec()), vec![], Some(ts)),
            (None, Some(b"no key".to_vec()), vec![], Some(ts + 1)),
            (Some(vec![]), Some(vec![]), vec![], Some(ts + 2)),
            (Some(b"tomb".to_vec()), None, vec![], Some(ts + 3)),
            (
                Some(binary.clone()),
                Some(binary.clone()),
                vec![
                    Header::new("h1", "x"),
                    Header::null("nullh"),
                    Header::new("h1", binary.clone()),
                ],
                Some(ts - 50_000),
            ),
            (
                Some(b"big".to_vec()),
                Some(big.clone()),
                vec![Header::new("size", "300000")],
                None,
            ),
        ];
        let mut offsets = Vec::new();
        for (k, v, h, t) in &records {
            let r = ProducerRecord::with_timestamp(
                topic.as_str(),
                Some(0),
                *t,
                k.as_deref(),
                v.as_deref(),
                h.clone(),
            );
            offsets.push(p.send(r).unwrap().get().unwrap());
        }
        p.close().unwrap();
        let got = consume(broker.bootstrap(), &topic, records.len(), T);
        assert_eq!(got.len(), records.len());
        for ((k, v, h, t), (c, m)) in records.iter().zip(got.iter().zip(&offsets)) {
            assert_eq!(&c.key, k, "{broker:?}");
            assert_eq!(&c.value, v, "{broker:?}");
            let hs: Vec<(String, Option<Vec<u8>>)> =
                h.iter().map(|h| (h.key.clone(), h.value.clone())).collect();
            assert_eq!(c.headers, hs, "{broker:?}");
            assert_eq!(c.timestamp_type, 1, "{broker:?}: CreateTime");
            match t {
                Some(t) => assert_eq!(c.timestamp, *t, "{broker:?}"),
                None => assert!(
                    (c.timestamp - common::now_ms()).abs() < 600_000,
                    "{broker:?}: send time"
                ),
            }
            assert_eq!(
                (c.partition, c.offset),
                (m.partition(), m.offset()),
                "{broker:?}"
            );
        }
    }
}

#[test]
fn acks_zero_completes_on_write_with_unknown_offsets() {
    for broker in BROKERS {
        let topic = topic("acks0");
        let p = bytes_producer(broker.config().acks(Acks::None));
        let handles: Vec<_> = (0..50)
            .map(|i| {
                p.send(
                    ProducerRecord::new(topic.as_str(), format!("a{i}").into_bytes()).partition(1),
                )
                .unwrap()
            })
            .collect();
        for r in wait_all(handles) {
            let m = r.unwrap();
            assert_eq!(m.offset(), -1, "{broker:?}: acks=0 has no offset");
            assert_eq!(m.partition(), 1);
        }
        // A second wave after the brokers' unsolicited answers arrived: the
        // correlation ids must still line up.
        let handles: Vec<_> = (50..100)
            .map(|i| {
                p.send(
                    ProducerRecord::new(topic.as_str(), format!("a{i}").into_bytes()).partition(1),
                )
                .unwrap()
            })
            .collect();
        assert!(wait_all(handles).iter().all(|r| r.is_ok()));
        p.close().unwrap();
        let got = consume(broker.bootstrap(), &topic, 100, T);
        let values: Vec<String> = got
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
            .collect();
        let want: Vec<String> = (0..100).map(|i| format!("a{i}")).collect();
        assert_eq!(values, want, "{broker:?}: partition order");
    }
}

#[test]
fn acks_one_and_all_are_acknowledged() {
    for broker in BROKERS {
        for acks in [Acks::Leader, Acks::All] {
            let topic = topic("acks");
            let p = bytes_producer(broker.config().acks(acks));
            let m = p
                .send(ProducerRecord::new(topic.as_str(), &b"x"[..]))
                .unwrap()
                .get()
                .unwrap();
            assert!(m.offset() >= 0, "{broker:?} {acks:?}");
        }
    }
}

#[test]
fn flush_sends_at_once_despite_a_long_linger() {
    for broker in BROKERS {
        let topic = topic("flush");
        let p = bytes_producer(
            broker
                .config()
                .linger(Duration::from_secs(600))
                .delivery_timeout(Duration::from_secs(900)),
        );
        let handles: Vec<_> = (0..10)
            .map(|i| {
                p.send(ProducerRecord::new(topic.as_str(), vec![i as u8]))
                    .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            handles.iter().all(|h| !h.is_done()),
            "{broker:?}: linger holds the records"
        );
        p.flush().unwrap();
        assert!(
            handles.iter().all(|h| h.is_done()),
            "{broker:?}: flush waited for every record"
        );
        assert!(wait_all(handles).iter().all(|r| r.is_ok()));
        consume(broker.bootstrap(), &topic, 10, T);
    }
}

#[test]
fn close_delivers_what_was_sent_and_refuses_new_records() {
    for broker in BROKERS {
        let topic = topic("close");
        let p = bytes_producer(
            broker
                .config()
                .linger(Duration::from_secs(600))
                .delivery_timeout(Duration::from_secs(900)),
        );
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..20 {
            let d = done.clone();
            let _ = p
                .send_with_callback(ProducerRecord::new(topic.as_str(), vec![i]), move |r| {
                    r.unwrap();
                    d.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
        p.close().unwrap();
        assert_eq!(
            done.load(Ordering::SeqCst),
            20,
            "{broker:?}: every callback ran before close returned"
        );
        let e = p
            .send(ProducerRecord::new(topic.as_str(), &b"late"[..]))
            .unwrap_err();
        assert!(matches!(e, Error::Closed), "{e}");
        p.close().unwrap(); // twice is fine
        consume(broker.bootstrap(), &topic, 20, T);
    }
}

#[test]
fn dropping_the_producer_delivers_buffered_records() {
    for broker in BROKERS {
        let topic = topic("drop");
        let p = bytes_producer(broker.config().linger(Duration::from_secs(5)));
        let handles: Vec<_> = (0..5)
            .map(|i| {
                p.send(ProducerRecord::new(topic.as_str(), vec![i]))
                    .unwrap()
            })
            .collect();
        drop(p);
        for r in wait_all(handles) {
            assert!(r.unwrap().has_offset(), "{broker:?}");
        }
        consume(broker.bootstrap(), &topic, 5, T);
    }
}

#[test]
fn many_threads_share_one_producer() {
    for broker in BROKERS {
        let topic = topic("threads");
        let p = Producer::new(broker.config(), StringSerializer, StringSerializer).unwrap();
        let threads = 8;
        let per = 500;
        let ok = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (p, topic, ok) = (&p, &topic, &ok);
                s.spawn(move || {
                    let hs: Vec<_> = (0..per)
                        .map(|i| {
                            let key = format!("t{t}-{i}");
                            p.send(ProducerRecord::with_key(topic.as_str(), key.as_str(), "v"))
                                .unwrap()
                        })
                        .collect();
                    for h in hs {
                        h.get().unwrap();
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(ok.load(Ordering::Relaxed), threads * per);
        p.close().unwrap();
        let got = consume(broker.bootstrap(), &topic, threads * per, T);
        let keys: BTreeSet<Vec<u8>> = got.into_iter().map(|r| r.key.unwrap()).collect();
        assert_eq!(
            keys.len(),
            threads * per,
            "{broker:?}: every record exactly once"
        );
    }
}

#[test]
fn typed_errors_for_bad_records() {
    for broker in BROKERS {
        let topic = topic("errors");
        let p = bytes_producer(
            broker
                .config()
                .max_request_size(10_000)
                .max_block(Duration::from_millis(1500)),
        );
        // larger than max.request.size
        let e = p
            .send(ProducerRecord::new(topic.as_str(), vec![0u8; 20_000]))
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::RecordTooLarge {
                    setting: "max.request.size",
                    ..
                }
            ),
            "{e}"
        );
        // a partition the topic does not have: metadata never shows it
        let e = p
            .send(ProducerRecord::new(topic.as_str(), &b"x"[..]).partition(99))
            .unwrap_err();
        match e {
            Error::MetadataTimeout {
                partition: Some(99),
                partition_count: Some(4),
                ..
            } => {}
            e => panic!("{broker:?}: {e}"),
        }
        let e = p
            .send(ProducerRecord::new(topic.as_str(), &b"x"[..]).partition(-1))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidPartition { .. }), "{e}");
    }
}

#[test]
fn send_then_get_works_one_record_at_a_time() {
    for broker in BROKERS {
        let topic = topic("sync");
        let p = Producer::new(
            broker.config().linger(Duration::ZERO),
            StringSerializer,
            StringSerializer,
        )
        .unwrap();
        let mut last = BTreeMap::new();
        for i in 0..50 {
            let m = p
                .send(ProducerRecord::with_key(
                    topic.as_str(),
                    "same-key",
                    format!("{i}"),
                ))
                .unwrap()
                .get()
                .unwrap();
            if let Some(prev) = last.insert(m.partition(), m.offset()) {
                assert_eq!(m.offset(), prev + 1, "{broker:?}: offsets increase by one");
            }
        }
        assert_eq!(last.len(), 1, "one key, one partition");
    }
}

#[test]
fn kafka_tansu_and_mock_are_different_brokers() {
    // Guards against the variables pointing at the same broker, which
    // would make every test above run on one implementation only.
    let all: BTreeSet<&str> = BROKERS.iter().map(|b| b.bootstrap()).collect();
    assert_eq!(all.len(), BROKERS.len(), "{all:?}");
    assert_eq!(
        Broker::Mock.bootstrap().split(',').count(),
        3,
        "the mock has 3 brokers"
    );
    assert_eq!(
        Broker::Kafka.bootstrap().split(',').count(),
        3,
        "the Kafka cluster has 3 nodes"
    );
}

#[test]
fn callbacks_may_panic_and_may_send_but_not_flush() {
    for broker in BROKERS {
        let topic = topic("callbacks");
        let p = Arc::new(bytes_producer(broker.config()));
        let flush_refused = Arc::new(AtomicUsize::new(0));
        let nested = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (p2, f2, n2, t2) = (
            p.clone(),
            flush_refused.clone(),
            nested.clone(),
            topic.clone(),
        );
        let first = p
            .send_with_callback(
                ProducerRecord::new(topic.as_str(), &b"outer"[..]).partition(0),
                move |r| {
                    r.unwrap();
                    if matches!(p2.flush(), Err(Error::InvalidOperation(_))) {
                        f2.fetch_add(1, Ordering::SeqCst);
                    }
                    // a send from the I/O thread must not block; it is accepted
                    let h = p2
                        .send(ProducerRecord::new(t2.as_str(), &b"nested"[..]).partition(0))
                        .unwrap();
                    n2.lock().unwrap().push(h);
                },
            )
            .unwrap();
        first.get().unwrap();
        let panicking = p
            .send_with_callback(
                ProducerRecord::new(topic.as_str(), &b"boom"[..]).partition(1),
                |_| panic!("a user callback panics (expected in this test)"),
            )
            .unwrap();
        assert!(
            panicking.get().is_ok(),
            "{broker:?}: the panic does not change the outcome"
        );
        // The I/O thread survived: more records complete.
        let after = p
            .send(ProducerRecord::new(topic.as_str(), &b"after"[..]).partition(1))
            .unwrap();
        assert!(after.get().unwrap().has_offset(), "{broker:?}");
        assert_eq!(
            flush_refused.load(Ordering::SeqCst),
            1,
            "{broker:?}: flush refused in a callback"
        );
        let nested_handle = nested.lock().unwrap().pop().expect("nested send happened");
        assert!(nested_handle.get().unwrap().has_offset());
        p.close().unwrap();
        let got = consume(broker.bootstrap(), &topic, 4, T);
        let mut values: Vec<Vec<u8>> = got.into_iter().map(|r| r.value.unwrap()).collect();
        values.sort();
        assert_eq!(
            values,
            vec![
                b"after".to_vec(),
                b"boom".to_vec(),
                b"nested".to_vec(),
                b"outer".to_vec()
            ]
        );
    }
}

#[test]
fn round_robin_partitioner_cycles_through_the_partitions() {
    for broker in BROKERS {
        let topic = topic("rr");
        let p = bytes_producer(broker.config().round_robin_partitioner());
        // keys are ignored by RoundRobinPartitioner
        let handles: Vec<_> = (0..12u8)
            .map(|i| {
                p.send(ProducerRecord::with_key(
                    topic.as_str(),
                    &b"same"[..],
                    vec![i],
                ))
                .unwrap()
            })
            .collect();
        let parts: Vec<i32> = wait_all(handles)
            .into_iter()
            .map(|r| r.unwrap().partition())
            .collect();
        let first = parts[0];
        let want: Vec<i32> = (0..12).map(|i| (first + i) % 4).collect();
        assert_eq!(parts, want, "{broker:?}");
        p.close().unwrap();
        let got = consume(broker.bootstrap(), &topic, 12, T);
        for r in got {
            assert_eq!(
                r.partition,
                parts[r.value.unwrap()[0] as usize],
                "{broker:?}"
            );
        }
    }
}

#[test]
fn acks_zero_with_a_window_of_one_keeps_flowing() {
    // acks=0 requests free their window slot when written, with no
    // response to wake the I/O thread: it must go on by itself.
    for broker in BROKERS {
        let topic = topic("acks0-window");
        let p = bytes_producer(
            broker
                .config()
                .acks(Acks::None)
                .max_in_flight_requests_per_connection(1)
                .batch_size(1024)
                .linger(Duration::ZERO)
                .request_timeout(Duration::from_secs(10))
                .delivery_timeout(Duration::from_secs(20)),
        );
        let n = 5000;
        let handles: Vec<_> = (0..n)
            .map(|i| {
                p.send(
                    ProducerRecord::new(topic.as_str(), format!("{i:0>100}").into_bytes())
                        .partition(0),
                )
                .unwrap()
            })
            .collect();
        for r in wait_all(handles) {
            assert_eq!(r.unwrap_or_else(|e| panic!("{broker:?}: {e}")).offset(), -1);
        }
        p.close().unwrap();
        consume(broker.bootstrap(), &topic, n, T);
    }
}
