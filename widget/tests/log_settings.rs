//! Browser test of the settings page's call-note switches against the real
//! backend (`widget_test_server`, see `widget/tests/feed.rs` for how to run
//! it): a manager switches sections off, the page is opened again from
//! scratch, and the boxes show what the backend kept, for that manager only.

#![cfg(target_arch = "wasm32")]

use callcard_widget::api::Backend;
use callcard_widget::kommo::KommoWidget;
use callcard_widget::settings::SettingsPanel;
use callcard_widget::texts::Translations;
use leptos::prelude::*;
use serde_json::{json, Value};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SERVER: Option<&str> = option_env!("CALLCARD_TEST_SERVER");
const ANNA: u64 = 8320148;
const BRUNO: u64 = 8375357;

fn server() -> &'static str {
    match SERVER {
        Some(s) => s.trim_end_matches('/'),
        None => panic!(
            "CALLCARD_TEST_SERVER was not set at compile time: run `cargo xtask test`, \
             or start `cargo run -p callcard-e2e --bin widget_test_server` and pass its URL"
        ),
    }
}

fn origin() -> String {
    web_sys::window().unwrap().location().origin().unwrap()
}

async fn post(url: &str, body: &Value) -> Value {
    let response = gloo_net::http::Request::post(url).json(body).unwrap().send().await.expect("test server reachable");
    assert!(response.ok(), "{url}: HTTP {} {}", response.status(), response.text().await.unwrap_or_default());
    response.json().await.unwrap_or(Value::Null)
}

/// A fake Kommo `self` for `user`, whose `$authorizedAjax` sends a real
/// one-time token of the test account (jQuery-like rejections).
fn kommo_self(account: u64, user: u64) -> KommoWidget {
    let js = format!(
        r#"
        window.APP = {{
            notifications: {{ show_message: function () {{}}, show_message_error: function () {{}} }},
            constant: function (k) {{ return k === 'user' ? {{ id: {user} }} : {{}}; }},
        }};
        const tokenUrl = '{server}/test/accounts/{account}/token';
        ({{
            get_settings: function () {{ return {{}}; }},
            i18n: function () {{ return undefined; }},
            $authorizedAjax: function (opts) {{
                return fetch(tokenUrl, {{ method: 'POST', headers: {{ 'Content-Type': 'application/json' }},
                                         body: JSON.stringify({{ user_id: {user} }}) }})
                    .then(function (r) {{ return r.json(); }})
                    .then(function (t) {{
                        const headers = {{ 'X-Auth-Token': t.token }};
                        if (opts.data) headers['Content-Type'] = opts.contentType || 'application/json';
                        return fetch(opts.url, {{ method: opts.method || 'GET', headers: headers, body: opts.data }});
                    }})
                    .then(function (r) {{
                        return r.text().then(function (text) {{
                            let parsed = null;
                            try {{ parsed = text ? JSON.parse(text) : null; }} catch (e) {{}}
                            if (!r.ok) throw {{ status: r.status, responseText: text, responseJSON: parsed }};
                            return parsed;
                        }});
                    }}, function (e) {{ throw {{ status: 0, statusText: String(e) }}; }});
            }},
        }})
        "#,
        server = server(),
    );
    KommoWidget::new(js_sys::eval(&js).expect("fake Kommo self"))
}

/// The settings page's part, opened for `user` as Kommo would open it.
struct SettingsPage {
    root: web_sys::HtmlElement,
    /// Unmounts the view when the page is dropped.
    _mounted: Box<dyn std::any::Any>,
}

impl SettingsPage {
    async fn open(account: u64, backend: &str, user: u64) -> SettingsPage {
        let widget = kommo_self(account, user);
        let document = web_sys::window().unwrap().document().unwrap();
        let root: web_sys::HtmlElement = document.create_element("div").unwrap().unchecked_into();
        document.body().unwrap().append_child(&root).unwrap();
        let backend = Backend::new(backend, &origin());
        let texts = Translations::resolve(&widget);
        let mounted = leptos::mount::mount_to(
            root.clone(),
            move || view! { <SettingsPanel widget=widget backend=backend texts=texts /> },
        );
        let page = SettingsPage { root, _mounted: Box::new(mounted) };
        page.wait_for(&["ready"]).await;
        page
    }

    /// Waits until the switches' `data-state` is one of `states`.
    async fn wait_for(&self, states: &[&str]) {
        let mut waited = 0;
        loop {
            leptos::task::tick().await;
            let state = self.state();
            if states.contains(&state.as_str()) {
                return;
            }
            assert!(state != "failed" || states.contains(&"failed"), "failed: {}", self.status_text());
            assert!(waited < 10_000, "still {state} after 10 s, waiting for {states:?}");
            gloo_timers::future::TimeoutFuture::new(20).await;
            waited += 20;
        }
    }

