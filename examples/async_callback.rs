//! Asynchronous sends with callbacks: `send_with_callback` returns as soon
//! as the record is buffered, and the callback runs later, on one of the
//! producer's I/O threads, with the record's metadata or its error. Then
//! `flush()` waits for every record sent so far, and `close()` shuts down.
//!
//! ```sh
//! cargo run --example async_callback -- [BOOTSTRAP] [TOPIC] [COUNT]
//! ```
//! BOOTSTRAP defaults to `$BOOTSTRAP_SERVERS`, then `localhost:9092`;
//! TOPIC to `async-callback-example`; COUNT to 100.
//!
//! Each callback prints `value-7 -> partition 2 offset 13` (or the error).
//! The last lines show that every callback had run by the time `flush()`
//! returned: `after flush: 100 of 100 callbacks ran, 0 failed`. The exit
//! status is 1 if any record failed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .or_else(|| std::env::var("BOOTSTRAP_SERVERS").ok())
        .unwrap_or_else(|| "localhost:9092".into());
    let topic = args
        .next()
        .unwrap_or_else(|| "async-callback-example".into());
    let count: u32 = args.next().map_or(Ok(100), |n| n.parse())?;

    let config = ProducerConfig::new()
        .bootstrap_servers(bootstrap)
        .client_id("async-callback-example");
    let producer = Producer::new(config, StringSerializer, StringSerializer)?;

    let completed = Arc::new(AtomicU32::new(0));
    let failed = Arc::new(AtomicU32::new(0));
    for i in 0..count {
        let value = format!("value-{i}");
        let record = ProducerRecord::new(topic.as_str(), value.clone());
        let (completed, failed) = (completed.clone(), failed.clone());
        // The callback is `Send + 'static`: it owns what it uses. The
        // returned handle is dropped; the callback is enough here.
        producer.send_with_callback(record, move |result| {
            match result {
                Ok(meta) => println!(
                    "{value} -> partition {} offset {}",
                    meta.partition(),
                    meta.offset()
                ),
                Err(e) => {
                    eprintln!("{value} failed: {e}");
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            completed.fetch_add(1, Ordering::Relaxed);
        })?;
    }

    // flush() returns once every record sent before it has its outcome,
    // and callbacks run before a record counts as complete.
    producer.flush()?;
    let (done, bad) = (
        completed.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    println!("after flush: {done} of {count} callbacks ran, {bad} failed");
    producer.close()?;
    println!(
        "closed: {} of {count} callbacks ran",
        completed.load(Ordering::Relaxed)
    );
    if done != count || bad > 0 {
        std::process::exit(1);
    }
    Ok(())
}
