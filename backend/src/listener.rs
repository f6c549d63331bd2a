//! The PostgreSQL listener: other instances' feed events, brought into this
//! instance's [`Hub`].
//!
//! With PostgreSQL, several instances share one database. The transaction
//! that records an event also runs `pg_notify('callcard_feed',
//! 'instance:account:user:offset')`; every instance runs [`listen`], and on a
//! notification from another instance for a user connected here, reads the
//! event back from the feed history and publishes it locally. The payload
//! carries only keys, so it stays far below NOTIFY's 8000-byte limit.
//! A lost notification is repaired by the connections' heartbeat catch-up
//! (`crate::feed`).

use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::feed_log::FEED_CHANNEL;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A parsed `pg_notify` payload.
#[derive(Debug, PartialEq, Eq)]
struct Notice<'a> {
    instance: &'a str,
    account_id: u64,
    user_id: u64,
    offset: u64,
}

fn parse_notice(payload: &str) -> Option<Notice<'_>> {
    let mut parts = payload.rsplitn(4, ':');
    let offset = parts.next()?.parse().ok()?;
    let user_id = parts.next()?.parse().ok()?;
    let account_id = parts.next()?.parse().ok()?;
    let instance = parts.next()?;
    Some(Notice { instance, account_id, user_id, offset })
}

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
    let mut backoff = Duration::from_millis(200);
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
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
        };
        backoff = Duration::from_millis(200);
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
                    let Some(notice) = parse_notice(n.payload()) else {
                        tracing::warn!(payload = n.payload(), "unreadable feed notification");
                        continue;
                    };
                    if notice.instance == instance || !hub.has_subscribers(notice.account_id, notice.user_id) {
                        continue;
                    }
                    metrics.notifications_received.inc();
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

    #[test]
    fn notices_round_trip_even_with_colons_in_the_instance() {
        assert_eq!(
            parse_notice("host:1:31415926:8320148:17"),
            Some(Notice { instance: "host:1", account_id: 31415926, user_id: 8320148, offset: 17 })
        );
        assert_eq!(parse_notice("x:1:2"), None);
        assert_eq!(parse_notice("x:a:2:3"), None);
    }
}
