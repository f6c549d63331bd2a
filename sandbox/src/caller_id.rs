//! Caller ID: `POST /api/v2/events`, exactly as Kommo documents it.
//!
//! Request: `{"add": [{"type": "phone_call", "phone_number": "+18305703077", "users": [8320148, 8375357]}]}`.
//!
//! The rule ([`identify`]), on the last 8 digits of the number:
//! 1. Contacts holding the number: only the oldest one is considered. If it
//!    has exactly one active lead/customer (leads and customers counted
//!    together), that lead/customer is returned, named after itself when it
//!    has a name, else after the contact. Otherwise the contact is returned,
//!    named after itself.
//! 2. No contact: the same with companies.
//! 3. Otherwise nothing: `_embedded.items` is an empty array.
//!
//! Answer (the documented example):
//!
//! ```json
//! {"_links": {"self": {"href": "/api/v2/events/"}},
//!  "_embedded": {"items": [{"element_type": 2, "element_id": 5756100,
//!     "uid": "bb371363-25f6-4c60-8942-c0e00d2f073e",
//!     "phone_number": "+18305703077", "query_string": "05703077"}]}}
//! ```
//!
//! Element types: 1 contact, 2 lead, 3 company, 12 customer. The caller's
//! name is shown in Kommo's notification, not returned; the sandbox records
//! it for the inspection view. Numbers without digits match nothing.

use crate::problem::{ok, Fields, Problem, RequestErrors};
use crate::store::{now_secs, CallerIdEvent, Entity, Store};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use callcard_calls::phone::{last_digits, CALLER_ID_DIGITS};
use callcard_calls::{EntityKind, EntityRef};
use serde_json::{json, Value};

/// What caller ID found: the record to open and the name to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerMatch {
    pub element: EntityRef,
    pub name: String,
}

/// The active leads and customers linked to `holder`, oldest first.
pub fn active_deals<'a>(st: &'a Store, holder: &Entity) -> (Vec<&'a Entity>, Vec<&'a Entity>) {
    let r = holder.entity_ref();
    let leads = st.linked_of(r, EntityKind::Lead).into_iter().filter(|e| e.is_active()).collect();
    let customers = st.linked_of(r, EntityKind::Customer).into_iter().filter(|e| e.is_active()).collect();
    (leads, customers)
}

/// The oldest record of `kind` among `holders` (creation time, then id).
pub fn oldest<'a>(st: &'a Store, holders: &[EntityRef], kind: EntityKind) -> Option<&'a Entity> {
    holders.iter().filter(|r| r.kind == kind).filter_map(|r| st.get(*r)).min_by_key(|e| (e.created_at, e.id))
}

/// Kommo's caller-ID rule (see the module doc), as a pure function.
pub fn identify(st: &Store, phone_number: &str) -> Option<CallerMatch> {
    // The index is keyed by the last 8 digits: exactly caller ID's comparison.
    let holders = st.phone_candidates(phone_number);
    for kind in [EntityKind::Contact, EntityKind::Company] {
        let Some(holder) = oldest(st, holders, kind) else { continue };
        let (leads, customers) = active_deals(st, holder);
        let mut active = leads.into_iter().chain(customers);
        return Some(match (active.next(), active.next()) {
            (Some(only), None) => CallerMatch {
                element: only.entity_ref(),
                name: if only.name.trim().is_empty() { holder.name.clone() } else { only.name.clone() },
            },
            _ => CallerMatch { element: holder.entity_ref(), name: holder.name.clone() },
        });
    }
    None
}

