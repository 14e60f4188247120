//! The configuration's unit tests: Java's defaults and rules, and walks
//! over every key of the table.

use std::time::Duration;

use super::value::{ms, ROUND_ROBIN};
use super::*;

fn base() -> ProducerConfig {
    ProducerConfig::new().bootstrap_servers("localhost:9092")
}

#[test]
fn java_defaults() {
    let c = ProducerConfig::new();
    for (k, v) in [
        ("acks", "all"),
        ("linger.ms", "5"),
        ("batch.size", "16384"),
        ("buffer.memory", "33554432"),
        ("max.block.ms", "60000"),
        ("max.request.size", "1048576"),
        ("request.timeout.ms", "30000"),
        ("delivery.timeout.ms", "120000"),
        ("retries", "2147483647"),
        ("retry.backoff.ms", "100"),
        ("retry.backoff.max.ms", "1000"),
        ("max.in.flight.requests.per.connection", "5"),
        ("metadata.max.age.ms", "300000"),
        ("compression.type", "none"),
        ("partitioner.ignore.keys", "false"),
        ("send.buffer.bytes", "131072"),
        ("receive.buffer.bytes", "32768"),
    ] {
        assert_eq!(c.get(k).as_deref(), Some(v), "{k}");
    }
    assert_eq!(c.get("enable.idempotence").as_deref(), Some("true"));
}

/// Java's `postProcessAndValidateIdempotenceConfigs`: a conflict turns
/// the default off and is an error against an explicit `true`.
#[test]
fn idempotence_is_on_by_default_and_gives_way_only_when_not_set() {
    let base = || ProducerConfig::new().bootstrap_servers("h:1");
    assert!(base().validate().unwrap().idempotence);
    for conflict in [
        base().acks(Acks::Leader),
        base().acks(Acks::None),
        base().retries(0),
        base().max_in_flight_requests_per_connection(6),
    ] {
        let c = conflict.clone().validate().unwrap();
        assert!(!c.idempotence, "{conflict:?}");
        let e = conflict.enable_idempotence(true).validate().unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e}");
    }
    let off = base().enable_idempotence(false).acks(Acks::Leader);
    assert!(!off.validate().unwrap().idempotence);
}

#[test]
fn unknown_keys_and_bad_values_name_the_key() {
    let e = ProducerConfig::from_pairs([("lingerms", "5")]).unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "lingerms"),
        "{e}"
    );
    for (k, v) in [
        ("acks", "2"),
        ("linger.ms", "-1"),
        ("batch.size", "big"),
        ("max.in.flight.requests.per.connection", "0"),
        ("enable.idempotence", "maybe"),
        ("partitioner.class", "com.example.MyPartitioner"),
        ("key.serializer", "com.example.AvroSerializer"),
        ("metadata.max.idle.ms", "10"),
        ("send.buffer.bytes", "-2"),
        ("send.buffer.bytes", "2147483648"),
        ("receive.buffer.bytes", "32k"),
        ("receive.buffer.bytes", ""),
        ("metadata.recovery.strategy", "sometimes"),
        ("metadata.recovery.rebootstrap.trigger.ms", "-1"),
    ] {
        let e = ProducerConfig::from_pairs([(k, v)]).unwrap_err();
        assert!(
            matches!(&e, Error::Config { key, .. } if key == k),
            "{k}={v}: {e}"
        );
        assert!(e.to_string().contains(k), "{e}");
    }
}

#[test]
fn later_features_are_refused_not_ignored() {
    for (k, v) in [
        ("ssl.key.password", "x"),
        ("sasl.kerberos.service.name", "kafka"),
        ("interceptor.classes", "com.example.I"),
        ("partitioner.availability.timeout.ms", "100"),
    ] {
        let e = ProducerConfig::from_pairs([(k, v)]).unwrap_err();
        assert!(
            matches!(&e, Error::NotSupportedYet { key, .. } if key == k),
            "{k}={v}: {e}"
        );
    }
    // values that match what this release does are fine
    ProducerConfig::from_pairs([
        ("compression.type", "none"),
        ("enable.idempotence", "false"),
        ("security.protocol", "PLAINTEXT"),
    ])
    .unwrap();
}

