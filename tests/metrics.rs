//! Metrics, the statistics callback, interceptors and quotas, on the real
//! brokers: each metric is checked against what an independent consumer
//! reads back (kcheck.py, librdkafka) or against what the test made
//! happen; the quota test sets a client-id byte-rate quota on the Kafka
//! cluster with Java's Admin (tests/support/JavaOracle.java).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::java::{create_topic, kafka_bootstrap, set_client_quota};
use common::{consume, run_example, topic, Broker, BROKERS};
use kafka_producer::{
    Error, Header, InterceptedRecord, InterceptorError, MetricsSnapshot, Producer, ProducerConfig,
    ProducerInterceptor, ProducerRecord, RecordMetadata, StringSerializer,
};
use parking_lot::Mutex;

const T: Duration = Duration::from_secs(60);

fn value(m: &MetricsSnapshot, name: &str) -> f64 {
    m.value("producer-metrics", name)
        .unwrap_or_else(|| panic!("no producer-metrics {name}"))
}

/// The sum of `name` over every node's producer-node-metrics.
fn node_sum(m: &MetricsSnapshot, name: &str) -> f64 {
    m.metrics()
        .iter()
        .filter(|x| x.group == "producer-node-metrics" && x.name == name)
        .map(|x| x.value)
        .sum()
}

#[test]
fn counts_match_what_the_consumer_reads() {
    for broker in BROKERS {
        let topic = topic("metrics");
        let p = Producer::new(
            broker.config().linger(Duration::from_millis(20)),
            StringSerializer,
            StringSerializer,
        )
        .unwrap();
        let before = p.metrics();
        assert_eq!(value(&before, "record-send-total"), 0.0, "{broker:?}");
        assert_eq!(
            value(&before, "buffer-total-bytes"),
            32.0 * 1024.0 * 1024.0,
            "{broker:?}"
        );
        assert!(value(&before, "batch-size-avg").is_nan(), "{broker:?}");
        assert_eq!(value(&before, "requests-in-flight"), 0.0, "{broker:?}");
        let n = 300;
        let mut payload = 0usize;
        for i in 0..n {
            let (k, v) = (format!("k{i}"), format!("value-{i:05}"));
            payload += k.len() + v.len();
            p.send(ProducerRecord::with_key(topic.as_str(), k, v))
                .unwrap();
        }
        p.flush().unwrap();
        let m = p.metrics();
        assert_eq!(value(&m, "record-send-total"), n as f64, "{broker:?}");
        assert_eq!(
            m.topic_value(&topic, "record-send-total"),
            Some(n as f64),
            "{broker:?}"
        );
        assert_eq!(value(&m, "record-error-total"), 0.0, "{broker:?}");
        assert_eq!(value(&m, "record-retry-total"), 0.0, "{broker:?}");
        // Rates are per second over at least one 30 s window (Java's rule).
        let rate = value(&m, "record-send-rate");
        assert!(
            rate > 0.0 && rate <= n as f64 / 30.0 + 1e-9,
            "{broker:?}: {rate}"
        );
        let requests = value(&m, "request-total");
        assert!(requests >= 1.0, "{broker:?}");
        assert_eq!(
            value(&m, "response-total"),
            requests,
            "{broker:?}: acks=all"
        );
        assert_eq!(node_sum(&m, "request-total"), requests, "{broker:?}");
        assert_eq!(
            node_sum(&m, "outgoing-byte-total"),
            value(&m, "outgoing-byte-total"),
            "{broker:?}"
        );
        // Every record's key and value went out, plus framing.
        let out = value(&m, "outgoing-byte-total");
        assert!(out > payload as f64, "{broker:?}: {out} <= {payload}");
        let per_request = value(&m, "records-per-request-avg");
        assert!(
            (per_request * requests - n as f64).abs() < 1e-6,
            "{broker:?}: {per_request} x {requests}"
        );
        let batch_max = value(&m, "batch-size-max");
        assert!(batch_max >= value(&m, "batch-size-avg") && batch_max > 0.0);
        assert_eq!(value(&m, "compression-rate-avg"), 1.0, "{broker:?}");
        // A record of a 2-4 byte key and an 11-byte value, encoded: its
        // length, attributes, deltas and the key's and value's lengths.
        let size_max = value(&m, "record-size-max");
        assert!((20.0..=30.0).contains(&size_max), "{broker:?}: {size_max}");
        assert!(value(&m, "record-size-avg") <= size_max, "{broker:?}");
        assert_eq!(value(&m, "batch-split-total"), 0.0, "{broker:?}");
        // Every request was answered; the I/O threads publish the count as
        // they go to sleep, so allow them a moment to get there.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while value(&p.metrics(), "requests-in-flight") != 0.0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{broker:?}: requests-in-flight"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(value(&m, "request-latency-avg") >= 0.0, "{broker:?}");
        assert!(
            value(&m, "request-latency-max") >= value(&m, "request-latency-avg"),
            "{broker:?}"
        );
        assert!(value(&m, "record-queue-time-max") >= 0.0, "{broker:?}");
        assert_eq!(
            value(&m, "buffer-available-bytes"),
            32.0 * 1024.0 * 1024.0,
            "{broker:?}: every batch has given its memory back"
        );
        assert_eq!(value(&m, "waiting-threads"), 0.0, "{broker:?}");
        assert_eq!(
            value(&m, "bufferpool-wait-time-ns-total"),
            0.0,
            "{broker:?}"
        );
        // No broker here throttles us.
        assert_eq!(value(&m, "produce-throttle-time-max"), 0.0, "{broker:?}");
        p.close().unwrap();
        consume(broker.bootstrap(), &topic, n, T);
    }
}

