//! The widget's `users` setting: which PBX extension rings which Kommo user.
//!
//! Kommo renders one field per user and stores `{"<user_id>": "<extension>"}`;
//! `get_settings()` may hand it over as that object or as a JSON string of it.
//! An empty field means the user has no extension.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A validated mapping: every extension is digits and belongs to one user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "BTreeMap<String, String>", try_from = "serde_json::Value")]
pub struct ExtensionMap {
    by_user: BTreeMap<u64, String>,
}

/// Why a mapping was refused, in terms the settings page can show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtensionMapError {
    /// The setting is not an object (or a JSON string of one).
    NotAnObject,
    /// A key is not a Kommo user id.
    BadUserId(String),
    /// An extension contains something other than digits, or is too long.
    NotDigits { user_id: u64, extension: String },
    /// Two users were given the same extension.
    Duplicate { extension: String, user_ids: [u64; 2] },
}

impl fmt::Display for ExtensionMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnObject => f.write_str("the users setting must be an object of user id to extension"),
            Self::BadUserId(k) => write!(f, "\"{k}\" is not a user id"),
            Self::NotDigits { user_id, extension } => {
                write!(f, "extension \"{extension}\" of user {user_id} must be 1 to 16 digits")
            }
            Self::Duplicate { extension, user_ids } => {
                write!(f, "extension {extension} is given to users {} and {}", user_ids[0], user_ids[1])
            }
        }
    }
}

impl std::error::Error for ExtensionMapError {}

impl ExtensionMap {
    /// Parses and validates the setting as Kommo stores it.
    pub fn parse(value: &serde_json::Value) -> Result<Self, ExtensionMapError> {
        let parsed;
        let object = match value {
            serde_json::Value::Object(o) => o,
            serde_json::Value::String(s) if s.trim().is_empty() => return Ok(Self::default()),
            serde_json::Value::String(s) => {
                parsed = serde_json::from_str::<serde_json::Value>(s).map_err(|_| ExtensionMapError::NotAnObject)?;
                parsed.as_object().ok_or(ExtensionMapError::NotAnObject)?
            }
            serde_json::Value::Null => return Ok(Self::default()),
            _ => return Err(ExtensionMapError::NotAnObject),
        };
        Self::from_entries(object.iter().map(|(key, ext)| {
            let extension = match ext {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (key.as_str(), extension)
        }))
    }

    /// The rules, over the setting's entries as written (user id key,
    /// extension as text), in key order: an empty extension means none;
    /// extensions are 1 to 16 digits and belong to one user each. The widget
    /// checks the settings page with these same rules before Kommo saves it.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, String)>) -> Result<Self, ExtensionMapError> {
        let mut by_user = BTreeMap::new();
        let mut by_extension: BTreeMap<String, u64> = BTreeMap::new();
        for (key, extension) in entries {
            let user_id: u64 = key.trim().parse().map_err(|_| ExtensionMapError::BadUserId(key.to_string()))?;
            let extension = extension.trim().to_string();
            if extension.is_empty() {
                continue;
            }
            if extension.len() > 16 || !extension.chars().all(|c| c.is_ascii_digit()) {
                return Err(ExtensionMapError::NotDigits { user_id, extension });
            }
            if let Some(&other) = by_extension.get(&extension) {
                let mut user_ids = [other, user_id];
                user_ids.sort_unstable();
                return Err(ExtensionMapError::Duplicate { extension, user_ids });
            }
            by_extension.insert(extension.clone(), user_id);
            by_user.insert(user_id, extension);
        }
        Ok(Self { by_user })
    }

    /// The Kommo user whose phone the extension rings.
    pub fn user_for(&self, extension: &str) -> Option<u64> {
        self.by_user.iter().find(|(_, e)| e.as_str() == extension).map(|(&u, _)| u)
    }

    pub fn extension_of(&self, user_id: u64) -> Option<&str> {
        self.by_user.get(&user_id).map(String::as_str)
    }

    /// Whether the number is one of this account's extensions (an internal call).
    pub fn is_extension(&self, number: &str) -> bool {
        self.by_user.values().any(|e| e == number)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &str)> {
        self.by_user.iter().map(|(&u, e)| (u, e.as_str()))
    }

    pub fn len(&self) -> usize {
        self.by_user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }
}

impl From<ExtensionMap> for BTreeMap<String, String> {
    fn from(m: ExtensionMap) -> Self {
        m.by_user.into_iter().map(|(u, e)| (u.to_string(), e)).collect()
    }
}

impl TryFrom<serde_json::Value> for ExtensionMap {
    type Error = ExtensionMapError;
    fn try_from(v: serde_json::Value) -> Result<Self, Self::Error> {
        Self::parse(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kommo_object_and_json_string_forms_both_parse() {
        let a = ExtensionMap::parse(&json!({"8320148": "101", "8375357": "102", "9000000": ""})).unwrap();
        let b = ExtensionMap::parse(&json!("{\"8320148\":\"101\",\"8375357\":102}")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.user_for("102"), Some(8375357));
        assert_eq!(a.user_for("103"), None);
        assert_eq!(a.len(), 2, "an empty field maps nobody");
    }

    #[test]
    fn duplicates_and_non_digits_are_refused() {
        assert_eq!(
            ExtensionMap::parse(&json!({"2": "101", "1": "101"})).unwrap_err(),
            ExtensionMapError::Duplicate { extension: "101".into(), user_ids: [1, 2] }
        );
        assert!(matches!(
            ExtensionMap::parse(&json!({"1": "10a"})).unwrap_err(),
            ExtensionMapError::NotDigits { user_id: 1, .. }
        ));
        assert_eq!(ExtensionMap::parse(&json!([1])).unwrap_err(), ExtensionMapError::NotAnObject);
        assert!(matches!(ExtensionMap::parse(&json!({"bob": "1"})).unwrap_err(), ExtensionMapError::BadUserId(_)));
    }

    #[test]
    fn serializes_back_to_kommos_shape() {
        let m = ExtensionMap::parse(&json!({"7": " 101 "})).unwrap();
        assert_eq!(serde_json::to_value(&m).unwrap(), json!({"7": "101"}));
    }
}
