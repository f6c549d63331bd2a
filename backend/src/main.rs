//! `callcard-backend`: serves the backend's routes at the root of
//! `CALLCARD_LISTEN` (default 127.0.0.1:8090).
//!
//! Usage: `callcard-backend [config.toml]` (or `CALLCARD_CONFIG`), with
//! `CALLCARD_*` environment variables overriding the file; see
//! `callcard_backend::config`. Logs go to stderr, filtered by `RUST_LOG`
//! (default `info`); `CALLCARD_LOG_FORMAT=json` for JSON lines.

use anyhow::Context;
use callcard_backend::{Backend, Config};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if std::env::var("CALLCARD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let path = std::env::args_os().nth(1).map(PathBuf::from);
    let config = Config::load(path.as_deref())?;
    tracing::info!(?config, "configuration loaded");
    let listen = config.listen;
    let backend = Backend::start(config).await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    tracing::info!(%listen, "listening");
    let closing = backend.clone();
    axum::serve(listener, backend.router())
        .with_graceful_shutdown(async move {
            shutdown_requested().await;
            tracing::info!("shutting down: closing feeds, draining requests");
            closing.close_feeds().await;
        })
        .await?;
    backend.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what container orchestrators send).
async fn shutdown_requested() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
