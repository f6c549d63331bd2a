//! The call note's text: sections that late data updates in place.
//!
//! A call is logged in Kommo once, as one call note, and then kept up to date
//! as better data arrives: the recording (usually after the call ended), a
//! corrected duration or outcome, the manager's own note from the Call
//! summary. Following RingCentral App Connect's `updateCallLog`, the note's
//! text is a list of *sections*, one line each (continuation lines are
//! indented by two spaces), and every update *upserts* sections: a section
//! already there is replaced where it stands, a missing one is appended.
//! Lines that are not ours (someone edited the note in Kommo) are kept as
//! they are.
//!
//! ```text
//! Call: Inbound call from +1 830 570 3077
//! Started: 2025-11-21 10:20:00 UTC
//! Duration: 1:02
//! Result: Answered
//! Recording: https://pbx.example/rec/pbx-7781.mp3
//! Agent note: Wants a quote for 40 seats;
//!   call back on Monday.
//! ```
//!
//! Later still, the PBX may send a transcript and its AI summary
//! (`transcript_ready`): they become the "Transcript" and "AI summary"
//! sections of the same note. A transcript longer than
//! [`TRANSCRIPT_SECTION_MAX`] is cut to an excerpt ending in a link to the
//! full text ([`transcript_section`]).
//!
//! Each section can be switched off ([`LogSettings`], all on by default):
//! per account, and per Kommo user over the account's defaults
//! ([`UserLogSettings`], as App Connect's `addCallLogNote`,
//! `addCallLogDuration`, `addCallLogResult` user settings). A switched-off
//! section is not written (one already written is left alone, as the seed
//! does).
//!
//! **Who owns what.** The agent note is the manager's: only
//! [`NoteText::upsert_manager_note`] writes it, with the manager's text.
//! [`NoteText::upsert_machine`] refuses that section, so a machine update
//! (a recording arriving, a transcript, a corrected duration) can never
//! overwrite what the manager wrote, whatever order the updates come in.
//! The subject ("Inbound call from …") is the machine's until the manager
//! edits it in the Call summary; from then on the manager's subject is
//! written ([`ManagerText::subject`]).

use crate::event::{Direction, Outcome};
use serde::{Deserialize, Serialize};

/// One section of the call note, in the order they are first written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    /// Direction and the other party's number ("Inbound call from …").
    Subject,
    /// When the call began (UTC).
    StartTime,
    /// How long the manager talked (zero for a call not taken).
    Duration,
    /// How the call ended.
    Result,
    /// The recording's link.
    Recording,
    /// What the manager wrote in the Call summary. Manager-owned.
    AgentNote,
    /// What was said, from the PBX's transcription (or an excerpt and a
    /// link to the full text).
    Transcript,
    /// The PBX's AI summary of the call.
    AiSummary,
}

impl Section {
    pub const ALL: [Section; 8] = [
        Section::Subject,
        Section::StartTime,
        Section::Duration,
        Section::Result,
        Section::Recording,
        Section::AgentNote,
        Section::Transcript,
        Section::AiSummary,
    ];

    /// The line's label (what the section is recognised by).
    pub fn label(self) -> &'static str {
        match self {
            Self::Subject => "Call",
            Self::StartTime => "Started",
            Self::Duration => "Duration",
            Self::Result => "Result",
            Self::Recording => "Recording",
            Self::AgentNote => "Agent note",
            Self::Transcript => "Transcript",
            Self::AiSummary => "AI summary",
        }
    }

    /// Whether only the manager may write it.
    pub fn is_manager_owned(self) -> bool {
        self == Self::AgentNote
    }

    fn of_line(line: &str) -> Option<(Section, &str)> {
        Self::ALL
            .into_iter()
            .find_map(|s| line.strip_prefix(s.label()).and_then(|r| r.strip_prefix(": ")).map(|v| (s, v)))
    }
}

