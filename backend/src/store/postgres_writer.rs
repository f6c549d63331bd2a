//! Intake's PostgreSQL writer: each group-commit writer keeps a PostgreSQL
//! connection of its own and speaks PostgreSQL on it, not `sqlx::Any`.
//!
//! Through the pool and `sqlx::Any` ([`Store::record_on`]) a batch of
//! ringing calls took seven round trips (BEGIN, the calls' lock, their
//! write, the feed offsets, the feed events, the trim, COMMIT), each
//! statement's text changing with the batch size (multi-row `VALUES`), so
//! PostgreSQL parsed and planned it anew every time, and each round trip
//! waited on two busy processes (about 0.5 ms apiece under the ingest
//! benchmark). Here a batch is two round trips of two statements whose
//! text never changes, prepared once per connection:
//!
//! 1. `BEGIN` and [`LOCK_CALLS`], pipelined: the lock inserts the batch's
//!    new calls as the batch leaves them and locks the rest (in (account,
//!    call id) order, as every batch does), answering each as it was;
//! 2. the merge, in memory ([`apply_deliveries`], the store's rule);
//! 3. [`WRITE_BATCH`] and `COMMIT`, pipelined: one statement of
//!    data-modifying CTEs writes the changed calls, advances the users'
//!    feed offsets, appends the feed events numbered from them, trims the
//!    histories and enqueues the CRM jobs; the commit is durable when
//!    answered. Then the events are published.
//!
//! Row sets travel as one array per column (`UNNEST`), so the statements
//! take the same parameters for one call as for 256. The connection is
//! tokio-postgres's, because it pipelines and sqlx does not. What is stored
//! is what [`Store::record`] stores: the same merge, feed numbering, trim
//! and job rows (this module's test holds the two side by side).

use super::calls::{
    apply_deliveries, attach_feed, caller_json, feed_items, legs_json, row_to_call, status_str, Columns, Locked,
    LockedCalls, COLUMNS, WRITE_PBX_SIDE,
};
use super::feed_log::{feed_counts, feed_payload, number_feed_events};
use super::jobs::{job_payload, new_job_id, unique_jobs, Job};
use super::{now_ms, rust_id, sql_id, Delivery, Recorded, Store, StoredCall};
use crate::metrics::{IntakeStage, Metrics};
use callcard_calls::feed::CallView;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock};
use std::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

/// Takes the row lock of each call of the batch that exists (a no-op
/// update) and inserts each that does not, as the batch leaves it, in the
/// order of the arrays; answers every call as stored before the batch, or
/// as inserted, and which it was. (`xmax = 0` tells an inserted row from a
/// locked one: the lock sets it. Long-standing PostgreSQL behaviour, not a
/// documented promise; this module's test fails if it ever changes.)
static LOCK_CALLS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO calls (account_id, call_id, direction, external_number, extension, kommo_user_id, status,
                            started_at, ringing_at, answered_at, ended_at, duration, outcome, recording_url,
                            recording_at, version, updated_at, created_at, legs, caller, sync_state)
         SELECT account_id, call_id, direction, external_number, extension, kommo_user_id, status, started_at,
                ringing_at, answered_at, ended_at, duration, outcome, recording_url, recording_at, version,
                updated_at, created_at, legs, caller, 'pending'
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
                     $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[],
                     $14::text[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::text[],
                     $20::text[])
              WITH ORDINALITY AS d(account_id, call_id, direction, external_number, extension, kommo_user_id,
                                   status, started_at, ringing_at, answered_at, ended_at, duration, outcome,
                                   recording_url, recording_at, version, updated_at, created_at, legs, caller, i)
         ORDER BY i
         ON CONFLICT (account_id, call_id) DO UPDATE SET version = calls.version
         RETURNING {COLUMNS}, (xmax = 0) AS inserted"
    )
});

