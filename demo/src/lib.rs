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
    /// The backend's store; `sqlite://…` or `postgres://…`.
    pub database_url: String,
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
                .with_seed(true),
        );

        let account_id = sandbox.account_id();
        let backend = Backend::start(callcard_backend::Config {
            database_url: config.database_url.clone(),
            integration_secret: integration_secret.clone(),
            public_base_url: backend_url.clone(),
            ..callcard_backend::Config::default()
        })
        .await
        .context("starting the backend")?;
        backend
            .provision_account(AccountSetup {
                account_id,
                origin: base_url.clone(),
                webhook_secret: webhook_secret.clone(),
            })
            .await?;
        // What the account admin would have saved once in the widget settings.
        let extensions = ExtensionMap::parse(&sandbox.widget_settings()["users"])
            .context("the sandbox's seeded users setting is not a valid extension map")?;
        backend.set_extensions(account_id, extensions).await?;

        let pbx = PbxSimulator::new(
            format!("{backend_url}/pbx/{account_id}/events"),
            format!("{base_url}/pbx-simulator"),
            webhook_secret.clone(),
        );
        let app = sandbox.router().nest("/backend", backend.router()).nest("/pbx-simulator", pbx.router());

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
        Ok(Demo { addr, base_url, backend_url, webhook_secret, pbx, backend, sandbox, server, stop })
    }

    /// Stops accepting connections, drains the open ones and stops the backend.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(());
        self.backend.shutdown().await;
        let _ = self.server.await;
        Ok(())
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