#[test]
fn a_transactional_id_implies_idempotence_and_refuses_it_off() {
    let c = base().transactional_id("tx-1").validate().unwrap();
    assert_eq!(c.transactional_id.as_deref(), Some("tx-1"));
    assert!(c.idempotence, "implied, as Java's");
    assert_eq!(c.transaction_timeout, ms(60_000));
    let c = ProducerConfig::from_pairs([
        ("bootstrap.servers", "h:1"),
        ("transactional.id", "tx-2"),
        ("transaction.timeout.ms", "2000"),
        ("enable.idempotence", "true"),
    ])
    .unwrap()
    .validate()
    .unwrap();
    assert_eq!(c.transaction_timeout, ms(2000));
    assert_eq!(c.get("transactional.id").as_deref(), Some("tx-2"));
    // An explicit false conflicts (Java's ConfigException).
    let e = base()
        .transactional_id("tx")
        .enable_idempotence(false)
        .validate()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "enable.idempotence"),
        "{e}"
    );
    assert!(e.to_string().contains("transactional.id"), "{e}");
    // Idempotence's own rules then apply.
    let e = base()
        .transactional_id("tx")
        .acks(Acks::Leader)
        .validate()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "acks"),
        "{e}"
    );
    let e = base()
        .transactional_id("tx")
        .transaction_timeout(Duration::ZERO)
        .validate()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "transaction.timeout.ms"),
        "{e}"
    );
    // Empty is Java's null: not transactional.
    let c = ProducerConfig::from_pairs([("bootstrap.servers", "h:1"), ("transactional.id", "")])
        .unwrap()
        .validate()
        .unwrap();
    assert!(c.transactional_id.is_none());
}

#[test]
fn every_known_key_is_handled() {
    // Every key at Java's default. It must be accepted unless keys()
    // documents it as refused there: a NotYet key, or a Partial key whose
    // Java default is not the value this release accepts (each Partial
    // text must start with the value its row's `only` names).
    //
    // Java has no default for the serializers (REQUIRED: "" is no class
    // name): "" is refused as Java's ConfigException is, and a real class
    // name is accepted.
    let mut partial_accepted = 0;
    for k in ProducerConfig::keys() {
        let mut c = ProducerConfig::new();
        if REQUIRED.contains(&k.name) {
            assert_eq!((k.java_default, k.support), ("", Support::Implemented));
            let e = c.set(k.name, "").map(|_| ()).unwrap_err();
            assert!(
                matches!(&e, Error::Config { key, .. } if key == k.name),
                "{e}"
            );
            let class = "org.apache.kafka.common.serialization.StringSerializer";
            c.set(k.name, class).unwrap();
            assert_eq!(c.get(k.name).as_deref(), Some(class));
            continue;
        }
        let refused_at_default = match k.support {
            Support::Implemented | Support::NoEffect(_) => None,
            Support::NotYet(why) => Some(why.to_owned()),
            Support::Partial(accepted) => {
                // "0 (...)", "PLAINTEXT (...)", "an empty list (...)"
                let value = accepted.split(" (").next().unwrap_or(accepted);
                let value = if value == "an empty list" { "" } else { value };
                c.set(k.name, value).unwrap_or_else(|e| {
                    panic!("{}: the documented value `{value}` is refused: {e}", k.name)
                });
                assert_eq!(c.get(k.name).as_deref(), Some(value), "{}", k.name);
                partial_accepted += 1;
                c = ProducerConfig::new();
                (!value.eq_ignore_ascii_case(k.java_default))
                    .then(|| format!("this release accepts {accepted}"))
            }
        };
        let r = c.set(k.name, k.java_default).map(|_| ());
        match (refused_at_default, r) {
            (None, Ok(())) => {
                assert_eq!(c.get(k.name).as_deref(), Some(k.java_default), "{}", k.name);
                assert!(c.is_set(k.name), "{}", k.name);
            }
            (None, Err(e)) => panic!("{} = `{}` (Java's default): {e}", k.name, k.java_default),
            (Some(_), Ok(())) => panic!(
                "{} = `{}` was accepted, but keys() documents it as refused",
                k.name, k.java_default
            ),
            (Some(why), Err(e)) => {
                match &e {
                    Error::NotSupportedYet { key, value, detail } => {
                        assert_eq!(key, k.name, "{e}");
                        assert_eq!(value, k.java_default, "{e}");
                        assert_eq!(detail, &why, "{e}");
                    }
                    _ => panic!("{}: expected NotSupportedYet, got {e:?}", k.name),
                }
                assert!(!c.is_set(k.name), "{}: a refused value was kept", k.name);
                assert!(c.get(k.name).is_some(), "{}", k.name);
            }
        }
    }
    assert!(
        partial_accepted >= 9,
        "{partial_accepted} partly supported keys"
    );
}

