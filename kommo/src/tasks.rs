//! Tasks: `POST /api/v4/tasks` (batch) and `GET /api/v4/tasks`.
//!
//! The Call summary modal lets the manager schedule a follow-up; Kommo shows
//! it on the record and in the user's task list.

use crate::entities::{de_opt_string, kind_as_path};
use crate::http::{embedded, ApiRequest, KommoClient};
use crate::KommoError;
use callcard_calls::{EntityKind, EntityRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Kommo's built-in task types.
pub const TASK_FOLLOW_UP: u64 = 1;
pub const TASK_MEETING: u64 = 2;

/// A task to create.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewTask {
    pub text: String,
    /// Deadline, unix seconds.
    pub complete_till: i64,
    /// The record the task is about, written as `entity_id` + `entity_type`.
    #[serde(flatten, with = "entity_fields", skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_type_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responsible_user_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An [`EntityRef`] flattened into `entity_id` + `entity_type` ("leads").
mod entity_fields {
    use super::*;
    use serde::Serializer;

    #[derive(Serialize)]
    struct Fields {
        entity_id: u64,
        #[serde(with = "kind_as_path")]
        entity_type: EntityKind,
    }

    pub fn serialize<S: Serializer>(entity: &Option<EntityRef>, s: S) -> Result<S::Ok, S::Error> {
        match entity {
            Some(e) => Fields { entity_id: e.id, entity_type: e.kind }.serialize(s),
            None => s.serialize_none(),
        }
    }
}

impl NewTask {
    /// A follow-up task about `entity`, due at `complete_till`.
    pub fn follow_up(entity: EntityRef, text: impl Into<String>, complete_till: i64) -> Self {
        Self {
            text: text.into(),
            complete_till,
            entity: Some(entity),
            task_type_id: Some(TASK_FOLLOW_UP),
            responsible_user_id: None,
            request_id: None,
        }
    }
}

/// What Kommo answers per created task.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TaskRef {
    pub id: u64,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub request_id: Option<String>,
}

/// A task as Kommo returns it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Task {
    pub id: u64,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub complete_till: Option<i64>,
    #[serde(default)]
    pub entity_id: Option<u64>,
    /// `"leads"`, `"contacts"`... (Kommo also has tasks on other kinds).
    #[serde(default)]
    pub entity_type: Option<String>,
    #[serde(default)]
    pub is_completed: bool,
    #[serde(default)]
    pub task_type_id: Option<u64>,
    #[serde(default)]
    pub responsible_user_id: Option<u64>,
    #[serde(default)]
    pub created_at: Option<i64>,
}

impl Task {
    /// The record the task is about, when it is one of the four kinds.
    pub fn entity(&self) -> Option<EntityRef> {
        let kind = EntityKind::from_api_path(self.entity_type.as_deref()?)?;
        Some(EntityRef::new(kind, self.entity_id?))
    }
}

impl KommoClient {
    /// Creates tasks in one request. Not retried once it may have reached
    /// Kommo (no natural key to check against).
    pub async fn create_tasks(&self, tasks: &[NewTask]) -> Result<Vec<TaskRef>, KommoError> {
        let req = ApiRequest::create("/api/v4/tasks", &tasks)?;
        let Some(answer) = self.send::<Value>(&req).await? else { return Ok(Vec::new()) };
        embedded(&answer, "tasks")
    }

    /// Creates `task` on its record unless one with the same text and deadline
    /// is there already (Kommo has no key to deduplicate by; a caller that
    /// derives both from its own data can rerun safely). Returns the task's
    /// id, the existing one's or the new one's.
    pub async fn create_task_once(&self, task: NewTask) -> Result<u64, KommoError> {
        let existing = self.list_tasks(task.entity, false).await?;
        if let Some(found) =
            existing.iter().find(|t| t.text == task.text && t.complete_till == Some(task.complete_till))
        {
            return Ok(found.id);
        }
        let created = self.create_tasks(&[task]).await?;
        created.first().map(|t| t.id).ok_or_else(|| KommoError::Decode { detail: "no task in the answer".into() })
    }

    /// Tasks about `entity` (all tasks when `None`), all pages; only open ones
    /// when `open_only`.
    pub async fn list_tasks(&self, entity: Option<EntityRef>, open_only: bool) -> Result<Vec<Task>, KommoError> {
        let mut req = ApiRequest::get("/api/v4/tasks");
        if let Some(e) = entity {
            req = req.query("filter[entity_type]", e.kind.api_path()).query("filter[entity_id][]", e.id);
        }
        if open_only {
            req = req.query("filter[is_completed]", 0);
        }
        self.list_all(req, "tasks").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_its_entity_by_plural_path() {
        let t = NewTask::follow_up(EntityRef::new(EntityKind::Lead, 5), "call back", 1_700_000_000);
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            serde_json::json!({"text": "call back", "complete_till": 1_700_000_000i64, "entity_id": 5,
                "entity_type": "leads", "task_type_id": 1})
        );
        let free = NewTask { entity: None, task_type_id: None, ..t };
        assert_eq!(
            serde_json::to_value(&free).unwrap(),
            serde_json::json!({"text": "call back", "complete_till": 1_700_000_000i64})
        );
    }
}
