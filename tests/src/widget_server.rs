//! The real server the widget's browser tests (`wasm-pack test` in
//! `widget/`) talk to: the callcard backend, a switchable network gate in
//! front of it, and a few test-only routes.
//!
//! The wasm tests run on a page served by `wasm-bindgen-test-runner` on an
//! origin of its own (a random port), so nothing can be provisioned before
//! the page exists. Instead every test asks for a fresh account for its own
//! `location.origin` (`POST /test/accounts`): the backend admits that origin
//! by CORS from then on, and the account's feed history starts empty, so
//! tests never see each other's calls.
//!
//! ```text
//!  wasm test page ──▶ gate (127.0.0.1:G) ──▶ server (127.0.0.1:S)  /backend/…  the real backend
//!  (runner origin)     open | no_websocket | down                   /test/…     test-only routes (CORS: any)
//! ```
//!
//! Routes under `/test` (JSON, any origin):
//!
//! - `POST /test/accounts {"origin"}` → `{"account_id", "backend", "direct"}`:
//!   provisions a fresh account whose Kommo origin is `origin`, with the demo
//!   users' extensions (101 → 8320148, 102 → 8375357). `backend` is the
//!   backend base URL *through the gate* (what the widget uses:
//!   `http://127.0.0.1:G/t<account_id>/backend`, the gate drops the
//!   `/t<account_id>` and logs the request under that account), `direct` the
//!   same without the gate.
//! - `POST /test/accounts/{id}/token {"user_id"}` → `{"token"}`: a one-time
//!   token as Kommo's `$authorizedAjax` would send it (HS256, `iss` = the
//!   account's origin, `aud` = the backend's public URL).
//! - `POST /test/accounts/{id}/events` `CallEvent` → the backend's answer:
//!   plays the PBX (signs the event with the account's webhook secret).
//! - `GET /test/gate?account=ID` → `{"mode", "attempts": [{"at_ms", "account", "target", "websocket", "admitted"}]}`
//!   (only that account's requests when `account` is given).
//! - `POST /test/gate {"mode"?, "drop"?, "clear"?}`: `mode` is `open`,
//!   `no_websocket` (a proxy that answers WebSocket upgrades with 403, as
//!   corporate proxies do, while plain HTTP passes) or `down` (every new
//!   connection is closed at once); `drop: true` cuts every connection
//!   through the gate (a network blip); `clear: true` empties the log.
//!
//! The gate is a TCP proxy that reads each connection's request head to log
//! it and decide; everything after it is copied unchanged both ways. Plain
//! HTTP requests get `Connection: close`, so each one arrives on its own
//! connection and is seen (and refused or cut) on its own.
//! The backend keeps only [`FEED_HISTORY_PER_USER`] events per user, so a
//! widget away for longer than that gets a real gap.

use anyhow::{Context, Result};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use callcard_backend::{AccountSetup, Backend, Config};
use callcard_calls::event::CallEvent;
use callcard_calls::extensions::ExtensionMap;
use callcard_demo::pbx_simulator::PbxSimulator;
use kommo_sandbox::one_time_token::{sign, OneTimeClaims};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Feed events the backend keeps per user: small, so a gap is easy to cause.
pub const FEED_HISTORY_PER_USER: u32 = 5;
/// The first account id handed out; each test gets the next.
const FIRST_ACCOUNT: u64 = 7_000_001;
/// The largest request head the gate reads before deciding.
const HEAD_LIMIT: usize = 16 * 1024;

/// What the gate does with new connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMode {
    /// Everything passes.
    Open,
    /// WebSocket upgrades get `403`; plain HTTP passes.
    NoWebsocket,
    /// Every new connection is closed before it is answered.
    Down,
}

/// One connection the gate saw (its first request).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Attempt {
    /// Milliseconds since the server started.
    pub at_ms: u64,
    /// The account of the `/t<account_id>` prefix, if any.
    pub account: Option<u64>,
    /// The request target, e.g. `/backend/widget/feed?ticket=…&since=3`.
    pub target: String,
    pub websocket: bool,
    /// Whether it was passed on to the server.
    pub admitted: bool,
}

