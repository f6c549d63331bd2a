//! The operator's endpoints: health, metrics, and the view of the job queue.
//!
//! - `GET /healthz` → `{"status": "ok"}`, or 503 with `shutting_down` or
//!   `store_unavailable`.
//! - `GET /metrics`: Prometheus text ([`crate::metrics`]).
//! - `GET /ops/jobs?state=dead&limit=100` → `{"counts": {"pending": n, …},
//!   "jobs": [JobRecord, …]}`, newest change first. `state` is one of
//!   `pending`, `running`, `done`, `dead` (absent: all).
//! - `POST /ops/jobs/{id}/retry` → `{"job": JobRecord}`: a dead job becomes
//!   pending again with its attempts reset (409 if it is not dead).
//!
//! The job endpoints need `Authorization: Bearer <ops token>`
//! (`CALLCARD_OPS_TOKEN`), checked by the [`Operator`] extractor.
//! Without a configured token the endpoints do not exist (404), so a
//! forgotten setting never leaves them open.

use crate::config::Config;
use crate::extract::{Param, PathParam, Query};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::problem::{self, Problem};
use crate::queue::Queue;
use crate::state::{App, Lifecycle};
use crate::store::jobs::{JobRecord, JobState};
use crate::store::Store;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most jobs one listing returns.
const LIST_MAX: i64 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobList {
    pub counts: BTreeMap<String, i64>,
    #[schema(value_type = Vec<Object>)]
    pub jobs: Vec<serde_json::Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RetryAnswer {
    #[schema(value_type = Object)]
    pub job: JobRecord,
}

/// `GET /healthz`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, `shutting_down` or `store_unavailable`.
    pub status: &'static str,
}

/// The job states `GET /ops/jobs?state=` takes.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum JobStateName {
    Pending,
    Running,
    Done,
    Dead,
}

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/ops/jobs", get(list_jobs))
        .route("/ops/jobs/{id}/retry", post(retry_job))
        .method_not_allowed_fallback(problem::method_not_allowed)
}

/// A request that carries the ops token (module docs).
struct Operator;

impl<S> FromRequestParts<S> for Operator
where
    S: Send + Sync,
    Arc<Config>: FromRef<S>,
{
    type Rejection = Problem;

    /// Checks the bearer token; 404 when the endpoints are switched off.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let config = Arc::<Config>::from_ref(state);
        let Some(expected) = &config.ops_token else {
            return Err(Problem::new(StatusCode::NOT_FOUND, "not-found", "No such endpoint", "see GET /openapi.json"));
        };
        check_bearer(&parts.headers, expected).map(|()| Operator)
    }
}

fn check_bearer(headers: &axum::http::HeaderMap, expected: &str) -> Result<(), Problem> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            Problem::unauthorized(
                "missing-ops-token",
                "Operator token required",
                "send Authorization: Bearer <ops token>",
            )
            .with_field("Authorization")
        })?;
    // Compare digests: the comparison's timing says nothing about the token.
    if Sha256::digest(given.trim().as_bytes()) != Sha256::digest(expected.as_bytes()) {
        return Err(Problem::unauthorized(
            "bad-ops-token",
            "Operator token refused",
            "the bearer token is not the ops token",
        )
        .with_field("Authorization"));
    }
    Ok(())
}

