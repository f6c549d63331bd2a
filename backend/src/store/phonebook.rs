//! The local caller index in the shared store: per account, the contacts and
//! companies with their numbers' caller-ID keys, the leads and customers with
//! their state, the links between them, and where the account's sync stands
//! (tables in `migrations/0005_phonebook.sql`), and the company each contact
//! belongs to (`0012_holder_company.sql`).
//!
//! Every change goes through [`Store::apply_phonebook`], one transaction per
//! batch (a listing page, a webhook delivery), and is order-free: a record is
//! replaced only by data with a newer or equal `updated_at`; a deletion
//! leaves a tombstone with its time, so a page read before the deletion
//! cannot bring the record back; a restore clears it. Links carry no time in
//! Kommo and are replaced as a whole per record.
//!
//! [`Store::phonebook_for`] reads what Kommo's rule needs for one number (the
//! candidate holders of its key with their companies, and the deals of the
//! oldest contact and the oldest company) into a small [`Phonebook`], which
//! the caller applies
//! `identify` to: one rule, `callcard_calls::phonebook`.

use super::{now_ms, rust_id, sql_id, Store};
use callcard_calls::phone::{last_digits, CALLER_ID_DIGITS};
use callcard_calls::phonebook::{Deal, DealState, Holder, Phonebook};
use callcard_calls::{EntityKind, EntityRef};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

/// Kommo's fixed "won" status (its "lost", 143, is `kommo_client::STATUS_LOST`).
const LEAD_STATUS_WON: u64 = 142;

/// Customer statuses read as closed. Kommo's customer statuses are per
/// account and the listing carries no "closed" flag; which customers its
/// caller ID counts as active is unconfirmed. 143 is what call logging
/// already treats as lost; 9 100 003 is the sandbox's "lost" segment.
const CLOSED_CUSTOMER_STATUSES: [u64; 2] = [kommo_client::STATUS_LOST, 9_100_003];

/// Whether a lead or customer in `status_id` is still in play: leads close in
/// Kommo's fixed 142 (won) and 143 (lost), customers in the statuses above.
pub fn deal_state(kind: EntityKind, status_id: u64) -> DealState {
    let closed = match kind {
        EntityKind::Customer => CLOSED_CUSTOMER_STATUSES.contains(&status_id),
        _ => matches!(status_id, LEAD_STATUS_WON | kommo_client::STATUS_LOST),
    };
    if closed {
        DealState::Closed
    } else {
        DealState::Active
    }
}

/// What Kommo said about a contact or company. `None`: not said (a webhook
/// entry without the field), the stored value stays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderData {
    pub entity: EntityRef,
    pub name: Option<String>,
    /// Kommo's `created_at` (seconds); a new row without it takes `updated_at`.
    pub created_at: Option<i64>,
    /// Kommo's `updated_at` (seconds): the version of this data.
    pub updated_at: i64,
    /// The `PHONE` values as written.
    pub phones: Option<Vec<String>>,
    pub responsible_user_id: Option<u64>,
    /// A contact's company: `Some(None)` when Kommo says it has none.
    pub company: Option<Option<u64>>,
}

/// What Kommo said about a lead or customer (`None`: not said).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealData {
    pub entity: EntityRef,
    pub name: Option<String>,
    pub status_id: Option<u64>,
    pub pipeline_id: Option<u64>,
    pub responsible_user_id: Option<u64>,
    pub updated_at: i64,
}

/// One change to an account's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexChange {
    Holder(HolderData),
    Deal(DealData),
    /// The holder's deals are exactly these (a contact listed `with=leads,customers`).
    HolderLinks {
        holder: EntityRef,
        deals: Vec<EntityRef>,
    },
    /// The deal's holders are exactly these (a lead read with its contacts).
    DealLinks {
        deal: EntityRef,
        holders: Vec<EntityRef>,
    },
    /// Kommo deleted the record, at `at` (Unix seconds).
    Delete {
        record: EntityRef,
        at: i64,
    },
    /// Kommo restored it from the trash.
    Restore {
        record: EntityRef,
    },
}

