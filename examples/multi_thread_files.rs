//! Many threads, one producer: each file is streamed to the topic by its
//! own thread, one record per line (key: the file's name as given, value:
//! the line without its line ending). All threads share a single
//! `Producer`, which is `Send + Sync`; here by reference, in scoped threads.
//!
//! ```sh
//! cargo run --example multi_thread_files -- [--bootstrap-server HOST:PORT] TOPIC FILE...
//! ```
//! The bootstrap server defaults to `$BOOTSTRAP_SERVERS`, then
//! `localhost:9092`.
//!
//! Prints `FILE: N lines sent` per file, or `FILE: error: ...` for a file
//! that cannot be read (the other files are still sent). After `close()`,
//! every record has its outcome; the exit status is 1 if a file could not
//! be read or a record failed, 2 for bad arguments.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicU64, Ordering};

use kafka_producer::{Producer, ProducerConfig, ProducerRecord, StringSerializer};

/// Records whose delivery failed, counted by the send callbacks.
static FAILED: AtomicU64 = AtomicU64::new(0);

fn usage() -> ! {
    eprintln!("usage: multi_thread_files [--bootstrap-server HOST:PORT] TOPIC FILE...");
    std::process::exit(2)
}

/// Sends every line of `path`; returns how many were sent.
fn send_file(producer: &Producer<str, str>, topic: &str, path: &str) -> Result<u64, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut sent = 0;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("read error after {sent} lines: {e}"))?;
        let record = ProducerRecord::with_key(topic, path, line);
        producer
            .send_with_callback(record, |result| {
                if let Err(e) = result {
                    eprintln!("delivery failed: {e}");
                    FAILED.fetch_add(1, Ordering::Relaxed);
                }
            })
            .map_err(|e| format!("send failed after {sent} lines: {e}"))?;
        sent += 1;
    }
    Ok(sent)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut bootstrap =
        std::env::var("BOOTSTRAP_SERVERS").unwrap_or_else(|_| "localhost:9092".into());
    if args.first().map(String::as_str) == Some("--bootstrap-server") {
        if args.len() < 2 {
            usage();
        }
        bootstrap = args.remove(1);
        args.remove(0);
    }
    let (topic, files) = match args.split_first() {
        Some((topic, files)) if !files.is_empty() => (topic, files),
        _ => usage(),
    };

    let config = ProducerConfig::new()
        .bootstrap_servers(bootstrap)
        .client_id("multi-thread-files-example");
    let producer = Producer::new(config, StringSerializer, StringSerializer).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });

    // Scoped threads may borrow `producer`: the scope joins them all
    // before it returns.
    let results: Vec<Result<u64, String>> = std::thread::scope(|s| {
        let threads: Vec<_> = files
            .iter()
            .map(|path| s.spawn(|| send_file(&producer, topic, path)))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });

    // close() waits until every record sent has been delivered or failed.
    if let Err(e) = producer.close() {
        eprintln!("{e}");
        std::process::exit(1)
    }
    let mut ok = true;
    for (path, result) in files.iter().zip(results) {
        match result {
            Ok(n) => println!("{path}: {n} lines sent"),
            Err(e) => {
                eprintln!("{path}: error: {e}");
                ok = false;
            }
        }
    }
    let failed = FAILED.load(Ordering::Relaxed);
    if failed > 0 {
        eprintln!("{failed} records failed");
    }
    if !ok || failed > 0 {
        std::process::exit(1);
    }
}
