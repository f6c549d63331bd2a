//! Browser tests: a fake Kommo page (`APP`, the widget's `self`) records what
//! the widget does, through the real exports and the real notification path.
//!
//! Run with `wasm-pack test --headless --chrome --mode no-install` (and
//! `--firefox` with `GECKODRIVER` set) in `widget/`; one browser per run.
//! Not covered here: the feed against a real backend (socket, polling,
//! resync), which needs a local server.

#![cfg(target_arch = "wasm32")]

use callcard_calls::feed::{CallView, CallerId};
use callcard_calls::{Call, CallEvent, CallEventKind, Direction, EntityKind, EntityRef, Outcome};
use callcard_widget::announcer::{storage_key, Announcer};
use callcard_widget::kommo::KommoWidget;
use callcard_widget::ledger::Notice;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// `obj[key]` (the tests read what the widget handed to the fake Kommo).
fn prop(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

const ME: u64 = 8320148;

/// Installs `window.APP` and `window.fakeSelf`; calls land in `window.calls`
/// (`[method, arg]`), ajax options in `window.ajax`.
fn install_fakes(ajax_answer: &str) -> JsValue {
    let js = format!(
        r#"
        window.calls = [];
        window.ajax = [];
        const record = (name) => function (arg) {{ window.calls.push([name, arg]); }};
        window.APP = {{
            notifications: {{
                show_notification: record('show_notification'),
                add_call: record('add_call'),
                show_message: record('show_message'),
                show_message_error: record('show_message_error'),
            }},
            constant: function (k) {{ return k === 'user' ? {{ id: {ME} }} : {{}}; }},
        }};
        window.fakeSelf = {{
            get_settings: function () {{ return {{ path: '/upl/callcard/widget', version: '0.1.0' }}; }},
            i18n: function (group) {{
                return ({{
                    call: {{
                        incoming: 'Llamada entrante',
                        header_incoming: 'Llamada entrante: {{number}}',
                        completed_from: 'Llamada de {{name}}',
                        go_to_card: 'Ir a la ficha del contacto',
                    }},
                    widget: {{ name: 'Callcard' }},
                }})[group];
            }},
            $authorizedAjax: function (opts) {{ window.ajax.push(opts); return {ajax_answer}; }},
        }};
        window.fakeSelf
        "#
    );
    js_sys::eval(&js).expect("fakes install")
}

fn recorded() -> Vec<(String, JsValue)> {
    let calls: js_sys::Array = prop(&js_sys::global(), "calls").into();
    calls
        .iter()
        .map(|c| {
            let pair: js_sys::Array = c.into();
            (pair.get(0).as_string().unwrap(), pair.get(1))
        })
        .collect()
}

fn text_at(obj: &JsValue, path: &str) -> Option<String> {
    let mut node = obj.clone();
    for part in path.split('.') {
        node = prop(&node, part);
    }
    node.as_string()
}

fn num_at(obj: &JsValue, path: &str) -> Option<f64> {
    let mut node = obj.clone();
    for part in path.split('.') {
        node = prop(&node, part);
    }
    node.as_f64()
}

fn call(id: &str, number: &str, kinds: &[CallEventKind]) -> CallView {
    call_towards(Direction::Inbound, id, number, kinds)
}

fn call_towards(direction: Direction, id: &str, number: &str, kinds: &[CallEventKind]) -> CallView {
    let mut at = js_sys::Date::now() as i64 - 30_000;
    let mut call: Option<Call> = None;
    for kind in kinds {
        let e = CallEvent {
            kind: kind.clone(),
            call_id: id.into(),
            direction,
            external_number: number.into(),
            extension: "101".into(),
            occurred_at: at,
        };
        at += 5_000;
        match &mut call {
            None => call = Some(Call::from_event(&e)),
            Some(c) => {
                c.apply(&e);
            }
        }
    }
    CallView::new(call.unwrap(), Some(ME))
}

fn clear_ledger() {
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    storage.remove_item(&storage_key(ME)).unwrap();
}

#[wasm_bindgen_test]
fn a_ringing_call_pops_up_once_with_the_name_escaped() {
    let this = install_fakes("Promise.reject({status: 503})");
    clear_ledger();
    let widget = KommoWidget::new(this);
    let mut announcer = Announcer::new(ME, None);
    let mut v = call("ring-1", "+18305703077", &[CallEventKind::Ringing]);
    v.caller = CallerId::known("<img src=x onerror=alert(1)>Eve", EntityRef::new(EntityKind::Contact, 9));
    assert_eq!(announcer.announce(&v, &widget), vec![Notice::Ringing]);
    assert_eq!(announcer.announce(&v, &widget), vec![]);
    // Another tab (a fresh announcer reading localStorage) stays quiet too.
    assert_eq!(Announcer::new(ME, None).announce(&v, &widget), vec![]);

    let calls = recorded();
    assert_eq!(calls.len(), 1, "exactly one pop-up");
    let (method, arg) = &calls[0];
    assert_eq!(method, "show_notification");
    assert_eq!(text_at(arg, "type").as_deref(), Some("call"));
    assert_eq!(text_at(arg, "text.header").as_deref(), Some("Llamada entrante"));
    // The text ends with the call's invisible mark (for withdrawing it).
    let expected = format!(
        "<a class=\"callcard-record\" href=\"/contacts/detail/9\" data-kind=\"contact\">\
         &lt;img src=x onerror=alert(1)&gt;Eve</a> · Contact · +18305703077{}",
        callcard_widget::announcer::popup_marker("ring-1")
    );
    assert_eq!(text_at(arg, "text.text").as_deref(), Some(expected.as_str()));
}

/// The text of the `index`th recorded call, as the host page renders it (HTML).
fn rendered_text(index: usize) -> web_sys::Element {
    let document = web_sys::window().unwrap().document().unwrap();
    let probe = document.create_element("div").unwrap();
    probe.set_inner_html(&text_at(&recorded()[index].1, "text.text").unwrap());
    probe
}

#[wasm_bindgen_test]
fn caller_id_arriving_after_the_first_pop_up_names_the_caller() {
    let this = install_fakes("Promise.reject({status: 503})");
    clear_ledger();
    let widget = KommoWidget::new(this);
    let mut announcer = Announcer::new(ME, None);
    // A cold cache: the first push has only the number.
    let mut v = call("named-1", "+1 830 570 3077", &[CallEventKind::Ringing]);
    assert_eq!(announcer.announce(&v, &widget), vec![Notice::Ringing]);
    let first = format!("+1 830 570 3077{}", callcard_widget::announcer::popup_marker("named-1"));
    assert_eq!(text_at(&recorded()[0].1, "text.text").as_deref(), Some(first.as_str()));
    // Caller ID answers a moment later, while it still rings.
    v.caller = CallerId::known("Maria Gonzalez", EntityRef::new(EntityKind::Contact, 31));
    assert_eq!(announcer.announce(&v, &widget), vec![Notice::Identified]);
    assert_eq!(announcer.announce(&v, &widget), vec![], "named once");
    let calls = recorded();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].0, "show_notification");
    assert_eq!(text_at(&calls[1].1, "text.header").as_deref(), Some("Llamada entrante"));
    let card = rendered_text(1);
    assert_eq!(card.text_content().as_deref(), Some("Maria Gonzalez · Contact · +1 830 570 3077"));
    let link = card.query_selector("a").unwrap().expect("the name links to the card");
    assert_eq!(link.get_attribute("href").as_deref(), Some("/contacts/detail/31"));
    assert_eq!(link.text_content().as_deref(), Some("Maria Gonzalez"));
}

