//! Deciding, exactly once per call, what to show.
//!
//! The feed sends whole-call snapshots, possibly twice (reconnects, polling,
//! a resync after a gap, several tabs). [`NotificationLedger`] remembers which
//! `(call_id, notice)` pairs were already shown and answers, for each
//! snapshot, which notices are due now. It is plain data: the leader tab
//! stores it in `localStorage` before showing anything, so a tab that takes
//! over reads it back and never repeats a pop-up.
//!
//! Rules:
//! - Only calls of this user (or calls no user is known for) are shown.
//! - [`Notice::Ringing`]: the first snapshot of a call that is still ringing,
//!   rang less than [`RINGING_FRESH_MS`] ago and was not seen past ringing.
//! - [`Notice::Identified`]: caller ID answered (known or unknown) after that
//!   first pop-up went out with only the number, while the call still rings:
//!   Kommo's pop-ups cannot be edited, so the named one is shown then. A
//!   first pop-up that already named the caller counts as identified.
//! - [`Notice::Completed`]: the first snapshot of an ended call that ended
//!   less than [`COMPLETED_FRESH_MS`] ago.
//! - [`Notice::Summary`]: with `Completed`, for a call of this user that has
//!   no saved result yet (opens the Call summary modal).
//! - [`Notice::RecordingAttached`]: a call of this user, logged on a record,
//!   whose recording arrived after it was announced as ended (a late
//!   update): "Recording attached to <record>", once. A recording already
//!   there when the call ended is in the `add_call` and not said again.
//! - A call seen answered or ended never rings afterwards.
//! - [`Notice::Withdrawn`]: the call was withdrawn from this user (another
//!   agent of the ring group answered it, it was transferred away, or the
//!   group call ended unanswered): its pop-up comes down if one was shown,
//!   and nothing more is ever shown for it (no missed call, no summary).

use callcard_calls::feed::{CallView, CallerId};
use callcard_calls::CallStatus;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A ringing snapshot older than this is history, not a ringing phone.
pub const RINGING_FRESH_MS: i64 = 2 * 60 * 1000;
/// An ended call older than this (for example found after a long night
/// offline) is not announced any more.
pub const COMPLETED_FRESH_MS: i64 = 30 * 60 * 1000;
/// How many entries are remembered; the oldest are forgotten first.
pub const CAPACITY: usize = 500;

/// Something shown to the manager about one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// `show_notification`, while ringing.
    Ringing,
    /// `show_notification` again, naming the caller once caller ID answered.
    Identified,
    /// `add_call`, when ended.
    Completed,
    /// The Call summary modal.
    Summary,
    /// Taking the ringing pop-up down: the call is no longer this user's.
    Withdrawn,
    /// A short message: the late recording was attached to the call's record.
    RecordingAttached,
}

/// The remembered notices, oldest first; stored as
/// `{"shown":[["<call_id>","ringing"|"identified"|"completed"|"summary"|"recording_attached"],…]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationLedger {
    shown: VecDeque<(String, Notice)>,
}

