//! Every JSON endpoint reads exactly one document: bytes after it (a second
//! event concatenated to the first, stray text) refuse the whole request
//! with 400 problem+json, and nothing of it is stored.

mod common;

use common::*;
use serde_json::{json, Value};

on_both_stores!(bytes_after_the_json_are_refused_on_every_endpoint);

async fn assert_malformed(r: reqwest::Response, what: &str) {
    let status = r.status().as_u16();
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(content_type, "application/problem+json", "{what}");
    assert_eq!(body["type"], "/problems/malformed-body", "{what}: {body}");
}

async fn bytes_after_the_json_are_refused_on_every_endpoint(db: Db) {
    let node = Instance::start(config(&db)).await;
    let account = Account::random();
    account.provision(&node.backend, &[(11, "101")]).await;
    let at = now_ms();

    // Two events in one body: the second must not be dropped silently.
    let first = event("ringing", "c-first", "101", at).to_string();
    let second = event("ringing", "c-second", "101", at).to_string();
    let path = format!("/pbx/{}/events", account.id);
    for tail in [second.as_str(), "x", " \n]"] {
        let r = post_signed(&node.base, &path, &account.secret, &format!("{first}{tail}")).await;
        assert_malformed(r, &format!("event followed by {tail:?}")).await;
    }
    assert!(node.backend.call(account.id, "c-first").await.unwrap().is_none(), "half a body was stored");

    // A batch followed by another batch.
    let call = json!({"uuid": "b-1", "direction": "inbound", "external_number": "+15550100", "extension": "101",
        "started_at": at, "duration": 30, "outcome": "answered"});
    let batch = json!({"calls": [call]}).to_string();
    let r = post_signed(&node.base, &format!("/pbx/{}/calls", account.id), &account.secret, &format!("{batch}{batch}"))
        .await;
    assert_malformed(r, "two batches").await;
    assert!(node.backend.call(account.id, "b-1").await.unwrap().is_none(), "half a batch was stored");

    // A call result, with a valid one-time token (the settings, an admin's
    // only, are checked in `widget_settings.rs`).
    let widget = |method: reqwest::Method, path: &str, body: String| {
        client()
            .request(method, format!("{}{path}", node.base))
            .header("x-auth-token", one_time_token(&account, 11, |_| {}))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let result = json!({"entity": {"kind": "contact", "id": 1}, "note": ""}).to_string();
    let r = widget(reqwest::Method::POST, "/widget/calls/c-any/result", format!("{result} trailing")).await.unwrap();
    assert_malformed(r, "a call result and text").await;

    // Trailing whitespace is still one document.
    let r = post_signed(&node.base, &path, &account.secret, &format!("{first} \r\n\t")).await;
    assert_eq!(r.status(), 200);
    node.stop().await;
}
