//! Incoming leads ("unsorted"): a call from an unknown number becomes an
//! incoming lead the manager accepts or declines, instead of being lost.
//!
//! `POST /api/v4/leads/unsorted/sip` creates, `GET /api/v4/leads/unsorted/{uid}`
//! reads, `POST .../{uid}/accept` turns it into a real lead (and contact),
//! `DELETE .../{uid}/decline` drops it.

use crate::entities::{null_as_default, CustomField, Related};
use crate::http::{embedded, ApiRequest, KommoClient};
use crate::KommoError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The call behind a sip incoming lead (`metadata`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SipMetadata {
    /// The PBX's call id.
    #[serde(default)]
    pub uniq: String,
    /// Who called (a name or the number).
    #[serde(default)]
    pub from: String,
    /// The number that was called (our line or extension).
    #[serde(default)]
    pub phone: String,
    /// Unix seconds.
    #[serde(default)]
    pub called_at: i64,
    /// Seconds.
    #[serde(default)]
    pub duration: u32,
    /// The recording URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The integration's code in Kommo.
    #[serde(default)]
    pub service_code: String,
    /// Whether Kommo should also add a call event to the lead.
    #[serde(default)]
    pub is_call_event_needed: bool,
}

/// A lead to create inside an incoming lead.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NewUnsortedLead {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_fields_values: Vec<CustomField>,
}

/// A contact to create inside an incoming lead.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NewUnsortedContact {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_fields_values: Vec<CustomField>,
}

impl NewUnsortedContact {
    /// A contact with a name and one work phone.
    pub fn with_phone(name: impl Into<String>, phone: &str) -> Self {
        Self { name: name.into(), custom_fields_values: vec![CustomField::phones([phone])] }
    }
}

/// `_embedded` of a new incoming lead.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NewUnsortedEmbedded {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leads: Vec<NewUnsortedLead>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<NewUnsortedContact>,
}

/// An incoming lead from a call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewSipUnsorted {
    /// The integration's id for it (the PBX call id does well).
    pub source_uid: String,
    /// Shown as the source in Kommo.
    pub source_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(rename = "_embedded")]
    pub embedded: NewUnsortedEmbedded,
    pub metadata: SipMetadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The ids of what an incoming lead holds (`_embedded` of Kommo's answers).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct UnsortedEmbedded {
    #[serde(default, deserialize_with = "null_as_default")]
    pub leads: Vec<Related>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub contacts: Vec<Related>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub companies: Vec<Related>,
}

/// What Kommo answers per created incoming lead, and for accept/decline.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct UnsortedRef {
    pub uid: String,
    #[serde(default, rename = "_embedded", deserialize_with = "null_as_default")]
    pub embedded: UnsortedEmbedded,
}

/// An incoming lead as Kommo returns it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Unsorted {
    pub uid: String,
    #[serde(default)]
    pub source_uid: Option<String>,
    #[serde(default)]
    pub source_name: Option<String>,
    /// `"sip"`, `"forms"`, `"chats"`, `"mail"`.
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub pipeline_id: Option<u64>,
    #[serde(default)]
    pub created_at: Option<i64>,
    /// The call's metadata for `sip`; other categories carry other shapes.
    #[serde(default)]
    pub metadata: Value,
    #[serde(default, rename = "_embedded", deserialize_with = "null_as_default")]
    pub embedded: UnsortedEmbedded,
}

impl Unsorted {
    /// The metadata of a sip incoming lead.
    pub fn sip_metadata(&self) -> Option<SipMetadata> {
        serde_json::from_value(self.metadata.clone()).ok()
    }
}

#[derive(Serialize)]
struct Decision {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_id: Option<u64>,
}

fn unsorted_path(uid: &str) -> String {
    // uids are Kommo's hex strings; anything else must not change the path.
    let safe: String = uid.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).collect();
    format!("/api/v4/leads/unsorted/{safe}")
}

