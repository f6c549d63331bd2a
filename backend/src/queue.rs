//! The durable job queue: everything the backend must do in Kommo, done at
//! least once and, because every handler is idempotent, with effect exactly
//! once.
//!
//! Jobs live in the call store ([`crate::store::jobs`] has the SQL and the
//! claiming rules), so they survive restarts and are shared by every
//! instance. A job is enqueued in the same transaction as the fact that
//! calls for it (intake enqueues [`Job::LogCall`] with the `ended` event), so
//! no call is ever "ended but never logged".
//!
//! ```text
//!  enqueue ─▶ pending ──claim (lease)──▶ running ──ok──────────────▶ done
//!               ▲  ▲                        │ ├─ transient error ─▶ pending (backoff)
//!               │  └── lease expired ───────┘ ├─ N attempts / permanent ─▶ dead
//!               │      (worker died)          └─ needs re-authorization ─▶ pending
//!               └──────────── operator retry (POST /ops/jobs/{id}/retry) ◀── dead     (not counted)
//! ```
//!
//! - **Crash safety.** A worker renews its job's lease four times per lease
//!   while the job runs, so the lease can be short ([`QueueConfig::lease`],
//!   20 s by default) however long the job takes. The renewals run beside
//!   the job, not between its steps (on SQLite the job may hold the write
//!   lock a renewal waits for), and a run whose lease is lost anyway stops
//!   at its next await rather than race the job's new holder. A worker that dies mid-job
//!   (panic, crash, `kill -9`) leaves its lease behind; when it expires the
//!   job is claimed again, within one lease of the crash. Handlers therefore check before they create (a call
//!   note is looked up by its `uniq` first, an incoming lead by its call).
//! - **Retries** wait `backoff_base · 2^(attempt−1)`, capped at
//!   `backoff_cap`, with equal jitter (a random wait between half and all of
//!   it, so a Kommo outage does not end in a thundering herd, and no retry
//!   comes back at once; [`callcard_calls::backoff`]). Kommo's `Retry-After`
//!   is honoured inside the client (up to its `max_retry_after`); this wait
//!   does not look at it. After `max_attempts` the job is
//!   **dead**: parked for an operator (`GET /ops/jobs?state=dead`,
//!   `POST /ops/jobs/{id}/retry`, see [`crate::ops`]).
//! - **Re-authorization.** While an account's grant is refused, its jobs
//!   wait (released without counting an attempt) instead of failing; a new
//!   installation makes them due at once.
//! - **Configuration faults.** A credential that does not open with this
//!   instance's `CALLCARD_SECRET_KEY` is no fault of the job's: the job waits
//!   the same way, uncounted, and never goes dead of it (an instance with a
//!   key that is not the database's does not start at all, see
//!   `crate::store::sealing`; this covers values sealed otherwise).
//! - **Workers**: [`QueueConfig::workers`] tokio tasks per instance. On
//!   shutdown each stops claiming, lets its current job finish for a few
//!   seconds, and otherwise releases it for another instance.
//!
//! [`QueueConfig::lease`]: crate::config::QueueConfig::lease
//! [`QueueConfig::workers`]: crate::config::QueueConfig::workers

use crate::config::QueueConfig;
use crate::kommo_access::KommoAccess;
use crate::metrics::Metrics;
pub use crate::store::jobs::Job;
use crate::store::jobs::JobRecord;
use crate::store::{now_ms, Store};
use crate::sync::{self, JobFailure, SyncContext};
use crate::transcript_links::TranscriptLinks;
use callcard_calls::backoff::{Backoff, Jitter};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// How long a stopping worker lets its current job finish before releasing it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How many times per lease a running job's lease is renewed: a renewal may
/// fail or be late a few times before the lease runs out under a live worker.
const LEASE_RENEWALS: u32 = 4;

/// The queue's handle: enqueue and wake the workers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    store: Store,
    wake: Arc<Notify>,
}

impl Queue {
    pub fn new(store: Store) -> Self {
        Self { store, wake: Arc::new(Notify::new()) }
    }

    /// Enqueues `job` for the account, due now. A no-op when the same job is
    /// already pending; when it is running, one more run is scheduled.
    pub async fn enqueue(&self, account_id: u64, job: Job) -> Result<(), sqlx::Error> {
        self.store.enqueue_job(account_id, &job, now_ms()).await?;
        self.wake();
        Ok(())
    }

