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

use super::{now_ms, rust_id, sql_id, Account, Store};
use crate::store::jobs::Job;
use callcard_calls::call::Role;
use callcard_calls::call::{Ending, Recording};
use callcard_calls::extensions::ExtensionMap;
use callcard_calls::feed::CallerId;
use callcard_calls::feed::{CallView, FeedEvent};
use callcard_calls::{Call, CallEvent, CallStatus, Direction, EntityKind, EntityRef, Outcome, PhoneNumber};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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
    /// The subject the manager gave the call (the note's subject section).
    pub manager_subject: Option<String>,
    /// The follow-up task created for this missed call (its Kommo id).
    pub missed_task_id: Option<u64>,
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
    /// The manager's saved result (`manager_result`) was applied in Kommo:
    /// cleared by each Save, set by the job when it finishes. (Before the
    /// widget showed "Logged on …" it meant "saved", which `manager_result`
    /// says; rows from then read as applied, which they were or soon are.)
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
        view.result_logged = self.has_result && self.manager_result.is_some() && self.result_error.is_none();
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
    /// The feed events for the other users the change concerns: the agents
    /// a group call or a transfer rings (the call shown ringing), and those
    /// whose card it withdraws ([`CallView::withdrawn`]; see
    /// [`Call::audience`]).
    pub others: Vec<(u64, FeedEvent)>,
    /// Those views, until they are appended to the feed.
    pub(crate) others_views: Vec<(u64, CallView)>,
    /// The CRM-sync job enqueued with the change: [`Job::LogCall`] when the
    /// call just ended, [`Job::UpdateCallLog`] when an ended call got a
    /// recording or a corrected end.
    pub job: Option<Job>,
}

/// How intake's upserts of a call's row end: a row that exists gets the
/// PBX side (and the user, version, update time) of the inserted values;
/// the CRM side is left alone.
pub(crate) const WRITE_PBX_SIDE: &str = "ON CONFLICT (account_id, call_id) DO UPDATE SET \
    kommo_user_id = excluded.kommo_user_id, status = excluded.status, started_at = excluded.started_at, \
    ringing_at = excluded.ringing_at, answered_at = excluded.answered_at, ended_at = excluded.ended_at, \
    duration = excluded.duration, outcome = excluded.outcome, recording_url = excluded.recording_url, \
    recording_at = excluded.recording_at, extension = excluded.extension, legs = excluded.legs, \
    version = excluded.version, updated_at = excluded.updated_at";

pub(crate) const COLUMNS: &str = "account_id, call_id, direction, external_number, extension, kommo_user_id, \
    ringing_at, answered_at, ended_at, duration, outcome, recording_url, recording_at, entity_kind, entity_id, \
    unsorted_uid, responsible_user_id, manager_note, manager_subject, missed_task_id, manager_result, sync_state, caller, note_entity_kind, \
    note_entity_id, note_id, note_params, log_intent_at, logged_at, has_result, result_error, version, created_at, \
    updated_at, legs";

/// One delivery of PBX events about one call: what intake hands the store.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub account_id: u64,
    /// The delivered events folded into one call (the fold is order-free).
    pub call: Call,
    /// The user the call's holder maps to now, if any.
    pub mapped_user: Option<u64>,
    /// The account's extension map as the delivery found it: the merged
    /// call's holder (a group's answering agent, a transfer's target) and
    /// audience are mapped with it.
    pub extensions: Arc<ExtensionMap>,
    /// A caller-ID answer intake already had (from its cache): a call
    /// created by this delivery starts with it, so its very first feed event
    /// names the caller.
    pub caller: Option<CallerId>,
}

impl Delivery {
    /// The events of one call as one delivery; `None` when there are none.
    pub fn new(account: &Account, events: &[CallEvent]) -> Option<Self> {
        let (first, rest) = events.split_first()?;
        let mut call = Call::from_event(first);
        for e in rest {
            call.apply(e);
        }
        let mapped_user = call.holder().and_then(|e| account.extensions.user_for(e));
        Some(Self {
            account_id: account.account_id,
            call,
            mapped_user,
            extensions: account.extensions.clone(),
            caller: None,
        })
    }

