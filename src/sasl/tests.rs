//! The exchange against a fake broker on a local port: ApiVersions, then
//! SaslHandshake and SaslAuthenticate as Kafka answers them, with the
//! server side of each mechanism written from its RFC.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine as _;

use super::*;
use crate::io::conn::SocketBuffers;
use crate::protocol::messages::api_versions::{ApiVersionRange, ApiVersionsResponse};
use crate::protocol::primitives::Decoder;

/// What the fake broker accepts.
#[derive(Clone)]
struct Broker {
    mechanisms: Vec<&'static str>,
    user: &'static str,
    password: &'static str,
    /// SaslAuthenticate's session_lifetime_ms (v1+).
    lifetime_ms: i64,
    /// Answer SaslHandshake with ILLEGAL_SASL_STATE (a plaintext listener).
    plaintext: bool,
    /// Successful authentications so far.
    authenticated: Arc<AtomicUsize>,
}

impl Default for Broker {
    fn default() -> Self {
        Broker {
            mechanisms: vec!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"],
            user: "alice",
            password: "alice-secret",
            lifetime_ms: 0,
            plaintext: false,
            authenticated: Arc::new(AtomicUsize::new(0)),
        }
    }
}

fn read_request(s: &mut TcpStream) -> std::io::Result<(i16, i16, i32, Vec<u8>)> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size)?;
    let mut f = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut f)?;
    let mut d = Decoder::new(&f, false);
    let (key, version, corr) = (d.i16().unwrap(), d.i16().unwrap(), d.i32().unwrap());
    let _client = d.classic_nullable_string().unwrap();
    let api = crate::protocol::messages::api::by_key(key).expect("an API we send");
    let mut at = d.position();
    if api.request_header_version(version) >= 2 {
        let mut t = Decoder::new(&f[at..], true);
        t.skip_tagged_fields().unwrap();
        at += t.position();
    }
    Ok((key, version, corr, f[at..].to_vec()))
}

fn respond(s: &mut TcpStream, key: i16, version: i16, corr: i32, body: &[u8]) {
    let api = crate::protocol::messages::api::by_key(key).unwrap();
    let mut f = corr.to_be_bytes().to_vec();
    if api.response_header_version(version) >= 1 {
        f.push(0);
    }
    f.extend_from_slice(body);
    let mut out = (f.len() as i32).to_be_bytes().to_vec();
    out.extend(f);
    s.write_all(&out).unwrap();
}

/// The server side of one mechanism's exchange.
enum Server {
    None,
    Scram {
        hash: Hash,
        first_bare: String,
        server_first: String,
        nonce: String,
    },
    OAuthRefused,
}

const SALT: &[u8] = b"0123456789abcdef";

