//! The settings page, and `onSave`.
//!
//! Kommo renders the `phones` setting itself (one extension field per user;
//! the key Kommo documents for telephony widgets, see
//! `callcard_calls::extensions`); the widget's `settings` callback adds its
//! part below it ([`render`]): a hint about extensions and a **check connection** action,
//! which asks the backend's `GET /widget/status` (through `$authorizedAjax`,
//! so with the one-time token) whether it is reachable and has this account
//! authorized, and says so in a status line ([`ConnectionCheck`]).
//!
//! Settings saved by callcard's first versions hold the extensions under
//! `users`. While `phones` maps nobody, the page fills its fields from the
//! old map ([`migrate_fields`]), and `onSave` sends the old map rather than
//! an empty one, so an upgrade never unmaps a manager.
//!
//! `onSave` must answer synchronously, so it validates the extensions by the
//! rules of `callcard_calls::extensions::ExtensionMap` ([`parse_users`]:
//! digits only, no extension twice) and refuses bad input
//! with an error message; good input is accepted at once and sent to the
//! backend (`PUT /widget/settings`) in the background, with an error
//! message if that fails.
//!
//! Markup: `.callcard-settings` holding `p.callcard-settings-hint`,
//! `button.callcard-settings-check`,
//! `#callcard-settings-connection[role=status][data-state=idle|checking|ok|not_authorized|unknown|unreachable]`,
//! and the call-note switches ([`crate::log_settings`]).

use crate::api::Backend;
use crate::convert::from_js;
use crate::escape::escape_html;
use crate::kommo::{AjaxError, KommoWidget, Notifications};
use crate::log_settings::LogSettingsPanel;
use crate::texts::{Texts, Translations};
use callcard_calls::extensions::{ExtensionField, ExtensionMap, ExtensionMapError};
use callcard_calls::status::WidgetStatus;
use leptos::prelude::*;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The class of the widget's part of the settings modal.
pub const PANEL_CLASS: &str = "callcard-settings";
/// The class of the hint inside it.
pub const HINT_CLASS: &str = "callcard-settings-hint";

/// What "check connection" found out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionCheck {
    /// The backend answers and has this account authorized.
    Ok,
    /// The backend answers but refuses the account, or needs it authorized again.
    NotAuthorized,
    /// The backend answers but cannot say (a backend without `/widget/status`).
    Unknown,
    /// No answer, or the backend is failing.
    Unreachable,
}

impl ConnectionCheck {
    /// Reads `GET /widget/status`'s answer or error.
    pub fn from_answer(answer: Result<WidgetStatus, AjaxError>) -> Self {
        match answer {
            Ok(status) => match status.authorized {
                Some(true) if !status.needs_reauthorization => Self::Ok,
                Some(_) => Self::NotAuthorized,
                None if status.needs_reauthorization => Self::NotAuthorized,
                None => Self::Unknown,
            },
            Err(e) if e.status == 404 => Self::Unknown,
            Err(e) if e.is_auth() => Self::NotAuthorized,
            Err(_) => Self::Unreachable,
        }
    }

    /// The i18n key of the message.
    pub fn text_key(self) -> &'static str {
        match self {
            Self::Ok => "settings.connection_ok",
            Self::NotAuthorized => "settings.not_authorized",
            Self::Unknown => "settings.status_unknown",
            Self::Unreachable => "settings.connection_failed",
        }
    }

    /// The status line's `data-state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotAuthorized => "not_authorized",
            Self::Unknown => "unknown",
            Self::Unreachable => "unreachable",
        }
    }
}

thread_local! {
    /// The mounted panel; replaced when the settings open again.
    static PANEL: RefCell<Option<Box<dyn std::any::Any>>> = const { RefCell::new(None) };
}

/// The message for a refused mapping, translated; values escaped.
pub fn error_text(error: &ExtensionMapError, texts: &dyn Texts) -> String {
    match error {
        ExtensionMapError::NotAnObject => texts.text("errors.not_an_object"),
        ExtensionMapError::BadUserId(user) => texts.fill("errors.bad_user_id", &[("user", &escape_html(user))]),
        ExtensionMapError::NotDigits { extension, .. } => {
            texts.fill("errors.not_digits", &[("extension", &escape_html(extension))])
        }
        ExtensionMapError::Duplicate { extension, .. } => {
            texts.fill("errors.duplicate_extension", &[("extension", &escape_html(extension))])
        }
    }
}

/// The `phones` setting (or the old `users`), validated by the rules the backend applies
/// (`ExtensionMap::from_fields`): `{"<user_id>": "<extension>"}` or a JSON
/// string of it; empty extensions are left out.
pub fn parse_users(users: JsValue) -> Result<ExtensionMap, ExtensionMapError> {
    let users = match users.as_string() {
        Some(text) if text.trim().is_empty() => return Ok(ExtensionMap::default()),
        Some(text) => js_sys::JSON::parse(&text).map_err(|_| ExtensionMapError::NotAnObject)?,
        None => users,
    };
    if users.is_null() {
        return Ok(ExtensionMap::default());
    }
    if !users.is_object() || js_sys::Array::is_array(&users) {
        return Err(ExtensionMapError::NotAnObject);
    }
    let fields: BTreeMap<String, ExtensionField> = from_js(users).map_err(|_| ExtensionMapError::NotAnObject)?;
    ExtensionMap::from_fields(&fields)
}

