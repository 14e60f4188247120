//! [`ProducerConfig`]: Java's producer property names and defaults, set from
//! key/value pairs, a Java `.properties` file, or typed builder methods, and
//! validated as Java validates them.
//!
//! Every key of Java's `ProducerConfig` is known here. Each is in one of
//! four states, listed in [`ProducerConfig::keys`]:
//!
//! * implemented: it does what Java's does;
//! * accepted without effect: validated as Java validates it, but it does
//!   nothing yet (`compression.lz4.level`);
//! * partly implemented: the values that match what this release does are
//!   accepted (`security.protocol=PLAINTEXT`, ...),
//!   and any other value is refused with [`Error::NotSupportedYet`];
//! * not yet: any value is refused with [`Error::NotSupportedYet`].
//!
//! Nothing is silently ignored. An unknown key is an [`Error::Config`] that
//! names it (Java only logs a warning; a typo that silently falls back to a
//! default is what we want to avoid).
//!
//! `enable.idempotence` defaults to `true`, as Java's since 3.0, with
//! Java's rule for conflicts: `acks` other than `all`, `retries=0` or more
//! than 5 requests in flight are config errors when idempotence was set
//! explicitly, and turn it off (with a log line) when it was left at its
//! default.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::metrics::{MetricsSnapshot, StatisticsCallback, Windows};
use crate::partitioner::{LibrdkafkaPartitioner, Partitioner};
use crate::protocol::compression::Compression;

/// Java's `acks`: how many replicas must have the record before the broker
/// answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: the broker does not answer; a record completes once it is
    /// written to the socket, with offset -1.
    None,
    /// `acks=1`: the leader has written it.
    Leader,
    /// `acks=all` (or `-1`): every in-sync replica has it. The default.
    All,
}

/// Java's `metadata.recovery.strategy`: what the producer does when no
/// broker it knows of answers a metadata request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataRecoveryStrategy {
    /// `none`: keep asking the brokers of the last metadata; the bootstrap
    /// servers are used only until the first metadata arrives.
    None,
    /// `rebootstrap` (Kafka 4's default): fall back to the bootstrap
    /// servers once no known broker answers, or first of all once no
    /// metadata has arrived for `metadata.recovery.rebootstrap.trigger.ms`.
    Rebootstrap,
}

