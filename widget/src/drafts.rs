//! What the manager typed into an open Call summary, kept across reloads.
//!
//! Every change to the modal's fields is written to `localStorage` under
//! [`STORAGE_KEY`], together with the call it is about. If the page reloads
//! (or Kommo is closed) before Save or Cancel, the next `init` reopens the
//! modal for each kept draft of the current user with the fields as they
//! were. Cancel keeps the draft marked `dismissed`: the next `init` lists
//! the call as "no result" instead of opening it. Save (sent or queued in
//! [`crate::outbox`]) discards the draft, and so does a snapshot of the call
//! showing a saved result.
//!
//! [`Drafts`] is the plain collection (unit-tested natively); [`save`],
//! [`discard`], [`find`] and [`restore`] are its `localStorage` half.

use crate::local_storage;
use crate::summary::SummaryDraft;
use callcard_calls::feed::CallView;
use serde::{Deserialize, Serialize};

/// The `localStorage` key.
pub const STORAGE_KEY: &str = "callcard.drafts";
/// A draft older than this is not restored any more (and is forgotten).
pub const MAX_AGE_MS: i64 = 24 * 60 * 60 * 1000;
/// At most this many drafts are kept; the oldest go first.
pub const CAPACITY: usize = 20;

/// One open modal's call and fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDraft {
    /// The newest snapshot of the call the modal showed.
    pub view: CallView,
    pub draft: SummaryDraft,
    /// Unix milliseconds of the last change.
    pub saved_at: i64,
    /// Cancelled: listed as "no result", not reopened.
    #[serde(default)]
    pub dismissed: bool,
}

/// The kept drafts, oldest change first; stored as
/// `{"drafts":[{"view":CallView,"draft":SummaryDraft,"saved_at":ms},…]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drafts {
    drafts: Vec<StoredDraft>,
}

impl Drafts {
    /// Keeps `draft` for the call of `view`, replacing an older one.
    pub fn put(&mut self, view: &CallView, draft: &SummaryDraft, now_ms: i64) {
        self.keep(StoredDraft { view: view.clone(), draft: draft.clone(), saved_at: now_ms, dismissed: false });
    }

    /// Marks a call's draft cancelled (keeping what was typed).
    pub fn dismiss(&mut self, view: &CallView, now_ms: i64) {
        let draft = self.get(&view.call.call_id).map(|d| d.draft.clone()).unwrap_or_default();
        self.keep(StoredDraft { view: view.clone(), draft, saved_at: now_ms, dismissed: true });
    }

    fn keep(&mut self, stored: StoredDraft) {
        self.remove(&stored.view.call.call_id);
        if self.drafts.len() >= CAPACITY {
            self.drafts.remove(0);
        }
        self.drafts.push(stored);
    }

    /// Forgets a call's draft; whether there was one.
    pub fn remove(&mut self, call_id: &str) -> bool {
        let before = self.drafts.len();
        self.drafts.retain(|d| d.view.call.call_id != call_id);
        self.drafts.len() != before
    }

    pub fn get(&self, call_id: &str) -> Option<&StoredDraft> {
        self.drafts.iter().find(|d| d.view.call.call_id == call_id)
    }

    /// Forgets drafts older than [`MAX_AGE_MS`].
    pub fn prune(&mut self, now_ms: i64) {
        self.drafts.retain(|d| now_ms - d.saved_at <= MAX_AGE_MS);
    }

    /// The drafts to reopen for `user` (drafts of calls without a user are
    /// everyone's), oldest first.
    pub fn for_user(&self, user: Option<u64>) -> Vec<StoredDraft> {
        self.drafts.iter().filter(|d| d.view.user_id.is_none() || d.view.user_id == user).cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.drafts.is_empty()
    }

    pub fn len(&self) -> usize {
        self.drafts.len()
    }
}

