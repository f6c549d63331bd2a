//! The settings page, and `onSave`.
//!
//! Kommo renders the `users` setting itself (one extension field per user);
//! the widget's `settings` callback adds its part below it
//! ([`render`]): a hint about extensions and a **check connection** action,
//! which asks the backend's `GET /widget/status` (through `$authorizedAjax`,
//! so with the one-time token) whether it is reachable and has this account
//! authorized, and says so in a status line ([`ConnectionCheck`]).
//!
//! `onSave` must answer synchronously, so it validates the extensions by the
//! rules of `callcard_calls::extensions::ExtensionMap` ([`parse_users`]:
//! digits only, no extension twice) and refuses bad input
//! with an error message; good input is accepted at once and sent to the
//! backend (`PUT /widget/settings`) in the background, with an error
//! message if that fails.
//!
//! Markup: `.callcard-settings` holding `p.callcard-settings-hint`,
//! `button.callcard-settings-check`, and
//! `#callcard-settings-connection[role=status][data-state=idle|checking|ok|not_authorized|unknown|unreachable]`.

use crate::api::Backend;
use crate::escape::escape_html;
use crate::json::{self, Json};
use crate::kommo::{call_method, from_js, prop, AjaxError, KommoWidget, Notifications};
use crate::texts::{Texts, Translations};
use callcard_calls::extensions::{ExtensionMap, ExtensionMapError};
use leptos::prelude::*;
use std::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};

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
    /// Reads `GET /widget/status`'s answer
    /// (`{"backend":"ok","authorized":bool,"needs_reauthorization":bool}`) or error.
    pub fn from_answer(answer: Result<Json, AjaxError>) -> Self {
        match answer {
            Ok(v) => {
                let authorized = v.get("authorized").and_then(Json::as_bool);
                let reauthorize = v.get("needs_reauthorization").and_then(Json::as_bool).unwrap_or(false);
                match authorized {
                    Some(true) if !reauthorize => Self::Ok,
                    Some(_) => Self::NotAuthorized,
                    None if reauthorize => Self::NotAuthorized,
                    None => Self::Unknown,
                }
            }
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

/// The `users` setting, validated by `ExtensionMap::from_entries`, the
/// rules `ExtensionMap::parse` applies on the backend (unit tests compare
/// the two): `{"<user_id>": "<extension>"}` or a JSON string of it; empty
/// extensions are left out. The users come back in id order. A number that
/// is not an integer is shown in the refusal as written, where serde_json
/// would print it again (`-0` as `-0.0`); both refuse it alike.
///
/// Only the reading of the JSON is the widget's own: `ExtensionMap::parse`
/// takes a `serde_json::Value`, which would bring serde_json's parser and
/// printer back into the bundle (measured: +20 KB gzipped).
pub fn parse_users(value: &Json) -> Result<Vec<(u64, String)>, ExtensionMapError> {
    let parsed;
    let object = match value {
        Json::Obj(o) => o,
        Json::Str(s) if s.trim().is_empty() => return Ok(Vec::new()),
        Json::Str(s) => {
            parsed = json::parse(s).ok_or(ExtensionMapError::NotAnObject)?;
            match &parsed {
                Json::Obj(o) => o,
                _ => return Err(ExtensionMapError::NotAnObject),
            }
        }
        Json::Null => return Ok(Vec::new()),
        _ => return Err(ExtensionMapError::NotAnObject),
    };
    let entries = json::map_order(object).into_iter().map(|(key, ext)| {
        let extension = match ext {
            Json::Str(s) => s.clone(),
            Json::Null => String::new(),
            other => json::to_text(other),
        };
        (key.as_str(), extension)
    });
    let map = ExtensionMap::from_entries(entries)?;
    Ok(map.iter().map(|(user_id, extension)| (user_id, extension.to_owned())).collect())
}

/// The `users` setting out of `onSave`'s `{active, fields}` (or the bare fields).
fn users_field(data: &JsValue) -> JsValue {
    let fields = prop(data, "fields");
    let fields = if fields.is_object() { fields } else { data.clone() };
    prop(&fields, "users")
}

/// A jQuery object or a DOM element, as the DOM element.
fn as_element(value: &JsValue) -> Option<web_sys::Element> {
    if let Some(el) = value.dyn_ref::<web_sys::Element>() {
        return Some(el.clone());
    }
    let first = call_method(value, "get", &[JsValue::from_f64(0.0)]).unwrap_or_else(|_| prop(value, "0"));
    first.dyn_into::<web_sys::Element>().ok()
}

/// The widget's part of the settings modal: the hint and the connection check.
#[component]
pub fn SettingsPanel(widget: KommoWidget, texts: Translations) -> impl IntoView {
    let found = RwSignal::new(None::<ConnectionCheck>);
    let checking = RwSignal::new(false);
    let check = move |_| {
        if checking.get_untracked() {
            return;
        }
        checking.set(true);
        let widget = widget.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let answer = Backend::from_page().status(&widget).await;
            found.set(Some(ConnectionCheck::from_answer(answer)));
            checking.set(false);
        });
    };
    let state = move || {
        if checking.get() {
            "checking"
        } else {
            found.get().map_or("idle", ConnectionCheck::as_str)
        }
    };
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
                disabled=move || checking.get() on:click=check>
                {texts.text("settings.check_connection")}
            </button>
            <p id="callcard-settings-connection" class="callcard-settings-connection" role="status"
                aria-live="polite" data-state=state>
                {message}
            </p>
        </div>
    }
}

