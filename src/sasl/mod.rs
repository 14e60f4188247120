//! SASL authentication (`security.protocol=SASL_PLAINTEXT`, `SASL_SSL`):
//! the mechanisms, as state machines without I/O, and the exchange that
//! runs them over a connection right after ApiVersions.
//!
//! A connection's life with SASL (see ARCHITECTURE.md): TCP (and TLS) →
//! ApiVersions → SaslHandshake v1 (the mechanism; the broker lists the
//! ones it enables) → SaslAuthenticate, once per token of the mechanism
//! (PLAIN: one; SCRAM: two; OAUTHBEARER: one, two when refused) → ordinary
//! requests. A SaslAuthenticate v1+ answer gives the session's lifetime
//! (KIP-368); the connection authenticates again before it ends (see
//! [`Wire::reauth_due`](crate::io::conn::Wire::reauth_due)).
//!
//! Mechanisms: PLAIN (RFC 4616), SCRAM-SHA-256 and SCRAM-SHA-512 (RFC
//! 5802, RFC 7677, in `scram`), OAUTHBEARER (RFC 7628, in `oauth`). GSSAPI
//! (Kerberos) is refused by the configuration.
//!
//! Secrets (passwords, tokens, the JAAS text) are held in `Password` or
//! types whose `Debug` hides them, and no error or log line quotes them.

pub(crate) mod jaas;
pub(crate) mod oauth;
pub(crate) mod scram;

use std::time::{Duration, Instant};

use crate::config::Password;
use crate::error::{Error, Result};
use crate::io::conn::{Connection, Transport};
use crate::protocol::messages::sasl_authenticate::{
    self, SaslAuthenticateRequest, SaslAuthenticateResponse,
};
use crate::protocol::messages::sasl_handshake::{
    self, SaslHandshakeRequest, SaslHandshakeResponse,
};
use crate::protocol::ErrorCode;
use crate::util::later;

pub(crate) use oauth::TokenProvider;
use oauth::{Extensions, OAuthBearer, TokenSource, Unsecured};
pub use oauth::{OAuthToken, OAuthTokenResult};
use scram::{Hash, Scram};

/// The mechanisms this crate speaks, by `sasl.mechanism` name.
pub(crate) const MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

#[derive(Clone, Debug)]
enum Credentials {
    /// PLAIN and SCRAM.
    Password {
        username: String,
        password: Password,
    },
    /// OAUTHBEARER.
    Token {
        source: TokenSource,
        extensions: Extensions,
    },
}

/// What a connection authenticates with: the mechanism and credentials,
/// checked when the configuration is validated.
#[derive(Clone, Debug)]
pub(crate) struct Sasl {
    mechanism: &'static str,
    credentials: Credentials,
}

const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const OAUTH_MODULE: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

fn config_err(key: &str, message: impl Into<String>) -> Error {
    Error::config(key, message)
}

