//! Links between records: `POST /api/v4/{kind}/{id}/link` and `/unlink`.
//!
//! The Call summary modal may move a call from the record Kommo picked to
//! the one the manager chose; an incoming lead's contact gets linked to the
//! chosen lead or customer (call-result.txt).

use crate::entities::kind_as_path;
use crate::http::{embedded, ApiRequest, KommoClient};
use crate::KommoError;
use callcard_calls::{EntityKind, EntityRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One link from a record to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub to_entity_id: u64,
    #[serde(with = "kind_as_path")]
    pub to_entity_type: EntityKind,
    /// E.g. `{"is_main": true}` for a lead's main contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

impl Link {
    pub fn to(target: EntityRef) -> Self {
        Self { to_entity_id: target.id, to_entity_type: target.kind, metadata: None }
    }

    pub fn target(&self) -> EntityRef {
        EntityRef::new(self.to_entity_type, self.to_entity_id)
    }
}

impl KommoClient {
    /// Links `from` to each of `links`. Linking twice is harmless, so this
    /// is retried like a read. Returns the links Kommo reports.
    pub async fn link(&self, from: EntityRef, links: &[Link]) -> Result<Vec<Link>, KommoError> {
        let path = format!("/api/v4/{}/{}/link", from.kind.api_path(), from.id);
        let req = ApiRequest::post_idempotent(path, &links)?;
        match self.send::<Value>(&req).await? {
            None => Ok(Vec::new()),
            Some(answer) => embedded(&answer, "links"),
        }
    }

    /// Removes the links from `from` to each of `links` (Kommo answers 204).
    pub async fn unlink(&self, from: EntityRef, links: &[Link]) -> Result<(), KommoError> {
        let path = format!("/api/v4/{}/{}/unlink", from.kind.api_path(), from.id);
        self.execute(&ApiRequest::post_idempotent(path, &links)?).await.map(drop)
    }
}
