//! Configuration: built-in defaults, then an optional TOML file, then
//! `CALLCARD_*` environment variables, each overriding the one before.
//!
//! The defaults make `cargo xtask demo` work untouched: an SQLite file in the
//! working directory, the demo integration secret the sandbox signs one-time
//! tokens with, and the demo's backend URL as the token audience.
//!
//! Secrets (`integration_secret`, accounts' webhook secrets, passwords inside
//! `database_url`) never reach a log: [`Config`] and [`AccountSetup`]
//! implement `Debug` by hand and redact them.
//!
//! ```toml
//! listen = "0.0.0.0:8090"
//! database_url = "postgres://callcard@db/callcard"
//! integration_secret = "…"
//! public_base_url = "https://callcard.example.com"
//! ticket_ttl_seconds = 120
//!
//! [[accounts]]
//! account_id = 31415926
//! origin = "https://acme.kommo.com"
//! webhook_secret = "…"
//! ```

use anyhow::Context;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The integration secret the sandbox signs its one-time tokens with. Only
/// for local use: the backend warns at start when it runs with it.
pub const DEMO_INTEGRATION_SECRET: &str = "callcard-demo-integration-secret";

/// An account to provision: the Kommo account id, the origin its users'
/// browsers load Kommo from (also the `iss` of its one-time tokens) and the
/// secret its PBX signs webhooks with.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct AccountSetup {
    pub account_id: u64,
    pub origin: String,
    pub webhook_secret: String,
}

impl fmt::Debug for AccountSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSetup")
            .field("account_id", &self.account_id)
            .field("origin", &self.origin)
            .field("webhook_secret", &"<redacted>")
            .finish()
    }
}

/// Everything the backend needs to run.
#[derive(Clone)]
pub struct Config {
    /// Where the `callcard-backend` binary listens (the library ignores it).
    pub listen: SocketAddr,
    /// `sqlite://path` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// The HS256 key of Kommo's one-time tokens (the OAuth `client_secret`).
    pub integration_secret: String,
    /// The backend's public base URL: the `aud` one-time tokens must carry.
    pub public_base_url: String,
    /// How long a feed ticket opens a WebSocket or answers polls.
    pub ticket_ttl: Duration,
    /// How often the feed sends a heartbeat; a peer silent for two of these
    /// is considered dead.
    pub heartbeat_interval: Duration,
    /// How many feed events are kept per user for reconnecting widgets.
    pub feed_history_per_user: u32,
    /// How old a kept feed event may get.
    pub feed_history_max_age: Duration,
    /// Accounts provisioned at start (from the file; the demo provisions its
    /// own through [`crate::Backend::provision_account`]).
    pub accounts: Vec<AccountSetup>,
    /// Connections in the database pool.
    pub max_db_connections: u32,
    /// How long a caller-ID answer (number → record and name) is reused
    /// for the next calls from the same number (`crate::sync::caller_id`).
    pub caller_id_cache_ttl: Duration,
    /// How long a record's name is reused by caller ID.
    pub caller_name_cache_ttl: Duration,
    /// The master key sealing credentials at rest (`crate::secrets`): 32
    /// bytes as 64 hex digits or base64. Required, except in demo mode (the
    /// demo integration secret), which falls back to the published
    /// [`crate::secrets::DEMO_SECRET_KEY`].
    pub secret_key: Option<String>,
    /// Where Kommo's API is for every account (the demo: the sandbox's
    /// origin). `None`: the account's own `https://{subdomain}.kommo.com`,
    /// learned at installation.
    pub kommo_base_url: Option<String>,
    /// The integration's OAuth `client_id`.
    pub client_id: String,
    /// The integration's redirect URI as registered in Kommo (where Kommo
    /// sends the admin after installation: `GET {base}/kommo/install`).
    pub redirect_uri: String,
    /// The bearer token of the operator endpoints (`/ops/...`). `None`:
    /// those endpoints do not exist (404).
    pub ops_token: Option<String>,
    /// The durable job queue: workers, retries, leases.
    pub queue: QueueConfig,
    /// Timeouts and retries of every Kommo request.
    pub kommo: kommo_client::ClientConfig,
    /// Access tokens are refreshed once they expire within this long.
    pub token_refresh_ahead: Duration,
}