/// As Java's `doSend`: a record `send` refuses (here over
/// max.request.size) counts in the producer-wide `record-error-total`, not
/// in its topic's, and a closed producer's refusal does not count (Java
/// throws IllegalStateException there, outside the sensor).
#[test]
fn records_send_refuses_count_as_errors_producer_wide() {
    let topic = topic("metrics-refused");
    let config = Broker::Tansu.config().max_request_size(1000);
    let p = Producer::new(config, StringSerializer, StringSerializer).unwrap();
    p.send(ProducerRecord::new(topic.as_str(), "small"))
        .unwrap()
        .get()
        .unwrap();
    let big = "x".repeat(5000);
    for _ in 0..3 {
        let e = p
            .send(ProducerRecord::new(topic.as_str(), big.as_str()))
            .map(drop)
            .unwrap_err();
        assert!(matches!(e, Error::RecordTooLarge { .. }), "{e:?}");
    }
    let m = p.metrics();
    assert_eq!(value(&m, "record-error-total"), 3.0);
    assert_eq!(m.topic_value(&topic, "record-error-total"), Some(0.0));
    assert_eq!(value(&m, "record-send-total"), 1.0);
    p.close().unwrap();
    let e = p
        .send(ProducerRecord::new(topic.as_str(), "late"))
        .map(drop)
        .unwrap_err();
    assert!(matches!(e, Error::Closed), "{e:?}");
    assert_eq!(value(&p.metrics(), "record-error-total"), 3.0);
}

/// Records a broker refuses (larger than the topic's max.message.bytes)
/// count as errors, per topic too; the others are read back.
#[test]
fn refused_records_count_as_errors() {
    let bootstrap = kafka_bootstrap();
    let topic = topic("metrics-errors");
    create_topic(&bootstrap, &topic, 1, 1, &[("max.message.bytes", "2000")]);
    let p = Producer::new(Broker::Kafka.config(), StringSerializer, StringSerializer).unwrap();
    let big = "x".repeat(5000);
    let mut handles = Vec::new();
    for _ in 0..4 {
        handles.push(
            p.send(ProducerRecord::new(topic.as_str(), big.as_str()))
                .unwrap(),
        );
    }
    for h in handles {
        let e = h.get().unwrap_err();
        assert!(matches!(e, Error::Broker { .. }), "{e:?}");
    }
    for i in 0..3 {
        p.send(ProducerRecord::new(topic.as_str(), format!("small-{i}")))
            .unwrap()
            .get()
            .unwrap();
    }
    let m = p.metrics();
    assert_eq!(value(&m, "record-error-total"), 4.0);
    assert_eq!(m.topic_value(&topic, "record-error-total"), Some(4.0));
    assert!(value(&m, "record-error-rate") > 0.0);
    // Each refused batch was split and sent again until single records
    // failed: at least 4 + 3 records went out.
    assert!(value(&m, "record-send-total") >= 7.0);
    p.close().unwrap();
    let got = consume(&bootstrap, &topic, 3, T);
    assert!(got
        .iter()
        .all(|r| r.value.as_deref().unwrap().starts_with(b"small-")));
}

