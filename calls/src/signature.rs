//! Webhook signatures: how the backend knows a call event really comes from
//! the account's PBX, and is not a replay.
//!
//! The PBX sends two headers with every request:
//!
//! ```text
//! X-Callcard-Timestamp: 1763691600
//! X-Callcard-Signature: v1=<hex HMAC-SHA256(webhook secret, "1763691600." + raw body)>
//! ```
//!
//! Signing the timestamp with the body means a captured request cannot be
//! replayed later than the window allows, and the `v1=` prefix leaves room to
//! rotate the scheme.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

pub const TIMESTAMP_HEADER: &str = "x-callcard-timestamp";
pub const SIGNATURE_HEADER: &str = "x-callcard-signature";
/// How far a request's timestamp may be from the receiver's clock.
pub const REPLAY_WINDOW_SECONDS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// The `X-Callcard-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("v1={}", hex::encode(mac(secret, timestamp, body).finalize().into_bytes()))
}

/// Why a request's signature was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureError {
    MissingTimestamp,
    MalformedTimestamp,
    /// The timestamp is outside the replay window (seconds of skew given).
    Stale {
        skew_seconds: i64,
    },
    MissingSignature,
    MalformedSignature,
    Mismatch,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingTimestamp => write!(f, "the {TIMESTAMP_HEADER} header is missing"),
            Self::MalformedTimestamp => write!(f, "the {TIMESTAMP_HEADER} header must be Unix seconds"),
            Self::Stale { skew_seconds } => write!(
                f,
                "the request timestamp is {skew_seconds} s away from now; at most {REPLAY_WINDOW_SECONDS} s is accepted"
            ),
            Self::MissingSignature => write!(f, "the {SIGNATURE_HEADER} header is missing"),
            Self::MalformedSignature => write!(f, "the {SIGNATURE_HEADER} header must be v1=<64 hex digits>"),
            Self::Mismatch => f.write_str("the signature does not match the body and the account's webhook secret"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// Checks a request's headers against its raw body, in constant time.
/// Returns the request's timestamp.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_seconds: i64,
) -> Result<i64, SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| SignatureError::MalformedTimestamp)?;
    let skew = (now_seconds - timestamp).abs();
    if skew > REPLAY_WINDOW_SECONDS {
        return Err(SignatureError::Stale { skew_seconds: skew });
    }
    let signature = signature.ok_or(SignatureError::MissingSignature)?;
    let hex_part = signature.trim().strip_prefix("v1=").ok_or(SignatureError::MalformedSignature)?;
    let given = hex::decode(hex_part).map_err(|_| SignatureError::MalformedSignature)?;
    if given.len() != 32 {
        return Err(SignatureError::MalformedSignature);
    }
    mac(secret, timestamp, body).verify_slice(&given).map_err(|_| SignatureError::Mismatch)?;
    Ok(timestamp)
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_763_691_600;

    #[test]
    fn a_signed_body_verifies() {
        let sig = sign(b"s3cret", NOW, b"{}");
        assert_eq!(verify(b"s3cret", Some(&NOW.to_string()), Some(&sig), b"{}", NOW + 10), Ok(NOW));
    }

    #[test]
    fn tampering_or_the_wrong_secret_is_refused() {
        let sig = sign(b"s3cret", NOW, b"{\"duration\":5}");
        let ts = NOW.to_string();
        assert_eq!(verify(b"s3cret", Some(&ts), Some(&sig), b"{\"duration\":500}", NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"other", Some(&ts), Some(&sig), b"{\"duration\":5}", NOW), Err(SignatureError::Mismatch));
        // The timestamp is signed too: moving it forward breaks the signature.
        let later = (NOW + 100).to_string();
        assert_eq!(
            verify(b"s3cret", Some(&later), Some(&sig), b"{\"duration\":5}", NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn replays_outside_the_window_are_refused() {
        let sig = sign(b"k", NOW, b"x");
        let ts = NOW.to_string();
        assert_eq!(
            verify(b"k", Some(&ts), Some(&sig), b"x", NOW + 301),
            Err(SignatureError::Stale { skew_seconds: 301 })
        );
        assert_eq!(
            verify(b"k", Some(&ts), Some(&sig), b"x", NOW - 301),
            Err(SignatureError::Stale { skew_seconds: 301 })
        );
    }

    #[test]
    fn missing_or_malformed_headers_say_which() {
        assert_eq!(verify(b"k", None, Some("v1=00"), b"", NOW), Err(SignatureError::MissingTimestamp));
        assert_eq!(verify(b"k", Some("soon"), Some("v1=00"), b"", NOW), Err(SignatureError::MalformedTimestamp));
        assert_eq!(verify(b"k", Some(&NOW.to_string()), None, b"", NOW), Err(SignatureError::MissingSignature));
        assert_eq!(
            verify(b"k", Some(&NOW.to_string()), Some("sha256=ab"), b"", NOW),
            Err(SignatureError::MalformedSignature)
        );
    }
}
