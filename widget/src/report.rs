//! What became of a saved Call summary, told to the manager after the modal
//! has closed: "Saving…", then "Logged on <record>" once the backend's job
//! applied it in Kommo, or the failure in plain words with Retry.
//!
//! Modelled on `update-call-log.txt`'s `returnMessage {message, messageType
//! success|warning|danger, ttl}`: [`SaveReport::message`] gives exactly that.
//! The outcome comes from the feed: a snapshot of the call with
//! `result_logged` (applied) or `result_error` (refused by Kommo), read only
//! once the backend has answered the Save, so a snapshot from before it
//! cannot end the wait.

use crate::summary::SummaryDraft;
use crate::texts::Texts;
use callcard_calls::feed::CallView;
use leptos::prelude::{Get, RwSignal, Update, With};
use serde::Serialize;

/// `returnMessage.messageType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageType {
    Success,
    Warning,
    Danger,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Danger => "danger",
        }
    }
}

/// `returnMessage`: what to say, how, and for how long (`None`: until
/// something changes or the manager closes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReturnMessage {
    pub message: String,
    pub message_type: MessageType,
    pub ttl: Option<u32>,
}

/// How long "Logged on …" stays, in milliseconds.
pub const LOGGED_TTL_MS: u32 = 8_000;

/// Where a saved result stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveState {
    /// Posted, no answer yet.
    Saving,
    /// The backend took it (202); its job is applying it in Kommo.
    Accepted,
    /// No connection: kept in the outbox, sent when the connection is back.
    Queued,
    Logged,
    /// Refused by the backend or by Kommo, in plain words.
    Failed(String),
}

/// One saved summary and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveReport {
    pub call_id: String,
    /// The record's name, as the modal showed it.
    pub record: String,
    /// What was saved, for Retry (the modal reopens with it).
    pub view: CallView,
    pub draft: SummaryDraft,
    pub state: SaveState,
}

impl SaveReport {
    /// The message for the manager.
    pub fn message(&self, texts: &dyn Texts) -> ReturnMessage {
        let record = [("record", self.record.as_str())];
        let (message, message_type, ttl) = match &self.state {
            SaveState::Saving | SaveState::Accepted => (texts.text("summary.saving"), MessageType::Warning, None),
            SaveState::Queued => (texts.text("summary.queued"), MessageType::Warning, None),
            SaveState::Logged => (texts.fill("report.logged", &record), MessageType::Success, Some(LOGGED_TTL_MS)),
            SaveState::Failed(reason) => (
                texts.fill("report.failed", &[("record", self.record.as_str()), ("reason", reason)]),
                MessageType::Danger,
                None,
            ),
        };
        ReturnMessage { message, message_type, ttl }
    }

    /// Reads a newer snapshot of the call; whether the state changed.
    pub fn observe(&mut self, view: &CallView) -> bool {
        if view.call.call_id != self.call_id || !matches!(self.state, SaveState::Accepted | SaveState::Queued) {
            return false;
        }
        self.state = match (&view.result_error, view.result_logged) {
            (Some(reason), _) => SaveState::Failed(reason.clone()),
            (None, true) => SaveState::Logged,
            (None, false) => return false,
        };
        true
    }
}

/// The reports on screen, newest last (provided as context).
#[derive(Clone, Copy, Debug)]
pub struct SaveReports(RwSignal<Vec<SaveReport>>);

impl Default for SaveReports {
    fn default() -> Self {
        Self(RwSignal::new(Vec::new()))
    }
}

impl SaveReports {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new Save (replacing an older report of the same call).
    pub fn start(&self, report: SaveReport) {
        self.0.update(|r| {
            r.retain(|o| o.call_id != report.call_id);
            r.push(report);
        });
    }

    /// Moves a call's report on (when it is still there).
    pub fn set_state(&self, call_id: &str, state: SaveState) {
        self.0.update(|r| {
            if let Some(report) = r.iter_mut().find(|o| o.call_id == call_id) {
                report.state = state;
            }
        });
    }

    /// A snapshot from the feed.
    pub fn observe(&self, view: &CallView) {
        // One report per call (`start` replaces), so stopping at the first is right.
        self.0.maybe_update(|r| r.iter_mut().any(|o| o.observe(view)));
    }

    /// Forgets a call's report (closed, expired, or retried).
    pub fn remove(&self, call_id: &str) -> Option<SaveReport> {
        let mut removed = None;
        self.0.update(|r| {
            if let Some(i) = r.iter().position(|o| o.call_id == call_id) {
                removed = Some(r.remove(i));
            }
        });
        removed
    }

    /// The reports (tracked).
    pub fn all(&self) -> Vec<SaveReport> {
        self.0.get()
    }

    /// A call's report state (tracked).
    pub fn state_of(&self, call_id: &str) -> Option<SaveState> {
        self.0.with(|r| r.iter().find(|o| o.call_id == call_id).map(|o| o.state.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::{ended, view};
    use crate::texts::English;
    use callcard_calls::{Direction, Outcome};

    fn report(state: SaveState) -> SaveReport {
        SaveReport {
            call_id: "c1".into(),
            record: "Quote for ACME".into(),
            view: view(Direction::Inbound, "+1830", &[ended(Outcome::Answered, 10)]),
            draft: SummaryDraft::default(),
            state,
        }
    }

    #[test]
    fn messages_follow_return_message() {
        let m = report(SaveState::Saving).message(&English);
        assert_eq!((m.message.as_str(), m.message_type, m.ttl), ("Saving…", MessageType::Warning, None));
        let m = report(SaveState::Logged).message(&English);
        assert_eq!(m.message, "Logged on Quote for ACME");
        assert_eq!((m.message_type, m.ttl), (MessageType::Success, Some(LOGGED_TTL_MS)));
        let m = report(SaveState::Failed("the lead was deleted".into())).message(&English);
        assert_eq!(m.message, "Not logged on Quote for ACME: the lead was deleted");
        assert_eq!(m.message_type.as_str(), "danger");
    }

    #[test]
    fn only_snapshots_after_the_answer_end_the_wait() {
        let mut logged = view(Direction::Inbound, "+1830", &[ended(Outcome::Answered, 10)]);
        logged.has_result = true;
        logged.result_logged = true;
        // Before the backend answered, a snapshot says nothing about this Save.
        let mut r = report(SaveState::Saving);
        assert!(!r.observe(&logged));
        let mut r = report(SaveState::Accepted);
        let mut waiting = logged.clone();
        waiting.result_logged = false;
        assert!(!r.observe(&waiting), "saved, not applied yet");
        assert!(r.observe(&logged));
        assert_eq!(r.state, SaveState::Logged);
        let mut refused = waiting.clone();
        refused.result_error = Some("the lead was deleted".into());
        let mut r = report(SaveState::Queued);
        assert!(r.observe(&refused));
        assert_eq!(r.state, SaveState::Failed("the lead was deleted".into()));
        let mut other = logged.clone();
        other.call.call_id = "c2".into();
        assert!(!report(SaveState::Accepted).observe(&other));
    }
}
