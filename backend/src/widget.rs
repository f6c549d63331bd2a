//! The widget's authenticated calls, made with `self.$authorizedAjax` and so
//! carrying Kommo's one-time token ([`crate::one_time_token`]):
//!
//! - `POST /widget/ticket` → a feed [`Ticket`] for the token's account and user.
//! - `PUT /widget/settings` `{"phones": <Kommo phones setting>}` → 204: the
//!   extension-to-user mapping the widget's `onSave` sends (`{"users": …}`,
//!   the key callcard used before, is taken too); an account
//!   admin's only (checked with Kommo, [`crate::admin_rights`]), 403 for
//!   anyone else.
//! - `GET /widget/status` → `{"backend": "ok", "authorized": bool,
//!   "needs_reauthorization": bool}`: the "check connection" button. The
//!   account is authorized once the integration's installation reached the
//!   backend (`GET /kommo/install`), and needs re-authorization when Kommo
//!   refused its grant (revoked, uninstalled): an admin must install again.
//! - `POST /widget/calls/{call_id}/result`: the Call summary's result, in
//!   [`crate::results_api`] (authenticated the same way).
//! - `POST /widget/calls/originate`: click-to-call, in
//!   [`crate::originate_api`] (authenticated the same way).
//!
//! Every handler takes a [`WidgetCaller`] (`crate::one_time_token`): the
//! token verified, and the request's `Origin` the token's own account's.
//! CORS admits only origins of provisioned accounts.

use crate::admin_rights::AdminCaller;
use crate::config::Config;
use crate::extract::JsonBody;
use crate::kommo_access::KommoAccess;
use crate::one_time_token::WidgetCaller;
use crate::problem::{self, Problem};
use crate::state::App;
use crate::store::Store;
use crate::ticket;
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use callcard_calls::extensions::{ExtensionMap, ExtensionMapError, OLD_SETTING_KEY, SETTING_KEY};
use callcard_calls::feed::Ticket;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The largest settings body accepted.
const SETTINGS_BODY_LIMIT: usize = 64 * 1024;

/// The widget's own routes (the feed's and the call result's are in their
/// modules; [`cors`] covers them all).
/// `GET /widget/status`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct WidgetStatus {
    /// Always `ok`.
    pub backend: &'static str,
    pub authorized: bool,
    pub needs_reauthorization: bool,
}

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/widget/ticket", post(post_ticket))
        .route("/widget/settings", put(put_settings))
        .route("/widget/status", get(get_status))
        .method_not_allowed_fallback(problem::method_not_allowed)
}

/// `GET /widget/status`.
#[utoipa::path(get, path = "/widget/status", tag = "widget",
    summary = "Whether the backend has the account authorized in Kommo (the settings page's check connection)",
    security(("one_time_token" = [])),
    responses(
        (status = 200, description = "The account's status", body = WidgetStatus),
        (status = 401, description = "Token refused (`field` names the claim)", content_type = "application/problem+json", body = Problem),
        (status = 403, description = "Origin is not the account's", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn get_status(State(access): State<KommoAccess>, who: WidgetCaller) -> Result<Json<WidgetStatus>, Problem> {
    let status = access.status(who.account.account_id).await?;
    Ok(Json(WidgetStatus {
        backend: "ok",
        authorized: status.authorized,
        needs_reauthorization: status.needs_reauthorization,
    }))
}

/// `POST /widget/ticket`.
#[utoipa::path(post, path = "/widget/ticket", tag = "widget",
    summary = "Trade a one-time token for a feed ticket bound to its account and user",
    security(("one_time_token" = [])),
    responses(
        (status = 200, description = "A ticket", body = Ticket),
        (status = 401, description = "Token refused (`field` names the claim)", content_type = "application/problem+json", body = Problem),
        (status = 403, description = "Origin is not the account's", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn post_ticket(
    State(store): State<Store>,
    State(config): State<Arc<Config>>,
    who: WidgetCaller,
) -> Result<Json<Ticket>, Problem> {
    let ticket = ticket::issue(&store, who.account.account_id, who.user_id, config.ticket_ttl).await?;
    Ok(Json(ticket))
}

/// `PUT /widget/settings`: an account admin's only ([`AdminCaller`]).
#[utoipa::path(put, path = "/widget/settings", tag = "widget",
    summary = "Save the extension-to-user mapping (the widget's `phones` setting; `users` from older widgets); account admins only (Kommo's rights.is_admin)",
    security(("one_time_token" = [])),
    request_body = callcard_calls::extensions::SettingsUpdate,
    responses(
        (status = 204, description = "Saved"),
        (status = 400, description = "Malformed JSON, or bytes after it", content_type = "application/problem+json", body = Problem),
        (status = 401, description = "Token refused (`field` names the claim)", content_type = "application/problem+json", body = Problem),
        (status = 403, description = "Origin is not the account's, or the user is not an account admin", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "Body too large", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "Duplicate extension or non-digits (field: phones.<user_id>, or users.<user_id> in the old form)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "Kommo could not confirm the user's rights; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn put_settings(
    State(store): State<Store>,
    AdminCaller(who): AdminCaller,
    JsonBody(value): JsonBody<serde_json::Value, SETTINGS_BODY_LIMIT>,
) -> Result<StatusCode, Problem> {
    let body = value.as_object();
    let setting = |key: &'static str| -> Result<Option<ExtensionMap>, Problem> {
        body.and_then(|o| o.get(key)).map(|v| ExtensionMap::parse(v).map_err(|e| extension_problem(key, e))).transpose()
    };
    // `phones`, Kommo's documented key; `users` from an older widget.
    let map = match (setting(SETTING_KEY)?, setting(OLD_SETTING_KEY)?) {
        (Some(phones), old) => phones.or_migrated(old),
        (None, Some(old)) => old,
        (None, None) => {
            return Err(Problem::invalid(
                SETTING_KEY,
                "the body must be {\"phones\": <the widget's phones setting>} (or the older {\"users\": …})",
            ))
        }
    };
    store.set_extensions(who.account.account_id, &map).await?;
    tracing::info!(
        account_id = who.account.account_id,
        user_id = who.user_id,
        extensions = map.len(),
        "extension map saved"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The problem naming the offending field under `key` (`phones.<user_id>`).
fn extension_problem(key: &str, e: ExtensionMapError) -> Problem {
    let field = match &e {
        ExtensionMapError::NotAnObject => key.to_string(),
        ExtensionMapError::BadUserId(user) => format!("{key}.{user}"),
        ExtensionMapError::NotDigits { user_id, .. } => format!("{key}.{user_id}"),
        ExtensionMapError::Duplicate { user_ids, .. } => format!("{key}.{}", user_ids[1]),
    };
    Problem::invalid(field, e.to_string())
}

/// CORS for the widget routes: only provisioned accounts' origins, checked
/// against the database so an account provisioned on another instance is
/// admitted too.
pub(crate) fn cors(store: Store) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(move |origin: HeaderValue, _parts| {
            let store = store.clone();
            async move {
                match origin.to_str() {
                    Ok(origin) => store.origin_is_known(origin).await.unwrap_or(false),
                    Err(_) => false,
                }
            }
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([header::CONTENT_TYPE, HeaderName::from_static(crate::one_time_token::HEADER)])
        .max_age(Duration::from_secs(600))
}
