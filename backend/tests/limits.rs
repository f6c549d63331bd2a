//! Resource limits: one user holds at most `max_feeds_per_user` feeds open,
//! however many times their ticket is used; others are not affected. The
//! binary serves at most `max_connections` connections at once, and closes
//! connections that send their headers too slowly or sit idle too long, so
//! slow clients cannot keep others out.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

on_both_stores!(one_user_holds_at_most_the_cap_of_feeds);

/// The `callcard-backend` binary on an ephemeral port, with `settings` as
/// environment variables; killed when dropped.
struct Binary {
    child: std::process::Child,
    addr: String,
}

impl Binary {
    async fn start(db: &Db, settings: &[(&str, &str)]) -> Binary {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_callcard-backend"));
        command
            .env("CALLCARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("CALLCARD_DATABASE_URL", db.url())
            .env("CALLCARD_INTEGRATION_SECRET", INTEGRATION_SECRET)
            .env("CALLCARD_PUBLIC_BASE_URL", "http://backend.test/backend")
            .env("CALLCARD_SECRET_KEY", SECRET_KEY)
            .env("CALLCARD_CALLER_INDEX", "false")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (key, value) in settings {
            command.env(key, value);
        }
        let binary = Binary {
            child: command.spawn().expect("the callcard-backend binary starts"),
            addr: format!("127.0.0.1:{port}"),
        };
        // Healthy: a request on a connection that is then closed.
        let deadline = tokio::time::Instant::now() + SOON;
        while client().get(format!("http://{}/healthz", binary.addr)).send().await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "the backend never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        binary
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn ws_base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(&self.addr).await.unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the server closes `stream` (end of stream or reset), reading
/// and discarding whatever it sends first; panics if it stays open `SOON`.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    let closed = tokio::time::timeout(SOON, async {
        while let Ok(n @ 1..) = stream.read(&mut sink).await {
            let _ = n;
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the connection open");
}

/// Reads one whole `Connection: keep-alive` answer to `GET /healthz` (its
/// status line and body, "ok" or a short JSON).
async fn healthz(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: backend\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    let whole = tokio::time::timeout(SOON, async {
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&answer).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .expect("a content-length");
                if body.len() >= length {
                    return text;
                }
            }
        }
    })
    .await;
    whole.expect("answered")
}

/// Two idle connections fill a cap of two: a third is not served until one
/// of them closes, and then it is.
#[tokio::test]
async fn the_binary_serves_at_most_max_connections() {
    let db = Db::sqlite().await;
    let binary = Binary::start(&db, &[("CALLCARD_MAX_CONNECTIONS", "2")]).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n\r\n";
    let mut first = binary.connect().await;
    let _second = binary.connect().await;
    // `first` proves it is being served (and so counted) before the third.
    let mut probe = binary.connect().await;
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
}

/// Sends `GET /healthz` a byte at a time, `pause` apart, until the server
/// closes the connection or the request is complete; true if it closed first.
async fn trickle_request(stream: &mut TcpStream, pause: Duration) -> bool {
    let request = b"GET /healthz HTTP/1.1\r\nHost: backend\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    for byte in request {
        if stream.write_all(&[*byte]).await.is_err() {
            return true;
        }
        let mut peek = [0u8; 1];
        match tokio::time::timeout(pause, stream.read(&mut peek)).await {
            Err(_) => continue,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => return false,
        }
    }
    false
}

/// A client that sends its headers a byte every 100 ms is cut off after the
/// header-read timeout (2 s), though it keeps sending, and long before the
/// idle timeout; one that sends them at once is answered.
#[tokio::test]
async fn slow_headers_are_cut_off_after_the_header_read_timeout() {
    let db = Db::sqlite().await;
    let binary =
        Binary::start(&db, &[("CALLCARD_HEADER_READ_TIMEOUT_SECONDS", "2"), ("CALLCARD_IDLE_TIMEOUT_SECONDS", "600")])
            .await;
    let mut slow = binary.connect().await;
    let started = tokio::time::Instant::now();
    // The whole request would take 10 s at this pace.
    let cut = tokio::time::timeout(SOON + SOON, trickle_request(&mut slow, Duration::from_millis(100))).await;
    assert_eq!(cut, Ok(true), "a client trickling its headers was served or kept");
    let held = started.elapsed();
    assert!(held >= Duration::from_secs(2), "cut off before the timeout: {held:?}");
    let mut fast = binary.connect().await;
    assert!(healthz(&mut fast).await.starts_with("HTTP/1.1 200"));
}

