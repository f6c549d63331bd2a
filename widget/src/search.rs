//! Finding the lead or customer a call belongs on.
//!
//! Same-origin `GET /api/v4/leads?query=…` and `/api/v4/customers?query=…`
//! (the user's Kommo session authorizes them; Kommo answers 204 when nothing
//! matches). The Call summary debounces typing by [`DEBOUNCE_MS`] and ignores
//! answers to queries that are no longer current.

use crate::json::{self, Json};
use callcard_calls::{EntityKind, EntityRef};

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
}

/// The kinds the Call summary searches.
pub const KINDS: [EntityKind; 2] = [EntityKind::Lead, EntityKind::Customer];

/// Whether `query` is worth sending.
pub fn is_searchable(query: &str) -> bool {
    query.trim().chars().count() >= MIN_QUERY_CHARS
}

/// `/api/v4/{leads|customers}?query=…&limit=N`.
pub fn search_url(kind: EntityKind, query: &str) -> String {
    let mut url = String::from("/api/v4/");
    url.push_str(kind.api_path());
    url.push_str("?query=");
    url.push_str(&crate::api::encode_component(query.trim()));
    url.push_str("&limit=");
    url.push_str(&json::u64_string(LIMIT.into()));
    url
}

/// Reads Kommo's HAL answer (`_embedded.<kind>[{id, name}]`).
pub fn parse_hits(kind: EntityKind, answer: &Json) -> Vec<SearchHit> {
    answer
        .get("_embedded")
        .and_then(|e| e.get(kind.api_path()))
        .and_then(|list| list.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    let id = item.get("id")?.as_u64().filter(|&id| id > 0)?;
                    let name = item.get("name").and_then(Json::as_str).unwrap_or_default().trim();
                    let name = if name.is_empty() { format!("#{id}") } else { name.to_owned() };
                    Some(SearchHit { entity: EntityRef::new(kind, id), name })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Searches leads and customers; failures of one kind leave the other's hits.
pub async fn search(query: &str) -> Vec<SearchHit> {
    let mut hits = Vec::new();
    for kind in KINDS {
        let url = search_url(kind, query);
        let Ok((200, text)) = crate::net::get_text(&url).await else {
            continue;
        };
        if let Some(answer) = json::parse(&text) {
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
        let answer = json::parse(
            r#"{"_embedded": {"leads": [
                {"id": 5, "name": "Quote for ACME"}, {"id": 6, "name": ""}, {"id": 0, "name": "bad"}, {"name": "no id"},
                {"id": 7.5, "name": "fraction"}, {"id": -8, "name": "negative"}
            ]}}"#,
        )
        .unwrap();
        assert_eq!(
            parse_hits(EntityKind::Lead, &answer),
            vec![
                SearchHit { entity: EntityRef::new(EntityKind::Lead, 5), name: "Quote for ACME".into() },
                SearchHit { entity: EntityRef::new(EntityKind::Lead, 6), name: "#6".into() },
            ]
        );
        assert!(parse_hits(EntityKind::Customer, &answer).is_empty());
        assert!(parse_hits(EntityKind::Lead, &Json::Null).is_empty());
    }

    #[test]
    fn urls_and_thresholds() {
        assert_eq!(search_url(EntityKind::Customer, " a&b "), "/api/v4/customers?query=a%26b&limit=10");
        assert!(!is_searchable(" a "));
        assert!(is_searchable("ab"));
    }
}
