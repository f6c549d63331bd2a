//! The Call summary's rules: the draft a manager fills in after a call, and
//! how it becomes a [`CallResult`].
//!
//! The modal (see [`crate::summary_view`]) keeps its fields in signals and
//! asks [`SummaryDraft::to_result`] for the result to post; a refusal names
//! the i18n key of the message to show, and the input stays as it was.

use crate::json::{Json, Writer};
use crate::wire;
use callcard_calls::feed::{CallView, CallerId};
use callcard_calls::result::{CallResult, TaskDraft, NOTE_MAX_CHARS};
use callcard_calls::{EntityKind, EntityRef};

/// The record chosen for the call, with the name to show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize))]
pub struct ChosenEntity {
    pub entity: EntityRef,
    pub name: String,
}

/// Everything the manager can fill in (kept in `localStorage` while the
/// modal is open, see [`crate::drafts`]). Stored as
/// `{"entity":{"entity":{"kind","id"},"name"}|null,"note","task","task_when","task_text"}`;
/// any member may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize), serde(default))]
pub struct SummaryDraft {
    pub entity: Option<ChosenEntity>,
    pub note: String,
    pub task: bool,
    /// An `<input type="datetime-local">` value: `YYYY-MM-DDTHH:MM[:SS]`.
    pub task_when: String,
    pub task_text: String,
}

impl SummaryDraft {
    pub fn write_json(&self, w: &mut Writer) {
        w.open().key("entity");
        match &self.entity {
            Some(chosen) => {
                w.open().key("entity");
                wire::write_entity_ref(w, &chosen.entity);
                w.key("name").str(&chosen.name).close();
            }
            None => {
                w.null();
            }
        }
        w.key("note").str(&self.note).key("task").bool(self.task);
        w.key("task_when").str(&self.task_when).key("task_text").str(&self.task_text).close();
    }

    pub fn from_json(j: &Json) -> Option<Self> {
        if !j.is_object() {
            return None;
        }
        let text = |key| wire::or_default(j, key, |v: &Json| v.as_str().map(str::to_owned));
        Some(Self {
            entity: wire::opt(j, "entity", |v| {
                Some(ChosenEntity { entity: wire::entity_ref(v.get("entity")?)?, name: wire::string(v, "name")? })
            })?,
            note: text("note")?,
            task: wire::or_default(j, "task", Json::as_bool)?,
            task_when: text("task_when")?,
            task_text: text("task_text")?,
        })
    }
}

/// Why a draft cannot be saved: the i18n key of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DraftError(pub &'static str);

/// The record a call is linked to before the manager picks one: where the
/// backend logged it, else what caller ID found.
pub fn default_entity(view: &CallView) -> Option<ChosenEntity> {
    let name = match &view.caller {
        CallerId::Known { name, .. } => name.clone(),
        _ => view.call.external_number.as_str().to_owned(),
    };
    match (&view.entity, &view.caller) {
        (Some(e), CallerId::Known { entity, .. }) if e == entity => Some(ChosenEntity { entity: *e, name }),
        (Some(e), _) => Some(ChosenEntity { entity: *e, name: format!("{} #{}", kind_label(e.kind), e.id) }),
        (None, CallerId::Known { entity, .. }) => Some(ChosenEntity { entity: *entity, name }),
        (None, _) => None,
    }
}

/// The i18n key naming an entity kind.
pub fn kind_key(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Lead => "summary.kind_lead",
        EntityKind::Customer => "summary.kind_customer",
        EntityKind::Contact => "summary.kind_contact",
        EntityKind::Company => "summary.kind_company",
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

/// `YYYY-MM-DDTHH:MM[:SS]` read as if it were UTC: seconds since the epoch.
/// The caller shifts by the browser's time-zone offset.
pub fn naive_seconds(value: &str) -> Option<i64> {
    let (date, time) = value.trim().split_once('T')?;
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let min: i64 = t.next()?.parse().ok()?;
    let s = t.next().map_or(Some(0), whole_seconds)?;
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s >= 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3_600 + min * 60 + s)
}

