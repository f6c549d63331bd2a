//! # callcard-backend
//!
//! The integration side of callcard: the PBX tells it about calls, it keeps
//! every call, and it pushes call state to the widget of the right Kommo user
//! in real time. The contracts with the other parts are in `docs/design.md`;
//! the shared vocabulary (events, the order-free call fold, feed messages,
//! the extension map, webhook signatures) is the `callcard-calls` crate.
//!
//! ```text
//!  PBX ──signed webhook──▶ intake ──▶ group commit ──▶ store (calls + feed
//!                                        │              history, one tx per batch)
//!                                        │ commit
//!                                        ▼
//!                          hub (per-user channels) ◀── PostgreSQL NOTIFY
//!                                        │  ──notifier──▶ to / from other instances
//!                                        ▼
//!  widget ◀── WebSocket / poll ── feed (ticket from a one-time token)
//! ```
//!
//! Dependencies point one way. The services (store, hub, queue, Kommo
//! access, caller ID) know nothing of HTTP; [`state`] holds one handle of
//! each and names no HTTP module; each HTTP module exposes its own
//! `router()` and takes only the sub-states it uses (`FromRef`); [`backend`]
//! merges the routers. `cargo xtask test` checks that no module imports one
//! that imports it back.
//!
//! Layout, one concept per file, roughly in the order a call flows:
//!
//! - [`config`]: every setting declared once, layered by figment: defaults,
//!   TOML file, environment, flags; secrets redacted.
//! - [`backend`]: [`Backend`]: start, the merged routes, provisioning, shutdown;
//!   [`connection_limit`]: the binary's cap on open connections;
//!   [`server`]: the binary's HTTP server, with header-read and idle
//!   timeouts.
//! - [`state`]: what handlers share, and the sub-states they take.
//! - [`extract`]: path parameters, query strings and bodies as extractors
//!   whose refusals are problem documents.
//! - [`intake`]: the PBX webhooks (single events and batches), checked in a
//!   fixed order by the signed-webhook extractor and acknowledged only
//!   after commit.
//! - [`group_commit`]: the webhooks that arrive while one transaction
//!   commits are stored together in the next.
//! - [`store`]: SQLite or PostgreSQL through one `sqlx::Any` code path:
//!   accounts, calls (merged order-free in a transaction), the feed history,
//!   the job table, the caller index, used token ids and tickets.
//! - [`hub`]: in-process per-user fan-out; [`notifier`]: with PostgreSQL,
//!   tells the other instances of committed events (after the commit,
//!   batched, the event in the notice); [`listener`]: brings theirs in;
//!   [`presence`]: the hellos by which instances know of each other, so
//!   an instance alone announces nothing.
//! - [`one_time_token`]: Kommo's `X-Auth-Token` JWT, verified completely,
//!   and the widget-caller extractor.
//! - [`ticket`]: short-lived feed tickets traded for a one-time token, and
//!   the feed-ticket extractor.
//! - [`widget`]: the widget's token-authenticated calls and CORS;
//!   [`admin_rights`]: admin actions checked with Kommo's user rights.
//! - [`feed`]: the WebSocket, polling and current-calls endpoints, offsets,
//!   gaps and heartbeats; [`feed_slots`]: the cap on one user's open feeds.
//! - [`problem`]: `application/problem+json`, the shape of every refusal.
//! - [`secrets`]: credentials sealed at rest (ChaCha20-Poly1305).
//! - [`queue`]: the durable job queue in the call store: leases, retries with
//!   backoff, dead letters, workers. [`ops`]: health, metrics and the
//!   operator's view of the queue.
//! - [`kommo_access`]: installation (OAuth), tokens refreshed once across
//!   instances, the shared 7 rps budget, a `KommoClient` per account;
//!   [`install`]: its HTTP face, `GET /kommo/install`.
//! - [`kommo_hooks`]: `POST /kommo/{account_id}/hooks/{secret}`, Kommo's
//!   change webhooks for the caller index, applied at once.
//! - [`sync`]: what the jobs do in Kommo: call logging and late data
//!   ([`sync::logging`], with the pure log-target rule), call results
//!   ([`sync::results`], with the pure planner); the local caller index
//!   ([`sync::phonebook`]: first sync, reconciliation, link refreshes, and
//!   caller ID from it); and caller ID for the ringing card
//!   ([`sync::caller_id`]: from the index once ready, else Kommo, cached,
//!   single-flight).
//! - [`results_api`]: `POST /widget/calls/{call_id}/result`, the Call
//!   summary's Save: checked, stored, enqueued, answered 202.
//! - [`log_settings_api`]: `/widget/log-settings`, the call note's section
//!   switches, per user over the account's defaults.
//! - [`originate_api`]: `POST /widget/calls/originate`, click-to-call;
//!   [`pbx_client`]: the signed originate request it sends the PBX.
//! - [`metrics`]: Prometheus counters and gauges; [`request_log`]: one span
//!   per request, its query string (tickets, OAuth codes) left out.
//! - [`openapi`]: the document served at `/openapi.json`, generated from the
//!   handlers' `#[utoipa::path]` annotations and the wire types.
//! - [`transcript_links`]: signed, expiring links to a call's full
//!   transcript; [`transcripts`]: the route that serves them.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use callcard_backend::{AccountSetup, Backend, Config};
//! let backend = Backend::start(Config::default()).await?;
//! backend
//!     .provision_account(AccountSetup {
//!         account_id: 31415926,
//!         origin: "http://127.0.0.1:8080".into(),
//!         webhook_secret: "pbx-secret".into(),
//!         extensions: None,
//!         pbx_originate_url: None,
//!     })
//!     .await?;
//! let app = axum::Router::new().nest("/backend", backend.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let closing = backend.clone();
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         let _ = tokio::signal::ctrl_c().await;
//!         closing.close_feeds().await;
//!     })
//!     .await?;
//! backend.shutdown().await;
//! # Ok(()) }
//! ```

// Private modules; the public surface is what is re-exported here.
mod admin_rights;
mod backend;
mod config;
mod connection_limit;
mod extract;
mod feed;
mod feed_slots;
mod group_commit;
mod hub;
mod install;
mod intake;
mod kommo_access;
mod kommo_hooks;
mod listener;
mod log_settings_api;
mod metrics;
mod notifier;
mod one_time_token;
mod openapi;
mod ops;
mod originate_api;
mod pbx_client;
mod presence;
mod problem;
mod queue;
mod request_log;
mod results_api;
pub mod secrets;
mod server;
mod state;
mod store;
mod sync;
mod ticket;
mod transcript_links;
mod transcripts;
mod widget;

pub use backend::Backend;
pub use config::{AccountSetup, Config, QueueConfig, Setting, DEMO_INTEGRATION_SECRET};
pub use connection_limit::LimitedListener;
pub use kommo_access::{AuthStatus, InstallError, KommoAccess};
pub use openapi::document as openapi_document;
pub use problem::Problem;
pub use queue::{Job, Queue};
pub use secrets::Secrets;
pub use server::{serve, Timeouts};
pub use store::jobs::{JobRecord, JobState};
pub use store::phonebook::{DealData, HolderData, IndexChange, PhonebookSync, SyncPhase};
pub use store::{CrmChange, Store, StoredCall, SyncState};
pub use sync::logging::sync_call_log;
pub use sync::phonebook::identify as caller_id_from_index;
pub use sync::results::apply_call_result;
pub use sync::{JobFailure, SyncContext};
