//! Intake's PostgreSQL writer: each group-commit writer keeps a PostgreSQL
//! connection of its own and speaks PostgreSQL on it, not `sqlx::Any`.
//!
//! Through the pool and `sqlx::Any` ([`Store::record_on`]) a batch of
//! ringing calls took seven round trips (BEGIN, the calls' lock, their
//! write, the feed offsets, the feed events, the trim, COMMIT), each
//! statement's text changing with the batch size (multi-row `VALUES`), so
//! PostgreSQL parsed and planned it anew every time, and each round trip
//! waited on two busy processes (about 0.5 ms apiece under the ingest
//! benchmark). Here a batch is at most two round trips of statements whose
//! text never changes, prepared once per connection. With the lock:
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
//! Most batches skip the lock: the writer predicts what each call holds
//! ([`Known`]): a call rung in this batch is new, and a live call
//! whose caller is known is as this writer last stored it (calls stay with
//! their user's writer). When it can predict every call of a batch and
//! every call changes, it merges from the prediction and stores the batch
//! in **one** round trip (`BEGIN`, [`STORE_PREDICTED`], `COMMIT`,
//! pipelined). That statement checks the prediction as it writes: a new
//! call must not exist yet, a known one must still be the row version
//! (`xmin`) the writer left. If any is not, the statement fails, the
//! transaction rolls back and the batch is stored the locked way above, so
//! a wrong guess costs a round trip, never a wrong row.
//!
//! Row sets travel as one array per column (`UNNEST`), so the statements
//! take the same parameters for one call as for 256. The connection is
//! tokio-postgres's, because it pipelines and sqlx does not. What is stored
//! is what [`Store::record`] stores: the same merge, feed numbering, trim
//! and job rows (this module's test holds the two side by side).

use super::calls::{
    apply_deliveries, attach_feed, caller_json, feed_items, legs_json, row_to_call, status_str, Columns, FeedTag,
    Locked, LockedCalls, COLUMNS, WRITE_PBX_SIDE,
};
use super::feed_log::{feed_counts, feed_payload, number_feed_events};
use super::jobs::{job_payload, new_job_id, unique_jobs, Job};
use super::{now_ms, rust_id, sql_id, Delivery, Recorded, Store, StoredCall};
use crate::metrics::{IntakeStage, Metrics};
use callcard_calls::feed::{CallView, CallerId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, LazyLock};
use std::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

/// Inserts the calls of `$1` to `$20` (one array per column, the caller
/// last) in the order of the arrays, as new: the start of [`LOCK_CALLS`]
/// and of [`STORE_PREDICTED`].
const INSERT_CALLS: &str =
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
         ORDER BY i";

/// Takes the row lock of each call of the batch that exists (a no-op
/// update) and inserts each that does not, as the batch leaves it, in the
/// order of the arrays; answers every call as stored before the batch, or
/// as inserted, and which it was. (`xmax = 0` tells an inserted row from a
/// locked one: the lock sets it. Long-standing PostgreSQL behaviour, not a
/// documented promise; this module's test fails if it ever changes.)
static LOCK_CALLS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{INSERT_CALLS}
         ON CONFLICT (account_id, call_id) DO UPDATE SET version = calls.version
         RETURNING {COLUMNS}, (xmax = 0) AS inserted, xmin::text AS row_version"
    )
});

/// Everything a batch writes once its calls are merged, in one statement:
/// the changed calls' PBX side, then [`feed_and_jobs`].
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
         {}
         SELECT account_id, user_id, last_offset FROM offsets",
        feed_and_jobs(20)
    )
});

