//! # callcard-demo
//!
//! The whole product on one address, as `cargo xtask demo` runs it and as the
//! end-to-end tests start it:
//!
//! | path | part |
//! | --- | --- |
//! | `/` | the Kommo sandbox: its REST API and the host page that loads the widget |
//! | `/upl/callcard/widget/` | the built widget package (`dist/widget/`) |
//! | `/backend/` | the callcard backend, on SQLite by default |
//! | `/pbx-simulator/` | a pretend PBX that signs and posts webhooks ([`pbx_simulator`]) |
//!
//! In production the backend and Kommo are different origins; here one origin
//! keeps the demo to one URL, while every part still talks to the others over
//! real HTTP with real signatures and tokens.

pub mod pbx_simulator;
pub mod recording;

use anyhow::{Context, Result};
use callcard_backend::{AccountSetup, Backend};
use callcard_calls::extensions::ExtensionMap;
use kommo_sandbox::{Sandbox, SandboxConfig};
use pbx_simulator::PbxSimulator;
use rand::RngCore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What to run and where.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Where to listen; port 0 picks a free one (the tests do).
    pub addr: SocketAddr,
    /// The host page (`www/`).
    pub www_dir: PathBuf,
    /// The unzipped widget package (`dist/widget/`).
    pub widget_dir: PathBuf,
    /// The backend's store; `sqlite://…` or `postgres://…`
    /// ([`default_database_url`] when none is given).
    pub database_url: String,
}

/// The demo's database when `DATABASE_URL` is not set: a file of its own per
/// address, so two demos on different addresses never share one (each
/// provisions the same sandbox account with its own secrets).
pub fn default_database_url(addr: SocketAddr) -> String {
    let name: String = addr.to_string().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("sqlite://callcard-demo-{name}.sqlite")
}

