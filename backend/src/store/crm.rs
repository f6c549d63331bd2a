//! The CRM side of a call: what caller ID, call logging and the manager's
//! call result learn about a call after the PBX told us about it.
//!
//! [`Store::update_call_crm`] applies a [`CrmChange`] (every field optional:
//! `None` leaves the column alone) in one transaction that locks the call
//! row, writes only if something changed, and, when the change is visible to
//! the widget (caller, entity, result), appends a feed event for the call's
//! user through the same code path intake uses
//! ([`Store::announce_in_tx`](super::Store)), and right after the commit
//! hands it to the store's publisher: this instance's connections, and with
//! PostgreSQL the other instances (`crate::notifier`). So the widget learns
//! "the caller is Maria Gonzalez", "logged on lead 5756100" or "result saved"
//! exactly the way it learns "ringing".

use super::calls::{row_to_call, COLUMNS};
use super::{now_ms, sql_id, Store, StoredCall, SyncState};
use callcard_calls::feed::CallerId;
use callcard_calls::EntityRef;

/// A change to the CRM side of a call; `None` fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrmChange {
    /// The record the call belongs to (caller ID's pick, or the manager's).
    pub entity: Option<EntityRef>,
    /// The incoming lead the call created.
    pub unsorted_uid: Option<String>,
    pub responsible_user_id: Option<u64>,
    /// Caller ID's answer.
    pub caller: Option<CallerId>,
    /// Where the call note now is, and its id (set together).
    pub note_entity: Option<EntityRef>,
    pub note_id: Option<u64>,
    /// The call note's params as just written (JSON).
    pub note_params: Option<String>,
    /// The manager's note (the call note's agent-note section).
    pub manager_note: Option<String>,
    /// The manager's subject (the call note's subject section).
    pub manager_subject: Option<String>,
    /// The missed call's follow-up task, once created.
    pub missed_task_id: Option<u64>,
    /// The manager's call result, `callcard_calls::result::CallResult` as JSON.
    pub manager_result: Option<String>,
    pub has_result: Option<bool>,
    pub sync_state: Option<SyncState>,
    /// Unix ms; see [`StoredCall::log_intent_at`].
    pub log_intent_at: Option<i64>,
    /// Unix ms; see [`StoredCall::logged_at`].
    pub logged_at: Option<i64>,
    /// Why the manager's result could not be applied: `Some(Some(reason))`
    /// sets it, `Some(None)` clears it.
    pub result_error: Option<Option<String>>,
}

impl CrmChange {
    /// Applies the change to `call`; returns whether anything changed.
    fn apply(&self, call: &mut StoredCall) -> bool {
        fn set<T: PartialEq + Clone>(slot: &mut T, value: &Option<T>) -> bool {
            match value {
                Some(v) if slot != v => {
                    *slot = v.clone();
                    true
                }
                _ => false,
            }
        }
        fn set_opt<T: PartialEq + Clone>(slot: &mut Option<T>, value: &Option<T>) -> bool {
            match value {
                Some(v) if slot.as_ref() != Some(v) => {
                    *slot = Some(v.clone());
                    true
                }
                _ => false,
            }
        }
        // Every setter runs (no short-circuit).
        [
            set_opt(&mut call.entity, &self.entity),
            set_opt(&mut call.unsorted_uid, &self.unsorted_uid),
            set_opt(&mut call.responsible_user_id, &self.responsible_user_id),
            set(&mut call.caller, &self.caller),
            set_opt(&mut call.note_entity, &self.note_entity),
            set_opt(&mut call.note_id, &self.note_id),
            set_opt(&mut call.note_params, &self.note_params),
            set_opt(&mut call.manager_note, &self.manager_note),
            set_opt(&mut call.manager_subject, &self.manager_subject),
            set_opt(&mut call.missed_task_id, &self.missed_task_id),
            set_opt(&mut call.manager_result, &self.manager_result),
            set(&mut call.has_result, &self.has_result),
            set(&mut call.sync_state, &self.sync_state),
            set_opt(&mut call.log_intent_at, &self.log_intent_at),
            set_opt(&mut call.logged_at, &self.logged_at),
            set(&mut call.result_error, &self.result_error),
        ]
        .into_iter()
        .fold(false, |a, b| a | b)
    }
}

