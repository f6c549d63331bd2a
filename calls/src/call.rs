//! The call, folded from its PBX events.
//!
//! PBXs retry and reorder webhooks, so a call is not a sequence of state
//! transitions but a *merge* of facts: each fact keeps its earliest (or, for
//! the end and the recording, its latest-reported) value. [`Call::apply`] is
//! idempotent and commutative: applying the same events in any order, any
//! number of times, gives the same call. The visible [`CallStatus`] is derived
//! from the facts, never stored on its own, so an `ended` that arrives before
//! `ringing` still yields one ended call.
//!
//! One call may ring several extensions (a ring group or queue, at once or
//! in turn) and move between them (a transfer): each `ringing` and
//! `answered` event names the extension it is about, and the call keeps one
//! [`Leg`] per extension with the earliest time each happened there. The
//! call's holder is derived from the legs like the status is: the extension
//! that answered last ([`Call::holder`]); while nobody has answered, a call
//! that rang one extension is that extension's, and a group call nobody's.
//! [`Call::audience`] says who should see the call now (its holder and the
//! extensions ringing for it), from which the backend withdraws the card
//! of whoever no longer should.

use crate::event::{CallEvent, CallEventKind, Direction, Outcome};
use crate::phone::PhoneNumber;
use serde::{Deserialize, Serialize};

/// Where a call is, as the manager sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Ringing,
    Answered,
    Ended,
}

/// How the call ended, and when the PBX said so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ending {
    pub at: i64,
    pub duration: u32,
    pub outcome: Outcome,
}

/// The recording, and when the PBX announced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recording {
    pub at: i64,
    pub url: String,
}

/// Everything the PBX has told us about one call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Call {
    pub call_id: String,
    pub direction: Direction,
    pub external_number: PhoneNumber,
    pub extension: String,
    /// Unix milliseconds of the first ringing event.
    pub ringing_at: Option<i64>,
    /// Unix milliseconds of the first answered event.
    pub answered_at: Option<i64>,
    pub ending: Option<Ending>,
    pub recording: Option<Recording>,
    /// Every extension a `ringing` or `answered` event named, by extension
    /// (a call of one extension has one leg; empty for a call known only
    /// from other events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legs: Vec<Leg>,
}

/// One extension's part in a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Leg {
    pub extension: String,
    /// Unix milliseconds of the first `ringing` at this extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rang_at: Option<i64>,
    /// Unix milliseconds of the first `answered` at this extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<i64>,
}

/// Why a user should see a call now ([`Call::audience`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The call is theirs: they hold it, or it rang only them.
    Holder,
    /// It rings their extension for a group, or to be transferred to them.
    Ringing,
}

impl Call {
    /// A call known only from this one event.
    pub fn from_event(event: &CallEvent) -> Self {
        let mut call = Call {
            call_id: event.call_id.clone(),
            direction: event.direction,
            external_number: event.external_number.clone(),
            extension: event.extension.clone(),
            ringing_at: None,
            answered_at: None,
            ending: None,
            recording: None,
            legs: Vec::new(),
        };
        call.apply(event);
        call
    }

    /// Merges one event into the call. Returns whether anything the manager
    /// could see changed (a retried event changes nothing).
    pub fn apply(&mut self, event: &CallEvent) -> bool {
        let before = self.clone();
        let at = event.occurred_at;
        match &event.kind {
            CallEventKind::Ringing => {
                self.ringing_at = earliest(self.ringing_at, at);
                self.leg(&event.extension, Some(at), None);
            }
            CallEventKind::Answered => {
                self.answered_at = earliest(self.answered_at, at);
                self.leg(&event.extension, None, Some(at));
            }
            CallEventKind::Ended { duration, outcome } => {
                let candidate = Ending { at, duration: *duration, outcome: *outcome };
                // The latest report wins (PBXs send corrected totals later);
                // ties break on the values so the order of arrival never matters.
                let better = match &self.ending {
                    None => true,
                    Some(current) => {
                        (candidate.at, candidate.duration, candidate.outcome)
                            > (current.at, current.duration, current.outcome)
                    }
                };
                if better {
                    self.ending = Some(candidate);
                }
            }
            CallEventKind::RecordingReady { recording_url } => {
                let candidate = Recording { at, url: recording_url.clone() };
                let better = match &self.recording {
                    None => true,
                    Some(current) => (&candidate.at, &candidate.url) > (&current.at, &current.url),
                };
                if better {
                    self.recording = Some(candidate);
                }
            }
        }
        self.settle_extension();
        *self != before
    }

