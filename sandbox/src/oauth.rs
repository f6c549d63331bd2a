//! OAuth 2.0 as Kommo does it, and who may call the API.
//!
//! ## Tokens
//! `POST /oauth2/access_token` (JSON or form) with `client_id`,
//! `client_secret`, `grant_type` (`authorization_code` | `refresh_token`),
//! `code` or `refresh_token`, and `redirect_uri` answers
//! `{"token_type": "Bearer", "expires_in": <s>, "access_token", "refresh_token"}`.
//!
//! - Access tokens really expire after `config.access_token_ttl`; an expired,
//!   revoked or unknown token gets `401 problem+json`.
//! - Refresh tokens rotate: each exchange answers a new pair and burns the
//!   refresh token used, so a second use is refused (`400`, as an invalid
//!   grant). The access token issued before a refresh stays valid until it
//!   expires (whether Kommo revokes it at once is unconfirmed; keeping it
//!   valid is the kinder reading for a backend with requests in flight).
//! - Authorization codes (what Kommo hands the integration's redirect_uri on
//!   installation) are minted by `POST /sandbox/oauth/authorize
//!   {"user_id"?: N}`; they last `config.authorization_code_ttl` and are single use.
//! - `POST /sandbox/oauth/revoke {"access_token"?: "..."}` revokes one access
//!   token, or all of them (with their refresh tokens) when none is named:
//!   what uninstalling the integration does.
//! - `POST /sandbox/oauth/long-lived-token {"user_id"?: N}` mints a token
//!   that never expires (what Kommo offers private integrations);
//!   `config.long_lived_token` is another, fixed one.
//!
//! ## Who may call `/api/...`
//! 1. `Authorization: Bearer <token>`: the integration (the backend). These
//!    requests count against the 7 rps limit ([`crate::limits`]).
//! 2. No `Authorization` header, but the host page's session: Kommo's
//!    interface calls its own API with the user's session cookie, and the
//!    widget's same-origin `/api/v4/...` calls (contact search) ride on it.
//!    The sandbox accepts a request as the session when it carries the
//!    [`crate::host_page::SESSION_COOKIE`] cookie, or is visibly same-origin
//!    (`Sec-Fetch-Site: same-origin`, or `Origin`/`Referer` equal to the
//!    account's origin or to `http://<Host>`). The user is the cookie's, else
//!    the first user. Server-side clients send none of these, so a backend
//!    that forgets its token still gets the 401 it would get from Kommo.
//!    Session requests are not counted against the integration's limit.
//! 3. Anything else: `401`.

use crate::host_page::session_user;
use crate::problem::{ok, Problem};
use crate::store::{now_millis, AccessToken, AuthCode, RefreshToken, Store};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};

/// Who is calling the API; inserted into request extensions by [`authenticate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: u64,
    pub via: Via,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// An OAuth (or long-lived) bearer token: the integration.
    Token,
    /// The host page's session: the user in the browser.
    Session,
}

/// A new pair of tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

/// An unguessable token: 32 random bytes, base64url.
fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn ms(d: std::time::Duration) -> u128 {
    d.as_millis()
}

impl Sandbox {
    /// What Kommo gives the redirect_uri when an admin installs the integration.
    pub fn authorization_code(&self, user_id: u64) -> String {
        let code = random_token();
        let expires_at_ms = now_millis() + ms(self.config().authorization_code_ttl);
        self.store().tokens.codes.insert(code.clone(), AuthCode { user_id, expires_at_ms, used: false });
        code
    }

    /// A token that never expires (private integrations' long-lived tokens).
    pub fn long_lived_token(&self, user_id: u64) -> String {
        let t = random_token();
        self.store().tokens.access.insert(t.clone(), AccessToken { user_id, expires_at_ms: u128::MAX, revoked: false });
        t
    }

    /// Issues a token pair directly, as if an authorization code had been exchanged.
    pub fn issue_tokens(&self, user_id: u64) -> TokenPair {
        issue(&mut self.store(), self.config(), user_id)
    }

    /// Revokes every token (uninstalling the integration).
    pub fn revoke_all_tokens(&self) {
        let mut st = self.store();
        for t in st.tokens.access.values_mut() {
            t.revoked = true;
        }
        st.tokens.refresh.clear();
    }
}

