//! The live call-state feed, read with a ticket (see [`crate::ticket`]).
//!
//! - `GET /widget/feed?ticket=…&since=N`: a WebSocket of
//!   [`FeedMessage`] JSON text frames.
//! - `GET /widget/feed/poll?ticket=…&since=N&wait=S`: the same events as a
//!   [`PollAnswer`], for networks that block WebSockets (`wait` up to 25 s
//!   turns it into a long poll).
//! - `GET /widget/calls?ticket=…`: [`CurrentCalls`], the state to start from.
//!
//! Offsets: every event a user can receive has an offset, gapless and
//! increasing per (account, user) across all instances (allocated in the
//! database, [`crate::store::feed_log`]). `since=N` means "I have seen
//! everything up to N": the feed first replays N+1… from the kept history,
//! then streams live events. If N+1 is no longer kept (or N was never handed
//! out), the feed says [`FeedMessage::Gap`] (or `gap: true`) with the latest
//! offset, and the widget refetches `/widget/calls`. Without `since` the feed
//! starts at the latest offset.
//!
//! A connection only ever subscribes to its ticket's own (account, user)
//! channel and only ever reads that user's history: that is the whole of the
//! isolation between users and accounts.
//!
//! Limits: a user holds at most `max_feeds_per_user` WebSockets and waiting
//! polls open on one instance; more are refused with 429
//! ([`crate::feed_slots`]).
//!
//! Liveness: every `heartbeat_interval` the server sends a WebSocket ping and
//! a [`FeedMessage::Heartbeat`]; a peer that sent nothing (not even a pong)
//! for two intervals is dropped. The same tick compares the connection's
//! offset with the database, which repairs anything the fan-out lost.

use crate::extract::Query;
use crate::feed_slots::FeedSlots;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::problem::{self, Problem};
use crate::state::{App, Lifecycle};
use crate::store::credentials::TicketOwner;
use crate::store::{now_ms, Dialect, Store};
use crate::ticket::FeedTicket;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use callcard_calls::feed::{CurrentCalls, FeedEvent, FeedMessage, PollAnswer};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// Read buffer of one feed socket (see the upgrade in [`websocket`]).
const FEED_READ_BUFFER_BYTES: usize = 4 * 1024;
/// The largest frame a widget may send; it sends only pongs and closes.
const FEED_MAX_INCOMING_MESSAGE_BYTES: usize = 64 * 1024;
/// How many history events one read returns.
const PAGE: i64 = 500;
/// The longest long poll.
const MAX_WAIT_SECONDS: u64 = 25;
/// How far back `/widget/calls` looks for calls that still matter.
const CURRENT_CALLS_WINDOW_MS: i64 = 12 * 60 * 60 * 1000;
/// The most calls `/widget/calls` returns.
const CURRENT_CALLS_MAX: i64 = 100;

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/widget/feed", get(websocket))
        .route("/widget/feed/poll", get(poll))
        .route("/widget/calls", get(current_calls))
        .method_not_allowed_fallback(problem::method_not_allowed)
}

/// What the feed works with: a sub-state of [`App`].
#[derive(Clone)]
struct Feeds {
    store: Store,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    lifecycle: Lifecycle,
    heartbeat: Duration,
    slots: Arc<FeedSlots>,
}

impl FromRef<App> for Feeds {
    fn from_ref(app: &App) -> Self {
        Feeds {
            store: app.store.clone(),
            hub: app.hub.clone(),
            metrics: app.metrics.clone(),
            lifecycle: app.lifecycle.clone(),
            heartbeat: app.config.heartbeat_interval,
            slots: app.feed_slots.clone(),
        }
    }
}

/// The feed's query parameters besides the ticket; each is checked by the
/// handler that uses it, so a refusal names it.
#[derive(Deserialize)]
struct FeedQuery {
    since: Option<String>,
    wait: Option<String>,
}

fn parse_since(q: &FeedQuery) -> Result<Option<u64>, Problem> {
    match q.since.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| Problem::invalid("since", "since must be a feed offset (a non-negative integer)")),
    }
}

