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
//! Each key is declared once, as a row of the table in `config/keys.rs`:
//! Java's name, type and default, its support, a one-line description, the
//! codec that parses and checks its value (`config/value.rs`), the field
//! that holds it and its typed builder. The `config_keys!` macro
//! (`config/table.rs`) writes the struct, [`ProducerConfig::new`],
//! [`set`](ProducerConfig::set), [`get`](ProducerConfig::get),
//! [`keys`](ProducerConfig::keys) and the builders from the rows. This
//! file keeps what is not one key's business: the public types, the
//! builders that set several keys or take a Rust object, and
//! `validate`'s rules between keys (run by `Producer::new`).
//!
//! `enable.idempotence` defaults to `true`, as Java's since 3.0, with
//! Java's rule for conflicts: `acks` other than `all`, `retries=0` or more
//! than 5 requests in flight are config errors when idempotence was set
//! explicitly, and turn it off (with a log line) when it was left at its
//! default.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::metrics::{MetricsSnapshot, StatisticsCallback, Windows};
use crate::partitioner::Partitioner;
use crate::protocol::compression::Compression;

/// The statistics callback, printable in the configuration's `Debug`.
#[derive(Clone)]
pub(crate) struct StatsCallback(pub(crate) StatisticsCallback);

impl fmt::Debug for StatsCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatisticsCallback(..)")
    }
}

mod keys;
mod table;
#[cfg(test)]
mod tests;
mod value;

pub use keys::ProducerConfig;
use value::{parse_list, ROUND_ROBIN};

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

/// Java's `security.protocol`: how the producer talks to brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// `PLAINTEXT`: plain TCP. The default.
    Plaintext,
    /// `SSL`: TLS (rustls), set up by the `ssl.*` keys.
    Ssl,
    /// `SASL_PLAINTEXT`: SASL authentication (the `sasl.*` keys) over
    /// plain TCP.
    SaslPlaintext,
    /// `SASL_SSL`: SASL authentication over TLS (the `ssl.*` and `sasl.*`
    /// keys).
    SaslSsl,
}

impl SecurityProtocol {
    /// Java's name.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// True for `SSL` and `SASL_SSL`.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// True for `SASL_PLAINTEXT` and `SASL_SSL`.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// `ssl.keystore.type` / `ssl.truststore.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreType {
    Jks,
    Pkcs12,
    Pem,
}

impl StoreType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreType::Jks => "JKS",
            StoreType::Pkcs12 => "PKCS12",
            StoreType::Pem => "PEM",
        }
    }
}

/// `ssl.protocol`: the newest TLS version the producer may use (Java's
/// `SSLContext` protocol; `TLSv1.2` keeps TLS 1.3 off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsVersionCap {
    Tls12,
    Tls13,
    Any,
}

/// The value of a Password key (Java's `Password`): `Debug` prints
/// `[hidden]`; only the TLS and SASL code read it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Password(String);

impl Password {
    pub(crate) fn new(s: String) -> Self {
        Password(s)
    }

    /// The secret itself.
    pub(crate) fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HIDDEN)
    }
}

/// How a Password key's value is shown (Java's `Password.toString`).
pub(crate) const HIDDEN: &str = "[hidden]";

/// True for a key of Java's `PASSWORD` type.
fn is_password(key: &str) -> bool {
    ProducerConfig::keys()
        .iter()
        .any(|k| k.name == key && k.kind == Kind::Password)
}

/// `value` as `get`, `Debug` and errors show it: `[hidden]` for a
/// Password key's non-empty value.
pub(crate) fn shown<'a>(key: &str, value: &'a str) -> &'a str {
    if !value.is_empty() && is_password(key) {
        HIDDEN
    } else {
        value
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

static CLIENT_ID_SEQUENCE: AtomicUsize = AtomicUsize::new(1);

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig::new()
    }
}

impl ProducerConfig {
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

