//! Incoming leads ("unsorted", category `sip`): a call from an unknown
//! number becomes a lead waiting in the pipeline's "Incoming leads" stage
//! until a manager accepts or declines it.
//!
//! - `POST /api/v4/leads/unsorted/sip`: an array of `{source_uid,
//!   source_name, pipeline_id?, created_at?, request_id?, metadata{uniq, from,
//!   phone, called_at, duration, service_code, link?, is_call_event_needed?},
//!   _embedded{leads?, contacts?, companies?}}`. The records in `_embedded`
//!   are created (the lead in status "Incoming leads"; a lead is created even
//!   when none is given) and linked together. Answer:
//!   `{"_total_items", "_embedded": {"unsorted": [{"uid", "account_id",
//!   "request_id", "_embedded": {"leads": [{"id"}], "contacts": [{"id"}], "companies": [...]}}]}}`.
//! - `GET /api/v4/leads/unsorted` (`filter[uid]`, `filter[category]`,
//!   paging; 204 when empty) and `GET /api/v4/leads/unsorted/{uid}` show
//!   pending incoming leads only.
//! - `POST /api/v4/leads/unsorted/{uid}/accept` `{"user_id"?, "status_id"?}`:
//!   the lead moves to `status_id` (default: the first stage after
//!   "Incoming leads").
//! - `DELETE /api/v4/leads/unsorted/{uid}/decline` `{"user_id"?}`: the lead is
//!   deleted, and so are its contacts and companies unless they were linked
//!   to something else meanwhile (the documented call-result flow links the
//!   incoming lead's contact to the chosen lead, then declines the incoming
//!   lead; the contact has to survive that). Unconfirmed in detail.
//! - Accepting or declining an incoming lead that is no longer pending gets
//!   404 (it is no longer in "unsorted"); Kommo's exact answer is unconfirmed.
//!
//! While pending, its records are ordinary records: the lead counts as an
//! active lead and the contact's phone is found by caller ID and call
//! matching (a second call from the number lands on the incoming lead).

use crate::entities::{base, filter_ids, new_entity, page_answer};
use crate::oauth::Principal;
use crate::problem::{ok, parse_array, FieldError, Fields, Problem, RequestErrors};
use crate::store::*;
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use callcard_calls::{EntityKind, EntityRef};
use serde_json::{json, Value};

fn refs_json(kind: EntityKind, ids: &[u64]) -> Vec<Value> {
    ids.iter().map(|id| json!({"id": id, "_links": {"self": {"href": format!("{}/{id}", base(kind))}}})).collect()
}

pub fn unsorted_json(st: &Store, u: &Unsorted) -> Value {
    json!({
        "uid": u.uid,
        "source_uid": u.source_uid,
        "source_name": u.source_name,
        "category": "sip",
        "pipeline_id": u.pipeline_id,
        "created_at": u.created_at,
        "metadata": u.metadata,
        "account_id": st.account.id,
        "_links": {"self": {"href": format!("/api/v4/leads/unsorted/{}", u.uid)}},
        "_embedded": {
            "leads": refs_json(EntityKind::Lead, &u.leads),
            "contacts": refs_json(EntityKind::Contact, &u.contacts),
            "companies": refs_json(EntityKind::Company, &u.companies),
        }
    })
}

struct Prepared {
    request_id: String,
    source_uid: String,
    source_name: String,
    created_at: i64,
    metadata: Value,
    leads: Vec<Entity>,
    contacts: Vec<Entity>,
    companies: Vec<Entity>,
}

