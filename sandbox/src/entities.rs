//! Contacts, companies, leads and customers over HTTP: create (batch),
//! update (PATCH, batch or one), get one, and list with `query`, `filter[id]`,
//! paging (`page`, `limit` ≤ 250) and `with=`.
//!
//! Phones live where Kommo keeps them: in `custom_fields_values`, the field
//! with `field_code: "PHONE"` (several values each, `enum_code` WORK, MOB...).
//! On create/update a field is recognised by `field_code` or by its
//! `field_id` ([`PHONE_FIELD_ID`], [`EMAIL_FIELD_ID`]); giving a field
//! replaces all its values, as Kommo does.
//!
//! `query` search: names and e-mails by substring (case-insensitive), the id
//! exactly, and phones the way Kommo documents for contacts: on the last 7
//! digits (shorter digit strings match anywhere in a number). Leads and
//! customers also match through the phones of their linked contacts and
//! companies (how far Kommo's lead search reaches is unconfirmed; the
//! widget's lead/customer search by phone relies on this).
//!
//! `with=`: contacts and companies always embed their companies; leads
//! always embed their companies; `with=contacts|leads|customers|companies`
//! adds those links (`{id, _links}`; contacts on leads carry `is_main`).

use crate::oauth::Principal;
use crate::problem::{check_batch, element_id, hal, no_content, ok, Fields, Problem, RequestErrors};
use crate::store::*;
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use callcard_calls::phone::{digits, last_digits};
use callcard_calls::{EntityKind, EntityRef};
use serde_json::{json, Value};

/// `/api/v4/{kind}`.
pub fn base(kind: EntityKind) -> String {
    format!("/api/v4/{}", kind.api_path())
}

/// Adds the entity routes of one kind.
pub fn routes_for(router: Router<Sandbox>, kind: EntityKind) -> Router<Sandbox> {
    let b = base(kind);
    router
        .route(
            &b,
            get(move |State(sb): State<Sandbox>, Query(q): Query<Vec<(String, String)>>| async move {
                list(&sb, kind, &q)
            })
            .post(move |State(sb): State<Sandbox>, Extension(p): Extension<Principal>, body: Bytes| async move {
                create(&sb, kind, p, &body)
            })
            .patch(move |State(sb): State<Sandbox>, Extension(p): Extension<Principal>, body: Bytes| async move {
                update_many(&sb, kind, p, &body)
            }),
        )
        .route(
            &format!("{b}/{{id}}"),
            get(
                move |State(sb): State<Sandbox>, Path(id): Path<String>, Query(q): Query<Vec<(String, String)>>| async move {
                    get_one(&sb, kind, &id, &q)
                },
            )
            .patch(
                move |State(sb): State<Sandbox>, Extension(p): Extension<Principal>, Path(id): Path<String>, body: Bytes| async move {
                    update_one(&sb, kind, p, &id, &body)
                },
            ),
        )
}

