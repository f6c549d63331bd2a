//! The running backend: its shared state, its routes, its background tasks
//! and its shutdown.

use crate::config::{AccountSetup, Config, DEMO_INTEGRATION_SECRET};
use crate::group_commit::GroupCommit;
use crate::hub::{self, Hub, Publisher};
use crate::kommo_access::{InstallError, KommoAccess};
use crate::metrics::Metrics;
use crate::one_time_token::Verifier;
use crate::problem::Problem;
use crate::queue::Queue;
use crate::store::{Dialect, Recorded, Store, StoredCall};
use crate::sync::caller_id::CallerIdService;
use crate::sync::SyncContext;
use crate::{feed, intake, kommo_access, openapi, ops, results_api, widget};
use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use callcard_calls::extensions::ExtensionMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// How often expired tickets, token ids and old feed events are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long finished jobs are kept (dead ones stay until an operator acts).
const JOBS_KEPT: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long shutdown waits for feed connections to close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What every request handler shares.
pub struct App {
    pub(crate) config: Config,
    pub(crate) store: Store,
    pub(crate) hub: Arc<Hub>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) verifier: Verifier,
    /// Tags this instance's NOTIFYs so it does not deliver its own events twice.
    pub(crate) instance: String,
    /// The durable job queue (enqueue, wake the workers).
    pub(crate) queue: Queue,
    /// Tokens, budget and clients for every account's Kommo.
    pub(crate) access: KommoAccess,
    /// Caller ID's answers and names (`crate::sync::caller_id`).
    pub(crate) caller_id: CallerIdService,
    /// Where intake stores events: many webhooks per transaction.
    pub(crate) group_commit: GroupCommit,
    shutdown: watch::Sender<bool>,
    shutting_down: AtomicBool,
    /// Woken whenever a feed connection closes (for draining).
    pub(crate) feed_closed: Notify,
}

impl App {
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Counts a recorded event and wakes the job workers if it enqueued
    /// work. (Its feed event already went to local connections at commit,
    /// and to other instances through NOTIFY.)
    pub(crate) fn after_record(&self, recorded: &Recorded) {
        if recorded.changed {
            self.metrics.events_stored.inc();
        } else {
            self.metrics.events_unchanged.inc();
        }
        if recorded.job.is_some() {
            self.queue.wake();
        }
    }
}

/// The integration backend. Cheap to clone; every clone is the same backend.
#[derive(Clone)]
pub struct Backend {
    app: Arc<App>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("instance", &self.app.instance).finish_non_exhaustive()
    }
}

