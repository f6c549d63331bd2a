//! `GET /kommo/install?code=…&referer=acme.kommo.com`: Kommo's OAuth
//! redirect after an admin installed the integration. The work is
//! [`KommoAccess::install`]; this is its HTTP face.

use crate::extract::Query;
use crate::kommo_access::{InstallError, KommoAccess};
use crate::problem::{self, Problem};
use crate::queue::Queue;
use crate::state::App;
use crate::sync::caller_id::CallerIdService;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn router() -> Router<App> {
    Router::new().route("/kommo/install", get(get_install)).method_not_allowed_fallback(problem::method_not_allowed)
}

/// Answers `{"account_id": N, "authorized": true}`; refusals are
/// problem+json naming the field (`code`, `referer`, or `error` when the
/// admin declined).
async fn get_install(
    State(access): State<KommoAccess>,
    State(caller_id): State<Arc<CallerIdService>>,
    State(queue): State<Queue>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, Problem> {
    if let Some(error) = query.get("error") {
        return Err(Problem::invalid("error", format!("Kommo reported {error:?}: the installation was not approved")));
    }
    let code = query
        .get("code")
        .map(|c| c.trim())
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or_else(|| Problem::invalid("code", "the authorization code from Kommo is missing"))?;
    let referer = query
        .get("referer")
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Problem::invalid("referer", "the account address (e.g. acme.kommo.com) is missing"))?;
    match access.install(code, referer).await {
        Ok(account_id) => {
            caller_id.authorized(account_id);
            queue.wake();
            Ok(Json(serde_json::json!({"account_id": account_id, "authorized": true})))
        }
        Err(InstallError::BadReferer) => Err(Problem::invalid("referer", InstallError::BadReferer.to_string())),
        Err(e @ InstallError::Refused(_)) => Err(Problem::invalid("code", e.to_string())),
        Err(e @ InstallError::UnknownAccount(_)) => {
            Err(Problem::new(StatusCode::NOT_FOUND, "unknown-account", "Unknown account", e.to_string())
                .with_field("referer"))
        }
        Err(e @ InstallError::Unavailable(_)) => {
            Err(Problem::new(StatusCode::BAD_GATEWAY, "kommo-unavailable", "Kommo could not be reached", e.to_string()))
        }
        Err(InstallError::Store(e)) => Err(e.into()),
    }
}