impl Broker {
    /// Serves connections until the test ends (one thread per connection).
    fn start(self) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                let b = self.clone();
                std::thread::spawn(move || b.serve(s));
            }
        });
        port
    }

    fn serve(self, mut s: TcpStream) {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut mechanism = String::new();
        let mut server = Server::None;
        while let Ok((key, v, corr, body)) = read_request(&mut s) {
            let out = match key {
                18 => {
                    let mut out = Vec::new();
                    ApiVersionsResponse {
                        api_keys: vec![
                            ApiVersionRange {
                                api_key: 17,
                                min_version: 0,
                                max_version: 1,
                            },
                            ApiVersionRange {
                                api_key: 36,
                                min_version: 0,
                                max_version: 2,
                            },
                        ],
                        ..Default::default()
                    }
                    .encode(&mut out, v);
                    out
                }
                17 => {
                    let m = SaslHandshakeRequest::decode(&body, v).unwrap().mechanism;
                    let error_code = if self.plaintext {
                        34
                    } else if self.mechanisms.contains(&m.as_str()) {
                        0
                    } else {
                        33
                    };
                    mechanism = m;
                    let mut out = Vec::new();
                    SaslHandshakeResponse {
                        error_code,
                        mechanisms: self.mechanisms.iter().map(|m| m.to_string()).collect(),
                    }
                    .encode(&mut out, v);
                    out
                }
                36 => {
                    let token = SaslAuthenticateRequest::decode(&body, v).unwrap();
                    let r = self.authenticate(&mechanism, &mut server, &token);
                    let mut out = Vec::new();
                    r.encode(&mut out, v);
                    out
                }
                _ => panic!("unexpected API {key}"),
            };
            respond(&mut s, key, v, corr, &out);
        }
    }

    fn authenticate(
        &self,
        mechanism: &str,
        server: &mut Server,
        token: &[u8],
    ) -> SaslAuthenticateResponse {
        let ok = |bytes: Vec<u8>| SaslAuthenticateResponse {
            auth_bytes: bytes,
            session_lifetime_ms: self.lifetime_ms,
            ..Default::default()
        };
        let refuse = |m: &str| SaslAuthenticateResponse {
            error_code: 58,
            error_message: Some(m.to_owned()),
            ..Default::default()
        };
        let done = |bytes: Vec<u8>| {
            self.authenticated.fetch_add(1, Ordering::SeqCst);
            ok(bytes)
        };
        match (mechanism, std::mem::replace(server, Server::None)) {
            ("PLAIN", _) => {
                let expected = format!("\0{}\0{}", self.user, self.password);
                if token == expected.as_bytes() {
                    done(Vec::new())
                } else {
                    refuse("Authentication failed: Invalid username or password")
                }
            }
            ("SCRAM-SHA-256" | "SCRAM-SHA-512", Server::None) => {
                let hash = if mechanism == "SCRAM-SHA-512" {
                    Hash::Sha512
                } else {
                    Hash::Sha256
                };
                let first = std::str::from_utf8(token).unwrap();
                let bare = first.strip_prefix("n,,").unwrap().to_owned();
                let client_nonce = bare.split(",r=").nth(1).unwrap().to_owned();
                let nonce = format!("{client_nonce}srv%nonce");
                let server_first = format!("r={nonce},s={},i=4096", B64.encode(SALT));
                *server = Server::Scram {
                    hash,
                    first_bare: bare,
                    server_first: server_first.clone(),
                    nonce,
                };
                ok(server_first.into_bytes())
            }
            (
                _,
                Server::Scram {
                    hash: h,
                    first_bare,
                    server_first,
                    nonce,
                },
            ) => {
                let fin = std::str::from_utf8(token).unwrap();
                let (without, proof) = fin.rsplit_once(",p=").unwrap();
                assert_eq!(without, format!("c=biws,r={nonce}"));
                let user = first_bare
                    .split(',')
                    .next()
                    .unwrap()
                    .strip_prefix("n=")
                    .unwrap();
                let salted = h.hi(self.password.as_bytes(), SALT, 4096);
                let auth = format!("{first_bare},{server_first},{without}");
                let proof = B64.decode(proof).unwrap();
                if user != self.user || !h.proof_verifies(&salted, &auth, &proof) {
                    return refuse(&format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"));
                }
                let server_sig = h.hmac(&h.hmac(&salted, b"Server Key"), auth.as_bytes());
                done(format!("v={}", B64.encode(server_sig)).into_bytes())
            }
            ("OAUTHBEARER", Server::OAuthRefused) => {
                assert_eq!(token, b"\x01");
                refuse("Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER")
            }
            ("OAUTHBEARER", _) => {
                let t = std::str::from_utf8(token).unwrap();
                let jwt = t
                    .strip_prefix("n,,\x01auth=Bearer ")
                    .and_then(|t| t.split('\x01').next())
                    .unwrap();
                // The unsecured validator: alg none, a sub claim, exp later.
                let parts: Vec<&str> = jwt.split('.').collect();
                let claims: Option<serde_json::Value> = (parts.len() == 3)
                    .then(|| B64URL.decode(parts[1]).ok())
                    .flatten()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                let good = claims.is_some_and(|c| {
                    c["sub"] == self.user && c["exp"].as_i64() > c["iat"].as_i64()
                });
                if good {
                    done(Vec::new())
                } else {
                    *server = Server::OAuthRefused;
                    ok(br#"{"status":"invalid_token"}"#.to_vec())
                }
            }
            (m, _) => panic!("mechanism {m}"),
        }
    }
}

fn sasl(mechanism: &str, jaas_text: &str) -> Sasl {
    let j = jaas::parse(jaas_text).unwrap();
    Sasl::from_config(mechanism, Some(&j), None, None, None).unwrap()
}

fn plain(user: &str, password: &str) -> Sasl {
    sasl(
        "PLAIN",
        &format!("{PLAIN_MODULE} required username=\"{user}\" password=\"{password}\";"),
    )
}

fn scram(mechanism: &str, user: &str, password: &str) -> Sasl {
    sasl(
        mechanism,
        &format!("{SCRAM_MODULE} required username=\"{user}\" password=\"{password}\";"),
    )
}

fn oauth(sub: &str) -> Sasl {
    sasl(
        "OAUTHBEARER",
        &format!("{OAUTH_MODULE} required unsecuredLoginStringClaim_sub=\"{sub}\";"),
    )
}

fn open(port: u16, s: &Sasl) -> Result<Connection> {
    Connection::open(
        "node 1 (127.0.0.1)".into(),
        "127.0.0.1",
        port,
        "cid",
        Duration::from_secs(10),
        Duration::from_secs(10),
        SocketBuffers::default(),
        None,
        Some(s),
    )
}

#[test]
fn each_mechanism_authenticates() {
    let b = Broker::default();
    let count = b.authenticated.clone();
    let port = b.start();
    for s in [
        plain("alice", "alice-secret"),
        scram("SCRAM-SHA-256", "alice", "alice-secret"),
        scram("SCRAM-SHA-512", "alice", "alice-secret"),
        oauth("alice"),
    ] {
        let c = open(port, &s).unwrap_or_else(|e| panic!("{}: {e}", s.mechanism()));
        assert_eq!(c.reauth_at(), None, "no session lifetime given");
    }
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

#[test]
fn refused_credentials_are_authentication_errors_naming_broker_and_mechanism() {
    let port = Broker::default().start();
    for s in [
        plain("alice", "wrong"),
        scram("SCRAM-SHA-256", "alice", "wrong"),
        scram("SCRAM-SHA-512", "mallory", "alice-secret"),
        oauth("mallory"),
    ] {
        let e = open(port, &s).map(|_| ()).unwrap_err();
        match &e {
            Error::Authentication { broker, message } => {
                assert_eq!(broker, "node 1 (127.0.0.1)");
                assert!(
                    message.starts_with(&format!("SASL {}: ", s.mechanism())),
                    "{e}"
                );
                assert!(message.contains("Authentication failed"), "{e}");
                if s.mechanism() == "OAUTHBEARER" {
                    assert!(message.contains("invalid_token"), "the broker's JSON: {e}");
                }
            }
            _ => panic!("{}: {e:?}", s.mechanism()),
        }
        assert!(!e.is_retriable());
        assert!(!e.to_string().contains("wrong"), "no password in {e}");
    }
}

#[test]
fn an_unsupported_mechanism_lists_the_brokers() {
    let port = Broker {
        mechanisms: vec!["SCRAM-SHA-256", "OAUTHBEARER"],
        ..Default::default()
    }
    .start();
    let e = open(port, &plain("alice", "alice-secret"))
        .map(|_| ())
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    assert!(
        text.contains("does not enable PLAIN") && text.contains("SCRAM-SHA-256, OAUTHBEARER"),
        "{text}"
    );
}

#[test]
fn a_listener_without_sasl_says_so() {
    let port = Broker {
        plaintext: true,
        ..Default::default()
    }
    .start();
    let e = open(port, &plain("alice", "alice-secret"))
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("security.protocol"), "{e}");
}

#[test]
fn a_session_lifetime_schedules_reauthentication_which_renews_the_session() {
    let b = Broker {
        lifetime_ms: 1000,
        ..Default::default()
    };
    let count = b.authenticated.clone();
    let port = b.start();
    // PLAIN: quick (SCRAM's 4096 iterations take a while in a debug build).
    let s = plain("alice", "alice-secret");
    let before = Instant::now();
    let mut c = open(port, &s).unwrap();
    let after = Instant::now();
    let at = c.reauth_at().expect("a lifetime was given");
    // 85% to 95% of the lifetime, from around the last request
    assert!(
        at >= before + Duration::from_millis(850),
        "{:?}",
        at - before
    );
    assert!(
        at <= after + Duration::from_millis(950),
        "{:?}",
        at - before
    );
    assert!(!c.reauth_due(Instant::now()));
    // not due: nothing happens
    c.renew_if_due(Some(&s), Duration::from_secs(5)).unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(c.reauth_due(at));
    while !c.reauth_due(Instant::now()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    c.renew_if_due(Some(&s), Duration::from_secs(5)).unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 2, "authenticated again");
    assert!(c.reauth_at().unwrap() > at, "a new session");
}

#[test]
fn reauthentication_jitter_stays_within_85_to_95_percent() {
    let start = Instant::now();
    let life = Duration::from_secs(100);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let at = reauth_at(start, life) - start;
        assert!(
            at >= Duration::from_secs(85) && at <= Duration::from_secs(95),
            "{at:?}"
        );
        seen.insert(at.as_millis());
    }
    assert!(seen.len() > 100, "random: {} distinct", seen.len());
}

