//! A pretend PBX for the demo and the tests. The host page's PBX panel asks it
//! to ring, answer, hang up and deliver recordings; it turns each request into
//! the webhook a real PBX would send (with real times, a real HMAC signature
//! and a real recording URL) and posts it to the backend over HTTP.
//!
//! `POST /pbx-simulator/events`
//! `{"event":"ringing"|"answered"|"transferred"|"ended"|"recording_ready"|"resend", "call_id"?,
//!   "direction"?, "external_number"?, "extension"?, "agent"?, "outcome"?}`
//! → `{"call_id","status","outcome"?,"routing"?}` ([`Played`]).
//! Only `ringing` needs the direction and numbers (and creates a call id when
//! none is given); later events reuse what the call rang with.
//!
//! Ring groups and transfers: `ringing` with `"extension": "101, 102"`
//! rings a group (one `ringing` webhook per extension, one call id);
//! `answered` answers at `agent` (else the first extension ringing);
//! `transferred` with `agent` rings that extension for the answered call
//! (a `ringing` there), and the next `answered` completes the transfer;
//! `ended` and `recording_ready` name the extension holding the call.
//! `ended` without an `outcome` ends the call as it went: answered if it
//! was, else missed (zero seconds).
//!
//! Routing: `ringing` of an inbound call with no `extension` (absent or
//! blank) is routed as a PBX using callcard routes it ([`routing`]): the
//! simulator asks the backend's signed `GET /pbx/{account_id}/route` and
//! rings the responsible manager's extension, or its default group when the
//! answer names none (every mapped extension, in the demo). The answer then
//! carries `"routing": {"route", "rang", "fallback"}` ([`Routed`]).
//!
//! `resend` delivers the call's last webhooks again, unchanged but for a
//! fresh signature, as a PBX does when it did not see the backend's answer.
//!
//! `GET /pbx-simulator/recordings/{call_id}.wav`: the call's recording.
//!
//! `POST /pbx-simulator/originate`: click-to-call, as the backend sends it
//! (an [`Originate`] signed with the account's webhook secret, checked like
//! the backend checks webhooks; 401 otherwise). Answered 202 at once; then
//! the simulator rings the manager's extension: a `ringing` event of an
//! outbound call from the extension to the number, under the backend's
//! call id. The panel answers and hangs it up like any other call (the
//! simulator lists it in `GET /pbx-simulator/calls`).
//!
//! `GET /pbx-simulator/calls`: the calls the simulator knows, newest first
//! (`[{"call_id","direction","external_number","extension","state"}]`), so
//! the panel shows the calls it did not place itself.

mod routing;

pub use routing::{Routed, Routing};

use crate::recording;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use callcard_calls::event::{CallEvent, CallEventKind, Direction, Outcome};
use callcard_calls::originate::Originate;
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
    /// Where inbound calls rung without an extension are routed; `None`:
    /// such calls are refused.
    routing: Option<Routing>,
    calls: Mutex<HashMap<String, SimulatedCall>>,
}

#[derive(Clone)]
struct SimulatedCall {
    /// When the simulator first heard of it (the list's order).
    created_at: i64,
    direction: Direction,
    external_number: String,
    /// The extension holding the call (the first of a group until one answers).
    extension: String,
    /// The extensions ringing for it now (a group, a transfer's target).
    ringing: Vec<String>,
    answered_at: Option<i64>,
    ended: Option<(i64, u32)>,
    /// The webhooks sent last (what `resend` delivers again).
    last_sent: Vec<CallEvent>,
}

/// A request from the host page's PBX panel.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PanelRequest {
    pub event: String,
    pub call_id: Option<String>,
    pub direction: Option<Direction>,
    pub external_number: Option<String>,
    pub extension: Option<String>,
    /// The extension that answers (a group's agent) or that a transfer rings.
    pub agent: Option<String>,
    pub outcome: Option<String>,
}

/// `"101, 102"` → `["101", "102"]`: digits only, at least one, no repeats.
fn extension_list(text: &str) -> Result<Vec<String>, String> {
    let mut list: Vec<String> = Vec::new();
    for part in text.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        if !part.chars().all(|c| c.is_ascii_digit()) || part.len() > 16 {
            return Err(format!("extension {part:?} must be 1 to 16 digits"));
        }
        if !list.iter().any(|e| e == part) {
            list.push(part.to_string());
        }
    }
    if list.is_empty() {
        return Err("extension is required".into());
    }
    Ok(list)
}

