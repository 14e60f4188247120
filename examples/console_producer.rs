//! `kafka-console-producer`, in Rust: reads lines from stdin and sends each
//! as a record, with the Java tool's main options.
//!
//! ```sh
//! echo 'k1:hello' | cargo run --example console_producer -- \
//!     --bootstrap-server localhost:9092 --topic test \
//!     --property parse.key=true --property key.separator=: \
//!     --producer-property acks=1
//! ```
//!
//! Options:
//! * `--bootstrap-server HOST:PORT[,...]`: defaults to `bootstrap.servers`
//!   from the properties below, then `$BOOTSTRAP_SERVERS`, then
//!   `localhost:9092`.
//! * `--topic TOPIC` (required).
//! * `--property parse.key=true|false` (default false): split each line
//!   into key and value at the first key separator. A line without one is
//!   reported (`No key separator found on line number N: 'line'`) and not
//!   sent.
//! * `--property key.separator=SEP` (default a tab, as in Java).
//! * `--producer-property KEY=VALUE`, repeatable, and `--producer.config
//!   FILE` (a Java `.properties` file, applied first): producer settings by
//!   their Java names. An invalid one prints the configuration error.
//!
//! Records are sent fire-and-forget, with a callback that prints any
//! delivery error. At end of input, `close()` waits until every record has
//! its outcome, so nothing typed is lost. Exit status: 0 if every line was
//! sent and acknowledged, 1 otherwise, 2 for bad arguments or settings.

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};

use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};

/// Lines that were not sent or not acknowledged.
static FAILED: AtomicU64 = AtomicU64::new(0);

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: console_producer --topic TOPIC [--bootstrap-server HOST:PORT]\n\
         \x20      [--property parse.key=true|false] [--property key.separator=SEP]\n\
         \x20      [--producer-property KEY=VALUE ...] [--producer.config FILE]"
    );
    std::process::exit(2)
}

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("{e}");
    std::process::exit(2)
}

struct Args {
    topic: String,
    bootstrap: Option<String>,
    parse_key: bool,
    key_separator: String,
    config: ProducerConfig,
}

fn parse_args() -> Args {
    let mut topic = None;
    let mut bootstrap = None;
    let mut parse_key = false;
    let mut key_separator = "\t".to_owned();
    let mut config_file = None;
    let mut producer_props = Vec::new();
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let mut value = || {
            argv.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--topic" => topic = Some(value()),
            "--bootstrap-server" => bootstrap = Some(value()),
            "--producer.config" => config_file = Some(value()),
            "--producer-property" => producer_props.push(value()),
            "--property" => match value().split_once('=') {
                Some(("parse.key", v)) => parse_key = v.trim().eq_ignore_ascii_case("true"),
                Some(("key.separator", v)) => key_separator = v.to_owned(),
                _ => usage("supported --property settings: parse.key, key.separator"),
            },
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let topic = topic.unwrap_or_else(|| usage("--topic is required"));
    if key_separator.is_empty() {
        usage("key.separator must not be empty");
    }

    // As Java: the properties file first, then each --producer-property.
    let mut config = match config_file {
        Some(f) => ProducerConfig::from_properties_file(f).unwrap_or_else(|e| fail(e)),
        None => ProducerConfig::new(),
    };
    for prop in &producer_props {
        let (k, v) = prop
            .split_once('=')
            .unwrap_or_else(|| usage(&format!("--producer-property {prop}: expected KEY=VALUE")));
        config.set(k.trim(), v).unwrap_or_else(|e| fail(e));
    }
    Args {
        topic,
        bootstrap,
        parse_key,
        key_separator,
        config,
    }
}

fn main() {
    let a = parse_args();
    let mut config = a.config;
    if let Some(b) = a.bootstrap {
        config
            .set("bootstrap.servers", &b)
            .unwrap_or_else(|e| fail(e));
    } else if !config.is_set("bootstrap.servers") {
        let b = std::env::var("BOOTSTRAP_SERVERS").unwrap_or_else(|_| "localhost:9092".into());
        config
            .set("bootstrap.servers", &b)
            .unwrap_or_else(|e| fail(e));
    }
    let producer =
        Producer::new(config, StringSerializer, StringSerializer).unwrap_or_else(|e| fail(e));

    // Prints a failed delivery; runs on an I/O thread.
    let on_error = |line_number: u64| {
        move |result: kafka_producer::Result<_>| {
            if let Err(e) = result {
                eprintln!("line {line_number}: delivery failed: {e}");
                FAILED.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    let topic = a.topic.as_str();
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let n = i as u64 + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot read line {n} from stdin: {e}");
                FAILED.fetch_add(1, Ordering::Relaxed);
                break;
            }
        };
        let sent = if a.parse_key {
            match line.split_once(a.key_separator.as_str()) {
                Some((key, value)) => producer
                    .send_with_callback(ProducerRecord::with_key(topic, key, value), on_error(n)),
                None => {
                    eprintln!("No key separator found on line number {n}: '{line}'");
                    FAILED.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
        } else {
            producer.send_with_callback(ProducerRecord::new(topic, line.as_str()), on_error(n))
        };
        if let Err(e) = sent {
            eprintln!("line {n}: not sent: {e}");
            FAILED.fetch_add(1, Ordering::Relaxed);
        }
    }

    // End of input: close() sends what is buffered at once and waits (as
    // flush() would) until every record has its outcome and callback.
    if let Err(e) = producer.close() {
        eprintln!("{e}");
        std::process::exit(1)
    }
    if FAILED.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
}
