//! How a key's text becomes its typed value and back: one [`Codec`] per
//! kind of value (milliseconds, a bounded integer, a choice of names, ...).
//!
//! A codec is Java's `ConfigDef` type and validator in one: `parse` refuses
//! what Java's validator refuses, `check` applies the same validator to a
//! value a typed builder put in place (run by `ProducerConfig::validate`,
//! since a builder cannot fail), and `show` writes the value as `get`
//! returns it, in a form `parse` reads back. The key table
//! (`config/keys.rs`) names one codec per key; nothing else parses a value.
//!
//! Every error names the key and quotes the value.

use std::fmt::Display;
use std::marker::PhantomData;
use std::time::Duration;

use crate::config::{parse_host_port, PartitionerChoice, Password, SecurityProtocol, HIDDEN};
use crate::error::{Error, Result};
use crate::partitioner::LibrdkafkaPartitioner;
use std::sync::Arc;

/// A Java int's largest value, the bound of Java's `INT` keys.
pub(crate) const MAX_INT: i64 = i32::MAX as i64;

/// Milliseconds as a [`Duration`].
pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// One kind of value: its parser, Java's validator and its printed form.
pub(crate) trait Codec {
    /// The typed value a `ProducerConfig` field holds.
    type Value;
    /// The value of `text` (already trimmed), or [`Error::Config`] naming
    /// `key` if Java's type or validator refuses it.
    fn parse(&self, key: &str, text: &str) -> Result<Self::Value>;
    /// Java's validator for a value set through a typed builder.
    fn check(&self, _key: &str, _value: &Self::Value) -> Result<()> {
        Ok(())
    }
    /// The value as `ProducerConfig::get` shows it; `parse` reads it back.
    fn show(&self, value: &Self::Value) -> String;
    /// Texts `parse` accepts (for the tests that walk every key).
    #[cfg(test)]
    fn samples(&self) -> Vec<String>;
    /// Texts `parse` refuses (for the tests that walk every key).
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String>;
}

/// Sample texts, owned (tests).
#[cfg(test)]
fn texts(samples: &[&str]) -> Vec<String> {
    samples.iter().map(|s| (*s).to_owned()).collect()
}

pub(crate) fn invalid(key: &str, value: impl Display, why: &str) -> Error {
    Error::config(key, format!("invalid value `{value}`: {why}"))
}

/// An integer `min..=max` (Java's `atLeast` / `between` on an `INT` or
/// `LONG`), held as `T`.
pub(crate) struct Int<T> {
    min: i64,
    max: i64,
    held_as: PhantomData<T>,
}

impl<T> Int<T> {
    pub(crate) const fn new(min: i64, max: i64) -> Self {
        Int {
            min,
            max,
            held_as: PhantomData,
        }
    }

    fn in_range(&self, key: &str, n: i128) -> Result<i64> {
        if n < i128::from(self.min) || n > i128::from(self.max) {
            return Err(invalid(
                key,
                n,
                &format!("must be in {}..={}", self.min, self.max),
            ));
        }
        Ok(n as i64)
    }

    #[cfg(test)]
    fn range_samples(&self) -> (Vec<String>, Vec<String>) {
        let good = [self.min, self.min.saturating_add(1), self.max];
        let mut bad = vec!["x".to_owned(), String::new(), "1.5".to_owned()];
        bad.push((i128::from(self.max) + 1).to_string());
        bad.push((i128::from(self.min) - 1).to_string());
        (good.iter().map(i64::to_string).collect(), bad)
    }
}

fn parse_integer(key: &str, text: &str) -> Result<i128> {
    text.parse()
        .map_err(|_| invalid(key, text, "expected an integer"))
}

impl<T> Codec for Int<T>
where
    T: Copy + Display + TryFrom<i64> + TryInto<i128>,
{
    type Value = T;
    fn parse(&self, key: &str, text: &str) -> Result<T> {
        let n = self.in_range(key, parse_integer(key, text)?)?;
        T::try_from(n).map_err(|_| invalid(key, text, "too large for this platform"))
    }
    fn check(&self, key: &str, value: &T) -> Result<()> {
        let n: i128 = (*value).try_into().unwrap_or(i128::MAX);
        self.in_range(key, n).map(|_| ())
    }
    fn show(&self, value: &T) -> String {
        value.to_string()
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        self.range_samples().0
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        self.range_samples().1
    }
}

/// A duration in whole milliseconds, `min..=max` of them (Java's `INT` or
/// `LONG` milliseconds with `atLeast(min)`).
pub(crate) struct Millis(Int<i64>);

impl Millis {
    pub(crate) const fn new(min: i64, max: i64) -> Self {
        Millis(Int::new(min, max))
    }
}

