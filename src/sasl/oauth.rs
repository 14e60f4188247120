//! OAUTHBEARER (RFC 7628, KIP-255), client side: the token comes from the
//! caller's provider ([`ProducerConfig::oauth_token_provider`]) or, without
//! one, is an unsecured JWT built from `OAuthBearerLoginModule`'s
//! `unsecuredLogin*` options, as Java's default login callback handler
//! builds it (for brokers with Kafka's unsecured validator: tests and
//! development).
//!
//! The exchange: the client sends `n,,\x01auth=Bearer <token>\x01\x01`
//! (with `\x01key=value` SASL extensions before the final `\x01`). A broker
//! that accepts the token answers with nothing; one that refuses it sends
//! a JSON error (`{"status":"invalid_token",...}`), to which the client
//! answers `\x01`, and the broker then fails the authentication. The JSON
//! goes into the [`Error::Authentication`](crate::Error::Authentication).
//!
//! [`ProducerConfig::oauth_token_provider`]: crate::ProducerConfig::oauth_token_provider

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;

use super::jaas::JaasEntry;
use crate::error::{Error, Result};

/// An OAuth 2 bearer token for `sasl.mechanism=OAUTHBEARER`, as a token
/// provider returns it (Java's `OAuthBearerToken`).
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthToken {
    /// The compact-serialized token (a JWT, usually) sent to the broker.
    pub value: String,
    /// When the token expires, in milliseconds since the Unix epoch (Java's
    /// `lifetimeMs`). Informational: the broker decides the session's
    /// lifetime (KIP-368) and the connection authenticates again, with a
    /// token from the provider, before it ends.
    pub lifetime_ms: i64,
    /// The principal the token names (for logs).
    pub principal: String,
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthToken")
            .field("value", &"[hidden]")
            .field("lifetime_ms", &self.lifetime_ms)
            .field("principal", &self.principal)
            .finish()
    }
}

/// What a token provider returns.
pub type OAuthTokenResult =
    std::result::Result<OAuthToken, Box<dyn std::error::Error + Send + Sync>>;

/// The caller's token provider, printable in the configuration's `Debug`.
#[derive(Clone)]
pub(crate) struct TokenProvider(pub(crate) Arc<dyn Fn() -> OAuthTokenResult + Send + Sync>);

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OAuthTokenProvider(..)")
    }
}

/// Where OAUTHBEARER tokens come from.
#[derive(Clone, Debug)]
pub(crate) enum TokenSource {
    /// The caller's provider, asked at every authentication.
    Provider(TokenProvider),
    /// Java's unsecured default, from `OAuthBearerLoginModule` options.
    Unsecured(Unsecured),
}

/// `unsecuredLogin*` options of `OAuthBearerLoginModule`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Unsecured {
    principal_claim: String,
    principal: String,
    lifetime_s: u64,
    /// Further claims, already as JSON values.
    claims: BTreeMap<String, String>,
}

/// SASL extensions (`unsecuredLoginExtension_<name>`), sent with the token.
pub(crate) type Extensions = BTreeMap<String, String>;

fn jaas_err(message: String) -> Error {
    Error::config("sasl.jaas.config", message)
}

/// JSON string literal (the escaping the metrics' JSON uses).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    crate::metrics::json_string(&mut out, s);
    out
}

