//! Apache Kafka's own Java client as a second oracle
//! (`tests/support/JavaOracle.java`, compiled by `scripts/brokers.sh
//! install`): the partition Java's `KafkaProducer` and its default
//! partitioner choose for a key, an independent `KafkaConsumer` reader with
//! kcheck's output, and topic creation with the Admin client.
//!
//! Needs `KP_JAVA` and `KP_KAFKA_CLASSPATH` (and `KP_KAFKA_BOOTSTRAP` for
//! [`kafka_bootstrap`]) from `eval "$(scripts/brokers.sh env)"`; a missing
//! variable fails the test, it is never a reason to skip.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::{hex, unhex, Consumed};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the Java oracle needs the Kafka cluster's environment; run the \
             tests with scripts/test.sh, or start the brokers with scripts/brokers.sh start and \
             eval \"$(scripts/brokers.sh env)\""
        )
    })
}

/// The 3-node Apache Kafka cluster (`KP_KAFKA_BOOTSTRAP`).
pub fn kafka_bootstrap() -> String {
    var("KP_KAFKA_BOOTSTRAP")
}

/// `java -cp $KP_KAFKA_CLASSPATH JavaOracle <args>`, tuned to start fast
/// (these are short-lived clients, not benchmarks).
fn oracle(args: &[&str]) -> Command {
    let mut c = Command::new(var("KP_JAVA"));
    c.args([
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-Xshare:auto",
    ])
    .args(["-cp", &var("KP_KAFKA_CLASSPATH"), "JavaOracle"])
    .args(args)
    .stdin(Stdio::null())
    .stderr(Stdio::inherit());
    c
}

/// The JSON lines on a finished oracle's stdout.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .expect("JavaOracle printed non-UTF-8")
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("JavaOracle printed a non-JSON line ({e}): {l:?}"))
        })
        .collect()
}

/// The partition Java's `KafkaProducer` with its default partitioner gives
/// each key, by producing them (value `x`, acks=1) to `topic`.
pub fn java_partitions(bootstrap: &str, topic: &str, keys: &[Vec<u8>]) -> Vec<i32> {
    let mut child = oracle(&["partition", "--bootstrap", bootstrap, "--topic", topic])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run JavaOracle partition");
    {
        let mut stdin = std::io::BufWriter::new(child.stdin.take().unwrap());
        for k in keys {
            writeln!(stdin, "{}", hex(k)).unwrap();
        }
        stdin.flush().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "JavaOracle partition to {topic} failed: {}",
        out.status
    );
    let lines = json_lines(&out);
    assert_eq!(
        lines.len(),
        keys.len(),
        "JavaOracle partition: one line per key"
    );
    keys.iter()
        .zip(lines)
        .map(|(k, v)| {
            assert_eq!(
                unhex(&v["key"]).as_ref(),
                Some(k),
                "JavaOracle partition answered out of order"
            );
            assert!(v["offset"].as_i64().unwrap() >= 0, "{v}");
            v["partition"].as_i64().unwrap() as i32
        })
        .collect()
}

