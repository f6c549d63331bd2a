//! `callcard-backend`: serves the backend's routes at the root of
//! `CALLCARD_LISTEN` (default 127.0.0.1:8090).
//!
//! Usage: `callcard-backend [config.toml] [--<setting> <value>]…` (the file
//! also from `CALLCARD_CONFIG`): `CALLCARD_*` environment variables override
//! the file and flags override both; the settings are in `backend/README.md`
//! and `callcard_backend::Config`. Logs go to stderr, filtered by `RUST_LOG`
//! (default `info`); `CALLCARD_LOG_FORMAT=json` for JSON lines.

use anyhow::Context;
use callcard_backend::{Backend, Config, LimitedListener, Timeouts};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

/// mimalloc, not glibc's malloc: a webhook allocates and frees many small
/// buffers across threads, and glibc's allocator took about a fifth of the
/// backend's CPU under the ingest benchmark (bench/RESULTS.md, section 3).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if std::env::var("CALLCARD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let (path, flags) = command_line(std::env::args().skip(1))?;
    let config = Config::load(path.as_deref(), &flags)?;
    tracing::info!(?config, "configuration loaded");
    let (listen, max_connections) = (config.listen, config.max_connections);
    let timeouts = Timeouts { header_read: config.header_read_timeout, idle: config.idle_timeout };
    let backend = Backend::start(config).await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let listener = LimitedListener::new(listener, max_connections);
    tracing::info!(%listen, max_connections, ?timeouts, "listening");
    let closing = backend.clone();
    callcard_backend::serve(listener, backend.router(), timeouts, async move {
        shutdown_requested().await;
        tracing::info!("shutting down: closing feeds, draining requests");
        closing.close_feeds().await;
    })
    .await;
    backend.shutdown().await;
    Ok(())
}

/// The flags, `--key value` or `--key=value`, as `(key, value)`.
type Flags = Vec<(String, String)>;

/// The optional file (the one argument that is not a flag) and the flags.
fn command_line(args: impl Iterator<Item = String>) -> anyhow::Result<(Option<PathBuf>, Flags)> {
    let (mut path, mut flags) = (None, Vec::new());
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.strip_prefix("--") {
            Some(flag) => match flag.split_once('=') {
                Some((key, value)) => flags.push((key.to_string(), value.to_string())),
                None => {
                    let value = args.next().with_context(|| format!("--{flag} needs a value"))?;
                    flags.push((flag.to_string(), value));
                }
            },
            None if path.is_none() => path = Some(PathBuf::from(arg)),
            None => anyhow::bail!("one configuration file at most (got {arg:?} after the first)"),
        }
    }
    Ok((path, flags))
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
