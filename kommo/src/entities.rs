//! Contacts, companies, leads and customers: read one, search, and add a
//! phone number without losing the others.
//!
//! The four are read through one generic pair, [`KommoClient::get`] and
//! [`KommoClient::search`], typed by the [`Record`] you ask for:
//!
//! ```no_run
//! # async fn demo(kommo: kommo_client::KommoClient) -> Result<(), kommo_client::KommoError> {
//! use kommo_client::{Contact, Lead, With};
//! let contact = kommo.get::<Contact>(42, &[With::Leads, With::Customers]).await?;
//! let leads = kommo.search::<Lead>("+18305703077", &[With::Contacts]).await?;
//! # Ok(()) }
//! ```
//!
//! Kommo writes an entity's kind three ways: `"contacts"` (paths, tasks,
//! links), `"contact"` (some answers), `1` (the v2 events API). The serde
//! helpers at the bottom accept all of them and write the plural form Kommo
//! wants in requests, all through the shared [`EntityKind`].

use crate::http::{ApiRequest, KommoClient};
use crate::KommoError;
use callcard_calls::phone::{last_digits, CALL_LOG_DIGITS};
use callcard_calls::{EntityKind, EntityRef};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Lead statuses Kommo reserves for closed deals in every pipeline.
pub const STATUS_WON: u64 = 142;
pub const STATUS_LOST: u64 = 143;

/// What to embed in a record (`with=`). Kommo embeds companies (and a
/// lead's contacts' ids under `with=contacts`) only when asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum With {
    Leads,
    Contacts,
    Customers,
    Companies,
}

impl With {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leads => "leads",
            Self::Contacts => "contacts",
            Self::Customers => "customers",
            Self::Companies => "companies",
        }
    }
}

/// A Kommo record type readable by [`KommoClient::get`] and
/// [`KommoClient::search`].
pub trait Record: DeserializeOwned {
    const KIND: EntityKind;
}

/// One custom field with its values, as Kommo reads and writes them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_id: Option<u64>,
    #[serde(default, skip_serializing)]
    pub field_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_code: Option<String>,
    #[serde(default, skip_serializing)]
    pub field_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub values: Vec<FieldValue>,
}

/// One value of a custom field. `value` is a string for phones and e-mails
/// but may be a number or a bool for other fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldValue {
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_code: Option<String>,
}

impl CustomField {
    /// A `PHONE` field (by code, so it works in any account) with the given numbers, `WORK` type.
    pub fn phones<'a>(numbers: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            field_code: Some("PHONE".into()),
            values: numbers
                .into_iter()
                .map(|n| FieldValue { value: Value::String(n.into()), enum_code: Some("WORK".into()), enum_id: None })
                .collect(),
            ..Self::default()
        }
    }
}

/// The ids Kommo embeds for related records.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Related {
    pub id: u64,
    #[serde(default)]
    pub is_main: Option<bool>,
}

/// `_embedded` of a record: whichever relations were asked for with `with=`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Embedded {
    #[serde(default, deserialize_with = "null_as_default")]
    pub leads: Vec<Related>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub contacts: Vec<Related>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub companies: Vec<Related>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub customers: Vec<Related>,
}

/// A contact, or a company: Kommo gives both the same shape.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Party {
    pub id: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub responsible_user_id: Option<u64>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub updated_at: Option<i64>,
    #[serde(default)]
    pub is_deleted: bool,
    /// Kommo sends `null` rather than `[]` when a record has no custom values.
    #[serde(default, deserialize_with = "null_as_default")]
    pub custom_fields_values: Vec<CustomField>,
    #[serde(default, rename = "_embedded", deserialize_with = "null_as_default")]
    pub embedded: Embedded,
}

/// A contact (`/api/v4/contacts`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Contact(pub Party);

/// A company (`/api/v4/companies`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Company(pub Party);

impl std::ops::Deref for Contact {
    type Target = Party;
    fn deref(&self) -> &Party {
        &self.0
    }
}

impl std::ops::Deref for Company {
    type Target = Party;
    fn deref(&self) -> &Party {
        &self.0
    }
}

impl Record for Contact {
    const KIND: EntityKind = EntityKind::Contact;
}

impl Record for Company {
    const KIND: EntityKind = EntityKind::Company;
}

