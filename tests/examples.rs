//! The examples run against both brokers, and the independent consumer
//! (librdkafka, `tests/support/kcheck.py`) reads back exactly what each one
//! claims to have sent.
//!
//! Every example runs as its own process, found (or built) by
//! `common::example`, with its bootstrap given on the command line and a
//! fresh topic. Runs are bounded by `RUN_TIMEOUT`; a hung example is
//! killed and fails the test.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{consume, example, run_example as run, topic, Broker, Consumed, BROKERS, RUN_TIMEOUT};
use kafka_producer::murmur2_partition;

const CONSUME_TIMEOUT: Duration = Duration::from_secs(30);
/// Both test brokers create topics with 4 partitions (see `common::Broker`).
const PARTITIONS: usize = 4;

fn text(b: &Option<Vec<u8>>) -> Option<String> {
    b.as_ref()
        .map(|b| String::from_utf8(b.clone()).expect("utf-8"))
}

/// (key, value) of a consumed record, as text.
fn kv(r: &Consumed) -> (Option<String>, Option<String>) {
    (text(&r.key), text(&r.value))
}

/// Parses `<label> -> ... partition P offset O` lines.
fn printed_positions(stdout: &str) -> Vec<(String, i32, i64)> {
    stdout
        .lines()
        .filter_map(|l| {
            let (label, rest) = l.split_once(" -> ")?;
            let (head, offset) = rest.rsplit_once(" offset ")?;
            let (_, partition) = head.rsplit_once("partition ")?;
            Some((
                label.to_owned(),
                partition.parse().ok()?,
                offset.parse().ok()?,
            ))
        })
        .collect()
}

#[test]
fn sync_send_prints_the_position_the_consumer_reads() {
    const N: usize = 20;
    for broker in BROKERS {
        let t = topic("ex-sync");
        let r = run("sync_send", &[broker.bootstrap(), &t, &N.to_string()], "");
        assert_eq!(r.code, Some(0), "{broker:?}: {}", r.describe());
        assert!(
            r.stdout
                .lines()
                .all(|l| l.contains(&format!(" -> topic {t} partition "))),
            "{broker:?}: {}",
            r.stdout
        );
        let printed = printed_positions(&r.stdout);
        let labels: Vec<String> = printed.iter().map(|p| p.0.clone()).collect();
        let want: Vec<String> = (0..N).map(|i| format!("key-{i}")).collect();
        assert_eq!(labels, want, "{broker:?}: one line per record, in order");

        let by_position: HashMap<(i32, i64), Consumed> =
            consume(broker.bootstrap(), &t, N, CONSUME_TIMEOUT)
                .into_iter()
                .map(|c| ((c.partition, c.offset), c))
                .collect();
        let mut next_offset: HashMap<i32, i64> = HashMap::new();
        for (i, (key, partition, offset)) in printed.iter().enumerate() {
            let c = by_position
                .get(&(*partition, *offset))
                .unwrap_or_else(|| panic!("{broker:?}: nothing at {partition}@{offset}"));
            assert_eq!(
                kv(c),
                (Some(key.clone()), Some(format!("value-{i}"))),
                "{broker:?}"
            );
            // Java's key hash decides the partition.
            assert_eq!(
                *partition,
                murmur2_partition(key.as_bytes(), PARTITIONS),
                "{broker:?}: {key}"
            );
            // One at a time: each partition's offsets follow send order.
            let next = next_offset.entry(*partition).or_insert(0);
            assert_eq!(*offset, *next, "{broker:?}: {key}");
            *next += 1;
        }
    }
}

