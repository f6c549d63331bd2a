//! The feed history: per-user offsets and the bounded list of feed events a
//! reconnecting widget can resume from.
//!
//! Offsets are allocated with an upsert on `feed_offsets` inside the
//! transaction that changed the call (or the calls: intake's group commit
//! appends many users' events in one statement per table). That row stays locked until commit, so
//! two transactions for the same user get consecutive offsets *and commit in
//! offset order*: a reader never sees offset 7 committed while 6 is still to
//! come. The history is trimmed to the newest `history_per_user` events on
//! every append (each append deletes the offsets it pushed out of the
//! window, [`trimmed_by_append`]) and by age in [`Store::prune`].

use super::{rust_id, sql_id, Store};
use callcard_calls::feed::{CallView, FeedEvent};
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

/// Feed events after some offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSlice {
    /// Oldest first; empty when `gap`.
    pub events: Vec<FeedEvent>,
    /// The requested offset is older than the kept history (or newer than
    /// anything handed out): the client must refetch current state.
    pub gap: bool,
    /// The newest offset handed out for the user.
    pub latest_offset: u64,
}

impl Store {
    /// Appends feed events (account, user, call) inside `conn`'s
    /// transaction, in order; answers them with their offsets.
    ///
    /// Three statements for any number of events: one upsert advances every
    /// user's offset by the number of events it gets (rows locked in
    /// (account, user) order, the order every transaction uses), one insert
    /// writes the events, one delete trims the users' histories.
    pub(crate) async fn append_feed_events(
        &self,
        conn: &mut AnyConnection,
        items: Vec<(u64, u64, CallView)>,
        now: i64,
    ) -> Result<Vec<FeedEvent>, sqlx::Error> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let counts = feed_counts(&items);
        let sql = format!(
            "INSERT INTO feed_offsets (account_id, user_id, last_offset) VALUES {}
             ON CONFLICT (account_id, user_id) DO UPDATE SET last_offset = feed_offsets.last_offset + excluded.last_offset
             RETURNING account_id, user_id, last_offset",
            self.dialect().value_rows(counts.len(), 3, "")
        );
        let mut query = sqlx::query(&sql);
        for (&(account_id, user_id), &count) in &counts {
            query = query.bind(sql_id(account_id)).bind(sql_id(user_id)).bind(count);
        }
        let mut last: BTreeMap<(u64, u64), i64> = BTreeMap::new();
        for row in query.fetch_all(&mut *conn).await? {
            let key = (rust_id(row.try_get("account_id")?), rust_id(row.try_get("user_id")?));
            last.insert(key, row.try_get("last_offset")?);
        }
        let events = number_feed_events(items, &counts, &last)?;

        let sql = format!(
            "INSERT INTO feed_events (account_id, user_id, feed_offset, call_id, payload, created_at) VALUES {}",
            self.dialect().value_rows(events.len(), 6, "")
        );
        let mut query = sqlx::query(&sql);
        for (account_id, user_id, event) in &events {
            query = query
                .bind(sql_id(*account_id))
                .bind(sql_id(*user_id))
                .bind(sql_id(event.offset))
                .bind(event.call.call.call_id.clone())
                .bind(feed_payload(&event.call)?)
                .bind(now);
        }
        query.execute(&mut *conn).await?;

        let p = |n| self.dialect().param(n);
        let trims = (0..last.len())
            .map(|i| {
                format!(
                    "(account_id = {} AND user_id = {} AND feed_offset > {} AND feed_offset <= {})",
                    p(4 * i + 1),
                    p(4 * i + 2),
                    p(4 * i + 3),
                    p(4 * i + 4)
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("DELETE FROM feed_events WHERE {trims}");
        let mut query = sqlx::query(&sql);
        for (key, &offset) in &last {
            let count = counts.get(key).copied().unwrap_or(0);
            let trimmed = trimmed_by_append(offset, count, self.history_per_user);
            query = query.bind(sql_id(key.0)).bind(sql_id(key.1)).bind(trimmed.start).bind(trimmed.end);
        }
        query.execute(&mut *conn).await?;
        Ok(events.into_iter().map(|(_, _, event)| event).collect())
    }

    /// The newest offset handed out for the user (0: none yet).
    pub async fn latest_offset(&self, account_id: u64, user_id: u64) -> Result<u64, sqlx::Error> {
        let row = sqlx::query("SELECT last_offset FROM feed_offsets WHERE account_id = $1 AND user_id = $2")
            .bind(sql_id(account_id))
            .bind(sql_id(user_id))
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(row) => u64::try_from(row.try_get::<i64, _>("last_offset")?).unwrap_or(0),
            None => 0,
        })
    }

