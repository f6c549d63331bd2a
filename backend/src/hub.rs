//! Fan-out: getting a committed feed event to the live connections of its
//! user, on this instance and on every other.
//!
//! In-process, the [`Hub`] keeps one `tokio::sync::broadcast` channel per
//! (account, user) that has a connected widget; nobody else's channel ever
//! sees the event, which is what keeps users and accounts apart.
//!
//! With PostgreSQL, several instances share one database: the
//! [`crate::listener`] brings other instances' events into this hub.
//!
//! Nothing depends on this path being perfect: a connection that notices an
//! offset jump, lags behind its channel, or sees a newer offset in the
//! database at a heartbeat, reads what it missed from the history.

use crate::notifier::Notifier;
use callcard_calls::feed::FeedEvent;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many events a slow connection may fall behind before it catches up
/// from the database instead.
const CHANNEL_CAPACITY: usize = 64;

type Key = (u64, u64);

/// Per-user broadcast channels.
#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<Key, broadcast::Sender<Arc<FeedEvent>>>>,
}

/// A live subscription to one user's events; leaving removes the channel
/// when it was the last.
pub struct Subscription {
    hub: Arc<Hub>,
    key: Key,
    rx: Option<broadcast::Receiver<Arc<FeedEvent>>>,
}

impl Subscription {
    pub async fn recv(&mut self) -> Result<Arc<FeedEvent>, broadcast::error::RecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut channels = self.hub.channels.lock().unwrap_or_else(|e| e.into_inner());
        if channels.get(&self.key).is_some_and(|tx| tx.receiver_count() == 0) {
            channels.remove(&self.key);
        }
    }
}

impl Hub {
    pub fn subscribe(self: &Arc<Self>, account_id: u64, user_id: u64) -> Subscription {
        let key = (account_id, user_id);
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let rx = channels.entry(key).or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0).subscribe();
        Subscription { hub: Arc::clone(self), key, rx: Some(rx) }
    }

    /// Hands the event to the user's connections on this instance; returns
    /// how many there were.
    pub fn publish(&self, account_id: u64, user_id: u64, event: FeedEvent) -> usize {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        match channels.get(&(account_id, user_id)) {
            Some(tx) => tx.send(Arc::new(event)).unwrap_or(0),
            None => 0,
        }
    }

    pub fn has_subscribers(&self, account_id: u64, user_id: u64) -> bool {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.contains_key(&(account_id, user_id))
    }

    /// Events published but not yet taken by every receiver (the metrics'
    /// queue depth).
    pub fn queue_depth(&self) -> usize {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.values().map(broadcast::Sender::len).sum()
    }
}

/// What a committed call change is handed to on this instance: the hub,
/// and with PostgreSQL the notifier, which tells the other instances
/// present (its notices carry this instance's tag, so this instance's
/// listener skips them). Changes
/// made outside intake (the CRM sync, the call results) go through
/// [`crate::store::Store::update_call_crm`], which uses the store's
/// publisher, so every path reaches the widget the same way.
#[derive(Clone)]
pub struct Publisher {
    pub(crate) hub: Arc<Hub>,
    /// With PostgreSQL: tells the other instances.
    pub(crate) notifier: Option<Notifier>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("announces", &self.notifier.is_some()).finish_non_exhaustive()
    }
}

impl Publisher {
    /// Hands a committed feed event to the user's connections here, and
    /// with PostgreSQL to the other instances present. Call only after the
    /// commit.
    pub fn publish(&self, account_id: u64, user_id: u64, event: FeedEvent) {
        if let Some(notifier) = &self.notifier {
            notifier.announce(account_id, user_id, &event);
        }
        self.hub.publish(account_id, user_id, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callcard_calls::feed::CallView;
    use callcard_calls::{Call, CallEvent, CallEventKind, Direction};
    use std::time::Duration;

    fn event(offset: u64) -> FeedEvent {
        let call = Call::from_event(&CallEvent {
            kind: CallEventKind::Ringing,
            call_id: "c".into(),
            direction: Direction::Inbound,
            external_number: "+1555".into(),
            extension: "101".into(),
            occurred_at: 1_763_691_600_000,
        });
        FeedEvent { offset, call: CallView::new(call, Some(1)) }
    }

    #[tokio::test]
    async fn events_reach_only_their_user_and_channels_are_dropped_with_the_last_subscriber() {
        let hub = Arc::new(Hub::default());
        let mut anna = hub.subscribe(1, 10);
        let mut other_account = hub.subscribe(2, 10);
        assert_eq!(hub.publish(1, 10, event(1)), 1);
        assert_eq!(hub.publish(1, 11, event(1)), 0);
        assert_eq!(anna.recv().await.unwrap().offset, 1);
        assert!(tokio::time::timeout(Duration::from_millis(50), other_account.recv()).await.is_err());
        drop(anna);
        assert!(!hub.has_subscribers(1, 10));
        assert!(hub.has_subscribers(2, 10));
    }
}