impl Sasl {
    /// The settings for `mechanism` from `sasl.jaas.config` (parsed),
    /// librdkafka's `sasl.username` / `sasl.password`, and the caller's
    /// token provider.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the key at fault: GSSAPI (Kerberos is not
    /// supported), an unknown mechanism, a login module that does not fit
    /// the mechanism, missing credentials, credentials given twice.
    pub(crate) fn from_config(
        mechanism: &str,
        jaas: Option<&jaas::JaasEntry>,
        username: Option<&str>,
        password: Option<&Password>,
        provider: Option<&TokenProvider>,
    ) -> Result<Sasl> {
        let mechanism: &'static str = match MECHANISMS.iter().find(|m| **m == mechanism) {
            Some(m) => m,
            None if mechanism == "GSSAPI" => {
                return Err(config_err(
                    "sasl.mechanism",
                    "GSSAPI (Kerberos, Java's default) is not supported: set sasl.mechanism to \
                     PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
                ))
            }
            None => {
                return Err(config_err(
                    "sasl.mechanism",
                    format!(
                        "`{mechanism}` is not a mechanism this client speaks ({}; names are case-sensitive, as in Java)",
                        MECHANISMS.join(", ")
                    ),
                ))
            }
        };
        if jaas.is_some() && (username.is_some() || password.is_some()) {
            return Err(config_err(
                "sasl.username",
                "set either sasl.jaas.config (Java's) or sasl.username/sasl.password \
                 (librdkafka's), not both",
            ));
        }
        let credentials = if mechanism == "OAUTHBEARER" {
            if username.is_some() || password.is_some() {
                return Err(config_err(
                    "sasl.username",
                    "OAUTHBEARER takes no user name or password: set sasl.jaas.config with \
                     OAuthBearerLoginModule, or a token provider",
                ));
            }
            match (provider, jaas) {
                (Some(p), j) => {
                    if let Some(j) = j {
                        check_module(j, &[OAUTH_MODULE], mechanism)?;
                    }
                    let extensions = match j {
                        Some(j) => Unsecured::from_jaas(j).map(|(_, e)| e).unwrap_or_default(),
                        None => Extensions::new(),
                    };
                    Credentials::Token {
                        source: TokenSource::Provider(p.clone()),
                        extensions,
                    }
                }
                (None, Some(j)) => {
                    check_module(j, &[OAUTH_MODULE], mechanism)?;
                    let (u, extensions) = Unsecured::from_jaas(j)?;
                    Credentials::Token {
                        source: TokenSource::Unsecured(u),
                        extensions,
                    }
                }
                (None, None) => {
                    return Err(config_err(
                        "sasl.jaas.config",
                        "OAUTHBEARER needs a token: set ProducerConfig::oauth_token_provider, or \
                         sasl.jaas.config with OAuthBearerLoginModule's unsecuredLoginStringClaim_sub \
                         (unsecured tokens, for tests)",
                    ))
                }
            }
        } else {
            if provider.is_some() {
                return Err(config_err(
                    "sasl.mechanism",
                    format!("an OAuth token provider is set, but sasl.mechanism is {mechanism}: set OAUTHBEARER"),
                ));
            }
            let (user, pass) = match jaas {
                Some(j) => {
                    check_module(j, &[PLAIN_MODULE, SCRAM_MODULE], mechanism)?;
                    let name = j.short_name().to_owned();
                    let user = j.option("username").ok_or_else(|| {
                        config_err("sasl.jaas.config", format!("{name} needs username=\"...\""))
                    })?;
                    let pass = j.option("password").ok_or_else(|| {
                        config_err("sasl.jaas.config", format!("{name} needs password=\"...\""))
                    })?;
                    (user.to_owned(), Password::new(pass.to_owned()))
                }
                None => match (username, password) {
                    (Some(u), Some(p)) => (u.to_owned(), p.clone()),
                    (Some(_), None) => {
                        return Err(config_err("sasl.password", format!("{mechanism} needs a password: sasl.username is set, sasl.password is not")))
                    }
                    (None, Some(_)) => {
                        return Err(config_err("sasl.username", format!("{mechanism} needs a user name: sasl.password is set, sasl.username is not")))
                    }
                    (None, None) => {
                        return Err(config_err(
                            "sasl.jaas.config",
                            format!(
                                "{mechanism} needs credentials: set sasl.jaas.config (such as \
                                 {} required username=\"...\" password=\"...\";) or \
                                 sasl.username and sasl.password",
                                if mechanism == "PLAIN" { PLAIN_MODULE } else { SCRAM_MODULE }
                            ),
                        ))
                    }
                },
            };
            if user.is_empty() {
                return Err(config_err("sasl.jaas.config", "the user name is empty"));
            }
            if mechanism == "PLAIN" && (user.contains('\0') || pass.reveal().contains('\0')) {
                return Err(config_err(
                    "sasl.jaas.config",
                    "PLAIN user names and passwords cannot contain NUL (RFC 4616)",
                ));
            }
            Credentials::Password {
                username: user,
                password: pass,
            }
        };
        Ok(Sasl {
            mechanism,
            credentials,
        })
    }

    /// The mechanism's name (`sasl.mechanism`).
    pub(crate) fn mechanism(&self) -> &'static str {
        self.mechanism
    }

    /// A fresh exchange (for OAUTHBEARER, with a token asked for now).
    fn start(&self) -> std::result::Result<Exchange, String> {
        Ok(match (&self.credentials, self.mechanism) {
            (Credentials::Password { username, password }, "PLAIN") => {
                Exchange::Plain(Plain::new(username, password.reveal()))
            }
            (Credentials::Password { username, password }, m) => {
                let hash = if m == "SCRAM-SHA-512" {
                    Hash::Sha512
                } else {
                    Hash::Sha256
                };
                Exchange::Scram(Scram::new(hash, username, password.reveal()))
            }
            (Credentials::Token { source, extensions }, _) => {
                let token = match source {
                    TokenSource::Provider(p) => {
                        // A panicking provider fails this authentication,
                        // not the connector thread.
                        let call = std::panic::AssertUnwindSafe(|| (p.0)());
                        std::panic::catch_unwind(call)
                            .map_err(|_| "the OAuth token provider panicked".to_owned())?
                            .map_err(|e| format!("the OAuth token provider failed: {e}"))?
                    }
                    TokenSource::Unsecured(u) => u.token(crate::util::now_ms()),
                };
                Exchange::OAuth(OAuthBearer::new(&token.value, extensions))
            }
        })
    }
}

