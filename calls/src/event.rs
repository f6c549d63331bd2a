//! The PBX webhook contract: what a PBX (or its adapter) posts to the backend.
//!
//! One JSON object per event, tagged by `"event"`:
//!
//! ```json
//! {"event":"ringing","call_id":"pbx-7781","direction":"inbound",
//!  "external_number":"+18305703077","extension":"101","occurred_at":1763691600123}
//! {"event":"ended","call_id":"pbx-7781", ..., "duration":42,"outcome":"answered"}
//! {"event":"recording_ready","call_id":"pbx-7781", ..., "recording_url":"https://pbx.example/r/7781.mp3"}
//! {"event":"transcript_ready","call_id":"pbx-7781", ..., "transcript":"Hello, this is Maria…",
//!  "summary":"Maria wants a quote for 40 seats.","language":"en"}
//! ```
//!
//! `transcript_ready` ([`TranscriptEvent`]) is late data like the recording,
//! but not part of the call the widget follows: it joins the call note
//! only.
//!
//! `occurred_at` is Unix time in milliseconds. Every event repeats the call's
//! direction, numbers and extension so that any single event, whichever
//! arrives first, is enough to create the call.

use crate::phone::PhoneNumber;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Upper bounds that turn absurd input into a clear 4xx instead of a stored
/// nonsense call.
pub mod limits {
    /// Longest accepted PBX call id.
    pub const CALL_ID_MAX: usize = 128;
    /// Longest accepted phone number or extension, as written.
    pub const NUMBER_MAX: usize = 64;
    /// Longest accepted recording URL.
    pub const URL_MAX: usize = 2048;
    /// A call longer than a day is a PBX bug, not a call.
    pub const DURATION_MAX_SECONDS: u32 = 24 * 60 * 60;
    /// 2001-09-09: no PBX event predates this (catches seconds sent as ms).
    pub const OCCURRED_AT_MIN_MS: i64 = 1_000_000_000_000;
    /// 2286-11-20: anything later is not a millisecond timestamp.
    pub const OCCURRED_AT_MAX_MS: i64 = 9_999_999_999_999;
    /// Longest accepted transcript, in bytes (about four hours of speech).
    pub const TRANSCRIPT_MAX: usize = 400 * 1024;
    /// Longest accepted AI summary, in bytes.
    pub const SUMMARY_MAX: usize = 16 * 1024;
    /// Longest accepted language tag (BCP 47, `en`, `pt-BR`).
    pub const LANGUAGE_MAX: usize = 35;
}

/// Who started the call, seen from the manager's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// How a finished call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Answered,
    Missed,
    Busy,
    Failed,
    NoAnswer,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Missed => "missed",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::NoAnswer => "no_answer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Answered, Self::Missed, Self::Busy, Self::Failed, Self::NoAnswer].into_iter().find(|o| o.as_str() == s)
    }

    /// Whether the manager actually talked: only then does the call keep its
    /// duration (a call the manager did not accept is logged with zero).
    pub fn was_connected(self) -> bool {
        self == Self::Answered
    }
}

/// What happened to the call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEventKind {
    Ringing,
    Answered,
    Ended {
        #[cfg_attr(feature = "openapi", schema(maximum = 86400))]
        duration: u32,
        outcome: Outcome,
    },
    RecordingReady {
        #[cfg_attr(feature = "openapi", schema(max_length = 2048, pattern = r"^https?://[!-~]+$"))]
        recording_url: String,
    },
}

impl CallEventKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Ended { .. } => "ended",
            Self::RecordingReady { .. } => "recording_ready",
        }
    }
}

