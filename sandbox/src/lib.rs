//! # kommo-sandbox
//!
//! A faithful local Kommo: the part of Kommo's REST API callcard uses, with
//! Kommo's documented behaviour (`shared/kommo-facts.md`), plus the host page
//! that stands in for Kommo's interface, all on one origin. The backend talks
//! to it with the very client it uses for the real Kommo; only the base URL
//! differs.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use kommo_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::new(SandboxConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, sandbox.router()).await
//! # }
//! ```
//!
//! ## Layout, one concept per file
//!
//! The modules are private but [`seed`] (the seeded data's names and numbers)
//! and [`one_time_token`] (signing tokens for tests); what else callers use
//! is re-exported at the root.
//!
//! - [`config`]: [`SandboxConfig`], where the sandbox lives and its knobs.
//! - [`store`]: the account's data in memory, with the indexes that keep
//!   every handler O(small).
//! - [`seed`]: the demo account, and the phone numbers that exercise each
//!   branch of the caller-ID and call-matching rules ([`seed::numbers`]).
//! - [`problem`]: hal+json answers, 204 for empty lists, problem+json errors
//!   with `validation-errors`.
//! - [`oauth`]: `POST /oauth2/access_token`, expiring and rotating tokens,
//!   and who may call `/api/...` (bearer tokens or the host page's session).
//! - [`limits`]: 7 requests per second per account, 429 + `Retry-After`.
//! - [`faults`]: injected 5xx, 429, delays and dropped connections.
//! - [`account`]: the account, its users and pipeline statuses.
//! - [`entities`]: contacts, companies, leads, customers: create, update,
//!   list with `query`, paging and `with=`.
//! - [`links`]: links between records, link and unlink.
//! - [`caller_id`]: `POST /api/v2/events`, Kommo's caller-ID rule as a pure
//!   function over the store.
//! - [`calls`]: `POST /api/v4/calls`, Kommo's call-matching rule as a pure
//!   function over the store.
//! - [`notes`]: the four note types on every record kind, read and PATCH.
//! - [`tasks`]: `POST`/`GET`/`PATCH /api/v4/tasks`.
//! - [`unsorted`]: incoming leads: create (sip), accept, decline, list.
//! - [`one_time_token`]: the `X-Auth-Token` JWTs the host page hands the widget.
//! - [`host_page`]: the static host page, the widget package, the session
//!   and the widget's saved settings.
//! - [`webhooks`]: `GET|POST|DELETE /api/v4/webhooks`, and the form-encoded
//!   deliveries (with retries) of every change to a record.
//! - [`records`]: deleting and restoring records, as a person does in
//!   Kommo's interface.
//! - [`inspect`]: `GET /sandbox/inspect`, everything the product wrote.
//! - [`snapshot`]: saving and loading the store.
//!
//! ## Routes
//!
//! Kommo (`/api/...`, `/oauth2/...`; fault injection applies here):
//! - `POST /oauth2/access_token`
//! - `GET /api/v4/account`, `GET /api/v4/users`, `GET /api/v4/users/{id}`,
//!   `GET /api/v4/leads/pipelines`
//! - for each of `contacts`, `companies`, `leads`, `customers`:
//!   `GET|POST|PATCH /api/v4/{kind}`, `GET|PATCH /api/v4/{kind}/{id}`,
//!   `GET|POST|PATCH /api/v4/{kind}/notes`, `GET|PATCH /api/v4/{kind}/notes/{note_id}`,
//!   `GET|POST /api/v4/{kind}/{id}/notes`, `GET|PATCH /api/v4/{kind}/{id}/notes/{note_id}`,
//!   `POST /api/v4/{kind}/link`, `POST /api/v4/{kind}/unlink`,
//!   `POST /api/v4/{kind}/{id}/link`, `POST /api/v4/{kind}/{id}/unlink`,
//!   `GET /api/v4/{kind}/{id}/links`
//! - `POST /api/v2/events` (and with a trailing slash)
//! - `POST /api/v4/calls`
//! - `GET|POST|DELETE /api/v4/webhooks`
//! - `GET|POST|PATCH /api/v4/tasks`, `GET|PATCH /api/v4/tasks/{id}`
//! - `GET /api/v4/leads/unsorted`, `POST /api/v4/leads/unsorted/sip`,
//!   `GET /api/v4/leads/unsorted/{uid}`, `POST /api/v4/leads/unsorted/{uid}/accept`,
//!   `DELETE /api/v4/leads/unsorted/{uid}/decline`
//!
//! Sandbox administration (never rate-limited, never faulted, no auth):
//! - `POST /sandbox/one-time-token`, `GET /sandbox/session`,
//!   `GET|PUT /sandbox/widget-settings`
//! - `GET /sandbox/inspect`
//! - `GET|POST|DELETE /sandbox/faults`, `POST /sandbox/faults/reset`
//! - `POST /sandbox/oauth/authorize`, `POST /sandbox/oauth/long-lived-token`,
//!   `POST /sandbox/oauth/revoke`
//! - `PUT /sandbox/rate-limit` `{"per_second": N | null}`
//! - `POST /sandbox/reset` `{"seed"?: bool}`, `POST /sandbox/snapshot`
//!
//! Static: `/upl/callcard/widget/...`, `/vendor/require.js`,
//! `/vendor/jquery.js`, and everything else from `www/` (`/` is index.html).
//!
//! The router has a fallback (the host page), so the demo mounts the
//! backend with `sandbox.router().nest("/backend", backend_router)`.

