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
//! Only while another instance is present (`crate::presence`): alone, an
//! instance announces nothing.
//!
//! Nothing is lost if a notice is: the event is committed, and a listener
//! that missed it (this instance died between commit and notice, the queue
//! was full, the connection dropped) is repaired by the connections'
//! heartbeat catch-up, as for notices lost in the listener (`crate::listener`).

use crate::metrics::Metrics;
use crate::presence::Presence;
use callcard_calls::backoff::{Backoff, Jitter};
use callcard_calls::feed::FeedEvent;
use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The PostgreSQL channels the instances sharing a schema talk on. A
/// channel is per database, so the schema is in its name: instances on
/// other schemas of the same database (tests, a second deployment) are not
/// peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channels {
    /// Feed notices ([`FeedNotice`]).
    pub feed: String,
    /// Hellos and answers (`crate::presence::Hello`).
    pub presence: String,
}

impl Channels {
    /// The channels of `schema`. PostgreSQL cuts channel names at 63
    /// bytes; a longer name is cut here (two long schemas sharing a
    /// prefix would then hear each other, which costs only notices that
    /// their listeners skip).
    pub fn of_schema(schema: &str) -> Self {
        let name = |kind: &str| {
            let mut name = format!("callcard_{kind}_{schema}");
            let mut end = name.len().min(63);
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name.truncate(end);
            name
        };
        Channels { feed: name("feed"), presence: name("presence") }
    }
}

/// NOTIFY refuses payloads of 8,000 bytes or more; an event whose notice
/// would be longer travels by its keys only.
const MAX_NOTICE_BYTES: usize = 7_900;

/// What one `pg_notify` on the feed channel ([`Channels::feed`]) says: a feed event committed by
/// `instance`, with the event itself when it fits, so the instances holding
/// the user's sockets push it without reading it back (a round trip per
/// event, one after another, on the listener's connection).
///
/// `FeedNotice<serde::de::IgnoredAny>` reads only whom a notice is for,
/// skipping over the event: most notices an instance hears are for users
/// connected elsewhere.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(bound(deserialize = "E: serde::Deserialize<'de>"))]
pub struct FeedNotice<E = FeedEvent> {
    pub instance: String,
    pub account_id: u64,
    pub user_id: u64,
    pub offset: u64,
    /// Absent when the notice would not fit: read it from the history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<E>,
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

/// The handle publishers hand events to; cheap to clone.
#[derive(Clone, Debug)]
pub struct Notifier {
    queue: mpsc::Sender<String>,
    presence: Arc<Presence>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// Starts the notifier on its own connection to `url`, sending on
    /// `channel`; it runs until `shutdown` turns true.
    pub fn start(
        url: &str,
        channel: String,
        presence: Arc<Presence>,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> (Notifier, tokio::task::JoinHandle<()>) {
        let (queue, notices) = mpsc::channel(QUEUE);
        (Notifier { queue, presence, metrics }, tokio::spawn(run(url.to_string(), channel, notices, shutdown)))
    }

    /// Announces a committed event of (`account_id`, `user_id`) to the other
    /// instances, if any is present.
    pub fn announce(&self, account_id: u64, user_id: u64, event: &FeedEvent) {
        if !self.presence.has_peers() {
            self.metrics.notices_alone.inc();
            return;
        }
        self.metrics.notices_announced.inc();
        let payload = FeedNotice::payload(self.presence.instance(), account_id, user_id, event);
        if self.queue.try_send(payload).is_err() {
            tracing::warn!("feed notices are backing up; this one is dropped (the heartbeat catch-up repairs it)");
        }
    }
}

async fn run(url: String, channel: String, mut notices: mpsc::Receiver<String>, mut shutdown: watch::Receiver<bool>) {
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
            .bind(&channel)
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

#[cfg(test)]
mod tests {
    use super::Channels;

    #[test]
    fn each_schema_talks_on_channels_of_its_own_within_postgres_limit() {
        let public = Channels::of_schema("public");
        assert_eq!(
            public,
            Channels { feed: "callcard_feed_public".into(), presence: "callcard_presence_public".into() }
        );
        assert_ne!(Channels::of_schema("tenant_a").feed, Channels::of_schema("tenant_b").feed);
        // PostgreSQL truncates longer names to 63 bytes: cut them here, on
        // a character boundary.
        let long = Channels::of_schema(&"ж".repeat(40));
        for name in [&long.feed, &long.presence] {
            assert!(name.len() <= 63 && name.len() >= 62, "{name}: {} bytes", name.len());
            assert!(name.starts_with("callcard_"));
        }
    }
}
