//! Configuration: one declaration per setting, layered by `figment`.
//!
//! Each operator setting is a field of [`Config`] (or of [`QueueConfig`],
//! flattened into it); its serde name is the setting's one name, from which
//! the others follow. The layers, each overriding the one before:
//!
//! 1. the defaults ([`Config::default`]);
//! 2. an optional TOML file (`callcard-backend config.toml`, or
//!    `CALLCARD_CONFIG`), keys as named, unknown keys refused;
//! 3. `DATABASE_URL`, then `CALLCARD_<KEY>` environment variables;
//! 4. flags: `--<key> <value>` (dashes or underscores).
//!
//! Durations are whole seconds under a `_seconds` key. `backend/README.md`
//! has the table of every setting; a test checks it against this
//! declaration ([`Config::settings`]).
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
//! pbx_originate_url = "https://pbx.acme.example/callcard/originate"
//! ```

use anyhow::Context;
use callcard_calls::extensions::ExtensionMap;
use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use figment::Figment;
use serde::{Deserialize, Serialize};
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
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSetup {
    pub account_id: u64,
    pub origin: String,
    pub webhook_secret: String,
    /// Which extension is whose (`{"<Kommo user id>" = "<extension>"}`),
    /// when the operator fixes it (a PBX-managed deployment, the bench).
    /// Omitted, the account's admin sets it in the widget's settings, and
    /// provisioning leaves what is stored alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<ExtensionMap>,
    /// Where the account's PBX takes click-to-call requests
    /// (`POST`, an `callcard_calls::originate::Originate` signed like the
    /// webhooks, with the webhook secret). Omitted, provisioning leaves
    /// what is stored alone; never set, the widget's click-to-call answers
    /// that it is not set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbx_originate_url: Option<String>,
}

impl fmt::Debug for AccountSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSetup")
            .field("account_id", &self.account_id)
            .field("origin", &self.origin)
            .field("webhook_secret", &"<redacted>")
            .field("extensions", &self.extensions)
            .field("pbx_originate_url", &self.pbx_originate_url)
            .finish()
    }
}

/// Everything the backend needs to run. The serde names are the settings'
/// names (module docs); fields without one are for code (tests, the demo)
/// and keep their defaults when loaded.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where the `callcard-backend` binary listens (the library ignores it).
    pub listen: SocketAddr,
    /// How many connections the binary serves at once; more wait to be
    /// accepted (`crate::connection_limit`; the library ignores it).
    pub max_connections: u32,
    /// How long a connection has to send a request's headers, from their
    /// first byte (`crate::server`; the library ignores it).
    #[serde(rename = "header_read_timeout_seconds", with = "seconds")]
    pub header_read_timeout: Duration,
    /// How long a connection may wait for its next request, from when it
    /// opened or its last answer was sent (`crate::server`; the library
    /// ignores it). WebSockets and waiting polls are answers in progress,
    /// never idle.
    #[serde(rename = "idle_timeout_seconds", with = "seconds")]
    pub idle_timeout: Duration,
    /// `sqlite://path` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// The HS256 key of Kommo's one-time tokens (the OAuth `client_secret`).
    pub integration_secret: String,
    /// The backend's public base URL: the `aud` one-time tokens must carry.
    pub public_base_url: String,
    /// How long a feed ticket opens a WebSocket or answers polls.
    #[serde(rename = "ticket_ttl_seconds", with = "seconds")]
    pub ticket_ttl: Duration,
    /// How often the feed sends a heartbeat; a peer silent for two of these
    /// is considered dead.
    #[serde(rename = "heartbeat_interval_seconds", with = "seconds")]
    pub heartbeat_interval: Duration,
    /// How many feed events are kept per user for reconnecting widgets.
    pub feed_history_per_user: u32,
    /// How old a kept feed event may get.
    #[serde(rename = "feed_history_max_age_seconds", with = "seconds")]
    pub feed_history_max_age: Duration,
    /// How many feeds (WebSockets and waiting polls) one user may hold open
    /// on one instance; more are refused with 429 (one widget holds one per
    /// open Kommo tab).
    pub max_feeds_per_user: u32,
    /// Accounts provisioned at start (from the file; the demo provisions its
    /// own through [`crate::Backend::provision_account`]).
    pub accounts: Vec<AccountSetup>,
    /// Connections in the database pool.
    pub max_db_connections: u32,
    /// How long a caller-ID answer (number → record and name) is reused
    /// for the next calls from the same number (`crate::sync::caller_id`).
    #[serde(rename = "caller_id_cache_ttl_seconds", with = "seconds")]
    pub caller_id_cache_ttl: Duration,
    /// How long a record's name is reused by caller ID.
    #[serde(rename = "caller_name_cache_ttl_seconds", with = "seconds")]
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
    /// Keep a local caller index per account (`crate::sync::phonebook`):
    /// built at installation, kept current by Kommo's webhooks, asked on
    /// every ring at no Kommo request. Off: caller ID asks Kommo per number.
    pub caller_index: bool,
    /// How often each ready caller index reads what changed in Kommo since
    /// the last time (heals a missed webhook).
    #[serde(rename = "caller_index_reconcile_interval_seconds", with = "seconds")]
    pub caller_index_reconcile_interval: Duration,
    /// How long the link to a call's full transcript (in a call note whose
    /// transcript was cut to an excerpt) stays valid, from the transcript's
    /// arrival.
    #[serde(rename = "transcript_link_ttl_seconds", with = "seconds")]
    pub transcript_link_ttl: Duration,
    /// The bearer token of the operator endpoints (`/ops/...`). `None`:
    /// those endpoints do not exist (404).
    pub ops_token: Option<String>,
    /// The durable job queue: workers, retries, leases. Its settings sit
    /// at the top level (loaded apart: serde's `flatten` would hide their
    /// types from the environment's text).
    #[serde(skip)]
    pub queue: QueueConfig,
    /// Timeouts and retries of every Kommo request.
    #[serde(skip)]
    pub kommo: kommo_client::ClientConfig,
    /// Access tokens are refreshed once they expire within this long.
    #[serde(skip)]
    pub token_refresh_ahead: Duration,
    /// Where Kommo's webhooks are addressed (`{base}/kommo/{account}/hooks/…`);
    /// `None`: `public_base_url`. Tests point it at their ephemeral port.
    #[serde(skip)]
    pub webhook_base_url: Option<String>,
}