/// The first value of a query parameter.
pub fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Kommo's paging: `page` from 1, `limit` 50 by default and at most 250.
pub fn paging(q: &[(String, String)]) -> (usize, usize) {
    let page = param(q, "page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1);
    let limit = param(q, "limit").and_then(|l| l.parse().ok()).filter(|l| *l >= 1).unwrap_or(50).min(250);
    (page, limit)
}

/// One page of a list as Kommo answers it, or 204 when the page is empty.
pub fn page_answer(items: Vec<Value>, q: &[(String, String)], href: &str, key: &str) -> Response {
    page_of(items, q, href, key, |v| v)
}

/// [`page_answer`] over records rendered only once they are on the page:
/// an account of 100,000 contacts renders 250 per request, not all of them.
pub fn page_of<T>(
    records: Vec<T>,
    q: &[(String, String)],
    href: &str,
    key: &str,
    render: impl Fn(T) -> Value,
) -> Response {
    let (page, limit) = paging(q);
    let total = records.len();
    let start = (page - 1).saturating_mul(limit);
    if start >= total {
        return no_content();
    }
    let items: Vec<Value> = records.into_iter().skip(start).take(limit).map(render).collect();
    let mut links = json!({"self": {"href": format!("{href}?page={page}&limit={limit}")}});
    if start + limit < total {
        links["next"] = json!({"href": format!("{href}?page={}&limit={limit}", page + 1)});
    }
    if page > 1 {
        links["prev"] = json!({"href": format!("{href}?page={}&limit={limit}", page - 1)});
    }
    ok(json!({"_page": page, "_links": links, "_embedded": {key: items}}))
}

/// The values of `filter[id]`, `filter[id][]` and `filter[id][N]`.
pub fn filter_ids(q: &[(String, String)], name: &str) -> Option<Vec<u64>> {
    let plain = format!("filter[{name}]");
    let ids: Vec<u64> = q
        .iter()
        .filter(|(k, _)| *k == plain || k.starts_with(&format!("{plain}[")))
        .flat_map(|(_, v)| v.split(',').filter_map(|s| s.trim().parse().ok()).collect::<Vec<u64>>())
        .collect();
    let asked = q.iter().any(|(k, _)| k.starts_with(&plain));
    asked.then_some(ids)
}

/// Which links `with=` asks for.
#[derive(Default, Clone, Copy)]
pub struct With {
    pub contacts: bool,
    pub leads: bool,
    pub companies: bool,
    pub customers: bool,
}

impl With {
    pub fn parse(q: &[(String, String)]) -> Self {
        let mut w = With::default();
        for part in param(q, "with").unwrap_or("").split(',') {
            match part.trim() {
                "contacts" => w.contacts = true,
                "leads" => w.leads = true,
                "companies" => w.companies = true,
                "customers" => w.customers = true,
                _ => {}
            }
        }
        w
    }
}

fn multi_field(id: u64, code: &str, name: &str, values: &[FieldValue]) -> Value {
    json!({
        "field_id": id,
        "field_name": name,
        "field_code": code,
        "field_type": "multitext",
        "values": values.iter().map(|v| json!({"value": v.value, "enum_code": v.enum_code})).collect::<Vec<_>>(),
    })
}

/// `custom_fields_values` as Kommo renders it: `null` when the record has none.
pub fn custom_fields_json(e: &Entity) -> Value {
    let mut fields = Vec::new();
    if !e.phones.is_empty() {
        fields.push(multi_field(PHONE_FIELD_ID, "PHONE", "Phone", &e.phones));
    }
    if !e.emails.is_empty() {
        fields.push(multi_field(EMAIL_FIELD_ID, "EMAIL", "Email", &e.emails));
    }
    fields.extend(e.other_fields.iter().cloned());
    if fields.is_empty() {
        Value::Null
    } else {
        Value::Array(fields)
    }
}

fn embedded_refs(st: &Store, r: EntityRef, kind: EntityKind) -> Vec<Value> {
    st.linked_of(r, kind)
        .into_iter()
        .map(|e| {
            let mut v = json!({"id": e.id, "_links": {"self": {"href": format!("{}/{}", base(kind), e.id)}}});
            if kind == EntityKind::Contact && r.kind == EntityKind::Lead {
                let main = st.link_metadata(r, e.entity_ref()).and_then(|m| m["is_main"].as_bool()).unwrap_or(false);
                v["is_main"] = json!(main);
            }
            v
        })
        .collect()
}

/// One record as Kommo's API renders it.
pub fn entity_json(st: &Store, e: &Entity, with: With) -> Value {
    let r = e.entity_ref();
    let mut v = json!({
        "id": e.id,
        "name": e.name,
        "responsible_user_id": e.responsible_user_id,
        "group_id": 0,
        "created_by": e.created_by,
        "updated_by": e.updated_by,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "closest_task_at": null,
        "is_deleted": false,
        "custom_fields_values": custom_fields_json(e),
        "account_id": st.account.id,
        "_links": {"self": {"href": format!("{}/{}", base(e.kind), e.id)}},
    });
    let mut emb = json!({"tags": []});
    match e.kind {
        EntityKind::Contact => {
            v["first_name"] = json!(e.first_name);
            v["last_name"] = json!(e.last_name);
            v["is_unsorted"] = json!(false);
            emb["companies"] = json!(embedded_refs(st, r, EntityKind::Company));
            if with.leads {
                emb["leads"] = json!(embedded_refs(st, r, EntityKind::Lead));
            }
            if with.customers {
                emb["customers"] = json!(embedded_refs(st, r, EntityKind::Customer));
            }
        }
        EntityKind::Company => {
            if with.contacts {
                emb["contacts"] = json!(embedded_refs(st, r, EntityKind::Contact));
            }
            if with.leads {
                emb["leads"] = json!(embedded_refs(st, r, EntityKind::Lead));
            }
            if with.customers {
                emb["customers"] = json!(embedded_refs(st, r, EntityKind::Customer));
            }
        }
        EntityKind::Lead => {
            v["price"] = json!(e.price);
            v["status_id"] = json!(e.status_id);
            v["pipeline_id"] = json!(e.pipeline_id);
            v["loss_reason_id"] = Value::Null;
            v["closed_at"] = json!(e.closed_at);
            v["score"] = Value::Null;
            v["labor_cost"] = Value::Null;
            emb["companies"] = json!(embedded_refs(st, r, EntityKind::Company));
            if with.contacts {
                emb["contacts"] = json!(embedded_refs(st, r, EntityKind::Contact));
            }
        }
        EntityKind::Customer => {
            v["next_price"] = json!(e.price);
            v["next_date"] = json!(e.updated_at + 30 * 86_400);
            v["status_id"] = json!(e.status_id);
            v["periodicity"] = json!(30);
            v["ltv"] = json!(e.price * 6);
            v["purchases_count"] = json!(6);
            v["average_check"] = json!(e.price);
            emb["segments"] = json!([]);
            if with.contacts {
                emb["contacts"] = json!(embedded_refs(st, r, EntityKind::Contact));
            }
            if with.companies {
                emb["companies"] = json!(embedded_refs(st, r, EntityKind::Company));
            }
        }
    }
    v["_embedded"] = emb;
    v
}

/// Whether a phone search `query` matches `phone` (see the module doc).
pub fn phone_matches_query(phone: &str, query_digits: &str) -> bool {
    let p = digits(phone);
    if query_digits.len() >= 7 {
        p.len() >= 7 && last_digits(&p, 7) == last_digits(query_digits, 7)
    } else {
        p.contains(query_digits)
    }
}

/// Whether `e` matches the `query` of a list request.
pub fn matches_query(st: &Store, e: &Entity, query: &str) -> bool {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return true;
    }
    if e.id.to_string() == q {
        return true;
    }
    let text = |s: &str| s.to_lowercase().contains(&q);
    if text(&e.name) || text(&e.first_name) || text(&e.last_name) || e.emails.iter().any(|m| text(&m.value)) {
        return true;
    }
    // Phone search only when the query looks like a phone number: digits and
    // the usual punctuation, at least 3 digits.
    let d = digits(&q);
    let phoneish = q.chars().all(|c| c.is_ascii_digit() || " +-()./".contains(c));
    if !phoneish || d.len() < 3 {
        return false;
    }
    let own = e.phones.iter().any(|p| phone_matches_query(&p.value, &d));
    if own || !matches!(e.kind, EntityKind::Lead | EntityKind::Customer) {
        return own;
    }
    st.linked(e.entity_ref())
        .iter()
        .filter(|r| matches!(r.kind, EntityKind::Contact | EntityKind::Company))
        .filter_map(|r| st.get(*r))
        .any(|x| x.phones.iter().any(|p| phone_matches_query(&p.value, &d)))
}