/// Where an account's index sync stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhonebookSync {
    pub phase: SyncPhase,
    /// The collection being listed, and its next page (from 1).
    pub kind: EntityKind,
    pub page: u32,
    /// The first sync finished: caller ID reads the index.
    pub ready: bool,
    /// The Kommo `updated_at` (seconds) the next reconciliation lists from.
    pub reconciled_from: i64,
    /// Where Kommo posts the account's webhooks (opened from its sealed form;
    /// it contains the secret: never log it).
    pub hook_destination: String,
}

/// The steps of the first sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPhase {
    /// Subscribing the webhook destination.
    Subscribe,
    /// Reading the collections page by page.
    Listing,
    /// Done; kept current by webhooks and reconciliation.
    Ready,
}

impl SyncPhase {
    fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Listing => "listing",
            Self::Ready => "ready",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Subscribe, Self::Listing, Self::Ready].into_iter().find(|p| p.as_str() == s)
    }
}

/// The SHA-256 of a webhook path secret, as stored (hex).
pub fn hook_secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn hook_context(account_id: u64) -> String {
    format!("phonebook_hook:{account_id}")
}

fn kind_of(text: &str) -> Result<EntityKind, sqlx::Error> {
    EntityKind::from_api_path(text).ok_or_else(|| sqlx::Error::Decode(format!("unknown record kind {text:?}").into()))
}