/// What the interceptors saw and did, in order.
type Log = Arc<Mutex<Vec<String>>>;

struct Stamp(&'static str, Log);

impl ProducerInterceptor<str, str> for Stamp {
    fn on_send(&self, r: &mut InterceptedRecord<'_, str, str>) -> Result<(), InterceptorError> {
        // Each stamp sees the headers of the ones before it.
        let seen: Vec<&str> = r.headers.iter().map(|h| h.key.as_str()).collect();
        let seen = seen.join(",");
        r.headers.push(Header::new(self.0, seen));
        Ok(())
    }

    fn on_acknowledgement(&self, topic: &str, result: &kafka_producer::Result<RecordMetadata>) {
        let what = match result {
            Ok(m) => format!("ok {}", m.topic()),
            Err(e) => format!("err {e}"),
        };
        let thread = format!("{:?}", std::thread::current().id());
        self.1
            .lock()
            .push(format!("{}: {topic}: {what} on {thread}", self.0));
    }

    fn name(&self) -> &str {
        self.0
    }
}

struct Upper;

impl ProducerInterceptor<str, str> for Upper {
    fn on_send(&self, r: &mut InterceptedRecord<'_, str, str>) -> Result<(), InterceptorError> {
        let v: Option<Box<str>> = r.value().map(|v| v.to_uppercase().into());
        r.set_value(v);
        Ok(())
    }
}

struct RequireKey;

impl ProducerInterceptor<str, str> for RequireKey {
    fn on_send(&self, r: &mut InterceptedRecord<'_, str, str>) -> Result<(), InterceptorError> {
        match r.key() {
            Some(_) => Ok(()),
            None => Err(InterceptorError::Reject("a record needs a key".into())),
        }
    }
}

struct Broken;

impl ProducerInterceptor<str, str> for Broken {
    fn on_send(&self, r: &mut InterceptedRecord<'_, str, str>) -> Result<(), InterceptorError> {
        if r.key() == Some("panic") {
            panic!("an interceptor that panics");
        }
        Err(InterceptorError::Failed("always fails".into()))
    }

    fn on_acknowledgement(&self, _: &str, _: &kafka_producer::Result<RecordMetadata>) {
        panic!("an acknowledgement hook that panics");
    }
}

#[test]
fn interceptors_chain_mutate_reject_and_see_every_outcome() {
    for broker in [Broker::Kafka, Broker::Mock] {
        let topic = topic("intercept");
        let log: Log = Arc::default();
        let callbacks = Arc::new(AtomicUsize::new(0));
        let p = Producer::new(
            broker.config().max_request_size(10_000),
            StringSerializer,
            StringSerializer,
        )
        .unwrap()
        .with_interceptor(Stamp("first", log.clone()))
        .with_interceptor(Broken)
        .with_interceptor(Upper)
        .with_interceptor(RequireKey)
        .with_interceptor(Stamp("last", log.clone()));
        for key in ["a", "panic", "c"] {
            let c = callbacks.clone();
            p.send_with_callback(
                ProducerRecord::with_key(topic.as_str(), key, "hello"),
                move |r| {
                    r.unwrap();
                    c.fetch_add(1, Ordering::Relaxed);
                },
            )
            .unwrap();
        }
        // Rejected: no key. Its callback is never called.
        let e = p
            .send_with_callback(ProducerRecord::new(topic.as_str(), "keyless"), |_| {
                panic!("a rejected record's callback ran")
            })
            .unwrap_err();
        match &e {
            Error::Rejected {
                topic: t,
                interceptor,
                reason,
            } => {
                assert_eq!(t, &topic);
                assert!(interceptor.ends_with("RequireKey"), "{interceptor}");
                assert_eq!(reason, "a record needs a key");
            }
            _ => panic!("{broker:?}: {e:?}"),
        }
        // Refused by send after the interceptors: too large.
        let big = "y".repeat(20_000);
        let e = p
            .send(ProducerRecord::with_key(
                topic.as_str(),
                "big",
                big.as_str(),
            ))
            .unwrap_err();
        assert!(matches!(e, Error::RecordTooLarge { .. }), "{e:?}");
        p.flush().unwrap();
        assert_eq!(callbacks.load(Ordering::Relaxed), 3, "{broker:?}");
        p.close().unwrap();
        let log = log.lock().clone();
        let count = |s: &str| log.iter().filter(|l| l.contains(s)).count();
        assert_eq!(count(&format!("first: {topic}: ok {topic}")), 3, "{log:?}");
        assert_eq!(count(&format!("last: {topic}: ok {topic}")), 3, "{log:?}");
        assert_eq!(count("first: "), 5, "{broker:?}: every outcome: {log:?}");
        assert_eq!(count("last: "), 5, "{log:?}");
        assert_eq!(
            count("err interceptor"),
            2,
            "the rejection, to both: {log:?}"
        );
        assert_eq!(count("larger than"), 2, "{log:?}");
        // The order within one record's acknowledgement, on whichever
        // thread it ran: first, then last.
        let mut threads: Vec<&str> = log
            .iter()
            .map(|l| l.rsplit_once(" on ").unwrap().1)
            .collect();
        threads.dedup();
        for t in threads {
            let names: Vec<&str> = log
                .iter()
                .filter(|l| l.ends_with(&format!(" on {t}")))
                .map(|l| l.split(':').next().unwrap())
                .collect();
            assert!(
                names.chunks(2).all(|c| c == ["first", "last"]),
                "{broker:?}: {t}: {names:?}"
            );
        }
        let mut got = consume(broker.bootstrap(), &topic, 3, T);
        got.sort_by(|a, b| a.key.cmp(&b.key));
        let keys: Vec<&[u8]> = got.iter().map(|r| r.key.as_deref().unwrap()).collect();
        assert_eq!(keys, [&b"a"[..], b"c", b"panic"], "{broker:?}");
        for r in &got {
            assert_eq!(r.value.as_deref(), Some(&b"HELLO"[..]), "{broker:?}: {r:?}");
            let h: Vec<(&str, &[u8])> = r
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref().unwrap()))
                .collect();
            assert_eq!(h, [("first", &b""[..]), ("last", b"first")], "{broker:?}");
        }
    }
}

