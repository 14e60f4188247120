//! Five keyed records, then a graceful shutdown: the Java quickstart's
//! first producer.
//!
//! ```sh
//! cargo run --example basic -- [BOOTSTRAP] [TOPIC]
//! ```
//! BOOTSTRAP defaults to `$BOOTSTRAP_SERVERS`, then `localhost:9092`.
//!
//! Shutdown behaviour: records are sent fire-and-forget with callbacks;
//! `close()` makes everything buffered sendable at once and returns only
//! when every record has its outcome, so no callback is lost. Dropping the
//! producer instead would do the same, bounded by `delivery.timeout.ms`.

use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger_lite();
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .or_else(|| std::env::var("BOOTSTRAP_SERVERS").ok())
        .unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "basic-example".into());

    let config = ProducerConfig::from_pairs([
        ("bootstrap.servers", bootstrap.as_str()),
        ("client.id", "basic-example"),
        ("acks", "all"),
    ])?;
    let producer = Producer::new(config, StringSerializer, StringSerializer)?;

    for i in 0..5 {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        producer.send_with_callback(
            ProducerRecord::with_key(topic.as_str(), key.clone(), value),
            move |result| match result {
                Ok(m) => println!(
                    "{key}: partition {} offset {} timestamp {}",
                    m.partition(),
                    m.offset(),
                    m.timestamp()
                ),
                Err(e) => eprintln!("{key}: failed: {e}"),
            },
        )?;
    }
    // Every callback above runs before close() returns.
    producer.close()?;
    println!("closed; all 5 records have their outcome");
    Ok(())
}

/// Prints `log` warnings and errors to stderr (examples avoid extra
/// dependencies).
fn env_logger_lite() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, m: &log::Metadata) -> bool {
            m.level() <= log::max_level()
        }
        fn log(&self, r: &log::Record) {
            eprintln!("[{}] {}", r.level(), r.args());
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    let level = match std::env::var("RUST_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("trace") => log::LevelFilter::Trace,
        Ok("info") => log::LevelFilter::Info,
        _ => log::LevelFilter::Warn,
    };
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(level));
}
