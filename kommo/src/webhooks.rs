//! Kommo's webhooks: `POST /api/v4/webhooks` subscribes a destination to
//! events (`add_contact`, `status_lead`, ...), `DELETE` ends it, `GET` lists.
//!
//! Kommo keeps one subscription per destination: subscribing again replaces
//! its events. What Kommo then posts (form-encoded, `contacts[update][0][id]`)
//! is read by the receiver, not by this client.

use crate::http::{ApiRequest, KommoClient};
use crate::KommoError;
use callcard_calls::{EntityKind, EntityRef};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One subscription as Kommo answers it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Webhook {
    pub id: u64,
    pub destination: String,
    #[serde(default)]
    pub settings: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Serialize)]
struct Subscribe<'a> {
    destination: &'a str,
    settings: &'a [&'a str],
}

#[derive(Serialize)]
struct Unsubscribe<'a> {
    destination: &'a str,
}

impl KommoClient {
    /// Subscribes `destination` to `events`, or replaces the events of its
    /// existing subscription; repeating it changes nothing more.
    pub async fn subscribe_webhook(&self, destination: &str, events: &[&str]) -> Result<Webhook, KommoError> {
        let req = ApiRequest::post_idempotent("/api/v4/webhooks", &Subscribe { destination, settings: events })?;
        self.send_expect(&req).await
    }

    /// Ends the subscription of `destination`; `Ok` also when there was none.
    pub async fn unsubscribe_webhook(&self, destination: &str) -> Result<(), KommoError> {
        let req = ApiRequest::patch("/api/v4/webhooks", &Unsubscribe { destination })?.with_method(Method::DELETE);
        match self.send::<Value>(&req).await {
            Ok(_) | Err(KommoError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every subscription of the account (Kommo answers 204 for none).
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, KommoError> {
        match self.send::<Value>(&ApiRequest::get("/api/v4/webhooks")).await? {
            None => Ok(Vec::new()),
            Some(answer) => crate::http::embedded(&answer, "webhooks"),
        }
    }
}

/// What Kommo says changed, read from one webhook delivery.
///
/// Kommo posts `application/x-www-form-urlencoded` bodies in nested-bracket
/// form (`contacts[update][0][id]=…`, `leads[status][0][status_id]=…`,
/// `account[id]=…`); [`Delivery::parse`] reads them with `serde_qs`. Only the
/// fields a local copy of the phonebook needs are kept; which fields Kommo
/// sends for each event is partly unconfirmed, so all but `id` are optional
/// and a receiver that needs more fetches the record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub account_id: Option<u64>,
    pub changes: Vec<RecordChange>,
}

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeAction {
    Add,
    Update,
    Delete,
    Restore,
    /// A lead moved to another status.
    Status,
}

/// One record's change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordChange {
    pub record: EntityRef,
    pub action: ChangeAction,
    pub name: Option<String>,
    pub status_id: Option<u64>,
    pub pipeline_id: Option<u64>,
    pub responsible_user_id: Option<u64>,
    pub updated_at: Option<i64>,
    /// The values of the record's `PHONE` field, when the delivery carries
    /// custom fields (contacts and companies).
    pub phones: Option<Vec<String>>,
}

/// Why a webhook body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the webhook body is not a Kommo form: {0}")]
pub struct DeliveryError(String);

mod form {
    //! The body's shape, as serde reads it; values arrive as strings.
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize, Default)]
    pub struct Body {
        #[serde(default)]
        pub account: Account,
        #[serde(default)]
        pub contacts: Actions,
        #[serde(default)]
        pub companies: Actions,
        #[serde(default)]
        pub leads: Actions,
        #[serde(default)]
        pub customers: Actions,
    }

    #[derive(Deserialize, Default)]
    pub struct Account {
        pub id: Option<String>,
    }

    /// Kommo numbers the entries `[0]`, `[1]`, …: read as a map so that a gap
    /// or an out-of-order index loses nothing.
    #[derive(Deserialize, Default)]
    pub struct Actions {
        #[serde(default)]
        pub add: BTreeMap<usize, Entry>,
        #[serde(default)]
        pub update: BTreeMap<usize, Entry>,
        #[serde(default)]
        pub delete: BTreeMap<usize, Entry>,
        #[serde(default)]
        pub restore: BTreeMap<usize, Entry>,
        #[serde(default)]
        pub status: BTreeMap<usize, Entry>,
    }

    #[derive(Deserialize, Default)]
    pub struct Entry {
        pub id: Option<String>,
        pub name: Option<String>,
        pub status_id: Option<String>,
        pub pipeline_id: Option<String>,
        pub responsible_user_id: Option<String>,
        pub updated_at: Option<String>,
        pub last_modified: Option<String>,
        #[serde(default)]
        pub custom_fields: BTreeMap<usize, CustomField>,
    }

    #[derive(Deserialize, Default)]
    pub struct CustomField {
        pub code: Option<String>,
        #[serde(default)]
        pub values: BTreeMap<usize, Value>,
    }

    #[derive(Deserialize, Default)]
    pub struct Value {
        pub value: Option<String>,
    }
}

