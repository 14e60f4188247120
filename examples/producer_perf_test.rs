//! `kafka-producer-perf-test`, in Rust: the same arguments and the same
//! output as Java's `ProducerPerformance`.
//!
//! ```sh
//! cargo run --release --example producer_perf_test -- \
//!     --topic perf --num-records 1000000 --record-size 100 --throughput -1 \
//!     --producer-props bootstrap.servers=localhost:9092 acks=1
//! ```
//!
//! Prints a progress line every 5 s and, at the end, Java's summary line:
//! `N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max
//! latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th.`
//!
//! Like Java it sends one random A-Z payload of `--record-size` bytes (or
//! lines of `--payload-file`), with no key (`--key-mode random`: 8 random
//! bytes of key per record, as peerbench's option), and measures each record's
//! latency from `send` to its callback in milliseconds. Extra options, not
//! in Java's tool, for comparing clients: `--latency-every K` times every
//! K-th record only (Java: 1); `--warmup true` first sends one record to
//! every partition and waits, so connections and metadata are ready before
//! the clock starts; `--json true` adds one JSON line (CPU per record, peak
//! RSS, exact percentiles) after the summary; `--sync true` sends one
//! record at a time and waits for it with `send(..)?.get()` (use
//! `linger.ms=0`), timing every round trip; `--threads N` sends from N
//! threads through the one producer, each its share of `--num-records`
//! (thread t: records `t*n/N..(t+1)*n/N`, at `--throughput / N`), timed
//! as one run from the first send to `flush`; `--callback none|plain|capture`
//! prices the completion callback: `none` drops each `send`'s handle and
//! counts failures from the topic's `record-error-total` and `send`'s
//! refusals, `plain` gives every record a
//! callback that captures nothing, `capture` one that captures 16 bytes
//! (`timed`, the default, is Java's: every record has a callback, and every
//! `--latency-every`-th is timed). The exit status is 1 if any record
//! failed.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_producer::{ByteArraySerializer, Producer, ProducerConfig, ProducerRecord};
use parking_lot::Mutex;

static ACKED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);
/// `--callback capture`: the XOR of each acknowledged record's index and
/// size, as its callback saw them; checked against the expected sum.
static CAPTURED: AtomicU64 = AtomicU64::new(0);

/// A callback that captures nothing: storing it allocates nothing.
fn plain_callback(r: kafka_producer::Result<kafka_producer::RecordMetadata>) {
    match r {
        Ok(_) => {
            ACKED.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            if FAILED.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("first delivery error: {e}");
            }
        }
    }
}

struct Args {
    topic: String,
    num_records: u64,
    record_size: Option<usize>,
    payload_file: Option<String>,
    payload_delimiter: String,
    throughput: f64,
    props: Vec<(String, String)>,
    config_file: Option<String>,
    latency_every: u64,
    warmup: bool,
    json: bool,
    sync: bool,
    /// `--key-mode random`: 8 random bytes of key per record (peerbench's
    /// `--key-mode random`), so records spread over every partition by
    /// murmur2. `none` (the default, Java's tool): null keys.
    random_keys: bool,
    /// `--threads N`: sending threads through the one producer (1).
    threads: u64,
    /// `--callback`: what each record's completion runs.
    callback: CallbackMode,
}

/// `--callback`: how `send` is called, to price a completion callback.
#[derive(Clone, Copy, PartialEq)]
enum CallbackMode {
    /// `timed` (the default, Java's tool): every record has a callback;
    /// every `--latency-every`-th one captures its start time and is timed.
    Timed,
    /// `none`: `send` and drop the handle (fire and forget); failures are
    /// counted from the producer's `record-error-total` after `flush`.
    None,
    /// `plain`: every record has a callback that captures nothing.
    Plain,
    /// `capture`: every record has a callback that captures 16 bytes (its
    /// index and size), checked when it completes.
    Capture,
}

