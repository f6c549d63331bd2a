//! Crossing between Rust values and JavaScript values.
//!
//! serde-wasm-bindgen turns serde types into plain JS values and back
//! (objects for structs and maps, `null` for `None`, as JSON has them); JSON
//! text is parsed and written by the browser's own `JSON`, so serde_json is
//! not in the bundle. Compiles natively, works only in a browser.

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;

/// `value` as a plain JS value, shaped as `JSON.parse` would give it.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL)
}

/// A plain JS value read as `T`.
pub fn from_js<T: DeserializeOwned>(value: JsValue) -> Result<T, serde_wasm_bindgen::Error> {
    serde_wasm_bindgen::from_value(value)
}

/// `value` as JSON text (`JSON.stringify`).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    js_sys::JSON::stringify(&to_js(value)).ok().and_then(|s| s.as_string()).unwrap_or_default()
}

/// JSON text read as `T` (`JSON.parse`); `None` when it is not JSON or not a `T`.
pub fn from_json<T: DeserializeOwned>(text: &str) -> Option<T> {
    from_js(js_sys::JSON::parse(text).ok()?).ok()
}
