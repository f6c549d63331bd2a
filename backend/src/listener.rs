//! The PostgreSQL listener: other instances' feed events, brought into this
//! instance's [`Hub`], and the hellos that tell instances of each other.
//!
//! With PostgreSQL, several instances share one database. After an
//! instance commits a feed event, its notifier (`crate::notifier`) sends
//! a [`FeedNotice`] on the schema's feed channel while another instance is
//! present: the keys, and the event itself when it fits NOTIFY's 8,000
//! bytes. Every instance runs [`listen`], and on a notice from another
//! instance for a user connected here publishes the event locally (read back
//! from the feed history when the notice came without it). A lost notice is
//! repaired by the connections' heartbeat catch-up (`crate::feed`).
//!
//! The listener also keeps [`Presence`]: it says hello on the presence
//! channel when it connects and every [`HELLO_INTERVAL`], and answers a
//! newcomer's hello at once (the protocol is in `crate::presence`).

use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::notifier::{Channels, FeedNotice};
use crate::presence::{Greeting, Hello, Presence, ANSWER_WAIT, HELLO_INTERVAL};
use crate::store::Store;
use callcard_calls::backoff::{Backoff, Jitter};
use serde::de::IgnoredAny;
use sqlx::postgres::{PgListener, PgNotification};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// How the listener waits between failed connects: doubling from 200 ms up
/// to 10 s, with equal jitter so instances that lost the database together
/// do not reconnect in lockstep.
const RECONNECT: Backoff =
    Backoff { base: Duration::from_millis(200), cap: Duration::from_secs(10), jitter: Jitter::Equal };

/// What the listener works with.
pub struct Listening {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub presence: Arc<Presence>,
    pub channels: Channels,
}

/// Whether a starting instance heard another one before it began serving.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    /// Another instance answered this one's first hello.
    Answered,
    /// Nobody answered within [`ANSWER_WAIT`].
    Alone,
}

