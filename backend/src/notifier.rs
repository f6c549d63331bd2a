//! The PostgreSQL notifier: tells the other instances of feed events this
//! one committed, after the commit, on a connection of its own.
//!
//! NOTIFY inside the transaction that records an event is the textbook way,
//! but PostgreSQL serialises every notifying commit in a database behind one
//! lock held through the commit's WAL flush: every intake batch of every
//! instance waited for every other one's disk sync. So the event's
//! transaction commits without NOTIFY, and this task sends the notices
//! afterwards, batched (whatever was published while the previous batch was
//! in flight, in publish order), in one statement per batch, with
//! `synchronous_commit = off` (a notice is not durable data: it only saves the
//! listener a read).
//!
//! Nothing is lost if a notice is: the event is committed, and a listener
//! that missed it (this instance died between commit and notice, the queue
//! was full, the connection dropped) is repaired by the connections'
//! heartbeat catch-up, as for notices lost in the listener (`crate::listener`).

use callcard_calls::backoff::{Backoff, Jitter};
use callcard_calls::feed::FeedEvent;
use sqlx::Connection;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The PostgreSQL channel every instance listens on for new feed events.
pub const FEED_CHANNEL: &str = "callcard_feed";

/// NOTIFY refuses payloads of 8,000 bytes or more; an event whose notice
/// would be longer travels by its keys only.
const MAX_NOTICE_BYTES: usize = 7_900;

/// What one `pg_notify` on [`FEED_CHANNEL`] says: a feed event committed by
/// `instance`, with the event itself when it fits, so the instances holding
/// the user's sockets push it without reading it back (a round trip per
/// event, one after another, on the listener's connection).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeedNotice {
    pub instance: String,
    pub account_id: u64,
    pub user_id: u64,
    pub offset: u64,
    /// Absent when the notice would not fit: read it from the history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<FeedEvent>,
}

impl FeedNotice {
    /// The notice's payload: with the event if that stays under NOTIFY's limit.
    pub fn payload(instance: &str, account_id: u64, user_id: u64, event: &FeedEvent) -> String {
        let mut notice = FeedNotice {
            instance: instance.to_string(),
            account_id,
            user_id,
            offset: event.offset,
            event: Some(event.clone()),
        };
        let full = serde_json::to_string(&notice).unwrap_or_default();
        if !full.is_empty() && full.len() <= MAX_NOTICE_BYTES {
            return full;
        }
        notice.event = None;
        serde_json::to_string(&notice).unwrap_or_default()
    }
}

/// Notices waiting to be sent before new ones are dropped (the heartbeat
/// catch-up repairs them; memory stays bounded while PostgreSQL is away).
const QUEUE: usize = 65_536;

/// The most notices sent in one statement.
const BATCH: usize = 512;

const RECONNECT: Backoff =
    Backoff { base: Duration::from_millis(200), cap: Duration::from_secs(10), jitter: Jitter::Equal };

/// The handle publishers hand notices to; cheap to clone.
#[derive(Clone, Debug)]
pub struct Notifier {
    queue: mpsc::Sender<String>,
}

impl Notifier {
    /// Starts the notifier on its own connection to `url`; it runs until
    /// `shutdown` turns true.
    pub fn start(url: &str, shutdown: watch::Receiver<bool>) -> (Notifier, tokio::task::JoinHandle<()>) {
        let (queue, notices) = mpsc::channel(QUEUE);
        (Notifier { queue }, tokio::spawn(run(url.to_string(), notices, shutdown)))
    }

    /// Queues one notice payload ([`FeedNotice::payload`]).
    pub fn notify(&self, payload: String) {
        if self.queue.try_send(payload).is_err() {
            tracing::warn!("feed notices are backing up; this one is dropped (the heartbeat catch-up repairs it)");
        }
    }
}

async fn run(url: String, mut notices: mpsc::Receiver<String>, mut shutdown: watch::Receiver<bool>) {
    let mut failed_connects = 0;
    loop {
        let connected = async {
            let mut conn = sqlx::postgres::PgConnection::connect(&url).await?;
            sqlx::query("SET synchronous_commit = off").execute(&mut conn).await?;
            Ok::<_, sqlx::Error>(conn)
        };
        let mut conn = tokio::select! {
            _ = shutdown.changed() => return,
            result = connected => match result {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "feed notifier cannot connect; retrying");
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(RECONNECT.delay(failed_connects, rand::random())) => {}
                    }
                    failed_connects = failed_connects.saturating_add(1);
                    continue;
                }
            }
        };
        failed_connects = 0;
        loop {
            let first = tokio::select! {
                _ = shutdown.changed() => return,
                notice = notices.recv() => match notice {
                    Some(notice) => notice,
                    None => return,
                },
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match notices.try_recv() {
                    Ok(notice) => batch.push(notice),
                    Err(_) => break,
                }
            }
            let sent = sqlx::query(
                "SELECT pg_notify($1, notice) FROM unnest($2::text[]) WITH ORDINALITY AS n(notice, i) ORDER BY i",
            )
            .bind(FEED_CHANNEL)
            .bind(&batch)
            .execute(&mut conn)
            .await;
            if let Err(error) = sent {
                tracing::warn!(%error, notices = batch.len(), "feed notices not sent; reconnecting");
                break;
            }
        }
    }
}