#[test]
fn statistics_callback_sees_the_counts_and_stops_at_close() {
    let broker = Broker::Mock;
    let topic = topic("stats");
    let seen: Arc<Mutex<Vec<MetricsSnapshot>>> = Arc::default();
    let s = seen.clone();
    let config = broker
        .config()
        .statistics_interval(Duration::from_millis(50))
        .statistics_callback(move |m| s.lock().push(m.clone()));
    let p = Producer::new(config, StringSerializer, StringSerializer).unwrap();
    for i in 0..20 {
        p.send(ProducerRecord::new(topic.as_str(), format!("v{i}")))
            .unwrap();
    }
    p.flush().unwrap();
    // Bounded: 200 intervals at most.
    let deadline = Instant::now() + Duration::from_secs(10);
    let sent = |m: &MetricsSnapshot| m.topic_value(&topic, "record-send-total");
    while !seen.lock().iter().any(|m| sent(m) == Some(20.0)) {
        assert!(Instant::now() < deadline, "no snapshot with the 20 records");
        std::thread::sleep(Duration::from_millis(20));
    }
    p.close().unwrap();
    let after_close = seen.lock().len();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(seen.lock().len(), after_close, "called after close");
    consume(broker.bootstrap(), &topic, 20, T);
    // A callback without an interval (and the reverse) is refused.
    let e = Producer::new(
        broker.config().statistics_callback(|_| {}),
        StringSerializer,
        StringSerializer,
    )
    .unwrap_err();
    assert!(e.to_string().contains("statistics.interval.ms"), "{e}");
    let e = ProducerConfig::from_pairs([
        ("bootstrap.servers", broker.bootstrap()),
        ("statistics.interval.ms", "1000"),
    ])
    .and_then(|c| Producer::new(c, StringSerializer, StringSerializer).map(|_| ()))
    .unwrap_err();
    assert!(e.to_string().contains("statistics callback"), "{e}");
}

/// examples/statistics.rs prints one JSON line per interval, which parses.
#[test]
fn statistics_example_prints_json_lines() {
    let topic = topic("stats-example");
    let run = run_example("statistics", &[Broker::Mock.bootstrap(), &topic, "50"], "");
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "{}", run.describe());
    let last = lines.last().unwrap();
    assert_eq!(
        last["producer-metrics"]["record-send-total"], 50.0,
        "{last}"
    );
    assert_eq!(
        last["producer-topic-metrics"][&topic]["record-send-total"], 50.0,
        "{last}"
    );
    assert!(!last["producer-node-metrics"]
        .as_object()
        .unwrap()
        .is_empty());
    consume(Broker::Mock.bootstrap(), &topic, 50, T);
}