impl Party {
    /// The values of the `PHONE` field, as written.
    pub fn phones(&self) -> Vec<&str> {
        self.custom_fields_values
            .iter()
            .filter(|f| f.field_code.as_deref() == Some("PHONE"))
            .flat_map(|f| f.values.iter().filter_map(|v| v.value.as_str()))
            .collect()
    }
}

/// A lead (deal).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Lead {
    pub id: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default)]
    pub price: Option<i64>,
    #[serde(default)]
    pub responsible_user_id: Option<u64>,
    #[serde(default)]
    pub status_id: Option<u64>,
    #[serde(default)]
    pub pipeline_id: Option<u64>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub updated_at: Option<i64>,
    #[serde(default)]
    pub closed_at: Option<i64>,
    #[serde(default)]
    pub is_deleted: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub custom_fields_values: Vec<CustomField>,
    #[serde(default, rename = "_embedded", deserialize_with = "null_as_default")]
    pub embedded: Embedded,
}

impl Lead {
    /// Open: not won (142), not lost (143), not deleted. Kommo's caller ID and
    /// call logging only consider active leads.
    pub fn is_active(&self) -> bool {
        !self.is_deleted && !matches!(self.status_id, Some(STATUS_WON | STATUS_LOST))
    }
}

impl Record for Lead {
    const KIND: EntityKind = EntityKind::Lead;
}

/// A customer (periodic purchases; only in accounts with customers enabled).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Customer {
    pub id: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default)]
    pub responsible_user_id: Option<u64>,
    #[serde(default)]
    pub status_id: Option<u64>,
    #[serde(default)]
    pub next_date: Option<i64>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub updated_at: Option<i64>,
    #[serde(default)]
    pub is_deleted: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub custom_fields_values: Vec<CustomField>,
    #[serde(default, rename = "_embedded", deserialize_with = "null_as_default")]
    pub embedded: Embedded,
}

impl Record for Customer {
    const KIND: EntityKind = EntityKind::Customer;
}

#[derive(Serialize)]
struct PhonePatch {
    custom_fields_values: Vec<CustomField>,
}

impl KommoClient {
    /// `GET /api/v4/{kind}/{id}?with=...`: one record, with the relations
    /// asked for. [`KommoError::NotFound`] when it does not exist.
    pub async fn get<R: Record>(&self, id: u64, with: &[With]) -> Result<R, KommoError> {
        let mut req = ApiRequest::get(format!("/api/v4/{}/{id}", R::KIND.api_path()));
        if !with.is_empty() {
            req = req.query("with", with_param(with));
        }
        // Kommo answers 204 for a record that is gone in some cases.
        self.send(&req).await?.ok_or(KommoError::NotFound)
    }

    /// `GET /api/v4/{kind}?query=...`: Kommo's full-text search (for phones it
    /// matches on the last digits; see kommo-facts.md). One page of up to 50
    /// records, which is all a caller card or a search box needs; empty when
    /// Kommo answers 204.
    pub async fn search<R: Record>(&self, query: &str, with: &[With]) -> Result<Vec<R>, KommoError> {
        let mut req =
            ApiRequest::get(format!("/api/v4/{}", R::KIND.api_path())).query("query", query).query("limit", 50);
        if !with.is_empty() {
            req = req.query("with", with_param(with));
        }
        match self.send::<Value>(&req).await? {
            None => Ok(Vec::new()),
            Some(answer) => crate::http::embedded(&answer, R::KIND.api_path()),
        }
    }

