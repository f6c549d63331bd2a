//! The request pipeline: every call to Kommo's REST API goes through
//! `KommoClient::execute`, which in order, for each attempt,
//!
//! 1. gets a valid access token from the account's [`AccessTokens`],
//! 2. waits for a start slot from the account's [`RequestBudget`] (retries
//!    spend the budget too: Kommo counts them),
//! 3. sends the request with a timeout,
//! 4. sorts the answer into success or a [`KommoError`],
//! 5. on a 401, asks the token source for one forced refresh and tries again
//!    (once: a second 401 means the token is revoked),
//! 6. on other failures asks [`retry::next_delay`] whether and when to try
//!    again.
//!
//! The API area files (`notes.rs`, `calls.rs`...) only build requests and
//! read answers; nothing there knows about tokens, budgets or retries.

use crate::budget::{LocalBudget, RequestBudget};
use crate::retry::{self, Idempotency};
use crate::tokens::AccessTokens;
use crate::{ClientConfig, KommoError, Problem};
use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// A client for one Kommo account's REST API. Cloning is cheap (one `Arc`);
/// clones share the connection pool, the token source and the budget.
///
/// ```no_run
/// # async fn demo() -> Result<(), kommo_client::KommoError> {
/// use std::sync::Arc;
/// use kommo_client::{KommoClient, LocalBudget, StaticToken};
///
/// let budget = Arc::new(LocalBudget::kommo()); // one per process, shared by all clients
/// let kommo = KommoClient::builder("https://acme.kommo.com", 31415926, Arc::new(StaticToken::new("long-lived")))
///     .budget(budget)
///     .build()?;
/// if let Some(hit) = kommo.identify_caller("+18305703077", &[8320148]).await? {
///     println!("{:?} {}", hit.entity.kind, hit.entity.id);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KommoClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The account's origin without a trailing slash: `https://acme.kommo.com`
    /// or the sandbox's `http://127.0.0.1:8080`.
    base_url: String,
    account_id: u64,
    tokens: Arc<dyn AccessTokens>,
    budget: Arc<dyn RequestBudget>,
    config: ClientConfig,
}

/// Builds a [`KommoClient`]; see [`KommoClient::builder`].
pub struct KommoClientBuilder {
    base_url: String,
    account_id: u64,
    tokens: Arc<dyn AccessTokens>,
    budget: Option<Arc<dyn RequestBudget>>,
    config: ClientConfig,
    http: Option<reqwest::Client>,
}