fn list(sb: &Sandbox, kind: EntityKind, q: &[(String, String)]) -> Response {
    let st = sb.store();
    let with = With::parse(q);
    let query = param(q, "query").unwrap_or("");
    let ids = filter_ids(q, "id");
    let (from, to) = updated_at_range(q);
    let mut records: Vec<&Entity> = st
        .map(kind)
        .values()
        .filter(|e| ids.as_ref().is_none_or(|ids| ids.contains(&e.id)))
        .filter(|e| from.is_none_or(|from| e.updated_at >= from) && to.is_none_or(|to| e.updated_at <= to))
        .filter(|e| matches_query(&st, e, query))
        .collect();
    match param(q, "order[updated_at]") {
        Some("asc") => records.sort_by_key(|e| (e.updated_at, e.id)),
        Some("desc") => records.sort_by_key(|e| std::cmp::Reverse((e.updated_at, e.id))),
        _ if param(q, "order[id]") == Some("desc") => records.reverse(),
        _ => {}
    }
    page_of(records, q, &base(kind), kind.api_path(), |e| entity_json(&st, e, with))
}

/// `filter[updated_at][from]` / `[to]` (Unix seconds, both inclusive), or
/// `filter[updated_at]=N` for exactly N.
fn updated_at_range(q: &[(String, String)]) -> (Option<i64>, Option<i64>) {
    let number = |key: &str| param(q, key).and_then(|v| v.trim().parse::<i64>().ok());
    match number("filter[updated_at]") {
        Some(exact) => (Some(exact), Some(exact)),
        None => (number("filter[updated_at][from]"), number("filter[updated_at][to]")),
    }
}