/// Everything a batch writes once its calls are merged, in one statement.
/// All CTEs see the snapshot from before the statement, so the trim cannot
/// see the events appended beside it: events that it would delete at once
/// (more than the history keeps for one user in one batch) are not
/// inserted at all. `from_last` is an event's distance from its user's last
/// offset in this batch (0 for the newest). The trim deletes the window the
/// batch's offsets pushed out of the history ([`super::feed_log`] says why
/// it is bounded below); its bounds are materialised first, or the planner
/// keeps only the upper one as the index condition and filters the rest.
static WRITE_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH written AS (
             INSERT INTO calls (account_id, call_id, direction, external_number, extension, kommo_user_id, status,
                                started_at, ringing_at, answered_at, ended_at, duration, outcome, recording_url,
                                recording_at, version, updated_at, created_at, legs)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                                  $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],
                                  $12::bigint[], $13::text[], $14::text[], $15::bigint[], $16::bigint[],
                                  $17::bigint[], $18::bigint[], $19::text[])
             {WRITE_PBX_SIDE}
         ),
         offsets AS (
             INSERT INTO feed_offsets (account_id, user_id, last_offset)
             SELECT * FROM UNNEST($20::bigint[], $21::bigint[], $22::bigint[])
             ON CONFLICT (account_id, user_id) DO UPDATE SET last_offset = feed_offsets.last_offset + excluded.last_offset
             RETURNING account_id, user_id, last_offset
         ),
         appended AS (
             INSERT INTO feed_events (account_id, user_id, feed_offset, call_id, payload, created_at)
             SELECT e.account_id, e.user_id, o.last_offset - e.from_last, e.call_id, e.payload, $33
             FROM UNNEST($23::bigint[], $24::bigint[], $25::bigint[], $26::text[], $27::text[])
                  AS e(account_id, user_id, from_last, call_id, payload)
             JOIN offsets o ON o.account_id = e.account_id AND o.user_id = e.user_id
             WHERE e.from_last < $34
         ),
         trimmed_windows AS MATERIALIZED (
             SELECT o.account_id, o.user_id, o.last_offset - c.n - $34 AS after, o.last_offset - $34 AS upto
             FROM offsets o JOIN UNNEST($20::bigint[], $21::bigint[], $22::bigint[]) AS c(account_id, user_id, n)
                  ON c.account_id = o.account_id AND c.user_id = o.user_id
         ),
         trimmed AS (
             DELETE FROM feed_events f USING trimmed_windows w
             WHERE f.account_id = w.account_id AND f.user_id = w.user_id
               AND f.feed_offset > w.after AND f.feed_offset <= w.upto
         ),
         enqueued AS (
             INSERT INTO jobs (id, account_id, kind, call_id, payload, run_at, created_at, updated_at, state, attempts)
             SELECT id, account_id, kind, call_id, payload, $33, $33, $33, 'pending', 0
             FROM UNNEST($28::bigint[], $29::bigint[], $30::text[], $31::text[], $32::text[])
                  AS j(id, account_id, kind, call_id, payload)
             ON CONFLICT (account_id, kind, call_id) WHERE state = 'pending' DO NOTHING
         )
         SELECT account_id, user_id, last_offset FROM offsets"
    )
});

/// One group-commit writer's connection (`crate::group_commit`), with the
/// two statements prepared on it.
pub(crate) struct PostgresIntake {
    client: Client,
    lock: Statement,
    write: Statement,
    store: Store,
    metrics: Arc<Metrics>,
}

/// A statement's parameters, as tokio-postgres takes them.
type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

fn pg_error(e: tokio_postgres::Error) -> sqlx::Error {
    sqlx::Error::Protocol(format!("postgres: {e}"))
}

impl Columns for Row {
    fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column).map_err(pg_error)
    }

    fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column).map_err(pg_error)
    }
}

