//! Kommo's answers: `application/hal+json` bodies, 204 for empty lists, and
//! `application/problem+json` errors.
//!
//! A Kommo 400 looks like this (the shape the backend's client parses):
//!
//! ```json
//! {"title": "Bad Request", "type": "https://httpstatus.es/400", "status": 400,
//!  "detail": "Request validation failed",
//!  "validation-errors": [{"request_id": "0",
//!    "errors": [{"code": "FieldMissing", "path": "phone", "detail": "This field is missing."}]}]}
//! ```
//!
//! The error `code` strings Kommo uses are only partly documented
//! (`NotSupportedChoice` is seen in the wild); the sandbox uses
//! `FieldMissing`, `InvalidType`, `NotSupportedChoice`, `InvalidValue` and
//! `NotFound`, and clients must not depend on them.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Map, Value};

pub const HAL_JSON: &str = "application/hal+json";
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A successful Kommo answer: `application/hal+json`.
pub fn hal(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(HAL_JSON));
    r
}

/// `200 application/hal+json`.
pub fn ok(body: Value) -> Response {
    hal(StatusCode::OK, body)
}

/// Kommo answers an empty list with `204 No Content` and no body, not `[]`.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// One field's error inside `validation-errors`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub code: String,
    pub path: String,
    pub detail: String,
}

/// The errors of one element of a batch, named by its `request_id`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RequestErrors {
    pub request_id: String,
    pub errors: Vec<FieldError>,
}

/// An `application/problem+json` answer.
#[derive(Clone, Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    pub hint: Option<String>,
    pub validation_errors: Vec<RequestErrors>,
    /// Seconds for a `Retry-After` header (429s).
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, detail: detail.into(), hint: None, validation_errors: Vec::new(), retry_after: None }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// A 400 carrying `validation-errors`.
    pub fn validation(errors: Vec<RequestErrors>) -> Self {
        let mut p = Self::bad_request("Request validation failed");
        p.validation_errors = errors;
        p
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut p = Self::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests: at most 7 per second per account");
        p.retry_after = Some(retry_after);
        p
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn body(&self) -> Value {
        let mut o = Map::new();
        o.insert("title".into(), json!(self.status.canonical_reason().unwrap_or("Error")));
        o.insert("type".into(), json!(format!("https://httpstatus.es/{}", self.status.as_u16())));
        o.insert("status".into(), json!(self.status.as_u16()));
        o.insert("detail".into(), json!(self.detail));
        if let Some(h) = &self.hint {
            o.insert("hint".into(), json!(h));
        }
        if !self.validation_errors.is_empty() {
            o.insert("validation-errors".into(), json!(self.validation_errors));
        }
        Value::Object(o)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.body().to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// Parses a request body as JSON, answering Kommo-style when it is not.
pub fn parse_body(body: &[u8]) -> Result<Value, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request("Empty request body"));
    }
    serde_json::from_slice(body).map_err(|e| Problem::bad_request(format!("Request body is not valid JSON: {e}")))
}

/// Batch endpoints take a JSON array; this returns its items, or a
/// validation problem when the body is something else.
pub fn parse_array(body: &[u8]) -> Result<Vec<Value>, Problem> {
    match parse_body(body)? {
        Value::Array(items) if !items.is_empty() => Ok(items),
        Value::Array(_) => Err(Problem::validation(vec![RequestErrors {
            request_id: "0".into(),
            errors: vec![FieldError {
                code: "InvalidValue".into(),
                path: "".into(),
                detail: "The request must contain at least one element.".into(),
            }],
        }])),
        _ => Err(Problem::validation(vec![RequestErrors {
            request_id: "0".into(),
            errors: vec![FieldError {
                code: "InvalidType".into(),
                path: "".into(),
                detail: "The request body must be an array.".into(),
            }],
        }])),
    }
}