/// A batch whose calls were predicted ([`Known`]), in one statement:
/// inserts the new calls as the batch leaves them (`$1`–`$20`, as
/// [`LOCK_CALLS`]), writes the PBX side of the known ones where their row
/// is still the version the writer left (`$21`–`$39`, the versions in
/// `$40`), then what [`WRITE_BATCH`] writes after the calls (`$41`–`$55`).
/// A new call that exists (another writer stored it, a retry) fails the
/// insert with a unique violation; a plain insert, because `ON CONFLICT`
/// would look each key up once more before inserting it. `checked` fails
/// the statement unless all `$56` calls were written, which catches a
/// known call changed since (not updated). Either failure rolls the
/// transaction back. `checked`'s is a cast of a sentence, so that
/// PostgreSQL's log says what happened; `checked` is materialised and its column answered, or the
/// planner would inline it and never evaluate the cast. The answer is one row per user whose feed grew (a row of
/// nulls if none) with the transaction's row version.
static STORE_PREDICTED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH inserted AS (
             {INSERT_CALLS}
             RETURNING xmin
         ),
         updated AS (
             UPDATE calls c SET kommo_user_id = u.kommo_user_id, status = u.status, started_at = u.started_at,
                 ringing_at = u.ringing_at, answered_at = u.answered_at, ended_at = u.ended_at,
                 duration = u.duration, outcome = u.outcome, recording_url = u.recording_url,
                 recording_at = u.recording_at, extension = u.extension, legs = u.legs, version = u.version,
                 updated_at = u.updated_at
             FROM UNNEST($21::bigint[], $22::text[], $23::text[], $24::text[], $25::text[], $26::bigint[],
                         $27::text[], $28::bigint[], $29::bigint[], $30::bigint[], $31::bigint[], $32::bigint[],
                         $33::text[], $34::text[], $35::bigint[], $36::bigint[], $37::bigint[], $38::bigint[],
                         $39::text[], $40::text[])
                  AS u(account_id, call_id, direction, external_number, extension, kommo_user_id, status, started_at,
                       ringing_at, answered_at, ended_at, duration, outcome, recording_url, recording_at, version,
                       updated_at, created_at, legs, row_version)
             WHERE c.account_id = u.account_id AND c.call_id = u.call_id AND c.xmin = u.row_version::xid
             RETURNING c.xmin
         ),
         checked AS MATERIALIZED (
             SELECT (CASE WHEN (SELECT count(*) FROM inserted) + (SELECT count(*) FROM updated) = $56 THEN '0'
                          ELSE 'callcard intake: a call of the batch is not as predicted; storing it with its lock'
                     END)::int AS failed,
                    (SELECT v::text FROM (SELECT xmin AS v FROM inserted UNION ALL SELECT xmin FROM updated) w
                     LIMIT 1) AS row_version
         ),
         {}
         SELECT o.account_id, o.user_id, o.last_offset, k.row_version, k.failed
         FROM checked k LEFT JOIN offsets o ON true",
        feed_and_jobs(41)
    )
});

/// The CTEs that follow the calls in [`WRITE_BATCH`] and
/// [`STORE_PREDICTED`], their parameters numbered from `first`: advance the
/// users' feed offsets, append the numbered events, trim the histories,
/// enqueue the jobs.
///
/// All CTEs see the snapshot from before the statement, so the trim cannot
/// see the events appended beside it: events that it would delete at once
/// (more than the history keeps for one user in one batch) are not
/// inserted at all. `from_last` is an event's distance from its user's last
/// offset in this batch (0 for the newest). The trim deletes the window the
/// batch's offsets pushed out of the history ([`super::feed_log`] says why
/// it is bounded below); its bounds are materialised first, or the planner
/// keeps only the upper one as the index condition and filters the rest.
fn feed_and_jobs(first: usize) -> String {
    let p = |n: usize| format!("${}", first + n);
    let (offsets, events, jobs, now, history) =
        ([p(0), p(1), p(2)], [p(3), p(4), p(5), p(6), p(7)], [p(8), p(9), p(10), p(11), p(12)], p(13), p(14));
    let [oa, ou, on] = &offsets;
    let [ea, eu, ef, ec, ep] = &events;
    let [ji, ja, jk, jc, jp] = &jobs;
    format!(
        "offsets AS (
             INSERT INTO feed_offsets (account_id, user_id, last_offset)
             SELECT * FROM UNNEST({oa}::bigint[], {ou}::bigint[], {on}::bigint[])
             ON CONFLICT (account_id, user_id) DO UPDATE SET last_offset = feed_offsets.last_offset + excluded.last_offset
             RETURNING account_id, user_id, last_offset
         ),
         appended AS (
             INSERT INTO feed_events (account_id, user_id, feed_offset, call_id, payload, created_at)
             SELECT e.account_id, e.user_id, o.last_offset - e.from_last, e.call_id, e.payload, {now}
             FROM UNNEST({ea}::bigint[], {eu}::bigint[], {ef}::bigint[], {ec}::text[], {ep}::text[])
                  AS e(account_id, user_id, from_last, call_id, payload)
             JOIN offsets o ON o.account_id = e.account_id AND o.user_id = e.user_id
             WHERE e.from_last < {history}
         ),
         trimmed_windows AS MATERIALIZED (
             SELECT o.account_id, o.user_id, o.last_offset - c.n - {history} AS after, o.last_offset - {history} AS upto
             FROM offsets o JOIN UNNEST({oa}::bigint[], {ou}::bigint[], {on}::bigint[]) AS c(account_id, user_id, n)
                  ON c.account_id = o.account_id AND c.user_id = o.user_id
         ),
         trimmed AS (
             DELETE FROM feed_events f USING trimmed_windows w
             WHERE f.account_id = w.account_id AND f.user_id = w.user_id
               AND f.feed_offset > w.after AND f.feed_offset <= w.upto
         ),
         enqueued AS (
             INSERT INTO jobs (id, account_id, kind, call_id, payload, run_at, created_at, updated_at, state, attempts)
             SELECT id, account_id, kind, call_id, payload, {now}, {now}, {now}, 'pending', 0
             FROM UNNEST({ji}::bigint[], {ja}::bigint[], {jk}::text[], {jc}::text[], {jp}::text[])
                  AS j(id, account_id, kind, call_id, payload)
             ON CONFLICT (account_id, kind, call_id) WHERE state = 'pending' DO NOTHING
         )"
    )
}

