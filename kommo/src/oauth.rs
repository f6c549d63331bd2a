//! OAuth 2.0 with Kommo: getting tokens, and keeping a valid one at hand.
//!
//! Kommo's token endpoint is `POST {account origin}/oauth2/access_token` with
//! `client_id`, `client_secret`, `grant_type` (`authorization_code` or
//! `refresh_token`), `code` or `refresh_token`, and `redirect_uri`; it answers
//! `{token_type: "Bearer", expires_in, access_token, refresh_token}`.
//! [`OAuthClient`] speaks exactly that.
//!
//! The API client never handles refresh tokens itself: it asks an
//! [`AccessTokens`] source for a token before each attempt and, when Kommo
//! answers 401, tells the source which token was refused. The backend
//! implements the trait over its encrypted store; [`InMemoryTokens`] is the
//! reference implementation (and what tests and the demo use):
//!
//! - it refreshes *before* expiry ([`InMemoryTokens::new`]'s `refresh_ahead`),
//!   so requests rarely meet a 401 at all;
//! - **single flight**: one refresh per account at a time. Concurrent callers
//!   queue on the account's gate and, when they get through, find the fresh
//!   token already there instead of refreshing again. That matters because
//!   Kommo rotates refresh tokens: two parallel refreshes with the same
//!   refresh token would make one of them fail and could lose the account;
//! - a refused refresh marks the account as needing reauthorization, and
//!   every later call fails fast with [`KommoError::ReauthorizationNeeded`]
//!   instead of hammering the token endpoint.
//!
//! [`StaticToken`] serves Kommo's long-lived tokens (private integrations).

use crate::http::{answer, decode, http_client, normalize_base_url, transport_error};
use crate::retry::{self, Idempotency};
use crate::tokens::AccessTokens;
use crate::{ClientConfig, KommoError};
use futures::future::BoxFuture;
use reqwest::header::ACCEPT;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A token pair as Kommo issues it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token expires, in unix seconds.
    pub expires_at: u64,
}

impl std::fmt::Debug for TokenSet {
    // Tokens are credentials: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

impl TokenSet {
    /// Whether the access token is still good `margin` from now.
    pub fn is_fresh(&self, margin: Duration) -> bool {
        unix_now() + margin.as_secs() < self.expires_at
    }
}

/// The integration's credentials from Kommo's integration settings.
#[derive(Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: String,
    /// The integration's redirect URI; Kommo wants it on refresh too.
    pub redirect_uri: String,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// Kommo's token endpoint for one account origin. Cheap to clone.
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    base_url: String,
    app: Arc<OAuthApp>,
    config: ClientConfig,
}

#[derive(Serialize)]
struct TokenRequest<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    grant_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    redirect_uri: &'a str,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
}

impl OAuthClient {
    /// `base_url` is the account's origin (`https://acme.kommo.com`), where
    /// Kommo serves `/oauth2/access_token`.
    pub fn new(base_url: &str, app: OAuthApp, config: ClientConfig) -> Result<Self, KommoError> {
        Ok(Self { http: http_client(&config)?, base_url: normalize_base_url(base_url)?, app: Arc::new(app), config })
    }

    /// Trades the one-time authorization `code` (from the install redirect)
    /// for a token pair. Not retried once it may have reached Kommo: the code
    /// is single-use, so a retry could only fail.
    pub async fn exchange_code(&self, code: &str, redirect_uri: &str) -> Result<TokenSet, KommoError> {
        let req = TokenRequest {
            client_id: &self.app.client_id,
            client_secret: &self.app.client_secret,
            grant_type: "authorization_code",
            code: Some(code),
            refresh_token: None,
            redirect_uri,
        };
        self.token_request(&req, Idempotency::Creates).await
    }

