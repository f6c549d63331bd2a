//! A typed wrapper around the JavaScript surface Kommo gives a widget.
//!
//! - [`KommoWidget`] wraps the widget object `self` that script.js passes to
//!   every export: `get_settings()`, `i18n(group)`, `$authorizedAjax(opts)`.
//! - [`Notifications`] wraps `APP.notifications`: `show_notification`,
//!   `add_call`, `show_message`, `show_message_error`.
//! - [`current_user_id`] reads `APP.constant('user').id`.
//!
//! Everything is looked up at call time with `Reflect`, so a missing method
//! is an error value, never a panic. Compiles natively (for unit tests of the
//! rest of the crate) but only works in a browser.

use crate::json::{self, Json, Writer};
use crate::notification::{CallPopup, CompletedCall};
use crate::texts::Texts;
use std::fmt;
use wasm_bindgen::{JsCast, JsValue};

/// Reads `obj[key]`, `undefined` when absent or when `obj` is not an object.
pub fn prop(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() && !obj.is_function() {
        return JsValue::UNDEFINED;
    }
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Calls `obj[method](...args)` with `this = obj`.
pub fn call_method(obj: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f = prop(obj, method);
    let f: &js_sys::Function = f.dyn_ref().ok_or_else(|| JsValue::from_str(&format!("{method} is not a function")))?;
    let array: js_sys::Array = args.iter().collect();
    f.apply(obj, &array)
}

/// A JSON text as a plain JS value (`JSON.parse`).
pub fn to_js(json: &str) -> JsValue {
    js_sys::JSON::parse(json).unwrap_or(JsValue::NULL)
}

/// A plain JS value (an answer, a setting) as [`Json`], by way of
/// `JSON.stringify`: `undefined`, functions and the like become `null`.
pub fn from_js(value: &JsValue) -> Json {
    js_sys::JSON::stringify(value).ok().and_then(|s| s.as_string()).and_then(|s| json::parse(&s)).unwrap_or(Json::Null)
}

/// A failed `$authorizedAjax` (or other HTTP) call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AjaxError {
    /// The HTTP status, 0 when the request never got an answer.
    pub status: u16,
    /// The problem's `title`/`detail`, or the response text, or the JS error.
    pub message: String,
}

impl AjaxError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// Whether the backend refused the credentials (ticket or token).
    pub fn is_auth(&self) -> bool {
        matches!(self.status, 401 | 403)
    }

    /// Whether the request may succeed when simply retried later.
    pub fn is_transient(&self) -> bool {
        self.status == 0 || self.status == 408 || self.status == 429 || self.status >= 500
    }

    /// Reads a jqXHR (or an Error, or anything) a rejected call gave.
    pub fn from_js(value: &JsValue) -> Self {
        let status = prop(value, "status").as_f64().map_or(0, |s| s as u16);
        let json = prop(value, "responseJSON");
        let message = [prop(&json, "detail"), prop(&json, "title"), prop(value, "message")]
            .into_iter()
            .find_map(|v| v.as_string().filter(|s| !s.is_empty()))
            .or_else(|| prop(value, "responseText").as_string().filter(|s| !s.is_empty()))
            .or_else(|| value.as_string())
            .or_else(|| prop(value, "statusText").as_string())
            .unwrap_or_else(|| "request failed".to_owned());
        Self { status, message }
    }
}

impl fmt::Display for AjaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "HTTP {}: {}", self.status, self.message)
        }
    }
}

impl std::error::Error for AjaxError {}

/// One `$authorizedAjax` request.
#[derive(Clone, Debug)]
pub struct AjaxRequest {
    pub url: String,
    /// `GET`, `POST`, `PUT`…; sent as both jQuery's `method` and `type`.
    pub method: &'static str,
    /// A JSON text, sent with `contentType: application/json`.
    pub body: Option<String>,
}

/// Kommo's widget object (`self` in script.js).
#[derive(Clone, Debug)]
pub struct KommoWidget {
    this: JsValue,
}

impl KommoWidget {
    pub fn new(this: JsValue) -> Self {
        Self { this }
    }

    pub fn as_js(&self) -> &JsValue {
        &self.this
    }

