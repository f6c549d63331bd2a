//! What the integration tests share: real databases (an SQLite file in a
//! temp dir, or a fresh schema on the PostgreSQL at 127.0.0.1:5432/test),
//! real backends served on ephemeral ports, and clients that speak to them
//! the way a PBX and a widget do.
#![allow(dead_code)]

use callcard_backend::{AccountSetup, Backend, Config};
use callcard_calls::extensions::ExtensionMap;
use callcard_calls::feed::FeedMessage;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const INTEGRATION_SECRET: &str = "test-integration-secret";
/// The master key sealing credentials at rest in tests (64 hex digits).
pub const SECRET_KEY: &str = "746573742d7365637265742d6b65792d666f722d63616c6c636172642d747374";
pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Runs a scenario `async fn name(db: Db)` once on SQLite and once on
/// PostgreSQL, as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Db::sqlite().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Db::postgres().await).await
            }
        }
    )*};
}

/// A database of its own for one test, removed when it is dropped: at the
/// end of the test, and as well when the test fails (the SQLite file goes
/// with its temp dir, the PostgreSQL schema is dropped).
pub enum Db {
    Sqlite(tempfile::TempDir),
    Postgres { schema: String },
}

impl Db {
    pub async fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().expect("temp dir"))
    }

    /// A fresh schema, so tests run in parallel without seeing each other.
    pub async fn postgres() -> Db {
        let schema = format!("cc_test_{}", uuid::Uuid::new_v4().simple());
        admin(&format!("CREATE SCHEMA {schema}")).await.unwrap_or_else(|e| {
            panic!("CREATE SCHEMA on the PostgreSQL at 127.0.0.1:5432/test (start it with pg_ctlcluster): {e}")
        });
        Db::Postgres { schema }
    }

    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}", dir.path().join("callcard.sqlite").display()),
            Db::Postgres { schema } => format!("{PG_URL}?options=-c%20search_path%3D{schema}"),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres { .. })
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let Db::Postgres { schema } = self else { return };
        // Drop runs inside the test's runtime, possibly while it unwinds: the
        // statement gets a thread and a runtime of its own. A backend the
        // failed test left running may hold a lock briefly; past the timeout
        // the schema is left behind, and said so.
        let sql = format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
        let dropped = std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(admin(&sql)).map_err(|e| e.to_string())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test schema {schema} was not dropped: {e}"),
            Err(_) => eprintln!("test schema {schema} was not dropped: the cleanup thread panicked"),
        }
    }
}

async fn admin(sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(PG_URL).await?;
    sqlx::raw_sql(sql).execute(&mut conn).await?;
    conn.close().await
}

pub fn config(db: &Db) -> Config {
    Config {
        database_url: db.url(),
        integration_secret: INTEGRATION_SECRET.into(),
        public_base_url: "http://backend.test/backend".into(),
        // One key for every instance on a database, as in a deployment.
        secret_key: Some(SECRET_KEY.into()),
        // Off unless a test is about it: the index's sync would add Kommo
        // requests to what the other tests count (`backend/tests/phonebook.rs`).
        caller_index: false,
        ..Config::default()
    }
}

/// A backend served on an ephemeral port.
pub struct Instance {
    pub backend: Backend,
    pub base: String,
    pub ws_base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Instance {
    /// Kommo's webhooks (for the caller index) are addressed to this
    /// instance's port unless the configuration says otherwise.
    pub async fn start(mut config: Config) -> Instance {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        config.webhook_base_url.get_or_insert_with(|| format!("http://{addr}"));
        let backend = Backend::start(config).await.expect("backend starts");
        let closing = backend.clone();
        let router = backend.router();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    std::future::pending::<()>().await;
                    closing.close_feeds().await;
                })
                .await
                .unwrap();
        });
        Instance { backend, base: format!("http://{addr}"), ws_base: format!("ws://{addr}"), server }
    }

    pub async fn stop(self) {
        self.backend.shutdown().await;
        self.server.abort();
    }
}

/// A test that fails before `stop` leaves no server behind.
impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An account with its own ids, origin and webhook secret.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: u64,
    pub origin: String,
    pub secret: String,
}

impl Account {
    /// Random ids keep parallel tests (and leftover rows) apart.
    pub fn random() -> Account {
        let id = 1_000_000 + rand::random::<u64>() % 1_000_000_000;
        Account { id, origin: format!("https://a{id}.kommo.test"), secret: format!("whsec-{id}") }
    }

