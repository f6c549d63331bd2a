//! Notes on every record kind: `call_in`, `call_out`, `common`,
//! `service_message`; created in batches, read, and edited with PATCH.
//!
//! Required `params` per type:
//! - `call_in` / `call_out`: `uniq`, `duration`, `source`, `phone` (`link` optional);
//! - `common`: `text`;
//! - `service_message`: `service`, `text`.
//!
//! PATCH merges the given `params` into the note's (so sending only `link`
//! adds a late recording) and re-validates; the type cannot change. Whether
//! Kommo merges or replaces `params` is unconfirmed; a client that always
//! sends complete params works with either.

use crate::entities::{base, filter_ids, page_answer, param};
use crate::oauth::Principal;
use crate::problem::{check_batch, element_id, hal, ok, parse_body, Fields, Problem, RequestErrors};
use crate::store::{now_secs, Note, Store};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use callcard_calls::{EntityKind, EntityRef};
use serde_json::{json, Value};

pub const NOTE_TYPES: [&str; 4] = ["call_in", "call_out", "common", "service_message"];

type Q = Query<Vec<(String, String)>>;

/// Adds the note routes of one record kind.
pub fn routes_for(router: Router<Sandbox>, kind: EntityKind) -> Router<Sandbox> {
    let b = base(kind);
    router
        .route(
            &format!("{b}/notes"),
            get(move |State(sb): State<Sandbox>, Query(q): Q| async move { list(&sb, kind, None, &q) })
                .post(move |State(sb): State<Sandbox>, Extension(p): Extension<Principal>, body: Bytes| async move {
                    create(&sb, kind, None, p, &body)
                })
                .patch(move |State(sb): State<Sandbox>, Extension(p): Extension<Principal>, body: Bytes| async move {
                    update_many(&sb, kind, None, p, &body)
                }),
        )
        .route(
            &format!("{b}/notes/{{note_id}}"),
            get(move |State(sb): State<Sandbox>, Path(n): Path<String>| async move { get_one(&sb, kind, None, &n) })
                .patch(
                    move |State(sb): State<Sandbox>,
                          Extension(p): Extension<Principal>,
                          Path(n): Path<String>,
                          body: Bytes| async move { update_one(&sb, kind, None, &n, p, &body) },
                ),
        )
        .route(
            &format!("{b}/{{id}}/notes"),
            get(move |State(sb): State<Sandbox>, Path(id): Path<String>, Query(q): Q| async move {
                match parse_entity(&sb, kind, &id) {
                    Ok(e) => list(&sb, kind, Some(e), &q),
                    Err(p) => p.into_response(),
                }
            })
            .post(
                move |State(sb): State<Sandbox>,
                      Extension(p): Extension<Principal>,
                      Path(id): Path<String>,
                      body: Bytes| async move {
                    match parse_entity(&sb, kind, &id) {
                        Ok(e) => create(&sb, kind, Some(e), p, &body),
                        Err(p) => p.into_response(),
                    }
                },
            ),
        )
        .route(
            &format!("{b}/{{id}}/notes/{{note_id}}"),
            get(move |State(sb): State<Sandbox>, Path((id, n)): Path<(String, String)>| async move {
                match parse_entity(&sb, kind, &id) {
                    Ok(e) => get_one(&sb, kind, Some(e), &n),
                    Err(p) => p.into_response(),
                }
            })
            .patch(
                move |State(sb): State<Sandbox>,
                      Extension(p): Extension<Principal>,
                      Path((id, n)): Path<(String, String)>,
                      body: Bytes| async move {
                    match parse_entity(&sb, kind, &id) {
                        Ok(e) => update_one(&sb, kind, Some(e), &n, p, &body),
                        Err(p) => p.into_response(),
                    }
                },
            ),
        )
}

fn parse_entity(sb: &Sandbox, kind: EntityKind, id: &str) -> Result<u64, Problem> {
    id.parse::<u64>()
        .ok()
        .filter(|id| sb.store().map(kind).contains_key(id))
        .ok_or_else(|| Problem::not_found(format!("{} {id} not found", kind.as_str())))
}

/// A note as Kommo renders it.
pub fn note_json(st: &Store, n: &Note) -> Value {
    let path = n.entity.kind.api_path();
    json!({
        "id": n.id,
        "entity_id": n.entity.id,
        "created_by": n.created_by,
        "updated_by": n.updated_by,
        "created_at": n.created_at,
        "updated_at": n.updated_at,
        "responsible_user_id": n.responsible_user_id,
        "group_id": 0,
        "note_type": n.note_type,
        "params": n.params,
        "account_id": st.account.id,
        "_links": {"self": {"href": format!("/api/v4/{path}/{}/notes/{}", n.entity.id, n.id)}},
    })
}

/// The longest call note text (`params.call_result`) accepted, in
/// characters. Unconfirmed: Kommo documents no limit.
pub const CALL_NOTE_TEXT_MAX: usize = 8_000;