fn get_one(sb: &Sandbox, kind: EntityKind, id: &str, q: &[(String, String)]) -> Response {
    let st = sb.store();
    match id.parse::<u64>().ok().and_then(|id| st.map(kind).get(&id)) {
        Some(e) => ok(entity_json(&st, e, With::parse(q))),
        None => Problem::not_found(format!("{} {id} not found", kind.as_str())).into_response(),
    }
}

/// Reads one PHONE/EMAIL-style field's values.
fn field_values(f: &mut Fields, field: &Value, path: &str) -> Vec<FieldValue> {
    let Some(values) = field.get("values").and_then(Value::as_array) else {
        f.error("FieldMissing", &format!("{path}.values"), "This field is missing.");
        return Vec::new();
    };
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let value = match &v["value"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    f.error("InvalidType", &format!("{path}.values.{i}.value"), "This value should be of type string.");
                    return None;
                }
            };
            let enum_code = v["enum_code"].as_str().unwrap_or("WORK").to_string();
            Some(FieldValue { value, enum_code })
        })
        .collect()
}

/// The writable fields of a record, from a create or update element.
/// Only fields present in `item` are changed.
fn apply_fields(st: &Store, f: &mut Fields, e: &mut Entity) {
    if let Some(name) = f.opt_str("name") {
        e.name = name;
    }
    if e.kind == EntityKind::Contact {
        let first = f.opt_str("first_name");
        let last = f.opt_str("last_name");
        if let Some(x) = first {
            e.first_name = x;
        }
        if let Some(x) = last {
            e.last_name = x;
        }
        if f.get("name").is_none() && (f.get("first_name").is_some() || f.get("last_name").is_some()) {
            e.name = format!("{} {}", e.first_name, e.last_name).trim().to_string();
        }
    }
    if let Some(user) = f.opt_u64("responsible_user_id") {
        if st.user(user).is_none() {
            f.error("NotSupportedChoice", "responsible_user_id", "The value you selected is not a valid choice.");
        }
        e.responsible_user_id = user;
    }
    match e.kind {
        EntityKind::Lead => {
            if let Some(p) = f.opt_i64("price") {
                e.price = p;
            }
            if let Some(pid) = f.opt_u64("pipeline_id") {
                if pid != PIPELINE_ID {
                    f.error("NotSupportedChoice", "pipeline_id", "The value you selected is not a valid choice.");
                }
            }
            if let Some(s) = f.opt_u64("status_id") {
                if ![
                    STATUS_INCOMING,
                    STATUS_FIRST_CONTACT,
                    STATUS_NEGOTIATION,
                    STATUS_DECISION,
                    STATUS_WON,
                    STATUS_LOST,
                ]
                .contains(&s)
                {
                    f.error("NotSupportedChoice", "status_id", "The value you selected is not a valid choice.");
                }
                let closed = s == STATUS_WON || s == STATUS_LOST;
                e.closed_at = if closed { Some(e.closed_at.unwrap_or_else(now_secs)) } else { None };
                e.status_id = s;
            }
        }
        EntityKind::Customer => {
            if let Some(p) = f.opt_i64("next_price") {
                e.price = p;
            }
            if let Some(s) = f.opt_u64("status_id") {
                if ![CUSTOMER_STATUS_RECURRING, CUSTOMER_STATUS_EXPECTED, CUSTOMER_STATUS_LOST].contains(&s) {
                    f.error("NotSupportedChoice", "status_id", "The value you selected is not a valid choice.");
                }
                e.status_id = s;
            }
        }
        _ => {}
    }
    match f.get("custom_fields_values") {
        None => {}
        Some(Value::Array(fields)) => {
            for (i, field) in fields.iter().enumerate() {
                let path = format!("custom_fields_values.{i}");
                let code = field["field_code"].as_str().unwrap_or("");
                let id = field["field_id"].as_u64().unwrap_or(0);
                if code == "PHONE" || id == PHONE_FIELD_ID {
                    e.phones = field_values(f, field, &path);
                } else if code == "EMAIL" || id == EMAIL_FIELD_ID {
                    e.emails = field_values(f, field, &path);
                } else if id == 0 && code.is_empty() {
                    f.error("FieldMissing", &format!("{path}.field_id"), "This field is missing.");
                } else {
                    e.other_fields
                        .retain(|o| o["field_id"] != field["field_id"] || o["field_code"] != field["field_code"]);
                    e.other_fields.push(field.clone());
                }
            }
        }
        Some(_) => f.error("InvalidType", "custom_fields_values", "This value should be of type array."),
    }
}