impl KommoClient {
    /// Creates incoming leads from calls. Not retried once it may have
    /// reached Kommo: check with [`get_unsorted`](Self::get_unsorted) or by
    /// the call's `uniq` before creating again.
    pub async fn add_sip_unsorted(&self, items: &[NewSipUnsorted]) -> Result<Vec<UnsortedRef>, KommoError> {
        let req = ApiRequest::create("/api/v4/leads/unsorted/sip", &items)?;
        let Some(answer) = self.send::<Value>(&req).await? else { return Ok(Vec::new()) };
        embedded(&answer, "unsorted")
    }

    /// `GET /api/v4/leads/unsorted?filter[category][]=sip`, all pages: the
    /// pending incoming leads from calls. How a caller that may have created
    /// one (an ambiguous failure, a crash) finds it by `source_uid` before
    /// creating it again.
    pub async fn list_sip_unsorted(&self) -> Result<Vec<Unsorted>, KommoError> {
        let req = ApiRequest::get("/api/v4/leads/unsorted").query("filter[category][]", "sip");
        self.list_all(req, "unsorted").await
    }

    /// `GET /api/v4/leads/unsorted/{uid}`; [`KommoError::NotFound`] when
    /// there is no such incoming lead (e.g. already accepted or declined).
    pub async fn get_unsorted(&self, uid: &str) -> Result<Unsorted, KommoError> {
        self.send(&ApiRequest::get(unsorted_path(uid))).await?.ok_or(KommoError::NotFound)
    }

    /// Accepts an incoming lead: its lead and contact become real records.
    /// `user_id` acts as the accepting user; `status_id` picks the lead's stage.
    /// Not retried once it may have reached Kommo (a second accept fails);
    /// after an ambiguous error, [`get_unsorted`](Self::get_unsorted) tells.
    pub async fn accept_unsorted(
        &self,
        uid: &str,
        user_id: Option<u64>,
        status_id: Option<u64>,
    ) -> Result<UnsortedRef, KommoError> {
        let path = format!("{}/accept", unsorted_path(uid));
        self.send_expect(&ApiRequest::create(path, &Decision { user_id, status_id })?).await
    }

    /// Declines (drops) an incoming lead.
    pub async fn decline_unsorted(&self, uid: &str, user_id: Option<u64>) -> Result<UnsortedRef, KommoError> {
        let path = format!("{}/decline", unsorted_path(uid));
        let req =
            ApiRequest::create(path, &Decision { user_id, status_id: None })?.with_method(reqwest::Method::DELETE);
        self.send_expect(&req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_unsorted_has_kommo_shape() {
        let item = NewSipUnsorted {
            source_uid: "call-1".into(),
            source_name: "callcard".into(),
            pipeline_id: None,
            created_at: Some(1_700_000_000),
            embedded: NewUnsortedEmbedded {
                leads: vec![NewUnsortedLead { name: "Call from +18305703077".into(), ..Default::default() }],
                contacts: vec![NewUnsortedContact::with_phone("+18305703077", "+18305703077")],
            },
            metadata: SipMetadata {
                uniq: "call-1".into(),
                from: "+18305703077".into(),
                phone: "101".into(),
                called_at: 1_700_000_000,
                duration: 0,
                link: None,
                service_code: "callcard".into(),
                is_call_event_needed: true,
            },
            request_id: None,
        };
        let v = serde_json::to_value(&item).unwrap();
        assert_eq!(v["_embedded"]["contacts"][0]["custom_fields_values"][0]["field_code"], "PHONE");
        assert_eq!(v["_embedded"]["contacts"][0]["custom_fields_values"][0]["values"][0]["value"], "+18305703077");
        assert_eq!(v["metadata"]["is_call_event_needed"], true);
        assert!(v["metadata"].get("link").is_none());
        assert_eq!(unsorted_path("ab12-../x"), "/api/v4/leads/unsorted/ab12-x");
    }
}
