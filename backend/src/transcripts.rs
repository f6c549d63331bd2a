//! `GET /transcripts/{account_id}/{call_id}?expires=…&signature=…`: a
//! call's full transcript as plain text, for the link a call note's
//! excerpt ends in ([`crate::transcript_links`]). Refused (403) when the
//! link is not this backend's or has expired.

use crate::extract::{AccountId, CallId, Param, Query};
use crate::problem::{self, Problem};
use crate::state::App;
use crate::store::{now_ms, Store};
use crate::transcript_links::TranscriptLinks;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/transcripts/{account_id}/{call_id}", get(get_transcript))
        .method_not_allowed_fallback(problem::method_not_allowed)
}

#[derive(Deserialize)]
struct LinkQuery {
    expires: i64,
    signature: String,
}

/// The transcript as plain text: the summary first when there is one.
#[utoipa::path(get, path = "/transcripts/{account_id}/{call_id}", tag = "call log",
    summary = "A call's full transcript, behind the link a call note's excerpt ends in",
    params(
        ("account_id" = u64, Path, minimum = 1),
        ("call_id" = String, Path),
        ("expires" = i64, Query, description = "Unix seconds the link is valid until"),
        ("signature" = String, Query, description = "The backend's signature of the link")),
    responses(
        (status = 200, description = "The transcript", content_type = "text/plain", body = String),
        (status = 403, description = "The link has expired or is not the backend's", content_type = "application/problem+json", body = Problem),
        (status = 404, description = "The call has no transcript", content_type = "application/problem+json", body = Problem),
        (status = 422, description = "expires or signature missing or malformed", content_type = "application/problem+json", body = Problem),
        (status = 503, description = "The store is unavailable; retry", content_type = "application/problem+json", body = Problem)
    ))]
async fn get_transcript(
    State(store): State<Store>,
    State(links): State<TranscriptLinks>,
    Param(AccountId(account_id)): Param<AccountId>,
    Param(CallId(call_id)): Param<CallId>,
    Query(q): Query<LinkQuery>,
) -> Result<Response, Problem> {
    if !links.admits(account_id, &call_id, q.expires, &q.signature, now_ms() / 1000) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "link-refused",
            "This link is not valid",
            "the link has expired or was not made by this backend",
        ));
    }
    let Some(t) = store.transcript(account_id, &call_id).await? else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "no-transcript",
            "No transcript",
            "the call has no transcript",
        ));
    };
    let mut text = String::new();
    if let Some(summary) = &t.summary {
        text.push_str("AI summary: ");
        text.push_str(summary);
        text.push_str("\n\n");
    }
    text.push_str(&t.transcript);
    text.push('\n');
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        text,
    )
        .into_response())
}