impl Store {
    /// Whether the index holds any link of `deal` to a contact or company.
    pub async fn deal_links_known(&self, account_id: u64, deal: EntityRef) -> Result<bool, sqlx::Error> {
        let row = sqlx::query(
            "SELECT 1 AS known FROM phonebook_links WHERE account_id = $1 AND deal_kind = $2 AND deal_id = $3 LIMIT 1",
        )
        .bind(sql_id(account_id))
        .bind(deal.kind.api_path())
        .bind(sql_id(deal.id))
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Starts (or, on a new installation, restarts) the account's first sync:
    /// the webhook destination under `hook_base` with a fresh random secret
    /// (only its hash and the sealed destination are stored), the cursor at
    /// the start. A restart keeps the destination (Kommo's subscription of it
    /// is simply renewed) and `ready`, so caller ID keeps reading the index
    /// while it is rebuilt. The caller enqueues the sync job.
    pub async fn start_phonebook(&self, account_id: u64, hook_base: &str) -> Result<(), sqlx::Error> {
        let mut raw = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw);
        let secret = hex::encode(raw);
        let destination = format!("{}/kommo/{account_id}/hooks/{secret}", hook_base.trim_end_matches('/'));
        let sealed = self.secrets().seal(&destination, &hook_context(account_id));
        let now = now_ms();
        sqlx::query(
            "INSERT INTO phonebook_sync (account_id, hook_secret_hash, hook_destination_sealed, phase, kind, page, ready,
                                         reconciled_from, updated_at)
             VALUES ($1, $2, $3, 'subscribe', 'leads', 1, 0, $4, $5)
             ON CONFLICT (account_id) DO UPDATE SET phase = 'subscribe', kind = 'leads', page = 1,
                 updated_at = excluded.updated_at",
        )
        .bind(sql_id(account_id))
        .bind(hook_secret_hash(&secret))
        .bind(sealed)
        .bind(now / 1000)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The account's sync state; `None` before its first installation.
    pub async fn phonebook_sync(&self, account_id: u64) -> Result<Option<PhonebookSync>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT hook_destination_sealed, phase, kind, page, ready, reconciled_from FROM phonebook_sync
             WHERE account_id = $1",
        )
        .bind(sql_id(account_id))
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let phase: String = row.try_get("phase")?;
        let sealed: String = row.try_get("hook_destination_sealed")?;
        Ok(Some(PhonebookSync {
            phase: SyncPhase::parse(&phase)
                .ok_or_else(|| sqlx::Error::Decode(format!("phonebook_sync.phase {phase:?}").into()))?,
            kind: kind_of(&row.try_get::<String, _>("kind")?)?,
            page: u32::try_from(row.try_get::<i64, _>("page")?).unwrap_or(1),
            ready: row.try_get::<i64, _>("ready")? != 0,
            reconciled_from: row.try_get("reconciled_from")?,
            hook_destination: self
                .secrets()
                .open(&sealed, &hook_context(account_id))
                .map_err(|e| sqlx::Error::Decode(format!("phonebook_sync.hook_destination_sealed: {e}").into()))?,
        }))
    }

    /// Whether `secret` is the account's webhook secret. An account without
    /// an index and a wrong secret both answer false.
    pub async fn phonebook_hook_matches(&self, account_id: u64, secret: &str) -> Result<bool, sqlx::Error> {
        let row = sqlx::query("SELECT hook_secret_hash FROM phonebook_sync WHERE account_id = $1")
            .bind(sql_id(account_id))
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(false) };
        let stored: String = row.try_get("hook_secret_hash")?;
        // Digests of the secret, compared whole: nothing about the secret
        // leaks through the comparison's timing.
        Ok(stored.as_bytes().iter().zip(hook_secret_hash(secret).as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
            && stored.len() == 64)
    }

    /// Stores the sync's cursor (after each page).
    pub async fn set_phonebook_cursor(
        &self,
        account_id: u64,
        phase: SyncPhase,
        kind: EntityKind,
        page: u32,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE phonebook_sync SET phase = $1, kind = $2, page = $3, updated_at = $4 WHERE account_id = $5",
        )
        .bind(phase.as_str())
        .bind(kind.api_path())
        .bind(i64::from(page))
        .bind(now_ms())
        .bind(sql_id(account_id))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The first sync finished: caller ID reads the index from now on.
    pub async fn finish_phonebook_sync(&self, account_id: u64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE phonebook_sync SET phase = 'ready', ready = 1, updated_at = $1 WHERE account_id = $2")
            .bind(now_ms())
            .bind(sql_id(account_id))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Where the next reconciliation starts (Kommo seconds).
    pub async fn set_reconciled_from(&self, account_id: u64, from: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE phonebook_sync SET reconciled_from = $1, updated_at = $2 WHERE account_id = $3")
            .bind(from)
            .bind(now_ms())
            .bind(sql_id(account_id))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The accounts whose index is ready (for reconciliation).
    pub async fn ready_phonebooks(&self) -> Result<Vec<u64>, sqlx::Error> {
        let rows = sqlx::query("SELECT account_id FROM phonebook_sync WHERE ready = 1").fetch_all(self.pool()).await?;
        rows.iter().map(|r| r.try_get::<i64, _>("account_id").map(rust_id)).collect()
    }

    /// Applies `changes` to the account's index in one transaction (module
    /// docs: order-free, tombstones).
    pub async fn apply_phonebook(&self, account_id: u64, changes: &[IndexChange]) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        for change in changes {
            apply_one(&mut tx, sql_id(account_id), change).await?;
        }
        tx.commit().await
    }

    /// What Kommo's caller-ID rule needs for `number` (module docs), as a
    /// small phonebook. Empty when nobody holds the number.
    pub async fn phonebook_for(&self, account_id: u64, number: &str) -> Result<Phonebook, sqlx::Error> {
        let mut book = Phonebook::new();
        let key = last_digits(number, CALLER_ID_DIGITS);
        if key.is_empty() {
            return Ok(book);
        }
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(
            "SELECT h.kind, h.id, h.name, h.created_at, h.responsible_user_id, c.id AS company_id,
                    c.name AS company_name
             FROM phonebook_numbers n
             JOIN phonebook_holders h ON h.account_id = n.account_id AND h.kind = n.holder_kind AND h.id = n.holder_id
             LEFT JOIN phonebook_holders c ON c.account_id = h.account_id AND c.kind = 'companies'
                                          AND c.id = h.company_id AND c.deleted_at IS NULL
             WHERE n.account_id = $1 AND n.number_key = $2 AND h.deleted_at IS NULL",
        )
        .bind(sql_id(account_id))
        .bind(key.clone())
        .fetch_all(&mut *conn)
        .await?;
        // Only the oldest contact and the oldest company can be the answer.
        let mut oldest: HashMap<EntityKind, Holder> = HashMap::new();
        // Each candidate's company (alive), by the candidate.
        let mut companies: HashMap<EntityRef, Holder> = HashMap::new();
        for row in &rows {
            let entity = EntityRef::new(kind_of(&row.try_get::<String, _>("kind")?)?, rust_id(row.try_get("id")?));
            let company = row.try_get::<Option<i64>, _>("company_id")?.map(|id| Holder {
                entity: EntityRef::new(EntityKind::Company, rust_id(id)),
                name: row.try_get::<Option<String>, _>("company_name").ok().flatten().unwrap_or_default(),
                created_at: 0,
                // No numbers: in the small phonebook it only names the contact's company.
                phones: Vec::new(),
                responsible_user_id: 0,
                company: None,
            });
            let holder = Holder {
                entity,
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
                phones: vec![key.clone()],
                responsible_user_id: rust_id(row.try_get("responsible_user_id")?),
                company: company.as_ref().map(|c| c.entity),
            };
            if let Some(company) = company {
                companies.insert(entity, company);
            }
            let slot = oldest.entry(holder.entity.kind).or_insert_with(|| holder.clone());
            if (holder.created_at, holder.entity.id) < (slot.created_at, slot.entity.id) {
                *slot = holder;
            }
        }
        if oldest.is_empty() {
            return Ok(book);
        }
        let pick =
            |kind| oldest.get(&kind).map_or((String::new(), 0), |h: &Holder| (kind_path(kind), sql_id(h.entity.id)));
        let (contact, company) = (pick(EntityKind::Contact), pick(EntityKind::Company));
        // The `IN` terms let SQLite seek the links' primary key for each of
        // the (at most four) kind/id pairs; with the `OR` alone it read every
        // link of the account (`EXPLAIN QUERY PLAN`: `account_id=?` only),
        // about 4 ms per lookup on a 100,000-contact account.
        let rows = sqlx::query(
            "SELECT l.holder_kind, l.holder_id, d.kind, d.id, d.name, d.status_id, d.pipeline_id, d.responsible_user_id
             FROM phonebook_links l
             JOIN phonebook_deals d ON d.account_id = l.account_id AND d.kind = l.deal_kind AND d.id = l.deal_id
             WHERE l.account_id = $1 AND d.deleted_at IS NULL
               AND l.holder_kind IN ($2, $4) AND l.holder_id IN ($3, $5)
               AND ((l.holder_kind = $2 AND l.holder_id = $3) OR (l.holder_kind = $4 AND l.holder_id = $5))",
        )
        .bind(sql_id(account_id))
        .bind(contact.0)
        .bind(contact.1)
        .bind(company.0)
        .bind(company.1)
        .fetch_all(&mut *conn)
        .await?;
        let mut deals: HashMap<EntityRef, Deal> = HashMap::new();
        for row in &rows {
            let holder =
                EntityRef::new(kind_of(&row.try_get::<String, _>("holder_kind")?)?, rust_id(row.try_get("holder_id")?));
            let entity = EntityRef::new(kind_of(&row.try_get::<String, _>("kind")?)?, rust_id(row.try_get("id")?));
            let status_id = rust_id(row.try_get("status_id")?);
            deals
                .entry(entity)
                .or_insert_with(|| Deal {
                    entity,
                    name: row.try_get("name").unwrap_or_default(),
                    state: deal_state(entity.kind, status_id),
                    status_id,
                    pipeline_id: rust_id(row.try_get("pipeline_id").unwrap_or_default()),
                    responsible_user_id: rust_id(row.try_get("responsible_user_id").unwrap_or_default()),
                    holders: Vec::new(),
                })
                .holders
                .push(holder);
        }
        let contacts_company = oldest.get(&EntityKind::Contact).and_then(|c| companies.remove(&c.entity));
        for holder in oldest.into_values() {
            // Only contacts and companies come out of the holders' table.
            let _ = book.upsert_holder(holder);
        }
        // Unless it is the oldest company holding the number too (already in,
        // with its number), the contact's company goes in to be named.
        if let Some(company) = contacts_company.filter(|c| book.holder(c.entity).is_none()) {
            let _ = book.upsert_holder(company);
        }
        for deal in deals.into_values() {
            let _ = book.upsert_deal(deal);
        }
        Ok(book)
    }

    /// How many holders and deals the account's index keeps (alive).
    pub async fn phonebook_size(&self, account_id: u64) -> Result<(u64, u64), sqlx::Error> {
        let count = |table: &'static str| {
            let pool = self.pool().clone();
            async move {
                let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE account_id = $1 AND deleted_at IS NULL");
                let row = sqlx::query(&sql).bind(sql_id(account_id)).fetch_one(&pool).await?;
                Ok::<u64, sqlx::Error>(rust_id(row.try_get("n")?))
            }
        };
        Ok((count("phonebook_holders").await?, count("phonebook_deals").await?))
    }
}

