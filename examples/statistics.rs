//! The statistics callback (librdkafka's `statistics.interval.ms` and
//! `stats_cb`): every interval, the producer's metrics as one JSON line on
//! stdout.
//!
//! ```sh
//! cargo run --example statistics -- localhost:9092 my-topic 1000
//! ```
//!
//! Sends COUNT records (default 100) to TOPIC, flushes, waits for one more
//! snapshot (so the last line counts every record) and closes. Each line
//! is `MetricsSnapshot::to_json`: `{"producer-metrics":{...},
//! "producer-topic-metrics":{"<topic>":{...}},
//! "producer-node-metrics":{"node-<id>":{...}}}`, with Java's metric names.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(bootstrap), Some(topic)) = (args.next(), args.next()) else {
        eprintln!("usage: statistics BOOTSTRAP TOPIC [COUNT]");
        std::process::exit(2);
    };
    let count: u64 = args.next().map_or(Ok(100), |c| c.parse())?;
    let lines = Arc::new(AtomicU64::new(0));
    let printed = lines.clone();
    let config = ProducerConfig::new()
        .bootstrap_servers(bootstrap)
        .statistics_interval(Duration::from_millis(200))
        .statistics_callback(move |stats| {
            // One line, written at once, so lines never interleave.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", stats.to_json());
            let _ = out.flush();
            printed.fetch_add(1, Ordering::SeqCst);
        });
    let producer = Producer::new(config, StringSerializer, StringSerializer)?;
    for i in 0..count {
        producer.send(ProducerRecord::with_key(
            topic.as_str(),
            format!("key-{i}"),
            format!("value-{i}"),
        ))?;
    }
    producer.flush()?;
    // Wait for a snapshot taken after the flush (two more lines: the one
    // being printed now may have been taken before it), at most 5 s.
    let target = lines.load(Ordering::SeqCst) + 2;
    let deadline = Instant::now() + Duration::from_secs(5);
    while lines.load(Ordering::SeqCst) < target && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    producer.close()?;
    Ok(())
}