/// KIP-219 on Kafka: with a client-id byte-rate quota, the broker answers
/// with throttle_time_ms and the producer holds back. Kafka measures the
/// rate over 11 one-second samples (at least 10 s), so the first ~10 s
/// worth of quota go through at once; the second half of the records,
/// sent once the broker's window is full, must go at near the quota.
/// Generous bounds: no timing is asserted closely.
#[test]
fn a_byte_rate_quota_throttles_the_producer() {
    let bootstrap = kafka_bootstrap();
    let topic = topic("quota");
    create_topic(&bootstrap, &topic, 1, 1, &[]);
    let client_id = format!("quota-{topic}");
    let quota: u64 = 200_000; // bytes per second
    set_client_quota(&bootstrap, &client_id, Some(quota));
    let p = Producer::new(
        Broker::Kafka
            .config()
            .client_id(client_id.as_str())
            .metrics_sample_window(Duration::from_secs(5)),
        StringSerializer,
        StringSerializer,
    )
    .unwrap();
    let payload = "q".repeat(1000);
    let n = 4000; // 4 MB: about 10 s at the quota, past the first 2 MB
    let acked = Arc::new(AtomicUsize::new(0));
    let half: Arc<Mutex<Option<Instant>>> = Arc::default();
    for i in 0..n {
        let (acked, half) = (acked.clone(), half.clone());
        p.send_with_callback(
            ProducerRecord::with_key(topic.as_str(), format!("{i}"), payload.as_str()),
            move |r| {
                r.unwrap();
                if acked.fetch_add(1, Ordering::SeqCst) + 1 == n / 2 {
                    *half.lock() = Some(Instant::now());
                }
            },
        )
        .unwrap();
    }
    p.flush().unwrap();
    let end = Instant::now();
    let m = p.metrics();
    p.close().unwrap();
    set_client_quota(&bootstrap, &client_id, None);
    let half = half.lock().expect("half the records acknowledged");
    let second_half = (n / 2 * payload.len()) as f64 / (end - half).as_secs_f64();
    eprintln!(
        "quota {quota} B/s: second half at {second_half:.0} B/s; throttle avg {} max {} ms; \
         outgoing-byte-rate {}",
        value(&m, "produce-throttle-time-avg"),
        value(&m, "produce-throttle-time-max"),
        value(&m, "outgoing-byte-rate"),
    );
    assert_eq!(value(&m, "record-send-total"), n as f64);
    assert_eq!(m.topic_value(&topic, "record-send-total"), Some(n as f64));
    assert!(
        value(&m, "produce-throttle-time-max") > 0.0,
        "never throttled"
    );
    assert!(value(&m, "produce-throttle-time-avg") > 0.0);
    // Unthrottled, loopback does well over 10 MB/s.
    assert!(
        second_half < 2.0 * quota as f64,
        "{second_half:.0} B/s is not held near the {quota} B/s quota"
    );
    consume(&bootstrap, &topic, n, T);
}

/// examples/interceptor.rs: the keyless line is refused, the others are
/// stamped and read back; on_acknowledgement counted every outcome.
#[test]
fn validation_interceptor_example_rejects_keyless_records() {
    let topic = topic("intercept-example");
    let run = run_example(
        "interceptor",
        &[Broker::Mock.bootstrap(), &topic],
        "k1\tfirst\nno key here\nk2\tsecond\n",
    );
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.describe());
    assert!(lines[0].starts_with(&format!("ok {topic}-")), "{lines:?}");
    assert_eq!(lines[1], "rejected: every record needs a non-empty key");
    assert!(lines[2].starts_with(&format!("ok {topic}-")), "{lines:?}");
    assert_eq!(lines[3], "delivered 2, failed 1");
    let got = consume(Broker::Mock.bootstrap(), &topic, 2, T);
    for r in got {
        assert!(r.key.is_some());
        assert_eq!(
            r.headers,
            [("service".to_owned(), Some(b"billing".to_vec()))]
        );
    }
}