/// A login module that fits the mechanism, or a config error.
fn check_module(j: &jaas::JaasEntry, fits: &[&str], mechanism: &str) -> Result<()> {
    if j.module.contains("Krb5LoginModule") {
        return Err(config_err(
            "sasl.jaas.config",
            "Krb5LoginModule (Kerberos, GSSAPI) is not supported",
        ));
    }
    if fits.contains(&j.module.as_str()) {
        return Ok(());
    }
    Err(config_err(
        "sasl.jaas.config",
        format!(
            "login module {} does not fit sasl.mechanism={mechanism}: use {}",
            j.module,
            fits.join(" or ")
        ),
    ))
}

/// PLAIN (RFC 4616): one message, `authzid NUL authcid NUL password`,
/// with an empty authzid.
struct Plain {
    message: Option<Vec<u8>>,
}

impl Plain {
    fn new(user: &str, password: &str) -> Self {
        let mut m = Vec::with_capacity(user.len() + password.len() + 2);
        m.push(0);
        m.extend_from_slice(user.as_bytes());
        m.push(0);
        m.extend_from_slice(password.as_bytes());
        Plain { message: Some(m) }
    }

    fn step(&mut self, _server: &[u8]) -> std::result::Result<Vec<u8>, String> {
        self.message
            .take()
            .ok_or_else(|| "PLAIN has a single message".to_owned())
    }

    fn is_complete(&self) -> bool {
        self.message.is_none()
    }
}

/// One mechanism's exchange in progress.
enum Exchange {
    Plain(Plain),
    Scram(Scram),
    OAuth(OAuthBearer),
}

impl Exchange {
    fn step(&mut self, server: &[u8]) -> std::result::Result<Vec<u8>, String> {
        match self {
            Exchange::Plain(m) => m.step(server),
            Exchange::Scram(m) => m.step(server),
            Exchange::OAuth(m) => m.step(server),
        }
    }

    /// True once the client has nothing more to send or check: the
    /// broker's acceptance of the last message ends the exchange.
    fn is_complete(&self) -> bool {
        match self {
            Exchange::Plain(m) => m.is_complete(),
            Exchange::Scram(m) => m.is_complete(),
            Exchange::OAuth(m) => m.is_complete(),
        }
    }

    /// What the mechanism learnt of a failure (OAUTHBEARER's JSON).
    fn detail(&self) -> Option<&str> {
        match self {
            Exchange::OAuth(m) => m.server_error.as_deref(),
            _ => None,
        }
    }
}

/// The most SaslAuthenticate round trips an exchange may take (SCRAM
/// takes two): a broker that keeps asking must not keep us forever.
const MAX_ROUNDS: usize = 4;

