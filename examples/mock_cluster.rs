//! Testing your own service against `MockCluster` (needs the `mock`
//! feature): does it survive a leader that moved and a lost answer, and
//! does every order arrive exactly once?
//!
//! ```text
//! cargo run --example mock_cluster --features mock
//! ```
//!
//! In your crate the body of `main` would be a `#[test]`, with
//! `kafka-producer = { version = "...", features = ["mock"] }` under
//! `[dev-dependencies]`.

use std::time::Duration;

use kafka_producer::mock::{Api, Fault, MockCluster};
use kafka_producer::{ErrorCode, Producer, ProducerConfig, ProducerRecord};

/// The service under test: publishes orders, keyed by customer, and
/// returns once Kafka has them all.
struct OrderPublisher {
    producer: Producer<str, str>,
    topic: String,
}

impl OrderPublisher {
    fn new(bootstrap: &str, topic: &str) -> kafka_producer::Result<OrderPublisher> {
        let config = ProducerConfig::new()
            .bootstrap_servers(bootstrap)
            // The service's own choices: a short backoff, a bounded delivery time.
            .retry_backoff(Duration::from_millis(20))
            .delivery_timeout(Duration::from_secs(60));
        Ok(OrderPublisher {
            producer: Producer::new(
                config,
                kafka_producer::StringSerializer,
                kafka_producer::StringSerializer,
            )?,
            topic: topic.to_string(),
        })
    }

    fn publish(&self, orders: &[(&str, &str)]) -> kafka_producer::Result<()> {
        let futures = orders
            .iter()
            .map(|(customer, order)| {
                self.producer.send(ProducerRecord::with_key(
                    self.topic.as_str(),
                    *customer,
                    *order,
                ))
            })
            .collect::<kafka_producer::Result<Vec<_>>>()?;
        for f in futures {
            f.get()?;
        }
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = MockCluster::new(3)?;
    cluster.create_topic("orders", 1)?;
    // The first two Produce requests hit a broker that is no longer the
    // leader, and the answer to the third is lost after the append.
    cluster.inject(Fault::error(Api::Produce, ErrorCode::NOT_LEADER_OR_FOLLOWER).times(2))?;
    cluster.inject(Fault::drop_response(Api::Produce))?;

    let service = OrderPublisher::new(&cluster.bootstrap(), "orders")?;
    let orders = [
        ("alice", "order-1"),
        ("bob", "order-2"),
        ("alice", "order-3"),
    ];
    service.publish(&orders)?;
    service.producer.close()?;

    // Every order is in the log exactly once, in the order it was published.
    let log = cluster.records("orders", 0)?;
    let values: Vec<&[u8]> = log
        .iter()
        .map(|r| r.value.as_deref().unwrap_or_default())
        .collect();
    let expected: Vec<&[u8]> = orders.iter().map(|(_, o)| o.as_bytes()).collect();
    assert_eq!(values, expected, "the log holds each order once, in order");
    let stats = cluster.stats();
    assert_eq!(stats.faults_fired, 3, "every injected fault was hit");
    println!(
        "ok: {} orders, each once, after {} Produce requests ({} faults, {} resends recognised as duplicates)",
        log.len(),
        stats.requests[&Api::Produce],
        stats.faults_fired,
        stats.duplicates
    );
    Ok(())
}