    /// Starts a call created by this delivery with `caller` (only a final
    /// answer, known or unknown, is worth storing).
    pub fn with_caller(mut self, caller: Option<CallerId>) -> Self {
        self.caller = caller.filter(|c| matches!(c, CallerId::Known { .. } | CallerId::Unknown));
        self
    }

    fn key(&self) -> (u64, &str) {
        (self.account_id, self.call.call_id.as_str())
    }
}

/// A call as one [`Store::record`] transaction sees it, locked.
pub(crate) struct Locked {
    pub stored: StoredCall,
    /// Changed by some delivery of this transaction.
    pub changed: bool,
}

impl Locked {
    /// A call this delivery creates, as inserting it would store it
    /// (version 0: not yet changed by any delivery).
    pub(crate) fn created(delivery: &Delivery, now: i64) -> Self {
        let call = &delivery.call;
        let stored = StoredCall {
            account_id: delivery.account_id,
            call: Call {
                call_id: call.call_id.clone(),
                direction: call.direction,
                external_number: call.external_number.clone(),
                extension: call.extension.clone(),
                ringing_at: None,
                answered_at: None,
                ending: None,
                recording: None,
                legs: Vec::new(),
            },
            kommo_user_id: delivery.mapped_user,
            entity: None,
            unsorted_uid: None,
            responsible_user_id: None,
            manager_note: None,
            manager_subject: None,
            missed_task_id: None,
            manager_result: None,
            sync_state: SyncState::Pending,
            caller: delivery.caller.clone().unwrap_or(CallerId::Pending),
            note_entity: None,
            note_id: None,
            note_params: None,
            log_intent_at: None,
            logged_at: None,
            has_result: false,
            result_error: None,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        Self { stored, changed: false }
    }
}

/// The calls a recording transaction holds, by (account, call id).
pub(crate) type LockedCalls = HashMap<(u64, String), Locked>;

/// Applies the deliveries to their (locked) calls in arrival order, in
/// memory, exactly as one transaction per delivery would have: answers one
/// [`Recorded`] per delivery (its feed event still to be appended) and marks
/// the calls that changed.
pub(crate) fn apply_deliveries(
    calls: &mut LockedCalls,
    deliveries: &[Delivery],
    now: i64,
) -> Result<Vec<Recorded>, sqlx::Error> {
    let mut recorded = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let locked = calls
            .get_mut(&(delivery.account_id, delivery.call.call_id.clone()))
            .ok_or_else(|| sqlx::Error::Protocol("a delivered call was not locked".into()))?;
        let stored = &mut locked.stored;
        let is_new = stored.version == 0;
        let (ending_before, recording_before) = (stored.call.ending.clone(), stored.call.recording.clone());
        let user_of = |extension: &str| delivery.extensions.user_for(extension);
        let audience_before = if is_new { Vec::new() } else { stored.call.audience(user_of) };
        let merged = stored.call.merge(&delivery.call);
        // The call is its holder's: a group call's once one answers, a
        // transferred call's new agent's, nobody's while a group rings or
        // after it ended unanswered; and a call that rang an extension
        // mapped only later gets its user now.
        let holder_user = stored.call.holder().and_then(user_of);
        let moved = holder_user != stored.kommo_user_id && (holder_user.is_some() || stored.call.is_group());
        if moved {
            stored.kommo_user_id = holder_user;
        }
        if !(is_new || merged || moved) {
            recorded.push(Recorded {
                call: stored.clone(),
                changed: false,
                feed: None,
                others: Vec::new(),
                others_views: Vec::new(),
                job: None,
            });
            continue;
        }
        stored.version += 1;
        stored.updated_at = now;
        locked.changed = true;
        // The CRM sync's work commits with the event that calls for it, so
        // no ended call is ever left unlogged (`crate::queue`).
        let call_id = stored.call.call_id.clone();
        let job = match (&ending_before, &stored.call.ending) {
            (None, Some(_)) => Some(Job::LogCall { call_id }),
            (Some(before), Some(after)) if before != after || recording_before != stored.call.recording => {
                Some(Job::UpdateCallLog { call_id })
            }
            _ => None,
        };
        let others_views = others_views(stored, &audience_before, stored.call.audience(user_of));
        recorded.push(Recorded {
            call: stored.clone(),
            changed: true,
            feed: None,
            others: Vec::new(),
            others_views,
            job,
        });
    }
    Ok(recorded)
}

