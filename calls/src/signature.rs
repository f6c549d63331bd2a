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
    /// `u64` because the distance between two `i64`s can exceed `i64::MAX`.
    Stale {
        skew_seconds: u64,
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
    // `abs_diff` cannot overflow: a plain `now - timestamp` panics (debug) or
    // wraps into the window (release) for a timestamp such as `i64::MIN`.
    let skew = now_seconds.abs_diff(timestamp);
    if skew > REPLAY_WINDOW_SECONDS.unsigned_abs() {
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
    fn extreme_timestamps_are_stale_not_a_panic_or_a_wrap() {
        // i64::MIN used to overflow `now - timestamp`: a panic in debug builds,
        // and in release a wrapped skew that passed the window check.
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX] {
            let sig = sign(b"k", ts, b"x");
            let answer = verify(b"k", Some(&ts.to_string()), Some(&sig), b"x", NOW);
            assert!(matches!(answer, Err(SignatureError::Stale { .. })), "{ts}: {answer:?}");
        }
        assert_eq!(
            verify(b"k", Some(&i64::MIN.to_string()), Some("v1=00"), b"x", i64::MAX),
            Err(SignatureError::Stale { skew_seconds: u64::MAX })
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever a client puts in the headers, the verifier answers
            /// (never panics), and only a correct signature inside the
            /// window is accepted.
            #[test]
            fn arbitrary_headers_never_panic_and_never_pass(
                timestamp in proptest::option::of(".{0,40}"),
                signature in proptest::option::of(".{0,80}"),
                body in proptest::collection::vec(any::<u8>(), 0..64),
                now in any::<i64>(),
            ) {
                let answer = verify(b"secret", timestamp.as_deref(), signature.as_deref(), &body, now);
                prop_assert!(answer.is_err(), "a random signature was accepted: {answer:?}");
            }

            /// For any timestamp and clock, a genuinely signed request is
            /// accepted exactly when the two are at most the window apart.
            #[test]
            fn the_window_is_exact_for_any_clock(
                timestamp in any::<i64>(),
                offset in -400i64..=400,
                far in any::<bool>(),
                body in proptest::collection::vec(any::<u8>(), 0..64),
            ) {
                let now = if far { timestamp.wrapping_add(offset.wrapping_mul(1 << 40)) } else { timestamp.saturating_add(offset) };
                let sig = sign(b"secret", timestamp, &body);
                let answer = verify(b"secret", Some(&timestamp.to_string()), Some(&sig), &body, now);
                let within = now.abs_diff(timestamp) <= REPLAY_WINDOW_SECONDS.unsigned_abs();
                if within {
                    prop_assert_eq!(answer, Ok(timestamp));
                } else {
                    prop_assert_eq!(answer, Err(SignatureError::Stale { skew_seconds: now.abs_diff(timestamp) }));
                }
            }

            /// Any change to the body breaks the signature.
            #[test]
            fn a_changed_body_never_verifies(
                body in proptest::collection::vec(any::<u8>(), 1..64),
                index in any::<prop::sample::Index>(),
                flip in 1u8..=255,
            ) {
                let sig = sign(b"secret", NOW, &body);
                let mut tampered = body.clone();
                let i = index.index(tampered.len());
                tampered[i] ^= flip;
                prop_assert_eq!(
                    verify(b"secret", Some(&NOW.to_string()), Some(&sig), &tampered, NOW),
                    Err(SignatureError::Mismatch)
                );
            }
        }
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
