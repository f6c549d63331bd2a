//! Access to each account's Kommo: installation (OAuth), tokens kept fresh
//! across instances, the shared request budget, and the typed client.
//!
//! - **Installation.** Kommo sends the admin who installs the integration to
//!   its redirect URI, `GET /kommo/install?code=…&referer=acme.kommo.com`
//!   (`crate::install`). [`KommoAccess::install`] trades the code for a token pair
//!   (`kommo_client::OAuthClient`), asks Kommo which account it is
//!   (`GET /api/v4/account`), stores the pair sealed and marks the account
//!   authorized. Jobs that waited for it become due at once, and the
//!   account's caller index sync is enqueued (`crate::sync::phonebook`).
//! - **Tokens** ([`StoreTokens`], the backend's `AccessTokens`): read from
//!   the store for every request, refreshed ahead of expiry by exactly one
//!   worker of one instance at a time (a lease row claimed with a conditional
//!   UPDATE: [`crate::store::tokens`]); the others wait and re-read. A refused
//!   refresh marks the account `needs_reauthorization`, which the widget sees
//!   (`GET /widget/status`) and which makes jobs wait instead of failing.
//! - **Budget** ([`SqlBudget`], the backend's `RequestBudget`): one atomic
//!   statement per request hands out the account's next start slot,
//!   [`crate::store::budget`]; every worker of every instance shares it.
//! - [`KommoAccess::kommo_client`]: a `KommoClient` for an account with all
//!   of the above, pointed at `config.kommo_base_url` (the demo's sandbox) or
//!   the account's own `https://{subdomain}.kommo.com`.

use crate::config::Config;
use crate::hub::Publisher;
use crate::metrics::Metrics;
use crate::store::jobs::Job;
use crate::store::{now_ms, Store};
use futures::future::BoxFuture;
use kommo_client::{AccessTokens, KommoClient, KommoError, OAuthApp, OAuthClient, Quota, RequestBudget};
use std::sync::Arc;
use std::time::Duration;

/// How long one refresh may hold the lease; a claimer that dies blocks
/// others at most this long.
const REFRESH_LEASE: Duration = Duration::from_secs(30);
/// How often a waiting caller re-reads the token row during someone else's refresh.
const REFRESH_POLL: Duration = Duration::from_millis(100);

/// Why an installation failed, by what the installing admin should hear.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// `referer` is not a Kommo account address.
    #[error("referer must be the account's Kommo address, like acme.kommo.com")]
    BadReferer,
    /// Kommo refused the code (expired, used, or for another integration).
    #[error("Kommo refused the authorization code: {0}")]
    Refused(String),
    /// Kommo could not be reached or failed.
    #[error("Kommo could not be reached: {0}")]
    Unavailable(String),
    /// The account is not provisioned in this backend.
    #[error("account {0} is not provisioned in this backend")]
    UnknownAccount(u64),
    #[error("storing the tokens failed: {0}")]
    Store(#[from] sqlx::Error),
}

/// Whether an account can be reached in Kommo, as the widget's "check
/// connection" shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuthStatus {
    pub authorized: bool,
    pub needs_reauthorization: bool,
}

/// Everything needed to talk to any account's Kommo. Cheap to clone.
#[derive(Clone)]
pub struct KommoAccess {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    app: OAuthApp,
    kommo_base_url: Option<String>,
    client_config: kommo_client::ClientConfig,
    http: reqwest::Client,
    tokens: Arc<StoreTokens>,
    budget: Arc<SqlBudget>,
    publisher: Publisher,
    /// Where Kommo's webhooks for the caller index go (`None`: no index).
    hook_base: Option<String>,
}