/// How the durable job queue ([`crate::queue`]) runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Worker tasks per instance (0: this instance runs no jobs).
    pub workers: usize,
    /// Attempts before a job is parked as dead.
    pub max_attempts: u32,
    /// How long a claimed job is leased to its worker; a worker that dies
    /// holds the job at most this long. Handlers renew nothing, so it must
    /// exceed the longest job (Kommo calls with retries).
    pub lease: Duration,
    /// The first retry waits about this long, doubling per attempt (with jitter).
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    pub backoff_cap: Duration,
    /// How often an idle worker looks for due jobs (enqueueing on this
    /// instance wakes the workers at once).
    pub poll_interval: Duration,
    /// How long a job waits before looking again while its account needs
    /// re-authorization (the job is not failed meanwhile).
    pub reauthorization_wait: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            max_attempts: 8,
            lease: Duration::from_secs(300),
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
            reauthorization_wait: Duration::from_secs(60),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            database_url: "sqlite://callcard.sqlite".into(),
            integration_secret: DEMO_INTEGRATION_SECRET.into(),
            public_base_url: "http://127.0.0.1:8080/backend".into(),
            ticket_ttl: Duration::from_secs(120),
            heartbeat_interval: Duration::from_secs(15),
            feed_history_per_user: 1000,
            feed_history_max_age: Duration::from_secs(24 * 60 * 60),
            accounts: Vec::new(),
            max_db_connections: 8,
            caller_id_cache_ttl: Duration::from_secs(60),
            caller_name_cache_ttl: Duration::from_secs(600),
            secret_key: None,
            kommo_base_url: None,
            client_id: String::new(),
            redirect_uri: "http://127.0.0.1:8080/backend/kommo/install".into(),
            ops_token: None,
            queue: QueueConfig::default(),
            kommo: kommo_client::ClientConfig::default(),
            token_refresh_ahead: Duration::from_secs(300),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("integration_secret", &"<redacted>")
            .field("public_base_url", &self.public_base_url)
            .field("ticket_ttl", &self.ticket_ttl)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("feed_history_per_user", &self.feed_history_per_user)
            .field("feed_history_max_age", &self.feed_history_max_age)
            .field("accounts", &self.accounts)
            .field("max_db_connections", &self.max_db_connections)
            .field("caller_id_cache_ttl", &self.caller_id_cache_ttl)
            .field("caller_name_cache_ttl", &self.caller_name_cache_ttl)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<redacted>"))
            .field("kommo_base_url", &self.kommo_base_url)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("ops_token", &self.ops_token.as_ref().map(|_| "<redacted>"))
            .field("queue", &self.queue)
            .field("kommo", &self.kommo)
            .field("token_refresh_ahead", &self.token_refresh_ahead)
            .finish()
    }
}

/// The file's shape: every key optional, durations in seconds.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    integration_secret: Option<String>,
    public_base_url: Option<String>,
    ticket_ttl_seconds: Option<u64>,
    heartbeat_interval_seconds: Option<u64>,
    feed_history_per_user: Option<u32>,
    feed_history_max_age_seconds: Option<u64>,
    max_db_connections: Option<u32>,
    caller_id_cache_ttl_seconds: Option<u64>,
    caller_name_cache_ttl_seconds: Option<u64>,
    secret_key: Option<String>,
    kommo_base_url: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    ops_token: Option<String>,
    workers: Option<usize>,
    job_max_attempts: Option<u32>,
    job_lease_seconds: Option<u64>,
    accounts: Vec<AccountSetup>,
}