impl NotificationLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// The notices due for this snapshot, recorded as shown. `me` is the
    /// current user; `now_ms` the browser's clock.
    pub fn decide(&mut self, view: &CallView, me: u64, now_ms: i64) -> Vec<Notice> {
        if view.user_id.is_some_and(|u| u != me) {
            return Vec::new();
        }
        let id = view.call.call_id.as_str();
        let mut due = Vec::new();
        if view.withdrawn {
            let popped = self.was_shown(id, Notice::Ringing) || self.was_shown(id, Notice::Identified);
            for notice in [Notice::Ringing, Notice::Identified, Notice::Completed, Notice::Summary] {
                self.record(id, notice);
            }
            if self.record(id, Notice::Withdrawn) && popped {
                due.push(Notice::Withdrawn);
            }
            return due;
        }
        match view.status {
            CallStatus::Ringing => {
                let fresh = view.call.ringing_at.is_none_or(|at| now_ms - at <= RINGING_FRESH_MS);
                let identified = !matches!(view.caller, CallerId::Pending);
                if self.record(id, Notice::Ringing) {
                    if fresh {
                        due.push(Notice::Ringing);
                    }
                    if identified {
                        self.record(id, Notice::Identified);
                    }
                } else if identified && self.record(id, Notice::Identified) && fresh {
                    due.push(Notice::Identified);
                }
            }
            CallStatus::Answered => {
                self.record(id, Notice::Ringing);
            }
            CallStatus::Ended => {
                self.record(id, Notice::Ringing);
                let ended_at = view.call.ending.as_ref().map(|e| e.at);
                let fresh = ended_at.is_none_or(|at| now_ms - at <= COMPLETED_FRESH_MS);
                let announced_before = !self.record(id, Notice::Completed);
                if !announced_before && fresh {
                    due.push(Notice::Completed);
                }
                let mine = view.user_id == Some(me);
                if view.call.recording_url().is_some() && view.entity.is_some() {
                    // Only news when the call was announced without it.
                    if self.record(id, Notice::RecordingAttached) && announced_before && mine && fresh {
                        due.push(Notice::RecordingAttached);
                    }
                }
                if mine && !view.has_result && self.record(id, Notice::Summary) && fresh {
                    due.push(Notice::Summary);
                }
            }
        }
        due
    }

    /// Whether the notice was already shown for the call.
    pub fn was_shown(&self, call_id: &str, notice: Notice) -> bool {
        self.shown.iter().any(|(id, n)| id == call_id && *n == notice)
    }

    /// Records a notice; false when it was already there.
    pub fn record(&mut self, call_id: &str, notice: Notice) -> bool {
        if self.was_shown(call_id, notice) {
            return false;
        }
        if self.shown.len() >= CAPACITY {
            self.shown.pop_front();
        }
        self.shown.push_back((call_id.to_owned(), notice));
        true
    }

    /// Adds what another tab recorded.
    pub fn merge(&mut self, other: &NotificationLedger) {
        for (id, n) in &other.shown {
            self.record(id, *n);
        }
    }

    pub fn len(&self) -> usize {
        self.shown.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::{ended, view};
    use callcard_calls::{CallEventKind, Direction, Outcome};

    const ME: u64 = 8320148;
    const T0: i64 = 1_763_691_600_000;

    #[test]
    fn a_withdrawn_call_takes_its_pop_up_down_once_and_shows_nothing_more() {
        let mut ledger = NotificationLedger::new();
        let ringing = view(Direction::Inbound, "+18305703077", &[CallEventKind::Ringing]);
        assert_eq!(ledger.decide(&ringing, ME, T0 + 1_000), vec![Notice::Ringing]);
        let mut taken = ringing.clone();
        taken.withdrawn = true;
        assert_eq!(ledger.decide(&taken, ME, T0 + 2_000), vec![Notice::Withdrawn]);
        assert_eq!(ledger.decide(&taken, ME, T0 + 2_500), vec![], "withdrawn once");
        // A group call that ends unanswered: no missed call, no summary.
        let mut unanswered = view(Direction::Inbound, "+18305703077", &[ended(Outcome::NoAnswer, 0)]);
        unanswered.withdrawn = true;
        unanswered.user_id = Some(ME);
        assert_eq!(ledger.decide(&unanswered, ME, T0 + 3_000), vec![]);
        // Withdrawn before its pop-up was shown (a reconnect): nothing to take down, nothing later.
        let mut fresh = NotificationLedger::new();
        assert_eq!(fresh.decide(&taken, ME, T0 + 1_000), vec![]);
        assert_eq!(fresh.decide(&ringing, ME, T0 + 1_500), vec![], "a stale ringing snapshot does not pop it again");
    }

    #[test]
    fn a_ringing_call_pops_up_once() {
        let mut ledger = NotificationLedger::new();
        let v = view(Direction::Inbound, "+18305703077", &[CallEventKind::Ringing]);
        assert_eq!(ledger.decide(&v, ME, T0 + 1_000), vec![Notice::Ringing]);
        assert_eq!(ledger.decide(&v, ME, T0 + 2_000), vec![]);
        let answered = view(Direction::Inbound, "+18305703077", &[CallEventKind::Ringing, CallEventKind::Answered]);
        assert_eq!(ledger.decide(&answered, ME, T0 + 3_000), vec![]);
    }

    #[test]
    fn caller_id_after_the_first_pop_up_shows_the_named_one_once() {
        let mut ledger = NotificationLedger::new();
        let mut v = view(Direction::Inbound, "+18305703077", &[CallEventKind::Ringing]);
        assert_eq!(ledger.decide(&v, ME, T0 + 100), vec![Notice::Ringing], "the number, at once");
        assert_eq!(ledger.decide(&v, ME, T0 + 200), vec![], "still pending");
        v.caller = CallerId::Unknown;
        assert_eq!(ledger.decide(&v, ME, T0 + 900), vec![Notice::Identified]);
        assert_eq!(ledger.decide(&v, ME, T0 + 1_000), vec![]);
        // Answered before caller ID came back: nothing more while the phone is picked up.
        let mut late = view(Direction::Inbound, "+1830", &[CallEventKind::Ringing]);
        late.call.call_id = "c2".into();
        assert_eq!(ledger.decide(&late, ME, T0), vec![Notice::Ringing]);
        let mut answered = view(Direction::Inbound, "+1830", &[CallEventKind::Ringing, CallEventKind::Answered]);
        answered.call.call_id = "c2".into();
        answered.caller = CallerId::Unknown;
        assert_eq!(ledger.decide(&answered, ME, T0 + 5_000), vec![]);
    }

    #[test]
    fn a_first_pop_up_that_names_the_caller_is_not_repeated() {
        let mut ledger = NotificationLedger::new();
        let mut v = view(Direction::Inbound, "+18305703077", &[CallEventKind::Ringing]);
        v.caller =
            CallerId::known("Maria Gonzalez", callcard_calls::EntityRef::new(callcard_calls::EntityKind::Contact, 31));
        assert_eq!(ledger.decide(&v, ME, T0 + 100), vec![Notice::Ringing]);
        assert_eq!(ledger.decide(&v, ME, T0 + 200), vec![]);
        assert!(ledger.was_shown("c1", Notice::Identified));
    }

    #[test]
    fn an_ended_call_is_announced_once_with_a_summary() {
        let mut ledger = NotificationLedger::new();
        let v = view(Direction::Inbound, "+1830", &[CallEventKind::Ringing, ended(Outcome::Answered, 30)]);
        assert_eq!(ledger.decide(&v, ME, T0 + 20_000), vec![Notice::Completed, Notice::Summary]);
        assert_eq!(ledger.decide(&v, ME, T0 + 20_000), vec![]);
        // A replayed ringing snapshot of the same call stays quiet.
        let ringing = view(Direction::Inbound, "+1830", &[CallEventKind::Ringing]);
        assert_eq!(ledger.decide(&ringing, ME, T0 + 21_000), vec![]);
    }

    #[test]
    fn a_recording_arriving_after_the_call_was_announced_is_said_once() {
        let mut ledger = NotificationLedger::new();
        let mut v = view(Direction::Inbound, "+1830", &[CallEventKind::Ringing, ended(Outcome::Answered, 30)]);
        v.entity = Some(callcard_calls::EntityRef::new(callcard_calls::EntityKind::Lead, 5));
        assert_eq!(ledger.decide(&v, ME, T0 + 20_000), vec![Notice::Completed, Notice::Summary]);
        let recording = CallEventKind::RecordingReady { recording_url: "https://pbx.example/r/1.mp3".into() };
        let mut late = view(
            Direction::Inbound,
            "+1830",
            &[CallEventKind::Ringing, ended(Outcome::Answered, 30), recording.clone()],
        );
        late.entity = None;
        assert_eq!(ledger.decide(&late, ME, T0 + 30_000), vec![], "not logged yet: nothing to say where it went");
        late.entity = v.entity;
        assert_eq!(ledger.decide(&late, ME, T0 + 31_000), vec![Notice::RecordingAttached]);
        assert_eq!(ledger.decide(&late, ME, T0 + 32_000), vec![], "once");

        // Already there when the call was announced: the add_call had it.
        let mut ledger = NotificationLedger::new();
        assert_eq!(ledger.decide(&late, ME, T0 + 31_000), vec![Notice::Completed, Notice::Summary]);
        assert_eq!(ledger.decide(&late, ME, T0 + 32_000), vec![]);
        // Someone else's call: not this manager's news.
        let mut ledger = NotificationLedger::new();
        let mut theirs = v.clone();
        theirs.user_id = Some(ME + 1);
        ledger.decide(&theirs, ME, T0 + 20_000);
        let mut theirs_late = late.clone();
        theirs_late.user_id = Some(ME + 1);
        assert_eq!(ledger.decide(&theirs_late, ME, T0 + 31_000), vec![]);
    }

    #[test]
    fn a_call_with_a_result_gets_no_summary() {
        let mut ledger = NotificationLedger::new();
        let mut v = view(Direction::Inbound, "+1830", &[ended(Outcome::Answered, 30)]);
        v.has_result = true;
        assert_eq!(ledger.decide(&v, ME, T0), vec![Notice::Completed]);
    }

    #[test]
    fn other_users_calls_are_not_shown() {
        let mut ledger = NotificationLedger::new();
        let mut v = view(Direction::Inbound, "+1830", &[CallEventKind::Ringing]);
        v.user_id = Some(1);
        assert_eq!(ledger.decide(&v, ME, T0), vec![]);
        // Unassigned calls ring, but only the owner gets a summary.
        v.user_id = None;
        assert_eq!(ledger.decide(&v, ME, T0), vec![Notice::Ringing]);
        let mut e = view(Direction::Inbound, "+1830", &[ended(Outcome::Answered, 30)]);
        e.user_id = None;
        assert_eq!(ledger.decide(&e, ME, T0), vec![Notice::Completed]);
    }

    #[test]
    fn stale_snapshots_are_history() {
        let mut ledger = NotificationLedger::new();
        let v = view(Direction::Inbound, "+1830", &[CallEventKind::Ringing]);
        assert_eq!(ledger.decide(&v, ME, T0 + RINGING_FRESH_MS + 1), vec![]);
        let e = view(Direction::Inbound, "+1830", &[ended(Outcome::Answered, 30)]);
        assert_eq!(ledger.decide(&e, ME, T0 + COMPLETED_FRESH_MS + 1), vec![]);
        // and they are remembered, so they stay quiet later too
        assert!(ledger.was_shown("c1", Notice::Completed));
    }

    #[test]
    fn the_ledger_survives_a_round_trip_and_merges() {
        let mut a = NotificationLedger::new();
        a.record("c1", Notice::Ringing);
        a.record("c\"2", Notice::Summary);
        a.record("c3", Notice::Completed);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"shown":[["c1","ringing"],["c\"2","summary"],["c3","completed"]]}"#);
        let b: NotificationLedger = serde_json::from_str(&json).unwrap();
        assert_eq!(a, b);
        for bad in [r#"{"shown":[["c1"]]}"#, r#"{"shown":[["c1","rang"]]}"#, r#"{"shown":{}}"#, r#"{}"#] {
            assert!(serde_json::from_str::<NotificationLedger>(bad).is_err(), "{bad}");
        }
        let mut b: NotificationLedger = serde_json::from_str(r#"{"shown":[["c1","ringing"]]}"#).unwrap();
        let mut c = NotificationLedger::new();
        c.record("c2", Notice::Completed);
        b.merge(&c);
        b.merge(&c);
        assert_eq!(b.len(), 2);
        assert!(b.was_shown("c1", Notice::Ringing));
        assert!(b.was_shown("c2", Notice::Completed));
    }

    #[test]
    fn the_ledger_is_bounded() {
        let mut l = NotificationLedger::new();
        for i in 0..CAPACITY + 10 {
            l.record(&format!("c{i}"), Notice::Ringing);
        }
        assert_eq!(l.len(), CAPACITY);
        assert!(!l.was_shown("c0", Notice::Ringing));
        assert!(l.was_shown(&format!("c{}", CAPACITY + 9), Notice::Ringing));
    }
}
