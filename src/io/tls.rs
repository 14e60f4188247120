//! TLS (`security.protocol=SSL`) over rustls: the client settings built
//! once from the configuration ([`TlsClient`]), and [`Stream`], the
//! transport every [`Connection`](super::conn::Connection) runs over,
//! plain TCP or rustls's `ClientConnection` over TCP.
//!
//! With `conn.rs`, this is the only code that touches a socket.
//!
//! # What runs where
//!
//! The handshake runs in blocking mode inside `Connection::open`, before
//! ApiVersions, with the socket's timeouts set to what is left of the
//! connection set-up timeout ([`TlsClient::handshake`]). A refusal
//! either way (an unknown CA, a wrong host name, an expired certificate,
//! a client certificate the broker refuses, a port that does not speak
//! TLS) is an [`Error::Authentication`] naming the broker.
//!
//! Once set up, an I/O thread drives the stream non-blocking from mio
//! (edge-triggered, on the TCP socket's fd). rustls encrypts what it is
//! given into TLS records it keeps until `write_tls` moves them to the
//! socket, so the stream keeps two promises the connection code relies
//! on:
//!
//! * [`Transport::flush_buffered`] moves buffered records to the socket
//!   until rustls holds none, or the socket is full (`WouldBlock`: the
//!   next writable edge comes when it drains), and
//!   [`Transport::has_buffered`] says whether any are left, so a
//!   connection with nothing of its own to write still asks to write.
//!   `Connection` counts a plaintext byte as written (the acks=0
//!   completion) only once rustls holds nothing: every record encrypting
//!   it has reached the socket.
//! * `read` returns plaintext rustls has decoded before it reads the
//!   socket again, and returns `WouldBlock` only when the socket itself
//!   has nothing more. A record decoded from bytes read earlier is never
//!   left behind for an edge that will not come.
//!
//! [`Transport::shutdown_write`] sends close_notify before the TCP FIN,
//! and dropping a TLS stream sends it too (best effort, without
//! blocking).

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
};

use super::conn::Transport;
use crate::config::{ProducerConfig, StoreType, TlsVersionCap};
use crate::error::{Error, Result};

/// The rustls client settings of a producer: trust, client certificate,
/// versions, host name checking. Built once by `ProducerConfig::validate`
/// (so `Producer::new` reports a missing file), shared by every
/// connection.
pub(crate) struct TlsClient {
    config: Arc<ClientConfig>,
    /// `ssl.endpoint.identification.algorithm=https`.
    verify_host: bool,
    /// Where the trusted CAs came from, for error messages.
    trust_source: String,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("verify_host", &self.verify_host)
            .field("trust", &self.trust_source)
            .finish_non_exhaustive()
    }
}

/// The TLS versions `ssl.enabled.protocols` allows (both if empty), at
/// most `ssl.protocol`'s.
fn versions(cfg: &ProducerConfig) -> Result<Vec<&'static rustls::SupportedProtocolVersion>> {
    let all = [&rustls::version::TLS12, &rustls::version::TLS13];
    let enabled: Vec<_> = all
        .into_iter()
        .filter(|v| {
            let name = match v.version {
                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
                _ => "TLSv1.3",
            };
            cfg.ssl_enabled_protocols.is_empty()
                || cfg.ssl_enabled_protocols.iter().any(|p| p == name)
        })
        .filter(|v| {
            cfg.ssl_protocol != TlsVersionCap::Tls12
                || v.version == rustls::ProtocolVersion::TLSv1_2
        })
        .collect();
    if enabled.is_empty() {
        return Err(Error::config(
            "ssl.enabled.protocols",
            format!(
                "no TLS version left: ssl.enabled.protocols={} with ssl.protocol=TLSv1.2",
                cfg.ssl_enabled_protocols.join(",")
            ),
        ));
    }
    Ok(enabled)
}

/// A certificate or key file, named by its key (for errors).
fn read_file(key: &str, path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::config(key, format!("cannot read {path}: {e}")))
}

/// PEM as rustls's parser reads it: one item per `-----BEGIN`/`-----END`
/// pair, base64 on lines of its own. A PEM text set inline in a Java
/// properties file (backslash continuations) arrives as one line with
/// spaces between its parts, which Java's PEM reader accepts: each such
/// block is laid out on lines again. Text with line breaks is left as is.
fn pem_lines(pem: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let Ok(text) = std::str::from_utf8(pem) else {
        return pem.into();
    };
    if text.contains('\n') || !text.contains("-----BEGIN ") {
        return pem.into();
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let Some(label_end) = rest[begin + 11..].find("-----") else {
            break;
        };
        let header_end = begin + 11 + label_end + 5;
        let label = &rest[begin + 11..begin + 11 + label_end];
        let footer = format!("-----END {label}-----");
        let Some(end) = rest[header_end..].find(&footer) else {
            break;
        };
        out.push_str(&rest[begin..header_end]);
        out.push('\n');
        for word in rest[header_end..header_end + end].split_whitespace() {
            out.push_str(word);
            out.push('\n');
        }
        out.push_str(&footer);
        out.push('\n');
        rest = &rest[header_end + end + footer.len()..];
    }
    out.into_bytes().into()
}

/// What is wrong with a PEM text, without quoting it (it may be a key).
fn pem_problem(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a -----BEGIN section has no -----END line",
        E::IllegalSectionStart { .. } => "a -----BEGIN line is malformed",
        E::Base64Decode(_) => "a section's base64 does not decode",
        E::NoItemsFound => "nothing of the expected kind",
        E::SectionTooLarge => "a section is larger than 256 MB",
        _ => "unreadable PEM",
    }
}

/// The certificates of a PEM text; at least one.
fn pem_certs(key: &str, what: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let pem = &*pem_lines(pem);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            Error::config(
                key,
                format!("{what}: not valid PEM certificates: {}", pem_problem(&e)),
            )
        })?;
    if certs.is_empty() {
        return Err(Error::config(
            key,
            format!("{what}: no PEM certificate (-----BEGIN CERTIFICATE-----) found"),
        ));
    }
    Ok(certs)
}

/// The private key of a PEM text (PKCS#8, PKCS#1 or SEC1), unencrypted.
fn pem_key(key: &str, what: &str, pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    let pem = &*pem_lines(pem);
    let text = String::from_utf8_lossy(pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(Error::config(
            key,
            format!(
                "{what}: the private key is encrypted, and this release reads only unencrypted \
                 PEM keys (ssl.key.password is not supported yet): decrypt it, e.g. with \
                 `openssl pkcs8 -in key.pem -out plain.pem`"
            ),
        ));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        Error::config(
            key,
            format!(
                "{what}: no PEM private key (PKCS#8, PKCS#1 or SEC1) found: {}",
                pem_problem(&e)
            ),
        )
    })
}

