//! Synchronous sends: each record is sent with `send(record)?.get()`, which
//! waits for the broker's acknowledgement before the next record is sent.
//! Simple, and every record's outcome is known at once, but slow: one
//! record per round trip. See `async_callback` for the fast way.
//!
//! ```sh
//! cargo run --example sync_send -- [BOOTSTRAP] [TOPIC] [COUNT]
//! ```
//! BOOTSTRAP defaults to `$BOOTSTRAP_SERVERS`, then `localhost:9092`;
//! TOPIC to `sync-send-example`; COUNT to 10.
//!
//! Prints one line per record: `key-3 -> topic T partition 1 offset 42`.

use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .or_else(|| std::env::var("BOOTSTRAP_SERVERS").ok())
        .unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "sync-send-example".into());
    let count: u32 = args.next().map_or(Ok(10), |n| n.parse())?;

    let config = ProducerConfig::new()
        .bootstrap_servers(bootstrap)
        .client_id("sync-send-example");
    let producer = Producer::new(config, StringSerializer, StringSerializer)?;

    for i in 0..count {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        // `send` hands the record to the producer; `get` blocks until the
        // broker has it (or it failed: the `?` then ends the program).
        let meta = producer
            .send(ProducerRecord::with_key(
                topic.as_str(),
                key.as_str(),
                value.as_str(),
            ))?
            .get()?;
        println!(
            "{key} -> topic {} partition {} offset {}",
            meta.topic(),
            meta.partition(),
            meta.offset()
        );
    }
    producer.close()?;
    Ok(())
}