impl KommoAccess {
    pub(crate) fn new(
        config: &Config,
        store: Store,
        publisher: Publisher,
        metrics: Arc<Metrics>,
        instance: &str,
    ) -> anyhow::Result<Self> {
        let app = OAuthApp {
            client_id: config.client_id.clone(),
            client_secret: config.integration_secret.clone(),
            redirect_uri: config.redirect_uri.clone(),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(config.kommo.connect_timeout)
            .user_agent(config.kommo.user_agent.clone())
            .build()?;
        let tokens = Arc::new(StoreTokens {
            store: store.clone(),
            app: app.clone(),
            kommo_base_url: config.kommo_base_url.clone(),
            client_config: config.kommo.clone(),
            refresh_ahead: config.token_refresh_ahead,
            owner: instance.to_string(),
            metrics,
        });
        let budget = Arc::new(SqlBudget { store: store.clone(), interval: Quota::kommo().gcra().interval });
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                app,
                kommo_base_url: config.kommo_base_url.clone(),
                client_config: config.kommo.clone(),
                http,
                tokens,
                budget,
                publisher,
                hook_base: config
                    .caller_index
                    .then(|| config.webhook_base_url.clone().unwrap_or_else(|| config.public_base_url.clone())),
            }),
        })
    }

    /// A client for the account: its stored tokens, the shared budget, and
    /// its Kommo address. Fails with `ReauthorizationNeeded` for an account
    /// that never installed the integration.
    pub async fn kommo_client(&self, account_id: u64) -> Result<KommoClient, KommoError> {
        let base = self.base_url(account_id).await?;
        KommoClient::builder(base, account_id, self.inner.tokens.clone())
            .budget(self.inner.budget.clone())
            .config(self.inner.client_config.clone())
            .http(self.inner.http.clone())
            .build()
    }

    /// The shared budget (e.g. for callers that build their own client).
    pub fn budget(&self) -> Arc<dyn RequestBudget> {
        self.inner.budget.clone()
    }

    /// The tokens source over the store.
    pub fn tokens(&self) -> Arc<dyn AccessTokens> {
        self.inner.tokens.clone()
    }

    pub(crate) fn publisher(&self) -> Publisher {
        self.inner.publisher.clone()
    }

    /// Where the account's Kommo API is: the configured override, else what
    /// installation recorded, else the account's origin.
    async fn base_url(&self, account_id: u64) -> Result<String, KommoError> {
        if let Some(base) = &self.inner.kommo_base_url {
            return Ok(base.clone());
        }
        let account = self.inner.store.account(account_id).await.map_err(|e| KommoError::Budget(e.to_string()))?;
        let account = account.ok_or_else(|| KommoError::ReauthorizationNeeded {
            reason: format!("account {account_id} is not provisioned"),
        })?;
        Ok(account.kommo_base_url.clone().unwrap_or_else(|| account.origin.clone()))
    }

    /// `https://{referer}` unless the configuration points every account
    /// elsewhere (the demo's sandbox). `None`: not a Kommo address.
    fn install_base(&self, referer: &str) -> Option<String> {
        if let Some(base) = &self.inner.kommo_base_url {
            return Some(base.clone());
        }
        let host = referer.trim().trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && (host.ends_with(".kommo.com") || host.ends_with(".amocrm.com") || host.ends_with(".amocrm.ru"));
        valid.then(|| format!("https://{}", host.to_ascii_lowercase()))
    }

    /// Completes an installation from Kommo's redirect: trades `code` for
    /// tokens at the account's Kommo (`referer`, e.g. `acme.kommo.com`) and
    /// stores them. Returns the account id.
    pub async fn install(&self, code: &str, referer: &str) -> Result<u64, InstallError> {
        let base = self.install_base(referer).ok_or(InstallError::BadReferer)?;
        self.install_at(None, code, &base).await
    }

    /// [`install`](Self::install) against a known base URL, optionally
    /// insisting on the account id (the demo and tests).
    pub async fn install_at(&self, expected: Option<u64>, code: &str, base: &str) -> Result<u64, InstallError> {
        let oauth = OAuthClient::new(base, self.inner.app.clone(), self.inner.client_config.clone())
            .map_err(|e| InstallError::Unavailable(e.to_string()))?;
        let tokens = oauth.exchange_code(code, &self.inner.app.redirect_uri).await.map_err(|e| {
            if e.needs_reauthorization() || matches!(e, KommoError::Validation(_) | KommoError::Rejected { .. }) {
                InstallError::Refused(e.to_string())
            } else {
                InstallError::Unavailable(e.to_string())
            }
        })?;
        // Which account is this? Ask Kommo with the new token, once.
        let probe = KommoClient::builder(
            base,
            expected.unwrap_or(0),
            Arc::new(kommo_client::StaticToken::new(tokens.access_token.clone())),
        )
        .budget(self.inner.budget.clone())
        .config(self.inner.client_config.clone())
        .http(self.inner.http.clone())
        .build()
        .map_err(|e| InstallError::Unavailable(e.to_string()))?;
        let account = probe.account().await.map_err(|e| InstallError::Unavailable(e.to_string()))?;
        if expected.is_some_and(|id| id != account.id) {
            return Err(InstallError::Refused(format!("the code belongs to account {}", account.id)));
        }
        if self.inner.store.account(account.id).await?.is_none() {
            return Err(InstallError::UnknownAccount(account.id));
        }
        self.inner.store.put_tokens(account.id, &tokens).await?;
        if self.inner.kommo_base_url.is_none() {
            self.inner.store.set_kommo_base_url(account.id, base).await?;
        }
        if let Some(hook_base) = &self.inner.hook_base {
            // The caller index is built by a job: durable, in the budget.
            self.inner.store.start_phonebook(account.id, hook_base).await?;
            self.inner.store.enqueue_job(account.id, &Job::SyncPhonebook, now_ms()).await?;
        }
        let woken = self.inner.store.wake_account_jobs(account.id).await?;
        tracing::info!(account_id = account.id, waiting_jobs = woken, "Kommo integration installed");
        Ok(account.id)
    }

    /// Whether the account is authorized, or needs a new installation.
    pub async fn status(&self, account_id: u64) -> Result<AuthStatus, sqlx::Error> {
        Ok(match self.inner.store.authorization_state(account_id).await? {
            None => AuthStatus { authorized: false, needs_reauthorization: false },
            Some(true) => AuthStatus { authorized: true, needs_reauthorization: false },
            Some(false) => AuthStatus { authorized: false, needs_reauthorization: true },
        })
    }

    /// True when the account's grant was refused or never given: its jobs wait.
    pub async fn needs_reauthorization(&self, account_id: u64) -> Result<bool, sqlx::Error> {
        Ok(self.inner.store.authorization_state(account_id).await? != Some(true))
    }
}

