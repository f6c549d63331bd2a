//! What request handlers share: the application state, and the sub-states
//! handlers take from it.
//!
//! [`App`] holds one cheap handle per service; `#[derive(FromRef)]` lets a
//! handler (or an extractor) take just the part it uses, e.g.
//! `State(store): State<Store>`, so a handler's signature says what it
//! touches. This module names the services and no HTTP module: every HTTP
//! module depends on it, and it on none of them.

use crate::admin_rights::AdminRights;
use crate::config::Config;
use crate::feed_slots::FeedSlots;
use crate::group_commit::GroupCommit;
use crate::hub::Hub;
use crate::kommo_access::KommoAccess;
use crate::metrics::Metrics;
use crate::one_time_token::Verifier;
use crate::pbx_client::PbxClient;
use crate::queue::Queue;
use crate::store::Store;
use crate::sync::caller_id::CallerIdService;
use crate::transcript_links::TranscriptLinks;
use axum::extract::FromRef;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Notify};

/// The state behind every route. Cheap to clone: every field is a handle.
#[derive(Clone, FromRef)]
pub(crate) struct App {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Store,
    pub(crate) hub: Arc<Hub>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) verifier: Verifier,
    /// The durable job queue (enqueue, wake the workers).
    pub(crate) queue: Queue,
    /// Tokens, budget and clients for every account's Kommo.
    pub(crate) access: KommoAccess,
    /// Caller ID's answers and names (`crate::sync::caller_id`).
    pub(crate) caller_id: Arc<CallerIdService>,
    /// How many feeds each user holds open here (the per-user cap).
    pub(crate) feed_slots: Arc<FeedSlots>,
    /// Kommo's recent answers about who is an admin.
    pub(crate) admin_rights: Arc<AdminRights>,
    /// Where intake stores events: many webhooks per transaction.
    pub(crate) group_commit: GroupCommit,
    /// Links to full transcripts, made and checked.
    pub(crate) transcript_links: TranscriptLinks,
    /// Signed requests to accounts' PBXs (click-to-call).
    pub(crate) pbx: PbxClient,
    pub(crate) lifecycle: Lifecycle,
}

/// Whether the backend is shutting down, and who is still connected to its
/// feeds. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Lifecycle {
    inner: Arc<LifecycleInner>,
}

struct LifecycleInner {
    shutdown: watch::Sender<bool>,
    shutting_down: AtomicBool,
    /// Woken whenever a feed connection closes (for draining).
    feed_closed: Notify,
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            inner: Arc::new(LifecycleInner {
                shutdown,
                shutting_down: AtomicBool::new(false),
                feed_closed: Notify::new(),
            }),
        }
    }

    /// Turns true when shutdown begins.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Refuses new feeds and tells every task to stop.
    pub(crate) fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        self.inner.shutdown.send_replace(true);
    }

    /// Wakes whoever waits for feeds to close.
    pub(crate) fn feed_closed(&self) {
        self.inner.feed_closed.notify_waiters();
    }

    /// Resolves at the next feed close (register before checking the count).
    pub(crate) fn next_feed_close(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.feed_closed.notified()
    }
}