/// A kept-alive connection is closed once it has had no request for the idle
/// timeout (2 s), and one that never sends a byte too; while it is used, it
/// stays open.
#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let db = Db::sqlite().await;
    let binary =
        Binary::start(&db, &[("CALLCARD_HEADER_READ_TIMEOUT_SECONDS", "600"), ("CALLCARD_IDLE_TIMEOUT_SECONDS", "2")])
            .await;
    let mut kept = binary.connect().await;
    let mut silent = binary.connect().await;
    let opened = tokio::time::Instant::now();
    // Used more often than the idle timeout, for longer than it: kept open.
    let mut last = tokio::time::Instant::now();
    while opened.elapsed() < Duration::from_secs(3) {
        assert!(healthz(&mut kept).await.starts_with("HTTP/1.1 200"), "a used connection was closed");
        last = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    closed_by_server(&mut kept).await;
    assert!(last.elapsed() >= Duration::from_secs(2), "closed before the idle timeout: {:?}", last.elapsed());
    closed_by_server(&mut silent).await;
}

/// With a cap of two connections, two clients trickling their headers
/// forever cannot keep a third out past the header-read timeout.
#[tokio::test]
async fn slow_clients_cannot_hold_connections_beyond_the_timeouts() {
    let db = Db::sqlite().await;
    let binary = Binary::start(
        &db,
        &[
            ("CALLCARD_MAX_CONNECTIONS", "2"),
            ("CALLCARD_HEADER_READ_TIMEOUT_SECONDS", "1"),
            ("CALLCARD_IDLE_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = binary.connect().await;
        // A first byte at once, so the server is reading their heads.
        stream.write_all(b"G").await.unwrap();
        slow.push(tokio::spawn(async move { trickle_request(&mut stream, Duration::from_millis(200)).await }));
    }
    let mut third = binary.connect().await;
    let answer = healthz(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for client in slow {
        assert!(client.await.unwrap(), "a trickling client was served");
    }
}

/// The timeouts never cut a request in progress: with both at 1 s, a poll
/// that waits 3 s is answered, and a feed WebSocket opened before it still
/// delivers a call afterwards.
#[tokio::test]
async fn waiting_polls_and_websockets_outlive_the_timeouts() {
    // PostgreSQL: a library instance provisions the account the binary serves.
    let db = Db::postgres().await;
    let provisioner = Instance::start(config(&db)).await;
    let acme = Account::random();
    acme.provision(&provisioner.backend, &[(11, "101")]).await;
    let binary =
        Binary::start(&db, &[("CALLCARD_HEADER_READ_TIMEOUT_SECONDS", "1"), ("CALLCARD_IDLE_TIMEOUT_SECONDS", "1")])
            .await;
    let mine = ticket(&binary.base(), &acme, 11).await;
    let mut ws = open(&binary.ws_base(), &mine).await.expect("the feed opens");
    let started = tokio::time::Instant::now();
    let poll = client()
        .get(format!("{}/widget/feed/poll?ticket={mine}&since=0&wait=3", binary.base()))
        .send()
        .await
        .expect("a waiting poll is answered");
    assert_eq!(poll.status(), 200);
    assert!(started.elapsed() >= Duration::from_secs(3), "the poll did not wait: {:?}", started.elapsed());
    deliver(&binary.base(), &acme, &event("ringing", "c-long", "101", now_ms())).await;
    assert_eq!(event_of(next(&mut ws, SOON).await).1, "c-long");
    provisioner.stop().await;
}

/// SIGTERM shuts the binary down gracefully: its feeds are closed with a
/// close frame, idle connections are closed, and it exits 0.
#[tokio::test]
async fn sigterm_drains_the_binary() {
    let db = Db::postgres().await;
    let provisioner = Instance::start(config(&db)).await;
    let acme = Account::random();
    acme.provision(&provisioner.backend, &[(11, "101")]).await;
    let mut binary = Binary::start(&db, &[]).await;
    let mine = ticket(&binary.base(), &acme, 11).await;
    let mut ws = open(&binary.ws_base(), &mine).await.expect("the feed opens");
    let mut idle = binary.connect().await;
    let pid = binary.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert_eq!(next(&mut ws, SOON).await, None, "the feed was closed");
    closed_by_server(&mut idle).await;
    let deadline = tokio::time::Instant::now() + SOON;
    let status = loop {
        if let Some(status) = binary.child.try_wait().unwrap() {
            break status;
        }
        assert!(tokio::time::Instant::now() < deadline, "the binary did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    provisioner.stop().await;
}

/// Opens a feed WebSocket, or returns the refusal's status and problem.
async fn open(ws_base: &str, ticket: &str) -> Result<Ws, (u16, Value)> {
    let url = format!("{ws_base}/widget/feed?ticket={ticket}");
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
        feeds.push(open(&node.ws_base, &mine).await.expect("feeds up to the cap open"));
    }
    let (status, body) = open(&node.ws_base, &mine).await.expect_err("a fourth feed must be refused");
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
    open(&node.ws_base, &other).await.expect("another user's feed opens");

    // Closing a feed gives its place back.
    let mut closed = feeds.pop().unwrap();
    closed.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        match open(&node.ws_base, &mine).await {
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
