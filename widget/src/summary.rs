//! The Call summary's rules: the draft a manager fills in after a call, and
//! how it becomes a [`CallResult`].
//!
//! The modal (see [`crate::summary_view`]) keeps its fields in signals and
//! asks [`SummaryDraft::to_result`] for the result to post; a refusal names
//! the i18n key of the message to show, and the input stays as it was.

use callcard_calls::feed::{CallView, CallerId};
use callcard_calls::note;
use callcard_calls::result::{CallResult, TaskDraft, TaskKind, NOTE_MAX_CHARS, SUBJECT_MAX_CHARS};
use callcard_calls::{EntityKind, EntityRef};
use leptos::prelude::{Get, RwSignal, Set, Update, With, WithUntracked};
use serde::{Deserialize, Serialize};

/// The record chosen for the call, with the name to show and, where known,
/// a lead's `(pipeline_id, status_id)` and the responsible user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenEntity {
    pub entity: EntityRef,
    pub name: String,
    #[serde(default)]
    pub status: Option<(u64, u64)>,
    #[serde(default)]
    pub responsible_user_id: Option<u64>,
}

impl ChosenEntity {
    pub fn new(entity: EntityRef, name: impl Into<String>) -> Self {
        Self { entity, name: name.into(), status: None, responsible_user_id: None }
    }
}

/// Everything the manager can fill in (kept in `localStorage` while the
/// modal is open, see [`crate::drafts`]). Stored as
/// `{"entity":{"entity":{"kind","id"},"name","status","responsible_user_id"}|null,
/// "subject","note","task","task_kind","task_when","task_user","task_text"}`;
/// any member may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SummaryDraft {
    pub entity: Option<ChosenEntity>,
    /// The note's subject line, starting as the machine's ("Inbound call
    /// from …"); empty leaves the note's subject as it is.
    pub subject: String,
    pub note: String,
    pub task: bool,
    pub task_kind: TaskKind,
    /// An `<input type="datetime-local">` value: `YYYY-MM-DDTHH:MM[:SS]`.
    pub task_when: String,
    /// Who does the task; `None`: the manager.
    pub task_user: Option<u64>,
    pub task_text: String,
}

/// Why a draft cannot be saved: the i18n key of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DraftError(pub &'static str);

/// The record a call is linked to before the manager picks one: where the
/// backend logged it, else what caller ID found.
pub fn default_entity(view: &CallView) -> Option<ChosenEntity> {
    let suggested = match &view.caller {
        CallerId::Known { name, entity, deal, .. } => Some(ChosenEntity {
            entity: *entity,
            name: name.clone(),
            status: deal.map(|d| (d.pipeline_id, d.status_id)),
            responsible_user_id: deal.map(|d| d.responsible_user_id),
        }),
        _ => None,
    };
    match (view.entity, suggested) {
        (Some(e), Some(s)) if e == s.entity => Some(s),
        (Some(e), _) => Some(ChosenEntity::new(e, format!("{} #{}", kind_label(e.kind), e.id))),
        (None, s) => s,
    }
}

fn kind_label(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Lead => "Lead",
        EntityKind::Customer => "Customer",
        EntityKind::Contact => "Contact",
        EntityKind::Company => "Company",
    }
}

/// The fields of a `datetime-local` value, `YYYY-MM-DDTHH:MM[:SS[.fff]]`,
/// in the browser's time zone; [`crate::local_time::to_unix`] makes the
/// instant of it (the browser knows the zone's rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalDateTime {
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    /// Whole seconds (a fraction is dropped).
    pub second: u32,
}

/// A number written in ASCII digits only.
fn digits<T: std::str::FromStr>(s: Option<&str>) -> Option<T> {
    s.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()
}

