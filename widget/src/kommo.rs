//! Typed bindings to the JavaScript surface Kommo gives a widget.
//!
//! - [`KommoWidget`]: the widget object `self` that script.js passes to
//!   every export: `get_settings()`, `i18n(group)`, `$authorizedAjax(opts)`,
//!   `add_action(type, fn)`.
//! - [`Notifications`]: `APP.notifications`: `show_notification`,
//!   `add_call`, `show_message`, `show_message_error`.
//! - [`current_user_id`]: reads `APP.constant('user').id`.
//!
//! Every method is imported with `catch`, so a host without it gives an
//! error value, never a panic. Values cross with serde-wasm-bindgen
//! ([`crate::convert`]). Compiles natively (for unit tests of the rest of
//! the crate) but only works in a browser.

use crate::convert::{from_js, to_js};
use crate::notification::{CallPopup, CompletedCall, Message};
use crate::texts::Texts;
use leptos::prelude::{LocalStorage, StoredValue, WithValue};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// Kommo's widget object (`self` in script.js).
    #[derive(Clone, Debug)]
    pub type KommoWidget;

    #[wasm_bindgen(method, catch, js_name = get_settings)]
    fn get_settings_js(this: &KommoWidget) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method, catch, js_name = i18n)]
    fn i18n_js(this: &KommoWidget, group: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method, catch, js_name = "$authorizedAjax")]
    fn authorized_ajax_js(this: &KommoWidget, options: &JsValue) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method, catch, js_name = add_action)]
    fn add_action_js(this: &KommoWidget, action: &str, callback: &js_sys::Function) -> Result<JsValue, JsValue>;

    /// The page's global object, as far as Kommo's globals go.
    type KommoGlobal;

    #[wasm_bindgen(method, getter, js_name = APP)]
    fn app(this: &KommoGlobal) -> Option<App>;

    /// Kommo's `APP`.
    type App;

    #[wasm_bindgen(method, getter)]
    fn notifications(this: &App) -> Option<Notifications>;

    #[wasm_bindgen(method, catch)]
    fn constant(this: &App, name: &str) -> Result<JsValue, JsValue>;

    /// `APP.notifications`.
    #[derive(Clone, Debug)]
    pub type Notifications;

    #[wasm_bindgen(method, catch, js_name = show_notification)]
    fn show_notification_js(this: &Notifications, popup: &JsValue) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = add_call)]
    fn add_call_js(this: &Notifications, call: &JsValue) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = show_message)]
    fn show_message_js(this: &Notifications, message: &JsValue) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = show_message_error)]
    fn show_message_error_js(this: &Notifications, message: &JsValue) -> Result<(), JsValue>;
}

/// A failed `$authorizedAjax` (or other HTTP) call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AjaxError {
    /// The HTTP status, 0 when the request never got an answer.
    pub status: u16,
    /// The problem's `title`/`detail`, or the response text, or the JS error.
    pub message: String,
}

/// What `application/problem+json` says, as far as a message goes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProblemText {
    pub title: Option<String>,
    pub detail: Option<String>,
}

impl ProblemText {
    /// The detail, else the title.
    pub fn message(self) -> Option<String> {
        [self.detail, self.title].into_iter().flatten().find(|s| !s.is_empty())
    }
}

/// What a rejected `$authorizedAjax` gives: a jqXHR (or an `Error`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Rejection {
    status: Option<f64>,
    /// Read apart: an answer that is JSON but no problem must not lose the status.
    #[serde(rename = "responseJSON", with = "serde_wasm_bindgen::preserve")]
    response_json: JsValue,
    message: Option<String>,
    #[serde(rename = "responseText")]
    response_text: Option<String>,
    #[serde(rename = "statusText")]
    status_text: Option<String>,
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
    pub fn from_js(value: JsValue) -> Self {
        let text = value.as_string();
        let r: Rejection = if value.is_object() { from_js(value).unwrap_or_default() } else { Rejection::default() };
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        let problem = r.response_json.is_object().then(|| from_js::<ProblemText>(r.response_json).ok()).flatten();
        let message = problem
            .and_then(ProblemText::message)
            .or_else(|| nonempty(r.message))
            .or_else(|| nonempty(r.response_text))
            .or(text)
            .or(r.status_text)
            .unwrap_or_else(|| "request failed".to_owned());
        Self { status: r.status.map_or(0, |s| s as u16), message }
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

/// The options of one `$authorizedAjax` call (jQuery's `$.ajax` settings).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AjaxRequest {
    pub url: String,
    /// `GET`, `POST`, `PUT`…; sent as both jQuery's `method` and `type`.
    pub method: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub data_type: &'static str,
    /// `application/json` with a body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<&'static str>,
    /// A JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl AjaxRequest {
    /// A request without a body.
    pub fn new(method: &'static str, url: String) -> Self {
        Self { url, method, kind: method, data_type: "json", content_type: None, data: None }
    }

    /// A request with a JSON body.
    pub fn with_json(method: &'static str, url: String, body: String) -> Self {
        Self { content_type: Some("application/json"), data: Some(body), ..Self::new(method, url) }
    }
}

