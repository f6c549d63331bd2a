//! Tasks: `POST /api/v4/tasks` (array; required `text`, `complete_till`
//! unix time; optional `entity_id` + `entity_type` (`leads`, `contacts`,
//! `companies`, `customers`), `task_type_id` (1 follow-up, 2 meeting),
//! `responsible_user_id`), `GET /api/v4/tasks` with `filter[entity_type]`,
//! `filter[entity_id]`, `filter[is_completed]`, `filter[responsible_user_id]`
//! and paging (204 when empty), `GET /api/v4/tasks/{id}`, and `PATCH` (one
//! or a batch) to edit or complete them (`is_completed`, `result: {text}`).

use crate::entities::{filter_ids, page_answer, param};
use crate::oauth::Principal;
use crate::problem::{check_batch, element_id, hal, ok, parse_body, Fields, Problem, RequestErrors};
use crate::store::{now_secs, Store, Task};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use callcard_calls::{EntityKind, EntityRef};
use serde_json::{json, Value};

pub fn task_json(st: &Store, t: &Task) -> Value {
    json!({
        "id": t.id,
        "created_by": t.created_by,
        "updated_by": t.updated_by,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "responsible_user_id": t.responsible_user_id,
        "group_id": 0,
        "entity_id": t.entity.map(|e| e.id),
        "entity_type": t.entity.map(|e| e.kind.api_path()),
        "duration": 0,
        "is_completed": t.is_completed,
        "task_type_id": t.task_type_id,
        "text": t.text,
        "result": t.result_text.as_ref().map(|r| json!({"text": r})).unwrap_or(json!({})),
        "complete_till": t.complete_till,
        "account_id": st.account.id,
        "_links": {"self": {"href": format!("/api/v4/tasks/{}", t.id)}},
    })
}

/// Applies the writable fields of `f` to `t` (create and PATCH share it).
fn apply(st: &Store, f: &mut Fields, t: &mut Task, creating: bool) {
    if creating || f.get("text").is_some() {
        t.text = f.req_str("text");
    }
    if creating {
        t.complete_till = f.req_u64("complete_till") as i64;
    } else if let Some(c) = f.opt_i64("complete_till") {
        t.complete_till = c;
    }
    if let Some(k) = f.opt_u64("task_type_id") {
        if k != 1 && k != 2 {
            f.error("NotSupportedChoice", "task_type_id", "The value you selected is not a valid choice.");
        }
        t.task_type_id = k;
    }
    if let Some(u) = f.opt_u64("responsible_user_id") {
        if st.user(u).is_none() {
            f.error("NotSupportedChoice", "responsible_user_id", "The value you selected is not a valid choice.");
        }
        t.responsible_user_id = u;
    }
    let entity_type = f.opt_str("entity_type");
    let entity_id = f.opt_u64("entity_id");
    match (entity_type, entity_id) {
        (None, None) => {}
        (Some(ty), Some(id)) => match EntityKind::from_api_path(&ty) {
            Some(k) if st.exists(EntityRef::new(k, id)) => t.entity = Some(EntityRef::new(k, id)),
            Some(_) => f.error("NotFound", "entity_id", "The entity does not exist."),
            None => f.error("NotSupportedChoice", "entity_type", "The value you selected is not a valid choice."),
        },
        (None, Some(_)) => f.error("FieldMissing", "entity_type", "This field is missing."),
        (Some(_), None) => f.error("FieldMissing", "entity_id", "This field is missing."),
    }
    if let Some(done) = f.opt_bool("is_completed") {
        t.is_completed = done;
    }
    if let Some(text) = f.get("result").and_then(|r| r.get("text")).and_then(Value::as_str) {
        t.result_text = Some(text.to_string());
    }
}

/// `POST /api/v4/tasks`.
pub async fn create(State(sb): State<Sandbox>, Extension(p): Extension<Principal>, body: Bytes) -> Response {
    let mut st = sb.store();
    let checked = check_batch(&body, |item, i| {
        let mut f = Fields::new(item, i);
        let now = now_secs();
        let by = f.opt_u64("created_by").unwrap_or(p.user_id);
        let mut t = Task {
            id: 0,
            entity: None,
            text: String::new(),
            complete_till: 0,
            task_type_id: 1,
            responsible_user_id: p.user_id,
            created_by: by,
            updated_by: by,
            created_at: f.opt_i64("created_at").unwrap_or(now),
            updated_at: now,
            is_completed: false,
            result_text: None,
        };
        apply(&st, &mut f, &mut t, true);
        Ok((f.finish()?, t))
    });
    let tasks = match checked {
        Ok(tasks) => tasks,
        Err(e) => return e.into_response(),
    };
    let mut out = Vec::new();
    for (rid, mut t) in tasks {
        t.id = st.next_task_id();
        out.push(
            json!({"id": t.id, "request_id": rid, "_links": {"self": {"href": format!("/api/v4/tasks/{}", t.id)}}}),
        );
        st.add_task(t);
    }
    ok(json!({"_links": {"self": {"href": "/api/v4/tasks"}}, "_embedded": {"tasks": out}}))
}

