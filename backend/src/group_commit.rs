//! Group commit: the webhooks that arrive while a transaction is being
//! committed are stored together in the next one.
//!
//! A webhook is acknowledged only once its event is durable, and a durable
//! commit costs the same for one event as for a hundred (SQLite has one
//! writer and syncs the log at every commit; PostgreSQL pays a round trip
//! per statement and a WAL flush per commit). So intake does not open a
//! transaction per webhook: it hands its [`Delivery`] to a [`GroupCommit`]
//! and waits. A writer task takes everything queued (up to
//! [`MAX_DELIVERIES`]), stores it with one [`Store::record`] and answers each
//! waiting handler after that commit. Under light load a batch is a single
//! webhook and nothing waits for company; under heavy load batches grow by
//! themselves, up to the number of webhooks in flight.
//!
//! If a batch fails as a whole, its deliveries are retried one by one, each
//! in its own transaction, so one delivery's failure is only its own.
//!
//! SQLite gets one writer (it serialises writers anyway), which stores
//! through [`crate::store::sqlite_writer`], a plain connection on a thread of
//! its own; PostgreSQL gets a few writers on pool connections, so one batch's
//! round trips overlap the next one's.

use crate::metrics::Metrics;
use crate::store::sqlite_writer::{database_file, SqliteWriter};
use crate::store::{Delivery, Dialect, Recorded, Store};
use sqlx::AnyConnection;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// The most deliveries stored in one transaction (the statements' bind
/// parameters stay far below both databases' limits).
pub const MAX_DELIVERIES: usize = 256;

/// How many submissions may wait for a writer before submitters wait for
/// room (a backpressure bound, not a batch size).
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
    queue: mpsc::Sender<Submission>,
}

impl GroupCommit {
    /// Starts the writer tasks over `store`. They stop once every handle is
    /// dropped and the queue is empty.
    pub fn start(store: Store, metrics: Arc<Metrics>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let receiver = Arc::new(Mutex::new(receiver));
        let sqlite = match store.dialect() {
            Dialect::Sqlite => database_file(store.url()).and_then(|file| match SqliteWriter::open(&store, &file) {
                Ok(writer) => Some(Arc::new(writer)),
                Err(error) => {
                    tracing::warn!(%error, "intake's SQLite writer did not open; intake uses the pool");
                    None
                }
            }),
            Dialect::Postgres => None,
        };
        let writers = match store.dialect() {
            Dialect::Sqlite => 1,
            Dialect::Postgres => 4,
        };
        for _ in 0..writers {
            tokio::spawn(write(store.clone(), metrics.clone(), receiver.clone(), sqlite.clone()));
        }
        Self { queue }
    }

    /// Stores one delivery; answers once it is committed.
    pub async fn record(&self, delivery: Delivery) -> Result<Recorded, sqlx::Error> {
        self.record_all(vec![delivery]).await.pop().unwrap_or(Err(sqlx::Error::PoolClosed))
    }

    /// Stores many deliveries (possibly in several transactions); answers
    /// one result per delivery, in order, once all are committed.
    pub async fn record_all(&self, deliveries: Vec<Delivery>) -> Answer {
        let count = deliveries.len();
        let (answer, answered) = oneshot::channel();
        if self.queue.send(Submission { deliveries, answer }).await.is_err() {
            return (0..count).map(|_| Err(sqlx::Error::PoolClosed)).collect();
        }
        // A writer that stopped (the store closed) drops the sender.
        answered.await.unwrap_or_else(|_| (0..count).map(|_| Err(sqlx::Error::PoolClosed)).collect())
    }
}

/// One writer: takes what is queued, stores it in one transaction, answers;
/// keeps its database connection while more keeps coming.
async fn write(
    store: Store,
    metrics: Arc<Metrics>,
    receiver: Arc<Mutex<mpsc::Receiver<Submission>>>,
    sqlite: Option<Arc<SqliteWriter>>,
) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else { return };
            gather(first, &mut receiver)
        };
        if let Some(writer) = &sqlite {
            store_batch(&store, Target::Sqlite(writer), &metrics, batch).await;
            continue;
        }
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
            if !store_batch(&store, Target::Connection(&mut conn), &metrics, current).await {
                // The connection may be broken: let the pool check it.
                break;
            }
            let mut receiver = receiver.lock().await;
            batch = match receiver.try_recv() {
                Ok(first) => Some(gather(first, &mut receiver)),
                Err(_) => None,
            };
        }
    }
}

/// Where a writer stores batches.
enum Target<'a> {
    /// A pool connection it holds (PostgreSQL; SQLite without a file).
    Connection(&'a mut AnyConnection),
    /// SQLite's own writer thread.
    Sqlite(&'a SqliteWriter),
}

impl Target<'_> {
    async fn record(&mut self, store: &Store, deliveries: &[Delivery]) -> Result<Vec<Recorded>, sqlx::Error> {
        match self {
            Target::Connection(conn) => store.record_on(conn, deliveries).await,
            Target::Sqlite(writer) => writer.record(deliveries.to_vec()).await,
        }
    }
}

/// `first` and whatever else is queued, up to [`MAX_DELIVERIES`].
fn gather(first: Submission, receiver: &mut mpsc::Receiver<Submission>) -> Vec<Submission> {
    let mut size = first.deliveries.len();
    let mut batch = vec![first];
    while size < MAX_DELIVERIES {
        match receiver.try_recv() {
            Ok(next) => {
                size += next.deliveries.len();
                batch.push(next);
            }
            Err(_) => break,
        }
    }
    batch
}

/// Stores a batch and answers its submitters; false if the batch failed as
/// a whole (its deliveries were then stored one by one).
async fn store_batch(store: &Store, mut target: Target<'_>, metrics: &Metrics, batch: Vec<Submission>) -> bool {
    let deliveries: Vec<Delivery> = batch.iter().flat_map(|s| s.deliveries.iter().cloned()).collect();
    match store_in_chunks(store, &mut target, metrics, &deliveries).await {
        Ok(recorded) => {
            answer(batch, recorded.into_iter().map(Ok));
            true
        }
        Err(error) => {
            tracing::warn!(%error, deliveries = deliveries.len(), "a group commit failed; storing one by one");
            let mut one_by_one = Vec::with_capacity(deliveries.len());
            for delivery in deliveries {
                let recorded = match &target {
                    Target::Sqlite(writer) => writer.record(vec![delivery]).await.and_then(|mut r| {
                        r.pop().ok_or_else(|| sqlx::Error::Protocol("record answered nothing".into()))
                    }),
                    Target::Connection(_) => store.record_one(delivery).await,
                };
                if recorded.is_ok() {
                    metrics.intake_commits.inc();
                    metrics.intake_deliveries.inc();
                }
                one_by_one.push(recorded);
            }
            answer(batch, one_by_one.into_iter());
            false
        }
    }
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

/// One transaction per [`MAX_DELIVERIES`] (a large PBX batch may exceed it).
async fn store_in_chunks(
    store: &Store,
    target: &mut Target<'_>,
    metrics: &Metrics,
    deliveries: &[Delivery],
) -> Result<Vec<Recorded>, sqlx::Error> {
    let mut recorded = Vec::with_capacity(deliveries.len());
    for chunk in deliveries.chunks(MAX_DELIVERIES) {
        recorded.extend(target.record(store, chunk).await?);
        metrics.intake_commits.inc();
        metrics.intake_deliveries.add(chunk.len() as u64);
    }
    Ok(recorded)
}
