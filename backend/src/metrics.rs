//! Prometheus metrics, in the text exposition format at `GET /metrics`.
//!
//! A handful of atomics are all this service needs, so they are written by
//! hand rather than through a metrics framework.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Default, Debug)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything the backend counts.
#[derive(Default, Debug)]
pub struct Metrics {
    /// PBX events stored that changed a call.
    pub events_stored: Counter,
    /// PBX events that were retries (stored, nothing changed).
    pub events_unchanged: Counter,
    /// PBX requests refused (signature, account, body).
    pub events_rejected: Counter,
    /// Transactions intake's group commit committed (events stored per
    /// commit = deliveries / commits).
    pub intake_commits: Counter,
    /// Deliveries those transactions stored.
    pub intake_deliveries: Counter,
    /// Microseconds intake's PostgreSQL writers spent in each stage of their
    /// transactions ([`IntakeStage`]), summed.
    pub intake_stage_micros: [Counter; 3],
    /// Batches intake's PostgreSQL writers stored in one round trip, their
    /// calls predicted (`crate::store::postgres_writer`).
    pub intake_predicted: Counter,
    /// Batches whose prediction PostgreSQL refused (then stored with the
    /// calls' lock).
    pub intake_mispredicted: Counter,
    /// Feed events sent over WebSockets.
    pub pushed_websocket: Counter,
    /// Feed events answered to polls.
    pub pushed_poll: Counter,
    /// Feed events announced by other instances.
    pub notifications_received: Counter,
    /// Feed events this instance announced to the other instances.
    pub notices_announced: Counter,
    /// Feed events not announced: no other instance was present.
    pub notices_alone: Counter,
    /// Other instances heard lately (`crate::presence`).
    pub feed_peers: Gauge,
    /// Open feed WebSockets.
    pub connected_clients: Gauge,
    /// Answers with a 4xx status.
    pub client_errors: Counter,
    /// Answers with a 5xx status.
    pub server_errors: Counter,
    /// Jobs completed.
    pub jobs_done: Counter,
    /// Job attempts that failed (retried or not).
    pub jobs_failed: Counter,
    /// Jobs parked as dead.
    pub jobs_dead: Counter,
    /// Runs stopped because their lease was lost (another worker has the job).
    pub jobs_abandoned: Counter,
    /// Kommo token refreshes this instance made.
    pub token_refreshes: Counter,
    /// Jobs per state, as last sampled from the store.
    pub job_depth: std::sync::Mutex<Vec<(&'static str, i64)>>,
}

/// The stages of a transaction of intake's PostgreSQL writer
/// (`crate::store::postgres_writer`).
#[derive(Clone, Copy, Debug)]
pub enum IntakeStage {
    /// `BEGIN` and the calls' lock, one round trip.
    Lock = 0,
    /// The merge in memory, and the arrays for the write.
    Merge = 1,
    /// The write and `COMMIT`, one round trip, durable when answered.
    WriteCommit = 2,
}

impl IntakeStage {
    const ALL: [IntakeStage; 3] = [Self::Lock, Self::Merge, Self::WriteCommit];

    fn label(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Merge => "merge",
            Self::WriteCommit => "write_commit",
        }
    }
}