    /// Trades the refresh token for a new pair (Kommo rotates both). Retried
    /// on transient failures: if Kommo did rotate and the answer was lost, the
    /// retry is refused and reports [`KommoError::ReauthorizationNeeded`],
    /// which is the truth either way.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, KommoError> {
        let req = TokenRequest {
            client_id: &self.app.client_id,
            client_secret: &self.app.client_secret,
            grant_type: "refresh_token",
            code: None,
            refresh_token: Some(refresh_token),
            redirect_uri: &self.app.redirect_uri,
        };
        self.token_request(&req, Idempotency::Idempotent).await
    }

    async fn token_request(&self, req: &TokenRequest<'_>, idempotency: Idempotency) -> Result<TokenSet, KommoError> {
        let mut retries = 0;
        loop {
            let err = match self.attempt(req).await {
                Ok(tokens) => return Ok(tokens),
                Err(err) => err,
            };
            let delay = retry::next_delay(&self.config, retries, &err, idempotency, &mut rand::thread_rng());
            match delay {
                Some(wait) => {
                    retries += 1;
                    tracing::warn!(error = %err, retry = retries, "retrying Kommo token request");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(err),
            }
        }
    }

    async fn attempt(&self, req: &TokenRequest<'_>) -> Result<TokenSet, KommoError> {
        let response = self
            .http
            .post(format!("{}/oauth2/access_token", self.base_url))
            .header(ACCEPT, "application/json")
            .timeout(self.config.request_timeout)
            .json(req)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport_error)?;
        let body = answer(status, &headers, &body).map_err(|err| match err {
            // A refused grant (bad code, revoked or reused refresh token, wrong
            // secret): nothing but a new authorization will help.
            KommoError::Unauthorized => {
                KommoError::ReauthorizationNeeded { reason: format!("token endpoint: {status}") }
            }
            KommoError::Validation(p) | KommoError::Rejected { problem: Some(p), .. } => {
                KommoError::ReauthorizationNeeded { reason: format!("token endpoint: {p}") }
            }
            other => other,
        })?;
        let body = body.ok_or_else(|| KommoError::Decode { detail: "token endpoint answered 204".into() })?;
        let answer: TokenAnswer = decode(&body)?;
        Ok(TokenSet {
            access_token: answer.access_token,
            refresh_token: answer.refresh_token,
            expires_at: unix_now() + answer.expires_in,
        })
    }
}

/// A long-lived token (Kommo private integrations). A 401 cannot be cured
/// by refreshing, so it is final: [`KommoError::Unauthorized`].
pub struct StaticToken(String);

impl StaticToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl AccessTokens for StaticToken {
    fn access_token(&self, _account_id: u64) -> BoxFuture<'_, Result<String, KommoError>> {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }

    fn refresh_after_rejection<'a>(
        &'a self,
        _account_id: u64,
        _rejected: &'a str,
    ) -> BoxFuture<'a, Result<(), KommoError>> {
        Box::pin(std::future::ready(Err(KommoError::Unauthorized)))
    }
}

/// Called with every new token pair, so the owner can persist it (Kommo
/// rotates the refresh token: a lost pair is a lost account).
pub type OnRefresh = Arc<dyn Fn(u64, &TokenSet) + Send + Sync>;

/// Token pairs kept in memory, refreshed ahead of expiry, one refresh in
/// flight per account (module docs).
pub struct InMemoryTokens {
    refresh_ahead: Duration,
    accounts: Mutex<HashMap<u64, Arc<AccountTokens>>>,
    on_refresh: Option<OnRefresh>,
}

struct AccountTokens {
    oauth: OAuthClient,
    state: Mutex<TokenState>,
    /// Held for the whole refresh: the single-flight gate.
    gate: tokio::sync::Mutex<()>,
    refreshes: AtomicU64,
}

struct TokenState {
    tokens: TokenSet,
    /// When we got `tokens` (unix seconds): a pair that lives shorter than
    /// `refresh_ahead` must not count as stale the moment it arrives.
    obtained_at: u64,
    /// Set when Kommo refused the refresh token: why.
    revoked: Option<String>,
}

impl InMemoryTokens {
    /// Tokens are refreshed once they expire within `refresh_ahead` (Kommo's
    /// last for a day; five minutes ahead is plenty).
    pub fn new(refresh_ahead: Duration) -> Self {
        Self { refresh_ahead, accounts: Mutex::new(HashMap::new()), on_refresh: None }
    }

    /// Persists every refreshed pair through `hook`.
    pub fn on_refresh(mut self, hook: OnRefresh) -> Self {
        self.on_refresh = Some(hook);
        self
    }