impl Acks {
    /// The value sent in a Produce request.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// What `partitioner.class` (or [`ProducerConfig::partitioner`]) chose.
#[derive(Clone, Default)]
pub enum PartitionerChoice {
    /// Java's built-in: murmur2 for keyed records, uniform sticky (KIP-794)
    /// for records without a key.
    #[default]
    BuiltIn,
    /// Java's `RoundRobinPartitioner`.
    RoundRobin,
    /// A partitioner of the caller's.
    Custom(Arc<dyn Partitioner>),
}

impl fmt::Debug for PartitionerChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionerChoice::BuiltIn => f.write_str("BuiltIn"),
            PartitionerChoice::RoundRobin => f.write_str("RoundRobin"),
            PartitionerChoice::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// How far this release implements a configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Support {
    /// Implemented as in Java.
    Implemented,
    /// Accepted and validated as Java does, but without effect in this
    /// release (the text says why).
    NoEffect(&'static str),
    /// Only the listed values are accepted; others are refused with
    /// [`Error::NotSupportedYet`].
    Partial(&'static str),
    /// Refused with [`Error::NotSupportedYet`] whatever the value.
    NotYet(&'static str),
}

/// The type of a key's value, as Java's `ConfigDef` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `true` or `false`.
    Boolean,
    /// Any string (an enumerated choice is a string too, as in Java).
    String,
    /// A 16-bit integer.
    Short,
    /// A 32-bit integer.
    Int,
    /// A 64-bit integer (Java's durations in milliseconds are longs).
    Long,
    /// A floating-point number.
    Double,
    /// Comma-separated values.
    List,
    /// A Java class name.
    Class,
    /// A secret: never printed.
    Password,
}

/// One configuration key: its Java name, Java's default, its type, its
/// support and what it does.
#[derive(Debug, Clone, Copy)]
pub struct KeyInfo {
    /// The property name.
    pub name: &'static str,
    /// Java's default, as Java documents it (`""` for none/null).
    pub java_default: &'static str,
    /// The type of its value.
    pub kind: Kind,
    /// How far this release implements it.
    pub support: Support,
    /// What it does, in one line.
    pub doc: &'static str,
}

macro_rules! keys {
    ($(($name:literal, $default:literal, $kind:ident, $support:expr, $doc:literal)),* $(,)?) => {
        const KEYS: &[KeyInfo] = &[$(KeyInfo {
            name: $name,
            java_default: $default,
            kind: Kind::$kind,
            support: $support,
            doc: $doc,
        }),*];
    };
}

use Support::{Implemented as Impl, NoEffect, NotYet, Partial};

const TLS: &str = "TLS is planned (rustls); use security.protocol=PLAINTEXT";
const SASL: &str = "SASL is planned; use security.protocol=PLAINTEXT";

keys! {
    ("bootstrap.servers", "", List, Impl, "host:port pairs to ask for the cluster's metadata first"),
    ("client.id", "", String, Impl, "the name brokers log for this producer (default producer-N)"),
    ("acks", "all", String, Impl, "acknowledgements a write needs: all (-1), 1 (the leader) or 0 (none)"),
    ("linger.ms", "5", Long, Impl, "how long a batch waits for more records before it is sent"),
    ("batch.size", "16384", Int, Impl, "bytes of records per partition batch"),
    ("buffer.memory", "33554432", Long, Impl, "bytes of records buffered before send blocks"),
    ("max.block.ms", "60000", Long, Impl, "how long send and partitions_for block for metadata or memory"),
    ("max.request.size", "1048576", Int, Impl, "the largest Produce request, and so the largest record, in bytes"),
    ("request.timeout.ms", "30000", Int, Impl, "how long a request waits for its answer before it is retried"),
    ("delivery.timeout.ms", "120000", Int, Impl, "how long a record may take from send to its outcome, retries included"),
    ("retries", "2147483647", Int, Impl, "how many times a failed batch is sent again"),
    ("retry.backoff.ms", "100", Long, Impl, "the first wait before a retry (KIP-580 backoff)"),
    ("retry.backoff.max.ms", "1000", Long, Impl, "the longest wait before a retry"),
    ("max.in.flight.requests.per.connection", "5", Int, Impl, "unanswered Produce requests per broker connection"),
    ("metadata.max.age.ms", "300000", Long, Impl, "how often metadata is refreshed even when nothing asks for it"),
    ("metadata.max.idle.ms", "300000", Long, Impl, "how long a topic nothing is sent to stays in the metadata"),
    ("partitioner.class", "", Class, Impl, "the partitioner: unset (built-in), RoundRobinPartitioner or a librdkafka name"),
    ("partitioner.adaptive.partitioning.enable", "true", Boolean, Impl, "keyless records favour brokers with shorter queues"),
    ("partitioner.ignore.keys", "false", Boolean, Impl, "place keyed records as if they had no key"),
    ("partitioner.availability.timeout.ms", "0", Long, Partial("0 (partition availability tracking is planned)"), "when a broker that takes no records is avoided"),
    ("key.serializer", "", Class, Impl, "the key serializer, by Java class name"),
    ("value.serializer", "", Class, Impl, "the value serializer, by Java class name"),
    ("reconnect.backoff.ms", "50", Long, Impl, "the first wait before reconnecting to a broker"),
    ("reconnect.backoff.max.ms", "1000", Long, Impl, "the longest wait before reconnecting to a broker"),
    ("socket.connection.setup.timeout.ms", "10000", Long, Impl, "how long a connection may take to open, at first"),
    ("socket.connection.setup.timeout.max.ms", "30000", Long, Impl, "how long a connection may take to open, at most"),
    ("connections.max.idle.ms", "540000", Long, Impl, "idle connections are closed after this long (-1: never)"),
    ("compression.type", "none", String, Impl, "how batches are compressed: none, gzip, snappy, lz4, zstd"),
    ("compression.gzip.level", "-1", Int, Impl, "gzip level: -1 (default) or 1-9"),
    ("compression.lz4.level", "9", Int, NoEffect("the lz4 encoder (lz4_flex) has one level, like Java's default"), "lz4 level: 1-17"),
    ("compression.zstd.level", "3", Int, Impl, "zstd level: -131072 to 22"),
    ("enable.idempotence", "true", Boolean, Impl, "each record is written once and in order despite retries"),
    ("transactional.id", "", String, Impl, "makes the producer transactional under this id"),
    ("transaction.timeout.ms", "60000", Int, Impl, "how long a transaction may stay open before the coordinator aborts it"),
    ("transaction.two.phase.commit.enable", "false", Boolean, Partial("false"), "two-phase commit with an external coordinator (KIP-939)"),
    ("client.dns.lookup", "use_all_dns_ips", String, Partial("use_all_dns_ips"), "how broker host names are resolved"),
    ("metadata.recovery.strategy", "rebootstrap", String, Impl, "what to do when no known broker answers: rebootstrap or none"),
    ("metadata.recovery.rebootstrap.trigger.ms", "300000", Long, Impl, "how long metadata may fail before rebootstrapping"),
    ("send.buffer.bytes", "131072", Int, Impl, "SO_SNDBUF of broker sockets (-1: the OS default)"),
    ("receive.buffer.bytes", "32768", Int, Impl, "SO_RCVBUF of broker sockets (-1: the OS default)"),
    ("interceptor.classes", "", List, Partial("an empty list (Java classes cannot be loaded here: add Rust interceptors with Producer::with_interceptor)"), "producer interceptors, by class name"),
    ("metric.reporters", "", List, Partial("an empty list (Java reporters cannot be loaded here: read Producer::metrics or set a statistics callback)"), "metric reporters, by class name"),
    ("metrics.num.samples", "2", Int, Impl, "samples kept per metric"),
    ("metrics.sample.window.ms", "30000", Long, Impl, "the window a metric sample covers"),
    ("metrics.recording.level", "INFO", String, Partial("INFO (every metric this release has is an INFO one)"), "which metrics are recorded: INFO, DEBUG, TRACE"),
    ("statistics.interval.ms", "0", Int, Impl, "librdkafka's: how often the statistics callback gets a metrics snapshot (0: never); not a Java key"),
    ("enable.metrics.push", "true", Boolean, Partial("false (client metrics push, KIP-714, is not implemented)"), "push client metrics to the cluster (KIP-714)"),
    ("auto.include.jmx.reporter", "true", Boolean, Partial("false (there is no JMX)"), "register metrics with JMX"),
    ("security.protocol", "PLAINTEXT", String, Partial("PLAINTEXT (TLS and SASL are planned)"), "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    ("security.providers", "", String, NotYet(TLS), "security provider creators, by class name"),
    ("config.providers", "", List, NotYet("config providers are not planned"), "configuration providers, by name"),
    ("ssl.protocol", "TLSv1.3", String, NotYet(TLS), "the TLS protocol to ask for"),
    ("ssl.enabled.protocols", "TLSv1.2,TLSv1.3", List, NotYet(TLS), "the TLS protocols allowed"),
    ("ssl.provider", "", String, NotYet(TLS), "the TLS provider"),
    ("ssl.cipher.suites", "", List, NotYet(TLS), "the TLS cipher suites allowed"),
    ("ssl.keystore.type", "JKS", String, NotYet(TLS), "the key store's format (JKS, PKCS12, PEM)"),
    ("ssl.keystore.location", "", String, NotYet(TLS), "the key store's file (client certificate)"),
    ("ssl.keystore.password", "", Password, NotYet(TLS), "the key store's password"),
    ("ssl.key.password", "", Password, NotYet(TLS), "the private key's password"),
    ("ssl.keystore.key", "", Password, NotYet(TLS), "the private key, PEM"),
    ("ssl.keystore.certificate.chain", "", Password, NotYet(TLS), "the client certificate chain, PEM"),
    ("ssl.truststore.type", "JKS", String, NotYet(TLS), "the trust store's format (JKS, PKCS12, PEM)"),
    ("ssl.truststore.location", "", String, NotYet(TLS), "the trust store's file (CA certificates)"),
    ("ssl.truststore.password", "", Password, NotYet(TLS), "the trust store's password"),
    ("ssl.truststore.certificates", "", Password, NotYet(TLS), "trusted certificates, PEM"),
    ("ssl.keymanager.algorithm", "SunX509", String, NotYet(TLS), "the key manager factory's algorithm"),
    ("ssl.trustmanager.algorithm", "PKIX", String, NotYet(TLS), "the trust manager factory's algorithm"),
    ("ssl.endpoint.identification.algorithm", "https", String, NotYet(TLS), "host name verification: https, or empty for none"),
    ("ssl.secure.random.implementation", "", String, NotYet(TLS), "the SecureRandom implementation"),
    ("ssl.engine.factory.class", "", Class, NotYet(TLS), "a custom SSL engine factory"),
    ("sasl.mechanism", "GSSAPI", String, NotYet(SASL), "the SASL mechanism (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER, GSSAPI)"),
    ("sasl.jaas.config", "", Password, NotYet(SASL), "the JAAS login module and its options"),
    ("sasl.client.callback.handler.class", "", Class, NotYet(SASL), "a SASL client callback handler"),
    ("sasl.login.callback.handler.class", "", Class, NotYet(SASL), "a SASL login callback handler"),
    ("sasl.login.class", "", Class, NotYet(SASL), "a SASL login class"),
    ("sasl.kerberos.service.name", "", String, NotYet(SASL), "the broker's Kerberos principal name"),
    ("sasl.kerberos.kinit.cmd", "/usr/bin/kinit", String, NotYet(SASL), "the kinit command"),
    ("sasl.kerberos.ticket.renew.window.factor", "0.8", Double, NotYet(SASL), "when a Kerberos ticket is renewed, as a share of its lifetime"),
    ("sasl.kerberos.ticket.renew.jitter", "0.05", Double, NotYet(SASL), "jitter added to the Kerberos renewal time"),
    ("sasl.kerberos.min.time.before.relogin", "60000", Long, NotYet(SASL), "the least time between Kerberos relogins"),
    ("sasl.login.refresh.window.factor", "0.8", Double, NotYet(SASL), "when a login is refreshed, as a share of its lifetime"),
    ("sasl.login.refresh.window.jitter", "0.05", Double, NotYet(SASL), "jitter added to the login refresh time"),
    ("sasl.login.refresh.min.period.seconds", "60", Short, NotYet(SASL), "the least time between login refreshes"),
    ("sasl.login.refresh.buffer.seconds", "300", Short, NotYet(SASL), "how long before expiry a login is refreshed"),
    ("sasl.login.connect.timeout.ms", "", Int, NotYet(SASL), "the OAuth login's connect timeout"),
    ("sasl.login.read.timeout.ms", "", Int, NotYet(SASL), "the OAuth login's read timeout"),
    ("sasl.login.retry.backoff.ms", "100", Long, NotYet(SASL), "the first wait before an OAuth login retry"),
    ("sasl.login.retry.backoff.max.ms", "10000", Long, NotYet(SASL), "the longest wait before an OAuth login retry"),
    ("sasl.oauthbearer.scope.claim.name", "scope", String, NotYet(SASL), "the JWT claim that holds the scope"),
    ("sasl.oauthbearer.sub.claim.name", "sub", String, NotYet(SASL), "the JWT claim that holds the subject"),
    ("sasl.oauthbearer.token.endpoint.url", "", String, NotYet(SASL), "the OAuth token endpoint"),
    ("sasl.oauthbearer.jwks.endpoint.url", "", String, NotYet(SASL), "the OAuth JWKS endpoint"),
    ("sasl.oauthbearer.jwks.endpoint.refresh.ms", "3600000", Long, NotYet(SASL), "how often the JWKS are fetched"),
    ("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", "100", Long, NotYet(SASL), "the first wait before a JWKS retry"),
    ("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", "10000", Long, NotYet(SASL), "the longest wait before a JWKS retry"),
    ("sasl.oauthbearer.clock.skew.seconds", "30", Int, NotYet(SASL), "clock skew allowed when checking a JWT"),
    ("sasl.oauthbearer.expected.audience", "", List, NotYet(SASL), "the audiences a JWT must name"),
    ("sasl.oauthbearer.expected.issuer", "", String, NotYet(SASL), "the issuer a JWT must name"),
    ("sasl.oauthbearer.header.urlencode", "false", Boolean, NotYet(SASL), "URL-encode the OAuth client credentials"),
}

static CLIENT_ID_SEQUENCE: AtomicUsize = AtomicUsize::new(1);

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
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Keys the caller set explicitly, and the raw values.
    explicit: BTreeMap<&'static str, String>,
    pub(crate) bootstrap_servers: Vec<String>,
    pub(crate) client_id: String,
    pub(crate) acks: Acks,
    pub(crate) linger: Duration,
    pub(crate) batch_size: usize,
    pub(crate) buffer_memory: usize,
    pub(crate) max_block: Duration,
    pub(crate) max_request_size: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) delivery_timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) retry_backoff: Duration,
    pub(crate) retry_backoff_max: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) metadata_max_age: Duration,
    pub(crate) metadata_max_idle: Duration,
    pub(crate) metadata_recovery: MetadataRecoveryStrategy,
    pub(crate) rebootstrap_trigger: Duration,
    pub(crate) partitioner: PartitionerChoice,
    pub(crate) partitioner_adaptive: bool,
    pub(crate) partitioner_ignore_keys: bool,
    pub(crate) key_serializer: Option<&'static str>,
    pub(crate) value_serializer: Option<&'static str>,
    pub(crate) reconnect_backoff: Duration,
    pub(crate) reconnect_backoff_max: Duration,
    pub(crate) connection_setup_timeout: Duration,
    pub(crate) connection_setup_timeout_max: Duration,
    pub(crate) connections_max_idle: Option<Duration>,
    /// `send.buffer.bytes` and `receive.buffer.bytes`: SO_SNDBUF and
    /// SO_RCVBUF for every broker socket; -1 leaves the operating system's
    /// default. At least -1 once validated.
    pub(crate) send_buffer: i32,
    pub(crate) receive_buffer: i32,
    pub(crate) transaction_timeout: Duration,
    /// `transactional.id`: `Some` makes the producer transactional (and
    /// idempotent); empty is Java's null.
    pub(crate) transactional_id: Option<String>,
    /// `compression.type` and the levels, combined by
    /// [`compression_codec`](ProducerConfig::compression_codec).
    /// `enable.idempotence`: `true` by default; once validated, false if
    /// a conflicting setting turned the default off.
    pub(crate) idempotence: bool,
    pub(crate) compression_type: &'static str,
    pub(crate) gzip_level: i32,
    pub(crate) zstd_level: i32,
    /// `metrics.sample.window.ms` and `metrics.num.samples`.
    pub(crate) metrics_windows: Windows,
    /// `statistics.interval.ms`: zero is off.
    pub(crate) statistics_interval: Duration,
    /// What [`statistics_callback`](Self::statistics_callback) set.
    pub(crate) statistics_callback: Option<StatsCallback>,
}

