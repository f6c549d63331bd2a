//! Call intake against real stores: signatures and replays are refused with
//! nothing stored; retried and reordered deliveries converge on one call;
//! batches answer per call; bad input is a problem document naming the field.

mod common;

use common::*;
use serde_json::{json, Value};

on_both_stores!(
    refused_requests_store_nothing,
    retried_and_reordered_events_make_one_call,
    concurrent_deliveries_converge,
    a_burst_loses_nothing_and_keeps_each_feed_in_order,
    batches_answer_per_call,
    bad_input_is_a_problem_naming_the_field,
    unknown_accounts_cannot_be_told_from_known_ones,
);

async fn assert_problem(r: reqwest::Response, status: u16, field: impl Into<Option<&str>>) -> Value {
    let got = r.status().as_u16();
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert_eq!(body["status"], status, "{body}");
    match field.into() {
        Some(field) => assert_eq!(body["field"], field, "{body}"),
        None => assert!(body.get("field").is_none(), "{body}"),
    }
    assert!(body["type"].as_str().unwrap().starts_with("/problems/"), "{body}");
    assert!(!body["title"].as_str().unwrap().is_empty() && !body["detail"].as_str().unwrap().is_empty());
    body
}

async fn refused_requests_store_nothing(db: Db) {
    let node = Instance::start(config(&db)).await;
    let account = Account::random();
    account.provision(&node.backend, &[(11, "101")]).await;
    let body = event("ringing", "c-refused", "101", now_ms()).to_string();
    let path = format!("/pbx/{}/events", account.id);
    let url = format!("{}{path}", node.base);
    let send = |ts: Option<i64>, sig: Option<String>| {
        let mut rq = client().post(&url).body(body.clone());
        if let Some(ts) = ts {
            rq = rq.header("x-callcard-timestamp", ts.to_string());
        }
        if let Some(sig) = sig {
            rq = rq.header("x-callcard-signature", sig);
        }
        rq.send()
    };
    let sign =
        |secret: &str, ts: i64, body: &str| callcard_calls::signature::sign(secret.as_bytes(), ts, body.as_bytes());
    let now = now_s();

    // No headers at all.
    assert_problem(send(None, None).await.unwrap(), 401, "X-Callcard-Timestamp").await;
    // No signature.
    assert_problem(send(Some(now), None).await.unwrap(), 401, "X-Callcard-Signature").await;
    // Another account's secret.
    assert_problem(
        send(Some(now), Some(sign("not-the-secret", now, &body))).await.unwrap(),
        401,
        "X-Callcard-Signature",
    )
    .await;
    // The signature of another body (tampering).
    let other = event("ringing", "c-other", "101", now_ms()).to_string();
    assert_problem(
        send(Some(now), Some(sign(&account.secret, now, &other))).await.unwrap(),
        401,
        "X-Callcard-Signature",
    )
    .await;
    // A correctly signed request replayed after the window.
    let old = now - 301;
    let stale = assert_problem(
        send(Some(old), Some(sign(&account.secret, old, &body))).await.unwrap(),
        401,
        "X-Callcard-Timestamp",
    )
    .await;
    assert_eq!(stale["type"], "/problems/stale-request");
    // A timestamp moved forward without re-signing.
    assert_problem(
        send(Some(now + 10), Some(sign(&account.secret, now, &body))).await.unwrap(),
        401,
        "X-Callcard-Signature",
    )
    .await;
    // An account nobody provisioned, even with a valid-looking signature.
    let r = post_signed(&node.base, "/pbx/999999999999/events", &account.secret, &body).await;
    assert_problem(r, 401, "X-Callcard-Signature").await;

    assert!(node.backend.call(account.id, "c-refused").await.unwrap().is_none(), "a refused event was stored");
    assert!(node.backend.metrics_text().contains("callcard_events_received_total{result=\"rejected\"} 7"));

    // The same body properly signed is accepted, proving the refusals were
    // about the signatures alone.
    let ack = deliver(&node.base, &account, &serde_json::from_str(&body).unwrap()).await;
    assert_eq!(ack["changed"], true);
    assert!(node.backend.call(account.id, "c-refused").await.unwrap().is_some());
    node.stop().await;
}

