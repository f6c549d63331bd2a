//! A backend wired to a real Kommo sandbox, both served in-process on
//! ephemeral ports: the sandbox seeded with the demo data, the account
//! installed through the sandbox's OAuth, extensions 101 (Anna) and 102
//! (Bruno) mapped. Every integration request the sandbox receives (bearer
//! token) is logged, so tests can count what a feature costs in Kommo's
//! 7-requests-per-second budget.
#![allow(dead_code)]

use crate::common::{self, Account, Db, Instance};
use callcard_backend::Config;
use callcard_backend::StoredCall;
use kommo_sandbox::{Sandbox, SandboxConfig};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const ANNA: u64 = 8_320_148;
pub const BRUNO: u64 = 8_375_357;
const CLIENT_ID: &str = "callcard-test-client";

/// One integration request the sandbox received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The query string (`page=2&limit=250…`), empty when none.
    pub query: String,
}

/// The sandbox's request log.
#[derive(Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<Seen>>>);

impl RequestLog {
    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.all().iter().filter(|s| s.method == method && s.path == path).count()
    }
}

pub struct Env {
    pub db: Option<Db>,
    pub sandbox: Sandbox,
    pub kommo_url: String,
    pub requests: RequestLog,
    pub backend: Instance,
    pub account: Account,
    config: Config,
    server: tokio::task::JoinHandle<()>,
}

impl Env {
    /// The sandbox and a backend on `db`, with `tweak` applied to the
    /// backend's configuration.
    pub async fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> Env {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let kommo_url = format!("http://{}", listener.local_addr().unwrap());
        let mut sandbox_config = SandboxConfig::for_tests(&kommo_url)
            .with_secret(common::INTEGRATION_SECRET)
            .with_client_id(CLIENT_ID)
            .with_backend_base_url("http://backend.test/backend");
        sandbox_config.account_id = 1_000_000 + rand::random::<u64>() % 1_000_000_000;
        let sandbox = Sandbox::new(sandbox_config.clone());
        let requests = RequestLog::default();
        let log = requests.clone();
        let router = sandbox.router().layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let log = log.clone();
                async move {
                    let bearer = request.headers().contains_key(axum::http::header::AUTHORIZATION);
                    let seen = Seen {
                        method: request.method().to_string(),
                        path: request.uri().path().to_string(),
                        query: request.uri().query().unwrap_or("").to_string(),
                    };
                    if bearer && seen.path.starts_with("/api/") {
                        log.0.lock().unwrap().push(seen);
                    }
                    next.run(request).await
                }
            },
        ));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });

        let mut config = common::config(&db);
        config.kommo_base_url = Some(kommo_url.clone());
        config.client_id = CLIENT_ID.into();
        config.redirect_uri = sandbox_config.redirect_uri.clone();
        config.queue.backoff_base = Duration::from_millis(100);
        config.queue.backoff_cap = Duration::from_millis(500);
        config.queue.poll_interval = Duration::from_millis(100);
        config.kommo.backoff_base = Duration::from_millis(20);
        config.kommo.backoff_cap = Duration::from_millis(200);
        config.kommo.request_timeout = Duration::from_secs(3);
        tweak(&mut config);
        let backend = Instance::start(config.clone()).await;
        let account = Account {
            id: sandbox_config.account_id,
            origin: kommo_url.clone(),
            secret: format!("whsec-{}", sandbox_config.account_id),
        };
        account.provision(&backend.backend, &[(ANNA, "101"), (BRUNO, "102")]).await;
        let env = Env { db: Some(db), sandbox, kommo_url, requests, backend, account, config, server };
        env.install().await;
        env.requests.clear();
        env
    }

    /// Installs the integration as Anna (an admin) would: the sandbox's
    /// OAuth code, traded by the backend (again: a reinstallation).
    pub async fn install(&self) {
        let code: serde_json::Value = common::client()
            .post(format!("{}/sandbox/oauth/authorize", self.kommo_url))
            .json(&json!({"user_id": ANNA}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.backend
            .backend
            .install_account(self.account.id, code["code"].as_str().unwrap(), &self.kommo_url)
            .await
            .expect("the account installs");
    }

    /// Stops the backend and starts a new one on the same database (as a
    /// redeploy or a crash and restart would), with `tweak` applied.
    pub async fn restart(&mut self, tweak: impl FnOnce(&mut Config)) {
        let mut config = self.config.clone();
        tweak(&mut config);
        let fresh = Instance::start(config).await;
        let old = std::mem::replace(&mut self.backend, fresh);
        old.stop().await;
    }

    pub async fn stop(self) {
        self.backend.stop().await;
        self.server.abort();
        // The database goes with `self` (`Db` drops its schema).
    }

    /// Delivers a PBX event for `call_id` from `number` to extension `ext`.
    pub async fn pbx(&self, kind: &str, call_id: &str, number: &str, ext: &str) -> serde_json::Value {
        let mut e = common::event(kind, call_id, ext, common::now_ms());
        e["external_number"] = json!(number);
        common::deliver(&self.backend.base, &self.account, &e).await
    }

    pub async fn call(&self, call_id: &str) -> StoredCall {
        self.backend.backend.call(self.account.id, call_id).await.unwrap().expect("the call is stored")
    }

    /// Polls the stored call until `done` holds (10 s at most).
    pub async fn call_until(&self, call_id: &str, what: &str, done: impl Fn(&StoredCall) -> bool) -> StoredCall {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let call = self.call(call_id).await;
            if done(&call) {
                return call;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}: {call:#?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sets sandbox faults (`POST /sandbox/faults`).
    pub async fn faults(&self, faults: serde_json::Value) {
        let r = common::client().post(format!("{}/sandbox/faults", self.kommo_url)).json(&faults).send().await.unwrap();
        assert!(r.status().is_success());
    }
}

/// Sends an API request to the sandbox as the integration, in the
/// account's shared request budget (as the backend's own requests are).
pub async fn kommo_api(env: &Env, method: reqwest::Method, path: &str, body: Value) -> Value {
    let kommo = env.backend.backend.kommo();
    let token = kommo.tokens().access_token(env.account.id).await.unwrap();
    let wait = kommo.budget().reserve(env.account.id).await.unwrap();
    tokio::time::sleep(wait).await;
    let r = common::client()
        .request(method, format!("{}{path}", env.kommo_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}
