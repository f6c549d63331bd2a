//! Notes on a record: the call notes (`call_in`/`call_out`), plain notes
//! (`common`) and integration messages (`service_message`).
//!
//! Call notes carry the PBX's call id in `params.uniq`. Kommo does not
//! deduplicate notes, so `uniq` is the natural key that makes creation
//! idempotent: [`KommoClient::find_call_note_by_uniq`] looks a call note up
//! by it, and [`KommoClient::add_call_note_once`] creates one only if it is
//! not there yet, which also makes it safe to retry after an ambiguous
//! failure (a timeout after sending): look again, then create.

use crate::entities::de_opt_string;
use crate::http::{embedded, ApiRequest, KommoClient};
use crate::KommoError;
use callcard_calls::EntityRef;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `params` of a `call_in`/`call_out` note.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CallNoteParams {
    /// The PBX's call id: the note's natural key.
    pub uniq: String,
    /// Seconds.
    #[serde(default)]
    pub duration: u32,
    /// The integration's name.
    #[serde(default)]
    pub source: String,
    /// The recording URL; Kommo shows a player when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The other party's number.
    #[serde(default)]
    pub phone: String,
    /// The call's result as text: what the note shows under the call
    /// (the backend writes its sectioned call log here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_result: Option<String>,
    /// Kommo's `call_status` code (see [`crate::CallStatus`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_status: Option<u8>,
}

/// What a note says, by type. Serialises as Kommo's
/// `{"note_type": ..., "params": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "note_type", content = "params", rename_all = "snake_case")]
pub enum NoteBody {
    CallIn(CallNoteParams),
    CallOut(CallNoteParams),
    Common { text: String },
    ServiceMessage { service: String, text: String },
}

impl NoteBody {
    pub fn note_type(&self) -> NoteType {
        match self {
            Self::CallIn(_) => NoteType::CallIn,
            Self::CallOut(_) => NoteType::CallOut,
            Self::Common { .. } => NoteType::Common,
            Self::ServiceMessage { .. } => NoteType::ServiceMessage,
        }
    }

    /// The call params of a call note.
    pub fn call(&self) -> Option<&CallNoteParams> {
        match self {
            Self::CallIn(p) | Self::CallOut(p) => Some(p),
            _ => None,
        }
    }
}

/// The note types this client writes (Kommo has more; they are read as
/// [`Note::note_type`] strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoteType {
    CallIn,
    CallOut,
    Common,
    ServiceMessage,
}

impl NoteType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallIn => "call_in",
            Self::CallOut => "call_out",
            Self::Common => "common",
            Self::ServiceMessage => "service_message",
        }
    }
}

/// A note to add.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewNote {
    #[serde(flatten)]
    pub body: NoteBody,
    /// The author; Kommo uses the token's user when absent (0 = robot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responsible_user_id: Option<u64>,
}

impl From<NoteBody> for NewNote {
    fn from(body: NoteBody) -> Self {
        Self { body, created_by: None, responsible_user_id: None }
    }
}

/// A note as Kommo returns it. `note_type` and `params` stay raw because
/// Kommo has many more note types than this client writes; [`Note::body`]
/// reads the four it knows.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Note {
    pub id: u64,
    #[serde(default)]
    pub entity_id: Option<u64>,
    pub note_type: String,
    #[serde(default)]
    pub params: Value,
    #[serde(default)]
    pub created_by: Option<u64>,
    #[serde(default)]
    pub responsible_user_id: Option<u64>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub updated_at: Option<i64>,
}

impl Note {
    /// The note's content if it is one of the four types this client knows.
    pub fn body(&self) -> Option<NoteBody> {
        serde_json::from_value(serde_json::json!({"note_type": self.note_type, "params": self.params})).ok()
    }
}

/// What Kommo answers for an added or edited note.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct NoteRef {
    pub id: u64,
    #[serde(default)]
    pub entity_id: Option<u64>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub request_id: Option<String>,
}

fn notes_path(entity: EntityRef) -> String {
    format!("/api/v4/{}/{}/notes", entity.kind.api_path(), entity.id)
}

impl KommoClient {
    /// `POST /api/v4/{kind}/{id}/notes`: adds one note. Not retried once it
    /// may have reached Kommo; for call notes prefer
    /// [`add_call_note_once`](Self::add_call_note_once).
    pub async fn add_note(&self, entity: EntityRef, note: &NewNote) -> Result<NoteRef, KommoError> {
        let req = ApiRequest::create(notes_path(entity), &[note])?;
        let answer: Value = self.send_expect(&req).await?;
        embedded::<NoteRef>(&answer, "notes")?
            .into_iter()
            .next()
            .ok_or_else(|| KommoError::Decode { detail: "no note in the answer".into() })
    }

