//! The `producer_perf_test` example pushes one million records through each
//! broker without an error, and prints Java's summary line.

mod common;

use std::process::Command;

use common::{example, topic, BROKERS};

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
