//! Which key seals this database: every instance on one database must use
//! the key that sealed its credentials (`CALLCARD_SECRET_KEY`).
//!
//! An instance with another key would read every sealed value as garbage:
//! webhooks refused, tokens unusable, every job failing. So the first start
//! seals a known text into `sealing_key`, and each start opens it: a key
//! that does not open it stops the instance at once, naming the setting,
//! before it serves anything or touches a job. A database from before this
//! check gets its proof from the first start whose key opens the
//! credentials already sealed in it.

use super::{rust_id, Store};
use crate::secrets::{webhook_secret_context, SecretError, Secrets};
use anyhow::bail;
use sqlx::Row;

/// The sealed text and where it lives (the AEAD context).
const PROOF: &str = "callcard sealing key";
const CONTEXT: &str = "sealing_key:1";

impl Store {
    /// Stops with an error naming `CALLCARD_SECRET_KEY` unless this
    /// instance's key opens what the database was sealed with; records the
    /// proof at first start.
    pub(crate) async fn check_sealing_key(&self) -> anyhow::Result<()> {
        let refused = || {
            anyhow::anyhow!(
                "secret_key (CALLCARD_SECRET_KEY) is not the key this database was sealed with: start with the \
                 key its first instance used, or with another database (DATABASE_URL)"
            )
        };
        let proof = match self.sealing_proof().await? {
            Some(proof) => proof,
            None => {
                // No proof yet: this key must open what is already sealed.
                if self.opens_a_sealed_credential().await? == Some(false) {
                    return Err(refused());
                }
                // Two instances starting at once: the first insert wins, and
                // both check the one that is stored.
                sqlx::query("INSERT INTO sealing_key (id, sealed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
                    .bind(self.secrets().seal(PROOF, CONTEXT))
                    .execute(self.pool())
                    .await?;
                self.sealing_proof().await?.unwrap_or_default()
            }
        };
        match self.secrets().open(&proof, CONTEXT) {
            Ok(text) if text == PROOF => Ok(()),
            Ok(_) | Err(SecretError::Refused) => Err(refused()),
            Err(e) => bail!("the database's sealing_key row is damaged ({e}); restore it from a backup"),
        }
    }

    async fn sealing_proof(&self) -> Result<Option<String>, sqlx::Error> {
        let row = sqlx::query("SELECT sealed FROM sealing_key WHERE id = 1").fetch_optional(self.pool()).await?;
        row.map(|row| row.try_get("sealed")).transpose()
    }

    /// Whether this key opens one sealed webhook secret (`None`: none is
    /// sealed yet).
    async fn opens_a_sealed_credential(&self) -> Result<Option<bool>, sqlx::Error> {
        let rows = sqlx::query("SELECT account_id, webhook_secret FROM accounts").fetch_all(self.pool()).await?;
        for row in rows {
            let secret: String = row.try_get("webhook_secret")?;
            if Secrets::is_sealed(&secret) {
                let context = webhook_secret_context(rust_id(row.try_get("account_id")?));
                return Ok(Some(self.secrets().open(&secret, &context).is_ok()));
            }
        }
        Ok(None)
    }
}
