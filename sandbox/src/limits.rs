//! Kommo's request budget: at most 7 requests per second per integration
//! and account. Past it the sandbox answers `429 Too Many Requests` with
//! `Retry-After` (Kommo's exact throttle status is unconfirmed; 429 is the
//! common reading, and a client that honours it is right either way).
//!
//! The window is sliding: a request is admitted when fewer than `limit`
//! requests were admitted in the last second. Refused requests do not count,
//! so a client that waits `Retry-After` gets through. Only the integration's
//! requests (bearer tokens) are counted; the host page's session requests
//! are the user's own and Kommo does not bill them to the integration.

use crate::oauth::{Principal, Via};
use crate::problem::Problem;
use crate::Sandbox;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A sliding one-second window of admitted requests.
#[derive(Debug)]
pub struct RateLimiter {
    limit: Mutex<Option<u32>>,
    window: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    pub fn new(per_second: Option<u32>) -> Self {
        Self { limit: Mutex::new(per_second), window: Mutex::new(VecDeque::new()) }
    }

    pub fn set_limit(&self, per_second: Option<u32>) {
        *self.limit.lock().unwrap() = per_second;
        self.window.lock().unwrap().clear();
    }

    pub fn limit(&self) -> Option<u32> {
        *self.limit.lock().unwrap()
    }

    /// Admits a request at `now`, or says how long until one would be admitted.
    pub fn check(&self, now: Instant) -> Result<(), Duration> {
        let Some(limit) = self.limit() else { return Ok(()) };
        let second = Duration::from_secs(1);
        let mut w = self.window.lock().unwrap();
        while w.front().is_some_and(|t| now.duration_since(*t) >= second) {
            w.pop_front();
        }
        if (w.len() as u32) < limit.max(1) {
            w.push_back(now);
            Ok(())
        } else {
            let oldest = *w.front().expect("window is full, so not empty");
            Err(second - now.duration_since(oldest))
        }
    }
}

/// Middleware after [`crate::oauth::authenticate`]: counts integration requests.
pub async fn enforce(State(sb): State<Sandbox>, req: Request, next: Next) -> Response {
    let counted = req.extensions().get::<Principal>().is_some_and(|p| p.via == Via::Token);
    if counted {
        if let Err(wait) = sb.limiter().check(Instant::now()) {
            // Retry-After is whole seconds; the remaining wait is under one
            // second, and 0 would invite an immediate retry, so round up.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Problem::too_many_requests(secs.max(1)).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_per_second_then_refusal_then_room_again() {
        let l = RateLimiter::new(Some(7));
        let t0 = Instant::now();
        for i in 0..7 {
            assert!(l.check(t0 + Duration::from_millis(i * 10)).is_ok(), "request {i}");
        }
        let wait = l.check(t0 + Duration::from_millis(100)).unwrap_err();
        assert_eq!(wait, Duration::from_millis(900));
        // Refusals do not count: once the first admitted request is a second
        // old, there is room for exactly one more.
        assert!(l.check(t0 + Duration::from_millis(1000)).is_ok());
        assert!(l.check(t0 + Duration::from_millis(1001)).is_err());
    }

    #[test]
    fn no_limit_admits_everything() {
        let l = RateLimiter::new(None);
        let t0 = Instant::now();
        assert!((0..100).all(|_| l.check(t0).is_ok()));
    }
}
