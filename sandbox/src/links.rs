//! Links between records: `POST /api/v4/{kind}/{id}/link` with
//! `[{to_entity_id, to_entity_type, metadata?}]`, `/unlink` with the same
//! body, batch forms `POST /api/v4/{kind}/link|unlink` (each element also
//! names `entity_id`), and `GET /api/v4/{kind}/{id}/links`.
//!
//! Kinds that link: contact–lead, contact–company, company–lead,
//! customer–contact, customer–company. Linking twice is harmless (the
//! metadata is updated); unlinking what is not linked is harmless too.
//! Link answers list the links made; unlink answers 204 (as Kommo does for
//! deletions).

use crate::entities::{base, page_answer};
use crate::problem::{no_content, ok, parse_array, Fields, Problem};
use crate::store::Store;
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use callcard_calls::{EntityKind, EntityRef};
use serde_json::{json, Value};

/// Whether Kommo links these two kinds.
pub fn linkable(a: EntityKind, b: EntityKind) -> bool {
    use EntityKind::*;
    matches!(
        (a, b),
        (Contact, Lead)
            | (Lead, Contact)
            | (Contact, Company)
            | (Company, Contact)
            | (Company, Lead)
            | (Lead, Company)
            | (Customer, Contact)
            | (Contact, Customer)
            | (Customer, Company)
            | (Company, Customer)
    )
}

pub fn link_json(from: EntityRef, to: EntityRef, metadata: &Value) -> Value {
    json!({
        "entity_id": from.id,
        "entity_type": from.kind.api_path(),
        "to_entity_id": to.id,
        "to_entity_type": to.kind.api_path(),
        "metadata": metadata,
    })
}

pub fn routes_for(router: Router<Sandbox>, kind: EntityKind) -> Router<Sandbox> {
    let b = base(kind);
    router
        .route(
            &format!("{b}/link"),
            post(move |State(sb): State<Sandbox>, body: Bytes| async move { change(&sb, kind, None, &body, true) }),
        )
        .route(
            &format!("{b}/unlink"),
            post(move |State(sb): State<Sandbox>, body: Bytes| async move { change(&sb, kind, None, &body, false) }),
        )
        .route(
            &format!("{b}/{{id}}/link"),
            post(move |State(sb): State<Sandbox>, Path(id): Path<String>, body: Bytes| async move {
                match id.parse::<u64>() {
                    Ok(id) => change(&sb, kind, Some(id), &body, true),
                    Err(_) => Problem::not_found("not found").into_response(),
                }
            }),
        )
        .route(
            &format!("{b}/{{id}}/unlink"),
            post(move |State(sb): State<Sandbox>, Path(id): Path<String>, body: Bytes| async move {
                match id.parse::<u64>() {
                    Ok(id) => change(&sb, kind, Some(id), &body, false),
                    Err(_) => Problem::not_found("not found").into_response(),
                }
            }),
        )
        .route(
            &format!("{b}/{{id}}/links"),
            get(move |State(sb): State<Sandbox>, Path(id): Path<String>, Query(q): Query<Vec<(String, String)>>| async move {
                list(&sb, kind, &id, &q)
            }),
        )
}

fn list(sb: &Sandbox, kind: EntityKind, id: &str, q: &[(String, String)]) -> Response {
    let st = sb.store();
    let Some(id) = id.parse::<u64>().ok().filter(|id| st.map(kind).contains_key(id)) else {
        return Problem::not_found(format!("{} {id} not found", kind.as_str())).into_response();
    };
    let from = EntityRef::new(kind, id);
    let items: Vec<Value> = st
        .linked(from)
        .iter()
        .map(|to| link_json(from, *to, st.link_metadata(from, *to).unwrap_or(&Value::Null)))
        .collect();
    page_answer(items, q, &format!("{}/{id}/links", base(kind)), "links")
}

fn parse_one(
    st: &Store,
    kind: EntityKind,
    entity: Option<u64>,
    item: &Value,
    i: usize,
) -> Result<(EntityRef, EntityRef, Value), crate::problem::RequestErrors> {
    let mut f = Fields::new(item, i);
    let from_id = match entity {
        Some(id) => id,
        None => f.req_u64("entity_id"),
    };
    let to_id = f.req_u64("to_entity_id");
    let to_type = f.req_str("to_entity_type");
    let to_kind = EntityKind::from_api_path(&to_type);
    let from = EntityRef::new(kind, from_id);
    if !st.exists(from) {
        f.error("NotFound", if entity.is_some() { "" } else { "entity_id" }, "The entity does not exist.");
    }
    match to_kind {
        None if !to_type.is_empty() => {
            f.error("NotSupportedChoice", "to_entity_type", "The value you selected is not a valid choice.")
        }
        None => {}
        Some(k) if !linkable(kind, k) => {
            f.error("NotSupportedChoice", "to_entity_type", "These entity types cannot be linked.")
        }
        Some(k) if !st.exists(EntityRef::new(k, to_id)) => {
            f.error("NotFound", "to_entity_id", "The linked entity does not exist.")
        }
        Some(_) => {}
    }
    let metadata = f.get("metadata").cloned().unwrap_or(Value::Null);
    f.finish()?;
    Ok((from, EntityRef::new(to_kind.expect("checked above"), to_id), metadata))
}

fn change(sb: &Sandbox, kind: EntityKind, entity: Option<u64>, body: &[u8], link: bool) -> Response {
    let items = match parse_array(body) {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let mut st = sb.store();
    if let Some(id) = entity {
        if !st.map(kind).contains_key(&id) {
            return Problem::not_found(format!("{} {id} not found", kind.as_str())).into_response();
        }
    }
    let (mut ok_items, mut errors) = (Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        match parse_one(&st, kind, entity, item, i) {
            Ok(x) => ok_items.push(x),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Problem::validation(errors).into_response();
    }
    let mut out = Vec::new();
    for (from, to, metadata) in ok_items {
        if link {
            if !st.link(from, to, metadata.clone()) && !metadata.is_null() {
                for l in st.links.iter_mut() {
                    if (l.from == from && l.to == to) || (l.from == to && l.to == from) {
                        l.metadata = metadata.clone();
                    }
                }
            }
            out.push(link_json(from, to, &metadata));
        } else {
            st.unlink(from, to);
        }
    }
    if !link {
        return no_content();
    }
    ok(json!({"_total_items": out.len(), "_links": {"self": {"href": format!("{}/link", base(kind))}},
              "_embedded": {"links": out}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leads_and_customers_do_not_link_to_each_other() {
        assert!(linkable(EntityKind::Contact, EntityKind::Lead));
        assert!(linkable(EntityKind::Customer, EntityKind::Company));
        assert!(!linkable(EntityKind::Lead, EntityKind::Customer));
        assert!(!linkable(EntityKind::Lead, EntityKind::Lead));
    }
}