    fn state(&self) -> String {
        self.root
            .query_selector(".callcard-log-settings")
            .unwrap()
            .expect("the switches")
            .get_attribute("data-state")
            .unwrap_or_default()
    }

    fn status_text(&self) -> String {
        self.root
            .query_selector("#callcard-log-status[role=status]")
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap_or_default()
    }

    fn checkbox(&self, id: &str) -> web_sys::HtmlInputElement {
        self.root.query_selector(&format!("#{id}")).unwrap().unwrap_or_else(|| panic!("#{id}")).unchecked_into()
    }

    /// Which of the manager's own boxes are ticked, by section.
    fn mine(&self) -> Vec<(String, bool)> {
        let boxes = self.root.query_selector_all("#callcard-log-mine input[type=checkbox]").unwrap();
        (0..boxes.length())
            .map(|i| {
                let b: web_sys::HtmlInputElement = boxes.item(i).unwrap().unchecked_into();
                (b.get_attribute("data-section").unwrap(), b.checked())
            })
            .collect()
    }

    /// Clicks a box (as a person does: it toggles and fires `change`) and
    /// waits for the backend's answer.
    async fn click(&self, id: &str) {
        let b = self.checkbox(id);
        assert!(!b.disabled(), "#{id} is usable");
        b.click();
        self.wait_for(&["saved", "failed"]).await;
    }

    fn close(self) {
        self.root.remove();
    }
}

fn all_on() -> Vec<(String, bool)> {
    ["agent_note", "duration", "result", "recording", "transcript", "ai_summary"]
        .into_iter()
        .map(|s| (s.to_owned(), true))
        .collect()
}

fn with_off(off: &[&str]) -> Vec<(String, bool)> {
    all_on().into_iter().map(|(s, _)| (s.clone(), !off.contains(&s.as_str()))).collect()
}

#[wasm_bindgen_test]
async fn switches_a_manager_saves_are_there_after_a_reload_and_only_for_them() {
    let answer = post(&format!("{}/test/accounts", server()), &json!({"origin": origin()})).await;
    let account = answer["account_id"].as_u64().unwrap();
    let backend = answer["backend"].as_str().unwrap().to_owned();

    let page = SettingsPage::open(account, &backend, ANNA).await;
    assert_eq!(page.mine(), all_on(), "a new account writes every section");
    assert!(page.checkbox("callcard-log-reset").disabled(), "nothing to reset yet");
    page.click("callcard-log-mine-transcript").await;
    assert_eq!(page.state(), "saved", "{}", page.status_text());
    assert_eq!(page.status_text(), "Saved.");
    page.click("callcard-log-mine-recording").await;
    assert_eq!(page.mine(), with_off(&["transcript", "recording"]));
    page.close();

    // Opened again from scratch: the boxes come from the backend.
    let page = SettingsPage::open(account, &backend, ANNA).await;
    assert_eq!(page.mine(), with_off(&["transcript", "recording"]), "kept across a reload");
    assert!(page.checkbox("callcard-log-account-transcript").checked(), "the account's default is untouched");
    page.close();

    // Another manager of the account still gets every section.
    let page = SettingsPage::open(account, &backend, BRUNO).await;
    assert_eq!(page.mine(), all_on(), "one manager's switches are theirs alone");
    page.close();

    // Back to the account's defaults, and that is kept too.
    let page = SettingsPage::open(account, &backend, ANNA).await;
    page.click("callcard-log-reset").await;
    assert_eq!(page.mine(), all_on());
    page.close();
    let page = SettingsPage::open(account, &backend, ANNA).await;
    assert_eq!(page.mine(), all_on(), "the reset is kept");
    page.close();
}

#[wasm_bindgen_test]
async fn a_manager_who_is_no_admin_is_told_the_defaults_are_an_admins() {
    // The test server has no Kommo to confirm anyone's rights: the backend
    // refuses the account defaults, and the box goes back to what it holds.
    let answer = post(&format!("{}/test/accounts", server()), &json!({"origin": origin()})).await;
    let account = answer["account_id"].as_u64().unwrap();
    let backend = answer["backend"].as_str().unwrap().to_owned();
    let page = SettingsPage::open(account, &backend, ANNA).await;
    page.click("callcard-log-account-duration").await;
    assert_eq!(page.state(), "failed");
    assert!(page.checkbox("callcard-log-account-duration").checked(), "the box shows what the backend holds");
    page.close();
    let page = SettingsPage::open(account, &backend, ANNA).await;
    assert!(page.checkbox("callcard-log-account-duration").checked(), "nothing was changed");
    page.close();
}
