//! Routing an incoming call to the responsible manager: the answer to the
//! PBX's `GET /pbx/{account_id}/route?number=…`.
//!
//! The record is the one Kommo's caller-ID rule picks for the number
//! ([`crate::phonebook::Phonebook::identify`]): the holder's single active
//! lead or customer, else the holder. Its responsible user's extension (the
//! account's extension map) is where the PBX rings first. When there is no
//! such extension the answer says why and carries none, and the PBX rings
//! what it would have rung without callcard (its default group): routing
//! never stops a call.

use crate::entity::EntityRef;
use crate::extensions::ExtensionMap;
use crate::phonebook::Caller;
use serde::{Deserialize, Serialize};

/// Why a route has no extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum NoRoute {
    /// Nobody in the CRM has the number.
    UnknownNumber,
    /// The record has no responsible user callcard knows of.
    NoResponsibleUser,
    /// The responsible user has no extension in the account's map.
    NotMapped,
    /// The account's caller index is not built yet (the route never asks
    /// Kommo: it must answer at once).
    IndexNotReady,
}

/// `GET /pbx/{account_id}/route` answers this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Route {
    /// The extension to ring first; `None`: ring the default group.
    pub extension: Option<String>,
    /// The responsible user, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u64>,
    /// The record caller ID picked, when someone has the number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<EntityRef>,
    /// Why there is no extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<NoRoute>,
}

impl Route {
    /// No extension, for `reason`.
    pub fn none(reason: NoRoute) -> Route {
        Route { extension: None, user_id: None, record: None, reason: Some(reason) }
    }

    /// The route for the caller caller ID found (`None`: nobody).
    pub fn decide(caller: Option<&Caller>, extensions: &ExtensionMap) -> Route {
        let Some(caller) = caller else { return Route::none(NoRoute::UnknownNumber) };
        let record = Some(caller.element);
        if caller.responsible_user_id == 0 {
            return Route { record, ..Route::none(NoRoute::NoResponsibleUser) };
        }
        let user_id = Some(caller.responsible_user_id);
        match extensions.extension_of(caller.responsible_user_id) {
            Some(extension) => Route { extension: Some(extension.to_string()), user_id, record, reason: None },
            None => Route { user_id, record, ..Route::none(NoRoute::NotMapped) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::EntityKind;
    use serde_json::json;

    fn caller(responsible_user_id: u64) -> Caller {
        Caller {
            element: EntityRef::new(EntityKind::Lead, 5_756_100),
            name: "Website redesign".into(),
            holder: EntityRef::new(EntityKind::Contact, 1),
            holder_name: "Maria Gonzalez".into(),
            company: None,
            deal: None,
            responsible_user_id,
        }
    }

    #[test]
    fn the_responsible_users_extension_else_why_not() {
        let map = ExtensionMap::parse(&json!({"8320148": "101"})).unwrap();
        let route = Route::decide(Some(&caller(8_320_148)), &map);
        assert_eq!(route.extension.as_deref(), Some("101"));
        assert_eq!((route.user_id, route.reason), (Some(8_320_148), None));
        assert_eq!(
            serde_json::to_value(&route).unwrap(),
            json!({"extension": "101", "user_id": 8320148, "record": {"kind": "lead", "id": 5756100}})
        );
        assert_eq!(Route::decide(Some(&caller(8_375_357)), &map).reason, Some(NoRoute::NotMapped));
        assert_eq!(Route::decide(Some(&caller(0)), &map).reason, Some(NoRoute::NoResponsibleUser));
        let nobody = Route::decide(None, &map);
        assert_eq!(serde_json::to_value(&nobody).unwrap(), json!({"extension": null, "reason": "unknown-number"}));
    }
}