/// A running demo. Dropping it does not stop it; call [`Demo::shutdown`].
pub struct Demo {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`: the Kommo origin and the host page.
    pub base_url: String,
    /// `…/backend`: the backend base URL compiled into the widget.
    pub backend_url: String,
    /// The demo account's PBX webhook secret, for tests that play the PBX.
    pub webhook_secret: String,
    pub pbx: PbxSimulator,
    pub backend: Backend,
    pub sandbox: Sandbox,
    /// Every request that reached the Kommo side with a bearer token (an
    /// integration's request, as Kommo's budget counts them) or to
    /// `/oauth2/`, for the benchmarks.
    pub kommo_requests: KommoRequestLog,
    refuse_feed_socket: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Demo {
    /// Binds, starts every part, provisions the demo account into the
    /// backend, and serves until [`Demo::shutdown`].
    pub async fn start(config: DemoConfig) -> Result<Demo> {
        let listener = TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let backend_url = format!("{base_url}/backend");
        let integration_secret = random_secret();
        let webhook_secret = random_secret();

        let sandbox = Sandbox::new(
            SandboxConfig::for_origin(base_url.clone())
                .with_backend_base_url(backend_url.clone())
                .with_secret(integration_secret.clone())
                .with_www_dir(config.www_dir.clone())
                .with_widget_dir(config.widget_dir.clone())
                .with_seed(true)
                .with_redirect_uri(format!("{backend_url}/kommo/install")),
        );

        let account_id = sandbox.account_id();
        let backend = Backend::start(callcard_backend::Config {
            database_url: config.database_url.clone(),
            integration_secret: integration_secret.clone(),
            public_base_url: backend_url.clone(),
            // The published demo key: the demo's credentials are throwaway,
            // and a database must be opened with the key that sealed it, so a
            // random key per run would lock the demo out of its own file.
            secret_key: Some(callcard_backend::secrets::DEMO_SECRET_KEY.into()),
            // Every account's "Kommo" is the sandbox on this very origin.
            kommo_base_url: Some(base_url.clone()),
            client_id: sandbox.config().client_id.clone(),
            redirect_uri: sandbox.config().redirect_uri.clone(),
            ..callcard_backend::Config::default()
        })
        .await
        .context("starting the backend")?;
        backend
            .provision_account(AccountSetup {
                account_id,
                origin: base_url.clone(),
                webhook_secret: webhook_secret.clone(),
                extensions: None,
                // Click-to-call rings through the simulator on this origin.
                pbx_originate_url: Some(format!("{base_url}/pbx-simulator/originate")),
            })
            .await?;
        // What the account admin would have saved once in the widget settings.
        let extensions = ExtensionMap::parse(&sandbox.widget_settings()[callcard_calls::extensions::SETTING_KEY])
            .context("the sandbox's seeded users setting is not a valid extension map")?;
        backend.set_extensions(account_id, extensions.clone()).await?;

        // The PBX's own default group, rung when routing names nobody:
        // every extension the users had when the demo started.
        let mut default_group: Vec<String> = extensions.iter().map(|(_, e)| e.to_string()).collect();
        default_group.sort();
        let pbx = PbxSimulator::routing(
            format!("{backend_url}/pbx/{account_id}/events"),
            format!("{base_url}/pbx-simulator"),
            webhook_secret.clone(),
            pbx_simulator::Routing { route_url: format!("{backend_url}/pbx/{account_id}/route"), default_group },
        );
        let kommo_requests = KommoRequestLog::default();
        let refuse_feed_socket = Arc::new(AtomicBool::new(false));
        let app =
            sandbox.router().nest("/backend", backend.router()).nest("/pbx-simulator", pbx.router()).layer(
                axum::middleware::from_fn_with_state((kommo_requests.clone(), refuse_feed_socket.clone()), observe),
            );

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "demo server stopped");
            }
        });
        // The account's admin installs the integration: Kommo (the sandbox)
        // sends the backend an authorization code, which it trades for tokens.
        let admin = sandbox.store().users.iter().find(|u| u.is_admin).map_or(0, |u| u.id);
        let code = sandbox.authorization_code(admin);
        backend.install_account(account_id, &code, &base_url).await.context("installing the integration")?;
        Ok(Demo {
            addr,
            base_url,
            backend_url,
            webhook_secret,
            pbx,
            backend,
            sandbox,
            kommo_requests,
            refuse_feed_socket,
            server,
            stop,
        })
    }

    /// While `refuse` holds, `GET /backend/widget/feed` (the WebSocket)
    /// answers 503, as behind a proxy that blocks WebSockets: the widget
    /// falls back to polling. For the benchmarks of the polling path.
    pub fn refuse_feed_socket(&self, refuse: bool) {
        self.refuse_feed_socket.store(refuse, Ordering::SeqCst);
    }

    /// Stops accepting connections, drains the open ones and stops the backend.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(());
        self.backend.shutdown().await;
        let _ = self.server.await;
        Ok(())
    }
}

/// One request an integration made to the Kommo side (bearer token).
#[derive(Debug, Clone)]
pub struct KommoRequest {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Unix milliseconds when the answer was ready.
    pub at_ms: i64,
}

/// The integration requests the Kommo side received, oldest first.
#[derive(Debug, Clone, Default)]
pub struct KommoRequestLog(Arc<Mutex<Vec<KommoRequest>>>);

impl KommoRequestLog {
    pub fn snapshot(&self) -> Vec<KommoRequest> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

async fn observe(
    axum::extract::State((log, refuse_feed_socket)): axum::extract::State<(KommoRequestLog, Arc<AtomicBool>)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path().to_string();
    if path == "/backend/widget/feed" && refuse_feed_socket.load(Ordering::SeqCst) {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "WebSockets are blocked (bench switch)").into_response();
    }
    let bearer = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
    let method = request.method().to_string();
    let response = next.run(request).await;
    if (bearer && !path.starts_with("/backend/")) || path.starts_with("/oauth2/") {
        let entry = KommoRequest { method, path, status: response.status().as_u16(), at_ms: pbx_simulator::now_ms() };
        log.0.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
    }
    response
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demos_on_different_addresses_get_different_databases() {
        let url = |addr: &str| default_database_url(addr.parse().unwrap());
        assert_ne!(url("127.0.0.1:8080"), url("127.0.0.1:8081"));
        assert_ne!(url("127.0.0.1:8080"), url("0.0.0.0:8080"));
        assert_eq!(url("127.0.0.1:8080"), url("127.0.0.1:8080"), "a demo restarted on its address finds its data");
        assert_eq!(url("127.0.0.1:8080"), "sqlite://callcard-demo-127-0-0-1-8080.sqlite");
    }
}
