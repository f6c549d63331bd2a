//! Routing an inbound call as a PBX that uses callcard would: before it
//! rings anyone, it asks the backend's `GET /pbx/{account_id}/route?number=…`
//! (signed like the webhooks, over the raw query string in place of a body)
//! and rings the extension of the caller's responsible manager.
//!
//! When the answer has no extension (the backend says why: unknown number,
//! no responsible user, a user without an extension, the caller index not
//! built yet), or when the backend does not answer within [`ROUTE_TIMEOUT`],
//! the call rings the PBX's default group instead, as a real PBX rings what
//! it would have rung without callcard: routing never stops a call. The
//! demo's default group is every extension the account's users had when the
//! demo started.

use callcard_calls::route::{NoRoute, Route};
use callcard_calls::signature;
use serde::Serialize;
use std::time::Duration;

/// How long the PBX waits for the route before it rings the default group
/// (the backend answers from its index in milliseconds).
pub const ROUTE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the simulator asks for routes, and what it rings without one.
#[derive(Clone, Debug)]
pub struct Routing {
    /// `…/backend/pbx/{account_id}/route`
    pub route_url: String,
    /// The extensions rung when the route names none.
    pub default_group: Vec<String>,
}

/// Where a routed call rang, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Routed {
    /// The backend's answer; `None` when it gave none (refused, unreachable).
    pub route: Option<Route>,
    /// The extensions the call rings: the route's one, else the default group.
    pub rang: Vec<String>,
    /// Why the default group rang; `None` when the route named an extension.
    pub fallback: Option<String>,
}

impl Routing {
    /// Where to ring a call from `number`, given the backend's answer (or
    /// why there was none). Fails only when there is nothing to ring.
    pub fn ring_for(&self, answer: Result<Route, String>) -> Result<Routed, String> {
        let why = match &answer {
            Ok(Route { extension: Some(extension), .. }) => {
                return Ok(Routed { route: answer.clone().ok(), rang: vec![extension.clone()], fallback: None });
            }
            Ok(Route { reason, .. }) => match reason {
                Some(NoRoute::UnknownNumber) => "nobody in Kommo has this number".to_string(),
                Some(NoRoute::NoResponsibleUser) => "the caller's record has no responsible user".into(),
                Some(NoRoute::NotMapped) => "the responsible user has no extension".into(),
                Some(NoRoute::IndexNotReady) => "callcard's caller index is not built yet".into(),
                None => "the route named no extension".into(),
            },
            Err(e) => e.clone(),
        };
        if self.default_group.is_empty() {
            return Err(format!("no extension to ring: {why}, and the PBX has no default group"));
        }
        Ok(Routed { route: answer.ok(), rang: self.default_group.clone(), fallback: Some(why) })
    }

    /// Asks the backend where to ring a call from `number`: the signed
    /// `GET …/route?number=…`. Answers why not when it does not answer.
    pub async fn ask(&self, http: &reqwest::Client, secret: &str, number: &str) -> Result<Route, String> {
        let query = serde_urlencoded::to_string([("number", number)]).map_err(|e| e.to_string())?;
        let ts = super::now_ms() / 1000;
        let sig = signature::sign(secret.as_bytes(), ts, query.as_bytes());
        let answer = http
            .get(format!("{}?{query}", self.route_url))
            .header(signature::TIMESTAMP_HEADER, ts.to_string())
            .header(signature::SIGNATURE_HEADER, sig)
            .timeout(ROUTE_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("the backend's route could not be reached ({e})"))?;
        let status = answer.status();
        if !status.is_success() {
            let body = answer.text().await.unwrap_or_default();
            return Err(format!("the backend's route answered {status}: {body}"));
        }
        answer.json::<Route>().await.map_err(|e| format!("the backend's route answered something else ({e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callcard_calls::{EntityKind, EntityRef};

    fn routing(default_group: &[&str]) -> Routing {
        Routing {
            route_url: "http://x/pbx/1/route".into(),
            default_group: default_group.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn the_responsible_managers_extension_rings_alone() {
        let route = Route {
            extension: Some("102".into()),
            user_id: Some(8_375_357),
            record: Some(EntityRef::new(EntityKind::Lead, 5_756_103)),
            reason: None,
        };
        let routed = routing(&["101", "102", "103"]).ring_for(Ok(route.clone())).unwrap();
        assert_eq!(routed, Routed { route: Some(route), rang: vec!["102".into()], fallback: None });
    }

    #[test]
    fn without_an_extension_the_default_group_rings_and_says_why() {
        let r = routing(&["101", "102"]);
        let unknown = r.ring_for(Ok(Route::none(NoRoute::UnknownNumber))).unwrap();
        assert_eq!(unknown.rang, ["101", "102"]);
        assert_eq!(unknown.fallback.as_deref(), Some("nobody in Kommo has this number"));
        assert_eq!(unknown.route, Some(Route::none(NoRoute::UnknownNumber)), "the backend's answer is kept");
        let early = r.ring_for(Ok(Route::none(NoRoute::IndexNotReady))).unwrap();
        assert!(early.fallback.unwrap().contains("index"));
        let down = r.ring_for(Err("the backend's route could not be reached (refused)".into())).unwrap();
        assert_eq!((down.route, down.rang.len()), (None, 2), "routing never stops a call");
        let nothing = routing(&[]).ring_for(Ok(Route::none(NoRoute::NotMapped))).unwrap_err();
        assert!(nothing.contains("no default group") && nothing.contains("no extension"), "{nothing}");
    }
}