impl KommoClientBuilder {
    /// The budget shared with every other client of this account. Without
    /// one, the client gets a private [`LocalBudget`], which only keeps the
    /// limit if this is the only client talking to the account.
    pub fn budget(mut self, budget: Arc<dyn RequestBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    pub fn config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    /// Shares an existing connection pool (e.g. one `reqwest::Client` for all
    /// accounts). Its own timeouts are not used: the client sets
    /// [`ClientConfig::request_timeout`] on every request.
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    pub fn build(self) -> Result<KommoClient, KommoError> {
        let http = match self.http {
            Some(http) => http,
            None => http_client(&self.config)?,
        };
        let base_url = normalize_base_url(&self.base_url)?;
        Ok(KommoClient {
            inner: Arc::new(Inner {
                http,
                base_url,
                account_id: self.account_id,
                tokens: self.tokens,
                budget: self.budget.unwrap_or_else(|| Arc::new(LocalBudget::kommo())),
                config: self.config,
            }),
        })
    }
}

/// The connection pool with the config's connect timeout.
pub(crate) fn http_client(config: &ClientConfig) -> Result<reqwest::Client, KommoError> {
    reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .user_agent(config.user_agent.clone())
        .build()
        .map_err(|e| KommoError::Transport { detail: e.to_string(), request_sent: false })
}

/// Accepts `https://acme.kommo.com`, `https://acme.kommo.com/` or an origin
/// with a path prefix; refuses anything that is not an http(s) URL.
pub(crate) fn normalize_base_url(raw: &str) -> Result<String, KommoError> {
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| KommoError::Unsupported(format!("base URL {raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(KommoError::Unsupported(format!("base URL {raw:?} must be http(s)://host")));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// One REST request as the API area files describe it.
#[derive(Clone, Debug)]
pub(crate) struct ApiRequest {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Value>,
    idempotency: Idempotency,
}

impl ApiRequest {
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path, None, Idempotency::Idempotent)
    }

    /// A POST that creates something: only retried when provably not processed.
    pub(crate) fn create(path: impl Into<String>, body: &impl Serialize) -> Result<Self, KommoError> {
        Ok(Self::new(Method::POST, path, Some(to_json(body)?), Idempotency::Creates))
    }

    /// A POST whose repetition is harmless (link, unlink).
    pub(crate) fn post_idempotent(path: impl Into<String>, body: &impl Serialize) -> Result<Self, KommoError> {
        Ok(Self::new(Method::POST, path, Some(to_json(body)?), Idempotency::Idempotent))
    }

    /// PATCH sends the full new values of the fields it names, so repeating
    /// it leaves the record the same.
    pub(crate) fn patch(path: impl Into<String>, body: &impl Serialize) -> Result<Self, KommoError> {
        Ok(Self::new(Method::PATCH, path, Some(to_json(body)?), Idempotency::Idempotent))
    }

    pub(crate) fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    pub(crate) fn query(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.query.push((key.into(), value.to_string()));
        self
    }

    fn new(method: Method, path: impl Into<String>, body: Option<Value>, idempotency: Idempotency) -> Self {
        Self { method, path: path.into(), query: Vec::new(), body, idempotency }
    }
}

fn to_json(body: &impl Serialize) -> Result<Value, KommoError> {
    serde_json::to_value(body).map_err(|e| KommoError::Unsupported(format!("request body: {e}")))
}

/// How many items Kommo gives per page at most, and how many pages a listing
/// follows before it stops (a runaway guard: 50 × 250 records).
pub(crate) const PAGE_LIMIT: u32 = 250;
const MAX_PAGES: u32 = 50;

impl KommoClient {
    /// Starts building a client for the account at `base_url`
    /// (`https://{subdomain}.kommo.com`, or the sandbox's origin) whose
    /// tokens come from `tokens`. `account_id` keys the budget and the
    /// token source.
    pub fn builder(base_url: impl Into<String>, account_id: u64, tokens: Arc<dyn AccessTokens>) -> KommoClientBuilder {
        KommoClientBuilder {
            base_url: base_url.into(),
            account_id,
            tokens,
            budget: None,
            config: ClientConfig::default(),
            http: None,
        }
    }

    /// The Kommo account this client talks to.
    pub fn account_id(&self) -> u64 {
        self.inner.account_id
    }

    /// The origin requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Runs `req` through the pipeline (module docs) and returns the answer's
    /// body, or `None` for 204 No Content (Kommo's answer to an empty list).
    pub(crate) async fn execute(&self, req: &ApiRequest) -> Result<Option<Vec<u8>>, KommoError> {
        let inner = &*self.inner;
        let account = inner.account_id;
        let mut retries = 0;
        let mut refreshed = false;
        loop {
            let token = inner.tokens.access_token(account).await?;
            inner.budget.acquire(account).await?;
            let err = match self.attempt(req, &token).await {
                Ok(body) => return Ok(body),
                Err(err) => err,
            };
            if matches!(err, KommoError::Unauthorized) && !refreshed {
                // The token may have been revoked or expired early. One forced
                // refresh; a second 401 is final.
                refreshed = true;
                tracing::info!(account, path = %req.path, "Kommo refused the access token; refreshing once");
                inner.tokens.refresh_after_rejection(account, &token).await?;
                continue;
            }
            let delay = retry::next_delay(&inner.config, retries, &err, req.idempotency, &mut rand::thread_rng());
            match delay {
                Some(wait) => {
                    retries += 1;
                    tracing::warn!(account, method = %req.method, path = %req.path, error = %err, retry = retries,
                        wait_ms = wait.as_millis() as u64, "retrying Kommo request");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(err),
            }
        }
    }

    /// One HTTP attempt, no retries.
    async fn attempt(&self, req: &ApiRequest, token: &str) -> Result<Option<Vec<u8>>, KommoError> {
        let inner = &*self.inner;
        let url = format!("{}{}", inner.base_url, req.path);
        let mut builder = inner
            .http
            .request(req.method.clone(), url)
            .bearer_auth(token)
            .header(ACCEPT, "application/hal+json, application/json, application/problem+json")
            .timeout(inner.config.request_timeout);
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport_error)?;
        answer(status, &headers, &body)
    }

    /// [`execute`](Self::execute) and decode the JSON answer; `None` for 204.
    pub(crate) async fn send<T: DeserializeOwned>(&self, req: &ApiRequest) -> Result<Option<T>, KommoError> {
        match self.execute(req).await? {
            None => Ok(None),
            Some(body) => decode(&body).map(Some),
        }
    }

    /// Like [`send`](Self::send) for answers that must have a body.
    pub(crate) async fn send_expect<T: DeserializeOwned>(&self, req: &ApiRequest) -> Result<T, KommoError> {
        self.send(req).await?.ok_or_else(|| KommoError::Decode { detail: "expected a body, got 204 No Content".into() })
    }

    /// Follows a paginated listing (`page`, `limit`) and gathers
    /// `_embedded.{key}` of every page. 204 ends the listing (Kommo's way of
    /// saying "nothing (more)").
    pub(crate) async fn list_all<T: DeserializeOwned>(&self, req: ApiRequest, key: &str) -> Result<Vec<T>, KommoError> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let paged = req.clone().query("page", page).query("limit", PAGE_LIMIT);
            let Some(answer) = self.send::<Value>(&paged).await? else { break };
            let items: Vec<T> = embedded(&answer, key)?;
            let full_page = items.len() as u32 >= PAGE_LIMIT;
            let has_next = answer.pointer("/_links/next").is_some();
            let empty = items.is_empty();
            out.extend(items);
            if empty || !(full_page || has_next) {
                break;
            }
        }
        Ok(out)
    }
}