fn issue(st: &mut Store, cfg: &crate::SandboxConfig, user_id: u64) -> TokenPair {
    let now = now_millis();
    let access_token = random_token();
    let refresh_token = random_token();
    st.tokens.access.insert(
        access_token.clone(),
        AccessToken { user_id, expires_at_ms: now + ms(cfg.access_token_ttl), revoked: false },
    );
    st.tokens.refresh.insert(
        refresh_token.clone(),
        RefreshToken { user_id, expires_at_ms: now + ms(cfg.refresh_token_ttl), used: false },
    );
    // Expired tokens are swept here, on the (rare) issuing path, so the maps
    // stay small however long the demo runs.
    st.tokens.access.retain(|_, t| t.expires_at_ms > now);
    st.tokens.refresh.retain(|_, t| t.expires_at_ms > now && !t.used);
    st.tokens.codes.retain(|_, c| c.expires_at_ms > now && !c.used);
    // `expires_in` is whole seconds; sub-second test lifetimes round up to 1.
    let expires_in = cfg.access_token_ttl.as_secs().max(1);
    TokenPair { access_token, refresh_token, expires_in }
}

/// Reads a form-urlencoded or JSON body into a JSON object.
fn parse_token_request(headers: &HeaderMap, body: &[u8]) -> Result<Value, Problem> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(body);
        Ok(Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
    } else {
        crate::problem::parse_body(body)
    }
}

/// Minimal `application/x-www-form-urlencoded` decoding (no extra dependency).
fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn invalid_grant(hint: &str) -> Problem {
    Problem::bad_request("invalid_grant").with_hint(hint)
}

/// `POST /oauth2/access_token`.
pub async fn access_token(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    match exchange(&sb, &headers, &body) {
        Ok(pair) => {
            // Kommo answers plain JSON here (not hal+json), like most OAuth servers.
            axum::Json(json!({
                "token_type": "Bearer",
                "expires_in": pair.expires_in,
                "access_token": pair.access_token,
                "refresh_token": pair.refresh_token,
            }))
            .into_response()
        }
        Err(p) => p.into_response(),
    }
}

fn exchange(sb: &Sandbox, headers: &HeaderMap, body: &[u8]) -> Result<TokenPair, Problem> {
    let req = parse_token_request(headers, body)?;
    let field = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let cfg = sb.config();
    if field("client_id") != cfg.client_id || field("client_secret") != cfg.integration_secret {
        return Err(Problem::unauthorized("Client authentication failed").with_hint("invalid_client"));
    }
    let redirect = field("redirect_uri");
    if !redirect.is_empty() && redirect.trim_end_matches('/') != cfg.redirect_uri.trim_end_matches('/') {
        return Err(invalid_grant("redirect_uri does not match the integration's"));
    }
    let now = now_millis();
    let mut st = sb.store();
    let user_id = match field("grant_type").as_str() {
        "authorization_code" => {
            let code = field("code");
            let c = st.tokens.codes.get_mut(&code).ok_or_else(|| invalid_grant("Authorization code is unknown"))?;
            if c.used {
                return Err(invalid_grant("Authorization code has been revoked"));
            }
            if c.expires_at_ms <= now {
                return Err(invalid_grant("Authorization code has expired"));
            }
            c.used = true;
            c.user_id
        }
        "refresh_token" => {
            let t = field("refresh_token");
            let r = st.tokens.refresh.get_mut(&t).ok_or_else(|| invalid_grant("Token has been revoked"))?;
            if r.used {
                return Err(invalid_grant("Token has been revoked"));
            }
            if r.expires_at_ms <= now {
                return Err(invalid_grant("Token has expired"));
            }
            r.used = true;
            r.user_id
        }
        other => {
            return Err(Problem::bad_request(format!("unsupported grant_type \"{other}\""))
                .with_hint("grant_type must be authorization_code or refresh_token"))
        }
    };
    Ok(issue(&mut st, cfg, user_id))
}