async fn retried_and_reordered_events_make_one_call(db: Db) {
    let node = Instance::start(config(&db)).await;
    let account = Account::random();
    account.provision(&node.backend, &[(11, "101")]).await;
    let t0 = now_ms();

    // Recording first, then the end, then a retried end, no ringing at all.
    let recording = event("recording_ready", "c-1", "101", t0 + 50_000);
    let ended = event("ended", "c-1", "101", t0 + 45_000);
    assert_eq!(deliver(&node.base, &account, &recording).await["status"], "ringing");
    let ack = deliver(&node.base, &account, &ended).await;
    assert_eq!((ack["status"].as_str(), ack["changed"].as_bool()), (Some("ended"), Some(true)));
    let retry = deliver(&node.base, &account, &ended).await;
    assert_eq!(retry["changed"], false, "a retried event must change nothing");
    // A late ringing and answered complete the call without reopening it.
    deliver(&node.base, &account, &event("answered", "c-1", "101", t0 + 3_000)).await;
    deliver(&node.base, &account, &event("ringing", "c-1", "101", t0)).await;

    let stored = node.backend.call(account.id, "c-1").await.unwrap().expect("one call");
    assert_eq!(stored.call.status(), callcard_calls::CallStatus::Ended);
    assert_eq!(stored.call.ringing_at, Some(t0));
    assert_eq!(stored.call.answered_at, Some(t0 + 3_000));
    assert_eq!(stored.call.ending.as_ref().unwrap().duration, 42);
    assert_eq!(stored.call.recording_url(), Some("https://pbx.test/c-1.mp3"));
    assert_eq!(stored.kommo_user_id, Some(11));
    // Four changes, one retry: the version counts changes only.
    assert_eq!(stored.version, 4);

    // The same events in the natural order, on another call id, give the
    // same facts.
    for e in [
        event("ringing", "c-2", "101", t0),
        event("answered", "c-2", "101", t0 + 3_000),
        event("ended", "c-2", "101", t0 + 45_000),
        event("recording_ready", "c-2", "101", t0 + 50_000),
    ] {
        deliver(&node.base, &account, &e).await;
    }
    let natural = node.backend.call(account.id, "c-2").await.unwrap().unwrap();
    assert_eq!(natural.call.ringing_at, stored.call.ringing_at);
    assert_eq!(natural.call.answered_at, stored.call.answered_at);
    assert_eq!(natural.call.ending, stored.call.ending);
    assert_eq!(natural.call.recording.as_ref().unwrap().at, stored.call.recording.as_ref().unwrap().at);

    // Call ids are unique per account, not globally.
    let other = Account::random();
    other.provision(&node.backend, &[(11, "101")]).await;
    deliver(&node.base, &other, &event("ringing", "c-1", "101", t0)).await;
    let theirs = node.backend.call(other.id, "c-1").await.unwrap().unwrap();
    assert_eq!(theirs.call.status(), callcard_calls::CallStatus::Ringing);
    assert_eq!(node.backend.call(account.id, "c-1").await.unwrap().unwrap().version, 4);
    node.stop().await;
}

