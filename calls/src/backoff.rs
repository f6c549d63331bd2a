//! How long to wait before trying again: exponential backoff with jitter.
//!
//! The n-th retry (n from 0) waits a random time below the ceiling
//! `min(cap, base·2ⁿ)`. The randomness spreads the retries of many clients
//! hit by the same outage, so they do not come back in lockstep. Two kinds
//! of jitter, by what the caller needs:
//!
//! - [`Jitter::Full`]: uniform in `[0, ceiling]`, the widest spread (the
//!   Kommo client's request retries, which a short outage should not delay
//!   more than necessary);
//! - [`Jitter::Equal`]: uniform in `[ceiling/2, ceiling]`, never less than
//!   half (the job queue, the widget's reconnects: a retry that comes back at
//!   once only hammers a service that is down).
//!
//! Pure: the caller passes the random draw, a fraction in `[0, 1)` (`rand`'s
//! `gen::<f64>()` natively, `Math.random()` in the browser), so the same
//! function compiles everywhere and its tests need no seed.

use std::time::Duration;

/// Which part of the ceiling the random draw spreads over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, ceiling]`.
    Full,
    /// Uniform in `[ceiling/2, ceiling]`.
    Equal,
}

/// A backoff schedule: the first retry's ceiling, the largest ceiling, and
/// the jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub jitter: Jitter,
}

impl Backoff {
    /// The ceiling of the n-th retry's wait (n from 0): `min(cap, base·2ⁿ)`,
    /// without overflowing for large n.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).unwrap_or(self.cap).min(self.cap)
    }

    /// The n-th retry's wait, for a random `fraction` in `[0, 1)` (values
    /// outside are clamped).
    pub fn delay(&self, retry: u32, fraction: f64) -> Duration {
        let ceiling = self.ceiling(retry);
        let floor = match self.jitter {
            Jitter::Full => Duration::ZERO,
            Jitter::Equal => ceiling / 2,
        };
        let span = u64::try_from((ceiling - floor).as_nanos()).unwrap_or(u64::MAX);
        let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
        // `as` saturates: a fraction of 1.0 gives the whole span.
        let jitter = Duration::from_nanos((span as f64 * fraction) as u64).min(ceiling - floor);
        floor + jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn schedule(jitter: Jitter) -> Backoff {
        Backoff { base: 100 * MS, cap: Duration::from_secs(1), jitter }
    }

    #[test]
    fn ceiling_doubles_then_caps_and_never_overflows() {
        let b = schedule(Jitter::Full);
        assert_eq!(b.ceiling(0), 100 * MS);
        assert_eq!(b.ceiling(1), 200 * MS);
        assert_eq!(b.ceiling(3), 800 * MS);
        assert_eq!(b.ceiling(4), b.cap);
        assert_eq!(b.ceiling(40), b.cap);
        assert_eq!(b.ceiling(u32::MAX), b.cap);
        let huge = Backoff { base: Duration::from_secs(u64::MAX / 2), ..b };
        assert_eq!(huge.ceiling(5), b.cap);
    }

    #[test]
    fn full_jitter_covers_the_whole_range() {
        let b = schedule(Jitter::Full);
        for retry in 0..8 {
            let ceiling = b.ceiling(retry);
            assert_eq!(b.delay(retry, 0.0), Duration::ZERO);
            assert_eq!(b.delay(retry, 0.5), ceiling / 2);
            assert!(b.delay(retry, 0.999_999) > ceiling * 99 / 100);
            assert_eq!(b.delay(retry, 1.0), ceiling);
        }
    }

    #[test]
    fn equal_jitter_never_waits_less_than_half() {
        let b = schedule(Jitter::Equal);
        for retry in 0..8 {
            let ceiling = b.ceiling(retry);
            assert_eq!(b.delay(retry, 0.0), ceiling / 2);
            assert_eq!(b.delay(retry, 0.5), ceiling * 3 / 4);
            assert_eq!(b.delay(retry, 1.0), ceiling);
        }
    }

    #[test]
    fn out_of_range_draws_are_clamped_and_zero_waits_zero() {
        let b = schedule(Jitter::Equal);
        assert_eq!(b.delay(2, -3.0), b.ceiling(2) / 2);
        assert_eq!(b.delay(2, 7.0), b.ceiling(2));
        assert_eq!(b.delay(2, f64::NAN), b.ceiling(2) / 2);
        let none = Backoff { base: Duration::ZERO, ..schedule(Jitter::Full) };
        assert_eq!(none.delay(3, 0.7), Duration::ZERO);
    }
}
