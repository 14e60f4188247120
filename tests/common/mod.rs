//! Shared helpers for the integration tests: where the brokers are, random
//! topic names, private mock clusters for fault injection, and the
//! independent consumer (`tests/support/kcheck.py`, confluent-kafka over
//! librdkafka) whose view of the topics the tests assert on.
//!
//! The brokers are started by `scripts/test.sh` (or `scripts/brokers.sh
//! start` plus `eval "$(scripts/brokers.sh env)"`). A missing variable or
//! broker fails the test: it is never a reason to skip.

#![allow(dead_code)]
pub mod java;
pub mod kproxy;
pub mod logs;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_producer::{ProducerConfig, RecordFuture};

/// Where the brokers and tools are.
pub struct Env {
    pub kafka: String,
    pub tansu: String,
    pub mock: String,
    pub mock_bin: PathBuf,
    pub python: PathBuf,
    pub kcheck: PathBuf,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with scripts/test.sh, or start the brokers with \
             scripts/brokers.sh start and eval \"$(scripts/brokers.sh env)\""
        )
    })
}

/// The test environment; panics if a broker variable is missing.
pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env {
        kafka: var("KP_KAFKA_BOOTSTRAP"),
        tansu: var("KP_TANSU_BOOTSTRAP"),
        mock: var("KP_MOCK_BOOTSTRAP"),
        mock_bin: var("KP_MOCK_BIN").into(),
        python: var("KP_PYTHON").into(),
        kcheck: var("KP_KCHECK").into(),
    })
}

/// The three real brokers every end-to-end test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    /// Apache Kafka 4: a 3-node KRaft cluster, 4 partitions and replication
    /// factor 3 per auto-created topic.
    Kafka,
    /// Tansu: one broker, flexible versions, 4 partitions per new topic.
    Tansu,
    /// librdkafka's mock: 3 brokers, old versions, 4 partitions per topic.
    Mock,
}

pub const BROKERS: [Broker; 3] = [Broker::Kafka, Broker::Tansu, Broker::Mock];

impl Broker {
    pub fn bootstrap(self) -> &'static str {
        match self {
            Broker::Kafka => &env().kafka,
            Broker::Tansu => &env().tansu,
            Broker::Mock => &env().mock,
        }
    }

    /// A config for this broker with small timeouts for tests.
    pub fn config(self) -> ProducerConfig {
        ProducerConfig::new()
            .bootstrap_servers(self.bootstrap())
            .max_block(Duration::from_secs(20))
    }
}

/// A fresh topic name.
pub fn topic(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One record as the independent consumer read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp_type: i64,
    pub timestamp: i64,
}