/// Checks that no request in `timeline` reached the proxy on a connection
/// before the throttle time of the answer before it on that connection
/// had passed; returns how many requests followed a throttled answer.
fn requests_after_throttles(timeline: &[common::kproxy::ProduceEvent]) -> usize {
    use common::kproxy::ProduceEvent;
    let mut checked = 0;
    for (i, e) in timeline.iter().enumerate() {
        let ProduceEvent::Throttled {
            conn,
            at,
            throttle_ms,
        } = *e
        else {
            continue;
        };
        let until = at + Duration::from_millis(throttle_ms as u64);
        for later in &timeline[i + 1..] {
            if let ProduceEvent::Request { conn: c, at: t } = *later {
                if c == conn {
                    assert!(
                        t >= until,
                        "a request {:?} after a {throttle_ms} ms throttle",
                        t - at
                    );
                    checked += 1;
                    break;
                }
            }
        }
    }
    checked
}

/// KIP-219 beyond Produce: a proxy sets `throttle_time_ms` = 400 in every
/// Metadata answer, and `metadata.max.age.ms` = 100 makes the producer ask
/// again and again. The metadata connection's next request may not reach
/// the broker before the throttle time has passed (without the hold-back
/// it came about 100 ms after the answer).
#[test]
fn a_throttled_metadata_answer_holds_the_next_metadata_request_back() {
    use common::kproxy::KProxy;
    let proxy = KProxy::start(Broker::Kafka.bootstrap());
    let topic = topic("throttled-metadata");
    let p = Producer::new(
        ProducerConfig::new()
            .bootstrap_servers(proxy.bootstrap.as_str())
            .metadata_max_age(Duration::from_millis(100)),
        StringSerializer,
        StringSerializer,
    )
    .unwrap();
    p.partitions_for(&topic).unwrap();
    proxy.throttle_metadata(400);
    let deadline = Instant::now() + Duration::from_secs(20);
    while requests_after_throttles(&proxy.metadata_timeline()) < 3 {
        assert!(
            Instant::now() < deadline,
            "metadata requests: {:?}",
            proxy.metadata_timeline()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The producer still works while throttled.
    p.send(ProducerRecord::new(topic.as_str(), "after"))
        .unwrap()
        .get()
        .unwrap();
    proxy.throttle_metadata(0);
    p.close().unwrap();
    assert!(proxy.errors().is_empty(), "{:?}", proxy.errors());
    consume(Broker::Kafka.bootstrap(), &topic, 1, T);
}

/// KIP-219, the client's side: a proxy sets `throttle_time_ms` = 300 in
/// every Produce answer from Kafka (v11 here). With one request in flight,
/// every request after a throttled answer is one the producer sent after
/// reading it, so none may reach the proxy before the throttle time has
/// passed since the answer left. Kafka's own quotas mute the broker's
/// side too, so this is what shows the producer itself holds back. The
/// bound is a lower one that only the producer's wait can satisfy: a slow
/// machine widens the gaps, never narrows them.
#[test]
fn a_throttled_broker_gets_nothing_until_the_throttle_time_has_passed() {
    use common::kproxy::KProxy;
    let proxy = KProxy::start(Broker::Kafka.bootstrap());
    let topic = topic("throttled");
    let p = Producer::new(
        ProducerConfig::new()
            .bootstrap_servers(proxy.bootstrap.as_str())
            .max_in_flight_requests_per_connection(1)
            .linger(Duration::ZERO),
        StringSerializer,
        StringSerializer,
    )
    .unwrap();
    p.partitions_for(&topic).unwrap();
    proxy.throttle_produce(300);
    for i in 0..5 {
        p.send(ProducerRecord::new(topic.as_str(), format!("t{i}")))
            .unwrap()
            .get()
            .unwrap();
    }
    let m = p.metrics();
    p.close().unwrap();
    proxy.throttle_produce(0);
    let timeline = proxy.produce_timeline();
    let checked = requests_after_throttles(&timeline);
    assert!(
        checked >= 4,
        "{checked} requests after a throttled answer: {timeline:?}"
    );
    assert_eq!(value(&m, "produce-throttle-time-max"), 300.0);
    assert_eq!(value(&m, "produce-throttle-time-avg"), 300.0);
    assert!(proxy.errors().is_empty(), "{:?}", proxy.errors());
    consume(Broker::Kafka.bootstrap(), &topic, 5, T);
}
