//! Browser tests of the Call summary modal, through the running widget:
//! a fake `self.$authorizedAjax` answers the result post, a fake `fetch`
//! answers Kommo's lead/customer search.

#![cfg(target_arch = "wasm32")]

use callcard_calls::feed::{CallView, CallerId};
use callcard_calls::{Call, CallEvent, CallEventKind, Direction, EntityKind, EntityRef, Outcome};
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// `obj[key]` (the tests read what the widget handed to the fake Kommo).
fn prop(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `window.resultAnswer` is evaluated for each result post.
fn install_fakes(result_answer: &str) -> JsValue {
    let js = format!(
        r#"
        window.calls = [];
        window.ajax = [];
        const record = (name) => function (arg) {{ window.calls.push([name, arg]); }};
        window.APP = {{
            notifications: {{
                show_notification: record('show_notification'), add_call: record('add_call'),
                show_message: record('show_message'), show_message_error: record('show_message_error'),
            }},
            constant: function (k) {{ return k === 'user' ? {{ id: 8320148 }} : {{}}; }},
        }};
        window.resultAnswer = function () {{ return {result_answer}; }};
        if (!window.realFetch) window.realFetch = window.fetch;
        window.fetch = function (input, init) {{
            const url = typeof input === 'string' ? input : input.url;
            if (url.indexOf('/api/v4/leads') >= 0) {{
                return Promise.resolve(new Response(JSON.stringify({{_embedded: {{leads: [
                    {{id: 5, name: 'Quote <for> ACME'}}]}}}}), {{status: 200, headers: {{'Content-Type': 'application/hal+json'}}}}));
            }}
            if (url.indexOf('/api/v4/customers') >= 0) {{
                return Promise.resolve(new Response(null, {{status: 204}}));
            }}
            return window.realFetch(input, init);
        }};
        window.fakeSelf = {{
            get_settings: function () {{ return {{}}; }},
            i18n: function () {{ return undefined; }},
            $authorizedAjax: function (opts) {{
                window.ajax.push(opts);
                if (opts.url.endsWith('/result')) return window.resultAnswer();
                return Promise.reject({{status: 503}});
            }},
        }};
        window.fakeSelf
        "#
    );
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    for key in ["callcard.outbox", "callcard.drafts"] {
        storage.remove_item(key).unwrap();
    }
    js_sys::eval(&js).expect("fakes install")
}

fn storage() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

fn outbox_json() -> Option<serde_json::Value> {
    storage().get_item("callcard.outbox").unwrap().map(|j| serde_json::from_str(&j).unwrap())
}

fn key(target: &web_sys::EventTarget, key: &str, shift: bool) {
    let init = web_sys::KeyboardEventInit::new();
    init.set_key(key);
    init.set_shift_key(shift);
    init.set_bubbles(true);
    init.set_cancelable(true);
    let ev = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap();
    target.dispatch_event(&ev).unwrap();
}

/// Waits up to 3 s for `ok`.
async fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let mut waited = 0;
    while !ok() {
        assert!(waited < 3_000, "waited 3 s for {what}");
        settle(20).await;
        waited += 20;
    }
}

fn focused_id() -> String {
    doc().active_element().map(|e| e.id()).unwrap_or_default()
}

fn ended_call(id: &str, recording: bool) -> CallView {
    let now = js_sys::Date::now() as i64;
    let mut events = vec![
        CallEventKind::Ringing,
        CallEventKind::Answered,
        CallEventKind::Ended { duration: 65, outcome: Outcome::Answered },
    ];
    if recording {
        events.push(CallEventKind::RecordingReady { recording_url: "https://pbx.example/r.mp3".into() });
    }
    let mut call: Option<Call> = None;
    for (i, kind) in events.into_iter().enumerate() {
        let e = CallEvent {
            kind,
            call_id: id.into(),
            direction: Direction::Inbound,
            external_number: "+18305703077".into(),
            extension: "101".into(),
            occurred_at: now - 60_000 + i as i64 * 1_000,
        };
        match &mut call {
            None => call = Some(Call::from_event(&e)),
            Some(c) => {
                c.apply(&e);
            }
        }
    }
    let mut v = CallView::new(call.unwrap(), Some(8320148));
    v.caller = CallerId::known("Anna <b>Petrova</b>", EntityRef::new(EntityKind::Contact, 7));
    v
}

fn doc() -> web_sys::Document {
    web_sys::window().unwrap().document().unwrap()
}

