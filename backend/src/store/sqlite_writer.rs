//! Intake's SQLite writer: one plain SQLite connection, used from a thread
//! of its own ([`crate::group_commit`]).
//!
//! Everything else in the store goes through `sqlx::Any`. Intake's hot path
//! on SQLite does not, because there the driver costs more than the
//! database: sqlx runs each SQLite connection on a worker thread and hands
//! every statement, and every row it returns, across threads, and a batch's
//! multi-row statements change their text with the batch size, so they are
//! prepared anew each time. Measured under the ingest benchmark, that was
//! most of a commit's time. Here a whole batch crosses threads once, each
//! statement is prepared once and then reused, and work is one row at a time
//! in-process (microseconds per row).
//!
//! The rules are the store's: the same [`apply_deliveries`] decides what
//! changes, the same feed numbering and job rows are written, so
//! [`SqliteIntake::record`] stores exactly what [`Store::record`] would.
//! The transaction begins `IMMEDIATE` (the write lock first): it reads the
//! calls before writing them, and a deferred transaction that read could
//! not upgrade past a pool writer. Pool writers (the CRM side) and this one
//! wait for each other through `busy_timeout`.

use super::calls::{
    apply_deliveries, attach_feed, caller_json, feed_items, legs_json, row_to_call, status_str, Columns, Locked,
    LockedCalls, COLUMNS, WRITE_PBX_SIDE,
};
use super::feed_log::{feed_counts, feed_payload, number_feed_events, trimmed_by_append};
use super::jobs::{job_payload, new_job_id, unique_jobs};
use super::{now_ms, sql_id, Delivery, Recorded, Store, StoredCall};
use callcard_calls::feed::{CallView, FeedEvent};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The file behind a `sqlite:` URL, if it names one (`sqlite::memory:`
/// does not: a second connection would open a different database).
pub(crate) fn database_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

fn sqlite_error(e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::Protocol(format!("sqlite: {e}"))
}

/// Intake's own connection to the store's database file. Used from one
/// thread ([`crate::group_commit`]'s SQLite writer).
pub(crate) struct SqliteIntake {
    conn: rusqlite::Connection,
    history_per_user: i64,
    wal: PathBuf,
}

impl SqliteIntake {
    /// Opens the store's database file (already created and migrated by the
    /// pool).
    ///
    /// `synchronous = NORMAL`: a commit here writes the log but does not
    /// sync it; [`sync_log`] does, for every commit before it at once, on
    /// another thread while this one writes the next batch. Nothing is
    /// acknowledged before that sync.
    pub(crate) fn open(store: &Store, file: &Path) -> Result<Self, sqlx::Error> {
        let conn = rusqlite::Connection::open(file).map_err(sqlite_error)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite_error)?;
        conn.pragma_update(None, "busy_timeout", 10_000).map_err(sqlite_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sqlite_error)?;
        conn.set_prepared_statement_cache_capacity(16);
        let mut wal = file.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Self { conn, history_per_user: store.history_per_user, wal: PathBuf::from(wal) })
    }

    /// Stores the deliveries in one transaction (committed, not yet synced);
    /// see [`Store::record`] for what that means. Feed events are not
    /// published here: the caller does, once the commit is durable.
    pub(crate) fn record(&mut self, deliveries: &[Delivery]) -> Result<Vec<Recorded>, sqlx::Error> {
        record(&mut self.conn, deliveries, self.history_per_user)
    }

    /// Where the write-ahead log is, for [`sync_log`].
    pub(crate) fn log_file(&self) -> PathBuf {
        self.wal.clone()
    }
}

/// Makes every commit written to the log so far durable. A log that does
/// not exist holds nothing: SQLite removes it only after copying it into the
/// database, and syncing that, when its last connection closes.
pub(crate) fn sync_log(wal: &Path) -> std::io::Result<()> {
    match std::fs::File::open(wal) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Columns for rusqlite::Row<'_> {
    fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.get(column).map_err(sqlite_error)
    }

    fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.get(column).map_err(sqlite_error)
    }
}

/// One batch, one transaction (on the writer thread).
fn record(
    conn: &mut rusqlite::Connection,
    deliveries: &[Delivery],
    history_per_user: i64,
) -> Result<Vec<Recorded>, sqlx::Error> {
    let now = now_ms();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite_error)?;
    let mut calls = read_calls(&tx, deliveries, now)?;
    let mut recorded = apply_deliveries(&mut calls, deliveries, now)?;
    let mut changed: Vec<&Locked> = calls.values().filter(|l| l.changed).collect();
    changed.sort_by(|a, b| {
        (a.stored.account_id, &a.stored.call.call_id).cmp(&(b.stored.account_id, &b.stored.call.call_id))
    });
    for locked in changed {
        write_call(&tx, &locked.stored)?;
    }
    let (tags, items) = feed_items(&mut recorded);
    let events = append_feed_events(&tx, items, now, history_per_user)?;
    attach_feed(&mut recorded, tags, events.into_iter().map(|(_, user_id, event)| (user_id, event)));
    let jobs: Vec<(u64, &super::jobs::Job)> =
        recorded.iter().filter_map(|r| r.job.as_ref().map(|j| (r.call.account_id, j))).collect();
    for (account_id, job) in unique_jobs(&jobs) {
        let payload = job_payload(job)?;
        tx.prepare_cached(
            "INSERT INTO jobs (id, account_id, kind, call_id, payload, run_at, created_at, updated_at, state, attempts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6, 'pending', 0)
             ON CONFLICT (account_id, kind, call_id) WHERE state = 'pending' DO NOTHING",
        )
        .and_then(|mut insert| {
            insert.execute(params![new_job_id(), sql_id(account_id), job.kind(), job.call_id(), payload, now])
        })
        .map_err(sqlite_error)?;
    }
    tx.commit().map_err(sqlite_error)?;
    Ok(recorded)
}

