//! The widget's entries in `localStorage`: serde types kept as JSON text
//! (see [`crate::convert`]). An entry that cannot be read is as good as
//! none; storage that is missing or full loses the write, never the page.

use crate::convert::{from_json, to_json};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The value under `key`, if there is a readable one.
pub fn load<T: DeserializeOwned>(key: &str) -> Option<T> {
    from_json(&storage()?.get_item(key).ok()??)
}

/// Keeps `value` under `key`.
pub fn store<T: Serialize>(key: &str, value: &T) {
    if let Some(s) = storage() {
        let _ = s.set_item(key, &to_json(value));
    }
}

/// Forgets `key`.
pub fn remove(key: &str) {
    if let Some(s) = storage() {
        let _ = s.remove_item(key);
    }
}
