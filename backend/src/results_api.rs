//! `POST /widget/calls/{call_id}/result`: the Call summary modal's Save.
//!
//! The widget posts a [`CallResult`] (the record the call belongs on, the
//! manager's note, optionally a follow-up task) with Kommo's one-time token in
//! `X-Auth-Token`, like every other widget call ([`WidgetCaller`]). The
//! backend checks it, stores it on the call, enqueues
//! [`Job::ApplyCallResult`] and answers **202** at once with the call as the
//! widget now sees it (`has_result: true`, `result_logged: false`); the job does the Kommo work
//! ([`crate::sync::results`]) and the widget hears of its outcome through
//! the feed: `result_logged: true` once applied, else `result_error`.
//!
//! The checks, in order, each refusal a problem document naming its field:
//!
//! | problem | status | field |
//! | --- | --- | --- |
//! | no or bad token, other account's origin | 401 / 403 | `X-Auth-Token` / `Origin` |
//! | body too large, not JSON | 413 / 400 | |
//! | wrong shape or value (`CallResult::validate`) | 422 | e.g. `entity.kind`, `task.complete_till` |
//! | no such call in the token's account | 404 | `call_id` |
//! | the call rang another user | 403 | `call_id` |
//! | the chosen record does not exist in Kommo | 422 | `entity.id` |
//!
//! The record is checked with one `GET` through the account's client,
//! answered from the caller-ID name cache when the record was seen lately.
//! If Kommo cannot be asked (down, throttled, not authorized), the result is
//! accepted anyway: losing the manager's work to a Kommo hiccup would be
//! worse, and the job reports a missing record on the call if it is one.
//!
//! Saving again replaces the stored result and runs the job again; the job is
//! idempotent, so the second run moves what must move and creates nothing
//! twice.

use crate::extract::{CallId, JsonBody, Param};
use crate::kommo_access::KommoAccess;
use crate::one_time_token::WidgetCaller;
use crate::problem::{self, Problem};
use crate::queue::Queue;
use crate::state::App;
use crate::store::jobs::Job;
use crate::store::{CrmChange, Store};
use crate::sync::caller_id::CallerIdService;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use callcard_calls::feed::CallView;
use callcard_calls::result::CallResult;
use callcard_calls::EntityRef;
use kommo_client::KommoError;
use std::sync::Arc;

/// The largest result body accepted (a note is at most 10 000 characters).
const RESULT_BODY_LIMIT: usize = 128 * 1024;

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/widget/calls/{call_id}/result", post(post_result))
        .method_not_allowed_fallback(problem::method_not_allowed)
}

/// `POST /widget/calls/{call_id}/result`.
#[utoipa::path(post, path = "/widget/calls/{call_id}/result", tag = "widget",
    summary = "Save the manager's call result (the Call summary modal); applied in Kommo by a queued job",
    description = "Checks that the call is the token user's and the chosen record exists in Kommo, stores the result, enqueues the job and answers at once. Saving again replaces the result and reruns the job, which is idempotent. If the job cannot apply it, the call's `result_error` says why (in the feed).",
    security(("one_time_token" = [])),
    params(("call_id" = String, Path, description = "The PBX's call id")),
    request_body = callcard_calls::result::CallResult,
    responses(
        (status = 202, description = "Stored and enqueued: the call as the widget now sees it", body = callcard_calls::feed::CallView),
        (status = 400, description = "Malformed JSON, or bytes after it", content_type = "application/problem+json", body = Problem),
        (status = 401, description = "Token refused", content_type = "application/problem+json", body = Problem),
        (status = 403, description = "Origin is not the account's, or the call rang another user (field: call_id)", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "No such call in the account (field: call_id)", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "Body too large", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "Bad value (field: e.g. entity.kind, task.complete_till), or no such record in Kommo (field: entity.id)", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "Kommo or the store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn post_result(
    State(store): State<Store>,
    State(queue): State<Queue>,
    State(access): State<KommoAccess>,
    State(caller_id): State<Arc<CallerIdService>>,
    who: WidgetCaller,
    Param(CallId(call_id)): Param<CallId>,
    JsonBody(result): JsonBody<CallResult, RESULT_BODY_LIMIT>,
) -> Result<(StatusCode, Json<CallView>), Problem> {
    let account_id = who.account.account_id;
    result.validate().map_err(|e| Problem::invalid(e.field, e.reason))?;

    let call = store.call(account_id, &call_id).await?.ok_or_else(|| {
        Problem::new(StatusCode::NOT_FOUND, "unknown-call", "Unknown call", "no call with this id in this account")
            .with_field("call_id")
    })?;
    if call.kommo_user_id != Some(who.user_id) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "not-your-call",
            "The call belongs to another user",
            "only the user whose extension the call rang can save its result",
        )
        .with_field("call_id"));
    }
    check_entity_exists(&access, &caller_id, account_id, result.entity).await?;

    let json = serde_json::to_string(&result).map_err(|e| Problem::unavailable(&e))?;
    store
        .update_call_crm(
            account_id,
            &call_id,
            CrmChange {
                manager_result: Some(json),
                manager_note: Some(result.note.clone()),
                manager_subject: result.subject.clone(),
                // Not applied yet: the job sets it when it finishes (the
                // widget's "Logged on …"); `manager_result` marks it saved.
                has_result: Some(false),
                ..CrmChange::default()
            },
        )
        .await?;
    // A new result supersedes the reason the last one failed.
    let saved = store.set_result_error(account_id, &call_id, None).await?;
    // Stored first, then enqueued: a job that ran before the result was
    // stored would find nothing to do. If enqueueing fails the widget gets a
    // 503 and saves again, which is harmless.
    queue.enqueue(account_id, Job::ApplyCallResult { call_id: call_id.clone() }).await?;
    tracing::info!(account_id, user_id = who.user_id, call_id, entity = ?result.entity, "call result saved");
    let saved = saved.ok_or_else(|| Problem::unavailable(&"the call disappeared while saving its result"))?;
    Ok((StatusCode::ACCEPTED, Json(saved.view())))
}

/// Refuses a record Kommo says does not exist (module docs).
async fn check_entity_exists(
    access: &KommoAccess,
    caller_id: &CallerIdService,
    account_id: u64,
    entity: EntityRef,
) -> Result<(), Problem> {
    let kommo = match access.kommo_client(account_id).await {
        Ok(kommo) => kommo,
        Err(e) => {
            tracing::warn!(account_id, error = %e, "cannot check the chosen record; accepting the result");
            return Ok(());
        }
    };
    match caller_id.names().lookup(&kommo, entity).await {
        Ok(_) => Ok(()),
        Err(KommoError::NotFound) => Err(Problem::invalid(
            "entity.id",
            format!("there is no {} with id {} in this Kommo account", entity.kind, entity.id),
        )),
        Err(e) => {
            tracing::warn!(account_id, error = %e, "cannot check the chosen record; accepting the result");
            Ok(())
        }
    }
}
