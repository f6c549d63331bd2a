//! The running backend: its shared state, its routes, its background tasks
//! and its shutdown.

use crate::config::{AccountSetup, Config, DEMO_INTEGRATION_SECRET};
use crate::feed_slots::FeedSlots;
use crate::group_commit::GroupCommit;
use crate::hub::{Hub, Publisher};
use crate::kommo_access::{InstallError, KommoAccess};
use crate::listener::Listening;
use crate::metrics::Metrics;
use crate::notifier::{Channels, Notifier};
use crate::one_time_token::Verifier;
use crate::presence::Presence;
use crate::queue::Queue;
use crate::state::{App, Lifecycle};
use crate::store::jobs::Job;
use crate::store::{now_ms, Store, StoredCall};
use crate::sync::caller_id::CallerIdService;
use crate::sync::SyncContext;
use crate::transcript_links::TranscriptLinks;
use crate::{
    feed, install, intake, kommo_hooks, listener, log_settings_api, openapi, ops, originate_api, problem, request_log,
    results_api, transcripts, widget,
};
use anyhow::Context;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use callcard_calls::extensions::ExtensionMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often expired tickets, token ids and old feed events are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long finished jobs are kept (dead ones stay until an operator acts).
const JOBS_KEPT: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long shutdown waits for feed connections to close.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The integration backend. Cheap to clone; every clone is the same backend.
#[derive(Clone)]
pub struct Backend {
    app: App,
    /// Tags this instance's NOTIFYs so it does not deliver its own events twice.
    instance: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("instance", &self.instance).finish_non_exhaustive()
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
        let lifecycle = Lifecycle::new();
        let instance = format!("{}", uuid::Uuid::new_v4().simple());
        let hub = Arc::new(Hub::default());
        let metrics = Arc::new(Metrics::default());
        let mut tasks = Vec::new();
        let presence = Arc::new(Presence::new(&instance));
        let channels = store.schema().map(Channels::of_schema);
        let notifier = channels.as_ref().map(|channels| {
            let (notifier, task) = Notifier::start(
                store.url(),
                channels.feed.clone(),
                presence.clone(),
                metrics.clone(),
                lifecycle.shutdown_signal(),
            );
            tasks.push(task);
            notifier
        });
        let publisher = Publisher { hub: hub.clone(), notifier };
        store.set_publisher(publisher.clone());
        let access = KommoAccess::new(&config, store.clone(), publisher, metrics.clone(), &instance)?;
        let group_commit = GroupCommit::start(store.clone(), metrics.clone());
        let caller_id = Arc::new(CallerIdService::new(
            config.caller_id_cache_ttl,
            config.caller_name_cache_ttl,
            access.clone(),
            store.clone(),
        ));
        let app = App {
            verifier: Verifier::new(&config.integration_secret, &config.public_base_url),
            store: store.clone(),
            hub,
            metrics,
            queue: Queue::new(store.clone()),
            access,
            caller_id,
            admin_rights: Arc::default(),
            feed_slots: Arc::new(FeedSlots::new(config.max_feeds_per_user)),
            group_commit,
            lifecycle,
            transcript_links: TranscriptLinks::new(
                &config.public_base_url,
                config.secrets()?,
                config.transcript_link_ttl,
            ),
            pbx: crate::pbx_client::PbxClient::new(),
            config: Arc::new(config),
        };
        tasks.push(tokio::spawn(prune(app.clone())));
        if app.config.caller_index {
            tasks.push(tokio::spawn(reconcile_phonebooks(app.clone())));
        }
        tasks.extend(app.queue.start_workers(
            &app.config.queue,
            app.access.clone(),
            app.transcript_links.clone(),
            app.metrics.clone(),
            &instance,
            app.lifecycle.shutdown_signal(),
        ));
        if let Some(channels) = channels {
            let (joined_tx, joined_rx) = tokio::sync::oneshot::channel();
            let listening = Listening {
                store: store.clone(),
                hub: app.hub.clone(),
                metrics: app.metrics.clone(),
                presence,
                channels,
            };
            tasks.push(tokio::spawn(listener::listen(listening, app.lifecycle.shutdown_signal(), joined_tx)));
            let joined = tokio::time::timeout(Duration::from_secs(10), joined_rx)
                .await
                .context("the PostgreSQL feed listener did not connect within 10 s")?
                .context("the PostgreSQL feed listener stopped")?;
            tracing::info!(?joined, "feed listener ready");
        }
        tracing::info!(%instance, dialect = ?store.dialect(), "backend started");
        Ok(Backend { app, instance, tasks: Arc::new(Mutex::new(tasks)) })
    }

    /// Every route of `docs/design.md`, relative to the backend's base URL
    /// (nest it under `/backend`, or serve it at the root): each module's
    /// own `router()`, merged.
    pub fn router(&self) -> Router {
        // Each module sets its 405 fallback before the layers: set later, it
        // would replace the CORS layer's answer to preflight requests.
        let widget = widget::router()
            .merge(feed::router())
            .merge(results_api::router())
            .merge(log_settings_api::router())
            .merge(originate_api::router())
            .layer(widget::cors(self.app.store.clone()));
        intake::router()
            .merge(widget)
            .merge(install::router())
            .merge(ops::router())
            .merge(openapi::router())
            .merge(transcripts::router())
            .fallback(problem::not_found)
            .layer(request_log::layer())
            // Kommo's webhook paths carry a secret: outside the request log,
            // whose spans record the path.
            .merge(kommo_hooks::router())
            .layer(middleware::from_fn_with_state(self.app.metrics.clone(), count_errors))
            .with_state(self.app.clone())
    }

    /// Creates or updates an account (its extension map is kept).
    pub async fn provision_account(&self, setup: AccountSetup) -> anyhow::Result<()> {
        anyhow::ensure!(setup.account_id > 0 && i64::try_from(setup.account_id).is_ok(), "account_id out of range");
        anyhow::ensure!(!setup.webhook_secret.is_empty(), "webhook_secret must not be empty");
        anyhow::ensure!(
            setup.origin.starts_with("https://") || setup.origin.starts_with("http://"),
            "origin must be an http(s) origin"
        );
        anyhow::ensure!(
            setup.pbx_originate_url.as_deref().is_none_or(|u| u.starts_with("https://") || u.starts_with("http://")),
            "pbx_originate_url must be an http(s) URL"
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
            transcript_links: self.app.transcript_links.clone(),
        })
    }

    /// This instance's id (the lease owner prefix of its workers).
    pub fn instance(&self) -> &str {
        &self.instance
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
        self.app.lifecycle.begin_shutdown();
        let drained = async {
            loop {
                let closed = self.app.lifecycle.next_feed_close();
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
        tracing::info!(instance = %self.instance, "backend stopped");
    }
}

async fn prune(app: App) {
    let mut shutdown = app.lifecycle.shutdown_signal();
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
                ops::sample_job_depth(&app.store, &app.metrics).await;
            }
        }
    }
}

/// Every `caller_index_reconcile_interval`, a reconciliation job for each
/// ready caller index (deduplicated by the queue: with several instances,
/// still one per account at a time).
async fn reconcile_phonebooks(app: App) {
    let mut shutdown = app.lifecycle.shutdown_signal();
    let mut every = tokio::time::interval(app.config.caller_index_reconcile_interval);
    // The first tick is immediate; a fresh start has nothing to heal yet.
    every.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = every.tick() => {
                let accounts = match app.store.ready_phonebooks().await {
                    Ok(accounts) => accounts,
                    Err(e) => {
                        tracing::warn!(error = %e, "listing the caller indexes failed");
                        continue;
                    }
                };
                for account_id in accounts {
                    if let Err(e) = app.store.enqueue_job(account_id, &Job::ReconcilePhonebook, now_ms()).await {
                        tracing::warn!(account_id, error = %e, "enqueueing a caller index reconciliation failed");
                    }
                }
                app.queue.wake();
            }
        }
    }
}

async fn count_errors(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() {
        metrics.client_errors.inc();
    } else if status.is_server_error() {
        metrics.server_errors.inc();
    }
    response
}