#[test]
fn socket_buffer_sizes_are_java_ints_of_at_least_minus_one() {
    for (k, v) in [
        ("send.buffer.bytes", "-1"),
        ("send.buffer.bytes", "0"),
        ("receive.buffer.bytes", "8192"),
        ("receive.buffer.bytes", "2147483647"),
    ] {
        let c = ProducerConfig::from_pairs([(k, v)]).unwrap();
        assert_eq!(c.get(k).as_deref(), Some(v));
    }
    let c = base()
        .send_buffer_bytes(-1)
        .receive_buffer_bytes(65536)
        .validate()
        .unwrap();
    assert_eq!((c.send_buffer, c.receive_buffer), (-1, 65536));
    assert_eq!(c.get("receive.buffer.bytes").as_deref(), Some("65536"));
    // The typed builders cannot refuse a value; validation (run by
    // Producer::new) does, naming the key.
    for (c, k) in [
        (base().send_buffer_bytes(-2), "send.buffer.bytes"),
        (
            base().receive_buffer_bytes(i32::MIN),
            "receive.buffer.bytes",
        ),
    ] {
        let e = c.validate().unwrap_err();
        assert!(
            matches!(&e, Error::Config { key, .. } if key == k),
            "{k}: {e}"
        );
        // The message set() gives for the same text.
        assert!(e.to_string().contains("must be in -1..=2147483647"), "{e}");
    }
}

