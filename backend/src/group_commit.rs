//! Group commit: the webhooks that arrive while a transaction is being
//! committed are stored together in the next one.
//!
//! A webhook is acknowledged only once its event is durable, and a durable
//! commit costs about the same for one event as for a hundred (SQLite has
//! one writer and syncs its log; PostgreSQL pays a round trip per statement
//! and a WAL flush per commit). So intake does not open a transaction per
//! webhook: it hands its [`Delivery`] to a [`GroupCommit`] and waits. A
//! writer takes everything queued (up to [`MAX_DELIVERIES`]), stores it in
//! one transaction and answers each waiting handler once that is durable.
//! Under light load a batch is a single webhook and nothing waits for
//! company; under heavy load batches grow by themselves, up to the number of
//! webhooks in flight.
//!
//! If a batch fails as a whole, its deliveries are retried one by one, each
//! in its own transaction, so one delivery's failure is only its own.
//!
//! - **SQLite** (a database file): two threads (`sqlite` below). The writer
//!   stores batches through [`crate::store::sqlite_writer`] (a plain
//!   connection, statements prepared once) and commits without syncing the
//!   log; the syncer syncs it once for every batch committed meanwhile, then
//!   publishes and answers. One batch's sync overlaps the next batch's work.
//! - **PostgreSQL**: up to four async writers (one per two cores), on a
//!   thread and runtime of their own (`postgres` below), each on a
//!   connection of its own, storing with [`crate::store::postgres_writer`]
//!   (one round trip per batch where the writer can predict its calls, two
//!   with their lock otherwise; statements prepared once); a commit there
//!   is durable when it is answered. Each user's webhooks go to one writer
//!   (by a hash of account and user): a user's feed offsets are one row
//!   that every transaction appending to that user's feed locks until its
//!   commit, so writers sharing users would queue behind each other's disk
//!   syncs with small batches, where one writer gathers a big batch and
//!   commits it once. It also keeps a user's events published in offset
//!   order. Batches lock calls in one order, so writers do not deadlock,
//!   except where a predicted batch updates calls it knows (in the
//!   planner's order): two writers would then need two such calls in
//!   common at once (calls stay with their user), and PostgreSQL breaks
//!   that deadlock by failing one batch, which is then stored one delivery
//!   at a time.

use crate::metrics::Metrics;
use crate::store::postgres_writer::PostgresIntake;
use crate::store::sqlite_writer::database_file;
use crate::store::{Delivery, Dialect, Recorded, Store};
use sqlx::AnyConnection;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most deliveries stored in one transaction (the statements' bind
/// parameters stay far below both databases' limits).
pub const MAX_DELIVERIES: usize = 256;

/// PostgreSQL writers per instance, each with a connection of its own
/// (beside the pool's): one per two cores, at most four. More writers
/// commit more often with smaller batches; on a 2-core machine one writer
/// stored 14 % more webhooks of 32 users than four (bench/RESULTS.md,
/// section 3, and the git history of this line).
pub fn postgres_writers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (cores / 2).clamp(1, 4)
}

/// How many submissions may wait for an async writer before submitters
/// wait for room (a backpressure bound, not a batch size).
const QUEUE_DEPTH: usize = 4096;

/// What one submission is answered with: one result per delivery, in order.
type Answer = Vec<Result<Recorded, sqlx::Error>>;

struct Submission {
    deliveries: Vec<Delivery>,
    answer: oneshot::Sender<Answer>,
}

/// The handle intake submits deliveries through; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    queue: Queue,
}

/// Where submissions go.
#[derive(Clone)]
enum Queue {
    /// The async writers on pool connections, one queue each.
    Pool(Arc<[mpsc::Sender<Submission>]>),
    /// SQLite's writer thread.
    Sqlite(std::sync::mpsc::Sender<Submission>),
}

/// Which of `writers` stores these deliveries: the same for every webhook
/// of one user (or, unmapped, of one call).
fn writer_for(deliveries: &[Delivery], writers: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let Some(first) = deliveries.first() else { return 0 };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    first.account_id.hash(&mut hasher);
    match first.mapped_user {
        Some(user) => user.hash(&mut hasher),
        None => first.call.call_id.hash(&mut hasher),
    }
    (hasher.finish() % writers.max(1) as u64) as usize
}