/// The statistics callback, printable in the configuration's `Debug`.
#[derive(Clone)]
pub(crate) struct StatsCallback(pub(crate) StatisticsCallback);

impl fmt::Debug for StatsCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatisticsCallback(..)")
    }
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig::new()
    }
}

const MAX_INT: u64 = i32::MAX as u64;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl ProducerConfig {
    /// Java's defaults; `bootstrap.servers` must still be set.
    pub fn new() -> Self {
        ProducerConfig {
            explicit: BTreeMap::new(),
            bootstrap_servers: Vec::new(),
            client_id: String::new(),
            acks: Acks::All,
            linger: ms(5),
            batch_size: 16384,
            buffer_memory: 32 * 1024 * 1024,
            max_block: ms(60_000),
            max_request_size: 1024 * 1024,
            request_timeout: ms(30_000),
            delivery_timeout: ms(120_000),
            retries: i32::MAX as u32,
            retry_backoff: ms(100),
            retry_backoff_max: ms(1000),
            max_in_flight: 5,
            metadata_max_age: ms(300_000),
            metadata_max_idle: ms(300_000),
            metadata_recovery: MetadataRecoveryStrategy::Rebootstrap,
            rebootstrap_trigger: ms(300_000),
            partitioner: PartitionerChoice::BuiltIn,
            partitioner_adaptive: true,
            partitioner_ignore_keys: false,
            key_serializer: None,
            value_serializer: None,
            reconnect_backoff: ms(50),
            reconnect_backoff_max: ms(1000),
            connection_setup_timeout: ms(10_000),
            connection_setup_timeout_max: ms(30_000),
            connections_max_idle: Some(ms(540_000)),
            send_buffer: 128 * 1024,
            receive_buffer: 32 * 1024,
            transaction_timeout: ms(60_000),
            transactional_id: None,
            idempotence: true,
            compression_type: "none",
            gzip_level: -1,
            zstd_level: 3,
            metrics_windows: Windows {
                window_ms: 30_000,
                samples: 2,
            },
            statistics_interval: Duration::ZERO,
            statistics_callback: None,
        }
    }

    /// Every key this release knows, with Java's default and its support.
    pub fn keys() -> &'static [KeyInfo] {
        KEYS
    }

    /// A configuration from key/value pairs, applied in order over the
    /// defaults.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unknown key or an invalid value, and
    /// [`Error::NotSupportedYet`] for a setting this release does not do.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut c = ProducerConfig::new();
        for (k, v) in pairs {
            c.set(k.as_ref(), v.as_ref())?;
        }
        Ok(c)
    }

    /// A configuration from the text of a Java `.properties` file:
    /// `key=value` or `key: value` lines, `#` and `!` comments, and
    /// backslash line continuations.
    ///
    /// # Errors
    ///
    /// As [`ProducerConfig::from_pairs`], and [`Error::Config`] for a line
    /// with no value.
    pub fn from_properties(text: &str) -> Result<Self> {
        Self::from_pairs(parse_properties(text)?)
    }

    /// A configuration from a Java `.properties` file.
    ///
    /// # Errors
    ///
    /// As [`ProducerConfig::from_properties`], and [`Error::Config`] (key
    /// `"properties file"`) if the file cannot be read.
    pub fn from_properties_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                "properties file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        Self::from_properties(&text)
    }

    /// Sets one property by its Java name.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unknown key or an invalid value (the error
    /// names the key), [`Error::NotSupportedYet`] for a setting this release
    /// does not do.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        let info = KEYS
            .iter()
            .find(|k| k.name == key)
            .ok_or_else(|| Error::config(key, unknown_key_message(key)))?;
        let v = value.trim();
        let name = info.name;
        match info.support {
            Support::NotYet(why) => return Err(not_yet(name, v, why)),
            Support::Partial(_) | Support::Implemented | Support::NoEffect(_) => {}
        }
        match name {
            "bootstrap.servers" => self.bootstrap_servers = parse_list(v),
            "client.id" => self.client_id = v.to_owned(),
            "acks" => {
                self.acks = match v.to_ascii_lowercase().as_str() {
                    "all" | "-1" => Acks::All,
                    "1" => Acks::Leader,
                    "0" => Acks::None,
                    _ => return Err(invalid(name, v, "must be one of all, -1, 0, 1")),
                }
            }
            "linger.ms" => self.linger = ms(parse_int(name, v, 0, MAX_INT)?),
            "batch.size" => self.batch_size = parse_int(name, v, 0, MAX_INT)? as usize,
            "buffer.memory" => {
                self.buffer_memory = parse_int(name, v, 0, i64::MAX as u64)? as usize
            }
            "max.block.ms" => self.max_block = ms(parse_int(name, v, 0, i64::MAX as u64)?),
            "max.request.size" => self.max_request_size = parse_int(name, v, 0, MAX_INT)? as usize,
            "request.timeout.ms" => self.request_timeout = ms(parse_int(name, v, 0, MAX_INT)?),
            "delivery.timeout.ms" => self.delivery_timeout = ms(parse_int(name, v, 0, MAX_INT)?),
            "retries" => self.retries = parse_int(name, v, 0, MAX_INT)? as u32,
            "retry.backoff.ms" => self.retry_backoff = ms(parse_int(name, v, 0, i64::MAX as u64)?),
            "retry.backoff.max.ms" => {
                self.retry_backoff_max = ms(parse_int(name, v, 0, i64::MAX as u64)?)
            }
            "max.in.flight.requests.per.connection" => {
                self.max_in_flight = parse_int(name, v, 1, MAX_INT)? as usize
            }
            "metadata.max.age.ms" => {
                self.metadata_max_age = ms(parse_int(name, v, 0, i64::MAX as u64)?)
            }
            "metadata.max.idle.ms" => {
                self.metadata_max_idle = ms(parse_int(name, v, 5000, i64::MAX as u64)?)
            }
            "partitioner.class" => {
                self.partitioner = match v {
                    "" => PartitionerChoice::BuiltIn,
                    "org.apache.kafka.clients.producer.RoundRobinPartitioner"
                    | "RoundRobinPartitioner" => PartitionerChoice::RoundRobin,
                    // librdkafka's names, for services that move from it.
                    lib if LibrdkafkaPartitioner::from_name(lib).is_some() => {
                        PartitionerChoice::Custom(Arc::new(
                            LibrdkafkaPartitioner::from_name(lib).expect("checked"),
                        ))
                    }
                    "org.apache.kafka.clients.producer.internals.DefaultPartitioner"
                    | "org.apache.kafka.clients.producer.UniformStickyPartitioner" => {
                        return Err(invalid(
                            name,
                            v,
                            "deprecated in Java 3.3 and removed in 4.0; leave partitioner.class unset for the built-in partitioner",
                        ))
                    }
                    _ => {
                        return Err(invalid(
                            name,
                            v,
                            "a Java class cannot be loaded here: pass a Rust partitioner with ProducerConfig::partitioner, or use RoundRobinPartitioner or one of librdkafka's (consistent, consistent_random, murmur2, murmur2_random, fnv1a, fnv1a_random)",
                        ))
                    }
                }
            }
            "partitioner.adaptive.partitioning.enable" => {
                self.partitioner_adaptive = parse_bool(name, v)?
            }
            "partitioner.ignore.keys" => self.partitioner_ignore_keys = parse_bool(name, v)?,
            "partitioner.availability.timeout.ms" => {
                if parse_int(name, v, 0, i64::MAX as u64)? != 0 {
                    return Err(partial(info, v));
                }
            }
            "key.serializer" => self.key_serializer = Some(parse_serializer(name, v)?),
            "value.serializer" => self.value_serializer = Some(parse_serializer(name, v)?),
            "reconnect.backoff.ms" => {
                self.reconnect_backoff = ms(parse_int(name, v, 0, i64::MAX as u64)?)
            }
            "reconnect.backoff.max.ms" => {
                self.reconnect_backoff_max = ms(parse_int(name, v, 0, i64::MAX as u64)?)
            }
            "socket.connection.setup.timeout.ms" => {
                self.connection_setup_timeout = ms(parse_int(name, v, 0, i64::MAX as u64)?)
            }
            "socket.connection.setup.timeout.max.ms" => {
                self.connection_setup_timeout_max = ms(parse_int(name, v, 0, i64::MAX as u64)?)
            }
            "connections.max.idle.ms" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| invalid(name, v, "expected a number of milliseconds"))?;
                self.connections_max_idle = (n >= 0).then(|| ms(n as u64));
            }
            "compression.type" => {
                self.compression_type = match v.to_ascii_lowercase().as_str() {
                    "none" => "none",
                    "gzip" => "gzip",
                    "snappy" => "snappy",
                    "lz4" => "lz4",
                    "zstd" => "zstd",
                    _ => {
                        return Err(invalid(
                            name,
                            v,
                            "must be one of none, gzip, snappy, lz4, zstd",
                        ))
                    }
                }
            }
            "compression.gzip.level" => {
                let l = parse_signed(name, v)?;
                if !(l == -1 || (1..=9).contains(&l)) {
                    return Err(invalid(name, v, "must be -1 or in 1..=9"));
                }
                self.gzip_level = l as i32;
            }
            "compression.lz4.level" => {
                parse_int(name, v, 1, 17)?;
            }
            "compression.zstd.level" => {
                let l = parse_signed(name, v)?;
                if !(-131_072..=22).contains(&l) {
                    return Err(invalid(name, v, "must be in -131072..=22"));
                }
                self.zstd_level = l as i32;
            }
            "enable.idempotence" => self.idempotence = parse_bool(name, v)?,
            "transaction.timeout.ms" => {
                self.transaction_timeout = ms(parse_int(name, v, 0, MAX_INT)?)
            }
            "transactional.id" => {
                self.transactional_id = (!v.is_empty()).then(|| v.to_owned());
            }
            "transaction.two.phase.commit.enable" | "auto.include.jmx.reporter" => {
                if parse_bool(name, v)? {
                    return Err(partial(info, v));
                }
            }
            "enable.metrics.push" => {
                if parse_bool(name, v)? {
                    return Err(partial(info, v));
                }
            }
            "send.buffer.bytes" => self.send_buffer = parse_buffer_size(name, v)?,
            "receive.buffer.bytes" => self.receive_buffer = parse_buffer_size(name, v)?,
            "interceptor.classes" | "metric.reporters" => {
                if !parse_list(v).is_empty() {
                    return Err(partial(info, v));
                }
            }
            "metadata.recovery.strategy" => {
                self.metadata_recovery = match v.to_ascii_lowercase().as_str() {
                    "none" => MetadataRecoveryStrategy::None,
                    "rebootstrap" => MetadataRecoveryStrategy::Rebootstrap,
                    _ => return Err(invalid(name, v, "must be one of none, rebootstrap")),
                }
            }
            "metadata.recovery.rebootstrap.trigger.ms" => {
                self.rebootstrap_trigger = ms(parse_int(name, v, 0, i64::MAX as u64)?)
            }
            "metrics.num.samples" => {
                self.metrics_windows.samples = parse_int(name, v, 1, MAX_INT)? as usize
            }
            "metrics.sample.window.ms" => {
                self.metrics_windows.window_ms = parse_int(name, v, 0, i64::MAX as u64)?
            }
            "statistics.interval.ms" => {
                // librdkafka's range: 0 (off) to 86400000.
                self.statistics_interval = ms(parse_int(name, v, 0, 86_400_000)?)
            }
            "metrics.recording.level" | "client.dns.lookup" => {
                if !v.eq_ignore_ascii_case(info.java_default) {
                    return Err(partial(info, v));
                }
            }
            "security.protocol" => match v.to_ascii_uppercase().as_str() {
                "PLAINTEXT" => {}
                "SSL" | "SASL_PLAINTEXT" | "SASL_SSL" => return Err(partial(info, v)),
                _ => {
                    return Err(invalid(
                        name,
                        v,
                        "must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
                    ))
                }
            },
            _ => unreachable!("key {name} is in KEYS but not handled"),
        }
        self.explicit.insert(name, v.to_owned());
        Ok(self)
    }

    /// The value of a key as this configuration holds it: what was set, or
    /// the effective default. `None` for an unknown key.
    pub fn get(&self, key: &str) -> Option<String> {
        let info = KEYS.iter().find(|k| k.name == key)?;
        if let Some(v) = self.explicit.get(info.name) {
            return Some(v.clone());
        }
        let millis = |d: Duration| d.as_millis().to_string();
        Some(match info.name {
            "bootstrap.servers" => self.bootstrap_servers.join(","),
            "client.id" => self.client_id.clone(),
            "acks" => match self.acks {
                Acks::All => "all".into(),
                Acks::Leader => "1".into(),
                Acks::None => "0".into(),
            },
            "linger.ms" => millis(self.linger),
            "batch.size" => self.batch_size.to_string(),
            "buffer.memory" => self.buffer_memory.to_string(),
            "max.block.ms" => millis(self.max_block),
            "max.request.size" => self.max_request_size.to_string(),
            "request.timeout.ms" => millis(self.request_timeout),
            "delivery.timeout.ms" => millis(self.delivery_timeout),
            "retries" => self.retries.to_string(),
            "retry.backoff.ms" => millis(self.retry_backoff),
            "retry.backoff.max.ms" => millis(self.retry_backoff_max),
            "max.in.flight.requests.per.connection" => self.max_in_flight.to_string(),
            "metadata.max.age.ms" => millis(self.metadata_max_age),
            "metadata.max.idle.ms" => millis(self.metadata_max_idle),
            "metadata.recovery.strategy" => match self.metadata_recovery {
                MetadataRecoveryStrategy::None => "none".into(),
                MetadataRecoveryStrategy::Rebootstrap => "rebootstrap".into(),
            },
            "metadata.recovery.rebootstrap.trigger.ms" => millis(self.rebootstrap_trigger),
            "partitioner.adaptive.partitioning.enable" => self.partitioner_adaptive.to_string(),
            "partitioner.ignore.keys" => self.partitioner_ignore_keys.to_string(),
            "enable.idempotence" => self.idempotence.to_string(),
            "transactional.id" => self.transactional_id.clone().unwrap_or_default(),
            "transaction.timeout.ms" => millis(self.transaction_timeout),
            "enable.metrics.push" | "auto.include.jmx.reporter" => "false".into(),
            "compression.type" => self.compression_type.into(),
            "send.buffer.bytes" => self.send_buffer.to_string(),
            "receive.buffer.bytes" => self.receive_buffer.to_string(),
            "interceptor.classes" | "metric.reporters" => String::new(),
            _ => info.java_default.to_owned(),
        })
    }

    /// The codec and level batches are compressed with
    /// (`compression.type` with its `compression.*.level`).
    pub(crate) fn compression_codec(&self) -> Compression {
        match self.compression_type {
            "gzip" => Compression::Gzip(self.gzip_level),
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd(self.zstd_level),
            _ => Compression::None,
        }
    }

    /// True if the caller set `key` explicitly.
    pub fn is_set(&self, key: &str) -> bool {
        self.explicit.keys().any(|k| *k == key)
    }

    fn mark(mut self, key: &'static str, value: impl ToString) -> Self {
        self.explicit.insert(key, value.to_string());
        self
    }

    /// `bootstrap.servers`: comma-separated `host:port` pairs to ask for the
    /// cluster's metadata first (not all brokers need be listed). Required;
    /// there is no default.
    #[must_use]
    pub fn bootstrap_servers(mut self, servers: impl Into<String>) -> Self {
        let s = servers.into();
        self.bootstrap_servers = parse_list(&s);
        self.mark("bootstrap.servers", s)
    }

    /// `client.id`: the name brokers log and quote for this producer, and
    /// the prefix of its threads' names. Defaults to `producer-N`, as Java.
    #[must_use]
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        let v = self.client_id.clone();
        self.mark("client.id", v)
    }

    /// `acks`: how many replicas must have a record before the broker
    /// answers. Defaults to [`Acks::All`], as Java since 3.0.
    #[must_use]
    pub fn acks(mut self, acks: Acks) -> Self {
        self.acks = acks;
        self.mark("acks", acks.as_i16())
    }

    /// `linger.ms`: how long a batch waits for more records before it is
    /// sent. Defaults to 5 ms, as Java since 4.0.
    #[must_use]
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self.mark("linger.ms", linger.as_millis())
    }

    /// `batch.size`: the bytes of records a batch fills before it is sent
    /// (compressed bytes, with compression). Defaults to 16384.
    #[must_use]
    pub fn batch_size(mut self, bytes: usize) -> Self {
        self.batch_size = bytes;
        self.mark("batch.size", bytes)
    }

    /// `buffer.memory`: the bytes all waiting batches may take; when it is
    /// full, `send` blocks up to `max.block.ms`. Defaults to 33554432
    /// (32 MiB).
    #[must_use]
    pub fn buffer_memory(mut self, bytes: usize) -> Self {
        self.buffer_memory = bytes;
        self.mark("buffer.memory", bytes)
    }

    /// `max.block.ms`: the longest `send` and `partitions_for` block, for
    /// metadata and for memory together. Defaults to 60000 ms.
    #[must_use]
    pub fn max_block(mut self, d: Duration) -> Self {
        self.max_block = d;
        self.mark("max.block.ms", d.as_millis())
    }

    /// `max.request.size`: the largest request, and so the largest record,
    /// in bytes. Defaults to 1048576.
    #[must_use]
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self.mark("max.request.size", bytes)
    }

    /// `request.timeout.ms`: how long a request may wait for its answer
    /// before its connection is dropped and its batches retried. Defaults to
    /// 30000 ms.
    #[must_use]
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self.mark("request.timeout.ms", d.as_millis())
    }

    /// `delivery.timeout.ms`: the most time a record may take from `send` to
    /// its outcome, retries included; at least `linger.ms` plus
    /// `request.timeout.ms`. Defaults to 120000 ms.
    #[must_use]
    pub fn delivery_timeout(mut self, d: Duration) -> Self {
        self.delivery_timeout = d;
        self.mark("delivery.timeout.ms", d.as_millis())
    }

    /// `retries`: how many times a batch is sent again after a retriable
    /// error, within `delivery.timeout.ms`. Defaults to 2147483647.
    #[must_use]
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self.mark("retries", n)
    }

    /// `retry.backoff.ms`: the first wait before a retry (it doubles per
    /// attempt, with jitter, up to `retry.backoff.max.ms`). Defaults to
    /// 100 ms.
    #[must_use]
    pub fn retry_backoff(mut self, d: Duration) -> Self {
        self.retry_backoff = d;
        self.mark("retry.backoff.ms", d.as_millis())
    }

    /// `retry.backoff.max.ms`: the longest wait before a retry. Defaults to
    /// 1000 ms.
    #[must_use]
    pub fn retry_backoff_max(mut self, d: Duration) -> Self {
        self.retry_backoff_max = d;
        self.mark("retry.backoff.max.ms", d.as_millis())
    }

    /// `max.in.flight.requests.per.connection`: requests a connection may
    /// have unanswered; 1 keeps each partition's order across retries.
    /// Defaults to 5.
    #[must_use]
    pub fn max_in_flight_requests_per_connection(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self.mark("max.in.flight.requests.per.connection", n)
    }

    /// `metadata.max.age.ms`: how often metadata is refreshed even when
    /// nothing asks for it. Defaults to 300000 ms.
    #[must_use]
    pub fn metadata_max_age(mut self, d: Duration) -> Self {
        self.metadata_max_age = d;
        self.mark("metadata.max.age.ms", d.as_millis())
    }

    /// `enable.idempotence`: each batch carries a producer id, epoch and
    /// sequence number, so the broker writes a retried batch once and in
    /// order. Needs `acks=all`, `retries > 0` and at most 5 requests in
    /// flight: set explicitly, a conflict is a config error; left at its
    /// default, a conflicting setting turns it off (logged at info, as
    /// Java). Defaults to `true`.
    #[must_use]
    pub fn enable_idempotence(mut self, on: bool) -> Self {
        self.idempotence = on;
        self.mark("enable.idempotence", on)
    }

    /// `transactional.id`: makes the producer transactional (Java's
    /// `transactional.id`): call [`Producer::init_transactions`] once, then
    /// send inside `begin_transaction` / `commit_transaction` (or
    /// `abort_transaction`). The id must be stable across restarts of the
    /// same logical producer: `init_transactions` fences any older producer
    /// with the same id. Implies `enable.idempotence=true` (an explicit
    /// `false` is a configuration error). Defaults to none (not
    /// transactional).
    ///
    /// [`Producer::init_transactions`]: crate::Producer::init_transactions
    #[must_use]
    pub fn transactional_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        self.transactional_id = (!id.is_empty()).then(|| id.clone());
        self.mark("transactional.id", id)
    }

    /// `transaction.timeout.ms`: how long the transaction coordinator lets
    /// a transaction stay open before it aborts it (sent in
    /// InitProducerId; the broker refuses values above its
    /// `transaction.max.timeout.ms`, 15 minutes by default). Defaults to
    /// 60000 ms.
    #[must_use]
    pub fn transaction_timeout(mut self, d: Duration) -> Self {
        self.transaction_timeout = d;
        self.mark("transaction.timeout.ms", d.as_millis())
    }

    /// `compression.type`, with the level for gzip and zstd: how batches
    /// are compressed (each once, when it is sealed for sending).
    /// Defaults to [`Compression::None`].
    #[must_use]
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression_type = c.name();
        self = self.mark("compression.type", c.name());
        match c {
            Compression::Gzip(l) => {
                self.gzip_level = l;
                self.mark("compression.gzip.level", l)
            }
            Compression::Zstd(l) => {
                self.zstd_level = l;
                self.mark("compression.zstd.level", l)
            }
            _ => self,
        }
    }

    /// `reconnect.backoff.ms`: the wait before reconnecting to a broker
    /// after a failed or lost connection; it doubles per failure, with
    /// jitter, up to `reconnect.backoff.max.ms`. Defaults to 50 ms.
    #[must_use]
    pub fn reconnect_backoff(mut self, d: Duration) -> Self {
        self.reconnect_backoff = d;
        self.mark("reconnect.backoff.ms", d.as_millis())
    }

    /// `reconnect.backoff.max.ms`. Defaults to 1000 ms.
    #[must_use]
    pub fn reconnect_backoff_max(mut self, d: Duration) -> Self {
        self.reconnect_backoff_max = d;
        self.mark("reconnect.backoff.max.ms", d.as_millis())
    }

    /// `socket.connection.setup.timeout.ms`: how long a connection attempt
    /// may take; it doubles per consecutive failure up to
    /// `socket.connection.setup.timeout.max.ms`. Defaults to 10000 ms.
    #[must_use]
    pub fn socket_connection_setup_timeout(mut self, d: Duration) -> Self {
        self.connection_setup_timeout = d;
        self.mark("socket.connection.setup.timeout.ms", d.as_millis())
    }

    /// `socket.connection.setup.timeout.max.ms`. Defaults to 30000 ms.
    #[must_use]
    pub fn socket_connection_setup_timeout_max(mut self, d: Duration) -> Self {
        self.connection_setup_timeout_max = d;
        self.mark("socket.connection.setup.timeout.max.ms", d.as_millis())
    }

    /// `connections.max.idle.ms`: a connection that has carried nothing
    /// for this long is closed (the next request opens a new one); `None`
    /// is Java's -1, never. Defaults to 540000 ms (9 minutes).
    #[must_use]
    pub fn connections_max_idle(mut self, d: Option<Duration>) -> Self {
        self.connections_max_idle = d;
        match d {
            Some(d) => self.mark("connections.max.idle.ms", d.as_millis()),
            None => self.mark("connections.max.idle.ms", -1),
        }
    }

    /// `metadata.recovery.strategy`: whether to fall back to the bootstrap
    /// servers when no known broker answers. Defaults to
    /// [`MetadataRecoveryStrategy::Rebootstrap`], as in Kafka 4.
    #[must_use]
    pub fn metadata_recovery_strategy(mut self, s: MetadataRecoveryStrategy) -> Self {
        self.metadata_recovery = s;
        let v = match s {
            MetadataRecoveryStrategy::None => "none",
            MetadataRecoveryStrategy::Rebootstrap => "rebootstrap",
        };
        self.mark("metadata.recovery.strategy", v)
    }

    /// `metadata.recovery.rebootstrap.trigger.ms`: with the `rebootstrap`
    /// strategy, how long without metadata before the bootstrap servers
    /// are asked first. Defaults to 300000 ms (5 minutes).
    #[must_use]
    pub fn metadata_recovery_rebootstrap_trigger(mut self, d: Duration) -> Self {
        self.rebootstrap_trigger = d;
        self.mark("metadata.recovery.rebootstrap.trigger.ms", d.as_millis())
    }

    /// A custom partitioner (Java's `partitioner.class`). Defaults to the
    /// built-in one: murmur2 for keyed records, sticky (KIP-794) for the
    /// others.
    #[must_use]
    pub fn partitioner(mut self, partitioner: Arc<dyn Partitioner>) -> Self {
        self.partitioner = PartitionerChoice::Custom(partitioner);
        self.mark("partitioner.class", "<custom>")
    }

    /// `partitioner.class=RoundRobinPartitioner`: every record to the next
    /// available partition in turn. Not the default (see
    /// [`partitioner`](Self::partitioner)).
    #[must_use]
    pub fn round_robin_partitioner(mut self) -> Self {
        self.partitioner = PartitionerChoice::RoundRobin;
        self.mark(
            "partitioner.class",
            "org.apache.kafka.clients.producer.RoundRobinPartitioner",
        )
    }

    /// `partitioner.ignore.keys`: place keyed records as keyless ones
    /// (sticky). Defaults to `false`.
    #[must_use]
    pub fn partitioner_ignore_keys(mut self, ignore: bool) -> Self {
        self.partitioner_ignore_keys = ignore;
        self.mark("partitioner.ignore.keys", ignore)
    }

    /// `partitioner.adaptive.partitioning.enable`: the sticky partitioner
    /// favours partitions whose brokers keep up. Defaults to `true`.
    #[must_use]
    pub fn partitioner_adaptive_partitioning(mut self, enable: bool) -> Self {
        self.partitioner_adaptive = enable;
        self.mark("partitioner.adaptive.partitioning.enable", enable)
    }

    /// `send.buffer.bytes`: the size of every broker socket's send buffer
    /// (SO_SNDBUF), in bytes, set before it connects; -1 leaves the
    /// operating system's default (and, on Linux, its autotuning). Values
    /// below -1 fail [`Producer::new`](crate::Producer::new) with
    /// [`Error::Config`]. Defaults to 131072, as in Java.
    #[must_use]
    pub fn send_buffer_bytes(mut self, bytes: i32) -> Self {
        self.send_buffer = bytes;
        self.mark("send.buffer.bytes", bytes)
    }

    /// `receive.buffer.bytes`: the size of every broker socket's receive
    /// buffer (SO_RCVBUF), in bytes, set before it connects, so the TCP
    /// window scale agreed in the handshake fits it; -1 leaves the
    /// operating system's default (and, on Linux, its autotuning). Values
    /// below -1 fail [`Producer::new`](crate::Producer::new) with
    /// [`Error::Config`]. Defaults to 32768, as in Java.
    #[must_use]
    pub fn receive_buffer_bytes(mut self, bytes: i32) -> Self {
        self.receive_buffer = bytes;
        self.mark("receive.buffer.bytes", bytes)
    }

    /// `metrics.sample.window.ms`: the window one metric sample covers.
    /// Defaults to 30 s, as Java. See the README's "Metrics".
    #[must_use]
    pub fn metrics_sample_window(mut self, window: Duration) -> Self {
        self.metrics_windows.window_ms = window.as_millis() as u64;
        self.mark("metrics.sample.window.ms", window.as_millis())
    }

    /// `metrics.num.samples`: how many samples a windowed metric keeps (at
    /// least 1). Defaults to 2, as Java.
    #[must_use]
    pub fn metrics_num_samples(mut self, samples: usize) -> Self {
        self.metrics_windows.samples = samples;
        self.mark("metrics.num.samples", samples)
    }

    /// `statistics.interval.ms` (librdkafka's key, not Java's): how often
    /// the [statistics callback](Self::statistics_callback) runs. Zero,
    /// the default, is off.
    #[must_use]
    pub fn statistics_interval(mut self, interval: Duration) -> Self {
        self.statistics_interval = interval;
        self.mark("statistics.interval.ms", interval.as_millis())
    }

    /// librdkafka's `stats_cb`: `callback` gets the producer's
    /// [`MetricsSnapshot`] every `statistics.interval.ms` (which must be
    /// set too, or [`Producer::new`](crate::Producer::new) refuses the
    /// configuration), on a thread of its own (`<client.id>-stats`), from
    /// one interval after `Producer::new` until `close`. A panicking
    /// callback is logged and called again next time.
    ///
    /// ```no_run
    /// use kafka_producer::ProducerConfig;
    /// use std::time::Duration;
    ///
    /// let config = ProducerConfig::new()
    ///     .bootstrap_servers("localhost:9092")
    ///     .statistics_interval(Duration::from_secs(10))
    ///     .statistics_callback(|stats| println!("{}", stats.to_json()));
    /// ```
    #[must_use]
    pub fn statistics_callback(
        mut self,
        callback: impl Fn(&MetricsSnapshot) + Send + Sync + 'static,
    ) -> Self {
        self.statistics_callback = Some(StatsCallback(std::sync::Arc::new(callback)));
        self
    }

    /// Checks the whole configuration as Java's constructor does, and fills
    /// in derived values (the client id, a raised delivery timeout).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first key that is wrong.
    pub(crate) fn validate(mut self) -> Result<Self> {
        let ms_i32 = |d: Duration| d.as_millis() <= MAX_INT as u128;
        if self.bootstrap_servers.is_empty() {
            return Err(Error::config(
                "bootstrap.servers",
                "must be set to at least one host:port",
            ));
        }
        for s in &self.bootstrap_servers {
            parse_host_port(s)?;
        }
        // librdkafka calls stats_cb only with an interval; a callback that
        // could never run, or an interval with nothing to call, is a
        // mistake worth naming.
        match (self.statistics_interval.is_zero(), &self.statistics_callback) {
            (true, Some(_)) => {
                return Err(Error::config(
                    "statistics.interval.ms",
                    "a statistics callback is set, but statistics.interval.ms is 0 (off): set the interval",
                ))
            }
            (false, None) => {
                return Err(Error::config(
                    "statistics.interval.ms",
                    "is set, but no statistics callback is: add one with ProducerConfig::statistics_callback",
                ))
            }
            _ => {}
        }
        // Java: a transactional producer is idempotent; an explicit
        // enable.idempotence=false with a transactional.id is an error.
        if self.transactional_id.is_some() {
            if self.is_set("enable.idempotence") && !self.idempotence {
                return Err(Error::config(
                    "enable.idempotence",
                    "cannot set a transactional.id without also enabling idempotence \
                     (enable.idempotence=false was set explicitly)",
                ));
            }
            self.idempotence = true;
            if self.transaction_timeout.is_zero() || !ms_i32(self.transaction_timeout) {
                return Err(Error::config(
                    "transaction.timeout.ms",
                    "must be between 1 and 2147483647 ms",
                ));
            }
        }
        // Java's rules: left at its default, idempotence gives way to a
        // setting that conflicts with it; set explicitly, the conflict is
        // an error. A transactional producer must be idempotent: for it
        // every conflict is an error.
        if self.idempotence && !self.is_set("enable.idempotence") && self.transactional_id.is_none()
        {
            let conflict = if self.acks != Acks::All {
                Some(("acks", self.acks.as_i16().to_string()))
            } else if self.retries == 0 {
                Some(("retries", "0".to_owned()))
            } else if self.max_in_flight > 5 {
                let n = self.max_in_flight.to_string();
                Some(("max.in.flight.requests.per.connection", n))
            } else {
                None
            };
            if let Some((key, value)) = conflict {
                log::info!(
                    "enable.idempotence will be disabled because {key} is set to {value} \
                     (set enable.idempotence=true to make this an error)"
                );
                self.idempotence = false;
            }
        }
        if self.idempotence {
            if self.acks != Acks::All {
                return Err(Error::config(
                    "acks",
                    "must be all (or -1) for the idempotent producer (enable.idempotence=true)",
                ));
            }
            if self.retries == 0 {
                return Err(Error::config(
                    "retries",
                    "must be greater than 0 for the idempotent producer (enable.idempotence=true)",
                ));
            }
            if self.max_in_flight > 5 {
                return Err(Error::config(
                    "max.in.flight.requests.per.connection",
                    "must be at most 5 for the idempotent producer (enable.idempotence=true)",
                ));
            }
        }
        if self.max_in_flight == 0 {
            return Err(Error::config(
                "max.in.flight.requests.per.connection",
                "must be at least 1",
            ));
        }
        for (key, bytes) in [
            ("send.buffer.bytes", self.send_buffer),
            ("receive.buffer.bytes", self.receive_buffer),
        ] {
            if bytes < -1 {
                return Err(Error::config(
                    key,
                    format!("invalid value `{bytes}`: must be at least -1"),
                ));
            }
        }
        for (key, d) in [
            ("linger.ms", self.linger),
            ("request.timeout.ms", self.request_timeout),
            ("delivery.timeout.ms", self.delivery_timeout),
        ] {
            if !ms_i32(d) {
                return Err(Error::config(key, "must fit in a Java int of milliseconds"));
            }
        }
        if self.metadata_max_idle < ms(5000) {
            return Err(Error::config(
                "metadata.max.idle.ms",
                "must be at least 5000",
            ));
        }
        // Java: delivery.timeout.ms >= linger.ms + request.timeout.ms; an
        // explicit lower value is an error, the default is quietly raised.
        let floor = self.linger.saturating_add(self.request_timeout);
        if self.delivery_timeout < floor {
            if self.is_set("delivery.timeout.ms") {
                return Err(Error::config(
                    "delivery.timeout.ms",
                    format!(
                        "must be at least linger.ms + request.timeout.ms ({} ms)",
                        floor.as_millis()
                    ),
                ));
            }
            log::warn!(
                "delivery.timeout.ms raised to linger.ms + request.timeout.ms = {} ms",
                floor.as_millis()
            );
            self.delivery_timeout = floor;
        }
        // Java (KIP-580): if retry.backoff.ms exceeds retry.backoff.max.ms,
        // the backoff is constant at retry.backoff.ms.
        if self.retry_backoff_max < self.retry_backoff {
            self.retry_backoff_max = self.retry_backoff;
        }
        if self.reconnect_backoff_max < self.reconnect_backoff {
            self.reconnect_backoff_max = self.reconnect_backoff;
        }
        if self.connection_setup_timeout_max < self.connection_setup_timeout {
            self.connection_setup_timeout_max = self.connection_setup_timeout;
        }
        if self.client_id.is_empty() {
            self.client_id = format!(
                "producer-{}",
                CLIENT_ID_SEQUENCE.fetch_add(1, Ordering::Relaxed)
            );
        }
        Ok(self)
    }
}

