//! The account and its users: `GET /api/v4/account`, `GET /api/v4/users`,
//! `GET /api/v4/users/{id}` (with the user's rights).

use crate::http::{ApiRequest, KommoClient};
use crate::KommoError;
use serde::Deserialize;

/// The Kommo account. After an install the backend reads `id` and
/// `subdomain` here.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Account {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub subdomain: String,
    /// The user the token belongs to.
    #[serde(default)]
    pub current_user_id: Option<u64>,
    #[serde(default)]
    pub country: Option<String>,
    /// `"disabled"`, `"periodicity"`, `"dynamic"`...: whether customers exist.
    #[serde(default)]
    pub customers_mode: Option<String>,
    #[serde(default)]
    pub is_unsorted_on: Option<bool>,
}

impl Account {
    /// Whether the account has customers at all (calls and caller ID then
    /// consider them).
    pub fn customers_enabled(&self) -> bool {
        !matches!(self.customers_mode.as_deref(), None | Some("disabled" | "unavailable"))
    }
}

/// A Kommo user (a manager who may take calls).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct User {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
    /// What the user may do; Kommo sends it with every user.
    #[serde(default)]
    pub rights: Rights,
}

/// The part of a user's `rights` the integration relies on.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Rights {
    /// An account administrator: may change the account's settings,
    /// including the widget's. Absent counts as not an admin.
    #[serde(default)]
    pub is_admin: bool,
}

impl KommoClient {
    /// `GET /api/v4/account`.
    pub async fn account(&self) -> Result<Account, KommoError> {
        self.send_expect(&ApiRequest::get("/api/v4/account")).await
    }

    /// `GET /api/v4/users/{id}`: one user with their rights
    /// ([`KommoError::NotFound`] when the account has no such user).
    pub async fn user(&self, user_id: u64) -> Result<User, KommoError> {
        self.send_expect(&ApiRequest::get(format!("/api/v4/users/{user_id}"))).await
    }

    /// `GET /api/v4/users`, all pages.
    pub async fn users(&self) -> Result<Vec<User>, KommoError> {
        self.list_all(ApiRequest::get("/api/v4/users"), "users").await
    }
}
