//! Keyed records, then a graceful shutdown: the Java quickstart's first
//! producer, with the shutdown hook done the Rust way.
//!
//! ```sh
//! cargo run --example basic -- [BOOTSTRAP] [TOPIC] [COUNT] [INTERVAL_MS]
//! ```
//! BOOTSTRAP defaults to `$BOOTSTRAP_SERVERS`, then `localhost:9092`; COUNT
//! to 5 records, INTERVAL_MS to 0 (a pause between records, to watch a
//! long-running producer stop on a signal).
//!
//! Shutdown: Java's `BasicProducer` closes from a JVM shutdown hook. Here
//! SIGINT and SIGTERM set a flag (`signal-hook`); the loop stops sending,
//! and `close_timeout` makes everything buffered sendable at once and
//! returns when every record has its outcome or the timeout passes, so no
//! record that `send` accepted is lost to the signal. Prefer
//! `close_timeout` over relying on `Drop`: drop closes too, but may wait up
//! to `delivery.timeout.ms` (two minutes by default) if the brokers are
//! down.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger_lite();
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .or_else(|| std::env::var("BOOTSTRAP_SERVERS").ok())
        .unwrap_or_else(|| "localhost:9092".into());
    let topic = args.next().unwrap_or_else(|| "basic-example".into());
    let count: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let interval = Duration::from_millis(args.next().map_or(Ok(0), |a| a.parse())?);

    // The shutdown hook: a signal only sets this flag.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }

    let config = ProducerConfig::from_pairs([
        ("bootstrap.servers", bootstrap.as_str()),
        ("client.id", "basic-example"),
        ("acks", "all"),
    ])?;
    let producer = Producer::new(config, StringSerializer, StringSerializer)?;

    let delivered = Arc::new(AtomicUsize::new(0));
    let mut sent = 0;
    while sent < count && !stop.load(Ordering::Relaxed) {
        let key = format!("key-{sent}");
        let value = format!("value-{sent}");
        let delivered = delivered.clone();
        producer.send_with_callback(
            ProducerRecord::with_key(topic.as_str(), key.clone(), value),
            move |result| match result {
                Ok(m) => {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    println!(
                        "{key}: partition {} offset {} timestamp {}",
                        m.partition(),
                        m.offset(),
                        m.timestamp()
                    )
                }
                Err(e) => eprintln!("{key}: failed: {e}"),
            },
        )?;
        sent += 1;
        if !interval.is_zero() {
            std::thread::sleep(interval);
        }
    }
    if stop.load(Ordering::Relaxed) {
        eprintln!("signal received: closing");
    }
    // Every callback above runs before close_timeout returns (or fails
    // with a timeout error once the 30 s are up).
    producer.close_timeout(Duration::from_secs(30))?;
    println!(
        "closed; sent {sent}, delivered {}",
        delivered.load(Ordering::Relaxed)
    );
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
