//! Finding the record a call belongs on: a lead or customer, or a contact or
//! company (each branch of the result handler in `call-result.txt`).
//!
//! Same-origin `GET /api/v4/{leads|customers|contacts|companies}?query=…`
//! (the user's Kommo session authorizes them; Kommo answers 204 when nothing
//! matches). Each hit carries its status (leads: `pipeline_id`/`status_id`)
//! and responsible user, named with [`crate::directory`]. The Call summary debounces typing by [`DEBOUNCE_MS`] and ignores
//! answers to queries that are no longer current.

use crate::convert::from_json;
use callcard_calls::{EntityKind, EntityRef};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Typing pause before a search is sent.
pub const DEBOUNCE_MS: u32 = 300;
/// Shortest query worth sending.
pub const MIN_QUERY_CHARS: usize = 2;
/// Hits asked for per kind.
pub const LIMIT: u32 = 10;

/// One search hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchHit {
    pub entity: EntityRef,
    pub name: String,
    /// A lead's `(pipeline_id, status_id)`.
    pub status: Option<(u64, u64)>,
    pub responsible_user_id: Option<u64>,
}

impl SearchHit {
    pub fn new(entity: EntityRef, name: impl Into<String>) -> Self {
        Self { entity, name: name.into(), status: None, responsible_user_id: None }
    }
}

/// The kinds the Call summary searches, in the order hits are listed.
pub const KINDS: [EntityKind; 4] = [EntityKind::Lead, EntityKind::Customer, EntityKind::Contact, EntityKind::Company];

/// Whether `query` is worth sending.
pub fn is_searchable(query: &str) -> bool {
    query.trim().chars().count() >= MIN_QUERY_CHARS
}

/// `/api/v4/{leads|customers}?query=…&limit=N`.
pub fn search_url(kind: EntityKind, query: &str) -> String {
    let mut url = String::from("/api/v4/");
    url.push_str(kind.api_path());
    url.push_str("?query=");
    url.push_str(&crate::escape::encode_component(query.trim()));
    url.push_str("&limit=");
    url.push_str(&LIMIT.to_string());
    url
}

/// Kommo's HAL answer to a search: `{"_embedded": {"<kind>": [{id, name}]}}`.
#[derive(Debug, Default, Deserialize)]
pub struct SearchAnswer {
    #[serde(rename = "_embedded", default)]
    pub embedded: BTreeMap<String, Vec<FoundRecord>>,
}

/// One record of a search answer. Lenient: a record without a usable id is
/// skipped, not the whole answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FoundRecord {
    pub id: Option<f64>,
    pub name: Option<String>,
    pub status_id: Option<u64>,
    pub pipeline_id: Option<u64>,
    pub responsible_user_id: Option<u64>,
}

/// The hits of `kind` in an answer.
pub fn parse_hits(kind: EntityKind, answer: &SearchAnswer) -> Vec<SearchHit> {
    let records = answer.embedded.get(kind.api_path()).map(Vec::as_slice).unwrap_or_default();
    records
        .iter()
        .filter_map(|item| {
            let id = item.id.filter(|&id| id > 0.0 && id.fract() == 0.0 && id <= 9_007_199_254_740_991.0)? as u64;
            let name = item.name.as_deref().unwrap_or_default().trim();
            let name = if name.is_empty() { format!("#{id}") } else { name.to_owned() };
            let status = item.pipeline_id.zip(item.status_id);
            Some(SearchHit {
                entity: EntityRef::new(kind, id),
                name,
                status,
                responsible_user_id: item.responsible_user_id,
            })
        })
        .collect()
}

/// Searches the four kinds (gloo-net, same origin); failures of one kind
/// leave the others' hits. Kommo answers 204 when nothing matches.
pub async fn search(query: &str) -> Vec<SearchHit> {
    let mut hits = Vec::new();
    for kind in KINDS {
        let Ok(response) = gloo_net::http::Request::get(&search_url(kind, query)).send().await else {
            continue;
        };
        if response.status() != 200 {
            continue;
        }
        let Ok(text) = response.text().await else { continue };
        if let Some(answer) = from_json::<SearchAnswer>(&text) {
            hits.extend(parse_hits(kind, &answer));
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hal_answers_become_hits() {
        let answer: SearchAnswer = serde_json::from_str(
            r#"{"_embedded": {"leads": [
                {"id": 5, "name": "Quote for ACME", "status_id": 20, "pipeline_id": 3, "responsible_user_id": 7},
                {"id": 6, "name": ""}, {"id": 0, "name": "bad"}, {"name": "no id"},
                {"id": 7.5, "name": "fraction"}, {"id": -8, "name": "negative"}
            ]}}"#,
        )
        .unwrap();
        assert_eq!(
            parse_hits(EntityKind::Lead, &answer),
            vec![
                SearchHit {
                    entity: EntityRef::new(EntityKind::Lead, 5),
                    name: "Quote for ACME".into(),
                    status: Some((3, 20)),
                    responsible_user_id: Some(7)
                },
                SearchHit::new(EntityRef::new(EntityKind::Lead, 6), "#6"),
            ]
        );
        assert!(parse_hits(EntityKind::Customer, &answer).is_empty());
        assert!(parse_hits(EntityKind::Lead, &SearchAnswer::default()).is_empty());
    }

    #[test]
    fn urls_and_thresholds() {
        assert_eq!(search_url(EntityKind::Customer, " a&b "), "/api/v4/customers?query=a%26b&limit=10");
        assert_eq!(search_url(EntityKind::Company, "x"), "/api/v4/companies?query=x&limit=10");
        assert!(!is_searchable(" a "));
        assert!(is_searchable("ab"));
    }
}
