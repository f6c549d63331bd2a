//! Call intake: the PBX's webhooks.
//!
//! - `POST /pbx/{account_id}/events`: one [`CallEvent`] (ringing, answered,
//!   ended, recording ready), or a [`TranscriptEvent`] (`transcript_ready`,
//!   stored apart: `crate::store::transcripts`).
//! - `POST /pbx/{account_id}/calls`: `{"calls":[FinishedCall, …]}`, many
//!   finished calls at once in the spirit of Kommo's `calls/add`, answered
//!   with a per-call [`BatchAnswer`].
//! - `GET /pbx/{account_id}/route?number=…`: the extension of the
//!   responsible manager ([`Route`]), signed over the raw query string in
//!   place of a body; answered from the caller index only.
//!
//! Every request is checked in the same order, and refused at the first
//! failure with a problem document, before anything is stored: the account id
//! in the path, the body size, the signature against the account's secret
//! (`callcard_calls::signature`: HMAC-SHA256 over `"<timestamp>.<raw body>"`
//! with the account's webhook secret, 300 s replay window), the JSON, and the
//! values. An unknown account is refused exactly as a wrong signature to a
//! known one is, so account ids cannot be probed without a secret. The
//! answer is sent only after the transaction that stored the event
//! committed, so a PBX that sees 200 may forget the event; anything else it
//! should retry, and retries are harmless (see [`crate::store::calls`]).

use crate::extract::{parse_json, read_body, AccountId, Param};
use crate::group_commit::GroupCommit;
use crate::metrics::Metrics;
use crate::problem::{self, Problem};
use crate::queue::Queue;
use crate::state::App;
use crate::store::{now_ms, Account, Delivery, Recorded, Store};
use crate::sync::caller_id::CallerIdService;
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use callcard_calls::event::{BatchAnswer, FieldError, FinishedCall, TranscriptEvent};
use callcard_calls::route::{NoRoute, Route};
use callcard_calls::signature::{self, SignatureError};
use callcard_calls::{CallEvent, CallEventKind, Direction, Outcome, PhoneNumber};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The largest single event accepted: a transcript's size
/// (`callcard_calls::event::limits::TRANSCRIPT_MAX`) and room for the rest.
pub const EVENT_BODY_LIMIT: usize = 512 * 1024;
/// The largest batch accepted.
pub const BATCH_BODY_LIMIT: usize = 1024 * 1024;
/// The most calls in one batch.
pub const BATCH_MAX_CALLS: usize = 1000;

/// The PBX's routes.
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/pbx/{account_id}/events", post(post_event))
        .route("/pbx/{account_id}/calls", post(post_batch))
        .route("/pbx/{account_id}/route", get(get_route))
        .method_not_allowed_fallback(problem::method_not_allowed)
}

/// `POST /pbx/{account_id}/calls`: `{"calls": [FinishedCall, …]}` (each
/// call is checked on its own and answered in [`callcard_calls::BatchAnswer`]).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FinishedCallBatchBody {
    #[schema(max_items = 1000)]
    calls: Vec<callcard_calls::event::FinishedCall>,
}

/// The answer to one stored event.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventAck {
    pub call_id: String,
    pub status: callcard_calls::CallStatus,
    /// False when the event was already known (a retry).
    pub changed: bool,
}

/// The answer to a stored transcript.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TranscriptAck {
    pub call_id: String,
    /// False when the transcript was already known (a retry) or older.
    pub changed: bool,
    /// Whether the call's note is being brought up to date now (else it
    /// gets the transcript when the call is logged).
    pub note_update: bool,
}

/// What `POST /pbx/{account_id}/events` takes: a call event, or a
/// transcript (for the document; the handler reads the `event` name).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum EventBody {
    Call(callcard_calls::CallEvent),
    Transcript(TranscriptEvent),
}

/// Its answers, one per kind of body.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum EventAnswer {
    Call(EventAck),
    Transcript(TranscriptAck),
}