/// `POST /api/v2/events`.
pub async fn events(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let v = match crate::problem::parse_body(&body) {
        Ok(v) => v,
        Err(p) => return p.into_response(),
    };
    let Some(add) = v.get("add").and_then(Value::as_array).filter(|a| !a.is_empty()) else {
        return Problem::validation(vec![RequestErrors {
            request_id: "0".into(),
            errors: vec![crate::problem::FieldError {
                code: "FieldMissing".into(),
                path: "add".into(),
                detail: "add must be a non-empty array of events.".into(),
            }],
        }])
        .into_response();
    };
    let mut st = sb.store();
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in add.iter().enumerate() {
        let mut f = Fields::new(item, i);
        let kind = f.req_str("type");
        if !kind.is_empty() && kind != "phone_call" {
            f.error("NotSupportedChoice", "type", "The value you selected is not a valid choice.");
        }
        let phone = f.req_str("phone_number");
        let mut users = Vec::new();
        match f.get("users") {
            None => {}
            Some(Value::Array(list)) => {
                for (j, u) in list.iter().enumerate() {
                    match u.as_u64().or_else(|| u.as_str().and_then(|s| s.parse().ok())) {
                        Some(id) if st.user(id).is_some() => users.push(id),
                        _ => f.error(
                            "NotSupportedChoice",
                            &format!("users.{j}"),
                            "The value you selected is not a valid choice.",
                        ),
                    }
                }
            }
            Some(_) => f.error("InvalidType", "users", "This value should be of type array."),
        }
        match f.finish() {
            Ok(_) => parsed.push((phone, users)),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Problem::validation(errors).into_response();
    }
    let mut items = Vec::new();
    for (phone, users) in parsed {
        let found = identify(&st, &phone);
        let uid = uuid::Uuid::new_v4().to_string();
        let query_string = last_digits(&phone, CALLER_ID_DIGITS);
        if let Some(m) = &found {
            items.push(json!({
                "element_type": m.element.kind.element_type(),
                "element_id": m.element.id,
                "uid": uid,
                "phone_number": phone,
                "query_string": query_string,
            }));
        }
        st.caller_id_events.push(CallerIdEvent {
            uid,
            at: now_secs(),
            phone_number: phone,
            query_string,
            users,
            element: found.as_ref().map(|m| m.element),
            name: found.map(|m| m.name),
        });
    }
    ok(json!({"_links": {"self": {"href": "/api/v2/events/"}}, "_embedded": {"items": items}}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{self, numbers::*};

    fn demo() -> Store {
        let mut st = seed::empty_account(31_415_926, "acme");
        seed::seed(&mut st);
        st
    }

    fn find(st: &Store, phone: &str) -> (EntityKind, String) {
        let m = identify(st, phone).unwrap_or_else(|| panic!("{phone} should match"));
        (m.element.kind, m.name)
    }

    #[test]
    fn contact_with_one_active_lead_gives_the_lead_named_after_it() {
        let st = demo();
        let m = identify(&st, CONTACT_ONE_ACTIVE_LEAD).unwrap();
        assert_eq!(m.element, EntityRef::new(EntityKind::Lead, 5_756_100));
        assert_eq!(m.name, "Website redesign");
        // Formatting does not matter, only the last 8 digits.
        assert_eq!(identify(&st, "8 (830) 570-30-77").unwrap().element.id, 5_756_100);
    }

    #[test]
    fn unnamed_lead_is_named_after_the_contact() {
        assert_eq!(find(&demo(), CONTACT_ONE_UNNAMED_LEAD), (EntityKind::Lead, "Liam O'Brien".into()));
    }

    #[test]
    fn none_or_several_active_records_give_the_contact() {
        let st = demo();
        assert_eq!(find(&st, CONTACT_TWO_ACTIVE_LEADS), (EntityKind::Contact, "Sofia Rossi".into()));
        assert_eq!(find(&st, CONTACT_NO_LEADS), (EntityKind::Contact, "Oliver Smith".into()));
        assert_eq!(find(&st, CONTACT_ONLY_CLOSED), (EntityKind::Contact, "Grace Lee".into()));
        assert_eq!(find(&st, CONTACT_LEAD_AND_CUSTOMER), (EntityKind::Contact, "Isabella Garcia".into()));
    }

    #[test]
    fn one_active_customer_is_returned() {
        assert_eq!(find(&demo(), CONTACT_ONE_CUSTOMER), (EntityKind::Customer, "Kim Bakery weekly order".into()));
        assert_eq!(find(&demo(), COMPANY_ONE_CUSTOMER), (EntityKind::Customer, "Stark Supplies annual support".into()));
    }

    #[test]
    fn oldest_contact_wins() {
        assert_eq!(find(&demo(), SHARED_BY_TWO_CONTACTS), (EntityKind::Lead, "Fleet tracking pilot".into()));
    }

    #[test]
    fn only_eight_digits_count() {
        let st = demo();
        assert_eq!(find(&st, CONTACT_SECOND_NUMBER), (EntityKind::Lead, "Call recording add-on".into()));
        assert_eq!(find(&st, SAME_LAST_8_OTHER_AREA), (EntityKind::Lead, "Call recording add-on".into()));
    }

    #[test]
    fn companies_come_after_contacts() {
        let st = demo();
        assert_eq!(find(&st, COMPANY_ONE_ACTIVE_LEAD), (EntityKind::Lead, "Northwind 200 headsets".into()));
        assert_eq!(find(&st, COMPANY_NO_LEADS), (EntityKind::Company, "Globex Corporation".into()));
        assert_eq!(find(&st, COMPANY_TWO_ACTIVE_LEADS), (EntityKind::Company, "Umbrella Logistics".into()));
        assert_eq!(find(&st, CONTACT_AND_COMPANY), (EntityKind::Contact, "Lucas Brown".into()));
    }

    #[test]
    fn unknown_numbers_match_nothing() {
        let st = demo();
        assert_eq!(identify(&st, UNKNOWN), None);
        assert_eq!(identify(&st, "anonymous"), None);
        assert_eq!(identify(&st, ""), None);
    }
}
