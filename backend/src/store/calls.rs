//! Call records: every call the PBX reported, keyed by (account, call id),
//! with what the CRM side learns about it later.
//!
//! PBXs retry and reorder webhooks, and several backend instances may receive
//! events of one call at the same time. [`Store::record_events`] therefore
//! never overwrites a call with an event: inside one transaction it locks the
//! row (creating it if needed), folds the stored call and the new events with
//! [`Call::merge`] (idempotent and commutative), writes the result only if it
//! changed, and appends a feed event for the call's user in the same
//! transaction. The caller acknowledges the webhook only after the commit.

use super::feed_log::FEED_CHANNEL;
use super::{now_ms, rust_id, sql_id, Account, Dialect, Store};
use crate::queue::Job;
use callcard_calls::call::{Ending, Recording};
use callcard_calls::feed::CallerId;
use callcard_calls::feed::{CallView, FeedEvent};
use callcard_calls::{Call, CallEvent, CallStatus, Direction, EntityKind, EntityRef, Outcome, PhoneNumber};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// Where the call stands with the CRM (owned by the CRM-sync side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Nothing sent to Kommo yet.
    Pending,
    /// Logged in Kommo as far as the call is known.
    Synced,
    /// The last attempt failed; to be retried.
    Failed,
    /// Deliberately not logged in Kommo (an internal call between two
    /// extensions of the account).
    Skipped,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Synced => "synced",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Synced, Self::Failed, Self::Skipped].into_iter().find(|v| v.as_str() == s)
    }
}

/// A call as stored: the PBX's facts plus the CRM's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCall {
    pub account_id: u64,
    pub call: Call,
    /// The Kommo user whose extension the call rang (None: unmapped).
    pub kommo_user_id: Option<u64>,
    /// The record the call is logged on.
    pub entity: Option<EntityRef>,
    /// The incoming-lead (unsorted) uid, when the call created one.
    pub unsorted_uid: Option<String>,
    pub responsible_user_id: Option<u64>,
    pub manager_note: Option<String>,
    /// The manager's call result as JSON (`callcard_calls::result::CallResult`).
    pub manager_result: Option<String>,
    pub sync_state: SyncState,
    /// What caller ID found for the number.
    pub caller: CallerId,
    /// Where the call note is, once written (and its id).
    pub note_entity: Option<EntityRef>,
    pub note_id: Option<u64>,
    /// The call note's params as last written (JSON), to skip no-op PATCHes.
    pub note_params: Option<String>,
    /// Set before a non-idempotent create is sent to Kommo: a rerun must
    /// look for what the earlier run may have created.
    pub log_intent_at: Option<i64>,
    /// When the call was first logged in Kommo.
    pub logged_at: Option<i64>,
    /// The manager saved a call result.
    pub has_result: bool,
    /// Why the saved result could not be applied (`crate::sync::results`).
    pub result_error: Option<String>,
    /// Bumped on every change; 0 only inside the creating transaction.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl StoredCall {
    /// The call as the user's widget sees it.
    pub fn view(&self) -> CallView {
        let mut view = CallView::new(self.call.clone(), self.kommo_user_id);
        view.entity = self.entity;
        view.caller = self.caller.clone();
        view.has_result = self.has_result || self.manager_result.is_some();
        view.result_error = self.result_error.clone();
        view
    }
}

/// What recording some events did.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The call after the merge.
    pub call: StoredCall,
    /// Whether anything changed (false for a retried delivery).
    pub changed: bool,
    /// The feed event appended for the call's user, if the call changed and
    /// its extension is mapped.
    pub feed: Option<(u64, FeedEvent)>,
    /// The CRM-sync job enqueued with the change: [`Job::LogCall`] when the
    /// call just ended, [`Job::UpdateCallLog`] when an ended call got a
    /// recording or a corrected end.
    pub job: Option<Job>,
}

pub(crate) const COLUMNS: &str = "account_id, call_id, direction, external_number, extension, kommo_user_id, \
    ringing_at, answered_at, ended_at, duration, outcome, recording_url, recording_at, entity_kind, entity_id, \
    unsorted_uid, responsible_user_id, manager_note, manager_result, sync_state, caller, note_entity_kind, \
    note_entity_id, note_id, note_params, log_intent_at, logged_at, has_result, result_error, version, created_at, \
    updated_at";

impl Store {
    /// Merges `events` (all of one call) into the stored call, durably.
    ///
    /// `instance` tags the PostgreSQL notification so the instance that
    /// recorded the event does not deliver it twice.
    pub async fn record_events(
        &self,
        account: &Account,
        events: &[CallEvent],
        instance: &str,
    ) -> Result<Recorded, sqlx::Error> {
        self.record_events_with_caller(account, events, instance, None).await
    }