/// How the durable job queue ([`crate::queue`]) runs. Its settings sit at
/// the top level of the configuration (`workers`, `job_…`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueConfig {
    /// Worker tasks per instance (0: this instance runs no jobs).
    pub workers: usize,
    /// Attempts before a job is parked as dead.
    #[serde(rename = "job_max_attempts")]
    pub max_attempts: u32,
    /// How long a claimed job is leased to its worker; a worker that dies
    /// holds the job at most this long. A live worker renews it four times
    /// per lease while the job runs, however long that takes.
    #[serde(rename = "job_lease_seconds", with = "seconds")]
    pub lease: Duration,
    /// The first retry waits about this long, doubling per attempt (with jitter).
    #[serde(skip)]
    pub backoff_base: Duration,
    /// The longest wait between attempts.
    #[serde(skip)]
    pub backoff_cap: Duration,
    /// How often an idle worker looks for due jobs (enqueueing on this
    /// instance wakes the workers at once).
    #[serde(skip)]
    pub poll_interval: Duration,
    /// How long a job waits before looking again while its account needs
    /// re-authorization, or a credential does not open with this instance's
    /// key (the job is not failed meanwhile).
    #[serde(skip)]
    pub reauthorization_wait: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            max_attempts: 8,
            lease: Duration::from_secs(20),
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
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            database_url: "sqlite://callcard.sqlite".into(),
            integration_secret: DEMO_INTEGRATION_SECRET.into(),
            public_base_url: "http://127.0.0.1:8080/backend".into(),
            ticket_ttl: Duration::from_secs(120),
            heartbeat_interval: Duration::from_secs(15),
            feed_history_per_user: 1000,
            feed_history_max_age: Duration::from_secs(24 * 60 * 60),
            max_feeds_per_user: 20,
            accounts: Vec::new(),
            max_db_connections: 8,
            caller_id_cache_ttl: Duration::from_secs(60),
            caller_name_cache_ttl: Duration::from_secs(600),
            secret_key: None,
            kommo_base_url: None,
            client_id: String::new(),
            redirect_uri: "http://127.0.0.1:8080/backend/kommo/install".into(),
            caller_index: true,
            caller_index_reconcile_interval: Duration::from_secs(300),
            transcript_link_ttl: Duration::from_secs(90 * 24 * 60 * 60),
            ops_token: None,
            queue: QueueConfig::default(),
            kommo: kommo_client::ClientConfig::default(),
            token_refresh_ahead: Duration::from_secs(300),
            webhook_base_url: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
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
            .field("caller_index", &self.caller_index)
            .field("caller_index_reconcile_interval", &self.caller_index_reconcile_interval)
            .field("transcript_link_ttl", &self.transcript_link_ttl)
            .field("ops_token", &self.ops_token.as_ref().map(|_| "<redacted>"))
            .field("queue", &self.queue)
            .field("kommo", &self.kommo)
            .field("token_refresh_ahead", &self.token_refresh_ahead)
            .field("webhook_base_url", &self.webhook_base_url)
            .finish()
    }
}

