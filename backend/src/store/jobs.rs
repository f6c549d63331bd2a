//! The job queue's table: enqueue (deduplicated), claim with a lease,
//! finish, retry, bury, release, and what an operator sees.
//!
//! **Claiming.** A job is claimable when it is `pending` and due, or
//! `running` with an expired lease (its worker died: crash, `kill -9`,
//! network partition). Claiming marks it `running`, counts the attempt and
//! leases it to one worker until `locked_until`. Jobs of one call never run
//! at the same time (whatever their kind): the logging job and the call
//! result job write the same Kommo note, so a job whose call has another
//! live running job is skipped.
//!
//! - SQLite has one writer at a time, so one `UPDATE … WHERE id = (SELECT …
//!   LIMIT 1) RETURNING …` is atomic.
//! - PostgreSQL: in one transaction, `SELECT … FOR UPDATE SKIP LOCKED` picks
//!   a due job no other claimer holds, a transaction-scoped advisory lock on
//!   the job's call serialises the claimers of that call, and the final
//!   conditional UPDATE re-checks (in a fresh snapshot) that no job of the
//!   call started meanwhile.
//!
//! Every state change after the claim is conditional on `locked_by` being
//! the worker: a worker whose lease expired and whose job was claimed again
//! cannot finish or fail the new run.
//!
//! **Dedup.** A unique partial index allows one `pending` job per (account,
//! kind, call). Enqueueing while one is pending is a no-op; while one is
//! running it inserts a pending one, so the call is synced once more after
//! the running one (whose data may be stale). When a running job goes back
//! to pending (retry, release) and a pending twin exists, the twin is
//! dropped: the job that goes back covers it.

use super::{now_ms, rust_id, sql_id, Dialect, Store};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::time::Duration;

/// Something to do in Kommo for one call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// The call ended: log it in Kommo (once).
    LogCall { call_id: String },
    /// Late data (recording, corrected end, the manager's note): bring the
    /// call note up to date (logging it first if it is not yet).
    UpdateCallLog { call_id: String },
    /// The manager saved a call result (`crate::sync::results`).
    ApplyCallResult { call_id: String },
    /// Build the account's caller index: subscribe its webhooks, then read
    /// every lead, customer, contact and company page by page
    /// (`crate::sync::phonebook`).
    SyncPhonebook,
    /// Read what changed in Kommo since the last reconciliation into the
    /// caller index (a missed webhook heals).
    ReconcilePhonebook,
    /// Re-read one lead's or customer's links to contacts and companies
    /// (Kommo's webhooks do not carry them). `call_id` is
    /// `phonebook:{kind}:{id}`, so one pending refresh per record.
    RefreshDealLinks { call_id: String, deal: callcard_calls::EntityRef },
}

/// The `call_id` column of the account-wide caller-index jobs. Not a call:
/// the column is the queue's key, so at most one of them is pending per
/// account and the jobs sharing it never run at the same time (a
/// reconciliation never overlaps the first sync).
pub const PHONEBOOK_JOB_KEY: &str = "phonebook";

impl Job {
    /// The `kind` column, as in the JSON payload.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LogCall { .. } => "log_call",
            Self::UpdateCallLog { .. } => "update_call_log",
            Self::ApplyCallResult { .. } => "apply_call_result",
            Self::SyncPhonebook => "sync_phonebook",
            Self::ReconcilePhonebook => "reconcile_phonebook",
            Self::RefreshDealLinks { .. } => "refresh_deal_links",
        }
    }

    /// The queue's key: the call, or a synthetic key for the caller index's
    /// jobs ([`PHONEBOOK_JOB_KEY`], `phonebook:{kind}:{id}`).
    pub fn call_id(&self) -> &str {
        match self {
            Self::LogCall { call_id }
            | Self::UpdateCallLog { call_id }
            | Self::ApplyCallResult { call_id }
            | Self::RefreshDealLinks { call_id, .. } => call_id,
            Self::SyncPhonebook | Self::ReconcilePhonebook => PHONEBOOK_JOB_KEY,
        }
    }

    /// The link refresh of `deal`.
    pub fn refresh_deal_links(deal: callcard_calls::EntityRef) -> Self {
        Self::RefreshDealLinks { call_id: format!("{PHONEBOOK_JOB_KEY}:{}:{}", deal.kind.api_path(), deal.id), deal }
    }
}

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    Done,
    Dead,
}

