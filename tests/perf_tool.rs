//! The `producer_perf_test` example pushes one million records through each
//! broker without an error, and prints Java's summary line.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::Duration;

use common::{consume, example, librdkafka_murmur2, topic, Broker, BROKERS};

/// Parses Java's final line: `N records sent, X records/sec (Y MB/sec),
/// A ms avg latency, M ms max latency, P50 ms 50th, P95 ms 95th, P99 ms
/// 99th, P999 ms 99.9th.` and returns N and the four percentiles.
fn parse_summary(line: &str) -> Option<(u64, [u64; 4])> {
    let rest = line.strip_suffix(" ms 99.9th.")?;
    let (head, p999) = rest.rsplit_once(", ")?;
    let (head, p99) = head.strip_suffix(" ms 99th")?.rsplit_once(", ")?;
    let (head, p95) = head.strip_suffix(" ms 95th")?.rsplit_once(", ")?;
    let (head, p50) = head.strip_suffix(" ms 50th")?.rsplit_once(", ")?;
    let (head, _max) = head.strip_suffix(" ms max latency")?.rsplit_once(", ")?;
    let (head, _avg) = head.strip_suffix(" ms avg latency")?.rsplit_once(", ")?;
    let (n, rate) = head.split_once(" records sent, ")?;
    let (recs, mb) = rate.split_once(" records/sec (")?;
    recs.parse::<f64>().ok()?;
    mb.strip_suffix(" MB/sec)")?.parse::<f64>().ok()?;
    let p = |s: &str| s.parse::<u64>().ok();
    Some((n.parse().ok()?, [p(p50)?, p(p95)?, p(p99)?, p(p999)?]))
}

#[test]
fn summary_line_parser_accepts_javas_format_only() {
    let java = "1000000 records sent, 1630148.809324 records/sec (155.46 MB/sec), 4.05 ms avg latency, 8.00 ms max latency, 4 ms 50th, 6 ms 95th, 7 ms 99th, 8 ms 99.9th.";
    assert_eq!(parse_summary(java), Some((1_000_000, [4, 6, 7, 8])));
    assert_eq!(parse_summary(&java.replace("99.9th.", "99.9th")), None);
    assert_eq!(parse_summary(&java.replace(" (155.46", " (x")), None);
}