/// One PBX event about one call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallEvent {
    #[serde(flatten)]
    pub kind: CallEventKind,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128, pattern = r"^[!-~][ -~]*$"))]
    pub call_id: String,
    pub direction: Direction,
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 64, pattern = r"^[0-9 +().-]*[0-9][0-9 +().-]*$"))]
    pub external_number: PhoneNumber,
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9]{1,16}$"))]
    pub extension: String,
    /// Unix time in milliseconds.
    #[cfg_attr(feature = "openapi", schema(minimum = 1_000_000_000_000i64, maximum = 9_999_999_999_999i64))]
    pub occurred_at: i64,
}

/// A field of a request that is wrong, and why: becomes the
/// `application/problem+json` answer naming the offending field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

impl CallEvent {
    /// Checks the values serde cannot: lengths, ranges, formats.
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_call_id("call_id", &self.call_id)?;
        validate_number("external_number", self.external_number.as_str())?;
        validate_extension("extension", &self.extension)?;
        validate_time("occurred_at", self.occurred_at)?;
        match &self.kind {
            CallEventKind::Ended { duration, .. } => validate_duration("duration", *duration),
            CallEventKind::RecordingReady { recording_url } => validate_url("recording_url", recording_url),
            CallEventKind::Ringing | CallEventKind::Answered => Ok(()),
        }
    }
}

/// `transcript_ready`: what was said in a call, from the PBX's
/// transcription, with its AI summary when it made one. The latest report
/// wins (a corrected transcript replaces the first), as for the recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TranscriptEvent {
    /// Always `"transcript_ready"`.
    pub event: String,
    pub call_id: String,
    pub direction: Direction,
    pub external_number: PhoneNumber,
    pub extension: String,
    /// Unix time in milliseconds.
    pub occurred_at: i64,
    pub transcript: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl TranscriptEvent {
    pub const NAME: &'static str = "transcript_ready";

    pub fn validate(&self) -> Result<(), FieldError> {
        if self.event != Self::NAME {
            return Err(FieldError::new("event", format!("must be {}", Self::NAME)));
        }
        validate_call_id("call_id", &self.call_id)?;
        validate_number("external_number", self.external_number.as_str())?;
        validate_extension("extension", &self.extension)?;
        validate_time("occurred_at", self.occurred_at)?;
        validate_text("transcript", &self.transcript, limits::TRANSCRIPT_MAX)?;
        if let Some(summary) = &self.summary {
            validate_text("summary", summary, limits::SUMMARY_MAX)?;
        }
        if let Some(language) = &self.language {
            let tag = |c: char| c.is_ascii_alphanumeric() || c == '-';
            if language.is_empty() || language.len() > limits::LANGUAGE_MAX || !language.chars().all(tag) {
                return Err(FieldError::new("language", "must be a language tag such as en or pt-BR"));
            }
        }
        Ok(())
    }
}

fn validate_text(field: &'static str, text: &str, max: usize) -> Result<(), FieldError> {
    if text.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if text.len() > max {
        return Err(FieldError::new(field, format!("must be at most {max} bytes")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(FieldError::new(field, "must not contain control characters other than line breaks and tabs"));
    }
    Ok(())
}

/// A finished call delivered in a batch, in the spirit of Kommo's legacy
/// `calls/add`: everything known about the call at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FinishedCall {
    /// The PBX's unique id for the call; becomes the call id.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128, pattern = r"^[!-~][ -~]*$"))]
    pub uuid: String,
    pub direction: Direction,
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 64, pattern = r"^[0-9 +().-]*[0-9][0-9 +().-]*$"))]
    pub external_number: PhoneNumber,
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9]{1,16}$"))]
    pub extension: String,
    /// When the call started ringing, Unix milliseconds.
    #[cfg_attr(feature = "openapi", schema(minimum = 1_000_000_000_000i64, maximum = 9_999_999_999_999i64))]
    pub started_at: i64,
    #[cfg_attr(feature = "openapi", schema(maximum = 86400))]
    pub duration: u32,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2048, pattern = r"^https?://[!-~]+$"))]
    pub recording_url: Option<String>,
}