/// A new record of `kind` from a JSON element (used for the records inside
/// an incoming lead). The id is left 0 for the caller to assign.
pub fn new_entity(
    st: &Store,
    kind: EntityKind,
    item: &Value,
    user: u64,
) -> Result<Entity, Vec<crate::problem::FieldError>> {
    let mut f = Fields::new(item, 0);
    let mut e = Entity::new(kind, 0, "", now_secs(), user);
    apply_fields(st, &mut f, &mut e);
    if f.errors.is_empty() {
        Ok(e)
    } else {
        Err(f.errors)
    }
}

/// `_embedded.{contacts,companies,leads,customers}: [{id}]` on create: links to make.
fn embedded_links(st: &Store, f: &mut Fields, kind: EntityKind) -> Vec<EntityRef> {
    let Some(emb) = f.get("_embedded") else { return Vec::new() };
    let mut out = Vec::new();
    for other in crate::store::ALL_KINDS {
        if other == kind {
            continue;
        }
        let Some(list) = emb.get(other.api_path()).and_then(Value::as_array) else { continue };
        for (i, x) in list.iter().enumerate() {
            match x["id"].as_u64() {
                Some(id) if st.exists(EntityRef::new(other, id)) => out.push(EntityRef::new(other, id)),
                _ => f.error(
                    "NotFound",
                    &format!("_embedded.{}.{i}.id", other.api_path()),
                    "The linked entity does not exist.",
                ),
            }
        }
    }
    out
}

