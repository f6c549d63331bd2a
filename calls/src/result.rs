//! The manager's call result, posted by the Call summary modal to
//! `POST /widget/calls/{call_id}/result`.

use crate::entity::EntityRef;
use crate::event::FieldError;
use serde::{Deserialize, Serialize};

/// Longest note a manager can save. The call note holds it beside the
/// machine's sections, and the whole must stay within what Kommo takes for a
/// call note's text (`crate::note::CALL_NOTE_MAX_CHARS`); a longer note was
/// accepted here and then refused by Kommo, a result lost to the dead-letter.
pub const NOTE_MAX_CHARS: usize = 2_000;

/// Longest task text a manager can save (a task of its own in Kommo).
pub const TASK_TEXT_MAX_CHARS: usize = 10_000;

/// Longest subject a manager can give a call (one line of the note).
pub const SUBJECT_MAX_CHARS: usize = 200;

/// A task to create with the result: `{"complete_till", "text", "kind"?,
/// "responsible_user_id"?}` (results saved before `kind` and the user existed
/// read as a follow-up for the call's manager).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskDraft {
    /// Unix seconds, as Kommo's `complete_till`.
    pub complete_till: i64,
    pub text: String,
    #[serde(default)]
    pub kind: TaskKind,
    /// Who does it; `None`: the manager the call rang.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsible_user_id: Option<u64>,
}

impl TaskDraft {
    /// A follow-up for the call's manager.
    pub fn follow_up(complete_till: i64, text: impl Into<String>) -> Self {
        Self { complete_till, text: text.into(), kind: TaskKind::FollowUp, responsible_user_id: None }
    }
}

/// Kommo's built-in task types (`task_type_id` 1 and 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    #[default]
    FollowUp,
    Meeting,
}

impl TaskKind {
    /// Kommo's `task_type_id`.
    pub fn task_type_id(self) -> u64 {
        match self {
            Self::FollowUp => 1,
            Self::Meeting => 2,
        }
    }
}

/// What the manager decided about a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallResult {
    /// The record the call belongs on.
    pub entity: EntityRef,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub note: String,
    #[serde(default)]
    pub task: Option<TaskDraft>,
    /// The call's subject as the manager edited it (omitted: the note keeps
    /// its "Inbound call from …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl CallResult {
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.entity.id == 0 {
            return Err(FieldError::new("entity.id", "must be a Kommo record id"));
        }
        if self.note.chars().count() > NOTE_MAX_CHARS {
            return Err(FieldError::new("note", format!("must be at most {NOTE_MAX_CHARS} characters")));
        }
        if let Some(subject) = &self.subject {
            if subject.chars().count() > SUBJECT_MAX_CHARS {
                return Err(FieldError::new("subject", format!("must be at most {SUBJECT_MAX_CHARS} characters")));
            }
            if subject.chars().any(char::is_control) {
                return Err(FieldError::new("subject", "must be one line"));
            }
        }
        if let Some(task) = &self.task {
            if task.text.trim().is_empty() {
                return Err(FieldError::new("task.text", "must not be empty"));
            }
            if task.text.chars().count() > TASK_TEXT_MAX_CHARS {
                return Err(FieldError::new("task.text", format!("must be at most {TASK_TEXT_MAX_CHARS} characters")));
            }
            if task.complete_till < 1_000_000_000 || task.complete_till > 9_999_999_999 {
                return Err(FieldError::new("task.complete_till", "must be Unix time in seconds"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::EntityKind;

    #[test]
    fn validation_names_the_field() {
        let mut r = CallResult {
            entity: EntityRef::new(EntityKind::Lead, 5),
            note: "Wants a quote".into(),
            task: Some(TaskDraft::follow_up(1_763_700_000, "Send quote")),
            subject: Some("Quote for 40 seats".into()),
        };
        assert!(r.validate().is_ok());
        r.subject = Some("two\nlines".into());
        assert_eq!(r.validate().unwrap_err().field, "subject");
        r.subject = Some("x".repeat(SUBJECT_MAX_CHARS + 1));
        assert_eq!(r.validate().unwrap_err().field, "subject");
        r.subject = None;
        r.task.as_mut().unwrap().text = "  ".into();
        assert_eq!(r.validate().unwrap_err().field, "task.text");
        r.task.as_mut().unwrap().text = "ok".into();
        r.task.as_mut().unwrap().complete_till = 1_763_700_000_000;
        assert_eq!(r.validate().unwrap_err().field, "task.complete_till");
    }

    #[test]
    fn tasks_saved_before_kinds_read_as_follow_ups() {
        let old: TaskDraft = serde_json::from_str(r#"{"complete_till": 1763700000, "text": "t"}"#).unwrap();
        assert_eq!(old, TaskDraft::follow_up(1_763_700_000, "t"));
        let meeting: TaskDraft =
            serde_json::from_str(r#"{"complete_till": 1, "text": "t", "kind": "meeting", "responsible_user_id": 9}"#)
                .unwrap();
        assert_eq!((meeting.kind.task_type_id(), meeting.responsible_user_id), (2, Some(9)));
        assert!(serde_json::from_str::<TaskDraft>(r#"{"complete_till": 1, "text": "t", "kind": "call"}"#).is_err());
    }
}