/// Which sections are written: an account's defaults (`log_settings`), or
/// what applies to one user ([`LogSettings::for_user`]). Missing keys read as
/// on, so adding a section later keeps old settings valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub subject: bool,
    pub start_time: bool,
    pub duration: bool,
    pub result: bool,
    pub recording: bool,
    pub agent_note: bool,
    pub transcript: bool,
    pub ai_summary: bool,
    /// An account setting, not a section (a user cannot override it): a
    /// missed inbound call gets a follow-up task "Call back …" on the
    /// record it is logged on, once ([`missed_call_task`]).
    pub missed_call_task: bool,
    /// Who gets that task when the call rang no mapped user (else the
    /// call's user); `None`: Kommo assigns the integration's user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed_call_task_user_id: Option<u64>,
    /// An account setting: who a ring-group call that nobody answered is
    /// logged for (the note's responsible user, and the missed-call task's
    /// when there is one); `None`: Kommo assigns the integration's user.
    /// No agent of the group gets it as their missed call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unanswered_group_user_id: Option<u64>,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            subject: true,
            start_time: true,
            duration: true,
            result: true,
            recording: true,
            agent_note: true,
            transcript: true,
            ai_summary: true,
            missed_call_task: false,
            missed_call_task_user_id: None,
            unanswered_group_user_id: None,
        }
    }
}

impl LogSettings {
    pub fn enabled(&self, section: Section) -> bool {
        match section {
            Section::Subject => self.subject,
            Section::StartTime => self.start_time,
            Section::Duration => self.duration,
            Section::Result => self.result,
            Section::Recording => self.recording,
            Section::AgentNote => self.agent_note,
            Section::Transcript => self.transcript,
            Section::AiSummary => self.ai_summary,
        }
    }

    /// The settings with `section` switched to `on`.
    pub fn with(mut self, section: Section, on: bool) -> Self {
        let slot = match section {
            Section::Subject => &mut self.subject,
            Section::StartTime => &mut self.start_time,
            Section::Duration => &mut self.duration,
            Section::Result => &mut self.result,
            Section::Recording => &mut self.recording,
            Section::AgentNote => &mut self.agent_note,
            Section::Transcript => &mut self.transcript,
            Section::AiSummary => &mut self.ai_summary,
        };
        *slot = on;
        self
    }

    /// What applies to a user: their own choices over these defaults.
    pub fn for_user(self, user: &UserLogSettings) -> LogSettings {
        Section::ALL.into_iter().fold(self, |settings, section| match user.choice(section) {
            Some(on) => settings.with(section, on),
            None => settings,
        })
    }
}

/// `GET /widget/log-settings` (and the answer to saving them): the
/// account's defaults, the user's own choices, and what applies to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogSettingsView {
    pub account: LogSettings,
    pub mine: UserLogSettings,
    pub applied: LogSettings,
}

/// One user's own switches (the widget's settings page): a section the
/// user has not chosen follows the account's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct UserLogSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_note: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai_summary: Option<bool>,
}

impl UserLogSettings {
    /// The choices with `section` set to `choice` (`None`: follow the account).
    pub fn with(mut self, section: Section, choice: Option<bool>) -> Self {
        let slot = match section {
            Section::Subject => &mut self.subject,
            Section::StartTime => &mut self.start_time,
            Section::Duration => &mut self.duration,
            Section::Result => &mut self.result,
            Section::Recording => &mut self.recording,
            Section::AgentNote => &mut self.agent_note,
            Section::Transcript => &mut self.transcript,
            Section::AiSummary => &mut self.ai_summary,
        };
        *slot = choice;
        self
    }

