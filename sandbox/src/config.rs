//! How a sandbox is set up: where it pretends to live, which secret signs its
//! one-time tokens, how long OAuth tokens live, Kommo's rate limit, and where
//! the host page and the widget package are on disk.
//!
//! Every field is public; [`SandboxConfig::default`] is the demo
//! (`http://127.0.0.1:8080`, backend nested at `/backend`), and
//! [`SandboxConfig::for_origin`] plus the `with_*` builders cover tests, which
//! bind a random port and want short token lifetimes.

use std::path::PathBuf;
use std::time::Duration;

/// The demo account's id (docs/design.md).
pub const DEMO_ACCOUNT_ID: u64 = 31_415_926;
/// The demo account's subdomain (docs/design.md).
pub const DEMO_SUBDOMAIN: &str = "acme";

/// Everything a [`crate::Sandbox`] needs to know before it starts.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The account's address as the browser sees it, without a trailing
    /// slash: `http://127.0.0.1:8080`. It is the one-time token's `iss`
    /// (Kommo puts the account's address there).
    pub origin: String,
    /// The integration backend's base URL, the one-time token's `aud`
    /// (Kommo uses the base of the integration's redirect_uri).
    pub backend_base_url: String,
    /// The integration's secret key (OAuth `client_secret`); signs one-time tokens.
    pub integration_secret: String,
    /// The integration's id (OAuth `client_id`).
    pub client_id: String,
    /// The integration's redirect_uri; `POST /oauth2/access_token` must repeat it.
    pub redirect_uri: String,
    /// The account id and subdomain.
    pub account_id: u64,
    pub subdomain: String,
    /// The host page (`www/`): served at `/`, and its `node_modules` feed `/vendor/*.js`.
    pub www_dir: PathBuf,
    /// The unzipped widget package (`dist/widget/`), served at `/upl/callcard/widget/`.
    pub widget_dir: PathBuf,
    /// Fill the account with the demo data set ([`crate::seed`]).
    pub seed: bool,
    /// Lifetime of one-time tokens (`exp - iat`). Kommo's is unconfirmed; 300 s
    /// is the usual reading.
    pub one_time_token_ttl: Duration,
    /// Lifetime of OAuth access tokens (`expires_in`; Kommo answers 86400).
    pub access_token_ttl: Duration,
    /// Lifetime of OAuth refresh tokens (Kommo: three months).
    pub refresh_token_ttl: Duration,
    /// Lifetime of authorization codes (Kommo: 20 minutes).
    pub authorization_code_ttl: Duration,
    /// Kommo's request budget per account and integration per second; `None`
    /// switches the limit off (only for benchmarks that measure something else).
    pub rate_limit_per_second: Option<u32>,
    /// A long-lived token (what private integrations may use) that is always
    /// accepted as `Authorization: Bearer`, acting as the first user.
    pub long_lived_token: Option<String>,
    /// Hand the `users` setting to the widget as a JSON string instead of an
    /// object: Kommo's `get_settings()` may do either, the widget must cope.
    pub users_setting_as_string: bool,
    /// Load the state from this file at start when it exists, and write it
    /// there on [`crate::Sandbox::save_snapshot`] / `POST /sandbox/snapshot`.
    pub snapshot: Option<PathBuf>,
    /// How long a webhook destination has to answer an attempt.
    pub webhook_timeout: Duration,
    /// The waits before each retry of a webhook that got no 2xx; after the
    /// last, the delivery is given up. Kommo's own schedule is unconfirmed.
    pub webhook_retry_delays: Vec<Duration>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self::for_origin("http://127.0.0.1:8080")
    }
}

impl SandboxConfig {
    /// The demo setup at another address: the backend is expected at
    /// `<origin>/backend`, as `callcard-demo` nests it.
    pub fn for_origin(origin: impl Into<String>) -> Self {
        let origin = origin.into().trim_end_matches('/').to_string();
        let backend_base_url = format!("{origin}/backend");
        Self {
            redirect_uri: format!("{backend_base_url}/oauth/callback"),
            backend_base_url,
            origin,
            integration_secret: "callcard-demo-integration-secret".into(),
            client_id: "5f1c5bb8-9a57-4c43-a7b9-6c7c6a2f1b01".into(),
            account_id: DEMO_ACCOUNT_ID,
            subdomain: DEMO_SUBDOMAIN.into(),
            www_dir: PathBuf::from("www"),
            widget_dir: PathBuf::from("dist/widget"),
            seed: true,
            one_time_token_ttl: Duration::from_secs(300),
            access_token_ttl: Duration::from_secs(86_400),
            refresh_token_ttl: Duration::from_secs(90 * 86_400),
            authorization_code_ttl: Duration::from_secs(20 * 60),
            rate_limit_per_second: Some(7),
            long_lived_token: None,
            users_setting_as_string: false,
            snapshot: None,
            webhook_timeout: Duration::from_secs(2),
            webhook_retry_delays: [5, 30, 120, 600].into_iter().map(Duration::from_secs).collect(),
        }
    }

    /// A configuration for tests: no files on disk, the seed data, and the
    /// given origin (usually `http://127.0.0.1:<random port>`).
    pub fn for_tests(origin: impl Into<String>) -> Self {
        let mut c = Self::for_origin(origin);
        c.www_dir = PathBuf::from("/nonexistent/www");
        c.widget_dir = PathBuf::from("/nonexistent/widget");
        c
    }

    pub fn with_backend_base_url(mut self, url: impl Into<String>) -> Self {
        self.backend_base_url = url.into().trim_end_matches('/').to_string();
        self
    }

    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.integration_secret = secret.into();
        self
    }

    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = uri.into();
        self
    }

    pub fn with_www_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.www_dir = dir.into();
        self
    }

    pub fn with_widget_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.widget_dir = dir.into();
        self
    }

    pub fn with_seed(mut self, seed: bool) -> Self {
        self.seed = seed;
        self
    }

    pub fn with_one_time_token_ttl(mut self, ttl: Duration) -> Self {
        self.one_time_token_ttl = ttl;
        self
    }

    pub fn with_access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    pub fn with_refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_token_ttl = ttl;
        self
    }

    pub fn with_rate_limit(mut self, per_second: Option<u32>) -> Self {
        self.rate_limit_per_second = per_second;
        self
    }

    pub fn with_long_lived_token(mut self, token: impl Into<String>) -> Self {
        self.long_lived_token = Some(token.into());
        self
    }

    pub fn with_webhook_retry_delays(mut self, delays: Vec<Duration>) -> Self {
        self.webhook_retry_delays = delays;
        self
    }

    pub fn with_snapshot(mut self, path: impl Into<PathBuf>) -> Self {
        self.snapshot = Some(path.into());
        self
    }
}