    /// [`record_events`](Self::record_events), and a call created now starts
    /// with `caller` (a caller-ID answer intake already has in its cache), so
    /// its very first feed event names the caller.
    pub async fn record_events_with_caller(
        &self,
        account: &Account,
        events: &[CallEvent],
        instance: &str,
        caller: Option<&CallerId>,
    ) -> Result<Recorded, sqlx::Error> {
        let Some((first, rest)) = events.split_first() else {
            return Err(sqlx::Error::Protocol("record_events needs at least one event".into()));
        };
        let mut incoming = Call::from_event(first);
        for e in rest {
            incoming.apply(e);
        }
        let mapped_user = account.extensions.user_for(&incoming.extension);
        let now = now_ms();
        let account_id = sql_id(account.account_id);

        let mut tx = self.pool().begin().await?;
        // Insert the call as these events describe it, or, if it exists, take
        // its row lock with a no-op update (PostgreSQL), so a concurrent
        // delivery of the same call waits for this transaction and then merges
        // on top of it. Writing first also takes SQLite's write lock at once,
        // avoiding a read-then-upgrade deadlock between two writers.
        let row = sqlx::query(&format!(
            "INSERT INTO calls (account_id, call_id, direction, external_number, extension, kommo_user_id, status,
                                sync_state, version, created_at, updated_at, caller)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8, $9)
             ON CONFLICT (account_id, call_id) DO UPDATE SET version = calls.version
             RETURNING {COLUMNS}"
        ))
        .bind(account_id)
        .bind(incoming.call_id.clone())
        .bind(incoming.direction.as_str())
        .bind(incoming.external_number.as_str().to_string())
        .bind(incoming.extension.clone())
        .bind(mapped_user.map(sql_id))
        .bind(status_str(incoming.status()))
        .bind(now)
        .bind(match caller {
            Some(c @ (CallerId::Known { .. } | CallerId::Unknown)) => {
                Some(serde_json::to_string(c).map_err(|e| sqlx::Error::Encode(Box::new(e)))?)
            }
            _ => None,
        })
        .fetch_one(&mut *tx)
        .await?;
        let mut stored = row_to_call(&row)?;
        let is_new = stored.version == 0;
        let (ending_before, recording_before) = (stored.call.ending.clone(), stored.call.recording.clone());
        let merged = stored.call.merge(&incoming);
        // A call that rang an extension mapped only later gets its user now.
        let gained_user = stored.kommo_user_id.is_none() && mapped_user.is_some();
        if gained_user {
            stored.kommo_user_id = mapped_user;
        }
        let changed = is_new || merged || gained_user;
        if !changed {
            tx.commit().await?;
            return Ok(Recorded { call: stored, changed: false, feed: None, job: None });
        }

        let call = &stored.call;
        let ending = call.ending.as_ref();
        let recording = call.recording.as_ref();
        sqlx::query(
            "UPDATE calls SET kommo_user_id = $1, status = $2, started_at = $3, ringing_at = $4, answered_at = $5,
                              ended_at = $6, duration = $7, outcome = $8, recording_url = $9, recording_at = $10,
                              version = version + 1, updated_at = $11
             WHERE account_id = $12 AND call_id = $13",
        )
        .bind(stored.kommo_user_id.map(sql_id))
        .bind(status_str(call.status()))
        .bind(call.started_at())
        .bind(call.ringing_at)
        .bind(call.answered_at)
        .bind(ending.map(|e| e.at))
        .bind(ending.map(|e| i64::from(e.duration)))
        .bind(ending.map(|e| e.outcome.as_str()))
        .bind(recording.map(|r| r.url.clone()))
        .bind(recording.map(|r| r.at))
        .bind(now)
        .bind(account_id)
        .bind(call.call_id.clone())
        .execute(&mut *tx)
        .await?;
        stored.version += 1;
        stored.updated_at = now;

        let feed = self.announce_in_tx(&mut tx, &stored, instance, now).await?;
        // The CRM sync's work commits with the event that calls for it, so no
        // ended call is ever left unlogged (`crate::queue`).
        let call_id = stored.call.call_id.clone();
        let job = match (&ending_before, &stored.call.ending) {
            (None, Some(_)) => Some(Job::LogCall { call_id }),
            (Some(before), Some(after)) if before != after || recording_before != stored.call.recording => {
                Some(Job::UpdateCallLog { call_id })
            }
            _ => None,
        };
        if let Some(job) = &job {
            self.enqueue_in_tx(&mut tx, account.account_id, job, now).await?;
        }
        tx.commit().await?;
        Ok(Recorded { call: stored, changed: true, feed, job })
    }

    /// Appends a feed event with the call as it now is for the call's user
    /// (if its extension is mapped) inside `conn`'s transaction, and with
    /// PostgreSQL NOTIFYs the other instances. The one way a call change
    /// reaches the widget: intake and the CRM side both come through here.
    pub(crate) async fn announce_in_tx(
        &self,
        conn: &mut AnyConnection,
        stored: &StoredCall,
        instance: &str,
        now: i64,
    ) -> Result<Option<(u64, FeedEvent)>, sqlx::Error> {
        let Some(user_id) = stored.kommo_user_id else { return Ok(None) };
        let event = self.append_feed_event(&mut *conn, stored.account_id, user_id, stored.view(), now).await?;
        if self.dialect() == Dialect::Postgres {
            // NOTIFY is transactional: other instances hear of the
            // event only once it is committed and readable.
            let payload = format!("{instance}:{}:{user_id}:{}", stored.account_id, event.offset);
            sqlx::query("SELECT pg_notify($1, $2)").bind(FEED_CHANNEL).bind(payload).execute(&mut *conn).await?;
        }
        Ok(Some((user_id, event)))
    }

    /// The call with this PBX id in this account (the seed's
    /// `getByCallIdAndKommoAccountId`).
    pub async fn call(&self, account_id: u64, call_id: &str) -> Result<Option<StoredCall>, sqlx::Error> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM calls WHERE account_id = $1 AND call_id = $2"))
            .bind(sql_id(account_id))
            .bind(call_id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(row_to_call).transpose()
    }

    /// The user's calls that still matter: not ended, or ended without a
    /// result, changed since `since_ms`; newest first, at most `limit`.
    pub async fn current_calls(
        &self,
        account_id: u64,
        user_id: u64,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<StoredCall>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM calls
             WHERE account_id = $1 AND kommo_user_id = $2 AND updated_at >= $3
               AND (status <> 'ended' OR manager_result IS NULL)
             ORDER BY updated_at DESC, call_id LIMIT $4"
        ))
        .bind(sql_id(account_id))
        .bind(sql_id(user_id))
        .bind(since_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_call).collect()
    }
}

