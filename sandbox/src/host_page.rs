//! The host page: the stand-in for Kommo's interface, on the sandbox's origin.
//!
//! - `/` serves `config.www_dir` (index.html at `/`);
//! - `/upl/callcard/widget/` serves the unzipped widget package, where Kommo
//!   serves uploaded widgets;
//! - `/vendor/require.js` and `/vendor/jquery.js` serve RequireJS and jQuery
//!   from `www/node_modules`, as Kommo's page provides both;
//! - `GET /sandbox/session[?user=<id>]` tells the page who is logged in (the
//!   account and its users, to build `APP.constant('user'/'account')` and the
//!   user switcher). With `?user=` it also sets the session cookie
//!   [`SESSION_COOKIE`], which is what makes the widget's same-origin
//!   `/api/v4/...` calls work without an OAuth token (see [`crate::oauth`]);
//! - `GET`/`PUT /sandbox/widget-settings`: the widget's saved settings, in
//!   the shape of Kommo's `get_settings()`.

use crate::problem::Problem;
use crate::Sandbox;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::Path;

/// The cookie naming the host page's logged-in user: `kommo_sandbox_user=<user id>`.
pub const SESSION_COOKIE: &str = "kommo_sandbox_user";

/// Where Kommo serves the uploaded widget package.
pub const WIDGET_PATH: &str = "/upl/callcard/widget";

/// The settings Kommo keeps for an installed widget before anyone saved
/// them: the `phones` setting (the key Kommo documents for telephony
/// widgets, `call-object.txt`) mapping each user to its extension, plus the
/// fields Kommo itself adds (`path`, `version`, `widget_code`, `active`).
pub fn initial_widget_settings(users: &[crate::store::User]) -> Value {
    let mapping: Map<String, Value> = users.iter().map(|u| (u.id.to_string(), json!(u.extension))).collect();
    json!({
        "phones": mapping,
        "path": WIDGET_PATH,
        "version": env!("CARGO_PKG_VERSION"),
        "widget_code": "callcard",
        "active": "Y",
    })
}

/// The user named by the session cookie, if any.
pub fn session_user(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .and_then(|(_, v)| v.trim().parse().ok())
}

#[derive(Deserialize)]
pub struct SessionQuery {
    user: Option<String>,
}

/// `GET /sandbox/session[?user=<id>]`.
///
/// ```json
/// {"account": {"id": 31415926, "subdomain": "acme", "name": "Acme Inc.", "origin": "http://127.0.0.1:8080"},
///  "users": [{"id": 8320148, "name": "Anna Petrova", "email": "...", "extension": "101"}, ...],
///  "current_user_id": 8320148,
///  "backend_base_url": "http://127.0.0.1:8080/backend",
///  "widget_path": "/upl/callcard/widget"}
/// ```
///
/// `current_user_id` is `?user=` when it names a user, else the cookie's
/// user, else the first user; the answer always (re)sets the cookie to it.
pub async fn session(State(sb): State<Sandbox>, headers: HeaderMap, Query(q): Query<SessionQuery>) -> Response {
    let st = sb.store();
    let wanted = q.user.as_deref().and_then(|u| u.trim().parse::<u64>().ok()).or_else(|| session_user(&headers));
    let current = wanted.filter(|id| st.user(*id).is_some()).or_else(|| st.users.first().map(|u| u.id));
    let users: Vec<Value> = st
        .users
        .iter()
        .map(|u| json!({"id": u.id, "name": u.name, "email": u.email, "extension": u.extension, "lang": u.lang, "is_admin": u.is_admin}))
        .collect();
    let body = json!({
        "account": {"id": st.account.id, "subdomain": st.account.subdomain, "name": st.account.name, "origin": sb.config().origin},
        "users": users,
        "current_user_id": current,
        "backend_base_url": sb.config().backend_base_url,
        "widget_path": WIDGET_PATH,
    });
    drop(st);
    let mut r = Json(body).into_response();
    if let Some(id) = current {
        if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={id}; Path=/; SameSite=Lax")) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    r
}

/// The widget package's version from its manifest, so `get_settings().version`
/// follows the package actually served (Kommo takes it from the upload).
fn package_version(widget_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(widget_dir.join("manifest.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["widget"]["version"].as_str().map(str::to_string)
}

impl Sandbox {
    /// The widget's settings as `get_settings()` returns them.
    pub fn widget_settings(&self) -> Value {
        let mut s = self.store().widget_settings.clone();
        if let Some(v) = package_version(&self.config().widget_dir) {
            s["version"] = json!(v);
        }
        if self.config().users_setting_as_string {
            // `users`: the key callcard's first versions saved the extensions under.
            for key in ["phones", "users"] {
                if let Some(u) = s.get(key).filter(|u| u.is_object()) {
                    s[key] = json!(u.to_string());
                }
            }
        }
        s
    }
}

/// `GET /sandbox/widget-settings`.
pub async fn get_settings(State(sb): State<Sandbox>) -> Response {
    Json(sb.widget_settings()).into_response()
}

/// `PUT /sandbox/widget-settings`: replaces the saved settings with the body
/// (an object, e.g. `{"phones": {...}, "active": "Y"}`). The fields Kommo
/// owns (`path`, `version`, `widget_code`) are kept whatever the body says.
/// Answers the new settings.
pub async fn put_settings(State(sb): State<Sandbox>, body: axum::body::Bytes) -> Response {
    let v = match crate::problem::parse_body(&body) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Problem::bad_request("the settings must be a JSON object").into_response(),
        Err(p) => return p.into_response(),
    };
    {
        let mut st = sb.store();
        let old = std::mem::take(&mut st.widget_settings);
        let mut new = Value::Object(v);
        for k in ["path", "version", "widget_code"] {
            if let Some(x) = old.get(k) {
                new[k] = x.clone();
            }
        }
        if new.get("active").is_none() {
            new["active"] = old.get("active").cloned().unwrap_or(json!("Y"));
        }
        st.widget_settings = new;
    }
    Json(sb.widget_settings()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; kommo_sandbox_user=8375357; b=2"));
        assert_eq!(session_user(&h), Some(8375357));
        assert_eq!(session_user(&HeaderMap::new()), None);
    }
}