/// `SS` or `SS.fff` (what `datetime-local` inputs give) as whole seconds.
fn whole_seconds(s: &str) -> Option<i64> {
    let (int, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && fraction.is_empty()) || !digits(int) || !digits(fraction) {
        return None;
    }
    // At least 60 (refused) when longer than two digits.
    let int = int.trim_start_matches('0');
    if int.len() > 2 {
        return Some(60);
    }
    Some(int.parse().unwrap_or(0))
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
        Self { entity: default_entity(view), ..Self::default() }
    }

    /// The result to post. `to_unix` turns the task's local date-time into
    /// Unix seconds (the browser knows the time zone).
    pub fn to_result(&self, to_unix: impl Fn(&str) -> Option<i64>) -> Result<CallResult, DraftError> {
        let entity = self.entity.as_ref().ok_or(DraftError("summary.pick_entity"))?.entity;
        if self.note.chars().count() > NOTE_MAX_CHARS {
            return Err(DraftError("summary.note_too_long"));
        }
        let task = if self.task {
            let complete_till = to_unix(&self.task_when).ok_or(DraftError("summary.task_when_required"))?;
            let text = self.task_text.trim();
            if text.is_empty() {
                return Err(DraftError("summary.task_text_required"));
            }
            Some(TaskDraft { complete_till, text: text.to_owned() })
        } else {
            None
        };
        let result = CallResult { entity, note: self.note.trim().to_owned(), task };
        result.validate().map_err(|e| match e.field {
            "task.complete_till" => DraftError("summary.task_when_required"),
            "task.text" => DraftError("summary.task_text_required"),
            "note" => DraftError("summary.note_too_long"),
            _ => DraftError("summary.pick_entity"),
        })?;
        Ok(result)
    }
}

/// `m:ss` (or `h:mm:ss`) for a duration in seconds.
pub fn format_duration(seconds: u32) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::tests::{ended, view};
    use callcard_calls::{Direction, Outcome};

    #[test]
    fn local_date_times_parse() {
        assert_eq!(naive_seconds("1970-01-01T00:00"), Some(0));
        assert_eq!(naive_seconds("2025-11-21T10:30"), Some(1_763_721_000));
        assert_eq!(naive_seconds("2024-02-29T23:59:30"), Some(1_709_251_170));
        assert_eq!(naive_seconds("2024-02-29T23:59:30.999"), Some(1_709_251_170));
        assert_eq!(naive_seconds("2024-02-29T23:59:.5"), Some(1_709_251_140));
        assert_eq!(naive_seconds("2024-02-29T23:59:005"), Some(1_709_251_145));
        assert_eq!(naive_seconds("2024-02-29T23:59:60"), None);
        assert_eq!(naive_seconds("2024-02-29T23:59:0060"), None);
        assert_eq!(naive_seconds("2024-02-29T23:59:x"), None);
        assert_eq!(naive_seconds("2024-02-29T23:59:."), None);
        assert_eq!(naive_seconds(""), None);
        assert_eq!(naive_seconds("2025-13-01T00:00"), None);
        assert_eq!(naive_seconds("2025-11-21 10:30"), None);
    }

    #[test]
    fn the_call_record_is_preselected() {
        let mut v = view(Direction::Inbound, "+1830", &[ended(Outcome::Answered, 10)]);
        assert_eq!(default_entity(&v), None);
        let contact = EntityRef::new(EntityKind::Contact, 7);
        v.caller = CallerId::Known { name: "Anna".into(), entity: contact };
        assert_eq!(default_entity(&v), Some(ChosenEntity { entity: contact, name: "Anna".into() }));
        v.entity = Some(EntityRef::new(EntityKind::Lead, 5));
        assert_eq!(default_entity(&v).unwrap().entity, EntityRef::new(EntityKind::Lead, 5));
    }

    #[test]
    fn drafts_become_results_or_name_the_problem() {
        let lead = ChosenEntity { entity: EntityRef::new(EntityKind::Lead, 5), name: "Deal".into() };
        let mut d = SummaryDraft { note: "  Wants a quote ".into(), ..SummaryDraft::default() };
        assert_eq!(d.to_result(naive_seconds), Err(DraftError("summary.pick_entity")));
        d.entity = Some(lead.clone());
        let r = d.to_result(naive_seconds).unwrap();
        assert_eq!((r.note.as_str(), r.task.is_none()), ("Wants a quote", true));
        d.task = true;
        assert_eq!(d.to_result(naive_seconds), Err(DraftError("summary.task_when_required")));
        d.task_when = "2025-11-21T10:30".into();
        assert_eq!(d.task_when, "2025-11-21T10:30");
        assert_eq!(d.to_result(naive_seconds), Err(DraftError("summary.task_text_required")));
        d.task_text = "Send quote".into();
        let r = d.to_result(naive_seconds).unwrap();
        assert_eq!(r.task, Some(TaskDraft { complete_till: 1_763_721_000, text: "Send quote".into() }));
        d.note = "x".repeat(NOTE_MAX_CHARS + 1);
        assert_eq!(d.to_result(naive_seconds), Err(DraftError("summary.note_too_long")));
    }

    #[test]
    fn drafts_are_stored_as_serde_stored_them() {
        let lead = ChosenEntity { entity: EntityRef::new(EntityKind::Lead, 5), name: "Deal \"x\"".into() };
        let full = SummaryDraft {
            entity: Some(lead),
            note: "n\n".into(),
            task: true,
            task_when: "2025-11-21T10:30".into(),
            task_text: "t".into(),
        };
        for d in [SummaryDraft::default(), full] {
            let mut w = Writer::new();
            d.write_json(&mut w);
            let text = w.finish();
            assert_eq!(text, serde_json::to_string(&d).unwrap());
            assert_eq!(SummaryDraft::from_json(&crate::json::parse(&text).unwrap()), Some(d));
        }
        for text in [
            r#"{"note":"hi"}"#,
            r#"{}"#,
            r#"{"entity":null,"task":true,"other":1}"#,
            r#"{"entity":{"entity":{"kind":"lead","id":1}}}"#,
            r#"{"note":null}"#,
            r#"{"task":"yes"}"#,
            r#"null"#,
        ] {
            let theirs = serde_json::from_str::<SummaryDraft>(text).ok();
            assert_eq!(SummaryDraft::from_json(&crate::json::parse(text).unwrap()), theirs, "{text}");
        }
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(format_duration(0), "0:00");
        assert_eq!(format_duration(65), "1:05");
        assert_eq!(format_duration(3_725), "1:02:05");
    }
}