    /// Merges what one event says about `extension` into its leg.
    fn leg(&mut self, extension: &str, rang_at: Option<i64>, answered_at: Option<i64>) {
        let i = match self.legs.binary_search_by(|l| l.extension.as_str().cmp(extension)) {
            Ok(i) => i,
            Err(i) => {
                self.legs.insert(i, Leg { extension: extension.to_string(), rang_at: None, answered_at: None });
                i
            }
        };
        let leg = &mut self.legs[i];
        if let Some(at) = rang_at {
            leg.rang_at = earliest(leg.rang_at, at);
        }
        if let Some(at) = answered_at {
            leg.answered_at = earliest(leg.answered_at, at);
        }
    }

    /// `extension` as the legs say: the holder, else the extension that
    /// rang first; a call without legs keeps the one it was created with.
    fn settle_extension(&mut self) {
        let first_rung = self.legs.iter().filter_map(|l| Some((l.rang_at?, &l.extension))).min();
        let settled = self.holder().map(str::to_string).or_else(|| first_rung.map(|(_, e)| e.clone()));
        if let Some(extension) = settled {
            self.extension = extension;
        }
    }

    /// The extension that holds the call: the one that answered last (a
    /// transfer moves it); before any answer, the only extension it rang;
    /// `None` for a group call nobody answered (yet), and for a call known
    /// only from events that ring nobody, its extension.
    pub fn holder(&self) -> Option<&str> {
        let answered = self.legs.iter().filter_map(|l| Some((l.answered_at?, &l.extension))).max();
        match (answered, self.legs.as_slice()) {
            (Some((_, extension)), _) => Some(extension),
            (None, []) => Some(&self.extension),
            (None, [only]) => Some(&only.extension),
            (None, _) => None,
        }
    }

    /// Whether the call rang (or was answered at) more than one extension.
    pub fn is_group(&self) -> bool {
        self.legs.len() > 1
    }

    /// The extensions that answered, in the order they did: more than one
    /// is a transfer.
    pub fn path(&self) -> Vec<&str> {
        let mut answered: Vec<(i64, &str)> =
            self.legs.iter().filter_map(|l| Some((l.answered_at?, l.extension.as_str()))).collect();
        answered.sort();
        answered.into_iter().map(|(_, e)| e).collect()
    }

    /// The extensions ringing for the call now: not ended, rung after the
    /// last answer (a transfer's target) or while nobody answered (a
    /// group), and not answered there.
    pub fn ringing_extensions(&self) -> Vec<&str> {
        if self.ending.is_some() {
            return Vec::new();
        }
        let last_answer = self.legs.iter().filter_map(|l| l.answered_at).max();
        self.legs
            .iter()
            .filter(|l| l.answered_at.is_none())
            .filter(|l| l.rang_at.is_some_and(|at| last_answer.is_none_or(|answer| at >= answer)))
            .map(|l| l.extension.as_str())
            .collect()
    }

