//! `POST /kommo/{account_id}/hooks/{secret}`: Kommo's webhooks for the
//! caller index (`crate::sync::phonebook`).
//!
//! Kommo signs nothing it posts, so the destination itself is the
//! credential: the path carries a random secret per account, subscribed at
//! installation and stored only as a digest (and sealed, for subscribing
//! again). An unknown account, a malformed account id and a wrong secret get
//! the same 404, so the route tells nobody which accounts exist. The secret
//! is never logged: this module logs no path.
//!
//! The form body (`contacts[update][0][id]=…`, `kommo_client::Delivery`) is
//! applied to the index at once, in one transaction, idempotently and in any
//! order (`crate::store::phonebook`); a body that is not Kommo's form gets a
//! 400 problem naming `body`. Leads and customers that changed also get a
//! link refresh job, deduplicated per record. The handler takes only the
//! store and the queue: it never waits on intake's group commit or caller
//! ID's caches, so a burst of CRM changes cannot slow a ringing call.

use crate::extract::LimitedBody;
use crate::problem::{self, Problem};
use crate::queue::Queue;
use crate::state::App;
use crate::store::{now_ms, Store};
use crate::sync::phonebook::delivery_changes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use kommo_client::Delivery;

/// How long a new deal's link refresh waits. Kommo announces an incoming
/// lead callcard created before callcard has read Kommo's answer, which
/// names the lead's contact; by the time the refresh runs the index has
/// the links and the refresh costs no request (`sync::phonebook`).
const LINK_REFRESH_DELAY_MS: i64 = 5_000;

/// The largest delivery accepted (Kommo batches a request's changes).
pub const HOOK_BODY_LIMIT: usize = 1024 * 1024;

/// `POST /kommo/{account_id}/hooks/{secret}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct HookApplied {
    /// Changes applied to the caller index.
    pub applied: u64,
}

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/kommo/{account_id}/hooks/{secret}", post(post_hook))
        .method_not_allowed_fallback(problem::method_not_allowed)
}

/// The one answer for every destination that is not an account's.
fn no_such_hook() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "unknown-hook", "Unknown webhook destination", "no webhook is subscribed here")
}

/// Answers `{"applied": N}` (the record changes read) once they are stored.
#[utoipa::path(post, path = "/kommo/{account_id}/hooks/{secret}", tag = "kommo",
    summary = "Kommo's change webhooks for the caller index (the path's secret is the account's, subscribed at installation)",
    params(("account_id" = u64, Path, description = "The Kommo account"),
        ("secret" = String, Path, description = "The account's webhook path secret")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Kommo's form, e.g. account[id]=31415926&contacts[update][0][id]=20100001"),
    responses(
        (status = 200, description = "Applied to the index", body = HookApplied),
        (status = 400, description = "The body is not Kommo's form (field `body`), or names another account (`account[id]`)", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "No such webhook destination (unknown account and wrong secret alike)", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "Body too large", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; Kommo retries", content_type = "application/problem+json", body = Problem)
    ))]
async fn post_hook(
    State(store): State<Store>,
    State(queue): State<Queue>,
    Path((account_id, secret)): Path<(String, String)>,
    LimitedBody(body): LimitedBody<HOOK_BODY_LIMIT>,
) -> Result<Json<serde_json::Value>, Problem> {
    let account_id = account_id.parse::<u64>().ok().filter(|&id| id > 0 && i64::try_from(id).is_ok());
    let Some(account_id) = account_id else { return Err(no_such_hook()) };
    if !store.phonebook_hook_matches(account_id, &secret).await? {
        return Err(no_such_hook());
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| Problem::malformed(Some("body".into()), "the body is not UTF-8 text"))?;
    let delivery = Delivery::parse(text).map_err(|e| Problem::malformed(Some("body".into()), e.to_string()))?;
    if delivery.account_id.is_some_and(|id| id != account_id) {
        return Err(Problem::malformed(Some("account[id]".into()), "the delivery is for another account"));
    }
    let (changes, jobs) = delivery_changes(&delivery, now_ms() / 1000);
    store.apply_phonebook(account_id, &changes).await?;
    for job in &jobs {
        store.enqueue_job(account_id, job, now_ms() + LINK_REFRESH_DELAY_MS).await?;
    }
    if !jobs.is_empty() {
        queue.wake();
    }
    tracing::debug!(account_id, changes = delivery.changes.len(), "Kommo webhook applied to the caller index");
    Ok(Json(serde_json::json!({"applied": delivery.changes.len()})))
}
