//! Caller ID: `POST /api/v2/events` with a `phone_call` event.
//!
//! One request both finds the record behind a number and rings the bell in
//! the notification center of the listed users. Kommo matches the last 8
//! digits, prefers the oldest contact, returns that contact's single active
//! lead/customer when there is exactly one, else the contact; then companies
//! the same way; else nothing (kommo-facts.md, call-notification.txt).

use crate::entities::de_opt_string;
use crate::http::{embedded, ApiRequest, KommoClient};
use crate::KommoError;
use callcard_calls::{EntityKind, EntityRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The record Kommo's caller ID picked for a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerMatch {
    /// From `element_type` (1 contact, 2 lead, 3 company, 12 customer) and `element_id`.
    pub entity: EntityRef,
    /// The notification's id.
    pub uid: Option<String>,
    /// The number as we sent it.
    pub phone_number: Option<String>,
    /// The digits Kommo compared (the last 8).
    pub query_string: Option<String>,
}

#[derive(Serialize)]
struct Events<'a> {
    add: [PhoneCallEvent<'a>; 1],
}

#[derive(Serialize)]
struct PhoneCallEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    phone_number: &'a str,
    users: &'a [u64],
}

#[derive(Deserialize)]
struct Item {
    element_type: Value,
    element_id: u64,
    #[serde(default, deserialize_with = "de_opt_string")]
    uid: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    query_string: Option<String>,
}

impl KommoClient {
    /// Looks up `phone` with Kommo's caller ID and notifies `users` of the
    /// call. `None` when no contact or company has the number.
    ///
    /// Counts as creating (a notification): not retried once it may have
    /// reached Kommo, so a flaky network never rings the bell twice.
    pub async fn identify_caller(&self, phone: &str, users: &[u64]) -> Result<Option<CallerMatch>, KommoError> {
        let body = Events { add: [PhoneCallEvent { kind: "phone_call", phone_number: phone, users }] };
        let req = ApiRequest::create("/api/v2/events", &body)?;
        let Some(answer) = self.send::<Value>(&req).await? else { return Ok(None) };
        let items: Vec<Item> = embedded(&answer, "items")?;
        Ok(items.into_iter().find_map(|item| {
            let kind = match &item.element_type {
                Value::Number(n) => {
                    n.as_u64().and_then(|n| u8::try_from(n).ok()).and_then(EntityKind::from_element_type)
                }
                Value::String(s) => s.parse().ok().and_then(EntityKind::from_element_type),
                _ => None,
            };
            if kind.is_none() {
                tracing::warn!(element_type = %item.element_type, "caller ID answered an unknown element type");
            }
            Some(CallerMatch {
                entity: EntityRef::new(kind?, item.element_id),
                uid: item.uid,
                phone_number: item.phone_number,
                query_string: item.query_string,
            })
        }))
    }
}