impl PostgresIntake {
    /// A connection of its own to the store's database (the URL's options,
    /// such as a `search_path`, included), its statements prepared.
    pub(crate) async fn connect(store: &Store, metrics: Arc<Metrics>) -> Result<Self, sqlx::Error> {
        let mut config: tokio_postgres::Config = store.url().parse().map_err(pg_error)?;
        // What `pg_stat_activity` shows (the benchmark profiles these).
        config.application_name("callcard-intake");
        let (client, connection) = config.connect(NoTls).await.map_err(pg_error)?;
        // The connection's I/O; it ends when the client is dropped or the
        // connection breaks (then every request fails, and the writer
        // connects again).
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "intake's PostgreSQL connection closed");
            }
        });
        let lock = client.prepare(&LOCK_CALLS).await.map_err(pg_error)?;
        let write = client.prepare(&WRITE_BATCH).await.map_err(pg_error)?;
        Ok(Self { client, lock, write, store: store.clone(), metrics })
    }

    /// Stores the deliveries in one transaction, durably, then publishes
    /// their feed events; see [`Store::record`].
    ///
    /// `BEGIN` travels with the lock, and `COMMIT` with the write, each pair
    /// in one round trip (pipelined: the second is sent before the first is
    /// answered). A failed write makes PostgreSQL answer that `COMMIT` with
    /// a rollback; the error is the write's. `BEGIN` checks nothing and
    /// fails only with the connection, which fails the lock with it.
    pub(crate) async fn record(&mut self, deliveries: &[Delivery]) -> Result<Vec<Recorded>, sqlx::Error> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let started = Instant::now();
        let locking = Locking::of(deliveries, now)?;
        let params = locking.params();
        let (begun, returned) =
            tokio::join!(self.client.batch_execute("BEGIN"), self.client.query(&self.lock, &params));
        drop(params);
        begun.map_err(pg_error)?;
        let (mut calls, inserted) = locking.answer(&returned.map_err(pg_error)?)?;
        let locked = Instant::now();
        self.metrics.intake_stage(IntakeStage::Lock, locked - started);
        let mut recorded = apply_deliveries(&mut calls, deliveries, now)?;
        let (tags, items) = feed_items(&mut recorded);
        let jobs: Vec<(u64, &Job)> =
            recorded.iter().filter_map(|r| r.job.as_ref().map(|j| (r.call.account_id, j))).collect();
        // The calls the lock inserted already hold what the batch made of them.
        let written = calls.iter().filter(|(key, locked)| locked.changed && !inserted.contains(*key));
        let batch = Batch::of(written.map(|(_, locked)| &locked.stored), &items, &jobs)?;
        let history = self.store.history_per_user;
        let merged = Instant::now();
        self.metrics.intake_stage(IntakeStage::Merge, merged - locked);
        let offsets = if batch.is_empty() {
            self.client.batch_execute("COMMIT").await.map_err(pg_error)?;
            Vec::new()
        } else {
            let params = batch.params(&now, &history);
            let (rows, committed) =
                tokio::join!(self.client.query(&self.write, &params), self.client.batch_execute("COMMIT"));
            let rows = rows.map_err(pg_error)?;
            committed.map_err(pg_error)?;
            rows
        };
        self.metrics.intake_stage(IntakeStage::WriteCommit, merged.elapsed());
        let last = offsets
            .iter()
            .map(|row| {
                let (account_id, user_id): (i64, i64) =
                    (row.try_get("account_id").map_err(pg_error)?, row.try_get("user_id").map_err(pg_error)?);
                Ok(((rust_id(account_id), rust_id(user_id)), row.try_get("last_offset").map_err(pg_error)?))
            })
            .collect::<Result<BTreeMap<(u64, u64), i64>, sqlx::Error>>()?;
        if !items.is_empty() {
            let counts = feed_counts(&items);
            let events = number_feed_events(items, &counts, &last)?;
            attach_feed(&mut recorded, tags, events.into_iter().map(|(_, user, event)| (user, event)));
        }
        self.store.publish_recorded(&recorded);
        Ok(recorded)
    }
}

/// The lock of a batch's calls: [`LOCK_CALLS`]'s rows, and what to make
/// of its answer.
///
/// What the batch makes of a new call depends on its deliveries alone, so
/// it is known before the lock: inserting that at once spares PostgreSQL a
/// second version of every new row (a ringing webhook's call is new).
struct Locking<'a> {
    /// The first delivery of each call, in lock order.
    firsts: BTreeMap<(u64, &'a str), &'a Delivery>,
    /// Each call as the batch leaves it if it is new, in lock order.
    rows: CallRows,
    now: i64,
}

impl<'a> Locking<'a> {
    fn of(deliveries: &'a [Delivery], now: i64) -> Result<Self, sqlx::Error> {
        let mut firsts: BTreeMap<(u64, &str), &Delivery> = BTreeMap::new();
        for delivery in deliveries {
            firsts.entry((delivery.account_id, delivery.call.call_id.as_str())).or_insert(delivery);
        }
        let mut if_new = created(&firsts, now);
        apply_deliveries(&mut if_new, deliveries, now)?;
        let mut rows = CallRows::default();
        for key in firsts.keys() {
            let locked = if_new.get(&(key.0, key.1.to_string()));
            rows.push(&locked.ok_or_else(|| sqlx::Error::Protocol("a delivered call has no row".into()))?.stored)?;
        }
        Ok(Self { firsts, rows, now })
    }