impl JobState {
    pub const ALL: [JobState; 4] = [Self::Pending, Self::Running, Self::Done, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One job as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct JobRecord {
    pub id: i64,
    pub account_id: u64,
    pub job: Job,
    pub state: JobState,
    /// Attempts started so far (including a running one).
    pub attempts: u32,
    /// Unix ms: not before.
    pub run_at: i64,
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const JOB_COLUMNS: &str =
    "id, account_id, kind, call_id, payload, state, attempts, run_at, locked_by, locked_until, last_error, created_at, updated_at";

/// The longest error text kept per job.
const ERROR_MAX_CHARS: usize = 2000;

/// One pending job per (account, kind, call) is all the queue keeps, so a
/// statement must not name one twice: `jobs` without repeats, in order.
pub(crate) fn unique_jobs<'a>(jobs: &[(u64, &'a Job)]) -> Vec<(u64, &'a Job)> {
    let mut unique: Vec<(u64, &Job)> = Vec::with_capacity(jobs.len());
    for &(account_id, job) in jobs {
        if !unique.iter().any(|&(a, j)| a == account_id && j.kind() == job.kind() && j.call_id() == job.call_id()) {
            unique.push((account_id, job));
        }
    }
    unique
}

/// A job's stored form (JSON).
pub(crate) fn job_payload(job: &Job) -> Result<String, sqlx::Error> {
    serde_json::to_string(job).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

pub(crate) fn new_job_id() -> i64 {
    // 63 random bits: positive, unique in practice, and no shared counter.
    (rand::random::<u64>() >> 1) as i64
}

impl Store {
    /// Enqueues inside the caller's transaction (intake: the job commits
    /// with the event, so no ended call is ever missed). Returns whether a
    /// job was added (false: one is already pending).
    pub(crate) async fn enqueue_in_tx(
        &self,
        conn: &mut AnyConnection,
        account_id: u64,
        job: &Job,
        run_at: i64,
    ) -> Result<bool, sqlx::Error> {
        Ok(self.enqueue_all_in_tx(conn, &[(account_id, job)], run_at).await? == 1)
    }

    /// [`enqueue_in_tx`](Self::enqueue_in_tx) for many jobs in one statement;
    /// answers how many were added.
    pub(crate) async fn enqueue_all_in_tx(
        &self,
        conn: &mut AnyConnection,
        jobs: &[(u64, &Job)],
        run_at: i64,
    ) -> Result<u64, sqlx::Error> {
        let unique = unique_jobs(jobs);
        if unique.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let sql = format!(
            "INSERT INTO jobs (id, account_id, kind, call_id, payload, run_at, created_at, updated_at, state, attempts)
             VALUES {}
             ON CONFLICT (account_id, kind, call_id) WHERE state = 'pending' DO NOTHING",
            self.dialect().value_rows(unique.len(), 8, ", 'pending', 0")
        );
        let mut query = sqlx::query(&sql);
        for (account_id, job) in unique {
            let payload = job_payload(job)?;
            query = query
                .bind(new_job_id())
                .bind(sql_id(account_id))
                .bind(job.kind())
                .bind(job.call_id().to_string())
                .bind(payload)
                .bind(run_at)
                .bind(now)
                .bind(now);
        }
        Ok(query.execute(&mut *conn).await?.rows_affected())
    }

    /// Enqueues a job due at `run_at` (Unix ms); see [`Store::enqueue_in_tx`].
    pub async fn enqueue_job(&self, account_id: u64, job: &Job, run_at: i64) -> Result<bool, sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        self.enqueue_in_tx(&mut conn, account_id, job, run_at).await
    }

    /// Claims the next due job for `worker` with a lease of `lease`.
    pub async fn claim_job(&self, worker: &str, lease: Duration) -> Result<Option<JobRecord>, sqlx::Error> {
        let now = now_ms();
        let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let claimable = "((j.state = 'pending' AND j.run_at <= $1) OR (j.state = 'running' AND j.locked_until < $1))
             AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.account_id = j.account_id AND r.call_id = j.call_id
                             AND r.id <> j.id AND r.state = 'running' AND r.locked_until >= $1)";
        match self.dialect() {
            Dialect::Sqlite => {
                let row = sqlx::query(&format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $2, locked_until = $3,
                                     updated_at = $1
                     WHERE id = (SELECT j.id FROM jobs j WHERE {claimable} ORDER BY j.run_at, j.id LIMIT 1)
                     RETURNING {JOB_COLUMNS}"
                ))
                .bind(now)
                .bind(worker.to_string())
                .bind(until)
                .fetch_optional(self.pool())
                .await?;
                row.as_ref().map(row_to_job).transpose()
            }
            Dialect::Postgres => {
                let mut tx = self.pool().begin().await?;
                let candidate = sqlx::query(&format!(
                    "SELECT j.id, j.account_id, j.call_id FROM jobs j WHERE {claimable}
                     ORDER BY j.run_at, j.id LIMIT 1 FOR UPDATE SKIP LOCKED"
                ))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(candidate) = candidate else {
                    tx.commit().await?;
                    return Ok(None);
                };
                let id: i64 = candidate.try_get("id")?;
                let call_key = format!(
                    "{}:{}",
                    candidate.try_get::<i64, _>("account_id")?,
                    candidate.try_get::<String, _>("call_id")?
                );
                // Held until commit: claimers of the same call take turns, and
                // each re-checks below after the previous one committed.
                sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS locked")
                    .bind(call_key)
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query(&format!(
                    "UPDATE jobs j SET state = 'running', attempts = attempts + 1, locked_by = $2, locked_until = $3,
                                       updated_at = $1
                     WHERE j.id = $4 AND {claimable}
                     RETURNING {}",
                    JOB_COLUMNS.split(", ").map(|c| format!("j.{c}")).collect::<Vec<_>>().join(", ")
                ))
                .bind(now)
                .bind(worker.to_string())
                .bind(until)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                tx.commit().await?;
                row.as_ref().map(row_to_job).transpose()
            }
        }
    }

    /// Marks the job done (if `worker` still holds it).
    pub async fn finish_job(&self, id: i64, worker: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, last_error = NULL, updated_at = $1
             WHERE id = $2 AND state = 'running' AND locked_by = $3",
        )
        .bind(now_ms())
        .bind(id)
        .bind(worker.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends a running job's lease to `lease` from now (while its worker
    /// works on it). False if `worker` no longer holds the job.
    pub async fn renew_job_lease(&self, id: i64, worker: &str, lease: Duration) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let done =
            sqlx::query("UPDATE jobs SET locked_until = $1 WHERE id = $2 AND state = 'running' AND locked_by = $3")
                .bind(now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2))
                .bind(id)
                .bind(worker.to_string())
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Parks the job as dead (if `worker` still holds it).
    pub async fn bury_job(&self, id: i64, worker: &str, error: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'dead', locked_by = NULL, locked_until = NULL, last_error = $1, updated_at = $2
             WHERE id = $3 AND state = 'running' AND locked_by = $4",
        )
        .bind(truncate(error))
        .bind(now_ms())
        .bind(id)
        .bind(worker.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts a running job back to pending, due at `run_at`: a retry
    /// (`count_attempt`), or a release that does not count (shutdown, an
    /// account waiting for re-authorization). Drops a pending twin (module
    /// docs). False if `worker` no longer holds the job.
    pub async fn requeue_job(
        &self,
        id: i64,
        worker: &str,
        run_at: i64,
        error: Option<&str>,
        count_attempt: bool,
    ) -> Result<bool, sqlx::Error> {
        // An enqueue racing between the DELETE and the UPDATE can insert a new
        // twin (PostgreSQL): the UPDATE then fails on the unique index, and
        // the next round deletes that twin too.
        let mut last_error = None;
        for _ in 0..3 {
            match self.requeue_once(id, worker, run_at, error, count_attempt).await {
                Ok(done) => return Ok(done),
                Err(e) if is_unique_violation(&e) => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or(sqlx::Error::RowNotFound))
    }

    async fn requeue_once(
        &self,
        id: i64,
        worker: &str,
        run_at: i64,
        error: Option<&str>,
        count_attempt: bool,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM jobs WHERE state = 'pending' AND id <> $1
               AND (account_id, kind, call_id) IN (SELECT account_id, kind, call_id FROM jobs WHERE id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "UPDATE jobs SET state = 'pending', run_at = $1, locked_by = NULL, locked_until = NULL,
                             last_error = COALESCE($2, last_error), attempts = attempts - $3, updated_at = $4
             WHERE id = $5 AND state = 'running' AND locked_by = $6",
        )
        .bind(run_at)
        .bind(error.map(truncate))
        .bind(i64::from(!count_attempt))
        .bind(now_ms())
        .bind(id)
        .bind(worker.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            tx.commit().await?;
            Ok(true)
        } else {
            // Not ours any more: leave the twin alone.
            tx.rollback().await?;
            Ok(false)
        }
    }

    /// An operator's retry of a dead job: pending again, attempts from zero,
    /// due now. A pending twin is dropped. `None`: no such job; `Some(false)`:
    /// the job is not dead.
    pub async fn revive_job(&self, id: i64) -> Result<Option<(bool, JobRecord)>, sqlx::Error> {
        let Some(job) = self.job(id).await? else { return Ok(None) };
        if job.state != JobState::Dead {
            return Ok(Some((false, job)));
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM jobs WHERE state = 'pending' AND account_id = $1 AND kind = $2 AND call_id = $3")
            .bind(sql_id(job.account_id))
            .bind(job.job.kind())
            .bind(job.job.call_id().to_string())
            .execute(&mut *tx)
            .await?;
        let now = now_ms();
        let row = sqlx::query(&format!(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_at = $1, updated_at = $1
             WHERE id = $2 AND state = 'dead' RETURNING {JOB_COLUMNS}"
        ))
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match row {
            Some(row) => Ok(Some((true, row_to_job(&row)?))),
            None => Ok(self.job(id).await?.map(|j| (false, j))),
        }
    }

    /// Makes the account's waiting jobs due now (after a re-installation).
    pub async fn wake_account_jobs(&self, account_id: u64) -> Result<u64, sqlx::Error> {
        let now = now_ms();
        let done =
            sqlx::query("UPDATE jobs SET run_at = $1 WHERE account_id = $2 AND state = 'pending' AND run_at > $1")
                .bind(now)
                .bind(sql_id(account_id))
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }

    pub async fn job(&self, id: i64) -> Result<Option<JobRecord>, sqlx::Error> {
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(row_to_job).transpose()
    }

    /// Jobs, newest change first, optionally of one state and/or one call.
    pub async fn jobs(
        &self,
        state: Option<JobState>,
        call: Option<(u64, &str)>,
        limit: i64,
    ) -> Result<Vec<JobRecord>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE ($1 = '' OR state = $1) AND ($2 = 0 OR (account_id = $2 AND call_id = $3))
             ORDER BY updated_at DESC, id LIMIT $4"
        ))
        .bind(state.map_or("", JobState::as_str))
        .bind(call.map_or(0, |(a, _)| sql_id(a)))
        .bind(call.map_or(String::new(), |(_, c)| c.to_string()))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_job).collect()
    }

    /// How many jobs are in each state.
    pub async fn job_counts(&self) -> Result<Vec<(JobState, i64)>, sqlx::Error> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetch_all(self.pool()).await?;
        let mut out: Vec<(JobState, i64)> = JobState::ALL.into_iter().map(|s| (s, 0)).collect();
        for row in rows {
            let state: String = row.try_get("state")?;
            if let Some(slot) = out.iter_mut().find(|(s, _)| s.as_str() == state) {
                slot.1 = row.try_get("n")?;
            }
        }
        Ok(out)
    }

    /// Deletes finished jobs older than `max_age` (dead ones stay for the operator).
    pub async fn prune_jobs(&self, max_age: Duration) -> Result<(), sqlx::Error> {
        let cutoff = now_ms() - i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX / 2);
        sqlx::query("DELETE FROM jobs WHERE state = 'done' AND updated_at < $1")
            .bind(cutoff)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

fn truncate(error: &str) -> String {
    error.chars().take(ERROR_MAX_CHARS).collect()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn row_to_job(row: &AnyRow) -> Result<JobRecord, sqlx::Error> {
    let payload: String = row.try_get("payload")?;
    let state: String = row.try_get("state")?;
    Ok(JobRecord {
        id: row.try_get("id")?,
        account_id: rust_id(row.try_get("account_id")?),
        job: serde_json::from_str(&payload)
            .map_err(|e| sqlx::Error::Decode(format!("jobs.payload {payload:?}: {e}").into()))?,
        state: JobState::parse(&state)
            .ok_or_else(|| sqlx::Error::Decode(format!("jobs.state holds an unknown value {state:?}").into()))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
        run_at: row.try_get("run_at")?,
        locked_by: row.try_get("locked_by")?,
        locked_until: row.try_get("locked_until")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_serialise_with_their_kind() {
        let job = Job::UpdateCallLog { call_id: "c1".into() };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "update_call_log", "call_id": "c1"}));
        assert_eq!(json["kind"], job.kind());
        assert_eq!(serde_json::from_value::<Job>(json).unwrap(), job);
    }
}