/// Milliseconds in a Java `INT`, at least 0.
pub(crate) const INT_MS: Millis = Millis::new(0, MAX_INT);
/// Milliseconds in a Java `LONG`, at least 0.
pub(crate) const LONG_MS: Millis = Millis::new(0, i64::MAX);

impl Codec for Millis {
    type Value = Duration;
    fn parse(&self, key: &str, text: &str) -> Result<Duration> {
        Ok(ms(self.0.parse(key, text)? as u64))
    }
    /// A duration past Java's `LONG` of milliseconds (`Duration::MAX`) is
    /// taken as `i64::MAX` ms, "forever", as it was before the check
    /// existed; a bound below that (Java's `INT` keys) still refuses it.
    fn check(&self, key: &str, value: &Duration) -> Result<()> {
        let millis = value.as_millis().min(i64::MAX as u128);
        if self.0.max == i64::MAX {
            return self.0.in_range(key, millis as i128).map(|_| ());
        }
        self.0
            .in_range(key, i128::try_from(value.as_millis()).unwrap_or(i128::MAX))
            .map(|_| ())
    }
    /// Capped at `i64::MAX`, so `set` reads back what a builder's
    /// `Duration::MAX` means.
    fn show(&self, value: &Duration) -> String {
        value.as_millis().min(i64::MAX as u128).to_string()
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        self.0.samples()
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        self.0.bad_samples()
    }
}

/// `connections.max.idle.ms`: milliseconds in a Java `LONG`, any negative
/// value meaning never (`None`).
pub(crate) struct OptionalMillis;

impl Codec for OptionalMillis {
    type Value = Option<Duration>;
    fn parse(&self, key: &str, text: &str) -> Result<Option<Duration>> {
        let n: i128 = text
            .parse()
            .map_err(|_| invalid(key, text, "expected a number of milliseconds"))?;
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(ms(LONG_MS.0.in_range(key, n)? as u64)))
    }
    fn check(&self, key: &str, value: &Option<Duration>) -> Result<()> {
        match value {
            Some(d) => LONG_MS.check(key, d),
            None => Ok(()),
        }
    }
    fn show(&self, value: &Option<Duration>) -> String {
        value.map_or("-1".into(), |d| LONG_MS.show(&d))
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["-1", "0", "1000"])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        texts(&["x", "", "9223372036854775808"])
    }
}

/// `compression.gzip.level`: -1 (zlib's default) or 1..=9.
pub(crate) struct GzipLevel;

impl Codec for GzipLevel {
    type Value = i32;
    fn parse(&self, key: &str, text: &str) -> Result<i32> {
        let l = parse_integer(key, text)?;
        let l = i32::try_from(l).map_err(|_| invalid(key, text, "must be -1 or in 1..=9"))?;
        self.check(key, &l)?;
        Ok(l)
    }
    fn check(&self, key: &str, value: &i32) -> Result<()> {
        if *value == -1 || (1..=9).contains(value) {
            Ok(())
        } else {
            Err(invalid(key, value, "must be -1 or in 1..=9"))
        }
    }
    fn show(&self, value: &i32) -> String {
        value.to_string()
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["-1", "1", "9"])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        texts(&["0", "10", "-2", "x"])
    }
}

/// `true` or `false`, in any case.
pub(crate) struct Bool;

impl Codec for Bool {
    type Value = bool;
    fn parse(&self, key: &str, text: &str) -> Result<bool> {
        match text.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid(key, text, "expected true or false")),
        }
    }
    fn show(&self, value: &bool) -> String {
        value.to_string()
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["true", "false", "TRUE"])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        texts(&["maybe", "", "1"])
    }
}

/// One of a fixed list of names, in any case (the first name of a value
/// is the one `show` prints).
pub(crate) struct Choice<T: 'static>(pub(crate) &'static [(&'static str, T)]);

impl<T: Copy + PartialEq> Codec for Choice<T> {
    type Value = T;
    fn parse(&self, key: &str, text: &str) -> Result<T> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|&(_, v)| v)
            .ok_or_else(|| {
                let names: Vec<&str> = self.0.iter().map(|(n, _)| *n).collect();
                invalid(key, text, &format!("must be one of {}", names.join(", ")))
            })
    }
    fn show(&self, value: &T) -> String {
        let first = self.0.iter().find(|(_, v)| v == value);
        first.map_or_else(String::new, |(name, _)| (*name).to_owned())
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.to_ascii_uppercase()).collect()
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        texts(&["nope", ""])
    }
}

/// Any string, as given (Java's `STRING` without a validator).
pub(crate) struct Text;