impl PbxSimulator {
    /// A simulator that posts to `events_url` and refuses inbound calls
    /// rung without an extension (it cannot route them).
    pub fn new(events_url: String, public_url: String, webhook_secret: String) -> Self {
        Self::build(events_url, public_url, webhook_secret, None)
    }

    /// A simulator that also routes inbound calls rung without an
    /// extension ([`routing`]).
    pub fn routing(events_url: String, public_url: String, webhook_secret: String, routing: Routing) -> Self {
        Self::build(events_url, public_url, webhook_secret, Some(routing))
    }

    fn build(events_url: String, public_url: String, webhook_secret: String, routing: Option<Routing>) -> Self {
        Self {
            inner: Arc::new(Inner {
                http: reqwest::Client::new(),
                events_url,
                public_url,
                webhook_secret,
                routing,
                calls: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/events", post(panel_event))
            .route("/recordings/{file}", get(recording_file))
            .route("/originate", post(originate))
            .route("/calls", get(list_calls))
            .with_state(self.clone())
    }

    /// Turns a panel request into the webhook events it makes (without
    /// sending them): one, or one per extension of a ring group; `resend`
    /// gives the call's last ones again. Remembers what it made.
    fn events_for(&self, req: &PanelRequest, now: i64) -> Result<Vec<CallEvent>, String> {
        let mut calls = self.inner.calls.lock().expect("simulator state");
        let call_id = match (&req.call_id, req.event.as_str()) {
            (Some(id), _) if !id.trim().is_empty() => id.trim().to_string(),
            (_, "ringing") => format!("sim-{}", uuid::Uuid::new_v4().simple()),
            _ => return Err("call_id is required for every event but ringing".into()),
        };
        if req.event == "resend" {
            return match calls.get(&call_id) {
                Some(call) if !call.last_sent.is_empty() => Ok(call.last_sent.clone()),
                _ => Err(format!("the simulator has sent no webhook for call {call_id} yet")),
            };
        }
        if req.event == "ringing" || !calls.contains_key(&call_id) {
            let ringing = extension_list(req.extension.as_deref().ok_or("extension is required")?)?;
            let call = SimulatedCall {
                created_at: now,
                direction: req.direction.ok_or("direction is required")?,
                external_number: req.external_number.clone().ok_or("external_number is required")?,
                extension: ringing[0].clone(),
                ringing,
                answered_at: None,
                ended: None,
                last_sent: Vec::new(),
            };
            calls.entry(call_id.clone()).or_insert(call);
        }
        let call = calls.get_mut(&call_id).expect("inserted above");
        let events = Self::next_events(&self.inner.public_url, &call_id, call, req, now)?;
        call.last_sent = events.clone();
        Ok(events)
    }

    /// The events `req` makes of `call` as it is, updating it.
    fn next_events(
        public_url: &str,
        call_id: &str,
        call: &mut SimulatedCall,
        req: &PanelRequest,
        now: i64,
    ) -> Result<Vec<CallEvent>, String> {
        let agent = match req.agent.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) => Some(extension_list(a)?.remove(0)),
            None => None,
        };
        let (direction, external_number) = (call.direction, call.external_number.clone());
        let event = |kind, extension: &str| CallEvent {
            kind,
            call_id: call_id.to_string(),
            direction,
            external_number: external_number.as_str().into(),
            extension: extension.to_string(),
            occurred_at: now,
        };
        match req.event.as_str() {
            "ringing" => return Ok(call.ringing.iter().map(|e| event(CallEventKind::Ringing, e)).collect()),
            "answered" => {
                let at = match agent {
                    Some(a) => a,
                    None => call.ringing.first().cloned().unwrap_or_else(|| call.extension.clone()),
                };
                call.answered_at.get_or_insert(now);
                call.ringing.clear();
                call.extension = at.clone();
                return Ok(vec![event(CallEventKind::Answered, &at)]);
            }
            "transferred" => {
                let target = agent.ok_or("agent (the extension to transfer to) is required")?;
                if call.answered_at.is_none() || call.ended.is_some() {
                    return Err("only a call in progress (answered, not ended) can be transferred".into());
                }
                if target == call.extension {
                    return Err(format!("the call is already at {target}"));
                }
                call.ringing = vec![target.clone()];
                return Ok(vec![event(CallEventKind::Ringing, &target)]);
            }
            _ => {}
        }
        let kind = match req.event.as_str() {
            "ended" => {
                let outcome = match req.outcome.as_deref().map(str::trim).filter(|o| !o.is_empty()) {
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
                call.ringing.clear();
                CallEventKind::Ended { duration, outcome }
            }
            "recording_ready" => {
                CallEventKind::RecordingReady { recording_url: format!("{public_url}/recordings/{call_id}.wav") }
            }
            other => return Err(format!("unknown event {other:?}")),
        };
        Ok(vec![event(kind, &call.extension)])
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

    /// Takes an originate request: the call is outbound from the manager's
    /// extension to the number; its first event rings the extension.
    fn originated(&self, request: &Originate, now: i64) -> Result<CallEvent, String> {
        let ring = CallEvent {
            kind: CallEventKind::Ringing,
            call_id: request.call_id.clone(),
            direction: Direction::Outbound,
            external_number: request.number.as_str().into(),
            extension: request.extension.clone(),
            occurred_at: now,
        };
        ring.validate().map_err(|e| e.to_string())?;
        let mut calls = self.inner.calls.lock().expect("simulator state");
        calls.entry(request.call_id.clone()).or_insert(SimulatedCall {
            created_at: now,
            direction: Direction::Outbound,
            external_number: request.number.clone(),
            extension: request.extension.clone(),
            ringing: vec![request.extension.clone()],
            answered_at: None,
            ended: None,
            last_sent: vec![ring.clone()],
        });
        Ok(ring)
    }

    fn recording_seconds(&self, call_id: &str) -> u32 {
        let calls = self.inner.calls.lock().expect("simulator state");
        calls.get(call_id).and_then(|c| c.ended).map(|(_, d)| d.clamp(3, 60)).unwrap_or(5)
    }
}

/// Why a panel request was not played.
#[derive(Debug)]
pub enum PlayError {
    /// The request itself is wrong (422).
    Invalid(String),
    /// The backend refused a webhook or could not be reached (502).
    Backend(String),
}

impl std::fmt::Display for PlayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(d) | Self::Backend(d) => f.write_str(d),
        }
    }
}