/// A WebSocket handshake, or 426 for a plain request.
struct Upgrade(WebSocketUpgrade);

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        WebSocketUpgrade::from_request_parts(parts, state).await.map(Upgrade).map_err(|e| {
            Problem::new(
                StatusCode::UPGRADE_REQUIRED,
                "websocket-required",
                "This endpoint is a WebSocket",
                e.body_text(),
            )
        })
    }
}

/// `GET /widget/feed`: upgrades to the feed WebSocket.
#[utoipa::path(get, path = "/widget/feed", tag = "feed",
    summary = "WebSocket of FeedMessage JSON text frames for the ticket's user",
    description = "Replays events after `since` from the kept history (or sends a gap), then streams live. A heartbeat message and a ping every 15 s; a peer silent for 30 s is dropped. Closed with 1001 at shutdown.",
    params(("ticket" = String, Query, description = "A feed ticket from POST /widget/ticket"), ("since" = Option<u64>, Query, description = "The last offset the widget has; absent: start at the latest")),
    responses(
        (status = 101, description = "Switching to the WebSocket; frames are FeedMessage JSON", body = FeedMessage),
        (status = 401, description = "Ticket refused", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "Bad since or query (field names it)", content_type = "application/problem+json", body = Problem),
        (status = 426, description = "Not a WebSocket request", content_type = "application/problem+json", body = Problem),
        (status = 429, description = "The user holds max_feeds_per_user feeds open already", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn websocket(
    State(feeds): State<Feeds>,
    FeedTicket(owner): FeedTicket,
    Query(query): Query<FeedQuery>,
    Upgrade(upgrade): Upgrade,
) -> Result<Response, Problem> {
    let since = parse_since(&query)?;
    if feeds.lifecycle.is_shutting_down() {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "The backend is shutting down",
            "reconnect; another instance will serve the feed",
        ));
    }
    // Held by the connection until it ends; dropped with the closure if the
    // upgrade never completes.
    let slot = feeds.slots.take(owner.account_id, owner.user_id)?;
    // The widget only ever sends pongs and tiny frames, while tungstenite
    // zero-fills its read buffer to capacity (128 KiB by default) on the
    // first read: with the default every idle feed costs ~141 KiB of RSS,
    // with 4 KiB about 16 KiB (bench/RESULTS.md, feed capacity).
    // Outgoing frames are written straight through (no write buffer).
    Ok(upgrade
        .read_buffer_size(FEED_READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(FEED_MAX_INCOMING_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            run(feeds, socket, owner, since).await
        })
        .into_response())
}

/// Why a feed connection ends.
enum End {
    /// The peer left, died, or the socket failed.
    Peer,
    /// The store failed; the client should reconnect (maybe elsewhere).
    Store(sqlx::Error),
}

/// One connection's position in its user's feed.
struct Cursor {
    feeds: Feeds,
    owner: TicketOwner,
    /// The last offset sent (or skipped by a gap).
    last: u64,
}

impl Cursor {
    async fn send(&self, socket: &mut WebSocket, message: &FeedMessage) -> Result<(), End> {
        let text = serde_json::to_string(message).unwrap_or_default();
        socket.send(Message::Text(text.into())).await.map_err(|_| End::Peer)?;
        if matches!(message, FeedMessage::Event(_)) {
            self.feeds.metrics.pushed_websocket.inc();
        }
        Ok(())
    }

    /// Sends everything after `last` from the history, or a gap.
    async fn catch_up(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        loop {
            let slice = self
                .feeds
                .store
                .feed_after(self.owner.account_id, self.owner.user_id, self.last, PAGE)
                .await
                .map_err(End::Store)?;
            if slice.gap {
                self.last = slice.latest_offset;
                return self.send(socket, &FeedMessage::Gap { latest_offset: slice.latest_offset }).await;
            }
            let full_page = slice.events.len() as i64 == PAGE;
            for event in slice.events {
                self.last = event.offset;
                self.send(socket, &FeedMessage::Event(event)).await?;
            }
            if !full_page {
                return Ok(());
            }
        }
    }

