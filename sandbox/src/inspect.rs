//! `GET /sandbox/inspect[?touched=1]`: everything in the account, so a
//! person (the host page's inspection view) and a test can see what the
//! product wrote into "Kommo". No auth, no rate limit, no faults.
//!
//! With `touched=1` only records that have notes, calls or tasks are listed.
//!
//! ```json
//! {
//!   "account": {"id": 31415926, "subdomain": "acme", "name": "Acme Inc."},
//!   "users": [{"id": 8320148, "name": "Anna Petrova", "extension": "101"}],
//!   "contacts":  [Record], "companies": [Record], "leads": [Record], "customers": [Record],
//!   "unsorted": [{"uid", "status": "pending"|"accepted"|"declined", "source_uid", "source_name",
//!                 "created_at", "metadata", "leads": [id], "contacts": [id], "companies": [id],
//!                 "processed_at", "processed_by"}],
//!   "caller_id_events": [{"uid", "at", "phone_number", "query_string", "users": [id],
//!                         "element": {"type": "lead", "id": 5756100} | null, "name": "Website redesign" | null}],
//!   "webhooks": [{"id", "destination", "settings": ["update_contact", ...], ...}],
//!   "webhook_deliveries": [{"destination", "events", "body", "attempts": [status], "delivered"}],
//!   "counts": {"contacts", "companies", "leads", "customers", "notes", "calls", "tasks", "unsorted_pending"}
//! }
//! ```
//!
//! where a `Record` is
//!
//! ```json
//! {"type": "contact"|"company"|"lead"|"customer", "id", "name", "phones": ["+1 ..."], "emails": [...],
//!  "status_id": 7100012 | null, "active": true | false | null (leads and customers only),
//!  "responsible_user_id", "created_at", "updated_at",
//!  "links": [{"type": "lead", "id", "name", "active"}],
//!  "notes": [Kommo note JSON: {"id", "note_type", "params", "created_at", "updated_at", ...}],
//!  "calls": [{"id", "note_id", "direction", "duration", "source", "phone", "uniq", "link",
//!             "call_result", "call_status", "responsible_user_id", "created_by", "created_at"}],
//!  "tasks": [Kommo task JSON: {"id", "text", "complete_till", "task_type_id", "is_completed", ...}]}
//! ```
//!
//! Lists are in id order (creation order); a call's current recording link
//! is in its note's `params.link` (PATCHes change the note, not the call).

use crate::notes::note_json;
use crate::store::*;
use crate::tasks::task_json;
use crate::Sandbox;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use callcard_calls::EntityRef;
use serde_json::{json, Value};
use std::collections::HashMap;

fn ref_json(st: &Store, r: EntityRef) -> Value {
    let e = st.get(r);
    json!({
        "type": r.kind.as_str(),
        "id": r.id,
        "name": e.map(|e| e.name.clone()),
        "active": e.filter(|_| matches!(r.kind, callcard_calls::EntityKind::Lead | callcard_calls::EntityKind::Customer)).map(|e| e.is_active()),
    })
}

fn record_json(st: &Store, e: &Entity) -> Value {
    let r = e.entity_ref();
    let deal = matches!(e.kind, callcard_calls::EntityKind::Lead | callcard_calls::EntityKind::Customer);
    json!({
        "type": e.kind.as_str(),
        "id": e.id,
        "name": e.name,
        "phones": e.phones.iter().map(|p| p.value.clone()).collect::<Vec<_>>(),
        "emails": e.emails.iter().map(|p| p.value.clone()).collect::<Vec<_>>(),
        "status_id": if deal { json!(e.status_id) } else { Value::Null },
        "active": if deal { json!(e.is_active()) } else { Value::Null },
        "responsible_user_id": e.responsible_user_id,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "links": st.linked(r).iter().map(|x| ref_json(st, *x)).collect::<Vec<_>>(),
        "notes": st.notes_of(r).into_iter().map(|n| note_json(st, n)).collect::<Vec<_>>(),
        "calls": st.calls_of(r),
        "tasks": st.tasks_of(r).into_iter().map(|t| task_json(st, t)).collect::<Vec<_>>(),
    })
}

/// The inspection document (see the module doc).
pub fn document(st: &Store, touched_only: bool) -> Value {
    let touched = |e: &&Entity| {
        let r = e.entity_ref();
        !touched_only || !st.notes_of(r).is_empty() || !st.calls_of(r).is_empty() || !st.tasks_of(r).is_empty()
    };
    let mut kinds = serde_json::Map::new();
    for kind in ALL_KINDS {
        let list: Vec<Value> = st.map(kind).values().filter(touched).map(|e| record_json(st, e)).collect();
        kinds.insert(kind.api_path().to_string(), Value::Array(list));
    }
    let unsorted: Vec<Value> = st
        .unsorted
        .values()
        .map(|u| {
            json!({"uid": u.uid, "status": u.status, "source_uid": u.source_uid, "source_name": u.source_name,
                   "created_at": u.created_at, "metadata": u.metadata, "leads": u.leads, "contacts": u.contacts,
                   "companies": u.companies, "processed_at": u.processed_at, "processed_by": u.processed_by})
        })
        .collect();
    let events: Vec<Value> = st
        .caller_id_events
        .iter()
        .map(|ev| {
            json!({"uid": ev.uid, "at": ev.at, "phone_number": ev.phone_number, "query_string": ev.query_string,
                   "users": ev.users, "element": ev.element.map(|r| json!({"type": r.kind.as_str(), "id": r.id})),
                   "name": ev.name})
        })
        .collect();
    let users: Vec<Value> = st
        .users
        .iter()
        .map(|u| json!({"id": u.id, "name": u.name, "email": u.email, "extension": u.extension}))
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    counts.insert("contacts", st.contacts.len());
    counts.insert("companies", st.companies.len());
    counts.insert("leads", st.leads.len());
    counts.insert("customers", st.customers.len());
    counts.insert("notes", st.notes.len());
    counts.insert("calls", st.calls.len());
    counts.insert("tasks", st.tasks.len());
    counts.insert("unsorted_pending", st.unsorted.values().filter(|u| u.status == UnsortedStatus::Pending).count());
    let mut doc = json!({
        "account": {"id": st.account.id, "subdomain": st.account.subdomain, "name": st.account.name},
        "users": users,
        "unsorted": unsorted,
        "caller_id_events": events,
        "webhooks": st.webhooks,
        "counts": counts,
    });
    for (k, v) in kinds {
        doc[k] = v;
    }
    doc
}

impl Sandbox {
    /// The inspection document (see [`crate::inspect`]).
    pub fn inspect(&self) -> Value {
        with_deliveries(self, document(&self.store(), false))
    }
}

/// `GET /sandbox/inspect`.
pub async fn inspect(State(sb): State<Sandbox>, Query(q): Query<Vec<(String, String)>>) -> Response {
    let touched = q.iter().any(|(k, v)| k == "touched" && (v == "1" || v == "true"));
    let doc = document(&sb.store(), touched);
    Json(with_deliveries(&sb, doc)).into_response()
}

fn with_deliveries(sb: &Sandbox, mut doc: Value) -> Value {
    doc["webhook_deliveries"] = serde_json::json!(sb.webhook_log().snapshot());
    doc
}