fn usage() -> ! {
    eprintln!(
        "usage: producer_perf_test --topic TOPIC --num-records N (--record-size B | --payload-file F)\n\
         \x20      --throughput T [--producer-props K=V ...] [--producer.config FILE]\n\
         \x20      [--payload-delimiter D] [--latency-every K] [--warmup true|false] [--json true|false] [--sync true|false]\n\
         \x20      [--key-mode none|random] [--threads N] [--callback timed|none|plain|capture]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        topic: String::new(),
        num_records: 0,
        record_size: None,
        payload_file: None,
        payload_delimiter: "\n".into(),
        throughput: f64::NAN,
        props: Vec::new(),
        config_file: None,
        latency_every: 1,
        warmup: false,
        json: false,
        sync: false,
        random_keys: false,
        threads: 1,
        callback: CallbackMode::Timed,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let value = |i: &mut usize| -> String {
        *i += 1;
        argv.get(*i).cloned().unwrap_or_else(|| usage())
    };
    while i < argv.len() {
        match argv[i].as_str() {
            "--topic" => a.topic = value(&mut i),
            "--num-records" => a.num_records = value(&mut i).parse().unwrap_or_else(|_| usage()),
            "--record-size" => {
                a.record_size = Some(value(&mut i).parse().unwrap_or_else(|_| usage()))
            }
            "--payload-file" => a.payload_file = Some(value(&mut i)),
            "--payload-delimiter" => a.payload_delimiter = value(&mut i),
            "--throughput" => a.throughput = value(&mut i).parse().unwrap_or_else(|_| usage()),
            "--producer.config" => a.config_file = Some(value(&mut i)),
            "--latency-every" => {
                a.latency_every = value(&mut i)
                    .parse::<u64>()
                    .unwrap_or_else(|_| usage())
                    .max(1)
            }
            "--warmup" => a.warmup = value(&mut i) == "true",
            "--threads" => {
                a.threads = value(&mut i).parse().unwrap_or_else(|_| usage());
                if a.threads == 0 {
                    usage()
                }
            }
            "--callback" => {
                a.callback = match value(&mut i).as_str() {
                    "timed" => CallbackMode::Timed,
                    "none" => CallbackMode::None,
                    "plain" => CallbackMode::Plain,
                    "capture" => CallbackMode::Capture,
                    _ => usage(),
                }
            }
            "--json" => a.json = value(&mut i) == "true",
            "--sync" => a.sync = value(&mut i) == "true",
            "--key-mode" => {
                a.random_keys = match value(&mut i).as_str() {
                    "none" => false,
                    "random" => true,
                    _ => usage(),
                }
            }
            "--producer-props" => {
                while i + 1 < argv.len() && !argv[i + 1].starts_with("--") {
                    i += 1;
                    let (k, v) = argv[i].split_once('=').unwrap_or_else(|| usage());
                    a.props.push((k.to_owned(), v.to_owned()));
                }
            }
            "--print-metrics" | "--transactional-id" | "--transaction-duration-ms" => {
                eprintln!("{} is not supported yet", argv[i]);
                std::process::exit(2)
            }
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown argument {other}");
                usage()
            }
        }
        i += 1;
    }
    if a.topic.is_empty()
        || a.throughput.is_nan()
        || (a.record_size.is_none() == a.payload_file.is_none())
    {
        usage();
    }
    a
}

/// Java's `Stats`: windowed progress plus sampled latencies for the total.
struct Stats {
    start: Instant,
    count: u64,
    bytes: u64,
    max_latency: u64,
    total_latency: u64,
    /// Exact latencies in microseconds of the sampled records (for --json).
    latencies_us: Vec<u32>,
    window_start: Instant,
    window_count: u64,
    window_bytes: u64,
    window_max: u64,
    window_total: u64,
}

impl Stats {
    fn new(expected: u64) -> Self {
        let now = Instant::now();
        Stats {
            start: now,
            count: 0,
            bytes: 0,
            max_latency: 0,
            total_latency: 0,
            latencies_us: Vec::with_capacity(expected.min(5_000_000) as usize),
            window_start: now,
            window_count: 0,
            window_bytes: 0,
            window_max: 0,
            window_total: 0,
        }
    }

