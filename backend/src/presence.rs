//! Presence: whether other instances share this instance's feed, so that
//! an instance alone on its PostgreSQL does not announce every event to
//! nobody.
//!
//! Announcing a committed event (`crate::notifier`) costs the instance its
//! serialisation and PostgreSQL a `pg_notify` and a delivery to every
//! listener, its own included: on the 2-core bench machine that was about
//! a seventh of PostgreSQL intake's throughput. So instances greet each
//! other, and an instance announces events only while it has heard another
//! one lately:
//!
//! - every listener (`crate::listener`) says hello on the presence channel
//!   when it connects and every [`HELLO_INTERVAL`];
//! - a listener that hears an instance it has not heard within
//!   [`PEER_TIMEOUT`] notes it *before* answering with a hello of its own,
//!   so once the newcomer hears that answer, the answering instance already
//!   announces its events;
//! - a starting instance waits for the first answer addressed to it
//!   ([`Hello::answering`]; at most [`ANSWER_WAIT`]) before it serves
//!   feeds, so a widget connecting to it does not miss another instance's
//!   events in the moment after (with several instances, the others'
//!   answers follow within milliseconds; a notice missed meanwhile is
//!   repaired as below);
//! - an instance that stops greeting is forgotten after [`PEER_TIMEOUT`].
//!
//! Nothing depends on presence being exact: an event not announced is a
//! notice lost, and the connections' heartbeat catch-up (`crate::feed`)
//! reads it from the history, as for any notice lost on the way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often every instance says hello.
pub const HELLO_INTERVAL: Duration = Duration::from_secs(2);

/// How long an instance counts as present after its last hello: three
/// missed hellos.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(6);

/// How long a starting instance waits for another one's answer before it
/// takes itself to be alone.
pub const ANSWER_WAIT: Duration = Duration::from_millis(500);

/// One message on the presence channel (JSON): a hello, or an answer to a
/// newcomer's hello.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hello {
    /// The greeting instance's tag.
    pub from: String,
    /// The newcomer this hello answers: once it hears this, it knows that
    /// `from` announces events to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answering: Option<String>,
}

/// What hearing a hello means for the listener that heard it.
#[derive(Debug, PartialEq, Eq)]
pub enum Greeting {
    /// An instance not heard within [`PEER_TIMEOUT`]: answer it at once.
    Newcomer,
    /// An instance already present.
    Known,
    /// This instance's own hello, which PostgreSQL delivers to it too.
    Own,
}

/// The other instances heard lately. Shared by the listener, which records
/// hellos, and the notifier, which asks [`Presence::has_peers`] for every
/// event (one atomic load, no lock).
#[derive(Debug)]
pub struct Presence {
    instance: String,
    epoch: Instant,
    /// Milliseconds after `epoch` until which some other instance is
    /// present: the latest hello heard plus [`PEER_TIMEOUT`].
    present_until_ms: AtomicU64,
    /// When each other instance was last heard (for answers and the
    /// metric; touched once per hello).
    heard: Mutex<HashMap<String, Instant>>,
}

impl Presence {
    /// No other instance heard yet; `instance` is this one's tag.
    pub fn new(instance: &str) -> Self {
        Presence {
            instance: instance.to_string(),
            epoch: Instant::now(),
            present_until_ms: AtomicU64::new(0),
            heard: Mutex::default(),
        }
    }

    /// The tag this instance greets with.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Whether another instance was heard within [`PEER_TIMEOUT`].
    pub fn has_peers(&self) -> bool {
        self.has_peers_at(Instant::now())
    }

    fn has_peers_at(&self, at: Instant) -> bool {
        self.millis(at) < self.present_until_ms.load(Ordering::Acquire)
    }

    /// Records a hello from `peer` heard at `at`.
    pub fn heard(&self, peer: &str, at: Instant) -> Greeting {
        if peer == self.instance {
            return Greeting::Own;
        }
        let until = self.millis(at + PEER_TIMEOUT);
        // Noted before the caller answers: see the module doc.
        self.present_until_ms.fetch_max(until, Ordering::AcqRel);
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        match heard.insert(peer.to_string(), at) {
            Some(last) if at.saturating_duration_since(last) < PEER_TIMEOUT => Greeting::Known,
            _ => Greeting::Newcomer,
        }
    }

    /// How many other instances were heard within [`PEER_TIMEOUT`] before
    /// `at`; forgets the others.
    pub fn peers(&self, at: Instant) -> usize {
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        heard.retain(|_, last| at.saturating_duration_since(*last) < PEER_TIMEOUT);
        heard.len()
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_alone_has_no_peers_and_ignores_its_own_hello() {
        let presence = Presence::new("a");
        let now = Instant::now();
        assert_eq!(presence.heard("a", now), Greeting::Own);
        assert!(!presence.has_peers_at(now));
        assert_eq!(presence.peers(now), 0);
    }

    #[test]
    fn a_newcomer_is_answered_once_and_present_until_it_falls_silent() {
        let presence = Presence::new("a");
        let t0 = Instant::now();
        assert_eq!(presence.heard("b", t0), Greeting::Newcomer);
        assert!(presence.has_peers_at(t0));
        assert_eq!(presence.heard("b", t0 + HELLO_INTERVAL), Greeting::Known);
        assert_eq!(presence.heard("c", t0 + HELLO_INTERVAL), Greeting::Newcomer);
        assert_eq!(presence.peers(t0 + HELLO_INTERVAL), 2);

        // c falls silent; b keeps greeting.
        let b_last = t0 + HELLO_INTERVAL * 3;
        assert_eq!(presence.heard("b", b_last), Greeting::Known);
        assert_eq!(presence.peers(t0 + HELLO_INTERVAL + PEER_TIMEOUT), 1);

        // Both silent: alone again, and b's next hello is a newcomer's.
        let gone = b_last + PEER_TIMEOUT;
        assert!(presence.has_peers_at(gone - Duration::from_millis(1)));
        assert!(!presence.has_peers_at(gone));
        assert_eq!(presence.peers(gone), 0);
        assert_eq!(presence.heard("b", gone), Greeting::Newcomer);
    }

    #[test]
    fn a_late_hello_does_not_shorten_presence() {
        let presence = Presence::new("a");
        let t0 = Instant::now();
        presence.heard("b", t0 + HELLO_INTERVAL);
        // A hello delivered out of order (an older timestamp) keeps the later deadline.
        presence.heard("c", t0);
        assert!(presence.has_peers_at(t0 + PEER_TIMEOUT + Duration::from_millis(500)));
    }
}
