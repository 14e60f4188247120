//! SASL on Apache Kafka's SASL_PLAINTEXT listeners (scripts/brokers.sh,
//! `$KAFKA_PORT+400+`): each mechanism round-trips records that an
//! independent consumer (confluent-kafka, over the PLAINTEXT listener)
//! reads back; wrong credentials are an `Error::Authentication` from
//! `send` and `partitions_for` well within `max.block.ms`, with nothing
//! written. Needs `KP_KAFKA_SASL_PLAINTEXT_BOOTSTRAP`, `KP_KAFKA_SCRAM_USER`
//! and `KP_KAFKA_SCRAM_PASSWORD` (`scripts/brokers.sh env`).
//!
//! SASL_SSL (`KP_KAFKA_SASL_SSL_BOOTSTRAP`) runs the same exchange over
//! TLS; its tests belong with the TLS ones.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use common::{consume, env, topic};
use kafka_producer::{
    Error, OAuthToken, Producer, ProducerConfig, ProducerRecord, SecurityProtocol, StringSerializer,
};

const T: Duration = Duration::from_secs(60);

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the brokers with scripts/brokers.sh start and eval \"$(scripts/brokers.sh env)\"")
    })
}

fn user() -> (String, String) {
    (var("KP_KAFKA_SCRAM_USER"), var("KP_KAFKA_SCRAM_PASSWORD"))
}

const PLAIN: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const OAUTH: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// A SASL_PLAINTEXT configuration for `mechanism` with `jaas` (if any).
fn config(mechanism: &str, jaas: Option<String>) -> ProducerConfig {
    let c = ProducerConfig::new()
        .bootstrap_servers(var("KP_KAFKA_SASL_PLAINTEXT_BOOTSTRAP"))
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl_mechanism(mechanism.into())
        .max_block(Duration::from_secs(20));
    match jaas {
        Some(j) => c.sasl_jaas_config(j),
        None => c,
    }
}

fn password_jaas(module: &str, user: &str, password: &str) -> String {
    // As Java users write it, escapes and all.
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "{module} required\n    username=\"{}\"\n    password=\"{}\";",
        esc(user),
        esc(password)
    )
}

/// Sends 30 keyed records with `cfg`, then reads them back over the
/// PLAINTEXT listener with confluent-kafka.
fn round_trip(cfg: ProducerConfig, what: &str) {
    let t = topic(&format!("sasl-{}", what.to_lowercase()));
    let p = Producer::new(cfg, StringSerializer, StringSerializer)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut handles = Vec::new();
    let mut sent = BTreeSet::new();
    for i in 0..30 {
        let v = format!("{what}-{i}");
        sent.insert(v.clone());
        let k = format!("k{i}");
        let r = ProducerRecord::with_key(t.as_str(), k.as_str(), v.as_str());
        handles.push(p.send(r).unwrap_or_else(|e| panic!("{what}: {e}")));
    }
    for h in handles {
        let m = h.get().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(m.has_offset());
    }
    p.close().unwrap();
    let got: BTreeSet<String> = consume(&env().kafka, &t, 30, T)
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect();
    assert_eq!(got, sent, "{what}");
}

#[test]
fn plain_round_trips() {
    let (u, pw) = user();
    round_trip(
        config("PLAIN", Some(password_jaas(PLAIN, &u, &pw))),
        "PLAIN",
    );
}

#[test]
fn scram_sha_256_round_trips() {
    let (u, pw) = user();
    round_trip(
        config("SCRAM-SHA-256", Some(password_jaas(SCRAM, &u, &pw))),
        "SCRAM-SHA-256",
    );
}

#[test]
fn scram_sha_512_round_trips() {
    let (u, pw) = user();
    round_trip(
        config("SCRAM-SHA-512", Some(password_jaas(SCRAM, &u, &pw))),
        "SCRAM-SHA-512",
    );
}

#[test]
fn librdkafkas_username_and_password_work_for_scram() {
    let (u, pw) = user();
    let mut c = config("SCRAM-SHA-512", None);
    c.set("sasl.username", &u).unwrap();
    c.set("sasl.password", &pw).unwrap();
    round_trip(c, "librdkafka-keys");
}