#[utoipa::path(post, path = "/pbx/{account_id}/events", tag = "pbx",
    summary = "One call event (ringing, answered, ended, recording_ready) or a call's transcript (transcript_ready)",
    params(
        ("account_id" = u64, Path, minimum = 1, description = "The account the PBX delivers for"),
        ("X-Callcard-Timestamp" = i64, Header, description = "Unix seconds; refused if more than 300 s from the backend's clock"),
        ("X-Callcard-Signature" = String, Header, pattern = "^v1=[0-9a-f]{64}$",
            description = "v1=<hex HMAC-SHA256(account webhook secret, \"<timestamp>.<raw body>\")>")),
    request_body = EventBody,
    responses(
        (status = 200, description = "Stored (durably) before this answer", body = EventAnswer),
        (status = 400, description = "Malformed JSON, or bytes after it", content_type = "application/problem+json", body = Problem),
        (status = 401, description = "Missing or bad signature, or a stale timestamp (an unknown account is refused the same way)", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "Body too large", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "A field has an invalid value (named in `field`)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "Not stored; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn post_event(
    State(group_commit): State<GroupCommit>,
    State(metrics): State<Arc<Metrics>>,
    State(queue): State<Queue>,
    State(caller_id): State<Arc<CallerIdService>>,
    State(store): State<Store>,
    SignedWebhook { account, body }: SignedWebhook<EVENT_BODY_LIMIT>,
) -> Result<Response, Problem> {
    if event_name(&body).as_deref() == Some(TranscriptEvent::NAME) {
        let stored = async {
            let event: TranscriptEvent = parse_json(&body)?;
            event.validate().map_err(field_problem)?;
            let recorded = store.record_transcript(account.account_id, &event).await?;
            if recorded.job_enqueued {
                queue.wake();
            }
            let ack =
                TranscriptAck { call_id: event.call_id, changed: recorded.changed, note_update: recorded.job_enqueued };
            Ok::<_, Problem>(Json(ack).into_response())
        }
        .await;
        return stored.inspect_err(|_| metrics.events_rejected.inc());
    }
    let result = async {
        let event = parse_event(&body)?;
        event.validate().map_err(field_problem)?;
        // Caller ID never waits for Kommo: the caller index (a database
        // read) or a warm cache names the caller in the first feed event,
        // else a background lookup sends a second one.
        let cached = caller_id.ringing_caller(account.account_id, &event).await;
        let delivery = Delivery::new(&account, std::slice::from_ref(&event))
            .ok_or_else(|| Problem::invalid("event", "no event"))?
            .with_caller(cached);
        let recorded = group_commit.record(delivery).await?;
        after_record(&metrics, &queue, &recorded);
        caller_id.after_record(account.account_id, &recorded);
        Ok(EventAck {
            call_id: recorded.call.call.call_id.clone(),
            status: recorded.call.call.status(),
            changed: recorded.changed,
        })
    }
    .await;
    result.map(|ack| Json(ack).into_response()).inspect_err(|_| metrics.events_rejected.inc())
}

/// The `"event"` of a JSON object body, if it has a string one (what
/// decides how the body is read; anything else is `parse_event`'s to refuse).
fn event_name(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Named {
        event: String,
    }
    serde_json::from_slice::<Named>(body).ok().map(|n| n.event)
}

#[utoipa::path(post, path = "/pbx/{account_id}/calls", tag = "pbx",
    summary = "Many finished calls at once (like Kommo's calls/add), answered per call",
    params(
        ("account_id" = u64, Path, minimum = 1, description = "The account the PBX delivers for"),
        ("X-Callcard-Timestamp" = i64, Header, description = "Unix seconds; refused if more than 300 s from the backend's clock"),
        ("X-Callcard-Signature" = String, Header, pattern = "^v1=[0-9a-f]{64}$",
            description = "v1=<hex HMAC-SHA256(account webhook secret, \"<timestamp>.<raw body>\")>")),
    request_body = FinishedCallBatchBody,
    responses(
        (status = 200, description = "Per-call results: stored uuids in success, reasons in errors", body = BatchAnswer),
        (status = 400, description = "Malformed JSON, or bytes after it", content_type = "application/problem+json", body = Problem),
        (status = 401, description = "Missing or bad signature, or a stale timestamp (an unknown account is refused the same way)", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "Body too large", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "A field has an invalid value (named in `field`)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "Not stored; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn post_batch(
    State(group_commit): State<GroupCommit>,
    State(metrics): State<Arc<Metrics>>,
    State(queue): State<Queue>,
    SignedWebhook { account, body }: SignedWebhook<BATCH_BODY_LIMIT>,
) -> Result<Json<BatchAnswer>, Problem> {
    let result = async {
        let items = parse_batch(&body)?;
        let mut answer = BatchAnswer::default();
        let mut accepted = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let key = item
                .get("uuid")
                .and_then(|u| u.as_str())
                .filter(|u| !u.trim().is_empty())
                .map_or_else(|| format!("calls[{index}]"), str::to_string);
            match parse_finished(item).and_then(|call| {
                Delivery::new(&account, &call.into_events()).ok_or_else(|| "the call has no events".to_string())
            }) {
                Ok(delivery) => accepted.push((key, delivery)),
                Err(reason) => {
                    metrics.events_rejected.inc();
                    answer.errors.entry(key).or_default().push(reason);
                }
            }
        }
        let (keys, deliveries): (Vec<String>, Vec<Delivery>) = accepted.into_iter().unzip();
        for (key, recorded) in keys.into_iter().zip(group_commit.record_all(deliveries).await) {
            // A store failure refuses the whole batch (503): the PBX retries
            // it, and the calls already stored merge as no-ops.
            let recorded = recorded?;
            after_record(&metrics, &queue, &recorded);
            answer.success.push(key);
        }
        Ok(answer)
    }
    .await;
    result.map(Json).inspect_err(|_| metrics.events_rejected.inc())
}

/// Counts a recorded event and wakes the job workers if it enqueued work.
/// (Its feed event already went to local connections after the commit,
/// and to other instances through the notifier.)
fn after_record(metrics: &Metrics, queue: &Queue, recorded: &Recorded) {
    if recorded.changed {
        metrics.events_stored.inc();
    } else {
        metrics.events_unchanged.inc();
    }
    if recorded.job.is_some() {
        queue.wake();
    }
}

/// A webhook whose signature verified: the account it is for, and its raw
/// body (at most `LIMIT` bytes), not yet read as JSON.
///
/// Checked in the module's order, path, size, signature, each
/// refusal counted as a rejected event.
struct SignedWebhook<const LIMIT: usize> {
    account: Arc<Account>,
    body: Bytes,
}

impl<S, const LIMIT: usize> FromRequest<S> for SignedWebhook<LIMIT>
where
    S: Send + Sync,
    Store: FromRef<S>,
    Arc<Metrics>: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let checked = async {
            let (mut parts, body) = request.into_parts();
            let Param(AccountId(account_id)) = Param::from_request_parts(&mut parts, state).await?;
            let body = read_body(&parts.headers, body, LIMIT).await?;
            let account = signed_account(&Store::from_ref(state), account_id, &parts.headers, &body).await?;
            Ok(SignedWebhook { account, body })
        };
        checked.await.inspect_err(|_| Arc::<Metrics>::from_ref(state).events_rejected.inc())
    }
}

/// A bodiless PBX request (`GET`) signed like the webhooks, over its raw
/// query string in place of a body: the account it is for, and the query.
struct SignedQuery {
    account: Arc<Account>,
    query: String,
}

impl<S> FromRequestParts<S> for SignedQuery
where
    S: Send + Sync,
    Store: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Param(AccountId(account_id)) = Param::from_request_parts(parts, state).await?;
        let query = parts.uri.query().unwrap_or("").to_string();
        let account = signed_account(&Store::from_ref(state), account_id, &parts.headers, query.as_bytes()).await?;
        Ok(SignedQuery { account, query })
    }
}

