//! CRM sync: what the queue's jobs do in Kommo.
//!
//! [`run_job`] dispatches a [`Job`] to its handler with a [`SyncContext`]
//! (the store, a Kommo client for the job's account, the feed publisher).
//! Handlers return a [`JobFailure`] that tells the queue what to do next:
//! try again later, give up (dead letter), or wait for the account to be
//! authorized again. Every handler must be idempotent: the queue runs a job
//! at least once, and again after a crash.
//!
//! - [`logging`]: the call note at call end and its late updates
//!   ([`Job::LogCall`], [`Job::UpdateCallLog`]).
//! - [`results`]: the manager's call result ([`Job::ApplyCallResult`]).
//! - [`phonebook`]: the local caller index: its first sync, reconciliation
//!   and link refreshes ([`Job::SyncPhonebook`], [`Job::ReconcilePhonebook`],
//!   [`Job::RefreshDealLinks`]), and caller ID from it.
//! - [`caller_id`]: who is calling, for the ringing card (not a job: intake
//!   starts it, and it must never wait in a queue).

pub mod caller_id;
pub mod logging;
pub mod phonebook;
pub mod results;

use crate::hub::Publisher;
use crate::secrets::SecretError;
use crate::store::jobs::Job;
use crate::store::Store;
use crate::transcript_links::TranscriptLinks;
use kommo_client::{KommoClient, KommoError};

/// What a job handler works with.
#[derive(Clone)]
pub struct SyncContext {
    pub store: Store,
    /// A client for this job's account (shared budget and tokens).
    pub kommo: KommoClient,
    pub account_id: u64,
    /// Where call changes reach the widget. [`Store::update_call_crm`]
    /// already publishes through it; handlers rarely need it directly.
    pub publisher: Publisher,
    /// Links to full transcripts, for notes that hold an excerpt.
    pub transcript_links: TranscriptLinks,
}

/// Why a job did not complete, and so what the queue does with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobFailure {
    /// Transient (Kommo down, throttled, a timeout, the database busy): try
    /// again after a backoff; dead after the configured attempts.
    Retry(String),
    /// Retrying cannot help (Kommo refused the content, the record is gone):
    /// parked as dead at once, for an operator.
    Permanent(String),
    /// The account's authorization is gone: the job waits, uncounted, until
    /// the integration is installed again.
    Reauthorize,
    /// The instance is misconfigured, not the job wrong: a sealed credential
    /// does not open with this instance's `CALLCARD_SECRET_KEY`. The job
    /// waits, uncounted, for an instance with the right key; it never dies
    /// of it.
    Misconfigured(String),
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Retry(r) => write!(f, "retry: {r}"),
            Self::Permanent(r) => write!(f, "permanent: {r}"),
            Self::Reauthorize => f.write_str("the account needs re-authorization"),
            Self::Misconfigured(r) => write!(f, "configuration fault: {r}"),
        }
    }
}

impl From<KommoError> for JobFailure {
    fn from(e: KommoError) -> Self {
        if e.needs_reauthorization() {
            Self::Reauthorize
        } else if e.is_transient() || matches!(e, KommoError::Decode { .. } | KommoError::Budget(_)) {
            Self::Retry(e.to_string())
        } else {
            // Validation, NotFound, other 4xx, Unsupported.
            Self::Permanent(e.to_string())
        }
    }
}

impl From<sqlx::Error> for JobFailure {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Decode(cause) if cause.is::<SecretError>() => {
                Self::Misconfigured(format!("{e}: is CALLCARD_SECRET_KEY the database's key?"))
            }
            _ => Self::Retry(format!("database: {e}")),
        }
    }
}

/// Runs one job.
pub async fn run_job(ctx: &SyncContext, job: &Job) -> Result<(), JobFailure> {
    match job {
        Job::LogCall { call_id } | Job::UpdateCallLog { call_id } => logging::sync_call_log(ctx, call_id).await,
        Job::ApplyCallResult { call_id } => results::apply_call_result(ctx, call_id).await,
        Job::SyncPhonebook => phonebook::sync(ctx).await,
        Job::ReconcilePhonebook => phonebook::reconcile(ctx).await,
        Job::RefreshDealLinks { deal, .. } => phonebook::refresh_deal_links(ctx, *deal).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kommo_errors_sort_into_queue_decisions() {
        assert_eq!(JobFailure::from(KommoError::Unauthorized), JobFailure::Reauthorize);
        assert!(matches!(JobFailure::from(KommoError::Server { status: 502 }), JobFailure::Retry(_)));
        assert!(matches!(JobFailure::from(KommoError::Timeout), JobFailure::Retry(_)));
        assert!(matches!(JobFailure::from(KommoError::RateLimited { retry_after: None }), JobFailure::Retry(_)));
        assert!(matches!(JobFailure::from(KommoError::NotFound), JobFailure::Permanent(_)));
        assert!(matches!(
            JobFailure::from(KommoError::Validation(kommo_client::Problem::default())),
            JobFailure::Permanent(_)
        ));
    }

    #[test]
    fn a_sealed_value_that_does_not_open_is_a_configuration_fault() {
        let refused = sqlx::Error::from(SecretError::Refused);
        assert!(matches!(JobFailure::from(refused), JobFailure::Misconfigured(_)));
        assert!(matches!(JobFailure::from(sqlx::Error::PoolTimedOut), JobFailure::Retry(_)));
    }
}