/// The PostgreSQL listener: runs until `shutdown` turns true, reconnecting
/// with backoff when the connection drops. `joined` is answered once the
/// first connection listens and another instance answered its hello, or
/// [`ANSWER_WAIT`] passed without an answer.
pub async fn listen(listening: Listening, mut shutdown: watch::Receiver<bool>, joined: oneshot::Sender<Joined>) {
    let Listening { store, hub, metrics, presence, channels } = &listening;
    let mut joined = Some(joined);
    let mut failed_connects = 0;
    loop {
        let connected = async {
            let mut listener = PgListener::connect(store.url()).await?;
            listener.listen_all([channels.feed.as_str(), channels.presence.as_str()]).await?;
            greet(&mut listener, channels, presence, None).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = shutdown.changed() => return,
            result = connected => match result {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "feed listener cannot connect; retrying");
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
        tracing::debug!("feed listener connected");
        let answer_deadline = tokio::time::Instant::now() + ANSWER_WAIT;
        let mut hello = tokio::time::interval_at(tokio::time::Instant::now() + HELLO_INTERVAL, HELLO_INTERVAL);
        loop {
            let notification = tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep_until(answer_deadline), if joined.is_some() => {
                    if let Some(joined) = joined.take() {
                        let _ = joined.send(Joined::Alone);
                    }
                    continue;
                }
                _ = hello.tick() => {
                    count_peers(metrics, presence);
                    match greet(&mut listener, channels, presence, None).await {
                        Ok(()) => continue,
                        Err(e) => Err(e),
                    }
                }
                n = listener.try_recv() => n,
            };
            let handled = match notification {
                Ok(Some(n)) if n.channel() == channels.presence => {
                    hear(&mut listener, channels, presence, metrics, &mut joined, n.payload()).await
                }
                Ok(Some(n)) => {
                    bring_in(store, hub, metrics, presence, &n).await;
                    Ok(())
                }
                // The connection dropped; notifications in between are lost,
                // which the connections' heartbeat catch-up repairs. It is
                // back (the listener reconnects eagerly): say hello again.
                Ok(None) => {
                    tracing::warn!("feed listener lost its connection; reconnected");
                    greet(&mut listener, channels, presence, None).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = handled {
                tracing::warn!(error = %e, "feed listener failed; reconnecting");
                break;
            }
        }
    }
}

/// Takes in a message of the presence channel: notes its sender, tells a
/// starting instance that it was answered, and answers a newcomer.
async fn hear(
    listener: &mut PgListener,
    channels: &Channels,
    presence: &Presence,
    metrics: &Metrics,
    joined: &mut Option<oneshot::Sender<Joined>>,
    payload: &str,
) -> Result<(), sqlx::Error> {
    let Ok(hello) = serde_json::from_str::<Hello>(payload) else {
        tracing::warn!(payload, "unreadable hello on the presence channel");
        return Ok(());
    };
    let greeting = presence.heard(&hello.from, Instant::now());
    if greeting == Greeting::Own {
        return Ok(());
    }
    count_peers(metrics, presence);
    if hello.answering.as_deref() == Some(presence.instance()) {
        if let Some(joined) = joined.take() {
            let _ = joined.send(Joined::Answered);
        }
    }
    if greeting == Greeting::Newcomer {
        tracing::info!(peer = %hello.from, "another instance joined the feed");
        greet(listener, channels, presence, Some(&hello.from)).await?;
    }
    Ok(())
}

/// Sets the peers metric to the instances heard lately.
fn count_peers(metrics: &Metrics, presence: &Presence) {
    metrics.feed_peers.set(i64::try_from(presence.peers(Instant::now())).unwrap_or(i64::MAX));
}

/// Says hello on the presence channel, from the connection that listens
/// (so an answer comes back to it); `answering` names the newcomer this
/// hello answers.
async fn greet(
    listener: &mut PgListener,
    channels: &Channels,
    presence: &Presence,
    answering: Option<&str>,
) -> Result<(), sqlx::Error> {
    let hello = Hello { from: presence.instance().to_string(), answering: answering.map(str::to_string) };
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(&channels.presence)
        .bind(serde_json::to_string(&hello).unwrap_or_default())
        .execute(listener)
        .await
        .map(|_| ())
}

/// Publishes another instance's feed event here, if its user is connected here.
async fn bring_in(store: &Store, hub: &Hub, metrics: &Metrics, presence: &Presence, n: &PgNotification) {
    let Ok(addressed) = serde_json::from_str::<FeedNotice<IgnoredAny>>(n.payload()) else {
        tracing::warn!(payload = n.payload(), "unreadable feed notification");
        return;
    };
    if addressed.instance == presence.instance() || !hub.has_subscribers(addressed.account_id, addressed.user_id) {
        return;
    }
    let Ok(notice) = serde_json::from_str::<FeedNotice>(n.payload()) else {
        tracing::warn!(payload = n.payload(), "unreadable feed event in a notification");
        return;
    };
    metrics.notifications_received.inc();
    if let Some(event) = notice.event {
        hub.publish(notice.account_id, notice.user_id, event);
        return;
    }
    match store.feed_event(notice.account_id, notice.user_id, notice.offset).await {
        Ok(Some(event)) => {
            hub.publish(notice.account_id, notice.user_id, event);
        }
        // Already trimmed: the connection's catch-up will report the gap.
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read a notified feed event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callcard_calls::feed::FeedEvent;

    fn event(offset: u64, call_id_len: usize) -> FeedEvent {
        use callcard_calls::{Call, Direction};
        let mut call = Call::from_event(&callcard_calls::CallEvent {
            kind: callcard_calls::CallEventKind::Ringing,
            call_id: "c".into(),
            direction: Direction::Inbound,
            external_number: "+18305550100".into(),
            extension: "101".into(),
            occurred_at: 1,
        });
        call.call_id = "c".repeat(call_id_len);
        FeedEvent { offset, call: callcard_calls::feed::CallView::new(call, Some(2)) }
    }

    #[test]
    fn a_notice_carries_its_event_when_it_fits() {
        let e = event(17, 10);
        let payload = FeedNotice::payload("host:1", 31415926, 8320148, &e);
        let notice: FeedNotice = serde_json::from_str(&payload).unwrap();
        assert_eq!(
            notice,
            FeedNotice {
                instance: "host:1".into(),
                account_id: 31415926,
                user_id: 8320148,
                offset: 17,
                event: Some(e)
            }
        );
    }

    #[test]
    fn whom_a_notice_is_for_is_read_without_its_event() {
        let payload = FeedNotice::payload("host:1", 5, 6, &event(7, 10));
        let addressed: FeedNotice<IgnoredAny> = serde_json::from_str(&payload).unwrap();
        assert_eq!(
            (addressed.instance.as_str(), addressed.account_id, addressed.user_id, addressed.offset),
            ("host:1", 5, 6, 7)
        );
        assert!(addressed.event.is_some());
    }

    #[test]
    fn a_notice_too_long_for_notify_carries_only_keys() {
        let payload = FeedNotice::payload("host:1", 1, 2, &event(3, 9_000));
        assert!(payload.len() < 8_000, "{}", payload.len());
        let notice: FeedNotice = serde_json::from_str(&payload).unwrap();
        assert_eq!((notice.offset, notice.event), (3, None));
    }
}
