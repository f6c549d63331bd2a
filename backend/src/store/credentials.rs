//! Credentials that must hold across instances: the ids of one-time tokens
//! already used, and feed tickets. Both live in the database, not in memory,
//! so a token replayed to another instance is still refused and a ticket
//! issued by one instance opens a feed on another.

use super::{now_ms, rust_id, sql_id, Store};
use sqlx::Row;

/// Who a redeemed ticket belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TicketOwner {
    pub account_id: u64,
    pub user_id: u64,
    pub expires_at: i64,
}

impl Store {
    /// Marks a one-time token id as used until `expires_at` (Unix ms).
    /// Returns false if it was already used: a replay.
    pub async fn use_jti(&self, jti: &str, expires_at: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("INSERT INTO used_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti.to_string())
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a ticket by the hash of its token.
    pub async fn insert_ticket(&self, ticket_hash: &str, owner: TicketOwner) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO feed_tickets (ticket_hash, account_id, user_id, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(ticket_hash.to_string())
            .bind(sql_id(owner.account_id))
            .bind(sql_id(owner.user_id))
            .bind(owner.expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The owner of an unexpired ticket.
    pub async fn ticket(&self, ticket_hash: &str) -> Result<Option<TicketOwner>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT account_id, user_id, expires_at FROM feed_tickets WHERE ticket_hash = $1 AND expires_at > $2",
        )
        .bind(ticket_hash.to_string())
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TicketOwner {
            account_id: rust_id(row.try_get("account_id")?),
            user_id: rust_id(row.try_get("user_id")?),
            expires_at: row.try_get("expires_at")?,
        }))
    }
}