/// A hex string from an oracle's JSON, or `None` for `null`.
pub fn unhex(v: &serde_json::Value) -> Option<Vec<u8>> {
    let s = v.as_str()?;
    Some(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect(),
    )
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads `topic` from the beginning with an independent consumer
/// (librdkafka via confluent-kafka) until `expect` records arrived, then
/// one more second to catch extras. Panics unless exactly `expect` records
/// arrive within `timeout`: duplicates fail the test as missing ones do.
pub fn consume(bootstrap: &str, topic: &str, expect: usize, timeout: Duration) -> Vec<Consumed> {
    let records = consume_at_least(bootstrap, topic, expect, timeout);
    assert_eq!(
        records.len(),
        expect,
        "the consumer read {} records of {topic}, expected exactly {expect}",
        records.len()
    );
    records
}

/// Like [`consume`], at `read_committed` (kcheck's default, which is
/// librdkafka's) or `read_uncommitted`: librdkafka's view of transactions.
pub fn consume_isolation(
    bootstrap: &str,
    topic: &str,
    expect: usize,
    timeout: Duration,
    read_committed: bool,
) -> Vec<Consumed> {
    let isolation = if read_committed {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    let records = kcheck_consume(bootstrap, topic, expect, timeout, Some(isolation));
    assert_eq!(
        records.len(),
        expect,
        "librdkafka ({isolation}) read {} records of {topic}, expected exactly {expect}",
        records.len()
    );
    records
}

/// Like [`consume`], but duplicates are allowed (a retry without
/// idempotence may write a batch twice): panics unless at least `expect`
/// records arrive within `timeout`, and returns everything read.
pub fn consume_at_least(
    bootstrap: &str,
    topic: &str,
    expect: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    kcheck_consume(bootstrap, topic, expect, timeout, None)
}

/// kcheck's `consume` (at `isolation`, or its default): panics unless at
/// least `expect` records arrive within `timeout`; returns all it read.
fn kcheck_consume(
    bootstrap: &str,
    topic: &str,
    expect: usize,
    timeout: Duration,
    isolation: Option<&str>,
) -> Vec<Consumed> {
    let e = env();
    let mut c = Command::new(&e.python);
    c.arg(&e.kcheck)
        .args(["consume", "--bootstrap", bootstrap, "--topic", topic])
        .args(["--expect", &expect.to_string(), "--linger", "1"])
        .args(["--timeout", &timeout.as_secs().max(1).to_string()]);
    if let Some(level) = isolation {
        c.args(["--isolation-level", level]);
    }
    let out = c
        .stderr(Stdio::inherit())
        .output()
        .expect("run kcheck.py consume");
    let records = parse_consumed(&out.stdout);
    let how = isolation.map_or(String::new(), |l| format!(" ({l})"));
    assert!(
        out.status.success(),
        "kcheck consume{how} of {topic} read {} of {expect} records ({})",
        records.len(),
        out.status
    );
    records
}

/// The JSON lines of kcheck's (and the Java oracle's) `consume`.
pub fn parse_consumed(stdout: &[u8]) -> Vec<Consumed> {
    std::str::from_utf8(stdout)
        .expect("utf-8")
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            Consumed {
                partition: v["partition"].as_i64().unwrap() as i32,
                offset: v["offset"].as_i64().unwrap(),
                key: unhex(&v["key"]),
                value: unhex(&v["value"]),
                headers: v["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| (h[0].as_str().unwrap().to_owned(), unhex(&h[1])))
                    .collect(),
                timestamp_type: v["timestamp_type"].as_i64().unwrap(),
                timestamp: v["timestamp"].as_i64().unwrap(),
            }
        })
        .collect()
}

/// The partition librdkafka's `murmur2_random` partitioner (Java's key
/// hash) gives each key, by producing them to `topic` with librdkafka.
pub fn librdkafka_murmur2(bootstrap: &str, topic: &str, keys: &[Vec<u8>]) -> Vec<i32> {
    let keys: Vec<Option<Vec<u8>>> = keys.iter().cloned().map(Some).collect();
    librdkafka_partitions(bootstrap, topic, &keys, "murmur2_random")
}

/// The partition librdkafka's `partitioner` (by its librdkafka name) gives
/// each key (`None`: no key), by producing them with confluent-kafka.
pub fn librdkafka_partitions(
    bootstrap: &str,
    topic: &str,
    keys: &[Option<Vec<u8>>],
    partitioner: &str,
) -> Vec<i32> {
    librdkafka_produce(bootstrap, topic, keys, &["--partitioner", partitioner])
}

/// kcheck's `murmur2` with extra arguments (`--partitioner P`,
/// `--idempotence`): produces each key (value `x`) with confluent-kafka
/// and returns the partition each went to.
pub fn librdkafka_produce(
    bootstrap: &str,
    topic: &str,
    keys: &[Option<Vec<u8>>],
    args: &[&str],
) -> Vec<i32> {
    let e = env();
    let mut child = Command::new(&e.python)
        .arg(&e.kcheck)
        .args(["murmur2", "--bootstrap", bootstrap, "--topic", topic])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run kcheck.py murmur2");
    {
        let mut stdin = child.stdin.take().unwrap();
        for k in keys {
            match k {
                Some(k) => writeln!(stdin, "{}", hex(k)).unwrap(),
                None => writeln!(stdin, "null").unwrap(),
            }
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kcheck murmur2 failed: {}",
        out.status
    );
    let parts: Vec<i32> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["partition"].as_i64().unwrap() as i32
        })
        .collect();
    assert_eq!(parts.len(), keys.len());
    parts
}

/// A private librdkafka mock cluster for tests that inject faults, so they
/// do not disturb the shared brokers. Killed on drop.
pub struct MockCluster {
    child: Child,
    pub bootstrap: String,
    ctl: PathBuf,
    ack: PathBuf,
    commands: usize,
    dir: PathBuf,
}