#[test]
fn oauthbearer_with_javas_unsecured_tokens_round_trips() {
    let jaas = format!(
        "{OAUTH} required unsecuredLoginStringClaim_sub=\"kp-producer\" \
         unsecuredLoginLifetimeSeconds=\"300\";"
    );
    round_trip(config("OAUTHBEARER", Some(jaas)), "OAUTHBEARER");
}

/// An unsecured JWT (`alg: none`) for `sub`, expiring at `exp` (seconds).
fn jwt(sub: &str, iat: i64, exp: i64) -> String {
    let h = B64URL.encode(br#"{"alg":"none"}"#);
    let b = B64URL.encode(format!(r#"{{"sub":"{sub}","iat":{iat},"exp":{exp}}}"#));
    format!("{h}.{b}.")
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn oauthbearer_with_a_token_provider_round_trips() {
    let c = config("OAUTHBEARER", None).oauth_token_provider(|| {
        let now = now_s();
        Ok(OAuthToken {
            value: jwt("kp-provider", now, now + 600),
            lifetime_ms: (now + 600) * 1000,
            principal: "kp-provider".into(),
        })
    });
    round_trip(c, "OAUTHBEARER-provider");
}

/// `send` and `partitions_for` with `cfg` fail with an authentication
/// error well within `max.block.ms` (10 s here: Java's
/// AuthenticationException does not wait), and the topic gets nothing.
fn refused(cfg: ProducerConfig, what: &str) -> String {
    let t = topic(&format!("sasl-refused-{}", what.to_lowercase()));
    let cfg = cfg.max_block(Duration::from_secs(30));
    let p = Producer::new(cfg, StringSerializer, StringSerializer).unwrap();
    let started = Instant::now();
    let e = p
        .send(ProducerRecord::new(t.as_str(), "never"))
        .map(|_| ())
        .unwrap_err();
    let waited = started.elapsed();
    let text = e.to_string();
    assert!(
        matches!(&e, Error::Authentication { broker, message }
            if broker.contains("127.0.0.1") && message.contains(what)),
        "{what}: {e:?}"
    );
    assert!(!e.is_retriable(), "{e}");
    // Generous: the broker answers at once; max.block.ms is 30 s.
    assert!(waited < Duration::from_secs(20), "{what}: {waited:?}");
    let e = p.partitions_for(&t).map(|_| ()).unwrap_err();
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    p.close().unwrap();
    // Nothing was written: a marker sent over PLAINTEXT afterwards is the
    // topic's only record.
    let plain = ProducerConfig::new().bootstrap_servers(env().kafka.as_str());
    let q = Producer::new(plain, StringSerializer, StringSerializer).unwrap();
    q.send(ProducerRecord::new(t.as_str(), "marker"))
        .unwrap()
        .get()
        .unwrap();
    q.close().unwrap();
    let got = consume(&env().kafka, &t, 1, T);
    assert_eq!(got[0].value.as_deref(), Some(&b"marker"[..]), "{what}");
    text
}

#[test]
fn a_wrong_password_is_an_authentication_error_from_send() {
    let (u, _) = user();
    for (mechanism, module) in [
        ("PLAIN", PLAIN),
        ("SCRAM-SHA-256", SCRAM),
        ("SCRAM-SHA-512", SCRAM),
    ] {
        let text = refused(
            config(
                mechanism,
                Some(password_jaas(module, &u, "not-the-password")),
            ),
            mechanism,
        );
        assert!(
            text.contains("Authentication failed"),
            "the broker's words: {text}"
        );
        assert!(!text.contains("not-the-password"), "{text}");
    }
    // An unknown SCRAM user, too.
    refused(
        config("SCRAM-SHA-256", Some(password_jaas(SCRAM, "nobody", "x"))),
        "SCRAM-SHA-256",
    );
}

#[test]
fn an_expired_token_is_refused_with_the_brokers_reason() {
    let c = config("OAUTHBEARER", None).oauth_token_provider(|| {
        let now = now_s();
        Ok(OAuthToken {
            value: jwt("kp-provider", now - 7200, now - 3600),
            lifetime_ms: (now - 3600) * 1000,
            principal: "kp-provider".into(),
        })
    });
    let text = refused(c, "OAUTHBEARER");
    assert!(text.contains("invalid_token"), "the broker's JSON: {text}");
}

#[test]
fn gssapi_and_missing_credentials_are_config_errors() {
    // Java's default mechanism is GSSAPI (Kerberos): refused clearly.
    let c = ProducerConfig::new()
        .bootstrap_servers(var("KP_KAFKA_SASL_PLAINTEXT_BOOTSTRAP"))
        .security_protocol(SecurityProtocol::SaslPlaintext);
    let e = Producer::new(c, StringSerializer, StringSerializer)
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, message } if key == "sasl.mechanism" && message.contains("Kerberos")),
        "{e}"
    );
    let e = Producer::new(config("PLAIN", None), StringSerializer, StringSerializer)
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "sasl.jaas.config"),
        "{e}"
    );
    // A plaintext client on the SASL port fails too, and does not hang.
    let c = ProducerConfig::new()
        .bootstrap_servers(var("KP_KAFKA_SASL_PLAINTEXT_BOOTSTRAP"))
        .max_block(Duration::from_secs(10));
    let p = Producer::new(c, StringSerializer, StringSerializer).unwrap();
    let e = p
        .partitions_for(&topic("sasl-plaintext-client"))
        .unwrap_err();
    assert!(matches!(e, Error::MetadataTimeout { .. }), "{e}");
}

