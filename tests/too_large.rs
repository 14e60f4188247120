//! Batches a broker refuses as too large (MESSAGE_TOO_LARGE) are split and
//! sent again, as Java's `splitAndReenqueue` does: every record still gets
//! exactly one completion, at the offset an independent consumer reads it
//! from, and `flush` waits for the pieces.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{consume, java, topic, Broker, MockCluster};
use kafka_producer::ErrorCode;
use kafka_producer::{ByteArraySerializer, Error, Producer, ProducerConfig, ProducerRecord};

fn producer(cfg: ProducerConfig) -> Producer<[u8], [u8]> {
    Producer::new(cfg, ByteArraySerializer, ByteArraySerializer).unwrap()
}

/// Sends `n` records of `size` bytes to partition 0 of `topic` with
/// callbacks, flushes, and checks that each succeeded once, in send order,
/// where the consumer finds it.
fn send_and_check(p: &Producer<[u8], [u8]>, bootstrap: &str, topic: &str, n: usize, size: usize) {
    let calls = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let mut v = format!("{i:06}").into_bytes();
            v.resize(size, b'x');
            let c = calls.clone();
            p.send_with_callback(ProducerRecord::new(topic, v).partition(0), move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    p.flush().unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        n,
        "one callback per record, before flush returned"
    );
    let offsets: Vec<i64> = handles
        .iter()
        .map(|h| h.get().unwrap_or_else(|e| panic!("{topic}: {e}")).offset())
        .collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "offsets in send order: {offsets:?}"
    );
    let got = consume(bootstrap, topic, n, Duration::from_secs(60));
    for (r, want) in got.iter().zip(&offsets) {
        let v = r.value.as_ref().unwrap();
        let i: usize = std::str::from_utf8(&v[..6]).unwrap().parse().unwrap();
        assert_eq!(
            r.offset, offsets[i],
            "record {i} read where its handle said"
        );
        assert_eq!(r.offset, *want, "the log holds the records in send order");
    }
}

/// Real Kafka, a topic whose max.message.bytes (20 kB) is far below our
/// batch.size (200 kB): each batch is refused and halved until it fits.
#[test]
fn kafka_batches_above_max_message_bytes_are_split_until_they_fit() {
    let bootstrap = Broker::Kafka.bootstrap();
    let topic = topic("too-large");
    java::create_topic(bootstrap, &topic, 1, 3, &[("max.message.bytes", "20000")]);
    let p = producer(
        Broker::Kafka
            .config()
            .batch_size(200_000)
            .max_request_size(1_000_000)
            .linger(Duration::from_millis(200))
            // order is promised with one request in flight (as in Java)
            .max_in_flight_requests_per_connection(1),
    );
    send_and_check(&p, bootstrap, &topic, 400, 1000);
    // 400 kB in 200 kB batches, split until under 20 kB: at least 8 splits.
    let splits = p
        .metrics()
        .value("producer-metrics", "batch-split-total")
        .unwrap();
    assert!(splits >= 8.0, "batch-split-total {splits}");
    // A single record above the limit cannot be split: it fails with the
    // broker's error, and only it.
    let big = p
        .send(ProducerRecord::new(topic.as_str(), vec![0u8; 30_000]).partition(0))
        .unwrap();
    match big.get() {
        Err(Error::Broker { code, .. }) => assert_eq!(code, ErrorCode::MESSAGE_TOO_LARGE),
        other => panic!("expected MESSAGE_TOO_LARGE, got {other:?}"),
    }
    p.close().unwrap();
}

/// The same with `enable.idempotence=true`: the halves carry their parent's
/// sequence range (first half from its base), so Kafka accepts them and
/// every later batch in order; Kafka's log shows one producer id and
/// consecutive sequences.
#[test]
fn kafka_splits_idempotent_batches_keeping_their_sequences() {
    let bootstrap = Broker::Kafka.bootstrap();
    let topic = topic("too-large-idem");
    java::create_topic(bootstrap, &topic, 1, 3, &[("max.message.bytes", "20000")]);
    let p = producer(
        Broker::Kafka
            .config()
            .batch_size(200_000)
            .max_request_size(1_000_000)
            .linger(Duration::from_millis(200))
            .enable_idempotence(true),
    );
    send_and_check(&p, bootstrap, &topic, 400, 1000);
    p.close().unwrap();
    let batches = java::dump_batches(&topic, 0);
    assert!(batches.len() > 1, "{batches:?}");
    for &(offset, seq, pid, _) in &batches {
        assert!(pid >= 0, "{batches:?}");
        assert_eq!(seq, offset, "sequences follow offsets: {batches:?}");
    }
}

/// The mock answers the next Produce with MESSAGE_TOO_LARGE: the batch is
/// split once and both halves land.
#[test]
fn an_injected_message_too_large_splits_the_batch() {
    let mut mock = MockCluster::start(1, &[("split", 1)]);
    let p = producer(
        ProducerConfig::new()
            .bootstrap_servers(mock.bootstrap.clone())
            .linger(Duration::from_millis(100))
            .max_in_flight_requests_per_connection(1),
    );
    p.partitions_for("split").unwrap();
    mock.command("errors 0 10");
    send_and_check(&p, &mock.bootstrap, "split", 50, 100);
    let splits = p
        .metrics()
        .value("producer-metrics", "batch-split-total")
        .unwrap();
    assert!(splits >= 1.0, "batch-split-total {splits}");
    p.close().unwrap();
}