/// Checks `params` for `note_type`, reporting errors under `params.<key>`.
pub fn validate_params(f: &mut Fields, note_type: &str, params: &Value) {
    if !params.is_object() {
        f.error("InvalidType", "params", "This value should be of type object.");
        return;
    }
    let (strings, numbers): (&[&str], &[&str]) = match note_type {
        "call_in" | "call_out" => (&["uniq", "source", "phone"], &["duration"]),
        "common" => (&["text"], &[]),
        "service_message" => (&["service", "text"], &[]),
        _ => return,
    };
    for key in strings {
        match &params[*key] {
            Value::String(s) if !s.is_empty() => {}
            Value::Number(_) if *key == "phone" || *key == "uniq" => {}
            Value::Null => f.error("FieldMissing", &format!("params.{key}"), "This field is missing."),
            _ => f.error("InvalidType", &format!("params.{key}"), "This value should be a non-empty string."),
        }
    }
    for key in numbers {
        match &params[*key] {
            Value::Number(n) if n.is_u64() => {}
            Value::Null => f.error("FieldMissing", &format!("params.{key}"), "This field is missing."),
            _ => f.error("InvalidType", &format!("params.{key}"), "This value should be of type int."),
        }
    }
    if !matches!(params["link"], Value::Null | Value::String(_)) {
        f.error("InvalidType", "params.link", "This value should be of type string.");
    }
    // Unconfirmed: Kommo documents no limit on a call note's text; this
    // stands in for the one it must have, so the product proves it cuts
    // long transcripts instead of having its notes refused.
    if let Value::String(text) = &params["call_result"] {
        if text.chars().count() > CALL_NOTE_TEXT_MAX {
            let max = CALL_NOTE_TEXT_MAX;
            f.error(
                "LengthExceeded",
                "params.call_result",
                &format!("This value is too long (at most {max} characters)."),
            );
        }
    }
}

fn list(sb: &Sandbox, kind: EntityKind, entity: Option<u64>, q: &[(String, String)]) -> Response {
    let st = sb.store();
    let href = match entity {
        Some(id) => format!("{}/{id}/notes", base(kind)),
        None => format!("{}/notes", base(kind)),
    };
    let entity_filter = entity.map(|e| vec![e]).or_else(|| filter_ids(q, "entity_id"));
    let id_filter = filter_ids(q, "id");
    let type_filter: Vec<&str> =
        q.iter().filter(|(k, _)| k.starts_with("filter[note_type]")).flat_map(|(_, v)| v.split(',')).collect();
    let pick = |n: &&Note| {
        n.entity.kind == kind
            && id_filter.as_ref().is_none_or(|ids| ids.contains(&n.id))
            && (type_filter.is_empty() || type_filter.contains(&n.note_type.as_str()))
    };
    let items: Vec<Value> = match &entity_filter {
        // Per-record notes come from the index: O(notes of that record).
        Some(ids) => ids
            .iter()
            .flat_map(|id| st.notes_of(EntityRef::new(kind, *id)))
            .filter(pick)
            .map(|n| note_json(&st, n))
            .collect(),
        None => st.notes.values().filter(pick).map(|n| note_json(&st, n)).collect(),
    };
    let _ = param(q, "order");
    page_answer(items, q, &href, "notes")
}

fn get_one(sb: &Sandbox, kind: EntityKind, entity: Option<u64>, note_id: &str) -> Response {
    let st = sb.store();
    let note = note_id
        .parse::<u64>()
        .ok()
        .and_then(|id| st.notes.get(&id))
        .filter(|n| n.entity.kind == kind && entity.is_none_or(|e| n.entity.id == e));
    match note {
        Some(n) => ok(note_json(&st, n)),
        None => Problem::not_found(format!("note {note_id} not found")).into_response(),
    }
}

fn create(sb: &Sandbox, kind: EntityKind, entity: Option<u64>, p: Principal, body: &[u8]) -> Response {
    let mut st = sb.store();
    let checked = check_batch(body, |item, i| {
        let mut f = Fields::new(item, i);
        let entity_id = match entity {
            Some(e) => e,
            None => {
                let id = f.req_u64("entity_id");
                if id != 0 && !st.map(kind).contains_key(&id) {
                    f.error("NotFound", "entity_id", "The entity does not exist.");
                }
                id
            }
        };
        let note_type = f.req_str("note_type");
        if !note_type.is_empty() && !NOTE_TYPES.contains(&note_type.as_str()) {
            f.error("NotSupportedChoice", "note_type", "The value you selected is not a valid choice.");
        }
        let params = f.get("params").cloned().unwrap_or(Value::Null);
        if params.is_null() {
            f.error("FieldMissing", "params", "This field is missing.");
        } else {
            validate_params(&mut f, &note_type, &params);
        }
        let created_by = f.opt_u64("created_by").unwrap_or(p.user_id);
        let responsible = f.opt_u64("responsible_user_id").unwrap_or(p.user_id);
        let at = f.opt_i64("created_at").unwrap_or_else(now_secs);
        let rid = f.finish()?;
        Ok((
            rid,
            Note {
                id: 0,
                entity: EntityRef::new(kind, entity_id),
                note_type,
                params,
                created_by,
                updated_by: created_by,
                responsible_user_id: responsible,
                created_at: at,
                updated_at: at,
            },
        ))
    });
    let notes = match checked {
        Ok(notes) => notes,
        Err(e) => return e.into_response(),
    };
    let mut out = Vec::new();
    for (rid, mut n) in notes {
        n.id = st.next_note_id();
        out.push(json!({
            "id": n.id, "entity_id": n.entity.id, "request_id": rid,
            "_links": {"self": {"href": format!("{}/{}/notes/{}", base(kind), n.entity.id, n.id)}},
        }));
        st.add_note(n);
    }
    ok(json!({"_links": {"self": {"href": format!("{}/notes", base(kind))}}, "_embedded": {"notes": out}}))
}