struct Gate {
    upstream: SocketAddr,
    started: Instant,
    mode: Mutex<GateMode>,
    log: Mutex<Vec<Attempt>>,
    /// Bumped to cut every open connection.
    cut: watch::Sender<u64>,
}

struct Account {
    origin: String,
    pbx: PbxSimulator,
}

struct Shared {
    backend: Backend,
    backend_url: String,
    gate_url: String,
    secret: String,
    gate: Arc<Gate>,
    accounts: Mutex<HashMap<u64, Arc<Account>>>,
    next_account: Mutex<u64>,
}

/// A running test server. Dropping it does not stop it; see [`WidgetTestServer::shutdown`].
pub struct WidgetTestServer {
    /// `http://127.0.0.1:S`: the `/test` routes (and the backend, directly).
    pub url: String,
    /// `http://127.0.0.1:G`: the gate in front of it.
    pub gate_url: String,
    shared: Arc<Shared>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    gate_task: tokio::task::JoinHandle<()>,
    _data: tempfile::TempDir,
}

fn random_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

impl WidgetTestServer {
    /// Starts on `addr` (port 0: any free port), the gate on another free port.
    pub async fn start(addr: SocketAddr) -> Result<WidgetTestServer> {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr()?;
        let gate_listener = TcpListener::bind((addr.ip(), 0)).await?;
        let gate_addr = gate_listener.local_addr()?;
        let url = format!("http://{addr}");
        let gate_url = format!("http://{gate_addr}");
        let backend_url = format!("{url}/backend");
        let secret = random_secret();
        let data = tempfile::tempdir()?;
        let backend = Backend::start(Config {
            database_url: format!("sqlite://{}", data.path().join("widget-tests.sqlite").display()),
            integration_secret: secret.clone(),
            public_base_url: backend_url.clone(),
            heartbeat_interval: Duration::from_secs(5),
            feed_history_per_user: FEED_HISTORY_PER_USER,
            secret_key: Some(callcard_backend::secrets::Secrets::random_key_text()),
            // No Kommo here: anything the backend asks Kommo (caller ID)
            // gets a quick 404 from this server instead of a DNS timeout.
            kommo_base_url: Some(url.clone()),
            ..Config::default()
        })
        .await
        .context("starting the backend")?;

        let gate = Arc::new(Gate {
            upstream: addr,
            started: Instant::now(),
            mode: Mutex::new(GateMode::Open),
            log: Mutex::new(Vec::new()),
            cut: watch::channel(0).0,
        });
        let shared = Arc::new(Shared {
            backend: backend.clone(),
            backend_url,
            gate_url: gate_url.clone(),
            secret,
            gate: gate.clone(),
            accounts: Mutex::new(HashMap::new()),
            next_account: Mutex::new(FIRST_ACCOUNT),
        });
        let test_routes = Router::new()
            .route("/test/accounts", post(create_account))
            .route("/test/accounts/{id}/token", post(mint_token))
            .route("/test/accounts/{id}/events", post(pbx_event))
            .route("/test/gate", get(gate_state).post(set_gate))
            .layer(tower_http::cors::CorsLayer::very_permissive())
            .with_state(shared.clone());
        let app = test_routes.nest("/backend", backend.router());

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                });
            if let Err(e) = serve.await {
                eprintln!("widget test server stopped: {e}");
            }
        });
        let gate_task = tokio::spawn(run_gate(gate_listener, gate));
        Ok(WidgetTestServer { url, gate_url, shared, stop, server, gate_task, _data: data })
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        self.gate_task.abort();
        self.shared.gate.cut.send_modify(|g| *g += 1);
        self.shared.backend.close_feeds().await;
        let _ = self.server.await;
        self.shared.backend.shutdown().await;
    }
}