/// One setting as an operator sets it: its names in each layer and its
/// default, read from the declaration (for the README's table and its test).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The TOML key.
    pub key: String,
    /// The environment variable.
    pub env: String,
    /// The command-line flag.
    pub flag: String,
    /// The default as TOML would write it (`None`: unset or empty).
    pub default: Option<String>,
}

impl Config {
    /// Every operator setting, by key, but `accounts` (a list
    /// of tables, only in the file).
    pub fn settings() -> Vec<Setting> {
        let defaults =
            Figment::from(Serialized::defaults(Config::default())).merge(Serialized::defaults(QueueConfig::default()));
        let Ok(dict) = defaults.extract::<figment::value::Dict>() else { return Vec::new() };
        dict.into_iter()
            .filter(|(key, _)| key != "accounts")
            .map(|(key, value)| Setting {
                env: variable(&key),
                flag: format!("--{}", key.replace('_', "-")),
                default: shown(&value),
                key,
            })
            .collect()
    }

    fn keys() -> Vec<String> {
        Self::settings().into_iter().map(|s| s.key).chain(["accounts".to_string()]).collect()
    }

    /// Loads the configuration from its layers (module docs): the TOML file
    /// at `path` (or at `CALLCARD_CONFIG` when `path` is `None`; no file is
    /// fine), the process environment, and `flags` as `(key, value)` pairs.
    pub fn load(path: Option<&Path>, flags: &[(String, String)]) -> anyhow::Result<Self> {
        let from_env = std::env::var("CALLCARD_CONFIG").ok();
        let path = path.map(Path::to_path_buf).or(from_env.map(Into::into));
        let file = match &path {
            Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?),
            None => None,
        };
        let config = Self::from_layers(file.as_deref(), flags)
            .with_context(|| path.map_or_else(|| "in the configuration".into(), |p| format!("in {}", p.display())))?;
        config.validate()?;
        Ok(config)
    }

    /// Builds the configuration from a TOML document, the process
    /// environment and flags (without validating it).
    pub fn from_layers(toml_text: Option<&str>, flags: &[(String, String)]) -> anyhow::Result<Self> {
        let keys = Self::keys();
        let mut figment = Figment::new();
        if let Some(text) = toml_text {
            // figment ignores keys nobody reads; a typo in the file must not be.
            let table: toml::Table = toml::from_str(text)?;
            if let Some(unknown) = table.keys().find(|k| !keys.contains(k)) {
                anyhow::bail!("unknown setting `{unknown}` (the settings are listed in backend/README.md)");
            }
            figment = figment.merge(Toml::string(text));
        }
        let known: Vec<&str> = keys.iter().map(String::as_str).filter(|k| *k != "accounts").collect();
        figment = figment
            .merge(EnvText::read("DATABASE_URL", [("database_url".into(), "DATABASE_URL".into())]))
            .merge(EnvText::read("CALLCARD_<SETTING>", known.iter().map(|k| (k.to_string(), variable(k)))));
        for (flag, value) in flags {
            let key = flag.trim_start_matches("--").replace('-', "_");
            anyhow::ensure!(known.contains(&key.as_str()), "unknown flag --{flag}");
            figment = figment.merge(Serialized::global(&key, value));
        }
        // Lossy: the environment and flags are text, read as the number a
        // setting needs ("45" for `ticket_ttl_seconds`), while text stays
        // text (a key of 64 digits is not a number).
        let mut config: Config = figment.extract_lossy()?;
        config.queue = figment.extract_lossy()?;
        Ok(config)
    }

    /// Refuses settings that cannot work, before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.integration_secret.is_empty(), "integration_secret must not be empty");
        anyhow::ensure!(!self.public_base_url.is_empty(), "public_base_url must not be empty");
        anyhow::ensure!(!self.heartbeat_interval.is_zero(), "heartbeat_interval must be positive");
        anyhow::ensure!(!self.ticket_ttl.is_zero(), "ticket_ttl must be positive");
        anyhow::ensure!(self.feed_history_per_user > 0, "feed_history_per_user must be positive");
        anyhow::ensure!(self.max_feeds_per_user > 0, "max_feeds_per_user must be positive");
        anyhow::ensure!(self.max_connections > 0, "max_connections must be positive");
        anyhow::ensure!(!self.header_read_timeout.is_zero(), "header_read_timeout_seconds must be positive");
        anyhow::ensure!(!self.idle_timeout.is_zero(), "idle_timeout_seconds must be positive");
        anyhow::ensure!(self.max_db_connections > 0, "max_db_connections must be positive");
        anyhow::ensure!(self.queue.max_attempts > 0, "job_max_attempts must be positive");
        anyhow::ensure!(!self.queue.lease.is_zero(), "job_lease_seconds must be positive");
        anyhow::ensure!(
            !self.caller_index_reconcile_interval.is_zero(),
            "caller_index_reconcile_interval_seconds must be positive"
        );
        anyhow::ensure!(!self.transcript_link_ttl.is_zero(), "transcript_link_ttl_seconds must be positive");
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
        for account in &self.accounts {
            if let Some(url) = &account.pbx_originate_url {
                anyhow::ensure!(
                    url.starts_with("https://") || url.starts_with("http://"),
                    "accounts[account_id = {}].pbx_originate_url must be an http(s) URL",
                    account.account_id
                );
            }
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

/// Environment variables as text settings. figment's own `Env` provider
/// parses values (`4242…42` would become a float and lose the key), so this
/// one hands them over as written and extraction reads them lossily.
struct EnvText {
    /// What the errors call the source.
    name: String,
    values: figment::value::Dict,
}

impl EnvText {
    /// Reads each `(key, variable)` from the process environment.
    fn read(name: &str, variables: impl IntoIterator<Item = (String, String)>) -> Self {
        let values = variables
            .into_iter()
            .filter_map(|(key, variable)| Some((key, Value::from(std::env::var(variable).ok()?))))
            .collect();
        Self { name: name.to_string(), values }
    }
}

/// The environment variable of a setting.
fn variable(key: &str) -> String {
    format!("CALLCARD_{}", key.to_ascii_uppercase())
}

impl figment::Provider for EnvText {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Ok(figment::Profile::Default.collect(self.values.clone()))
    }
}