async fn concurrent_deliveries_converge(db: Db) {
    let node = Instance::start(config(&db)).await;
    let account = Account::random();
    account.provision(&node.backend, &[(11, "101")]).await;
    let t0 = now_ms();
    let events = [
        event("ringing", "c-race", "101", t0),
        event("answered", "c-race", "101", t0 + 1_000),
        event("ended", "c-race", "101", t0 + 43_000),
        event("recording_ready", "c-race", "101", t0 + 44_000),
    ];
    // Every event three times, all at once: a PBX retrying in a hurry.
    let sends = events.iter().cycle().take(12).map(|e| deliver(&node.base, &account, e));
    let acks = futures::future::join_all(sends).await;
    let changed = acks.iter().filter(|a| a["changed"] == true).count();
    assert!((1..=4).contains(&changed), "{changed} deliveries changed the call");
    let stored = node.backend.call(account.id, "c-race").await.unwrap().unwrap();
    assert_eq!(stored.call.status(), callcard_calls::CallStatus::Ended);
    assert_eq!(stored.call.ringing_at, Some(t0));
    assert_eq!(stored.call.answered_at, Some(t0 + 1_000));
    assert!(stored.call.recording.is_some());
    assert_eq!(stored.version as usize, changed);
    node.stop().await;
}

/// Hundreds of webhooks at once are stored in shared transactions (group
/// commit); none may be lost, merged away or reordered on a user's feed.
async fn a_burst_loses_nothing_and_keeps_each_feed_in_order(db: Db) {
    let node = Instance::start(config(&db)).await;
    let account = Account::random();
    account.provision(&node.backend, &[(11, "101"), (12, "102"), (13, "103")]).await;
    let mut anna = connect(&node, &ticket(&node.base, &account, 11).await, None).await;
    const CALLS_PER_USER: usize = 60;
    let t0 = now_ms();
    // Every call rings and is answered, both webhooks in flight together, so
    // some batches hold two deliveries of one call.
    let mut events = Vec::new();
    for i in 0..CALLS_PER_USER {
        for ext in ["101", "102", "103"] {
            let id = format!("burst-{ext}-{i}");
            events.push(event("ringing", &id, ext, t0 + i as i64));
            events.push(event("answered", &id, ext, t0 + 500 + i as i64));
        }
    }
    let acks = futures::future::join_all(events.iter().map(|e| deliver(&node.base, &account, e))).await;
    assert_eq!(acks.len(), CALLS_PER_USER * 6);
    assert!(acks.iter().all(|a| a["changed"] == true), "every delivery changed its call");

    // Anna's feed: one event per delivery, offsets 1, 2, 3, … with no gap,
    // each of her calls twice, ending answered.
    let mut seen = std::collections::BTreeMap::<String, Vec<callcard_calls::CallStatus>>::new();
    for expected in 1..=(CALLS_PER_USER * 2) as u64 {
        match next(&mut anna, SOON).await {
            Some(callcard_calls::feed::FeedMessage::Event(e)) => {
                assert_eq!(e.offset, expected, "offsets arrive in order");
                assert_eq!(e.call.user_id, Some(11));
                seen.entry(e.call.call.call_id.clone()).or_default().push(e.call.status);
            }
            other => panic!("expected feed event {expected}, got {other:?}"),
        }
    }
    assert_eq!(next(&mut anna, QUIET).await, None);
    assert_eq!(seen.len(), CALLS_PER_USER);
    assert!(seen.keys().all(|id| id.starts_with("burst-101-")));
    for (id, statuses) in &seen {
        assert_eq!(statuses.len(), 2, "{id}: {statuses:?}");
        let stored = node.backend.call(account.id, id).await.unwrap().unwrap();
        assert_eq!(stored.call.status(), callcard_calls::CallStatus::Answered, "{id}");
        assert_eq!(stored.version, 2, "{id}: two changes");
    }
    for user in [12, 13] {
        assert_eq!(node.backend.store().latest_offset(account.id, user).await.unwrap(), CALLS_PER_USER as u64 * 2);
    }
    let metrics = node.backend.metrics_text();
    assert!(metrics.contains(&format!("callcard_intake_deliveries_total {}", CALLS_PER_USER * 6)), "{metrics}");
    node.stop().await;
}