/// One entry of an i18n group: a text, or something else (ignored).
#[derive(Deserialize)]
#[serde(untagged)]
enum I18nEntry {
    Text(String),
    Other(serde::de::IgnoredAny),
}

impl KommoWidget {
    /// The widget object script.js handed over.
    pub fn new(this: JsValue) -> Self {
        this.unchecked_into()
    }

    /// `self.get_settings()`: saved settings plus `path`, `version`…
    pub fn settings(&self) -> JsValue {
        self.get_settings_js().unwrap_or(JsValue::UNDEFINED)
    }

    /// `self.i18n(group)`: the texts of one top-level object of the current
    /// language file.
    pub fn i18n(&self, group: &str) -> BTreeMap<String, String> {
        let entries: BTreeMap<String, I18nEntry> =
            self.i18n_js(group).ok().and_then(|v| from_js(v).ok()).unwrap_or_default();
        entries
            .into_iter()
            .filter_map(|(k, v)| match v {
                I18nEntry::Text(t) => Some((k, t)),
                I18nEntry::Other(_) => None,
            })
            .collect()
    }

    /// `self.add_action(type, fn)`: Kommo calls `fn` for actions of that
    /// type (for example `phone` when a number is clicked).
    pub fn add_action(&self, action: &str, callback: &js_sys::Function) -> Result<(), JsValue> {
        self.add_action_js(action, callback).map(drop)
    }

    /// `self.$authorizedAjax(opts)`: the jqXHR (a thenable) adopted as a
    /// promise; resolves with the JSON answer (`null` for 204).
    pub async fn authorized_ajax(&self, request: &AjaxRequest) -> Result<JsValue, AjaxError> {
        let jqxhr = self.authorized_ajax_js(&to_js(request)).map_err(AjaxError::from_js)?;
        let promise = js_sys::Promise::resolve(&jqxhr);
        let value = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(AjaxError::from_js)?;
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
        let (group, name) = key.split_once('.')?;
        self.i18n(group).remove(name)
    }
}

/// The running session's widget object, for views (provided as context; the
/// feed holds the same cell, which `init` again replaces).
#[derive(Clone, Copy)]
pub struct CurrentWidget(StoredValue<Rc<RefCell<KommoWidget>>, LocalStorage>);

impl CurrentWidget {
    pub fn new(widget: Rc<RefCell<KommoWidget>>) -> Self {
        Self(StoredValue::new_local(widget))
    }

    /// The widget object now; `None` once the session is gone.
    pub fn get(&self) -> Option<KommoWidget> {
        self.0.try_with_value(|w| w.borrow().clone())
    }
}

fn app() -> Option<App> {
    js_sys::global().unchecked_into::<KommoGlobal>().app()
}

impl Notifications {
    /// `APP.notifications` of this page.
    pub fn get() -> Option<Self> {
        app()?.notifications()
    }

    /// `show_notification(popup)`.
    pub fn show_notification(&self, popup: &CallPopup) -> Result<(), JsValue> {
        self.show_notification_js(&to_js(popup))
    }

    /// `add_call(call)`.
    pub fn add_call(&self, call: &CompletedCall) -> Result<(), JsValue> {
        self.add_call_js(&to_js(call))
    }

    /// `show_message({header, text})`; both are inserted as given (escape
    /// anything from outside first).
    pub fn show_message(&self, header: &str, text: &str) -> Result<(), JsValue> {
        self.show_message_js(&to_js(&Message { header, text }))
    }

    /// `show_message_error({header, text})`.
    pub fn show_message_error(&self, header: &str, text: &str) -> Result<(), JsValue> {
        self.show_message_error_js(&to_js(&Message { header, text }))
    }
}

/// `APP.constant('user')`: the id may be a number or a string.
#[derive(Deserialize)]
struct KommoUser {
    id: UserId,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UserId {
    Number(u64),
    Text(String),
}

/// `APP.constant('user').id`: the Kommo user in this page, if known.
pub fn current_user_id() -> Option<u64> {
    let user: KommoUser = from_js(app()?.constant("user").ok()?).ok()?;
    match user.id {
        UserId::Number(id) => Some(id),
        UserId::Text(id) => id.trim().parse().ok(),
    }
}