    fn params(&self) -> Params<'_> {
        let mut params = self.rows.params();
        params.push(&self.rows.caller);
        params
    }

    /// Each call as stored before the batch (or as created, version 0, if
    /// new), locked until commit; and the keys of the new ones, which the
    /// lock inserted as the batch leaves them.
    fn answer(self, returned: &[Row]) -> Result<(LockedCalls, HashSet<(u64, String)>), sqlx::Error> {
        let mut calls = created(&self.firsts, self.now);
        let mut inserted = HashSet::new();
        for row in returned {
            let stored = row_to_call(row)?;
            let key = (stored.account_id, stored.call.call_id.clone());
            if row.try_get::<_, bool>("inserted").map_err(pg_error)? {
                inserted.insert(key);
            } else {
                calls.insert(key, Locked { stored, changed: false });
            }
        }
        Ok((calls, inserted))
    }
}

/// Each call of `firsts` as its first delivery creates it.
fn created(firsts: &BTreeMap<(u64, &str), &Delivery>, now: i64) -> LockedCalls {
    firsts.values().map(|d| ((d.account_id, d.call.call_id.clone()), Locked::created(d, now))).collect()
}

/// Calls' rows, one array per column: the PBX side of each, and the caller
/// ID it starts with (only a new call's is written).
#[derive(Default)]
struct CallRows {
    account_id: Vec<i64>,
    call_id: Vec<String>,
    direction: Vec<&'static str>,
    external_number: Vec<String>,
    extension: Vec<String>,
    kommo_user_id: Vec<Option<i64>>,
    status: Vec<&'static str>,
    started_at: Vec<Option<i64>>,
    ringing_at: Vec<Option<i64>>,
    answered_at: Vec<Option<i64>>,
    ended_at: Vec<Option<i64>>,
    duration: Vec<Option<i64>>,
    outcome: Vec<Option<&'static str>>,
    recording_url: Vec<Option<String>>,
    recording_at: Vec<Option<i64>>,
    version: Vec<i64>,
    updated_at: Vec<i64>,
    created_at: Vec<i64>,
    legs: Vec<Option<String>>,
    caller: Vec<Option<String>>,
}

impl CallRows {
    fn push(&mut self, stored: &StoredCall) -> Result<(), sqlx::Error> {
        let call = &stored.call;
        let ending = call.ending.as_ref();
        let recording = call.recording.as_ref();
        self.account_id.push(sql_id(stored.account_id));
        self.call_id.push(call.call_id.clone());
        self.direction.push(call.direction.as_str());
        self.external_number.push(call.external_number.as_str().to_string());
        self.extension.push(call.extension.clone());
        self.kommo_user_id.push(stored.kommo_user_id.map(sql_id));
        self.status.push(status_str(call.status()));
        self.started_at.push(call.started_at());
        self.ringing_at.push(call.ringing_at);
        self.answered_at.push(call.answered_at);
        self.ended_at.push(ending.map(|e| e.at));
        self.duration.push(ending.map(|e| i64::from(e.duration)));
        self.outcome.push(ending.map(|e| e.outcome.as_str()));
        self.recording_url.push(recording.map(|r| r.url.clone()));
        self.recording_at.push(recording.map(|r| r.at));
        self.version.push(stored.version);
        self.updated_at.push(stored.updated_at);
        self.created_at.push(stored.created_at);
        self.legs.push(legs_json(&call.legs)?);
        self.caller.push(caller_json(&stored.caller)?);
        Ok(())
    }

    /// The PBX side, as `$1` to `$19`.
    fn params(&self) -> Params<'_> {
        vec![
            &self.account_id,
            &self.call_id,
            &self.direction,
            &self.external_number,
            &self.extension,
            &self.kommo_user_id,
            &self.status,
            &self.started_at,
            &self.ringing_at,
            &self.answered_at,
            &self.ended_at,
            &self.duration,
            &self.outcome,
            &self.recording_url,
            &self.recording_at,
            &self.version,
            &self.updated_at,
            &self.created_at,
            &self.legs,
        ]
    }
}

