//! `kommo-sandbox`: the local Kommo on its own, for widget authors and
//! manual testing. `cargo xtask demo` runs it inside `callcard-demo` instead.
//!
//! ```text
//! kommo-sandbox [--addr 127.0.0.1:8080] [--origin http://127.0.0.1:8080]
//!               [--backend-url <url>] [--secret <client secret>]
//!               [--www www] [--widget dist/widget] [--no-seed]
//!               [--snapshot sandbox.json] [--no-rate-limit]
//! ```
//! Every option also reads an environment variable: `SANDBOX_ADDR`,
//! `SANDBOX_ORIGIN`, `CALLCARD_BACKEND_URL`, `CALLCARD_CLIENT_SECRET`,
//! `SANDBOX_WWW`, `SANDBOX_WIDGET`, `SANDBOX_SNAPSHOT`.

use kommo_sandbox::{Sandbox, SandboxConfig};
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut flag = |name: &str| -> bool {
        let before = args.len();
        args.retain(|a| a != name);
        args.len() != before
    };
    let no_seed = flag("--no-seed");
    let no_limit = flag("--no-rate-limit");
    if flag("--help") || flag("-h") {
        println!("see the module documentation of src/main.rs for options");
        return Ok(());
    }
    let opt = |name: &str, env: &str| -> Option<String> {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).or_else(|| std::env::var(env).ok())
    };
    let addr = opt("--addr", "SANDBOX_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into());
    let origin = opt("--origin", "SANDBOX_ORIGIN").unwrap_or_else(|| format!("http://{addr}"));
    let mut config = SandboxConfig::for_origin(origin);
    if let Some(u) = opt("--backend-url", "CALLCARD_BACKEND_URL") {
        config = config.with_backend_base_url(u);
    }
    if let Some(s) = opt("--secret", "CALLCARD_CLIENT_SECRET") {
        config = config.with_secret(s);
    }
    if let Some(w) = opt("--www", "SANDBOX_WWW") {
        config = config.with_www_dir(w);
    }
    if let Some(w) = opt("--widget", "SANDBOX_WIDGET") {
        config = config.with_widget_dir(w);
    }
    if let Some(s) = opt("--snapshot", "SANDBOX_SNAPSHOT") {
        config = config.with_snapshot(s);
    }
    config.seed = !no_seed;
    if no_limit {
        config.rate_limit_per_second = None;
    }

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let sandbox = Sandbox::new(config);
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!("kommo-sandbox on http://{addr} (account {})", sandbox.account_id());
        if sandbox.config().snapshot.is_some() {
            let sb = sandbox.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let sb = sb.clone();
                    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || sb.save_snapshot()).await {
                        eprintln!("snapshot failed: {e:#}");
                    }
                }
            });
        }
        let app = sandbox.router();
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        sandbox.save_snapshot()?;
        anyhow::Ok(())
    })
}
