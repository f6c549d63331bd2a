//! Encryption at rest for the credentials the store keeps: the accounts'
//! webhook secrets and their Kommo OAuth tokens.
//!
//! A database dump, a backup or a replica must not hand out live
//! credentials, so every such value is sealed with ChaCha20-Poly1305 under a
//! 32-byte master key from the configuration (`CALLCARD_SECRET_KEY`, 64 hex
//! digits or standard base64) before it is written, and opened after it is
//! read. A sealed value is text, so it fits the existing `TEXT` columns:
//!
//! ```text
//! enc:v1:<base64(12-byte random nonce ‖ ciphertext ‖ 16-byte tag)>
//! ```
//!
//! Every value is bound to where it belongs by the AEAD's associated data
//! (e.g. `"webhook_secret:31415926"`): a ciphertext copied into another
//! account's row, or from the refresh-token column into the access-token
//! column, fails to open instead of being used.
//!
//! The key itself is never logged: [`Secrets`] prints as `<redacted>`.
//! Every instance on one database must use the same key: one whose key does
//! not open the database's proof (`crate::store::sealing`) refuses to start.
//! Rotating it means re-sealing every value (not automated yet); losing it
//! means every account must install the integration again and every PBX gets
//! a new webhook secret.
//!
//! Without a configured key, the backend runs only in demo mode (the demo
//! integration secret, see [`crate::config`]), with [`DEMO_SECRET_KEY`], a
//! published key that protects nothing and is announced with a warning.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;

/// The prefix that marks a sealed value (and its format version).
pub const SEALED_PREFIX: &str = "enc:v1:";

/// The key used when none is configured and the backend runs with the demo
/// integration secret. Public: it exists so `cargo xtask demo` needs no
/// setup, and protects nothing.
pub const DEMO_SECRET_KEY: &str = "6361 6c6c 6361 7264 2d64 656d 6f2d 6b65 792d 6e6f 742d 6120 7365 6372 6574 2121";

const NONCE_LEN: usize = 12;

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the value is not sealed (no {SEALED_PREFIX} prefix)")]
    NotSealed,
    #[error("the sealed value is malformed")]
    Malformed,
    /// Wrong key, wrong context (the value was moved), or tampering.
    #[error("the sealed value does not open with this key and context")]
    Refused,
}

impl From<SecretError> for sqlx::Error {
    fn from(e: SecretError) -> Self {
        sqlx::Error::Decode(Box::new(e))
    }
}

/// The master key, ready to seal and open. Cheap to clone.
#[derive(Clone)]
pub struct Secrets {
    cipher: Arc<ChaCha20Poly1305>,
    /// The key of signed links (`crate::transcript_links`): derived from
    /// the master key, never the master key itself.
    link_key: Arc<[u8; 32]>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

impl Secrets {
    /// Reads a key written as 64 hex digits (spaces allowed) or as standard
    /// base64 of 32 bytes.
    pub fn from_key_text(text: &str) -> anyhow::Result<Self> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = if compact.len() == 64 && compact.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(&compact).map_err(|_| anyhow::anyhow!("secret_key: invalid hex"))?
        } else {
            BASE64.decode(compact.as_bytes()).map_err(|_| {
                anyhow::anyhow!("secret_key must be 32 bytes as 64 hex digits or base64 (it is neither)")
            })?
        };
        let key: [u8; 32] =
            bytes.try_into().map_err(|b: Vec<u8>| anyhow::anyhow!("secret_key must be 32 bytes, got {}", b.len()))?;
        Ok(Self::from_key(key))
    }

    pub fn from_key(key: [u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(b"callcard signed links v1");
        let link_key: [u8; 32] = mac.finalize().into_bytes().into();
        Self { cipher: Arc::new(ChaCha20Poly1305::new(Key::from_slice(&key))), link_key: Arc::new(link_key) }
    }

    /// The signature (hex HMAC-SHA256) of a link's `message`.
    pub fn sign_link(&self, message: &str) -> String {
        hex::encode(self.link_mac(message).finalize().into_bytes())
    }

    /// Whether `signature` is [`sign_link`](Self::sign_link)'s for
    /// `message` (compared in constant time).
    pub fn verify_link(&self, message: &str, signature: &str) -> bool {
        hex::decode(signature).is_ok_and(|sig| self.link_mac(message).verify_slice(&sig).is_ok())
    }

    fn link_mac(&self, message: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.link_key.as_slice()).expect("any key length");
        mac.update(message.as_bytes());
        mac
    }

    /// The published demo key ([`DEMO_SECRET_KEY`]).
    pub fn demo() -> Self {
        Self::from_key_text(DEMO_SECRET_KEY).expect("the demo key is valid")
    }

    /// A fresh random key as 64 hex digits, for tests and the demo.
    pub fn random_key_text() -> String {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        hex::encode(key)
    }

    /// Seals `plaintext` for `context` (where it will be stored).
    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            // Encryption fails only for inputs of ~256 GiB.
            .expect("ChaCha20-Poly1305 encryption of a short value");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", BASE64.encode(out))
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SecretError> {
        let body = sealed.strip_prefix(SEALED_PREFIX).ok_or(SecretError::NotSealed)?;
        let raw = BASE64.decode(body.as_bytes()).map_err(|_| SecretError::Malformed)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(SecretError::Malformed);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| SecretError::Refused)?;
        String::from_utf8(plain).map_err(|_| SecretError::Malformed)
    }

    /// Whether a stored value is sealed (anything else is a plaintext value
    /// from before encryption, to be migrated).
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(SEALED_PREFIX)
    }
}

/// The associated data of an account's webhook secret.
pub fn webhook_secret_context(account_id: u64) -> String {
    format!("webhook_secret:{account_id}")
}

/// The associated data of an account's access or refresh token.
pub fn token_context(kind: &str, account_id: u64) -> String {
    format!("kommo_{kind}_token:{account_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_in_context_only() {
        let s = Secrets::from_key_text(&Secrets::random_key_text()).unwrap();
        let sealed = s.seal("whsec-1", "webhook_secret:1");
        assert!(Secrets::is_sealed(&sealed) && !sealed.contains("whsec"));
        assert_eq!(s.open(&sealed, "webhook_secret:1").unwrap(), "whsec-1");
        assert_eq!(s.open(&sealed, "webhook_secret:2"), Err(SecretError::Refused), "moved to another account");
        let other = Secrets::from_key_text(&Secrets::random_key_text()).unwrap();
        assert_eq!(other.open(&sealed, "webhook_secret:1"), Err(SecretError::Refused), "another key");
        assert_ne!(s.seal("x", "c"), s.seal("x", "c"), "random nonces");
        assert_eq!(s.open("whsec-1", "c"), Err(SecretError::NotSealed));
        assert_eq!(s.open("enc:v1:AAAA", "c"), Err(SecretError::Malformed));
    }

    #[test]
    fn reads_hex_and_base64_keys_and_hides_them() {
        let hex_key = "00".repeat(32);
        assert!(Secrets::from_key_text(&hex_key).is_ok());
        assert!(Secrets::from_key_text(&BASE64.encode([7u8; 32])).is_ok());
        assert!(Secrets::from_key_text("short").is_err());
        assert!(Secrets::from_key_text(&BASE64.encode([7u8; 16])).is_err());
        assert_eq!(format!("{:?}", Secrets::demo()), "Secrets(<redacted>)");
    }
}