#[test]
fn async_callback_runs_every_callback_before_flush_returns() {
    const N: usize = 200;
    for broker in BROKERS {
        let t = topic("ex-async");
        let r = run(
            "async_callback",
            &[broker.bootstrap(), &t, &N.to_string()],
            "",
        );
        assert_eq!(r.code, Some(0), "{broker:?}: {}", r.describe());
        let lines: Vec<&str> = r.stdout.lines().collect();
        // N callback lines, then the two summary lines: stdout is locked
        // per line, so every callback printed before flush() returned.
        assert_eq!(lines.len(), N + 2, "{broker:?}: {}", r.stdout);
        assert_eq!(
            lines[N],
            format!("after flush: {N} of {N} callbacks ran, 0 failed"),
            "{broker:?}"
        );
        assert_eq!(
            lines[N + 1],
            format!("closed: {N} of {N} callbacks ran"),
            "{broker:?}"
        );

        let printed = printed_positions(&r.stdout);
        assert_eq!(printed.len(), N, "{broker:?}: {}", r.stdout);
        let consumed: HashMap<(i32, i64), Consumed> =
            consume(broker.bootstrap(), &t, N, CONSUME_TIMEOUT)
                .into_iter()
                .map(|c| ((c.partition, c.offset), c))
                .collect();
        let mut values: Vec<String> = Vec::new();
        for (value, partition, offset) in &printed {
            let c = consumed
                .get(&(*partition, *offset))
                .unwrap_or_else(|| panic!("{broker:?}: nothing at {partition}@{offset}"));
            assert_eq!(kv(c), (None, Some(value.clone())), "{broker:?}");
            values.push(value.clone());
        }
        values.sort();
        let mut want: Vec<String> = (0..N).map(|i| format!("value-{i}")).collect();
        want.sort();
        assert_eq!(values, want, "{broker:?}: one callback per record");
    }
}

#[test]
fn custom_partitioner_gives_the_heavy_key_partition_zero_alone() {
    const N: usize = 90;
    let heavy = "orca";
    for broker in BROKERS {
        let t = topic("ex-partitioner");
        let r = run(
            "custom_partitioner",
            &[broker.bootstrap(), &t, heavy, &N.to_string()],
            "",
        );
        assert_eq!(r.code, Some(0), "{broker:?}: {}", r.describe());
        assert!(
            r.stdout.starts_with(&format!(
                "{t} has {PARTITIONS} partitions; {heavy} gets partition 0\n"
            )),
            "{broker:?}: {}",
            r.stdout
        );
        assert_eq!(printed_positions(&r.stdout).len(), N, "{broker:?}");

        let consumed = consume(broker.bootstrap(), &t, N, CONSUME_TIMEOUT);
        let mut values: Vec<String> = Vec::new();
        let mut other_partitions = std::collections::BTreeSet::new();
        for c in &consumed {
            let (key, value) = kv(c);
            let (key, value) = (key.expect("keyed"), value.expect("value"));
            let i: usize = value.strip_prefix("value-").unwrap().parse().unwrap();
            let want_key = if i.is_multiple_of(3) {
                heavy.to_owned()
            } else {
                format!("user-{}", i % 17)
            };
            assert_eq!(key, want_key, "{broker:?}: {value}");
            if key == heavy {
                assert_eq!(c.partition, 0, "{broker:?}: {key} outside partition 0");
            } else {
                assert_ne!(
                    c.partition, 0,
                    "{broker:?}: {key} in the heavy key's partition"
                );
                assert_eq!(
                    c.partition,
                    1 + murmur2_partition(key.as_bytes(), PARTITIONS - 1),
                    "{broker:?}: {key}"
                );
                other_partitions.insert(c.partition);
            }
            values.push(value);
        }
        assert_eq!(
            other_partitions.len(),
            PARTITIONS - 1,
            "{broker:?}: other keys use every other partition"
        );
        values.sort();
        let mut want: Vec<String> = (0..N).map(|i| format!("value-{i}")).collect();
        want.sort();
        assert_eq!(values, want, "{broker:?}");
    }
}

