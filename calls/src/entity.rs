//! References to Kommo entities. Kommo names the same four kinds three ways:
//! REST paths (`leads`), caller-ID element types (`2`) and notification
//! element types (`lead`); [`EntityKind`] converts between them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of Kommo record a call can be logged on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Contact,
    Lead,
    Company,
    Customer,
}

impl EntityKind {
    /// The collection name in REST paths: `/api/v4/{leads}/{id}/notes`.
    pub fn api_path(self) -> &'static str {
        match self {
            Self::Contact => "contacts",
            Self::Lead => "leads",
            Self::Company => "companies",
            Self::Customer => "customers",
        }
    }

    /// Parses a REST collection name (`"leads"`).
    pub fn from_api_path(s: &str) -> Option<Self> {
        [Self::Contact, Self::Lead, Self::Company, Self::Customer].into_iter().find(|k| k.api_path() == s)
    }

    /// The numeric element type of the v2 events API: 1 contact, 2 lead,
    /// 3 company, 12 customer.
    pub fn element_type(self) -> u8 {
        match self {
            Self::Contact => 1,
            Self::Lead => 2,
            Self::Company => 3,
            Self::Customer => 12,
        }
    }

    pub fn from_element_type(t: u8) -> Option<Self> {
        match t {
            1 => Some(Self::Contact),
            2 => Some(Self::Lead),
            3 => Some(Self::Company),
            12 => Some(Self::Customer),
            _ => None,
        }
    }

    /// The singular name used by notifications and in this crate's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contact => "contact",
            Self::Lead => "lead",
            Self::Company => "company",
            Self::Customer => "customer",
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Kommo record: its kind and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntityRef {
    pub kind: EntityKind,
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub id: u64,
}

impl EntityRef {
    pub fn new(kind: EntityKind, id: u64) -> Self {
        Self { kind, id }
    }

    /// The record's page in the Kommo interface, relative to the account.
    pub fn card_path(self) -> String {
        match self.kind {
            EntityKind::Contact => format!("/contacts/detail/{}", self.id),
            EntityKind::Lead => format!("/leads/detail/{}", self.id),
            EntityKind::Company => format!("/companies/detail/{}", self.id),
            EntityKind::Customer => format!("/customers/detail/{}", self.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_types_round_trip() {
        for k in [EntityKind::Contact, EntityKind::Lead, EntityKind::Company, EntityKind::Customer] {
            assert_eq!(EntityKind::from_element_type(k.element_type()), Some(k));
            assert_eq!(EntityKind::from_api_path(k.api_path()), Some(k));
        }
        assert_eq!(EntityKind::Customer.element_type(), 12);
        assert_eq!(EntityKind::from_element_type(4), None);
    }
}