#[wasm_bindgen_test]
fn the_first_pop_up_names_the_person_and_the_lead_the_caller_index_found() {
    let this = install_fakes("Promise.reject({status: 503})");
    clear_ledger();
    let widget = KommoWidget::new(this);
    let mut v = call("named-first", "+1 830 570 3077", &[CallEventKind::Ringing]);
    // The local caller index answered before the first push: the contact, her
    // company and her lead.
    v.caller = CallerId::Known {
        name: "Website redesign".into(),
        entity: EntityRef::new(EntityKind::Lead, 41),
        holder: Some(callcard_calls::feed::CallerHolder {
            entity: EntityRef::new(EntityKind::Contact, 31),
            name: "Maria Gonzalez".into(),
        }),
        company: Some(callcard_calls::feed::CallerHolder {
            entity: EntityRef::new(EntityKind::Company, 32),
            name: "Gonzalez Design Studio".into(),
        }),
        deal: Some(callcard_calls::feed::CallerDeal { status_id: 20, pipeline_id: 3, responsible_user_id: 7 }),
    };
    assert_eq!(Announcer::new(ME, None).announce(&v, &widget), vec![Notice::Ringing]);
    assert_eq!(recorded().len(), 1, "named on the first pop-up, nothing more");
    let card = rendered_text(0);
    assert_eq!(
        card.text_content().as_deref(),
        Some("Maria Gonzalez · Gonzalez Design Studio · Contact · +1 830 570 3077 · Website redesign · Lead"),
        "the person and her company first, not the lead's name"
    );
    let links: Vec<(String, String)> = {
        let list = card.query_selector_all("a.callcard-record").unwrap();
        (0..list.length())
            .map(|i| {
                let a: web_sys::Element = list.item(i).unwrap().unchecked_into();
                (a.text_content().unwrap_or_default(), a.get_attribute("href").unwrap_or_default())
            })
            .collect()
    };
    assert_eq!(
        links,
        [
            ("Maria Gonzalez".to_owned(), "/contacts/detail/31".to_owned()),
            ("Gonzalez Design Studio".to_owned(), "/companies/detail/32".to_owned()),
            ("Website redesign".to_owned(), "/leads/detail/41".to_owned())
        ],
        "each opens its card"
    );
}

