//! Resource limits: one user holds at most `max_feeds_per_user` feeds open,
//! however many times their ticket is used; others are not affected.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

on_both_stores!(one_user_holds_at_most_the_cap_of_feeds);

/// Opens a feed WebSocket, or returns the refusal's status and problem.
async fn open(node: &Instance, ticket: &str) -> Result<Ws, (u16, Value)> {
    let url = format!("{}/widget/feed?ticket={ticket}", node.ws_base);
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            assert_eq!(response.headers()["content-type"], "application/problem+json");
            let body = response.body().as_deref().map(|b| serde_json::from_slice(b).unwrap()).unwrap_or_default();
            Err((status, body))
        }
        Err(e) => panic!("the feed handshake failed: {e}"),
    }
}

async fn one_user_holds_at_most_the_cap_of_feeds(db: Db) {
    let mut config = config(&db);
    config.max_feeds_per_user = 3;
    let node = Instance::start(config).await;
    let acme = Account::random();
    acme.provision(&node.backend, &[(11, "101"), (12, "102")]).await;
    let mine = ticket(&node.base, &acme, 11).await;

    let mut feeds = Vec::new();
    for _ in 0..3 {
        feeds.push(open(&node, &mine).await.expect("feeds up to the cap open"));
    }
    let (status, body) = open(&node, &mine).await.expect_err("a fourth feed must be refused");
    assert_eq!((status, body["type"].as_str()), (429, Some("/problems/too-many-feeds")), "{body}");
    // A waiting poll holds a connection too; a quick one does not.
    let poll = |wait: u64| {
        let url = format!("{}/widget/feed/poll?ticket={mine}&since=0&wait={wait}", node.base);
        async move { client().get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(poll(5).await, 429);
    assert_eq!(poll(0).await, 200);

    // Another user of the account is not affected.
    let other = ticket(&node.base, &acme, 12).await;
    open(&node, &other).await.expect("another user's feed opens");

    // Closing a feed gives its place back.
    let mut closed = feeds.pop().unwrap();
    closed.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        match open(&node, &mine).await {
            Ok(ws) => break feeds.push(ws),
            Err((429, _)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(refused) => panic!("the closed feed's place never came back: {refused:?}"),
        }
    }
    // The feeds that are open work.
    deliver(&node.base, &acme, &event("ringing", "c-cap", "101", now_ms())).await;
    for ws in &mut feeds {
        assert_eq!(event_of(next(ws, SOON).await).1, "c-cap");
    }
    node.stop().await;
}
