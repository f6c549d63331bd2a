//! Each user's own call-note switches (`UserLogSettings`), over the
//! account's defaults (`accounts.log_settings`, [`Store::set_log_settings`]).

use super::{now_ms, sql_id, Store};
use callcard_calls::note::UserLogSettings;
use sqlx::Row;

impl Store {
    /// The user's own switches (none chosen: all follow the account).
    pub async fn user_log_settings(&self, account_id: u64, user_id: u64) -> Result<UserLogSettings, sqlx::Error> {
        let row = sqlx::query("SELECT settings FROM user_log_settings WHERE account_id = $1 AND user_id = $2")
            .bind(sql_id(account_id))
            .bind(sql_id(user_id))
            .fetch_optional(self.pool())
            .await?;
        match row {
            None => Ok(UserLogSettings::default()),
            Some(row) => {
                let json: String = row.try_get("settings")?;
                serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))
            }
        }
    }

    /// Replaces the user's own switches.
    pub async fn set_user_log_settings(
        &self,
        account_id: u64,
        user_id: u64,
        settings: &UserLogSettings,
    ) -> Result<(), sqlx::Error> {
        let json = serde_json::to_string(settings).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(
            "INSERT INTO user_log_settings (account_id, user_id, settings, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_id, user_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(sql_id(account_id))
        .bind(sql_id(user_id))
        .bind(json)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