impl Unsecured {
    /// Reads the options Java's `OAuthBearerUnsecuredLoginCallbackHandler`
    /// reads: `unsecuredLoginStringClaim_<name>` (the principal claim,
    /// `sub` unless `unsecuredLoginPrincipalClaimName` says otherwise, is
    /// required), `unsecuredLoginNumberClaim_<name>`,
    /// `unsecuredLoginListClaim_<name>` (the first character separates the
    /// items), `unsecuredLoginLifetimeSeconds` (3600),
    /// `unsecuredLoginScopeClaimName` (`scope`) and
    /// `unsecuredLoginExtension_<name>`.
    pub(crate) fn from_jaas(entry: &JaasEntry) -> Result<(Unsecured, Extensions)> {
        let principal_claim = entry
            .option("unsecuredLoginPrincipalClaimName")
            .unwrap_or("sub")
            .to_owned();
        let lifetime_s = match entry.option("unsecuredLoginLifetimeSeconds") {
            None => 3600,
            Some(v) => v.parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                jaas_err(format!(
                    "unsecuredLoginLifetimeSeconds must be a positive number of seconds, not `{v}`"
                ))
            })?,
        };
        let mut claims = BTreeMap::new();
        let mut extensions = Extensions::new();
        for (k, v) in &entry.options {
            if let Some(name) = k.strip_prefix("unsecuredLoginStringClaim_") {
                claims.insert(name.to_owned(), json_string(v));
            } else if let Some(name) = k.strip_prefix("unsecuredLoginNumberClaim_") {
                // Written as given: JSON's number syntax, checked here.
                let ok = v.parse::<f64>().is_ok_and(f64::is_finite) && serde_number(v.trim());
                if !ok {
                    return Err(jaas_err(format!("{k} must be a number, not `{v}`")));
                }
                claims.insert(name.to_owned(), v.trim().to_owned());
            } else if let Some(name) = k.strip_prefix("unsecuredLoginListClaim_") {
                let mut chars = v.chars();
                let items = match chars.next() {
                    Some(sep) => chars
                        .as_str()
                        .split(sep)
                        .filter(|s| !s.is_empty())
                        .map(json_string)
                        .collect::<Vec<_>>(),
                    None => Vec::new(),
                };
                claims.insert(name.to_owned(), format!("[{}]", items.join(",")));
            } else if let Some(name) = k.strip_prefix("unsecuredLoginExtension_") {
                check_extension(name, v)?;
                extensions.insert(name.to_owned(), v.clone());
            }
        }
        for reserved in ["iat", "exp"] {
            if claims.contains_key(reserved) {
                return Err(jaas_err(format!(
                    "the claim `{reserved}` is set from unsecuredLoginLifetimeSeconds and cannot be given"
                )));
            }
        }
        let principal = match entry.options.get(&format!("unsecuredLoginStringClaim_{principal_claim}")) {
            Some(p) if !p.trim().is_empty() => p.clone(),
            _ => {
                return Err(jaas_err(format!(
                    "OAuthBearerLoginModule needs unsecuredLoginStringClaim_{principal_claim}=\"<principal>\" \
                     (or an OAuth token provider set with ProducerConfig::oauth_token_provider)"
                )))
            }
        };
        Ok((
            Unsecured {
                principal_claim,
                principal,
                lifetime_s,
                claims,
            },
            extensions,
        ))
    }

    /// An unsecured JWT (`alg: none`, no signature) issued at `now_ms`.
    pub(crate) fn token(&self, now_ms: i64) -> OAuthToken {
        let header = B64URL.encode(br#"{"alg":"none"}"#);
        let iat = now_ms / 1000;
        let exp = iat.saturating_add(self.lifetime_s as i64);
        let mut body = format!("{{\"iat\":{iat},\"exp\":{exp}");
        for (name, value) in &self.claims {
            body.push(',');
            body.push_str(&json_string(name));
            body.push(':');
            body.push_str(value);
        }
        body.push('}');
        OAuthToken {
            value: format!("{header}.{}.", B64URL.encode(body)),
            lifetime_ms: exp.saturating_mul(1000),
            principal: self.principal.clone(),
        }
    }

    #[cfg(test)]
    fn principal_claim(&self) -> &str {
        &self.principal_claim
    }
}

/// True if `v` is written as a JSON number (digits, an optional sign,
/// fraction and exponent; no `inf`, `NaN`, `+1` or `.5`).
fn serde_number(v: &str) -> bool {
    let b = v.strip_prefix('-').unwrap_or(v).as_bytes();
    let int_end = b
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(b.len());
    if int_end == 0 || (b[0] == b'0' && int_end > 1) {
        return false;
    }
    let mut rest = &b[int_end..];
    if let Some(r) = rest.strip_prefix(b".") {
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &r[n..];
    }
    if let Some(r) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let r = r
            .strip_prefix(b"+")
            .or_else(|| r.strip_prefix(b"-"))
            .unwrap_or(r);
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &r[n..];
    }
    rest.is_empty()
}

/// RFC 7628's key and value rules for an extension (`auth` is reserved).
fn check_extension(name: &str, value: &str) -> Result<()> {
    let key_ok =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphabetic()) && name != "auth";
    let value_ok = value
        .chars()
        .all(|c| matches!(c, '\u{21}'..='\u{7e}' | ' ' | '\t' | '\r' | '\n'));
    if key_ok && value_ok {
        Ok(())
    } else {
        Err(jaas_err(format!(
            "unsecuredLoginExtension_{name}: an extension name is ASCII letters (not `auth`), \
             its value printable ASCII"
        )))
    }
}

/// The client's first (and only) message for `token`.
pub(crate) fn client_first(token: &str, extensions: &Extensions) -> Vec<u8> {
    let mut m = format!("n,,\x01auth=Bearer {token}");
    for (k, v) in extensions {
        m.push('\x01');
        m.push_str(k);
        m.push('=');
        m.push_str(v);
    }
    m.push_str("\x01\x01");
    m.into_bytes()
}