    fn record(&mut self, latency: Duration, bytes: usize, now: Instant) {
        let ms = latency.as_millis() as u64;
        self.count += 1;
        self.bytes += bytes as u64;
        self.total_latency += ms;
        self.max_latency = self.max_latency.max(ms);
        self.latencies_us
            .push(latency.as_micros().min(u32::MAX as u128) as u32);
        self.window_count += 1;
        self.window_bytes += bytes as u64;
        self.window_total += ms;
        self.window_max = self.window_max.max(ms);
        if now.duration_since(self.window_start) >= Duration::from_secs(5) {
            let elapsed = now.duration_since(self.window_start).as_secs_f64() * 1000.0;
            println!(
                "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
                self.window_count,
                1000.0 * self.window_count as f64 / elapsed,
                1000.0 * self.window_bytes as f64 / elapsed / (1024.0 * 1024.0),
                self.window_total as f64 / self.window_count as f64,
                self.window_max as f64
            );
            self.window_start = now;
            self.window_count = 0;
            self.window_bytes = 0;
            self.window_max = 0;
            self.window_total = 0;
        }
    }
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> u64 {
    if sorted_us.is_empty() {
        return 0;
    }
    let i = ((p * sorted_us.len() as f64) as usize).min(sorted_us.len() - 1);
    u64::from(sorted_us[i]) / 1000
}

fn proc_stat_cpu_s() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = 100.0; // USER_HZ on Linux
    let f = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / tick
    };
    (f(11), f(12)) // utime, stime (fields 14 and 15 of the full line)
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn payloads(a: &Args) -> Vec<Vec<u8>> {
    if let Some(size) = a.record_size {
        // Java: one random payload of uppercase letters, reused.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64;
        let payload = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'A' + (x % 26) as u8
            })
            .collect();
        return vec![payload];
    }
    let path = a.payload_file.as_ref().expect("checked");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(2)
    });
    let v: Vec<Vec<u8>> = text
        .split(a.payload_delimiter.as_str())
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec())
        .collect();
    if v.is_empty() {
        eprintln!("{path} has no payloads");
        std::process::exit(2)
    }
    v
}