/// The calls waiting for a summary, oldest first; the first one is open.
#[derive(Clone, Debug, Default)]
pub struct SummaryQueue(pub leptos::prelude::ArcRwSignal<Vec<CallView>>);

impl SummaryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a call for its summary (once).
    pub fn open(&self, view: &CallView) {
        use leptos::prelude::Update;
        self.0.update(|q| {
            if !q.iter().any(|v| v.call.call_id == view.call.call_id) {
                q.push(view.clone());
            }
        });
    }

    /// A newer snapshot of a call: refreshes a queued one (its recording may
    /// have arrived), or drops it once a result was saved (maybe elsewhere).
    pub fn refresh(&self, view: &CallView) {
        use leptos::prelude::{Update, WithUntracked};
        let queued = self.0.with_untracked(|q| q.iter().any(|v| v.call.call_id == view.call.call_id));
        if !queued {
            return;
        }
        self.0.update(|q| {
            if view.has_result {
                q.retain(|v| v.call.call_id != view.call.call_id);
            } else if let Some(v) = q.iter_mut().find(|v| v.call.call_id == view.call.call_id) {
                *v = view.clone();
            }
        });
    }

    /// Closes a call's summary.
    pub fn close(&self, call_id: &str) {
        use leptos::prelude::Update;
        self.0.update(|q| q.retain(|v| v.call.call_id != call_id));
    }

    /// The queued snapshot of a call (tracked).
    pub fn find(&self, call_id: &str) -> Option<CallView> {
        use leptos::prelude::With;
        self.0.with(|q| q.iter().find(|v| v.call.call_id == call_id).cloned())
    }

    /// The call whose summary is open (tracked).
    pub fn open_call_id(&self) -> Option<String> {
        use leptos::prelude::With;
        self.0.with(|q| q.first().map(|v| v.call.call_id.clone()))
    }

    pub fn len(&self) -> usize {
        use leptos::prelude::WithUntracked;
        self.0.with_untracked(Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
}
