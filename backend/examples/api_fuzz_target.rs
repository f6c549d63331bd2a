//! The backend as schemathesis tests it (`cargo xtask test`,
//! `xtask/schemathesis/`): a real backend on SQLite, served by the binary's
//! server ([`callcard_backend::serve`]) on a free port, with a Kommo sandbox
//! on another for everything the backend asks Kommo (rights, records,
//! OAuth). One account is provisioned, mapped and installed, as after a real
//! installation.
//!
//! Prints `CALLCARD_FUZZ_TARGET=` and a JSON object with what the schemathesis hooks need to
//! authenticate each operation as the product does (the backend's URL, the
//! account, its webhook and integration secrets, the origin, an admin user,
//! the operator token, the Kommo webhook path), then serves until stdin
//! closes.
//!
//! `cargo run -p callcard-backend --example api_fuzz_target`

use callcard_backend::{AccountSetup, Backend, Config, LimitedListener, Timeouts};
use callcard_calls::extensions::ExtensionMap;
use kommo_sandbox::{Sandbox, SandboxConfig};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const INTEGRATION_SECRET: &str = "schemathesis-integration-secret";
const WEBHOOK_SECRET: &str = "schemathesis-webhook-secret";
const OPS_TOKEN: &str = "schemathesis-operator-token";
const SECRET_KEY: &str = "7363686d6174686573697320736563726574206b657920666f7220746573747a";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs on stderr: stdout carries the one line for the hooks.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,sqlx=error".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let dir = tempfile::tempdir()?;
    let kommo_listener = TcpListener::bind("127.0.0.1:0").await?;
    let kommo_url = format!("http://{}", kommo_listener.local_addr()?);
    let backend_listener = TcpListener::bind("127.0.0.1:0").await?;
    let backend_url = format!("http://{}", backend_listener.local_addr()?);

    let sandbox = Sandbox::new(
        SandboxConfig::for_tests(kommo_url.clone())
            .with_backend_base_url(backend_url.clone())
            .with_secret(INTEGRATION_SECRET)
            .with_redirect_uri(format!("{backend_url}/kommo/install")),
    );
    // Schemathesis is not a Kommo integration spending its 7 rps.
    sandbox.set_rate_limit(None);
    let account_id = sandbox.account_id();
    let kommo_router = sandbox.router();
    tokio::spawn(async move { axum::serve(kommo_listener, kommo_router).await });

    let backend = Backend::start(Config {
        database_url: format!("sqlite://{}", dir.path().join("callcard.sqlite").display()),
        integration_secret: INTEGRATION_SECRET.into(),
        public_base_url: backend_url.clone(),
        secret_key: Some(SECRET_KEY.into()),
        kommo_base_url: Some(kommo_url.clone()),
        client_id: sandbox.config().client_id.clone(),
        redirect_uri: sandbox.config().redirect_uri.clone(),
        ops_token: Some(OPS_TOKEN.into()),
        webhook_base_url: Some(backend_url.clone()),
        ..Config::default()
    })
    .await?;
    backend
        .provision_account(AccountSetup {
            account_id,
            origin: kommo_url.clone(),
            webhook_secret: WEBHOOK_SECRET.into(),
            extensions: None,
            pbx_originate_url: None,
        })
        .await?;
    backend
        .set_extensions(
            account_id,
            ExtensionMap::parse(&sandbox.widget_settings()[callcard_calls::extensions::SETTING_KEY])?,
        )
        .await?;
    let (admin, extension) = sandbox
        .store()
        .users
        .iter()
        .find(|u| u.is_admin)
        .map(|u| (u.id, u.extension.clone()))
        .expect("the sandbox seeds an admin");
    let code = sandbox.authorization_code(admin);
    backend.install_account(account_id, &code, &kommo_url).await?;
    // The caller index's Kommo webhook path (with its secret) is chosen at
    // installation.
    let hook = backend.store().phonebook_sync(account_id).await?.map(|s| s.hook_destination);

    let listener = LimitedListener::new(backend_listener, 1000);
    let timeouts = Timeouts { header_read: Duration::from_secs(10), idle: Duration::from_secs(60) };
    let closing = backend.clone();
    let served = tokio::spawn(callcard_backend::serve(listener, backend.router(), timeouts, async move {
        let mut rest = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut rest).await;
        closing.close_feeds().await;
    }));

    // Calls the admin's feed shows: one answered without a ringing event
    // (`ringing_at` null) and one that ended (a duration, an outcome), so the
    // answers schemathesis checks carry the fields that can be null.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    for event in [
        serde_json::json!({"event": "answered", "call_id": "fuzz-answered", "direction": "inbound",
            "external_number": "+18305703077", "extension": extension, "occurred_at": now_ms}),
        serde_json::json!({"event": "ended", "call_id": "fuzz-ended", "direction": "outbound",
            "external_number": "+18305703078", "extension": extension, "occurred_at": now_ms,
            "duration": 42, "outcome": "answered"}),
    ] {
        let body = event.to_string();
        let timestamp = now_ms / 1000;
        let answer = reqwest::Client::new()
            .post(format!("{backend_url}/pbx/{account_id}/events"))
            .header("content-type", "application/json")
            .header("x-callcard-timestamp", timestamp.to_string())
            .header(
                "x-callcard-signature",
                callcard_calls::signature::sign(WEBHOOK_SECRET.as_bytes(), timestamp, body.as_bytes()),
            )
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(answer.status().is_success(), "seeding a call: {}", answer.text().await?);
    }

    println!(
        "CALLCARD_FUZZ_TARGET={}",
        serde_json::json!({
            "backend_url": backend_url,
            "account_id": account_id,
            "origin": kommo_url,
            "webhook_secret": WEBHOOK_SECRET,
            "integration_secret": INTEGRATION_SECRET,
            "user_id": admin,
            "ops_token": OPS_TOKEN,
            "kommo_hook": hook,
        })
    );
    served.await?;
    backend.shutdown().await;
    Ok(())
}
