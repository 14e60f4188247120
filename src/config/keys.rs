//! Every configuration key, one row each: Java's name, type, default, this
//! release's support, a one-line description, how its value is parsed and
//! checked, the field that holds it and its typed builder. `config_keys!`
//! (`config/table.rs`) writes `ProducerConfig`, `new`, `set`, `get`,
//! `keys()` and the builders from these rows; nothing else lists keys.
//!
//! Adding a key is adding its row (and, if its builder does not take the
//! field's type, writing that builder in `config/mod.rs`). A key moves
//! from `refused` to `checked` or `stored` as it is implemented.
//! Rules between keys belong in `ProducerConfig::validate`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::table::{config_keys, first};
use super::value::{
    ms, Bool, Choice, Codec, EndpointIdentification, GzipLevel, HostPorts, Int, JaasText, List,
    Millis, OptionalMillis, OptionalText, PartitionerClass, Protocol, Secret, SerializerClass,
    Text, TlsProtocols, INT_MS, LONG_MS, MAX_INT,
};
use super::{
    not_yet, partial, shown, unknown_key_message, Acks, KeyInfo, Kind, MetadataRecoveryStrategy,
    PartitionerChoice, Password, SecurityProtocol, StatsCallback, StoreType, Support,
    TlsVersionCap,
};
use crate::error::{Error, Result};

use Support::{Implemented as Impl, NoEffect, Partial};

const TLS: &str = "rustls is the only TLS provider";
const PEM_PASSWORD: &str =
    "only PEM stores are supported (KIP-651), and a PEM store takes no store password, as in Java";
const KEY_PASSWORD: &str =
    "encrypted private keys are not supported yet: give an unencrypted PEM key";
const SASL: &str = "not done: SASL here is PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER (tokens from ProducerConfig::oauth_token_provider); Kerberos, Java callback classes and OAuth token endpoints are not";

const ACKS: Choice<Acks> = Choice(&[
    ("all", Acks::All),
    ("-1", Acks::All),
    ("0", Acks::None),
    ("1", Acks::Leader),
]);
const COMPRESSION_TYPE: Choice<&str> = Choice(&[
    ("none", "none"),
    ("gzip", "gzip"),
    ("snappy", "snappy"),
    ("lz4", "lz4"),
    ("zstd", "zstd"),
]);
const RECOVERY: Choice<MetadataRecoveryStrategy> = Choice(&[
    ("none", MetadataRecoveryStrategy::None),
    ("rebootstrap", MetadataRecoveryStrategy::Rebootstrap),
]);
const STORE_TYPE: Choice<StoreType> = Choice(&[
    ("JKS", StoreType::Jks),
    ("PKCS12", StoreType::Pkcs12),
    ("PEM", StoreType::Pem),
]);
const TLS_PROTOCOL: Choice<TlsVersionCap> = Choice(&[
    ("TLSv1.3", TlsVersionCap::Tls13),
    ("TLSv1.2", TlsVersionCap::Tls12),
    ("TLS", TlsVersionCap::Any),
]);
const DNS_LOOKUP: Choice<&str> = Choice(&[
    ("use_all_dns_ips", "use_all_dns_ips"),
    (
        "resolve_canonical_bootstrap_servers_only",
        "resolve_canonical_bootstrap_servers_only",
    ),
]);
const RECORDING_LEVEL: Choice<&str> =
    Choice(&[("INFO", "INFO"), ("DEBUG", "DEBUG"), ("TRACE", "TRACE")]);

