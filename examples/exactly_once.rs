//! Consume, transform, produce, exactly once (Kafka's read-process-write
//! loop): each chunk of input is transformed, sent and committed together
//! with the consumer group's input offset, in one transaction, so the
//! output and the progress are written all together or not at all.
//!
//! ```sh
//! cargo run --example exactly_once -- BOOTSTRAP INPUT_FILE INPUT_TOPIC OUTPUT_TOPIC GROUP [PER_TXN]
//! ```
//!
//! **Its input comes from a file, not from Kafka**: this crate is a
//! producer and has no consumer. Line `n` of INPUT_FILE stands for the
//! record at offset `n` of partition 0 of INPUT_TOPIC (which must exist,
//! since the group's offsets are committed for it). Each line is
//! upper-cased and sent to OUTPUT_TOPIC, keyed by its input offset; after
//! each chunk of PER_TXN lines (default 10) the offset of the next line to
//! read is committed for GROUP with `send_offsets_to_transaction`, as a
//! consumer's position, and the transaction commits. A real pipeline reads
//! with a consumer and starts from the group's committed offset; this one
//! starts at line 0 and does not resume.
//!
//! Prints one line per transaction: `committed lines 0..10, GROUP at 10`.
//! A transaction that cannot commit is aborted and its chunk sent again; a
//! fatal error (fenced by a newer instance) ends the program.

use kafka_producer::{
    ConsumerGroupMetadata, Producer, ProducerConfig, ProducerRecord, StringSerializer,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, input, input_topic, output_topic, group, rest @ ..] = args.as_slice() else {
        eprintln!(
            "usage: exactly_once BOOTSTRAP INPUT_FILE INPUT_TOPIC OUTPUT_TOPIC GROUP [PER_TXN]"
        );
        std::process::exit(2);
    };
    let per_txn: usize = rest.first().map_or(Ok(10), |n| n.parse())?;
    let lines: Vec<String> = std::fs::read_to_string(input)?
        .lines()
        .map(str::to_owned)
        .collect();

    let config = ProducerConfig::new()
        .bootstrap_servers(bootstrap.as_str())
        .transactional_id(format!("exactly-once-example-{group}"));
    let producer = Producer::new(config, StringSerializer, StringSerializer)?;
    producer.init_transactions()?;
    let consumer_group = ConsumerGroupMetadata::new(group.as_str());

    let mut start = 0;
    while start < lines.len() {
        let end = (start + per_txn.max(1)).min(lines.len());
        producer.begin_transaction()?;
        let chunk = (start..end).try_for_each(|offset| {
            let key = offset.to_string();
            let value = lines[offset].to_uppercase();
            producer
                .send(ProducerRecord::with_key(output_topic.as_str(), key, value))
                .map(drop)
        });
        let outcome = chunk
            .and_then(|()| {
                // The group's position: the next input offset to read.
                producer.send_offsets_to_transaction(
                    [(input_topic.as_str(), 0, end as i64)],
                    &consumer_group,
                )
            })
            .and_then(|()| producer.commit_transaction());
        match outcome {
            Ok(()) => {
                println!("committed lines {start}..{end}, {group} at {end}");
                start = end;
            }
            Err(e) if e.is_abortable() => {
                eprintln!("aborting lines {start}..{end} and sending them again: {e}");
                producer.abort_transaction()?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    producer.close()?;
    Ok(())
}