fn el(selector: &str) -> Option<web_sys::HtmlElement> {
    doc().query_selector(selector).unwrap().map(|e| e.unchecked_into())
}

fn type_into(selector: &str, value: &str) {
    let e = el(selector).unwrap_or_else(|| panic!("{selector} missing"));
    js_sys::Reflect::set(&e, &"value".into(), &value.into()).unwrap();
    let init = web_sys::EventInit::new();
    init.set_bubbles(true);
    e.dispatch_event(&web_sys::Event::new_with_event_init_dict("input", &init).unwrap()).unwrap();
}

fn state() -> String {
    el("#callcard-summary").and_then(|e| e.get_attribute("data-state")).unwrap_or_default()
}

async fn settle(ms: u32) {
    TimeoutFuture::new(ms).await;
    leptos::task::tick().await;
}

fn result_posts() -> Vec<JsValue> {
    let ajax: js_sys::Array = prop(&js_sys::global(), "ajax").into();
    ajax.iter().filter(|o| prop(o, "url").as_string().is_some_and(|u| u.ends_with("/result"))).collect()
}

#[wasm_bindgen_test]
async fn the_summary_saves_a_result_for_the_chosen_lead() {
    let this = install_fakes("Promise.resolve(null)");
    callcard_widget::widget_init(this.clone());
    let queue = callcard_widget::session::summaries().expect("running");
    let call = ended_call("c-save", false);
    queue.open(&call);
    settle(0).await;

    let dialog = el("#callcard-summary").expect("the modal opened");
    assert_eq!(dialog.get_attribute("role").as_deref(), Some("dialog"));
    assert_eq!(dialog.get_attribute("data-call-id").as_deref(), Some("c-save"));
    assert_eq!(el("#callcard-summary-title").unwrap().text_content().as_deref(), Some("Call summary"));
    // Names are text, not markup.
    assert!(el(".callcard-summary-party").unwrap().text_content().unwrap().contains("Anna <b>Petrova</b>"));
    // The call: who, the number, which way, when and how long, each labelled.
    let fact = |name: &str| el(&format!("#callcard-summary-party dd[data-fact={name}]")).and_then(|e| e.text_content());
    assert_eq!(fact("caller").as_deref(), Some("Anna <b>Petrova</b>"));
    assert_eq!(fact("number").as_deref(), Some("+18305703077"));
    assert_eq!(fact("direction").as_deref(), Some("Incoming call"));
    assert_eq!(fact("talked").as_deref(), Some("1:05"));
    let rang = js_sys::Date::new(&JsValue::from_f64(call.call.ringing_at.unwrap() as f64));
    let local = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        rang.get_full_year(),
        rang.get_month() + 1,
        rang.get_date(),
        rang.get_hours(),
        rang.get_minutes()
    );
    assert_eq!(fact("time"), Some(local), "when it rang, on the manager's clock");
    assert_eq!(
        el(".callcard-summary-entity").unwrap().text_content().as_deref(),
        Some("Contact · Anna <b>Petrova</b>")
    );
    assert!(el(".callcard-summary-recording-pending").is_some(), "recording not ready yet");
    assert!(el(".callcard-summary-recording").unwrap().text_content().unwrap().contains("1:05"));
    for id in ["callcard-summary-search", "callcard-summary-note", "callcard-summary-task"] {
        assert!(doc().query_selector(&format!("label[for={id}]")).unwrap().is_some(), "{id} is labelled");
    }

    // The recording arrives while the modal is open.
    queue.refresh(&ended_call("c-save", true));
    settle(0).await;
    let audio = doc().query_selector("#callcard-summary audio").unwrap().expect("player");
    assert_eq!(audio.get_attribute("src").as_deref(), Some("https://pbx.example/r.mp3"));

    // Search (debounced) and pick a lead.
    type_into("#callcard-summary-search", "quo");
    settle(500).await;
    let hit = el(".callcard-summary-hit").expect("a hit");
    assert_eq!(hit.get_attribute("data-entity-type").as_deref(), Some("lead"));
    assert_eq!(hit.get_attribute("data-entity-id").as_deref(), Some("5"));
    hit.click();
    settle(0).await;
    assert_eq!(el(".callcard-summary-entity").unwrap().text_content().as_deref(), Some("Lead · Quote <for> ACME"));

    type_into("#callcard-summary-note", "Wants a quote");
    el("#callcard-summary-task").unwrap().click();
    settle(0).await;
    type_into("#callcard-summary-task-when", "2030-01-02T10:30");
    type_into("#callcard-summary-task-text", "Send the quote");
    el("#callcard-summary-save").unwrap().click();
    settle(50).await;

    let posts = result_posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(prop(&posts[0], "method").as_string().as_deref(), Some("POST"));
    assert!(prop(&posts[0], "url").as_string().unwrap().ends_with("/backend/widget/calls/c-save/result"));
    let body: serde_json::Value = serde_json::from_str(&prop(&posts[0], "data").as_string().unwrap()).unwrap();
    assert_eq!(body["entity"], serde_json::json!({"kind": "lead", "id": 5}));
    assert_eq!(body["note"], "Wants a quote");
    assert_eq!(body["task"]["text"], "Send the quote");
    assert!(body["task"]["complete_till"].as_i64().unwrap() > 1_890_000_000);
    assert!(el("#callcard-summary").is_none(), "closed after saving");
    callcard_widget::widget_destroy(this);
}

