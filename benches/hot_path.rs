//! Micro-benchmarks of the per-record work `send` does on the caller's
//! thread: murmur2 of a key, sizing and encoding a record into a batch
//! buffer, sealing a batch (header + CRC-32C), and compressing a batch's
//! records with each codec (what sealing a compressed batch costs, on
//! the I/O thread), and whole `send` calls into an in-process
//! [`MockCluster`](kafka_producer::mock::MockCluster): the caller's share
//! alone (records pile into open batches) and `send` plus `flush` (the I/O
//! thread's share too, on another core). Process-level numbers against
//! other producers come from `benches/compare.sh` and
//! `examples/producer_perf_test.rs`.
//!
//! ```sh
//! cargo bench --bench hot_path
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kafka_producer::mock::MockCluster;
use kafka_producer::protocol::records::{
    body_size_with_deltas, record_fixed_size, write_record, BatchHeader,
};
use kafka_producer::Compression;
use kafka_producer::{murmur2, ByteArraySerializer, Producer, ProducerConfig, ProducerRecord};

fn bench(c: &mut Criterion) {
    let key = b"customer-0000123";
    c.bench_function("murmur2/16B key", |b| b.iter(|| murmur2(black_box(key))));

    let value = vec![b'x'; 100];
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 x 100B records into a batch buffer", |b| {
        let mut buf = Vec::with_capacity(1 << 20);
        b.iter(|| {
            buf.clear();
            for i in 0..1000i32 {
                let fixed = record_fixed_size(None, Some(&value), std::iter::empty());
                let body = body_size_with_deltas(fixed, i, 0);
                write_record(&mut buf, body, i, 0, None, Some(&value), std::iter::empty());
            }
            black_box(buf.len())
        })
    });
    g.finish();

    let mut records = Vec::new();
    for i in 0..10_000i32 {
        let fixed = record_fixed_size(None, Some(&value), std::iter::empty());
        write_record(
            &mut records,
            body_size_with_deltas(fixed, i, 0),
            i,
            0,
            None,
            Some(&value),
            std::iter::empty(),
        );
    }
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Bytes(records.len() as u64));
    g.bench_function("header + CRC-32C of a 1 MB batch", |b| {
        b.iter(|| BatchHeader::new(10_000, 0, 0).encode(black_box(&records)))
    });
    g.finish();

    // Sealing a compressed batch: the records section compressed once, as
    // `seal` does. The values are text that varies per record (a counter
    // and a few fields), so the codecs have something to find but not a
    // run of one byte.
    let mut text = Vec::new();
    for i in 0..10_000i32 {
        let v = format!(
            "{{\"id\":{i},\"user\":\"user-{}\",\"event\":\"click\",\"ts\":{}}}",
            i % 97,
            1_700_000_000_000i64 + i64::from(i) * 13
        );
        let fixed = record_fixed_size(None, Some(v.as_bytes()), std::iter::empty());
        write_record(
            &mut text,
            body_size_with_deltas(fixed, i, 0),
            i,
            0,
            None,
            Some(v.as_bytes()),
            std::iter::empty(),
        );
    }
    let mut g = c.benchmark_group("compress");
    g.throughput(Throughput::Bytes(text.len() as u64));
    for codec in [
        Compression::Gzip(-1),
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd(3),
    ] {
        let mut out = Vec::with_capacity(text.len());
        g.bench_function(format!("{} of 10k JSON-ish records", codec.name()), |b| {
            b.iter(|| {
                out.clear();
                codec.compress(black_box(&text), &mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

/// How one sample of the `send` group is timed.
#[derive(Clone, Copy)]
enum Timed {
    /// Only the `send` calls: the caller thread's share, while the I/O
    /// threads drain and recycle batches on other cores. (With a linger
    /// long enough that records only pile up, this would mostly time the
    /// first touch of fresh pool memory.)
    Sends,
    /// The `send` calls and the `flush` after them: until the cluster
    /// has answered for every record.
    SendsAndFlush,
    /// As `SendsAndFlush`, with a capturing callback per record.
    CallbackAndFlush,
}

/// `iters` sends of 100-byte values (no key) into a fresh 3-broker
/// `MockCluster` with 6 partitions, timed as `timed` says. Each sample gets
/// its own cluster, so the model's in-memory logs never hold more than one
/// sample's records. Any failed send or record panics the bench.
fn send_sample(iters: u64, linger: Duration, timed: Timed) -> Duration {
    let cluster = MockCluster::new(3).expect("mock cluster");
    cluster.create_topic("bench", 6).expect("topic");
    let config = ProducerConfig::new()
        .bootstrap_servers(cluster.bootstrap())
        .linger(linger)
        .batch_size(1_000_000)
        .buffer_memory(256 << 20);
    let p = Producer::new(config, ByteArraySerializer, ByteArraySerializer).expect("producer");
    let value = [b'x'; 100];
    // Metadata and connections before the clock starts.
    // (`flush` sends it at once, whatever the linger.)
    let warm = p
        .send(ProducerRecord::new("bench", &value[..]))
        .expect("warm-up send");
    p.flush().expect("warm-up flush");
    warm.get().expect("warm-up record");
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    for _ in 0..iters {
        let r = ProducerRecord::new("bench", &value[..]);
        let sent = match timed {
            Timed::CallbackAndFlush => {
                let acked = acked.clone();
                p.send_with_callback(r, move |m| {
                    if m.is_ok() {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                })
            }
            _ => p.send(r),
        };
        black_box(sent.expect("send"));
    }
    let sends = start.elapsed();
    p.flush().expect("flush");
    let total = start.elapsed();
    p.close().expect("close");
    if let Timed::CallbackAndFlush = timed {
        assert_eq!(
            acked.load(Ordering::Relaxed),
            iters,
            "callbacks that saw success"
        );
    }
    let stored: i64 = (0..6)
        .map(|part| {
            cluster
                .with_model(|m| m.end_offset("bench", part))
                .expect("log")
        })
        .sum();
    assert_eq!(stored, iters as i64 + 1, "records in the mock's logs");
    match timed {
        Timed::Sends => sends,
        Timed::SendsAndFlush | Timed::CallbackAndFlush => total,
    }
}

fn bench_send(c: &mut Criterion) {
    let mut g = c.benchmark_group("send");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("100B, no key: the caller's share (linger 5 ms)", |b| {
        b.iter_custom(|iters| send_sample(iters, Duration::from_millis(5), Timed::Sends))
    });
    g.bench_function("100B, no key: send + flush (linger 5 ms)", |b| {
        b.iter_custom(|iters| send_sample(iters, Duration::from_millis(5), Timed::SendsAndFlush))
    });
    g.bench_function(
        "100B, capturing callback: send + flush (linger 5 ms)",
        |b| {
            b.iter_custom(|iters| {
                send_sample(iters, Duration::from_millis(5), Timed::CallbackAndFlush)
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench, bench_send);
criterion_main!(benches);