/// One group-commit writer's connection (`crate::group_commit`), with its
/// statements prepared on it, and what it last stored of the calls it can
/// predict.
pub(crate) struct PostgresIntake {
    client: Client,
    lock: Statement,
    write: Statement,
    predicted: Statement,
    /// What this writer knows of the calls it stored lately; at most
    /// [`REMEMBERED_CALLS`], forgotten with the connection.
    remembered: HashMap<(u64, String), Known>,
    store: Store,
    metrics: Arc<Metrics>,
}

/// How many calls a writer remembers; past that it forgets them all (the
/// next batch of each is then stored with its lock, which remembers it
/// again). A few hours of one busy user's calls are far fewer.
const REMEMBERED_CALLS: usize = 4096;

/// A call as a writer stored it: the row, and its version (`xmin`, the
/// transaction that wrote it; any later write of the row changes it).
struct Remembered {
    stored: StoredCall,
    row_version: String,
}

/// What a writer knows of a call it stored.
enum Known {
    /// Live, its caller known: its next batch finds it as stored here.
    Stored(Box<Remembered>),
    /// It exists, and something else writes it next (caller ID looks up a
    /// pending caller, an ended call is logged in Kommo, or a prediction
    /// of it was wrong): its next batch takes the lock.
    Locked,
}

/// A batch merged from what its writer predicted of its calls.
struct Predicted {
    calls: LockedCalls,
    /// The row version of each call predicted as stored ([`Known::Stored`]);
    /// the others are predicted new.
    row_versions: HashMap<(u64, String), String>,
    recorded: Vec<Recorded>,
}

/// The CRM jobs the recorded deliveries enqueue, with their accounts.
fn jobs_of(recorded: &[Recorded]) -> Vec<(u64, &Job)> {
    recorded.iter().filter_map(|r| r.job.as_ref().map(|j| (r.call.account_id, j))).collect()
}

/// A statement's parameters, as tokio-postgres takes them.
type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

fn pg_error(e: tokio_postgres::Error) -> sqlx::Error {
    sqlx::Error::Protocol(format!("postgres: {e}"))
}