#[wasm_bindgen_test]
async fn a_refused_save_keeps_the_input_and_an_offline_one_is_queued() {
    let this = install_fakes("Promise.reject({status: 422, responseJSON: {title: 'Invalid', detail: 'entity gone'}})");
    callcard_widget::widget_init(this.clone());
    let queue = callcard_widget::session::summaries().unwrap();
    queue.open(&ended_call("c-err", false));
    settle(0).await;

    type_into("#callcard-summary-note", "Keep me");
    el("#callcard-summary-task").unwrap().click();
    settle(0).await;
    // Ticking the task proposes the next working day at 10:00…
    let when = el("#callcard-summary-task-when").unwrap().dyn_into::<web_sys::HtmlInputElement>().unwrap().value();
    assert!(when.ends_with("T10:00"), "default due time: {when:?}");
    el("#callcard-summary-save").unwrap().click();
    settle(0).await;
    // …but what to do is the manager's to say.
    assert_eq!(state(), "error", "a task needs a text");
    assert_eq!(el(".callcard-summary-error").unwrap().text_content().as_deref(), Some("Describe the task."));
    assert!(result_posts().is_empty());
    el("#callcard-summary-task").unwrap().click();
    settle(0).await;

    el("#callcard-summary-save").unwrap().click();
    settle(50).await;
    assert_eq!(result_posts().len(), 1);
    assert_eq!(state(), "error");
    assert!(el(".callcard-summary-error").unwrap().text_content().unwrap().contains("entity gone"));
    let note: web_sys::HtmlTextAreaElement = el("#callcard-summary-note").unwrap().unchecked_into();
    assert_eq!(note.value(), "Keep me");

    // Offline now: the result is queued and the modal closes.
    js_sys::eval("window.resultAnswer = function () { return Promise.reject({status: 0, statusText: 'error'}); }")
        .unwrap();
    el("#callcard-summary-save").unwrap().click();
    settle(50).await;
    assert!(el("#callcard-summary").is_none());
    let stored = web_sys::window().unwrap().local_storage().unwrap().unwrap().get_item("callcard.outbox").unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored.expect("queued")).unwrap();
    assert_eq!(stored["pending"][0]["call_id"], "c-err");
    assert_eq!(stored["pending"][0]["result"]["note"], "Keep me");
    callcard_widget::widget_destroy(this);
}

#[wasm_bindgen_test]
async fn escape_cancels() {
    let this = install_fakes("Promise.resolve(null)");
    callcard_widget::widget_init(this.clone());
    callcard_widget::session::summaries().unwrap().open(&ended_call("c-esc", false));
    settle(0).await;
    let init = web_sys::KeyboardEventInit::new();
    init.set_key("Escape");
    init.set_bubbles(true);
    let ev = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap();
    el("#callcard-summary-note").unwrap().dispatch_event(&ev).unwrap();
    settle(0).await;
    assert!(el("#callcard-summary").is_none());
    assert!(result_posts().is_empty());
    callcard_widget::widget_destroy(this);
}