    pub fn choice(&self, section: Section) -> Option<bool> {
        match section {
            Section::Subject => self.subject,
            Section::StartTime => self.start_time,
            Section::Duration => self.duration,
            Section::Result => self.result,
            Section::Recording => self.recording,
            Section::AgentNote => self.agent_note,
            Section::Transcript => self.transcript,
            Section::AiSummary => self.ai_summary,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Section(Section, String),
    /// A line (with its continuations) that is not one of our sections.
    Other(String),
}

/// A call note's text as sections; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoteText {
    parts: Vec<Part>,
}

impl NoteText {
    /// Reads a note's text. Never fails: unknown lines are kept verbatim.
    pub fn parse(text: &str) -> Self {
        let mut parts: Vec<Part> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("  ") {
                match parts.last_mut() {
                    Some(Part::Section(_, value)) => {
                        value.push('\n');
                        value.push_str(rest);
                        continue;
                    }
                    Some(Part::Other(other)) => {
                        other.push('\n');
                        other.push_str(line);
                        continue;
                    }
                    None => {}
                }
            }
            match Section::of_line(line) {
                // A section seen twice (a hand edit): the first one counts,
                // later ones are kept as text.
                Some((s, value)) if !parts.iter().any(|p| matches!(p, Part::Section(t, _) if *t == s)) => {
                    parts.push(Part::Section(s, value.to_string()))
                }
                _ => parts.push(Part::Other(line.to_string())),
            }
        }
        Self { parts }
    }

    /// The text to store: one line per section, continuations indented.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            if !out.is_empty() {
                out.push('\n');
            }
            match part {
                Part::Section(s, value) => {
                    out.push_str(s.label());
                    out.push_str(": ");
                    out.push_str(&value.replace('\n', "\n  "));
                }
                Part::Other(text) => out.push_str(text),
            }
        }
        out
    }

    pub fn get(&self, section: Section) -> Option<&str> {
        self.parts.iter().find_map(|p| match p {
            Part::Section(s, v) if *s == section => Some(v.as_str()),
            _ => None,
        })
    }

    /// Replaces the section where it stands or appends it; returns whether
    /// the text changed. Refuses (returns false) manager-owned sections.
    pub fn upsert_machine(&mut self, section: Section, value: &str) -> bool {
        if section.is_manager_owned() {
            return false;
        }
        self.upsert(section, value)
    }

    /// Writes the manager's note (the agent note section).
    pub fn upsert_manager_note(&mut self, note: &str) -> bool {
        self.upsert(Section::AgentNote, note)
    }

    fn upsert(&mut self, section: Section, value: &str) -> bool {
        // Normalise line ends so a value is stored the way it reads back.
        let value = value.trim_end().replace("\r\n", "\n").replace('\r', "\n");
        for part in &mut self.parts {
            if let Part::Section(s, current) = part {
                if *s == section {
                    if *current == value {
                        return false;
                    }
                    *current = value;
                    return true;
                }
            }
        }
        self.parts.push(Part::Section(section, value));
        true
    }
}

/// What the PBX (and nobody else) knows about a call, for the machine
/// sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallFacts {
    pub direction: Direction,
    /// The other party's number as the PBX wrote it.
    pub phone: String,
    /// Unix milliseconds.
    pub started_at: Option<i64>,
    /// What to log as the duration: zero for a call not taken.
    pub billable_seconds: u32,
    pub outcome: Option<Outcome>,
    pub recording_url: Option<String>,
    pub transcript: Option<TranscriptFacts>,
    /// The extensions the call went through when that is more than one:
    /// those that answered in order (a transfer), or those a group rang
    /// when nobody answered. Written after the result ("answered, 101 →
    /// 102"). Empty for a call of one extension.
    pub path: CallPath,
}

/// [`CallFacts::path`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CallPath {
    /// One extension: nothing to say.
    #[default]
    Single,
    /// Answered at these extensions, in order (a transfer).
    Transferred(Vec<String>),
    /// A ring group that rang these, nobody answering.
    RangGroup(Vec<String>),
}