    /// Adds `phone` to a contact's or company's `PHONE` field, keeping the
    /// numbers already there. Returns `false` (and sends nothing) when the
    /// record already has the number, compared by the last 10 digits as
    /// Kommo's call matching does.
    ///
    /// Kommo's PATCH replaces a field's whole value list, so this reads the
    /// record and writes back the old values plus the new one. Two writers
    /// adding different numbers at the same moment can still lose one (Kommo
    /// has no conditional update); the backend serialises work per call, which
    /// makes that practically impossible.
    pub async fn add_phone(&self, entity: EntityRef, phone: &str) -> Result<bool, KommoError> {
        let party: Party = match entity.kind {
            EntityKind::Contact => self.get::<Contact>(entity.id, &[]).await?.0,
            EntityKind::Company => self.get::<Company>(entity.id, &[]).await?.0,
            other => return Err(KommoError::Unsupported(format!("a {other} has no phone field"))),
        };
        let wanted = last_digits(phone, CALL_LOG_DIGITS);
        if wanted.is_empty() {
            return Err(KommoError::Unsupported(format!("{phone:?} has no digits")));
        }
        if party.phones().iter().any(|p| last_digits(p, CALL_LOG_DIGITS) == wanted) {
            return Ok(false);
        }
        let mut field = party
            .custom_fields_values
            .iter()
            .find(|f| f.field_code.as_deref() == Some("PHONE"))
            .cloned()
            .unwrap_or_else(|| CustomField::phones([]));
        field.values.push(FieldValue {
            value: Value::String(phone.into()),
            enum_code: Some("WORK".into()),
            enum_id: None,
        });
        // Identify the field by code: ids differ per account.
        field.field_id = None;
        field.field_code = Some("PHONE".into());
        let body = PhonePatch { custom_fields_values: vec![field] };
        let req = ApiRequest::patch(format!("/api/v4/{}/{}", entity.kind.api_path(), entity.id), &body)?;
        self.execute(&req).await?;
        Ok(true)
    }
}

pub(crate) fn with_param(with: &[With]) -> String {
    with.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(",")
}

// ---- serde helpers for Kommo's ways of writing things ----

/// `null` → `T::default()`: Kommo writes `null` for empty lists and objects.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A string that Kommo sometimes sends as a number (`request_id`).
pub(crate) fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// Reads an entity kind written as `"contacts"`, `"contact"` or `1`.
pub(crate) fn parse_kind(v: &Value) -> Option<EntityKind> {
    match v {
        Value::String(s) => EntityKind::from_api_path(s).or_else(|| {
            [EntityKind::Contact, EntityKind::Lead, EntityKind::Company, EntityKind::Customer]
                .into_iter()
                .find(|k| k.as_str() == s)
        }),
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()).and_then(EntityKind::from_element_type),
        _ => None,
    }
}

/// `#[serde(with = "kind_as_path")]`: an [`EntityKind`] written as Kommo's
/// plural path name (`"leads"`), read in any of Kommo's forms.
pub(crate) mod kind_as_path {
    use super::*;

    pub fn serialize<S: Serializer>(kind: &EntityKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.api_path())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EntityKind, D::Error> {
        let v = Value::deserialize(d)?;
        parse_kind(&v).ok_or_else(|| serde::de::Error::custom(format!("unknown entity type {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_contact_with_null_custom_fields_and_embedded_leads() {
        let c: Contact = serde_json::from_value(serde_json::json!({
            "id": 7, "name": "Ann", "custom_fields_values": null,
            "_embedded": {"leads": [{"id": 3}], "companies": []}
        }))
        .unwrap();
        assert!(c.phones().is_empty());
        assert_eq!(c.embedded.leads[0].id, 3);
    }

    #[test]
    fn finds_phones_by_field_code() {
        let c: Contact = serde_json::from_value(serde_json::json!({
            "id": 7, "name": "Ann",
            "custom_fields_values": [
                {"field_id": 1, "field_code": "EMAIL", "values": [{"value": "a@b.c"}]},
                {"field_id": 2, "field_code": "PHONE", "values": [{"value": "+1 830 570 3077", "enum_code": "WORK"}, {"value": "117"}]}
            ]
        }))
        .unwrap();
        assert_eq!(c.phones(), vec!["+1 830 570 3077", "117"]);
    }

    #[test]
    fn kinds_in_every_kommo_spelling() {
        for (v, k) in [
            (serde_json::json!("contacts"), EntityKind::Contact),
            (serde_json::json!("lead"), EntityKind::Lead),
            (serde_json::json!(3), EntityKind::Company),
            (serde_json::json!(12), EntityKind::Customer),
        ] {
            assert_eq!(parse_kind(&v), Some(k));
        }
        assert_eq!(parse_kind(&serde_json::json!("tasks")), None);
    }

    #[test]
    fn closed_leads_are_not_active() {
        let open = Lead { id: 1, status_id: Some(7), ..Lead::default() };
        assert!(open.is_active());
        assert!(!Lead { status_id: Some(STATUS_WON), ..open.clone() }.is_active());
        assert!(!Lead { status_id: Some(STATUS_LOST), ..open.clone() }.is_active());
        assert!(!Lead { is_deleted: true, ..open }.is_active());
    }
}