#[test]
fn one_million_records_through_each_broker() {
    let bin = example("producer_perf_test");
    for broker in BROKERS {
        let topic = topic("perf");
        let out = Command::new(&bin)
            .args([
                "--topic",
                &topic,
                "--num-records",
                "1000000",
                "--record-size",
                "100",
            ])
            .args(["--throughput", "-1", "--producer-props"])
            .arg(format!("bootstrap.servers={}", broker.bootstrap()))
            .args([
                "acks=1",
                "linger.ms=5",
                "batch.size=1000000",
                "max.block.ms=30000",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{broker:?}: exit {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let last = stdout.lines().last().unwrap_or("");
        let (n, percentiles) =
            parse_summary(last).unwrap_or_else(|| panic!("{broker:?}: not Java's format: {last}"));
        assert_eq!(n, 1_000_000, "{broker:?}: {last}");
        assert!(percentiles.windows(2).all(|w| w[0] <= w[1]), "{last}");
    }
}

/// `--key-mode random`: every record read back by librdkafka has its own
/// 8-byte key and sits in the partition librdkafka's murmur2 partitioner
/// (Java's) gives that key, so the records spread over every partition;
/// without the flag (Java's tool), keys are null.
#[test]
fn key_mode_random_gives_each_record_an_8_byte_key_partitioned_by_murmur2() {
    let bin = example("producer_perf_test");
    let broker = Broker::Tansu;
    for random in [true, false] {
        let topic = topic("perf-keys");
        let n = 2000;
        let mut cmd = Command::new(&bin);
        cmd.args(["--topic", &topic, "--num-records", &n.to_string()])
            .args(["--record-size", "100", "--throughput", "-1"]);
        if random {
            cmd.args(["--key-mode", "random"]);
        }
        let out = cmd
            .arg("--producer-props")
            .arg(format!("bootstrap.servers={}", broker.bootstrap()))
            .arg("linger.ms=5")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "exit {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let got = consume(broker.bootstrap(), &topic, n, Duration::from_secs(60));
        assert_eq!(got.len(), n);
        if !random {
            assert!(
                got.iter().all(|r| r.key.is_none()),
                "keys without --key-mode"
            );
            continue;
        }
        let keys: Vec<Vec<u8>> = got.iter().map(|r| r.key.clone().expect("a key")).collect();
        assert!(keys.iter().all(|k| k.len() == 8), "8-byte keys");
        let distinct: BTreeSet<&Vec<u8>> = keys.iter().collect();
        assert!(
            distinct.len() >= n - 2,
            "{} distinct keys of {n}",
            distinct.len()
        );
        let expected = librdkafka_murmur2(
            broker.bootstrap(),
            &common::topic("perf-keys-oracle"),
            &keys,
        );
        let partitions: Vec<i32> = got.iter().map(|r| r.partition).collect();
        assert_eq!(
            partitions, expected,
            "partitions against librdkafka's murmur2"
        );
        let used: BTreeSet<i32> = partitions.iter().copied().collect();
        assert_eq!(
            used.len(),
            4,
            "Tansu's auto-created topics have 4 partitions: {used:?}"
        );
    }
}

/// `--threads 4`: four sending threads through one producer share
/// `--num-records` between them (4001, so the shares are unequal): the
/// summary and the JSON line count every record once, and librdkafka reads
/// back exactly that many, each with its own key (each thread has its own
/// key sequence, so a thread that sent another's share, or the whole run,
/// would show up as duplicates or as extra records).
/// Runs `producer_perf_test` on Tansu: `n` records of `size` bytes to
/// `topic`, unthrottled, with `opts` and then `props` after its
/// `bootstrap.servers`.
fn perf_on_tansu(topic: &str, n: usize, size: usize, opts: &[&str], props: &[&str]) -> Output {
    Command::new(example("producer_perf_test"))
        .args(["--topic", topic, "--num-records", &n.to_string()])
        .args(["--record-size", &size.to_string(), "--throughput", "-1"])
        .args(opts)
        .arg("--producer-props")
        .arg(format!("bootstrap.servers={}", Broker::Tansu.bootstrap()))
        .args(props)
        .output()
        .unwrap()
}

/// The run's standard output, once it exited 0.
fn succeeded(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: exit {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// librdkafka reads back `n` records of `topic` from Tansu, each with a
/// key of its own.
fn each_record_once(what: &str, topic: &str, n: usize) {
    let got = consume(Broker::Tansu.bootstrap(), topic, n, Duration::from_secs(60));
    let keys: BTreeSet<Vec<u8>> = got.iter().map(|r| r.key.clone().expect("a key")).collect();
    assert_eq!(keys.len(), n, "{what}: every record once, with its own key");
}

#[test]
fn threads_share_the_records_between_them() {
    let topic = topic("perf-threads");
    let n = 4001;
    let opts = ["--threads", "4", "--key-mode", "random", "--json", "true"];
    let out = perf_on_tansu(&topic, n, 100, &opts, &["linger.ms=5"]);
    let stdout = succeeded("threads", &out);
    let mut lines = stdout.lines().rev();
    let json = lines.next().unwrap_or("");
    let summary = lines.next().unwrap_or("");
    let (sent, _) =
        parse_summary(summary).unwrap_or_else(|| panic!("not Java's format: {summary}"));
    assert_eq!(sent, n as u64, "{summary}");
    for field in [
        format!("\"records\":{n},"),
        format!("\"acked\":{n},"),
        "\"errors\":0,".into(),
    ] {
        assert!(json.contains(&field), "{field} in {json}");
    }
    each_record_once("threads", &topic, n);
}

/// `--callback none|plain|capture` each deliver every record once (read
/// back by librdkafka), and each counts it: `none` has no callback to count
/// with and takes the topic's `record-error-total` after `flush`.
#[test]
fn callback_modes_each_deliver_and_count_every_record() {
    let n = 3001;
    for mode in ["none", "plain", "capture"] {
        let topic = topic(&format!("perf-callback-{mode}"));
        let opts = ["--callback", mode, "--key-mode", "random", "--json", "true"];
        let out = perf_on_tansu(&topic, n, 100, &opts, &["linger.ms=5"]);
        let stdout = succeeded(mode, &out);
        let json = stdout.lines().last().unwrap_or("");
        for field in [format!("\"acked\":{n},"), "\"errors\":0,".into()] {
            assert!(json.contains(&field), "{mode}: {field} in {json}");
        }
        each_record_once(mode, &topic, n);
    }
}

/// With no callbacks, records `send` refuses still count as failed: the
/// run exits 1 and reports every one (here each is over max.request.size).
#[test]
fn callback_none_counts_refused_records_as_failed() {
    let topic = topic("perf-callback-refused");
    let n = 50;
    let opts = ["--callback", "none", "--json", "true"];
    let out = perf_on_tansu(&topic, n, 2000, &opts, &["max.request.size=1000"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let json = stdout.lines().last().unwrap_or("");
    for field in ["\"acked\":0,".to_owned(), format!("\"errors\":{n},")] {
        assert!(json.contains(&field), "{field} in {json}");
    }
    assert!(
        stderr.contains(&format!("{n} records failed, 0 of {n} acknowledged")),
        "{stderr}"
    );
}
