//! TLS against the real Kafka cluster's SSL listener (client certificates
//! required; `scripts/brokers.sh`, tests/brokers/kafka/README.md): an mTLS
//! round trip read back over TLS by an independent consumer (librdkafka via
//! kcheck.py), acks=0 over TLS, and each refusal as a typed
//! [`Error::Authentication`] from `send` / `partitions_for`, well before
//! `max.block.ms`.
//!
//! Needs `KP_KAFKA_SSL_BOOTSTRAP`, `KP_KAFKA_BOOTSTRAP`, `KP_KAFKA_CA`,
//! `KP_KAFKA_OTHER_CA`, `KP_KAFKA_CLIENT_CERT`, `KP_KAFKA_CLIENT_KEY`
//! (`eval "$(scripts/brokers.sh env)"`); a missing one fails the test.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{parse_consumed, topic, Consumed};
use kafka_producer::{
    ByteArraySerializer, Error, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};

/// Long enough that an error before it is not a timeout.
const MAX_BLOCK: Duration = Duration::from_secs(60);
/// "Does not hang": a refusal comes well within this.
const QUICK: Duration = Duration::from_secs(30);

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: start the brokers with scripts/brokers.sh start and eval \
             \"$(scripts/brokers.sh env)\" (the SSL listener's variables)"
        )
    })
}

/// A producer configuration over SSL with `pairs`, from `bootstrap`.
fn ssl(bootstrap: &str, pairs: &[(&str, String)]) -> ProducerConfig {
    let mut c = ProducerConfig::new()
        .bootstrap_servers(bootstrap)
        .max_block(MAX_BLOCK);
    c.set("security.protocol", "SSL").unwrap();
    for (k, v) in pairs {
        c.set(k, v).unwrap();
    }
    c
}