/// The account `account_id` if the request's signature headers sign
/// `signed` with its webhook secret.
async fn signed_account(
    store: &Store,
    account_id: u64,
    headers: &HeaderMap,
    signed: &[u8],
) -> Result<Arc<Account>, Problem> {
    let account = store.account(account_id).await?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verify = |secret: &[u8]| {
        signature::verify(
            secret,
            header(signature::TIMESTAMP_HEADER),
            header(signature::SIGNATURE_HEADER),
            signed,
            now_ms() / 1000,
        )
    };
    // An unknown account is refused exactly as a wrong signature to a
    // known one (same checks, same HMAC work, same answer), so that
    // account ids cannot be enumerated without a secret.
    let Some(account) = account else {
        let refusal = verify(b"").err().unwrap_or(SignatureError::Mismatch);
        return Err(signature_problem(refusal));
    };
    verify(account.webhook_secret.as_bytes()).map_err(signature_problem)?;
    Ok(account)
}

/// `GET /pbx/{account_id}/route?number=…`: where to ring an incoming call
/// first ([`Route`]), from the caller index only, so it answers at once.
#[utoipa::path(get, path = "/pbx/{account_id}/route", tag = "pbx",
    summary = "The extension of the responsible manager for a caller's number (from the caller index)",
    params(
        ("account_id" = u64, Path, minimum = 1, description = "The account the PBX asks for"),
        ("number" = String, Query, description = "The caller's number"),
        ("X-Callcard-Timestamp" = i64, Header, description = "Unix seconds; refused if more than 300 s from the backend's clock"),
        ("X-Callcard-Signature" = String, Header, pattern = "^v1=[0-9a-f]{64}$",
            description = "v1=<hex HMAC-SHA256(account webhook secret, \"<timestamp>.<raw query string>\")>")),
    responses(
        (status = 200, description = "Where to ring first; `extension` null with a `reason` when nobody", body = Route),
        (status = 401, description = "Missing or bad signature, or a stale timestamp", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "`number` missing or not a phone number", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn get_route(
    State(store): State<Store>,
    State(caller_id): State<Arc<CallerIdService>>,
    SignedQuery { account, query }: SignedQuery,
) -> Result<Json<Route>, Problem> {
    #[derive(Deserialize)]
    struct RouteQuery {
        number: String,
    }
    let RouteQuery { number } = serde_urlencoded::from_str(&query)
        .map_err(|_| Problem::invalid("number", "the query must be ?number=<the caller's number>"))?;
    callcard_calls::event::validate_phone_number("number", &number).map_err(field_problem)?;
    if !caller_id.index_is_ready(account.account_id).await {
        return Ok(Json(Route::none(NoRoute::IndexNotReady)));
    }
    let book = store.phonebook_for(account.account_id, &number).await?;
    Ok(Json(Route::decide(book.identify(&number).as_ref(), &account.extensions)))
}

fn signature_problem(e: SignatureError) -> Problem {
    let field = match e {
        SignatureError::MissingTimestamp | SignatureError::MalformedTimestamp | SignatureError::Stale { .. } => {
            "X-Callcard-Timestamp"
        }
        _ => "X-Callcard-Signature",
    };
    let (slug, title) = match e {
        SignatureError::Stale { .. } => ("stale-request", "The request is outside the replay window"),
        _ => ("bad-signature", "The request signature was refused"),
    };
    Problem::unauthorized(slug, title, e.to_string()).with_field(field)
}

fn field_problem(e: FieldError) -> Problem {
    Problem::invalid(e.field, e.reason)
}

/// The event as it travels, without `#[serde(flatten)]`, so every error
/// names its exact field.
#[derive(Deserialize)]
struct WireEvent {
    event: EventName,
    call_id: String,
    direction: Direction,
    external_number: String,
    extension: String,
    occurred_at: i64,
    #[serde(default)]
    duration: Option<u32>,
    #[serde(default)]
    outcome: Option<Outcome>,
    #[serde(default)]
    recording_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventName {
    Ringing,
    Answered,
    Ended,
    RecordingReady,
}

/// Parses one event, naming the offending field on failure.
pub fn parse_event(body: &[u8]) -> Result<CallEvent, Problem> {
    let wire: WireEvent = parse_json(body)?;
    let kind = match wire.event {
        EventName::Ringing => CallEventKind::Ringing,
        EventName::Answered => CallEventKind::Answered,
        EventName::Ended => CallEventKind::Ended {
            duration: wire.duration.ok_or_else(|| Problem::invalid("duration", "an ended event needs its duration"))?,
            outcome: wire.outcome.ok_or_else(|| Problem::invalid("outcome", "an ended event needs its outcome"))?,
        },
        EventName::RecordingReady => CallEventKind::RecordingReady {
            recording_url: wire
                .recording_url
                .ok_or_else(|| Problem::invalid("recording_url", "a recording_ready event needs its URL"))?,
        },
    };
    Ok(CallEvent {
        kind,
        call_id: wire.call_id,
        direction: wire.direction,
        external_number: PhoneNumber::new(wire.external_number),
        extension: wire.extension,
        occurred_at: wire.occurred_at,
    })
}

/// Parses the batch envelope; the items are parsed one by one so one bad
/// call does not refuse the others.
fn parse_batch(body: &[u8]) -> Result<Vec<serde_json::Value>, Problem> {
    #[derive(Deserialize)]
    struct Envelope {
        calls: Vec<serde_json::Value>,
    }
    let envelope: Envelope = parse_json(body)?;
    if envelope.calls.len() > BATCH_MAX_CALLS {
        return Err(Problem::invalid("calls", format!("a batch holds at most {BATCH_MAX_CALLS} calls")));
    }
    Ok(envelope.calls)
}

/// One batch item, or the reason it was refused (`"field: reason"`).
fn parse_finished(item: serde_json::Value) -> Result<FinishedCall, String> {
    let call: FinishedCall = serde_path_to_error::deserialize(item).map_err(|e| {
        let message = e.inner().to_string();
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            message
        } else {
            format!("{path}: {message}")
        }
    })?;
    call.validate().map_err(|e| e.to_string())?;
    Ok(call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parse_failure_names_its_field() {
        let field = |body: &str| parse_event(body.as_bytes()).unwrap_err().field;
        let base = r#""call_id":"c","direction":"inbound","external_number":"+1555","extension":"101","occurred_at":1763691600000"#;
        assert_eq!(field(&format!(r#"{{"event":"ended",{base},"outcome":"answered"}}"#)).as_deref(), Some("duration"));
        assert_eq!(
            field(&format!(r#"{{"event":"ended",{base},"duration":-1,"outcome":"answered"}}"#)).as_deref(),
            Some("duration")
        );
        assert_eq!(field(&format!(r#"{{"event":"exploded",{base}}}"#)).as_deref(), Some("event"));
        assert_eq!(field(r#"{"event":"ringing","call_id":"c"}"#).as_deref(), Some("direction"));
        assert_eq!(field(&format!(r#"{{"event":"recording_ready",{base}}}"#)).as_deref(), Some("recording_url"));
        let syntax = parse_event(b"{\"event\":").unwrap_err();
        assert_eq!(syntax.status, 400);
    }

    #[test]
    fn batch_items_explain_themselves() {
        let err = parse_finished(serde_json::json!({"uuid":"u","direction":"sideways"})).unwrap_err();
        assert!(err.starts_with("direction:"), "{err}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_event() -> impl Strategy<Value = CallEvent> {
            let outcome = prop_oneof![
                Just(Outcome::Answered),
                Just(Outcome::Missed),
                Just(Outcome::Busy),
                Just(Outcome::Failed),
                Just(Outcome::NoAnswer)
            ];
            let kind = prop_oneof![
                Just(CallEventKind::Ringing),
                Just(CallEventKind::Answered),
                (any::<u32>(), outcome).prop_map(|(duration, outcome)| CallEventKind::Ended { duration, outcome }),
                ".{0,40}".prop_map(|recording_url| CallEventKind::RecordingReady { recording_url }),
            ];
            let direction = prop_oneof![Just(Direction::Inbound), Just(Direction::Outbound)];
            (kind, ".{0,40}", direction, ".{0,20}", ".{0,10}", any::<i64>()).prop_map(
                |(kind, call_id, direction, number, extension, occurred_at)| CallEvent {
                    kind,
                    call_id,
                    direction,
                    external_number: PhoneNumber::new(number),
                    extension,
                    occurred_at,
                },
            )
        }

        /// A client error is 4xx; a 5xx would tell the PBX to retry
        /// something that can never succeed.
        fn is_client_error(p: &Problem) -> bool {
            (400..500).contains(&p.status)
        }

        proptest! {
            /// Whatever bytes arrive, the parsers answer (never panic), and
            /// a refusal is a client error.
            #[test]
            fn arbitrary_bytes_never_panic_and_are_client_errors(body in proptest::collection::vec(any::<u8>(), 0..256)) {
                if let Err(p) = parse_event(&body) {
                    prop_assert!(is_client_error(&p), "{p}");
                }
                if let Err(p) = parse_batch(&body) {
                    prop_assert!(is_client_error(&p), "{p}");
                }
            }

            /// Arbitrary JSON values as batch items are answered item by
            /// item, without a panic.
            #[test]
            fn arbitrary_batch_items_never_panic(item in arbitrary_json()) {
                let _ = parse_finished(item);
            }

            /// Every event as the PBX sends it reads back as itself.
            #[test]
            fn valid_events_round_trip(event in any_event()) {
                let body = serde_json::to_vec(&event).unwrap();
                prop_assert_eq!(parse_event(&body).unwrap(), event);
            }

            /// A valid event followed by anything but whitespace is refused
            /// whole (400), never half-read.
            #[test]
            fn bytes_after_an_event_are_refused(event in any_event(), tail in "[ \t\n]*[^ \t\n\r][ -~]{0,20}") {
                let mut body = serde_json::to_vec(&event).unwrap();
                body.extend_from_slice(tail.as_bytes());
                prop_assert_eq!(parse_event(&body).unwrap_err().status, 400);
            }
        }

        fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<f64>().prop_map(serde_json::Value::from),
                ".{0,12}".prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(3, 24, 6, |inner| {
                let key = prop_oneof![
                    Just("uuid".to_string()),
                    Just("direction".to_string()),
                    Just("duration".to_string()),
                    Just("started_at".to_string()),
                    Just("outcome".to_string()),
                    ".{0,6}"
                ];
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                    proptest::collection::btree_map(key, inner, 0..6)
                        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }
    }
}