impl GroupCommit {
    /// Starts the writers over `store`. They stop once every handle is
    /// dropped and the queue is empty.
    pub fn start(store: Store, metrics: Arc<Metrics>) -> Self {
        if let Some(file) = database_file(store.url()).filter(|_| store.dialect() == Dialect::Sqlite) {
            match sqlite::start(&store, &file, metrics.clone()) {
                Ok(queue) => return Self { queue: Queue::Sqlite(queue) },
                Err(error) => tracing::warn!(%error, "intake's SQLite writer did not start; intake uses the pool"),
            }
        }
        let writers = match store.dialect() {
            Dialect::Sqlite => 1,
            Dialect::Postgres => postgres_writers(),
        };
        let (queues, receivers): (Vec<_>, Vec<_>) = (0..writers).map(|_| mpsc::channel(QUEUE_DEPTH / writers)).unzip();
        match store.dialect() {
            Dialect::Sqlite => {
                for receiver in receivers {
                    tokio::spawn(write_pooled(store.clone(), metrics.clone(), receiver));
                }
            }
            Dialect::Postgres => postgres::start(store, metrics, receivers),
        }
        Self { queue: Queue::Pool(queues.into()) }
    }

    /// Stores one delivery; answers once it is durable.
    pub async fn record(&self, delivery: Delivery) -> Result<Recorded, sqlx::Error> {
        self.record_all(vec![delivery]).await.pop().unwrap_or(Err(sqlx::Error::PoolClosed))
    }

    /// Stores many deliveries (possibly in several transactions); answers
    /// one result per delivery, in order, once all are durable.
    pub async fn record_all(&self, deliveries: Vec<Delivery>) -> Answer {
        let count = deliveries.len();
        let (answer, answered) = oneshot::channel();
        let submission = Submission { deliveries, answer };
        let sent = match &self.queue {
            Queue::Pool(queues) => {
                let queue = &queues[writer_for(&submission.deliveries, queues.len())];
                queue.send(submission).await.is_ok()
            }
            Queue::Sqlite(queue) => queue.send(submission).is_ok(),
        };
        if !sent {
            return (0..count).map(|_| Err(sqlx::Error::PoolClosed)).collect();
        }
        // A writer that stopped (the store closed) drops the sender.
        answered.await.unwrap_or_else(|_| (0..count).map(|_| Err(sqlx::Error::PoolClosed)).collect())
    }
}

/// `first` and whatever else is queued (`next`), up to [`MAX_DELIVERIES`].
fn gather(first: Submission, mut next: impl FnMut() -> Option<Submission>) -> Vec<Submission> {
    let mut size = first.deliveries.len();
    let mut batch = vec![first];
    while size < MAX_DELIVERIES {
        match next() {
            Some(submission) => {
                size += submission.deliveries.len();
                batch.push(submission);
            }
            None => break,
        }
    }
    batch
}

/// Hands each submitter its share of `results`, in order.
fn answer(batch: Vec<Submission>, mut results: impl Iterator<Item = Result<Recorded, sqlx::Error>>) {
    for submission in batch {
        let answer: Answer = results.by_ref().take(submission.deliveries.len()).collect();
        // The handler may have gone (client disconnected); the event is
        // stored all the same.
        let _ = submission.answer.send(answer);
    }
}

/// One async writer on the pool (SQLite in memory): takes what is queued,
/// stores it in one transaction, answers; keeps its database connection
/// while more keeps coming.
async fn write_pooled(store: Store, metrics: Arc<Metrics>, mut receiver: mpsc::Receiver<Submission>) {
    loop {
        let Some(first) = receiver.recv().await else { return };
        let batch = gather(first, || receiver.try_recv().ok());
        let mut conn = match store.pool().acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "intake could not get a database connection");
                answer(batch, std::iter::repeat_with(|| Err(sqlx::Error::PoolTimedOut)));
                continue;
            }
        };
        let mut batch = Some(batch);
        while let Some(current) = batch.take() {
            if !store_batch(&store, &metrics, current, Writer::Pool(&mut conn)).await {
                // The connection may be broken: let the pool check it.
                break;
            }
            // Nothing queued: let the connection go back to the pool while
            // idle (holding it would keep it from the jobs, and keep the
            // pool from closing).
            batch = receiver.try_recv().ok().map(|first| gather(first, || receiver.try_recv().ok()));
        }
    }
}