impl Delivery {
    /// Reads a webhook body. Entries without a numeric id are refused: a
    /// change that names no record cannot be applied.
    pub fn parse(body: &str) -> Result<Self, DeliveryError> {
        let config = serde_qs::Config::new(8, false);
        let form: form::Body = config.deserialize_str(body).map_err(|e| DeliveryError(e.to_string()))?;
        let mut changes = Vec::new();
        for (kind, actions) in [
            (EntityKind::Contact, form.contacts),
            (EntityKind::Company, form.companies),
            (EntityKind::Lead, form.leads),
            (EntityKind::Customer, form.customers),
        ] {
            for (action, entries) in [
                (ChangeAction::Add, actions.add),
                (ChangeAction::Update, actions.update),
                (ChangeAction::Delete, actions.delete),
                (ChangeAction::Restore, actions.restore),
                (ChangeAction::Status, actions.status),
            ] {
                for (index, entry) in entries {
                    changes.push(change(kind, action, index, entry)?);
                }
            }
        }
        Ok(Self { account_id: form.account.id.and_then(|id| id.trim().parse().ok()), changes })
    }
}

fn change(kind: EntityKind, action: ChangeAction, index: usize, e: form::Entry) -> Result<RecordChange, DeliveryError> {
    let number = |v: &Option<String>| v.as_deref().and_then(|s| s.trim().parse::<u64>().ok());
    let id = number(&e.id).ok_or_else(|| DeliveryError(format!("{}[{index}] has no numeric id", kind.api_path())))?;
    let phones = e
        .custom_fields
        .values()
        .find(|f| f.code.as_deref() == Some("PHONE"))
        .map(|f| f.values.values().filter_map(|v| v.value.clone()).collect());
    let updated_at = e.updated_at.as_ref().or(e.last_modified.as_ref()).and_then(|s| s.trim().parse().ok());
    Ok(RecordChange {
        record: EntityRef::new(kind, id),
        action,
        name: e.name,
        status_id: number(&e.status_id),
        pipeline_id: number(&e.pipeline_id),
        responsible_user_id: number(&e.responsible_user_id),
        updated_at,
        phones,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kommo_form_body_reads_into_changes() {
        let body = "account%5Bid%5D=31415926&account%5Bsubdomain%5D=acme\
            &contacts%5Bupdate%5D%5B0%5D%5Bid%5D=20100001&contacts%5Bupdate%5D%5B0%5D%5Bname%5D=Maria+Gonzalez\
            &contacts%5Bupdate%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bcode%5D=PHONE\
            &contacts%5Bupdate%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bvalues%5D%5B0%5D%5Bvalue%5D=%2B18305703077\
            &contacts%5Bupdate%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bvalues%5D%5B1%5D%5Bvalue%5D=8+830+570+99+99\
            &leads%5Bstatus%5D%5B0%5D%5Bid%5D=5756100&leads%5Bstatus%5D%5B0%5D%5Bstatus_id%5D=142\
            &leads%5Bstatus%5D%5B0%5D%5Bold_status_id%5D=7100011";
        let d = Delivery::parse(body).unwrap();
        assert_eq!(d.account_id, Some(31_415_926));
        assert_eq!(d.changes.len(), 2);
        let contact = &d.changes[0];
        assert_eq!(
            (contact.record, contact.action),
            (EntityRef::new(EntityKind::Contact, 20_100_001), ChangeAction::Update)
        );
        assert_eq!(contact.name.as_deref(), Some("Maria Gonzalez"));
        assert_eq!(contact.phones.as_deref(), Some(&["+18305703077".to_string(), "8 830 570 99 99".to_string()][..]));
        let lead = &d.changes[1];
        assert_eq!((lead.record.id, lead.action, lead.status_id), (5_756_100, ChangeAction::Status, Some(142)));
        assert_eq!(lead.phones, None);
    }

    #[test]
    fn unbracketed_keys_work_and_a_change_without_an_id_is_refused() {
        let d = Delivery::parse("leads[delete][0][id]=7&leads[delete][1][id]=8").unwrap();
        assert_eq!(d.changes.iter().map(|c| c.record.id).collect::<Vec<_>>(), [7, 8]);
        assert!(Delivery::parse("contacts[add][0][name]=Nobody").is_err());
        assert!(Delivery::parse("").unwrap().changes.is_empty());
    }
}