fn create(sb: &Sandbox, kind: EntityKind, p: Principal, body: &[u8]) -> Response {
    let mut st = sb.store();
    let checked = check_batch(body, |item, i| {
        let mut f = Fields::new(item, i);
        let now = f.opt_i64("created_at").unwrap_or_else(now_secs);
        let mut e = Entity::new(kind, 0, "", now, p.user_id);
        if let Some(by) = f.opt_u64("created_by") {
            e.created_by = by;
            e.updated_by = by;
        }
        apply_fields(&st, &mut f, &mut e);
        let links = embedded_links(&st, &mut f, kind);
        Ok((f.finish()?, e, links))
    });
    let prepared = match checked {
        Ok(prepared) => prepared,
        Err(e) => return e.into_response(),
    };
    let mut out = Vec::new();
    for (rid, mut e, links) in prepared {
        e.id = st.next_id(kind);
        let r = e.entity_ref();
        st.put(e);
        for (i, to) in links.into_iter().enumerate() {
            let meta = if to.kind == EntityKind::Contact { json!({"is_main": i == 0}) } else { Value::Null };
            st.link(r, to, meta);
        }
        out.push(
            json!({"id": r.id, "request_id": rid, "_links": {"self": {"href": format!("{}/{}", base(kind), r.id)}}}),
        );
    }
    ok(json!({"_links": {"self": {"href": base(kind)}}, "_embedded": {kind.api_path(): out}}))
}

fn apply_update(
    st: &Store,
    kind: EntityKind,
    p: Principal,
    item: &Value,
    index: usize,
    id: u64,
) -> Result<(String, Entity), RequestErrors> {
    let mut f = Fields::new(item, index);
    let Some(mut e) = st.map(kind).get(&id).cloned() else {
        f.error("NotFound", "id", "The entity does not exist.");
        return Err(f.finish().unwrap_err());
    };
    apply_fields(st, &mut f, &mut e);
    e.updated_at = f.opt_i64("updated_at").unwrap_or_else(now_secs);
    e.updated_by = p.user_id;
    let rid = f.finish()?;
    Ok((rid, e))
}

fn update_many(sb: &Sandbox, kind: EntityKind, p: Principal, body: &[u8]) -> Response {
    let mut st = sb.store();
    let updated = match check_batch(body, |item, i| apply_update(&st, kind, p, item, i, element_id(item, i)?)) {
        Ok(updated) => updated,
        Err(e) => return e.into_response(),
    };
    let mut out = Vec::new();
    for (rid, e) in updated {
        out.push(json!({"id": e.id, "updated_at": e.updated_at, "request_id": rid,
                        "_links": {"self": {"href": format!("{}/{}", base(kind), e.id)}}}));
        st.put(e);
    }
    ok(json!({"_links": {"self": {"href": base(kind)}}, "_embedded": {kind.api_path(): out}}))
}

fn update_one(sb: &Sandbox, kind: EntityKind, p: Principal, id: &str, body: &[u8]) -> Response {
    let item = match crate::problem::parse_body(body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut st = sb.store();
    let Some(id) = id.parse::<u64>().ok().filter(|id| st.map(kind).contains_key(id)) else {
        return Problem::not_found(format!("{} {id} not found", kind.as_str())).into_response();
    };
    match apply_update(&st, kind, p, &item, 0, id) {
        Ok((_, e)) => {
            let answer = json!({"id": e.id, "updated_at": e.updated_at,
                                "_links": {"self": {"href": format!("{}/{}", base(kind), e.id)}}});
            st.put(e);
            hal(StatusCode::OK, answer)
        }
        Err(e) => Problem::validation(vec![e]).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_query_uses_last_seven_digits() {
        assert!(phone_matches_query("+1 (830) 570-30-77", "88305703077"));
        assert!(phone_matches_query("+1 (830) 570-30-77", "5703077"));
        assert!(!phone_matches_query("+1 (830) 570-30-78", "5703077"));
        assert!(phone_matches_query("+1 (830) 570-30-77", "3077"));
    }

    #[test]
    fn paging_defaults_and_caps() {
        let q = vec![("limit".to_string(), "1000".to_string())];
        assert_eq!(paging(&q), (1, 250));
        assert_eq!(paging(&[]), (1, 50));
    }

    #[test]
    fn filter_ids_accepts_kommo_spellings() {
        let q = vec![("filter[id][]".to_string(), "1".to_string()), ("filter[id][1]".to_string(), "2".to_string())];
        assert_eq!(filter_ids(&q, "id"), Some(vec![1, 2]));
        assert_eq!(filter_ids(&[], "id"), None);
    }
}
