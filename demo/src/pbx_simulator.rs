//! A pretend PBX for the demo and the tests. The host page's PBX panel asks it
//! to ring, answer, hang up and deliver recordings; it turns each request into
//! the webhook a real PBX would send (with real times, a real HMAC signature
//! and a real recording URL) and posts it to the backend over HTTP.
//!
//! `POST /pbx-simulator/events`
//! `{"event":"ringing"|"answered"|"ended"|"recording_ready", "call_id"?, "direction"?,
//!   "external_number"?, "extension"?, "outcome"?}` → `{"call_id","status"}`.
//! Only `ringing` needs the direction and numbers (and creates a call id when
//! none is given); later events reuse what the call rang with.
//!
//! `GET /pbx-simulator/recordings/{call_id}.wav`: the call's recording.

use crate::recording;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use callcard_calls::event::{CallEvent, CallEventKind, Direction, Outcome};
use callcard_calls::signature;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where the simulated PBX posts, and with which secret.
#[derive(Clone)]
pub struct PbxSimulator {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// `…/backend/pbx/{account_id}/events`
    events_url: String,
    /// Base for recording URLs: `…/pbx-simulator`.
    public_url: String,
    webhook_secret: String,
    calls: Mutex<HashMap<String, SimulatedCall>>,
}

#[derive(Clone)]
struct SimulatedCall {
    direction: Direction,
    external_number: String,
    extension: String,
    answered_at: Option<i64>,
    ended: Option<(i64, u32)>,
}

/// A request from the host page's PBX panel.
#[derive(Debug, Deserialize)]
pub struct PanelRequest {
    pub event: String,
    pub call_id: Option<String>,
    pub direction: Option<Direction>,
    pub external_number: Option<String>,
    pub extension: Option<String>,
    pub outcome: Option<String>,
}

impl PbxSimulator {
    pub fn new(events_url: String, public_url: String, webhook_secret: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                http: reqwest::Client::new(),
                events_url,
                public_url,
                webhook_secret,
                calls: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/events", post(panel_event))
            .route("/recordings/{file}", get(recording_file))
            .with_state(self.clone())
    }

    /// Turns a panel request into a webhook event (without sending it).
    fn event_for(&self, req: &PanelRequest, now: i64) -> Result<CallEvent, String> {
        let mut calls = self.inner.calls.lock().expect("simulator state");
        let call_id = match (&req.call_id, req.event.as_str()) {
            (Some(id), _) if !id.trim().is_empty() => id.trim().to_string(),
            (_, "ringing") => format!("sim-{}", uuid::Uuid::new_v4().simple()),
            _ => return Err("call_id is required for every event but ringing".into()),
        };
        if req.event == "ringing" || !calls.contains_key(&call_id) {
            let call = SimulatedCall {
                direction: req.direction.ok_or("direction is required")?,
                external_number: req.external_number.clone().ok_or("external_number is required")?,
                extension: req.extension.clone().ok_or("extension is required")?,
                answered_at: None,
                ended: None,
            };
            calls.entry(call_id.clone()).or_insert(call);
        }
        let call = calls.get_mut(&call_id).expect("inserted above");
        let kind = match req.event.as_str() {
            "ringing" => CallEventKind::Ringing,
            "answered" => {
                call.answered_at.get_or_insert(now);
                CallEventKind::Answered
            }
            "ended" => {
                let outcome = match req.outcome.as_deref() {
                    Some(o) => Outcome::parse(o).ok_or(format!("unknown outcome {o:?}"))?,
                    None if call.answered_at.is_some() => Outcome::Answered,
                    None => Outcome::Missed,
                };
                let duration = match (outcome, call.answered_at) {
                    (Outcome::Answered, Some(at)) => ((now - at) / 1000).max(1) as u32,
                    (Outcome::Answered, None) => 1,
                    _ => 0,
                };
                call.ended = Some((now, duration));
                CallEventKind::Ended { duration, outcome }
            }
            "recording_ready" => CallEventKind::RecordingReady {
                recording_url: format!("{}/recordings/{call_id}.wav", self.inner.public_url),
            },
            other => return Err(format!("unknown event {other:?}")),
        };
        Ok(CallEvent {
            kind,
            call_id,
            direction: call.direction,
            external_number: call.external_number.as_str().into(),
            extension: call.extension.clone(),
            occurred_at: now,
        })
    }