/// `settings($modal_body)`: adds the widget's part once per modal.
pub fn render(widget: &KommoWidget, element: &JsValue) {
    let Some(body) = as_element(element) else { return };
    if body.query_selector(&format!(".{PANEL_CLASS}")).ok().flatten().is_some() {
        return;
    }
    let Some(document) = body.owner_document() else { return };
    let Some(container) = document.create_element("div").ok().and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    else {
        return;
    };
    if body.append_child(&container).is_err() {
        return;
    }
    let (widget, texts) = (widget.clone(), Translations::resolve(widget));
    let handle = leptos::mount::mount_to(container, move || view! { <SettingsPanel widget=widget texts=texts /> });
    // The previous modal is gone with its panel; this one lives until the next.
    PANEL.with(|p| *p.borrow_mut() = Some(Box::new(handle)));
}

/// `onSave({active, fields})`: whether Kommo may save.
pub fn on_save(widget: &KommoWidget, data: &JsValue) -> bool {
    let users = users_field(data);
    if users.is_undefined() {
        return true;
    }
    match parse_users(&from_js(&users)) {
        Err(error) => {
            if let Some(n) = Notifications::get() {
                let _ = n.show_message_error(&widget.text("errors.settings_header"), &error_text(&error, widget));
            }
            false
        }
        Ok(map) => {
            let widget = widget.clone();
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(e) = Backend::from_page().save_settings(&widget, &map).await {
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
        let ok = |text: &str| ConnectionCheck::from_answer(Ok(json::parse(text).unwrap()));
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
        assert_eq!(ok("null"), ConnectionCheck::Unknown);
        assert_eq!(err(404), ConnectionCheck::Unknown, "a backend without /widget/status answers");
        assert_eq!(err(401), ConnectionCheck::NotAuthorized);
        assert_eq!(err(403), ConnectionCheck::NotAuthorized);
        assert_eq!(err(0), ConnectionCheck::Unreachable);
        assert_eq!(err(502), ConnectionCheck::Unreachable);
        assert_eq!(ConnectionCheck::Unknown.text_key(), "settings.status_unknown");
        assert_eq!(ConnectionCheck::NotAuthorized.as_str(), "not_authorized");
    }

    #[test]
    fn users_are_validated_as_the_extension_map_validates_them() {
        use callcard_calls::extensions::ExtensionMap;
        let cases = [
            r#"{"8320148": "101", "8375357": " 102 "}"#,
            r#"{"1": "101", "2": "101"}"#,
            r#"{"3": "7", "1": "101", "2": "101", "10": "101"}"#,
            r#"{"1": "<b>1</b>"}"#,
            r#"{"1": "", "2": null, "3": "  "}"#,
            r#"{"x": "101"}"#,
            r#"{" 5 ": "101", "+6": "102"}"#,
            r#"{"5": "101", "05": "102", "7": "101"}"#,
            r#"{"5": "101", "5": "102"}"#,
            r#"{"1": 101, "3": 1.5}"#,
            r#"{"1": 12345678901234567}"#,
            r#"{"1": true}"#,
            r#"{"1": [1, "2"]}"#,
            r#"{"1": {"b": 1, "a": "x"}}"#,
            r#"{"2": "abc", "1": "def"}"#,
            r#"{"b": "1", "a": "2"}"#,
            r#"{"1": "12345678901234567"}"#,
            r#""{\"8320148\":\"101\",\"8375357\":\"102\"}""#,
            r#""  ""#,
            r#""[1]""#,
            r#""{\"1\": \"5\", \"2\": \"5\"}""#,
            r#""not json""#,
            r#"null"#,
            r#"[]"#,
            r#"7"#,
            r#"{}"#,
        ];
        for text in cases {
            let theirs = ExtensionMap::parse(&serde_json::from_str(text).expect(text))
                .map(|m| m.iter().map(|(u, e)| (u, e.to_owned())).collect::<Vec<_>>());
            assert_eq!(parse_users(&json::parse(text).unwrap()), theirs, "{text}");
        }
    }

    #[test]
    fn errors_are_translated_and_escaped() {
        let e = ExtensionMapError::NotDigits { user_id: 1, extension: "<b>1".into() };
        assert_eq!(error_text(&e, &English), "Extension \"&lt;b&gt;1\" must be 1 to 16 digits.");
        let d = ExtensionMapError::Duplicate { extension: "101".into(), user_ids: [1, 2] };
        assert_eq!(error_text(&d, &English), "Extension 101 is given to two users.");
    }
}