impl Codec for Text {
    type Value = String;
    fn parse(&self, _key: &str, text: &str) -> Result<String> {
        Ok(text.to_owned())
    }
    fn show(&self, value: &String) -> String {
        value.clone()
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["", "my-producer"])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A string where empty is Java's null (`None`).
pub(crate) struct OptionalText;

impl Codec for OptionalText {
    type Value = Option<String>;
    fn parse(&self, _key: &str, text: &str) -> Result<Option<String>> {
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }
    fn show(&self, value: &Option<String>) -> String {
        value.clone().unwrap_or_default()
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["", "tx-1"])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Comma-separated values; blanks between commas are dropped.
pub(crate) struct List;

pub(crate) fn parse_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Codec for List {
    type Value = Vec<String>;
    fn parse(&self, _key: &str, text: &str) -> Result<Vec<String>> {
        Ok(parse_list(text))
    }
    fn show(&self, value: &Vec<String>) -> String {
        value.join(",")
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["", "a", "a,b"])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        Vec::new()
    }
}

/// `bootstrap.servers`: a list of `host:port` (or `[v6]:port`). Empty is
/// accepted here; `validate` requires at least one.
pub(crate) struct HostPorts;

impl Codec for HostPorts {
    type Value = Vec<String>;
    fn parse(&self, key: &str, text: &str) -> Result<Vec<String>> {
        let list = parse_list(text);
        self.check(key, &list)?;
        Ok(list)
    }
    fn check(&self, _key: &str, value: &Vec<String>) -> Result<()> {
        value
            .iter()
            .try_for_each(|s| parse_host_port(s).map(|_| ()))
    }
    fn show(&self, value: &Vec<String>) -> String {
        value.join(",")
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["", "h:1", "a:9092,[::1]:9093"])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        texts(&["localhost", "h:0", "h:x", ":1"])
    }
}

/// `partitioner.class`: unset (the built-in partitioner), Java's
/// `RoundRobinPartitioner`, or one of librdkafka's partitioners by name.
pub(crate) struct PartitionerClass;

/// Java's class name for [`PartitionerChoice::RoundRobin`].
pub(crate) const ROUND_ROBIN: &str = "org.apache.kafka.clients.producer.RoundRobinPartitioner";

impl Codec for PartitionerClass {
    type Value = PartitionerChoice;
    fn parse(&self, key: &str, text: &str) -> Result<PartitionerChoice> {
        if text.is_empty() {
            return Ok(PartitionerChoice::BuiltIn);
        }
        if text == ROUND_ROBIN || text == "RoundRobinPartitioner" {
            return Ok(PartitionerChoice::RoundRobin);
        }
        // librdkafka's names, for services that move from it.
        if let Some(p) = LibrdkafkaPartitioner::from_name(text) {
            return Ok(PartitionerChoice::Custom(Arc::new(p)));
        }
        Err(invalid(key, text, match text {
            "org.apache.kafka.clients.producer.internals.DefaultPartitioner"
            | "org.apache.kafka.clients.producer.UniformStickyPartitioner" => {
                "deprecated in Java 3.3 and removed in 4.0; leave partitioner.class unset for the built-in partitioner"
            }
            _ => "a Java class cannot be loaded here: pass a Rust partitioner with ProducerConfig::partitioner, or use RoundRobinPartitioner or one of librdkafka's (consistent, consistent_random, murmur2, murmur2_random, fnv1a, fnv1a_random)",
        }))
    }
    fn show(&self, value: &PartitionerChoice) -> String {
        match value {
            PartitionerChoice::BuiltIn => String::new(),
            PartitionerChoice::RoundRobin => ROUND_ROBIN.to_owned(),
            PartitionerChoice::Custom(_) => "<custom>".to_owned(),
        }
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["", "RoundRobinPartitioner", ROUND_ROBIN, "murmur2_random"])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        let default = "org.apache.kafka.clients.producer.internals.DefaultPartitioner";
        texts(&["com.example.MyPartitioner", default])
    }
}

/// `key.serializer` / `value.serializer`: one of Java's built-in
/// serializers by class name (the serializer itself is given to
/// `Producer::new`). Java has no default: the key is required there.
pub(crate) struct SerializerClass;

impl Codec for SerializerClass {
    type Value = Option<&'static str>;
    fn parse(&self, key: &str, text: &str) -> Result<Option<&'static str>> {
        crate::serialize::canonical_java_class(text).map(Some).ok_or_else(|| {
            invalid(
                key,
                text,
                "only Java's built-in serializers can be named here; pass other serializers to Producer::new",
            )
        })
    }
    fn show(&self, value: &Option<&'static str>) -> String {
        value.unwrap_or_default().to_owned()
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        let long = "org.apache.kafka.common.serialization.LongSerializer";
        texts(&["StringSerializer", long])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        texts(&["", "com.example.AvroSerializer"])
    }
}

