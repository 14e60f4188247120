//! A data-validation interceptor: every record must have a key (so that
//! records of one entity stay in order on one partition), and each one
//! that passes gets a header saying which service sent it. A record
//! without a key is refused by `send` with `Error::Rejected`, before it is
//! serialized or buffered.
//!
//! ```sh
//! cargo run --example interceptor -- localhost:9092 my-topic
//! ```
//!
//! Reads `key<TAB>value` lines from stdin (a line without a tab has no
//! key), sends each, and prints `ok topic-partition@offset` or
//! `rejected: <reason>` per line; `on_acknowledgement` counts the
//! outcomes, printed at the end as `delivered N, failed M`.

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kafka_producer::{
    Error, Header, InterceptedRecord, InterceptorError, Producer, ProducerConfig,
    ProducerInterceptor, ProducerRecord, RecordMetadata, StringSerializer,
};

/// Refuses keyless records; stamps the others; counts outcomes.
struct RequireKey {
    service: &'static str,
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ProducerInterceptor<str, str> for RequireKey {
    fn on_send(
        &self,
        record: &mut InterceptedRecord<'_, str, str>,
    ) -> Result<(), InterceptorError> {
        match record.key() {
            None | Some("") => Err(InterceptorError::Reject(
                "every record needs a non-empty key".into(),
            )),
            Some(_) => {
                record.headers.push(Header::new("service", self.service));
                Ok(())
            }
        }
    }

    fn on_acknowledgement(&self, _topic: &str, result: &kafka_producer::Result<RecordMetadata>) {
        let counter = if result.is_ok() {
            &self.delivered
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn name(&self) -> &str {
        "RequireKey"
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(bootstrap), Some(topic)) = (args.next(), args.next()) else {
        eprintln!("usage: interceptor BOOTSTRAP TOPIC < lines");
        std::process::exit(2);
    };
    let check = Arc::new(RequireKey {
        service: "billing",
        delivered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let config = ProducerConfig::new().bootstrap_servers(bootstrap);
    let producer =
        Producer::new(config, StringSerializer, StringSerializer)?.with_interceptor(check.clone());
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let (key, value) = match line.split_once('\t') {
            Some((k, v)) => (Some(k), v),
            None => (None, line.as_str()),
        };
        let record =
            ProducerRecord::with_timestamp(topic.as_str(), None, None, key, Some(value), vec![]);
        match producer.send(record).and_then(|h| h.get()) {
            Ok(meta) => println!("ok {meta}"),
            Err(Error::Rejected { reason, .. }) => println!("rejected: {reason}"),
            Err(e) => println!("failed: {e}"),
        }
    }
    producer.close()?;
    println!(
        "delivered {}, failed {}",
        check.delivered.load(Ordering::Relaxed),
        check.failed.load(Ordering::Relaxed)
    );
    Ok(())
}