fn kind_path(kind: EntityKind) -> String {
    kind.api_path().to_string()
}

async fn apply_one(conn: &mut AnyConnection, account: i64, change: &IndexChange) -> Result<(), sqlx::Error> {
    match change {
        IndexChange::Holder(h) => {
            let applied = sqlx::query(
                "INSERT INTO phonebook_holders (account_id, kind, id, name, created_at, updated_at, deleted_at,
                                                responsible_user_id, company_id)
                 VALUES ($1, $2, $3, COALESCE($4, ''), COALESCE($5, $6), $6, NULL, COALESCE($7, 0), $9)
                 ON CONFLICT (account_id, kind, id) DO UPDATE SET
                     name = COALESCE($4, phonebook_holders.name),
                     created_at = COALESCE($5, phonebook_holders.created_at),
                     responsible_user_id = COALESCE($7, phonebook_holders.responsible_user_id),
                     company_id = CASE WHEN $8 = 1 THEN $9 ELSE phonebook_holders.company_id END,
                     updated_at = excluded.updated_at,
                     deleted_at = CASE WHEN phonebook_holders.deleted_at < excluded.updated_at THEN NULL
                                       ELSE phonebook_holders.deleted_at END
                 WHERE phonebook_holders.updated_at <= excluded.updated_at",
            )
            .bind(account)
            .bind(h.entity.kind.api_path())
            .bind(sql_id(h.entity.id))
            .bind(h.name.clone())
            .bind(h.created_at)
            .bind(h.updated_at)
            .bind(h.responsible_user_id.map(sql_id))
            // Whether Kommo said the company (`$8`), and which (`$9`, NULL: none).
            .bind(i64::from(h.company.is_some()))
            .bind(h.company.flatten().map(sql_id))
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1;
            // Older data changes nothing, numbers included.
            if let (true, Some(phones)) = (applied, &h.phones) {
                sqlx::query(
                    "DELETE FROM phonebook_numbers WHERE account_id = $1 AND holder_kind = $2 AND holder_id = $3",
                )
                .bind(account)
                .bind(h.entity.kind.api_path())
                .bind(sql_id(h.entity.id))
                .execute(&mut *conn)
                .await?;
                let mut keys: Vec<String> =
                    phones.iter().map(|p| last_digits(p, CALLER_ID_DIGITS)).filter(|k| !k.is_empty()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    sqlx::query(
                        "INSERT INTO phonebook_numbers (account_id, number_key, holder_kind, holder_id)
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(account)
                    .bind(key)
                    .bind(h.entity.kind.api_path())
                    .bind(sql_id(h.entity.id))
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        IndexChange::Deal(d) => {
            sqlx::query(
                "INSERT INTO phonebook_deals (account_id, kind, id, name, status_id, pipeline_id, responsible_user_id,
                                              updated_at, deleted_at)
                 VALUES ($1, $2, $3, COALESCE($4, ''), COALESCE($5, 0), COALESCE($6, 0), COALESCE($7, 0), $8, NULL)
                 ON CONFLICT (account_id, kind, id) DO UPDATE SET
                     name = COALESCE($4, phonebook_deals.name),
                     status_id = COALESCE($5, phonebook_deals.status_id),
                     pipeline_id = COALESCE($6, phonebook_deals.pipeline_id),
                     responsible_user_id = COALESCE($7, phonebook_deals.responsible_user_id),
                     updated_at = excluded.updated_at,
                     deleted_at = CASE WHEN phonebook_deals.deleted_at < excluded.updated_at THEN NULL
                                       ELSE phonebook_deals.deleted_at END
                 WHERE phonebook_deals.updated_at <= excluded.updated_at",
            )
            .bind(account)
            .bind(d.entity.kind.api_path())
            .bind(sql_id(d.entity.id))
            .bind(d.name.clone())
            .bind(d.status_id.map(sql_id))
            .bind(d.pipeline_id.map(sql_id))
            .bind(d.responsible_user_id.map(sql_id))
            .bind(d.updated_at)
            .execute(&mut *conn)
            .await?;
        }
        IndexChange::HolderLinks { holder, deals } => {
            sqlx::query("DELETE FROM phonebook_links WHERE account_id = $1 AND holder_kind = $2 AND holder_id = $3")
                .bind(account)
                .bind(holder.kind.api_path())
                .bind(sql_id(holder.id))
                .execute(&mut *conn)
                .await?;
            for deal in deals {
                insert_link(conn, account, *holder, *deal).await?;
            }
        }
        IndexChange::DealLinks { deal, holders } => {
            sqlx::query("DELETE FROM phonebook_links WHERE account_id = $1 AND deal_kind = $2 AND deal_id = $3")
                .bind(account)
                .bind(deal.kind.api_path())
                .bind(sql_id(deal.id))
                .execute(&mut *conn)
                .await?;
            for holder in holders {
                insert_link(conn, account, *holder, *deal).await?;
            }
        }
        IndexChange::Delete { record, at } => {
            let sql = match record.kind {
                EntityKind::Contact | EntityKind::Company => {
                    "INSERT INTO phonebook_holders (account_id, kind, id, name, created_at, updated_at, deleted_at)
                     VALUES ($1, $2, $3, '', 0, 0, $4)
                     ON CONFLICT (account_id, kind, id) DO UPDATE SET deleted_at = excluded.deleted_at"
                }
                EntityKind::Lead | EntityKind::Customer => {
                    "INSERT INTO phonebook_deals (account_id, kind, id, name, status_id, pipeline_id,
                                                  responsible_user_id, updated_at, deleted_at)
                     VALUES ($1, $2, $3, '', 0, 0, 0, 0, $4)
                     ON CONFLICT (account_id, kind, id) DO UPDATE SET deleted_at = excluded.deleted_at"
                }
            };
            sqlx::query(sql)
                .bind(account)
                .bind(record.kind.api_path())
                .bind(sql_id(record.id))
                .bind(*at)
                .execute(&mut *conn)
                .await?;
        }
        IndexChange::Restore { record } => {
            let table = match record.kind {
                EntityKind::Contact | EntityKind::Company => "phonebook_holders",
                EntityKind::Lead | EntityKind::Customer => "phonebook_deals",
            };
            sqlx::query(&format!(
                "UPDATE {table} SET deleted_at = NULL WHERE account_id = $1 AND kind = $2 AND id = $3"
            ))
            .bind(account)
            .bind(record.kind.api_path())
            .bind(sql_id(record.id))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

async fn insert_link(
    conn: &mut AnyConnection,
    account: i64,
    holder: EntityRef,
    deal: EntityRef,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO phonebook_links (account_id, holder_kind, holder_id, deal_kind, deal_id)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(account)
    .bind(holder.kind.api_path())
    .bind(sql_id(holder.id))
    .bind(deal.kind.api_path())
    .bind(sql_id(deal.id))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deals_close_in_the_won_and_lost_statuses() {
        assert_eq!(deal_state(EntityKind::Lead, 142), DealState::Closed);
        assert_eq!(deal_state(EntityKind::Lead, 143), DealState::Closed);
        assert_eq!(deal_state(EntityKind::Lead, 7_100_011), DealState::Active);
        assert_eq!(deal_state(EntityKind::Customer, 9_100_003), DealState::Closed);
        assert_eq!(deal_state(EntityKind::Customer, 9_100_001), DealState::Active);
    }

    #[test]
    fn the_hook_secret_is_stored_as_a_digest() {
        let digest = hook_secret_hash("s3cret");
        assert_eq!(digest.len(), 64);
        assert!(!digest.contains("s3cret"));
        assert_ne!(digest, hook_secret_hash("s3cret2"));
    }
}