/// The backend's [`AccessTokens`]: tokens in the store, one refresh at a
/// time per account across every worker and instance (module docs).
pub struct StoreTokens {
    store: Store,
    app: OAuthApp,
    kommo_base_url: Option<String>,
    client_config: kommo_client::ClientConfig,
    refresh_ahead: Duration,
    /// This instance: part of the lease owner's name.
    owner: String,
    metrics: Arc<Metrics>,
}

fn store_error(e: sqlx::Error) -> KommoError {
    // The token store is as necessary as Kommo itself: transient.
    KommoError::Budget(format!("token store: {e}"))
}

impl StoreTokens {
    async fn oauth(&self, account_id: u64) -> Result<OAuthClient, KommoError> {
        let base = match &self.kommo_base_url {
            Some(base) => base.clone(),
            None => {
                let account = self.store.account(account_id).await.map_err(store_error)?.ok_or_else(|| {
                    KommoError::ReauthorizationNeeded { reason: format!("account {account_id} is not provisioned") }
                })?;
                account.kommo_base_url.clone().unwrap_or_else(|| account.origin.clone())
            }
        };
        OAuthClient::new(&base, self.app.clone(), self.client_config.clone())
    }

    /// The current access token if it stays good for a while, else `None`.
    fn fresh(&self, stored: &crate::store::tokens::StoredTokens) -> Option<String> {
        // Refresh ahead, but never by more than half the token's lifetime
        // (a short-lived token would otherwise be refreshed on every call).
        let lifetime = stored.tokens.expires_at.saturating_sub(stored.obtained_at);
        let ahead = self.refresh_ahead.min(Duration::from_secs(lifetime / 2));
        stored.tokens.is_fresh(ahead).then(|| stored.tokens.access_token.clone())
    }