    /// Provisions the account and maps `users` (user id, extension).
    pub async fn provision(&self, backend: &Backend, users: &[(u64, &str)]) {
        backend
            .provision_account(AccountSetup {
                account_id: self.id,
                origin: self.origin.clone(),
                webhook_secret: self.secret.clone(),
                extensions: None,
                pbx_originate_url: None,
            })
            .await
            .unwrap();
        let map: serde_json::Map<String, serde_json::Value> =
            users.iter().map(|(u, e)| (u.to_string(), json!(e))).collect();
        backend.set_extensions(self.id, ExtensionMap::parse(&json!(map)).unwrap()).await.unwrap();
    }
}

pub fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A webhook event body.
pub fn event(kind: &str, call_id: &str, extension: &str, at: i64) -> serde_json::Value {
    let mut e = json!({
        "event": kind, "call_id": call_id, "direction": "inbound",
        "external_number": "+18305703077", "extension": extension, "occurred_at": at,
    });
    match kind {
        "ended" => {
            e["duration"] = json!(42);
            e["outcome"] = json!("answered");
        }
        "recording_ready" => e["recording_url"] = json!(format!("https://pbx.test/{call_id}.mp3")),
        _ => {}
    }
    e
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Posts a body to a PBX endpoint, signed now with `secret`.
pub async fn post_signed(base: &str, path: &str, secret: &str, body: &str) -> reqwest::Response {
    let ts = now_s();
    let sig = callcard_calls::signature::sign(secret.as_bytes(), ts, body.as_bytes());
    client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("x-callcard-timestamp", ts.to_string())
        .header("x-callcard-signature", sig)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Posts one event for the account; panics unless it is acknowledged.
pub async fn deliver(base: &str, account: &Account, event: &serde_json::Value) -> serde_json::Value {
    let r = post_signed(base, &format!("/pbx/{}/events", account.id), &account.secret, &event.to_string()).await;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// Kommo's one-time token, with overridable claims.
pub fn one_time_token(account: &Account, user_id: u64, tweak: impl FnOnce(&mut serde_json::Value)) -> String {
    let now = now_s();
    let mut claims = json!({
        "iss": account.origin, "aud": "http://backend.test/backend",
        "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "nbf": now, "exp": now + 60,
        "account_id": account.id, "user_id": user_id,
    });
    tweak(&mut claims);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(INTEGRATION_SECRET.as_bytes()),
    )
    .unwrap()
}

/// Trades a fresh one-time token for a feed ticket.
pub async fn ticket(base: &str, account: &Account, user_id: u64) -> String {
    let r = client()
        .post(format!("{base}/widget/ticket"))
        .header("x-auth-token", one_time_token(account, user_id, |_| {}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let t: callcard_calls::feed::Ticket = serde_json::from_str(&body).unwrap();
    assert_eq!((t.account_id, t.user_id), (account.id, user_id));
    t.ticket
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(instance: &Instance, ticket: &str, since: Option<u64>) -> Ws {
    let mut url = format!("{}/widget/feed?ticket={ticket}", instance.ws_base);
    if let Some(since) = since {
        url.push_str(&format!("&since={since}"));
    }
    let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("feed WebSocket opens");
    ws
}

/// The next feed message other than a heartbeat, or None after `wait`.
pub async fn next(ws: &mut Ws, wait: Duration) -> Option<FeedMessage> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next()).await.ok()??.ok()?;
        match frame {
            Message::Text(text) => match serde_json::from_str::<FeedMessage>(&text).expect("a FeedMessage") {
                FeedMessage::Heartbeat { .. } => continue,
                other => return Some(other),
            },
            Message::Ping(p) => {
                let _ = ws.send(Message::Pong(p)).await;
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// The offset and call id of a feed event message.
pub fn event_of(message: Option<FeedMessage>) -> (u64, String) {
    match message {
        Some(FeedMessage::Event(e)) => (e.offset, e.call.call.call_id),
        other => panic!("expected a feed event, got {other:?}"),
    }
}

/// A short wait to prove that nothing arrives.
pub const QUIET: Duration = Duration::from_millis(700);
/// Long enough for anything that should arrive.
pub const SOON: Duration = Duration::from_secs(10);
