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
//! Each section can be switched off per account ([`LogSettings`], all on by
//! default): a switched-off section is not written (one already written is
//! left alone, as the seed does).
//!
//! **Who owns what.** The agent note is the manager's: only
//! [`NoteText::upsert_manager_note`] writes it, with the manager's text.
//! [`NoteText::upsert_machine`] refuses that section, so a machine update
//! (a recording arriving, a corrected duration) can never overwrite what the
//! manager wrote, whatever order the updates come in.

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
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::Subject,
        Section::StartTime,
        Section::Duration,
        Section::Result,
        Section::Recording,
        Section::AgentNote,
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

/// Which sections an account wants written (`log_settings`). Missing keys
/// read as on, so adding a section later keeps old settings valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub subject: bool,
    pub start_time: bool,
    pub duration: bool,
    pub result: bool,
    pub recording: bool,
    pub agent_note: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { subject: true, start_time: true, duration: true, result: true, recording: true, agent_note: true }
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
}

/// Brings `existing` (the note's text as last written, or empty) up to date:
/// every enabled machine section from `facts`, and the agent note from the
/// manager's text when there is one. Sections switched off, sections whose
/// data is unknown, and lines that are not ours stay as they are.
pub fn compose(existing: &str, facts: &CallFacts, manager_note: Option<&str>, settings: &LogSettings) -> String {
    let mut text = NoteText::parse(existing);
    for section in Section::ALL {
        if !settings.enabled(section) {
            continue;
        }
        let value = match section {
            Section::Subject => Some(subject(facts.direction, &facts.phone)),
            Section::StartTime => facts.started_at.map(format_utc),
            Section::Duration => facts.outcome.map(|_| format_duration(facts.billable_seconds)),
            Section::Result => facts.outcome.map(outcome_text),
            Section::Recording => facts.recording_url.clone(),
            Section::AgentNote => {
                if let Some(note) = manager_note.map(str::trim).filter(|n| !n.is_empty()) {
                    text.upsert_manager_note(note);
                }
                None
            }
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
        }
    }

    #[test]
    fn first_write_has_every_known_section_in_order() {
        let text = compose("", &facts(), None, &LogSettings::default());
        assert_eq!(
            text,
            "Call: Inbound call from +18305703077\nStarted: 2025-11-21 10:20:00 UTC\nDuration: 1:02\nResult: Answered"
        );
    }

    #[test]
    fn a_late_recording_is_appended_and_a_second_one_replaces_it() {
        let first = compose("", &facts(), None, &LogSettings::default());
        let mut f = facts();
        f.recording_url = Some("https://pbx.test/a.mp3".into());
        let second = compose(&first, &f, None, &LogSettings::default());
        assert_eq!(second, format!("{first}\nRecording: https://pbx.test/a.mp3"));
        f.recording_url = Some("https://pbx.test/b.mp3".into());
        let third = compose(&second, &f, None, &LogSettings::default());
        assert_eq!(third, format!("{first}\nRecording: https://pbx.test/b.mp3"));
        assert_eq!(compose(&third, &f, None, &LogSettings::default()), third, "idempotent");
    }

    #[test]
    fn better_duration_and_result_replace_in_place() {
        let first = compose("", &facts(), Some("call back Monday"), &LogSettings::default());
        let mut f = facts();
        f.billable_seconds = 0;
        f.outcome = Some(Outcome::Missed);
        let text = NoteText::parse(&compose(&first, &f, None, &LogSettings::default()));
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
        let first = compose("", &facts(), Some("v1"), &LogSettings::default());
        let second = compose(&first, &facts(), Some("v2\nwith a second line"), &LogSettings::default());
        let text = NoteText::parse(&second);
        assert_eq!(text.get(Section::AgentNote), Some("v2\nwith a second line"));
        assert_eq!(compose(&second, &facts(), None, &LogSettings::default()), second, "no note now: kept");
    }

    #[test]
    fn switched_off_sections_are_not_written_but_not_erased() {
        let off = LogSettings { recording: false, duration: false, ..LogSettings::default() };
        let mut f = facts();
        f.recording_url = Some("https://pbx.test/a.mp3".into());
        let text = NoteText::parse(&compose("", &f, None, &off));
        assert_eq!(text.get(Section::Recording), None);
        assert_eq!(text.get(Section::Duration), None);
        let kept = compose("Duration: 9:99", &f, None, &off);
        assert!(kept.starts_with("Duration: 9:99\n"), "{kept}");
        let settings: LogSettings = serde_json::from_str(r#"{"recording": false}"#).unwrap();
        assert!(!settings.recording && settings.duration, "missing keys read as on");
        assert!(serde_json::from_str::<LogSettings>(r#"{"recordings": false}"#).is_err(), "typos refused");
    }

    #[test]
    fn foreign_lines_survive() {
        let existing = "Customer asked about pricing\nDuration: 0:10\n  (estimate)\n---";
        let text = compose(existing, &facts(), None, &LogSettings::default());
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
}