/// Each delivered call as stored, or as this batch creates it.
fn read_calls(tx: &rusqlite::Transaction<'_>, deliveries: &[Delivery], now: i64) -> Result<LockedCalls, sqlx::Error> {
    let mut select = tx
        .prepare_cached(&format!("SELECT {COLUMNS} FROM calls WHERE account_id = ?1 AND call_id = ?2"))
        .map_err(sqlite_error)?;
    let mut calls = LockedCalls::with_capacity(deliveries.len());
    for delivery in deliveries {
        let key = (delivery.account_id, delivery.call.call_id.clone());
        if calls.contains_key(&key) {
            continue;
        }
        let stored = select
            .query_row(params![sql_id(delivery.account_id), delivery.call.call_id], |row| Ok(row_to_call(row)))
            .optional()
            .map_err(sqlite_error)?
            .transpose()?;
        let locked = match stored {
            Some(stored) => Locked { stored, changed: false },
            None => Locked::created(delivery, now),
        };
        calls.insert(key, locked);
    }
    Ok(calls)
}

/// Creates the call or writes its PBX side (the CRM side is not intake's).
fn write_call(tx: &rusqlite::Transaction<'_>, stored: &StoredCall) -> Result<(), sqlx::Error> {
    let call = &stored.call;
    let ending = call.ending.as_ref();
    let recording = call.recording.as_ref();
    let caller = caller_json(&stored.caller)?;
    static UPSERT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO calls (account_id, call_id, direction, external_number, extension, kommo_user_id, status,
                                started_at, ringing_at, answered_at, ended_at, duration, outcome, recording_url,
                                recording_at, caller, version, created_at, updated_at, legs, sync_state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, 'pending')
             {WRITE_PBX_SIDE}"
        )
    });
    let mut upsert = tx.prepare_cached(&UPSERT).map_err(sqlite_error)?;
    upsert
        .execute(params![
            sql_id(stored.account_id),
            call.call_id,
            call.direction.as_str(),
            call.external_number.as_str(),
            call.extension,
            stored.kommo_user_id.map(sql_id),
            status_str(call.status()),
            call.started_at(),
            call.ringing_at,
            call.answered_at,
            ending.map(|e| e.at),
            ending.map(|e| i64::from(e.duration)),
            ending.map(|e| e.outcome.as_str()),
            recording.map(|r| r.url.as_str()),
            recording.map(|r| r.at),
            caller,
            stored.version,
            stored.created_at,
            stored.updated_at,
            legs_json(&call.legs)?,
        ])
        .map_err(sqlite_error)?;
    Ok(())
}

/// The batch's feed events, numbered per user as
/// [`Store::append_feed_events`] numbers them, each user's history trimmed.
fn append_feed_events(
    tx: &rusqlite::Transaction<'_>,
    items: Vec<(u64, u64, CallView)>,
    now: i64,
    history_per_user: i64,
) -> Result<Vec<(u64, u64, FeedEvent)>, sqlx::Error> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let counts = feed_counts(&items);
    let mut last = BTreeMap::new();
    {
        let mut advance = tx
            .prepare_cached(
                "INSERT INTO feed_offsets (account_id, user_id, last_offset) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account_id, user_id) DO UPDATE SET last_offset = feed_offsets.last_offset + excluded.last_offset
                 RETURNING last_offset",
            )
            .map_err(sqlite_error)?;
        for (&(account_id, user_id), &count) in &counts {
            let offset: i64 = advance
                .query_row(params![sql_id(account_id), sql_id(user_id), count], |row| row.get(0))
                .map_err(sqlite_error)?;
            last.insert((account_id, user_id), offset);
        }
    }
    let events = number_feed_events(items, &counts, &last)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO feed_events (account_id, user_id, feed_offset, call_id, payload, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(sqlite_error)?;
    for (account_id, user_id, event) in &events {
        insert
            .execute(params![
                sql_id(*account_id),
                sql_id(*user_id),
                sql_id(event.offset),
                event.call.call.call_id,
                feed_payload(&event.call)?,
                now
            ])
            .map_err(sqlite_error)?;
    }
    let mut trim = tx
        .prepare_cached(
            "DELETE FROM feed_events WHERE account_id = ?1 AND user_id = ?2 AND feed_offset > ?3 AND feed_offset <= ?4",
        )
        .map_err(sqlite_error)?;
    for (key, &offset) in &last {
        let count = counts.get(key).copied().unwrap_or(0);
        let trimmed = trimmed_by_append(offset, count, history_per_user);
        trim.execute(params![sql_id(key.0), sql_id(key.1), trimmed.start, trimmed.end]).map_err(sqlite_error)?;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::database_file;
    use std::path::PathBuf;

    #[test]
    fn only_file_urls_name_a_file() {
        assert_eq!(database_file("sqlite://callcard.sqlite"), Some(PathBuf::from("callcard.sqlite")));
        assert_eq!(database_file("sqlite:///tmp/x.sqlite?mode=rwc"), Some(PathBuf::from("/tmp/x.sqlite")));
        assert_eq!(database_file("sqlite::memory:"), None);
        assert_eq!(database_file("postgres://db/test"), None);
    }
}
