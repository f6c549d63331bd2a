//! When to try a failed request again, and how long to wait first.
//!
//! # The rule
//!
//! A failure is retried (up to [`ClientConfig::max_retries`] times) when it is
//! transient **and** retrying cannot create a duplicate:
//!
//! | failure | [`Idempotency::Idempotent`] (GET, PATCH, link) | [`Idempotency::Creates`] (POST that adds a record) |
//! | --- | --- | --- |
//! | 429 | retry, after `Retry-After` | retry, after `Retry-After`: a throttled request was refused before Kommo did anything |
//! | connect failed | retry | retry: the request never left this machine |
//! | 5xx, timeout, connection dropped after sending | retry | **no**: Kommo may have created the record and only the answer was lost |
//! | 400, 401, 403, 404 | no (401 has its own one-refresh rule in the pipeline) | no |
//!
//! Kommo does not deduplicate calls, notes, tasks or incoming leads, so for
//! the "may have been created" cases the error goes back to the caller with
//! [`KommoError::may_have_been_applied`] set, and the caller, who knows the
//! record's natural key, looks before it creates again. For call notes the
//! key is `params.uniq`, and [`KommoClient::add_call_note_once`] does exactly
//! that look-then-create, so *it* may retry ambiguous failures.
//!
//! # The wait
//!
//! "Exponential backoff with full jitter" ([`callcard_calls::backoff`], the
//! one backoff of the project): the n-th retry waits a uniformly random time
//! in `[0, min(cap, base·2ⁿ)]`. The randomness spreads the retries of many
//! workers hit by the same outage, so they do not come back in lockstep and
//! knock Kommo (and our 7 requests/second) over again. When Kommo says
//! `Retry-After: s`, we wait `s` plus a jitter of up to `base`: never
//! earlier than asked.
//!
//! [`ClientConfig::max_retries`]: crate::ClientConfig::max_retries
//! [`KommoClient::add_call_note_once`]: crate::KommoClient::add_call_note_once

use crate::{ClientConfig, KommoError};
use callcard_calls::backoff::{Backoff, Jitter};
use rand::Rng;
use std::time::Duration;

/// Whether repeating a request could do its effect twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// Repeating it leaves Kommo as one request would (reads, PATCH with full
    /// values, link/unlink).
    Idempotent,
    /// It creates a record (or a notification, or accepts a lead): retried
    /// only when Kommo provably did not process it.
    Creates,
}

/// The client's backoff schedule: full jitter up to `backoff_cap`.
fn schedule(config: &ClientConfig) -> Backoff {
    Backoff { base: config.backoff_base, cap: config.backoff_cap, jitter: Jitter::Full }
}

/// Decides whether to retry after `err`, which ended attempt number
/// `retries_done + 1`. `Some(wait)` means sleep `wait`, then try again.
pub fn next_delay(
    config: &ClientConfig,
    retries_done: u32,
    err: &KommoError,
    idempotency: Idempotency,
    rng: &mut impl Rng,
) -> Option<Duration> {
    if retries_done >= config.max_retries {
        return None;
    }
    let mut backoff = || schedule(config).delay(retries_done, rng.gen());
    match err {
        KommoError::RateLimited { retry_after: Some(after) } => {
            if *after > config.max_retry_after {
                return None;
            }
            // Up to one `base` more than asked: the first retry's full jitter.
            Some(*after + schedule(config).delay(0, rng.gen()))
        }
        KommoError::RateLimited { retry_after: None } | KommoError::Transport { request_sent: false, .. } => {
            Some(backoff())
        }
        KommoError::Server { .. } | KommoError::Timeout | KommoError::Transport { .. } => {
            (idempotency == Idempotency::Idempotent).then(backoff)
        }
        _ => None,
    }
}

/// Reads `Retry-After` as whole or fractional seconds. (The HTTP-date form is
/// not used by Kommo as far as anyone has documented; it falls back to
/// ordinary backoff.)
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn config() -> ClientConfig {
        ClientConfig {
            max_retries: 3,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(5),
            ..ClientConfig::default()
        }
    }

    #[test]
    fn retries_wait_with_full_jitter_below_the_doubling_ceiling() {
        let mut rng = StdRng::seed_from_u64(7);
        let c = ClientConfig { max_retries: 10, ..config() };
        let err = KommoError::Server { status: 503 };
        for retry in 0..8 {
            let ceiling = schedule(&c).ceiling(retry);
            let samples: Vec<Duration> =
                (0..2000).map(|_| next_delay(&c, retry, &err, Idempotency::Idempotent, &mut rng).unwrap()).collect();
            assert!(samples.iter().all(|d| *d <= ceiling));
            // Full jitter: the waits cover the whole range, not just its top.
            assert!(samples.iter().any(|d| *d < ceiling / 10));
            assert!(samples.iter().any(|d| *d > ceiling * 9 / 10));
        }
        assert_eq!(schedule(&c).ceiling(3), Duration::from_millis(800));
        assert_eq!(schedule(&c).ceiling(4), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_honoured_with_a_little_jitter() {
        let mut rng = StdRng::seed_from_u64(1);
        let err = KommoError::RateLimited { retry_after: Some(Duration::from_secs(2)) };
        for _ in 0..100 {
            let d = next_delay(&config(), 0, &err, Idempotency::Creates, &mut rng).unwrap();
            assert!(d >= Duration::from_secs(2) && d <= Duration::from_millis(2100), "{d:?}");
        }
        let too_long = KommoError::RateLimited { retry_after: Some(Duration::from_secs(60)) };
        assert_eq!(next_delay(&config(), 0, &too_long, Idempotency::Idempotent, &mut rng), None);
    }

    #[test]
    fn creating_requests_are_not_retried_when_they_may_have_landed() {
        let mut rng = StdRng::seed_from_u64(1);
        let c = config();
        for err in [KommoError::Server { status: 502 }, KommoError::Timeout] {
            assert!(next_delay(&c, 0, &err, Idempotency::Idempotent, &mut rng).is_some());
            assert!(next_delay(&c, 0, &err, Idempotency::Creates, &mut rng).is_none());
        }
        let sent = KommoError::Transport { detail: "reset".into(), request_sent: true };
        assert!(next_delay(&c, 0, &sent, Idempotency::Creates, &mut rng).is_none());
        let unsent = KommoError::Transport { detail: "refused".into(), request_sent: false };
        assert!(next_delay(&c, 0, &unsent, Idempotency::Creates, &mut rng).is_some());
        assert!(next_delay(&c, 0, &KommoError::NotFound, Idempotency::Idempotent, &mut rng).is_none());
        assert!(next_delay(&c, 0, &KommoError::Unauthorized, Idempotency::Idempotent, &mut rng).is_none());
    }

    #[test]
    fn stops_at_max_retries() {
        let mut rng = StdRng::seed_from_u64(1);
        let err = KommoError::Server { status: 503 };
        assert!(next_delay(&config(), 2, &err, Idempotency::Idempotent, &mut rng).is_some());
        assert!(next_delay(&config(), 3, &err, Idempotency::Idempotent, &mut rng).is_none());
    }

    #[test]
    fn parses_retry_after_seconds() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 1.5 "), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