/// The files or PEM texts the configuration names, for trust or for
/// the client's identity.
enum Source {
    None,
    /// (key, file path)
    File(&'static str, String),
    /// (key, PEM text)
    Inline(&'static str, String),
    /// librdkafka's `ssl.ca.location`: a file or a directory of them.
    Path(&'static str, String),
}

/// Refuses a store type other than PEM for a store that is used.
fn require_pem(key: &'static str, t: StoreType, used_by: &str) -> Result<()> {
    match t {
        StoreType::Pem => Ok(()),
        other => Err(Error::config(
            key,
            format!(
                "{} stores are not supported: only PEM is (KIP-651); set {key}=PEM and give {used_by} \
                 as PEM (convert a {0} store with keytool/openssl)",
                other.name()
            ),
        )),
    }
}

/// Two settings that go together: both values, or an `Error::Config`
/// naming the one that is missing.
fn both<'a, A, B>(
    a: (&'static str, &'a Option<A>),
    b: (&'static str, &'a Option<B>),
) -> Result<(&'a A, &'a B)> {
    match (a.1, b.1) {
        (Some(x), Some(y)) => Ok((x, y)),
        (x, _) => Err(Error::config(
            if x.is_none() { a.0 } else { b.0 },
            format!("{} and {} go together: set both", a.0, b.0),
        )),
    }
}

impl TlsClient {
    /// The TLS settings of `cfg` (which uses SSL or SASL_SSL), with every
    /// file read and parsed now.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the key: a file that cannot be read
    /// (with its path), a store type other than PEM, settings that
    /// exclude each other, PEM without what it should hold, an encrypted
    /// key, no protocol version left.
    pub(crate) fn from_config(cfg: &ProducerConfig) -> Result<TlsClient> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = versions(cfg)?;
        let (roots, trust_source) = Self::roots(cfg)?;
        let roots = Arc::new(roots);
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| Error::config("ssl.enabled.protocols", e.to_string()))?;
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| Error::config("ssl.truststore.location", e.to_string()))?;
        let builder = if cfg.ssl_verify_host {
            builder.with_webpki_verifier(verifier)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoHostName(verifier)))
        };
        let config = match Self::identity(cfg)? {
            Some((key_name, chain, key)) => {
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::config(key_name, format!("unusable client certificate or key: {e}"))
                })?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(TlsClient {
            config: Arc::new(config),
            verify_host: cfg.ssl_verify_host,
            trust_source,
        })
    }

    /// The CAs to trust: KIP-651's PEM truststore, librdkafka's
    /// `ssl.ca.location`, or the system's.
    fn roots(cfg: &ProducerConfig) -> Result<(RootCertStore, String)> {
        let mut sources = Vec::new();
        if let Some(p) = &cfg.ssl_truststore_location {
            sources.push(Source::File("ssl.truststore.location", p.clone()));
        }
        if let Some(p) = &cfg.ssl_truststore_certificates {
            sources.push(Source::Inline(
                "ssl.truststore.certificates",
                p.reveal().to_owned(),
            ));
        }
        if let Some(p) = &cfg.ssl_ca_location {
            sources.push(Source::Path("ssl.ca.location", p.clone()));
        }
        if sources.len() > 1 {
            return Err(Error::config(
                "ssl.truststore.location",
                "set only one of ssl.truststore.location, ssl.truststore.certificates and \
                 ssl.ca.location (librdkafka's)",
            ));
        }
        let source = sources.pop().unwrap_or(Source::None);
        if matches!(source, Source::File(..) | Source::Inline(..))
            || cfg.is_set("ssl.truststore.type")
        {
            let used_by = "ssl.truststore.location or ssl.truststore.certificates";
            require_pem("ssl.truststore.type", cfg.ssl_truststore_type, used_by)?;
        }
        let mut roots = RootCertStore::empty();
        let mut add = |key: &str, what: &str, pem: &[u8]| -> Result<()> {
            for c in pem_certs(key, what, pem)? {
                roots.add(c).map_err(|e| {
                    Error::config(key, format!("{what}: unusable CA certificate: {e}"))
                })?;
            }
            Ok(())
        };
        let described = match source {
            Source::File(key, path) => {
                add(key, &path, &read_file(key, &path)?)?;
                format!("{key}={path}")
            }
            Source::Inline(key, pem) => {
                add(key, "the certificates", pem.as_bytes())?;
                key.to_owned()
            }
            Source::Path(key, path) => {
                let meta = std::fs::metadata(&path)
                    .map_err(|e| Error::config(key, format!("cannot read {path}: {e}")))?;
                if meta.is_dir() {
                    let entries = std::fs::read_dir(&path)
                        .map_err(|e| Error::config(key, format!("cannot read {path}: {e}")))?;
                    for entry in entries.flatten() {
                        let p = entry.path();
                        let Ok(bytes) = std::fs::read(&p) else {
                            continue;
                        };
                        // Not every file of a CA directory is a certificate.
                        let _ = add(key, &p.display().to_string(), &bytes);
                    }
                    if roots.is_empty() {
                        return Err(Error::config(
                            key,
                            format!("{path}: no PEM CA certificate found in the directory"),
                        ));
                    }
                } else {
                    add(key, &path, &read_file(key, &path)?)?;
                }
                format!("{key}={path}")
            }
            Source::None => {
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    let _ = roots.add(c);
                }
                if roots.is_empty() {
                    let why = found
                        .errors
                        .first()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    return Err(Error::config(
                        "ssl.truststore.location",
                        format!(
                            "no truststore is set and the system has no CA certificates{why}; \
                             set ssl.truststore.type=PEM with ssl.truststore.location"
                        ),
                    ));
                }
                "the system's CA certificates".to_owned()
            }
        };
        Ok((roots, described))
    }

    /// The client certificate chain and key, if any: KIP-651's PEM
    /// keystore (one file, or the two PEM texts) or librdkafka's
    /// `ssl.certificate.location` + `ssl.key.location`.
    #[allow(clippy::type_complexity)]
    fn identity(
        cfg: &ProducerConfig,
    ) -> Result<
        Option<(
            &'static str,
            Vec<CertificateDer<'static>>,
            PrivateKeyDer<'static>,
        )>,
    > {
        let inline = cfg.ssl_keystore_key.is_some() || cfg.ssl_keystore_certificate_chain.is_some();
        let librdkafka = cfg.ssl_certificate_location.is_some() || cfg.ssl_key_location.is_some();
        let file = cfg.ssl_keystore_location.is_some();
        if usize::from(inline) + usize::from(librdkafka) + usize::from(file) > 1 {
            return Err(Error::config(
                "ssl.keystore.location",
                "set only one of ssl.keystore.location, ssl.keystore.key with \
                 ssl.keystore.certificate.chain, and ssl.certificate.location with \
                 ssl.key.location (librdkafka's)",
            ));
        }
        if inline || file || cfg.is_set("ssl.keystore.type") {
            let used_by =
                "ssl.keystore.location or ssl.keystore.key and ssl.keystore.certificate.chain";
            require_pem("ssl.keystore.type", cfg.ssl_keystore_type, used_by)?;
        }
        if let Some(path) = &cfg.ssl_keystore_location {
            let key = "ssl.keystore.location";
            let pem = read_file(key, path)?;
            let chain = pem_certs(key, path, &pem)?;
            return Ok(Some((key, chain, pem_key(key, path, &pem)?)));
        }
        if inline {
            let (key, chain) = both(
                ("ssl.keystore.key", &cfg.ssl_keystore_key),
                (
                    "ssl.keystore.certificate.chain",
                    &cfg.ssl_keystore_certificate_chain,
                ),
            )?;
            let chain = pem_certs(
                "ssl.keystore.certificate.chain",
                "the certificate chain",
                chain.reveal().as_bytes(),
            )?;
            let key = pem_key("ssl.keystore.key", "the key", key.reveal().as_bytes())?;
            return Ok(Some(("ssl.keystore.key", chain, key)));
        }
        if librdkafka {
            let (cert, keyfile) = both(
                ("ssl.certificate.location", &cfg.ssl_certificate_location),
                ("ssl.key.location", &cfg.ssl_key_location),
            )?;
            let chain = pem_certs(
                "ssl.certificate.location",
                cert,
                &read_file("ssl.certificate.location", cert)?,
            )?;
            let key = pem_key(
                "ssl.key.location",
                keyfile,
                &read_file("ssl.key.location", keyfile)?,
            )?;
            return Ok(Some(("ssl.certificate.location", chain, key)));
        }
        Ok(None)
    }

    /// Runs the TLS handshake with `host` over `tcp` in blocking mode,
    /// by `deadline`. `label` names the broker in errors.
    ///
    /// # Errors
    ///
    /// [`Error::Authentication`] if either side refuses the other (or
    /// the port does not speak TLS); [`Error::Network`] if the handshake
    /// times out or the socket fails.
    pub(crate) fn handshake(
        &self,
        label: &str,
        host: &str,
        tcp: TcpStream,
        deadline: Instant,
    ) -> Result<TlsStream> {
        let net = |message: String| Error::Network {
            broker: label.to_owned(),
            message,
        };
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| net(format!("{host} is not a valid TLS server name: {e}")))?;
        let tls = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| net(format!("cannot start TLS: {e}")))?;
        let mut s = TlsStream {
            tcp,
            tls,
            failure: None,
            host: host.to_owned(),
        };
        let started = Instant::now();
        while s.tls.is_handshaking() || s.tls.wants_write() {
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero());
            let timed_out = || {
                net(format!(
                    "the TLS handshake did not complete within {} ms \
                     (socket.connection.setup.timeout.ms)",
                    deadline.saturating_duration_since(started).as_millis()
                ))
            };
            let Some(left) = left else {
                return Err(timed_out());
            };
            s.tcp
                .set_read_timeout(Some(left))
                .and_then(|()| s.tcp.set_write_timeout(Some(left)))
                .map_err(|e| net(format!("setting socket timeouts: {e}")))?;
            match s.tls.complete_io(&mut s.tcp) {
                Ok((0, 0)) if s.tls.is_handshaking() => {
                    return Err(self.refused(label, &s, HandshakeFailure::Eof))
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(timed_out())
                }
                Err(e) => {
                    let failure = match rustls_error(&e) {
                        Some(r) => HandshakeFailure::Tls(r.clone()),
                        None if e.kind() == ErrorKind::UnexpectedEof => HandshakeFailure::Eof,
                        None if e.kind() == ErrorKind::ConnectionReset => HandshakeFailure::Reset,
                        None => return Err(net(format!("TLS handshake: {e}"))),
                    };
                    return Err(self.refused(label, &s, failure));
                }
            }
        }
        log::debug!(
            "{label}: TLS {:?}, {:?}",
            s.tls.protocol_version(),
            s.tls.negotiated_cipher_suite().map(|c| c.suite())
        );
        Ok(s)
    }

    /// The authentication error for a handshake that failed.
    fn refused(&self, label: &str, s: &TlsStream, f: HandshakeFailure) -> Error {
        let message = match f {
            HandshakeFailure::Tls(e) => describe(&e, &s.host, &self.trust_source),
            HandshakeFailure::Eof | HandshakeFailure::Reset => format!(
                "the broker {} the connection during the TLS handshake: the port does not \
                 seem to speak TLS (a PLAINTEXT or SASL_PLAINTEXT listener? then set \
                 security.protocol to match it), or it refused this client",
                if matches!(f, HandshakeFailure::Eof) {
                    "closed"
                } else {
                    "reset"
                }
            ),
        };
        Error::Authentication {
            broker: label.to_owned(),
            message,
        }
    }
}