async fn batches_answer_per_call(db: Db) {
    let node = Instance::start(config(&db)).await;
    let account = Account::random();
    account.provision(&node.backend, &[(11, "117")]).await;
    let good = json!({"uuid": "394427aaf821879e", "direction": "inbound", "external_number": "14155237743",
                      "extension": "117", "started_at": 1_414_654_739_000i64, "duration": 98, "outcome": "answered",
                      "recording_url": "https://pbx.test/394427.mp3"});
    let mut bad_duration = good.clone();
    bad_duration["uuid"] = json!("b7095fb33b368c71");
    bad_duration["duration"] = json!(90_000);
    let mut bad_direction = good.clone();
    bad_direction["uuid"] = json!("c-dir");
    bad_direction["direction"] = json!("sideways");
    let no_uuid = json!({"direction": "outbound"});
    let body = json!({"calls": [good, bad_duration, bad_direction, no_uuid, good]}).to_string();
    let r = post_signed(&node.base, &format!("/pbx/{}/calls", account.id), &account.secret, &body).await;
    assert_eq!(r.status(), 200);
    let answer: callcard_calls::event::BatchAnswer = r.json().await.unwrap();
    assert_eq!(answer.success, vec!["394427aaf821879e", "394427aaf821879e"], "the repeated call is idempotent");
    assert_eq!(answer.errors.len(), 3, "{answer:?}");
    assert!(answer.errors["b7095fb33b368c71"][0].starts_with("duration:"), "{answer:?}");
    assert!(answer.errors["c-dir"][0].starts_with("direction:"), "{answer:?}");
    assert!(answer.errors["calls[3]"][0].contains("uuid"), "{answer:?}");

    let stored = node.backend.call(account.id, "394427aaf821879e").await.unwrap().unwrap();
    assert_eq!(stored.call.status(), callcard_calls::CallStatus::Ended);
    assert_eq!(stored.call.started_at(), Some(1_414_654_739_000));
    assert_eq!(stored.call.billable_seconds(), 98);
    assert_eq!(stored.kommo_user_id, Some(11));
    assert!(node.backend.call(account.id, "b7095fb33b368c71").await.unwrap().is_none());

    // The envelope itself must be right.
    let r = post_signed(&node.base, &format!("/pbx/{}/calls", account.id), &account.secret, r#"{"call":[]}"#).await;
    assert_problem(r, 422, "calls").await;
    node.stop().await;
}

async fn bad_input_is_a_problem_naming_the_field(db: Db) {
    let node = Instance::start(config(&db)).await;
    let account = Account::random();
    account.provision(&node.backend, &[(11, "101")]).await;
    let path = format!("/pbx/{}/events", account.id);
    let at = now_ms();
    let post = |body: String| {
        let path = path.clone();
        let base = node.base.clone();
        let secret = account.secret.clone();
        async move { post_signed(&base, &path, &secret, &body).await }
    };
    let with = |key: &str, value: Value| {
        let mut e = event("ended", "c-bad", "101", at);
        e[key] = value;
        e.to_string()
    };
    let without = |key: &str| {
        let mut e = event("ended", "c-bad", "101", at);
        e.as_object_mut().unwrap().remove(key);
        e.to_string()
    };

    assert_problem(post("{\"event\": \"ringing\",".into()).await, 400, None).await;
    assert_problem(post(with("occurred_at", json!(1_763_691_600))).await, 422, "occurred_at").await;
    assert_problem(post(with("occurred_at", json!("yesterday"))).await, 422, "occurred_at").await;
    assert_problem(post(with("duration", json!(-5))).await, 422, "duration").await;
    assert_problem(post(with("duration", json!(86_401))).await, 422, "duration").await;
    assert_problem(post(with("outcome", json!("exploded"))).await, 422, "outcome").await;
    assert_problem(post(with("extension", json!("10a"))).await, 422, "extension").await;
    assert_problem(post(with("external_number", json!("<script>"))).await, 422, "external_number").await;
    assert_problem(post(with("call_id", json!("x".repeat(500)))).await, 422, "call_id").await;
    assert_problem(post(with("event", json!("teleported"))).await, 422, "event").await;
    assert_problem(post(without("duration")).await, 422, "duration").await;
    assert_problem(post(without("call_id")).await, 422, "call_id").await;
    assert_problem(post("42".into()).await, 422, None).await;

    // Oversized bodies are refused before anything is parsed.
    let huge = with("call_id", json!("x".repeat(520 * 1024)));
    let r = post(huge).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // The path's account id must be an id.
    let r = post_signed(&node.base, "/pbx/acme/events", &account.secret, &event("ringing", "c", "101", at).to_string())
        .await;
    assert_problem(r, 422, "account_id").await;
    // Unknown routes and methods are problems too.
    let r = client().get(format!("{}/pbx/{}/events", node.base, account.id)).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    assert!(node.backend.call(account.id, "c-bad").await.unwrap().is_none());
    node.stop().await;
}

/// Without the secret, a known account and an unknown one get the same
/// answer, status and body, whatever is wrong with the signature: nobody can
/// list the provisioned accounts by probing ids.
async fn unknown_accounts_cannot_be_told_from_known_ones(db: Db) {
    let node = Instance::start(config(&db)).await;
    let account = Account::random();
    account.provision(&node.backend, &[(11, "101")]).await;
    let body = event("ringing", "c-probe", "101", now_ms()).to_string();
    let answer = |account_id: u64, headers: Vec<(&'static str, String)>| {
        let url = format!("{}/pbx/{account_id}/events", node.base);
        let body = body.clone();
        async move {
            let mut rq = client().post(url).header("content-type", "application/json").body(body);
            for (name, value) in headers {
                rq = rq.header(name, value);
            }
            let r = rq.send().await.unwrap();
            let status = r.status().as_u16();
            let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
            (status, content_type, r.text().await.unwrap())
        }
    };
    let now = now_s();
    let probes: Vec<(&str, Vec<(&'static str, String)>)> = vec![
        ("unsigned", vec![]),
        ("no signature", vec![("x-callcard-timestamp", now.to_string())]),
        (
            "malformed signature",
            vec![("x-callcard-timestamp", now.to_string()), ("x-callcard-signature", "v1=zz".into())],
        ),
        (
            "signed with a guessed secret",
            vec![
                ("x-callcard-timestamp", now.to_string()),
                ("x-callcard-signature", callcard_calls::signature::sign(b"guess", now, body.as_bytes())),
            ],
        ),
        (
            "signed with an empty secret",
            vec![
                ("x-callcard-timestamp", now.to_string()),
                ("x-callcard-signature", callcard_calls::signature::sign(b"", now, body.as_bytes())),
            ],
        ),
    ];
    let unknown = account.id + 1_000_000;
    for (what, headers) in probes {
        let known = answer(account.id, headers.clone()).await;
        let stranger = answer(unknown, headers).await;
        assert_eq!(known, stranger, "{what}: a known account answered differently from an unknown one");
        assert_eq!(known.0, 401, "{what}: {known:?}");
        assert_eq!(known.1, "application/problem+json");
    }
    // A stale timestamp: the same refusal (its detail counts seconds, which
    // may tick between the two requests).
    let old = now - 3600;
    let stale = vec![
        ("x-callcard-timestamp", old.to_string()),
        ("x-callcard-signature", callcard_calls::signature::sign(b"guess", old, body.as_bytes())),
    ];
    let parse = |(status, _, text): (u16, String, String)| {
        let v: Value = serde_json::from_str(&text).unwrap();
        (status, v["type"].clone(), v["title"].clone(), v["field"].clone())
    };
    assert_eq!(parse(answer(account.id, stale.clone()).await), parse(answer(unknown, stale).await));
    node.stop().await;
}
