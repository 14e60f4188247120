//! A custom [`Partitioner`]: one heavy key (a "whale" customer that sends
//! far more than anyone else) gets partition 0 to itself, and every other
//! key is hashed over the remaining partitions, so the whale never slows
//! down anyone else's partition.
//!
//! ```sh
//! cargo run --example custom_partitioner -- [BOOTSTRAP] [TOPIC] [HEAVY_KEY] [COUNT]
//! ```
//! BOOTSTRAP defaults to `$BOOTSTRAP_SERVERS`, then `localhost:9092`;
//! TOPIC to `custom-partitioner-example`; HEAVY_KEY to `whale`; COUNT to 30.
//!
//! Record `i` has the heavy key when `i % 3 == 0`, else key `user-{i % 17}`,
//! and value `value-{i}`. Each is printed once acknowledged, as
//! `user-4 -> partition 2 offset 5`. On a topic with a single partition,
//! every record goes to partition 0.

use std::sync::Arc;

use kafka_producer::{
    murmur2_partition, Cluster, Partitioner, Producer, ProducerConfig, ProducerRecord,
    StringSerializer,
};

/// Partition 0 for the heavy key; Java's murmur2 hash of the key over
/// partitions 1..n for the others. Keyless records also go to 1..n, by
/// their value's hash.
struct HeavyKeyPartitioner {
    heavy_key: Vec<u8>,
}

impl Partitioner for HeavyKeyPartitioner {
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        cluster: &Cluster,
    ) -> i32 {
        // `send` has waited for the topic's metadata, so the count is known.
        let n = cluster.partition_count_for_topic(topic).unwrap_or(1);
        if n < 2 {
            return 0; // nowhere else to go
        }
        match key {
            Some(k) if k == self.heavy_key => 0,
            Some(k) => 1 + murmur2_partition(k, n - 1),
            None => 1 + murmur2_partition(value.unwrap_or_default(), n - 1),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .or_else(|| std::env::var("BOOTSTRAP_SERVERS").ok())
        .unwrap_or_else(|| "localhost:9092".into());
    let topic = args
        .next()
        .unwrap_or_else(|| "custom-partitioner-example".into());
    let heavy_key = args.next().unwrap_or_else(|| "whale".into());
    let count: u32 = args.next().map_or(Ok(30), |n| n.parse())?;

    let partitioner = HeavyKeyPartitioner {
        heavy_key: heavy_key.clone().into_bytes(),
    };
    let config = ProducerConfig::new()
        .bootstrap_servers(bootstrap)
        .client_id("custom-partitioner-example")
        .partitioner(Arc::new(partitioner));
    let producer = Producer::new(config, StringSerializer, StringSerializer)?;

    let partitions = producer.partitions_for(&topic)?.len();
    println!("{topic} has {partitions} partitions; {heavy_key} gets partition 0");
    // Send them all, then wait for each outcome in order.
    let mut sent = Vec::new();
    for i in 0..count {
        let key = if i.is_multiple_of(3) {
            heavy_key.clone()
        } else {
            format!("user-{}", i % 17)
        };
        let record = ProducerRecord::with_key(topic.as_str(), key.as_str(), format!("value-{i}"));
        let handle = producer.send(record)?;
        sent.push((key, handle));
    }
    for (key, handle) in sent {
        let meta = handle.get()?;
        println!(
            "{key} -> partition {} offset {}",
            meta.partition(),
            meta.offset()
        );
    }
    producer.close()?;
    Ok(())
}