/// [`WRITE_BATCH`]'s arrays: the changed calls' PBX side, each user's
/// number of new events, the events, the jobs.
#[derive(Default)]
struct Batch {
    calls: CallRows,
    // feed offsets
    offset_account: Vec<i64>,
    offset_user: Vec<i64>,
    offset_count: Vec<i64>,
    // feed events
    event_account: Vec<i64>,
    event_user: Vec<i64>,
    event_from_last: Vec<i64>,
    event_call: Vec<String>,
    event_payload: Vec<String>,
    // jobs
    job_id: Vec<i64>,
    job_account: Vec<i64>,
    job_kind: Vec<&'static str>,
    job_call: Vec<String>,
    job_payload: Vec<String>,
}

impl Batch {
    fn of<'a>(
        calls: impl Iterator<Item = &'a StoredCall>,
        items: &[(u64, u64, CallView)],
        jobs: &[(u64, &Job)],
    ) -> Result<Self, sqlx::Error> {
        let mut batch = Self::default();
        for stored in calls {
            batch.calls.push(stored)?;
        }
        let counts = feed_counts(items);
        for (&(account_id, user_id), &count) in &counts {
            batch.offset_account.push(sql_id(account_id));
            batch.offset_user.push(sql_id(user_id));
            batch.offset_count.push(count);
        }
        // A user's events take its offsets in order, the newest the last.
        let mut left = counts.clone();
        for (account_id, user_id, view) in items {
            let remaining = left.get_mut(&(*account_id, *user_id)).map_or(0, |n| {
                *n -= 1;
                *n
            });
            batch.event_account.push(sql_id(*account_id));
            batch.event_user.push(sql_id(*user_id));
            batch.event_from_last.push(remaining);
            batch.event_call.push(view.call.call_id.clone());
            batch.event_payload.push(feed_payload(view)?);
        }
        for (account_id, job) in unique_jobs(jobs) {
            batch.job_id.push(new_job_id());
            batch.job_account.push(sql_id(account_id));
            batch.job_kind.push(job.kind());
            batch.job_call.push(job.call_id().to_string());
            batch.job_payload.push(job_payload(job)?);
        }
        Ok(batch)
    }

    /// Nothing changed (every delivery a retry): nothing to write.
    fn is_empty(&self) -> bool {
        self.calls.call_id.is_empty() && self.event_call.is_empty() && self.job_call.is_empty()
    }

    /// [`WRITE_BATCH`]'s parameters.
    fn params<'a>(&'a self, now: &'a i64, history_per_user: &'a i64) -> Params<'a> {
        let mut params = self.calls.params();
        params.extend::<Params<'a>>(vec![
            &self.offset_account,
            &self.offset_user,
            &self.offset_count,
            &self.event_account,
            &self.event_user,
            &self.event_from_last,
            &self.event_call,
            &self.event_payload,
            &self.job_id,
            &self.job_account,
            &self.job_kind,
            &self.job_call,
            &self.job_payload,
            now,
            history_per_user,
        ]);
        params
    }
}

#[cfg(test)]
mod tests {
    //! The writer against the rule it must keep: the same batches stored
    //! through it and through [`Store::record`] (the pool) leave the same
    //! calls, feed and jobs behind, and answer the same.
    use super::PostgresIntake;
    use crate::secrets::Secrets;
    use crate::store::{Delivery, Recorded, Store};
    use callcard_calls::extensions::ExtensionMap;
    use callcard_calls::{Call, CallEvent};
    use sqlx::{Connection, Row};

    const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
    const ACCOUNT: u64 = 4242;
    const USER: u64 = 7;