/// Sends records `range` of the run: thread `t`'s share. With `--threads N`
/// thread `t` sends records `t*n/N..(t+1)*n/N` (record `i` is timed if
/// `i % latency_every == 0`, as with one thread), at `throughput / N`, with
/// its own key sequence. Returns the payload bytes it sent.
fn send_share(
    a: &Args,
    producer: &Producer,
    payloads: &[Vec<u8>],
    stats: &Arc<Mutex<Stats>>,
    start: Instant,
    t: u64,
    range: std::ops::Range<u64>,
) -> u64 {
    let first = range.start;
    let throttle =
        (a.throughput > 0.0).then(|| Duration::from_secs_f64(a.threads as f64 / a.throughput));
    let mut sent_bytes = 0u64;
    // xorshift64 for the keys: a few instructions per record, no allocation.
    let mut key_state: u64 = (0x2545_F491_4F6C_DD1D ^ std::process::id() as u64)
        .wrapping_add(t.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for i in range {
        let payload = &payloads[(i as usize) % payloads.len()];
        // A macro, not a branch on the record: a keyed and a keyless record
        // are different types, and the keyless path stays as it was.
        macro_rules! send_one {
            ($record:expr) => {{
                let record = $record;
                if a.sync {
                    // One at a time: the round trip of a synchronous caller.
                    let t0 = Instant::now();
                    producer.send(record).and_then(|h| h.get()).map(|_| {
                        let now = Instant::now();
                        ACKED.fetch_add(1, Ordering::Relaxed);
                        stats.lock().record(now - t0, payload.len(), now);
                    })
                } else if a.callback == CallbackMode::None {
                    producer.send(record).map(drop)
                } else if a.callback == CallbackMode::Plain {
                    producer
                        .send_with_callback(record, plain_callback)
                        .map(drop)
                } else if a.callback == CallbackMode::Capture {
                    let bytes = payload.len() as u64;
                    producer
                        .send_with_callback(record, move |r| match r {
                            Ok(_) => {
                                ACKED.fetch_add(1, Ordering::Relaxed);
                                CAPTURED.fetch_add(i ^ bytes, Ordering::Relaxed);
                            }
                            Err(e) => {
                                if FAILED.fetch_add(1, Ordering::Relaxed) == 0 {
                                    eprintln!("first delivery error: {e}");
                                }
                            }
                        })
                        .map(drop)
                } else if i % a.latency_every == 0 {
                    let stats = stats.clone();
                    let t0 = Instant::now();
                    let bytes = payload.len();
                    producer
                        .send_with_callback(record, move |r| {
                            let now = Instant::now();
                            match r {
                                Ok(_) => {
                                    ACKED.fetch_add(1, Ordering::Relaxed);
                                    stats.lock().record(now - t0, bytes, now);
                                }
                                Err(e) => {
                                    if FAILED.fetch_add(1, Ordering::Relaxed) == 0 {
                                        eprintln!("first delivery error: {e}");
                                    }
                                }
                            }
                        })
                        .map(drop)
                } else {
                    producer
                        .send_with_callback(record, plain_callback)
                        .map(drop)
                }
            }};
        }
        let r = if a.random_keys {
            key_state ^= key_state << 13;
            key_state ^= key_state >> 7;
            key_state ^= key_state << 17;
            let key = key_state.to_le_bytes();
            send_one!(ProducerRecord::with_key(
                a.topic.as_str(),
                &key[..],
                payload.as_slice()
            ))
        } else {
            send_one!(ProducerRecord::new(a.topic.as_str(), payload.as_slice()))
        };
        if let Err(e) = r {
            if FAILED.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("first send error: {e}");
            }
        }
        sent_bytes += payload.len() as u64;
        if let Some(per) = throttle {
            let due = start + per.mul_f64((i - first + 1) as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    }
    sent_bytes
}

/// `topic`'s `record-error-total`: its records that failed after `send`
/// took them (the producer-wide one also counts those `send` refused).
fn failed_after_send(producer: &Producer, topic: &str) -> f64 {
    producer
        .metrics()
        .topic_value(topic, "record-error-total")
        .unwrap_or(0.0)
}

/// Thread `t`'s records of `n` split over `threads`.
fn share(n: u64, threads: u64, t: u64) -> std::ops::Range<u64> {
    let at = |t: u64| (u128::from(n) * u128::from(t) / u128::from(threads)) as u64;
    at(t)..at(t + 1)
}

fn main() {
    let a = parse_args();
    let mut config = match &a.config_file {
        Some(f) => ProducerConfig::from_properties_file(f),
        None => Ok(ProducerConfig::new()),
    }
    .unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    for (k, v) in &a.props {
        if let Err(e) = config.set(k, v) {
            eprintln!("{e}");
            std::process::exit(2)
        }
    }
    let producer =
        Producer::new(config, ByteArraySerializer, ByteArraySerializer).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
    let payloads = payloads(&a);

    if a.warmup {
        let partitions = producer.partitions_for(&a.topic).unwrap_or_else(|e| {
            eprintln!("warm-up: {e}");
            std::process::exit(1)
        });
        let handles: Vec<_> = partitions
            .iter()
            .map(|p| {
                producer
                    .send(
                        ProducerRecord::new(a.topic.as_str(), &b"warmup"[..])
                            .partition(p.partition),
                    )
                    .expect("warm-up send")
            })
            .collect();
        for h in handles {
            if let Err(e) = h.get() {
                eprintln!("warm-up: {e}");
                std::process::exit(1)
            }
        }
    }

    let errors_before = failed_after_send(&producer, &a.topic);
    let stats = Arc::new(Mutex::new(Stats::new(a.num_records / a.latency_every + 1)));
    let cpu0 = proc_stat_cpu_s();
    let start = Instant::now();
    stats.lock().start = start;
    stats.lock().window_start = start;
    // --threads N: N sending threads through the one producer, each sending
    // its share of the records (shares differ by one at most); the clock is
    // the same: from before the first send to after `flush`.
    let threads = a.threads;
    let sent_bytes: u64 = if threads == 1 {
        send_share(&a, &producer, &payloads, &stats, start, 0, 0..a.num_records)
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let range = share(a.num_records, threads, t);
                    let (a, producer, payloads, stats) = (&a, &producer, &payloads, &stats);
                    s.spawn(move || send_share(a, producer, payloads, stats, start, t, range))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a sending thread panicked"))
                .sum()
        })
    };
    let send_done = start.elapsed();
    producer.flush().expect("flush");
    let elapsed = start.elapsed();
    let cpu1 = proc_stat_cpu_s();
    if a.callback == CallbackMode::None {
        // No callbacks: after `flush` every record `send` took has
        // completed, and the topic's `record-error-total` counts the ones
        // that failed; FAILED holds those `send` refused.
        let failed = (failed_after_send(&producer, &a.topic) - errors_before) as u64;
        let failed = FAILED.fetch_add(failed, Ordering::Relaxed) + failed;
        ACKED.store(a.num_records.saturating_sub(failed), Ordering::Relaxed);
    }
    producer.close().expect("close");

    let acked = ACKED.load(Ordering::Relaxed);
    let failed = FAILED.load(Ordering::Relaxed);
    if a.callback == CallbackMode::Capture && failed == 0 {
        let expected = (0..a.num_records).fold(0u64, |sum, i| {
            sum.wrapping_add(i ^ payloads[(i as usize) % payloads.len()].len() as u64)
        });
        let got = CAPTURED.load(Ordering::Relaxed);
        if got != expected {
            eprintln!("--callback capture: the callbacks saw {got}, expected {expected}");
            std::process::exit(1);
        }
    }
    let mut s = stats.lock();
    let ms = elapsed.as_secs_f64() * 1000.0;
    let count = acked;
    let mut lat = std::mem::take(&mut s.latencies_us);
    lat.sort_unstable();
    let avg = if s.count > 0 {
        s.total_latency as f64 / s.count as f64
    } else {
        0.0
    };
    println!(
        "{} records sent, {:.6} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
        count,
        1000.0 * count as f64 / ms,
        1000.0 * sent_bytes as f64 / ms / (1024.0 * 1024.0),
        avg,
        s.max_latency as f64,
        percentile_ms(&lat, 0.5),
        percentile_ms(&lat, 0.95),
        percentile_ms(&lat, 0.99),
        percentile_ms(&lat, 0.999),
    );
    if a.json {
        let p = |q: f64| -> f64 {
            if lat.is_empty() {
                return 0.0;
            }
            let i = ((q * lat.len() as f64) as usize).min(lat.len() - 1);
            f64::from(lat[i]) / 1000.0
        };
        let (u, sy) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
        println!(
            "{{\"client\":\"kafka-producer\",\"records\":{},\"record_size\":{},\"acked\":{acked},\"errors\":{failed},\"seconds\":{:.4},\"send_seconds\":{:.4},\"records_per_sec\":{:.1},\"mb_per_sec\":{:.2},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3},\"avg_ms\":{:.3},\"latency_samples\":{},\"cpu_user_s\":{u:.2},\"cpu_sys_s\":{sy:.2},\"client_cpu_s\":{:.2},\"ns_cpu_per_record\":{:.1},\"peak_rss_kb\":{}}}",
            a.num_records,
            a.record_size.unwrap_or(0),
            elapsed.as_secs_f64(),
            send_done.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64(),
            sent_bytes as f64 / elapsed.as_secs_f64() / (1024.0 * 1024.0),
            p(0.5),
            p(0.99),
            p(0.999),
            lat.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
            lat.iter().map(|&x| f64::from(x)).sum::<f64>() / lat.len().max(1) as f64 / 1000.0,
            lat.len(),
            u + sy,
            (u + sy) * 1e9 / a.num_records.max(1) as f64,
            peak_rss_kb(),
        );
    }
    let _ = std::io::stdout().flush();
    if failed > 0 || acked != a.num_records {
        eprintln!(
            "{failed} records failed, {acked} of {} acknowledged",
            a.num_records
        );
        std::process::exit(1);
    }
}