/// Whether a request without a token comes from the host page (see the module doc).
fn is_same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let h = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    if h(header::HeaderName::from_static("sec-fetch-site")) == Some("same-origin") {
        return true;
    }
    let host_origin = h(header::HOST).map(|host| format!("http://{host}"));
    let same = |o: &str| {
        let o = o.trim_end_matches('/');
        o == origin || host_origin.as_deref() == Some(o)
    };
    if let Some(o) = h(header::ORIGIN) {
        return same(o);
    }
    if let Some(r) = h(header::REFERER) {
        // The referer's origin part: scheme://host[:port]
        let after_scheme = r.find("://").map(|i| i + 3).unwrap_or(0);
        let end = r[after_scheme..].find('/').map(|i| i + after_scheme).unwrap_or(r.len());
        return same(&r[..end]);
    }
    false
}

/// Middleware on every `/api/...` route: decides the [`Principal`] or answers 401.
pub async fn authenticate(State(sb): State<Sandbox>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let principal = if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth.to_str().ok().and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        let Some(token) = token.map(str::trim) else {
            return Problem::unauthorized("Authorization must be a Bearer token").into_response();
        };
        match check_token(&sb, token) {
            Ok(user_id) => Principal { user_id, via: Via::Token },
            Err(p) => return p.into_response(),
        }
    } else if session_user(headers).is_some() || is_same_origin(headers, &sb.config().origin) {
        let st = sb.store();
        let user_id = session_user(headers)
            .filter(|id| st.user(*id).is_some())
            .or_else(|| st.users.first().map(|u| u.id))
            .unwrap_or(0);
        Principal { user_id, via: Via::Session }
    } else {
        return Problem::unauthorized("Authorization: Bearer <access token> is required").into_response();
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
}

fn check_token(sb: &Sandbox, token: &str) -> Result<u64, Problem> {
    let st = sb.store();
    if sb.config().long_lived_token.as_deref() == Some(token) {
        return Ok(st.users.first().map(|u| u.id).unwrap_or(0));
    }
    let t = st.tokens.access.get(token).ok_or_else(|| Problem::unauthorized("The access token is unknown"))?;
    if t.revoked {
        return Err(Problem::unauthorized("The access token has been revoked"));
    }
    if t.expires_at_ms <= now_millis() {
        return Err(Problem::unauthorized("The access token has expired"));
    }
    Ok(t.user_id)
}

fn body_user(sb: &Sandbox, body: &[u8]) -> u64 {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["user_id"].as_u64().unwrap_or_else(|| sb.store().users.first().map(|u| u.id).unwrap_or(0))
}

/// `POST /sandbox/oauth/authorize {"user_id"?: N}` →
/// `{"code", "client_id", "redirect_uri", "referer"}` (what Kommo appends to the redirect_uri).
pub async fn admin_authorize(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let user = body_user(&sb, &body);
    let code = sb.authorization_code(user);
    let referer = sb.config().origin.split("://").nth(1).unwrap_or_default().to_string();
    ok(
        json!({"code": code, "client_id": sb.config().client_id, "redirect_uri": sb.config().redirect_uri, "referer": referer}),
    )
}

/// `POST /sandbox/oauth/long-lived-token {"user_id"?: N}` → `{"access_token"}`.
pub async fn admin_long_lived(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let user = body_user(&sb, &body);
    ok(json!({"access_token": sb.long_lived_token(user)}))
}

/// `POST /sandbox/oauth/revoke {"access_token"?: "..."}` → 204.
pub async fn admin_revoke(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match v["access_token"].as_str() {
        Some(t) => match sb.store().tokens.access.get_mut(t) {
            Some(tok) => tok.revoked = true,
            None => return Problem::not_found("no such access token").into_response(),
        },
        None => sb.revoke_all_tokens(),
    }
    axum::http::StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn same_origin_detection() {
        let o = "http://127.0.0.1:8080";
        let mut h = HeaderMap::new();
        assert!(!is_same_origin(&h, o));
        h.insert(header::REFERER, HeaderValue::from_static("http://127.0.0.1:8080/?user=1"));
        assert!(is_same_origin(&h, o));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!is_same_origin(&h, o));
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("localhost:9000"));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://localhost:9000"));
        assert!(is_same_origin(&h, o));
    }

    #[test]
    fn form_bodies_decode() {
        let p = serde_urlencoded_pairs(b"grant_type=refresh_token&redirect_uri=http%3A%2F%2Fx%2Fy&a+b=c");
        assert_eq!(p[0], ("grant_type".into(), "refresh_token".into()));
        assert_eq!(p[1].1, "http://x/y");
        assert_eq!(p[2].0, "a b");
    }
}