#[test]
fn a_token_provider_is_asked_at_every_authentication() {
    let port = Broker::default().start();
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    let provider = TokenProvider(Arc::new(move || {
        n.fetch_add(1, Ordering::SeqCst);
        let body = B64URL.encode(br#"{"sub":"alice","iat":1,"exp":2}"#);
        Ok(OAuthToken {
            value: format!("e30.{body}."),
            lifetime_ms: 2000,
            principal: "alice".into(),
        })
    }));
    let s = Sasl::from_config("OAUTHBEARER", None, None, None, Some(&provider)).unwrap();
    open(port, &s).unwrap();
    open(port, &s).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let panicking = TokenProvider(Arc::new(|| panic!("provider bug")));
    let s = Sasl::from_config("OAUTHBEARER", None, None, None, Some(&panicking)).unwrap();
    let e = open(port, &s).map(|_| ()).unwrap_err();
    assert!(
        matches!(&e, Error::Authentication { message, .. } if message.contains("panicked")),
        "{e:?}"
    );

    let failing = TokenProvider(Arc::new(|| Err("the identity provider is down".into())));
    let s = Sasl::from_config("OAUTHBEARER", None, None, None, Some(&failing)).unwrap();
    let e = open(port, &s).map(|_| ()).unwrap_err();
    assert!(
        matches!(&e, Error::Authentication { message, .. } if message.contains("identity provider is down")),
        "{e:?}"
    );
}

#[test]
fn plain_sends_rfc_4616s_message() {
    let mut p = Plain::new("alice", "pw");
    assert_eq!(p.step(b"").unwrap(), b"\0alice\0pw");
    assert!(p.is_complete());
    assert!(p.step(b"").is_err());
}

#[test]
fn settings_are_checked_against_the_mechanism() {
    let j = |t: &str| jaas::parse(t).unwrap();
    let pw = Password::new("p".into());
    let cases: Vec<(Result<Sasl>, &str, &str)> = vec![
        (
            Sasl::from_config("GSSAPI", None, None, None, None),
            "sasl.mechanism",
            "Kerberos",
        ),
        (
            Sasl::from_config("plain", None, None, None, None),
            "sasl.mechanism",
            "case-sensitive",
        ),
        (
            Sasl::from_config("PLAIN", None, None, None, None),
            "sasl.jaas.config",
            "needs credentials",
        ),
        (
            Sasl::from_config("PLAIN", None, Some("u"), None, None),
            "sasl.password",
            "needs a password",
        ),
        (
            Sasl::from_config(
                "PLAIN",
                Some(&j(&format!("{OAUTH_MODULE} required;"))),
                None,
                None,
                None,
            ),
            "sasl.jaas.config",
            "does not fit",
        ),
        (
            Sasl::from_config(
                "SCRAM-SHA-256",
                Some(&j(&format!("{SCRAM_MODULE} required username=\"u\";"))),
                None,
                None,
                None,
            ),
            "sasl.jaas.config",
            "needs password",
        ),
        (
            Sasl::from_config(
                "PLAIN",
                Some(&j(&format!(
                    "{PLAIN_MODULE} required username=\"u\" password=\"p\";"
                ))),
                Some("u"),
                Some(&pw),
                None,
            ),
            "sasl.username",
            "not both",
        ),
        (
            Sasl::from_config("OAUTHBEARER", None, None, None, None),
            "sasl.jaas.config",
            "needs a token",
        ),
        (
            Sasl::from_config(
                "OAUTHBEARER",
                Some(&j("com.sun.security.auth.module.Krb5LoginModule required;")),
                None,
                None,
                None,
            ),
            "sasl.jaas.config",
            "Kerberos",
        ),
    ];
    for (r, key, says) in cases {
        let e = r.map(|_| ()).unwrap_err();
        assert!(
            matches!(&e, Error::Config { key: k, message } if k == key && message.contains(says)),
            "{key} / {says}: {e}"
        );
    }
    // PlainLoginModule works for SCRAM too (as in Java), and librdkafka's
    // keys for both.
    let s = Sasl::from_config(
        "SCRAM-SHA-512",
        Some(&j(&format!(
            "{PLAIN_MODULE} required username=\"u\" password=\"p\";"
        ))),
        None,
        None,
        None,
    )
    .unwrap();
    assert_eq!(s.mechanism(), "SCRAM-SHA-512");
    let s = Sasl::from_config("PLAIN", None, Some("u"), Some(&pw), None).unwrap();
    assert!(!format!("{s:?}").contains("\"p\""), "{s:?}");
}
