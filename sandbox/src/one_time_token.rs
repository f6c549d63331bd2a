//! Kommo's one-time tokens: what `self.$authorizedAjax()` sends to the
//! integration's backend as `X-Auth-Token`.
//!
//! An HS256 JWT signed with the integration's secret key. Claims, per Kommo's
//! documentation: `iss` (the account's address), `aud` (the base of the
//! integration's redirect_uri), `jti` (a uuid), `iat`, `nbf`, `exp`, plus
//! `account_id` and `user_id`. Kommo's exact JSON types for the two ids are
//! unconfirmed; the sandbox sends numbers, and the backend also accepts
//! numeric strings. `POST /sandbox/one-time-token {"user_id": N}` mints one
//! for the host page, which passes it to the widget's `$authorizedAjax`.

use crate::problem::Problem;
use crate::store::now_secs;
use crate::Sandbox;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The claims of a Kommo one-time token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OneTimeClaims {
    pub iss: String,
    pub aud: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub account_id: u64,
    pub user_id: u64,
}

/// Signs `claims` as Kommo does: HS256 with the integration's secret.
pub fn sign(claims: &OneTimeClaims, secret: &str) -> String {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("HS256 signing of plain claims cannot fail")
}

impl Sandbox {
    /// Mints a one-time token for `user_id`, or `None` when the account has no such user.
    pub fn one_time_token(&self, user_id: u64) -> Option<String> {
        let cfg = self.config();
        let account_id = {
            let st = self.store();
            st.user(user_id)?;
            st.account.id
        };
        let iat = now_secs();
        let claims = OneTimeClaims {
            iss: cfg.origin.clone(),
            aud: cfg.backend_base_url.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat,
            nbf: iat,
            exp: iat + cfg.one_time_token_ttl.as_secs() as i64,
            account_id,
            user_id,
        };
        Some(sign(&claims, &cfg.integration_secret))
    }
}

/// `POST /sandbox/one-time-token {"user_id": N}` → `{"token": "<jwt>"}`.
pub async fn mint(State(sb): State<Sandbox>, Json(body): Json<Value>) -> Response {
    let user_id = match &body["user_id"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let Some(user_id) = user_id else {
        return Problem::bad_request("user_id (a number) is required").into_response();
    };
    match sb.one_time_token(user_id) {
        Some(token) => Json(json!({ "token": token })).into_response(),
        None => Problem::not_found(format!("no user {user_id} in this account")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, DecodingKey, Validation};

    #[test]
    fn tokens_verify_with_the_secret_only() {
        let claims = OneTimeClaims {
            iss: "http://127.0.0.1:8080".into(),
            aud: "http://127.0.0.1:8080/backend".into(),
            jti: "x".into(),
            iat: now_secs(),
            nbf: now_secs(),
            exp: now_secs() + 300,
            account_id: 31415926,
            user_id: 8320148,
        };
        let t = sign(&claims, "s3cret");
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&["http://127.0.0.1:8080/backend"]);
        v.set_issuer(&["http://127.0.0.1:8080"]);
        let got = decode::<OneTimeClaims>(&t, &DecodingKey::from_secret(b"s3cret"), &v).unwrap();
        assert_eq!(got.claims, claims);
        assert!(decode::<OneTimeClaims>(&t, &DecodingKey::from_secret(b"other"), &v).is_err());
    }
}