#[wasm_bindgen_test]
fn an_unknown_caller_is_said_to_be_unknown_and_offered_a_contact() {
    let this = install_fakes("Promise.reject({status: 503})");
    clear_ledger();
    let widget = KommoWidget::new(this);
    let mut v = call("unknown-ring-1", "+44 20 7946 0958", &[CallEventKind::Ringing]);
    v.caller = CallerId::Unknown;
    assert_eq!(Announcer::new(ME, None).announce(&v, &widget), vec![Notice::Ringing]);
    assert_eq!(recorded().len(), 1, "caller ID was already there: one pop-up");
    let card = rendered_text(0);
    assert_eq!(card.text_content().as_deref(), Some("Unknown number +44 20 7946 0958 Create contact"));
    let link = card.query_selector("a").unwrap().expect("a Create contact link");
    assert_eq!(link.get_attribute("href").as_deref(), Some("/contacts/add/?phone=%2B44%2020%207946%200958"));
}

#[wasm_bindgen_test]
fn an_ended_call_is_added_once_in_kommos_shape() {
    let this = install_fakes("Promise.reject({status: 503})");
    clear_ledger();
    let widget = KommoWidget::new(this);
    let opened = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = opened.clone();
    let mut announcer = Announcer::new(ME, Some(std::rc::Rc::new(move |_v: &CallView| seen.set(seen.get() + 1))));
    let mut v = call(
        "end-1",
        "\"><script>x</script>",
        &[
            CallEventKind::Ringing,
            CallEventKind::Answered,
            CallEventKind::Ended { duration: 42, outcome: Outcome::Answered },
            CallEventKind::RecordingReady { recording_url: "https://pbx.example/r/1.mp3".into() },
        ],
    );
    v.entity = Some(EntityRef::new(EntityKind::Lead, 5));
    assert_eq!(announcer.announce(&v, &widget), vec![Notice::Completed, Notice::Summary]);
    assert_eq!(announcer.announce(&v, &widget), vec![]);
    assert_eq!(opened.get(), 1, "the summary opens once");

    let calls = recorded();
    assert_eq!(calls.len(), 1);
    let (method, arg) = &calls[0];
    assert_eq!(method, "add_call");
    assert_eq!(text_at(arg, "from").as_deref(), Some("&quot;&gt;&lt;script&gt;x&lt;/script&gt;"));
    assert_eq!(text_at(arg, "header").as_deref(), Some("Llamada entrante: &quot;&gt;&lt;script&gt;x&lt;/script&gt;"));
    assert_eq!(text_at(arg, "to").as_deref(), Some("101"));
    assert_eq!(num_at(arg, "duration"), Some(42.0));
    assert_eq!(text_at(arg, "link").as_deref(), Some("https://pbx.example/r/1.mp3"));
    assert_eq!(num_at(arg, "element.id"), Some(5.0));
    assert_eq!(text_at(arg, "element.type").as_deref(), Some("lead"));
    assert_eq!(
        text_at(arg, "text").as_deref(),
        Some(
            "Callcard: Llamada de &quot;&gt;&lt;script&gt;x&lt;/script&gt; \
             <a class=\"callcard-record\" href=\"/leads/detail/5\" data-kind=\"lead\">Ir a la ficha del contacto</a>"
        )
    );
    let date = num_at(arg, "date").unwrap();
    assert!(date > 1.7e12 && date < 1.0e13, "milliseconds as Date.now(), got {date}");
}

