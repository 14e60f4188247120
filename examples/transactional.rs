//! All or nothing (the seeds' "Implementing Transactions"): one
//! transaction commits `commit-0` … `commit-99`, a second one sends
//! `abort-0` … `abort-99` and aborts. A `read_committed` consumer sees
//! exactly the first hundred; a `read_uncommitted` one sees all two
//! hundred.
//!
//! ```sh
//! cargo run --example transactional -- BOOTSTRAP TOPIC
//! ```
//! Exits 0 once both transactions have ended as said, and prints one line
//! for each. The transactional id is `transactional-example-TOPIC`.

use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(bootstrap), Some(topic)) = (args.next(), args.next()) else {
        eprintln!("usage: transactional BOOTSTRAP TOPIC");
        std::process::exit(2);
    };
    let config = ProducerConfig::new()
        .bootstrap_servers(bootstrap)
        .transactional_id(format!("transactional-example-{topic}"));
    let producer = Producer::new(config, StringSerializer, StringSerializer)?;
    producer.init_transactions()?;

    for (prefix, commit) in [("commit", true), ("abort", false)] {
        producer.begin_transaction()?;
        let handles = (0..100)
            .map(|i| producer.send(ProducerRecord::new(topic.as_str(), format!("{prefix}-{i}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if commit {
            // Commit flushes first; any record that failed fails the commit.
            producer.commit_transaction()?;
            for h in handles {
                h.get()?;
            }
            println!("committed {prefix}-0 … {prefix}-99");
        } else {
            // Written first, so the abort has something to undo: the records
            // are in the log, marked aborted, and read_committed readers
            // skip them. (Without the flush, records still buffered are
            // dropped by the abort and never written, as in Java.)
            producer.flush()?;
            for h in handles {
                h.get()?;
            }
            producer.abort_transaction()?;
            println!("aborted {prefix}-0 … {prefix}-99");
        }
    }
    producer.close()?;
    Ok(())
}