fn status_str(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Ringing => "ringing",
        CallStatus::Answered => "answered",
        CallStatus::Ended => "ended",
    }
}

fn corrupt(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("calls.{column} holds an unknown value {value:?}").into())
}

pub(crate) fn parse_entity_kind(column: &str, kind: &str) -> Result<EntityKind, sqlx::Error> {
    [EntityKind::Contact, EntityKind::Lead, EntityKind::Company, EntityKind::Customer]
        .into_iter()
        .find(|k| k.as_str() == kind)
        .ok_or_else(|| corrupt(column, kind))
}

pub(crate) fn row_to_call(row: &AnyRow) -> Result<StoredCall, sqlx::Error> {
    let direction: String = row.try_get("direction")?;
    let direction = match direction.as_str() {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        other => return Err(corrupt("direction", other)),
    };
    let ended_at: Option<i64> = row.try_get("ended_at")?;
    let duration: Option<i64> = row.try_get("duration")?;
    let outcome: Option<String> = row.try_get("outcome")?;
    let ending = match (ended_at, duration, outcome) {
        (Some(at), Some(duration), Some(outcome)) => Some(Ending {
            at,
            duration: u32::try_from(duration).map_err(|_| corrupt("duration", &duration.to_string()))?,
            outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
        }),
        _ => None,
    };
    let recording_url: Option<String> = row.try_get("recording_url")?;
    let recording_at: Option<i64> = row.try_get("recording_at")?;
    let recording = match (recording_url, recording_at) {
        (Some(url), Some(at)) => Some(Recording { at, url }),
        _ => None,
    };
    let entity_kind: Option<String> = row.try_get("entity_kind")?;
    let entity_id: Option<i64> = row.try_get("entity_id")?;
    let entity = match (entity_kind, entity_id) {
        (Some(kind), Some(id)) => Some(EntityRef::new(parse_entity_kind("entity_kind", &kind)?, rust_id(id))),
        _ => None,
    };
    let note_kind: Option<String> = row.try_get("note_entity_kind")?;
    let note_entity_id: Option<i64> = row.try_get("note_entity_id")?;
    let note_entity = match (note_kind, note_entity_id) {
        (Some(kind), Some(id)) => Some(EntityRef::new(parse_entity_kind("note_entity_kind", &kind)?, rust_id(id))),
        _ => None,
    };
    let caller: Option<String> = row.try_get("caller")?;
    let caller = match caller {
        Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("caller", &json))?,
        None => CallerId::Pending,
    };
    let sync_state: String = row.try_get("sync_state")?;
    Ok(StoredCall {
        account_id: rust_id(row.try_get("account_id")?),
        call: Call {
            call_id: row.try_get("call_id")?,
            direction,
            external_number: PhoneNumber::new(row.try_get::<String, _>("external_number")?),
            extension: row.try_get("extension")?,
            ringing_at: row.try_get("ringing_at")?,
            answered_at: row.try_get("answered_at")?,
            ending,
            recording,
        },
        kommo_user_id: row.try_get::<Option<i64>, _>("kommo_user_id")?.map(rust_id),
        entity,
        unsorted_uid: row.try_get("unsorted_uid")?,
        responsible_user_id: row.try_get::<Option<i64>, _>("responsible_user_id")?.map(rust_id),
        manager_note: row.try_get("manager_note")?,
        manager_result: row.try_get("manager_result")?,
        sync_state: SyncState::parse(&sync_state).ok_or_else(|| corrupt("sync_state", &sync_state))?,
        caller,
        note_entity,
        note_id: row.try_get::<Option<i64>, _>("note_id")?.map(rust_id),
        note_params: row.try_get("note_params")?,
        log_intent_at: row.try_get("log_intent_at")?,
        logged_at: row.try_get("logged_at")?,
        has_result: row.try_get::<i64, _>("has_result")? != 0,
        result_error: row.try_get("result_error")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