/// `onSave`'s argument: `{active, fields: {phones}}` (or the bare fields);
/// also `get_settings()`'s answer, which holds the same keys.
#[derive(Default, Deserialize)]
#[serde(default)]
struct SaveData {
    fields: Option<SaveFields>,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    phones: JsValue,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    users: JsValue,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SaveFields {
    #[serde(with = "serde_wasm_bindgen::preserve")]
    phones: JsValue,
    /// The key callcard's first versions used.
    #[serde(with = "serde_wasm_bindgen::preserve")]
    users: JsValue,
}

impl SaveFields {
    fn of(data: JsValue) -> SaveFields {
        let data: SaveData = from_js(data).unwrap_or_default();
        data.fields.unwrap_or(SaveFields { phones: data.phones, users: data.users })
    }

    /// The extension field's value: `phones`, else the old `users` (a host
    /// still rendering the old field); `undefined` when neither is there.
    fn extensions(&self) -> JsValue {
        if self.phones.is_undefined() {
            self.users.clone()
        } else {
            self.phones.clone()
        }
    }
}

/// The map saved under the old `users` key in the widget's settings, if it
/// maps anyone.
fn saved_under_old_key(widget: &KommoWidget) -> Option<ExtensionMap> {
    let saved = SaveFields::of(widget.settings());
    parse_users(saved.users).ok().filter(|m| !m.is_empty())
}

/// The values to put in the settings page's empty `phones` fields (user id →
/// extension), from the map saved under the old key: none once any field
/// has an extension.
pub fn migrate_fields(fields: &[(u64, String)], old: Option<&ExtensionMap>) -> Vec<(u64, String)> {
    let Some(old) = old else { return Vec::new() };
    if fields.iter().any(|(_, value)| !value.trim().is_empty()) {
        return Vec::new();
    }
    fields.iter().filter_map(|(user, _)| old.extension_of(*user).map(|e| (*user, e.to_owned()))).collect()
}

/// Fills the page's `phones` fields from the old key ([`migrate_fields`]).
/// The fields are found by the host page's markup
/// (`input[data-setting=phones][data-user-id]`); Kommo's own markup for a
/// `users` field is not documented (unconfirmed), and where it differs
/// nothing is filled and `onSave` still sends the old map.
fn fill_migrated_fields(body: &web_sys::Element, widget: &KommoWidget) {
    let Ok(inputs) = body.query_selector_all("input[data-setting=phones][data-user-id]") else { return };
    let inputs: Vec<web_sys::HtmlInputElement> =
        (0..inputs.length()).filter_map(|i| inputs.item(i)?.dyn_into().ok()).collect();
    let fields: Vec<(u64, String)> =
        inputs.iter().filter_map(|i| Some((i.get_attribute("data-user-id")?.parse().ok()?, i.value()))).collect();
    for (user, extension) in migrate_fields(&fields, saved_under_old_key(widget).as_ref()) {
        if let Some(input) = inputs.iter().find(|i| i.get_attribute("data-user-id") == Some(user.to_string())) {
            input.set_value(&extension);
        }
    }
}

#[wasm_bindgen]
extern "C" {
    /// The modal body Kommo hands over: a jQuery object.
    type JQuery;

    #[wasm_bindgen(method, catch)]
    fn get(this: &JQuery, index: u32) -> Result<JsValue, JsValue>;
}

/// A jQuery object or a DOM element, as the DOM element.
fn as_element(value: &JsValue) -> Option<web_sys::Element> {
    if let Some(el) = value.dyn_ref::<web_sys::Element>() {
        return Some(el.clone());
    }
    value.unchecked_ref::<JQuery>().get(0).ok()?.dyn_into::<web_sys::Element>().ok()
}

/// The widget's part of the settings modal: the hint and the connection check.
#[component]
pub fn SettingsPanel(widget: KommoWidget, backend: Backend, texts: Translations) -> impl IntoView {
    let switches = view! { <LogSettingsPanel widget=widget.clone() backend=backend.clone() texts=texts.clone() /> };
    // The connection check, as an action: pending while it asks, then what it found.
    let check = Action::new_local(move |_: &()| {
        let (widget, backend) = (widget.clone(), backend.clone());
        async move { ConnectionCheck::from_answer(backend.status(&widget).await) }
    });
    let checking = check.pending();
    let found = check.value();
    let state = move || if checking.get() { "checking" } else { found.get().map_or("idle", ConnectionCheck::as_str) };
    let message = {
        let texts = texts.clone();
        move || {
            if checking.get() {
                texts.text("settings.checking")
            } else {
                found.get().map(|f| texts.text(f.text_key())).unwrap_or_default()
            }
        }
    };
    view! {
        <div class=PANEL_CLASS>
            <p class=HINT_CLASS>{texts.text("settings.hint")}</p>
            <button type="button" class="button callcard-settings-check"
                aria-describedby="callcard-settings-connection"
                disabled=move || checking.get() on:click=move |_| {
                    check.dispatch_local(());
                }>
                {texts.text("settings.check_connection")}
            </button>
            <p id="callcard-settings-connection" class="callcard-settings-connection" role="status"
                aria-live="polite" data-state=state>
                {message}
            </p>
            {switches}
        </div>
    }
}

/// `settings($modal_body)`: adds the widget's part once per modal.
pub fn render(widget: &KommoWidget, element: &JsValue) {
    let Some(body) = as_element(element) else { return };
    if body.query_selector(&format!(".{PANEL_CLASS}")).ok().flatten().is_some() {
        return;
    }
    fill_migrated_fields(&body, widget);
    let Some(document) = body.owner_document() else { return };
    let Some(container) = document.create_element("div").ok().and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    else {
        return;
    };
    if body.append_child(&container).is_err() {
        return;
    }
    let (widget, texts) = (widget.clone(), Translations::resolve(widget));
    let backend = Backend::from_page();
    let handle = leptos::mount::mount_to(
        container,
        move || view! { <SettingsPanel widget=widget backend=backend texts=texts /> },
    );
    // The previous modal is gone with its panel; this one lives until the next.
    PANEL.with(|p| *p.borrow_mut() = Some(Box::new(handle)));
}

/// `onSave({active, fields})`: whether Kommo may save.
pub fn on_save(widget: &KommoWidget, data: &JsValue) -> bool {
    let users = SaveFields::of(data.clone()).extensions();
    if users.is_undefined() {
        return true;
    }
    match parse_users(users).map(|map| map.or_migrated(saved_under_old_key(widget))) {
        Err(error) => {
            if let Some(n) = Notifications::get() {
                let _ = n.show_message_error(&widget.text("errors.settings_header"), &error_text(&error, widget));
            }
            false
        }
        Ok(map) => {
            let widget = widget.clone();
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(e) = Backend::from_page().save_settings(&widget, map).await {
                    web_sys::console::warn_1(&format!("callcard: settings not sent: {e}").into());
                    if let Some(n) = Notifications::get() {
                        let _ = n.show_message_error(
                            &widget.text("errors.settings_header"),
                            &widget.text("errors.settings_not_saved"),
                        );
                    }
                }
            });
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::texts::English;

    #[test]
    fn the_status_answer_reads_as_a_connection_check() {
        let ok = |text: &str| ConnectionCheck::from_answer(Ok(serde_json::from_str(text).unwrap()));
        let err = |status| ConnectionCheck::from_answer(Err(AjaxError::new(status, "x")));
        assert_eq!(ok(r#"{"backend": "ok", "authorized": true, "needs_reauthorization": false}"#), ConnectionCheck::Ok);
        assert_eq!(
            ok(r#"{"backend": "ok", "authorized": true, "needs_reauthorization": true}"#),
            ConnectionCheck::NotAuthorized
        );
        assert_eq!(
            ok(r#"{"backend": "ok", "authorized": false, "needs_reauthorization": false}"#),
            ConnectionCheck::NotAuthorized
        );
        assert_eq!(ok("{}"), ConnectionCheck::Unknown);
        assert_eq!(err(404), ConnectionCheck::Unknown, "a backend without /widget/status answers");
        assert_eq!(err(401), ConnectionCheck::NotAuthorized);
        assert_eq!(err(403), ConnectionCheck::NotAuthorized);
        assert_eq!(err(0), ConnectionCheck::Unreachable);
        assert_eq!(err(502), ConnectionCheck::Unreachable);
        assert_eq!(ConnectionCheck::Unknown.text_key(), "settings.status_unknown");
        assert_eq!(ConnectionCheck::NotAuthorized.as_str(), "not_authorized");
    }

    #[test]
    fn empty_phones_fields_are_filled_from_the_old_key_once() {
        let old = ExtensionMap::from_entries([("8320148", "101".to_string()), ("8375357", "102".to_string())]).unwrap();
        let empty = [(8320148, String::new()), (8375357, " ".into()), (9, String::new())];
        assert_eq!(
            migrate_fields(&empty, Some(&old)),
            [(8320148, "101".to_string()), (8375357, "102".to_string())],
            "a user the old map lacks stays empty"
        );
        let saved = [(8320148, "201".to_string()), (8375357, String::new())];
        assert!(migrate_fields(&saved, Some(&old)).is_empty(), "phones already saved: left as the admin wrote it");
        assert!(migrate_fields(&empty, None).is_empty());
    }

    #[test]
    fn errors_are_translated_and_escaped() {
        let e = ExtensionMapError::NotDigits { user_id: 1, extension: "<b>1".into() };
        assert_eq!(error_text(&e, &English), "Extension \"&lt;b&gt;1\" must be 1 to 16 digits.");
        let d = ExtensionMapError::Duplicate { extension: "101".into(), user_ids: [1, 2] };
        assert_eq!(error_text(&d, &English), "Extension 101 is given to two users.");
    }
}