/// The views for the users other than the holder that a change concerns
/// (`audience_before` and `audience_now` from [`Call::audience`]): each
/// ringing agent sees the call as ringing for them, and each user who was
/// in the audience and is no more sees it withdrawn.
fn others_views(
    stored: &StoredCall,
    audience_before: &[(u64, Role)],
    audience_now: Vec<(u64, Role)>,
) -> Vec<(u64, CallView)> {
    let view_for = |user: u64| {
        let mut view = stored.view();
        view.user_id = Some(user);
        view
    };
    let mut views = Vec::new();
    for &(user, role) in &audience_now {
        if role == Role::Ringing && Some(user) != stored.kommo_user_id {
            let mut view = view_for(user);
            view.status = CallStatus::Ringing;
            views.push((user, view));
        }
    }
    for &(user, _) in audience_before {
        let still = audience_now.iter().any(|(u, _)| *u == user) || Some(user) == stored.kommo_user_id;
        if !still {
            let mut view = view_for(user);
            view.withdrawn = true;
            views.push((user, view));
        }
    }
    views
}

/// Where each feed item of a recording batch goes back to: the index of
/// its [`Recorded`], and whether it is the holder's (`feed`) or another
/// user's (`others`).
pub(crate) type FeedTag = (usize, bool);

/// Every feed event a recording batch appends, in order: for each changed
/// delivery, its holder's (when mapped), then the others'
/// ([`Recorded::others_views`]).
pub(crate) fn feed_items(recorded: &mut [Recorded]) -> (Vec<FeedTag>, Vec<(u64, u64, CallView)>) {
    let mut tags = Vec::new();
    let mut items = Vec::new();
    for (i, r) in recorded.iter_mut().enumerate().filter(|(_, r)| r.changed) {
        if let Some(user) = r.call.kommo_user_id {
            tags.push((i, true));
            items.push((r.call.account_id, user, r.call.view()));
        }
        for (user, view) in std::mem::take(&mut r.others_views) {
            tags.push((i, false));
            items.push((r.call.account_id, user, view));
        }
    }
    (tags, items)
}

/// Hands the appended events back to their [`Recorded`]s ([`feed_items`]).
pub(crate) fn attach_feed(
    recorded: &mut [Recorded],
    tags: Vec<FeedTag>,
    events: impl IntoIterator<Item = (u64, FeedEvent)>,
) {
    for ((i, holder), (user, event)) in tags.into_iter().zip(events) {
        if holder {
            recorded[i].feed = Some((user, event));
        } else {
            recorded[i].others.push((user, event));
        }
    }
}

impl Store {
    /// Merges one delivery into its stored call, durably; see [`record`](Self::record).
    pub async fn record_one(&self, delivery: Delivery) -> Result<Recorded, sqlx::Error> {
        let mut recorded = self.record(std::slice::from_ref(&delivery)).await?;
        recorded.pop().ok_or_else(|| sqlx::Error::Protocol("record answered nothing".into()))
    }