fn prepare(st: &Store, item: &Value, i: usize, user: u64) -> Result<Prepared, RequestErrors> {
    let mut f = Fields::new(item, i);
    let source_uid = f.req_str("source_uid");
    let source_name = f.req_str("source_name");
    if let Some(p) = f.opt_u64("pipeline_id") {
        if p != PIPELINE_ID {
            f.error("NotSupportedChoice", "pipeline_id", "The value you selected is not a valid choice.");
        }
    }
    let created_at = f.opt_i64("created_at").unwrap_or_else(now_secs);
    let metadata = f.get("metadata").cloned().unwrap_or(Value::Null);
    if !metadata.is_object() {
        f.error("FieldMissing", "metadata", "This field is missing.");
    } else {
        for key in ["uniq", "from", "phone", "service_code"] {
            match &metadata[key] {
                Value::String(s) if !s.is_empty() => {}
                Value::Number(_) => {}
                Value::Null => f.error("FieldMissing", &format!("metadata.{key}"), "This field is missing."),
                _ => f.error("InvalidType", &format!("metadata.{key}"), "This value should be of type string."),
            }
        }
        for key in ["called_at", "duration"] {
            match &metadata[key] {
                Value::Number(n) if n.is_u64() => {}
                Value::Null => f.error("FieldMissing", &format!("metadata.{key}"), "This field is missing."),
                _ => f.error("InvalidType", &format!("metadata.{key}"), "This value should be of type int."),
            }
        }
        if !matches!(metadata["is_call_event_needed"], Value::Null | Value::Bool(_)) {
            f.error("InvalidType", "metadata.is_call_event_needed", "This value should be of type bool.");
        }
    }
    let mut made = [Vec::new(), Vec::new(), Vec::new()];
    for (slot, kind) in [EntityKind::Lead, EntityKind::Contact, EntityKind::Company].into_iter().enumerate() {
        let list = f.get("_embedded").and_then(|e| e.get(kind.api_path())).cloned().unwrap_or(Value::Null);
        let list = match list {
            Value::Null => Vec::new(),
            Value::Array(a) => a,
            _ => {
                f.error(
                    "InvalidType",
                    &format!("_embedded.{}", kind.api_path()),
                    "This value should be of type array.",
                );
                Vec::new()
            }
        };
        for (j, x) in list.iter().enumerate() {
            match new_entity(st, kind, x, user) {
                Ok(mut e) => {
                    if kind == EntityKind::Lead {
                        e.status_id = STATUS_INCOMING;
                        e.pipeline_id = PIPELINE_ID;
                    }
                    made[slot].push(e)
                }
                Err(errs) => {
                    for FieldError { code, path, detail } in errs {
                        f.error(&code, &format!("_embedded.{}.{j}.{path}", kind.api_path()), &detail);
                    }
                }
            }
        }
    }
    let request_id = f.finish()?;
    let [mut leads, contacts, companies] = made;
    if leads.is_empty() {
        // An incoming lead always has a lead; Kommo names it after the call.
        let mut e = Entity::new(EntityKind::Lead, 0, "", created_at, user);
        e.status_id = STATUS_INCOMING;
        leads.push(e);
    }
    Ok(Prepared { request_id, source_uid, source_name, created_at, metadata, leads, contacts, companies })
}

/// `POST /api/v4/leads/unsorted/sip`.
pub async fn create_sip(State(sb): State<Sandbox>, Extension(p): Extension<Principal>, body: Bytes) -> Response {
    let items = match parse_array(&body) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let mut st = sb.store();
    let (mut ready, mut errors) = (Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        match prepare(&st, item, i, p.user_id) {
            Ok(x) => ready.push(x),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Problem::validation(errors).into_response();
    }
    let mut out = Vec::new();
    for x in ready {
        let mut ids: [Vec<u64>; 3] = Default::default();
        for (slot, list) in [x.leads, x.contacts, x.companies].into_iter().enumerate() {
            for mut e in list {
                e.id = st.next_id(e.kind);
                e.created_at = x.created_at;
                e.updated_at = x.created_at;
                ids[slot].push(e.id);
                st.put(e);
            }
        }
        let [leads, contacts, companies] = ids;
        for l in &leads {
            for (i, c) in contacts.iter().enumerate() {
                st.link(
                    EntityRef::new(EntityKind::Lead, *l),
                    EntityRef::new(EntityKind::Contact, *c),
                    json!({"is_main": i == 0}),
                );
            }
            for c in &companies {
                st.link(EntityRef::new(EntityKind::Lead, *l), EntityRef::new(EntityKind::Company, *c), Value::Null);
            }
        }
        for c in &contacts {
            for co in &companies {
                st.link(EntityRef::new(EntityKind::Contact, *c), EntityRef::new(EntityKind::Company, *co), Value::Null);
            }
        }
        let uid = uuid::Uuid::new_v4().simple().to_string();
        let u = Unsorted {
            uid: uid.clone(),
            source_uid: x.source_uid,
            source_name: x.source_name,
            pipeline_id: PIPELINE_ID,
            created_at: x.created_at,
            metadata: x.metadata,
            leads,
            contacts,
            companies,
            status: UnsortedStatus::Pending,
            processed_at: None,
            processed_by: None,
        };
        out.push(json!({
            "uid": uid, "account_id": st.account.id, "request_id": x.request_id,
            "_links": {"self": {"href": format!("/api/v4/leads/unsorted/{uid}")}},
            "_embedded": {
                "leads": refs_json(EntityKind::Lead, &u.leads),
                "contacts": refs_json(EntityKind::Contact, &u.contacts),
                "companies": refs_json(EntityKind::Company, &u.companies),
            }
        }));
        st.unsorted.insert(uid, u);
    }
    ok(json!({"_total_items": out.len(), "_links": {"self": {"href": "/api/v4/leads/unsorted/sip"}},
              "_embedded": {"unsorted": out}}))
}

/// `GET /api/v4/leads/unsorted`.
pub async fn list(State(sb): State<Sandbox>, Query(q): Query<Vec<(String, String)>>) -> Response {
    let st = sb.store();
    let uids: Vec<&str> =
        q.iter().filter(|(k, _)| k.starts_with("filter[uid]")).flat_map(|(_, v)| v.split(',')).collect();
    let categories: Vec<&str> =
        q.iter().filter(|(k, _)| k.starts_with("filter[category]")).flat_map(|(_, v)| v.split(',')).collect();
    let pipelines = filter_ids(&q, "pipeline_id");
    let items: Vec<Value> = st
        .unsorted
        .values()
        .filter(|u| u.status == UnsortedStatus::Pending)
        .filter(|u| uids.is_empty() || uids.contains(&u.uid.as_str()))
        .filter(|_| categories.is_empty() || categories.contains(&"sip"))
        .filter(|u| pipelines.as_ref().is_none_or(|p| p.contains(&u.pipeline_id)))
        .map(|u| unsorted_json(&st, u))
        .collect();
    page_answer(items, &q, "/api/v4/leads/unsorted", "unsorted")
}

fn pending<'a>(st: &'a Store, uid: &str) -> Result<&'a Unsorted, Problem> {
    match st.unsorted.get(uid) {
        Some(u) if u.status == UnsortedStatus::Pending => Ok(u),
        Some(u) => Err(Problem::not_found(format!("incoming lead {uid} was already {:?}", u.status).to_lowercase())),
        None => Err(Problem::not_found(format!("incoming lead {uid} not found"))),
    }
}