#[wasm_bindgen_test]
fn an_outbound_call_is_headed_with_the_number_called() {
    let this = install_fakes("Promise.reject({status: 503})");
    clear_ledger();
    let widget = KommoWidget::new(this);
    let mut v = call_towards(
        Direction::Outbound,
        "out-1",
        "+18305703077",
        &[CallEventKind::Answered, CallEventKind::Ended { duration: 12, outcome: Outcome::Answered }],
    );
    v.caller = CallerId::known("Maria Gonzalez", EntityRef::new(EntityKind::Contact, 31));
    Announcer::new(ME, None).announce(&v, &widget);
    let calls = recorded();
    let (method, arg) = &calls[0];
    assert_eq!(method, "add_call");
    assert_eq!(text_at(arg, "header").as_deref(), Some("Outgoing call: +18305703077"), "not \"Internal number: 101\"");
    assert_eq!(text_at(arg, "from").as_deref(), Some("+18305703077"));
    assert_eq!(text_at(arg, "to").as_deref(), Some("101"));
    assert_eq!(text_at(arg, "text").as_deref(), Some(
            "Callcard: Call to Maria Gonzalez \
             <a class=\"callcard-record\" href=\"/contacts/detail/31\" data-kind=\"contact\">Ir a la ficha del contacto</a>"
        ));
    assert_eq!(num_at(arg, "element.id"), Some(31.0));
    assert_eq!(text_at(arg, "element.type").as_deref(), Some("contact"));
}

#[wasm_bindgen_test]
fn an_internal_caller_gets_the_internal_header() {
    let this = install_fakes("Promise.reject({status: 503})");
    clear_ledger();
    let widget = KommoWidget::new(this);
    let v = call("int-1", "117", &[CallEventKind::Ended { duration: 3, outcome: Outcome::Missed }]);
    Announcer::new(ME, None).announce(&v, &widget);
    let calls = recorded();
    assert_eq!(text_at(&calls[0].1, "header").as_deref(), Some("Internal number: 117"));
    assert_eq!(num_at(&calls[0].1, "duration"), Some(0.0));
}

fn roots() -> u32 {
    web_sys::window().unwrap().document().unwrap().query_selector_all("#callcard-root").unwrap().length()
}

