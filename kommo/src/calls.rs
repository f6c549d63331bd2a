//! Call logging: `POST /api/v4/calls`.
//!
//! Kommo finds the record itself (last 10 digits: the single active lead,
//! else the single customer, else the contact/company) and adds a call note
//! there. An unmatched call is not added: it comes back under
//! `_embedded.errors`. Kommo does **not** deduplicate: posting the same call
//! twice logs it twice, so this request is never retried once it may have
//! reached Kommo (see [`crate::retry`]).

use crate::entities::{de_opt_string, parse_kind};
use crate::http::{embedded, ApiRequest, KommoClient};
use crate::KommoError;
use callcard_calls::{Direction, EntityRef};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// Kommo's `call_status` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallStatus {
    LeftMessage = 1,
    CallBackLater = 2,
    NotAvailable = 3,
    HadConversation = 4,
    InvalidNumber = 5,
    NoConnection = 6,
    LineBusy = 7,
}

impl CallStatus {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl Serialize for CallStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

/// One call to log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewCall {
    pub direction: Direction,
    /// Seconds.
    pub duration: u32,
    /// The integration's name, shown on the call note.
    pub source: String,
    /// The other party's number.
    pub phone: String,
    /// The PBX's call id: lets a later recording or note find this call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uniq: Option<String>,
    /// The recording URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_status: Option<CallStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responsible_user_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<u64>,
    /// Unix seconds; Kommo uses "now" when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    /// Echoed back in the answer so results can be matched to calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl NewCall {
    /// A call with the required fields; the rest are `None`.
    pub fn new(direction: Direction, duration: u32, source: impl Into<String>, phone: impl Into<String>) -> Self {
        Self {
            direction,
            duration,
            source: source.into(),
            phone: phone.into(),
            uniq: None,
            link: None,
            call_result: None,
            call_status: None,
            responsible_user_id: None,
            created_by: None,
            created_at: None,
            request_id: None,
        }
    }
}

/// A call Kommo logged, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedCall {
    pub id: u64,
    pub entity: EntityRef,
    pub request_id: Option<String>,
}

/// A call Kommo did not log (typically: no record has the number). The
/// shape of these items is not documented beyond `request_id`, so the whole
/// item is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct CallError {
    pub request_id: Option<String>,
    pub detail: Option<String>,
    pub raw: Value,
}

/// The answer to a batch: what was logged and what was not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallsAnswer {
    pub calls: Vec<LoggedCall>,
    pub errors: Vec<CallError>,
}

impl CallsAnswer {
    /// The outcome for the call sent with `request_id`: `None` when Kommo
    /// said nothing about it.
    pub fn result_for(&self, request_id: &str) -> Option<Result<&LoggedCall, &CallError>> {
        if let Some(c) = self.calls.iter().find(|c| c.request_id.as_deref() == Some(request_id)) {
            return Some(Ok(c));
        }
        self.errors.iter().find(|e| e.request_id.as_deref() == Some(request_id)).map(Err)
    }
}

#[derive(Deserialize)]
struct RawCall {
    id: u64,
    entity_id: u64,
    entity_type: Value,
    #[serde(default, deserialize_with = "de_opt_string")]
    request_id: Option<String>,
}

impl KommoClient {
    /// Logs `calls` in one request. Items without a `request_id` get their
    /// index ("0", "1"...), as Kommo numbers them, so
    /// [`CallsAnswer::result_for`] always works.
    pub async fn add_calls(&self, calls: &[NewCall]) -> Result<CallsAnswer, KommoError> {
        let calls: Vec<NewCall> = calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut c = c.clone();
                c.request_id.get_or_insert_with(|| i.to_string());
                c
            })
            .collect();
        let req = ApiRequest::create("/api/v4/calls", &calls)?;
        let Some(answer) = self.send::<Value>(&req).await? else { return Ok(CallsAnswer::default()) };
        let mut out = CallsAnswer::default();
        for raw in embedded::<RawCall>(&answer, "calls")? {
            let kind = parse_kind(&raw.entity_type)
                .ok_or_else(|| KommoError::Decode { detail: format!("call entity_type {}", raw.entity_type) })?;
            out.calls.push(LoggedCall {
                id: raw.id,
                entity: EntityRef::new(kind, raw.entity_id),
                request_id: raw.request_id,
            });
        }
        for raw in embedded::<Value>(&answer, "errors")? {
            let request_id = raw.get("request_id").and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            let detail = ["detail", "title", "message"]
                .iter()
                .find_map(|k| raw.get(*k).and_then(Value::as_str))
                .map(str::to_string);
            out.errors.push(CallError { request_id, detail, raw });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_only_what_is_set() {
        let mut call = NewCall::new(Direction::Inbound, 42, "callcard", "+18305703077");
        call.call_status = Some(CallStatus::HadConversation);
        let v = serde_json::to_value(&call).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"direction": "inbound", "duration": 42, "source": "callcard",
                "phone": "+18305703077", "call_status": 4})
        );
    }
}