/// `GET /api/v4/leads/unsorted/{uid}`.
pub async fn get_one(State(sb): State<Sandbox>, Path(uid): Path<String>) -> Response {
    let st = sb.store();
    match pending(&st, &uid) {
        Ok(u) => ok(unsorted_json(&st, u)),
        Err(p) => p.into_response(),
    }
}

fn body_object(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// `POST /api/v4/leads/unsorted/{uid}/accept`.
pub async fn accept(
    State(sb): State<Sandbox>,
    Extension(p): Extension<Principal>,
    Path(uid): Path<String>,
    body: Bytes,
) -> Response {
    let v = body_object(&body);
    let mut st = sb.store();
    let u = match pending(&st, &uid) {
        Ok(u) => u.clone(),
        Err(p) => return p.into_response(),
    };
    let user = v["user_id"].as_u64().unwrap_or(p.user_id);
    let status = v["status_id"].as_u64().unwrap_or(STATUS_FIRST_CONTACT);
    if ![STATUS_FIRST_CONTACT, STATUS_NEGOTIATION, STATUS_DECISION, STATUS_WON, STATUS_LOST].contains(&status) {
        return Problem::validation(vec![RequestErrors {
            request_id: "0".into(),
            errors: vec![FieldError {
                code: "NotSupportedChoice".into(),
                path: "status_id".into(),
                detail: "The value you selected is not a valid choice.".into(),
            }],
        }])
        .into_response();
    }
    let now = now_secs();
    for id in &u.leads {
        if let Some(mut e) = st.leads.get(id).cloned() {
            e.status_id = status;
            e.updated_at = now;
            e.updated_by = user;
            st.put(e);
        }
    }
    let rec = st.unsorted.get_mut(&uid).expect("checked pending above");
    rec.status = UnsortedStatus::Accepted;
    rec.processed_at = Some(now);
    rec.processed_by = Some(user);
    ok(json!({
        "uid": uid, "account_id": st.account.id,
        "_links": {"self": {"href": format!("/api/v4/leads/unsorted/{uid}/accept")}},
        "_embedded": {
            "leads": refs_json(EntityKind::Lead, &u.leads),
            "contacts": refs_json(EntityKind::Contact, &u.contacts),
            "companies": refs_json(EntityKind::Company, &u.companies),
        }
    }))
}

/// `DELETE /api/v4/leads/unsorted/{uid}/decline`.
pub async fn decline(
    State(sb): State<Sandbox>,
    Extension(p): Extension<Principal>,
    Path(uid): Path<String>,
    body: Bytes,
) -> Response {
    let v = body_object(&body);
    let mut st = sb.store();
    let u = match pending(&st, &uid) {
        Ok(u) => u.clone(),
        Err(p) => return p.into_response(),
    };
    let user = v["user_id"].as_u64().unwrap_or(p.user_id);
    let own: Vec<EntityRef> = u
        .leads
        .iter()
        .map(|id| EntityRef::new(EntityKind::Lead, *id))
        .chain(u.contacts.iter().map(|id| EntityRef::new(EntityKind::Contact, *id)))
        .chain(u.companies.iter().map(|id| EntityRef::new(EntityKind::Company, *id)))
        .collect();
    for r in &own {
        // Contacts/companies linked to records outside this incoming lead
        // were adopted by a manager: keep them.
        let adopted = r.kind != EntityKind::Lead && st.linked(*r).iter().any(|x| !own.contains(x));
        if !adopted {
            st.remove(*r);
        }
    }
    let rec = st.unsorted.get_mut(&uid).expect("checked pending above");
    rec.status = UnsortedStatus::Declined;
    rec.processed_at = Some(now_secs());
    rec.processed_by = Some(user);
    ok(json!({
        "uid": uid, "account_id": st.account.id,
        "_links": {"self": {"href": format!("/api/v4/leads/unsorted/{uid}/decline")}},
        "_embedded": {"leads": refs_json(EntityKind::Lead, &u.leads)}
    }))
}