impl FinishedCall {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_call_id("uuid", &self.uuid)?;
        validate_number("external_number", self.external_number.as_str())?;
        validate_extension("extension", &self.extension)?;
        validate_time("started_at", self.started_at)?;
        validate_duration("duration", self.duration)?;
        if let Some(url) = &self.recording_url {
            validate_url("recording_url", url)?;
        }
        Ok(())
    }

    /// The same call as the events a live PBX would have sent.
    pub fn into_events(self) -> Vec<CallEvent> {
        let base = |kind, occurred_at| CallEvent {
            kind,
            call_id: self.uuid.clone(),
            direction: self.direction,
            external_number: self.external_number.clone(),
            extension: self.extension.clone(),
            occurred_at,
        };
        let ended_at = self.started_at + i64::from(self.duration) * 1000;
        let mut events = vec![
            base(CallEventKind::Ringing, self.started_at),
            base(CallEventKind::Ended { duration: self.duration, outcome: self.outcome }, ended_at),
        ];
        if let Some(recording_url) = &self.recording_url {
            events.push(base(CallEventKind::RecordingReady { recording_url: recording_url.clone() }, ended_at));
        }
        events
    }
}

/// The batch request: `{"calls":[FinishedCall, ...]}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinishedCallBatch {
    pub calls: Vec<serde_json::Value>,
}

/// The batch answer: which uuids were stored and why the others were not,
/// shaped like `calls/add`'s `success` list and `errors` map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchAnswer {
    pub success: Vec<String>,
    pub errors: std::collections::BTreeMap<String, Vec<String>>,
}

fn validate_call_id(field: &'static str, id: &str) -> Result<(), FieldError> {
    if id.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if id.len() > limits::CALL_ID_MAX {
        return Err(FieldError::new(field, format!("must be at most {} bytes", limits::CALL_ID_MAX)));
    }
    if id.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(())
}

/// A phone number as the API accepts it anywhere (digits, with spaces and
/// `+ - ( ) .`, at most [`limits::NUMBER_MAX`] characters).
pub fn validate_phone_number(field: &'static str, number: &str) -> Result<(), FieldError> {
    validate_number(field, number)
}

fn validate_number(field: &'static str, number: &str) -> Result<(), FieldError> {
    if number.len() > limits::NUMBER_MAX {
        return Err(FieldError::new(field, format!("must be at most {} characters", limits::NUMBER_MAX)));
    }
    if !number.chars().any(|c| c.is_ascii_digit()) {
        return Err(FieldError::new(field, "must contain digits"));
    }
    if !number.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)) {
        return Err(FieldError::new(field, "may contain only digits, spaces and + - ( ) ."));
    }
    Ok(())
}

fn validate_extension(field: &'static str, ext: &str) -> Result<(), FieldError> {
    if ext.is_empty() || ext.len() > 16 || !ext.chars().all(|c| c.is_ascii_digit()) {
        return Err(FieldError::new(field, "must be 1 to 16 digits"));
    }
    Ok(())
}

fn validate_time(field: &'static str, ms: i64) -> Result<(), FieldError> {
    if !(limits::OCCURRED_AT_MIN_MS..=limits::OCCURRED_AT_MAX_MS).contains(&ms) {
        return Err(FieldError::new(field, "must be Unix time in milliseconds"));
    }
    Ok(())
}

fn validate_duration(field: &'static str, seconds: u32) -> Result<(), FieldError> {
    if seconds > limits::DURATION_MAX_SECONDS {
        return Err(FieldError::new(field, "must be at most 86400 seconds"));
    }
    Ok(())
}