/// Java's KIP-651 settings for the cluster's CA and client certificate.
fn mtls() -> Vec<(&'static str, String)> {
    vec![
        ("ssl.truststore.type", "PEM".into()),
        ("ssl.truststore.location", var("KP_KAFKA_CA")),
        ("ssl.keystore.type", "PEM".into()),
        (
            "ssl.keystore.certificate.chain",
            read(&var("KP_KAFKA_CLIENT_CERT")),
        ),
        ("ssl.keystore.key", read(&var("KP_KAFKA_CLIENT_KEY"))),
    ]
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn producer(cfg: ProducerConfig) -> kafka_producer::Result<Producer<[u8], [u8]>> {
    Producer::new(cfg, ByteArraySerializer, ByteArraySerializer)
}

/// Reads `topic` back over the SSL listener with librdkafka (kcheck.py,
/// this checkout's copy, with its `--property` passthrough), presenting
/// the client certificate: exactly `expect` records.
fn consume_over_tls(topic: &str, expect: usize) -> Vec<Consumed> {
    let props = [
        "security.protocol=ssl".to_owned(),
        format!("ssl.ca.location={}", var("KP_KAFKA_CA")),
        format!("ssl.certificate.location={}", var("KP_KAFKA_CLIENT_CERT")),
        format!("ssl.key.location={}", var("KP_KAFKA_CLIENT_KEY")),
    ];
    let kcheck = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/kcheck.py");
    let mut c = Command::new(var("KP_PYTHON"));
    c.arg(kcheck)
        .args(["consume", "--bootstrap", &var("KP_KAFKA_SSL_BOOTSTRAP")])
        .args(["--topic", topic, "--expect", &expect.to_string()])
        .args(["--linger", "1", "--timeout", "60"]);
    for p in &props {
        c.args(["--property", p]);
    }
    let out = c
        .stderr(Stdio::inherit())
        .output()
        .expect("run kcheck.py consume");
    let records = parse_consumed(&out.stdout);
    assert!(
        out.status.success(),
        "kcheck consume over TLS of {topic} read {} of {expect} records ({})",
        records.len(),
        out.status
    );
    assert_eq!(records.len(), expect, "exactly {expect} records of {topic}");
    records
}

#[test]
fn mutual_tls_round_trip_reads_back_over_tls() {
    let topic = topic("tls-mtls");
    let p = producer(ssl(&var("KP_KAFKA_SSL_BOOTSTRAP"), &mtls())).unwrap();
    let handles: Vec<_> = (0..300u32)
        .map(|i| {
            let key = format!("k{i}").into_bytes();
            let value = format!("tls-{i}-{}", "v".repeat(i as usize % 50)).into_bytes();
            let h = p
                .send(ProducerRecord::with_key(
                    topic.as_str(),
                    key.clone(),
                    value.clone(),
                ))
                .unwrap();
            (key, value, h)
        })
        .collect();
    let mut sent = BTreeSet::new();
    for (key, value, h) in handles {
        let m: RecordMetadata = h.get().unwrap();
        assert!(m.offset() >= 0);
        sent.insert((m.partition(), m.offset(), key, value));
    }
    p.close().unwrap();
    let read: BTreeSet<_> = consume_over_tls(&topic, 300)
        .into_iter()
        .map(|r| (r.partition, r.offset, r.key.unwrap(), r.value.unwrap()))
        .collect();
    assert_eq!(read, sent);
}

/// acks=0 completes a record once its bytes are written: over TLS, once
/// the records encrypting it are on the socket. Large records with a
/// small socket buffer keep rustls holding records between writes.
#[test]
fn acks_zero_over_tls_delivers_everything_it_completes() {
    let topic = topic("tls-acks0");
    // librdkafka's names for the same files.
    let mut cfg = ssl(
        &var("KP_KAFKA_SSL_BOOTSTRAP"),
        &[
            ("ssl.ca.location", var("KP_KAFKA_CA")),
            ("ssl.certificate.location", var("KP_KAFKA_CLIENT_CERT")),
            ("ssl.key.location", var("KP_KAFKA_CLIENT_KEY")),
            ("acks", "0".into()),
            ("send.buffer.bytes", "8192".into()),
        ],
    );
    cfg.set("enable.idempotence", "false").unwrap();
    let p = producer(cfg).unwrap();
    let n = 400usize;
    let handles: Vec<_> = (0..n)
        .map(|i| {
            p.send(ProducerRecord::new(topic.as_str(), vec![i as u8; 20_000]).partition(0))
                .unwrap()
        })
        .collect();
    for h in handles {
        assert_eq!(h.get().unwrap().offset(), -1, "acks=0: no offset");
    }
    // Closing sends close_notify; every completed record is on the broker.
    p.close().unwrap();
    let read = consume_over_tls(&topic, n);
    assert!(read
        .iter()
        .all(|r| r.value.as_ref().unwrap().len() == 20_000));
}

/// `send` and `partitions_for` fail with an authentication error, soon
/// (no wait for `max.block.ms`); its message.
fn refused(cfg: ProducerConfig) -> String {
    refused_by(cfg, "127.0.0.1")
}

/// As [`refused`], the error naming a broker at `host`.
fn refused_by(cfg: ProducerConfig, host: &str) -> String {
    let p = producer(cfg).unwrap();
    let topic = topic("tls-refused");
    let started = Instant::now();
    let e = p
        .send(ProducerRecord::new(topic.as_str(), &b"never"[..]))
        .map(|_| ())
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < QUICK, "send took {took:?}: {e}");
    let message = match &e {
        Error::Authentication { broker, message } => {
            assert!(broker.contains(host), "{broker}");
            message.clone()
        }
        e => panic!("expected an authentication error, got {e:?}"),
    };
    assert!(!e.is_retriable());
    let started = Instant::now();
    let e = p.partitions_for(&topic).unwrap_err();
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    assert!(started.elapsed() < QUICK);
    message
}

#[test]
fn an_unknown_ca_is_refused_at_once() {
    let mut pairs = mtls();
    pairs[1].1 = var("KP_KAFKA_OTHER_CA");
    let m = refused(ssl(&var("KP_KAFKA_SSL_BOOTSTRAP"), &pairs));
    assert!(m.contains("not signed by a trusted CA"), "{m}");
}