#[wasm_bindgen_test]
async fn init_mounts_once_and_destroy_removes_everything() {
    let this = install_fakes("Promise.reject({status: 503, responseText: 'down'})");
    callcard_widget::widget_init(this.clone());
    callcard_widget::widget_init(this.clone());
    callcard_widget::widget_bind_actions(this.clone());
    leptos::task::tick().await;
    assert_eq!(roots(), 1);
    let document = web_sys::window().unwrap().document().unwrap();
    let root = document.get_element_by_id("callcard-root").unwrap();
    let feed = root.get_attribute("data-feed").unwrap();
    assert!(["connecting", "offline"].contains(&feed.as_str()), "data-feed={feed}");
    let status = document.query_selector("#callcard-root .callcard-status[role=status]").unwrap();
    assert!(status.is_some(), "status line rendered");
    // The ticket is asked for through $authorizedAjax (once this tab leads).
    let mut waited = 0;
    while js_sys::Array::from(&prop(&js_sys::global(), "ajax")).length() == 0 && waited < 3_000 {
        gloo_timers::future::TimeoutFuture::new(20).await;
        waited += 20;
    }
    let ajax: js_sys::Array = prop(&js_sys::global(), "ajax").into();
    assert!(ajax.length() >= 1, "a ticket was requested");
    let first = ajax.get(0);
    assert!(text_at(&first, "url").unwrap().ends_with("/backend/widget/ticket"));
    assert_eq!(text_at(&first, "method").as_deref(), Some("POST"));

    callcard_widget::widget_destroy(this.clone());
    leptos::task::tick().await;
    assert_eq!(roots(), 0);
    callcard_widget::widget_destroy(this.clone());
    // And it can start again.
    callcard_widget::widget_init(this.clone());
    leptos::task::tick().await;
    assert_eq!(roots(), 1);
    callcard_widget::widget_destroy(this);
    assert_eq!(roots(), 0);
}