    /// Tells this instance's idle workers to look for work now (other
    /// instances find it at their next poll).
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Starts `config.workers` workers; they stop when `shutdown` turns true.
    pub(crate) fn start_workers(
        &self,
        config: &QueueConfig,
        access: KommoAccess,
        transcript_links: TranscriptLinks,
        metrics: Arc<Metrics>,
        instance: &str,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        (0..config.workers)
            .map(|n| {
                let worker = Worker {
                    name: format!("{instance}/{n}"),
                    queue: self.clone(),
                    config: config.clone(),
                    access: access.clone(),
                    transcript_links: transcript_links.clone(),
                    metrics: metrics.clone(),
                };
                tokio::spawn(worker.run(shutdown.clone()))
            })
            .collect()
    }
}

/// The backoff before attempt `attempts + 1` (attempts from 1):
/// exponential, capped, with equal jitter (module docs).
pub fn backoff(config: &QueueConfig, attempts: u32, rng: &mut impl Rng) -> Duration {
    Backoff { base: config.backoff_base, cap: config.backoff_cap, jitter: Jitter::Equal }
        .delay(attempts.saturating_sub(1), rng.gen())
}

/// One worker task.
struct Worker {
    /// Unique per worker and instance: the lease owner.
    name: String,
    queue: Queue,
    config: QueueConfig,
    access: KommoAccess,
    transcript_links: TranscriptLinks,
    metrics: Arc<Metrics>,
}

