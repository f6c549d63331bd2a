//! Kommo's one-time token: the `X-Auth-Token` header `self.$authorizedAjax`
//! adds to the widget's calls to this backend.
//!
//! It is an HS256 JWT signed with the integration's secret key. A token is
//! accepted only if its signature verifies, it is within `nbf`..`exp`, its
//! `aud` is this backend's public base URL, its `iss` is the origin of the
//! account it names, and its `jti` was never used before: the used ids are
//! kept in the database until the token expires, so a token replayed to
//! another instance is refused as well.
//!
//! Handlers take a [`WidgetCaller`]: the extractor verifies the token, and
//! refuses a request whose `Origin` is not the token's own account's origin,
//! so a page on one account cannot act for another even with a valid token.

use crate::problem::Problem;
use crate::store::accounts::normalize_origin;
use crate::store::{Account, Store};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Deserializer};
use std::sync::Arc;

/// The header carrying the token.
pub const HEADER: &str = "x-auth-token";

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 5;

/// The claims the backend relies on (`aud`, `nbf`, `iat` are checked by the
/// JWT library).
#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    jti: String,
    exp: i64,
    #[serde(deserialize_with = "id")]
    account_id: u64,
    #[serde(deserialize_with = "id")]
    user_id: u64,
}

/// Kommo's exact claim types are unconfirmed: accept `42` and `"42"`.
fn id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    match Id::deserialize(d)? {
        Id::Number(n) => Ok(n),
        Id::Text(s) => s.trim().parse().map_err(|_| serde::de::Error::custom(format!("{s:?} is not a numeric id"))),
    }
}

/// A verified caller: the account (as stored) and the Kommo user.
#[derive(Clone, Debug)]
pub struct WidgetCaller {
    pub account: Arc<Account>,
    pub user_id: u64,
}

/// Verifies one-time tokens for one audience with one key. Cheap to clone
/// (the routes' state is cloned for every request).
#[derive(Clone)]
pub struct Verifier {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl Verifier {
    pub fn new(integration_secret: &str, public_base_url: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // `aud` is "the base of the redirect_uri": accept it with and without
        // the trailing slash.
        let base = public_base_url.trim_end_matches('/');
        validation.set_audience(&[base.to_string(), format!("{base}/")]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Self {
            key: Arc::new(DecodingKey::from_secret(integration_secret.as_bytes())),
            validation: Arc::new(validation),
        }
    }

    /// Verifies the request's `X-Auth-Token` completely, consuming its `jti`.
    pub async fn verify(&self, headers: &HeaderMap, store: &Store) -> Result<WidgetCaller, Problem> {
        let token =
            headers.get(HEADER).and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty()).ok_or_else(
                || refused("the X-Auth-Token header with Kommo's one-time token is missing").with_field("X-Auth-Token"),
            )?;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| refused(describe(e.kind())).with_field(claim_of(e.kind())))?
            .claims;
        if claims.jti.trim().is_empty() || claims.jti.len() > 200 {
            return Err(refused("the token's jti must be a token id").with_field("X-Auth-Token.jti"));
        }
        if claims.account_id == 0 || claims.user_id == 0 {
            return Err(refused("the token must name an account and a user").with_field("X-Auth-Token.account_id"));
        }
        let account = store.account(claims.account_id).await?.ok_or_else(|| {
            refused("the token's account is not provisioned in this backend").with_field("X-Auth-Token.account_id")
        })?;
        if normalize_origin(&claims.iss) != account.origin {
            return Err(refused("the token was not issued by the account's own Kommo").with_field("X-Auth-Token.iss"));
        }
        let keep_until = claims.exp.saturating_add(LEEWAY_SECONDS as i64).saturating_mul(1000);
        if !store.use_jti(&claims.jti, keep_until).await? {
            return Err(refused("the token was already used").with_field("X-Auth-Token.jti"));
        }
        Ok(WidgetCaller { account, user_id: claims.user_id })
    }
}

impl<S> FromRequestParts<S> for WidgetCaller
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    Store: FromRef<S>,
{
    type Rejection = Problem;

    /// Verifies the token and that the request comes from the account's origin.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let caller = Verifier::from_ref(state).verify(&parts.headers, &Store::from_ref(state)).await?;
        if let Some(origin) = parts.headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
            if normalize_origin(origin) != caller.account.origin {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "wrong-origin",
                    "The request comes from another account's origin",
                    "the Origin header must be the origin of the token's account",
                )
                .with_field("Origin"));
            }
        }
        Ok(caller)
    }
}

fn refused(detail: &str) -> Problem {
    Problem::unauthorized("invalid-token", "The one-time token was refused", detail)
}

fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet",
        ErrorKind::InvalidAudience => "the token is meant for another backend (aud)",
        ErrorKind::InvalidSignature => "the token's signature does not verify with the integration secret",
        ErrorKind::InvalidAlgorithm => "the token must be signed with HS256",
        ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim (exp, aud, iss)",
        _ => "the token is not a well-formed JWT with the expected claims",
    }
}

fn claim_of(kind: &ErrorKind) -> String {
    let claim = match kind {
        ErrorKind::ExpiredSignature => "exp",
        ErrorKind::ImmatureSignature => "nbf",
        ErrorKind::InvalidAudience => "aud",
        ErrorKind::MissingRequiredClaim(c) => c.as_str(),
        _ => return "X-Auth-Token".into(),
    };
    format!("X-Auth-Token.{claim}")
}
