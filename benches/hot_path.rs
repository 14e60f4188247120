//! Micro-benchmarks of the per-record work `send` does on the caller's
//! thread: murmur2 of a key, sizing and encoding a record into a batch
//! buffer, sealing a batch (header + CRC-32C), and compressing a batch's
//! records with each codec (what sealing a compressed batch costs, on
//! the I/O thread). End-to-end numbers come
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
use kafka_producer::Compression;

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

criterion_group!(benches, bench);
criterion_main!(benches);
