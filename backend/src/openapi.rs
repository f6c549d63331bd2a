//! The OpenAPI 3.1 document served at `GET /openapi.json`: the PBX webhook
//! contract and the widget endpoints, written by hand next to the code so
//! a change to one is seen next to the other. [`ROUTES`] lists the router's
//! routes (keep it in step with `backend.rs`); a test checks that each of
//! them is in the document.

use serde_json::{json, Value};

/// The routes, as (method, path) pairs, for the document and its test.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/pbx/{account_id}/events"),
    ("post", "/pbx/{account_id}/calls"),
    ("post", "/widget/ticket"),
    ("put", "/widget/settings"),
    ("get", "/widget/feed"),
    ("get", "/widget/feed/poll"),
    ("get", "/widget/calls"),
    ("post", "/widget/calls/{call_id}/result"),
    ("get", "/widget/status"),
    ("get", "/kommo/install"),
    ("post", "/kommo/{account_id}/hooks/{secret}"),
    ("get", "/ops/jobs"),
    ("post", "/ops/jobs/{id}/retry"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

fn problem_responses(codes: &[(&str, &str)]) -> Value {
    let mut responses = serde_json::Map::new();
    for (code, why) in codes {
        responses.insert(
            (*code).into(),
            json!({"description": why, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
        );
    }
    Value::Object(responses)
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The document.
pub fn document() -> Value {
    let signed = json!([
        {"name": "account_id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64", "minimum": 1}},
        {"name": "X-Callcard-Timestamp", "in": "header", "required": true, "schema": {"type": "integer"},
         "description": "Unix seconds; refused if more than 300 s from the backend's clock."},
        {"name": "X-Callcard-Signature", "in": "header", "required": true, "schema": {"type": "string", "pattern": "^v1=[0-9a-f]{64}$"},
         "description": "v1=<hex HMAC-SHA256(account webhook secret, \"<timestamp>.<raw body>\")>"},
    ]);
    let token = json!([{"name": "X-Auth-Token", "in": "header", "required": true, "schema": {"type": "string"},
        "description": "Kommo's one-time token (HS256 JWT; exp, nbf, aud, iss = account origin, jti used once)."}]);
    let ticket = json!({"name": "ticket", "in": "query", "required": true, "schema": {"type": "string"}});
    let since = json!({"name": "since", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0},
        "description": "The last offset the widget has; absent: start at the latest."});
    let intake_errors = [
        ("400", "Malformed JSON"),
        ("401", "Missing or bad signature, or stale timestamp (an unknown account is refused the same way)"),
        ("413", "Body too large (64 KiB per event, 1 MiB per batch)"),
        ("422", "A field has an invalid value (named in `field`)"),
        ("503", "Not stored; retry"),
    ];
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "callcard backend",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Call intake from the PBX, the call store, and the live call-state feed for the Kommo widget. \
                Every refusal is application/problem+json {type, title, status, detail, field?}. \
                Deliveries are idempotent and order-free: retry anything that was not answered 200."
        },
        "paths": {
            "/pbx/{account_id}/events": {"post": {
                "summary": "One call event (ringing, answered, ended, recording_ready)",
                "parameters": signed,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallEvent"}}}},
                "responses": merge(json!({"200": {"description": "Stored (durably) before this answer",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventAck"}}}}}),
                    problem_responses(&intake_errors)),
            }},
            "/pbx/{account_id}/calls": {"post": {
                "summary": "Many finished calls at once (like Kommo's calls/add), answered per call",
                "parameters": signed,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["calls"],
                    "properties": {"calls": {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/FinishedCall"}}}}}}},
                "responses": merge(json!({"200": {"description": "Per-call results: stored uuids in success, reasons in errors",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchAnswer"}}}}}),
                    problem_responses(&intake_errors)),
            }},
            "/widget/ticket": {"post": {
                "summary": "Trade a one-time token for a feed ticket bound to its account and user",
                "parameters": token,
                "responses": merge(json!({"200": {"description": "A ticket",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ticket"}}}}}),
                    problem_responses(&[("401", "Token refused (field names the claim)"), ("403", "Origin is not the account's")])),
            }},
            "/widget/settings": {"put": {
                "summary": "Save the extension-to-user mapping (the widget's `users` setting); account admins only (Kommo's rights.is_admin)",
                "parameters": token,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["users"],
                    "properties": {"users": {"description": "{\"<user_id>\": \"<extension>\"} or a JSON string of it",
                        "oneOf": [{"type": "object", "additionalProperties": {"type": "string"}}, {"type": "string"}]}}}}}},
                "responses": merge(json!({"204": {"description": "Saved"}}),
                    problem_responses(&[("400", "Malformed JSON, or bytes after it"), ("401", "Token refused"),
                        ("403", "Origin is not the account's, or the user is not an account admin"),
                        ("422", "Duplicate extension or non-digits (field: users.<user_id>)"),
                        ("503", "Kommo could not confirm the user's rights; retry")])),
            }},
            "/widget/feed": {"get": {
                "summary": "WebSocket of FeedMessage JSON text frames for the ticket's user",
                "description": "Replays events after `since` from the kept history (or sends a gap), then streams live. \
                    A heartbeat message and a ping every 15 s; a peer silent for 30 s is dropped. Closed with 1001 at shutdown.",
                "parameters": [ticket, since],
                "responses": merge(json!({"101": {"description": "Switching to the WebSocket",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FeedMessage"}}}}}),
                    problem_responses(&[("401", "Ticket refused"), ("426", "Not a WebSocket request"),
                        ("429", "The user holds max_feeds_per_user feeds open already")])),
            }},
            "/widget/feed/poll": {"get": {
                "summary": "The same events as the WebSocket, for networks that block it",
                "parameters": [ticket, since,
                    {"name": "wait", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": 25},
                     "description": "Long poll: seconds to wait for an event when there is none."}],
                "responses": merge(json!({"200": {"description": "Events after since",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PollAnswer"}}}}}),
                    problem_responses(&[("401", "Ticket refused"), ("422", "Bad since or wait"),
                        ("429", "A waiting poll past max_feeds_per_user")])),
            }},
            "/widget/calls": {"get": {
                "summary": "The user's calls that still matter, to start over after a gap",
                "parameters": [ticket],
                "responses": merge(json!({"200": {"description": "Current calls and the offset to continue from",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CurrentCalls"}}}}}),
                    problem_responses(&[("401", "Ticket refused")])),
            }},
            "/widget/calls/{call_id}/result": {"post": {
                "summary": "Save the manager's call result (the Call summary modal); applied in Kommo by a queued job",
                "description": "Checks that the call is the token user's and the chosen record exists in Kommo, stores \
                    the result, enqueues the job and answers at once. Saving again replaces the result and reruns the job, \
                    which is idempotent. If the job cannot apply it, the call's `result_error` says why (in the feed).",
                "parameters": [token[0].clone(),
                    {"name": "call_id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallResult"}}}},
                "responses": merge(json!({"202": {"description": "Stored and enqueued: the call as the widget now sees it",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallView"}}}}}),
                    problem_responses(&[("400", "Not JSON"), ("401", "Token refused"),
                        ("403", "Origin is not the account's, or the call rang another user (field: call_id)"),
                        ("404", "No such call in the account (field: call_id)"),
                        ("422", "Bad value (field: e.g. entity.kind, task.complete_till), or no such record in Kommo (field: entity.id)")])),
            }},
            "/widget/status": {"get": {
                "summary": "Whether the backend has the account authorized in Kommo (the settings page's check connection)",
                "parameters": token,
                "responses": merge(json!({"200": {"description": "The account's status",
                    "content": {"application/json": {"schema": {"type": "object",
                        "required": ["backend", "authorized", "needs_reauthorization"],
                        "properties": {"backend": {"const": "ok"}, "authorized": {"type": "boolean"},
                            "needs_reauthorization": {"type": "boolean"}}}}}}}),
                    problem_responses(&[("401", "Token refused"), ("403", "Origin is not the account's")])),
            }},
            "/kommo/install": {"get": {
                "summary": "Kommo's OAuth redirect on installation: exchanges the code and stores the tokens encrypted",
                "parameters": [
                    {"name": "code", "in": "query", "required": true, "schema": {"type": "string"}},
                    {"name": "referer", "in": "query", "required": true, "schema": {"type": "string"},
                     "description": "The account's address, e.g. acme.kommo.com"}],
                "responses": merge(json!({"200": {"description": "Installed: {account_id, authorized: true}"}}),
                    problem_responses(&[("422", "Missing code or referer, a refused code, or installation not approved (field names which)"),
                        ("404", "The account is not provisioned"), ("502", "Kommo could not be reached")])),
            }},
            "/kommo/{account_id}/hooks/{secret}": {"post": {
                "summary": "Kommo's change webhooks for the caller index (the path's secret is the account's, subscribed at installation)",
                "parameters": [
                    {"name": "account_id", "in": "path", "required": true, "schema": {"type": "integer"}},
                    {"name": "secret", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"},
                    "example": "account[id]=31415926&contacts[update][0][id]=20100001&contacts[update][0][name]=Maria Gonzalez"}}},
                "responses": merge(json!({"200": {"description": "Applied to the index: {applied: N}"}}),
                    problem_responses(&[("404", "No such webhook destination (unknown account and wrong secret alike)"),
                        ("400", "The body is not Kommo's form (field `body`), or names another account (`account[id]`)"),
                        ("413", "Body too large")])),
            }},
            "/ops/jobs": {"get": {
                "summary": "Operator view of sync jobs (Authorization: Bearer <ops token>; 404 when no token is configured)",
                "parameters": [
                    {"name": "state", "in": "query", "required": false,
                     "schema": {"enum": ["pending", "running", "done", "dead"]}},
                    {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1}}],
                "responses": merge(json!({"200": {"description": "Jobs, newest first"}}),
                    problem_responses(&[("401", "Missing or wrong ops token"), ("404", "Operator endpoints are off"),
                        ("422", "Bad state or limit")])),
            }},
            "/ops/jobs/{id}/retry": {"post": {
                "summary": "Puts a dead job back in the queue (Authorization: Bearer <ops token>)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "responses": merge(json!({"200": {"description": "Queued again"}}),
                    problem_responses(&[("401", "Missing or wrong ops token"), ("404", "No such job, or operator endpoints are off"),
                        ("409", "The job is not dead"), ("422", "The id is not a positive number")])),
            }},
            "/healthz": {"get": {"summary": "Liveness and database reachability",
                "responses": {"200": {"description": "Healthy"}, "503": {"description": "Database unreachable or shutting down"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Text exposition format",
                "content": {"text/plain": {}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {"schemas": schemas()},
    })
}

fn schemas() -> Value {
    let ms = json!({"type": "integer", "format": "int64", "description": "Unix milliseconds"});
    json!({
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": {"type": "string", "description": "/problems/<slug>: bad-signature, stale-request, unknown-account (install), \
                malformed-body, invalid-body, invalid-field, body-too-large, invalid-token, wrong-origin, invalid-ticket, \
                malformed-query, websocket-required, not-found, method-not-allowed, unavailable, shutting-down, \
                unknown-call, not-your-call, admin-required, rights-unknown, too-many-feeds"},
            "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
            "field": {"type": "string", "description": "The offending field: a JSON path, header or query parameter"}}},
        "CallEvent": {"type": "object",
            "required": ["event", "call_id", "direction", "external_number", "extension", "occurred_at"],
            "properties": {
                "event": {"enum": ["ringing", "answered", "ended", "recording_ready"]},
                "call_id": {"type": "string", "maxLength": 128, "description": "The PBX's id, unique per account"},
                "direction": {"enum": ["inbound", "outbound"]},
                "external_number": {"type": "string", "maxLength": 64, "description": "Digits, spaces and + - ( ) ."},
                "extension": {"type": "string", "pattern": "^[0-9]{1,16}$"},
                "occurred_at": ms,
                "duration": {"type": "integer", "minimum": 0, "maximum": 86400, "description": "Seconds; required for ended"},
                "outcome": {"enum": ["answered", "missed", "busy", "failed", "no_answer"], "description": "Required for ended"},
                "recording_url": {"type": "string", "format": "uri", "maxLength": 2048, "description": "Required for recording_ready"}},
            "example": {"event": "ended", "call_id": "pbx-7781", "direction": "inbound", "external_number": "+18305703077",
                "extension": "101", "occurred_at": 1_763_691_642_000i64, "duration": 42, "outcome": "answered"}},
        "EventAck": {"type": "object", "properties": {"call_id": {"type": "string"},
            "status": {"enum": ["ringing", "answered", "ended"]},
            "changed": {"type": "boolean", "description": "False when the event was already known (a retry)"}}},
        "FinishedCall": {"type": "object",
            "required": ["uuid", "direction", "external_number", "extension", "started_at", "duration", "outcome"],
            "properties": {"uuid": {"type": "string", "maxLength": 128}, "direction": {"enum": ["inbound", "outbound"]},
                "external_number": {"type": "string"}, "extension": {"type": "string", "pattern": "^[0-9]{1,16}$"},
                "started_at": ms, "duration": {"type": "integer", "minimum": 0, "maximum": 86400},
                "outcome": {"enum": ["answered", "missed", "busy", "failed", "no_answer"]},
                "recording_url": {"type": "string", "format": "uri"}}},
        "BatchAnswer": {"type": "object", "properties": {
            "success": {"type": "array", "items": {"type": "string"}},
            "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "description": "uuid (or calls[i] without one) → reasons, each \"field: reason\""}}},
        "Ticket": {"type": "object", "properties": {"ticket": {"type": "string"},
            "account_id": {"type": "integer"}, "user_id": {"type": "integer"}, "expires_at": ms}},
        "CallView": {"type": "object", "description": "The whole call as the user sees it (a snapshot, not a delta)",
            "properties": {"call_id": {"type": "string"}, "direction": {"enum": ["inbound", "outbound"]},
                "external_number": {"type": "string"}, "extension": {"type": "string"},
                "ringing_at": ms, "answered_at": ms,
                "ending": {"type": ["object", "null"], "properties": {"at": ms, "duration": {"type": "integer"},
                    "outcome": {"type": "string"}}},
                "recording": {"type": ["object", "null"], "properties": {"at": ms, "url": {"type": "string"}}},
                "status": {"enum": ["ringing", "answered", "ended"]}, "user_id": {"type": ["integer", "null"]},
                "caller": {"type": "object"}, "entity": {"type": ["object", "null"]}, "has_result": {"type": "boolean"},
                "result_error": {"type": "string", "description": "Why the saved call result could not be applied; absent when fine"}}},
        "EntityRef": {"type": "object", "required": ["kind", "id"], "properties": {
            "kind": {"enum": ["lead", "customer", "contact", "company"]}, "id": {"type": "integer", "minimum": 1}}},
        "CallResult": {"type": "object", "required": ["entity"], "properties": {
            "entity": {"$ref": "#/components/schemas/EntityRef"},
            "note": {"type": "string", "maxLength": 10000, "description": "The manager's note (the call note's agent-note section)"},
            "task": {"type": ["object", "null"], "required": ["complete_till", "text"], "properties": {
                "complete_till": {"type": "integer", "description": "Unix seconds"}, "text": {"type": "string", "minLength": 1}}}}},
        "FeedEvent": {"type": "object", "properties": {"offset": {"type": "integer"}, "call": {"$ref": "#/components/schemas/CallView"}}},
        "FeedMessage": {"oneOf": [
            {"type": "object", "properties": {"type": {"const": "event"}, "offset": {"type": "integer"},
                "call": {"$ref": "#/components/schemas/CallView"}}},
            {"type": "object", "description": "since is older than the kept history: refetch /widget/calls",
                "properties": {"type": {"const": "gap"}, "latest_offset": {"type": "integer"}}},
            {"type": "object", "properties": {"type": {"const": "heartbeat"}, "latest_offset": {"type": "integer"}}}]},
        "PollAnswer": {"type": "object", "properties": {
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/FeedEvent"}},
            "gap": {"type": "boolean"}, "latest_offset": {"type": "integer"}}},
        "CurrentCalls": {"type": "object", "properties": {
            "calls": {"type": "array", "items": {"$ref": "#/components/schemas/CallView"}},
            "latest_offset": {"type": "integer"}}},
    })
}

/// `GET /openapi.json`.
pub(crate) fn router() -> axum::Router<crate::state::App> {
    axum::Router::new()
        .route("/openapi.json", axum::routing::get(|| async { axum::Json(document()) }))
        .method_not_allowed_fallback(crate::problem::method_not_allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented() {
        let doc = document();
        for (method, path) in ROUTES {
            assert!(doc["paths"][path][method].is_object(), "{method} {path} is not documented");
        }
        assert_eq!(doc["paths"].as_object().unwrap().len(), ROUTES.len());
    }
}
