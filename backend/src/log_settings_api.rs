//! The call note's section switches (`callcard_calls::note`), as the
//! widget's settings page reads and saves them, authenticated like every
//! widget call ([`WidgetCaller`]):
//!
//! - `GET /widget/log-settings` → [`LogSettingsView`]: the account's
//!   defaults, the caller's own choices, and what applies to the caller.
//! - `PUT /widget/log-settings` with [`UserLogSettings`] → the view: the
//!   caller's own choices (any user, for themselves).
//! - `PUT /widget/log-settings/account` with [`LogSettings`] → the view:
//!   the account's defaults, an admin's only ([`AdminCaller`]).
//!
//! A change applies to the next write of a call note (a call logged, a
//! recording or transcript attached, a result saved).

use crate::admin_rights::AdminCaller;
use crate::extract::JsonBody;
use crate::one_time_token::WidgetCaller;
use crate::problem::{self, Problem};
use crate::state::App;
use crate::store::Store;
use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use callcard_calls::note::{LogSettings, LogSettingsView, UserLogSettings};

/// Bodies are a few booleans.
const BODY_LIMIT: usize = 4 * 1024;

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/widget/log-settings", get(get_settings).put(put_mine))
        .route("/widget/log-settings/account", put(put_account))
        .method_not_allowed_fallback(problem::method_not_allowed)
}

async fn view(store: &Store, account_id: u64, user_id: u64) -> Result<LogSettingsView, Problem> {
    let account =
        store.account(account_id).await?.ok_or_else(|| Problem::unavailable(&"the account disappeared"))?.log_settings;
    let mine = store.user_log_settings(account_id, user_id).await?;
    Ok(LogSettingsView { account, mine, applied: account.for_user(&mine) })
}

#[utoipa::path(get, path = "/widget/log-settings", tag = "widget",
    summary = "Which call-note sections are written: the account's defaults, the caller's own choices, what applies",
    security(("one_time_token" = [])),
    responses(
        (status = 200, description = "The switches", body = LogSettingsView),
        (status = 401, description = "Token refused (`field` names the claim)", content_type = "application/problem+json", body = Problem),
        (status = 403, description = "Origin is not the account's", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn get_settings(State(store): State<Store>, who: WidgetCaller) -> Result<Json<LogSettingsView>, Problem> {
    Ok(Json(view(&store, who.account.account_id, who.user_id).await?))
}

#[utoipa::path(put, path = "/widget/log-settings", tag = "widget",
    summary = "Save the caller's own section switches (unset ones follow the account)",
    security(("one_time_token" = [])),
    request_body = UserLogSettings,
    responses(
        (status = 200, description = "Saved; the switches now", body = LogSettingsView),
        (status = 400, description = "Malformed JSON, or bytes after it", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "Body too large", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "An unknown switch or a value that is not a boolean", content_type = "application/problem+json", body = Problem),
        (status = 401, description = "Token refused (`field` names the claim)", content_type = "application/problem+json", body = Problem),
        (status = 403, description = "Origin is not the account's", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn put_mine(
    State(store): State<Store>,
    who: WidgetCaller,
    JsonBody(mine): JsonBody<UserLogSettings, BODY_LIMIT>,
) -> Result<Json<LogSettingsView>, Problem> {
    store.set_user_log_settings(who.account.account_id, who.user_id, &mine).await?;
    tracing::info!(account_id = who.account.account_id, user_id = who.user_id, "own log settings saved");
    Ok(Json(view(&store, who.account.account_id, who.user_id).await?))
}

#[utoipa::path(put, path = "/widget/log-settings/account", tag = "widget",
    summary = "Save the account's default section switches and missed-call tasks; account admins only",
    security(("one_time_token" = [])),
    request_body = LogSettings,
    responses(
        (status = 200, description = "Saved; the switches now", body = LogSettingsView),
        (status = 400, description = "Malformed JSON, or bytes after it", content_type = "application/problem+json", body = Problem),
        (status = 403, description = "Not an admin of the account, or Origin is not the account's", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "Body too large", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "An unknown switch or a value that is not a boolean", content_type = "application/problem+json", body = Problem),
        (status = 401, description = "Token refused (`field` names the claim)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store or Kommo's rights answer is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn put_account(
    State(store): State<Store>,
    AdminCaller(who): AdminCaller,
    JsonBody(defaults): JsonBody<LogSettings, BODY_LIMIT>,
) -> Result<Json<LogSettingsView>, Problem> {
    store.set_log_settings(who.account.account_id, &defaults).await?;
    tracing::info!(account_id = who.account.account_id, user_id = who.user_id, "account log settings saved");
    Ok(Json(view(&store, who.account.account_id, who.user_id).await?))
}