    /// Merges every delivery into its stored call in **one** transaction and
    /// answers one [`Recorded`] per delivery, in order: group commit, so the
    /// cost of a commit (and on PostgreSQL of each round trip) is shared by
    /// all the webhooks that arrived while the previous one was in flight.
    ///
    /// Deliveries are applied one after another, exactly as separate
    /// transactions would have applied them: each changed delivery bumps the
    /// call's version, appends its own feed event (so a widget sees ringing
    /// and then answered even when both arrive in one batch) and enqueues its
    /// own CRM job; a retried delivery answers `changed: false`. The calls'
    /// rows are locked in (account, call id) order, which every batch uses,
    /// so concurrent batches on PostgreSQL cannot deadlock each other.
    ///
    /// Committed feed events go to this instance's publisher in offset order
    /// (with PostgreSQL it tells the other instances too).
    pub async fn record(&self, deliveries: &[Delivery]) -> Result<Vec<Recorded>, sqlx::Error> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool().acquire().await?;
        self.record_on(&mut conn, deliveries).await
    }

    /// [`record`](Self::record) on a connection the caller holds (intake's
    /// writer keeps one while it is busy: SQLite's page cache is per
    /// connection, and a connection that did not write last starts cold).
    pub async fn record_on(
        &self,
        conn: &mut AnyConnection,
        deliveries: &[Delivery],
    ) -> Result<Vec<Recorded>, sqlx::Error> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let mut tx = sqlx::Connection::begin(conn).await?;
        let mut calls = self.lock_calls(&mut tx, deliveries, now).await?;

        let mut recorded = apply_deliveries(&mut calls, deliveries, now)?;
        let changed: Vec<&StoredCall> = calls.values().filter(|l| l.changed).map(|l| &l.stored).collect();
        self.write_calls(&mut tx, &changed).await?;
        let (tags, items) = feed_items(&mut recorded);
        let users: Vec<u64> = items.iter().map(|(_, user, _)| *user).collect();
        let events = self.announce_views_in_tx(&mut tx, items, now).await?;
        attach_feed(&mut recorded, tags, users.into_iter().zip(events));
        let jobs: Vec<(u64, &Job)> =
            recorded.iter().filter_map(|r| r.job.as_ref().map(|j| (r.call.account_id, j))).collect();
        self.enqueue_all_in_tx(&mut tx, &jobs, now).await?;
        tx.commit().await?;
        self.publish_recorded(&recorded);
        Ok(recorded)
    }

    /// Hands committed feed events to this instance's connections, in order.
    pub(crate) fn publish_recorded(&self, recorded: &[Recorded]) {
        if let Some(publisher) = self.publisher() {
            for r in recorded {
                for (user_id, event) in r.feed.iter().chain(&r.others) {
                    publisher.publish(r.call.account_id, *user_id, event.clone());
                }
            }
        }
    }

    /// Inserts the calls these deliveries describe, or, where they exist,
    /// takes their row locks with a no-op update (PostgreSQL), so a
    /// concurrent delivery of the same call waits for this transaction and
    /// then merges on top of it; answers every call as stored (version 0:
    /// created now). Writing first also takes SQLite's write lock at once,
    /// avoiding a read-then-upgrade deadlock between two writers.
    async fn lock_calls(
        &self,
        conn: &mut AnyConnection,
        deliveries: &[Delivery],
        now: i64,
    ) -> Result<LockedCalls, sqlx::Error> {
        // The first delivery of each call, in lock order.
        let mut firsts: BTreeMap<(u64, &str), &Delivery> = BTreeMap::new();
        for delivery in deliveries {
            firsts.entry(delivery.key()).or_insert(delivery);
        }
        let sql = format!(
            "INSERT INTO calls (account_id, call_id, direction, external_number, extension, kommo_user_id, status,
                                caller, created_at, updated_at, sync_state, version)
             VALUES {}
             ON CONFLICT (account_id, call_id) DO UPDATE SET version = calls.version
             RETURNING {COLUMNS}",
            self.dialect().value_rows(firsts.len(), 10, ", 'pending', 0")
        );
        let mut query = sqlx::query(&sql);
        for delivery in firsts.values() {
            let call = &delivery.call;
            let caller = match &delivery.caller {
                Some(c) => Some(serde_json::to_string(c).map_err(|e| sqlx::Error::Encode(Box::new(e)))?),
                None => None,
            };
            query = query
                .bind(sql_id(delivery.account_id))
                .bind(call.call_id.clone())
                .bind(call.direction.as_str())
                .bind(call.external_number.as_str().to_string())
                .bind(call.extension.clone())
                .bind(delivery.mapped_user.map(sql_id))
                .bind(status_str(call.status()))
                .bind(caller)
                .bind(now)
                .bind(now);
        }
        let rows = query.fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                let stored = row_to_call(row)?;
                Ok(((stored.account_id, stored.call.call_id.clone()), Locked { stored, changed: false }))
            })
            .collect()
    }

    /// Writes the PBX side of these (locked) calls as they now are.
    async fn write_calls(&self, conn: &mut AnyConnection, calls: &[&StoredCall]) -> Result<(), sqlx::Error> {
        if calls.is_empty() {
            return Ok(());
        }
        // An upsert of rows known to exist (and locked): one statement for
        // any number of calls, in SQL both dialects accept.
        let sql = format!(
            "INSERT INTO calls (account_id, call_id, direction, external_number, extension, kommo_user_id, status,
                                started_at, ringing_at, answered_at, ended_at, duration, outcome, recording_url,
                                recording_at, version, updated_at, created_at, legs)
             VALUES {}
             {WRITE_PBX_SIDE}",
            self.dialect().value_rows(calls.len(), 19, "")
        );
        let mut query = sqlx::query(&sql);
        for stored in calls {
            let call = &stored.call;
            let ending = call.ending.as_ref();
            let recording = call.recording.as_ref();
            query = query
                .bind(sql_id(stored.account_id))
                .bind(call.call_id.clone())
                .bind(call.direction.as_str())
                .bind(call.external_number.as_str().to_string())
                .bind(call.extension.clone())
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
                .bind(stored.version)
                .bind(stored.updated_at)
                .bind(stored.created_at)
                .bind(legs_json(&call.legs)?);
        }
        query.execute(&mut *conn).await?;
        Ok(())
    }

    /// Appends a feed event with the call as it now is for the call's user
    /// (if its extension is mapped) inside `conn`'s transaction. The one way
    /// a call change reaches the widget: intake and the CRM side both come
    /// through here, and after the commit hand the event to the store's
    /// [`Publisher`](crate::hub::Publisher) (this instance's sockets, and
    /// with PostgreSQL the other instances).
    pub(crate) async fn announce_in_tx(
        &self,
        conn: &mut AnyConnection,
        stored: &StoredCall,
        now: i64,
    ) -> Result<Option<(u64, FeedEvent)>, sqlx::Error> {
        Ok(self.announce_all_in_tx(conn, &[stored], now).await?.pop().flatten())
    }

    /// [`announce_in_tx`](Self::announce_in_tx) for many call changes at
    /// once, in order: one answer per call (`None`: no user to tell).
    pub(crate) async fn announce_all_in_tx(
        &self,
        conn: &mut AnyConnection,
        calls: &[&StoredCall],
        now: i64,
    ) -> Result<Vec<Option<(u64, FeedEvent)>>, sqlx::Error> {
        let items: Vec<(u64, u64, CallView)> =
            calls.iter().filter_map(|stored| Some((stored.account_id, stored.kommo_user_id?, stored.view()))).collect();
        let mut events = self.announce_views_in_tx(conn, items, now).await?.into_iter();
        Ok(calls.iter().map(|stored| Some((stored.kommo_user_id?, events.next()?))).collect())
    }

    /// Appends these views (account, user, view) to their users' feeds in
    /// `conn`'s transaction, in order. After the commit the caller hands
    /// the events to the store's publisher (this instance's sockets, and
    /// with PostgreSQL the other instances).
    pub(crate) async fn announce_views_in_tx(
        &self,
        conn: &mut AnyConnection,
        items: Vec<(u64, u64, CallView)>,
        now: i64,
    ) -> Result<Vec<FeedEvent>, sqlx::Error> {
        self.append_feed_events(&mut *conn, items, now).await
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

/// The caller column of a call being created: only a final answer (known
/// or unknown) is worth storing (`Delivery::with_caller`); `NULL` else.
pub(crate) fn caller_json(caller: &CallerId) -> Result<Option<String>, sqlx::Error> {
    match caller {
        c @ (CallerId::Known { .. } | CallerId::Unknown) => {
            serde_json::to_string(c).map(Some).map_err(|e| sqlx::Error::Encode(Box::new(e)))
        }
        _ => Ok(None),
    }
}

/// The legs column: `NULL` for none.
pub(crate) fn legs_json(legs: &[callcard_calls::call::Leg]) -> Result<Option<String>, sqlx::Error> {
    if legs.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(legs).map(Some).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

pub(crate) fn status_str(status: CallStatus) -> &'static str {
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

/// A row's columns by name, whichever driver read it: sqlx for every query,
/// rusqlite for intake's SQLite writer ([`super::sqlite_writer`]).
pub(crate) trait Columns {
    fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
}

impl Columns for AnyRow {
    fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }

    fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }
}

