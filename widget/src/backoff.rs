//! Reconnect delays, and when to poll: the feed's failure counter over the
//! one backoff schedule of the project ([`callcard_calls::backoff`]).
//!
//! The `n`-th consecutive failure waits a random time in `[c/2, c]` with
//! `c = min(max, base · 2ⁿ)` ([`Jitter::Equal`]): never a hammering zero, and
//! many tabs or browsers that lost the backend together do not come back in
//! lockstep. After [`Backoff::POLL_AFTER`] failures in a row the feed also
//! polls, while it keeps retrying the socket.

use callcard_calls::backoff::{Backoff as Schedule, Jitter};
use std::time::Duration;

/// Consecutive failures and the delay before the next attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    schedule: Schedule,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(500, 30_000)
    }
}

impl Backoff {
    /// Socket failures in a row after which the feed falls back to polling.
    pub const POLL_AFTER: u32 = 3;

    pub fn new(base_ms: u32, max_ms: u32) -> Self {
        let base = Duration::from_millis(u64::from(base_ms.max(1)));
        let cap = Duration::from_millis(u64::from(max_ms)).max(base);
        Self { schedule: Schedule { base, cap, jitter: Jitter::Equal }, failures: 0 }
    }

    /// Records a failure and returns how many milliseconds to wait before
    /// retrying; `random` is uniform in `[0, 1)` (`Math.random()`).
    pub fn fail(&mut self, random: f64) -> u32 {
        let delay = self.schedule.delay(self.failures, random);
        self.failures = self.failures.saturating_add(1);
        millis(delay)
    }

    /// The upper bound of the next delay, in milliseconds.
    pub fn cap(&self) -> u32 {
        millis(self.schedule.ceiling(self.failures))
    }

    /// A success: the next failure starts from the base delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether the socket failed often enough to poll meanwhile.
    pub fn should_poll(&self) -> bool {
        self.failures >= Self::POLL_AFTER
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_bounds() {
        let mut b = Backoff::new(500, 30_000);
        let mut caps = Vec::new();
        for _ in 0..12 {
            let cap = b.cap();
            for r in [0.0, 0.5, 0.999_999, 1.0, -3.0, 7.0] {
                let d = b.clone().fail(r);
                assert!(d >= cap / 2 && d <= cap, "{d} not in [{}, {cap}]", cap / 2);
            }
            caps.push(cap);
            b.fail(0.3);
        }
        assert_eq!(&caps[..4], &[500, 1_000, 2_000, 4_000]);
        assert_eq!(*caps.last().unwrap(), 30_000);
        assert!(caps.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn jitter_spreads_the_delay() {
        let b = Backoff::new(1_000, 60_000);
        assert_eq!(b.clone().fail(0.0), 500);
        assert_eq!(b.clone().fail(0.999_999), 999);
    }

    #[test]
    fn reset_starts_over_and_polling_follows_failures() {
        let mut b = Backoff::default();
        for _ in 0..Backoff::POLL_AFTER - 1 {
            b.fail(0.5);
        }
        assert!(!b.should_poll());
        b.fail(0.5);
        assert!(b.should_poll());
        b.reset();
        assert_eq!((b.failures(), b.cap()), (0, 500));
    }

    #[test]
    fn huge_failure_counts_do_not_overflow() {
        let mut b = Backoff::new(u32::MAX / 2, u32::MAX);
        for _ in 0..100 {
            assert!(b.fail(1.0) >= u32::MAX / 4);
        }
        assert_eq!(b.cap(), u32::MAX);
    }
}
