//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), client side, as a
//! state machine with no I/O: [`Scram::step`] takes the server's message
//! and returns the client's next one.
//!
//! ```text
//! client-first:  n,,n=<user>,r=<client nonce>
//! server-first:  r=<client nonce + server nonce>,s=<salt, base64>,i=<iterations>
//! client-final:  c=biws,r=<nonce>,p=<proof, base64>
//! server-final:  v=<server signature, base64>   (or e=<error>)
//! ```
//!
//! Names and passwords are used as their UTF-8 bytes, without SASLprep
//! normalization: that is what Java's client does (`ScramFormatter`), and
//! the broker's stored credentials are made the same way, so a name or
//! password outside ASCII authenticates exactly as it does from Java. In
//! user names `,` and `=` are escaped as `=2C` and `=3D`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The hash a SCRAM mechanism is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha512,
}

/// Java's (and RFC 7677's) least iteration count.
const MIN_ITERATIONS: u32 = 4096;
/// More than any broker asks for (Kafka caps iterations at 16384): a
/// hostile answer must not make the client hash for hours.
const MAX_ITERATIONS: u32 = 1_000_000;

impl Hash {
    pub(super) fn hmac(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key size");
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("any key size");
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    pub(super) fn h(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(msg).to_vec(),
            Hash::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }

    /// Hi(): PBKDF2 with HMAC of this hash, one block.
    pub(super) fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            Hash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }

    /// The server's check of a client proof (RFC 5802 section 3): the proof
    /// XOR ClientSignature is a ClientKey whose hash is the StoredKey
    /// derived from `salted`.
    #[cfg(test)]
    pub(super) fn proof_verifies(self, salted: &[u8], auth_message: &str, proof: &[u8]) -> bool {
        let stored = self.h(&self.hmac(salted, b"Client Key"));
        let client_key = xor(proof, &self.hmac(&stored, auth_message.as_bytes()));
        self.h(&client_key) == stored
    }
}

/// Byte-wise XOR of two equal-length strings (the proof and the key).
fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

enum State {
    Start,
    /// client-first sent: the bare part and the nonce.
    SentFirst {
        bare: String,
        nonce: String,
    },
    /// client-final sent: the server signature expected.
    SentFinal {
        server_signature: Vec<u8>,
    },
    Done,
    /// A step failed: the exchange is over, unauthenticated.
    Failed,
}

/// One SCRAM exchange.
pub(crate) struct Scram {
    hash: Hash,
    user: String,
    password: Vec<u8>,
    nonce: Option<String>,
    state: State,
}

/// A fresh client nonce: 24 bytes from the operating system's CSPRNG, in
/// base64 (printable, without `,`).
fn new_nonce() -> Result<String, String> {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).map_err(|e| format!("no random bytes for the SCRAM nonce: {e}"))?;
    Ok(B64.encode(b))
}

/// RFC 5802's saslname: `=` and `,` escaped.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl Scram {
    pub(crate) fn new(hash: Hash, user: &str, password: &str) -> Self {
        Scram {
            hash,
            user: user.to_owned(),
            password: password.as_bytes().to_vec(),
            nonce: None,
            state: State::Start,
        }
    }

    /// With a fixed client nonce (the RFC's test vectors).
    #[cfg(test)]
    fn with_nonce(mut self, nonce: &str) -> Self {
        self.nonce = Some(nonce.to_owned());
        self
    }

    /// True once the server's signature has verified.
    pub(crate) fn is_complete(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The next client message for the server's `msg` (empty at first).
    /// After the server-final message it verifies the server's signature
    /// and returns nothing to send.
    ///
    /// # Errors
    ///
    /// What is wrong, in words (the caller makes it an authentication
    /// error): a server error (`e=`), a nonce that does not extend ours, a
    /// malformed message, too few or too many iterations, a server
    /// signature that does not verify.
    pub(crate) fn step(&mut self, msg: &[u8]) -> Result<Vec<u8>, String> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Start => {
                let nonce = match self.nonce.take() {
                    Some(n) => n,
                    None => new_nonce()?,
                };
                let bare = format!("n={},r={nonce}", sasl_name(&self.user));
                let first = format!("n,,{bare}");
                self.state = State::SentFirst { bare, nonce };
                Ok(first.into_bytes())
            }
            State::SentFirst { bare, nonce } => {
                let server_first = std::str::from_utf8(msg)
                    .map_err(|_| "the server-first message is not UTF-8".to_owned())?;
                let attrs = attributes(server_first)?;
                if let Some(e) = attrs.get("e") {
                    return Err(format!("the server refused: {e}"));
                }
                let full = attrs
                    .get("r")
                    .ok_or("the server-first message has no nonce (r=)")?;
                if !full.starts_with(&nonce) || full.len() == nonce.len() {
                    return Err("the server's nonce does not extend the client's".into());
                }
                let salt = attrs
                    .get("s")
                    .ok_or("the server-first message has no salt (s=)")?;
                let salt = B64
                    .decode(salt)
                    .map_err(|_| "the server's salt is not base64".to_owned())?;
                let iterations: u32 = attrs
                    .get("i")
                    .and_then(|i| i.parse().ok())
                    .ok_or("the server-first message has no iteration count (i=)")?;
                if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
                    return Err(format!(
                        "the server asks for {iterations} iterations; \
                         {MIN_ITERATIONS} to {MAX_ITERATIONS} are accepted"
                    ));
                }
                let h = self.hash;
                let salted = h.hi(&self.password, &salt, iterations);
                let client_key = h.hmac(&salted, b"Client Key");
                let stored_key = h.h(&client_key);
                // base64("n,,") is "biws"
                let without_proof = format!("c=biws,r={full}");
                let auth_message = format!("{bare},{server_first},{without_proof}");
                let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
                let proof = xor(&client_key, &client_signature);
                let server_key = h.hmac(&salted, b"Server Key");
                let server_signature = h.hmac(&server_key, auth_message.as_bytes());
                self.state = State::SentFinal { server_signature };
                Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
            }
            State::SentFinal { server_signature } => {
                let server_final = std::str::from_utf8(msg)
                    .map_err(|_| "the server-final message is not UTF-8".to_owned())?;
                let attrs = attributes(server_final)?;
                if let Some(e) = attrs.get("e") {
                    return Err(format!("the server refused: {e}"));
                }
                let v = attrs
                    .get("v")
                    .ok_or("the server-final message has no signature (v=)")?;
                let v = B64
                    .decode(v)
                    .map_err(|_| "the server's signature is not base64".to_owned())?;
                if v != server_signature {
                    return Err("the server's signature does not verify: \
                                the broker does not know this user's credentials"
                        .into());
                }
                self.state = State::Done;
                Ok(Vec::new())
            }
            State::Done | State::Failed => Err("the SCRAM exchange is already over".into()),
        }
    }
}

