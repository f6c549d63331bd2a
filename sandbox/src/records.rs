//! What a person does to records in Kommo's interface that the API cannot:
//! deleting a record and restoring it from the trash. The product never calls
//! these; tests and the host page use them to make Kommo send `delete_*` and
//! `restore_*` webhooks ([`crate::webhooks`]).
//!
//! - `DELETE /sandbox/records/{kind}/{id}` → 204 (404 when there is no such record)
//! - `POST /sandbox/records/{kind}/{id}/restore` → 204 (404 when it is not in the trash)
//!
//! `kind` is a REST collection name: `contacts`, `companies`, `leads`, `customers`.

use crate::problem::{no_content, Problem};
use crate::Sandbox;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use callcard_calls::{EntityKind, EntityRef};

fn record(kind: &str, id: &str) -> Result<EntityRef, Problem> {
    let kind = EntityKind::from_api_path(kind).ok_or_else(|| Problem::not_found(format!("no record kind {kind}")))?;
    let id = id.parse().map_err(|_| Problem::bad_request("the id must be a number"))?;
    Ok(EntityRef::new(kind, id))
}

pub async fn delete(State(sb): State<Sandbox>, Path((kind, id)): Path<(String, String)>) -> Response {
    let r = match record(&kind, &id) {
        Ok(r) => r,
        Err(problem) => return problem.into_response(),
    };
    if sb.store().trash_record(r) {
        no_content()
    } else {
        Problem::not_found(format!("{} {} not found", r.kind, r.id)).into_response()
    }
}

pub async fn restore(State(sb): State<Sandbox>, Path((kind, id)): Path<(String, String)>) -> Response {
    let r = match record(&kind, &id) {
        Ok(r) => r,
        Err(problem) => return problem.into_response(),
    };
    if sb.store().restore_record(r) {
        no_content()
    } else {
        Problem::not_found(format!("{} {} is not in the trash", r.kind, r.id)).into_response()
    }
}
