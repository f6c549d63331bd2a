//! Measures intake throughput (signed webhooks stored per second) and feed
//! latency (webhook sent → event received on the user's WebSocket).
//!
//! `CARGO_TARGET_DIR=/var/tmp/callcard-target cargo bench -p callcard-backend`
//! runs it on SQLite in a temp dir; set `BENCH_DATABASE_URL=postgres://…` for
//! PostgreSQL. Numbers are printed, not asserted.

use callcard_backend::{AccountSetup, Backend, Config};
use callcard_calls::extensions::ExtensionMap;
use callcard_calls::feed::FeedMessage;
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

const EVENTS: usize = 2000;
const CONCURRENCY: usize = 16;
const LATENCY_SAMPLES: usize = 200;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let database_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.sqlite").display()));
    let backend = Backend::start(Config {
        database_url: database_url.clone(),
        public_base_url: "http://bench/backend".into(),
        ..Config::default()
    })
    .await?;
    let account = 900_000_000 + rand::random::<u64>() % 1_000_000;
    let secret = "bench-secret";
    let origin = "https://bench.kommo.test";
    backend
        .provision_account(AccountSetup {
            account_id: account,
            origin: origin.into(),
            webhook_secret: secret.into(),
            extensions: None,
            pbx_originate_url: None,
        })
        .await?;
    backend.set_extensions(account, ExtensionMap::parse(&json!({"1": "101"}))?).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = backend.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let post = |i: usize, kind: &str| {
        let body = json!({"event": kind, "call_id": format!("b-{i}"), "direction": "inbound",
            "external_number": "+18305703077", "extension": "101", "occurred_at": now_ms()})
        .to_string();
        let ts = now_ms() / 1000;
        let sig = callcard_calls::signature::sign(secret.as_bytes(), ts, body.as_bytes());
        client
            .post(format!("http://{addr}/pbx/{account}/events"))
            .header("x-callcard-timestamp", ts.to_string())
            .header("x-callcard-signature", sig)
            .body(body)
            .send()
    };

    // Throughput: EVENTS ringing events, CONCURRENCY in flight.
    let started = Instant::now();
    let results: Vec<_> =
        futures::stream::iter(0..EVENTS).map(|i| post(i, "ringing")).buffer_unordered(CONCURRENCY).collect().await;
    let elapsed = started.elapsed();
    let ok = results.iter().filter(|r| r.as_ref().is_ok_and(|r| r.status() == 200)).count();
    println!(
        "intake: {ok}/{EVENTS} events stored in {:.2?} = {:.0} events/s ({CONCURRENCY} concurrent, {})",
        elapsed,
        ok as f64 / elapsed.as_secs_f64(),
        database_url.split(':').next().unwrap_or("?")
    );

    // Latency: one event at a time, until it arrives on the WebSocket.
    let now = now_ms() / 1000;
    let claims = json!({"iss": origin, "aud": "http://bench/backend", "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now, "nbf": now, "exp": now + 60, "account_id": account, "user_id": 1});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(callcard_backend::DEMO_INTEGRATION_SECRET.as_bytes()),
    )?;
    let ticket: callcard_calls::feed::Ticket =
        client.post(format!("http://{addr}/widget/ticket")).header("x-auth-token", token).send().await?.json().await?;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/widget/feed?ticket={}", ticket.ticket)).await?;
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let sent = Instant::now();
        post(i, "answered").await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await? {
                Some(Ok(Message::Text(t))) => {
                    if let FeedMessage::Event(_) = serde_json::from_str(&t)? {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                other => anyhow::bail!("feed ended: {other:?}"),
            }
        }
        samples.push(sent.elapsed());
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    println!(
        "feed latency (webhook → WebSocket, {LATENCY_SAMPLES} samples): p50 {:.2?}, p95 {:.2?}, p99 {:.2?}, max {:.2?}",
        pct(0.5),
        pct(0.95),
        pct(0.99),
        samples[samples.len() - 1]
    );
    backend.shutdown().await;
    Ok(())
}