config_keys! {
    /// The producer's configuration, by Java's property names.
    ///
    /// ```
    /// use kafka_producer::{Acks, ProducerConfig};
    /// use std::time::Duration;
    ///
    /// // From pairs, as Java's Properties ...
    /// let a = ProducerConfig::from_pairs([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("acks", "1"),
    ///     ("linger.ms", "20"),
    /// ])?;
    /// // ... or typed.
    /// let b = ProducerConfig::new()
    ///     .bootstrap_servers("localhost:9092")
    ///     .acks(Acks::Leader)
    ///     .linger(Duration::from_millis(20));
    /// assert_eq!(a.get("linger.ms"), b.get("linger.ms"));
    /// assert!(ProducerConfig::from_pairs([("linger.msec", "1")]).is_err());
    /// # Ok::<(), kafka_producer::Error>(())
    /// ```
    ///
    /// `Debug` and [`get`](Self::get) show a Password key's value
    /// (`ssl.keystore.key`, `sasl.jaas.config`, ...) as `[hidden]`, as
    /// Java's `Password` type does.
    #[derive(Clone)]
    pub struct ProducerConfig;

    stored {
        // Required; `validate` refuses an empty list. Builder: mod.rs.
        "bootstrap.servers": List = "", Impl, "host:port pairs to ask for the cluster's metadata first";
        HostPorts => bootstrap_servers: Vec<String> = Vec::new();

        // Empty until `validate` names it producer-N. Builder: mod.rs.
        "client.id": String = "", Impl, "the name brokers log for this producer (default producer-N)";
        Text => client_id: String = String::new();

        "acks": String = "all", Impl, "acknowledgements a write needs: all (-1), 1 (the leader) or 0 (none)";
        ACKS => acks: Acks = Acks::All;
        /// `acks`: how many replicas must have a record before the broker
        /// answers. Defaults to [`Acks::All`], as Java since 3.0.
        fn acks;

        "linger.ms": Long = "5", Impl, "how long a batch waits for more records before it is sent";
        INT_MS => linger: Duration = ms(5);
        /// `linger.ms`: how long a batch waits for more records before it is
        /// sent. Defaults to 5 ms, as Java since 4.0.
        fn linger;

        "batch.size": Int = "16384", Impl, "bytes of records per partition batch";
        Int::<usize>::new(0, MAX_INT) => batch_size: usize = 16384;
        /// `batch.size`: the bytes of records a batch fills before it is sent
        /// (compressed bytes, with compression). Defaults to 16384.
        fn batch_size;

        "buffer.memory": Long = "33554432", Impl, "bytes of records buffered before send blocks";
        Int::<usize>::new(0, i64::MAX) => buffer_memory: usize = 32 * 1024 * 1024;
        /// `buffer.memory`: the bytes all waiting batches may take; when it is
        /// full, `send` blocks up to `max.block.ms`. Defaults to 33554432
        /// (32 MiB).
        fn buffer_memory;

        "max.block.ms": Long = "60000", Impl, "how long send and partitions_for block for metadata or memory";
        LONG_MS => max_block: Duration = ms(60_000);
        /// `max.block.ms`: the longest `send` and `partitions_for` block, for
        /// metadata and for memory together. Defaults to 60000 ms.
        fn max_block;

        "max.request.size": Int = "1048576", Impl, "the largest Produce request, and so the largest record, in bytes";
        Int::<usize>::new(0, MAX_INT) => max_request_size: usize = 1024 * 1024;
        /// `max.request.size`: the largest request, and so the largest record,
        /// in bytes. Defaults to 1048576.
        fn max_request_size;

        "request.timeout.ms": Int = "30000", Impl, "how long a request waits for its answer before it is retried";
        INT_MS => request_timeout: Duration = ms(30_000);
        /// `request.timeout.ms`: how long a request may wait for its answer
        /// before its connection is dropped and its batches retried. Defaults to
        /// 30000 ms.
        fn request_timeout;

        // At least linger.ms + request.timeout.ms once validated.
        "delivery.timeout.ms": Int = "120000", Impl, "how long a record may take from send to its outcome, retries included";
        INT_MS => delivery_timeout: Duration = ms(120_000);
        /// `delivery.timeout.ms`: the most time a record may take from `send` to
        /// its outcome, retries included; at least `linger.ms` plus
        /// `request.timeout.ms`. Defaults to 120000 ms.
        fn delivery_timeout;

        "retries": Int = "2147483647", Impl, "how many times a failed batch is sent again";
        Int::<u32>::new(0, MAX_INT) => retries: u32 = i32::MAX as u32;
        /// `retries`: how many times a batch is sent again after a retriable
        /// error, within `delivery.timeout.ms`. Defaults to 2147483647.
        fn retries;

        "retry.backoff.ms": Long = "100", Impl, "the first wait before a retry (KIP-580 backoff)";
        LONG_MS => retry_backoff: Duration = ms(100);
        /// `retry.backoff.ms`: the first wait before a retry (it doubles per
        /// attempt, with jitter, up to `retry.backoff.max.ms`). Defaults to
        /// 100 ms.
        fn retry_backoff;

        // At least retry.backoff.ms once validated (KIP-580).
        "retry.backoff.max.ms": Long = "1000", Impl, "the longest wait before a retry";
        LONG_MS => retry_backoff_max: Duration = ms(1000);
        /// `retry.backoff.max.ms`: the longest wait before a retry. Defaults to
        /// 1000 ms.
        fn retry_backoff_max;

        "max.in.flight.requests.per.connection": Int = "5", Impl, "unanswered Produce requests per broker connection";
        Int::<usize>::new(1, MAX_INT) => max_in_flight: usize = 5;
        /// `max.in.flight.requests.per.connection`: requests a connection may
        /// have unanswered; 1 keeps each partition's order across retries.
        /// Defaults to 5.
        fn max_in_flight_requests_per_connection;

        "metadata.max.age.ms": Long = "300000", Impl, "how often metadata is refreshed even when nothing asks for it";
        LONG_MS => metadata_max_age: Duration = ms(300_000);
        /// `metadata.max.age.ms`: how often metadata is refreshed even when
        /// nothing asks for it. Defaults to 300000 ms.
        fn metadata_max_age;

        "metadata.max.idle.ms": Long = "300000", Impl, "how long a topic nothing is sent to stays in the metadata";
        Millis::new(5000, i64::MAX) => metadata_max_idle: Duration = ms(300_000);
        /// `metadata.max.idle.ms`: how long a topic nothing is sent to stays
        /// in the metadata (and its queues in the producer); at least 5000 ms.
        /// Defaults to 300000 ms.
        fn metadata_max_idle;

        // Builders: `partitioner` and `round_robin_partitioner` in mod.rs.
        "partitioner.class": Class = "", Impl, "the partitioner: unset (built-in), RoundRobinPartitioner or a librdkafka name";
        PartitionerClass => partitioner: PartitionerChoice = PartitionerChoice::BuiltIn;

        "partitioner.adaptive.partitioning.enable": Boolean = "true", Impl, "keyless records favour brokers with shorter queues";
        Bool => partitioner_adaptive: bool = true;
        /// `partitioner.adaptive.partitioning.enable`: the sticky partitioner
        /// favours partitions whose brokers keep up. Defaults to `true`.
        fn partitioner_adaptive_partitioning;

        "partitioner.ignore.keys": Boolean = "false", Impl, "place keyed records as if they had no key";
        Bool => partitioner_ignore_keys: bool = false;
        /// `partitioner.ignore.keys`: place keyed records as keyless ones
        /// (sticky). Defaults to `false`.
        fn partitioner_ignore_keys;

        // The serializers themselves are given to `Producer::new`.
        "key.serializer": Class = "", Impl, "the key serializer, by Java class name";
        SerializerClass => key_serializer: Option<&'static str> = None;
        "value.serializer": Class = "", Impl, "the value serializer, by Java class name";
        SerializerClass => value_serializer: Option<&'static str> = None;

        "reconnect.backoff.ms": Long = "50", Impl, "the first wait before reconnecting to a broker";
        LONG_MS => reconnect_backoff: Duration = ms(50);
        /// `reconnect.backoff.ms`: the wait before reconnecting to a broker
        /// after a failed or lost connection; it doubles per failure, with
        /// jitter, up to `reconnect.backoff.max.ms`. Defaults to 50 ms.
        fn reconnect_backoff;

        "reconnect.backoff.max.ms": Long = "1000", Impl, "the longest wait before reconnecting to a broker";
        LONG_MS => reconnect_backoff_max: Duration = ms(1000);
        /// `reconnect.backoff.max.ms`: the longest wait before reconnecting to
        /// a broker. Defaults to 1000 ms.
        fn reconnect_backoff_max;

        "socket.connection.setup.timeout.ms": Long = "10000", Impl, "how long a connection may take to open, at first";
        LONG_MS => connection_setup_timeout: Duration = ms(10_000);
        /// `socket.connection.setup.timeout.ms`: how long a connection attempt
        /// may take; it doubles per consecutive failure up to
        /// `socket.connection.setup.timeout.max.ms`. Defaults to 10000 ms.
        fn socket_connection_setup_timeout;

        "socket.connection.setup.timeout.max.ms": Long = "30000", Impl, "how long a connection may take to open, at most";
        LONG_MS => connection_setup_timeout_max: Duration = ms(30_000);
        /// `socket.connection.setup.timeout.max.ms`: the longest a connection
        /// attempt may take. Defaults to 30000 ms.
        fn socket_connection_setup_timeout_max;

        "connections.max.idle.ms": Long = "540000", Impl, "idle connections are closed after this long (-1: never)";
        OptionalMillis => connections_max_idle: Option<Duration> = Some(ms(540_000));
        /// `connections.max.idle.ms`: a connection that has carried nothing
        /// for this long is closed (the next request opens a new one); `None`
        /// is Java's -1, never. Defaults to 540000 ms (9 minutes).
        fn connections_max_idle;

        // The three compression keys combine in `compression_codec`;
        // builder: `compression` in mod.rs.
        "compression.type": String = "none", Impl, "how batches are compressed: none, gzip, snappy, lz4, zstd";
        COMPRESSION_TYPE => compression_type: &'static str = "none";
        "compression.gzip.level": Int = "-1", Impl, "gzip level: -1 (default) or 1-9";
        GzipLevel => gzip_level: i32 = -1;
        "compression.zstd.level": Int = "3", Impl, "zstd level: -131072 to 22";
        Int::<i32>::new(-131_072, 22) => zstd_level: i32 = 3;

        // Once validated, false if a conflicting setting turned the
        // default off (Java's rule, in `validate`).
        "enable.idempotence": Boolean = "true", Impl, "each record is written once and in order despite retries";
        Bool => idempotence: bool = true;
        /// `enable.idempotence`: each batch carries a producer id, epoch and
        /// sequence number, so the broker writes a retried batch once and in
        /// order. Needs `acks=all`, `retries > 0` and at most 5 requests in
        /// flight: set explicitly, a conflict is a config error; left at its
        /// default, a conflicting setting turns it off (logged at info, as
        /// Java). Defaults to `true`.
        fn enable_idempotence;

        // `Some` makes the producer transactional (and idempotent); empty
        // is Java's null. Builder: mod.rs.
        "transactional.id": String = "", Impl, "makes the producer transactional under this id";
        OptionalText => transactional_id: Option<String> = None;

        "transaction.timeout.ms": Int = "60000", Impl, "how long a transaction may stay open before the coordinator aborts it";
        INT_MS => transaction_timeout: Duration = ms(60_000);
        /// `transaction.timeout.ms`: how long the transaction coordinator lets
        /// a transaction stay open before it aborts it (sent in
        /// InitProducerId; the broker refuses values above its
        /// `transaction.max.timeout.ms`, 15 minutes by default). Defaults to
        /// 60000 ms.
        fn transaction_timeout;

        "metadata.recovery.strategy": String = "rebootstrap", Impl, "what to do when no known broker answers: rebootstrap or none";
        RECOVERY => metadata_recovery: MetadataRecoveryStrategy = MetadataRecoveryStrategy::Rebootstrap;
        /// `metadata.recovery.strategy`: whether to fall back to the bootstrap
        /// servers when no known broker answers. Defaults to
        /// [`MetadataRecoveryStrategy::Rebootstrap`], as in Kafka 4.
        fn metadata_recovery_strategy;

        "metadata.recovery.rebootstrap.trigger.ms": Long = "300000", Impl, "how long metadata may fail before rebootstrapping";
        LONG_MS => rebootstrap_trigger: Duration = ms(300_000);
        /// `metadata.recovery.rebootstrap.trigger.ms`: with the `rebootstrap`
        /// strategy, how long without metadata before the bootstrap servers
        /// are asked first. Defaults to 300000 ms (5 minutes).
        fn metadata_recovery_rebootstrap_trigger;

        // -1 leaves the operating system's default (Java's
        // CommonClientConfigs.SEND_BUFFER_LOWER_BOUND).
        "send.buffer.bytes": Int = "131072", Impl, "SO_SNDBUF of broker sockets (-1: the OS default)";
        Int::<i32>::new(-1, MAX_INT) => send_buffer: i32 = 128 * 1024;
        /// `send.buffer.bytes`: the size of every broker socket's send buffer
        /// (SO_SNDBUF), in bytes, set before it connects; -1 leaves the
        /// operating system's default (and, on Linux, its autotuning). Values
        /// below -1 fail [`Producer::new`](crate::Producer::new) with
        /// [`Error::Config`]. Defaults to 131072, as in Java.
        fn send_buffer_bytes;

        "receive.buffer.bytes": Int = "32768", Impl, "SO_RCVBUF of broker sockets (-1: the OS default)";
        Int::<i32>::new(-1, MAX_INT) => receive_buffer: i32 = 32 * 1024;
        /// `receive.buffer.bytes`: the size of every broker socket's receive
        /// buffer (SO_RCVBUF), in bytes, set before it connects, so the TCP
        /// window scale agreed in the handshake fits it; -1 leaves the
        /// operating system's default (and, on Linux, its autotuning). Values
        /// below -1 fail [`Producer::new`](crate::Producer::new) with
        /// [`Error::Config`]. Defaults to 32768, as in Java.
        fn receive_buffer_bytes;

        "metrics.num.samples": Int = "2", Impl, "samples kept per metric";
        Int::<usize>::new(1, MAX_INT) => metrics_num_samples: usize = 2;
        /// `metrics.num.samples`: how many samples a windowed metric keeps
        /// (at least 1). Defaults to 2, as Java. See the README's "Metrics".
        fn metrics_num_samples;

        "metrics.sample.window.ms": Long = "30000", Impl, "the window a metric sample covers";
        LONG_MS => metrics_sample_window: Duration = ms(30_000);
        /// `metrics.sample.window.ms`: the window one metric sample covers.
        /// Defaults to 30000 ms, as Java. See the README's "Metrics".
        fn metrics_sample_window;

        // librdkafka's key (not Java's) and its range: 0 (off) to a day.
        "statistics.interval.ms": Int = "0", Impl, "librdkafka's: how often the statistics callback gets a metrics snapshot (0: never); not a Java key";
        Millis::new(0, 86_400_000) => statistics_interval: Duration = Duration::ZERO;
        /// `statistics.interval.ms` (librdkafka's key, not Java's): how often
        /// the [statistics callback](Self::statistics_callback) runs, at most
        /// a day. Defaults to 0: off.
        fn statistics_interval;

        // TLS (io/tls.rs). The settings are read, and the files loaded,
        // by `validate` when the protocol uses TLS.
        "security.protocol": String = "PLAINTEXT", Impl, "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL";
        Protocol => security_protocol: SecurityProtocol = SecurityProtocol::Plaintext;
        /// `security.protocol`: how the producer talks to brokers:
        /// [`SecurityProtocol::Plaintext`], [`SecurityProtocol::Ssl`] (TLS,
        /// configured by the `ssl.*` keys), [`SecurityProtocol::SaslPlaintext`]
        /// or [`SecurityProtocol::SaslSsl`] (SASL, configured by the `sasl.*`
        /// keys). Defaults to [`SecurityProtocol::Plaintext`].
        fn security_protocol;

        "ssl.protocol": String = "TLSv1.3", Impl, "the newest TLS version to use: TLSv1.3, TLSv1.2 or TLS";
        TLS_PROTOCOL => ssl_protocol: TlsVersionCap = TlsVersionCap::Tls13;
        "ssl.enabled.protocols": List = "TLSv1.2,TLSv1.3", Impl, "the TLS versions allowed (TLSv1.2, TLSv1.3)";
        TlsProtocols => ssl_enabled_protocols: Vec<String> = vec!["TLSv1.2".into(), "TLSv1.3".into()];
        "ssl.endpoint.identification.algorithm": String = "https", Impl, "host name verification: https, or empty for none";
        EndpointIdentification => ssl_verify_host: bool = true;

        "ssl.truststore.type": String = "JKS", Impl, "the trust store's format: only PEM is supported";
        STORE_TYPE => ssl_truststore_type: StoreType = StoreType::Jks;
        "ssl.truststore.location": String = "", Impl, "the trust store's file (PEM CA certificates)";
        OptionalText => ssl_truststore_location: Option<String> = None;
        "ssl.truststore.certificates": Password = "", Impl, "trusted CA certificates, PEM";
        Secret => ssl_truststore_certificates: Option<Password> = None;

        "ssl.keystore.type": String = "JKS", Impl, "the key store's format: only PEM is supported";
        STORE_TYPE => ssl_keystore_type: StoreType = StoreType::Jks;
        "ssl.keystore.location": String = "", Impl, "the key store's file: the client's PEM private key and certificate chain";
        OptionalText => ssl_keystore_location: Option<String> = None;
        "ssl.keystore.key": Password = "", Impl, "the client's private key, PEM";
        Secret => ssl_keystore_key: Option<Password> = None;
        "ssl.keystore.certificate.chain": Password = "", Impl, "the client's certificate chain, PEM";
        Secret => ssl_keystore_certificate_chain: Option<Password> = None;

        // librdkafka's names for the same files (not Java keys).
        "ssl.ca.location": String = "", Impl, "librdkafka's: the CA certificates, a PEM file or a directory of them; not a Java key";
        OptionalText => ssl_ca_location: Option<String> = None;
        "ssl.certificate.location": String = "", Impl, "librdkafka's: the client's PEM certificate chain file; not a Java key";
        OptionalText => ssl_certificate_location: Option<String> = None;
        "ssl.key.location": String = "", Impl, "librdkafka's: the client's PEM private key file; not a Java key";
        OptionalText => ssl_key_location: Option<String> = None;

        // SASL (sasl/): checked against the credentials by `validate`
        // (SASL_* protocols only).
        "sasl.mechanism": String = "GSSAPI", Impl, "the SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (GSSAPI, Java's default, is not supported)";
        Text => sasl_mechanism: String = "GSSAPI".to_owned();
        /// `sasl.mechanism`: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or
        /// `OAUTHBEARER`, used when `security.protocol` is `SASL_PLAINTEXT`
        /// or `SASL_SSL`. Defaults to `GSSAPI`, as Java, which this release
        /// refuses (Kerberos is not supported): set it. See the README's
        /// "Security".
        fn sasl_mechanism;

        // Syntax checked by `set`; matched to the mechanism by `validate`.
        // Builder: mod.rs.
        "sasl.jaas.config": Password = "", Impl, "the JAAS login module and its options (PlainLoginModule, ScramLoginModule, OAuthBearerLoginModule)";
        JaasText => sasl_jaas_config: Option<Password> = None;

        "sasl.username": String = "", Impl, "librdkafka's: the SASL user name for PLAIN and SCRAM (instead of sasl.jaas.config); not a Java key";
        OptionalText => sasl_username: Option<String> = None;

        "sasl.password": Password = "", Impl, "librdkafka's: the SASL password for PLAIN and SCRAM (instead of sasl.jaas.config); not a Java key";
        Secret => sasl_password: Option<Password> = None;
    }

    extra {
        /// What [`oauth_token_provider`](Self::oauth_token_provider) set.
        oauth_token_provider: Option<crate::sasl::TokenProvider> = None;
        /// The SASL settings `validate` derived (SASL_* protocols only).
        sasl: Option<Arc<crate::sasl::Sasl>> = None;
        /// What [`statistics_callback`](Self::statistics_callback) set.
        statistics_callback: Option<StatsCallback> = None;
        /// The TLS settings, built (every file read) by `validate` when
        /// `security.protocol` uses TLS.
        tls: Option<Arc<crate::io::tls::TlsClient>> = None;
    }

    checked {
        "partitioner.availability.timeout.ms": Long = "0", Partial("0 (partition availability tracking is planned)"), "when a broker that takes no records is avoided";
        Int::<i64>::new(0, i64::MAX), only "0";
        "compression.lz4.level": Int = "9", NoEffect("the lz4 encoder (lz4_flex) has one level, like Java's default"), "lz4 level: 1-17";
        Int::<i32>::new(1, 17);
        "transaction.two.phase.commit.enable": Boolean = "false", Partial("false"), "two-phase commit with an external coordinator (KIP-939)";
        Bool, only "false";
        "client.dns.lookup": String = "use_all_dns_ips", Partial("use_all_dns_ips"), "how broker host names are resolved";
        DNS_LOOKUP, only "use_all_dns_ips";
        "interceptor.classes": List = "", Partial("an empty list (Java classes cannot be loaded here: add Rust interceptors with Producer::with_interceptor)"), "producer interceptors, by class name";
        List, only "";
        "metric.reporters": List = "", Partial("an empty list (Java reporters cannot be loaded here: read Producer::metrics or set a statistics callback)"), "metric reporters, by class name";
        List, only "";
        "metrics.recording.level": String = "INFO", Partial("INFO (every metric this release has is an INFO one)"), "which metrics are recorded: INFO, DEBUG, TRACE";
        RECORDING_LEVEL, only "INFO";
        "enable.metrics.push": Boolean = "true", Partial("false (client metrics push, KIP-714, is not implemented)"), "push client metrics to the cluster (KIP-714)";
        Bool, only "false";
        "auto.include.jmx.reporter": Boolean = "true", Partial("false (there is no JMX)"), "register metrics with JMX";
        Bool, only "false";
        "ssl.cipher.suites": List = "", Partial("an empty list (rustls's default suites)"), "the TLS cipher suites allowed";
        List, only "";
        "ssl.keymanager.algorithm": String = "SunX509", Partial("SunX509 (rustls reads the PEM key itself)"), "the key manager factory's algorithm";
        Text, only "SunX509";
        "ssl.trustmanager.algorithm": String = "PKIX", Partial("PKIX (rustls's webpki verifies the chain as PKIX)"), "the trust manager factory's algorithm";
        Text, only "PKIX";
    }

    refused {
        "security.providers": String = "", NotYet(TLS), "security provider creators, by class name";
        "config.providers": List = "", NotYet("config providers are not planned"), "configuration providers, by name";
        "ssl.provider": String = "", NotYet(TLS), "the TLS provider";
        "ssl.keystore.password": Password = "", NotYet(PEM_PASSWORD), "the key store's password";
        "ssl.key.password": Password = "", NotYet(KEY_PASSWORD), "the private key's password";
        "ssl.truststore.password": Password = "", NotYet(PEM_PASSWORD), "the trust store's password";
        "ssl.secure.random.implementation": String = "", NotYet(TLS), "the SecureRandom implementation";
        "ssl.engine.factory.class": Class = "", NotYet(TLS), "a custom SSL engine factory";
        "sasl.client.callback.handler.class": Class = "", NotYet(SASL), "a SASL client callback handler";
        "sasl.login.callback.handler.class": Class = "", NotYet(SASL), "a SASL login callback handler";
        "sasl.login.class": Class = "", NotYet(SASL), "a SASL login class";
        "sasl.kerberos.service.name": String = "", NotYet(SASL), "the broker's Kerberos principal name";
        "sasl.kerberos.kinit.cmd": String = "/usr/bin/kinit", NotYet(SASL), "the kinit command";
        "sasl.kerberos.ticket.renew.window.factor": Double = "0.8", NotYet(SASL), "when a Kerberos ticket is renewed, as a share of its lifetime";
        "sasl.kerberos.ticket.renew.jitter": Double = "0.05", NotYet(SASL), "jitter added to the Kerberos renewal time";
        "sasl.kerberos.min.time.before.relogin": Long = "60000", NotYet(SASL), "the least time between Kerberos relogins";
        "sasl.login.refresh.window.factor": Double = "0.8", NotYet(SASL), "when a login is refreshed, as a share of its lifetime";
        "sasl.login.refresh.window.jitter": Double = "0.05", NotYet(SASL), "jitter added to the login refresh time";
        "sasl.login.refresh.min.period.seconds": Short = "60", NotYet(SASL), "the least time between login refreshes";
        "sasl.login.refresh.buffer.seconds": Short = "300", NotYet(SASL), "how long before expiry a login is refreshed";
        "sasl.login.connect.timeout.ms": Int = "", NotYet(SASL), "the OAuth login's connect timeout";
        "sasl.login.read.timeout.ms": Int = "", NotYet(SASL), "the OAuth login's read timeout";
        "sasl.login.retry.backoff.ms": Long = "100", NotYet(SASL), "the first wait before an OAuth login retry";
        "sasl.login.retry.backoff.max.ms": Long = "10000", NotYet(SASL), "the longest wait before an OAuth login retry";
        "sasl.oauthbearer.scope.claim.name": String = "scope", NotYet(SASL), "the JWT claim that holds the scope";
        "sasl.oauthbearer.sub.claim.name": String = "sub", NotYet(SASL), "the JWT claim that holds the subject";
        "sasl.oauthbearer.token.endpoint.url": String = "", NotYet(SASL), "the OAuth token endpoint";
        "sasl.oauthbearer.jwks.endpoint.url": String = "", NotYet(SASL), "the OAuth JWKS endpoint";
        "sasl.oauthbearer.jwks.endpoint.refresh.ms": Long = "3600000", NotYet(SASL), "how often the JWKS are fetched";
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms": Long = "100", NotYet(SASL), "the first wait before a JWKS retry";
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms": Long = "10000", NotYet(SASL), "the longest wait before a JWKS retry";
        "sasl.oauthbearer.clock.skew.seconds": Int = "30", NotYet(SASL), "clock skew allowed when checking a JWT";
        "sasl.oauthbearer.expected.audience": List = "", NotYet(SASL), "the audiences a JWT must name";
        "sasl.oauthbearer.expected.issuer": String = "", NotYet(SASL), "the issuer a JWT must name";
        "sasl.oauthbearer.header.urlencode": Boolean = "false", NotYet(SASL), "URL-encode the OAuth client credentials";
    }
}