impl Config {
    /// Loads the configuration: defaults, then the TOML file at `path` (or at
    /// `CALLCARD_CONFIG` when `path` is `None`; no file is fine), then the
    /// environment (`CALLCARD_LISTEN`, `CALLCARD_DATABASE_URL` or
    /// `DATABASE_URL`, `CALLCARD_INTEGRATION_SECRET`,
    /// `CALLCARD_PUBLIC_BASE_URL`, `CALLCARD_TICKET_TTL_SECONDS`,
    /// `CALLCARD_HEARTBEAT_INTERVAL_SECONDS`, `CALLCARD_FEED_HISTORY_PER_USER`,
    /// `CALLCARD_FEED_HISTORY_MAX_AGE_SECONDS`, `CALLCARD_MAX_DB_CONNECTIONS`).
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let from_env = std::env::var("CALLCARD_CONFIG").ok();
        let path = path.map(Path::to_path_buf).or(from_env.map(Into::into));
        let mut config = Self::default();
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            config.apply_file(&text).with_context(|| format!("in {}", path.display()))?;
        }
        config.apply_env(|key| std::env::var(key).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Applies a TOML document over the current values.
    pub fn apply_file(&mut self, toml_text: &str) -> anyhow::Result<()> {
        let file: FileConfig = toml::from_str(toml_text)?;
        if let Some(v) = file.listen {
            self.listen = v;
        }
        if let Some(v) = file.database_url {
            self.database_url = v;
        }
        if let Some(v) = file.integration_secret {
            self.integration_secret = v;
        }
        if let Some(v) = file.public_base_url {
            self.public_base_url = v;
        }
        if let Some(v) = file.ticket_ttl_seconds {
            self.ticket_ttl = Duration::from_secs(v);
        }
        if let Some(v) = file.heartbeat_interval_seconds {
            self.heartbeat_interval = Duration::from_secs(v);
        }
        if let Some(v) = file.feed_history_per_user {
            self.feed_history_per_user = v;
        }
        if let Some(v) = file.feed_history_max_age_seconds {
            self.feed_history_max_age = Duration::from_secs(v);
        }
        if let Some(v) = file.max_db_connections {
            self.max_db_connections = v;
        }
        if let Some(v) = file.caller_id_cache_ttl_seconds {
            self.caller_id_cache_ttl = Duration::from_secs(v);
        }
        if let Some(v) = file.caller_name_cache_ttl_seconds {
            self.caller_name_cache_ttl = Duration::from_secs(v);
        }
        if let Some(v) = file.secret_key {
            self.secret_key = Some(v);
        }
        if let Some(v) = file.kommo_base_url {
            self.kommo_base_url = Some(v);
        }
        if let Some(v) = file.client_id {
            self.client_id = v;
        }
        if let Some(v) = file.redirect_uri {
            self.redirect_uri = v;
        }
        if let Some(v) = file.ops_token {
            self.ops_token = Some(v);
        }
        if let Some(v) = file.workers {
            self.queue.workers = v;
        }
        if let Some(v) = file.job_max_attempts {
            self.queue.max_attempts = v;
        }
        if let Some(v) = file.job_lease_seconds {
            self.queue.lease = Duration::from_secs(v);
        }
        self.accounts.extend(file.accounts);
        Ok(())
    }

    /// Applies environment variables, read through `get` (so tests need not
    /// touch the process environment).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn secs(key: &str, v: String) -> anyhow::Result<Duration> {
            Ok(Duration::from_secs(v.trim().parse().with_context(|| format!("{key} must be whole seconds"))?))
        }
        if let Some(v) = get("CALLCARD_LISTEN") {
            self.listen = v.trim().parse().context("CALLCARD_LISTEN must be host:port")?;
        }
        if let Some(v) = get("CALLCARD_DATABASE_URL").or_else(|| get("DATABASE_URL")) {
            self.database_url = v;
        }
        if let Some(v) = get("CALLCARD_INTEGRATION_SECRET") {
            self.integration_secret = v;
        }
        if let Some(v) = get("CALLCARD_PUBLIC_BASE_URL") {
            self.public_base_url = v;
        }
        if let Some(v) = get("CALLCARD_TICKET_TTL_SECONDS") {
            self.ticket_ttl = secs("CALLCARD_TICKET_TTL_SECONDS", v)?;
        }
        if let Some(v) = get("CALLCARD_HEARTBEAT_INTERVAL_SECONDS") {
            self.heartbeat_interval = secs("CALLCARD_HEARTBEAT_INTERVAL_SECONDS", v)?;
        }
        if let Some(v) = get("CALLCARD_FEED_HISTORY_PER_USER") {
            self.feed_history_per_user = v.trim().parse().context("CALLCARD_FEED_HISTORY_PER_USER must be a count")?;
        }
        if let Some(v) = get("CALLCARD_FEED_HISTORY_MAX_AGE_SECONDS") {
            self.feed_history_max_age = secs("CALLCARD_FEED_HISTORY_MAX_AGE_SECONDS", v)?;
        }
        if let Some(v) = get("CALLCARD_MAX_DB_CONNECTIONS") {
            self.max_db_connections = v.trim().parse().context("CALLCARD_MAX_DB_CONNECTIONS must be a count")?;
        }
        if let Some(v) = get("CALLCARD_CALLER_ID_CACHE_TTL_SECONDS") {
            self.caller_id_cache_ttl = secs("CALLCARD_CALLER_ID_CACHE_TTL_SECONDS", v)?;
        }
        if let Some(v) = get("CALLCARD_CALLER_NAME_CACHE_TTL_SECONDS") {
            self.caller_name_cache_ttl = secs("CALLCARD_CALLER_NAME_CACHE_TTL_SECONDS", v)?;
        }
        if let Some(v) = get("CALLCARD_SECRET_KEY") {
            self.secret_key = Some(v);
        }
        if let Some(v) = get("CALLCARD_KOMMO_BASE_URL") {
            self.kommo_base_url = Some(v);
        }
        if let Some(v) = get("CALLCARD_CLIENT_ID") {
            self.client_id = v;
        }
        if let Some(v) = get("CALLCARD_REDIRECT_URI") {
            self.redirect_uri = v;
        }
        if let Some(v) = get("CALLCARD_OPS_TOKEN") {
            self.ops_token = Some(v);
        }
        if let Some(v) = get("CALLCARD_WORKERS") {
            self.queue.workers = v.trim().parse().context("CALLCARD_WORKERS must be a count")?;
        }
        if let Some(v) = get("CALLCARD_JOB_MAX_ATTEMPTS") {
            self.queue.max_attempts = v.trim().parse().context("CALLCARD_JOB_MAX_ATTEMPTS must be a count")?;
        }
        if let Some(v) = get("CALLCARD_JOB_LEASE_SECONDS") {
            self.queue.lease = secs("CALLCARD_JOB_LEASE_SECONDS", v)?;
        }
        Ok(())
    }

    /// Refuses settings that cannot work, before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.integration_secret.is_empty(), "integration_secret must not be empty");
        anyhow::ensure!(!self.public_base_url.is_empty(), "public_base_url must not be empty");
        anyhow::ensure!(!self.heartbeat_interval.is_zero(), "heartbeat_interval must be positive");
        anyhow::ensure!(!self.ticket_ttl.is_zero(), "ticket_ttl must be positive");
        anyhow::ensure!(self.feed_history_per_user > 0, "feed_history_per_user must be positive");
        anyhow::ensure!(self.max_db_connections > 0, "max_db_connections must be positive");
        anyhow::ensure!(self.queue.max_attempts > 0, "job_max_attempts must be positive");
        anyhow::ensure!(!self.queue.lease.is_zero(), "job_lease_seconds must be positive");
        anyhow::ensure!(
            self.ops_token.as_ref().is_none_or(|t| t.len() >= 16),
            "ops_token must be at least 16 characters"
        );
        if let Some(url) = &self.kommo_base_url {
            anyhow::ensure!(
                url.starts_with("https://") || url.starts_with("http://"),
                "kommo_base_url must be an http(s) URL"
            );
        }
        self.secrets()?;
        Ok(())
    }

    /// The master key for credentials at rest: the configured one, or in
    /// demo mode only (the demo integration secret) the published demo key.
    pub fn secrets(&self) -> anyhow::Result<crate::secrets::Secrets> {
        match &self.secret_key {
            Some(text) => crate::secrets::Secrets::from_key_text(text),
            None if self.integration_secret == DEMO_INTEGRATION_SECRET => Ok(crate::secrets::Secrets::demo()),
            None => anyhow::bail!(
                "secret_key (CALLCARD_SECRET_KEY: 32 bytes as 64 hex digits or base64) is required outside demo mode"
            ),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:<redacted>@host/db`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return url.to_string() };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let redacted = if userinfo.contains(':') { format!("{user}:<redacted>") } else { user.to_string() };
    match path {
        Some(p) => format!("{scheme}://{redacted}@{host}/{p}"),
        None => format!("{scheme}://{redacted}@{host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let mut c = Config {
            database_url: "postgres://cc:hunter2@db:5432/callcard".into(),
            integration_secret: "top-secret-key".into(),
            ..Config::default()
        };
        c.accounts.push(AccountSetup {
            account_id: 1,
            origin: "https://a.kommo.com".into(),
            webhook_secret: "whsec".into(),
        });
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("top-secret-key") && !shown.contains("whsec"), "{shown}");
        assert!(shown.contains("postgres://cc:<redacted>@db:5432/callcard"), "{shown}");
    }

    #[test]
    fn file_then_env_override_defaults() {
        let mut c = Config::default();
        c.apply_file(
            r#"
            database_url = "sqlite:///tmp/x.sqlite"
            ticket_ttl_seconds = 30
            [[accounts]]
            account_id = 7
            origin = "https://seven.kommo.com"
            webhook_secret = "s"
            "#,
        )
        .unwrap();
        c.apply_env(|k| (k == "DATABASE_URL").then(|| "postgres://h/db".to_string())).unwrap();
        assert_eq!(c.database_url, "postgres://h/db");
        assert_eq!(c.ticket_ttl, Duration::from_secs(30));
        assert_eq!(c.accounts[0].account_id, 7);
        assert!(c.apply_file("no_such_key = 1").is_err(), "typos in the file are refused");
    }
}
