//! Call results that could not be sent (offline), kept until they can.
//!
//! The queue lives in `localStorage` under [`STORAGE_KEY`]; one entry per
//! call (saving again replaces it), so a reload loses nothing. The leader tab
//! flushes it (see [`crate::session`]) when it becomes leader (every `init`
//! after a reload, or a take-over), when its feed comes back, and when the
//! browser reports `online`; one tab never runs two flushes at once. An entry
//! the backend refuses for good (4xx other than 401/403/408/429) is dropped
//! so it cannot block the rest; anything transient keeps it for next time.

use crate::api::Backend;
use crate::kommo::KommoWidget;
use crate::local_storage;
use callcard_calls::result::CallResult;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::rc::Rc;

/// The `localStorage` key.
pub const STORAGE_KEY: &str = "callcard.outbox";

/// One unsent result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub call_id: String,
    pub result: CallResult,
}

/// The queue, oldest first; stored as
/// `{"pending":[{"call_id","result":CallResult},…]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    pending: Vec<Pending>,
}

impl Outbox {
    /// Queues a result, replacing an older one for the same call.
    pub fn push(&mut self, call_id: &str, result: CallResult) {
        self.pending.retain(|p| p.call_id != call_id);
        self.pending.push(Pending { call_id: call_id.to_owned(), result });
    }

    pub fn remove(&mut self, call_id: &str) {
        self.pending.retain(|p| p.call_id != call_id);
    }

    pub fn pending(&self) -> &[Pending] {
        &self.pending
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn contains(&self, call_id: &str) -> bool {
        self.pending.iter().any(|p| p.call_id == call_id)
    }
}

/// The stored queue (empty when unreadable).
pub fn load() -> Outbox {
    local_storage::load(STORAGE_KEY).unwrap_or_default()
}

/// Stores the queue (removes the key when empty).
pub fn store(outbox: &Outbox) {
    if outbox.is_empty() {
        local_storage::remove(STORAGE_KEY);
    } else {
        local_storage::store(STORAGE_KEY, outbox);
    }
}

/// Queues one result in storage.
pub fn enqueue(call_id: &str, result: CallResult) {
    let mut outbox = load();
    outbox.push(call_id, result);
    store(&outbox);
}

/// Sends the queue; one per tab (the session's), so one tab never runs two
/// flushes at once.
#[derive(Clone, Debug, Default)]
pub struct Sender {
    flushing: Rc<Cell<bool>>,
}

/// Clears the in-flight flag however the flush ends (even if dropped).
struct FlushGuard(Rc<Cell<bool>>);

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl Sender {
    /// Sends what is queued; returns how many were delivered (0 at once when
    /// a flush is already running in this tab).
    pub async fn flush(&self, widget: &KommoWidget, backend: &Backend) -> usize {
        if self.flushing.replace(true) {
            return 0;
        }
        let _guard = FlushGuard(self.flushing.clone());
        let mut sent = 0;
        for item in load().pending().to_vec() {
            match backend.save_result(widget, &item.call_id, &item.result).await {
                Ok(()) => sent += 1,
                Err(e) if e.is_transient() || e.is_auth() => break,
                Err(e) => {
                    web_sys::console::warn_1(&format!("callcard: dropping refused call result: {e}").into());
                }
            }
            // Re-read: another tab may have changed the queue meanwhile.
            let mut outbox = load();
            outbox.remove(&item.call_id);
            store(&outbox);
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callcard_calls::{EntityKind, EntityRef};

    fn result(note: &str) -> CallResult {
        CallResult { entity: EntityRef::new(EntityKind::Lead, 5), note: note.into(), task: None, subject: None }
    }

    #[test]
    fn one_entry_per_call_in_order() {
        let mut o = Outbox::default();
        o.push("a", result("1"));
        o.push("b", result("2"));
        o.push("a", result("3"));
        let ids: Vec<_> = o.pending().iter().map(|p| p.call_id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(o.pending()[1].result.note, "3");
        o.remove("b");
        assert!(!o.contains("b") && o.contains("a"));
        let back: Outbox = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        o.push("c", CallResult { task: Some(callcard_calls::result::TaskDraft::follow_up(1, "t")), ..result("4") });
        let back: Outbox = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        // What earlier versions stored still reads.
        let old = r#"{"pending":[{"call_id":"c-queued","result":{"entity":{"kind":"lead","id":5},"note":"From before","task":null}}]}"#;
        let old: Outbox = serde_json::from_str(old).unwrap();
        assert_eq!(old.pending()[0].result.note, "From before");
    }
}