    /// Adds or replaces the account's tokens (after an install, or a
    /// reauthorization: this clears a revoked mark).
    pub fn insert(&self, account_id: u64, oauth: OAuthClient, tokens: TokenSet) {
        let entry = Arc::new(AccountTokens {
            oauth,
            state: Mutex::new(TokenState { tokens, obtained_at: unix_now(), revoked: None }),
            gate: tokio::sync::Mutex::new(()),
            refreshes: AtomicU64::new(0),
        });
        lock(&self.accounts).insert(account_id, entry);
    }

    /// The account's current pair, e.g. to persist it.
    pub fn tokens(&self, account_id: u64) -> Option<TokenSet> {
        self.entry(account_id).ok().map(|a| lock(&a.state).tokens.clone())
    }

    /// How many refreshes this account has had (since `insert`).
    pub fn refresh_count(&self, account_id: u64) -> u64 {
        self.entry(account_id).map(|a| a.refreshes.load(Ordering::SeqCst)).unwrap_or(0)
    }

    fn entry(&self, account_id: u64) -> Result<Arc<AccountTokens>, KommoError> {
        lock(&self.accounts)
            .get(&account_id)
            .cloned()
            .ok_or_else(|| KommoError::ReauthorizationNeeded { reason: format!("no tokens for account {account_id}") })
    }

    /// Refreshes under the gate (the caller holds it) and stores the result.
    async fn refresh_locked(&self, account_id: u64, account: &AccountTokens) -> Result<String, KommoError> {
        let refresh_token = lock(&account.state).tokens.refresh_token.clone();
        account.refreshes.fetch_add(1, Ordering::SeqCst);
        match account.oauth.refresh(&refresh_token).await {
            Ok(tokens) => {
                if let Some(hook) = &self.on_refresh {
                    hook(account_id, &tokens);
                }
                let access = tokens.access_token.clone();
                let mut state = lock(&account.state);
                state.tokens = tokens;
                state.obtained_at = unix_now();
                drop(state);
                tracing::info!(account_id, "refreshed Kommo access token");
                Ok(access)
            }
            Err(err) => {
                if let KommoError::ReauthorizationNeeded { reason } = &err {
                    tracing::warn!(account_id, %reason, "Kommo refused the refresh token; account needs reauthorization");
                    lock(&account.state).revoked = Some(reason.clone());
                }
                Err(err)
            }
        }
    }
}

impl AccountTokens {
    /// The current access token if it is good for a while yet.
    fn fresh(&self, ahead: Duration) -> Result<Option<String>, KommoError> {
        let state = lock(&self.state);
        if let Some(reason) = &state.revoked {
            return Err(KommoError::ReauthorizationNeeded { reason: reason.clone() });
        }
        // Refresh ahead by `ahead`, but never by more than half the token's
        // lifetime, or a short-lived token would be refreshed on every call.
        let lifetime = state.tokens.expires_at.saturating_sub(state.obtained_at);
        let ahead = ahead.min(Duration::from_secs(lifetime / 2));
        Ok(state.tokens.is_fresh(ahead).then(|| state.tokens.access_token.clone()))
    }
}

impl AccessTokens for InMemoryTokens {
    fn access_token(&self, account_id: u64) -> BoxFuture<'_, Result<String, KommoError>> {
        Box::pin(async move {
            let account = self.entry(account_id)?;
            if let Some(token) = account.fresh(self.refresh_ahead)? {
                return Ok(token);
            }
            let _gate = account.gate.lock().await;
            // Whoever held the gate before us may have refreshed already.
            if let Some(token) = account.fresh(self.refresh_ahead)? {
                return Ok(token);
            }
            self.refresh_locked(account_id, &account).await
        })
    }

    fn refresh_after_rejection<'a>(
        &'a self,
        account_id: u64,
        rejected: &'a str,
    ) -> BoxFuture<'a, Result<(), KommoError>> {
        Box::pin(async move {
            let account = self.entry(account_id)?;
            let _gate = account.gate.lock().await;
            account.fresh(Duration::ZERO)?;
            if lock(&account.state).tokens.access_token != rejected {
                return Ok(()); // someone else already replaced the refused token
            }
            self.refresh_locked(account_id, &account).await.map(drop)
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing here can leave the state half-updated, so a poisoned lock is
    // still consistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
