//! The widget side against real stores: one-time tokens and tickets, the
//! WebSocket and polling feeds, isolation between users and accounts, and
//! offset recovery after a disconnect, with a gap once history is trimmed.

mod common;

use callcard_calls::feed::{CurrentCalls, FeedMessage, PollAnswer};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

on_both_stores!(
    one_time_tokens_are_verified_completely,
    each_user_sees_only_their_own_calls_on_the_websocket,
    each_user_sees_only_their_own_calls_when_polling,
    a_reconnecting_widget_resumes_from_its_offset_or_hears_of_the_gap,
);

async fn problem(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    (status, r.json().await.unwrap())
}

async fn one_time_tokens_are_verified_completely(db: Db) {
    let node = Instance::start(config(&db)).await;
    let account = Account::random();
    account.provision(&node.backend, &[(11, "101")]).await;
    let try_token = |token: String| {
        let url = format!("{}/widget/ticket", node.base);
        async move { client().post(url).header("x-auth-token", token).send().await.unwrap() }
    };
    let now = now_s();

    let refusals: Vec<(&str, String)> = vec![
        ("X-Auth-Token.exp", one_time_token(&account, 11, |c| c["exp"] = json!(now - 60))),
        ("X-Auth-Token.nbf", one_time_token(&account, 11, |c| c["nbf"] = json!(now + 600))),
        ("X-Auth-Token.aud", one_time_token(&account, 11, |c| c["aud"] = json!("https://elsewhere.test"))),
        ("X-Auth-Token.iss", one_time_token(&account, 11, |c| c["iss"] = json!("https://evil.kommo.test"))),
        ("X-Auth-Token.account_id", one_time_token(&account, 11, |c| c["account_id"] = json!(1))),
        ("X-Auth-Token", {
            let mut t = one_time_token(&account, 11, |_| {});
            t.push('x'); // breaks the signature
            t
        }),
        ("X-Auth-Token", "not.a.jwt".to_string()),
    ];
    for (field, token) in refusals {
        let (status, body) = problem(try_token(token).await).await;
        assert_eq!((status, body["field"].as_str()), (401, Some(field)), "{body}");
    }
    let (status, body) = problem(client().post(format!("{}/widget/ticket", node.base)).send().await.unwrap()).await;
    assert_eq!((status, body["field"].as_str()), (401, Some("X-Auth-Token")));

    // Numeric strings are accepted for the ids; a token works once.
    let token = one_time_token(&account, 11, |c| {
        c["account_id"] = json!(account.id.to_string());
        c["user_id"] = json!("11");
    });
    let first = try_token(token.clone()).await;
    assert_eq!(first.status(), 200);
    let ticket: callcard_calls::feed::Ticket = first.json().await.unwrap();
    assert_eq!((ticket.account_id, ticket.user_id), (account.id, 11));
    assert!(ticket.expires_at > now_ms());
    let (status, body) = problem(try_token(token).await).await;
    assert_eq!((status, body["field"].as_str()), (401, Some("X-Auth-Token.jti")), "a replayed jti must be refused");

    // A page on another origin cannot use the account's token.
    let r = client()
        .post(format!("{}/widget/ticket", node.base))
        .header("origin", "https://evil.test")
        .header("x-auth-token", one_time_token(&account, 11, |_| {}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 403);

    // CORS admits the account's origin and nobody else.
    let preflight = |origin: &str| {
        client()
            .request(reqwest::Method::OPTIONS, format!("{}/widget/ticket", node.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "x-auth-token")
            .send()
    };
    let ok = preflight(&account.origin).await.unwrap();
    assert_eq!(ok.headers().get("access-control-allow-origin").unwrap(), account.origin.as_str());
    let no = preflight("https://evil.test").await.unwrap();
    assert!(no.headers().get("access-control-allow-origin").is_none());

    // Bad and missing tickets are refused on every feed endpoint.
    for path in ["/widget/feed/poll?since=0", "/widget/calls?", "/widget/feed/poll?ticket=forged&since=0"] {
        let r = client().get(format!("{}{path}", node.base)).send().await.unwrap();
        let (status, body) = problem(r).await;
        assert_eq!((status, body["field"].as_str()), (401, Some("ticket")), "{path}: {body}");
    }
    let ws = tokio_tungstenite::connect_async(format!("{}/widget/feed?ticket=forged", node.ws_base)).await;
    assert!(ws.is_err(), "a forged ticket must not open a feed");
    node.stop().await;
}

async fn each_user_sees_only_their_own_calls_on_the_websocket(db: Db) {
    let node = Instance::start(config(&db)).await;
    let acme = Account::random();
    let globex = Account::random();
    // Both accounts have a user 11 on extension 101: ids collide across
    // accounts, and must still not leak.
    acme.provision(&node.backend, &[(11, "101"), (12, "102")]).await;
    globex.provision(&node.backend, &[(11, "101")]).await;

    let mut anna = connect(&node, &ticket(&node.base, &acme, 11).await, None).await;
    let mut bruno = connect(&node, &ticket(&node.base, &acme, 12).await, None).await;
    let mut other = connect(&node, &ticket(&node.base, &globex, 11).await, None).await;
    let mut nobody = connect(&node, &ticket(&node.base, &acme, 13).await, None).await;

    let t0 = now_ms();
    deliver(&node.base, &acme, &event("ringing", "c-anna", "101", t0)).await;
    deliver(&node.base, &acme, &event("ringing", "c-bruno", "102", t0)).await;
    // An unmapped extension is stored and reaches nobody.
    deliver(&node.base, &acme, &event("ringing", "c-unmapped", "109", t0)).await;

    assert_eq!(event_of(next(&mut anna, SOON).await), (1, "c-anna".into()));
    assert_eq!(event_of(next(&mut bruno, SOON).await), (1, "c-bruno".into()));
    deliver(&node.base, &acme, &event("answered", "c-anna", "101", t0 + 1000)).await;
    match next(&mut anna, SOON).await {
        Some(FeedMessage::Event(e)) => {
            assert_eq!(e.offset, 2);
            assert_eq!(e.call.status, callcard_calls::CallStatus::Answered);
            assert_eq!(e.call.user_id, Some(11));
        }
        other => panic!("{other:?}"),
    }
    // Nothing else anywhere: not Bruno's call for Anna, not Acme's user 11
    // for Globex's user 11, not the unmapped call for anyone.
    assert_eq!(next(&mut anna, QUIET).await, None);
    assert_eq!(next(&mut bruno, QUIET).await, None);
    assert_eq!(next(&mut other, QUIET).await, None);
    assert_eq!(next(&mut nobody, QUIET).await, None);
    let unmapped = node.backend.call(acme.id, "c-unmapped").await.unwrap().expect("stored");
    assert_eq!(unmapped.kommo_user_id, None);

    // Globex's own call reaches Globex's user 11 only.
    deliver(&node.base, &globex, &event("ringing", "c-globex", "101", t0)).await;
    assert_eq!(event_of(next(&mut other, SOON).await), (1, "c-globex".into()));
    assert_eq!(next(&mut anna, QUIET).await, None);

    // Current calls are per user too.
    let t = ticket(&node.base, &acme, 11).await;
    let current: CurrentCalls =
        client().get(format!("{}/widget/calls?ticket={t}", node.base)).send().await.unwrap().json().await.unwrap();
    let ids: Vec<_> = current.calls.iter().map(|c| c.call.call_id.as_str()).collect();
    assert_eq!(ids, vec!["c-anna"]);
    assert_eq!(current.latest_offset, 2);
    assert!(node.backend.metrics_text().contains("callcard_connected_clients 4"));
    node.stop().await;
}

async fn poll(node: &Instance, ticket: &str, since: u64) -> PollAnswer {
    let r = client().get(format!("{}/widget/feed/poll?ticket={ticket}&since={since}", node.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn each_user_sees_only_their_own_calls_when_polling(db: Db) {
    let node = Instance::start(config(&db)).await;
    let acme = Account::random();
    let globex = Account::random();
    acme.provision(&node.backend, &[(11, "101"), (12, "102")]).await;
    globex.provision(&node.backend, &[(11, "101")]).await;
    let t0 = now_ms();
    deliver(&node.base, &acme, &event("ringing", "c-anna", "101", t0)).await;
    deliver(&node.base, &acme, &event("ended", "c-anna", "101", t0 + 42_000)).await;
    deliver(&node.base, &acme, &event("ringing", "c-bruno", "102", t0)).await;
    deliver(&node.base, &globex, &event("ringing", "c-globex", "101", t0)).await;

    // A poll ticket may be used again until it expires.
    let anna = ticket(&node.base, &acme, 11).await;
    let answer = poll(&node, &anna, 0).await;
    let seen: Vec<_> = answer.events.iter().map(|e| (e.offset, e.call.call.call_id.as_str())).collect();
    assert_eq!(seen, vec![(1, "c-anna"), (2, "c-anna")]);
    assert_eq!((answer.gap, answer.latest_offset), (false, 2));
    assert_eq!(poll(&node, &anna, 1).await.events.len(), 1);
    assert!(poll(&node, &anna, 2).await.events.is_empty());

    let bruno = poll(&node, &ticket(&node.base, &acme, 12).await, 0).await;
    assert_eq!(bruno.events.iter().map(|e| e.call.call.call_id.as_str()).collect::<Vec<_>>(), vec!["c-bruno"]);
    let other = poll(&node, &ticket(&node.base, &globex, 11).await, 0).await;
    assert_eq!(other.events.iter().map(|e| e.call.call.call_id.as_str()).collect::<Vec<_>>(), vec!["c-globex"]);
    assert!(poll(&node, &ticket(&node.base, &acme, 13).await, 0).await.events.is_empty());

    // An offset never handed out is a gap, not silence.
    let ahead = poll(&node, &anna, 99).await;
    assert!(ahead.gap && ahead.events.is_empty() && ahead.latest_offset == 2);
    // `since` must be an offset.
    let r = client().get(format!("{}/widget/feed/poll?ticket={anna}&since=-1", node.base)).send().await.unwrap();
    assert_eq!(problem(r).await.1["field"], "since");

    // A long poll returns as soon as the event is there.
    let waiting = {
        let url = format!("{}/widget/feed/poll?ticket={anna}&since=2&wait=20", node.base);
        tokio::spawn(async move { client().get(url).send().await.unwrap().json::<PollAnswer>().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    deliver(&node.base, &acme, &event("recording_ready", "c-anna", "101", t0 + 50_000)).await;
    let woke = waiting.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(woke.events.iter().map(|e| e.offset).collect::<Vec<_>>(), vec![3]);
    node.stop().await;
}

async fn a_reconnecting_widget_resumes_from_its_offset_or_hears_of_the_gap(db: Db) {
    let mut cfg = config(&db);
    cfg.feed_history_per_user = 5;
    let node = Instance::start(cfg).await;
    let acme = Account::random();
    acme.provision(&node.backend, &[(11, "101")]).await;
    let t0 = now_ms();

    let mut ws = connect(&node, &ticket(&node.base, &acme, 11).await, Some(0)).await;
    deliver(&node.base, &acme, &event("ringing", "c-1", "101", t0)).await;
    deliver(&node.base, &acme, &event("answered", "c-1", "101", t0 + 1)).await;
    assert_eq!(event_of(next(&mut ws, SOON).await).0, 1);
    assert_eq!(event_of(next(&mut ws, SOON).await).0, 2);
    drop(ws);

    // Missed while disconnected: offsets 3, 4, 5.
    deliver(&node.base, &acme, &event("ended", "c-1", "101", t0 + 2)).await;
    deliver(&node.base, &acme, &event("ringing", "c-2", "101", t0 + 3)).await;
    deliver(&node.base, &acme, &event("ringing", "c-3", "101", t0 + 4)).await;

    let mut ws = connect(&node, &ticket(&node.base, &acme, 11).await, Some(2)).await;
    let replayed: Vec<_> =
        [event_of(next(&mut ws, SOON).await), event_of(next(&mut ws, SOON).await), event_of(next(&mut ws, SOON).await)]
            .into();
    assert_eq!(replayed, vec![(3, "c-1".into()), (4, "c-2".into()), (5, "c-3".into())]);
    // ...and then live events continue from there.
    deliver(&node.base, &acme, &event("answered", "c-3", "101", t0 + 5)).await;
    assert_eq!(event_of(next(&mut ws, SOON).await), (6, "c-3".into()));
    drop(ws);

    // Eight more events: history keeps only 5 per user, so offset 6 + 1 is gone.
    for i in 0..8 {
        deliver(&node.base, &acme, &event("ringing", &format!("c-x{i}"), "101", t0 + 10 + i)).await;
    }
    let mut ws = connect(&node, &ticket(&node.base, &acme, 11).await, Some(6)).await;
    assert_eq!(next(&mut ws, SOON).await, Some(FeedMessage::Gap { latest_offset: 14 }));
    // After the gap the feed is live from the latest offset.
    deliver(&node.base, &acme, &event("answered", "c-x7", "101", t0 + 30)).await;
    assert_eq!(event_of(next(&mut ws, SOON).await), (15, "c-x7".into()));
    let polled = poll(&node, &ticket(&node.base, &acme, 11).await, 6).await;
    assert!(polled.gap && polled.events.is_empty() && polled.latest_offset == 15);
    // Within the kept history, polling recovers too.
    let polled = poll(&node, &ticket(&node.base, &acme, 11).await, 12).await;
    assert_eq!(polled.events.iter().map(|e| e.offset).collect::<Vec<_>>(), vec![13, 14, 15]);
    node.stop().await;
}