/// One PostgreSQL writer on a connection of its own
/// ([`PostgresIntake`]), opened at its first batch and again after a batch
/// failed (the connection may be broken); without one, a batch is stored
/// through the pool, one delivery at a time.
async fn write_postgres(store: Store, metrics: Arc<Metrics>, mut receiver: mpsc::Receiver<Submission>) {
    let mut intake: Option<PostgresIntake> = None;
    while let Some(first) = receiver.recv().await {
        let batch = gather(first, || receiver.try_recv().ok());
        if intake.is_none() {
            intake = PostgresIntake::connect(&store, metrics.clone())
                .await
                .inspect_err(|error| tracing::warn!(%error, "intake's PostgreSQL connection did not open"))
                .ok();
        }
        let stored = match &mut intake {
            Some(conn) => store_batch(&store, &metrics, batch, Writer::Postgres(conn)).await,
            None => {
                store_one_by_one(&store, &metrics, batch).await;
                false
            }
        };
        if !stored {
            intake = None;
        }
    }
}

/// The connection an async writer stores a batch on.
enum Writer<'a> {
    Pool(&'a mut AnyConnection),
    Postgres(&'a mut PostgresIntake),
}

impl Writer<'_> {
    /// Stores the deliveries in one transaction, durably, and publishes.
    async fn record(&mut self, store: &Store, deliveries: &[Delivery]) -> Result<Vec<Recorded>, sqlx::Error> {
        match self {
            Self::Pool(conn) => store.record_on(conn, deliveries).await,
            Self::Postgres(intake) => intake.record(deliveries).await,
        }
    }
}

/// Stores a batch (one transaction per [`MAX_DELIVERIES`]) and answers its
/// submitters; false if the batch failed as a whole (its deliveries were
/// then stored one by one).
async fn store_batch(store: &Store, metrics: &Metrics, batch: Vec<Submission>, mut writer: Writer<'_>) -> bool {
    let deliveries: Vec<Delivery> = batch.iter().flat_map(|s| s.deliveries.iter().cloned()).collect();
    let mut recorded = Vec::with_capacity(deliveries.len());
    for chunk in deliveries.chunks(MAX_DELIVERIES) {
        match writer.record(store, chunk).await {
            Ok(stored) => {
                metrics.intake_committed(chunk.len());
                recorded.extend(stored);
            }
            Err(error) => {
                tracing::warn!(%error, deliveries = deliveries.len(), "a group commit failed; storing one by one");
                // Chunks committed before the failure merge again as no-ops.
                store_one_by_one(store, metrics, batch).await;
                return false;
            }
        }
    }
    answer(batch, recorded.into_iter().map(Ok));
    true
}

/// Stores each delivery of the batch in its own transaction, through the
/// pool, so one delivery's failure is only its own; answers.
async fn store_one_by_one(store: &Store, metrics: &Metrics, batch: Vec<Submission>) {
    let deliveries: Vec<Delivery> = batch.iter().flat_map(|s| s.deliveries.iter().cloned()).collect();
    let mut one_by_one = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let recorded = store.record_one(delivery).await;
        if recorded.is_ok() {
            metrics.intake_committed(1);
        }
        one_by_one.push(recorded);
    }
    answer(batch, one_by_one.into_iter());
}

/// PostgreSQL's writers: on a thread of their own, with a runtime of its
/// own, so that a writer whose round trip was answered runs at once instead
/// of queueing behind the HTTP tasks on the server's runtime (a batch is
/// one or two round trips, and nothing else of its user's can commit
/// meanwhile).
mod postgres {
    use super::{write_postgres, Submission};
    use crate::metrics::Metrics;
    use crate::store::Store;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    pub(super) fn start(store: Store, metrics: Arc<Metrics>, receivers: Vec<mpsc::Receiver<Submission>>) {
        let writers = |store: Store, metrics: Arc<Metrics>, receivers: Vec<mpsc::Receiver<Submission>>| {
            futures::future::join_all(
                receivers.into_iter().map(move |r| write_postgres(store.clone(), metrics.clone(), r)),
            )
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let runtime = match runtime {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::warn!(%error, "intake's PostgreSQL thread did not start; its writers share the server's");
                tokio::spawn(writers(store, metrics, receivers));
                return;
            }
        };
        // The writers end when every handle is dropped; then the thread.
        let spawned = std::thread::Builder::new()
            .name("callcard-intake-pg".into())
            .spawn(move || runtime.block_on(writers(store, metrics, receivers)));
        if let Err(error) = spawned {
            // Webhooks are then refused with 503 (not stored; retry).
            tracing::error!(%error, "intake's PostgreSQL thread did not start");
        }
    }
}