    /// Delivers a live event: in order, or by catching up if some are missing.
    async fn deliver(&mut self, socket: &mut WebSocket, event: &FeedEvent) -> Result<(), End> {
        if event.offset <= self.last {
            Ok(())
        } else if event.offset == self.last + 1 {
            self.last = event.offset;
            self.send(socket, &FeedMessage::Event(event.clone())).await
        } else {
            self.catch_up(socket).await
        }
    }
}

/// Counts open feeds for the metrics and for draining at shutdown.
struct OpenFeed(Feeds);

impl OpenFeed {
    fn new(feeds: Feeds) -> Self {
        feeds.metrics.connected_clients.inc();
        Self(feeds)
    }
}

impl Drop for OpenFeed {
    fn drop(&mut self) {
        self.0.metrics.connected_clients.dec();
        self.0.lifecycle.feed_closed();
    }
}

async fn run(feeds: Feeds, mut socket: WebSocket, owner: TicketOwner, since: Option<u64>) {
    let _open = OpenFeed::new(feeds.clone());
    tracing::debug!(account_id = owner.account_id, user_id = owner.user_id, ?since, "feed connected");
    let end = stream(feeds.clone(), &mut socket, owner, since).await;
    let (code, reason) = match end {
        Ok(()) => (1001, "the backend is shutting down"),
        Err(End::Peer) => return,
        Err(End::Store(e)) => {
            tracing::warn!(error = %e, "feed closed: store unavailable");
            (1011, "store unavailable; reconnect")
        }
    };
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

/// Streams until shutdown (`Ok`) or the connection ends (`Err`).
async fn stream(feeds: Feeds, socket: &mut WebSocket, owner: TicketOwner, since: Option<u64>) -> Result<(), End> {
    // Subscribe before reading the history, so nothing committed in between
    // is missed (duplicates are skipped by offset).
    let mut subscription = feeds.hub.subscribe(owner.account_id, owner.user_id);
    let mut shutdown = feeds.lifecycle.shutdown_signal();
    let heartbeat = feeds.heartbeat;
    let mut cursor = Cursor { feeds: feeds.clone(), owner, last: 0 };
    match since {
        Some(since) => {
            cursor.last = since;
            cursor.catch_up(socket).await?;
        }
        None => {
            cursor.last = feeds.store.latest_offset(owner.account_id, owner.user_id).await.map_err(End::Store)?;
        }
    }
    // Each feed's ticks at its own phase: feeds opened together (a deploy,
    // an instance restarted, a bench) must not read the history together
    // every interval; with PostgreSQL that burst took every pool connection
    // and held webhooks waiting (bench/RESULTS.md, scale-out).
    let phase = heartbeat.mul_f64(0.5 + rand::random::<f64>());
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            received = subscription.recv() => match received {
                Ok(event) => cursor.deliver(socket, &event).await?,
                // Fell behind the channel: the history has everything.
                Err(RecvError::Lagged(_)) => cursor.catch_up(socket).await?,
                Err(RecvError::Closed) => return Err(End::Peer),
            },
            message = socket.recv() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(End::Peer),
                // Pongs, and anything the widget chooses to send, prove it alive.
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            _ = tick.tick() => {
                if last_heard.elapsed() > heartbeat * 2 {
                    tracing::debug!(account_id = owner.account_id, user_id = owner.user_id, "feed peer is silent; dropping");
                    return Err(End::Peer);
                }
                // With PostgreSQL another instance may have committed an event
                // whose NOTIFY never arrived (the listener reconnected): the
                // history read is the safety net. A single SQLite instance
                // publishes every event through this hub, and a lagging
                // receiver catches up above, so there the read would only
                // cost a query per connection per tick (bench/RESULTS.md:
                // ~1,300 reads/s competing with intake at 19,700 clients).
                if feeds.store.dialect() == Dialect::Postgres {
                    cursor.catch_up(socket).await?;
                }
                cursor.send(socket, &FeedMessage::Heartbeat { latest_offset: cursor.last }).await?;
                socket.send(Message::Ping(Vec::new().into())).await.map_err(|_| End::Peer)?;
            }
        }
    }
}