impl Store {
    /// Applies `change` to the call and, if the widget's view of it changed,
    /// tells the call's user (module docs). `Ok(None)`: no such call.
    pub async fn update_call_crm(
        &self,
        account_id: u64,
        call_id: &str,
        change: CrmChange,
    ) -> Result<Option<StoredCall>, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        // Take the row lock (PostgreSQL) or the write lock (SQLite) first, as
        // intake does, so a concurrent webhook for this call waits for us and
        // merges on top instead of overwriting.
        let row = sqlx::query(&format!(
            "UPDATE calls SET version = version WHERE account_id = $1 AND call_id = $2 RETURNING {COLUMNS}"
        ))
        .bind(sql_id(account_id))
        .bind(call_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let mut stored = row_to_call(&row)?;
        let before = stored.view();
        if !change.apply(&mut stored) {
            tx.commit().await?;
            return Ok(Some(stored));
        }
        sqlx::query(
            "UPDATE calls SET entity_kind = $1, entity_id = $2, unsorted_uid = $3, responsible_user_id = $4,
                              caller = $5, note_entity_kind = $6, note_entity_id = $7, note_id = $8,
                              note_params = $9, manager_note = $10, manager_result = $11, has_result = $12,
                              sync_state = $13, log_intent_at = $14, logged_at = $15, result_error = $16,
                              manager_subject = $17, missed_task_id = $18, version = version + 1, updated_at = $19
             WHERE account_id = $20 AND call_id = $21",
        )
        .bind(stored.entity.map(|e| e.kind.as_str()))
        .bind(stored.entity.map(|e| sql_id(e.id)))
        .bind(stored.unsorted_uid.clone())
        .bind(stored.responsible_user_id.map(sql_id))
        .bind(match &stored.caller {
            CallerId::Pending => None,
            other => Some(serde_json::to_string(other).map_err(|e| sqlx::Error::Encode(Box::new(e)))?),
        })
        .bind(stored.note_entity.map(|e| e.kind.as_str()))
        .bind(stored.note_entity.map(|e| sql_id(e.id)))
        .bind(stored.note_id.map(sql_id))
        .bind(stored.note_params.clone())
        .bind(stored.manager_note.clone())
        .bind(stored.manager_result.clone())
        .bind(i64::from(stored.has_result))
        .bind(stored.sync_state.as_str())
        .bind(stored.log_intent_at)
        .bind(stored.logged_at)
        .bind(stored.result_error.clone())
        .bind(stored.manager_subject.clone())
        .bind(stored.missed_task_id.map(sql_id))
        .bind(now)
        .bind(sql_id(account_id))
        .bind(call_id.to_string())
        .execute(&mut *tx)
        .await?;
        stored.version += 1;
        stored.updated_at = now;
        let feed = if stored.view() != before { self.announce_in_tx(&mut tx, &stored, now).await? } else { None };
        tx.commit().await?;
        if let (Some((user_id, event)), Some(publisher)) = (feed, self.publisher()) {
            publisher.publish(account_id, user_id, event);
        }
        Ok(Some(stored))
    }

    /// Sets (or with `None` clears) why the call's result could not be
    /// applied; setting it also marks the call's sync `failed`. The widget
    /// hears of it like of any call change. `Ok(None)`: no such call.
    pub async fn set_result_error(
        &self,
        account_id: u64,
        call_id: &str,
        reason: Option<&str>,
    ) -> Result<Option<StoredCall>, sqlx::Error> {
        let change = CrmChange {
            result_error: Some(reason.map(str::to_string)),
            sync_state: reason.map(|_| SyncState::Failed),
            ..CrmChange::default()
        };
        self.update_call_crm(account_id, call_id, change).await
    }
}
