//! `POST /widget/calls/originate`: click-to-call.
//!
//! The manager clicks a phone number in Kommo; the widget (its `phone`
//! action) posts an [`OriginateRequest`] with Kommo's one-time token, like
//! every widget call ([`WidgetCaller`]). The backend picks a call id, and
//! asks the account's PBX (its `pbx_originate_url`) to ring the manager's
//! extension and then the number ([`crate::pbx_client`], signed with the
//! webhook secret). From there the PBX reports the call like any other:
//! an outbound call under that id, so the widget pops "Calling …" and the
//! call is logged as `call_out`.
//!
//! | problem | status | field |
//! | --- | --- | --- |
//! | no or bad token, other account's origin | 401 / 403 | `X-Auth-Token` / `Origin` |
//! | body too large, not JSON | 413 / 400 | |
//! | not a phone number, unknown field | 422 | `number` |
//! | the user has no extension in the widget's settings | 409 | `extension` |
//! | click-to-call not set up for the account | 409 | `pbx_originate_url` |
//! | the PBX refused the request | 502 | |
//! | the PBX could not be reached (or timed out) | 503 | |
//!
//! Answered 202 with [`Originated`] once the PBX took the request. Nothing
//! is stored before: a refused or unreachable PBX placed no call, and one
//! that placed it reports it through the webhooks whatever this answer.

use crate::extract::JsonBody;
use crate::one_time_token::WidgetCaller;
use crate::pbx_client::{PbxClient, PbxRefusal};
use crate::problem::{self, Problem};
use crate::state::App;
use crate::store::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use callcard_calls::originate::{Originate, OriginateRequest, Originated};

/// A number and nothing else.
const ORIGINATE_BODY_LIMIT: usize = 4 * 1024;

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/widget/calls/originate", post(post_originate))
        .method_not_allowed_fallback(problem::method_not_allowed)
}

/// `POST /widget/calls/originate`.
#[utoipa::path(post, path = "/widget/calls/originate", tag = "widget",
    summary = "Click-to-call: ask the account's PBX to ring the user's extension, then the number",
    description = "The backend posts a signed `Originate` (the same HMAC as the webhooks, with the account's webhook secret) to the account's `pbx_originate_url`. The PBX then reports the call through the webhooks as an outbound call under the answered `call_id`.",
    security(("one_time_token" = [])),
    request_body = callcard_calls::originate::OriginateRequest,
    responses(
        (status = 202, description = "The PBX took the request and is ringing the extension", body = callcard_calls::originate::Originated),
        (status = 400, description = "Malformed JSON, or bytes after it", content_type = "application/problem+json", body = Problem),
        (status = 401, description = "Token refused", content_type = "application/problem+json", body = Problem),
        (status = 403, description = "Origin is not the account's", content_type = "application/problem+json", body = Problem),
        (status = 409, description = "The user has no extension (field: extension), or click-to-call is not set up for the account (field: pbx_originate_url)", content_type = "application/problem+json", body = Problem),
        (status = 413, description = "Body too large", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "Not a phone number (field: number)", content_type = "application/problem+json", body = Problem),
        (status = 502, description = "The PBX refused the request; no call was placed", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The PBX (or the store) could not be reached; no call was placed, retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn post_originate(
    State(pbx): State<PbxClient>,
    who: WidgetCaller,
    JsonBody(request): JsonBody<OriginateRequest, ORIGINATE_BODY_LIMIT>,
) -> Result<(StatusCode, Json<Originated>), Problem> {
    request.validate().map_err(|e| Problem::invalid(e.field, e.reason))?;
    let account = &who.account;
    let extension = account.extensions.extension_of(who.user_id).ok_or_else(|| {
        Problem::new(
            StatusCode::CONFLICT,
            "no-extension",
            "You have no extension",
            "an account admin maps your Kommo user to your PBX extension in the widget's settings",
        )
        .with_field("extension")
    })?;
    let url = account.pbx_originate_url.as_deref().ok_or_else(|| {
        Problem::new(
            StatusCode::CONFLICT,
            "originate-not-configured",
            "Click-to-call is not set up",
            "the account's PBX originate URL (pbx_originate_url) is not configured on the backend",
        )
        .with_field("pbx_originate_url")
    })?;
    let originate = Originate {
        call_id: format!("cc-{}", uuid::Uuid::new_v4().simple()),
        account_id: account.account_id,
        extension: extension.to_string(),
        number: request.number.trim().to_string(),
        user_id: who.user_id,
        requested_at: now_ms(),
    };
    let now_s = originate.requested_at / 1000;
    pbx.originate(url, &account.webhook_secret, &originate, now_s).await.map_err(|refusal| {
        tracing::warn!(account_id = account.account_id, user_id = who.user_id, %refusal, "originate not taken");
        match refusal {
            PbxRefusal::Unreachable(cause) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "pbx-unreachable",
                "The phone system could not be reached",
                format!("no call was placed ({cause}); try again"),
            ),
            PbxRefusal::Refused { status, .. } => Problem::new(
                StatusCode::BAD_GATEWAY,
                "pbx-refused",
                "The phone system refused the call",
                format!("no call was placed (the PBX answered {status})"),
            ),
        }
    })?;
    tracing::info!(
        account_id = account.account_id,
        user_id = who.user_id,
        call_id = originate.call_id,
        "originate taken by the PBX"
    );
    let Originate { call_id, extension, number, .. } = originate;
    Ok((StatusCode::ACCEPTED, Json(Originated { call_id, extension, number })))
}