impl std::error::Error for PlayError {}

/// What a panel request did.
#[derive(Clone, Debug)]
pub struct Played {
    pub call_id: String,
    /// The backend's status for the last webhook.
    pub status: StatusCode,
    /// How the call ended, for `ended` (given, or as the call went).
    pub outcome: Option<Outcome>,
    /// Where routing rang a call rung without an extension.
    pub routed: Option<Routed>,
}

impl PbxSimulator {
    /// Plays one panel request: routes a new inbound call rung without an
    /// extension, then delivers its webhooks, signed, in order.
    pub async fn play(&self, req: &PanelRequest) -> Result<Played, PlayError> {
        let routed = match self.number_to_route(req).map_err(PlayError::Invalid)? {
            Some(number) => Some(self.route_call(&number).await.map_err(PlayError::Invalid)?),
            None => None,
        };
        let routed_req;
        let req = match &routed {
            Some(r) => {
                routed_req = PanelRequest { extension: Some(r.rang.join(", ")), ..req.clone() };
                &routed_req
            }
            None => req,
        };
        let events = self.events_for(req, now_ms()).map_err(PlayError::Invalid)?;
        let mut status = StatusCode::OK;
        for event in &events {
            match self.deliver(event).await {
                Ok((answer, _)) if answer.is_success() => status = answer,
                Ok((answer, body)) => return Err(PlayError::Backend(format!("the backend answered {answer}: {body}"))),
                Err(e) => return Err(PlayError::Backend(format!("the backend could not be reached: {e}"))),
            }
        }
        let outcome = events.iter().find_map(|e| match e.kind {
            CallEventKind::Ended { outcome, .. } => Some(outcome),
            _ => None,
        });
        Ok(Played { call_id: events.first().map(|e| e.call_id.clone()).unwrap_or_default(), status, outcome, routed })
    }

