//! Transcripts (`transcript_ready`): stored order-free, and handed to call
//! logging, which writes them into the call's note.
//!
//! The newest report wins, by `occurred_at` and then by text, so retries
//! and reordering end in the same row. A transcript that changes the row of
//! a call that has ended enqueues [`Job::UpdateCallLog`] in the same
//! transaction; for a call still in progress (or not yet known) the
//! `ended` event's logging job reads it.

use super::jobs::Job;
use super::{now_ms, sql_id, Store};
use callcard_calls::event::TranscriptEvent;
use sqlx::Row;

/// A call's transcript as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTranscript {
    pub occurred_at: i64,
    pub transcript: String,
    pub summary: Option<String>,
    pub language: Option<String>,
    /// Unix ms when the first report arrived.
    pub received_at: i64,
}

/// What storing a transcript did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TranscriptRecorded {
    /// False for a retry or an older report.
    pub changed: bool,
    /// Whether the call note is to be brought up to date now.
    pub job_enqueued: bool,
}

impl Store {
    /// Stores `event` for `account_id` (see the module docs).
    pub async fn record_transcript(
        &self,
        account_id: u64,
        event: &TranscriptEvent,
    ) -> Result<TranscriptRecorded, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let stored = sqlx::query(
            "INSERT INTO call_transcripts (account_id, call_id, occurred_at, transcript, summary, language, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (account_id, call_id) DO UPDATE
             SET occurred_at = excluded.occurred_at, transcript = excluded.transcript,
                 summary = excluded.summary, language = excluded.language
             WHERE excluded.occurred_at > call_transcripts.occurred_at
                OR (excluded.occurred_at = call_transcripts.occurred_at
                    AND excluded.transcript > call_transcripts.transcript)",
        )
        .bind(sql_id(account_id))
        .bind(event.call_id.clone())
        .bind(event.occurred_at)
        .bind(event.transcript.clone())
        .bind(event.summary.clone())
        .bind(event.language.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let changed = stored.rows_affected() == 1;
        let ended = if changed {
            sqlx::query("SELECT status FROM calls WHERE account_id = $1 AND call_id = $2")
                .bind(sql_id(account_id))
                .bind(event.call_id.clone())
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get::<String, _>("status"))
                .transpose()?
                .is_some_and(|status| status == "ended")
        } else {
            false
        };
        if ended {
            let job = Job::UpdateCallLog { call_id: event.call_id.clone() };
            self.enqueue_in_tx(&mut tx, account_id, &job, now).await?;
        }
        tx.commit().await?;
        Ok(TranscriptRecorded { changed, job_enqueued: ended })
    }

    /// The call's transcript, if the PBX sent one.
    pub async fn transcript(&self, account_id: u64, call_id: &str) -> Result<Option<StoredTranscript>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT occurred_at, transcript, summary, language, received_at FROM call_transcripts
             WHERE account_id = $1 AND call_id = $2",
        )
        .bind(sql_id(account_id))
        .bind(call_id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(StoredTranscript {
                occurred_at: row.try_get("occurred_at")?,
                transcript: row.try_get("transcript")?,
                summary: row.try_get("summary")?,
                language: row.try_get("language")?,
                received_at: row.try_get("received_at")?,
            })
        })
        .transpose()
    }
}