    /// `self.get_settings()`: saved settings plus `path`, `version`…
    pub fn settings(&self) -> JsValue {
        call_method(&self.this, "get_settings", &[]).unwrap_or(JsValue::UNDEFINED)
    }

    /// `self.i18n(group)`: one top-level object of the current language file.
    pub fn i18n(&self, group: &str) -> JsValue {
        call_method(&self.this, "i18n", &[JsValue::from_str(group)]).unwrap_or(JsValue::UNDEFINED)
    }

    /// `self.$authorizedAjax(opts)`: the jqXHR (a thenable) adopted as a
    /// promise; resolves with the parsed JSON answer (`null` for 204).
    pub async fn authorized_ajax(&self, request: &AjaxRequest) -> Result<JsValue, AjaxError> {
        let opts = js_sys::Object::new();
        let set = |k: &str, v: JsValue| {
            let _ = js_sys::Reflect::set(&opts, &JsValue::from_str(k), &v);
        };
        set("url", JsValue::from_str(&request.url));
        set("method", JsValue::from_str(request.method));
        set("type", JsValue::from_str(request.method));
        set("dataType", JsValue::from_str("json"));
        if let Some(body) = &request.body {
            set("contentType", JsValue::from_str("application/json"));
            set("data", JsValue::from_str(body));
        }
        let jqxhr = call_method(&self.this, "$authorizedAjax", &[opts.into()]).map_err(|e| AjaxError::from_js(&e))?;
        let promise = js_sys::Promise::resolve(&jqxhr);
        let value = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(|e| AjaxError::from_js(&e))?;
        // A host without dataType support may hand back the raw text.
        match value.as_string() {
            Some(text) if text.trim().is_empty() => Ok(JsValue::NULL),
            Some(text) => js_sys::JSON::parse(&text).or(Ok(JsValue::from_str(&text))),
            None => Ok(value),
        }
    }
}

impl Texts for KommoWidget {
    fn lookup(&self, key: &str) -> Option<String> {
        let mut parts = key.split('.');
        let mut node = self.i18n(parts.next()?);
        for part in parts {
            node = prop(&node, part);
        }
        node.as_string()
    }
}

/// `APP.notifications`.
#[derive(Clone, Debug)]
pub struct Notifications {
    this: JsValue,
}

/// The global `APP` object, if the page has one.
pub fn app() -> Option<JsValue> {
    let app = prop(&js_sys::global(), "APP");
    (app.is_object()).then_some(app)
}

impl Notifications {
    /// `APP.notifications` of this page.
    pub fn get() -> Option<Self> {
        let this = prop(&app()?, "notifications");
        this.is_object().then_some(Self { this })
    }

    fn call(&self, method: &str, arg: JsValue) -> Result<(), JsValue> {
        call_method(&self.this, method, &[arg]).map(drop)
    }

    /// `show_notification(popup)`.
    pub fn show_notification(&self, popup: &CallPopup) -> Result<(), JsValue> {
        self.call("show_notification", to_js(&popup.to_json()))
    }

    /// `add_call(call)`.
    pub fn add_call(&self, call: &CompletedCall) -> Result<(), JsValue> {
        self.call("add_call", to_js(&call.to_json()))
    }

    /// `show_message({header, text})`; both are inserted as given (escape
    /// anything from outside first).
    pub fn show_message(&self, header: &str, text: &str) -> Result<(), JsValue> {
        self.call("show_message", message(header, text))
    }

    /// `show_message_error({header, text})`.
    pub fn show_message_error(&self, header: &str, text: &str) -> Result<(), JsValue> {
        self.call("show_message_error", message(header, text))
    }
}

/// `{header, text}`.
fn message(header: &str, text: &str) -> JsValue {
    let mut w = Writer::new();
    w.open().key("header").str(header).key("text").str(text).close();
    to_js(&w.finish())
}

/// `APP.constant('user').id`: the Kommo user in this page, if known.
pub fn current_user_id() -> Option<u64> {
    let user = call_method(&app()?, "constant", &[JsValue::from_str("user")]).ok()?;
    let id = prop(&user, "id");
    id.as_f64().map(|f| f as u64).or_else(|| id.as_string()?.trim().parse().ok())
}