fn problem(status: StatusCode, detail: impl std::fmt::Display) -> Response {
    (status, Json(json!({"title": status.canonical_reason(), "status": status.as_u16(), "detail": detail.to_string()})))
        .into_response()
}

#[derive(Deserialize)]
struct NewAccount {
    origin: String,
}

async fn create_account(State(s): State<Arc<Shared>>, Json(body): Json<NewAccount>) -> Response {
    let account_id = {
        let mut next = s.next_account.lock().expect("account counter");
        *next += 1;
        *next - 1
    };
    let webhook_secret = random_secret();
    let origin = body.origin.trim_end_matches('/').to_owned();
    let setup = AccountSetup {
        account_id,
        origin: origin.clone(),
        webhook_secret: webhook_secret.clone(),
        extensions: None,
        pbx_originate_url: None,
    };
    if let Err(e) = s.backend.provision_account(setup).await {
        return problem(StatusCode::BAD_REQUEST, format!("{e:#}"));
    }
    let users = json!({"8320148": "101", "8375357": "102"});
    let map = ExtensionMap::parse(&users).expect("the test users' extensions are valid");
    if let Err(e) = s.backend.set_extensions(account_id, map).await {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
    }
    let pbx = PbxSimulator::new(
        format!("{}/pbx/{account_id}/events", s.backend_url),
        format!("{}/pbx-simulator", s.gate_url),
        webhook_secret,
    );
    s.accounts.lock().expect("accounts").insert(account_id, Arc::new(Account { origin, pbx }));
    Json(json!({
        "account_id": account_id,
        "backend": format!("{}/t{account_id}/backend", s.gate_url),
        "direct": s.backend_url,
    }))
    .into_response()
}

fn account(s: &Shared, id: u64) -> Option<Arc<Account>> {
    s.accounts.lock().expect("accounts").get(&id).cloned()
}

async fn mint_token(State(s): State<Arc<Shared>>, Path(id): Path<u64>, Json(body): Json<Value>) -> Response {
    let Some(account) = account(&s, id) else { return problem(StatusCode::NOT_FOUND, "no such account") };
    let Some(user_id) = body["user_id"].as_u64() else { return problem(StatusCode::BAD_REQUEST, "user_id") };
    let iat = callcard_demo::pbx_simulator::now_ms() / 1000;
    let claims = OneTimeClaims {
        iss: account.origin.clone(),
        aud: s.backend_url.clone(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat,
        nbf: iat,
        exp: iat + 300,
        account_id: id,
        user_id,
    };
    Json(json!({"token": sign(&claims, &s.secret)})).into_response()
}

async fn pbx_event(State(s): State<Arc<Shared>>, Path(id): Path<u64>, Json(event): Json<CallEvent>) -> Response {
    let Some(account) = account(&s, id) else { return problem(StatusCode::NOT_FOUND, "no such account") };
    match account.pbx.deliver(&event).await {
        Ok((status, body)) => {
            let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, body).into_response()
        }
        Err(e) => problem(StatusCode::BAD_GATEWAY, format!("{e:#}")),
    }
}

fn gate_json(gate: &Gate, account: Option<u64>) -> Json<Value> {
    let mode = *gate.mode.lock().expect("gate mode");
    let attempts: Vec<Attempt> = gate
        .log
        .lock()
        .expect("gate log")
        .iter()
        .filter(|a| account.is_none() || a.account == account)
        .cloned()
        .collect();
    Json(json!({"mode": mode, "attempts": attempts}))
}

async fn gate_state(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    gate_json(&s.gate, q.get("account").and_then(|a| a.parse().ok()))
}

#[derive(Deserialize)]
struct GateChange {
    mode: Option<GateMode>,
    #[serde(default)]
    drop: bool,
    #[serde(default)]
    clear: bool,
}