/// Sorts a finished HTTP exchange into the body or a typed error.
pub(crate) fn answer(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<Option<Vec<u8>>, KommoError> {
    if status == StatusCode::NO_CONTENT || (status.is_success() && body.iter().all(u8::is_ascii_whitespace)) {
        return Ok(None);
    }
    if status.is_success() {
        return Ok(Some(body.to_vec()));
    }
    let code = status.as_u16();
    Err(match status {
        StatusCode::UNAUTHORIZED => KommoError::Unauthorized,
        StatusCode::TOO_MANY_REQUESTS => KommoError::RateLimited {
            retry_after: headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(retry::parse_retry_after),
        },
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            KommoError::Validation(Problem::from_body(code, body))
        }
        StatusCode::NOT_FOUND => KommoError::NotFound,
        s if s.is_server_error() => KommoError::Server { status: code },
        _ => KommoError::Rejected { status: code, problem: Some(Problem::from_body(code, body)) },
    })
}

/// Sorts reqwest's failures by whether Kommo can have seen the request.
pub(crate) fn transport_error(e: reqwest::Error) -> KommoError {
    if e.is_connect() {
        // Includes connect timeouts: nothing was sent yet.
        KommoError::Transport { detail: e.to_string(), request_sent: false }
    } else if e.is_timeout() {
        KommoError::Timeout
    } else {
        KommoError::Transport { detail: e.to_string(), request_sent: true }
    }
}

pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, KommoError> {
    serde_json::from_slice(body).map_err(|e| KommoError::Decode {
        detail: format!("{e}; body starts {:?}", String::from_utf8_lossy(&body[..body.len().min(200)])),
    })
}

/// `answer._embedded.{key}` as a list; missing means empty.
pub(crate) fn embedded<T: DeserializeOwned>(answer: &Value, key: &str) -> Result<Vec<T>, KommoError> {
    match answer.get("_embedded").and_then(|e| e.get(key)) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(items) => {
            Vec::<T>::deserialize(items).map_err(|e| KommoError::Decode { detail: format!("_embedded.{key}: {e}") })
        }
    }
}