impl Metrics {
    /// Counts time spent in a stage of an intake transaction.
    pub fn intake_stage(&self, stage: IntakeStage, took: std::time::Duration) {
        self.intake_stage_micros[stage as usize].add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    /// Counts one intake transaction that stored `deliveries` webhooks.
    pub fn intake_committed(&self, deliveries: usize) {
        self.intake_commits.inc();
        self.intake_deliveries.add(deliveries as u64);
    }

    /// Renders the text format; `queue_depth` is sampled by the caller.
    pub fn render(&self, queue_depth: usize) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "callcard_events_received_total",
            "counter",
            "PBX events received, by result.",
            &[
                ("{result=\"stored\"}", self.events_stored.get().to_string()),
                ("{result=\"unchanged\"}", self.events_unchanged.get().to_string()),
                ("{result=\"rejected\"}", self.events_rejected.get().to_string()),
            ],
        );
        family(
            "callcard_intake_commits_total",
            "counter",
            "Transactions intake committed (group commit: many webhooks per transaction).",
            &[("", self.intake_commits.get().to_string())],
        );
        family(
            "callcard_intake_deliveries_total",
            "counter",
            "Webhook deliveries stored by those transactions.",
            &[("", self.intake_deliveries.get().to_string())],
        );
        let stages: Vec<(String, String)> = IntakeStage::ALL
            .iter()
            .map(|&stage| {
                let micros = self.intake_stage_micros[stage as usize].get();
                (format!("{{stage=\"{}\"}}", stage.label()), format!("{:.6}", micros as f64 / 1e6))
            })
            .collect();
        let stages: Vec<(&str, String)> = stages.iter().map(|(l, v)| (l.as_str(), v.clone())).collect();
        family(
            "callcard_intake_stage_seconds_total",
            "counter",
            "Time intake's PostgreSQL writers spent in each stage of their transactions.",
            &stages,
        );
        family(
            "callcard_intake_predictions_total",
            "counter",
            "Batches intake's PostgreSQL writers stored in one round trip from predicted calls, and those whose \
             prediction was wrong (then stored with the calls' lock).",
            &[
                ("{outcome=\"stored\"}", self.intake_predicted.get().to_string()),
                ("{outcome=\"wrong\"}", self.intake_mispredicted.get().to_string()),
            ],
        );
        family(
            "callcard_feed_events_pushed_total",
            "counter",
            "Feed events delivered to widgets, by transport.",
            &[
                ("{transport=\"websocket\"}", self.pushed_websocket.get().to_string()),
                ("{transport=\"poll\"}", self.pushed_poll.get().to_string()),
            ],
        );
        family(
            "callcard_feed_notifications_total",
            "counter",
            "Feed events announced by other instances (PostgreSQL NOTIFY).",
            &[("", self.notifications_received.get().to_string())],
        );
        family(
            "callcard_feed_notices_total",
            "counter",
            "This instance's feed events, by whether they were announced to other instances (PostgreSQL NOTIFY) or no other instance was present.",
            &[
                ("{outcome=\"announced\"}", self.notices_announced.get().to_string()),
                ("{outcome=\"alone\"}", self.notices_alone.get().to_string()),
            ],
        );
        family(
            "callcard_feed_peers",
            "gauge",
            "Other instances on this PostgreSQL schema that greeted this one lately (within three hello intervals).",
            &[("", self.feed_peers.get().to_string())],
        );
        family(
            "callcard_connected_clients",
            "gauge",
            "Open feed WebSockets.",
            &[("", self.connected_clients.get().to_string())],
        );
        family(
            "callcard_feed_queue_depth",
            "gauge",
            "Feed events waiting in in-process channels.",
            &[("", queue_depth.to_string())],
        );
        family(
            "callcard_errors_total",
            "counter",
            "Error answers, by class.",
            &[
                ("{class=\"client\"}", self.client_errors.get().to_string()),
                ("{class=\"server\"}", self.server_errors.get().to_string()),
            ],
        );
        family(
            "callcard_jobs_total",
            "counter",
            "CRM-sync job outcomes on this instance.",
            &[
                ("{outcome=\"done\"}", self.jobs_done.get().to_string()),
                ("{outcome=\"failed\"}", self.jobs_failed.get().to_string()),
                ("{outcome=\"dead\"}", self.jobs_dead.get().to_string()),
                ("{outcome=\"abandoned\"}", self.jobs_abandoned.get().to_string()),
            ],
        );
        let depth = self.job_depth.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let samples: Vec<(String, String)> =
            depth.iter().map(|(state, n)| (format!("{{state=\"{state}\"}}"), n.to_string())).collect();
        let samples: Vec<(&str, String)> = samples.iter().map(|(l, v)| (l.as_str(), v.clone())).collect();
        family("callcard_jobs", "gauge", "Jobs in the durable queue, by state (all instances).", &samples);
        family(
            "callcard_kommo_token_refreshes_total",
            "counter",
            "Kommo access-token refreshes made by this instance.",
            &[("", self.token_refreshes.get().to_string())],
        );
        out
    }
}