    /// Makes sure the account has a token newer than generation `seen`:
    /// refreshes under the lease, or waits for whoever holds it.
    async fn refresh_past(&self, account_id: u64, seen: i64) -> Result<String, KommoError> {
        let owner = format!("{}/{}", self.owner, uuid::Uuid::new_v4().simple());
        let deadline = tokio::time::Instant::now() + REFRESH_LEASE * 2;
        loop {
            let stored = self.load(account_id).await?;
            if stored.generation != seen {
                return Ok(stored.tokens.access_token);
            }
            let until = now_ms() + i64::try_from(REFRESH_LEASE.as_millis()).unwrap_or(30_000);
            if self.store.claim_refresh(account_id, seen, &owner, until).await.map_err(store_error)? {
                return self.refresh_owned(account_id, &owner, &stored.tokens.refresh_token).await;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(KommoError::Budget("timed out waiting for another token refresh".into()));
            }
            tokio::time::sleep(REFRESH_POLL).await;
        }
    }

    async fn refresh_owned(&self, account_id: u64, owner: &str, refresh_token: &str) -> Result<String, KommoError> {
        let oauth = match self.oauth(account_id).await {
            Ok(oauth) => oauth,
            Err(e) => {
                let _ = self.store.abandon_refresh(account_id, owner).await;
                return Err(e);
            }
        };
        self.metrics.token_refreshes.inc();
        match oauth.refresh(refresh_token).await {
            Ok(tokens) => {
                if !self.store.finish_refresh(account_id, owner, &tokens).await.map_err(store_error)? {
                    // Our lease expired mid-refresh and someone else took over;
                    // their pair (or a new installation) wins. Ours is lost,
                    // which Kommo's rotation makes harmless for theirs.
                    tracing::warn!(account_id, "token refresh finished after its lease expired");
                }
                tracing::info!(account_id, "refreshed the Kommo access token");
                Ok(tokens.access_token)
            }
            Err(KommoError::ReauthorizationNeeded { reason }) => {
                tracing::warn!(account_id, %reason, "Kommo refused the refresh token: the account needs re-authorization");
                self.store.mark_needs_reauthorization(account_id, &reason).await.map_err(store_error)?;
                Err(KommoError::ReauthorizationNeeded { reason })
            }
            Err(e) => {
                let _ = self.store.abandon_refresh(account_id, owner).await;
                Err(e)
            }
        }
    }

    async fn load(&self, account_id: u64) -> Result<crate::store::tokens::StoredTokens, KommoError> {
        let stored = self.store.tokens(account_id).await.map_err(store_error)?.ok_or_else(|| {
            KommoError::ReauthorizationNeeded {
                reason: format!("account {account_id} has not installed the integration"),
            }
        })?;
        if stored.needs_reauthorization {
            return Err(KommoError::ReauthorizationNeeded {
                reason: stored.reason.unwrap_or_else(|| "Kommo refused the grant".into()),
            });
        }
        Ok(stored)
    }
}

impl AccessTokens for StoreTokens {
    fn access_token(&self, account_id: u64) -> BoxFuture<'_, Result<String, KommoError>> {
        Box::pin(async move {
            let stored = self.load(account_id).await?;
            match self.fresh(&stored) {
                Some(token) => Ok(token),
                None => self.refresh_past(account_id, stored.generation).await,
            }
        })
    }

    fn refresh_after_rejection<'a>(
        &'a self,
        account_id: u64,
        rejected: &'a str,
    ) -> BoxFuture<'a, Result<(), KommoError>> {
        Box::pin(async move {
            let stored = self.load(account_id).await?;
            if stored.tokens.access_token != rejected {
                return Ok(()); // someone already replaced the refused token
            }
            self.refresh_past(account_id, stored.generation).await.map(drop)
        })
    }
}

/// The backend's [`RequestBudget`]: the schedule lives in the database
/// ([`crate::store::budget`]), shared by every worker and instance.
pub struct SqlBudget {
    store: Store,
    interval: Duration,
}

impl RequestBudget for SqlBudget {
    fn reserve(&self, account_id: u64) -> BoxFuture<'_, Result<Duration, KommoError>> {
        Box::pin(async move {
            self.store
                .reserve_kommo_slot(account_id, self.interval)
                .await
                .map_err(|e| KommoError::Budget(e.to_string()))
        })
    }
}
