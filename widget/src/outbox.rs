//! Call results that could not be sent (offline), kept until they can.
//!
//! The queue lives in `localStorage` under [`STORAGE_KEY`]; one entry per
//! call (saving again replaces it), so a reload loses nothing. The leader tab
//! flushes it (see [`crate::session`]) when it becomes leader (every `init`
//! after a reload, or a take-over), when its feed comes back, and when the
//! browser reports `online`; one tab never runs two flushes at once. An entry
//! the backend refuses for good (4xx other than 401/403/408/429) is dropped
//! so it cannot block the rest; anything transient keeps it for next time.

use crate::json::{self, Json, Writer};
use crate::wire;
use callcard_calls::result::CallResult;

/// The `localStorage` key.
pub const STORAGE_KEY: &str = "callcard.outbox";

/// One unsent result.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
pub struct Pending {
    pub call_id: String,
    pub result: CallResult,
}

/// The queue, oldest first; stored as
/// `{"pending":[{"call_id","result":CallResult},…]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
pub struct Outbox {
    pending: Vec<Pending>,
}

impl Outbox {
    pub fn to_json(&self) -> String {
        let mut w = Writer::new();
        w.open().key("pending").open_array();
        for p in &self.pending {
            w.item().open().key("call_id").str(&p.call_id).key("result");
            wire::write_call_result(&mut w, &p.result);
            w.close();
        }
        w.close_array().close();
        w.finish()
    }

    pub fn from_json(j: &Json) -> Option<Self> {
        let pending = wire::list(j.get("pending")?, |p| {
            Some(Pending { call_id: wire::string(p, "call_id")?, result: wire::call_result(p.get("result")?)? })
        })?;
        Some(Self { pending })
    }

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

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The stored queue (empty when unreadable).
pub fn load() -> Outbox {
    storage()
        .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
        .and_then(|text| Outbox::from_json(&json::parse(&text)?))
        .unwrap_or_default()
}

/// Stores the queue (removes the key when empty).
pub fn store(outbox: &Outbox) {
    let Some(s) = storage() else { return };
    if outbox.is_empty() {
        let _ = s.remove_item(STORAGE_KEY);
    } else {
        let _ = s.set_item(STORAGE_KEY, &outbox.to_json());
    }
}

/// Queues one result in storage.
pub fn enqueue(call_id: &str, result: CallResult) {
    let mut outbox = load();
    outbox.push(call_id, result);
    store(&outbox);
}

thread_local! {
    static FLUSHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Clears the in-flight flag however the flush ends (even if dropped).
struct FlushGuard;

impl Drop for FlushGuard {
    fn drop(&mut self) {
        FLUSHING.with(|f| f.set(false));
    }
}

/// Sends what is queued; returns how many were delivered (0 at once when a
/// flush is already running in this tab).
pub async fn flush(widget: &crate::kommo::KommoWidget, backend: &crate::api::Backend) -> usize {
    if FLUSHING.with(|f| f.replace(true)) {
        return 0;
    }
    let _guard = FlushGuard;
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

#[cfg(test)]
mod tests {
    use super::*;
    use callcard_calls::{EntityKind, EntityRef};

    fn result(note: &str) -> CallResult {
        CallResult { entity: EntityRef::new(EntityKind::Lead, 5), note: note.into(), task: None }
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
        o.push(
            "c",
            CallResult {
                task: Some(callcard_calls::result::TaskDraft { complete_till: 1, text: "t".into() }),
                ..result("4")
            },
        );
        assert_eq!(o.to_json(), serde_json::to_string(&o).unwrap());
        assert_eq!(Outbox::from_json(&json::parse(&o.to_json()).unwrap()), Some(o));
        let old = r#"{"pending":[{"call_id":"c-queued","result":{"entity":{"kind":"lead","id":5},"note":"From before","task":null}}]}"#;
        assert_eq!(Outbox::from_json(&json::parse(old).unwrap()), serde_json::from_str(old).ok());
    }
}