/// Whether `error` is [`STORE_PREDICTED`] refusing a wrong prediction: a
/// call predicted new that exists, or `checked`'s refusal.
fn is_wrong_prediction(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        (*db.code() == SqlState::UNIQUE_VIOLATION && db.table() == Some("calls"))
            || db.message().contains("is not as predicted")
    })
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
        let predicted = client.prepare(&STORE_PREDICTED).await.map_err(pg_error)?;
        Ok(Self { client, lock, write, predicted, remembered: HashMap::new(), store: store.clone(), metrics })
    }

    /// Stores the deliveries in one transaction, durably, then publishes
    /// their feed events; see [`Store::record`]. In one round trip if every
    /// call of the batch can be predicted, else (or if a prediction was
    /// wrong) in two, with the calls' lock.
    pub(crate) async fn record(&mut self, deliveries: &[Delivery]) -> Result<Vec<Recorded>, sqlx::Error> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let started = Instant::now();
        if let Some(predicted) = self.predict(deliveries, now)? {
            self.metrics.intake_stage(IntakeStage::Merge, started.elapsed());
            if let Some(recorded) = self.store_predicted(predicted, now).await? {
                self.metrics.intake_predicted.inc();
                return Ok(recorded);
            }
            self.metrics.intake_mispredicted.inc();
            for delivery in deliveries {
                self.remembered.insert((delivery.account_id, delivery.call.call_id.clone()), Known::Locked);
            }
        }
        self.record_locked(deliveries, now).await
    }

    /// Each call of the batch as this writer expects it, merged with the
    /// deliveries; `None` if some call cannot be predicted, or some delivery
    /// changes nothing (a retry: answered from the locked row instead).
    fn predict(&self, deliveries: &[Delivery], now: i64) -> Result<Option<Predicted>, sqlx::Error> {
        let mut calls = LockedCalls::new();
        let mut row_versions = HashMap::new();
        for delivery in deliveries {
            let key = (delivery.account_id, delivery.call.call_id.clone());
            if calls.contains_key(&key) {
                continue;
            }
            let locked = match self.remembered.get(&key) {
                Some(Known::Stored(remembered)) => {
                    row_versions.insert(key.clone(), remembered.row_version.clone());
                    Locked { stored: remembered.stored.clone(), changed: false }
                }
                Some(Known::Locked) => return Ok(None),
                // Not stored lately and rung now: new.
                None if delivery.call.ringing_at.is_some() => Locked::created(delivery, now),
                None => return Ok(None),
            };
            calls.insert(key, locked);
        }
        let recorded = apply_deliveries(&mut calls, deliveries, now)?;
        if recorded.iter().any(|r| !r.changed) {
            return Ok(None);
        }
        Ok(Some(Predicted { calls, row_versions, recorded }))
    }

    /// Stores a predicted batch in one round trip; `None` (nothing stored)
    /// if PostgreSQL refused a prediction.
    async fn store_predicted(
        &mut self,
        Predicted { calls, row_versions, mut recorded }: Predicted,
        now: i64,
    ) -> Result<Option<Vec<Recorded>>, sqlx::Error> {
        let started = Instant::now();
        let (tags, items) = feed_items(&mut recorded);
        let jobs = jobs_of(&recorded);
        let mut inserted = CallRows::default();
        let mut versions: Vec<String> = Vec::new();
        let mut known = Vec::new();
        let mut keys: Vec<&(u64, String)> = calls.keys().collect();
        // New calls are inserted in (account, call id) order, as every batch locks.
        keys.sort();
        for key in keys {
            let stored = &calls[key].stored;
            match row_versions.get(key) {
                Some(row_version) => {
                    known.push(stored);
                    versions.push(row_version.clone());
                }
                None => inserted.push(stored)?,
            }
        }
        let batch = Batch::of(known.into_iter(), &items, &jobs)?;
        let expected = i64::try_from(calls.len()).unwrap_or(i64::MAX);
        let history = self.store.history_per_user;
        let merged = Instant::now();
        self.metrics.intake_stage(IntakeStage::Merge, merged - started);
        let mut params = inserted.params_with_caller();
        params.extend(batch.calls.params());
        params.push(&versions);
        params.extend(batch.feed_and_jobs_params(&now, &history));
        params.push(&expected);
        let (begun, rows, committed) = tokio::join!(
            self.client.batch_execute("BEGIN"),
            self.client.query(&self.predicted, &params),
            self.client.batch_execute("COMMIT")
        );
        drop(params);
        self.metrics.intake_stage(IntakeStage::WriteCommit, merged.elapsed());
        begun.map_err(pg_error)?;
        let rows = match rows {
            Ok(rows) => rows,
            // The transaction rolled back (COMMIT answered ROLLBACK).
            Err(e) if is_wrong_prediction(&e) => return Ok(None),
            Err(e) => return Err(pg_error(e)),
        };
        committed.map_err(pg_error)?;
        let row_version = rows
            .first()
            .and_then(|row| row.try_get::<_, Option<String>>("row_version").ok().flatten())
            .ok_or_else(|| sqlx::Error::Protocol("the predicted write answered no row version".into()))?;
        let offsets = rows.iter().filter(|row| row.try_get::<_, Option<i64>>("user_id").ok().flatten().is_some());
        self.finish(recorded, tags, items, offsets, &calls, &row_version).map(Some)
    }

    /// Stores the batch with its calls' lock: two round trips.
    ///
    /// `BEGIN` travels with the lock, and `COMMIT` with the write, each pair
    /// in one round trip (pipelined: the second is sent before the first is
    /// answered). A failed write makes PostgreSQL answer that `COMMIT` with
    /// a rollback; the error is the write's. `BEGIN` checks nothing and
    /// fails only with the connection, which fails the lock with it.
    async fn record_locked(&mut self, deliveries: &[Delivery], now: i64) -> Result<Vec<Recorded>, sqlx::Error> {
        let started = Instant::now();
        let locking = Locking::of(deliveries, now)?;
        let params = locking.params();
        let (begun, returned) =
            tokio::join!(self.client.batch_execute("BEGIN"), self.client.query(&self.lock, &params));
        drop(params);
        begun.map_err(pg_error)?;
        let returned = returned.map_err(pg_error)?;
        let row_version = match returned.first() {
            Some(row) => row.try_get::<_, String>("row_version").map_err(pg_error)?,
            None => return Err(sqlx::Error::Protocol("the lock answered no call".into())),
        };
        let (mut calls, inserted) = locking.answer(&returned)?;
        let locked = Instant::now();
        self.metrics.intake_stage(IntakeStage::Lock, locked - started);
        let mut recorded = apply_deliveries(&mut calls, deliveries, now)?;
        let (tags, items) = feed_items(&mut recorded);
        let jobs = jobs_of(&recorded);
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
            let mut params = batch.calls.params();
            params.extend(batch.feed_and_jobs_params(&now, &history));
            let (rows, committed) =
                tokio::join!(self.client.query(&self.write, &params), self.client.batch_execute("COMMIT"));
            let rows = rows.map_err(pg_error)?;
            committed.map_err(pg_error)?;
            rows
        };
        self.metrics.intake_stage(IntakeStage::WriteCommit, merged.elapsed());
        self.finish(recorded, tags, items, offsets.iter(), &calls, &row_version)
    }

    /// After the commit: numbers the feed events from the users' last
    /// offsets (`offsets`), publishes them, and remembers the calls as
    /// stored at `row_version`.
    fn finish<'r>(
        &mut self,
        mut recorded: Vec<Recorded>,
        tags: Vec<FeedTag>,
        items: Vec<(u64, u64, CallView)>,
        offsets: impl Iterator<Item = &'r Row>,
        calls: &LockedCalls,
        row_version: &str,
    ) -> Result<Vec<Recorded>, sqlx::Error> {
        let last = offsets
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
        self.remember(calls, row_version);
        Ok(recorded)
    }

    /// Remembers the calls this writer just stored: as stored, where its
    /// next batch can predict them (live, the caller known); else that they
    /// exist ([`Known::Locked`]).
    fn remember(&mut self, calls: &LockedCalls, row_version: &str) {
        if self.remembered.len() + calls.len() > REMEMBERED_CALLS {
            self.remembered.clear();
        }
        for (key, locked) in calls {
            let stored = &locked.stored;
            if stored.call.ending.is_none() && stored.caller != CallerId::Pending {
                let remembered = Remembered { stored: stored.clone(), row_version: row_version.to_string() };
                self.remembered.insert(key.clone(), Known::Stored(Box::new(remembered)));
            } else {
                self.remembered.insert(key.clone(), Known::Locked);
            }
        }
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
        self.rows.params_with_caller()
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

    /// The PBX side and the caller, as `$1` to `$20` ([`INSERT_CALLS`]).
    fn params_with_caller(&self) -> Params<'_> {
        let mut params = self.params();
        params.push(&self.caller);
        params
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

    /// The parameters of [`feed_and_jobs`], in order.
    fn feed_and_jobs_params<'a>(&'a self, now: &'a i64, history_per_user: &'a i64) -> Params<'a> {
        let mut params: Params<'a> = Vec::new();
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
    use crate::metrics::Metrics;
    use crate::secrets::Secrets;
    use crate::store::{CrmChange, Delivery, Recorded, Store};
    use callcard_calls::extensions::ExtensionMap;
    use callcard_calls::feed::CallerId;
    use callcard_calls::{Call, CallEvent, EntityKind, EntityRef};
    use sqlx::{Connection, Row};
    use std::sync::Arc;

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
        Delivery { account_id: ACCOUNT, call, mapped_user, extensions: extensions.into(), caller: None }
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
    fn batches() -> [Vec<Delivery>; 2] {
        let t = 1_760_000_000_000;
        [
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
        for id in ["a", "b", "c", "d", "e", "f"] {
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

    /// Stores `batch` through the pool and through the writer, and checks
    /// that both answered and now hold the same.
    async fn record_both(pooled: &Store, written: &Store, intake: &mut PostgresIntake, batch: &[Delivery]) {
        let by_pool = pooled.record(batch).await.unwrap();
        let by_writer = intake.record(batch).await.unwrap();
        assert_eq!(answered(&by_writer), answered(&by_pool));
        assert_eq!(holdings(written).await, holdings(pooled).await);
    }

    /// Which way the writer stored its batches so far: (in one round trip
    /// from predicted calls, predictions refused).
    fn paths(metrics: &Metrics) -> (u64, u64) {
        (metrics.intake_predicted.get(), metrics.intake_mispredicted.get())
    }

    /// A store written through the pool, one written through a writer (with
    /// its metrics), and their schemas.
    async fn pooled_and_written() -> (Store, Store, PostgresIntake, Arc<Metrics>, [String; 2]) {
        let (pooled, pooled_schema) = store_on_fresh_schema().await;
        let (written, written_schema) = store_on_fresh_schema().await;
        let metrics = Arc::new(Metrics::default());
        let intake = PostgresIntake::connect(&written, metrics.clone()).await.unwrap();
        (pooled, written, intake, metrics, [pooled_schema, written_schema])
    }

    #[tokio::test]
    async fn the_writer_stores_what_the_store_rule_stores() {
        let (pooled, written, mut intake, metrics, schemas) = pooled_and_written().await;
        let [first, second] = batches();
        // Calls rung in the batch: predicted new, one round trip.
        record_both(&pooled, &written, &mut intake, &first).await;
        assert_eq!(paths(&metrics), (1, 0));
        // An ended call (not predicted) and a retry: with the lock.
        record_both(&pooled, &written, &mut intake, &second).await;
        assert_eq!(paths(&metrics), (1, 0));
        let held = holdings(&written).await;
        // The history holds the user's newest 3 of 7 events.
        assert!(held.contains(&"latest offset 7".to_string()), "{held:#?}");
        assert_eq!(held.iter().filter(|h| h.starts_with("event ")).count(), 3, "{held:#?}");
        for schema in &schemas {
            drop_schema(schema).await;
        }
    }

    #[tokio::test]
    async fn a_wrong_prediction_is_refused_and_the_batch_stored_with_the_lock() {
        let (pooled, written, mut intake, metrics, schemas) = pooled_and_written().await;
        let t = 1_760_000_000_000;
        let named = |name: &str| Some(CallerId::known(name, EntityRef::new(EntityKind::Contact, 5)));
        // A call whose caller is known: remembered by the writer.
        let ring = delivery(&[event("ringing", "e", "101", t)]).with_caller(named("Ann Lee"));
        record_both(&pooled, &written, &mut intake, std::slice::from_ref(&ring)).await;
        assert_eq!(paths(&metrics), (1, 0));
        // The same ringing again (a PBX retry) changes nothing: answered
        // from the locked row.
        record_both(&pooled, &written, &mut intake, &[ring]).await;
        assert_eq!(paths(&metrics), (1, 0));
        // Answered: the remembered call, predicted and updated in one trip.
        record_both(&pooled, &written, &mut intake, &[delivery(&[event("answered", "e", "101", t + 5)])]).await;
        assert_eq!(paths(&metrics), (2, 0));
        // A call another instance stored: its retried ringing is predicted
        // new, PostgreSQL refuses to insert it, the lock answers.
        let other = delivery(&[event("ringing", "f", "101", t + 6)]);
        for store in [&pooled, &written] {
            store.record(std::slice::from_ref(&other)).await.unwrap();
        }
        record_both(&pooled, &written, &mut intake, &[other]).await;
        assert_eq!(paths(&metrics), (2, 1));
        // Caller ID names the caller anew, through the pool: the row the
        // writer remembers is stale, and its feed event would show the old
        // name. PostgreSQL refuses it; the lock reads the new name.
        for store in [&pooled, &written] {
            let change = CrmChange { caller: named("Ann Lee-Smith"), ..CrmChange::default() };
            store.update_call_crm(ACCOUNT, "e", change).await.unwrap();
        }
        let ended = delivery(&[event("ended", "e", "101", t + 60)]);
        record_both(&pooled, &written, &mut intake, &[ended]).await;
        assert_eq!(paths(&metrics), (2, 2));
        let held = holdings(&written).await;
        let last_event = held.iter().rfind(|h| h.starts_with("event "));
        assert!(last_event.is_some_and(|e| e.contains("Ann Lee-Smith")), "{held:#?}");
        for schema in &schemas {
            drop_schema(schema).await;
        }
    }
}