#[test]
fn unknown_keys_suggest_the_java_key() {
    let msg = |k: &str| {
        ProducerConfig::from_pairs([(k, "1")])
            .unwrap_err()
            .to_string()
    };
    assert!(
        msg("lingerms").contains("did you mean linger.ms?"),
        "{}",
        msg("lingerms")
    );
    assert!(msg("bootstrap.server").contains("did you mean bootstrap.servers?"));
    assert!(msg("queue.buffering.max.ms").contains("use linger.ms"));
    assert!(msg("message.timeout.ms").contains("use delivery.timeout.ms"));
    assert!(msg("compression.codec").contains("use compression.type"));
    // Nothing near: no guess.
    let far = msg("completely.unrelated.setting");
    assert!(far.ends_with("unknown configuration key"), "{far}");
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

/// Every row of the key table is usable as `keys()` promises: a type,
/// a one-line description, and a Java default that this release's
/// own parser accepts for every key it does not refuse outright.
#[test]
fn every_key_has_a_type_a_description_and_a_default_we_accept() {
    for k in ProducerConfig::keys() {
        assert!(!k.doc.is_empty() && !k.doc.contains('\n'), "{}", k.name);
        if matches!(k.support, Support::NotYet(_)) || k.java_default.is_empty() {
            continue;
        }
        let mut c = ProducerConfig::new();
        match (c.set(k.name, k.java_default), k.support) {
            (Ok(_), _) => {}
            // Java's default is one this release does not do (metrics
            // push, JMX): refused as such, never as invalid.
            (Err(Error::NotSupportedYet { .. }), Support::Partial(_)) => {}
            (Err(e), _) => panic!("{} = {:?}: {e}", k.name, k.java_default),
        }
    }
    let kind = |name: &str| {
        ProducerConfig::keys()
            .iter()
            .find(|k| k.name == name)
            .unwrap()
            .kind
    };
    assert_eq!(kind("linger.ms"), Kind::Long);
    assert_eq!(kind("sasl.jaas.config"), Kind::Password);
}

#[test]
fn keys_without_effect_say_so_and_are_still_validated() {
    let no_effect: Vec<&str> = ProducerConfig::keys()
        .iter()
        .filter(|k| matches!(k.support, Support::NoEffect(_)))
        .map(|k| k.name)
        .collect();
    assert_eq!(no_effect, ["compression.lz4.level"]);
    ProducerConfig::from_pairs([("compression.lz4.level", "12")]).unwrap();
    assert!(ProducerConfig::from_pairs([("compression.lz4.level", "18")]).is_err());
}

#[test]
fn compression_type_and_levels_combine() {
    let c = ProducerConfig::from_pairs([
        ("compression.zstd.level", "-5"),
        ("compression.type", "ZSTD"),
    ])
    .unwrap();
    assert_eq!(c.compression_codec(), Compression::Zstd(-5));
    assert_eq!(c.get("compression.type").unwrap(), "ZSTD");
    let g = ProducerConfig::new().compression(Compression::Gzip(9));
    assert_eq!(g.compression_codec(), Compression::Gzip(9));
    assert_eq!(g.get("compression.gzip.level").unwrap(), "9");
    assert_eq!(ProducerConfig::new().compression_codec(), Compression::None);
    assert!(ProducerConfig::from_pairs([("compression.type", "brotli")]).is_err());
}

#[test]
fn metadata_recovery_strategy_is_case_insensitive_and_read_back() {
    let c = ProducerConfig::from_pairs([
        ("metadata.recovery.strategy", "NONE"),
        ("metadata.recovery.rebootstrap.trigger.ms", "1000"),
    ])
    .unwrap();
    assert_eq!(c.metadata_recovery, MetadataRecoveryStrategy::None);
    assert_eq!(c.rebootstrap_trigger, Duration::from_millis(1000));
    let d = ProducerConfig::new();
    assert_eq!(d.get("metadata.recovery.strategy").unwrap(), "rebootstrap");
    assert_eq!(
        d.get("metadata.recovery.rebootstrap.trigger.ms").unwrap(),
        "300000"
    );
}

#[test]
fn delivery_timeout_rule_follows_java() {
    let e = base()
        .linger(ms(100))
        .request_timeout(ms(1000))
        .delivery_timeout(ms(500))
        .validate()
        .unwrap_err();
    assert!(matches!(&e, Error::Config { key, .. } if key == "delivery.timeout.ms"));
    // not set explicitly: raised quietly
    let c = base().request_timeout(ms(200_000)).validate().unwrap();
    assert_eq!(c.delivery_timeout, ms(200_005));
}

#[test]
fn bootstrap_is_required_and_checked() {
    assert!(ProducerConfig::new().validate().is_err());
    let e = ProducerConfig::new()
        .bootstrap_servers("localhost")
        .validate()
        .unwrap_err();
    assert!(matches!(&e, Error::Config { key, .. } if key == "bootstrap.servers"));
    assert_eq!(
        parse_host_port("[::1]:9092").unwrap(),
        ("::1".to_string(), 9092)
    );
}

#[test]
fn client_id_defaults_to_producer_n() {
    let c = base().validate().unwrap();
    assert!(c.client_id.starts_with("producer-"), "{}", c.client_id);
}

#[test]
fn properties_files_parse_like_java() {
    let text = "# comment\n! also a comment\n\nbootstrap.servers = a:1,\\\n    b:2\nacks: 1\nlinger.ms=7\nclient.id=my\\ client\n";
    let c = ProducerConfig::from_properties(text).unwrap();
    assert_eq!(c.bootstrap_servers, vec!["a:1", "b:2"]);
    assert_eq!(c.acks, Acks::Leader);
    assert_eq!(c.linger, ms(7));
    assert_eq!(c.client_id, "my client");
}

// Walks over every row of the key table (`config/keys.rs`): a key added
// there is covered here without another line.

/// The keys whose builders are written by hand in `config/mod.rs` (or that
/// have none: the serializers go to `Producer::new`), so
/// `ProducerConfig::BUILDERS` does not list them.
/// Stored keys with no typed builder at all: the ssl.* settings are set
/// by name (`set`, `from_pairs`, a properties file), as Java users do.
const NO_BUILDER: &[&str] = &[
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.endpoint.identification.algorithm",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
];

const NOT_GENERATED: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "partitioner.class",
    "key.serializer",
    "value.serializer",
    "compression.type",
    "compression.gzip.level",
    "compression.zstd.level",
    "transactional.id",
    // SASL: hand-written (sasl_jaas_config) or set() only.
    "sasl.jaas.config",
    "sasl.username",
    "sasl.password",
];

