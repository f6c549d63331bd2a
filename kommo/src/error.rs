//! What can go wrong talking to Kommo, sorted by what the caller should do
//! about it.
//!
//! Kommo answers errors as `application/problem+json` (`title`, `type`,
//! `status`, `detail`, and for 400s a `validation-errors` list). [`Problem`]
//! keeps that body so a caller can log or show Kommo's own words, and
//! [`KommoError`] sorts the failure into the handful of cases a caller
//! actually branches on: authorize again, slow down, fix the request, the
//! record is gone, or "it may or may not have happened".

use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// Every failure of a [`KommoClient`](crate::KommoClient) call.
///
/// The variants are the decisions a caller makes, not HTTP trivia:
/// [`needs_reauthorization`](Self::needs_reauthorization) means "stop using
/// this account until a human installs the widget again";
/// [`may_have_been_applied`](Self::may_have_been_applied) means "before
/// creating this record again, check whether it exists".
#[derive(Debug, thiserror::Error)]
pub enum KommoError {
    /// Kommo refused the access token even after one refresh (or the token is
    /// long-lived and cannot be refreshed): it was revoked, or the integration
    /// was uninstalled.
    #[error("Kommo refused the access token (expired or revoked)")]
    Unauthorized,
    /// The refresh token itself was refused: only a new authorization (the
    /// user installing the integration again) can restore access.
    #[error("the account must be authorized again: {reason}")]
    ReauthorizationNeeded { reason: String },
    /// Kommo throttled the request (429) and retrying within the configured
    /// patience did not help, or Kommo asked for a longer pause than
    /// [`ClientConfig::max_retry_after`](crate::ClientConfig::max_retry_after).
    #[error("rate limited by Kommo (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// Kommo rejected the request's content (400): `problem.validation_errors`
    /// says which field of which item.
    #[error("Kommo rejected the request: {0}")]
    Validation(Problem),
    /// The record (or route) does not exist.
    #[error("not found in Kommo")]
    NotFound,
    /// Any other 4xx: 402 (subscription expired), 403 (no rights, account or
    /// IP blocked), 405, 409...
    #[error("Kommo refused the request with status {status}")]
    Rejected { status: u16, problem: Option<Problem> },
    /// Kommo failed (5xx) on every attempt we were allowed to make.
    #[error("Kommo failed with status {status}")]
    Server { status: u16 },
    /// The request did not finish within
    /// [`ClientConfig::request_timeout`](crate::ClientConfig::request_timeout).
    #[error("the request to Kommo timed out")]
    Timeout,
    /// The connection failed. `request_sent` is false only when the failure
    /// happened while connecting, i.e. Kommo provably never saw the request.
    #[error("transport error talking to Kommo: {detail}")]
    Transport { detail: String, request_sent: bool },
    /// Kommo answered with success but a body this client cannot read.
    #[error("could not decode Kommo's answer: {detail}")]
    Decode { detail: String },
    /// The request budget (the 7 requests per second limiter) failed, e.g.
    /// the shared store behind it is unreachable.
    #[error("request budget unavailable: {0}")]
    Budget(String),
    /// The caller asked for something this client (or Kommo) cannot do, e.g.
    /// a phone number on a lead. Nothing was sent.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl KommoError {
    /// The account's authorization is gone: mark it as needing the user to
    /// authorize the integration again and stop calling Kommo for it.
    pub fn needs_reauthorization(&self) -> bool {
        matches!(self, Self::Unauthorized | Self::ReauthorizationNeeded { .. })
    }

    /// Whether Kommo may have carried out the request even though we got an
    /// error: the request reached Kommo and the answer was lost or was a 5xx.
    /// Creating a record again after such an error may duplicate it, so the
    /// caller must first look for it (e.g.
    /// [`find_call_note_by_uniq`](crate::KommoClient::find_call_note_by_uniq)).
    pub fn may_have_been_applied(&self) -> bool {
        match self {
            Self::Timeout | Self::Server { .. } | Self::Decode { .. } => true,
            Self::Transport { request_sent, .. } => *request_sent,
            _ => false,
        }
    }

    /// A transient failure worth trying again later (after the client's own
    /// retries gave up): throttling, server errors, timeouts, broken connections.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Server { .. } | Self::Timeout | Self::Transport { .. })
    }
}

/// Kommo's `application/problem+json` error body.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub detail: Option<String>,
    /// Per-item failures of a batch request, keyed by the item's `request_id`.
    #[serde(default, rename = "validation-errors")]
    pub validation_errors: Vec<ValidationErrors>,
}

/// The validation failures of one item of a batch request.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ValidationErrors {
    /// The `request_id` the caller gave the item (Kommo numbers items "0",
    /// "1"... when none was given). Kommo sends it as a string or a number.
    #[serde(default, deserialize_with = "crate::entities::de_opt_string")]
    pub request_id: Option<String>,
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

/// One rejected field: `path` is dotted (`custom_fields_values.0.values`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct FieldError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

impl Problem {
    /// Reads a problem body; anything unreadable is kept as `detail` so the
    /// log still shows what Kommo said.
    pub(crate) fn from_body(status: u16, body: &[u8]) -> Self {
        serde_json::from_slice::<Problem>(body).unwrap_or_else(|_| Problem {
            status: Some(status),
            detail: Some(String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned()),
            ..Problem::default()
        })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title.as_deref().unwrap_or("problem"))?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        for item in &self.validation_errors {
            for e in &item.errors {
                write!(
                    f,
                    "; [{}] {} {}",
                    item.request_id.as_deref().unwrap_or("?"),
                    e.path.as_deref().unwrap_or(""),
                    e.detail.as_deref().or(e.code.as_deref()).unwrap_or("")
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kommo_validation_problem() {
        let body = br#"{"validation-errors":[{"request_id":"0","errors":[{"code":"NotSupportedChoice",
            "path":"custom_fields_values.0.field_id","detail":"The value you selected is not a valid choice."}]}],
            "title":"Bad Request","type":"https://httpstatus.es/400","status":400,"detail":"Request validation failed"}"#;
        let p = Problem::from_body(400, body);
        assert_eq!(p.status, Some(400));
        assert_eq!(p.validation_errors[0].request_id.as_deref(), Some("0"));
        assert_eq!(p.validation_errors[0].errors[0].code.as_deref(), Some("NotSupportedChoice"));
        assert!(p.to_string().contains("custom_fields_values.0.field_id"));
    }

    #[test]
    fn unreadable_problem_keeps_the_text() {
        let p = Problem::from_body(502, b"<html>bad gateway</html>");
        assert_eq!(p.status, Some(502));
        assert!(p.detail.unwrap().contains("bad gateway"));
    }

    #[test]
    fn classifies_what_the_caller_must_do() {
        assert!(KommoError::Unauthorized.needs_reauthorization());
        assert!(KommoError::ReauthorizationNeeded { reason: "revoked".into() }.needs_reauthorization());
        assert!(KommoError::Timeout.may_have_been_applied());
        assert!(!KommoError::Transport { detail: "refused".into(), request_sent: false }.may_have_been_applied());
        assert!(!KommoError::RateLimited { retry_after: None }.may_have_been_applied());
        assert!(!KommoError::NotFound.is_transient());
    }
}
