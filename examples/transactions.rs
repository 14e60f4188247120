//! Transactions: records sent in groups, each group committed atomically
//! (all of it visible to `read_committed` consumers, or none of it).
//!
//! ```sh
//! cargo run --example transactions -- [BOOTSTRAP] [TOPIC] [COUNT] [PER_TXN]
//! ```
//! BOOTSTRAP defaults to `$BOOTSTRAP_SERVERS`, then `localhost:9092`;
//! TOPIC to `transactions-example`; COUNT to 100 records, PER_TXN to 10
//! per transaction. The transactional id is `transactions-example-TOPIC`:
//! a second run fences the first if it is still going.
//!
//! Prints one line per transaction: `committed 10 records (transaction 3)`.
//! A transaction that cannot commit (a record was not delivered) is
//! aborted and sent again; a fatal error (fenced by a newer instance)
//! ends the program.

use kafka_producer::{Error, Producer, ProducerConfig, ProducerRecord, StringSerializer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .or_else(|| std::env::var("BOOTSTRAP_SERVERS").ok())
        .unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "transactions-example".into());
    let count: usize = args.next().map_or(Ok(100), |n| n.parse())?;
    let per_txn: usize = args.next().map_or(Ok(10), |n| n.parse())?;

    let config = ProducerConfig::new()
        .bootstrap_servers(bootstrap)
        .transactional_id(format!("transactions-example-{topic}"));
    let producer = Producer::new(config, StringSerializer, StringSerializer)?;
    // Once per producer: fences older instances with the same id.
    producer.init_transactions()?;

    let records: Vec<String> = (0..count).map(|i| format!("record-{i}")).collect();
    for (n, group) in records.chunks(per_txn.max(1)).enumerate() {
        loop {
            producer.begin_transaction()?;
            let sent: Result<(), Error> = group.iter().try_for_each(|v| {
                producer.send(ProducerRecord::new(topic.as_str(), v.as_str()))?;
                Ok(())
            });
            // The commit waits for every record of the transaction.
            match sent.and_then(|()| producer.commit_transaction()) {
                Ok(()) => {
                    println!("committed {} records (transaction {n})", group.len());
                    break;
                }
                Err(e) if e.is_abortable() => {
                    eprintln!("transaction {n} failed, aborting and sending it again: {e}");
                    producer.abort_transaction()?;
                }
                // Fenced, not authorized, ...: this producer is done.
                Err(e) => return Err(e.into()),
            }
        }
    }
    producer.close()?;
    Ok(())
}