/// SQLite's writer: two threads. The writer stores each batch in one
/// transaction and commits it without syncing the log; the syncer syncs the
/// log once for every batch committed meanwhile, then publishes their feed
/// events and answers their submitters, in commit order. So one batch's
/// sync overlaps the next one's statements, and an acknowledged webhook is
/// on disk all the same.
mod sqlite {
    use super::{answer, gather, Submission, MAX_DELIVERIES};
    use crate::metrics::Metrics;
    use crate::store::sqlite_writer::{sync_log, SqliteIntake};
    use crate::store::{Delivery, Recorded, Store};
    use std::path::Path;
    use std::sync::mpsc;
    use std::sync::Arc;

    /// A committed batch waiting for the log sync.
    struct Committed {
        batch: Vec<Submission>,
        results: Vec<Result<Recorded, sqlx::Error>>,
    }

    pub(super) fn start(
        store: &Store,
        file: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<mpsc::Sender<Submission>, sqlx::Error> {
        let mut intake = SqliteIntake::open(store, file)?;
        let (queue, submissions) = mpsc::channel::<Submission>();
        let (to_sync, committed) = mpsc::channel::<Committed>();
        let log = intake.log_file();
        let publisher = store.clone();
        std::thread::Builder::new()
            .name("callcard-intake-sync".into())
            .spawn(move || sync(&log, &publisher, &committed))
            .map_err(sqlx::Error::Io)?;
        std::thread::Builder::new()
            .name("callcard-intake-write".into())
            .spawn(move || {
                while let Ok(first) = submissions.recv() {
                    let batch = gather(first, || submissions.try_recv().ok());
                    let results = store_batch(&mut intake, &metrics, &batch);
                    if to_sync.send(Committed { batch, results }).is_err() {
                        return;
                    }
                }
            })
            .map_err(sqlx::Error::Io)?;
        Ok(queue)
    }

    /// One transaction for the batch (per [`MAX_DELIVERIES`]); if it fails,
    /// one per delivery, so a failure is only its own delivery's.
    fn store_batch(
        intake: &mut SqliteIntake,
        metrics: &Metrics,
        batch: &[Submission],
    ) -> Vec<Result<Recorded, sqlx::Error>> {
        let deliveries: Vec<Delivery> = batch.iter().flat_map(|s| s.deliveries.iter().cloned()).collect();
        let mut recorded = Vec::with_capacity(deliveries.len());
        for chunk in deliveries.chunks(MAX_DELIVERIES) {
            match intake.record(chunk) {
                Ok(stored) => {
                    metrics.intake_committed(chunk.len());
                    recorded.extend(stored.into_iter().map(Ok));
                }
                Err(error) => {
                    tracing::warn!(%error, deliveries = deliveries.len(), "a group commit failed; storing one by one");
                    // Chunks committed before the failure merge again as no-ops.
                    return deliveries.iter().map(|delivery| store_one(intake, metrics, delivery)).collect();
                }
            }
        }
        recorded
    }

    fn store_one(intake: &mut SqliteIntake, metrics: &Metrics, delivery: &Delivery) -> Result<Recorded, sqlx::Error> {
        let stored = intake.record(std::slice::from_ref(delivery))?;
        metrics.intake_committed(1);
        stored.into_iter().next().ok_or_else(|| sqlx::Error::Protocol("record answered nothing".into()))
    }

    /// Syncs the log for everything committed so far, then publishes and
    /// answers, in commit order.
    fn sync(log: &Path, store: &Store, committed: &mpsc::Receiver<Committed>) {
        while let Ok(first) = committed.recv() {
            let mut ready = vec![first];
            ready.extend(committed.try_iter());
            let synced = sync_log(log);
            for Committed { batch, results } in ready {
                match &synced {
                    Ok(()) => {
                        let stored: Vec<Recorded> = results.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
                        store.publish_recorded(&stored);
                        answer(batch, results.into_iter());
                    }
                    Err(error) => {
                        tracing::error!(%error, "syncing the SQLite log failed; the batch is not acknowledged");
                        let failed =
                            results.iter().map(|_| Err(sqlx::Error::Io(std::io::Error::other(error.to_string()))));
                        answer(batch, failed.collect::<Vec<_>>().into_iter());
                    }
                }
            }
        }
    }
}