impl Backend {
    /// Opens the store (applying migrations), provisions the configured
    /// accounts and starts the background tasks: pruning, and with
    /// PostgreSQL the cross-instance listener (connected before this
    /// returns, so no event committed afterwards is missed).
    pub async fn start(config: Config) -> anyhow::Result<Backend> {
        config.validate()?;
        if config.integration_secret == DEMO_INTEGRATION_SECRET {
            tracing::warn!("running with the demo integration secret; set CALLCARD_INTEGRATION_SECRET in production");
        }
        if config.secret_key.is_none() {
            tracing::warn!("running with the published demo secret key; set CALLCARD_SECRET_KEY in production");
        }
        let store = Store::open(
            &config.database_url,
            config.max_db_connections,
            config.feed_history_per_user,
            config.secrets()?,
        )
        .await?;
        for account in &config.accounts {
            store.upsert_account(account).await.context("provisioning configured accounts")?;
        }
        let (shutdown, _) = watch::channel(false);
        let instance = format!("{}", uuid::Uuid::new_v4().simple());
        let hub = Arc::new(Hub::default());
        let metrics = Arc::new(Metrics::default());
        let publisher = Publisher { hub: hub.clone(), instance: instance.clone() };
        store.set_publisher(publisher.clone());
        let access = KommoAccess::new(&config, store.clone(), publisher, metrics.clone(), &instance)?;
        let group_commit = GroupCommit::start(store.clone(), metrics.clone());
        let app = Arc::new(App {
            verifier: Verifier::new(&config.integration_secret, &config.public_base_url),
            store: store.clone(),
            hub,
            metrics,
            instance,
            queue: Queue::new(store.clone()),
            access,
            caller_id: CallerIdService::new(config.caller_id_cache_ttl, config.caller_name_cache_ttl),
            group_commit,
            shutdown,
            shutting_down: AtomicBool::new(false),
            feed_closed: Notify::new(),
            config,
        });
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(prune(app.clone())));
        tasks.extend(app.queue.start_workers(
            &app.config.queue,
            app.access.clone(),
            app.metrics.clone(),
            &app.instance,
            app.shutdown_signal(),
        ));
        if store.dialect() == Dialect::Postgres {
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            tasks.push(tokio::spawn(hub::listen(
                store.clone(),
                app.hub.clone(),
                app.metrics.clone(),
                app.instance.clone(),
                app.shutdown_signal(),
                ready_tx,
            )));
            tokio::time::timeout(Duration::from_secs(10), ready_rx)
                .await
                .context("the PostgreSQL feed listener did not connect within 10 s")?
                .context("the PostgreSQL feed listener stopped")?;
        }
        tracing::info!(instance = %app.instance, dialect = ?store.dialect(), "backend started");
        Ok(Backend { app, tasks: Arc::new(Mutex::new(tasks)) })
    }

    /// Every route of `docs/design.md`, relative to the backend's base URL
    /// (nest it under `/backend`, or serve it at the root).
    pub fn router(&self) -> Router {
        let app = self.app.clone();
        // The 405 fallback is set on each group before its layers: set later,
        // it would replace the CORS layer's answer to preflight requests.
        let pbx = Router::new()
            .route("/pbx/{account_id}/events", post(intake::post_event))
            .route("/pbx/{account_id}/calls", post(intake::post_batch))
            .method_not_allowed_fallback(method_not_allowed);
        let widget = Router::new()
            .route("/widget/ticket", post(widget::post_ticket))
            .route("/widget/settings", put(widget::put_settings))
            .route("/widget/feed", get(feed::websocket))
            .route("/widget/feed/poll", get(feed::poll))
            .route("/widget/calls", get(feed::current_calls))
            .route("/widget/calls/{call_id}/result", post(results_api::post_result))
            .route("/widget/status", get(widget::get_status))
            .method_not_allowed_fallback(method_not_allowed)
            .layer(widget::cors(app.clone()));
        let kommo = Router::new()
            .route("/kommo/install", get(kommo_access::get_install))
            .route("/ops/jobs", get(ops::list_jobs))
            .route("/ops/jobs/{id}/retry", post(ops::retry_job))
            .method_not_allowed_fallback(method_not_allowed);
        let operations = Router::new()
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .route("/openapi.json", get(|| async { Json(openapi::document()) }))
            .method_not_allowed_fallback(method_not_allowed);
        pbx.merge(widget)
            .merge(kommo)
            .merge(operations)
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(app.clone(), count_errors))
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .with_state(app)
    }

    /// Creates or updates an account (its extension map is kept).
    pub async fn provision_account(&self, setup: AccountSetup) -> anyhow::Result<()> {
        anyhow::ensure!(setup.account_id > 0 && i64::try_from(setup.account_id).is_ok(), "account_id out of range");
        anyhow::ensure!(!setup.webhook_secret.is_empty(), "webhook_secret must not be empty");
        anyhow::ensure!(
            setup.origin.starts_with("https://") || setup.origin.starts_with("http://"),
            "origin must be an http(s) origin"
        );
        self.app.store.upsert_account(&setup).await?;
        tracing::info!(account_id = setup.account_id, origin = %setup.origin, "account provisioned");
        Ok(())
    }

    /// Replaces an account's extension-to-user mapping (what the widget's
    /// `PUT /widget/settings` does).
    pub async fn set_extensions(&self, account_id: u64, extensions: ExtensionMap) -> anyhow::Result<()> {
        let found = self.app.store.set_extensions(account_id, &extensions).await?;
        anyhow::ensure!(found, "account {account_id} is not provisioned");
        Ok(())
    }

    /// Completes the account's Kommo installation with an authorization
    /// `code` from the Kommo at `base_url` (what `GET /kommo/install` does
    /// with Kommo's redirect; the demo calls it with a code from the
    /// sandbox). The account must be provisioned, and `code` must be its.
    pub async fn install_account(&self, account_id: u64, code: &str, base_url: &str) -> Result<(), InstallError> {
        self.app.access.install_at(Some(account_id), code, base_url).await?;
        self.app.caller_id.authorized(account_id);
        self.app.queue.wake();
        Ok(())
    }

    /// Tokens, budget and clients for every account's Kommo.
    pub fn kommo(&self) -> &KommoAccess {
        &self.app.access
    }

    /// The durable job queue.
    pub fn queue(&self) -> &Queue {
        &self.app.queue
    }

    /// What a job handler for `account_id` works with (for tests and tools
    /// that run sync code outside the workers).
    pub async fn sync_context(&self, account_id: u64) -> anyhow::Result<SyncContext> {
        Ok(SyncContext {
            store: self.app.store.clone(),
            kommo: self.app.access.kommo_client(account_id).await?,
            account_id,
            publisher: self.app.access.publisher(),
        })
    }

    /// This instance's id (the lease owner prefix of its workers).
    pub fn instance(&self) -> &str {
        &self.app.instance
    }

    /// The store, for the parts of the product that build on the calls
    /// (CRM sync) and for tests.
    pub fn store(&self) -> &Store {
        &self.app.store
    }

    /// A stored call by account and PBX call id.
    pub async fn call(&self, account_id: u64, call_id: &str) -> anyhow::Result<Option<StoredCall>> {
        Ok(self.app.store.call(account_id, call_id).await?)
    }

    /// The Prometheus text `GET /metrics` answers.
    pub fn metrics_text(&self) -> String {
        self.app.metrics.render(self.app.hub.queue_depth())
    }

    /// Starts shutting down: feed WebSockets get a close frame (1001) and
    /// new ones are refused, then waits (up to 5 s) for them to close. Serve
    /// the router with `with_graceful_shutdown` on a future that calls this,
    /// so the HTTP server is not kept waiting by open feeds.
    pub async fn close_feeds(&self) {
        self.app.shutting_down.store(true, Ordering::SeqCst);
        self.app.shutdown.send_replace(true);
        let drained = async {
            loop {
                let closed = self.app.feed_closed.notified();
                if self.app.metrics.connected_clients.get() <= 0 {
                    return;
                }
                closed.await;
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
            tracing::warn!(open = self.app.metrics.connected_clients.get(), "feeds did not close in time");
        }
    }

    /// Shuts down completely: closes feeds, stops background tasks and
    /// closes the database pool. Call after the HTTP server stopped.
    pub async fn shutdown(&self) {
        self.close_feeds().await;
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            // Workers may spend a few seconds finishing their current job.
            if tokio::time::timeout(Duration::from_secs(5), task).await.is_err() {
                tracing::warn!("a background task did not stop in time");
            }
        }
        self.app.store.close().await;
        tracing::info!(instance = %self.app.instance, "backend stopped");
    }
}

