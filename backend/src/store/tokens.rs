//! The accounts' Kommo OAuth tokens, sealed at rest, and the refresh lease.
//!
//! Kommo rotates refresh tokens: using one burns it. Two workers (or two
//! instances) refreshing the same account at once would leave one of them
//! with a refused grant and the account unusable, so a refresh is guarded by
//! a lease in the token row, claimed with one conditional UPDATE
//! ([`Store::claim_refresh`]): it succeeds for exactly one claimer while the
//! token generation is the one the claimer saw and no live lease exists.
//! Everyone else waits and re-reads the row until the generation moves on.
//! A claimer that dies leaves a lease that simply expires.

use super::{now_ms, sql_id, Store};
use crate::secrets::token_context;
use kommo_client::TokenSet;
use sqlx::Row;

/// `state` of an authorized account.
pub const AUTHORIZED: &str = "authorized";
/// `state` of an account whose grant Kommo refused: only a new installation helps.
pub const NEEDS_REAUTHORIZATION: &str = "needs_reauthorization";

/// An account's tokens as stored (opened).
#[derive(Clone)]
pub struct StoredTokens {
    pub tokens: TokenSet,
    /// Unix seconds.
    pub obtained_at: u64,
    pub generation: i64,
    pub needs_reauthorization: bool,
    pub reason: Option<String>,
    /// Unix ms until which someone holds the refresh lease.
    pub refresh_until: Option<i64>,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("tokens", &self.tokens)
            .field("generation", &self.generation)
            .field("needs_reauthorization", &self.needs_reauthorization)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Stores a fresh pair after an installation: the account is authorized
    /// again (a `needs_reauthorization` mark is cleared) and any lease dropped.
    pub async fn put_tokens(&self, account_id: u64, tokens: &TokenSet) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let secrets = self.secrets();
        sqlx::query(
            "INSERT INTO kommo_tokens (account_id, access_token, refresh_token, expires_at, obtained_at, generation,
                                       state, state_reason, refresh_owner, refresh_until, updated_at)
             VALUES ($1, $2, $3, $4, $5, 1, $6, NULL, NULL, NULL, $7)
             ON CONFLICT (account_id) DO UPDATE SET
                access_token = excluded.access_token, refresh_token = excluded.refresh_token,
                expires_at = excluded.expires_at, obtained_at = excluded.obtained_at,
                generation = kommo_tokens.generation + 1, state = excluded.state, state_reason = NULL,
                refresh_owner = NULL, refresh_until = NULL, updated_at = excluded.updated_at",
        )
        .bind(sql_id(account_id))
        .bind(secrets.seal(&tokens.access_token, &token_context("access", account_id)))
        .bind(secrets.seal(&tokens.refresh_token, &token_context("refresh", account_id)))
        .bind(i64::try_from(tokens.expires_at).unwrap_or(i64::MAX))
        .bind(now / 1000)
        .bind(AUTHORIZED)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The account's tokens; `None` when it never installed the integration.
    pub async fn tokens(&self, account_id: u64) -> Result<Option<StoredTokens>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT access_token, refresh_token, expires_at, obtained_at, generation, state, state_reason, refresh_until
             FROM kommo_tokens WHERE account_id = $1",
        )
        .bind(sql_id(account_id))
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let secrets = self.secrets();
        let access: String = row.try_get("access_token")?;
        let refresh: String = row.try_get("refresh_token")?;
        let state: String = row.try_get("state")?;
        Ok(Some(StoredTokens {
            tokens: TokenSet {
                access_token: secrets.open(&access, &token_context("access", account_id))?,
                refresh_token: secrets.open(&refresh, &token_context("refresh", account_id))?,
                expires_at: u64::try_from(row.try_get::<i64, _>("expires_at")?).unwrap_or(0),
            },
            obtained_at: u64::try_from(row.try_get::<i64, _>("obtained_at")?).unwrap_or(0),
            generation: row.try_get("generation")?,
            needs_reauthorization: state == NEEDS_REAUTHORIZATION,
            reason: row.try_get("state_reason")?,
            refresh_until: row.try_get("refresh_until")?,
        }))
    }

    /// Claims the refresh lease for `owner` until `until_ms`, if the tokens
    /// are still at `generation` and nobody holds a live lease. One
    /// statement, so exactly one concurrent claimer wins.
    pub async fn claim_refresh(
        &self,
        account_id: u64,
        generation: i64,
        owner: &str,
        until_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE kommo_tokens SET refresh_owner = $1, refresh_until = $2
             WHERE account_id = $3 AND generation = $4 AND state = $5
               AND (refresh_until IS NULL OR refresh_until < $6)",
        )
        .bind(owner.to_string())
        .bind(until_ms)
        .bind(sql_id(account_id))
        .bind(generation)
        .bind(AUTHORIZED)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores the refreshed pair (only while `owner` holds the lease) and
    /// releases the lease; returns whether it was stored.
    pub async fn finish_refresh(&self, account_id: u64, owner: &str, tokens: &TokenSet) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let secrets = self.secrets();
        let done = sqlx::query(
            "UPDATE kommo_tokens SET access_token = $1, refresh_token = $2, expires_at = $3, obtained_at = $4,
                                     generation = generation + 1, refresh_owner = NULL, refresh_until = NULL,
                                     updated_at = $5
             WHERE account_id = $6 AND refresh_owner = $7",
        )
        .bind(secrets.seal(&tokens.access_token, &token_context("access", account_id)))
        .bind(secrets.seal(&tokens.refresh_token, &token_context("refresh", account_id)))
        .bind(i64::try_from(tokens.expires_at).unwrap_or(i64::MAX))
        .bind(now / 1000)
        .bind(now)
        .bind(sql_id(account_id))
        .bind(owner.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up without new tokens (the refresh failed transiently).
    pub async fn abandon_refresh(&self, account_id: u64, owner: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE kommo_tokens SET refresh_owner = NULL, refresh_until = NULL
             WHERE account_id = $1 AND refresh_owner = $2",
        )
        .bind(sql_id(account_id))
        .bind(owner.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks the account as needing a new installation (Kommo refused the
    /// grant), releasing any lease. Work for the account waits until
    /// [`Store::put_tokens`] stores a new pair.
    pub async fn mark_needs_reauthorization(&self, account_id: u64, reason: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE kommo_tokens SET state = $1, state_reason = $2, refresh_owner = NULL, refresh_until = NULL,
                                     updated_at = $3
             WHERE account_id = $4",
        )
        .bind(NEEDS_REAUTHORIZATION)
        .bind(reason.chars().take(500).collect::<String>())
        .bind(now_ms())
        .bind(sql_id(account_id))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether the account is authorized (`Some(true)`), needs a new
    /// installation (`Some(false)`), or never installed (`None`), in one
    /// cheap read that opens no secret.
    pub async fn authorization_state(&self, account_id: u64) -> Result<Option<bool>, sqlx::Error> {
        let row = sqlx::query("SELECT state FROM kommo_tokens WHERE account_id = $1")
            .bind(sql_id(account_id))
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            None => None,
            Some(row) => Some(row.try_get::<String, _>("state")? == AUTHORIZED),
        })
    }
}
