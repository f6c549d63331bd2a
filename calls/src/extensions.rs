//! The widget's `phones` setting: which PBX extension rings which Kommo user.
//!
//! `phones` is the key Kommo documents for telephony widgets
//! (`call-object.txt`: "the list of users should be stored in the widget
//! settings in the 'phones' key in the 'users' type field in the format
//! {user_id: phone}"). Kommo renders one field per user and stores
//! `{"<user_id>": "<extension>"}`; `get_settings()` may hand it over as that
//! object or as a JSON string of it. An empty field means the user has no
//! extension.
//!
//! callcard's first versions kept the same map under `users`
//! ([`OLD_SETTING_KEY`]). Settings saved then still hold it, and the new
//! `phones` field starts empty: [`ExtensionMap::or_migrated`] takes the old
//! map while `phones` maps nobody, so an upgrade never loses the extensions.

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

/// The settings key of the extensions (Kommo's documented one).
pub const SETTING_KEY: &str = "phones";
/// The key callcard used before; read only to migrate settings saved under it.
pub const OLD_SETTING_KEY: &str = "users";

impl ExtensionMap {
    /// This `phones` map, or while it maps nobody, the one saved under the
    /// old `users` key. (A manager cannot clear every extension while the
    /// old key still holds some: Kommo keeps keys a manifest no longer names
    /// as far as we know, unconfirmed; clearing all is a rare, deliberate
    /// act, losing them all on upgrade would not be.)
    pub fn or_migrated(self, old: Option<ExtensionMap>) -> ExtensionMap {
        match old {
            Some(old) if self.is_empty() => old,
            _ => self,
        }
    }

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

/// One user's field of the `users` setting as Kommo stores it: text, a
/// number (`101`), or empty (`null`). Reads without serde_json, so the widget
/// checks the settings page with [`ExtensionMap::from_fields`] by these very
/// rules over serde-wasm-bindgen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtensionField(pub String);

impl<'de> Deserialize<'de> for ExtensionField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Field;
        impl<'de> serde::de::Visitor<'de> for Field {
            type Value = ExtensionField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an extension")
            }
            fn visit_str<E>(self, v: &str) -> Result<ExtensionField, E> {
                Ok(ExtensionField(v.to_owned()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<ExtensionField, E> {
                Ok(ExtensionField(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<ExtensionField, E> {
                Ok(ExtensionField(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<ExtensionField, E> {
                Ok(ExtensionField(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<ExtensionField, E> {
                Ok(ExtensionField(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<ExtensionField, E> {
                Ok(ExtensionField::default())
            }
            fn visit_none<E>(self) -> Result<ExtensionField, E> {
                Ok(ExtensionField::default())
            }
            // A list or an object is no extension; it is refused as "not
            // digits" like any other text (shown as `[…]` / `{…}`).
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ExtensionField, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(ExtensionField("[…]".into()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ExtensionField, A::Error> {
                while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(ExtensionField("{…}".into()))
            }
        }
        deserializer.deserialize_any(Field)
    }
}

impl ExtensionMap {
    /// The rules of [`ExtensionMap::from_entries`] over the setting's fields,
    /// read as [`ExtensionField`]s (keys in string order, as a JSON object
    /// is read into a map).
    pub fn from_fields(fields: &BTreeMap<String, ExtensionField>) -> Result<Self, ExtensionMapError> {
        Self::from_entries(fields.iter().map(|(user, field)| (user.as_str(), field.0.clone())))
    }
}

/// The body of `PUT /widget/settings`: `{"phones": {"<user_id>": "<extension>"}}`.
/// The backend also takes the old `{"users": …}` an older widget sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettingsUpdate {
    /// `{"<user_id>": "<extension>"}` (Kommo's `phones` setting; also taken
    /// as a JSON string of it, and under the old name `users`).
    #[serde(alias = "users")]
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, String>))]
    pub phones: ExtensionMap,
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
    fn fields_read_without_serde_json_follow_the_same_rules() {
        let cases = [
            json!({"8320148": "101", "8375357": " 102 "}),
            json!({"1": "101", "2": "101"}),
            json!({"3": "7", "1": "101", "2": "101", "10": "101"}),
            json!({"1": "", "2": null, "3": "  "}),
            json!({"x": "101"}),
            json!({" 5 ": "101", "+6": "102"}),
            json!({"5": "101", "05": "102", "7": "101"}),
            json!({"1": 101, "3": 1.5}),
            json!({"1": 12345678901234567u64}),
            json!({"1": true}),
            json!({"1": [1, "2"]}),
            json!({"1": {"b": 1}}),
            json!({"1": "12345678901234567"}),
            json!({}),
        ];
        for case in cases {
            let fields: BTreeMap<String, ExtensionField> = serde_json::from_value(case.clone()).unwrap();
            let ours = ExtensionMap::from_fields(&fields);
            let theirs = ExtensionMap::parse(&case);
            // Lists and objects are refused alike; only the text shown differs.
            match (&ours, &theirs) {
                (
                    Err(ExtensionMapError::NotDigits { user_id: a, .. }),
                    Err(ExtensionMapError::NotDigits { user_id: b, .. }),
                ) => {
                    assert_eq!(a, b, "{case}")
                }
                _ => assert_eq!(ours, theirs, "{case}"),
            }
        }
    }

    #[test]
    fn the_settings_body_names_phones_and_the_old_name_is_read() {
        let phones = ExtensionMap::parse(&json!({"8375357": "102", "10": "7"})).unwrap();
        let body = serde_json::to_string(&SettingsUpdate { phones: phones.clone() }).unwrap();
        assert_eq!(body, r#"{"phones":{"10":"7","8375357":"102"}}"#);
        let old: SettingsUpdate = serde_json::from_str(r#"{"users":{"10":"7","8375357":"102"}}"#).unwrap();
        assert_eq!(old.phones, phones);
    }

    #[test]
    fn an_empty_phones_setting_takes_the_map_saved_under_the_old_key() {
        let old = ExtensionMap::parse(&json!({"8320148": "101"})).unwrap();
        let new = ExtensionMap::parse(&json!({"8320148": "201"})).unwrap();
        assert_eq!(ExtensionMap::default().or_migrated(Some(old.clone())), old, "upgraded: nothing lost");
        assert_eq!(new.clone().or_migrated(Some(old)), new, "once phones maps someone, it wins");
        assert_eq!(ExtensionMap::default().or_migrated(None), ExtensionMap::default());
    }

    #[test]
    fn serializes_back_to_kommos_shape() {
        let m = ExtensionMap::parse(&json!({"7": " 101 "})).unwrap();
        assert_eq!(serde_json::to_value(&m).unwrap(), json!({"7": "101"}));
    }
}
