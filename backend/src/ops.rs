//! The operator's view of the job queue.
//!
//! - `GET /ops/jobs?state=dead&limit=100` → `{"counts": {"pending": n, …},
//!   "jobs": [JobRecord, …]}`, newest change first. `state` is one of
//!   `pending`, `running`, `done`, `dead` (absent: all).
//! - `POST /ops/jobs/{id}/retry` → `{"job": JobRecord}`: a dead job becomes
//!   pending again with its attempts reset (409 if it is not dead).
//!
//! Both need `Authorization: Bearer <ops token>` (`CALLCARD_OPS_TOKEN`).
//! Without a configured token the endpoints do not exist (404), so a
//! forgotten setting never leaves them open.

use crate::backend::App;
use crate::problem::Problem;
use crate::store::jobs::{JobRecord, JobState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
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

#[derive(Serialize, Deserialize)]
pub struct JobList {
    pub counts: BTreeMap<String, i64>,
    pub jobs: Vec<serde_json::Value>,
}

#[derive(Serialize)]
pub struct RetryAnswer {
    pub job: JobRecord,
}

/// Checks the bearer token; 404 when the endpoints are switched off.
fn authorize(app: &App, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(expected) = &app.config.ops_token else {
        return Err(Problem::new(StatusCode::NOT_FOUND, "not-found", "No such endpoint", "see GET /openapi.json"));
    };
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
pub async fn list_jobs(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<JobList>, Problem> {
    authorize(&app, &headers)?;
    let Query(query) = query.map_err(|e| Problem::invalid("query", e.body_text()))?;
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
    let jobs = app.store.jobs(state, None, limit).await?;
    let counts = app.store.job_counts().await?.into_iter().map(|(s, n)| (s.as_str().to_string(), n)).collect();
    let jobs = jobs.iter().map(|j| serde_json::to_value(j).unwrap_or_default()).collect();
    Ok(Json(JobList { counts, jobs }))
}

/// `POST /ops/jobs/{id}/retry`.
pub async fn retry_job(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RetryAnswer>, Problem> {
    authorize(&app, &headers)?;
    let id = path
        .ok()
        .and_then(|Path(raw)| raw.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| Problem::invalid("id", "the job id in the path must be a positive number"))?;
    match app.store.revive_job(id).await? {
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
            app.queue.wake();
            Ok(Json(RetryAnswer { job }))
        }
    }
}
