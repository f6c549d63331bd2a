//! `GET /api/v4/account`, `GET /api/v4/users[/{id}]` and
//! `GET /api/v4/leads/pipelines`: who the account is, who works in it, and
//! which lead statuses exist (142 won and 143 lost are closed).

use crate::oauth::Principal;
use crate::problem::{ok, Problem};
use crate::store::*;
use crate::Sandbox;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};

pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "email": u.email,
        "lang": u.lang,
        "rights": {
            "leads": {"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"},
            "contacts": {"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"},
            "companies": {"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"},
            "tasks": {"edit": "A", "delete": "A"},
            "mail_access": false,
            "catalog_access": false,
            "is_admin": u.is_admin,
            "is_free": false,
            "is_active": true,
            "group_id": null,
            "role_id": null
        },
        "_links": {"self": {"href": format!("/api/v4/users/{}", u.id)}}
    })
}

/// `GET /api/v4/account`. `current_user_id` is the token's or session's user.
pub async fn account(State(sb): State<Sandbox>, Extension(p): Extension<Principal>) -> Response {
    let st = sb.store();
    let a = &st.account;
    ok(json!({
        "id": a.id,
        "name": a.name,
        "subdomain": a.subdomain,
        "created_at": a.created_at,
        "created_by": st.users.first().map(|u| u.id).unwrap_or(0),
        "updated_at": a.created_at,
        "updated_by": st.users.first().map(|u| u.id).unwrap_or(0),
        "current_user_id": p.user_id,
        "country": "US",
        "currency": "USD",
        "currency_symbol": "$",
        "customers_mode": "segments",
        "is_unsorted_on": true,
        "is_loss_reason_enabled": true,
        "is_helpbot_enabled": false,
        "is_technical_account": false,
        "contact_name_display_order": 1,
        "_links": {"self": {"href": "/api/v4/account"}}
    }))
}

/// `GET /api/v4/users`.
pub async fn users(State(sb): State<Sandbox>) -> Response {
    let st = sb.store();
    let users: Vec<Value> = st.users.iter().map(user_json).collect();
    if users.is_empty() {
        return crate::problem::no_content();
    }
    ok(json!({
        "_total_items": users.len(),
        "_page": 1,
        "_page_count": 1,
        "_links": {"self": {"href": "/api/v4/users?page=1&limit=50"}},
        "_embedded": {"users": users}
    }))
}

/// `GET /api/v4/users/{id}`.
pub async fn user(State(sb): State<Sandbox>, Path(id): Path<String>) -> Response {
    let st = sb.store();
    match id.parse::<u64>().ok().and_then(|id| st.user(id)) {
        Some(u) => ok(user_json(u)),
        None => Problem::not_found("User not found").into_response(),
    }
}

/// `GET /api/v4/leads/pipelines`.
pub async fn pipelines() -> Response {
    let status = |id: u64, name: &str, sort: u64, kind: u64, color: &str| {
        json!({"id": id, "name": name, "sort": sort, "is_editable": kind == 0, "pipeline_id": PIPELINE_ID,
               "color": color, "type": kind, "account_id": crate::config::DEMO_ACCOUNT_ID})
    };
    ok(json!({
        "_total_items": 1,
        "_links": {"self": {"href": "/api/v4/leads/pipelines"}},
        "_embedded": {"pipelines": [{
            "id": PIPELINE_ID, "name": "Sales", "sort": 1, "is_main": true, "is_unsorted_on": true, "is_archive": false,
            "_links": {"self": {"href": format!("/api/v4/leads/pipelines/{PIPELINE_ID}")}},
            "_embedded": {"statuses": [
                status(STATUS_INCOMING, "Incoming leads", 10, 1, "#c1c1c1"),
                status(STATUS_FIRST_CONTACT, "Initial contact", 20, 0, "#99ccff"),
                status(STATUS_NEGOTIATION, "Negotiation", 30, 0, "#ffff99"),
                status(STATUS_DECISION, "Decision making", 40, 0, "#ffcc66"),
                status(STATUS_WON, "Closed - won", 10000, 0, "#CCFF66"),
                status(STATUS_LOST, "Closed - lost", 11000, 0, "#D5D8DB"),
            ]}
        }]}
    }))
}