impl CallPath {
    /// What the result line adds, if anything.
    pub fn describe(&self) -> Option<String> {
        match self {
            Self::Single => None,
            Self::Transferred(path) => Some(format!("transferred {}", path.join(" → "))),
            Self::RangGroup(rang) => Some(format!("rang {}, nobody answered", rang.join(", "))),
        }
    }
}

/// The PBX's transcript of the call, and where its full text is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranscriptFacts {
    pub text: String,
    pub summary: Option<String>,
    /// The link an excerpt ends with (a signed, expiring URL of the
    /// backend's).
    pub full_text_url: String,
}

/// The follow-up task of a missed call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissedCallTask {
    pub text: String,
    /// Unix seconds: an hour after the call began.
    pub complete_till: i64,
}

/// The task a call gets when the account wants missed calls followed up:
/// only an inbound call that was not taken (missed, or not answered), and
/// only once its start is known. The same call always gives the same task,
/// which is how a rerun finds the one it created.
pub fn missed_call_task(facts: &CallFacts) -> Option<MissedCallTask> {
    let missed = matches!(facts.outcome, Some(Outcome::Missed | Outcome::NoAnswer));
    if facts.direction != Direction::Inbound || !missed {
        return None;
    }
    let started_at = facts.started_at?;
    Some(MissedCallTask {
        text: format!("Call back {}: missed call at {}", facts.phone, format_utc(started_at)),
        complete_till: started_at.div_euclid(1000) + 3600,
    })
}

/// What the manager wrote in the Call summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ManagerText<'a> {
    pub note: Option<&'a str>,
    /// The subject, once the manager edited it.
    pub subject: Option<&'a str>,
}

/// The longest call note text callcard writes, in characters. Kommo
/// documents no limit for a note's text; the sandbox refuses call notes over
/// 8,000 characters (`kommo_sandbox`'s `CALL_NOTE_TEXT_MAX`, unconfirmed),
/// and every section is bounded so that the whole stays within it: the
/// subject (`result::SUBJECT_MAX_CHARS`, 200), the manager's note
/// (`result::NOTE_MAX_CHARS`, 2,000), the transcript and the AI summary
/// (below, 4,000 and 1,000), the facts and labels (a few hundred).
pub const CALL_NOTE_MAX_CHARS: usize = 8_000;

/// The longest transcript written whole into the note, in characters.
pub const TRANSCRIPT_SECTION_MAX: usize = 4_000;

/// The longest AI summary written whole into the note, in characters.
pub const AI_SUMMARY_SECTION_MAX: usize = 1_000;

/// The transcript section's value: the whole text when it fits in
/// [`TRANSCRIPT_SECTION_MAX`] characters, else its beginning (cut at a word)
/// and the link to the full text.
pub fn transcript_section(text: &str, full_text_url: &str) -> String {
    excerpt(text, TRANSCRIPT_SECTION_MAX, full_text_url)
}

/// The AI summary section's value: whole up to [`AI_SUMMARY_SECTION_MAX`]
/// characters, else its beginning and the link to the full transcript.
pub fn ai_summary_section(summary: &str, full_text_url: &str) -> String {
    excerpt(summary, AI_SUMMARY_SECTION_MAX, full_text_url)
}

/// `text` whole when it fits in `max` characters, else its beginning (cut
/// at a word) and the link to the full transcript, `max` in all.
fn excerpt(text: &str, max: usize, full_text_url: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let tail = format!(" … (full transcript: {full_text_url})");
    let room = max.saturating_sub(tail.chars().count());
    let cut = text.char_indices().nth(room).map_or(text.len(), |(i, _)| i);
    let head = &text[..cut];
    // Cut at the last space when there is one not too far back.
    let head = match head.rfind(char::is_whitespace) {
        Some(i) if i > cut / 2 => &head[..i],
        _ => head,
    };
    format!("{}{tail}", head.trim_end())
}