/// `GET /ops/jobs`.
#[utoipa::path(get, path = "/ops/jobs", tag = "ops",
    summary = "Operator view of sync jobs, newest first",
    security(("ops_token" = [])),
    params(("state" = Option<JobStateName>, Query, description = "Only jobs in this state"),
        ("limit" = Option<i64>, Query, minimum = 1, description = "At most this many jobs")),
    responses(
        (status = 200, description = "Job counts by state, and jobs newest first", body = JobList),
        (status = 401, description = "Missing or wrong ops token", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "Operator endpoints are off (no ops token configured)", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "Bad state or limit, or an unknown parameter (field names it)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn list_jobs(
    State(store): State<Store>,
    _: Operator,
    Query(query): Query<ListQuery>,
) -> Result<Json<JobList>, Problem> {
    let state = match query.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            JobState::parse(s)
                .ok_or_else(|| Problem::invalid("state", "state must be one of pending, running, done, dead"))?,
        ),
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=LIST_MAX).contains(&limit) {
        return Err(Problem::invalid("limit", format!("limit must be between 1 and {LIST_MAX}")));
    }
    let jobs = store.jobs(state, None, limit).await?;
    let counts = store.job_counts().await?.into_iter().map(|(s, n)| (s.as_str().to_string(), n)).collect();
    let jobs = jobs.iter().map(|j| serde_json::to_value(j).unwrap_or_default()).collect();
    Ok(Json(JobList { counts, jobs }))
}

/// The job in the path: its id.
struct JobId(i64);

impl PathParam for JobId {
    const NAME: &'static str = "id";
    const EXPECTED: &'static str = "the job id in the path must be a positive number";

    fn parse(raw: &str) -> Option<Self> {
        raw.parse::<i64>().ok().filter(|id| *id > 0).map(JobId)
    }
}

/// `POST /ops/jobs/{id}/retry`.
#[utoipa::path(post, path = "/ops/jobs/{id}/retry", tag = "ops",
    summary = "Puts a dead job back in the queue",
    security(("ops_token" = [])),
    params(("id" = i64, Path, minimum = 1, description = "The job id")),
    responses(
        (status = 200, description = "Queued again", body = RetryAnswer),
        (status = 401, description = "Missing or wrong ops token", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "No such job, or operator endpoints are off", content_type = "application/problem+json", body = Problem),
        (status = 409, description = "The job is not dead", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "The id is not a positive number", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn retry_job(
    State(store): State<Store>,
    State(queue): State<Queue>,
    _: Operator,
    Param(JobId(id)): Param<JobId>,
) -> Result<Json<RetryAnswer>, Problem> {
    match store.revive_job(id).await? {
        None => {
            Err(Problem::new(StatusCode::NOT_FOUND, "unknown-job", "Unknown job", "no job has this id")
                .with_field("id"))
        }
        Some((false, job)) => Err(Problem::new(
            StatusCode::CONFLICT,
            "job-not-dead",
            "Only dead jobs can be retried",
            format!("the job is {}", job.state.as_str()),
        )
        .with_field("id")),
        Some((true, job)) => {
            tracing::info!(id, account_id = job.account_id, kind = job.job.kind(), "operator retried a dead job");
            queue.wake();
            Ok(Json(RetryAnswer { job }))
        }
    }
}

/// `GET /healthz`.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    summary = "Liveness and database reachability",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "Database unreachable, or shutting down", body = Health)
    ))]
async fn healthz(State(store): State<Store>, State(lifecycle): State<Lifecycle>) -> Response {
    match store.ping().await {
        Ok(()) if !lifecycle.is_shutting_down() => Json(Health { status: "ok" }).into_response(),
        Ok(()) => (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "shutting_down" })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "store_unavailable" })).into_response()
        }
    }
}

/// Refreshes the queue-depth gauge from the store.
pub(crate) async fn sample_job_depth(store: &Store, metrics: &Metrics) {
    match store.job_counts().await {
        Ok(counts) => {
            let depth = counts.into_iter().map(|(state, n)| (state.as_str(), n)).collect();
            *metrics.job_depth.lock().unwrap_or_else(|e| e.into_inner()) = depth;
        }
        Err(e) => tracing::warn!(error = %e, "sampling the job queue failed"),
    }
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
async fn metrics(
    State(store): State<Store>,
    State(metrics): State<Arc<Metrics>>,
    State(hub): State<Arc<Hub>>,
) -> Response {
    sample_job_depth(&store, &metrics).await;
    let body = metrics.render(hub.queue_depth());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}