/// Applies one PATCH element to note `note_id`; nothing is stored on error.
fn patch(
    st: &Store,
    kind: EntityKind,
    entity: Option<u64>,
    note_id: u64,
    item: &Value,
    i: usize,
    p: Principal,
) -> Result<(String, Note), RequestErrors> {
    let mut f = Fields::new(item, i);
    let Some(mut n) =
        st.notes.get(&note_id).filter(|n| n.entity.kind == kind && entity.is_none_or(|e| n.entity.id == e)).cloned()
    else {
        f.error("NotFound", "id", "The note does not exist.");
        return Err(f.finish().unwrap_err());
    };
    if let Some(t) = f.opt_str("note_type") {
        if t != n.note_type {
            f.error("NotSupportedChoice", "note_type", "The type of a note cannot be changed.");
        }
    }
    match f.get("params") {
        None => {}
        Some(Value::Object(new)) => {
            let mut merged = n.params.as_object().cloned().unwrap_or_default();
            for (k, v) in new {
                merged.insert(k.clone(), v.clone());
            }
            n.params = Value::Object(merged);
        }
        Some(_) => f.error("InvalidType", "params", "This value should be of type object."),
    }
    let params = n.params.clone();
    validate_params(&mut f, &n.note_type.clone(), &params);
    if let Some(r) = f.opt_u64("responsible_user_id") {
        n.responsible_user_id = r;
    }
    n.updated_at = f.opt_i64("updated_at").unwrap_or_else(now_secs);
    n.updated_by = p.user_id;
    let rid = f.finish()?;
    Ok((rid, n))
}

fn store_patched(st: &mut Store, n: Note) {
    st.notes.insert(n.id, n);
}

fn update_many(sb: &Sandbox, kind: EntityKind, entity: Option<u64>, p: Principal, body: &[u8]) -> Response {
    let mut st = sb.store();
    let done = match check_batch(body, |item, i| patch(&st, kind, entity, element_id(item, i)?, item, i, p)) {
        Ok(done) => done,
        Err(e) => return e.into_response(),
    };
    let mut out = Vec::new();
    for (rid, n) in done {
        out.push(json!({"id": n.id, "entity_id": n.entity.id, "updated_at": n.updated_at, "request_id": rid,
                        "_links": {"self": {"href": format!("{}/{}/notes/{}", base(kind), n.entity.id, n.id)}}}));
        store_patched(&mut st, n);
    }
    ok(json!({"_links": {"self": {"href": format!("{}/notes", base(kind))}}, "_embedded": {"notes": out}}))
}

fn update_one(
    sb: &Sandbox,
    kind: EntityKind,
    entity: Option<u64>,
    note_id: &str,
    p: Principal,
    body: &[u8],
) -> Response {
    let item = match parse_body(body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut st = sb.store();
    let Some(id) = note_id.parse::<u64>().ok().filter(|id| {
        st.notes.get(id).is_some_and(|n| n.entity.kind == kind && entity.is_none_or(|e| n.entity.id == e))
    }) else {
        return Problem::not_found(format!("note {note_id} not found")).into_response();
    };
    match patch(&st, kind, entity, id, &item, 0, p) {
        Ok((_, n)) => {
            let answer = json!({"id": n.id, "entity_id": n.entity.id, "updated_at": n.updated_at,
                                "_links": {"self": {"href": format!("{}/{}/notes/{}", base(kind), n.entity.id, n.id)}}});
            store_patched(&mut st, n);
            hal(StatusCode::OK, answer)
        }
        Err(e) => Problem::validation(vec![e]).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(note_type: &str, params: Value) -> Vec<String> {
        let item = json!({});
        let mut f = Fields::new(&item, 0);
        validate_params(&mut f, note_type, &params);
        f.errors.into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn each_type_has_its_required_params() {
        assert!(errors("call_in", json!({"uniq": "u", "duration": 5, "source": "pbx", "phone": "+1"})).is_empty());
        assert_eq!(errors("call_out", json!({"uniq": "u", "source": "pbx"})), vec!["params.phone", "params.duration"]);
        assert!(errors("common", json!({"text": "hi"})).is_empty());
        assert_eq!(errors("common", json!({})), vec!["params.text"]);
        assert_eq!(errors("service_message", json!({"text": "x"})), vec!["params.service"]);
        assert_eq!(errors("common", json!("text")), vec!["params"]);
    }
}