/// Brings `existing` (the note's text as last written, or empty) up to date:
/// every enabled machine section from `facts`, and the manager's sections
/// from `manager` when there are any. Sections switched off, sections whose
/// data is unknown, and lines that are not ours stay as they are.
pub fn compose(existing: &str, facts: &CallFacts, manager: ManagerText<'_>, settings: &LogSettings) -> String {
    let mut text = NoteText::parse(existing);
    let given = |value: Option<&str>| value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    for section in Section::ALL {
        if !settings.enabled(section) {
            continue;
        }
        let value = match section {
            Section::Subject => given(manager.subject).or_else(|| Some(subject(facts.direction, &facts.phone))),
            Section::StartTime => facts.started_at.map(format_utc),
            Section::Duration => facts.outcome.map(|_| format_duration(facts.billable_seconds)),
            Section::Result => facts.outcome.map(|o| match facts.path.describe() {
                Some(path) => format!("{}; {path}", outcome_text(o)),
                None => outcome_text(o),
            }),
            Section::Recording => facts.recording_url.clone(),
            Section::AgentNote => {
                if let Some(note) = given(manager.note) {
                    text.upsert_manager_note(&note);
                }
                None
            }
            Section::Transcript => facts.transcript.as_ref().map(|t| transcript_section(&t.text, &t.full_text_url)),
            Section::AiSummary => facts
                .transcript
                .as_ref()
                .and_then(|t| given(t.summary.as_deref()).map(|s| ai_summary_section(&s, &t.full_text_url))),
        };
        if let Some(value) = value {
            text.upsert_machine(section, &value);
        }
    }
    text.render()
}

/// "Inbound call from +1 830 …" / "Outbound call to …".
pub fn subject(direction: Direction, phone: &str) -> String {
    match direction {
        Direction::Inbound => format!("Inbound call from {phone}"),
        Direction::Outbound => format!("Outbound call to {phone}"),
    }
}

/// How an outcome reads in the note.
pub fn outcome_text(outcome: Outcome) -> String {
    match outcome {
        Outcome::Answered => "Answered",
        Outcome::Missed => "Missed",
        Outcome::Busy => "Busy",
        Outcome::Failed => "Failed",
        Outcome::NoAnswer => "No answer",
    }
    .to_string()
}