/// One OAUTHBEARER exchange.
pub(crate) struct OAuthBearer {
    first: Option<Vec<u8>>,
    /// The broker's JSON error, once it sent one.
    pub(crate) server_error: Option<String>,
    done: bool,
}

impl OAuthBearer {
    pub(crate) fn new(token: &str, extensions: &Extensions) -> Self {
        OAuthBearer {
            first: Some(client_first(token, extensions)),
            server_error: None,
            done: false,
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.done
    }

    /// The initial response first; then, for the broker's answer: nothing
    /// (accepted) ends the exchange, a JSON error is kept and answered
    /// with `\x01`, after which the broker fails the authentication.
    pub(crate) fn step(&mut self, msg: &[u8]) -> std::result::Result<Vec<u8>, String> {
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        if self.server_error.is_some() {
            return Err(format!(
                "the broker refused the token: {}",
                self.server_error.as_deref().unwrap_or_default()
            ));
        }
        if msg.is_empty() {
            self.done = true;
            return Ok(Vec::new());
        }
        self.server_error = Some(String::from_utf8_lossy(msg).into_owned());
        Ok(vec![0x01])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::jaas;

    #[test]
    fn the_initial_response_is_rfc_7628s() {
        assert_eq!(
            client_first("abc.def.", &Extensions::new()),
            b"n,,\x01auth=Bearer abc.def.\x01\x01"
        );
        let mut ext = Extensions::new();
        ext.insert("traceid".into(), "42".into());
        assert_eq!(
            client_first("t", &ext),
            b"n,,\x01auth=Bearer t\x01traceid=42\x01\x01"
        );
    }

    #[test]
    fn a_refused_token_keeps_the_brokers_json() {
        let mut o = OAuthBearer::new("t", &Extensions::new());
        assert!(o.step(b"").unwrap().starts_with(b"n,,"));
        let json = br#"{"status":"invalid_token"}"#;
        assert_eq!(o.step(json).unwrap(), vec![1]);
        assert!(!o.is_complete());
        assert_eq!(
            o.server_error.as_deref(),
            Some(r#"{"status":"invalid_token"}"#)
        );
        // accepted: an empty answer ends it
        let mut o = OAuthBearer::new("t", &Extensions::new());
        o.step(b"").unwrap();
        assert!(o.step(b"").unwrap().is_empty());
        assert!(o.is_complete());
    }

    #[test]
    fn the_unsecured_token_is_an_alg_none_jwt_with_javas_claims() {
        let e = jaas::parse(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required
               unsecuredLoginStringClaim_sub="pro\"ducer" unsecuredLoginLifetimeSeconds="60"
               unsecuredLoginListClaim_scope=",read,write" unsecuredLoginNumberClaim_n="7"
               unsecuredLoginExtension_traceid="x1";"#,
        )
        .unwrap();
        let (u, ext) = Unsecured::from_jaas(&e).unwrap();
        assert_eq!(u.principal_claim(), "sub");
        assert_eq!(ext.get("traceid").map(String::as_str), Some("x1"));
        let t = u.token(1_700_000_000_123);
        assert_eq!(t.principal, "pro\"ducer");
        assert_eq!(t.lifetime_ms, 1_700_000_060_000);
        let parts: Vec<&str> = t.value.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "", "no signature");
        let header: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "none"}));
        let body: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "iat": 1_700_000_000, "exp": 1_700_000_060, "sub": "pro\"ducer",
                "scope": ["read", "write"], "n": 7
            })
        );
    }

    #[test]
    fn unsecured_options_are_checked() {
        for (opts, says) in [
            ("", "needs unsecuredLoginStringClaim_sub"),
            (
                r#"unsecuredLoginStringClaim_sub="p" unsecuredLoginLifetimeSeconds="soon""#,
                "positive number",
            ),
            (
                r#"unsecuredLoginStringClaim_sub="p" unsecuredLoginNumberClaim_n="x""#,
                "must be a number",
            ),
            (
                r#"unsecuredLoginStringClaim_sub="p" unsecuredLoginExtension_auth="x""#,
                "extension name",
            ),
            (
                r#"unsecuredLoginStringClaim_sub="p" unsecuredLoginStringClaim_exp="x""#,
                "`exp`",
            ),
        ] {
            let e = jaas::parse(&format!("a.OAuthBearerLoginModule required {opts};")).unwrap();
            let err = Unsecured::from_jaas(&e).unwrap_err().to_string();
            assert!(
                err.contains(says) && err.contains("sasl.jaas.config"),
                "{opts}: {err}"
            );
        }
    }
}