impl LocalDateTime {
    pub fn parse(value: &str) -> Option<Self> {
        let (date, time) = value.trim().split_once('T')?;
        let mut d = date.split('-');
        let year: i32 = digits(d.next())?;
        let (month, day) = (digits(d.next())?, digits(d.next())?);
        let mut t = time.split(':');
        let (hour, minute) = (digits(t.next())?, digits(t.next())?);
        let second = match t.next() {
            None => 0,
            Some(s) => digits(Some(s.split_once('.').map_or(s, |(whole, _)| whole)))?,
        };
        let valid = d.next().is_none()
            && t.next().is_none()
            && (1..=12).contains(&month)
            && (1..=31).contains(&day)
            && hour <= 23
            && minute <= 59
            && second <= 59;
        valid.then_some(Self { year, month, day, hour, minute, second })
    }
}

/// A local date as the browser reports it (`Date.getFullYear()`,
/// `getMonth() + 1`, `getDate()`, `getDay()` with 0 = Sunday).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub weekday: u32,
}

/// How many days after `today` the default follow-up falls: the next working
/// day, so a call on Friday gets a Monday task, not a Saturday one.
pub fn days_to_next_working_day(today: LocalDate) -> u32 {
    match today.weekday {
        5 => 3, // Friday → Monday
        6 => 2, // Saturday → Monday
        _ => 1,
    }
}

/// The `datetime-local` value for `date` at `hour`:00.
pub fn datetime_local(date: LocalDate, hour: u32) -> String {
    format!("{:04}-{:02}-{:02}T{:02}:00", date.year, date.month, date.day, hour)
}

/// The hour a default follow-up task is due on its day.
pub const DEFAULT_TASK_HOUR: u32 = 10;

impl SummaryDraft {
    /// Ticks "Add a follow-up task". A manager who ticks it has usually not
    /// decided the exact time yet: when no time is set, it becomes the next
    /// working day at 10:00 (`next_working_day` is that date, from the browser).
    pub fn enable_task(&mut self, next_working_day: LocalDate) {
        self.task = true;
        if self.task_when.trim().is_empty() {
            self.task_when = datetime_local(next_working_day, DEFAULT_TASK_HOUR);
        }
    }

    pub fn for_call(view: &CallView) -> Self {
        Self {
            entity: default_entity(view),
            subject: note::subject(view.call.direction, view.call.external_number.as_str()),
            ..Self::default()
        }
    }