    /// A store on a fresh schema that keeps 3 feed events per user.
    async fn store_on_fresh_schema() -> (Store, String) {
        let schema = format!("writer_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(PG).await.expect("PostgreSQL at 127.0.0.1:5432");
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.unwrap();
        let url = format!("{PG}?options=-c%20search_path%3D{schema}");
        (Store::open(&url, 4, 3, Secrets::demo()).await.unwrap(), schema)
    }

    async fn drop_schema(schema: &str) {
        let mut admin = sqlx::PgConnection::connect(PG).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await.unwrap();
    }

    fn delivery(events: &[serde_json::Value]) -> Delivery {
        let events: Vec<CallEvent> = events.iter().map(|e| serde_json::from_value(e.clone()).unwrap()).collect();
        let extensions = ExtensionMap::from_entries([("7", "101".to_string())]).unwrap();
        let mut call = Call::from_event(&events[0]);
        for e in &events[1..] {
            call.apply(e);
        }
        let mapped_user = call.holder().and_then(|e| extensions.user_for(e));
        Delivery { account_id: ACCOUNT, call, mapped_user, extensions, caller: None }
    }

    fn event(kind: &str, call_id: &str, extension: &str, at: i64) -> serde_json::Value {
        let mut e = serde_json::json!({
            "event": kind, "call_id": call_id, "direction": "inbound",
            "external_number": "+18305703077", "extension": extension, "occurred_at": at,
        });
        match kind {
            "ended" => {
                e["duration"] = 42.into();
                e["outcome"] = "answered".into();
            }
            "recording_ready" => e["recording_url"] = format!("https://pbx.test/{call_id}.mp3").into(),
            _ => {}
        }
        e
    }

    /// Two batches: new calls, one call's whole life in one batch (more
    /// events for the user than the history keeps), an unmapped call; then
    /// a retried delivery, a recording for an ended call, a new call.
    fn batches() -> Vec<Vec<Delivery>> {
        let t = 1_760_000_000_000;
        vec![
            vec![
                delivery(&[event("ringing", "a", "101", t)]),
                delivery(&[event("ringing", "b", "101", t + 1)]),
                delivery(&[event("ringing", "c", "999", t + 2)]),
                delivery(&[event("answered", "a", "101", t + 3)]),
                delivery(&[event("ended", "a", "101", t + 50)]),
            ],
            vec![
                delivery(&[event("ended", "a", "101", t + 50)]),
                delivery(&[event("answered", "b", "101", t + 60), event("ended", "b", "101", t + 90)]),
                delivery(&[event("recording_ready", "a", "101", t + 100)]),
                delivery(&[event("ringing", "d", "101", t + 110)]),
            ],
        ]
    }

    /// What a recording answered, without the times it was stored at.
    fn answered(recorded: &[Recorded]) -> Vec<String> {
        recorded
            .iter()
            .map(|r| {
                format!(
                    "{} changed={} v{} feed={:?} others={} job={:?}",
                    r.call.call.call_id,
                    r.changed,
                    r.call.version,
                    r.feed.as_ref().map(|(user, e)| (*user, e.offset, e.call.status)),
                    r.others.len(),
                    r.job
                )
            })
            .collect()
    }

    /// What a store holds: calls (without their storing times), the user's
    /// kept feed events, the jobs.
    async fn holdings(store: &Store) -> Vec<String> {
        let mut held = Vec::new();
        for id in ["a", "b", "c", "d"] {
            if let Some(mut call) = store.call(ACCOUNT, id).await.unwrap() {
                (call.created_at, call.updated_at) = (0, 0);
                held.push(format!("{call:?}"));
            }
        }
        let rows = sqlx::query("SELECT feed_offset, call_id, payload FROM feed_events ORDER BY feed_offset")
            .fetch_all(store.pool())
            .await
            .unwrap();
        for row in rows {
            let (offset, call_id): (i64, String) = (row.get("feed_offset"), row.get("call_id"));
            let payload: String = row.get("payload");
            held.push(format!("event {offset} {call_id} {payload}"));
        }
        held.push(format!("latest offset {}", store.latest_offset(ACCOUNT, USER).await.unwrap()));
        let rows = sqlx::query("SELECT kind, call_id, state FROM jobs ORDER BY call_id, kind")
            .fetch_all(store.pool())
            .await
            .unwrap();
        for row in rows {
            let (kind, call_id, state): (String, String, String) = (row.get(0), row.get(1), row.get(2));
            held.push(format!("job {kind} {call_id} {state}"));
        }
        held
    }

    #[tokio::test]
    async fn the_writer_stores_what_the_store_rule_stores() {
        let (pooled, pooled_schema) = store_on_fresh_schema().await;
        let (written, written_schema) = store_on_fresh_schema().await;
        let mut intake = PostgresIntake::connect(&written, Default::default()).await.unwrap();
        for batch in batches() {
            let by_pool = pooled.record(&batch).await.unwrap();
            let by_writer = intake.record(&batch).await.unwrap();
            assert_eq!(answered(&by_writer), answered(&by_pool));
            assert_eq!(holdings(&written).await, holdings(&pooled).await);
        }
        let held = holdings(&written).await;
        // The history holds the user's newest 3 of 7 events.
        assert!(held.contains(&"latest offset 7".to_string()), "{held:#?}");
        assert_eq!(held.iter().filter(|h| h.starts_with("event ")).count(), 3, "{held:#?}");
        drop_schema(&pooled_schema).await;
        drop_schema(&written_schema).await;
    }
}
