//! The routing table (the list is in the crate doc). Kommo's routes get,
//! outermost first: fault injection, authentication, the rate limit.

use crate::*;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

pub fn router(sb: Sandbox) -> Router {
    let cfg = sb.config().clone();

    let mut api = Router::new();
    for kind in store::ALL_KINDS {
        api = entities::routes_for(api, kind);
        api = notes::routes_for(api, kind);
        api = links::routes_for(api, kind);
    }
    let api = api
        .route("/api/v4/account", get(account::account))
        .route("/api/v4/users", get(account::users))
        .route("/api/v4/users/{id}", get(account::user))
        .route("/api/v4/leads/pipelines", get(account::pipelines))
        .route("/api/v2/events", post(caller_id::events))
        .route("/api/v2/events/", post(caller_id::events))
        .route("/api/v4/calls", post(calls::add))
        .route("/api/v4/webhooks", get(webhooks::list).post(webhooks::subscribe).delete(webhooks::unsubscribe))
        .route("/api/v4/tasks", get(tasks::list).post(tasks::create).patch(tasks::update_many))
        .route("/api/v4/tasks/{id}", get(tasks::get_one).patch(tasks::update_one))
        .route("/api/v4/leads/unsorted", get(unsorted::list))
        .route("/api/v4/leads/unsorted/sip", post(unsorted::create_sip))
        .route("/api/v4/leads/unsorted/{uid}", get(unsorted::get_one))
        .route("/api/v4/leads/unsorted/{uid}/accept", post(unsorted::accept))
        .route("/api/v4/leads/unsorted/{uid}/decline", delete(unsorted::decline))
        .route_layer(from_fn_with_state(sb.clone(), limits::enforce))
        .route_layer(from_fn_with_state(sb.clone(), oauth::authenticate))
        .route("/oauth2/access_token", post(oauth::access_token))
        .route_layer(from_fn_with_state(sb.clone(), faults::inject));

    let admin = Router::new()
        .route("/sandbox/one-time-token", post(one_time_token::mint))
        .route("/sandbox/session", get(host_page::session))
        .route("/sandbox/widget-settings", get(host_page::get_settings).put(host_page::put_settings))
        .route("/sandbox/inspect", get(inspect::inspect))
        .route("/sandbox/faults", get(faults::show).post(faults::set).delete(faults::reset))
        .route("/sandbox/faults/reset", post(faults::reset))
        .route("/sandbox/oauth/authorize", post(oauth::admin_authorize))
        .route("/sandbox/oauth/long-lived-token", post(oauth::admin_long_lived))
        .route("/sandbox/oauth/revoke", post(oauth::admin_revoke))
        .route("/sandbox/rate-limit", put(admin_rate_limit))
        .route("/sandbox/reset", post(admin_reset))
        .route("/sandbox/snapshot", post(snapshot::take))
        .route("/sandbox/records/{kind}/{id}", delete(records::delete))
        .route("/sandbox/records/{kind}/{id}/restore", post(records::restore));

    let node_modules = cfg.www_dir.join("node_modules");
    let statics = Router::new()
        .nest_service(host_page::WIDGET_PATH, ServeDir::new(&cfg.widget_dir))
        .route_service("/vendor/require.js", ServeFile::new(node_modules.join("requirejs/require.js")))
        .route_service("/vendor/jquery.js", ServeFile::new(node_modules.join("jquery/dist/jquery.min.js")))
        .fallback_service(ServeDir::new(&cfg.www_dir).append_index_html_on_directories(true));

    api.merge(admin)
        .merge(statics)
        .layer(from_fn_with_state(sb.clone(), webhooks::deliver_after))
        .layer(TraceLayer::new_for_http())
        .with_state(sb)
}

/// `PUT /sandbox/rate-limit {"per_second": N | null}` → 204.
async fn admin_rate_limit(
    axum::extract::State(sb): axum::extract::State<Sandbox>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match &v["per_second"] {
        serde_json::Value::Null => sb.set_rate_limit(None),
        n => match n.as_u64() {
            Some(n) if n > 0 => sb.set_rate_limit(Some(n as u32)),
            _ => return problem::Problem::bad_request("per_second must be a positive integer or null").into_response(),
        },
    }
    axum::http::StatusCode::NO_CONTENT.into_response()
}

/// `POST /sandbox/reset {"seed"?: bool}` → 204. Seeds unless `"seed": false`.
async fn admin_reset(
    axum::extract::State(sb): axum::extract::State<Sandbox>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    sb.reset(v["seed"].as_bool().unwrap_or(true));
    axum::http::StatusCode::NO_CONTENT.into_response()
}
