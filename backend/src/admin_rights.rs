//! Admin rights for admin actions: only a Kommo administrator of the account
//! may change its settings (`PUT /widget/settings`, the extension map that
//! decides whose feed a call reaches).
//!
//! The one-time token says who the user is, not what they may do, so the
//! rights come from Kommo itself: `GET /api/v4/users/{id}`,
//! `rights.is_admin`. The answer (yes or no) is kept for
//! [`RIGHTS_CACHE_TTL`] per (account, user), so a burst of saves costs one
//! request of the account's 7-per-second budget, and a demoted admin loses
//! the right within that time.
//!
//! [`AdminCaller`] is the extractor: a [`WidgetCaller`] whose rights Kommo
//! confirmed, else 403 problem+json (503 when Kommo cannot say).

use crate::kommo_access::KommoAccess;
use crate::one_time_token::{Verifier, WidgetCaller};
use crate::problem::Problem;
use crate::store::Store;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use kommo_client::KommoError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long Kommo's answer about one user's rights is reused.
pub(crate) const RIGHTS_CACHE_TTL: Duration = Duration::from_secs(60);

/// Above this many entries, expired ones are dropped on insert.
const PRUNE_ABOVE: usize = 1024;

/// Kommo's recent answers: (account, user) → is admin, and when asked.
#[derive(Default)]
pub(crate) struct AdminRights {
    answers: Mutex<HashMap<(u64, u64), (bool, Instant)>>,
}

impl AdminRights {
    /// Whether the user is an admin of the account, from the cache or Kommo.
    async fn is_admin(&self, access: &KommoAccess, account_id: u64, user_id: u64) -> Result<bool, KommoError> {
        let key = (account_id, user_id);
        if let Some(&(answer, at)) = self.answers.lock().expect("rights cache").get(&key) {
            if at.elapsed() < RIGHTS_CACHE_TTL {
                return Ok(answer);
            }
        }
        let answer = match access.kommo_client(account_id).await?.user(user_id).await {
            Ok(user) => user.rights.is_admin,
            // A user the account does not have is no admin of it.
            Err(KommoError::NotFound) => false,
            Err(e) => return Err(e),
        };
        let mut answers = self.answers.lock().expect("rights cache");
        if answers.len() > PRUNE_ABOVE {
            answers.retain(|_, (_, at)| at.elapsed() < RIGHTS_CACHE_TTL);
        }
        answers.insert(key, (answer, Instant::now()));
        Ok(answer)
    }
}

/// A widget caller who is an admin of their account (checked with Kommo).
pub(crate) struct AdminCaller(pub WidgetCaller);

impl<S> FromRequestParts<S> for AdminCaller
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    Store: FromRef<S>,
    KommoAccess: FromRef<S>,
    Arc<AdminRights>: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let caller = WidgetCaller::from_request_parts(parts, state).await?;
        let rights = Arc::<AdminRights>::from_ref(state);
        let access = KommoAccess::from_ref(state);
        match rights.is_admin(&access, caller.account.account_id, caller.user_id).await {
            Ok(true) => Ok(AdminCaller(caller)),
            Ok(false) => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "admin-required",
                "Only an account administrator may do this",
                "Kommo says this user is not an administrator of the account",
            )
            .with_field("X-Auth-Token.user_id")),
            Err(e) => {
                tracing::warn!(account_id = caller.account.account_id, error = %e, "the user's rights could not be read");
                Err(Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "rights-unknown",
                    "The user's rights could not be verified",
                    "Kommo did not say whether this user is an administrator (is the integration installed?); retry later",
                ))
            }
        }
    }
}