    /// Records `key` as set explicitly, with `value` as `get` will show it.
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
        self.mark("partitioner.class", ROUND_ROBIN)
    }

    /// librdkafka's `stats_cb`: `callback` gets the producer's
    /// [`MetricsSnapshot`] every `statistics.interval.ms` (which must be
    /// set too, or [`Producer::new`](crate::Producer::new) refuses the
    /// configuration), on a thread of its own (`<client.id>-stats`), from
    /// one interval after `Producer::new` until `close`. A panicking
    /// callback is logged and called again next time. Defaults to none.
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
        self.statistics_callback = Some(StatsCallback(Arc::new(callback)));
        self
    }

    /// `sasl.jaas.config`: the JAAS login module and its options, as Java
    /// users write it, for `security.protocol` `SASL_PLAINTEXT` or
    /// `SASL_SSL`:
    ///
    /// ```
    /// use kafka_producer::{ProducerConfig, SecurityProtocol};
    ///
    /// let config = ProducerConfig::new()
    ///     .bootstrap_servers("localhost:9092")
    ///     .security_protocol(SecurityProtocol::SaslPlaintext)
    ///     .sasl_mechanism("SCRAM-SHA-512".into())
    ///     .sasl_jaas_config(
    ///         r#"org.apache.kafka.common.security.scram.ScramLoginModule required
    ///            username="alice" password="alice-secret";"#,
    ///     );
    /// # let _ = config;
    /// ```
    ///
    /// `PlainLoginModule` and `ScramLoginModule` give the user name and
    /// password (`username`, `password`); `OAuthBearerLoginModule` gives
    /// unsecured tokens (`unsecuredLoginStringClaim_sub`,
    /// `unsecuredLoginLifetimeSeconds`, ...) unless a token provider is set.
    /// The text is checked when the producer is made
    /// ([`Producer::new`](crate::Producer::new) fails with
    /// [`Error::Config`] naming `sasl.jaas.config` and what is wrong).
    /// Its value is a secret: the configuration's `Debug` hides it.
    /// Defaults to none.
    #[must_use]
    pub fn sasl_jaas_config(mut self, text: impl Into<String>) -> Self {
        let text = text.into();
        self.sasl_jaas_config = (!text.is_empty()).then(|| Password::new(text.clone()));
        self.mark("sasl.jaas.config", text)
    }

    /// The token provider for `sasl.mechanism=OAUTHBEARER` (what Java's
    /// `sasl.login.callback.handler.class` plugs in): called on a
    /// connector thread whenever a connection authenticates, the first
    /// time and again before each session ends (KIP-368), so it should
    /// return a cached token until that nears its expiry. An error fails
    /// the authentication with [`Error::Authentication`]. Without a
    /// provider, `sasl.jaas.config`'s `OAuthBearerLoginModule` options make
    /// unsecured tokens, as Java's default does. Defaults to none.
    ///
    /// ```no_run
    /// use kafka_producer::{OAuthToken, ProducerConfig, SecurityProtocol};
    ///
    /// let config = ProducerConfig::new()
    ///     .bootstrap_servers("localhost:9092")
    ///     .security_protocol(SecurityProtocol::SaslSsl)
    ///     .sasl_mechanism("OAUTHBEARER".into())
    ///     .oauth_token_provider(|| {
    ///         let jwt = std::fs::read_to_string("/run/secrets/kafka-token")?;
    ///         Ok(OAuthToken {
    ///             value: jwt.trim().to_owned(),
    ///             lifetime_ms: 0,
    ///             principal: "producer".into(),
    ///         })
    ///     });
    /// ```
    #[must_use]
    pub fn oauth_token_provider(
        mut self,
        provider: impl Fn() -> crate::sasl::OAuthTokenResult + Send + Sync + 'static,
    ) -> Self {
        self.oauth_token_provider = Some(crate::sasl::TokenProvider(Arc::new(provider)));
        self
    }

    /// The SASL settings, if `security.protocol` is a SASL one (set by
    /// `validate`).
    pub(crate) fn sasl(&self) -> Option<&crate::sasl::Sasl> {
        self.sasl.as_deref()
    }

    /// `metrics.sample.window.ms` and `metrics.num.samples`, for the
    /// metrics registry.
    pub(crate) fn metrics_windows(&self) -> Windows {
        Windows {
            window_ms: self.metrics_sample_window.as_millis() as u64,
            samples: self.metrics_num_samples,
        }
    }

    /// Checks the whole configuration as Java's constructor does, and fills
    /// in derived values (the client id, a raised delivery timeout).
    ///
    /// First each key on its own, by its codec (a typed builder cannot
    /// refuse a value, so this is where `batch_size(usize::MAX)` fails, with
    /// the message `set` gives); then, here and only here, the rules
    /// between keys.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first key that is wrong.
    pub(crate) fn validate(mut self) -> Result<Self> {
        self.check_each_key()?;
        if self.bootstrap_servers.is_empty() {
            return Err(Error::config(
                "bootstrap.servers",
                "must be set to at least one host:port",
            ));
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
        // SASL: the mechanism and its credentials, checked together.
        if self.security_protocol.uses_sasl() {
            let jaas = self
                .sasl_jaas_config
                .as_ref()
                .map(|s| crate::sasl::jaas::parse(s.reveal()))
                .transpose()?;
            self.sasl = Some(Arc::new(crate::sasl::Sasl::from_config(
                &self.sasl_mechanism,
                jaas.as_ref(),
                self.sasl_username.as_deref(),
                self.sasl_password.as_ref(),
                self.oauth_token_provider.as_ref(),
            )?));
        } else {
            self.sasl = None;
            let set: Vec<&str> = ["sasl.jaas.config", "sasl.username", "sasl.password"]
                .into_iter()
                .filter(|k| self.is_set(k))
                .collect();
            if !set.is_empty() || self.oauth_token_provider.is_some() {
                log::warn!(
                    "SASL settings are given ({}{}) but security.protocol is not a SASL one: \
                     they are not used",
                    set.join(", "),
                    if self.oauth_token_provider.is_some() {
                        " an OAuth token provider"
                    } else {
                        ""
                    }
                );
            }
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
            // At most a Java int: its codec checked that.
            if self.transaction_timeout.is_zero() {
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
        // Every file is read now, so a missing one fails Producer::new.
        self.tls = if self.security_protocol.uses_tls() {
            Some(Arc::new(crate::io::tls::TlsClient::from_config(&self)?))
        } else {
            None
        };
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

/// A value this release does not do yet: [`Error::NotSupportedYet`].
fn not_yet(key: &str, value: &str, why: &str) -> Error {
    Error::NotSupportedYet {
        key: key.to_owned(),
        value: value.to_owned(),
        detail: why.to_owned(),
    }
}

/// A value of a partly supported key other than the one this release
/// does (its `support` says which).
fn partial(key: &str, value: &str, support: Support) -> Error {
    let accepted = match support {
        Support::Partial(a) => a,
        _ => "",
    };
    not_yet(key, value, &format!("this release accepts {accepted}"))
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
    let nearest = ProducerConfig::keys()
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

/// Parses Java `.properties` text into key/value pairs.
pub(crate) fn parse_properties(text: &str) -> Result<Vec<(String, String)>> {
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
