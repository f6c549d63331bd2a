//! The widget's authenticated calls, made with `self.$authorizedAjax` and so
//! carrying Kommo's one-time token ([`crate::one_time_token`]):
//!
//! - `POST /widget/ticket` → a feed [`Ticket`] for the token's account and user.
//! - `PUT /widget/settings` `{"users": <Kommo users setting>}` → 204: the
//!   extension-to-user mapping the widget's `onSave` sends.
//! - `GET /widget/status` → `{"backend": "ok", "authorized": bool,
//!   "needs_reauthorization": bool}`: the "check connection" button. The
//!   account is authorized once the integration's installation reached the
//!   backend (`GET /kommo/install`), and needs re-authorization when Kommo
//!   refused its grant (revoked, uninstalled): an admin must install again.
//! - `POST /widget/calls/{call_id}/result`: the Call summary's result, in
//!   [`crate::results_api`] (authenticated the same way).
//!
//! CORS admits only origins of provisioned accounts, and a request whose
//! `Origin` is not the token's own account's origin is refused: a page on one
//! account cannot act for another even with a valid token.

use crate::backend::App;
use crate::intake::read_body;
use crate::problem::Problem;
use crate::store::accounts::normalize_origin;
use crate::ticket;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::Json;
use callcard_calls::extensions::{ExtensionMap, ExtensionMapError};
use callcard_calls::feed::Ticket;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The largest settings body accepted.
const SETTINGS_BODY_LIMIT: usize = 64 * 1024;

/// Verifies the token and that the request comes from the account's origin.
pub(crate) async fn caller(app: &App, headers: &HeaderMap) -> Result<crate::one_time_token::Verified, Problem> {
    let verified = app.verifier.verify(headers, &app.store).await?;
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        if normalize_origin(origin) != verified.account.origin {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "wrong-origin",
                "The request comes from another account's origin",
                "the Origin header must be the origin of the token's account",
            )
            .with_field("Origin"));
        }
    }
    Ok(verified)
}

/// `GET /widget/status`.
pub async fn get_status(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<serde_json::Value>, Problem> {
    let who = caller(&app, &headers).await?;
    let status = app.access.status(who.account.account_id).await?;
    Ok(Json(serde_json::json!({
        "backend": "ok",
        "authorized": status.authorized,
        "needs_reauthorization": status.needs_reauthorization,
    })))
}

/// `POST /widget/ticket`.
pub async fn post_ticket(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<Ticket>, Problem> {
    let who = caller(&app, &headers).await?;
    let ticket = ticket::issue(&app.store, who.account.account_id, who.user_id, app.config.ticket_ttl).await?;
    Ok(Json(ticket))
}

/// `PUT /widget/settings`.
pub async fn put_settings(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Result<StatusCode, Problem> {
    let who = caller(&app, &headers).await?;
    let body = read_body(&headers, body, SETTINGS_BODY_LIMIT).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| Problem::malformed(None, format!("the body is not JSON: {e}")))?;
    let users = value
        .as_object()
        .and_then(|o| o.get("users"))
        .ok_or_else(|| Problem::invalid("users", "the body must be {\"users\": <the widget's users setting>}"))?;
    let map = ExtensionMap::parse(users).map_err(extension_problem)?;
    app.store.set_extensions(who.account.account_id, &map).await?;
    tracing::info!(
        account_id = who.account.account_id,
        user_id = who.user_id,
        extensions = map.len(),
        "extension map saved"
    );
    Ok(StatusCode::NO_CONTENT)
}

fn extension_problem(e: ExtensionMapError) -> Problem {
    let field = match &e {
        ExtensionMapError::NotAnObject => "users".to_string(),
        ExtensionMapError::BadUserId(key) => format!("users.{key}"),
        ExtensionMapError::NotDigits { user_id, .. } => format!("users.{user_id}"),
        ExtensionMapError::Duplicate { user_ids, .. } => format!("users.{}", user_ids[1]),
    };
    Problem::invalid(field, e.to_string())
}

/// CORS for the widget routes: only provisioned accounts' origins, checked
/// against the database so an account provisioned on another instance is
/// admitted too.
pub fn cors(app: Arc<App>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(move |origin: HeaderValue, _parts| {
            let app = app.clone();
            async move {
                match origin.to_str() {
                    Ok(origin) => app.store.origin_is_known(origin).await.unwrap_or(false),
                    Err(_) => false,
                }
            }
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([header::CONTENT_TYPE, HeaderName::from_static(crate::one_time_token::HEADER)])
        .max_age(Duration::from_secs(600))
}
