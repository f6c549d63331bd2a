//! `application/problem+json` (RFC 9457): the one shape of every refusal.
//!
//! Every client mistake answers a [`Problem`] naming what was wrong and, when
//! one field is to blame, which (`field`: a JSON path such as
//! `calls[2].duration`, a header name, or a query parameter). Failures of the
//! backend itself (the database is down) are 503 problems that say nothing
//! about internals; the details go to the log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::fmt;

/// Problem `type`s are relative URI references under this prefix; the
/// OpenAPI document lists them.
pub const TYPE_PREFIX: &str = "/problems/";

/// One refusal, as sent to the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// A problem of type `/problems/{slug}`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{TYPE_PREFIX}{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    /// Names the offending field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A request value that parsed but makes no sense (422).
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "A field has an invalid value", detail)
            .with_field(field)
    }

    /// A body that is not the JSON it should be (400).
    pub fn malformed(field: Option<String>, detail: impl Into<String>) -> Self {
        let p = Self::new(StatusCode::BAD_REQUEST, "malformed-body", "The request body is malformed", detail);
        match field {
            Some(f) => p.with_field(f),
            None => p,
        }
    }

    /// A body over the endpoint's limit (413).
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The request body is too large",
            format!("the body must be at most {limit} bytes"),
        )
    }

    /// Missing or refused credentials (401).
    pub fn unauthorized(slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, slug, title, detail)
    }

    /// The backend could not do its part (503); the cause is logged, not sent.
    pub fn unavailable(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed on the backend's side");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The backend is temporarily unavailable",
            "the request was not processed; retry later",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)?;
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

/// Turns a storage failure into the 503 problem (for `?` in handlers).
impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Self {
        Self::unavailable(&e)
    }
}

impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Self {
        Self::unavailable(&format!("{e:#}"))
    }
}

/// The fallback of every router: no route has this path.
pub(crate) async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not-found", "No such endpoint", "see GET /openapi.json for the routes")
}

/// The 405 fallback each module's router sets on its routes.
pub(crate) async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "see GET /openapi.json for the routes",
    )
}

/// Describes a JSON deserialisation failure as a problem naming the path.
///
/// `serde_path_to_error` knows where in the document serde gave up; when the
/// error is about a missing key, the key itself is appended to the path.
pub fn from_json_error(err: serde_path_to_error::Error<serde_json::Error>, prefix: &str) -> Problem {
    let inner = err.inner();
    let mut path = err.path().to_string();
    // "." is the document itself, "?" a position serde could not tell.
    if path == "." || path == "?" {
        path.clear();
    }
    let message = inner.to_string();
    if let Some(missing) = message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
        path = if path.is_empty() { missing.to_string() } else { format!("{path}.{missing}") };
    }
    let field = match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path,
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{path}"),
    };
    let detail = strip_position(&message);
    match inner.classify() {
        serde_json::error::Category::Data if field.is_empty() => Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "The request body has the wrong shape",
            detail,
        ),
        serde_json::error::Category::Data => Problem::invalid(field, detail),
        _ => Problem::malformed((!field.is_empty()).then_some(field), message),
    }
}

/// serde_json appends " at line 1 column 57"; for a data error the field name
/// says more than the column.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
