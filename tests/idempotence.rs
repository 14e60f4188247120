//! `enable.idempotence=true` on every broker: the producer gets its id
//! from InitProducerId, each partition's batches carry increasing
//! sequences (Tansu refuses a batch whose sequence is not the next one),
//! and the independent consumer reads every record once, in order.
//! Failover without duplicates is in `tests/kafka_nodes.rs`.

mod common;

use std::time::Duration;

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
