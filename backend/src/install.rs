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

/// `GET /kommo/install`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Installed {
    pub account_id: u64,
    pub authorized: bool,
}

pub(crate) fn router() -> Router<App> {
    Router::new().route("/kommo/install", get(get_install)).method_not_allowed_fallback(problem::method_not_allowed)
}

/// Answers `{"account_id": N, "authorized": true}`; refusals are
/// problem+json naming the field (`code`, `referer`, or `error` when the
/// admin declined).
#[utoipa::path(get, path = "/kommo/install", tag = "kommo",
    summary = "Kommo's OAuth redirect on installation: exchanges the code and stores the tokens encrypted",
    params(("code" = String, Query, description = "The OAuth authorization code"),
        ("referer" = String, Query, description = "The account's address, e.g. acme.kommo.com")),
    responses(
        (status = 200, description = "Installed", body = Installed),
        (status = 404, description = "The account is not provisioned", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "Missing code or referer, a refused code, or installation not approved (field names which)", content_type = "application/problem+json", body = Problem),
        (status = 502, description = "Kommo could not be reached", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn get_install(
    State(access): State<KommoAccess>,
    State(caller_id): State<Arc<CallerIdService>>,
    State(queue): State<Queue>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Installed>, Problem> {
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
            Ok(Json(Installed { account_id, authorized: true }))
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