#[wasm_bindgen_test]
async fn what_was_typed_survives_a_reload_until_cancel() {
    let this = install_fakes("Promise.resolve(null)");
    callcard_widget::widget_init(this.clone());
    callcard_widget::session::summaries().unwrap().open(&ended_call("c-draft", true));
    settle(0).await;
    type_into("#callcard-summary-note", "Half a thought");
    el("#callcard-summary-task").unwrap().click();
    settle(0).await;
    type_into("#callcard-summary-task-text", "Call back");
    settle(20).await;

    // The page goes away before Save (destroy + init is what a reload does to the widget).
    callcard_widget::widget_destroy(this.clone());
    assert!(el("#callcard-summary").is_none());
    callcard_widget::widget_init(this.clone());
    settle(20).await;
    let dialog = el("#callcard-summary").expect("the summary reopens after the reload");
    assert_eq!(dialog.get_attribute("data-call-id").as_deref(), Some("c-draft"));
    let note: web_sys::HtmlTextAreaElement = el("#callcard-summary-note").unwrap().unchecked_into();
    assert_eq!(note.value(), "Half a thought");
    let task: web_sys::HtmlInputElement = el("#callcard-summary-task").unwrap().unchecked_into();
    assert!(task.checked());
    let text: web_sys::HtmlInputElement = el("#callcard-summary-task-text").unwrap().unchecked_into();
    assert_eq!(text.value(), "Call back");
    assert!(doc().query_selector("#callcard-summary audio").unwrap().is_some(), "with its recording");

    // Cancel forgets it: the next load opens nothing.
    el("#callcard-summary-cancel").unwrap().click();
    settle(0).await;
    callcard_widget::widget_destroy(this.clone());
    callcard_widget::widget_init(this.clone());
    settle(20).await;
    assert!(el("#callcard-summary").is_none());
    assert!(storage().get_item("callcard.drafts").unwrap().is_none());
    callcard_widget::widget_destroy(this);
}

#[wasm_bindgen_test]
async fn results_saved_offline_are_sent_after_a_reload_and_when_the_browser_is_online() {
    // A result queued by an earlier page, with the backend still unreachable.
    let this = install_fakes("Promise.reject({status: 0, statusText: 'error'})");
    storage()
        .set_item(
            "callcard.outbox",
            r#"{"pending":[{"call_id":"c-queued","result":{"entity":{"kind":"lead","id":5},"note":"From before","task":null}}]}"#,
        )
        .unwrap();
    callcard_widget::widget_init(this.clone());
    wait_for("a try as soon as this tab leads", || !result_posts().is_empty()).await;
    settle(50).await;
    assert_eq!(result_posts().len(), 1, "tried once");
    assert_eq!(outbox_json().expect("still queued")["pending"][0]["call_id"], "c-queued");

    // The network is back: the browser says `online`, and the result goes out.
    js_sys::eval("window.resultAnswer = function () { return Promise.resolve(null); }").unwrap();
    web_sys::window().unwrap().dispatch_event(&web_sys::Event::new("online").unwrap()).unwrap();
    wait_for("the queued result to go out", || outbox_json().is_none()).await;
    let posts = result_posts();
    assert_eq!(posts.len(), 2);
    assert!(prop(&posts[1], "url").as_string().unwrap().ends_with("/widget/calls/c-queued/result"));
    let body: serde_json::Value = serde_json::from_str(&prop(&posts[1], "data").as_string().unwrap()).unwrap();
    assert_eq!(body["note"], "From before");
    assert_eq!(outbox_json(), None, "delivered and forgotten");

    // Nothing more to send on the next `online`; after destroy nobody listens.
    web_sys::window().unwrap().dispatch_event(&web_sys::Event::new("online").unwrap()).unwrap();
    settle(50).await;
    assert_eq!(result_posts().len(), 2);
    callcard_widget::widget_destroy(this);
    storage()
        .set_item(
            "callcard.outbox",
            r#"{"pending":[{"call_id":"c-late","result":{"entity":{"kind":"lead","id":5},"note":"","task":null}}]}"#,
        )
        .unwrap();
    web_sys::window().unwrap().dispatch_event(&web_sys::Event::new("online").unwrap()).unwrap();
    settle(50).await;
    assert_eq!(result_posts().len(), 2, "a destroyed widget does not listen");
}