/// Authenticates `conn` (ApiVersions done) with `sasl`, each request
/// within `timeout`. Returns the session's lifetime if the broker gave one
/// (KIP-368), counted from before the last SaslAuthenticate was sent.
///
/// # Errors
///
/// [`Error::Authentication`] naming the broker and mechanism, with the
/// broker's message: the mechanism is not enabled (the error lists those
/// that are), the credentials are refused, the server's proof fails, the
/// listener does not speak SASL. [`Error::Network`] or
/// [`Error::Protocol`] as for any request; [`Error::UnsupportedVersion`]
/// for a broker without SaslHandshake v1.
pub(crate) fn authenticate<S: Transport>(
    conn: &mut Connection<S>,
    sasl: &Sasl,
    timeout: Duration,
) -> Result<Option<(Instant, Duration)>> {
    let mechanism = sasl.mechanism;
    let fail = |conn: &Connection<S>, message: String| Error::Authentication {
        broker: conn.label.clone(),
        message: format!("SASL {mechanism}: {message}"),
    };
    let v = conn.version_for(&sasl_handshake::API)?;
    let req = SaslHandshakeRequest {
        mechanism: mechanism.to_owned(),
    };
    let body = conn.request(
        &sasl_handshake::API,
        v,
        |b| req.encode(b, v),
        later(Instant::now(), timeout),
    )?;
    let hs = SaslHandshakeResponse::decode(&body, v)
        .map_err(|e| Error::Protocol(format!("SaslHandshake from {}: {e}", conn.label)))?;
    match ErrorCode(hs.error_code) {
        ErrorCode::NONE => {}
        ErrorCode::UNSUPPORTED_SASL_MECHANISM => {
            return Err(fail(
                conn,
                format!(
                    "the broker does not enable {mechanism} on this listener; it enables: {}",
                    if hs.mechanisms.is_empty() {
                        "none".to_owned()
                    } else {
                        hs.mechanisms.join(", ")
                    }
                ),
            ))
        }
        ErrorCode::ILLEGAL_SASL_STATE => {
            return Err(fail(
                conn,
                "the broker refused SaslHandshake (ILLEGAL_SASL_STATE): this listener may not \
                 expect SASL; check security.protocol for this port"
                    .into(),
            ))
        }
        code => return Err(fail(conn, format!("SaslHandshake failed with {code}"))),
    }
    let v = conn.version_for(&sasl_authenticate::API)?;
    let mut exchange = sasl.start().map_err(|m| fail(conn, m))?;
    let mut out = exchange.step(&[]).map_err(|m| fail(conn, m))?;
    for _ in 0..MAX_ROUNDS {
        let sent_at = Instant::now();
        let body = conn.request(
            &sasl_authenticate::API,
            v,
            |b| SaslAuthenticateRequest { auth_bytes: &out }.encode(b, v),
            later(sent_at, timeout),
        )?;
        let resp = SaslAuthenticateResponse::decode(&body, v)
            .map_err(|e| Error::Protocol(format!("SaslAuthenticate from {}: {e}", conn.label)))?;
        let code = ErrorCode(resp.error_code);
        if !code.is_ok() {
            let mut message = match resp.error_message.as_deref() {
                Some(m) if !m.is_empty() => format!("{code}: {m}"),
                _ => code.to_string(),
            };
            if let Some(d) = exchange.detail() {
                message.push_str(&format!(" (the broker said: {d})"));
            }
            return Err(fail(conn, message));
        }
        let lifetime = (resp.session_lifetime_ms > 0).then(|| {
            (
                sent_at,
                Duration::from_millis(resp.session_lifetime_ms as u64),
            )
        });
        if exchange.is_complete() {
            return Ok(lifetime);
        }
        out = exchange.step(&resp.auth_bytes).map_err(|m| fail(conn, m))?;
        if exchange.is_complete() && out.is_empty() {
            return Ok(lifetime);
        }
    }
    Err(fail(
        conn,
        format!("the exchange did not end within {MAX_ROUNDS} SaslAuthenticate round trips"),
    ))
}

/// When to authenticate again for a session of `lifetime` that began at
/// `start`: at a random point between 85% and 95% of it, as Java does
/// (KIP-368), so that many connections do not all renew at once.
pub(crate) fn reauth_at(start: Instant, lifetime: Duration) -> Instant {
    let mut b = [0u8; 4];
    let r = match getrandom::fill(&mut b) {
        Ok(()) => u32::from_le_bytes(b) as f64 / u32::MAX as f64,
        Err(_) => 0.5,
    };
    later(start, lifetime.mul_f64(0.85 + 0.10 * r))
}

#[cfg(test)]
mod tests;