impl MockCluster {
    /// Starts `brokers` mock brokers with the given topics pre-created.
    pub fn start(brokers: usize, topics: &[(&str, usize)]) -> MockCluster {
        let e = env();
        let dir = std::env::temp_dir().join(topic("kp-mock"));
        std::fs::create_dir_all(&dir).unwrap();
        let bs = dir.join("bootstrap");
        let ctl = dir.join("ctl");
        let ack = dir.join("ack");
        let mut cmd = Command::new(&e.mock_bin);
        cmd.args(["-b", &brokers.to_string()])
            .arg("-f")
            .arg(&bs)
            .arg("-c")
            .arg(&ctl)
            .arg("-a")
            .arg(&ack);
        for (t, p) in topics {
            cmd.args(["-t", &format!("{t}:{p}")]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .expect("start the mock cluster");
        let t0 = Instant::now();
        let bootstrap = loop {
            if let Ok(s) = std::fs::read_to_string(&bs) {
                if !s.trim().is_empty() {
                    break s.trim().to_owned();
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "mock cluster did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        MockCluster {
            child,
            bootstrap,
            ctl,
            ack,
            commands: 0,
            dir,
        }
    }

    /// Sends a control command (`down 1`, `errors 0 6 6`, ...) and waits
    /// until the mock has applied it.
    pub fn command(&mut self, line: &str) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.ctl)
            .expect("open the mock's control fifo");
        writeln!(f, "{line}").unwrap();
        drop(f);
        self.commands += 1;
        let t0 = Instant::now();
        loop {
            let n: usize = std::fs::read_to_string(&self.ack)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            if n >= self.commands {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "mock ignored `{line}`"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Freezes (`STOP`) or thaws (`CONT`) the mock process: its sockets stay
    /// open but nothing answers.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
        if sig == "STOP" {
            // kill(2) returns before every thread has stopped: wait until
            // each of the mock's threads is in state T (stopped), so that
            // nothing the test does next can still be answered.
            let pid = self.child.id();
            let t0 = Instant::now();
            while !all_threads_stopped(pid) {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "the mock (pid {pid}) did not stop"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// The mock's log, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

/// True once every thread of process `pid` is stopped (state `T` or `t`
/// in /proc/PID/task/TID/stat).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .and_then(|s| {
                // "tid (comm) S ...": the state follows the last ')'.
                let after = &s[s.rfind(')')? + 1..];
                after
                    .split_whitespace()
                    .next()
                    .map(|st| st == "T" || st == "t")
            })
            .unwrap_or(false)
    })
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The keys of Java's own murmur2 tests (and the empty key): the first keys
/// every placement oracle is asked about.
pub const MURMUR2_TEST_KEYS: [&str; 8] = [
    "",
    "kafka",
    "giberish123456789",
    "1234",
    "234",
    "34",
    "4",
    "PreAmbleWillBeRemoved,ThePrePartThatIs",
];

/// Asserts that `e` (the outcome of `what`) is the broker's `code` for
/// `topic`-`partition`.
pub fn assert_broker_error(
    what: &str,
    e: &kafka_producer::Error,
    code: kafka_producer::ErrorCode,
    topic: &str,
    partition: i32,
) {
    match e {
        kafka_producer::Error::Broker {
            code: c,
            topic: t,
            partition: p,
            ..
        } => assert_eq!(
            (*c, t.as_str(), *p),
            (code, topic, partition),
            "{what}: {e}"
        ),
        other => {
            panic!("{what}: expected Error::Broker {code} for {topic}-{partition}, got {other:?}")
        }
    }
}

/// Wall-clock milliseconds since the epoch, as Kafka timestamps count them.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Waits for every handle and returns the results.
pub fn wait_all(
    handles: Vec<RecordFuture>,
) -> Vec<kafka_producer::Result<kafka_producer::RecordMetadata>> {
    handles.into_iter().map(|h| h.get()).collect()
}

/// Path of an example binary, built (once per test process) so that it is
/// never stale: `cargo test --test X` alone does not rebuild examples.
pub fn example(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|b| b == name) {
        let mut c = Command::new(env!("CARGO"));
        c.args(["build", "--quiet", "--example", name]);
        if profile_dir.ends_with("release") {
            c.arg("--release");
        }
        assert!(
            c.status().unwrap().success(),
            "cargo build --example {name}"
        );
        built.push(name.to_owned());
    }
    profile_dir.join("examples").join(name)
}

/// How long an example process may run before it is killed.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// What an example process did.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Its exit code and output, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs example `name` with `args`, feeding it `stdin`, and waits at most
/// `RUN_TIMEOUT` (then kills it and panics).
pub fn run_example(name: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(example(name))
        .args(args)
        .env_remove("BOOTSTRAP_SERVERS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start example {name}: {e}"));
    let input = stdin.to_owned();
    let mut pipe_in = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = pipe_in.write_all(input.as_bytes()); // closes stdin when done
    });
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).expect("utf-8 output");
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("example {name} {args:?} still running after {RUN_TIMEOUT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A TCP forwarder on 127.0.0.1 whose target can change: a bootstrap
/// address that outlives the cluster behind it. Each accepted connection
/// is piped to the target of the moment; stops accepting on drop.
pub struct Proxy {
    pub addr: String,
    target: std::sync::Arc<std::sync::Mutex<String>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    pub fn start(target: &str) -> Proxy {
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let target = Arc::new(Mutex::new(target.to_owned()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (target.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => break,
                };
                let to = t.lock().unwrap().clone();
                let Ok(to) = to.parse() else { continue };
                let Ok(server) = TcpStream::connect_timeout(&to, Duration::from_secs(1)) else {
                    continue; // dropping `client` closes it: the target is down
                };
                client.set_nonblocking(false).unwrap();
                for (mut from, mut into) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { addr, target, stop }
    }

    /// New connections go to `target` from now on.
    pub fn retarget(&self, target: &str) {
        *self.target.lock().unwrap() = target.to_owned();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
