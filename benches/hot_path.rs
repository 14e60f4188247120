//! Micro-benchmarks of the per-record work `send` does on the caller's
//! thread: murmur2 of a key, sizing and encoding a record into a batch
//! buffer, and sealing a batch (header + CRC-32C). End-to-end numbers come
//! from `examples/producer_perf_test.rs`.
//!
//! ```sh
//! cargo bench --bench hot_path
//! ```

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kafka_producer::murmur2;
use kafka_producer::protocol::records::{
    body_size_with_deltas, record_fixed_size, write_record, BatchHeader,
};

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
}

criterion_group!(benches, bench);
criterion_main!(benches);