/// A default as the README shows it.
fn shown(value: &Value) -> Option<String> {
    match value {
        Value::Empty(..) => None,
        Value::String(_, s) if s.is_empty() => None,
        Value::String(_, s) => Some(s.clone()),
        Value::Num(_, n) => n.to_u128().map(|n| n.to_string()).or_else(|| n.to_i128().map(|n| n.to_string())),
        Value::Bool(_, b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// Durations are whole seconds in every layer.
mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
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
// `figment::Jail` fixes its closures' error type (a large figment::Error).
#[allow(clippy::result_large_err)]
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
            extensions: None,
            pbx_originate_url: None,
        });
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("top-secret-key") && !shown.contains("whsec"), "{shown}");
        assert!(shown.contains("postgres://cc:<redacted>@db:5432/callcard"), "{shown}");
    }

    #[test]
    fn file_then_environment_then_flags_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://plain/db");
            jail.set_env("CALLCARD_TICKET_TTL_SECONDS", "45");
            jail.set_env("CALLCARD_OPS_TOKEN", "1234567890123456");
            jail.set_env("CALLCARD_SECRET_KEY", "42".repeat(32));
            jail.set_env("CALLCARD_WORKERS", "3");
            jail.set_env("CALLCARD_LOG_FORMAT", "json"); // not a setting: ignored
            let file = r#"
                database_url = "sqlite:///tmp/x.sqlite"
                ticket_ttl_seconds = 30
                heartbeat_interval_seconds = 5
                job_lease_seconds = 99
                [[accounts]]
                account_id = 7
                origin = "https://seven.kommo.com"
                webhook_secret = "s"
                extensions = { "8320148" = "101" }
            "#;
            let c = Config::from_layers(Some(file), &[]).unwrap();
            assert_eq!(c.database_url, "postgres://plain/db", "DATABASE_URL beats the file");
            assert_eq!(c.ticket_ttl, Duration::from_secs(45), "the environment beats the file");
            assert_eq!(c.heartbeat_interval, Duration::from_secs(5));
            assert_eq!(c.ops_token.as_deref(), Some("1234567890123456"), "digits stay text");
            assert_eq!(c.secret_key, Some("42".repeat(32)));
            assert_eq!((c.queue.workers, c.queue.lease), (3, Duration::from_secs(99)));
            assert_eq!(c.queue.max_attempts, QueueConfig::default().max_attempts);
            assert_eq!(c.accounts[0].account_id, 7);
            let extensions = c.accounts[0].extensions.as_ref().expect("the file's extension map");
            assert_eq!(extensions.user_for("101"), Some(8_320_148));

            jail.set_env("CALLCARD_DATABASE_URL", "postgres://callcard/db");
            let flags = [("--ticket-ttl-seconds".to_string(), "60".to_string())];
            let c = Config::from_layers(Some(file), &flags).unwrap();
            assert_eq!(c.database_url, "postgres://callcard/db", "CALLCARD_DATABASE_URL beats DATABASE_URL");
            assert_eq!(c.ticket_ttl, Duration::from_secs(60), "flags beat the environment");

            assert!(Config::from_layers(Some("no_such_key = 1"), &[]).is_err(), "typos in the file are refused");
            assert!(Config::from_layers(None, &[("--no-such".into(), "1".into())]).is_err());
            jail.set_env("CALLCARD_HEARTBEAT_INTERVAL_SECONDS", "soon");
            let e = Config::from_layers(None, &[]).unwrap_err().to_string();
            assert!(e.contains("heartbeat_interval_seconds") && e.contains("CALLCARD_"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn an_accounts_pbx_originate_url_is_read_and_must_be_http() {
        figment::Jail::expect_with(|_| {
            let file = "[[accounts]]\naccount_id = 7\norigin = \"https://a.kommo.com\"\nwebhook_secret = \"s\"\n";
            let with = format!("{file}pbx_originate_url = \"https://pbx.example/originate\"\n");
            let c = Config::from_layers(Some(&with), &[]).unwrap();
            assert_eq!(c.accounts[0].pbx_originate_url.as_deref(), Some("https://pbx.example/originate"));
            assert_eq!(Config::from_layers(Some(file), &[]).unwrap().accounts[0].pbx_originate_url, None);
            let mut bad = Config::from_layers(Some(&with.replace("https://", "ftp://")), &[]).unwrap();
            bad.secret_key = Some("42".repeat(32));
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.contains("pbx_originate_url"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn no_layer_is_the_defaults() {
        figment::Jail::expect_with(|_| {
            let c = Config::from_layers(None, &[]).unwrap();
            assert_eq!(format!("{c:?}"), format!("{:?}", Config::default()));
            Ok(())
        });
    }

    /// The README's table lists every setting once, with its names and
    /// default as declared.
    #[test]
    fn the_readme_table_is_the_declaration() {
        let readme = include_str!("../README.md");
        let rows: Vec<Vec<String>> = readme
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect())
            .collect();
        let settings = Config::settings();
        assert!(settings.len() >= 19, "{settings:?}");
        let mut listed = Vec::new();
        for row in &rows {
            let key = row[0].trim_matches('`');
            if key == "[[accounts]]" {
                continue;
            }
            let setting = settings.iter().find(|s| s.key == key).unwrap_or_else(|| panic!("README lists `{key}`"));
            let env = if key == "database_url" {
                format!("`{}` or `DATABASE_URL`", setting.env)
            } else {
                format!("`{}`", setting.env)
            };
            assert_eq!(row[1], env, "{key}");
            assert_eq!(row[2], format!("`{}`", setting.flag), "{key}");
            let default = setting.default.as_ref().map_or_else(|| "none".to_string(), |d| format!("`{d}`"));
            assert_eq!(row[3], default, "{key}");
            listed.push(key.to_string());
        }
        let missing: Vec<&str> =
            settings.iter().map(|s| s.key.as_str()).filter(|k| !listed.iter().any(|l| l == k)).collect();
        assert!(missing.is_empty(), "README misses {missing:?}");
        assert_eq!(listed.len(), settings.len(), "each setting once");
    }
}