/// A loopback address the brokers' certificate does not name (it names
/// 127.0.0.1 and localhost): a forwarder on 127.0.0.2 (Linux routes all of
/// 127.0.0.0/8 to the loopback interface) to `upstream`, for as long as
/// the test runs. Returns its `host:port`.
fn forwarder_on_127_0_0_2(upstream: &str) -> String {
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    let addr = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    addr
}

#[test]
fn a_wrong_host_name_is_refused_unless_identification_is_off() {
    let first = var("KP_KAFKA_SSL_BOOTSTRAP");
    let first = first.split(',').next().unwrap();
    let bootstrap = forwarder_on_127_0_0_2(first);
    let name = "127.0.0.2";
    let m = refused_by(ssl(&bootstrap, &mtls()), name);
    assert!(
        m.contains(&format!("not valid for the host name {name}")),
        "{m}"
    );
    // Empty: the chain is checked, the name is not. (The brokers then
    // advertise 127.0.0.1, which the certificate names anyway.)
    let mut pairs = mtls();
    pairs.push(("ssl.endpoint.identification.algorithm", String::new()));
    let p = producer(ssl(&bootstrap, &pairs)).unwrap();
    assert!(!p.partitions_for(&topic("tls-noname")).unwrap().is_empty());
}

#[test]
fn no_client_certificate_is_refused_by_the_broker() {
    let pairs = vec![
        ("ssl.truststore.type", "PEM".to_owned()),
        ("ssl.truststore.location", var("KP_KAFKA_CA")),
    ];
    let m = refused(ssl(&var("KP_KAFKA_SSL_BOOTSTRAP"), &pairs));
    assert!(m.contains("client certificate"), "{m}");
}

#[test]
fn a_plaintext_client_on_the_ssl_port_is_told_so() {
    let cfg = ProducerConfig::new()
        .bootstrap_servers(var("KP_KAFKA_SSL_BOOTSTRAP"))
        .max_block(MAX_BLOCK);
    let m = refused(cfg);
    assert!(m.contains("security.protocol=SSL"), "{m}");
}

#[test]
fn a_tls_client_on_the_plaintext_port_is_told_so() {
    let m = refused(ssl(&var("KP_KAFKA_BOOTSTRAP"), &mtls()));
    assert!(m.contains("does not seem to speak TLS"), "{m}");
}

#[test]
fn a_missing_file_fails_producer_new_naming_key_and_path() {
    let mut pairs = mtls();
    pairs[1].1 = "/nonexistent/ca.pem".into();
    match producer(ssl(&var("KP_KAFKA_SSL_BOOTSTRAP"), &pairs)).map(|_| ()) {
        Err(Error::Config { key, message }) => {
            assert_eq!(key, "ssl.truststore.location");
            assert!(message.contains("/nonexistent/ca.pem"), "{message}");
        }
        r => panic!("{r:?}"),
    }
}

/// A client certificate signed by the cluster's own CA but expired: Kafka
/// refuses it, and `send` says the broker refused our certificate. The
/// same certificate with current dates is accepted (the control).
#[test]
fn an_expired_client_certificate_is_refused_by_the_broker() {
    use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, Issuer, KeyPair};
    let ca_key = KeyPair::from_pem(&read(&var("KP_KAFKA_CA_KEY"))).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&read(&var("KP_KAFKA_CA")), ca_key).unwrap();
    let client = |expired: bool| {
        let mut params = CertificateParams::new(vec!["kp-client".to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let mut pairs = mtls();
        pairs[3].1 = cert.pem();
        pairs[4].1 = key.serialize_pem();
        ssl(&var("KP_KAFKA_SSL_BOOTSTRAP"), &pairs)
    };
    let p = producer(client(false)).unwrap();
    assert!(!p
        .partitions_for(&topic("tls-fresh-cert"))
        .unwrap()
        .is_empty());
    let m = refused(client(true));
    assert!(m.contains("client certificate"), "{m}");
}