fn required<T>(value: Option<T>, column: &str) -> Result<T, sqlx::Error> {
    value.ok_or_else(|| sqlx::Error::Decode(format!("calls.{column} is NULL").into()))
}

pub(crate) fn row_to_call(row: &impl Columns) -> Result<StoredCall, sqlx::Error> {
    let direction = required(row.text("direction")?, "direction")?;
    let direction = match direction.as_str() {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        other => return Err(corrupt("direction", other)),
    };
    let ending = match (row.int("ended_at")?, row.int("duration")?, row.text("outcome")?) {
        (Some(at), Some(duration), Some(outcome)) => Some(Ending {
            at,
            duration: u32::try_from(duration).map_err(|_| corrupt("duration", &duration.to_string()))?,
            outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
        }),
        _ => None,
    };
    let recording = match (row.text("recording_url")?, row.int("recording_at")?) {
        (Some(url), Some(at)) => Some(Recording { at, url }),
        _ => None,
    };
    let entity = match (row.text("entity_kind")?, row.int("entity_id")?) {
        (Some(kind), Some(id)) => Some(EntityRef::new(parse_entity_kind("entity_kind", &kind)?, rust_id(id))),
        _ => None,
    };
    let note_entity = match (row.text("note_entity_kind")?, row.int("note_entity_id")?) {
        (Some(kind), Some(id)) => Some(EntityRef::new(parse_entity_kind("note_entity_kind", &kind)?, rust_id(id))),
        _ => None,
    };
    let caller = match row.text("caller")? {
        Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("caller", &json))?,
        None => CallerId::Pending,
    };
    let sync_state = required(row.text("sync_state")?, "sync_state")?;
    Ok(StoredCall {
        account_id: rust_id(required(row.int("account_id")?, "account_id")?),
        call: Call {
            call_id: required(row.text("call_id")?, "call_id")?,
            direction,
            external_number: PhoneNumber::new(required(row.text("external_number")?, "external_number")?),
            extension: required(row.text("extension")?, "extension")?,
            ringing_at: row.int("ringing_at")?,
            answered_at: row.int("answered_at")?,
            ending,
            recording,
            legs: match row.text("legs")? {
                Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("legs", &json))?,
                None => Vec::new(),
            },
        },
        kommo_user_id: row.int("kommo_user_id")?.map(rust_id),
        entity,
        unsorted_uid: row.text("unsorted_uid")?,
        responsible_user_id: row.int("responsible_user_id")?.map(rust_id),
        manager_note: row.text("manager_note")?,
        manager_subject: row.text("manager_subject")?,
        missed_task_id: row.int("missed_task_id")?.map(rust_id),
        manager_result: row.text("manager_result")?,
        sync_state: SyncState::parse(&sync_state).ok_or_else(|| corrupt("sync_state", &sync_state))?,
        caller,
        note_entity,
        note_id: row.int("note_id")?.map(rust_id),
        note_params: row.text("note_params")?,
        log_intent_at: row.int("log_intent_at")?,
        logged_at: row.int("logged_at")?,
        has_result: required(row.int("has_result")?, "has_result")? != 0,
        result_error: row.text("result_error")?,
        version: required(row.int("version")?, "version")?,
        created_at: required(row.int("created_at")?, "created_at")?,
        updated_at: required(row.int("updated_at")?, "updated_at")?,
    })
}
