//! Provisioned accounts: the webhook secret their PBX signs with, the origin
//! their widget runs on, their extension-to-user mapping and where their PBX
//! takes click-to-call requests.

use super::{now_ms, rust_id, sql_id, Store};
use crate::config::AccountSetup;
use crate::secrets::{webhook_secret_context, Secrets};
use callcard_calls::extensions::ExtensionMap;
use callcard_calls::note::LogSettings;
use sqlx::Row;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long this instance reuses an account it read. Every webhook needs its
/// account (the secret to check the signature with, the extension map), and
/// reading and unsealing it each time would cost more than storing the
/// event. Changes made through this instance apply at once; changes made
/// through another instance sharing the database, within this long.
pub const ACCOUNT_CACHE_TTL: Duration = Duration::from_secs(1);

/// Accounts recently read, with when they were read.
#[derive(Default)]
pub(crate) struct AccountCache(Mutex<HashMap<u64, (Instant, Arc<Account>)>>);

impl fmt::Debug for AccountCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountCache")
    }
}

impl AccountCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Instant, Arc<Account>)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, account_id: u64) -> Option<Arc<Account>> {
        let entries = self.entries();
        let (read_at, account) = entries.get(&account_id)?;
        (read_at.elapsed() < ACCOUNT_CACHE_TTL).then(|| account.clone())
    }

    fn put(&self, account: Arc<Account>) {
        let mut entries = self.entries();
        if entries.len() > 10_000 {
            entries.retain(|_, (read_at, _)| read_at.elapsed() < ACCOUNT_CACHE_TTL);
        }
        entries.insert(account.account_id, (Instant::now(), account));
    }

    fn forget(&self, account_id: u64) {
        self.entries().remove(&account_id);
    }
}

/// One account as the backend knows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: u64,
    /// Where the account's Kommo runs, e.g. `https://acme.kommo.com`: the only
    /// CORS origin allowed for it and the `iss` of its one-time tokens.
    pub origin: String,
    /// In plaintext here; sealed in the database (`crate::secrets`).
    pub webhook_secret: String,
    /// Shared with every delivery made from this account read.
    pub extensions: Arc<ExtensionMap>,
    /// Which call-note sections the CRM sync writes.
    pub log_settings: LogSettings,
    /// Where the account's Kommo API is, learned at installation
    /// (`https://{subdomain}.kommo.com`); `None` before.
    pub kommo_base_url: Option<String>,
    /// Where the account's PBX takes click-to-call requests
    /// (`crate::originate_api`); `None`: not set up.
    pub pbx_originate_url: Option<String>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("account_id", &self.account_id)
            .field("origin", &self.origin)
            .field("webhook_secret", &"<redacted>")
            .field("extensions", &self.extensions)
            .field("log_settings", &self.log_settings)
            .field("kommo_base_url", &self.kommo_base_url)
            .field("pbx_originate_url", &self.pbx_originate_url)
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
    /// map is replaced only when the setup fixes one.
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
        .bind(self.secrets().seal(&setup.webhook_secret, &webhook_secret_context(setup.account_id)))
        .bind(now)
        .execute(self.pool())
        .await?;
        if let Some(extensions) = &setup.extensions {
            self.set_extensions(setup.account_id, extensions).await?;
        }
        if let Some(url) = &setup.pbx_originate_url {
            self.set_account_column(setup.account_id, "pbx_originate_url", url.clone()).await?;
        }
        self.account_cache().forget(setup.account_id);
        Ok(())
    }

    pub async fn account(&self, account_id: u64) -> Result<Option<Arc<Account>>, sqlx::Error> {
        if let Some(account) = self.account_cache().get(account_id) {
            return Ok(Some(account));
        }
        let account = self.read_account(account_id).await?.map(Arc::new);
        if let Some(account) = &account {
            self.account_cache().put(account.clone());
        }
        Ok(account)
    }

    async fn read_account(&self, account_id: u64) -> Result<Option<Account>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT account_id, origin, webhook_secret, extensions, log_settings, kommo_base_url, pbx_originate_url \
             FROM accounts WHERE account_id = $1",
        )
        .bind(sql_id(account_id))
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let extensions: String = row.try_get("extensions")?;
        let log_settings: Option<String> = row.try_get("log_settings")?;
        let stored_secret: String = row.try_get("webhook_secret")?;
        let webhook_secret = if Secrets::is_sealed(&stored_secret) {
            self.secrets().open(&stored_secret, &webhook_secret_context(account_id))?
        } else {
            // Only between an upgrade's migration and the sealing pass at
            // start ([`Store::seal_plaintext_secrets`]).
            stored_secret
        };
        Ok(Some(Account {
            account_id: rust_id(row.try_get("account_id")?),
            origin: row.try_get("origin")?,
            webhook_secret,
            log_settings: log_settings.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default(),
            kommo_base_url: row.try_get("kommo_base_url")?,
            pbx_originate_url: row.try_get("pbx_originate_url")?,
            // Only validated maps are ever written, so a parse failure means
            // someone edited the row by hand: treat it as "nobody mapped"
            // rather than mis-routing calls.
            extensions: Arc::new(serde_json::from_str(&extensions).unwrap_or_default()),
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
        self.set_account_column(account_id, "extensions", json).await
    }

    /// Seals every webhook secret still stored in plaintext (accounts
    /// provisioned before encryption at rest). Idempotent; runs at start.
    pub(crate) async fn seal_plaintext_secrets(&self) -> Result<u64, sqlx::Error> {
        let rows = sqlx::query("SELECT account_id, webhook_secret FROM accounts").fetch_all(self.pool()).await?;
        let mut sealed = 0;
        for row in rows {
            let account_id = rust_id(row.try_get("account_id")?);
            let secret: String = row.try_get("webhook_secret")?;
            if Secrets::is_sealed(&secret) {
                continue;
            }
            // Conditional on the old value: a concurrent provisioning wins.
            let done =
                sqlx::query("UPDATE accounts SET webhook_secret = $1 WHERE account_id = $2 AND webhook_secret = $3")
                    .bind(self.secrets().seal(&secret, &webhook_secret_context(account_id)))
                    .bind(sql_id(account_id))
                    .bind(secret)
                    .execute(self.pool())
                    .await?;
            sealed += done.rows_affected();
        }
        if sealed > 0 {
            tracing::info!(accounts = sealed, "sealed plaintext webhook secrets");
        }
        Ok(sealed)
    }

    /// The account's call-note settings ([`LogSettings`]); false for an unknown account.
    pub async fn set_log_settings(&self, account_id: u64, settings: &LogSettings) -> Result<bool, sqlx::Error> {
        let json = serde_json::to_string(settings).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        self.set_account_column(account_id, "log_settings", json).await
    }

    /// Records where the account's Kommo API is (at installation).
    pub async fn set_kommo_base_url(&self, account_id: u64, base_url: &str) -> Result<bool, sqlx::Error> {
        self.set_account_column(account_id, "kommo_base_url", base_url.to_string()).await
    }

    /// Sets one of the account's columns and drops this instance's cached
    /// copy; false for an unknown account. `column` is one of this file's
    /// literals, never input.
    async fn set_account_column(
        &self,
        account_id: u64,
        column: &'static str,
        value: String,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(&format!("UPDATE accounts SET {column} = $1, updated_at = $2 WHERE account_id = $3"))
            .bind(value)
            .bind(now_ms())
            .bind(sql_id(account_id))
            .execute(self.pool())
            .await?;
        self.account_cache().forget(account_id);
        Ok(done.rows_affected() > 0)
    }
}