/// Counts the producer's log lines that hold given words.
mod logs {
    pub use crate::common::logs::count;

    const WORDS: [&str; 2] = ["re-authenticating", "disconnecting"];

    pub fn install() {
        crate::common::logs::install(&WORDS);
    }
}

/// KIP-368: Kafka ends an OAUTHBEARER session when its token expires (6 s
/// here). Sending steadily for 20 s, every connection authenticates again
/// before its session ends, on the same connection: no broker closes one
/// on us, and every record arrives once.
#[test]
fn sessions_are_renewed_before_the_broker_ends_them() {
    logs::install();
    let jaas = format!(
        "{OAUTH} required unsecuredLoginStringClaim_sub=\"kp-reauth\" \
         unsecuredLoginLifetimeSeconds=\"6\";"
    );
    let cfg = config("OAUTHBEARER", Some(jaas)).linger(Duration::from_millis(5));
    let t = topic("sasl-reauth");
    let p = Producer::new(cfg, StringSerializer, StringSerializer).unwrap();
    let (renewed, dropped) = (logs::count(0), logs::count(1));
    let started = Instant::now();
    let mut handles = Vec::new();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let v = format!("r{i}");
        handles.push(p.send(ProducerRecord::new(t.as_str(), v.as_str())).unwrap());
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    for h in handles {
        h.get().unwrap();
    }
    p.close().unwrap();
    let renewed = logs::count(0) - renewed;
    let dropped = logs::count(1) - dropped;
    // Each connection renews about every 5.1-5.7 s: 3 times in 20 s.
    assert!(renewed >= 3, "{renewed} re-authentications");
    assert_eq!(dropped, 0, "connections dropped");
    assert_eq!(consume(&env().kafka, &t, i, T).len(), i);
}

/// SASL over TLS (`SASL_SSL`, `$KAFKA_PORT+300+`): the same exchange on
/// the stream the TLS handshake left, trusting the test CA.
#[test]
fn scram_and_oauthbearer_over_tls_round_trip() {
    let (u, pw) = user();
    let tls = |mechanism: &str, jaas: String| {
        ProducerConfig::from_pairs([
            (
                "bootstrap.servers",
                var("KP_KAFKA_SASL_SSL_BOOTSTRAP").as_str(),
            ),
            ("security.protocol", "SASL_SSL"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", var("KP_KAFKA_CA").as_str()),
            ("sasl.mechanism", mechanism),
            ("sasl.jaas.config", jaas.as_str()),
            ("max.block.ms", "20000"),
        ])
        .unwrap()
    };
    round_trip(
        tls("SCRAM-SHA-512", password_jaas(SCRAM, &u, &pw)),
        "SASL_SSL-SCRAM",
    );
    round_trip(
        tls(
            "OAUTHBEARER",
            format!("{OAUTH} required unsecuredLoginStringClaim_sub=\"kp-tls\";"),
        ),
        "SASL_SSL-OAUTHBEARER",
    );
    // A wrong password over TLS is refused as over TCP.
    refused(
        tls("PLAIN", password_jaas(PLAIN, &u, "not-the-password")),
        "PLAIN",
    );
}