    /// `GET /api/v4/{kind}/{id}/notes`, all pages, optionally only some types
    /// (`filter[note_type][]`). Empty when Kommo answers 204.
    pub async fn list_notes(&self, entity: EntityRef, types: &[NoteType]) -> Result<Vec<Note>, KommoError> {
        let mut req = ApiRequest::get(notes_path(entity));
        for t in types {
            req = req.query("filter[note_type][]", t.as_str());
        }
        self.list_all(req, "notes").await
    }

    /// The call note (`call_in` or `call_out`) on `entity` whose
    /// `params.uniq` is `uniq`, if any: how the backend checks before it
    /// creates, since Kommo does not deduplicate.
    pub async fn find_call_note_by_uniq(&self, entity: EntityRef, uniq: &str) -> Result<Option<Note>, KommoError> {
        let notes = self.list_notes(entity, &[NoteType::CallIn, NoteType::CallOut]).await?;
        Ok(notes.into_iter().find(|n| {
            matches!(n.note_type.as_str(), "call_in" | "call_out")
                && n.params.get("uniq").and_then(Value::as_str) == Some(uniq)
        }))
    }

    /// Adds a call note unless one with the same `uniq` is already on
    /// `entity`. Returns the note and whether it was created now.
    ///
    /// Because existence is checked first, an ambiguous failure (timeout,
    /// 5xx, dropped connection after sending) is retried here, up to
    /// [`ClientConfig::max_retries`](crate::ClientConfig::max_retries) times:
    /// look again, and create only if the note still is not there.
    pub async fn add_call_note_once(&self, entity: EntityRef, note: &NewNote) -> Result<(NoteRef, bool), KommoError> {
        let uniq = match note.body.call() {
            Some(p) if !p.uniq.is_empty() => p.uniq.clone(),
            _ => return Err(KommoError::Unsupported("add_call_note_once needs a call note with a uniq".into())),
        };
        let mut attempts = 0;
        loop {
            if let Some(existing) = self.find_call_note_by_uniq(entity, &uniq).await? {
                let r = NoteRef { id: existing.id, entity_id: existing.entity_id, request_id: None };
                return Ok((r, false));
            }
            match self.add_note(entity, note).await {
                Ok(r) => return Ok((r, true)),
                Err(err) if err.may_have_been_applied() && attempts < self.config().max_retries => {
                    attempts += 1;
                    tracing::warn!(error = %err, %uniq, "call note may or may not exist; looking again");
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// `PATCH /api/v4/{kind}/{id}/notes/{note_id}`: replaces the note's
    /// content (e.g. a call note gets its recording `link` and final
    /// duration). Safe to retry: it sets, it does not add.
    pub async fn update_note(&self, entity: EntityRef, note_id: u64, body: &NoteBody) -> Result<NoteRef, KommoError> {
        let req = ApiRequest::patch(format!("{}/{note_id}", notes_path(entity)), body)?;
        let answer: Value = self.send_expect(&req).await?;
        // Kommo answers the note itself; some versions wrap it in `_embedded.notes`.
        match embedded::<NoteRef>(&answer, "notes")?.into_iter().next() {
            Some(r) => Ok(r),
            None => serde_json::from_value(answer).map_err(|e| KommoError::Decode { detail: e.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_note_serialises_as_kommo_wants() {
        let note = NewNote {
            body: NoteBody::CallIn(CallNoteParams {
                uniq: "abc".into(),
                duration: 60,
                source: "callcard".into(),
                link: Some("https://rec/1.mp3".into()),
                phone: "+18305703077".into(),
                ..CallNoteParams::default()
            }),
            created_by: Some(0),
            responsible_user_id: None,
        };
        assert_eq!(
            serde_json::to_value(&note).unwrap(),
            serde_json::json!({"note_type": "call_in", "created_by": 0, "params": {"uniq": "abc", "duration": 60,
                "source": "callcard", "link": "https://rec/1.mp3", "phone": "+18305703077"}})
        );
        let common: NewNote = NoteBody::Common { text: "hi".into() }.into();
        assert_eq!(
            serde_json::to_value(&common).unwrap(),
            serde_json::json!({"note_type": "common", "params": {"text": "hi"}})
        );
    }

    #[test]
    fn reads_known_and_unknown_note_types() {
        let n: Note =
            serde_json::from_value(serde_json::json!({"id": 1, "entity_id": 2, "note_type": "service_message",
            "params": {"service": "callcard", "text": "t"}}))
            .unwrap();
        assert_eq!(n.body(), Some(NoteBody::ServiceMessage { service: "callcard".into(), text: "t".into() }));
        let n: Note =
            serde_json::from_value(serde_json::json!({"id": 1, "note_type": "sms_in", "params": {}})).unwrap();
        assert_eq!(n.body(), None);
    }
}