    /// The result to post. `to_unix` turns the task's local date-time into
    /// Unix seconds (the browser knows the time zone).
    pub fn to_result(&self, to_unix: impl Fn(&str) -> Option<i64>) -> Result<CallResult, DraftError> {
        let entity = self.entity.as_ref().ok_or(DraftError("summary.pick_entity"))?.entity;
        if self.note.chars().count() > NOTE_MAX_CHARS {
            return Err(DraftError("summary.note_too_long"));
        }
        // One line: a pasted line break becomes a space, as Kommo's own one-line fields do.
        let subject =
            self.subject.split(char::is_control).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ");
        let subject = subject.trim();
        if subject.chars().count() > SUBJECT_MAX_CHARS {
            return Err(DraftError("summary.subject_too_long"));
        }
        let subject = (!subject.is_empty()).then(|| subject.to_owned());
        let task = if self.task {
            let complete_till = to_unix(&self.task_when).ok_or(DraftError("summary.task_when_required"))?;
            let text = self.task_text.trim();
            if text.is_empty() {
                return Err(DraftError("summary.task_text_required"));
            }
            Some(TaskDraft {
                complete_till,
                text: text.to_owned(),
                kind: self.task_kind,
                responsible_user_id: self.task_user,
            })
        } else {
            None
        };
        let result = CallResult { entity, note: self.note.trim().to_owned(), task, subject };
        result.validate().map_err(|e| match e.field {
            "task.complete_till" => DraftError("summary.task_when_required"),
            "task.text" => DraftError("summary.task_text_required"),
            "note" => DraftError("summary.note_too_long"),
            "subject" => DraftError("summary.subject_too_long"),
            _ => DraftError("summary.pick_entity"),
        })?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::{ended, view};
    use callcard_calls::{Direction, Outcome};

    #[test]
    fn local_date_times_parse() {
        let at = |year, month, day, hour, minute, second| LocalDateTime { year, month, day, hour, minute, second };
        assert_eq!(LocalDateTime::parse("2025-11-21T10:30"), Some(at(2025, 11, 21, 10, 30, 0)));
        assert_eq!(LocalDateTime::parse(" 2024-02-29T23:59:30 "), Some(at(2024, 2, 29, 23, 59, 30)));
        assert_eq!(LocalDateTime::parse("2024-02-29T23:59:30.999"), Some(at(2024, 2, 29, 23, 59, 30)));
        for bad in [
            "2024-02-29T23:59:60",
            "2024-02-29T23:59:x",
            "2024-02-29T23:59:.5",
            "2024-02-29T24:00",
            "",
            "2025-13-01T00:00",
            "2025-11-21 10:30",
            "2025-11-21T10:30:00:00",
            "2025-11-21-1T10:30",
            "2025--21T10:30",
        ] {
            assert_eq!(LocalDateTime::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_call_record_is_preselected() {
        let mut v = view(Direction::Inbound, "+1830", &[ended(Outcome::Answered, 10)]);
        assert_eq!(default_entity(&v), None);
        let contact = EntityRef::new(EntityKind::Contact, 7);
        v.caller = CallerId::known("Anna", contact);
        assert_eq!(default_entity(&v), Some(ChosenEntity::new(contact, "Anna")));
        // A deal caller ID picked comes with its status and responsible user.
        let lead = EntityRef::new(EntityKind::Lead, 5);
        v.caller = CallerId::Known {
            name: "Website redesign".into(),
            entity: lead,
            holder: None,
            company: None,
            deal: Some(callcard_calls::feed::CallerDeal { status_id: 20, pipeline_id: 3, responsible_user_id: 9 }),
        };
        let chosen = default_entity(&v).unwrap();
        assert_eq!((chosen.status, chosen.responsible_user_id), (Some((3, 20)), Some(9)));
        v.entity = Some(EntityRef::new(EntityKind::Lead, 5));
        assert_eq!(default_entity(&v).unwrap().entity, EntityRef::new(EntityKind::Lead, 5));
    }

    /// A stand-in for the browser's clock: one known value.
    fn to_unix(value: &str) -> Option<i64> {
        (value == "2025-11-21T10:30").then_some(1_763_721_000)
    }

    #[test]
    fn drafts_become_results_or_name_the_problem() {
        let lead = ChosenEntity::new(EntityRef::new(EntityKind::Lead, 5), "Deal");
        let mut d = SummaryDraft { note: "  Wants a quote ".into(), ..SummaryDraft::default() };
        assert_eq!(d.to_result(to_unix), Err(DraftError("summary.pick_entity")));
        d.entity = Some(lead.clone());
        let r = d.to_result(to_unix).unwrap();
        assert_eq!((r.note.as_str(), r.task.is_none()), ("Wants a quote", true));
        d.task = true;
        assert_eq!(d.to_result(to_unix), Err(DraftError("summary.task_when_required")));
        d.task_when = "2025-11-21T10:30".into();
        assert_eq!(d.task_when, "2025-11-21T10:30");
        assert_eq!(d.to_result(to_unix), Err(DraftError("summary.task_text_required")));
        d.task_text = "Send quote".into();
        let r = d.to_result(to_unix).unwrap();
        assert_eq!(r.task, Some(TaskDraft::follow_up(1_763_721_000, "Send quote")));
        d.task_kind = TaskKind::Meeting;
        d.task_user = Some(9);
        let task = d.to_result(to_unix).unwrap().task.unwrap();
        assert_eq!((task.kind, task.responsible_user_id), (TaskKind::Meeting, Some(9)));
        d.note = "x".repeat(NOTE_MAX_CHARS + 1);
        assert_eq!(d.to_result(to_unix), Err(DraftError("summary.note_too_long")));
    }

    #[test]
    fn the_subject_starts_as_the_machines_and_goes_out_as_the_manager_wrote_it() {
        let v = view(Direction::Inbound, "+18305703077", &[ended(Outcome::Answered, 10)]);
        let mut d = SummaryDraft::for_call(&v);
        assert_eq!(d.subject, "Inbound call from +18305703077");
        d.entity = Some(ChosenEntity::new(EntityRef::new(EntityKind::Lead, 5), "Deal"));
        d.subject = "  Pricing for\n40 seats ".into();
        assert_eq!(d.to_result(to_unix).unwrap().subject.as_deref(), Some("Pricing for 40 seats"), "one line");
        d.subject = "   ".into();
        assert_eq!(d.to_result(to_unix).unwrap().subject, None, "emptied: the note keeps its subject");
        d.subject = "s".repeat(SUBJECT_MAX_CHARS + 1);
        assert_eq!(d.to_result(to_unix), Err(DraftError("summary.subject_too_long")));
        d.subject = "s".repeat(SUBJECT_MAX_CHARS);
        assert!(d.to_result(to_unix).is_ok());
    }

    #[test]
    fn drafts_are_stored_and_older_ones_still_read() {
        let lead = ChosenEntity::new(EntityRef::new(EntityKind::Lead, 5), "Deal \"x\"");
        let full = SummaryDraft {
            entity: Some(lead),
            subject: "Pricing".into(),
            note: "n\n".into(),
            task: true,
            task_kind: TaskKind::Meeting,
            task_when: "2025-11-21T10:30".into(),
            task_user: Some(9),
            task_text: "t".into(),
        };
        let text = serde_json::to_string(&full).unwrap();
        assert_eq!(serde_json::from_str::<SummaryDraft>(&text).unwrap(), full);
        let old: SummaryDraft = serde_json::from_str(r#"{"note":"hi"}"#).unwrap();
        assert_eq!(old, SummaryDraft { note: "hi".into(), ..SummaryDraft::default() });
        assert!(serde_json::from_str::<SummaryDraft>(r#"{"task":"yes"}"#).is_err());
    }
}

/// One call waiting for its summary.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    view: CallView,
    /// Cancelled: listed as "no result" (not shown in the modal) until the
    /// manager opens it again or a result is saved.
    dismissed: bool,
}

/// The calls waiting for a summary, oldest first. The modal shows one of
/// the open (not cancelled) ones at a time, the first unless the manager
/// moved to another; cancelled ones stay listed as "no result".
#[derive(Clone, Copy, Debug)]
pub struct SummaryQueue {
    calls: RwSignal<Vec<Pending>>,
    /// The call the manager moved to ("2 of 3"), if any.
    shown: RwSignal<Option<String>>,
}

impl Default for SummaryQueue {
    fn default() -> Self {
        Self { calls: RwSignal::new(Vec::new()), shown: RwSignal::new(None) }
    }
}

/// Where the shown summary is among the open ones: `index` of `count`, from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuePosition {
    pub index: usize,
    pub count: usize,
}

impl SummaryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a call for its summary (once); a cancelled one is opened again.
    pub fn open(&self, view: &CallView) {
        self.calls.update(|q| match q.iter_mut().find(|p| p.view.call.call_id == view.call.call_id) {
            Some(p) => p.dismissed = false,
            None => q.push(Pending { view: view.clone(), dismissed: false }),
        });
    }

    /// Lists a call as "no result" without showing it (a summary cancelled
    /// before a reload).
    pub fn list_dismissed(&self, view: &CallView) {
        self.calls.update(|q| {
            if !q.iter().any(|p| p.view.call.call_id == view.call.call_id) {
                q.push(Pending { view: view.clone(), dismissed: true });
            }
        });
    }

    /// A newer snapshot of a call: refreshes a queued one (its recording may
    /// have arrived), or drops it once a result was saved (maybe elsewhere)
    /// and not refused.
    pub fn refresh(&self, view: &CallView) {
        if self.find_untracked(&view.call.call_id).is_none() {
            return;
        }
        self.calls.update(|q| {
            if view.has_result && view.result_error.is_none() {
                q.retain(|p| p.view.call.call_id != view.call.call_id);
            } else if let Some(p) = q.iter_mut().find(|p| p.view.call.call_id == view.call.call_id) {
                p.view = view.clone();
            }
        });
    }

    /// Takes a call off the list (its result was saved).
    pub fn close(&self, call_id: &str) {
        self.calls.update(|q| q.retain(|p| p.view.call.call_id != call_id));
    }

    /// Cancel: the call leaves the modal and stays listed as "no result".
    pub fn dismiss(&self, call_id: &str) {
        self.calls.update(|q| {
            if let Some(p) = q.iter_mut().find(|p| p.view.call.call_id == call_id) {
                p.dismissed = true;
            }
        });
    }

    /// Cancels every open summary (the modal was closed).
    pub fn dismiss_all(&self) {
        self.calls.update(|q| q.iter_mut().for_each(|p| p.dismissed = true));
        self.shown.set(None);
    }

    /// Opens every call listed as "no result" again.
    pub fn reopen_dismissed(&self) {
        self.calls.update(|q| q.iter_mut().for_each(|p| p.dismissed = false));
        self.shown.set(None);
    }

    /// The queued snapshot of a call (tracked).
    pub fn find(&self, call_id: &str) -> Option<CallView> {
        self.calls.with(|q| q.iter().find(|p| p.view.call.call_id == call_id).map(|p| p.view.clone()))
    }

    /// The queued snapshot of a call, untracked.
    pub fn find_untracked(&self, call_id: &str) -> Option<CallView> {
        self.calls.with_untracked(|q| q.iter().find(|p| p.view.call.call_id == call_id).map(|p| p.view.clone()))
    }

    fn open_ids(q: &[Pending]) -> impl Iterator<Item = &str> {
        q.iter().filter(|p| !p.dismissed).map(|p| p.view.call.call_id.as_str())
    }

    /// The call whose summary the modal shows (tracked).
    pub fn open_call_id(&self) -> Option<String> {
        let shown = self.shown.get();
        self.calls.with(|q| {
            let mut open = Self::open_ids(q);
            match shown {
                Some(id) if Self::open_ids(q).any(|o| o == id) => Some(id),
                _ => open.next().map(str::to_owned),
            }
        })
    }

    /// Where the shown summary is among the open ones (tracked).
    pub fn position(&self) -> Option<QueuePosition> {
        let shown = self.open_call_id()?;
        self.calls.with(|q| {
            let index = Self::open_ids(q).position(|id| id == shown)?;
            Some(QueuePosition { index, count: Self::open_ids(q).count() })
        })
    }

    /// Shows the next (`Step::Next`) or previous open summary; stays at the ends.
    pub fn step(&self, step: Step) {
        let Some(at) = leptos::prelude::untrack(|| self.position()) else { return };
        let target = match step {
            Step::Next if at.index + 1 < at.count => at.index + 1,
            Step::Previous if at.index > 0 => at.index - 1,
            _ => return,
        };
        let id = self.calls.with_untracked(|q| Self::open_ids(q).nth(target).map(str::to_owned));
        self.shown.set(id);
    }

    /// The calls listed as "no result" (tracked).
    pub fn dismissed(&self) -> Vec<CallView> {
        self.calls.with(|q| q.iter().filter(|p| p.dismissed).map(|p| p.view.clone()).collect())
    }

    pub fn len(&self) -> usize {
        self.calls.with_untracked(Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which way the pager moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Previous,
    Next,
}

#[cfg(test)]
mod queue_tests {
    use super::*;
    use crate::notification::tests::{ended, view};
    use callcard_calls::{CallEventKind, Direction, Outcome};

    #[test]
    fn the_queue_opens_once_refreshes_and_closes() {
        let q = SummaryQueue::new();
        let v = view(Direction::Inbound, "+1830", &[ended(Outcome::Answered, 10)]);
        q.open(&v);
        q.open(&v);
        assert_eq!(q.len(), 1);
        assert_eq!(q.open_call_id().as_deref(), Some("c1"));
        let with_recording = view(
            Direction::Inbound,
            "+1830",
            &[ended(Outcome::Answered, 10), CallEventKind::RecordingReady { recording_url: "https://r".into() }],
        );
        q.refresh(&with_recording);
        assert_eq!(q.find("c1").unwrap().call.recording_url(), Some("https://r"));
        let mut saved = with_recording.clone();
        saved.has_result = true;
        q.refresh(&saved);
        assert!(q.is_empty());
        q.open(&v);
        q.close("c1");
        assert!(q.is_empty());
    }

    #[test]
    fn a_ticked_task_defaults_to_the_next_working_day_at_ten() {
        let friday = LocalDate { year: 2026, month: 11, day: 20, weekday: 5 };
        assert_eq!(days_to_next_working_day(friday), 3);
        assert_eq!(days_to_next_working_day(LocalDate { weekday: 6, ..friday }), 2);
        assert_eq!(days_to_next_working_day(LocalDate { weekday: 0, ..friday }), 1);
        assert_eq!(days_to_next_working_day(LocalDate { weekday: 2, ..friday }), 1);
        let monday = LocalDate { year: 2026, month: 11, day: 23, weekday: 1 };
        let mut d = SummaryDraft::default();
        d.enable_task(monday);
        assert!(d.task);
        assert_eq!(d.task_when, "2026-11-23T10:00");
        // A time the manager already chose is kept.
        d.task_when = "2026-11-24T15:30".into();
        d.enable_task(monday);
        assert_eq!(d.task_when, "2026-11-24T15:30");
    }

    #[test]
    fn several_summaries_page_and_cancel_keeps_them_listed() {
        let q = SummaryQueue::new();
        let call = |id: &str| {
            let mut v = view(Direction::Inbound, "+1830", &[ended(Outcome::Answered, 10)]);
            v.call.call_id = id.into();
            v
        };
        for id in ["a", "b", "c"] {
            q.open(&call(id));
        }
        assert_eq!(q.position(), Some(QueuePosition { index: 0, count: 3 }));
        q.step(Step::Previous);
        assert_eq!(q.open_call_id().as_deref(), Some("a"), "stays at the first");
        q.step(Step::Next);
        q.step(Step::Next);
        assert_eq!(q.open_call_id().as_deref(), Some("c"));
        q.step(Step::Next);
        assert_eq!(q.position(), Some(QueuePosition { index: 2, count: 3 }));
        // Cancel: off the modal, listed as "no result".
        q.dismiss("c");
        assert_eq!(q.open_call_id().as_deref(), Some("a"));
        assert_eq!(q.position(), Some(QueuePosition { index: 0, count: 2 }));
        assert_eq!(q.dismissed().iter().map(|v| v.call.call_id.as_str()).collect::<Vec<_>>(), ["c"]);
        q.close("a");
        q.dismiss_all();
        assert_eq!(q.open_call_id(), None);
        assert_eq!(q.len(), 2, "nothing is lost");
        q.reopen_dismissed();
        assert_eq!(q.position(), Some(QueuePosition { index: 0, count: 2 }));
        let mut saved = call("b");
        saved.has_result = true;
        q.refresh(&saved);
        assert_eq!(q.open_call_id().as_deref(), Some("c"));
    }
}