/// Java has no default for these (they are required there); `""` is
/// refused as Java's ConfigException is.
const REQUIRED: &[&str] = &["key.serializer", "value.serializer"];

fn is_refused(k: &KeyInfo) -> bool {
    matches!(k.support, Support::NotYet(_))
}

#[test]
fn every_default_shown_by_get_reads_back_through_set() {
    let defaults = ProducerConfig::new();
    let mut stored = 0;
    for k in ProducerConfig::keys() {
        let shown = defaults.get(k.name).expect("every key has a value");
        // The typed default in the row is Java's documented default,
        // except where this release does only one other value.
        if matches!(k.support, Support::Implemented | Support::NoEffect(_)) {
            assert_eq!(shown, k.java_default, "{}", k.name);
        }
        let mut c = ProducerConfig::new();
        match c.set(k.name, &shown) {
            Ok(_) => {}
            Err(Error::NotSupportedYet { key, .. }) if is_refused(k) => {
                assert_eq!(key, k.name);
                continue;
            }
            Err(Error::Config { key, .. }) if REQUIRED.contains(&k.name) => {
                assert_eq!(key, k.name);
                continue;
            }
            Err(e) => panic!("{} = `{shown}` (its default) is refused: {e}", k.name),
        }
        assert!(!is_refused(k), "{}", k.name);
        assert_eq!(c.get(k.name).as_deref(), Some(shown.as_str()), "{}", k.name);
        assert!(c.is_set(k.name), "{}", k.name);
        if let Some(value) = c.debug_value(k.name) {
            assert_eq!(Some(value), defaults.debug_value(k.name), "{}", k.name);
            stored += 1;
        }
    }
    assert!(stored >= 30, "{stored} keys with a field");
}

#[test]
fn every_builder_sets_what_set_sets_with_its_key() {
    let defaults = ProducerConfig::new();
    let stored: Vec<&str> = ProducerConfig::keys()
        .iter()
        .map(|k| k.name)
        .filter(|k| defaults.debug_value(k).is_some())
        .collect();
    for (key, doc, builder) in ProducerConfig::BUILDERS {
        assert!(
            doc.trim_start().starts_with(&format!("`{key}`")),
            "{key}: {doc}"
        );
        assert!(doc.contains("Defaults to"), "{key}: {doc}");
        let (samples, _) = ProducerConfig::samples(key).unwrap();
        let mut changed = false;
        for text in samples {
            let mut by_set = ProducerConfig::new();
            by_set.set(key, &text).unwrap();
            let by_builder = builder(ProducerConfig::new(), &by_set);
            let value = by_builder.debug_value(key);
            assert_eq!(value, by_set.debug_value(key), "{key}={text}");
            changed |= value != defaults.debug_value(key);
            // What the builder records as set reads back to the same value.
            assert!(by_builder.is_set(key), "{key}");
            let shown = by_builder.get(key).unwrap();
            let mut again = ProducerConfig::new();
            again.set(key, &shown).unwrap();
            assert_eq!(again.debug_value(key), value, "{key}: `{shown}`");
            // ... and touches no other key.
            for other in stored.iter().filter(|o| *o != key) {
                assert_eq!(
                    by_builder.debug_value(other),
                    defaults.debug_value(other),
                    "{key}'s builder changed {other}"
                );
                assert!(!by_builder.is_set(other), "{key}'s builder set {other}");
            }
        }
        assert!(changed, "{key}: no sample differs from the default");
    }
    // Every stored key has a generated builder, or is known not to.
    let generated: Vec<&str> = ProducerConfig::BUILDERS.iter().map(|b| b.0).collect();
    for key in &stored {
        if NO_BUILDER.contains(key) {
            assert!(!generated.contains(key), "{key}");
            continue;
        }
        assert!(
            generated.contains(key) != NOT_GENERATED.contains(key),
            "{key}: generated {}, listed as hand-written {}",
            generated.contains(key),
            NOT_GENERATED.contains(key)
        );
    }
}

