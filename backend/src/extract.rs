//! Request parsing as axum extractors whose refusals are problem documents
//! ([`Problem`]): a handler receives its inputs already checked, and a bad
//! path, query string or body never reaches it.
//!
//! - [`Param`]: one path parameter, parsed and validated by its type
//!   ([`PathParam`]); refused with 422 naming the parameter.
//! - [`Query`]: the query string as a typed struct; refused with 422
//!   naming `query`.
//! - [`LimitedBody`]: the whole body, refused with 413 above its limit.
//! - [`JsonBody`]: the body as one JSON document of type `T` ([`parse_json`]:
//!   refusals name the field; bytes after the document are refused with 400,
//!   never silently dropped).
//!
//! The authenticating extractors live with what they check: the signed
//! webhook's account in `crate::intake`, the widget caller in
//! `crate::one_time_token`, the feed ticket in `crate::ticket`, the operator
//! in `crate::ops`.

use crate::problem::{self, Problem};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

/// A value carried in the path, such as `/pbx/{account_id}/events`.
pub(crate) trait PathParam: Sized {
    /// The route's name for it, which refusals name as their `field`.
    const NAME: &'static str;
    /// What the refusal says a good value is.
    const EXPECTED: &'static str;
    /// The value, or `None` when `raw` is not one.
    fn parse(raw: &str) -> Option<Self>;
}

/// The path parameter `T::NAME`, parsed (see [`PathParam`]).
/// The account id in a path: a Kommo account id (positive, and an `i64`
/// in the database).
pub(crate) struct AccountId(pub u64);

impl PathParam for AccountId {
    const NAME: &'static str = "account_id";
    const EXPECTED: &'static str = "the account id in the path must be a Kommo account id";

    fn parse(raw: &str) -> Option<Self> {
        raw.parse::<u64>().ok().filter(|&id| id > 0 && i64::try_from(id).is_ok()).map(AccountId)
    }
}

/// The call in a path: the PBX's call id.
pub(crate) struct CallId(pub String);

impl PathParam for CallId {
    const NAME: &'static str = "call_id";
    const EXPECTED: &'static str = "the path must name a call";

    fn parse(raw: &str) -> Option<Self> {
        (!raw.is_empty()).then(|| CallId(raw.to_string()))
    }
}

pub(crate) struct Param<T>(pub T);

impl<S: Send + Sync, T: PathParam> FromRequestParts<S> for Param<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let refused = || Problem::invalid(T::NAME, T::EXPECTED);
        let params = RawPathParams::from_request_parts(parts, state).await.map_err(|_| refused())?;
        let raw = params.iter().find(|(name, _)| *name == T::NAME).map(|(_, value)| value).ok_or_else(refused)?;
        T::parse(raw).map(Param).ok_or_else(refused)
    }
}

/// The query string as `T` (`serde_urlencoded`).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub(crate) struct Query<T>(pub T);

impl From<QueryRejection> for Problem {
    fn from(e: QueryRejection) -> Self {
        Problem::invalid("query", e.body_text())
    }
}

/// The whole request body, at most `LIMIT` bytes.
pub(crate) struct LimitedBody<const LIMIT: usize>(pub Bytes);

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for LimitedBody<LIMIT> {
    type Rejection = Problem;

    async fn from_request(request: Request, _: &S) -> Result<Self, Problem> {
        let (parts, body) = request.into_parts();
        read_body(&parts.headers, body, LIMIT).await.map(LimitedBody)
    }
}

/// Reads the whole body, refusing more than `limit` bytes with a 413 problem.
pub(crate) async fn read_body(headers: &HeaderMap, body: axum::body::Body, limit: usize) -> Result<Bytes, Problem> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Problem::too_large(limit));
    }
    // A failure here is either the limit or a client that went away
    // mid-body; in the second case nobody reads the answer.
    axum::body::to_bytes(body, limit).await.map_err(|_| Problem::too_large(limit))
}

/// The body as one JSON document of type `T`, at most `LIMIT` bytes.
pub(crate) struct JsonBody<T, const LIMIT: usize>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const LIMIT: usize> FromRequest<S> for JsonBody<T, LIMIT> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let LimitedBody(body) = LimitedBody::<LIMIT>::from_request(request, state).await?;
        parse_json(&body).map(JsonBody)
    }
}

/// Reads `body` as exactly one JSON document of type `T`.
///
/// A shape error is a problem naming its field (`problem::from_json_error`);
/// anything but whitespace after the document (a second event, stray bytes)
/// is refused with 400: what a client sent is either read whole or refused,
/// never half-read.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| problem::from_json_error(e, ""))?;
    de.end().map_err(|e| Problem::malformed(None, format!("the body must be one JSON document, and {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_document_and_nothing_after_it() {
        assert_eq!(parse_json::<serde_json::Value>(b" {\"a\":1} \n").unwrap()["a"], 1);
        for trailing in [&b"{\"a\":1}{\"a\":2}"[..], b"{\"a\":1} x", b"[1] [2]", b"1 2"] {
            let refused = parse_json::<serde_json::Value>(trailing).unwrap_err();
            assert_eq!(refused.status, 400, "{}", String::from_utf8_lossy(trailing));
            assert_eq!(refused.kind, "/problems/malformed-body");
        }
    }
}