enum HandshakeFailure {
    Tls(rustls::Error),
    Eof,
    Reset,
}

/// The rustls error inside an I/O error, if that is what it is.
fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

/// A TLS failure in words a user can act on.
pub(crate) fn describe(e: &rustls::Error, host: &str, trust: &str) -> String {
    use rustls::{AlertDescription as A, Error as E};
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => format!(
                "the broker's certificate is not signed by a trusted CA ({trust}; set \
                 ssl.truststore.location or ssl.ca.location to the CA that signed it): {e}"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the broker's certificate is not valid for the host name {host} \
                     (ssl.endpoint.identification.algorithm=https checks it; connect by a \
                     name the certificate lists): {e}"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the broker's certificate has expired: {e}")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the broker's certificate is not valid yet (check the clocks): {e}")
            }
            CertificateError::Revoked => format!("the broker's certificate is revoked: {e}"),
            _ => format!("the broker's certificate was refused: {e}"),
        },
        E::AlertReceived(
            a @ (A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::AccessDenied
            | A::HandshakeFailure),
        ) => format!(
            "the broker refused the handshake ({a:?} alert): it probably requires a client \
             certificate it trusts (ssl.keystore.location, or ssl.keystore.key with \
             ssl.keystore.certificate.chain, or ssl.certificate.location with ssl.key.location)"
        ),
        E::AlertReceived(a @ A::ProtocolVersion) => format!(
            "the broker refused the handshake ({a:?} alert): no TLS version in common \
             (ssl.enabled.protocols, ssl.protocol)"
        ),
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. } => {
            format!(
                "the broker's answer is not TLS ({e}): the port does not seem to speak TLS (a \
                 PLAINTEXT or SASL_PLAINTEXT listener? then set security.protocol to match it)"
            )
        }
        _ => format!("TLS handshake failed: {e}"),
    }
}

