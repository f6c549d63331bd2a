//! The separate processes: the release `callcard-backend`, the bare axum
//! server, and the `feed-load` load generator. Each is killed on drop.

use anyhow::{bail, Context, Result};
use callcard_bench::wire::HttpReport;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStdout;

/// The bench account provisioned into every backend process.
pub const ACCOUNT: u64 = 77_000_001;
pub const ORIGIN: &str = "https://bench.kommo.test";
pub const WEBHOOK_SECRET: &str = "bench-webhook-secret";
pub const INTEGRATION_SECRET: &str = "bench-integration-secret";
pub const AUDIENCE: &str = "http://bench.invalid/backend";
/// The PostgreSQL the benchmarks use; each run works in a fresh schema.
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Runs one SQL statement with `psql` against [`POSTGRES`].
pub fn psql(sql: &str) -> Result<()> {
    let out = std::process::Command::new("psql")
        .args([POSTGRES, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .context("running psql")?;
    anyhow::ensure!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// The server processes of intake's PostgreSQL writers (their connections
/// name themselves `callcard-intake`).
pub fn intake_server_pids() -> Result<Vec<u32>> {
    let out = std::process::Command::new("psql")
        .args([POSTGRES, "-At", "-c", "SELECT pid FROM pg_stat_activity WHERE application_name = 'callcard-intake'"])
        .output()
        .context("running psql")?;
    anyhow::ensure!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Where the release binaries are: next to this one (or `CALLCARD_BENCH_BIN_DIR`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CALLCARD_BENCH_BIN_DIR") {
        return dir.into();
    }
    std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_else(|| ".".into())
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A `callcard-backend` process.
pub struct BackendProc {
    pub child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl BackendProc {
    /// Starts the release backend on a free port with the bench account,
    /// whose users answer `extensions` (user id, extension), and waits for
    /// `/healthz`. The map is fixed in the configuration file, as an
    /// operator would: the widget's `PUT /widget/settings` needs Kommo to
    /// confirm an admin, and the bench runs without a Kommo installation.
    pub async fn start(
        database_url: &str,
        max_db_connections: u32,
        extensions: impl Iterator<Item = (u64, String)>,
    ) -> Result<BackendProc> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("backend.toml");
        let mut toml = format!(
            "[[accounts]]\naccount_id = {ACCOUNT}\norigin = \"{ORIGIN}\"\nwebhook_secret = \"{WEBHOOK_SECRET}\"\n\n[accounts.extensions]\n"
        );
        for (user, extension) in extensions {
            toml.push_str(&format!("\"{user}\" = \"{extension}\"\n"));
        }
        std::fs::write(&config, toml)?;
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let database_url = database_url.replace("{dir}", &dir.path().display().to_string());
        let child = Command::new(bin_dir().join("callcard-backend"))
            .arg(&config)
            .env("CALLCARD_LISTEN", addr.to_string())
            .env("CALLCARD_DATABASE_URL", &database_url)
            .env("CALLCARD_INTEGRATION_SECRET", INTEGRATION_SECRET)
            // The master key for credentials at rest (required outside demo mode).
            .env("CALLCARD_SECRET_KEY", "42".repeat(32))
            .env("CALLCARD_PUBLIC_BASE_URL", AUDIENCE)
            .env("CALLCARD_TICKET_TTL_SECONDS", "3600")
            .env("CALLCARD_MAX_DB_CONNECTIONS", max_db_connections.to_string())
            // The capacity benchmark holds tens of thousands of feeds: lift
            // the connection cap (10,000 by default) as an operator sizing
            // an instance for it would, or the clients past it (and the
            // bench's own /metrics reads) wait in the backlog.
            .env("CALLCARD_MAX_CONNECTIONS", "1000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the release callcard-backend (built by `cargo xtask bench`)")?;
        let proc = BackendProc { child, addr, _dir: dir };
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(r) = client.get(format!("http://{addr}/healthz")).send().await {
                if r.status().is_success() {
                    return Ok(proc);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("callcard-backend did not become healthy on {addr} within 30 s")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for BackendProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-time token as Kommo mints it: HS256 with the integration secret.
/// The bench mints them itself (the sandbox does the same at
/// `/sandbox/one-time-token`); the backend still verifies every one fully.
pub fn one_time_token(user_id: u64) -> Result<String> {
    let now = callcard_bench::wire::now_us() / 1_000_000;
    let claims = serde_json::json!({"iss": ORIGIN, "aud": AUDIENCE, "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now, "nbf": now, "exp": now + 600, "account_id": ACCOUNT, "user_id": user_id});
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(INTEGRATION_SECRET.as_bytes()),
    )?)
}

/// Posts a signed event to a backend, failing unless it is acknowledged.
pub async fn post_event(client: &reqwest::Client, url: &str, body: &serde_json::Value) -> Result<()> {
    let r = callcard_bench::wire::signed_request(client, url, WEBHOOK_SECRET, body).send().await?;
    if !r.status().is_success() {
        bail!("webhook refused: {} {}", r.status(), r.text().await.unwrap_or_default());
    }
    Ok(())
}

/// `callcard-bench bare-server`: the same process layout as the backend,
/// with a handler that reads the body and answers 200.
pub struct BareProc {
    child: tokio::process::Child,
    pub addr: SocketAddr,
}

impl BareProc {
    pub async fn start() -> Result<BareProc> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("bare-server")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("bare server did not start")??
            .context("bare server exited")?;
        let addr = line.strip_prefix("listening ").context("bare server said something else")?.parse()?;
        Ok(BareProc { child, addr })
    }
}

impl Drop for BareProc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Serves the bare handler (run in the child process).
pub async fn serve_bare() -> Result<()> {
    use axum::routing::post;
    async fn handler(body: axum::body::Bytes) -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({"ok": true, "len": body.len()}))
    }
    let app = axum::Router::new().route("/pbx/{account}/events", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Runs `feed-load http` against `url` and reads its report.
pub async fn http_load(url: &str, concurrency: usize, secs: u64) -> Result<HttpReport> {
    http_load_to(url, &["101".to_string()], concurrency, secs).await
}

/// [`http_load`] with the workers' webhooks spread over `extensions`
/// (worker `w` rings the `w`-th, round robin).
pub async fn http_load_to(url: &str, extensions: &[String], concurrency: usize, secs: u64) -> Result<HttpReport> {
    let out = tokio::process::Command::new(bin_dir().join("feed-load"))
        .args(["http", "--url", url, "--secret", WEBHOOK_SECRET, "--extensions", &extensions.join(",")])
        .args(["--concurrency", &concurrency.to_string(), "--secs", &secs.to_string(), "--warmup-secs", "1"])
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(secs + 30), out).await.context("feed-load http hung")??;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().context("feed-load http printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("feed-load http said {line}"))
}

/// A running `feed-load ws`.
pub struct WsLoad {
    pub child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl WsLoad {
    pub fn start(url: &str, tickets: &Path, sources: &[String], connect_secs: u64, hold_secs: u64) -> Result<WsLoad> {
        Self::start_failing_over(url, None, "cap", tickets, sources, connect_secs, hold_secs)
    }

    /// [`start`](Self::start) for events timed under `prefix`; a socket
    /// closed under it reconnects to `fallback` (another instance's feed
    /// URL), resuming where it was.
    pub fn start_failing_over(
        url: &str,
        fallback: Option<&str>,
        prefix: &str,
        tickets: &Path,
        sources: &[String],
        connect_secs: u64,
        hold_secs: u64,
    ) -> Result<WsLoad> {
        let mut command = tokio::process::Command::new(bin_dir().join("feed-load"));
        command.args(["ws", "--url", url, "--tickets", &tickets.display().to_string(), "--prefix", prefix]);
        if let Some(fallback) = fallback {
            command.args(["--fallback", fallback]);
        }
        let mut child = command
            .args(["--sources", &sources.join(","), "--concurrency", "128"])
            .args(["--connect-secs", &connect_secs.to_string(), "--hold-secs", &hold_secs.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        Ok(WsLoad { child, stdin, lines })
    }

    pub async fn next_report(&mut self, within: Duration) -> Result<callcard_bench::wire::WsReport> {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .context("feed-load ws did not report in time")??
            .context("feed-load ws exited")?;
        serde_json::from_str(&line).with_context(|| format!("feed-load ws said {line}"))
    }

    pub async fn stop(&mut self) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        if let Some(mut stdin) = self.stdin.take() {
            stdin.write_all(b"stop\n").await?;
            stdin.flush().await?;
        }
        Ok(())
    }
}