    /// Up to `limit` of the user's feed events after `since`, or a gap.
    pub async fn feed_after(
        &self,
        account_id: u64,
        user_id: u64,
        since: u64,
        limit: i64,
    ) -> Result<FeedSlice, sqlx::Error> {
        let latest = self.latest_offset(account_id, user_id).await?;
        if since > latest {
            // An offset we never handed out: the client's state comes from
            // another database (or was forged); it must start over.
            return Ok(FeedSlice { events: Vec::new(), gap: true, latest_offset: latest });
        }
        if since == latest {
            return Ok(FeedSlice { events: Vec::new(), gap: false, latest_offset: latest });
        }
        let rows = sqlx::query(
            "SELECT feed_offset, payload FROM feed_events
             WHERE account_id = $1 AND user_id = $2 AND feed_offset > $3
             ORDER BY feed_offset LIMIT $4",
        )
        .bind(sql_id(account_id))
        .bind(sql_id(user_id))
        .bind(sql_id(since))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let events = rows.iter().map(row_to_event).collect::<Result<Vec<_>, _>>()?;
        // Offsets are gapless, so the history is complete exactly when it
        // starts right after `since`.
        if events.first().map(|e| e.offset) != Some(since + 1) {
            return Ok(FeedSlice { events: Vec::new(), gap: true, latest_offset: latest });
        }
        let latest_offset = latest.max(events.last().map_or(0, |e| e.offset));
        Ok(FeedSlice { events, gap: false, latest_offset })
    }

    /// One feed event, if still kept.
    pub async fn feed_event(
        &self,
        account_id: u64,
        user_id: u64,
        offset: u64,
    ) -> Result<Option<FeedEvent>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT feed_offset, payload FROM feed_events WHERE account_id = $1 AND user_id = $2 AND feed_offset = $3",
        )
        .bind(sql_id(account_id))
        .bind(sql_id(user_id))
        .bind(sql_id(offset))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(row_to_event).transpose()
    }
}

/// The offsets an append of `count` events, ending at `last`, pushes out of
/// a history of `history` events per user: `start < offset <= end`.
///
/// Every append deletes its own window, so everything older is already
/// gone (or left for [`Store::prune`] by age, after the history setting
/// was lowered), and the delete starts there. Unbounded below, PostgreSQL
/// would walk every index entry of the user's deleted events that vacuum
/// has not yet removed: measured at 5.5 ms per trim after 25,000 events of
/// one user, against 0.18 ms bounded.
pub(crate) fn trimmed_by_append(last: i64, count: i64, history: i64) -> std::ops::Range<i64> {
    last - count - history..last - history
}

/// How many events each (account, user) gets among `items`, in lock order.
pub(crate) fn feed_counts(items: &[(u64, u64, CallView)]) -> BTreeMap<(u64, u64), i64> {
    let mut counts = BTreeMap::new();
    for (account_id, user_id, _) in items {
        *counts.entry((*account_id, *user_id)).or_default() += 1;
    }
    counts
}

/// Numbers `items` in order, given each user's last offset once `counts`
/// offsets were allocated to it: a user's events take the offsets right
/// below and up to its last.
pub(crate) fn number_feed_events(
    items: Vec<(u64, u64, CallView)>,
    counts: &BTreeMap<(u64, u64), i64>,
    last: &BTreeMap<(u64, u64), i64>,
) -> Result<Vec<(u64, u64, FeedEvent)>, sqlx::Error> {
    let mut next: BTreeMap<(u64, u64), i64> = BTreeMap::new();
    for (key, offset) in last {
        next.insert(*key, offset - counts.get(key).copied().unwrap_or(1) + 1);
    }
    items
        .into_iter()
        .map(|(account_id, user_id, call)| {
            let offset = next.get_mut(&(account_id, user_id)).ok_or_else(|| {
                sqlx::Error::Protocol(format!("no feed offset came back for user {user_id} of account {account_id}"))
            })?;
            let event = FeedEvent { offset: u64::try_from(*offset).unwrap_or(0), call };
            *offset += 1;
            Ok((account_id, user_id, event))
        })
        .collect()
}

/// A feed event's stored form: the call as the widget sees it, JSON (the
/// offset is a column of its own).
pub(crate) fn feed_payload(view: &CallView) -> Result<String, sqlx::Error> {
    serde_json::to_string(view).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

fn row_to_event(row: &sqlx::any::AnyRow) -> Result<FeedEvent, sqlx::Error> {
    let offset: i64 = row.try_get("feed_offset")?;
    let payload: String = row.try_get("payload")?;
    let call: CallView = serde_json::from_str(&payload).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(FeedEvent { offset: u64::try_from(offset).unwrap_or(0), call })
}
