//! Fault injection: make a share of Kommo API requests fail, so the
//! backend's retries and backoff can be proven against the sandbox.
//!
//! `POST /sandbox/faults` with any of
//!
//! ```json
//! {"error_rate": 0.2, "error_status": 503,
//!  "throttle_rate": 0.1, "retry_after": 1,
//!  "delay_rate": 0.1, "delay_ms": 1500,
//!  "drop_rate": 0.05,
//!  "script": ["503", "429", "drop", "delay", "ok"]}
//! ```
//!
//! sets the faults (fields left out are 0 / defaults); `DELETE
//! /sandbox/faults` (or `POST /sandbox/faults/reset`) clears them, and `GET
//! /sandbox/faults` shows them with counters of what was injected.
//!
//! `script` is deterministic, for tests: each of the next requests takes the
//! next entry (`"500"`..`"599"`, `"429"`, `"drop"`, `"delay"`, `"ok"`);
//! after the script the rates apply. Rates are drawn per request in the order
//! drop, error, throttle, delay. Faults apply to Kommo's routes (`/api/...`
//! and `/oauth2/...`), before authentication, as a broken network or
//! overloaded Kommo would; never to the host page or `/sandbox/...`.
//!
//! A dropped connection is a response whose body fails before anything is
//! written: the server closes the connection and the client sees a transport
//! error with no status.

use crate::problem::Problem;
use crate::Sandbox;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// What to inject; see the module doc.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FaultConfig {
    pub error_rate: f64,
    pub error_status: Option<u16>,
    pub throttle_rate: f64,
    pub retry_after: Option<u64>,
    pub delay_rate: f64,
    pub delay_ms: Option<u64>,
    pub drop_rate: f64,
    pub script: Vec<String>,
}

/// One injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Error(StatusCode),
    Throttle,
    Delay,
    Drop,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FaultCounters {
    pub errors: u64,
    pub throttles: u64,
    pub delays: u64,
    pub drops: u64,
}

#[derive(Debug, Default)]
struct Inner {
    config: FaultConfig,
    script: VecDeque<String>,
    counters: FaultCounters,
}

/// The fault injector shared by all requests.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<Inner>,
}

impl Faults {
    pub fn set(&self, config: FaultConfig) {
        let mut i = self.inner.lock().unwrap();
        i.script = config.script.iter().cloned().collect();
        i.config = config;
        i.counters = FaultCounters::default();
    }

    pub fn reset(&self) {
        self.set(FaultConfig::default());
    }

    /// Decides the fault (if any) for the next request.
    pub fn draw(&self) -> Option<Fault> {
        let mut i = self.inner.lock().unwrap();
        let error_status = StatusCode::from_u16(i.config.error_status.unwrap_or(503))
            .ok()
            .filter(|s| s.is_server_error())
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let fault = if let Some(step) = i.script.pop_front() {
            match step.trim() {
                "drop" => Some(Fault::Drop),
                "delay" => Some(Fault::Delay),
                "429" => Some(Fault::Throttle),
                s => s
                    .parse::<u16>()
                    .ok()
                    .and_then(|n| StatusCode::from_u16(n).ok())
                    .filter(|s| s.is_server_error())
                    .map(Fault::Error),
            }
        } else {
            let c = &i.config;
            let mut rng = rand::thread_rng();
            let mut hit = |p: f64| p > 0.0 && rng.gen::<f64>() < p;
            if hit(c.drop_rate) {
                Some(Fault::Drop)
            } else if hit(c.error_rate) {
                Some(Fault::Error(error_status))
            } else if hit(c.throttle_rate) {
                Some(Fault::Throttle)
            } else if hit(c.delay_rate) {
                Some(Fault::Delay)
            } else {
                None
            }
        };
        match fault {
            Some(Fault::Error(_)) => i.counters.errors += 1,
            Some(Fault::Throttle) => i.counters.throttles += 1,
            Some(Fault::Delay) => i.counters.delays += 1,
            Some(Fault::Drop) => i.counters.drops += 1,
            None => {}
        }
        fault
    }

    pub fn snapshot(&self) -> serde_json::Value {
        let i = self.inner.lock().unwrap();
        serde_json::json!({"config": i.config, "script_left": i.script, "injected": i.counters})
    }

    fn delay(&self) -> Duration {
        Duration::from_millis(self.inner.lock().unwrap().config.delay_ms.unwrap_or(2_000))
    }

    fn retry_after(&self) -> u64 {
        self.inner.lock().unwrap().config.retry_after.unwrap_or(1)
    }
}

/// Middleware on Kommo's routes.
pub async fn inject(State(sb): State<Sandbox>, req: Request, next: Next) -> Response {
    match sb.faults().draw() {
        None => next.run(req).await,
        Some(Fault::Delay) => {
            tokio::time::sleep(sb.faults().delay()).await;
            next.run(req).await
        }
        Some(Fault::Throttle) => Problem::too_many_requests(sb.faults().retry_after()).into_response(),
        Some(Fault::Error(status)) => Problem::new(status, "Injected fault").into_response(),
        Some(Fault::Drop) => {
            // A body stream that fails at once: hyper aborts the connection
            // instead of finishing the response.
            let stream = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected drop"))
            });
            Response::new(Body::from_stream(stream))
        }
    }
}

/// `POST /sandbox/faults`.
pub async fn set(State(sb): State<Sandbox>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(c) => {
            sb.faults().set(c);
            crate::problem::ok(sb.faults().snapshot())
        }
        Err(e) => Problem::bad_request(format!("bad fault configuration: {e}")).into_response(),
    }
}

/// `DELETE /sandbox/faults`, `POST /sandbox/faults/reset`.
pub async fn reset(State(sb): State<Sandbox>) -> Response {
    sb.faults().reset();
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /sandbox/faults`.
pub async fn show(State(sb): State<Sandbox>) -> Response {
    crate::problem::ok(sb.faults().snapshot())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_runs_in_order_then_rates_apply() {
        let f = Faults::default();
        f.set(FaultConfig {
            script: vec!["500".into(), "429".into(), "drop".into(), "ok".into()],
            ..Default::default()
        });
        assert_eq!(f.draw(), Some(Fault::Error(StatusCode::INTERNAL_SERVER_ERROR)));
        assert_eq!(f.draw(), Some(Fault::Throttle));
        assert_eq!(f.draw(), Some(Fault::Drop));
        assert_eq!(f.draw(), None);
        assert_eq!(f.draw(), None);
        f.set(FaultConfig { error_rate: 1.0, error_status: Some(502), ..Default::default() });
        assert_eq!(f.draw(), Some(Fault::Error(StatusCode::BAD_GATEWAY)));
        f.reset();
        assert_eq!(f.draw(), None);
    }
}
