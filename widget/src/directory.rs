//! The account's users and lead statuses, for the Call summary: the
//! responsible user of each search hit, the task's responsible-user choice,
//! and a lead's status by name.
//!
//! Same-origin `GET /api/v4/users` and `GET /api/v4/leads/pipelines` (the
//! user's Kommo session authorizes them), read once per page: the session
//! reads them when the widget starts, so the ringing pop-up can name a
//! lead's status ([`cached`]). A failure
//! leaves the directory empty: the summary then shows ids as `#id` and the
//! manager alone in the responsible-user list.

use crate::convert::from_json;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Users by id, and status names by `(pipeline_id, status_id)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    pub users: BTreeMap<u64, String>,
    pub statuses: BTreeMap<(u64, u64), String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    id: u64,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UsersAnswer {
    #[serde(rename = "_embedded")]
    embedded: UsersEmbedded,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UsersEmbedded {
    users: Vec<Named>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PipelinesAnswer {
    #[serde(rename = "_embedded")]
    embedded: PipelinesEmbedded,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PipelinesEmbedded {
    pipelines: Vec<Pipeline>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Pipeline {
    id: u64,
    #[serde(rename = "_embedded")]
    embedded: StatusesEmbedded,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StatusesEmbedded {
    statuses: Vec<Named>,
}

impl Directory {
    /// What Kommo's answers say.
    pub fn from_answers(users: UsersAnswer, pipelines: PipelinesAnswer) -> Self {
        Self {
            users: users.embedded.users.into_iter().filter(|u| u.id > 0).map(|u| (u.id, u.name)).collect(),
            statuses: pipelines
                .embedded
                .pipelines
                .into_iter()
                .flat_map(|p| p.embedded.statuses.into_iter().map(move |s| ((p.id, s.id), s.name)))
                .collect(),
        }
    }

    /// A user's name, else `#id`.
    pub fn user_name(&self, id: u64) -> String {
        self.users.get(&id).filter(|n| !n.trim().is_empty()).cloned().unwrap_or_else(|| format!("#{id}"))
    }

    /// A lead status's name, if known.
    pub fn status_name(&self, pipeline_id: u64, status_id: u64) -> Option<String> {
        self.statuses.get(&(pipeline_id, status_id)).cloned()
    }
}

async fn get_text(url: &str) -> Option<String> {
    let response = gloo_net::http::Request::get(url).send().await.ok()?;
    if response.status() != 200 {
        return None;
    }
    response.text().await.ok()
}

thread_local! {
    /// The directory as last read.
    static LOADED: std::cell::RefCell<Option<Directory>> = const { std::cell::RefCell::new(None) };
}

/// The directory as last read in this page (empty before).
pub fn cached() -> Directory {
    LOADED.with(|l| l.borrow().clone()).unwrap_or_default()
}

/// Whether it was read in this page.
pub fn is_cached() -> bool {
    LOADED.with(|l| l.borrow().is_some())
}

/// Asks Kommo (same origin) for the users and the lead statuses, and keeps
/// the answer for [`cached`].
pub async fn fetch() -> Directory {
    let users = get_text("/api/v4/users?limit=250").await.and_then(|t| from_json(&t)).unwrap_or_default();
    let pipelines = get_text("/api/v4/leads/pipelines").await.and_then(|t| from_json(&t)).unwrap_or_default();
    let directory = Directory::from_answers(users, pipelines);
    LOADED.with(|l| *l.borrow_mut() = Some(directory.clone()));
    directory
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_statuses_are_read_leniently() {
        let d = Directory::from_answers(
            serde_json::from_str(r#"{"_embedded":{"users":[{"id":7,"name":"Anna"},{"id":0,"name":"bad"},{"name":"x"}]}}"#)
                .unwrap(),
            serde_json::from_str(
                r#"{"_embedded":{"pipelines":[{"id":3,"_embedded":{"statuses":[{"id":20,"name":"Initial contact"}]}}]}}"#,
            )
            .unwrap(),
        );
        assert_eq!(d.user_name(7), "Anna");
        assert_eq!(d.user_name(8), "#8");
        assert_eq!(d.users.len(), 1);
        assert_eq!(d.status_name(3, 20).as_deref(), Some("Initial contact"));
        assert_eq!(d.status_name(3, 21), None);
        assert_eq!(Directory::from_answers(UsersAnswer::default(), PipelinesAnswer::default()), Directory::default());
    }
}
