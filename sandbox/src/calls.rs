//! `POST /api/v4/calls`: logging finished calls, with Kommo's matching.
//!
//! Request: an array of `{direction: "inbound"|"outbound", duration, source,
//! phone}` (required) with optional `uniq`, `link`, `call_result`,
//! `call_status` (1..=7), `responsible_user_id`, `created_by`, `created_at`,
//! `request_id`. A malformed element refuses the whole request (400 with
//! `validation-errors`).
//!
//! The rule ([`match_call`]), on the last 10 digits of `phone`: among the
//! contacts holding the number (the oldest one; which one Kommo picks among
//! several is unconfirmed, the sandbox uses caller ID's "oldest"), then the
//! companies:
//! - exactly one active lead and no (active) customers → that lead;
//! - no active leads and exactly one (active) customer → that customer;
//! - otherwise → the contact/company itself.
//!
//! An unmatched call is not added: it appears under `_embedded.errors`
//! (shape unconfirmed; the sandbox gives `{request_id, status: 404, title,
//! detail}`), and the answer is still 200 with the calls that were added.
//! A matched call becomes a `call_in`/`call_out` note on the record; the
//! answer's `id` is that note's id:
//!
//! ```json
//! {"_links": {...}, "_embedded": {
//!   "calls": [{"id": 90000007, "entity_id": 5756100, "entity_type": "leads",
//!              "account_id": 31415926, "request_id": "0", "_links": {...}}],
//!   "errors": [{"request_id": "1", "status": 404, "title": "Not Found", "detail": "..."}]}}
//! ```
//!
//! Kommo does not deduplicate: posting the same `uniq` twice logs two calls.

use crate::caller_id::{active_deals, oldest};
use crate::oauth::Principal;
use crate::problem::{ok, parse_array, Fields, Problem};
use crate::store::{now_secs, CallRecord, Note, Store};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use callcard_calls::phone::{last_digits, CALL_LOG_DIGITS};
use callcard_calls::{EntityKind, EntityRef};
use serde_json::{json, Value};

/// Kommo's call-matching rule (see the module doc), as a pure function.
pub fn match_call(st: &Store, phone: &str) -> Option<EntityRef> {
    let key = last_digits(phone, CALL_LOG_DIGITS);
    if key.is_empty() {
        return None;
    }
    // The 8-digit index gives the candidates; 10 digits narrow them.
    let holders: Vec<EntityRef> = st
        .phone_candidates(phone)
        .iter()
        .copied()
        .filter(|r| st.get(*r).is_some_and(|e| e.phones.iter().any(|p| last_digits(&p.value, CALL_LOG_DIGITS) == key)))
        .collect();
    for kind in [EntityKind::Contact, EntityKind::Company] {
        let Some(holder) = oldest(st, &holders, kind) else { continue };
        let (leads, customers) = active_deals(st, holder);
        return Some(match (leads.as_slice(), customers.as_slice()) {
            ([lead], []) => lead.entity_ref(),
            ([], [customer]) => customer.entity_ref(),
            _ => holder.entity_ref(),
        });
    }
    None
}

struct NewCall {
    request_id: String,
    direction: String,
    duration: u64,
    source: String,
    phone: String,
    uniq: Option<String>,
    link: Option<String>,
    call_result: Option<String>,
    call_status: Option<u64>,
    responsible_user_id: Option<u64>,
    created_by: Option<u64>,
    created_at: Option<i64>,
}

fn parse(st: &Store, item: &Value, i: usize) -> Result<NewCall, crate::problem::RequestErrors> {
    let mut f = Fields::new(item, i);
    let direction = f.req_str("direction");
    if !direction.is_empty() && direction != "inbound" && direction != "outbound" {
        f.error("NotSupportedChoice", "direction", "The value you selected is not a valid choice.");
    }
    let duration = f.req_u64("duration");
    let source = f.req_str("source");
    let phone = f.req_str("phone");
    let uniq = f.opt_str("uniq");
    let link = f.opt_str("link");
    let call_result = f.opt_str("call_result");
    let call_status = f.opt_u64("call_status");
    if call_status.is_some_and(|s| !(1..=7).contains(&s)) {
        f.error("NotSupportedChoice", "call_status", "The value you selected is not a valid choice.");
    }
    let responsible_user_id = f.opt_u64("responsible_user_id");
    if responsible_user_id.is_some_and(|u| st.user(u).is_none()) {
        f.error("NotSupportedChoice", "responsible_user_id", "The value you selected is not a valid choice.");
    }
    let created_by = f.opt_u64("created_by");
    let created_at = f.opt_i64("created_at");
    let request_id = f.finish()?;
    Ok(NewCall {
        request_id,
        direction,
        duration,
        source,
        phone,
        uniq,
        link,
        call_result,
        call_status,
        responsible_user_id,
        created_by,
        created_at,
    })
}