/// `a=value` attributes, comma-separated (values may contain `=`).
fn attributes(msg: &str) -> Result<std::collections::HashMap<&str, &str>, String> {
    msg.split(',')
        .map(|a| {
            a.split_once('=')
                .filter(|(k, _)| k.len() == 1)
                .ok_or_else(|| "a malformed SCRAM message from the server".to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: SCRAM-SHA-256 for user "user", password
    /// "pencil".
    #[test]
    fn rfc_7677_example() {
        let mut s = Scram::new(Hash::Sha256, "user", "pencil").with_nonce("rOprNGfwEbeRWgbNEkqO");
        let first = s.step(b"").unwrap();
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = s.step(server_first).unwrap();
        assert_eq!(
            std::str::from_utf8(&fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(!s.is_complete());
        let out = s
            .step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(out.is_empty());
        assert!(s.is_complete());
    }

    fn after_first(hash: Hash) -> Scram {
        let mut s = Scram::new(hash, "user", "pencil").with_nonce("rOprNGfwEbeRWgbNEkqO");
        s.step(b"").unwrap();
        s
    }

    #[test]
    fn a_wrong_server_signature_or_a_server_error_fails() {
        let sf = b"r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let mut s = after_first(Hash::Sha256);
        s.step(sf).unwrap();
        let e = s
            .step(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        assert!(!s.is_complete());

        let mut s = after_first(Hash::Sha256);
        s.step(sf).unwrap();
        let e = s.step(b"e=invalid-proof").unwrap_err();
        assert!(e.contains("invalid-proof"), "{e}");
    }

    #[test]
    fn hostile_server_first_messages_are_refused() {
        for (msg, says) in [
            (
                &b"r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"[..],
                "does not extend",
            ),
            (
                b"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "does not extend",
            ),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=100",
                "100 iterations",
            ),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000",
                "iterations",
            ),
            (
                b"r=rOprNGfwEbeRWgbNEkqOx,s=!!!,i=4096",
                "salt is not base64",
            ),
            (b"r=rOprNGfwEbeRWgbNEkqOx,i=4096", "no salt"),
            (b"garbage", "malformed"),
            (b"\xff\xfe", "not UTF-8"),
            (b"e=unknown-user", "unknown-user"),
        ] {
            let e = after_first(Hash::Sha512).step(msg).unwrap_err();
            assert!(e.contains(says), "{msg:?}: {e}");
        }
    }

    /// SCRAM-SHA-512 against a server written from the RFC's equations
    /// (independently of `step`): the proof checks out, and the server's
    /// signature verifies.
    #[test]
    fn sha512_agrees_with_the_rfc_equations() {
        let h = Hash::Sha512;
        let (user, password) = ("al,ice=", "pässwörd");
        let mut s = Scram::new(h, user, password).with_nonce("abc");
        let first = String::from_utf8(s.step(b"").unwrap()).unwrap();
        assert_eq!(first, "n,,n=al=2Cice=3D,r=abc");
        let salt = b"salt-of-the-earth";
        let server_first = format!("r=abcdef,s={},i=4096", B64.encode(salt));
        let fin = String::from_utf8(s.step(server_first.as_bytes()).unwrap()).unwrap();
        let (without, proof) = fin.rsplit_once(",p=").unwrap();
        // the server side
        let salted = h.hi(password.as_bytes(), salt, 4096);
        let auth = format!("{},{server_first},{without}", &first[3..]);
        assert!(
            h.proof_verifies(&salted, &auth, &B64.decode(proof).unwrap()),
            "the proof verifies"
        );
        let server_sig = h.hmac(&h.hmac(&salted, b"Server Key"), auth.as_bytes());
        s.step(format!("v={}", B64.encode(server_sig)).as_bytes())
            .unwrap();
        assert!(s.is_complete());
    }

    #[test]
    fn nonces_are_random_and_printable() {
        let a = new_nonce().unwrap();
        let b = new_nonce().unwrap();
        assert_ne!(a, b);
        assert!(a.len() >= 24 && !a.contains(','));
    }
}