/// The chain check without the host name check
/// (`ssl.endpoint.identification.algorithm=` empty): webpki checks the
/// chain, validity and usage first and the name last, so a
/// `NotValidForName` verdict means everything else passed.
#[derive(Debug)]
struct NoHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for NoHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A TLS session over a TCP socket.
pub(crate) struct TlsStream {
    tcp: TcpStream,
    tls: ClientConnection,
    /// The first TLS error after the handshake (an alert from the
    /// broker, a bad record): `Connection::open` turns one that ends the
    /// set-up into an authentication error.
    failure: Option<rustls::Error>,
    host: String,
}

impl TlsStream {
    /// Moves buffered TLS records to the socket until none is left.
    fn flush_records(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: rustls::Error) -> io::Error {
        // An alert for the broker may be queued: try to send it.
        let _ = self.tls.write_tls(&mut self.tcp);
        let err = io::Error::new(ErrorKind::InvalidData, e.clone());
        self.failure.get_or_insert(e);
        err
    }
}

impl Read for TlsStream {
    /// Plaintext rustls has decoded, else reads the socket and decodes
    /// until there is some, the socket has nothing more (`WouldBlock`),
    /// or the broker closed (`Ok(0)`).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n), // 0: close_notify
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The TCP stream ended without close_notify.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => {
                    // EOF: decode what came before it, then report it.
                    if let Err(e) = self.tls.process_new_packets() {
                        return Err(self.fail(e));
                    }
                    return match self.tls.reader().read(buf) {
                        Ok(n) => Ok(n),
                        Err(_) => Ok(0),
                    };
                }
                Ok(_) => {
                    if let Err(e) = self.tls.process_new_packets() {
                        return Err(self.fail(e));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsStream {
    /// Encrypts (part of) `buf` into records rustls buffers (up to its
    /// buffer limit); [`Transport::flush_buffered`] moves them to the
    /// socket. `WouldBlock` if rustls's buffer is full.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    /// [`write`](Self::write) for several slices: rustls encrypts them
    /// into records as one stream of plaintext.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self.tls.writer().write_vectored(bufs)? {
            0 if bufs.iter().any(|b| !b.is_empty()) => Err(ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_records()
    }
}

impl Drop for TlsStream {
    /// close_notify, best effort: a connection dropped after an error or
    /// at an idle close still says goodbye, without blocking.
    fn drop(&mut self) {
        self.tls.send_close_notify();
        if self.tcp.set_nonblocking(true).is_ok() {
            let _ = self.tls.write_tls(&mut self.tcp);
        }
    }
}

/// A broker connection's byte stream: plain TCP, or TLS over TCP.
pub(crate) enum Stream {
    /// `security.protocol=PLAINTEXT`.
    Plain(TcpStream),
    /// `security.protocol=SSL`.
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The TCP socket underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.tcp,
        }
    }

    /// The TLS error that broke the stream after the handshake (an alert
    /// from the broker, say), if one did.
    pub(crate) fn tls_failure(&self) -> Option<&rustls::Error> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(t) => t.failure.as_ref(),
        }
    }

    /// The broker's host name, as TLS checks it.
    pub(crate) fn tls_host(&self) -> Option<&str> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(t) => Some(&t.host),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.tcp().as_raw_fd()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write_vectored(bufs),
            Stream::Tls(t) => t.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