mod account;
mod caller_id;
mod calls;
mod config;
mod entities;
mod faults;
mod host_page;
mod inspect;
mod limits;
mod links;
mod notes;
mod oauth;
pub mod one_time_token;
mod problem;
mod records;
pub mod seed;
mod snapshot;
mod store;
mod tasks;
mod unsorted;
mod webhooks;

mod routes;

pub use caller_id::identify as identify_caller;
pub use calls::match_call;
pub use config::SandboxConfig;
pub use faults::FaultConfig;
pub use oauth::TokenPair;
pub use store::{Store, UnsortedStatus};
pub use webhooks::{Delivery as WebhookDelivery, DeliveryLog as WebhookLog};

use std::sync::{Arc, Mutex, MutexGuard};

/// A running Kommo account. Cheap to clone (an `Arc`); every clone is the
/// same account.
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

struct Shared {
    config: SandboxConfig,
    store: Mutex<store::Store>,
    limiter: limits::RateLimiter,
    faults: faults::Faults,
    webhook_log: webhooks::DeliveryLog,
    /// Delivers webhooks.
    http: reqwest::Client,
}

impl Sandbox {
    /// Builds the account: from `config.snapshot` when that file exists and
    /// loads, else empty, seeded with the demo data when `config.seed`.
    pub fn new(config: SandboxConfig) -> Sandbox {
        let store = config
            .snapshot
            .as_deref()
            .filter(|p| p.exists())
            .and_then(|p| match snapshot::load(p) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("ignoring snapshot {}: {e:#}", p.display());
                    None
                }
            })
            .unwrap_or_else(|| fresh_store(&config, config.seed));
        Sandbox {
            shared: Arc::new(Shared {
                limiter: limits::RateLimiter::new(config.rate_limit_per_second),
                faults: faults::Faults::default(),
                webhook_log: webhooks::DeliveryLog::default(),
                http: reqwest::Client::new(),
                store: Mutex::new(store),
                config,
            }),
        }
    }

    /// Every route of the sandbox (see the crate doc), with its state applied.
    pub fn router(&self) -> axum::Router {
        routes::router(self.clone())
    }

    /// Binds nothing itself: serves the router on `listener` until the future is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    pub fn account_id(&self) -> u64 {
        self.store().account.id
    }

    /// Locks the store. Keep the guard short and never hold it across `.await`.
    pub fn store(&self) -> MutexGuard<'_, store::Store> {
        // A panicking handler must not take the whole sandbox down with it.
        self.shared.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn limiter(&self) -> &limits::RateLimiter {
        &self.shared.limiter
    }

    pub fn faults(&self) -> &faults::Faults {
        &self.shared.faults
    }

    /// Every webhook delivery so far, with its attempts.
    pub fn webhook_log(&self) -> &webhooks::DeliveryLog {
        &self.shared.webhook_log
    }

    fn http_client(&self) -> &reqwest::Client {
        &self.shared.http
    }

    /// Sets (or with `None` lifts) the per-second request budget.
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.shared.limiter.set_limit(per_second);
    }

    /// Sets the injected faults.
    pub fn set_faults(&self, faults: FaultConfig) {
        self.shared.faults.set(faults);
    }

    /// Replaces the whole account with a fresh one (seeded or empty). Tokens survive.
    pub fn reset(&self, seed: bool) {
        let mut fresh = fresh_store(self.config(), seed);
        let mut st = self.store();
        fresh.tokens = std::mem::take(&mut st.tokens);
        *st = fresh;
    }
}

fn fresh_store(config: &SandboxConfig, seed: bool) -> store::Store {
    let mut st = seed::empty_account(config.account_id, &config.subdomain);
    if seed {
        seed::seed(&mut st);
    }
    st
}