/// The stored drafts (empty when unreadable).
pub fn load() -> Drafts {
    local_storage::load(STORAGE_KEY).unwrap_or_default()
}

fn store(drafts: &Drafts) {
    if drafts.is_empty() {
        local_storage::remove(STORAGE_KEY);
    } else {
        local_storage::store(STORAGE_KEY, drafts);
    }
}

/// Keeps the modal's fields for the call of `view`.
pub fn save(view: &CallView, draft: &SummaryDraft) {
    let mut drafts = load();
    drafts.put(view, draft, js_sys::Date::now() as i64);
    store(&drafts);
}

/// Lists a call as cancelled ("no result"), keeping what was typed.
pub fn dismiss(view: &CallView) {
    let mut drafts = load();
    drafts.dismiss(view, js_sys::Date::now() as i64);
    store(&drafts);
}

/// Forgets a call's draft (saved or queued).
pub fn discard(call_id: &str) {
    let mut drafts = load();
    if drafts.remove(call_id) {
        store(&drafts);
    }
}

/// A call's kept fields, if any.
pub fn find(call_id: &str) -> Option<SummaryDraft> {
    load().get(call_id).map(|d| d.draft.clone())
}

/// The drafts to reopen on `init` for `user`; stale ones are forgotten.
pub fn restore(user: Option<u64>) -> Vec<StoredDraft> {
    let mut drafts = load();
    let before = drafts.len();
    drafts.prune(js_sys::Date::now() as i64);
    if drafts.len() != before {
        store(&drafts);
    }
    drafts.for_user(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::{ended, view};
    use callcard_calls::{Direction, Outcome};

    fn call(id: &str) -> CallView {
        let mut v = view(Direction::Inbound, "+1830", &[ended(Outcome::Answered, 10)]);
        v.call.call_id = id.into();
        v
    }

    #[test]
    fn one_draft_per_call_survives_a_round_trip() {
        let mut d = Drafts::default();
        let note = SummaryDraft { note: "first".into(), ..SummaryDraft::default() };
        d.put(&call("a"), &note, 1);
        d.put(&call("b"), &SummaryDraft::default(), 2);
        let typed = SummaryDraft { note: "typed more".into(), task: true, ..SummaryDraft::default() };
        d.put(&call("a"), &typed, 3);
        assert_eq!(d.len(), 2);
        assert_eq!(d.get("a").unwrap().draft, typed);
        let back: Drafts = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Drafts>(r#"{"drafts":[{"view":{}}]}"#).is_err());
        d.dismiss(&call("a"), 4);
        let dismissed = d.get("a").unwrap();
        assert!(dismissed.dismissed);
        assert_eq!(dismissed.draft, typed, "Cancel keeps what was typed");
        assert!(d.remove("a"));
        assert!(!d.remove("a"));
        assert!(d.get("a").is_none());
    }

    #[test]
    fn old_drafts_and_other_users_drafts_are_not_restored() {
        let mut d = Drafts::default();
        d.put(&call("old"), &SummaryDraft::default(), 0);
        d.put(&call("new"), &SummaryDraft::default(), MAX_AGE_MS);
        let mut theirs = call("theirs");
        theirs.user_id = Some(1);
        d.put(&theirs, &SummaryDraft::default(), MAX_AGE_MS);
        d.prune(MAX_AGE_MS + 1);
        let mine: Vec<_> = d.for_user(Some(8320148)).into_iter().map(|s| s.view.call.call_id).collect();
        assert_eq!(mine, ["new"]);
    }

    #[test]
    fn the_collection_is_bounded() {
        let mut d = Drafts::default();
        for i in 0..CAPACITY + 3 {
            d.put(&call(&format!("c{i}")), &SummaryDraft::default(), i as i64);
        }
        assert_eq!(d.len(), CAPACITY);
        assert!(d.get("c0").is_none());
        assert!(d.get(&format!("c{}", CAPACITY + 2)).is_some());
    }
}