/// Kommo's batch rule: the body is a non-empty array, every element is
/// checked (`check` gets it with its index) before anything is stored, and
/// one refused element refuses the whole batch, reporting every element's
/// errors at once. Returns the checked elements, in order.
pub fn check_batch<T>(
    body: &[u8],
    mut check: impl FnMut(&Value, usize) -> Result<T, RequestErrors>,
) -> Result<Vec<T>, Problem> {
    let items = parse_array(body)?;
    let (mut checked, mut errors) = (Vec::with_capacity(items.len()), Vec::new());
    for (index, item) in items.iter().enumerate() {
        match check(item, index) {
            Ok(done) => checked.push(done),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(checked)
    } else {
        Err(Problem::validation(errors))
    }
}

/// The `id` every element of a PATCH batch must carry.
pub fn element_id(item: &Value, index: usize) -> Result<u64, RequestErrors> {
    let mut f = Fields::new(item, index);
    let id = f.req_u64("id");
    f.finish().map(|_| id)
}

/// Reads the fields of one batch element, collecting every error (Kommo
/// reports them all at once, each with the element's `request_id`).
pub struct Fields<'a> {
    pub item: &'a Value,
    pub request_id: String,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// `index` names the element when it carries no `request_id` of its own.
    pub fn new(item: &'a Value, index: usize) -> Self {
        let request_id = match item.get("request_id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => index.to_string(),
        };
        let mut f = Self { item, request_id, errors: Vec::new() };
        if !item.is_object() {
            f.error("InvalidType", "", "The element must be an object.");
        }
        f
    }

    pub fn error(&mut self, code: &str, path: &str, detail: &str) {
        self.errors.push(FieldError { code: code.into(), path: path.into(), detail: detail.into() });
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.item.get(key).filter(|v| !v.is_null())
    }

    /// A required string (numbers are accepted and printed, as PHP-born APIs do).
    pub fn req_str(&mut self, key: &str) -> String {
        match self.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(_)) => {
                self.error("InvalidValue", key, "This value should not be blank.");
                String::new()
            }
            Some(_) => {
                self.error("InvalidType", key, "This value should be of type string.");
                String::new()
            }
            None => {
                self.error("FieldMissing", key, "This field is missing.");
                String::new()
            }
        }
    }

    pub fn opt_str(&mut self, key: &str) -> Option<String> {
        match self.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                self.error("InvalidType", key, "This value should be of type string.");
                None
            }
            None => None,
        }
    }

    /// A required non-negative integer (numeric strings accepted).
    pub fn req_u64(&mut self, key: &str) -> u64 {
        match self.get(key) {
            None => {
                self.error("FieldMissing", key, "This field is missing.");
                0
            }
            Some(_) => self.opt_u64(key).unwrap_or(0),
        }
    }

    pub fn opt_u64(&mut self, key: &str) -> Option<u64> {
        let v = self.get(key)?;
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if n.is_none() {
            self.error("InvalidType", key, "This value should be of type int.");
        }
        n
    }

    pub fn opt_i64(&mut self, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        let n = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if n.is_none() {
            self.error("InvalidType", key, "This value should be of type int.");
        }
        n
    }

    pub fn opt_bool(&mut self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.error("InvalidType", key, "This value should be of type bool.");
                None
            }
        }
    }

    /// `Ok` when no error was found, else this element's `validation-errors` entry.
    pub fn finish(self) -> Result<String, RequestErrors> {
        if self.errors.is_empty() {
            Ok(self.request_id)
        } else {
            Err(RequestErrors { request_id: self.request_id, errors: self.errors })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_has_kommo_shape() {
        let item = json!({"request_id": "r1", "duration": "x"});
        let mut f = Fields::new(&item, 0);
        f.req_str("phone");
        f.req_u64("duration");
        let err = f.finish().unwrap_err();
        let body = Problem::validation(vec![err]).body();
        assert_eq!(body["status"], 400);
        assert_eq!(body["validation-errors"][0]["request_id"], "r1");
        assert_eq!(body["validation-errors"][0]["errors"][0]["path"], "phone");
        assert_eq!(body["validation-errors"][0]["errors"][1]["code"], "InvalidType");
    }

    #[test]
    fn batches_must_be_non_empty_arrays() {
        assert!(parse_array(b"[]").is_err());
        assert!(parse_array(b"{}").is_err());
        assert!(parse_array(b"not json").is_err());
        assert_eq!(parse_array(b"[{}]").unwrap().len(), 1);
    }
}