/// `POST /api/v4/calls`.
pub async fn add(State(sb): State<Sandbox>, Extension(p): Extension<Principal>, body: Bytes) -> Response {
    let items = match parse_array(&body) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let mut st = sb.store();
    let (mut calls, mut errors) = (Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        match parse(&st, item, i) {
            Ok(c) => calls.push(c),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Problem::validation(errors).into_response();
    }
    let (mut added, mut failed) = (Vec::new(), Vec::new());
    for c in calls {
        let Some(entity) = match_call(&st, &c.phone) else {
            failed.push(json!({
                "request_id": c.request_id,
                "status": 404,
                "title": "Not Found",
                "detail": format!("No contact or company has the phone number {}; the call was not added", c.phone),
            }));
            continue;
        };
        let id = st.next_note_id();
        let at = c.created_at.unwrap_or_else(now_secs);
        let user = c.created_by.unwrap_or(p.user_id);
        let responsible = c.responsible_user_id.unwrap_or(p.user_id);
        let mut params = json!({
            "uniq": c.uniq, "duration": c.duration, "source": c.source, "link": c.link, "phone": c.phone,
        });
        if let Some(r) = &c.call_result {
            params["call_result"] = json!(r);
        }
        if let Some(s) = c.call_status {
            params["call_status"] = json!(s);
        }
        let note_type = if c.direction == "inbound" { "call_in" } else { "call_out" };
        st.add_note(Note {
            id,
            entity,
            note_type: note_type.into(),
            params,
            created_by: user,
            updated_by: user,
            responsible_user_id: responsible,
            created_at: at,
            updated_at: at,
        });
        st.add_call(CallRecord {
            id,
            note_id: id,
            entity,
            direction: c.direction,
            duration: c.duration,
            source: c.source,
            phone: c.phone,
            uniq: c.uniq,
            link: c.link,
            call_result: c.call_result,
            call_status: c.call_status,
            responsible_user_id: responsible,
            created_by: user,
            created_at: at,
        });
        added.push(json!({
            "id": id,
            "entity_id": entity.id,
            "entity_type": entity.kind.api_path(),
            "account_id": st.account.id,
            "request_id": c.request_id,
            "_links": {"self": {"href": format!("/api/v4/{}/{}/notes/{id}", entity.kind.api_path(), entity.id)}},
        }));
    }
    let mut emb = json!({"calls": added});
    if !failed.is_empty() {
        emb["errors"] = json!(failed);
    }
    ok(json!({"_links": {"self": {"href": "/api/v4/calls"}}, "_embedded": emb}))
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

    fn kind_name(st: &Store, phone: &str) -> Option<(EntityKind, String)> {
        match_call(st, phone).map(|r| (r.kind, st.get(r).unwrap().name.clone()))
    }

    #[test]
    fn single_active_lead_without_customers_gets_the_call() {
        let st = demo();
        assert_eq!(match_call(&st, CONTACT_ONE_ACTIVE_LEAD), Some(EntityRef::new(EntityKind::Lead, 5_756_100)));
        assert_eq!(kind_name(&st, COMPANY_ONE_ACTIVE_LEAD), Some((EntityKind::Lead, "Northwind 200 headsets".into())));
        assert_eq!(kind_name(&st, SHARED_BY_TWO_CONTACTS), Some((EntityKind::Lead, "Fleet tracking pilot".into())));
    }

    #[test]
    fn single_customer_without_active_leads_gets_the_call() {
        let st = demo();
        assert_eq!(
            kind_name(&st, CONTACT_ONE_CUSTOMER),
            Some((EntityKind::Customer, "Kim Bakery weekly order".into()))
        );
        assert_eq!(kind_name(&st, COMPANY_ONE_CUSTOMER).unwrap().0, EntityKind::Customer);
    }

    #[test]
    fn otherwise_the_contact_or_company() {
        let st = demo();
        assert_eq!(kind_name(&st, CONTACT_LEAD_AND_CUSTOMER), Some((EntityKind::Contact, "Isabella Garcia".into())));
        assert_eq!(kind_name(&st, CONTACT_TWO_ACTIVE_LEADS), Some((EntityKind::Contact, "Sofia Rossi".into())));
        assert_eq!(kind_name(&st, CONTACT_ONLY_CLOSED), Some((EntityKind::Contact, "Grace Lee".into())));
        assert_eq!(kind_name(&st, COMPANY_NO_LEADS), Some((EntityKind::Company, "Globex Corporation".into())));
        assert_eq!(kind_name(&st, COMPANY_TWO_ACTIVE_LEADS), Some((EntityKind::Company, "Umbrella Logistics".into())));
        assert_eq!(kind_name(&st, CONTACT_AND_COMPANY), Some((EntityKind::Contact, "Lucas Brown".into())));
    }

    #[test]
    fn ten_digits_must_match() {
        let st = demo();
        assert_eq!(match_call(&st, SAME_LAST_8_OTHER_AREA), None);
        assert!(match_call(&st, CONTACT_SECOND_NUMBER).is_some());
        assert_eq!(match_call(&st, UNKNOWN), None);
        assert_eq!(match_call(&st, ""), None);
    }
}
