//! Provisioned accounts: the webhook secret their PBX signs with, the origin
//! their widget runs on, and their extension-to-user mapping.

use super::{now_ms, rust_id, sql_id, Store};
use crate::config::AccountSetup;
use callcard_calls::extensions::ExtensionMap;
use sqlx::Row;
use std::fmt;

/// One account as the backend knows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: u64,
    /// Where the account's Kommo runs, e.g. `https://acme.kommo.com`: the only
    /// CORS origin allowed for it and the `iss` of its one-time tokens.
    pub origin: String,
    pub webhook_secret: String,
    pub extensions: ExtensionMap,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("account_id", &self.account_id)
            .field("origin", &self.origin)
            .field("webhook_secret", &"<redacted>")
            .field("extensions", &self.extensions)
            .finish()
    }
}

/// Origins are compared without a trailing slash (`https://a.kommo.com/` is
/// the same origin as `https://a.kommo.com`).
pub fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl Store {
    /// Creates the account or updates its origin and secret; its extension
    /// map is kept.
    pub async fn upsert_account(&self, setup: &AccountSetup) -> Result<(), sqlx::Error> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO accounts (account_id, origin, webhook_secret, extensions, created_at, updated_at)
             VALUES ($1, $2, $3, '{}', $4, $4)
             ON CONFLICT (account_id) DO UPDATE
             SET origin = excluded.origin, webhook_secret = excluded.webhook_secret, updated_at = excluded.updated_at",
        )
        .bind(sql_id(setup.account_id))
        .bind(normalize_origin(&setup.origin))
        .bind(setup.webhook_secret.clone())
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn account(&self, account_id: u64) -> Result<Option<Account>, sqlx::Error> {
        let row =
            sqlx::query("SELECT account_id, origin, webhook_secret, extensions FROM accounts WHERE account_id = $1")
                .bind(sql_id(account_id))
                .fetch_optional(self.pool())
                .await?;
        let Some(row) = row else { return Ok(None) };
        let extensions: String = row.try_get("extensions")?;
        Ok(Some(Account {
            account_id: rust_id(row.try_get("account_id")?),
            origin: row.try_get("origin")?,
            webhook_secret: row.try_get("webhook_secret")?,
            // Only validated maps are ever written, so a parse failure means
            // someone edited the row by hand: treat it as "nobody mapped"
            // rather than mis-routing calls.
            extensions: serde_json::from_str(&extensions).unwrap_or_default(),
        }))
    }

    /// Whether some provisioned account runs on this origin (for CORS).
    pub async fn origin_is_known(&self, origin: &str) -> Result<bool, sqlx::Error> {
        let row = sqlx::query("SELECT 1 AS one FROM accounts WHERE origin = $1 LIMIT 1")
            .bind(normalize_origin(origin))
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Replaces the account's extension map. Returns false for an unknown account.
    pub async fn set_extensions(&self, account_id: u64, extensions: &ExtensionMap) -> Result<bool, sqlx::Error> {
        let json = serde_json::to_string(extensions).unwrap_or_else(|_| "{}".into());
        let done = sqlx::query("UPDATE accounts SET extensions = $1, updated_at = $2 WHERE account_id = $3")
            .bind(json)
            .bind(now_ms())
            .bind(sql_id(account_id))
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