    /// The caller's number when `req` rings a new inbound call without an
    /// extension, which routing decides; `None` when the request names its
    /// extension or is not a new call.
    fn number_to_route(&self, req: &PanelRequest) -> Result<Option<String>, String> {
        let blank = req.extension.as_deref().is_none_or(|e| e.trim().is_empty());
        let known = req
            .call_id
            .as_deref()
            .is_some_and(|id| self.inner.calls.lock().expect("simulator state").contains_key(id.trim()));
        if req.event != "ringing" || !blank || known {
            return Ok(None);
        }
        if req.direction != Some(Direction::Inbound) {
            return Err("extension is required: an outbound call is made from an extension".into());
        }
        if self.inner.routing.is_none() {
            return Err("extension is required: this simulator does not route calls".into());
        }
        let number = req.external_number.as_deref().map(str::trim).ok_or("external_number is required")?;
        callcard_calls::event::validate_phone_number("external_number", number)
            .map_err(|e| format!("{}: {}", e.field, e.reason))?;
        Ok(Some(number.to_string()))
    }

    /// Where to ring a call from `number`: the backend's route, or the
    /// default group ([`Routing::ring_for`]).
    async fn route_call(&self, number: &str) -> Result<Routed, String> {
        let routed = self.inner.routing.as_ref().ok_or("this simulator does not route calls")?;
        let routed = routed.ring_for(self.route(number).await)?;
        if let Some(why) = &routed.fallback {
            tracing::info!(rang = ?routed.rang, why, "routed call: the default group rings");
        }
        Ok(routed)
    }

    /// The backend's route for a caller's number (the signed
    /// `GET …/route?number=…`), or why there is none.
    pub async fn route(&self, number: &str) -> Result<callcard_calls::route::Route, String> {
        let routing = self.inner.routing.as_ref().ok_or("this simulator does not route calls")?;
        routing.ask(&self.inner.http, &self.inner.webhook_secret, number).await
    }

    /// The ids of the calls the simulator knows, newest first.
    pub fn call_ids(&self) -> Vec<String> {
        let calls = self.inner.calls.lock().expect("simulator state");
        let mut list: Vec<(i64, String)> = calls.iter().map(|(id, c)| (c.created_at, id.clone())).collect();
        list.sort_by(|a, b| b.cmp(a));
        list.into_iter().map(|(_, id)| id).collect()
    }
}

async fn panel_event(State(sim): State<PbxSimulator>, Json(req): Json<PanelRequest>) -> Response {
    match sim.play(&req).await {
        Ok(played) => {
            let mut answer = json!({"call_id": played.call_id, "status": played.status.as_u16()});
            if let Some(outcome) = played.outcome {
                answer["outcome"] = json!(outcome);
            }
            if let Some(routed) = played.routed {
                answer["routing"] = json!(routed);
            }
            Json(answer).into_response()
        }
        Err(PlayError::Invalid(detail)) => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, "Invalid PBX panel request", &detail)
        }
        Err(PlayError::Backend(detail)) => problem(StatusCode::BAD_GATEWAY, "The backend refused the webhook", &detail),
    }
}

/// `POST /originate`: what the backend's click-to-call sends (module docs).
async fn originate(State(sim): State<PbxSimulator>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let secret = sim.inner.webhook_secret.as_bytes();
    let verified = signature::verify(
        secret,
        header(signature::TIMESTAMP_HEADER),
        header(signature::SIGNATURE_HEADER),
        &body,
        now_ms() / 1000,
    );
    if let Err(e) = verified {
        return problem(StatusCode::UNAUTHORIZED, "The originate request signature was refused", &e.to_string());
    }
    let request: Originate = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, "Invalid originate request", &e.to_string()),
    };
    let ring = match sim.originated(&request, now_ms()) {
        Ok(event) => event,
        Err(detail) => return problem(StatusCode::UNPROCESSABLE_ENTITY, "Invalid originate request", &detail),
    };
    // Answered before the phone rings, as a PBX queues the call: the
    // ringing webhook follows on its own.
    tokio::spawn(async move {
        match sim.deliver(&ring).await {
            Ok((status, _)) if status.is_success() => {}
            Ok((status, body)) => tracing::warn!(%status, body, "the backend refused an originated call's ringing"),
            Err(e) => tracing::warn!(error = %e, "an originated call's ringing could not be delivered"),
        }
    });
    (StatusCode::ACCEPTED, Json(json!({"call_id": request.call_id}))).into_response()
}