/// The builders written by hand, against `set` with their keys.
#[test]
fn hand_written_builders_set_what_set_sets() {
    let by_set =
        |pairs: &[(&str, &str)]| ProducerConfig::from_pairs(pairs.iter().copied()).unwrap();
    let same = |a: &ProducerConfig, b: &ProducerConfig, keys: &[&str]| {
        for k in keys {
            assert_eq!(a.debug_value(k), b.debug_value(k), "{k}");
            assert_eq!(a.get(k), b.get(k), "{k}");
        }
    };
    let k = &["bootstrap.servers"];
    same(
        &base(),
        &by_set(&[("bootstrap.servers", "localhost:9092")]),
        k,
    );
    let k = &["client.id"];
    same(
        &ProducerConfig::new().client_id("me"),
        &by_set(&[("client.id", "me")]),
        k,
    );
    let k = &["security.protocol", "sasl.mechanism", "sasl.jaas.config"];
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";"#;
    same(
        &ProducerConfig::new()
            .security_protocol(SecurityProtocol::SaslPlaintext)
            .sasl_mechanism("PLAIN".into())
            .sasl_jaas_config(jaas),
        &by_set(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", jaas),
        ]),
        k,
    );
    let k = &["transactional.id"];
    let t = ProducerConfig::new().transactional_id("tx");
    same(&t, &by_set(&[("transactional.id", "tx")]), k);
    same(
        &ProducerConfig::new().transactional_id(""),
        &by_set(&[("transactional.id", "")]),
        k,
    );
    let k = &[
        "compression.type",
        "compression.gzip.level",
        "compression.zstd.level",
    ];
    same(
        &ProducerConfig::new().compression(Compression::Gzip(9)),
        &by_set(&[
            ("compression.type", "gzip"),
            ("compression.gzip.level", "9"),
        ]),
        k,
    );
    same(
        &ProducerConfig::new().compression(Compression::Zstd(-5)),
        &by_set(&[
            ("compression.type", "zstd"),
            ("compression.zstd.level", "-5"),
        ]),
        k,
    );
    same(
        &ProducerConfig::new().compression(Compression::Lz4),
        &by_set(&[("compression.type", "lz4")]),
        k,
    );
    let k = &["partitioner.class"];
    same(
        &ProducerConfig::new().round_robin_partitioner(),
        &by_set(&[("partitioner.class", ROUND_ROBIN)]),
        k,
    );
}

#[test]
fn every_bad_value_is_an_error_naming_the_key() {
    let mut walked = 0;
    for k in ProducerConfig::keys() {
        let Some((good, bad)) = ProducerConfig::samples(k.name) else {
            // A refused key: whatever the value, NotSupportedYet naming it.
            assert!(is_refused(k), "{} has no codec", k.name);
            for v in ["", "x", k.java_default] {
                let e = ProducerConfig::from_pairs([(k.name, v)]).unwrap_err();
                assert!(
                    matches!(&e, Error::NotSupportedYet { key, .. } if key == k.name),
                    "{}={v}: {e}",
                    k.name
                );
            }
            continue;
        };
        assert!(!is_refused(k), "{}", k.name);
        for v in bad {
            let e = ProducerConfig::from_pairs([(k.name, v.as_str())]).unwrap_err();
            assert!(
                matches!(&e, Error::Config { key, .. } if key == k.name),
                "{}={v}: {e}",
                k.name
            );
            let text = e.to_string();
            assert!(text.contains(k.name), "{text}");
            walked += 1;
        }
        // A good value is taken, or refused as not done yet (a partly
        // supported key), never as invalid.
        for v in good {
            match ProducerConfig::from_pairs([(k.name, v.as_str())]) {
                Ok(c) => {
                    // A Password key's value reads back hidden.
                    let want = if k.kind == Kind::Password && !v.is_empty() {
                        "[hidden]".to_owned()
                    } else {
                        v.clone()
                    };
                    assert_eq!(c.get(k.name), Some(want), "{}", k.name)
                }
                Err(Error::NotSupportedYet { key, .. })
                    if key == k.name && matches!(k.support, Support::Partial(_)) => {}
                Err(e) => panic!("{}={v}: {e}", k.name),
            }
        }
    }
    assert!(walked > 60, "{walked} bad values");
}

