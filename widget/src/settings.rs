//! The settings page: a hint under Kommo's `users` field, and `onSave`.
//!
//! `onSave` must answer synchronously, so it validates the extensions with
//! [`ExtensionMap`] (digits only, no extension twice) and refuses bad input
//! with an error message; good input is accepted at once and sent to the
//! backend (`PUT /widget/settings`) in the background, with an error
//! message if that fails.

use crate::api::Backend;
use crate::escape::escape_html;
use crate::kommo::{call_method, prop, KommoWidget, Notifications};
use crate::texts::Texts;
use callcard_calls::extensions::{ExtensionMap, ExtensionMapError};
use wasm_bindgen::{JsCast, JsValue};

/// The class of the hint element added to the settings modal.
pub const HINT_CLASS: &str = "callcard-settings-hint";

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

/// `settings($modal_body)`: adds the hint once.
pub fn render_hint(widget: &KommoWidget, element: &JsValue) {
    let Some(body) = as_element(element) else { return };
    if body.query_selector(&format!(".{HINT_CLASS}")).ok().flatten().is_some() {
        return;
    }
    let Some(document) = body.owner_document() else { return };
    if let Ok(hint) = document.create_element("p") {
        hint.set_class_name(HINT_CLASS);
        hint.set_text_content(Some(&widget.text("settings.hint")));
        let _ = body.append_child(&hint);
    }
}

/// `onSave({active, fields})`: whether Kommo may save.
pub fn on_save(widget: &KommoWidget, data: &JsValue) -> bool {
    let users = users_field(data);
    if users.is_undefined() {
        return true;
    }
    let value: serde_json::Value = serde_wasm_bindgen::from_value(users).unwrap_or(serde_json::Value::Null);
    match ExtensionMap::parse(&value) {
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
    fn errors_are_translated_and_escaped() {
        let e = ExtensionMapError::NotDigits { user_id: 1, extension: "<b>1".into() };
        assert_eq!(error_text(&e, &English), "Extension \"&lt;b&gt;1\" must be 1 to 16 digits.");
        let d = ExtensionMapError::Duplicate { extension: "101".into(), user_ids: [1, 2] };
        assert_eq!(error_text(&d, &English), "Extension 101 is given to two users.");
    }
}
