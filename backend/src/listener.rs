//! The PostgreSQL listener: other instances' feed events, brought into this
//! instance's [`Hub`].
//!
//! With PostgreSQL, several instances share one database. After an
//! instance commits a feed event, its notifier (`crate::notifier`) sends
//! `pg_notify('callcard_feed', notice)` with a [`FeedNotice`]: the keys, and
//! the event itself when it fits NOTIFY's 8,000 bytes. Every instance runs
//! [`listen`], and on a notice from another instance for a user connected
//! here publishes the event locally (read back from the feed history when
//! the notice came without it). A lost notice is repaired by the
//! connections' heartbeat catch-up (`crate::feed`).

use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::notifier::{FeedNotice, FEED_CHANNEL};
use crate::store::Store;
use callcard_calls::backoff::{Backoff, Jitter};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How the listener waits between failed connects: doubling from 200 ms up
/// to 10 s, with equal jitter so instances that lost the database together
/// do not reconnect in lockstep.
const RECONNECT: Backoff =
    Backoff { base: Duration::from_millis(200), cap: Duration::from_secs(10), jitter: Jitter::Equal };

/// The PostgreSQL listener: runs until `shutdown` turns true, reconnecting
/// with backoff when the connection drops.
pub async fn listen(
    store: Store,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    instance: String,
    mut shutdown: watch::Receiver<bool>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut failed_connects = 0;
    loop {
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect(store.url()).await?;
            listener.listen(FEED_CHANNEL).await?;
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
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        tracing::debug!("feed listener connected");
        loop {
            let notification = tokio::select! {
                _ = shutdown.changed() => return,
                n = listener.try_recv() => n,
            };
            match notification {
                Ok(Some(n)) => {
                    let Ok(notice) = serde_json::from_str::<FeedNotice>(n.payload()) else {
                        tracing::warn!(payload = n.payload(), "unreadable feed notification");
                        continue;
                    };
                    if notice.instance == instance || !hub.has_subscribers(notice.account_id, notice.user_id) {
                        continue;
                    }
                    metrics.notifications_received.inc();
                    if let Some(event) = notice.event {
                        hub.publish(notice.account_id, notice.user_id, event);
                        continue;
                    }
                    match store.feed_event(notice.account_id, notice.user_id, notice.offset).await {
                        Ok(Some(event)) => {
                            hub.publish(notice.account_id, notice.user_id, event);
                        }
                        // Already trimmed: the connection's catch-up will
                        // report the gap.
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot read a notified feed event"),
                    }
                }
                // The connection dropped; notifications in between are lost,
                // which the connections' heartbeat catch-up repairs.
                Ok(None) => tracing::warn!("feed listener lost its connection; reconnecting"),
                Err(e) => {
                    tracing::warn!(error = %e, "feed listener failed; reconnecting");
                    break;
                }
            }
        }
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
    fn a_notice_too_long_for_notify_carries_only_keys() {
        let payload = FeedNotice::payload("host:1", 1, 2, &event(3, 9_000));
        assert!(payload.len() < 8_000, "{}", payload.len());
        let notice: FeedNotice = serde_json::from_str(&payload).unwrap();
        assert_eq!((notice.offset, notice.event), (3, None));
    }
}
