//! The shared request budget: Kommo's 7 requests per second per account,
//! kept by the database for every worker of every instance.
//!
//! GCRA (see `kommo_client::budget`): each account has a theoretical
//! arrival time `tat`. Reserving a slot is one atomic upsert,
//!
//! ```sql
//! INSERT INTO kommo_budget VALUES (:account, :now + :interval)
//! ON CONFLICT (account_id) DO UPDATE SET tat = max(kommo_budget.tat, :now) + :interval
//! RETURNING tat, :now
//! ```
//!
//! so concurrent reservations are serialised by the row lock and each gets
//! the next slot, `tat - interval`; the caller sleeps `slot - now`. `now` is
//! the database's clock (microseconds), read inside the statement, so
//! instances with skewed clocks still share one schedule. The burst is 1:
//! starts are evenly spaced ([`kommo_client::Quota::kommo`]: one every
//! 157.143 ms, at most 7 in any second even with network jitter).

use super::{sql_id, Dialect, Store};
use sqlx::Row;
use std::time::Duration;

impl Store {
    /// Reserves the next start slot for one request to `account_id`, spaced
    /// `interval` after the previous one; returns how long to wait for it.
    pub async fn reserve_kommo_slot(&self, account_id: u64, interval: Duration) -> Result<Duration, sqlx::Error> {
        let interval_us = i64::try_from(interval.as_micros()).unwrap_or(i64::MAX);
        let sql = match self.dialect() {
            // statement_timestamp(): one value for the whole statement.
            Dialect::Postgres => {
                "WITH clock AS (SELECT CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT) AS now)
                 INSERT INTO kommo_budget (account_id, tat) SELECT $1, clock.now + $2 FROM clock
                 ON CONFLICT (account_id) DO UPDATE
                 SET tat = GREATEST(kommo_budget.tat, CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT)) + $2
                 RETURNING tat, CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT) AS now"
            }
            // julianday('now') is fixed for the whole statement in SQLite,
            // with millisecond resolution.
            Dialect::Sqlite => {
                "INSERT INTO kommo_budget (account_id, tat)
                 VALUES ($1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) + $2)
                 ON CONFLICT (account_id) DO UPDATE
                 SET tat = max(kommo_budget.tat, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)) + $2
                 RETURNING tat, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) AS now"
            }
        };
        let row = sqlx::query(sql).bind(sql_id(account_id)).bind(interval_us).fetch_one(self.pool()).await?;
        let tat: i64 = row.try_get("tat")?;
        let now: i64 = row.try_get("now")?;
        let slot = tat - interval_us;
        Ok(Duration::from_micros(u64::try_from(slot - now).unwrap_or(0)))
    }
}