/// `GET /calls`: the simulator's calls, newest first.
async fn list_calls(State(sim): State<PbxSimulator>) -> Json<serde_json::Value> {
    let calls = sim.inner.calls.lock().expect("simulator state");
    let mut list: Vec<(&String, &SimulatedCall)> = calls.iter().collect();
    list.sort_by_key(|(id, c)| (std::cmp::Reverse(c.created_at), (*id).clone()));
    let list: Vec<serde_json::Value> = list
        .into_iter()
        .map(|(id, c)| {
            let state = match (c.ended, c.answered_at) {
                (Some(_), _) => "ended",
                (None, Some(_)) => "answered",
                (None, None) => "ringing",
            };
            json!({"call_id": id, "direction": c.direction, "external_number": c.external_number,
                   "extension": c.extension, "state": state})
        })
        .collect();
    Json(serde_json::Value::Array(list))
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

    /// The one event a panel request makes.
    fn one(s: &PbxSimulator, req: &PanelRequest, now: i64) -> Result<CallEvent, String> {
        let mut events = s.events_for(req, now)?;
        assert_eq!(events.len(), 1, "one event for {}", req.event);
        Ok(events.remove(0))
    }

    fn req(event: &str, call_id: Option<&str>) -> PanelRequest {
        PanelRequest {
            event: event.into(),
            call_id: call_id.map(Into::into),
            direction: Some(Direction::Inbound),
            external_number: Some("+18305703077".into()),
            extension: Some("101".into()),
            agent: None,
            outcome: None,
        }
    }

    #[test]
    fn a_group_rings_each_extension_and_is_answered_by_one_then_transferred() {
        let s = sim();
        let group = PanelRequest { extension: Some("101, 102,103".into()), ..req("ringing", None) };
        let rings = s.events_for(&group, 1_763_691_600_000).unwrap();
        let exts: Vec<&str> = rings.iter().map(|e| e.extension.as_str()).collect();
        assert_eq!(exts, ["101", "102", "103"]);
        let id = rings[0].call_id.clone();
        assert!(rings.iter().all(|e| e.call_id == id && e.kind == CallEventKind::Ringing));
        let by_bruno = PanelRequest { agent: Some("102".into()), ..req("answered", Some(&id)) };
        assert_eq!(one(&s, &by_bruno, 1_763_691_602_000).unwrap().extension, "102");
        let transfer = PanelRequest { agent: Some("101".into()), ..req("transferred", Some(&id)) };
        let ring = one(&s, &transfer, 1_763_691_610_000).unwrap();
        assert_eq!((ring.kind, ring.extension.as_str()), (CallEventKind::Ringing, "101"));
        let taken = one(&s, &req("answered", Some(&id)), 1_763_691_612_000).unwrap();
        assert_eq!(taken.extension, "101", "the transfer's target answers");
        let end = one(&s, &req("ended", Some(&id)), 1_763_691_640_000).unwrap();
        assert_eq!(end.extension, "101", "ended at the extension holding the call");
        let no_target = req("transferred", Some(&id));
        assert!(s.events_for(&no_target, 1_763_691_641_000).unwrap_err().contains("agent"));
        let bad = PanelRequest { extension: Some("10a".into()), ..req("ringing", None) };
        assert!(s.events_for(&bad, 1).unwrap_err().contains("digits"));
    }

    #[test]
    fn a_panel_call_becomes_valid_webhook_events() {
        let s = sim();
        let ring = one(&s, &req("ringing", None), 1_763_691_600_000).unwrap();
        ring.validate().unwrap();
        let id = ring.call_id.clone();
        let answered =
            PanelRequest { direction: None, external_number: None, extension: None, ..req("answered", Some(&id)) };
        one(&s, &answered, 1_763_691_601_000).unwrap();
        let end = one(&s, &req("ended", Some(&id)), 1_763_691_643_000).unwrap();
        assert_eq!(end.kind, CallEventKind::Ended { duration: 42, outcome: Outcome::Answered });
        let rec = one(&s, &req("recording_ready", Some(&id)), 1_763_691_650_000).unwrap();
        rec.validate().unwrap();
        assert!(
            matches!(rec.kind, CallEventKind::RecordingReady { ref recording_url } if recording_url.ends_with(&format!("{id}.wav")))
        );
    }

    #[test]
    fn an_unanswered_hang_up_is_a_missed_call_of_zero_seconds() {
        let s = sim();
        let ring = one(&s, &req("ringing", None), 1_763_691_600_000).unwrap();
        let end = one(&s, &req("ended", Some(&ring.call_id)), 1_763_691_630_000).unwrap();
        assert_eq!(end.kind, CallEventKind::Ended { duration: 0, outcome: Outcome::Missed });
    }

    #[test]
    fn an_originated_call_rings_the_extension_as_an_outbound_call_the_panel_can_answer() {
        let s = sim();
        let request = Originate {
            call_id: "cc-1".into(),
            account_id: 7,
            extension: "101".into(),
            number: "+1 830 570 3077".into(),
            user_id: 8_320_148,
            requested_at: 1_763_691_600_000,
        };
        let ring = s.originated(&request, 1_763_691_600_100).unwrap();
        assert_eq!((ring.kind.clone(), ring.direction), (CallEventKind::Ringing, Direction::Outbound));
        assert_eq!((ring.call_id.as_str(), ring.extension.as_str()), ("cc-1", "101"));
        assert_eq!(ring.external_number.as_str(), "+1 830 570 3077");
        let answered =
            PanelRequest { direction: None, external_number: None, extension: None, ..req("answered", Some("cc-1")) };
        let answer = one(&s, &answered, 1_763_691_601_000).unwrap();
        assert_eq!(answer.direction, Direction::Outbound, "the panel continues the call as it rang");
        let bad = Originate { extension: "ext".into(), ..request };
        assert!(s.originated(&bad, 1_763_691_600_100).unwrap_err().contains("extension"));
    }

    #[test]
    fn resend_delivers_the_last_webhook_again_unchanged() {
        let s = sim();
        let ring = one(&s, &req("ringing", None), 1_763_691_600_000).unwrap();
        let unset = PanelRequest { outcome: Some(String::new()), ..req("ended", Some(&ring.call_id)) };
        let end = one(&s, &unset, 1_763_691_630_000).unwrap();
        assert_eq!(end.kind, CallEventKind::Ended { duration: 0, outcome: Outcome::Missed }, "ended as it went");
        let again = one(&s, &req("resend", Some(&ring.call_id)), 1_763_691_640_000).unwrap();
        assert_eq!(again, end, "the same event, occurred_at included");
        assert!(one(&s, &req("resend", Some("nobody")), 1).unwrap_err().contains("no webhook"));
    }

    #[test]
    fn only_a_new_inbound_call_without_an_extension_is_routed() {
        let routing = Routing { route_url: "http://x/pbx/1/route".into(), default_group: vec!["101".into()] };
        let s = PbxSimulator::routing("http://x/events".into(), "http://x/pbx-simulator".into(), "k".into(), routing);
        let blank = PanelRequest { extension: Some(" ".into()), ..req("ringing", None) };
        assert_eq!(s.number_to_route(&blank).unwrap().as_deref(), Some("+18305703077"));
        assert!(s.number_to_route(&PanelRequest { extension: None, ..blank.clone() }).unwrap().is_some());
        assert_eq!(s.number_to_route(&req("ringing", None)).unwrap(), None, "an extension is given");
        let outbound = PanelRequest { direction: Some(Direction::Outbound), ..blank.clone() };
        assert!(s.number_to_route(&outbound).unwrap_err().contains("outbound"));
        let junk = PanelRequest { external_number: Some("<b>".into()), ..blank.clone() };
        assert!(s.number_to_route(&junk).unwrap_err().contains("external_number"));
        let id = one(&s, &req("ringing", None), 1_763_691_600_000).unwrap().call_id;
        let answer = PanelRequest { extension: None, ..req("answered", Some(&id)) };
        assert_eq!(s.number_to_route(&answer).unwrap(), None, "only ringing is routed");
        let again = PanelRequest { call_id: Some(id), ..blank.clone() };
        assert_eq!(s.number_to_route(&again).unwrap(), None, "a known call keeps where it rang");
        assert!(sim().number_to_route(&blank).unwrap_err().contains("does not route"));
    }

    #[test]
    fn bad_panel_requests_say_what_is_wrong() {
        let s = sim();
        assert!(one(&s, &req("answered", None), 1).unwrap_err().contains("call_id"));
        assert!(one(&s, &req("exploded", Some("c")), 1).unwrap_err().contains("unknown event"));
        let mut r = req("ended", Some("c9"));
        r.outcome = Some("sideways".into());
        assert!(one(&s, &r, 1_763_691_600_000).unwrap_err().contains("outcome"));
    }
}