    /// Who should see the call now, as the Kommo users `user_of` maps the
    /// extensions to: the holder's user, and the users of the extensions
    /// ringing for it (a user both is its holder). Sorted by user. The
    /// backend sends each of them the call, and withdraws it from whoever
    /// was in the audience before a change and is not after (the other
    /// agents of a group once one answers, everybody when a group call ends
    /// unanswered, the first agent after a transfer).
    pub fn audience(&self, user_of: impl Fn(&str) -> Option<u64>) -> Vec<(u64, Role)> {
        let mut audience: Vec<(u64, Role)> = Vec::new();
        let holder = self.holder().and_then(&user_of);
        if let Some(user) = holder {
            audience.push((user, Role::Holder));
        }
        for extension in self.ringing_extensions() {
            if let Some(user) = user_of(extension).filter(|u| Some(*u) != holder) {
                audience.push((user, Role::Ringing));
            }
        }
        audience.sort();
        audience.dedup_by_key(|(user, _)| *user);
        audience
    }

    /// Merges another record of the same call (for example one read back from
    /// the store) into this one: the result is as if both had seen every event.
    pub fn merge(&mut self, other: &Call) -> bool {
        let before = self.clone();
        if let Some(at) = other.ringing_at {
            self.ringing_at = earliest(self.ringing_at, at);
        }
        if let Some(at) = other.answered_at {
            self.answered_at = earliest(self.answered_at, at);
        }
        if let Some(e) = &other.ending {
            let kind = CallEventKind::Ended { duration: e.duration, outcome: e.outcome };
            self.apply(&self.synthetic(kind, e.at));
        }
        if let Some(r) = &other.recording {
            let kind = CallEventKind::RecordingReady { recording_url: r.url.clone() };
            self.apply(&self.synthetic(kind, r.at));
        }
        for leg in &other.legs {
            self.leg(&leg.extension, leg.rang_at, leg.answered_at);
        }
        self.settle_extension();
        *self != before
    }

    fn synthetic(&self, kind: CallEventKind, occurred_at: i64) -> CallEvent {
        CallEvent {
            kind,
            call_id: self.call_id.clone(),
            direction: self.direction,
            external_number: self.external_number.clone(),
            extension: self.extension.clone(),
            occurred_at,
        }
    }

    pub fn status(&self) -> CallStatus {
        if self.ending.is_some() {
            CallStatus::Ended
        } else if self.answered_at.is_some() {
            CallStatus::Answered
        } else {
            CallStatus::Ringing
        }
    }

    /// When the call began: the first ringing, else the answer, else the end
    /// minus its duration (a batch-delivered or ringing-less call).
    pub fn started_at(&self) -> Option<i64> {
        self.ringing_at
            .or(self.answered_at)
            .or_else(|| self.ending.as_ref().map(|e| e.at - i64::from(e.duration) * 1000))
    }

    /// The seconds to log: the PBX's duration for a connected call, zero for
    /// one the manager did not take (missed, busy, failed, no answer).
    pub fn billable_seconds(&self) -> u32 {
        match &self.ending {
            Some(e) if e.outcome.was_connected() => e.duration,
            _ => 0,
        }
    }

    pub fn recording_url(&self) -> Option<&str> {
        self.recording.as_ref().map(|r| r.url.as_str())
    }
}

