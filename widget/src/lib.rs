//! # callcard-widget
//!
//! The callcard widget: Leptos (client-side rendering) compiled to wasm and
//! loaded into Kommo by `www/script.js`, which forwards Kommo's widget
//! callbacks to the exports below (contract: `docs/design.md`).
//!
//! Layout, one concept per file. Pure rules (unit-tested natively):
//!
//! - [`escape`]: HTML escaping of CRM/PBX strings, safe recording links,
//!   percent-encoded query values.
//! - [`texts`]: i18n keys with English fallbacks, `{placeholder}` filling,
//!   the key naming each record kind.
//! - [`notification`]: the `show_notification` / `add_call` payloads.
//! - [`ledger`]: which notices are due, exactly once per call.
//! - [`backoff`]: reconnect delays with jitter; when to poll.
//! - [`cursor`]: feed offsets, repeats, gaps.
//! - [`feed_state`]: `connecting | live | polling | offline`.
//! - [`summary`]: the Call summary draft → `CallResult`, and its queue.
//! - [`outbox`]: unsent call results (the storage part needs a browser).
//! - [`drafts`]: an open Call summary's fields, kept across reloads.
//! - [`search`]: record search answers (the fetch needs a browser);
//!   [`directory`]: the account's users and lead statuses.
//! - [`report`]: "Saving…" → "Logged on …" or the failure, per saved summary.
//!
//! Every shape read or written is a serde type, the ones shared with the
//! backend defined once in `callcard_calls`. Browser parts (compile natively,
//! run in a browser):
//!
//! - [`convert`]: serde types to and from JS values (serde-wasm-bindgen) and
//!   JSON text (the browser's `JSON`; no serde_json in the bundle);
//!   [`local_storage`]: the widget's `localStorage` entries.
//! - [`kommo`]: typed `#[wasm_bindgen]` bindings to Kommo's `self` and
//!   `APP.notifications`.
//! - [`api`]: the backend's routes (URLs are pure and tested), over
//!   `$authorizedAjax` and gloo-net.
//! - [`local_time`]: `datetime-local` values and due dates by the browser's
//!   clock and time zone.
//! - [`announcer`]: the ledger in `localStorage`, calling `APP.notifications`.
//! - [`feed`]: ticket, WebSocket, polling fallback, resync.
//! - [`leader`]: one feed per browser via Web Locks; [`tabs`]: the
//!   `BroadcastChannel` between tabs.
//! - [`session`]: mount/unmount, the lifecycle behind `init`/`destroy`.
//! - [`settings`]: the settings page (hint, connection check) and `onSave`;
//!   [`log_settings`]: its call-note switches, per user and account.
//! - [`modal`]: Kommo's `lib/components/base/modal`.
//! - [`dial`]: click-to-call, Kommo's `phone` action.
//! - [`app`]: the root view; [`summary_view`]: the Call summary modal;
//!   [`report_view`]: the messages about saved and cancelled summaries.

pub mod announcer;
pub mod api;
pub mod app;
pub mod backoff;
pub mod convert;
pub mod cursor;
pub mod dial;
pub mod directory;
pub mod drafts;
pub mod escape;
pub mod feed;
pub mod feed_state;
pub mod kommo;
pub mod leader;
pub mod ledger;
pub mod local_storage;
pub mod local_time;
pub mod log_settings;
pub mod modal;
pub mod notification;
pub mod outbox;
pub mod report;
pub mod report_view;
pub mod search;
pub mod session;
pub mod settings;
pub mod summary;
pub mod summary_view;
pub mod tabs;
pub mod texts;

use wasm_bindgen::prelude::*;

fn install_panic_hook() {
    use std::sync::Once;
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            web_sys::console::error_1(&format!("callcard panicked: {info}").into());
        }));
    });
}

/// Kommo's `init`: mounts the root once and starts the call feed.
#[wasm_bindgen]
pub fn widget_init(self_: JsValue) {
    install_panic_hook();
    session::init(self_);
}

/// Kommo's modal constructor (`lib/components/base/modal`), which script.js
/// requires and hands over before `init`; the Call summary opens in it.
#[wasm_bindgen]
pub fn widget_modal(constructor: JsValue) {
    modal::register(constructor);
}

/// Kommo's `phone` action (`self.add_action('phone', fn)`, registered by
/// script.js in `init`): `data` is `{value: "<the clicked number>"}`; asks
/// the backend to place the call ([`dial`]).
#[wasm_bindgen]
pub fn widget_phone(self_: JsValue, data: JsValue) {
    install_panic_hook();
    let action = convert::from_js::<dial::PhoneAction>(data).unwrap_or_default();
    wasm_bindgen_futures::spawn_local(dial::call(kommo::KommoWidget::new(self_), action));
}

/// Kommo's `bind_actions`: nothing to bind yet; keeps `self` current.
#[wasm_bindgen]
pub fn widget_bind_actions(self_: JsValue) {
    session::refresh(&self_);
}

/// Kommo's `settings($modal_body)`: adds the widget's part (the extensions
/// hint and "check connection") to the modal. `element` may be the jQuery
/// object or a DOM element.
#[wasm_bindgen]
pub fn widget_settings(self_: JsValue, element: JsValue) {
    install_panic_hook();
    settings::render(&kommo::KommoWidget::new(self_), &element);
}

/// Kommo's `onSave({active, fields})`: validates the extensions; `false`
/// refuses the save (with an error message).
#[wasm_bindgen]
pub fn widget_on_save(self_: JsValue, data: JsValue) -> bool {
    install_panic_hook();
    settings::on_save(&kommo::KommoWidget::new(self_), &data)
}

/// Kommo's `destroy`: closes the feed and removes everything the widget added.
#[wasm_bindgen]
pub fn widget_destroy(_self_: JsValue) {
    session::destroy();
}