impl Worker {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Register for a wake-up before looking, so an enqueue between the
            // look and the wait is not missed.
            let woken = self.queue.wake.notified();
            let claimed = match self.queue.store.claim_job(&self.name, self.config.lease).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(worker = %self.name, error = %e, "claiming a job failed");
                    None
                }
            };
            match claimed {
                Some(job) => {
                    let span = tracing::info_span!(
                        "job",
                        id = job.id,
                        account_id = job.account_id,
                        kind = job.job.kind(),
                        call_id = job.job.call_id(),
                        attempt = job.attempts
                    );
                    self.handle(job, &mut shutdown).instrument(span).await
                }
                None => {
                    tokio::select! {
                        _ = shutdown.changed() => {}
                        _ = woken => {}
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                    }
                }
            }
        }
    }

    async fn handle(&self, record: JobRecord, shutdown: &mut watch::Receiver<bool>) {
        let store = &self.queue.store;
        let id = record.id;
        if record.attempts > self.config.max_attempts {
            // Only a job whose worker kept dying gets here (attempts are
            // counted at claim): stop feeding it to workers.
            self.settle(store.bury_job(id, &self.name, "gave up: the job's worker stopped every attempt").await);
            self.metrics.jobs_dead.inc();
            return;
        }
        let run = self.run_job(&record);
        tokio::pin!(run);
        let keeper = keep_lease(store, id, &self.name, self.config.lease);
        tokio::pin!(keeper);
        // The job and its lease keeper are polled side by side, never one
        // in place of the other: on SQLite a renewal waits for the write
        // lock, and the job itself may hold it (a transaction between two
        // statements). A renewal awaited instead of the job waited for the
        // job, up to the 10 s busy timeout, while the lease ran out and a
        // second worker ran the job too (a call note written twice).
        let outcome = tokio::select! {
            outcome = &mut run => outcome,
            () = &mut keeper => return self.abandon(),
            _ = shutdown.changed() => {
                let grace = tokio::time::sleep(SHUTDOWN_GRACE);
                tokio::select! {
                    outcome = &mut run => outcome,
                    () = &mut keeper => return self.abandon(),
                    () = grace => {
                        tracing::info!("shutting down: releasing the unfinished job");
                        self.settle(store.requeue_job(id, &self.name, now_ms(), None, false).await);
                        return;
                    }
                }
            }
        };
        match outcome {
            Ok(()) => {
                self.settle(store.finish_job(id, &self.name).await);
                self.metrics.jobs_done.inc();
            }
            Err(JobFailure::Reauthorize) => {
                tracing::info!("account needs re-authorization: the job waits");
                let wait = i64::try_from(self.config.reauthorization_wait.as_millis()).unwrap_or(60_000);
                let note = "waiting: the account must install the integration again";
                self.settle(store.requeue_job(id, &self.name, now_ms() + wait, Some(note), false).await);
            }
            Err(JobFailure::Misconfigured(reason)) => {
                tracing::error!(%reason, "configuration fault: the job waits, uncounted");
                let wait = i64::try_from(self.config.reauthorization_wait.as_millis()).unwrap_or(60_000);
                self.settle(store.requeue_job(id, &self.name, now_ms() + wait, Some(&reason), false).await);
            }
            Err(JobFailure::Permanent(reason)) => {
                tracing::warn!(%reason, "job failed permanently: parked as dead");
                self.settle(store.bury_job(id, &self.name, &reason).await);
                self.metrics.jobs_failed.inc();
                self.metrics.jobs_dead.inc();
            }
            Err(JobFailure::Retry(reason)) => {
                self.metrics.jobs_failed.inc();
                if record.attempts >= self.config.max_attempts {
                    tracing::warn!(%reason, "job failed its last attempt: parked as dead");
                    self.settle(store.bury_job(id, &self.name, &reason).await);
                    self.metrics.jobs_dead.inc();
                } else {
                    let wait = backoff(&self.config, record.attempts, &mut rand::thread_rng());
                    tracing::info!(%reason, wait_ms = wait.as_millis() as u64, "job failed: retrying later");
                    let at = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4);
                    self.settle(store.requeue_job(id, &self.name, at, Some(&reason), true).await);
                }
            }
        }
    }

    /// The lease is gone: another worker may be running the job now, so this
    /// run stops at its next await instead of racing it. What it did so far
    /// is safe to redo (handlers look before they create).
    fn abandon(&self) {
        tracing::warn!("the job's lease was lost: stopping this run, the job's new holder finishes it");
        self.metrics.jobs_abandoned.inc();
    }

    /// Builds the job's context and runs it.
    async fn run_job(&self, record: &JobRecord) -> Result<(), JobFailure> {
        if self.access.needs_reauthorization(record.account_id).await.map_err(|e| JobFailure::Retry(e.to_string()))? {
            return Err(JobFailure::Reauthorize);
        }
        // The client reads the tokens too, but its errors are Kommo's: read
        // them here first so that a token that does not open is told apart
        // as a configuration fault (`JobFailure::Misconfigured`).
        self.queue.store.tokens(record.account_id).await?;
        let kommo = self.access.kommo_client(record.account_id).await?;
        let ctx = SyncContext {
            store: self.queue.store.clone(),
            kommo,
            account_id: record.account_id,
            publisher: self.access.publisher(),
            transcript_links: self.transcript_links.clone(),
        };
        sync::run_job(&ctx, &record.job).await
    }

    /// Logs a bookkeeping failure; the lease makes the job come back anyway.
    fn settle(&self, result: Result<bool, sqlx::Error>) {
        match result {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the job's lease was lost (renewals failed); another worker has it"),
            Err(e) => tracing::warn!(error = %e, "recording the job's outcome failed; its lease will expire"),
        }
    }
}

/// Renews the job's lease [`LEASE_RENEWALS`] times per lease for as long
/// as it is polled; returns only once the lease is lost: another worker
/// holds the job, or renewals failed until the lease ran out.
async fn keep_lease(store: &Store, id: i64, worker: &str, lease: Duration) {
    // The claim just set the lease.
    let mut held_until = tokio::time::Instant::now() + lease;
    let mut renew = tokio::time::interval_at(held_until - lease + lease / LEASE_RENEWALS, lease / LEASE_RENEWALS);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        renew.tick().await;
        let asked_at = tokio::time::Instant::now();
        match store.renew_job_lease(id, worker, lease).await {
            Ok(true) => held_until = asked_at + lease,
            Ok(false) => return,
            Err(e) => tracing::warn!(error = %e, "renewing the job's lease failed; trying again"),
        }
        if tokio::time::Instant::now() >= held_until {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let config = QueueConfig {
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(60),
            ..QueueConfig::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempts in 1..12 {
            let ceiling = (Duration::from_secs(2) * (1 << (attempts - 1))).min(Duration::from_secs(60));
            for _ in 0..50 {
                let wait = backoff(&config, attempts, &mut rng);
                assert!(wait <= ceiling && wait >= ceiling / 2, "attempt {attempts}: {wait:?}");
            }
        }
    }
}