/// Writes `files` (name, lines) under a fresh directory; returns the paths
/// and the expected (key, value) records.
fn write_files(files: &[(&str, Vec<String>)]) -> (Vec<String>, Vec<(String, String)>) {
    let dir = std::env::temp_dir().join(topic("kp-ex-files"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    let mut want = Vec::new();
    for (name, lines) in files {
        let path = dir.join(name).to_str().unwrap().to_owned();
        let mut body = lines.join("\n");
        body.push('\n');
        std::fs::write(&path, body).unwrap();
        want.extend(lines.iter().map(|l| (path.clone(), l.clone())));
        paths.push(path);
    }
    (paths, want)
}

#[test]
fn multi_thread_files_sends_every_line_once_keyed_by_file() {
    let mut odd = vec![String::new(), "naïve ☕ line".to_owned()];
    odd.push("tab\tand:colon".to_owned());
    let files = [
        (
            "alpha.txt",
            (0..400).map(|i| format!("alpha {i}")).collect(),
        ),
        ("beta.log", (0..250).map(|i| format!("beta {i}")).collect()),
        ("gamma", (0..97).map(|i| format!("gamma {i}")).collect()),
        ("odd.txt", odd),
    ];
    for broker in BROKERS {
        let (paths, mut want) = write_files(&files);
        let t = topic("ex-files");
        let mut args = vec!["--bootstrap-server", broker.bootstrap(), &t];
        args.extend(paths.iter().map(String::as_str));
        let r = run("multi_thread_files", &args, "");
        assert_eq!(r.code, Some(0), "{broker:?}: {}", r.describe());
        for ((_, lines), path) in files.iter().zip(&paths) {
            assert!(
                r.stdout
                    .contains(&format!("{path}: {} lines sent\n", lines.len())),
                "{broker:?}: {}",
                r.stdout
            );
        }

        let consumed = consume(broker.bootstrap(), &t, want.len(), CONSUME_TIMEOUT);
        let mut got: Vec<(String, String)> = consumed
            .iter()
            .map(|c| match kv(c) {
                (Some(k), Some(v)) => (k, v),
                other => panic!("{broker:?}: {other:?}"),
            })
            .collect();
        // Each file's lines are in file order within their partition.
        let mut per_partition: BTreeMap<(i32, String), Vec<String>> = BTreeMap::new();
        for c in &consumed {
            let (k, v) = kv(c);
            per_partition
                .entry((c.partition, k.unwrap()))
                .or_default()
                .push(v.unwrap());
        }
        for ((_, path), values) in &per_partition {
            let file = paths.iter().position(|p| p == path);
            let file = file.unwrap_or_else(|| panic!("{broker:?}: key {path:?} names no file"));
            let lines = &files[file].1;
            assert_eq!(values, lines, "{broker:?}: {path} out of order");
        }
        got.sort();
        want.sort();
        assert_eq!(got, want, "{broker:?}");
        let _ = std::fs::remove_dir_all(Path::new(&paths[0]).parent().unwrap());
    }
}

#[test]
fn multi_thread_files_reports_an_unreadable_file_and_sends_the_others() {
    for broker in BROKERS {
        let (paths, want) = write_files(&[("ok.txt", vec!["one".into(), "two".into()])]);
        let missing = format!("{}.missing", paths[0]);
        let t = topic("ex-files-bad");
        let r = run(
            "multi_thread_files",
            &[
                "--bootstrap-server",
                broker.bootstrap(),
                &t,
                &missing,
                &paths[0],
            ],
            "",
        );
        assert_eq!(r.code, Some(1), "{broker:?}: {}", r.describe());
        assert!(
            r.stderr
                .contains(&format!("{missing}: error: cannot open: No such file")),
            "{broker:?}: {}",
            r.describe()
        );
        assert!(
            r.stdout.contains(&format!("{}: 2 lines sent", paths[0])),
            "{broker:?}: {}",
            r.describe()
        );
        let got: Vec<(String, String)> = consume(broker.bootstrap(), &t, 2, CONSUME_TIMEOUT)
            .iter()
            .map(|c| (text(&c.key).unwrap(), text(&c.value).unwrap()))
            .collect();
        assert_eq!(got, want, "{broker:?}");
        let _ = std::fs::remove_dir_all(Path::new(&paths[0]).parent().unwrap());
    }
}

#[test]
fn console_producer_parses_keys_from_stdin() {
    let mut pairs: Vec<(String, String)> = (0..100)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    pairs.push(("sep".into(), "value:with:colons".into())); // split at the first
    pairs.push(("empty-value".into(), String::new()));
    pairs.push((String::new(), "empty key".into()));
    let stdin: String = pairs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let dir = std::env::temp_dir().join(topic("kp-ex-console"));
    std::fs::create_dir_all(&dir).unwrap();
    let props = dir.join("producer.properties");
    std::fs::write(&props, "# from --producer.config\nlinger.ms=20\nacks=all\n").unwrap();

    for broker in BROKERS {
        let t = topic("ex-console");
        let r = run(
            "console_producer",
            &[
                "--bootstrap-server",
                broker.bootstrap(),
                "--topic",
                &t,
                "--property",
                "parse.key=true",
                "--property",
                "key.separator=:",
                "--producer.config",
                props.to_str().unwrap(),
                "--producer-property",
                "max.block.ms=20000",
            ],
            &stdin,
        );
        assert_eq!(r.code, Some(0), "{broker:?}: {}", r.describe());
        assert_eq!(r.stderr, "", "{broker:?}");

        let consumed = consume(broker.bootstrap(), &t, pairs.len(), CONSUME_TIMEOUT);
        let mut per_partition: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
        for c in &consumed {
            let (k, v) = kv(c);
            let (k, v) = (k.expect("keyed"), v.expect("value"));
            assert_eq!(
                c.partition,
                murmur2_partition(k.as_bytes(), PARTITIONS),
                "{broker:?}: {k:?}"
            );
            per_partition.entry(c.partition).or_default().push((k, v));
        }
        // Within a partition, stdin's order is kept.
        for (p, got) in &per_partition {
            let want: Vec<(String, String)> = pairs
                .iter()
                .filter(|(k, _)| murmur2_partition(k.as_bytes(), PARTITIONS) == *p)
                .cloned()
                .collect();
            assert_eq!(got, &want, "{broker:?}: partition {p}");
        }
        assert_eq!(
            per_partition.values().map(Vec::len).sum::<usize>(),
            pairs.len()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn console_producer_reports_lines_without_the_default_tab_separator() {
    let stdin = "a\t1\nno separator here\nb\t2:x\n\tempty key\n";
    for broker in BROKERS {
        let t = topic("ex-console-tab");
        let r = run(
            "console_producer",
            &[
                "--bootstrap-server",
                broker.bootstrap(),
                "--topic",
                &t,
                "--property",
                "parse.key=true",
            ],
            stdin,
        );
        assert_eq!(r.code, Some(1), "{broker:?}: {}", r.describe());
        assert_eq!(
            r.stderr, "No key separator found on line number 2: 'no separator here'\n",
            "{broker:?}"
        );
        let mut got: Vec<(Option<String>, Option<String>)> =
            consume(broker.bootstrap(), &t, 3, CONSUME_TIMEOUT)
                .iter()
                .map(kv)
                .collect();
        got.sort();
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            got,
            [
                (s(""), s("empty key")),
                (s("a"), s("1")),
                (s("b"), s("2:x"))
            ],
            "{broker:?}"
        );
    }
}

#[test]
fn console_producer_without_parse_key_sends_keyless_lines() {
    let lines = ["plain line", "k:v stays whole", "\ttab first", ""];
    let stdin: String = lines.iter().map(|l| format!("{l}\n")).collect();
    for broker in BROKERS {
        let t = topic("ex-console-plain");
        let r = run(
            "console_producer",
            &["--bootstrap-server", broker.bootstrap(), "--topic", &t],
            &stdin,
        );
        assert_eq!(r.code, Some(0), "{broker:?}: {}", r.describe());
        let mut got: Vec<(Option<String>, Option<String>)> =
            consume(broker.bootstrap(), &t, lines.len(), CONSUME_TIMEOUT)
                .iter()
                .map(kv)
                .collect();
        got.sort();
        let mut want: Vec<(Option<String>, Option<String>)> =
            lines.iter().map(|l| (None, Some(l.to_string()))).collect();
        want.sort();
        assert_eq!(got, want, "{broker:?}");
    }
}

#[test]
fn console_producer_refuses_an_unknown_producer_property() {
    // Refused before any broker is contacted.
    let r = run(
        "console_producer",
        &[
            "--bootstrap-server",
            Broker::Tansu.bootstrap(),
            "--topic",
            &topic("ex-console-bad"),
            "--producer-property",
            "no.such.key=1",
        ],
        "never sent\n",
    );
    assert_eq!(r.code, Some(2), "{}", r.describe());
    assert!(
        r.stderr.contains("`no.such.key`") && r.stderr.contains("unknown"),
        "{}",
        r.describe()
    );
    assert_eq!(r.stdout, "");
    // A known key with an invalid value is refused the same way.
    let r = run(
        "console_producer",
        &["--topic", "t", "--producer-property", "acks=2"],
        "",
    );
    assert_eq!(r.code, Some(2), "{}", r.describe());
    assert!(r.stderr.contains("`acks`"), "{}", r.describe());
}

/// SIGTERM in the middle of a stream (the `basic` example, one record
/// every 2 ms): the example stops sending, closes with `close_timeout`,
/// exits 0, and every record it sent is in the topic. Killed by the signal
/// instead (no shutdown hook), the lingering records would be lost.
#[test]
fn basic_closes_on_sigterm_and_loses_nothing() {
    let broker = Broker::Mock;
    let t = topic("basic-term");
    let mut child = Command::new(example("basic"))
        .args([broker.bootstrap(), t.as_str(), "100000", "2"])
        .env_remove("BOOTSTRAP_SERVERS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start example basic");
    let mut out = child.stdout.take().unwrap();
    // The first delivered record: the producer is up and streaming.
    let mut first = [0u8; 6];
    out.read_exact(&mut first)
        .expect("the example printed nothing");
    assert_eq!(&first, b"key-0:");
    std::thread::sleep(Duration::from_millis(300)); // the stream runs a while
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            panic!("basic did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = reader.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status:?}\n{stdout}\n{err}");
    assert!(err.contains("signal received: closing"), "{err}");
    let last = stdout.lines().last().unwrap_or_default();
    let counts: Vec<usize> = last
        .strip_prefix("closed; sent ")
        .and_then(|r| r.split_once(", delivered "))
        .map(|(a, b)| vec![a.parse().unwrap(), b.parse().unwrap()])
        .unwrap_or_else(|| panic!("last line: {last:?}"));
    let (sent, delivered) = (counts[0], counts[1]);
    assert!(
        sent > 10 && sent < 100_000,
        "sent {sent}: the signal came mid-stream"
    );
    assert_eq!(delivered, sent, "every record sent was delivered");
    let got = consume(broker.bootstrap(), &t, sent, CONSUME_TIMEOUT);
    assert_eq!(got.len(), sent);
}

/// The console producer over Kafka's SSL listener with Java's settings
/// from `--producer.config` and `--producer-property`, as Java's console
/// producer takes them; read back by librdkafka.
#[test]
fn console_producer_produces_over_ssl_with_its_settings() {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: eval \"$(scripts/brokers.sh env)\" (the SSL listener)")
        })
    };
    let dir = std::env::temp_dir().join(topic("kp-ex-console-ssl"));
    std::fs::create_dir_all(&dir).unwrap();
    let props = dir.join("client-ssl.properties");
    std::fs::write(
        &props,
        format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n\
             ssl.keystore.type=PEM\n",
            var("KP_KAFKA_CA")
        ),
    )
    .unwrap();
    let t = topic("ex-console-ssl");
    let lines: Vec<String> = (0..50).map(|i| format!("k{i}:tls-{i}")).collect();
    let stdin: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let keystore = format!("ssl.keystore.location={}", var("KP_KAFKA_CLIENT_KEYSTORE"));
    let r = run(
        "console_producer",
        &[
            "--bootstrap-server",
            &var("KP_KAFKA_SSL_BOOTSTRAP"),
            "--topic",
            &t,
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
            "--producer.config",
            props.to_str().unwrap(),
            "--producer-property",
            &keystore,
            "--producer-property",
            "max.block.ms=20000",
        ],
        &stdin,
    );
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert_eq!(r.stderr, "");
    let mut got: Vec<(Option<String>, Option<String>)> =
        consume(Broker::Kafka.bootstrap(), &t, lines.len(), CONSUME_TIMEOUT)
            .iter()
            .map(kv)
            .collect();
    got.sort();
    let mut want: Vec<(Option<String>, Option<String>)> = (0..50)
        .map(|i| (Some(format!("k{i}")), Some(format!("tls-{i}"))))
        .collect();
    want.sort();
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(dir);
}