async fn set_gate(State(s): State<Arc<Shared>>, Json(change): Json<GateChange>) -> Json<Value> {
    if let Some(mode) = change.mode {
        *s.gate.mode.lock().expect("gate mode") = mode;
    }
    if change.clear {
        s.gate.log.lock().expect("gate log").clear();
    }
    if change.drop {
        s.gate.cut.send_modify(|g| *g += 1);
    }
    gate_json(&s.gate, None)
}

async fn run_gate(listener: TcpListener, gate: Arc<Gate>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else { continue };
        tokio::spawn(pass(socket, gate.clone()));
    }
}

/// A request head as the gate sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    /// The request target without the `/t<account_id>` prefix.
    pub target: String,
    pub account: Option<u64>,
    pub websocket: bool,
    /// The head to send on: prefix removed, and `Connection: close` for
    /// plain HTTP (one request per connection).
    pub forward: Vec<u8>,
}

/// Reads a complete request head (up to and including the blank line).
pub fn read_head(head: &[u8]) -> Head {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.splitn(3, ' ');
    let (method, raw_target, version) =
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or("HTTP/1.1"));
    let (account, target) = match raw_target.strip_prefix("/t").and_then(|rest| rest.split_once('/')) {
        Some((id, rest)) if id.parse::<u64>().is_ok() => (id.parse().ok(), format!("/{rest}")),
        _ => (None, raw_target.to_owned()),
    };
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let websocket = headers.iter().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("upgrade:") && l.contains("websocket")
    });
    let mut forward = format!("{method} {target} {version}\r\n");
    for h in &headers {
        if !websocket && h.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        forward.push_str(h);
        forward.push_str("\r\n");
    }
    if !websocket {
        forward.push_str("Connection: close\r\n");
    }
    forward.push_str("\r\n");
    Head { target, account, websocket, forward: forward.into_bytes() }
}

async fn pass(mut client: TcpStream, gate: Arc<Gate>) {
    let mut cut = gate.cut.subscribe();
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let complete = loop {
        match tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break false,
            Ok(Ok(n)) => {
                head.extend_from_slice(&buf[..n]);
                if head.windows(4).any(|w| w == b"\r\n\r\n") {
                    break true;
                }
                if head.len() > HEAD_LIMIT {
                    break false;
                }
            }
        }
    };
    if !complete {
        return;
    }
    // The body (if any) may have come with the head: keep it for upstream.
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").map_or(head.len(), |p| p + 4);
    let rest = head.split_off(end);
    let Head { target, account, websocket, forward } = read_head(&head);
    let mode = *gate.mode.lock().expect("gate mode");
    let admitted = match mode {
        GateMode::Open => true,
        GateMode::NoWebsocket => !websocket,
        GateMode::Down => false,
    };
    gate.log.lock().expect("gate log").push(Attempt {
        at_ms: gate.started.elapsed().as_millis() as u64,
        account,
        target,
        websocket,
        admitted,
    });
    if !admitted {
        if mode == GateMode::NoWebsocket {
            let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        }
        let _ = client.shutdown().await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(gate.upstream).await else { return };
    if upstream.write_all(&forward).await.is_err() || upstream.write_all(&rest).await.is_err() {
        return;
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = cut.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_and_rewritten() {
        let head = b"GET /t7/backend/widget/feed?ticket=t&since=3 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
        let h = read_head(head);
        assert_eq!(
            (h.target.as_str(), h.account, h.websocket),
            ("/backend/widget/feed?ticket=t&since=3", Some(7), true)
        );
        assert_eq!(
            String::from_utf8(h.forward).unwrap(),
            "GET /backend/widget/feed?ticket=t&since=3 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        );
        let head = b"POST /backend/widget/ticket HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n";
        let h = read_head(head);
        assert_eq!((h.target.as_str(), h.account, h.websocket), ("/backend/widget/ticket", None, false));
        assert_eq!(
            String::from_utf8(h.forward).unwrap(),
            "POST /backend/widget/ticket HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn gate_modes_are_snake_case() {
        assert_eq!(serde_json::to_value(GateMode::NoWebsocket).unwrap(), "no_websocket");
    }
}