/// `GET /widget/feed/poll`.
#[utoipa::path(get, path = "/widget/feed/poll", tag = "feed",
    summary = "The same events as the WebSocket, for networks that block it",
    params(("ticket" = String, Query, description = "A feed ticket from POST /widget/ticket"), ("since" = Option<u64>, Query, description = "The last offset the widget has; absent: start at the latest"),
        ("wait" = Option<u8>, Query, maximum = 25, description = "Long poll: seconds (0 to 25) to wait for an event when there is none")),
    responses(
        (status = 200, description = "Events after since", body = PollAnswer),
        (status = 401, description = "Ticket refused", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "Bad since or wait (field names it)", content_type = "application/problem+json", body = Problem),
        (status = 429, description = "A waiting poll past max_feeds_per_user", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn poll(
    State(feeds): State<Feeds>,
    FeedTicket(owner): FeedTicket,
    Query(query): Query<FeedQuery>,
) -> Result<Json<PollAnswer>, Problem> {
    let since = parse_since(&query)?;
    let wait = match query.wait.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => 0,
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|&w| w <= MAX_WAIT_SECONDS)
            .ok_or_else(|| Problem::invalid("wait", format!("wait must be 0 to {MAX_WAIT_SECONDS} seconds")))?,
    };
    let Some(since) = since else {
        let latest = feeds.store.latest_offset(owner.account_id, owner.user_id).await?;
        return Ok(Json(PollAnswer { events: Vec::new(), gap: false, latest_offset: latest }));
    };
    // A waiting poll holds a connection as a WebSocket does.
    let _slot = (wait > 0).then(|| feeds.slots.take(owner.account_id, owner.user_id)).transpose()?;
    // Subscribe first so an event committed between the read and the wait
    // wakes the poll.
    let mut subscription = (wait > 0).then(|| feeds.hub.subscribe(owner.account_id, owner.user_id));
    let mut slice = feeds.store.feed_after(owner.account_id, owner.user_id, since, PAGE).await?;
    if let Some(subscription) = subscription.as_mut() {
        if !slice.gap && slice.events.is_empty() {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
            let mut shutdown = feeds.lifecycle.shutdown_signal();
            // Another instance's event reaches this hub only if someone here
            // listens; the subscription is that someone. Re-check the
            // database now and then in case a notification was lost.
            loop {
                let woke = tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => false,
                    _ = shutdown.changed() => false,
                    r = tokio::time::timeout(Duration::from_secs(5), subscription.recv()) => {
                        matches!(r, Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) | Err(_))
                    }
                };
                slice = feeds.store.feed_after(owner.account_id, owner.user_id, since, PAGE).await?;
                if !woke || slice.gap || !slice.events.is_empty() || tokio::time::Instant::now() >= deadline {
                    break;
                }
            }
        }
    }
    feeds.metrics.pushed_poll.add(slice.events.len() as u64);
    Ok(Json(PollAnswer { events: slice.events, gap: slice.gap, latest_offset: slice.latest_offset }))
}

/// `GET /widget/calls`.
#[utoipa::path(get, path = "/widget/calls", tag = "feed",
    summary = "The user's calls that still matter, to start over after a gap",
    params(("ticket" = String, Query, description = "A feed ticket from POST /widget/ticket")),
    responses(
        (status = 200, description = "Current calls and the offset to continue from", body = CurrentCalls),
        (status = 401, description = "Ticket refused", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn current_calls(
    State(store): State<Store>,
    FeedTicket(owner): FeedTicket,
) -> Result<Json<CurrentCalls>, Problem> {
    // The offset is read before the calls: resuming from it may replay an
    // event already reflected in the state, which snapshots make harmless,
    // but never skips one.
    let latest_offset = store.latest_offset(owner.account_id, owner.user_id).await?;
    let calls = store
        .current_calls(owner.account_id, owner.user_id, now_ms() - CURRENT_CALLS_WINDOW_MS, CURRENT_CALLS_MAX)
        .await?;
    Ok(Json(CurrentCalls { calls: calls.iter().map(|c| c.view()).collect(), latest_offset }))
}