#[wasm_bindgen_test]
async fn on_save_refuses_duplicates_and_sends_good_extensions() {
    let this = install_fakes("Promise.resolve(null)");
    let bad = js_sys::eval(r#"({active: 'Y', fields: {phones: {"1": "101", "2": "101"}}})"#).unwrap();
    assert!(!callcard_widget::widget_on_save(this.clone(), bad));
    let calls = recorded();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "show_message_error");
    assert_eq!(text_at(&calls[0].1, "text").as_deref(), Some("Extension 101 is given to two users."));

    let hostile = js_sys::eval(r#"({active: 'Y', fields: {phones: {"1": "<b>1</b>"}}})"#).unwrap();
    assert!(!callcard_widget::widget_on_save(this.clone(), hostile));
    assert!(text_at(&recorded()[1].1, "text").unwrap().contains("&lt;b&gt;1&lt;/b&gt;"));

    let good = js_sys::eval(r#"({active: 'Y', fields: {phones: '{"8320148":"101","8375357":"102"}'}})"#).unwrap();
    assert!(callcard_widget::widget_on_save(this.clone(), good));
    gloo_timers::future::TimeoutFuture::new(20).await;
    let ajax: js_sys::Array = prop(&js_sys::global(), "ajax").into();
    let put = ajax.iter().find(|o| text_at(o, "method").as_deref() == Some("PUT")).expect("PUT sent");
    assert!(text_at(&put, "url").unwrap().ends_with("/backend/widget/settings"));
    let body: serde_json::Value = serde_json::from_str(&text_at(&put, "data").unwrap()).unwrap();
    assert_eq!(body, serde_json::json!({"phones": {"8320148": "101", "8375357": "102"}}));
    assert_eq!(recorded().len(), 2, "no error for a good save");
}

#[wasm_bindgen_test]
async fn on_save_reads_numbers_and_empty_fields_and_refuses_a_list() {
    let this = install_fakes("Promise.resolve(null)");
    let list = js_sys::eval(r#"({active: 'Y', fields: {phones: [101]}})"#).unwrap();
    assert!(!callcard_widget::widget_on_save(this.clone(), list));
    assert_eq!(text_at(&recorded()[0].1, "text").as_deref(), Some("The extensions setting could not be read."));

    let numbers =
        js_sys::eval(r#"({active: 'Y', fields: {phones: {"8320148": 101, "8375357": null, "7": ""}}})"#).unwrap();
    assert!(callcard_widget::widget_on_save(this.clone(), numbers));
    gloo_timers::future::TimeoutFuture::new(20).await;
    let ajax: js_sys::Array = prop(&js_sys::global(), "ajax").into();
    let put = ajax.iter().find(|o| text_at(o, "method").as_deref() == Some("PUT")).expect("PUT sent");
    let body: serde_json::Value = serde_json::from_str(&text_at(&put, "data").unwrap()).unwrap();
    assert_eq!(body, serde_json::json!({"phones": {"8320148": "101"}}));
    assert_eq!(recorded().len(), 1, "no error for a good save");
}

/// The PUT bodies `$authorizedAjax` got for `/widget/settings`.
fn settings_puts() -> Vec<serde_json::Value> {
    let ajax: js_sys::Array = prop(&js_sys::global(), "ajax").into();
    ajax.iter()
        .filter(|o| text_at(o, "method").as_deref() == Some("PUT"))
        .filter(|o| text_at(o, "url").is_some_and(|u| u.ends_with("/widget/settings")))
        .map(|o| serde_json::from_str(&text_at(&o, "data").unwrap()).unwrap())
        .collect()
}

#[wasm_bindgen_test]
async fn settings_saved_under_the_old_users_key_are_migrated_to_phones() {
    let this = install_fakes("Promise.resolve(null)");
    // Saved by an older callcard: the extensions under `users`, no `phones`.
    js_sys::eval(
        r#"window.fakeSelf.get_settings = function () {
            return { path: '/upl/callcard/widget', users: '{"8320148":"101","8375357":"102"}' };
        }"#,
    )
    .unwrap();
    // Kommo's settings page with the new, empty `phones` field (the host page's markup).
    let document = web_sys::window().unwrap().document().unwrap();
    let body = document.create_element("div").unwrap();
    body.set_inner_html(
        r#"<input data-setting="phones" data-user-id="8320148" value="">
           <input data-setting="phones" data-user-id="8375357" value="">
           <input data-setting="phones" data-user-id="8390001" value="">"#,
    );
    document.body().unwrap().append_child(&body).unwrap();
    callcard_widget::widget_settings(this.clone(), body.clone().into());
    let value = |user: &str| -> String {
        let input: web_sys::HtmlInputElement =
            body.query_selector(&format!("input[data-user-id=\"{user}\"]")).unwrap().unwrap().unchecked_into();
        input.value()
    };
    assert_eq!((value("8320148"), value("8375357"), value("8390001")), ("101".into(), "102".into(), String::new()));
    body.remove();

    // Saved with `phones` still empty (a page whose fields were not filled):
    // the old map is sent, not an empty one.
    let empty = js_sys::eval(r#"({active: 'Y', fields: {phones: {"8320148": "", "8375357": ""}}})"#).unwrap();
    assert!(callcard_widget::widget_on_save(this.clone(), empty));
    // An older host page that still renders the `users` field.
    let old_host = js_sys::eval(r#"({active: 'Y', fields: {users: {"8320148": "105"}}})"#).unwrap();
    assert!(callcard_widget::widget_on_save(this.clone(), old_host));
    // Once `phones` maps someone, it is what counts.
    let new = js_sys::eval(r#"({active: 'Y', fields: {phones: {"8320148": "201"}}})"#).unwrap();
    assert!(callcard_widget::widget_on_save(this, new));
    gloo_timers::future::TimeoutFuture::new(20).await;
    assert_eq!(
        settings_puts(),
        [
            serde_json::json!({"phones": {"8320148": "101", "8375357": "102"}}),
            serde_json::json!({"phones": {"8320148": "105"}}),
            serde_json::json!({"phones": {"8320148": "201"}}),
        ]
    );
}

#[wasm_bindgen_test]
fn an_unknown_number_is_offered_as_a_new_contact() {
    let this = install_fakes("Promise.reject({status: 503})");
    clear_ledger();
    let widget = KommoWidget::new(this);
    let v = call(
        "unknown-1",
        "+1 830 <b>570</b>",
        &[CallEventKind::Ringing, CallEventKind::Ended { duration: 0, outcome: Outcome::NoAnswer }],
    );
    Announcer::new(ME, None).announce(&v, &widget);
    let calls = recorded();
    assert_eq!(calls.len(), 1);
    let (method, arg) = &calls[0];
    assert_eq!(method, "add_call");
    assert!(prop(arg, "element").is_undefined(), "no record to open");
    assert_eq!(
        text_at(arg, "text").as_deref(),
        Some(
            "Callcard: Missed call from +1 830 &lt;b&gt;570&lt;/b&gt; \
             <a href=\"/contacts/add/?phone=%2B1%20830%20%3Cb%3E570%3C%2Fb%3E\">Create contact</a>"
        )
    );
    // What the host page makes of it: one link, and the number as text.
    let document = web_sys::window().unwrap().document().unwrap();
    let probe = document.create_element("div").unwrap();
    probe.set_inner_html(&text_at(arg, "text").unwrap());
    assert_eq!(probe.query_selector_all("a").unwrap().length(), 1);
    assert_eq!(probe.query_selector_all("b").unwrap().length(), 0, "markup in the number stays text");
}

/// The settings page's "check connection" with `$authorizedAjax` answering `answer`.
async fn check_connection(answer: &str) -> (String, String) {
    let this = install_fakes(answer);
    let document = web_sys::window().unwrap().document().unwrap();
    let body = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&body).unwrap();
    callcard_widget::widget_settings(this, body.clone().into());
    leptos::task::tick().await;
    let button: web_sys::HtmlElement =
        body.query_selector(".callcard-settings-check").unwrap().unwrap().unchecked_into();
    assert_eq!(button.text_content().as_deref(), Some("Check connection"));
    button.click();
    let line = body.query_selector("#callcard-settings-connection[role=status]").unwrap().expect("status line");
    let mut waited = 0;
    loop {
        leptos::task::tick().await;
        let state = line.get_attribute("data-state").unwrap_or_default();
        if !["idle", "checking"].contains(&state.as_str()) || waited >= 3_000 {
            break;
        }
        gloo_timers::future::TimeoutFuture::new(20).await;
        waited += 20;
    }
    let ajax: js_sys::Array = prop(&js_sys::global(), "ajax").into();
    let status = ajax
        .iter()
        .find(|o| text_at(o, "url").is_some_and(|u| u.ends_with("/backend/widget/status")))
        .expect("GET /widget/status through $authorizedAjax");
    assert_eq!(text_at(&status, "method").as_deref(), Some("GET"));
    body.remove();
    (line.get_attribute("data-state").unwrap(), line.text_content().unwrap())
}

#[wasm_bindgen_test]
async fn check_connection_reports_what_the_backend_says() {
    let (state, text) =
        check_connection("Promise.resolve({backend: 'ok', authorized: true, needs_reauthorization: false})").await;
    assert_eq!((state.as_str(), text.as_str()), ("ok", "Connected: the callcard server accepts this account."));
    let (state, _) =
        check_connection("Promise.resolve({backend: 'ok', authorized: true, needs_reauthorization: true})").await;
    assert_eq!(state, "not_authorized");
    let (state, _) = check_connection("Promise.reject({status: 401, responseJSON: {title: 'refused'}})").await;
    assert_eq!(state, "not_authorized");
    let (state, _) = check_connection("Promise.reject({status: 403, responseJSON: 'Forbidden'})").await;
    assert_eq!(state, "not_authorized", "an answer that is no problem+json keeps its status");
    let (state, text) = check_connection("Promise.reject({status: 404, responseText: 'not found'})").await;
    assert_eq!(state, "unknown", "a backend without /widget/status is reachable: {text}");
    let (state, text) = check_connection("Promise.reject({status: 0, statusText: 'error'})").await;
    assert_eq!(
        (state.as_str(), text.as_str()),
        ("unreachable", "The callcard server cannot be reached. Try again in a minute.")
    );
}

#[wasm_bindgen_test]
fn settings_hint_is_added_once() {
    let this = install_fakes("Promise.reject({status: 503})");
    let document = web_sys::window().unwrap().document().unwrap();
    let body = document.create_element("div").unwrap();
    callcard_widget::widget_settings(this.clone(), body.clone().into());
    callcard_widget::widget_settings(this, body.clone().into());
    assert_eq!(body.query_selector_all(".callcard-settings-hint").unwrap().length(), 1);
}