/// `security.protocol`: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
pub(crate) struct Protocol;

const PROTOCOLS: [SecurityProtocol; 4] = [
    SecurityProtocol::Plaintext,
    SecurityProtocol::Ssl,
    SecurityProtocol::SaslPlaintext,
    SecurityProtocol::SaslSsl,
];

impl Codec for Protocol {
    type Value = SecurityProtocol;
    fn parse(&self, key: &str, text: &str) -> Result<SecurityProtocol> {
        let p = PROTOCOLS
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                invalid(
                    key,
                    text,
                    "must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
                )
            })?;
        Ok(p)
    }
    fn show(&self, value: &SecurityProtocol) -> String {
        value.name().to_owned()
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["PLAINTEXT", "ssl", "SASL_PLAINTEXT", "sasl_ssl"])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        texts(&["TLS", ""])
    }
}

/// `ssl.enabled.protocols`: TLS versions by Java's names; rustls speaks
/// TLSv1.2 and TLSv1.3 only. Empty: both.
pub(crate) struct TlsProtocols;

const TLS_VERSIONS: [&str; 2] = ["TLSv1.2", "TLSv1.3"];

impl Codec for TlsProtocols {
    type Value = Vec<String>;
    fn parse(&self, key: &str, text: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for name in parse_list(text) {
            let Some(v) = TLS_VERSIONS.iter().find(|v| v.eq_ignore_ascii_case(&name)) else {
                return Err(invalid(
                    key,
                    &name,
                    "rustls speaks only TLSv1.2 and TLSv1.3 (older versions are insecure)",
                ));
            };
            out.push((*v).to_owned());
        }
        Ok(out)
    }
    fn check(&self, key: &str, value: &Vec<String>) -> Result<()> {
        self.parse(key, &value.join(",")).map(|_| ())
    }
    fn show(&self, value: &Vec<String>) -> String {
        value.join(",")
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["TLSv1.2,TLSv1.3", "TLSv1.3", ""])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        texts(&["TLSv1.1", "TLSv1.2,SSLv3"])
    }
}

/// A Password key's value (empty: Java's null); shown as `[hidden]`.
pub(crate) struct Secret;

impl Codec for Secret {
    type Value = Option<Password>;
    fn parse(&self, _key: &str, text: &str) -> Result<Option<Password>> {
        Ok((!text.is_empty()).then(|| Password::new(text.to_owned())))
    }
    fn show(&self, value: &Option<Password>) -> String {
        value
            .as_ref()
            .map_or_else(String::new, |_| HIDDEN.to_owned())
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["", "-----BEGIN s3cret"])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        Vec::new()
    }
}

/// `sasl.jaas.config`: a secret whose syntax is checked when set (the
/// login module is matched to `sasl.mechanism` by `validate`).
pub(crate) struct JaasText;

impl Codec for JaasText {
    type Value = Option<Password>;
    fn parse(&self, key: &str, text: &str) -> Result<Self::Value> {
        let v = Secret.parse(key, text)?;
        self.check(key, &v)?;
        Ok(v)
    }
    fn check(&self, _key: &str, value: &Self::Value) -> Result<()> {
        match value {
            Some(s) => crate::sasl::jaas::parse(s.reveal()).map(|_| ()),
            None => Ok(()),
        }
    }
    fn show(&self, value: &Self::Value) -> String {
        Secret.show(value)
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&[
            "",
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";"#,
        ])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        texts(&["a.B required", "a.B", "x=\"y\";"])
    }
}

/// `ssl.endpoint.identification.algorithm`: `https` (check the broker's
/// host name against its certificate) or empty (do not).
pub(crate) struct EndpointIdentification;

impl Codec for EndpointIdentification {
    type Value = bool;
    fn parse(&self, key: &str, text: &str) -> Result<bool> {
        match text {
            "" => Ok(false),
            t if t.eq_ignore_ascii_case("https") => Ok(true),
            t => Err(invalid(
                key,
                t,
                "must be https (check the broker's host name) or empty (do not)",
            )),
        }
    }
    fn show(&self, value: &bool) -> String {
        if *value { "https" } else { "" }.to_owned()
    }
    #[cfg(test)]
    fn samples(&self) -> Vec<String> {
        texts(&["https", ""])
    }
    #[cfg(test)]
    fn bad_samples(&self) -> Vec<String> {
        texts(&["ldaps", "none"])
    }
}