/// A typed builder cannot refuse a value; `validate` (run by
/// `Producer::new`) does, with the message `set` gives for its text.
#[test]
fn out_of_range_builder_values_fail_validation_naming_the_key() {
    let past_int = ms(i32::MAX as u64 + 1);
    for (c, key) in [
        (base().batch_size(usize::MAX), "batch.size"),
        (base().retries(u32::MAX), "retries"),
        (base().linger(past_int), "linger.ms"),
        (
            base().transaction_timeout(past_int),
            "transaction.timeout.ms",
        ),
        (
            base().max_in_flight_requests_per_connection(0),
            "max.in.flight.requests.per.connection",
        ),
        (base().metadata_max_idle(ms(10)), "metadata.max.idle.ms"),
        (
            base().compression(Compression::Gzip(12)),
            "compression.gzip.level",
        ),
        (
            base().compression(Compression::Zstd(23)),
            "compression.zstd.level",
        ),
    ] {
        let shown = c.get(key).unwrap();
        let e = c.validate().unwrap_err();
        assert!(
            matches!(&e, Error::Config { key: k, .. } if k == key),
            "{key}: {e}"
        );
        let from_set = ProducerConfig::new()
            .set(key, &shown)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.to_string(), from_set.to_string(), "{key}");
    }
    // Past Java's LONG of milliseconds means forever, as i64::MAX does
    // (tests/faults.rs sets Duration::MAX); get shows what set reads back.
    let c = base()
        .max_block(Duration::MAX)
        .connections_max_idle(Some(Duration::MAX))
        .validate()
        .unwrap();
    for key in ["max.block.ms", "connections.max.idle.ms"] {
        let shown = c.get(key).unwrap();
        assert_eq!(shown, i64::MAX.to_string(), "{key}");
        ProducerConfig::new().set(key, &shown).unwrap();
    }
}

/// Java's `Password` type: a secret never shows in `Debug`, `get` or an
/// error, whichever way it was set; the code that needs it still has it.
#[test]
fn password_keys_print_hidden() {
    let secret = "-----BEGIN PRIVATE KEY----- s3cret-material";
    let mut c = ProducerConfig::new();
    c.set("ssl.keystore.key", secret).unwrap();
    c.set("ssl.truststore.certificates", secret).unwrap();
    let refused = [
        c.set("ssl.key.password", "s3cret-material")
            .map(|_| ())
            .unwrap_err(),
        c.set("ssl.keystore.password", "s3cret-material")
            .map(|_| ())
            .unwrap_err(),
        c.set("sasl.jaas.config", "s3cret-material")
            .map(|_| ())
            .unwrap_err(),
    ];
    let shown = format!("{c:?} {:?} {refused:?}", c.get("ssl.keystore.key"));
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("[hidden]"), "{shown}");
    for e in &refused {
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
    assert_eq!(c.get("ssl.keystore.key").as_deref(), Some("[hidden]"));
    assert_eq!(c.get("ssl.keystore.certificate.chain").as_deref(), Some(""));
    assert_eq!(
        c.ssl_keystore_key.as_ref().map(|p| p.reveal()),
        Some(secret),
        "kept for the TLS code"
    );
    // Other keys show as set.
    c.set("ssl.keystore.location", "/etc/k.pem").unwrap();
    assert_eq!(
        c.get("ssl.keystore.location").as_deref(),
        Some("/etc/k.pem")
    );
    assert!(format!("{c:?}").contains("/etc/k.pem"));
}