    /// Signs and posts one event (a [`CallEvent`], or a late one such as
    /// `transcript_ready`) to the backend; returns the backend's status and body.
    pub async fn deliver(&self, event: &impl serde::Serialize) -> anyhow::Result<(StatusCode, String)> {
        let body = serde_json::to_vec(event)?;
        let ts = now_ms() / 1000;
        let sig = signature::sign(self.inner.webhook_secret.as_bytes(), ts, &body);
        let answer = self
            .inner
            .http
            .post(&self.inner.events_url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(signature::TIMESTAMP_HEADER, ts.to_string())
            .header(signature::SIGNATURE_HEADER, sig)
            .body(body)
            .send()
            .await?;
        let status = StatusCode::from_u16(answer.status().as_u16())?;
        Ok((status, answer.text().await.unwrap_or_default()))
    }

    fn recording_seconds(&self, call_id: &str) -> u32 {
        let calls = self.inner.calls.lock().expect("simulator state");
        calls.get(call_id).and_then(|c| c.ended).map(|(_, d)| d.clamp(3, 60)).unwrap_or(5)
    }
}

async fn panel_event(State(sim): State<PbxSimulator>, Json(req): Json<PanelRequest>) -> Response {
    let event = match sim.event_for(&req, now_ms()) {
        Ok(e) => e,
        Err(detail) => return problem(StatusCode::UNPROCESSABLE_ENTITY, "Invalid PBX panel request", &detail),
    };
    match sim.deliver(&event).await {
        Ok((status, _)) if status.is_success() => {
            Json(json!({"call_id": event.call_id, "status": status.as_u16()})).into_response()
        }
        Ok((status, body)) => {
            let detail = format!("the backend answered {status}: {body}");
            problem(StatusCode::BAD_GATEWAY, "The backend refused the webhook", &detail)
        }
        Err(e) => problem(StatusCode::BAD_GATEWAY, "The backend could not be reached", &e.to_string()),
    }
}

async fn recording_file(State(sim): State<PbxSimulator>, Path(file): Path<String>) -> Response {
    let Some(call_id) = file.strip_suffix(".wav") else {
        return problem(StatusCode::NOT_FOUND, "No such recording", "recordings are <call_id>.wav");
    };
    let bytes = recording::wav(sim.recording_seconds(call_id));
    ([(header::CONTENT_TYPE, "audio/wav"), (header::CACHE_CONTROL, "public, max-age=3600")], bytes).into_response()
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail});
    (status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> PbxSimulator {
        PbxSimulator::new("http://x/events".into(), "http://x/pbx-simulator".into(), "k".into())
    }

    fn req(event: &str, call_id: Option<&str>) -> PanelRequest {
        PanelRequest {
            event: event.into(),
            call_id: call_id.map(Into::into),
            direction: Some(Direction::Inbound),
            external_number: Some("+18305703077".into()),
            extension: Some("101".into()),
            outcome: None,
        }
    }

    #[test]
    fn a_panel_call_becomes_valid_webhook_events() {
        let s = sim();
        let ring = s.event_for(&req("ringing", None), 1_763_691_600_000).unwrap();
        ring.validate().unwrap();
        let id = ring.call_id.clone();
        let answered =
            PanelRequest { direction: None, external_number: None, extension: None, ..req("answered", Some(&id)) };
        s.event_for(&answered, 1_763_691_601_000).unwrap();
        let end = s.event_for(&req("ended", Some(&id)), 1_763_691_643_000).unwrap();
        assert_eq!(end.kind, CallEventKind::Ended { duration: 42, outcome: Outcome::Answered });
        let rec = s.event_for(&req("recording_ready", Some(&id)), 1_763_691_650_000).unwrap();
        rec.validate().unwrap();
        assert!(
            matches!(rec.kind, CallEventKind::RecordingReady { ref recording_url } if recording_url.ends_with(&format!("{id}.wav")))
        );
    }

    #[test]
    fn an_unanswered_hang_up_is_a_missed_call_of_zero_seconds() {
        let s = sim();
        let ring = s.event_for(&req("ringing", None), 1_763_691_600_000).unwrap();
        let end = s.event_for(&req("ended", Some(&ring.call_id)), 1_763_691_630_000).unwrap();
        assert_eq!(end.kind, CallEventKind::Ended { duration: 0, outcome: Outcome::Missed });
    }

    #[test]
    fn bad_panel_requests_say_what_is_wrong() {
        let s = sim();
        assert!(s.event_for(&req("answered", None), 1).unwrap_err().contains("call_id"));
        assert!(s.event_for(&req("exploded", Some("c")), 1).unwrap_err().contains("unknown event"));
        let mut r = req("ended", Some("c9"));
        r.outcome = Some("sideways".into());
        assert!(s.event_for(&r, 1_763_691_600_000).unwrap_err().contains("outcome"));
    }
}