fn validate_url(field: &'static str, url: &str) -> Result<(), FieldError> {
    if url.len() > limits::URL_MAX {
        return Err(FieldError::new(field, format!("must be at most {} characters", limits::URL_MAX)));
    }
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control()) => Ok(()),
        _ => Err(FieldError::new(field, "must be an http(s) URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ringing() -> CallEvent {
        serde_json::from_str(
            r#"{"event":"ringing","call_id":"c1","direction":"inbound",
                "external_number":"+1 830 570 3077","extension":"101","occurred_at":1763691600123}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_documented_json_parses() {
        let e = ringing();
        assert_eq!(e.kind, CallEventKind::Ringing);
        assert_eq!(e.extension, "101");
        let ended: CallEvent = serde_json::from_str(
            r#"{"event":"ended","call_id":"c1","direction":"inbound","external_number":"+18305703077",
                "extension":"101","occurred_at":1763691642000,"duration":42,"outcome":"no_answer"}"#,
        )
        .unwrap();
        assert_eq!(ended.kind, CallEventKind::Ended { duration: 42, outcome: Outcome::NoAnswer });
        assert!(e.validate().is_ok() && ended.validate().is_ok());
    }

    #[test]
    fn absurd_values_name_their_field() {
        let mut e = ringing();
        e.occurred_at = 1_763_691_600; // seconds, not milliseconds
        assert_eq!(e.validate().unwrap_err().field, "occurred_at");
        let mut e = ringing();
        e.extension = "10a".into();
        assert_eq!(e.validate().unwrap_err().field, "extension");
        let mut e = ringing();
        e.kind = CallEventKind::RecordingReady { recording_url: "javascript:alert(1)".into() };
        assert_eq!(e.validate().unwrap_err().field, "recording_url");
        let mut e = ringing();
        e.kind = CallEventKind::Ended { duration: 90_000, outcome: Outcome::Answered };
        assert_eq!(e.validate().unwrap_err().field, "duration");
        let mut e = ringing();
        e.call_id = " ".into();
        assert_eq!(e.validate().unwrap_err().field, "call_id");
        let mut e = ringing();
        e.external_number = PhoneNumber::new("<script>");
        assert_eq!(e.validate().unwrap_err().field, "external_number");
    }

    #[test]
    fn a_finished_call_becomes_its_events() {
        let call = FinishedCall {
            uuid: "u1".into(),
            direction: Direction::Outbound,
            external_number: "+14155237743".into(),
            extension: "117".into(),
            started_at: 1_414_654_739_000,
            duration: 98,
            outcome: Outcome::Answered,
            recording_url: Some("https://pbx.example/u1.mp3".into()),
        };
        let events = call.into_events();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1].occurred_at, 1_414_654_739_000 + 98_000);
        assert!(events.iter().all(|e| e.call_id == "u1"));
    }

    #[test]
    fn a_transcript_event_parses_and_refuses_what_is_wrong_by_field() {
        let json = r#"{"event":"transcript_ready","call_id":"c1","direction":"inbound",
            "external_number":"+18305703077","extension":"101","occurred_at":1763691600123,
            "transcript":"Hello,\nthis is Maria.","summary":"A quote.","language":"pt-BR"}"#;
        let t: TranscriptEvent = serde_json::from_str(json).unwrap();
        assert_eq!(t.validate(), Ok(()));
        assert_eq!(t.transcript, "Hello,\nthis is Maria.");
        let field = |f: fn(&mut TranscriptEvent)| {
            let mut bad = t.clone();
            f(&mut bad);
            bad.validate().unwrap_err().field
        };
        assert_eq!(field(|t| t.transcript = "  ".into()), "transcript");
        assert_eq!(field(|t| t.transcript = "x".repeat(limits::TRANSCRIPT_MAX + 1)), "transcript");
        assert_eq!(field(|t| t.transcript = "bell\u{7}".into()), "transcript");
        assert_eq!(field(|t| t.summary = Some(String::new())), "summary");
        assert_eq!(field(|t| t.language = Some("en_US".into())), "language");
        assert_eq!(field(|t| t.occurred_at = 1_763_691_600), "occurred_at");
        assert!(serde_json::from_str::<TranscriptEvent>(&json.replace("\"language\"", "\"lang\"")).is_err());
    }
}
