//! The manager's call result, posted by the Call summary modal to
//! `POST /widget/calls/{call_id}/result`.

use crate::entity::EntityRef;
use crate::event::FieldError;
use serde::{Deserialize, Serialize};

/// Longest note a manager can save (Kommo notes hold far more; this bounds abuse).
pub const NOTE_MAX_CHARS: usize = 10_000;

/// A follow-up task to create with the result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskDraft {
    /// Unix seconds, as Kommo's `complete_till`.
    pub complete_till: i64,
    pub text: String,
}

/// What the manager decided about a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallResult {
    /// The record the call belongs on.
    pub entity: EntityRef,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 10000))]
    pub note: String,
    #[serde(default)]
    pub task: Option<TaskDraft>,
}

impl CallResult {
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.entity.id == 0 {
            return Err(FieldError::new("entity.id", "must be a Kommo record id"));
        }
        if self.note.chars().count() > NOTE_MAX_CHARS {
            return Err(FieldError::new("note", format!("must be at most {NOTE_MAX_CHARS} characters")));
        }
        if let Some(task) = &self.task {
            if task.text.trim().is_empty() {
                return Err(FieldError::new("task.text", "must not be empty"));
            }
            if task.text.chars().count() > NOTE_MAX_CHARS {
                return Err(FieldError::new("task.text", format!("must be at most {NOTE_MAX_CHARS} characters")));
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
            task: Some(TaskDraft { complete_till: 1_763_700_000, text: "Send quote".into() }),
        };
        assert!(r.validate().is_ok());
        r.task.as_mut().unwrap().text = "  ".into();
        assert_eq!(r.validate().unwrap_err().field, "task.text");
        r.task.as_mut().unwrap().text = "ok".into();
        r.task.as_mut().unwrap().complete_till = 1_763_700_000_000;
        assert_eq!(r.validate().unwrap_err().field, "task.complete_till");
    }
}
