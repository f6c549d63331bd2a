//! The call, folded from its PBX events.
//!
//! PBXs retry and reorder webhooks, so a call is not a sequence of state
//! transitions but a *merge* of facts: each fact keeps its earliest (or, for
//! the end and the recording, its latest-reported) value. [`Call::apply`] is
//! idempotent and commutative: applying the same events in any order, any
//! number of times, gives the same call. The visible [`CallStatus`] is derived
//! from the facts, never stored on its own, so an `ended` that arrives before
//! `ringing` still yields one ended call.

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
            CallEventKind::Ringing => self.ringing_at = earliest(self.ringing_at, at),
            CallEventKind::Answered => self.answered_at = earliest(self.answered_at, at),
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
        *self != before
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
