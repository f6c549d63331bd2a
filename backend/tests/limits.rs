//! Resource limits: one user holds at most `max_feeds_per_user` feeds open,
//! however many times their ticket is used; others are not affected. The
//! binary serves at most `max_connections` connections at once.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

on_both_stores!(one_user_holds_at_most_the_cap_of_feeds);

/// Two idle connections fill a cap of two: a third is not served until one
/// of them closes, and then it is.
#[tokio::test]
async fn the_binary_serves_at_most_max_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = Db::sqlite().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callcard-backend"))
        .env("CALLCARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("CALLCARD_DATABASE_URL", db.url())
        .env("CALLCARD_INTEGRATION_SECRET", INTEGRATION_SECRET)
        .env("CALLCARD_PUBLIC_BASE_URL", "http://backend.test/backend")
        .env("CALLCARD_SECRET_KEY", SECRET_KEY)
        .env("CALLCARD_MAX_CONNECTIONS", "2")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the callcard-backend binary starts");
    let addr = format!("127.0.0.1:{port}");
    // Healthy: a request on a connection that is then closed.
    let deadline = tokio::time::Instant::now() + SOON;
    while client().get(format!("http://{addr}/healthz")).send().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the backend never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let request = b"GET /healthz HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n";
    let mut first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _second = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // `first` proves it is being served (and so counted) before the third.
    let mut probe = tokio::net::TcpStream::connect(&addr).await.unwrap();
    first.write_all(b"GET /healthz HTTP/1.1\r\nHost: backend\r\n\r\n").await.unwrap();
    let mut answer = [0u8; 12];
    tokio::time::timeout(SOON, first.read_exact(&mut answer)).await.expect("the first is served").unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    probe.write_all(request).await.unwrap();
    let mut got = [0u8; 12];
    let waited = tokio::time::timeout(QUIET, probe.read_exact(&mut got)).await;
    assert!(waited.is_err(), "a third connection was served past a cap of two");
    drop(first);
    tokio::time::timeout(SOON, probe.read_exact(&mut got)).await.expect("served once a place is free").unwrap();
    assert_eq!(&got, b"HTTP/1.1 200");
    child.kill().unwrap();
    child.wait().unwrap();
}

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