/// `m:ss`, or `h:mm:ss` from an hour on.
pub fn format_duration(seconds: u32) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Unix milliseconds as `YYYY-MM-DD hh:mm:ss UTC`.
pub fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> CallFacts {
        CallFacts {
            direction: Direction::Inbound,
            phone: "+18305703077".into(),
            started_at: Some(1_763_720_400_000),
            billable_seconds: 62,
            outcome: Some(Outcome::Answered),
            recording_url: None,
            transcript: None,
            path: CallPath::Single,
        }
    }

    #[test]
    fn the_result_line_records_a_transfer_and_an_unanswered_group() {
        let moved = CallFacts { path: CallPath::Transferred(vec!["101".into(), "102".into()]), ..facts() };
        let text = compose("", &moved, ManagerText::default(), &LogSettings::default());
        assert!(text.contains("Result: Answered; transferred 101 → 102"), "{text}");
        let group = CallFacts {
            outcome: Some(Outcome::NoAnswer),
            billable_seconds: 0,
            path: CallPath::RangGroup(vec!["101".into(), "102".into()]),
            ..facts()
        };
        let text = compose("", &group, ManagerText::default(), &LogSettings::default());
        assert!(text.contains("Duration: 0:00"), "{text}");
        assert!(text.contains("rang 101, 102, nobody answered"), "{text}");
        let single = compose("", &facts(), ManagerText::default(), &LogSettings::default());
        assert!(!single.contains("transferred") && !single.contains("rang "), "{single}");
    }

    fn note(text: &str) -> ManagerText<'_> {
        ManagerText { note: Some(text), subject: None }
    }

    #[test]
    fn first_write_has_every_known_section_in_order() {
        let text = compose("", &facts(), ManagerText::default(), &LogSettings::default());
        assert_eq!(
            text,
            "Call: Inbound call from +18305703077\nStarted: 2025-11-21 10:20:00 UTC\nDuration: 1:02\nResult: Answered"
        );
    }

    #[test]
    fn a_late_recording_is_appended_and_a_second_one_replaces_it() {
        let first = compose("", &facts(), ManagerText::default(), &LogSettings::default());
        let mut f = facts();
        f.recording_url = Some("https://pbx.test/a.mp3".into());
        let second = compose(&first, &f, ManagerText::default(), &LogSettings::default());
        assert_eq!(second, format!("{first}\nRecording: https://pbx.test/a.mp3"));
        f.recording_url = Some("https://pbx.test/b.mp3".into());
        let third = compose(&second, &f, ManagerText::default(), &LogSettings::default());
        assert_eq!(third, format!("{first}\nRecording: https://pbx.test/b.mp3"));
        assert_eq!(compose(&third, &f, ManagerText::default(), &LogSettings::default()), third, "idempotent");
    }

    #[test]
    fn better_duration_and_result_replace_in_place() {
        let first = compose("", &facts(), note("call back Monday"), &LogSettings::default());
        let mut f = facts();
        f.billable_seconds = 0;
        f.outcome = Some(Outcome::Missed);
        let text = NoteText::parse(&compose(&first, &f, ManagerText::default(), &LogSettings::default()));
        assert_eq!(text.get(Section::Duration), Some("0:00"));
        assert_eq!(text.get(Section::Result), Some("Missed"));
        assert_eq!(text.get(Section::AgentNote), Some("call back Monday"), "the manager's note stays");
        assert_eq!(text.render().lines().count(), first.lines().count(), "replaced, not appended");
    }

    #[test]
    fn machine_updates_never_touch_the_managers_note() {
        let mut text = NoteText::parse("Agent note: mine\n  second line");
        assert!(!text.upsert_machine(Section::AgentNote, "overwritten"));
        assert_eq!(text.get(Section::AgentNote), Some("mine\nsecond line"));
        // A value cannot forge a section by embedding a newline and a label.
        assert!(text.upsert_machine(Section::Recording, "https://x\nAgent note: forged"));
        let reread = NoteText::parse(&text.render());
        assert_eq!(reread.get(Section::AgentNote), Some("mine\nsecond line"));
        assert_eq!(reread.get(Section::Recording), Some("https://x\nAgent note: forged"));
    }

    #[test]
    fn the_manager_can_change_their_note() {
        let first = compose("", &facts(), note("v1"), &LogSettings::default());
        let second = compose(&first, &facts(), note("v2\nwith a second line"), &LogSettings::default());
        let text = NoteText::parse(&second);
        assert_eq!(text.get(Section::AgentNote), Some("v2\nwith a second line"));
        assert_eq!(
            compose(&second, &facts(), ManagerText::default(), &LogSettings::default()),
            second,
            "no note now: kept"
        );
    }

    #[test]
    fn switched_off_sections_are_not_written_but_not_erased() {
        let off = LogSettings { recording: false, duration: false, ..LogSettings::default() };
        let mut f = facts();
        f.recording_url = Some("https://pbx.test/a.mp3".into());
        let text = NoteText::parse(&compose("", &f, ManagerText::default(), &off));
        assert_eq!(text.get(Section::Recording), None);
        assert_eq!(text.get(Section::Duration), None);
        let kept = compose("Duration: 9:99", &f, ManagerText::default(), &off);
        assert!(kept.starts_with("Duration: 9:99\n"), "{kept}");
        let settings: LogSettings = serde_json::from_str(r#"{"recording": false}"#).unwrap();
        assert!(!settings.recording && settings.duration, "missing keys read as on");
        assert!(serde_json::from_str::<LogSettings>(r#"{"recordings": false}"#).is_err(), "typos refused");
    }

    #[test]
    fn foreign_lines_survive() {
        let existing = "Customer asked about pricing\nDuration: 0:10\n  (estimate)\n---";
        let text = compose(existing, &facts(), ManagerText::default(), &LogSettings::default());
        assert!(text.starts_with("Customer asked about pricing\nDuration: 1:02\n---\nCall: "), "{text}");
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(0), "0:00");
        assert_eq!(format_duration(3725), "1:02:05");
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_825_600_000), "2000-02-29 12:00:00 UTC");
        assert_eq!(subject(Direction::Outbound, "+1"), "Outbound call to +1");
    }

    fn everything() -> CallFacts {
        CallFacts {
            recording_url: Some("https://pbx.test/a.mp3".into()),
            transcript: Some(TranscriptFacts {
                text: "Hello, this is Maria.".into(),
                summary: Some("Maria wants a quote.".into()),
                full_text_url: "https://callcard.test/t/1".into(),
            }),
            ..facts()
        }
    }

    /// Every one of the 256 combinations of switches: a section is in the
    /// note exactly when it is on, with the value it should have, and the
    /// rest of the note is as if it had never existed.
    #[test]
    fn every_combination_of_switches_writes_exactly_the_sections_switched_on() {
        let manager = ManagerText { note: Some("call back Monday"), subject: None };
        let all = NoteText::parse(&compose("", &everything(), manager, &LogSettings::default()));
        for bits in 0u32..(1 << Section::ALL.len()) {
            let settings = Section::ALL
                .into_iter()
                .enumerate()
                .fold(LogSettings::default(), |s, (i, section)| s.with(section, bits & (1 << i) != 0));
            let text = NoteText::parse(&compose("", &everything(), manager, &settings));
            for section in Section::ALL {
                let expected = settings.enabled(section).then(|| all.get(section).unwrap());
                assert_eq!(text.get(section), expected, "{section:?} with switches {bits:08b}");
            }
            let lines = Section::ALL.into_iter().filter(|s| settings.enabled(*s)).count();
            assert_eq!(text.render().lines().count(), lines, "switches {bits:08b}");
        }
    }

    #[test]
    fn a_user_choice_overrides_the_account_default_and_silence_follows_it() {
        let account = LogSettings { recording: false, ..LogSettings::default() };
        let user = UserLogSettings { recording: Some(true), duration: Some(false), ..UserLogSettings::default() };
        let mine = account.for_user(&user);
        assert!(mine.recording && !mine.duration && mine.result && mine.transcript);
        assert_eq!(account.for_user(&UserLogSettings::default()), account);
        let json = serde_json::to_value(user).unwrap();
        assert_eq!(json, serde_json::json!({"duration": false, "recording": true}), "unset choices are not stored");
        for section in Section::ALL {
            assert_eq!(user.with(section, Some(false)).choice(section), Some(false), "{section:?}");
            assert_eq!(user.with(section, None).choice(section), None, "{section:?}");
        }
    }

    #[test]
    fn a_transcript_arriving_after_the_managers_note_joins_the_same_note() {
        let saved = compose("", &facts(), note("Wants 40 seats"), &LogSettings::default());
        let later = compose(&saved, &everything(), ManagerText::default(), &LogSettings::default());
        let text = NoteText::parse(&later);
        assert_eq!(text.get(Section::AgentNote), Some("Wants 40 seats"));
        assert_eq!(text.get(Section::Transcript), Some("Hello, this is Maria."));
        assert_eq!(text.get(Section::AiSummary), Some("Maria wants a quote."));
        assert!(later.starts_with(&saved), "the sections already there stay where they are");
        assert_eq!(compose(&later, &everything(), ManagerText::default(), &LogSettings::default()), later);
        // A transcript can never write the manager's section, even by forging a label.
        let mut forged = everything();
        forged.transcript.as_mut().unwrap().text = "hi\nAgent note: forged".into();
        let text = NoteText::parse(&compose(&saved, &forged, ManagerText::default(), &LogSettings::default()));
        assert_eq!(text.get(Section::AgentNote), Some("Wants 40 seats"));
    }

    #[test]
    fn a_long_transcript_becomes_an_excerpt_with_a_link_to_the_full_text() {
        let long = "word ".repeat(2_000);
        let section = transcript_section(&long, "https://callcard.test/t/1?sig=x");
        assert!(section.chars().count() <= TRANSCRIPT_SECTION_MAX, "{}", section.chars().count());
        assert!(section.starts_with("word word"));
        assert!(section.ends_with(" … (full transcript: https://callcard.test/t/1?sig=x)"), "{section}");
        assert!(!section.contains("wor …"), "cut at a word");
        assert_eq!(transcript_section("  short  ", "u"), "short");
        let wide = "ж".repeat(TRANSCRIPT_SECTION_MAX + 1);
        assert!(transcript_section(&wide, "u").chars().count() <= TRANSCRIPT_SECTION_MAX, "counted in characters");
    }

    #[test]
    fn the_longest_note_a_manager_can_save_fits_in_a_kommo_call_note() {
        let mut facts = everything();
        let transcript = facts.transcript.as_mut().unwrap();
        transcript.text = "word ".repeat(5_000);
        transcript.summary = Some("summary ".repeat(1_000));
        let note = "n".repeat(crate::result::NOTE_MAX_CHARS);
        let subject = "s".repeat(crate::result::SUBJECT_MAX_CHARS);
        let manager = ManagerText { note: Some(&note), subject: Some(&subject) };
        let text = compose("", &facts, manager, &LogSettings::default());
        assert!(text.chars().count() <= CALL_NOTE_MAX_CHARS, "{} characters", text.chars().count());
        let parsed = NoteText::parse(&text);
        assert_eq!(parsed.get(Section::AgentNote), Some(note.as_str()), "the manager's note is never cut");
        assert!(parsed.get(Section::AiSummary).unwrap().ends_with(")"), "the summary links to the full text");
    }

    #[test]
    fn the_managers_subject_replaces_the_machine_one_and_stays() {
        let first = compose("", &facts(), ManagerText::default(), &LogSettings::default());
        let edited = ManagerText { note: None, subject: Some("Pricing for 40 seats") };
        let second = compose(&first, &facts(), edited, &LogSettings::default());
        assert_eq!(NoteText::parse(&second).get(Section::Subject), Some("Pricing for 40 seats"));
        assert_eq!(second.lines().count(), first.lines().count(), "replaced in place");
        // A later machine update (the recording) with the stored subject keeps it.
        let third = compose(&second, &everything(), edited, &LogSettings::default());
        assert_eq!(NoteText::parse(&third).get(Section::Subject), Some("Pricing for 40 seats"));
    }

    #[test]
    fn only_a_missed_inbound_call_gets_a_follow_up_task() {
        let missed = CallFacts { outcome: Some(Outcome::Missed), billable_seconds: 0, ..facts() };
        assert_eq!(
            missed_call_task(&missed),
            Some(MissedCallTask {
                text: "Call back +18305703077: missed call at 2025-11-21 10:20:00 UTC".into(),
                complete_till: 1_763_720_400 + 3600,
            })
        );
        let unanswered = CallFacts { outcome: Some(Outcome::NoAnswer), ..missed.clone() };
        assert!(missed_call_task(&unanswered).is_some());
        assert_eq!(missed_call_task(&facts()), None, "answered");
        assert_eq!(missed_call_task(&CallFacts { direction: Direction::Outbound, ..missed.clone() }), None);
        assert_eq!(missed_call_task(&CallFacts { outcome: Some(Outcome::Busy), ..missed.clone() }), None);
        assert_eq!(missed_call_task(&CallFacts { started_at: None, ..missed }), None);
        assert!(!LogSettings::default().missed_call_task, "off unless the account asks");
    }
}