async fn prune(app: Arc<App>) {
    let mut shutdown = app.shutdown_signal();
    let mut every = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = every.tick() => {
                if let Err(e) = app.store.prune(app.config.feed_history_max_age).await {
                    tracing::warn!(error = %e, "pruning failed");
                }
                if let Err(e) = app.store.prune_jobs(JOBS_KEPT).await {
                    tracing::warn!(error = %e, "pruning jobs failed");
                }
                sample_job_depth(&app).await;
            }
        }
    }
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.store.ping().await {
        Ok(()) if !app.is_shutting_down() => Json(serde_json::json!({"status": "ok"})).into_response(),
        Ok(()) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "shutting_down"}))).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "health check: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "store_unavailable"}))).into_response()
        }
    }
}

/// Refreshes the queue-depth gauge from the store.
async fn sample_job_depth(app: &App) {
    match app.store.job_counts().await {
        Ok(counts) => {
            let depth = counts.into_iter().map(|(state, n)| (state.as_str(), n)).collect();
            *app.metrics.job_depth.lock().unwrap_or_else(|e| e.into_inner()) = depth;
        }
        Err(e) => tracing::warn!(error = %e, "sampling the job queue failed"),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    sample_job_depth(&app).await;
    let body = app.metrics.render(app.hub.queue_depth());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "No such endpoint", "see GET /openapi.json for the routes")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "see GET /openapi.json for the routes",
    )
}

async fn count_errors(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() {
        app.metrics.client_errors.inc();
    } else if status.is_server_error() {
        app.metrics.server_errors.inc();
    }
    response
}