impl Transport for Stream {
    fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_timeouts(timeout)
    }

    fn short_read_drains(&self) -> bool {
        matches!(self, Stream::Plain(_))
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.tcp().set_nonblocking(nonblocking)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tls(t) => {
                t.tls.send_close_notify();
                t.flush_records()?;
                t.tcp.shutdown(std::net::Shutdown::Write)
            }
        }
    }

    fn flush_buffered(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Tls(t) => t.flush_records(),
        }
    }

    fn has_buffered(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(t) => t.tls.wants_write(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against an in-process rustls server on 127.0.0.1 that answers the
    //! ApiVersions exchange, with certificates made by rcgen.

    use super::*;
    use crate::io::conn::{Connection, SocketBuffers};
    use crate::protocol::messages::api_versions::ApiVersionsResponse;
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    use rustls::server::WebPkiClientVerifier;
    use rustls::{ServerConfig, ServerConnection};
    use std::net::TcpListener;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread::JoinHandle;

    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        pem: String,
    }

    fn ca(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, name.to_owned());
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let pem = p.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(p, key),
            pem,
        }
    }

    /// (certificate PEM, key PEM) for `names`, signed by `ca`.
    fn leaf(ca: &Ca, names: &[&str], client: bool, expired: bool) -> (String, String) {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca.issuer).unwrap().pem();
        (cert, key.serialize_pem())
    }

    /// A fresh directory for one test's PEM files.
    fn dir() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "kp-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn server_config(cert: &(String, String), client_ca: Option<&Ca>) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = pem_certs("t", "t", cert.0.as_bytes()).unwrap();
        let key = pem_key("t", "t", cert.1.as_bytes()).unwrap();
        let b = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let b = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots
                    .add(pem_certs("t", "t", ca.pem.as_bytes()).unwrap().remove(0))
                    .unwrap();
                let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .unwrap();
                b.with_client_cert_verifier(v)
            }
            None => b.with_no_client_auth(),
        };
        Arc::new(b.with_single_cert(chain, key).unwrap())
    }

    fn frame(corr: i32, body: &[u8]) -> Vec<u8> {
        let mut f = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&corr.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    fn next_request(s: &mut impl Read) -> io::Result<Vec<u8>> {
        let mut size = [0u8; 4];
        s.read_exact(&mut size)?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        s.read_exact(&mut body)?;
        Ok(body)
    }

    /// Answers ApiVersions as librdkafka's mock does (v3 refused, then v0).
    fn answer_api_versions(s: &mut (impl Read + Write)) -> io::Result<()> {
        next_request(s)?;
        s.write_all(&frame(
            0,
            &[0x00, 0x23, 0x01, 0x00, 0x12, 0, 0, 0, 2, 0, 0, 0, 0],
        ))?;
        next_request(s)?;
        let mut body = Vec::new();
        ApiVersionsResponse::default().encode(&mut body, 0);
        s.write_all(&frame(1, &body))?;
        s.flush()
    }

    type Session = rustls::StreamOwned<ServerConnection, std::net::TcpStream>;

    /// A TLS broker for one connection: handshake, ApiVersions, then
    /// `then` with the session. Returns the port and the thread (its
    /// result: what `then` returned, or the server's error).
    fn tls_broker<T: Send + 'static>(
        config: Arc<ServerConfig>,
        then: impl FnOnce(&mut Session) -> io::Result<T> + Send + 'static,
    ) -> (u16, JoinHandle<io::Result<T>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (tcp, _) = listener.accept()?;
            tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
            let conn = ServerConnection::new(config).map_err(io::Error::other)?;
            let mut s = rustls::StreamOwned::new(conn, tcp);
            while s.conn.is_handshaking() {
                if let Err(e) = s.conn.complete_io(&mut s.sock) {
                    // Send the alert rustls queued, as a broker would.
                    let _ = s.conn.write_tls(&mut s.sock);
                    return Err(e);
                }
            }
            if let Err(e) = answer_api_versions(&mut s) {
                let _ = s.conn.write_tls(&mut s.sock);
                return Err(e);
            }
            then(&mut s)
        });
        (port, t)
    }

    /// A producer configuration with `pairs` over SSL, validated.
    fn client(pairs: &[(&str, &str)]) -> Result<ProducerConfig> {
        let mut c = ProducerConfig::new().bootstrap_servers("127.0.0.1:1");
        c.set("security.protocol", "SSL")?;
        for (k, v) in pairs {
            c.set(k, v)?;
        }
        c.validate()
    }

    fn open(cfg: &ProducerConfig, host: &str, port: u16) -> Result<Connection> {
        Connection::open(
            "node 1".into(),
            host,
            port,
            "cid",
            Duration::from_secs(20),
            Duration::from_secs(20),
            SocketBuffers::of(cfg),
            cfg.tls.as_deref(),
            None,
        )
    }

    /// Opening `port` fails with an authentication error, quickly (well
    /// within the 20 s timeouts: no wait for a timeout); its message.
    fn refused(cfg: &ProducerConfig, host: &str, port: u16) -> String {
        let started = Instant::now();
        let e = open(cfg, host, port).map(|_| ()).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}: {e}",
            started.elapsed()
        );
        match e {
            Error::Authentication { broker, message } => {
                assert_eq!(broker, "node 1");
                message
            }
            e => panic!("expected an authentication error, got {e:?}"),
        }
    }

    struct Pki {
        ca: Ca,
        dir: PathBuf,
        ca_file: String,
        /// A file with the client's key and certificate (KIP-651's PEM
        /// keystore).
        keystore: String,
        client_cert: String,
        client_key: String,
    }

    fn pki() -> Pki {
        let ca = ca("test CA");
        let dir = dir();
        let ca_file = write(&dir, "ca.pem", &ca.pem);
        let (cert, key) = leaf(&ca, &["client"], true, false);
        let keystore = write(&dir, "client.pem", &format!("{key}{cert}"));
        let client_cert = write(&dir, "client.crt", &cert);
        let client_key = write(&dir, "client.key", &key);
        Pki {
            ca,
            dir,
            ca_file,
            keystore,
            client_cert,
            client_key,
        }
    }

    #[test]
    fn mutual_tls_connects_and_negotiates_with_each_way_of_giving_the_files() {
        let pki = pki();
        let server = leaf(&pki.ca, &["localhost", "127.0.0.1"], false, false);
        let chain = std::fs::read_to_string(&pki.client_cert).unwrap();
        let key = std::fs::read_to_string(&pki.client_key).unwrap();
        let ca_pem = pki.ca.pem.clone();
        let settings: Vec<Vec<(&str, &str)>> = vec![
            vec![
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.location", &pki.ca_file),
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.location", &pki.keystore),
            ],
            vec![
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.certificates", &ca_pem),
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.certificate.chain", &chain),
                ("ssl.keystore.key", &key),
            ],
            // librdkafka's names
            vec![
                ("ssl.ca.location", &pki.ca_file),
                ("ssl.certificate.location", &pki.client_cert),
                ("ssl.key.location", &pki.client_key),
            ],
        ];
        for (i, pairs) in settings.iter().enumerate() {
            let cfg = client(pairs).unwrap();
            for host in ["localhost", "127.0.0.1"] {
                let (port, t) = tls_broker(server_config(&server, Some(&pki.ca)), |s| {
                    Ok(s.conn.peer_certificates().map_or(0, |c| c.len()))
                });
                let c = open(&cfg, host, port).unwrap_or_else(|e| panic!("setting {i}: {e}"));
                assert!(matches!(c.transport(), Stream::Tls(_)));
                assert_eq!(t.join().unwrap().unwrap(), 1, "the client certificate");
            }
        }
        // The CA directory form of ssl.ca.location.
        let cfg = client(&[
            ("ssl.ca.location", pki.dir.to_str().unwrap()),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", &pki.keystore),
        ])
        .unwrap();
        let (port, t) = tls_broker(server_config(&server, Some(&pki.ca)), |_| Ok(()));
        open(&cfg, "127.0.0.1", port).unwrap();
        t.join().unwrap().unwrap();
        // Inline PEM from a Java properties file: backslash continuations
        // join the lines with spaces.
        let one_line = |pem: &str| {
            let props = format!("k={}", pem.trim_end().replace('\n', " \\\n    "));
            let pairs = crate::config::parse_properties(&props).unwrap();
            assert!(!pairs[0].1.contains('\n'), "{:?}", pairs[0].1);
            pairs[0].1.clone()
        };
        let (ca1, chain1, key1) = (one_line(&ca_pem), one_line(&chain), one_line(&key));
        let cfg = client(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.certificates", &ca1),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.certificate.chain", &chain1),
            ("ssl.keystore.key", &key1),
        ])
        .unwrap();
        let (port, t) = tls_broker(server_config(&server, Some(&pki.ca)), |s| {
            Ok(s.conn.peer_certificates().map_or(0, |c| c.len()))
        });
        open(&cfg, "127.0.0.1", port).unwrap();
        assert_eq!(t.join().unwrap().unwrap(), 1);
    }

    #[test]
    fn an_unknown_ca_is_an_authentication_error() {
        let pki = pki();
        let other = ca("someone else");
        let server = leaf(&other, &["127.0.0.1"], false, false);
        let cfg = client(&[("ssl.ca.location", &pki.ca_file)]).unwrap();
        let (port, t) = tls_broker(server_config(&server, None), |_| Ok(()));
        let m = refused(&cfg, "127.0.0.1", port);
        assert!(m.contains("not signed by a trusted CA"), "{m}");
        assert!(
            m.contains(&pki.ca_file),
            "names where the CAs came from: {m}"
        );
        assert!(t.join().unwrap().is_err());
        // Turning host name checks off does not turn the chain check off.
        let cfg = client(&[
            ("ssl.ca.location", &pki.ca_file),
            ("ssl.endpoint.identification.algorithm", ""),
        ])
        .unwrap();
        let (port, t) = tls_broker(server_config(&server, None), |_| Ok(()));
        let m = refused(&cfg, "127.0.0.1", port);
        assert!(m.contains("not signed by a trusted CA"), "{m}");
        assert!(t.join().unwrap().is_err());
    }

    #[test]
    fn a_wrong_host_name_is_refused_unless_identification_is_off() {
        let pki = pki();
        let server = leaf(&pki.ca, &["broker.example"], false, false);
        let cfg = client(&[("ssl.ca.location", &pki.ca_file)]).unwrap();
        for host in ["127.0.0.1", "localhost"] {
            let (port, t) = tls_broker(server_config(&server, None), |_| Ok(()));
            let m = refused(&cfg, host, port);
            assert!(
                m.contains(&format!("not valid for the host name {host}")),
                "{m}"
            );
            assert!(t.join().unwrap().is_err());
        }
        let cfg = client(&[
            ("ssl.ca.location", &pki.ca_file),
            ("ssl.endpoint.identification.algorithm", ""),
        ])
        .unwrap();
        let (port, t) = tls_broker(server_config(&server, None), |_| Ok(()));
        open(&cfg, "127.0.0.1", port).unwrap();
        t.join().unwrap().unwrap();
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let pki = pki();
        let server = leaf(&pki.ca, &["127.0.0.1"], false, true);
        let cfg = client(&[("ssl.ca.location", &pki.ca_file)]).unwrap();
        let (port, t) = tls_broker(server_config(&server, None), |_| Ok(()));
        let m = refused(&cfg, "127.0.0.1", port);
        assert!(m.contains("has expired"), "{m}");
        assert!(t.join().unwrap().is_err());
    }

    #[test]
    fn a_missing_or_untrusted_client_certificate_is_an_authentication_error() {
        let pki = pki();
        let server = leaf(&pki.ca, &["127.0.0.1"], false, false);
        // No client certificate: TLS 1.3's client finishes its side of
        // the handshake first; the broker's alert answers ApiVersions.
        for version in ["TLSv1.3", "TLSv1.2"] {
            let cfg = client(&[
                ("ssl.ca.location", &pki.ca_file),
                ("ssl.enabled.protocols", version),
            ])
            .unwrap();
            let (port, t) = tls_broker(server_config(&server, Some(&pki.ca)), |_| Ok(()));
            let m = refused(&cfg, "127.0.0.1", port);
            assert!(m.contains("client certificate"), "{version}: {m}");
            assert!(t.join().unwrap().is_err());
        }
        // A client certificate from a CA the broker does not trust.
        let other = ca("someone else");
        let (cert, key) = leaf(&other, &["client"], true, false);
        let d = dir();
        let cfg = client(&[
            ("ssl.ca.location", &pki.ca_file),
            ("ssl.keystore.type", "PEM"),
            (
                "ssl.keystore.location",
                &write(&d, "c.pem", &format!("{cert}{key}")),
            ),
        ])
        .unwrap();
        let (port, t) = tls_broker(server_config(&server, Some(&pki.ca)), |_| Ok(()));
        let m = refused(&cfg, "127.0.0.1", port);
        assert!(m.contains("client certificate"), "{m}");
        assert!(t.join().unwrap().is_err());
    }

    #[test]
    fn a_plaintext_client_on_a_tls_port_is_told_so_at_once() {
        let pki = pki();
        let server = leaf(&pki.ca, &["127.0.0.1"], false, false);
        let (port, t) = tls_broker(server_config(&server, None), |_| Ok(()));
        let cfg = ProducerConfig::new()
            .bootstrap_servers("127.0.0.1:1")
            .validate()
            .unwrap();
        let m = refused(&cfg, "127.0.0.1", port);
        assert!(m.contains("set security.protocol=SSL"), "{m}");
        assert!(t.join().unwrap().is_err());
    }

    #[test]
    fn a_tls_client_on_a_plaintext_port_is_told_so_at_once() {
        let pki = pki();
        let cfg = client(&[("ssl.ca.location", &pki.ca_file)]).unwrap();
        // A Kafka plaintext listener reads the ClientHello's first bytes
        // as a huge frame size and closes; another server may answer
        // with bytes that are not TLS.
        for answer in [None, Some(frame(0, b"not tls at all, a kafka frame"))] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let t = std::thread::spawn(move || -> io::Result<()> {
                let (mut s, _) = listener.accept()?;
                let mut size = [0u8; 4];
                s.read_exact(&mut size)?;
                assert_eq!(size[0], 22, "a TLS handshake record");
                if let Some(a) = answer {
                    s.write_all(&a)?;
                    // Linger, so the client reads the answer, not a reset.
                    let mut sink = [0u8; 4096];
                    s.set_read_timeout(Some(Duration::from_secs(5)))?;
                    while s.read(&mut sink)? > 0 {}
                }
                Ok(())
            });
            let m = refused(&cfg, "127.0.0.1", port);
            assert!(m.contains("does not seem to speak TLS"), "{m}");
            t.join().unwrap().unwrap();
        }
    }

    #[test]
    fn closing_sends_close_notify() {
        let pki = pki();
        let server = leaf(&pki.ca, &["127.0.0.1"], false, false);
        let cfg = client(&[("ssl.ca.location", &pki.ca_file)]).unwrap();
        let (port, t) = tls_broker(server_config(&server, None), |s| {
            let mut b = [0u8; 16];
            // Ok(0): the peer sent close_notify; a bare FIN is an error.
            s.read(&mut b)
        });
        let c = open(&cfg, "127.0.0.1", port).unwrap();
        c.close_gracefully(Duration::from_secs(5));
        assert_eq!(t.join().unwrap().unwrap(), 0);
    }

    /// Waits for one of `interest`'s events on the connection's socket;
    /// false if none came within 10 s (a lost edge).
    fn wait(poll: &mut mio::Poll, events: &mut mio::Events) -> bool {
        poll.poll(events, Some(Duration::from_secs(10))).unwrap();
        !events.is_empty()
    }

    /// `c` switched to non-blocking and registered with a new poll for
    /// `interest`, as an I/O thread drives it (mio is edge-triggered).
    fn edge_triggered(c: &Connection, interest: mio::Interest) -> (mio::Poll, mio::Events) {
        c.transport().set_nonblocking(true).unwrap();
        let poll = mio::Poll::new().unwrap();
        let fd = c.transport().as_raw_fd();
        poll.registry()
            .register(&mut mio::unix::SourceFd(&fd), mio::Token(1), interest)
            .unwrap();
        (poll, mio::Events::with_capacity(4))
    }
    #[test]
    fn buffered_records_flush_on_writable_edges_and_count_once_on_the_socket() {
        use crate::protocol::messages::produce;
        let pki = pki();
        let server = leaf(&pki.ca, &["127.0.0.1"], false, false);
        // A small send buffer, so the socket fills long before 4 MB.
        let cfg = client(&[
            ("ssl.ca.location", &pki.ca_file),
            ("send.buffer.bytes", "4096"),
            ("receive.buffer.bytes", "4096"),
        ])
        .unwrap();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (port, t) = tls_broker(server_config(&server, None), move |s| {
            // Read nothing until told: the client's socket fills.
            go_rx.recv().map_err(io::Error::other)?;
            let mut got = Vec::new();
            for _ in 0..2 {
                got.push(next_request(s)?.len());
            }
            Ok(got)
        });
        let mut c = open(&cfg, "127.0.0.1", port).unwrap();
        let (mut poll, mut events) = edge_triggered(&c, mio::Interest::WRITABLE);
        let start = c.enqueued_total();
        c.enqueue(&produce::API, 9, |b| {
            b.extend_from_slice(&vec![7u8; 3 << 20])
        });
        c.enqueue(&produce::API, 9, |b| b.extend_from_slice(&[8u8; 100]));
        let end = c.enqueued_total();
        c.write_some().unwrap();
        // The socket is full: rustls still holds records, and none of the
        // plaintext they carry counts as written.
        assert!(c.wants_write());
        assert!(c.transport().has_buffered(), "rustls holds records");
        assert!(
            c.written_total() < c.taken_total(),
            "written {} of {} taken",
            c.written_total(),
            c.taken_total()
        );
        let held_back = c.written_total();
        go_tx.send(()).unwrap();
        // Driven by writable edges only, as the I/O thread does.
        let mut edges = 0;
        while c.wants_write() {
            assert!(wait(&mut poll, &mut events), "no writable edge came");
            edges += 1;
            c.write_some().unwrap();
            assert!(c.written_total() <= c.taken_total());
            if c.transport().has_buffered() {
                assert!(c.written_total() < c.taken_total());
            }
        }
        assert!(edges > 1, "{edges} edges");
        assert!(c.written_total() > held_back);
        assert_eq!(c.written_total(), end, "everything counted, once");
        assert_eq!(c.written_total(), c.taken_total());
        let got = t.join().unwrap().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got.iter().map(|n| 4 + *n as u64).sum::<u64>(),
            end - start,
            "the broker read every byte counted"
        );
    }

    #[test]
    fn reads_drain_every_decoded_record_on_one_readable_edge() {
        let pki = pki();
        let server = leaf(&pki.ca, &["127.0.0.1"], false, false);
        let cfg = client(&[("ssl.ca.location", &pki.ca_file)]).unwrap();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        // 200 responses of 10 kB in one burst: many TLS records, read
        // from the socket in several chunks.
        let (port, t) = tls_broker(server_config(&server, None), move |s| {
            go_rx.recv().map_err(io::Error::other)?;
            let mut burst = Vec::new();
            for corr in 0..200 {
                burst.extend(frame(corr, &vec![corr as u8; 10_000]));
            }
            s.write_all(&burst)?;
            s.flush()?;
            // Stay open until the client has read everything.
            let mut b = [0u8; 1];
            let _ = s.read(&mut b);
            Ok(())
        });
        let mut c = open(&cfg, "127.0.0.1", port).unwrap();
        let (mut poll, mut events) = edge_triggered(&c, mio::Interest::READABLE);
        go_tx.send(()).unwrap();
        let mut got = Vec::new();
        while got.len() < 200 {
            assert!(
                wait(&mut poll, &mut events),
                "no readable edge after {} frames: a decoded record was left behind",
                got.len()
            );
            c.read_some().unwrap();
            while let Some(corr) = c.next_frame(|corr, f| (corr, f.len())).unwrap() {
                got.push(corr);
            }
        }
        assert_eq!(got, (0..200).map(|i| (i, 10_004)).collect::<Vec<_>>());
        drop(c);
        t.join().unwrap().unwrap();
    }

    #[test]
    fn settings_are_checked_when_the_producer_is_made() {
        let pki = pki();
        let err = |pairs: &[(&str, &str)]| match client(pairs).map(|_| ()).unwrap_err() {
            Error::Config { key, message } => (key, message),
            e => panic!("{pairs:?}: {e:?}"),
        };
        // A missing file names its key and path.
        let (key, m) = err(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/nonexistent/ca.pem"),
        ]);
        assert_eq!(key, "ssl.truststore.location");
        assert!(m.contains("/nonexistent/ca.pem"), "{m}");
        let (key, m) = err(&[
            ("ssl.ca.location", &pki.ca_file),
            ("ssl.key.location", "/nonexistent/k.pem"),
            ("ssl.certificate.location", &pki.client_cert),
        ]);
        assert_eq!(key, "ssl.key.location");
        assert!(m.contains("/nonexistent/k.pem"), "{m}");
        // Java's default store type is JKS: only PEM is read.
        let (key, m) = err(&[("ssl.truststore.location", &pki.ca_file)]);
        assert_eq!(key, "ssl.truststore.type");
        assert!(m.contains("JKS stores are not supported: only PEM"), "{m}");
        let (key, m) = err(&[
            ("ssl.ca.location", &pki.ca_file),
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.location", &pki.keystore),
        ]);
        assert_eq!(key, "ssl.keystore.type");
        assert!(m.contains("PKCS12 stores are not supported"), "{m}");
        // Two sources of the same thing.
        let (key, _) = err(&[
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", &pki.ca_file),
            ("ssl.ca.location", &pki.ca_file),
        ]);
        assert_eq!(key, "ssl.truststore.location");
        let (key, _) = err(&[
            ("ssl.ca.location", &pki.ca_file),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----"),
        ]);
        assert_eq!(key, "ssl.keystore.certificate.chain");
        // A file that holds no certificate, an encrypted key.
        let (key, m) = err(&[("ssl.ca.location", &pki.client_key)]);
        assert_eq!(key, "ssl.ca.location");
        assert!(m.contains("no PEM certificate"), "{m}");
        let enc = write(
            &pki.dir,
            "enc.pem",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let (key, m) = err(&[
            ("ssl.ca.location", &pki.ca_file),
            ("ssl.certificate.location", &pki.client_cert),
            ("ssl.key.location", &enc),
        ]);
        assert_eq!(key, "ssl.key.location");
        assert!(m.contains("encrypted"), "{m}");
        // Versions: TLSv1.2 caps, and nothing left is an error.
        let (key, _) = err(&[
            ("ssl.ca.location", &pki.ca_file),
            ("ssl.protocol", "TLSv1.2"),
            ("ssl.enabled.protocols", "TLSv1.3"),
        ]);
        assert_eq!(key, "ssl.enabled.protocols");
        assert!(ProducerConfig::from_pairs([("ssl.enabled.protocols", "TLSv1.1")]).is_err());
        // No truststore: the system's CAs.
        let c = client(&[]).unwrap();
        assert!(
            format!("{:?}", c.tls).contains("the system's CA certificates"),
            "{:?}",
            c.tls
        );
        // PLAINTEXT reads no ssl.* file at all.
        let c = ProducerConfig::new()
            .bootstrap_servers("h:1")
            .security_protocol(crate::SecurityProtocol::Plaintext);
        let mut c = c;
        c.set("ssl.truststore.location", "/nonexistent").unwrap();
        assert!(c.validate().unwrap().tls.is_none());
    }

    #[test]
    fn the_negotiated_version_follows_the_settings() {
        let pki = pki();
        let server = leaf(&pki.ca, &["127.0.0.1"], false, false);
        for (pairs, want) in [
            (vec![], rustls::ProtocolVersion::TLSv1_3),
            (
                vec![("ssl.protocol", "TLSv1.2")],
                rustls::ProtocolVersion::TLSv1_2,
            ),
            (
                vec![("ssl.enabled.protocols", "TLSv1.2")],
                rustls::ProtocolVersion::TLSv1_2,
            ),
        ] {
            let mut all = vec![("ssl.ca.location", pki.ca_file.as_str())];
            all.extend(pairs);
            let cfg = client(&all).unwrap();
            let (port, t) = tls_broker(server_config(&server, None), |s| {
                Ok(s.conn.protocol_version())
            });
            open(&cfg, "127.0.0.1", port).unwrap();
            assert_eq!(t.join().unwrap().unwrap(), Some(want), "{all:?}");
        }
    }

    /// A TLS broker that answers ApiVersions and Metadata (topic `t`, one
    /// partition led by node 1 at `leader_port`) on every connection it
    /// gets, each on a thread, until the test ends.
    fn metadata_broker(config: Arc<ServerConfig>, leader_port: u16) -> u16 {
        use crate::protocol::messages::api_versions::ApiVersionRange;
        use crate::protocol::messages::metadata::{
            self, MetadataBroker, MetadataPartition, MetadataResponse, MetadataTopic,
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for tcp in listener.incoming().take(20).flatten() {
                let config = config.clone();
                std::thread::spawn(move || -> io::Result<()> {
                    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
                    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
                    let mut s = rustls::StreamOwned::new(conn, tcp);
                    loop {
                        let req = next_request(&mut s)?;
                        let key = i16::from_be_bytes([req[0], req[1]]);
                        let version = i16::from_be_bytes([req[2], req[3]]);
                        let corr = i32::from_be_bytes([req[4], req[5], req[6], req[7]]);
                        let mut body = Vec::new();
                        match (key, version) {
                            (18, 1..) => body.extend_from_slice(&[
                                0x00, 0x23, 0x01, 0x00, 0x12, 0, 0, 0, 2, 0, 0, 0, 0,
                            ]),
                            (18, _) => ApiVersionsResponse {
                                api_keys: vec![ApiVersionRange {
                                    api_key: metadata::API_KEY,
                                    min_version: metadata::MIN_VERSION,
                                    max_version: metadata::MAX_VERSION,
                                }],
                                ..Default::default()
                            }
                            .encode(&mut body, 0),
                            (3, v) => {
                                if metadata::is_flexible(v) {
                                    body.push(0); // response header tags
                                }
                                MetadataResponse {
                                    brokers: vec![MetadataBroker {
                                        node_id: 1,
                                        host: "127.0.0.1".into(),
                                        port: i32::from(leader_port),
                                        rack: None,
                                    }],
                                    controller_id: 1,
                                    topics: vec![MetadataTopic {
                                        error_code: 0,
                                        name: Some("t".into()),
                                        topic_id: [1; 16],
                                        is_internal: false,
                                        partitions: vec![MetadataPartition {
                                            error_code: 0,
                                            partition_index: 0,
                                            leader_id: 1,
                                            leader_epoch: 0,
                                            replica_nodes: vec![1],
                                            isr_nodes: vec![1],
                                            offline_replicas: vec![],
                                        }],
                                        topic_authorized_operations: i32::MIN,
                                    }],
                                    ..Default::default()
                                }
                                .encode(&mut body, v)
                            }
                            _ => return Ok(()),
                        }
                        s.write_all(&frame(corr, &body))?;
                        s.flush()?;
                    }
                });
            }
        });
        port
    }

    /// Java's Sender fails the batches of a node whose connection cannot
    /// authenticate: a record already accepted for a leader whose
    /// certificate has expired fails with the authentication error, not
    /// after delivery.timeout.ms of reconnecting.
    #[test]
    fn an_accepted_record_fails_at_once_when_its_leader_refuses_tls() {
        let pki = pki();
        let good = leaf(&pki.ca, &["127.0.0.1"], false, false);
        let expired = leaf(&pki.ca, &["127.0.0.1"], false, true);
        let (leader_port, leader) = tls_broker(server_config(&expired, None), |_| Ok(()));
        let bootstrap = metadata_broker(server_config(&good, None), leader_port);
        let mut cfg = ProducerConfig::new().bootstrap_servers(format!("127.0.0.1:{bootstrap}"));
        for (k, v) in [
            ("security.protocol", "SSL"),
            ("ssl.ca.location", pki.ca_file.as_str()),
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("delivery.timeout.ms", "40000"),
        ] {
            cfg.set(k, v).unwrap();
        }
        let p =
            crate::Producer::new(cfg, crate::StringSerializer, crate::StringSerializer).unwrap();
        let started = Instant::now();
        let h = p.send(crate::ProducerRecord::new("t", "v")).unwrap();
        let e = h.get().map(|_| ()).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "took {:?}: {e}",
            started.elapsed()
        );
        match &e {
            Error::Authentication { message, .. } => {
                assert!(message.contains("has expired"), "{message}")
            }
            e => panic!("expected an authentication error, got {e:?}"),
        }
        assert!(leader.join().unwrap().is_err());
        let _ = p.close_timeout(Duration::from_secs(5));
    }
}