/// Splits `host:port` (or `[v6]:port`), as `bootstrap.servers` entries are.
pub(crate) fn parse_host_port(s: &str) -> Result<(String, u16)> {
    let bad = || {
        Error::config(
            "bootstrap.servers",
            format!("`{s}` is not a valid host:port"),
        )
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

fn not_yet(key: &str, value: &str, why: &str) -> Error {
    Error::NotSupportedYet {
        key: key.to_owned(),
        value: value.to_owned(),
        detail: why.to_owned(),
    }
}

fn partial(info: &KeyInfo, value: &str) -> Error {
    let accepted = match info.support {
        Support::Partial(a) => a,
        _ => "",
    };
    not_yet(
        info.name,
        value,
        &format!("this release accepts {accepted}"),
    )
}

/// librdkafka property names a user of rust-rdkafka may bring, with the
/// Java key that does the same job here (and how, where it differs).
const LIBRDKAFKA_KEYS: &[(&str, &str)] = &[
    ("metadata.broker.list", "bootstrap.servers"),
    ("queue.buffering.max.ms", "linger.ms"),
    ("message.timeout.ms", "delivery.timeout.ms"),
    ("compression.codec", "compression.type"),
    ("queue.buffering.max.kbytes", "buffer.memory (in bytes)"),
    (
        "queue.buffering.max.messages",
        "buffer.memory (a byte budget, not a count)",
    ),
    ("batch.num.messages", "batch.size (in bytes, not records)"),
    ("message.max.bytes", "max.request.size"),
    ("request.required.acks", "acks"),
    ("message.send.max.retries", "retries"),
    ("socket.timeout.ms", "request.timeout.ms"),
    ("socket.send.buffer.bytes", "send.buffer.bytes"),
    ("socket.receive.buffer.bytes", "receive.buffer.bytes"),
    ("topic.metadata.refresh.interval.ms", "metadata.max.age.ms"),
    (
        "partitioner",
        "partitioner.class (or ProducerConfig::partitioner)",
    ),
    (
        "debug",
        "nothing: logs go through the `log` crate; set its level",
    ),
];

/// The message for an unknown key: which Java key to use for a
/// librdkafka property, or the nearest known key for a typo.
fn unknown_key_message(key: &str) -> String {
    if let Some((_, java)) = LIBRDKAFKA_KEYS.iter().find(|(k, _)| *k == key) {
        return format!("unknown configuration key; {key} is librdkafka's name: use {java}");
    }
    let nearest = KEYS
        .iter()
        .map(|k| (edit_distance(key, k.name), k.name))
        .min()
        .filter(|&(d, _)| d <= 2 + key.len() / 8);
    match nearest {
        Some((_, name)) => format!("unknown configuration key; did you mean {name}?"),
        None => "unknown configuration key".into(),
    }
}

/// Levenshtein distance, by bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn invalid(key: &str, value: &str, why: &str) -> Error {
    Error::config(key, format!("invalid value `{value}`: {why}"))
}

fn parse_int(key: &str, v: &str, min: u64, max: u64) -> Result<u64> {
    let n: i128 = v
        .parse()
        .map_err(|_| invalid(key, v, "expected an integer"))?;
    if n < i128::from(min) || n > i128::from(max) {
        return Err(invalid(key, v, &format!("must be in {min}..={max}")));
    }
    Ok(n as u64)
}

/// `send.buffer.bytes` / `receive.buffer.bytes`: a Java int, at least -1
/// (`CommonClientConfigs.SEND_BUFFER_LOWER_BOUND`); -1 is the operating
/// system's default.
fn parse_buffer_size(key: &str, v: &str) -> Result<i32> {
    let n = parse_signed(key, v)?;
    if !(-1..=i64::from(i32::MAX)).contains(&n) {
        return Err(invalid(key, v, &format!("must be in -1..={}", i32::MAX)));
    }
    Ok(n as i32)
}

fn parse_signed(key: &str, v: &str) -> Result<i64> {
    v.parse()
        .map_err(|_| invalid(key, v, "expected an integer"))
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, v, "expected true or false")),
    }
}