/// Reads `topic` from the beginning with Java's `KafkaConsumer` (all
/// partitions assigned, no group) until `expect` records arrived, then one
/// more second to catch extras. Panics unless exactly `expect` records
/// arrive within `timeout`.
pub fn java_consume(
    bootstrap: &str,
    topic: &str,
    expect: usize,
    timeout: Duration,
    read_committed: bool,
) -> Vec<Consumed> {
    let expect_s = expect.to_string();
    let timeout_s = timeout.as_secs().max(1).to_string();
    let isolation = if read_committed {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    let out = oracle(&[
        "consume",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--expect",
        &expect_s,
        "--linger",
        "1",
        "--timeout",
        &timeout_s,
        "--isolation-level",
        isolation,
    ])
    .output()
    .expect("run JavaOracle consume");
    let records: Vec<Consumed> = super::parse_consumed(&out.stdout);
    assert!(
        out.status.success(),
        "JavaOracle consume of {topic} read {} of {expect} records ({})",
        records.len(),
        out.status
    );
    assert_eq!(
        records.len(),
        expect,
        "the Java consumer read {} records of {topic}, expected exactly {expect}",
        records.len()
    );
    records
}

/// Creates `topic` with the Admin client and waits until every partition
/// has a leader. Panics on any failure (including an existing topic).
/// Returns the topic as Admin describes it: `{"topic", "partitions":
/// [{"partition", "leader", "replicas", "isr"}]}`.
pub fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(&str, &str)],
) -> serde_json::Value {
    let partitions_s = partitions.to_string();
    let rf_s = replication_factor.to_string();
    let kvs: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut args = vec![
        "create-topic",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--partitions",
        &partitions_s,
        "--replication-factor",
        &rf_s,
    ];
    for kv in &kvs {
        args.extend(["--config", kv.as_str()]);
    }
    let out = oracle(&args).output().expect("run JavaOracle create-topic");
    assert!(
        out.status.success(),
        "JavaOracle create-topic {topic} ({partitions} partitions, rf {replication_factor}, \
         {configs:?}) failed: {}",
        out.status
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "create-topic prints one line");
    let parts = lines[0]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), partitions as usize, "{}", lines[0]);
    for p in parts {
        assert!(p["leader"].as_i64().unwrap() >= 0, "{p}");
        assert_eq!(
            p["replicas"].as_array().unwrap().len(),
            replication_factor as usize,
            "{p}"
        );
    }
    lines.into_iter().next().unwrap()
}

/// Makes broker `to` the leader of `topic`-`partition` (a replica reorder
/// and a preferred election, through Admin) and waits until metadata says
/// so. Returns the topic as [`create_topic`] does.
pub fn move_leader(bootstrap: &str, topic: &str, partition: i32, to: i32) -> serde_json::Value {
    let (p, n) = (partition.to_string(), to.to_string());
    let args = [
        "move-leader",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--partition",
        &p,
        "--to",
        &n,
    ];
    let out = oracle(&args).output().expect("run JavaOracle move-leader");
    assert!(
        out.status.success(),
        "JavaOracle move-leader {topic}-{partition} to {to} failed: {}",
        out.status
    );
    let mut lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "move-leader prints one line");
    let t = lines.remove(0);
    assert_eq!(t["partitions"][partition as usize]["leader"], to, "{t}");
    t
}

/// Moves the leaders of every partition of `topic` round their replicas
/// for `seconds` (JavaOracle churn-leaders). Returns how many moves it made.
pub fn churn_leaders(bootstrap: &str, topic: &str, seconds: u32) -> usize {
    let s = seconds.to_string();
    let args = [
        "churn-leaders",
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--seconds",
        &s,
    ];
    let out = oracle(&args)
        .output()
        .expect("run JavaOracle churn-leaders");
    assert!(
        out.status.success(),
        "JavaOracle churn-leaders {topic} failed: {}",
        out.status
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "churn-leaders prints one line");
    lines[0]["moves"].as_u64().expect("moves") as usize
}

/// The batches of `topic`-`partition` in Kafka node 1's log, as Kafka's own
/// `DumpLogSegments` reads them from disk: (base offset, base sequence,
/// producer id, producer epoch) per batch.
pub fn dump_batches(topic: &str, partition: i32) -> Vec<(i64, i64, i64, i64)> {
    dump_log(1, topic, partition)
        .into_iter()
        .map(|b| {
            (
                b.base_offset,
                b.base_sequence,
                b.producer_id,
                b.producer_epoch,
            )
        })
        .collect()
}

/// One record batch in a Kafka node's log, as `DumpLogSegments` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub count: i64,
    pub base_sequence: i64,
    pub last_sequence: i64,
    pub producer_id: i64,
    pub producer_epoch: i64,
}

/// The batches of `topic`-`partition` in Kafka node `node`'s log (1, 2 or
/// 3), in log order, as Kafka's own `DumpLogSegments` reads them from disk.
pub fn dump_log(node: i32, topic: &str, partition: i32) -> Vec<LogBatch> {
    dump_logs(topic, &[(node, partition)]).remove(0)
}