#[wasm_bindgen_test]
async fn the_modal_is_keyboard_usable() {
    let this = install_fakes("Promise.resolve(null)");
    callcard_widget::widget_init(this.clone());
    callcard_widget::session::summaries().unwrap().open(&ended_call("c-keys", false));
    settle(0).await;
    assert_eq!(focused_id(), "callcard-summary-search", "focus starts in the search field");
    let dialog = el("#callcard-summary").unwrap();
    assert_eq!(dialog.get_attribute("aria-modal").as_deref(), Some("true"));
    assert_eq!(dialog.get_attribute("aria-labelledby").as_deref(), Some("callcard-summary-title"));
    assert_eq!(dialog.get_attribute("aria-describedby").as_deref(), Some("callcard-summary-party"));

    // Search, then walk to the hit with the arrow keys and choose it with Enter (a button).
    type_into("#callcard-summary-search", "quo");
    settle(500).await;
    key(&el("#callcard-summary-search").unwrap(), "ArrowDown", false);
    let hit = doc().active_element().expect("focus moved");
    assert_eq!(hit.class_name(), "callcard-summary-hit");
    key(&hit, "ArrowUp", false);
    assert_eq!(focused_id(), "callcard-summary-search", "up from the first hit: back to the field");
    key(&el("#callcard-summary-search").unwrap(), "ArrowDown", false);
    el(".callcard-summary-hit").unwrap().click();
    settle(0).await;
    assert_eq!(el(".callcard-summary-entity").unwrap().text_content().as_deref(), Some("Lead · Quote <for> ACME"));
    assert_eq!(focused_id(), "callcard-summary-search", "focus stays in the form after choosing");

    // Tab wraps inside the dialog, both ways.
    el("#callcard-summary-cancel").unwrap().focus().unwrap();
    key(&el("#callcard-summary-cancel").unwrap(), "Tab", false);
    assert_eq!(focused_id(), "callcard-summary-search");
    key(&el("#callcard-summary-search").unwrap(), "Tab", true);
    assert_eq!(focused_id(), "callcard-summary-cancel");
    callcard_widget::widget_destroy(this);
}

/// The days of `year` on which the browser's clocks change: the offset at
/// midnight differs from the next midnight's (`(month from 0, day)`).
fn clock_change_days(year: u32) -> Vec<(i32, i32)> {
    (0..366)
        .filter_map(|i| {
            let start = js_sys::Date::new_with_year_month_day(year, 0, 1 + i);
            let next = js_sys::Date::new_with_year_month_day(year, 0, 2 + i);
            (start.get_full_year() == year && start.get_timezone_offset() != next.get_timezone_offset())
                .then(|| (start.get_month() as i32, start.get_date() as i32))
        })
        .collect()
}

/// What `new Date(y, m, d, h, mi)` makes of a wall-clock time, in Unix seconds.
fn browser_local(year: u32, month0: i32, day: i32, hour: i32, minute: i32) -> i64 {
    (js_sys::Date::new_with_year_month_day_hr_min_sec(year, month0, day, hour, minute, 0).get_time() / 1000.0) as i64
}

#[wasm_bindgen_test]
async fn a_due_time_on_the_day_clocks_change_is_that_local_time() {
    const YEAR: u32 = 2030;
    let days = clock_change_days(YEAR);
    assert_eq!(
        days.len(),
        2,
        "the browser's time zone must observe daylight saving time (`cargo xtask test` runs the browsers with \
         TZ=Europe/Berlin); found {days:?}"
    );
    // Every hour of both days, as the conversion reads a datetime-local value.
    for &(month0, day) in &days {
        for hour in 0..24 {
            let value = format!("{YEAR}-{:02}-{day:02}T{hour:02}:30", month0 + 1);
            assert_eq!(
                callcard_widget::local_time::to_unix(&value),
                Some(browser_local(YEAR, month0, day, hour, 30)),
                "{value}"
            );
        }
    }

    // And through the modal: 01:30 on those days is where reading the zone's
    // offset at the wrong instant is an hour off.
    let this = install_fakes("Promise.resolve(null)");
    callcard_widget::widget_init(this.clone());
    let queue = callcard_widget::session::summaries().unwrap();
    for (i, &(month0, day)) in days.iter().enumerate() {
        queue.open(&ended_call(&format!("c-dst-{i}"), false));
        settle(0).await;
        el("#callcard-summary-task").unwrap().click();
        settle(0).await;
        type_into("#callcard-summary-task-when", &format!("{YEAR}-{:02}-{day:02}T01:30", month0 + 1));
        type_into("#callcard-summary-task-text", "Call back");
        el("#callcard-summary-save").unwrap().click();
        settle(50).await;
        assert!(el("#callcard-summary").is_none(), "saved and closed");
        let posts = result_posts();
        assert_eq!(posts.len(), i + 1);
        let body: serde_json::Value = serde_json::from_str(&prop(&posts[i], "data").as_string().unwrap()).unwrap();
        assert_eq!(body["task"]["complete_till"].as_i64(), Some(browser_local(YEAR, month0, day, 1, 30)), "{body}");
    }
    callcard_widget::widget_destroy(this);
}