fn parse_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_serializer(key: &str, v: &str) -> Result<&'static str> {
    crate::serialize::canonical_java_class(v).ok_or_else(|| {
        invalid(
            key,
            v,
            "only Java's built-in serializers can be named here; pass other serializers to Producer::new",
        )
    })
}

/// Parses Java `.properties` text into key/value pairs.
fn parse_properties(text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        // An odd number of trailing backslashes continues the line.
        let trailing = line.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let split = entry.find(['=', ':']).unwrap_or(entry.len());
        let (k, v) = entry.split_at(split);
        let k = k.trim();
        let v = v.get(1..).unwrap_or("").trim();
        if k.is_empty() {
            continue;
        }
        out.push((unescape(k), unescape(v)));
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
            ("security.protocol", "SSL"),
            ("ssl.truststore.location", "/tmp/x"),
            ("sasl.mechanism", "PLAIN"),
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
        let c =
            ProducerConfig::from_pairs([("bootstrap.servers", "h:1"), ("transactional.id", "")])
                .unwrap()
                .validate()
                .unwrap();
        assert!(c.transactional_id.is_none());
    }

    #[test]
    fn every_known_key_is_handled() {
        // set() has an unreachable!() arm for keys it forgets; exercise all,
        // at Java's default. It must be accepted unless keys() documents it
        // as refused there: a NotYet key, or a Partial key whose Java
        // default is not the value this release accepts.
        //
        // Java has no default for the serializers (they are required, ""
        // is no class name): "" is refused as Java's ConfigException is,
        // and a real class name is accepted.
        const REQUIRED: &[&str] = &["key.serializer", "value.serializer"];
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
            assert!(e.to_string().contains("at least -1"), "{e}");
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
}