/// [`dump_log`] for each (node, partition) of `topic`, with one run of
/// `DumpLogSegments` (one JVM start) for them all.
pub fn dump_logs(topic: &str, logs: &[(i32, i32)]) -> Vec<Vec<LogBatch>> {
    let data = var("KP_KAFKA_DATA");
    // every segment file, and which of `logs` it belongs to
    let mut files: Vec<(String, usize)> = Vec::new();
    for (i, (node, partition)) in logs.iter().enumerate() {
        let dir = std::path::Path::new(&data)
            .join(format!("kafka-{node}"))
            .join(format!("{topic}-{partition}"));
        let mut segments: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok())
            .map(|e| e.path().display().to_string())
            .filter(|p| p.ends_with(".log"))
            .collect();
        segments.sort();
        files.extend(segments.into_iter().map(|s| (s, i)));
    }
    let mut out_logs = vec![Vec::new(); logs.len()];
    if files.is_empty() {
        return out_logs;
    }
    let list: Vec<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
    let out = Command::new(var("KP_JAVA"))
        .args([
            "-cp",
            &var("KP_KAFKA_CLASSPATH"),
            "org.apache.kafka.tools.DumpLogSegments",
            "--files",
        ])
        .arg(list.join(","))
        .stderr(Stdio::null())
        .output()
        .expect("run DumpLogSegments");
    assert!(out.status.success(), "DumpLogSegments: {}", out.status);
    let field = |line: &str, name: &str| -> i64 {
        let at = line
            .find(&format!("{name}: "))
            .unwrap_or_else(|| panic!("{name} in {line}"));
        line[at + name.len() + 2..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // "Dumping <file>" starts each file's batches
    let mut current: Option<usize> = None;
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(f) = l.strip_prefix("Dumping ") {
            current = files.iter().find(|(name, _)| name == f).map(|(_, i)| *i);
            assert!(
                current.is_some(),
                "DumpLogSegments dumped {f}, not asked for"
            );
        } else if l.starts_with("baseOffset: ") {
            let i = current.expect("a batch before any \"Dumping\" line");
            out_logs[i].push(LogBatch {
                base_offset: field(l, "baseOffset"),
                last_offset: field(l, "lastOffset"),
                count: field(l, "count"),
                base_sequence: field(l, "baseSequence"),
                last_sequence: field(l, "lastSequence"),
                producer_id: field(l, "producerId"),
                producer_epoch: field(l, "producerEpoch"),
            });
        }
    }
    out_logs
}

/// The committed offsets of consumer `group` (JavaOracle group-offsets:
/// Admin's listConsumerGroupOffsets with requireStable), sorted:
/// (topic, partition, offset, metadata).
pub fn group_offsets(bootstrap: &str, group: &str) -> Vec<(String, i32, i64, Option<String>)> {
    let args = ["group-offsets", "--bootstrap", bootstrap, "--group", group];
    let out = oracle(&args)
        .output()
        .expect("run JavaOracle group-offsets");
    assert!(
        out.status.success(),
        "JavaOracle group-offsets {group} failed: {}",
        out.status
    );
    json_lines(&out)
        .into_iter()
        .map(|v| {
            (
                v["topic"].as_str().unwrap().to_owned(),
                v["partition"].as_i64().unwrap() as i32,
                v["offset"].as_i64().unwrap(),
                v["metadata"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Sets (`Some`) or removes (`None`) the `producer_byte_rate` quota of
/// `client_id`, in bytes per second, with Java's Admin client, and waits
/// until the cluster describes it so.
pub fn set_client_quota(bootstrap: &str, client_id: &str, producer_byte_rate: Option<u64>) {
    let rate = producer_byte_rate.map_or("none".to_owned(), |r| r.to_string());
    let out = oracle(&[
        "client-quota",
        "--bootstrap",
        bootstrap,
        "--client-id",
        client_id,
        "--producer-byte-rate",
        &rate,
    ])
    .output()
    .expect("run JavaOracle client-quota");
    assert!(
        out.status.success(),
        "JavaOracle client-quota {client_id} {rate} failed: {}",
        out.status
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "client-quota prints one line");
    assert_eq!(lines[0]["client_id"], client_id, "{}", lines[0]);
}
