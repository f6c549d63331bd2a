//! The durable store: accounts, calls, the feed history and the credentials
//! that must hold across instances (used token ids, feed tickets).
//!
//! One code path serves SQLite (the embedded default, a WAL-mode file) and
//! PostgreSQL (several instances behind a load balancer): every query goes
//! through `sqlx::Any` with `$n` placeholders and SQL both dialects accept,
//! and the single migration directory `backend/migrations` is applied at
//! start. Times are Unix milliseconds in BIGINT columns; Kommo ids are `u64`
//! in Rust and BIGINT in SQL (they are far below `i64::MAX`).
//!
//! The parts, one file each:
//! - [`accounts`]: provisioned accounts and their extension maps.
//! - [`calls`]: the call records and the order-free merge of PBX events.
//! - [`feed_log`]: per-user offsets and the bounded event history.
//! - [`credentials`]: used one-time-token ids and feed tickets.
//! - [`crm`]: the CRM side of a call ([`CrmChange`]), changed and announced
//!   to the widget in one transaction.
//! - [`tokens`]: the accounts' Kommo OAuth tokens (sealed) and the refresh lease.
//! - [`budget`]: the shared 7-requests-per-second schedule per account.
//! - [`jobs`]: the durable job queue's table.
//! - [`phonebook`]: the local caller index (holders, numbers, deals, links)
//!   and each account's sync state.
//! - `sealing`: proof of the key that seals the database, checked at start.
//! - `sqlite_writer` and `postgres_writer`: intake's fast paths, the two
//!   exceptions to the single code path (same rules; a plain SQLite
//!   connection on its own thread, and PostgreSQL connections of their own
//!   with fixed statements over arrays; see the files).
//!
//! Credentials (webhook secrets, OAuth tokens) are sealed with
//! [`crate::secrets::Secrets`] on the way in and opened on the way out; no
//! other part of the backend sees ciphertext.

pub mod accounts;
pub mod budget;
pub mod calls;
pub mod credentials;
pub mod crm;
pub mod feed_log;
pub mod jobs;
pub mod log_settings;
pub mod phonebook;
pub(crate) mod postgres_writer;
mod sealing;
pub(crate) mod sqlite_writer;
pub mod tokens;
pub mod transcripts;

pub use accounts::Account;
pub use calls::{Delivery, Recorded, StoredCall, SyncState};
pub use crm::CrmChange;

use crate::hub::Publisher;
use crate::secrets::Secrets;
use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which database is behind the `Any` pool; only the fan-out (LISTEN/NOTIFY)
/// and the connection set-up differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Reads the dialect off a `DATABASE_URL`.
    pub fn of_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            anyhow::bail!("database_url must start with sqlite: or postgres://")
        }
    }
}

/// The embedded migrations (the same files serve both dialects).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    url: Arc<str>,
    /// How many feed events to keep per user.
    history_per_user: i64,
    /// Seals and opens credentials.
    secrets: Secrets,
    /// With PostgreSQL: the schema the store's tables are in (its instances
    /// talk on channels named after it, `crate::notifier::Channels`).
    schema: Option<Arc<str>>,
    /// Where committed feed events go on this instance (set once by the
    /// backend; a bare store publishes nowhere).
    publisher: Arc<OnceLock<Publisher>>,
    /// Accounts read in the last moment ([`accounts::ACCOUNT_CACHE_TTL`]).
    accounts: Arc<accounts::AccountCache>,
}

impl Store {
    /// Connects (creating an SQLite file if missing), applies migrations,
    /// refuses a key that is not the database's (`sealing`), and seals any
    /// credential still stored in plaintext (rows from before encryption at
    /// rest).
    pub async fn open(
        url: &str,
        max_connections: u32,
        history_per_user: u32,
        secrets: Secrets,
    ) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url)?;
        let url = match dialect {
            // sqlx opens SQLite files read-write but does not create them
            // unless asked; an embedded default must just work.
            Dialect::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets the feed read while intake writes; the busy
                        // timeout makes concurrent writers wait instead of failing.
                        // FULL syncs the log at every commit, so an acknowledged
                        // webhook survives a power cut, not only a crash; group
                        // commit (`crate::group_commit`) shares that sync among
                        // the webhooks of a batch.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .context("connecting to the database")?;
        MIGRATOR.run(&pool).await.context("applying database migrations")?;
        let schema = match dialect {
            Dialect::Postgres => Some(
                sqlx::query_scalar::<_, String>("SELECT current_schema()::text")
                    .fetch_one(&pool)
                    .await
                    .context("reading the database schema")?
                    .into(),
            ),
            Dialect::Sqlite => None,
        };
        let store = Self {
            pool,
            dialect,
            url: url.into(),
            schema,
            history_per_user: i64::from(history_per_user),
            secrets,
            publisher: Arc::new(OnceLock::new()),
            accounts: Arc::default(),
        };
        store.check_sealing_key().await?;
        store.seal_plaintext_secrets().await.context("sealing plaintext webhook secrets")?;
        Ok(store)
    }

    /// Routes committed feed events to this instance's connections (once;
    /// later calls are ignored).
    pub(crate) fn set_publisher(&self, publisher: Publisher) {
        let _ = self.publisher.set(publisher);
    }

    /// This instance's publisher, if the store belongs to a running backend.
    pub(crate) fn publisher(&self) -> Option<&Publisher> {
        self.publisher.get()
    }

    pub(crate) fn account_cache(&self) -> &accounts::AccountCache {
        &self.accounts
    }

    pub(crate) fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL the store was opened with (for the PostgreSQL listener).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// With PostgreSQL, the schema the tables are in.
    pub(crate) fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A trivial query, for `/healthz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    /// Deletes expired tickets and token ids and feed events older than
    /// `max_age`.
    pub async fn prune(&self, max_age: Duration) -> Result<(), sqlx::Error> {
        let now = now_ms();
        sqlx::query("DELETE FROM feed_tickets WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
        sqlx::query("DELETE FROM used_jtis WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
        let cutoff = now - i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        sqlx::query("DELETE FROM feed_events WHERE created_at < $1").bind(cutoff).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Dialect {
    /// The `n`th (1-based) bind parameter of a statement that uses each of
    /// its parameters once, in order. PostgreSQL needs `$n`; SQLite gets `?`,
    /// because sqlx asks SQLite for every numbered parameter's name, which
    /// SQLite finds by a linear scan: numbered parameters cost O(n²) in a
    /// statement of many rows, anonymous ones nothing.
    pub(crate) fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// The rows of a multi-row `VALUES`: `rows` groups of `columns`
    /// parameters, each followed by `suffix` (constant columns), e.g. for
    /// PostgreSQL `value_rows(2, 2, ", 0")` is `($1, $2, 0), ($3, $4, 0)`.
    pub(crate) fn value_rows(self, rows: usize, columns: usize, suffix: &str) -> String {
        let mut sql = String::with_capacity(rows * (columns * 5 + suffix.len() + 4));
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&self.param(row * columns + column + 1));
            }
            sql.push_str(suffix);
            sql.push(')');
        }
        sql
    }
}

/// Kommo ids are u64 in Rust, BIGINT in SQL.
pub(crate) fn sql_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

pub(crate) fn rust_id(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn value_rows_name_every_parameter_once_in_order() {
        assert_eq!(Dialect::Postgres.value_rows(2, 2, ", 0"), "($1, $2, 0), ($3, $4, 0)");
        assert_eq!(Dialect::Postgres.value_rows(1, 3, ""), "($1, $2, $3)");
        assert_eq!(Dialect::Sqlite.value_rows(2, 2, ""), "(?, ?), (?, ?)");
    }
}