fn earliest(current: Option<i64>, at: i64) -> Option<i64> {
    Some(current.map_or(at, |c| c.min(at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: CallEventKind, at: i64) -> CallEvent {
        CallEvent {
            kind,
            call_id: "c1".into(),
            direction: Direction::Inbound,
            external_number: "+18305703077".into(),
            extension: "101".into(),
            occurred_at: at,
        }
    }

    fn lifecycle() -> Vec<CallEvent> {
        vec![
            event(CallEventKind::Ringing, 1_000),
            event(CallEventKind::Answered, 5_000),
            event(CallEventKind::Ended { duration: 40, outcome: Outcome::Answered }, 45_000),
            event(CallEventKind::RecordingReady { recording_url: "https://pbx/r.mp3".into() }, 60_000),
        ]
    }

    fn fold(events: &[CallEvent]) -> Call {
        let mut call = Call::from_event(&events[0]);
        for e in &events[1..] {
            call.apply(e);
        }
        call
    }

    #[test]
    fn the_status_follows_the_facts() {
        let events = lifecycle();
        assert_eq!(fold(&events[..1]).status(), CallStatus::Ringing);
        assert_eq!(fold(&events[..2]).status(), CallStatus::Answered);
        assert_eq!(fold(&events[..3]).status(), CallStatus::Ended);
        assert_eq!(fold(&events).recording_url(), Some("https://pbx/r.mp3"));
    }

    #[test]
    fn every_order_gives_the_same_call() {
        let events = lifecycle();
        let expected = fold(&events);
        // All 24 permutations of the four events.
        let mut idx = [0usize, 1, 2, 3];
        let mut seen = 0;
        permute(&mut idx, 0, &mut |order| {
            let shuffled: Vec<_> = order.iter().map(|&i| events[i].clone()).collect();
            assert_eq!(fold(&shuffled), expected, "order {order:?}");
            seen += 1;
        });
        assert_eq!(seen, 24);
    }

    fn permute(a: &mut [usize; 4], k: usize, f: &mut dyn FnMut(&[usize; 4])) {
        if k == a.len() {
            f(a);
            return;
        }
        for i in k..a.len() {
            a.swap(k, i);
            permute(a, k + 1, f);
            a.swap(k, i);
        }
    }

    #[test]
    fn a_retried_event_changes_nothing() {
        let events = lifecycle();
        let mut call = fold(&events);
        for e in &events {
            assert!(!call.apply(e), "re-applying {} changed the call", e.kind.name());
        }
    }

    #[test]
    fn an_end_without_ringing_is_one_ended_call() {
        let call = Call::from_event(&event(CallEventKind::Ended { duration: 12, outcome: Outcome::Answered }, 20_000));
        assert_eq!(call.status(), CallStatus::Ended);
        assert_eq!(call.started_at(), Some(8_000));
        assert_eq!(call.billable_seconds(), 12);
    }

    #[test]
    fn calls_not_taken_bill_zero_seconds() {
        for outcome in [Outcome::Missed, Outcome::Busy, Outcome::Failed, Outcome::NoAnswer] {
            let call = Call::from_event(&event(CallEventKind::Ended { duration: 30, outcome }, 20_000));
            assert_eq!(call.billable_seconds(), 0, "{outcome:?}");
        }
    }

    #[test]
    fn a_later_corrected_end_wins_whatever_the_order() {
        let first = event(CallEventKind::Ended { duration: 40, outcome: Outcome::Answered }, 45_000);
        let corrected = event(CallEventKind::Ended { duration: 41, outcome: Outcome::Answered }, 46_000);
        let a = fold(&[first.clone(), corrected.clone()]);
        let b = fold(&[corrected, first]);
        assert_eq!(a, b);
        assert_eq!(a.ending.unwrap().duration, 41);
    }

    fn at(kind: CallEventKind, extension: &str, at: i64) -> CallEvent {
        CallEvent { extension: extension.into(), ..event(kind, at) }
    }

    /// 101 → Anna (1), 102 → Bruno (2), 103 → Carla (3); 104 unmapped.
    fn user_of(extension: &str) -> Option<u64> {
        match extension {
            "101" => Some(1),
            "102" => Some(2),
            "103" => Some(3),
            _ => None,
        }
    }

    #[test]
    fn a_group_call_rings_everyone_and_belongs_to_whoever_answers() {
        let ringing = [
            at(CallEventKind::Ringing, "101", 1_000),
            at(CallEventKind::Ringing, "102", 1_000),
            at(CallEventKind::Ringing, "103", 1_200),
            at(CallEventKind::Ringing, "104", 1_300),
        ];
        let call = fold(&ringing);
        assert!(call.is_group());
        assert_eq!(call.holder(), None, "nobody holds a group call before an answer");
        assert_eq!(call.ringing_extensions(), ["101", "102", "103", "104"]);
        assert_eq!(call.audience(user_of), [(1, Role::Ringing), (2, Role::Ringing), (3, Role::Ringing)]);
        assert_eq!(call.extension, "101", "shown as the extension that rang first");

        let mut answered = ringing.to_vec();
        answered.push(at(CallEventKind::Answered, "102", 4_000));
        answered.push(at(CallEventKind::Ended { duration: 30, outcome: Outcome::Answered }, "101", 34_000));
        let call = fold(&answered);
        assert_eq!(call.holder(), Some("102"));
        assert_eq!(call.extension, "102", "logged for the agent who answered");
        assert_eq!(call.audience(user_of), [(2, Role::Holder)], "the others' cards are withdrawn");
        assert_eq!(call.billable_seconds(), 30);
        let before_end = fold(&answered[..5]);
        assert_eq!(before_end.audience(user_of), [(2, Role::Holder)], "withdrawn as soon as one answers");
    }

    #[test]
    fn a_group_call_nobody_answers_ends_as_nobodys_missed_call() {
        let call = fold(&[
            at(CallEventKind::Ringing, "101", 1_000),
            at(CallEventKind::Ringing, "102", 1_000),
            at(CallEventKind::Ended { duration: 25, outcome: Outcome::NoAnswer }, "101", 26_000),
        ]);
        assert_eq!(call.status(), CallStatus::Ended);
        assert_eq!(call.holder(), None, "no agent gets it as their missed call");
        assert!(call.audience(user_of).is_empty());
        assert_eq!(call.billable_seconds(), 0);
        // One extension: its own missed call, as ever.
        let single = fold(&[
            at(CallEventKind::Ringing, "101", 1_000),
            at(CallEventKind::Ended { duration: 0, outcome: Outcome::Missed }, "101", 9_000),
        ]);
        assert_eq!(single.audience(user_of), [(1, Role::Holder)]);
    }

    #[test]
    fn a_transfer_keeps_the_call_and_moves_it_to_the_new_agent() {
        let events = [
            at(CallEventKind::Ringing, "101", 1_000),
            at(CallEventKind::Answered, "101", 2_000),
            at(CallEventKind::Ringing, "102", 10_000),
            at(CallEventKind::Answered, "102", 12_000),
        ];
        let consulting = fold(&events[..3]);
        assert_eq!(consulting.holder(), Some("101"));
        assert_eq!(consulting.audience(user_of), [(1, Role::Holder), (2, Role::Ringing)], "the card pops for 102");
        let moved = fold(&events);
        assert_eq!(moved.call_id, "c1");
        assert_eq!((moved.holder(), moved.extension.as_str()), (Some("102"), "102"));
        assert_eq!(moved.path(), ["101", "102"]);
        assert_eq!(moved.audience(user_of), [(2, Role::Holder)], "withdrawn from 101");
        assert!(!moved.is_group() || moved.path().len() > 1);
    }

    #[test]
    fn group_and_transfer_events_fold_the_same_in_every_order() {
        let events = [
            at(CallEventKind::Ringing, "101", 1_000),
            at(CallEventKind::Ringing, "102", 1_000),
            at(CallEventKind::Answered, "102", 3_000),
            at(CallEventKind::Ended { duration: 9, outcome: Outcome::Answered }, "101", 12_000),
        ];
        let expected = fold(&events);
        let mut idx = [0usize, 1, 2, 3];
        permute(&mut idx, 0, &mut |order| {
            let shuffled: Vec<_> = order.iter().map(|&i| events[i].clone()).collect();
            assert_eq!(fold(&shuffled), expected, "order {order:?}");
            let mut halves = fold(&shuffled[..2]);
            halves.merge(&fold(&shuffled[2..]));
            assert_eq!(halves, expected, "merged halves of {order:?}");
        });
        assert_eq!(expected.extension, "102");
    }

    #[test]
    fn merging_two_partial_records_equals_seeing_all_events() {
        let events = lifecycle();
        let mut left = fold(&[events[0].clone(), events[3].clone()]);
        let right = fold(&[events[2].clone(), events[1].clone()]);
        assert!(left.merge(&right));
        assert_eq!(left, fold(&events));
        assert!(!left.merge(&right));
    }
}