/// `GET /api/v4/tasks`.
pub async fn list(State(sb): State<Sandbox>, Query(q): Query<Vec<(String, String)>>) -> Response {
    let st = sb.store();
    let kinds: Vec<EntityKind> = q
        .iter()
        .filter(|(k, _)| k.starts_with("filter[entity_type]"))
        .flat_map(|(_, v)| v.split(',').filter_map(EntityKind::from_api_path).collect::<Vec<_>>())
        .collect();
    let entity_ids = filter_ids(&q, "entity_id");
    let users = filter_ids(&q, "responsible_user_id");
    let ids = filter_ids(&q, "id");
    let completed = param(&q, "filter[is_completed]").map(|v| v == "1" || v == "true");
    let items: Vec<Value> = st
        .tasks
        .values()
        .filter(|t| kinds.is_empty() || t.entity.is_some_and(|e| kinds.contains(&e.kind)))
        .filter(|t| entity_ids.as_ref().is_none_or(|ids| t.entity.is_some_and(|e| ids.contains(&e.id))))
        .filter(|t| users.as_ref().is_none_or(|u| u.contains(&t.responsible_user_id)))
        .filter(|t| ids.as_ref().is_none_or(|ids| ids.contains(&t.id)))
        .filter(|t| completed.is_none_or(|c| t.is_completed == c))
        .map(|t| task_json(&st, t))
        .collect();
    page_answer(items, &q, "/api/v4/tasks", "tasks")
}

/// `GET /api/v4/tasks/{id}`.
pub async fn get_one(State(sb): State<Sandbox>, Path(id): Path<String>) -> Response {
    let st = sb.store();
    match id.parse::<u64>().ok().and_then(|id| st.tasks.get(&id)) {
        Some(t) => ok(task_json(&st, t)),
        None => Problem::not_found(format!("task {id} not found")).into_response(),
    }
}

fn patch(st: &Store, id: u64, item: &Value, i: usize, p: Principal) -> Result<(String, Task), RequestErrors> {
    let mut f = Fields::new(item, i);
    let Some(mut t) = st.tasks.get(&id).cloned() else {
        f.error("NotFound", "id", "The task does not exist.");
        return Err(f.finish().unwrap_err());
    };
    apply(st, &mut f, &mut t, false);
    t.updated_at = now_secs();
    t.updated_by = p.user_id;
    Ok((f.finish()?, t))
}

fn store_task(st: &mut Store, t: Task) {
    // The entity may have changed: keep the per-record index right.
    if let Some(old) = st.tasks.get(&t.id).and_then(|o| o.entity) {
        if let Some(v) = st.tasks_by_entity.get_mut(&old) {
            v.retain(|x| *x != t.id);
        }
    }
    st.add_task(t);
}

/// `PATCH /api/v4/tasks` (array with `id`).
pub async fn update_many(State(sb): State<Sandbox>, Extension(p): Extension<Principal>, body: Bytes) -> Response {
    let mut st = sb.store();
    let done = match check_batch(&body, |item, i| patch(&st, element_id(item, i)?, item, i, p)) {
        Ok(done) => done,
        Err(e) => return e.into_response(),
    };
    let mut out = Vec::new();
    for (rid, t) in done {
        out.push(json!({"id": t.id, "updated_at": t.updated_at, "request_id": rid,
                        "_links": {"self": {"href": format!("/api/v4/tasks/{}", t.id)}}}));
        store_task(&mut st, t);
    }
    ok(json!({"_links": {"self": {"href": "/api/v4/tasks"}}, "_embedded": {"tasks": out}}))
}

/// `PATCH /api/v4/tasks/{id}`.
pub async fn update_one(
    State(sb): State<Sandbox>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let item = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut st = sb.store();
    let Some(id) = id.parse::<u64>().ok().filter(|id| st.tasks.contains_key(id)) else {
        return Problem::not_found(format!("task {id} not found")).into_response();
    };
    match patch(&st, id, &item, 0, p) {
        Ok((_, t)) => {
            let answer = json!({"id": t.id, "updated_at": t.updated_at, "_links": {"self": {"href": format!("/api/v4/tasks/{}", t.id)}}});
            store_task(&mut st, t);
            hal(StatusCode::OK, answer)
        }
        Err(e) => Problem::validation(vec![e]).into_response(),
    }
}
