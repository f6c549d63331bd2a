//! Browser tests of the Call summary, through the running widget: a fake of
//! Kommo's modal (`lib/components/base/modal`, with the host page's markup)
//! holds it, a fake `self.$authorizedAjax` answers the result post, a fake
//! `fetch` answers Kommo's searches, users and pipelines; the feed's
//! snapshots are handed to the widget's reports as the feed would.

#![cfg(target_arch = "wasm32")]

use callcard_calls::feed::{CallView, CallerDeal, CallerHolder, CallerId};
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
        const hal = (body) => Promise.resolve(new Response(JSON.stringify(body),
            {{status: 200, headers: {{'Content-Type': 'application/hal+json'}}}}));
        // The account's users and pipelines come late, as on a loaded page:
        // what depends on them must be waited for, not given a fixed time.
        const late = (body) => new Promise((done) => setTimeout(done, 150)).then(() => hal(body));
        window.fetch = function (input, init) {{
            const url = typeof input === 'string' ? input : input.url;
            if (url.indexOf('/api/v4/leads/pipelines') >= 0) {{
                return late({{_embedded: {{pipelines: [{{id: 3, _embedded: {{statuses: [{{id: 20, name: 'Initial contact'}}]}}}}]}}}});
            }}
            if (url.indexOf('/api/v4/users') >= 0) {{
                return late({{_embedded: {{users: [{{id: 8320148, name: 'Anna Petrova'}}, {{id: 8375357, name: 'Boris Ivanov'}}]}}}});
            }}
            if (url.indexOf('/api/v4/leads') >= 0) {{
                return hal({{_embedded: {{leads: [
                    {{id: 5, name: 'Quote <for> ACME', status_id: 20, pipeline_id: 3, responsible_user_id: 8375357}}]}}}});
            }}
            if (url.indexOf('/api/v4/contacts') >= 0) {{
                return hal({{_embedded: {{contacts: [{{id: 7, name: 'Anna <b>Petrova</b>', responsible_user_id: 8320148}}]}}}});
            }}
            if (url.indexOf('/api/v4/companies') >= 0) {{
                return hal({{_embedded: {{companies: [{{id: 9, name: 'ACME Corp', responsible_user_id: 8375357}}]}}}});
            }}
            if (url.indexOf('/api/v4/customers') >= 0) {{
                return Promise.resolve(new Response(null, {{status: 204}}));
            }}
            return window.realFetch(input, init);
        }};
        // Kommo's modal, with the host page's markup: init($body) runs in the constructor.
        window.modals = [];
        window.FakeModal = function (options) {{
            const self = this;
            this.options = options;
            this.destroyed = false;
            this.root = document.createElement('div');
            this.root.className = 'modal ' + options.class_name;
            const body = document.createElement('div');
            body.className = 'modal-body';
            const close = document.createElement('button');
            close.className = 'modal-body__close';
            close.onclick = function () {{ self.destroy(); }};
            body.appendChild(close);
            this.root.appendChild(body);
            document.body.appendChild(this.root);
            window.modals.push(options.class_name);
            options.init(body);
        }};
        window.FakeModal.prototype.destroy = function () {{
            if (this.destroyed) return;
            this.destroyed = true;
            this.options.destroy();
            this.root.remove();
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
    // A test that failed part-way left its widget running (its modal open):
    // stop it, so the next test starts from a page without the widget.
    if callcard_widget::session::is_running() {
        callcard_widget::widget_destroy(JsValue::UNDEFINED);
    }
    if let Some(left) = doc().get_element_by_id("kommo-button") {
        left.remove();
    }
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    for key in ["callcard.outbox", "callcard.drafts"] {
        storage.remove_item(key).unwrap();
    }
    let this = js_sys::eval(&js).expect("fakes install");
    callcard_widget::widget_modal(js_sys::eval("window.FakeModal").unwrap());
    this
}

/// The feed's next snapshot of a call, as the session hands it on.
fn feed_says(view: &CallView) {
    callcard_widget::session::summaries().unwrap().refresh(view);
    callcard_widget::session::reports().unwrap().observe(view);
}

/// The message about a saved summary: `(messageType, text)`.
fn message(call_id: &str) -> Option<(String, String)> {
    let m = el(&format!(".callcard-message[data-call-id='{call_id}']"))?;
    let text = m.query_selector(".callcard-message-text").unwrap()?.text_content().unwrap_or_default();
    Some((m.get_attribute("data-message-type").unwrap_or_default(), text))
}

fn ended_call_from(id: &str, caller: CallerId) -> CallView {
    let mut v = ended_call(id, false);
    v.caller = caller;
    v
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

/// Waits for the search to answer what was typed: its hits, or "no matches"
/// (a debounce and Kommo's answers: no fixed time covers them under load).
async fn search_answered() {
    wait_for("the search to answer", || {
        el("#callcard-summary-hits .callcard-summary-hit, #callcard-summary-hits .callcard-summary-no-matches")
            .is_some()
    })
    .await;
}

/// Waits for the summary to be open in Kommo's modal.
async fn summary_shown() {
    wait_for("the summary in Kommo's modal", modal_open).await;
}

/// A button of Kommo's page, holding focus when a call ends.
fn focused_page_button() -> web_sys::HtmlElement {
    let outside: web_sys::HtmlElement = doc().create_element("button").unwrap().unchecked_into();
    outside.set_id("kommo-button");
    doc().body().unwrap().append_child(&outside).unwrap();
    outside.focus().unwrap();
    outside
}

fn focused_id() -> String {
    doc().active_element().map(|e| e.id()).unwrap_or_default()
}

/// An inbound call from Maria's number to 101 folded from `events`, a
/// second apart, a minute ago.
fn inbound_call(id: &str, events: Vec<CallEventKind>) -> Call {
    let now = js_sys::Date::now() as i64;
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
    call.unwrap()
}

fn ended_call(id: &str, recording: bool) -> CallView {
    let mut events = vec![
        CallEventKind::Ringing,
        CallEventKind::Answered,
        CallEventKind::Ended { duration: 65, outcome: Outcome::Answered },
    ];
    if recording {
        events.push(CallEventKind::RecordingReady { recording_url: "https://pbx.example/r.mp3".into() });
    }
    let mut v = CallView::new(inbound_call(id, events), Some(8320148));
    v.caller = CallerId::known("Anna <b>Petrova</b>", EntityRef::new(EntityKind::Contact, 7));
    v
}

/// An inbound call that rang and was missed (0 s), with a voicemail when
/// `voicemail`.
fn missed_call(id: &str, voicemail: bool) -> CallView {
    let mut events = vec![CallEventKind::Ringing, CallEventKind::Ended { duration: 0, outcome: Outcome::Missed }];
    if voicemail {
        events.push(CallEventKind::RecordingReady { recording_url: "https://pbx.example/vm.mp3".into() });
    }
    CallView::new(inbound_call(id, events), Some(8320148))
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

fn set_select(selector: &str, value: &str) {
    let e = el(selector).unwrap_or_else(|| panic!("{selector} missing"));
    js_sys::Reflect::set(&e, &"value".into(), &value.into()).unwrap();
    let init = web_sys::EventInit::new();
    init.set_bubbles(true);
    e.dispatch_event(&web_sys::Event::new_with_event_init_dict("change", &init).unwrap()).unwrap();
}

fn text_of(selector: &str) -> String {
    el(selector).and_then(|e| e.text_content()).unwrap_or_default()
}

fn fact(name: &str) -> Option<String> {
    el(&format!("#callcard-summary-party dd[data-fact={name}]")).and_then(|e| e.text_content())
}

fn href(selector: &str) -> Option<String> {
    el(selector).and_then(|e| e.get_attribute("href"))
}

fn modal_open() -> bool {
    el(".modal.callcard-summary-modal .modal-body #callcard-summary").is_some()
}

#[wasm_bindgen_test]
async fn the_summary_opens_in_kommos_modal_and_saves_for_the_chosen_lead() {
    let this = install_fakes("Promise.resolve(null)");
    callcard_widget::widget_init(this.clone());
    let queue = callcard_widget::session::summaries().expect("running");
    let call = ended_call("c-save", false);
    queue.open(&call);
    summary_shown().await;

    assert!(modal_open(), "the summary is mounted into Kommo's modal body");
    let dialog = el("#callcard-summary").unwrap();
    assert_eq!(dialog.get_attribute("role").as_deref(), Some("dialog"));
    assert_eq!(dialog.get_attribute("data-call-id").as_deref(), Some("c-save"));
    assert_eq!(text_of("#callcard-summary-title"), "Call summary");
    assert!(el("#callcard-summary-position").is_none(), "one call: no pager");
    // The call: who, the number, which way, when and how long, each labelled; names are text.
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
    assert_eq!(href("#callcard-summary-party dd[data-fact=contact] a").as_deref(), Some("/contacts/detail/7"));
    // The suggested record is where the field starts.
    assert_eq!(text_of(".callcard-summary-entity a.callcard-record"), "Anna <b>Petrova</b>");
    assert_eq!(text_of(".callcard-summary-entity .callcard-summary-kind"), "Contact");
    assert_eq!(text_of(".callcard-summary-recording-pending"), "Processing the recording…");
    assert!(text_of(".callcard-summary-recording").contains("1:05"));
    for id in ["callcard-summary-search", "callcard-summary-note", "callcard-summary-task"] {
        assert!(doc().query_selector(&format!("label[for={id}]")).unwrap().is_some(), "{id} is labelled");
    }

    // The recording arrives while the summary is open: the player replaces "processing".
    queue.refresh(&ended_call("c-save", true));
    settle(0).await;
    assert!(el(".callcard-summary-recording-pending").is_none());
    let audio = doc().query_selector("#callcard-summary audio").unwrap().expect("player");
    assert_eq!(audio.get_attribute("src").as_deref(), Some("https://pbx.example/r.mp3"));
    assert!(audio.has_attribute("controls"), "play and seek");
    assert_eq!(href(".callcard-summary-download").as_deref(), Some("https://pbx.example/r.mp3"));

    // Search (debounced): leads, customers, contacts and companies, each with status and responsible user.
    type_into("#callcard-summary-search", "quo");
    search_answered().await;
    let kinds: Vec<String> = elements(".callcard-summary-hit")
        .iter()
        .map(|h| h.get_attribute("data-entity-type").unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["lead", "contact", "company"]);
    let hit = el(".callcard-summary-hit[data-entity-type=lead]").expect("a lead");
    assert_eq!(hit.get_attribute("data-entity-id").as_deref(), Some("5"));
    // The status and user names come from Kommo's users and pipelines, asked when the summary opened.
    let hit_meta = || text_of(".callcard-summary-hit[data-entity-type=lead] .callcard-summary-meta");
    wait_for("the account's users and statuses", || !hit_meta().is_empty() && !hit_meta().contains('#')).await;
    assert_eq!(
        hit.query_selector(".callcard-summary-meta").unwrap().unwrap().text_content().as_deref(),
        Some("Initial contact · Responsible: Boris Ivanov")
    );
    hit.click();
    settle(0).await;
    assert_eq!(text_of(".callcard-summary-entity a.callcard-record"), "Quote <for> ACME");
    assert_eq!(href(".callcard-summary-entity a.callcard-record").as_deref(), Some("/leads/detail/5"));
    assert_eq!(
        text_of(".callcard-summary-entity .callcard-summary-meta"),
        "Initial contact · Responsible: Boris Ivanov"
    );

    let subject: web_sys::HtmlInputElement = el("#callcard-summary-subject").unwrap().unchecked_into();
    assert!(
        subject.value().starts_with("Inbound call from "),
        "the machine's subject to start from: {}",
        subject.value()
    );
    assert!(doc().query_selector("label[for=callcard-summary-subject]").unwrap().is_some(), "the subject is labelled");
    type_into("#callcard-summary-subject", "Quote for 40 seats");
    type_into("#callcard-summary-note", "Wants a quote");
    el("#callcard-summary-task").unwrap().click();
    settle(0).await;
    for id in [
        "callcard-summary-task-kind",
        "callcard-summary-task-when",
        "callcard-summary-task-user",
        "callcard-summary-task-text",
    ] {
        assert!(doc().query_selector(&format!("label[for={id}]")).unwrap().is_some(), "{id} is labelled");
    }
    let user: web_sys::HtmlSelectElement = el("#callcard-summary-task-user").unwrap().unchecked_into();
    assert_eq!(user.value(), "8320148", "the manager by default");
    let kind: web_sys::HtmlSelectElement = el("#callcard-summary-task-kind").unwrap().unchecked_into();
    assert_eq!(kind.value(), "follow_up");
    set_select("#callcard-summary-task-kind", "meeting");
    set_select("#callcard-summary-task-user", "8375357");
    type_into("#callcard-summary-task-when", "2030-01-02T10:30");
    type_into("#callcard-summary-task-text", "Send the quote");
    el("#callcard-summary-save").unwrap().click();
    settle(0).await;

    // The modal closes at once and says "Saving…".
    assert!(el("#callcard-summary").is_none(), "closed on Save");
    assert!(el(".modal.callcard-summary-modal").is_none(), "Kommo's modal is closed too");
    assert_eq!(message("c-save"), Some(("warning".into(), "Saving…".into())));
    wait_for("the result post", || !result_posts().is_empty()).await;
    let posts = result_posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(prop(&posts[0], "method").as_string().as_deref(), Some("POST"));
    assert!(prop(&posts[0], "url").as_string().unwrap().ends_with("/backend/widget/calls/c-save/result"));
    let body: serde_json::Value = serde_json::from_str(&prop(&posts[0], "data").as_string().unwrap()).unwrap();
    assert_eq!(body["entity"], serde_json::json!({"kind": "lead", "id": 5}));
    assert_eq!(body["note"], "Wants a quote");
    assert_eq!(body["subject"], "Quote for 40 seats");
    assert_eq!(body["task"]["text"], "Send the quote");
    assert_eq!(body["task"]["kind"], "meeting");
    assert_eq!(body["task"]["responsible_user_id"], 8375357);
    assert!(body["task"]["complete_till"].as_i64().unwrap() > 1_890_000_000);

    // Accepted, not applied yet: still saving. Then the job is done.
    let mut saved = ended_call("c-save", true);
    saved.has_result = true;
    feed_says(&saved);
    settle(0).await;
    assert_eq!(message("c-save"), Some(("warning".into(), "Saving…".into())));
    saved.result_logged = true;
    feed_says(&saved);
    settle(0).await;
    assert_eq!(message("c-save"), Some(("success".into(), "Logged on Quote <for> ACME".into())));
    assert!(el(".callcard-message[data-call-id='c-save'] .callcard-message-retry").is_none());
    callcard_widget::widget_destroy(this);
}

fn elements(selector: &str) -> Vec<web_sys::HtmlElement> {
    let list = doc().query_selector_all(selector).unwrap();
    (0..list.length()).filter_map(|i| list.item(i)).map(|n| n.unchecked_into()).collect()
}

#[wasm_bindgen_test]
async fn the_summary_shows_each_kind_of_caller_and_can_put_the_call_on_any_kind() {
    let this = install_fakes("Promise.resolve(null)");
    callcard_widget::widget_init(this.clone());
    let queue = callcard_widget::session::summaries().unwrap();

    // A lead Kommo's rule picked, held by a contact of a company: the contact's
    // and the company's lines, the lead with its status.
    let contact = EntityRef::new(EntityKind::Contact, 7);
    let lead = EntityRef::new(EntityKind::Lead, 31);
    queue.open(&ended_call_from(
        "c-lead",
        CallerId::Known {
            name: "Website redesign".into(),
            entity: lead,
            holder: Some(CallerHolder { entity: contact, name: "Maria Gonzalez".into() }),
            company: Some(CallerHolder {
                entity: EntityRef::new(EntityKind::Company, 12),
                name: "Gonzalez <b>Design</b> Studio".into(),
            }),
            deal: Some(CallerDeal { status_id: 20, pipeline_id: 3, responsible_user_id: 8375357 }),
        },
    ));
    summary_shown().await;
    // The stage and the user's name need Kommo's pipelines and users, asked when the summary opened.
    let meta = || text_of(".callcard-summary-entity .callcard-summary-meta");
    wait_for("the lead's stage and responsible user", || meta().contains("Initial contact") && !meta().contains('#'))
        .await;
    assert_eq!(fact("caller").as_deref(), Some("Maria Gonzalez"), "the person, not the lead");
    assert_eq!(fact("contact").as_deref(), Some("Maria Gonzalez"));
    assert_eq!(href("#callcard-summary-party dd[data-fact=contact] a").as_deref(), Some("/contacts/detail/7"));
    assert_eq!(fact("company").as_deref(), Some("Gonzalez <b>Design</b> Studio"), "her company, as text");
    assert_eq!(href("#callcard-summary-party dd[data-fact=company] a").as_deref(), Some("/companies/detail/12"));
    assert!(el("#callcard-summary-party dd[data-fact=company] b").is_none(), "CRM text became markup");
    assert_eq!(text_of(".callcard-summary-entity .callcard-summary-kind"), "Lead");
    assert_eq!(text_of(".callcard-summary-entity a.callcard-record"), "Website redesign");
    assert_eq!(href(".callcard-summary-entity a.callcard-record").as_deref(), Some("/leads/detail/31"));
    assert_eq!(
        text_of(".callcard-summary-entity .callcard-summary-meta"),
        "Initial contact · Responsible: Boris Ivanov"
    );
    // The manager puts it on the company instead (the "contact/company chosen" branch).
    type_into("#callcard-summary-search", "acme");
    search_answered().await;
    let company = el(".callcard-summary-hit[data-entity-type=company]").expect("companies are searched");
    assert!(company.text_content().unwrap().contains("Responsible: Boris Ivanov"));
    company.click();
    settle(0).await;
    el("#callcard-summary-save").unwrap().click();
    wait_for("the result post", || result_posts().len() == 1).await;
    let body: serde_json::Value = serde_json::from_str(&prop(&result_posts()[0], "data").as_string().unwrap()).unwrap();
    assert_eq!(body["entity"], serde_json::json!({"kind": "company", "id": 9}));

    // A company that holds the number: its line links to its card.
    queue.open(&ended_call_from("c-company", CallerId::known("ACME Corp", EntityRef::new(EntityKind::Company, 9))));
    summary_shown().await;
    assert_eq!(fact("company").as_deref(), Some("ACME Corp"));
    assert_eq!(href("#callcard-summary-party dd[data-fact=company] a").as_deref(), Some("/companies/detail/9"));
    assert!(fact("contact").is_none());
    // …put on a contact.
    type_into("#callcard-summary-search", "anna");
    search_answered().await;
    el(".callcard-summary-hit[data-entity-type=contact]").expect("contacts are searched").click();
    settle(0).await;
    el("#callcard-summary-save").unwrap().click();
    wait_for("the second result post", || result_posts().len() == 2).await;
    let body: serde_json::Value = serde_json::from_str(&prop(&result_posts()[1], "data").as_string().unwrap()).unwrap();
    assert_eq!(body["entity"], serde_json::json!({"kind": "contact", "id": 7}));

    // A number nobody has: no record lines, nothing chosen yet, and Save says what is missing.
    let mut unknown = ended_call("c-unknown", false);
    unknown.caller = CallerId::Unknown;
    queue.open(&unknown);
    summary_shown().await;
    assert!(fact("caller").is_none() && fact("contact").is_none() && fact("company").is_none());
    assert_eq!(text_of(".callcard-summary-entity"), "No record linked yet");
    el("#callcard-summary-save").unwrap().click();
    settle(0).await;
    assert_eq!(state(), "error");
    assert_eq!(text_of(".callcard-summary-error"), "Choose the record the call belongs on.");
    assert_eq!(result_posts().len(), 2, "nothing sent");
    callcard_widget::widget_destroy(this);
}

#[wasm_bindgen_test]
async fn several_summaries_show_one_at_a_time_and_cancel_keeps_them() {
    let this = install_fakes("Promise.resolve(null)");
    callcard_widget::widget_init(this.clone());
    let queue = callcard_widget::session::summaries().unwrap();
    // Focus is somewhere on Kommo's page when the calls end.
    let outside = focused_page_button();
    for id in ["c-1", "c-2", "c-3"] {
        queue.open(&ended_call(id, false));
    }
    summary_shown().await;
    let modals = || doc().query_selector_all(".modal.callcard-summary-modal").unwrap().length();
    assert_eq!(modals(), 1, "one modal at a time");
    let shown = || el("#callcard-summary").and_then(|d| d.get_attribute("data-call-id")).unwrap_or_default();
    assert_eq!((shown(), text_of("#callcard-summary-position")), ("c-1".into(), "1 of 3".into()));
    assert!(el("#callcard-summary-prev").unwrap().unchecked_into::<web_sys::HtmlButtonElement>().disabled());
    type_into("#callcard-summary-note", "About the first");
    settle(20).await;
    el("#callcard-summary-next").unwrap().click();
    settle(20).await;
    assert_eq!((shown(), text_of("#callcard-summary-position")), ("c-2".into(), "2 of 3".into()));
    el("#callcard-summary-next").unwrap().click();
    settle(20).await;
    assert_eq!(shown(), "c-3");
    assert!(el("#callcard-summary-next").unwrap().unchecked_into::<web_sys::HtmlButtonElement>().disabled());
    el("#callcard-summary-prev").unwrap().click();
    el("#callcard-summary-prev").unwrap().click();
    settle(20).await;
    let note: web_sys::HtmlTextAreaElement = el("#callcard-summary-note").unwrap().unchecked_into();
    assert_eq!((shown(), note.value()), ("c-1".into(), "About the first".into()), "what was typed is kept");

    // Cancel takes the shown call off the modal; it stays listed as "no result".
    el("#callcard-summary-cancel").unwrap().click();
    settle(20).await;
    assert_eq!((shown(), text_of("#callcard-summary-position")), ("c-2".into(), "1 of 2".into()));
    // Kommo's close button keeps the others the same way.
    el(".modal.callcard-summary-modal .modal-body__close").unwrap().click();
    settle(20).await;
    assert_eq!(modals(), 0);
    assert_eq!(focused_id(), "kommo-button", "focus is back where it was");
    assert_eq!(text_of(".callcard-no-result span"), "Calls without a result: 3");
    assert!(result_posts().is_empty());

    // Nothing is lost: they open again, with what was typed.
    el("#callcard-no-result-open").unwrap().click();
    summary_shown().await;
    assert_eq!((shown(), text_of("#callcard-summary-position")), ("c-1".into(), "1 of 3".into()));
    let note: web_sys::HtmlTextAreaElement = el("#callcard-summary-note").unwrap().unchecked_into();
    assert_eq!(note.value(), "About the first");
    assert!(el(".callcard-no-result").is_none());
    // Saving one moves on to the next.
    el("#callcard-summary-save").unwrap().click();
    settle(20).await;
    assert_eq!((shown(), text_of("#callcard-summary-position")), ("c-2".into(), "1 of 2".into()));
    outside.remove();
    callcard_widget::widget_destroy(this);
}

#[wasm_bindgen_test]
async fn a_result_kommo_refuses_says_why_and_retry_reopens_it() {
    let this = install_fakes("Promise.resolve(null)");
    callcard_widget::widget_init(this.clone());
    let queue = callcard_widget::session::summaries().unwrap();
    queue.open(&ended_call("c-fail", false));
    summary_shown().await;
    type_into("#callcard-summary-note", "Keep me");
    el("#callcard-summary-save").unwrap().click();
    wait_for("the result post", || !result_posts().is_empty()).await;
    assert_eq!(message("c-fail"), Some(("warning".into(), "Saving…".into())));
    // The job could not apply it: the feed carries the reason.
    let mut refused = ended_call("c-fail", false);
    refused.has_result = true;
    refused.result_error = Some("the contact was deleted in Kommo".into());
    feed_says(&refused);
    settle(0).await;
    assert_eq!(
        message("c-fail"),
        Some(("danger".into(), "Not logged on Anna <b>Petrova</b>: the contact was deleted in Kommo".into()))
    );
    let failed = el(".callcard-message[data-call-id='c-fail']").unwrap();
    assert_eq!(failed.get_attribute("role").as_deref(), Some("alert"));
    // Retry: the summary opens again with what was saved.
    el(".callcard-message[data-call-id='c-fail'] .callcard-message-retry").expect("Retry").click();
    summary_shown().await;
    assert!(modal_open());
    let note: web_sys::HtmlTextAreaElement = el("#callcard-summary-note").unwrap().unchecked_into();
    assert_eq!(note.value(), "Keep me");
    assert!(message("c-fail").is_none());
    el("#callcard-summary-save").unwrap().click();
    wait_for("the result sent again", || result_posts().len() >= 2).await;
    assert_eq!(result_posts().len(), 2, "sent again");
    callcard_widget::widget_destroy(this);
}

#[wasm_bindgen_test]
async fn a_refused_save_says_why_and_an_offline_one_is_queued() {
    let this = install_fakes("Promise.reject({status: 422, responseJSON: {title: 'Invalid', detail: 'entity gone'}})");
    callcard_widget::widget_init(this.clone());
    let queue = callcard_widget::session::summaries().unwrap();
    queue.open(&ended_call("c-err", false));
    summary_shown().await;

    type_into("#callcard-summary-note", "Keep me");
    el("#callcard-summary-task").unwrap().click();
    settle(0).await;
    // Ticking the task proposes the next working day at 10:00…
    let when = el("#callcard-summary-task-when").unwrap().dyn_into::<web_sys::HtmlInputElement>().unwrap().value();
    assert!(when.ends_with("T10:00"), "default due time: {when:?}");
    el("#callcard-summary-save").unwrap().click();
    settle(0).await;
    // …but what to do is the manager's to say: the form stays.
    assert_eq!(state(), "error", "a task needs a text");
    assert_eq!(text_of(".callcard-summary-error"), "Describe the task.");
    assert!(result_posts().is_empty());
    el("#callcard-summary-task").unwrap().click();
    settle(0).await;

    el("#callcard-summary-save").unwrap().click();
    wait_for("the refusal", || message("c-err").is_some_and(|(kind, _)| kind == "danger")).await;
    assert_eq!(result_posts().len(), 1);
    assert!(el("#callcard-summary").is_none());
    assert_eq!(message("c-err"), Some(("danger".into(), "Not logged on Anna <b>Petrova</b>: entity gone".into())));
    el(".callcard-message[data-call-id='c-err'] .callcard-message-retry").unwrap().click();
    summary_shown().await;
    let note: web_sys::HtmlTextAreaElement = el("#callcard-summary-note").unwrap().unchecked_into();
    assert_eq!(note.value(), "Keep me");

    // Offline now: the result is queued, and the manager is told.
    js_sys::eval("window.resultAnswer = function () { return Promise.reject({status: 0, statusText: 'error'}); }")
        .unwrap();
    el("#callcard-summary-save").unwrap().click();
    wait_for("the result queued", || outbox_json().is_some()).await;
    assert!(el("#callcard-summary").is_none());
    assert_eq!(
        message("c-err"),
        Some(("warning".into(), "You are offline: the call result will be sent when the connection is back.".into()))
    );
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
    summary_shown().await;
    key(&el("#callcard-summary-note").unwrap(), "Escape", false);
    settle(20).await;
    assert!(el("#callcard-summary").is_none());
    assert!(el(".modal.callcard-summary-modal").is_none());
    assert!(result_posts().is_empty());
    assert_eq!(text_of(".callcard-no-result span"), "Calls without a result: 1", "cancelled, not lost");
    callcard_widget::widget_destroy(this);
}

/// A missed call was never talked on: no recording will come, so its
/// summary does not say "Processing the recording…"; a voicemail the PBX
/// sends for it still shows, with its player.
#[wasm_bindgen_test]
async fn a_missed_call_shows_no_recording_panel_until_a_voicemail_arrives() {
    let this = install_fakes("Promise.resolve(null)");
    callcard_widget::widget_init(this.clone());
    let queue = callcard_widget::session::summaries().unwrap();
    queue.open(&missed_call("c-missed", false));
    summary_shown().await;
    assert_eq!(fact("talked").as_deref(), Some("0:00"));
    assert!(el(".callcard-summary-recording").is_none(), "a missed call has no recording panel");
    queue.refresh(&missed_call("c-missed", true));
    settle(0).await;
    let audio = doc().query_selector("#callcard-summary audio").unwrap().expect("the voicemail's player");
    assert_eq!(audio.get_attribute("src").as_deref(), Some("https://pbx.example/vm.mp3"));
    callcard_widget::widget_destroy(this);
}

#[wasm_bindgen_test]
async fn what_was_typed_survives_a_reload_until_cancel() {
    let this = install_fakes("Promise.resolve(null)");
    callcard_widget::widget_init(this.clone());
    callcard_widget::session::summaries().unwrap().open(&ended_call("c-draft", true));
    summary_shown().await;
    type_into("#callcard-summary-note", "Half a thought");
    el("#callcard-summary-task").unwrap().click();
    settle(0).await;
    type_into("#callcard-summary-task-text", "Call back");
    settle(20).await;

    // The page goes away before Save (destroy + init is what a reload does to the widget).
    callcard_widget::widget_destroy(this.clone());
    assert!(el("#callcard-summary").is_none());
    callcard_widget::widget_init(this.clone());
    summary_shown().await;
    let dialog = el("#callcard-summary").expect("the summary reopens after the reload");
    assert_eq!(dialog.get_attribute("data-call-id").as_deref(), Some("c-draft"));
    let note: web_sys::HtmlTextAreaElement = el("#callcard-summary-note").unwrap().unchecked_into();
    assert_eq!(note.value(), "Half a thought");
    let task: web_sys::HtmlInputElement = el("#callcard-summary-task").unwrap().unchecked_into();
    assert!(task.checked());
    let text: web_sys::HtmlInputElement = el("#callcard-summary-task-text").unwrap().unchecked_into();
    assert_eq!(text.value(), "Call back");
    assert!(doc().query_selector("#callcard-summary audio").unwrap().is_some(), "with its recording");

    // Cancel: the next load opens nothing, but lists the call as "no result", typed note and all.
    el("#callcard-summary-cancel").unwrap().click();
    settle(20).await;
    callcard_widget::widget_destroy(this.clone());
    callcard_widget::widget_init(this.clone());
    wait_for("the call listed as no result", || el(".callcard-no-result").is_some()).await;
    assert!(el("#callcard-summary").is_none());
    assert_eq!(text_of(".callcard-no-result span"), "Calls without a result: 1");
    el("#callcard-no-result-open").unwrap().click();
    summary_shown().await;
    let note: web_sys::HtmlTextAreaElement = el("#callcard-summary-note").unwrap().unchecked_into();
    assert_eq!(note.value(), "Half a thought");
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
    let queue = callcard_widget::session::summaries().unwrap();
    // Focus is on Kommo's page when the call ends.
    let outside = focused_page_button();
    queue.open(&ended_call("c-keys", false));
    summary_shown().await;
    assert_eq!(focused_id(), "callcard-summary-search", "focus starts in the search field");
    let dialog = el("#callcard-summary").unwrap();
    assert_eq!(dialog.get_attribute("aria-modal").as_deref(), Some("true"));
    assert_eq!(dialog.get_attribute("aria-labelledby").as_deref(), Some("callcard-summary-title"));
    assert_eq!(dialog.get_attribute("aria-describedby").as_deref(), Some("callcard-summary-party"));

    // Search, then walk to the hit with the arrow keys and choose it with Enter (a button).
    type_into("#callcard-summary-search", "quo");
    search_answered().await;
    key(&el("#callcard-summary-search").unwrap(), "ArrowDown", false);
    let hit = doc().active_element().expect("focus moved");
    assert_eq!(hit.class_name(), "callcard-summary-hit");
    key(&hit, "ArrowUp", false);
    assert_eq!(focused_id(), "callcard-summary-search", "up from the first hit: back to the field");
    key(&el("#callcard-summary-search").unwrap(), "ArrowDown", false);
    el(".callcard-summary-hit").unwrap().click();
    settle(0).await;
    assert_eq!(text_of(".callcard-summary-entity a.callcard-record"), "Quote <for> ACME");
    assert_eq!(focused_id(), "callcard-summary-search", "focus stays in the form after choosing");

    // Tab wraps inside the modal, both ways, Kommo's close × included: from
    // the × forward to the first control (the contact's card link) and back.
    el(".modal.callcard-summary-modal .modal-body__close").unwrap().focus().unwrap();
    key(&el(".modal.callcard-summary-modal .modal-body__close").unwrap(), "Tab", false);
    let first = doc().active_element().expect("focus moved");
    assert_eq!(first.get_attribute("href").as_deref(), Some("/contacts/detail/7"));
    key(&first, "Tab", true);
    // Kommo's close × is on the way: Shift+Tab from the first control reaches it,
    // and Tab from Cancel too; from it, Tab goes on into the form and Shift+Tab around.
    let close = el(".modal.callcard-summary-modal .modal-body__close").unwrap();
    assert_eq!(doc().active_element().as_ref(), Some(close.as_ref()), "Shift+Tab from the first control: the ×");
    key(&close, "Tab", true);
    assert_eq!(focused_id(), "callcard-summary-cancel", "Shift+Tab from the ×: around to Cancel");
    key(&el("#callcard-summary-cancel").unwrap(), "Tab", false);
    assert_eq!(doc().active_element().as_ref(), Some(close.as_ref()), "Tab from Cancel: the ×");
    key(&close, "Tab", false);
    assert_eq!(doc().active_element().as_ref(), Some(first.as_ref()), "Tab from the ×: the form's first control");

    // Closing gives focus back to where it was. Escape…
    key(&first, "Escape", false);
    settle(0).await;
    assert!(!modal_open());
    wait_for("focus back on the page's button after Escape", || focused_id() == "kommo-button").await;
    // …Cancel, with the summary reopened from "Add results" (which goes
    // while a summary is open and comes back when none is)…
    let add = el("#callcard-no-result-open").expect("listed as no result");
    add.focus().unwrap();
    add.click();
    summary_shown().await;
    assert_eq!(focused_id(), "callcard-summary-search");
    el("#callcard-summary-cancel").unwrap().focus().unwrap();
    el("#callcard-summary-cancel").unwrap().click();
    settle(0).await;
    assert!(!modal_open());
    wait_for("focus back on Add results after Cancel", || focused_id() == "callcard-no-result-open").await;
    // …and Save.
    outside.focus().unwrap();
    queue.open(&ended_call("c-keys-save", false));
    summary_shown().await;
    el("#callcard-summary-save").unwrap().focus().unwrap();
    el("#callcard-summary-save").unwrap().click();
    settle(0).await;
    assert!(!modal_open(), "saved and closed");
    wait_for("focus back on the page's button after Save", || focused_id() == "kommo-button").await;
    outside.remove();
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
        summary_shown().await;
        el("#callcard-summary-task").unwrap().click();
        settle(0).await;
        type_into("#callcard-summary-task-when", &format!("{YEAR}-{:02}-{day:02}T01:30", month0 + 1));
        type_into("#callcard-summary-task-text", "Call back");
        el("#callcard-summary-save").unwrap().click();
        wait_for("the result post", || result_posts().len() == i + 1).await;
        assert!(el("#callcard-summary").is_none(), "saved and closed");
        let posts = result_posts();
        assert_eq!(posts.len(), i + 1);
        let body: serde_json::Value = serde_json::from_str(&prop(&posts[i], "data").as_string().unwrap()).unwrap();
        assert_eq!(body["task"]["complete_till"].as_i64(), Some(browser_local(YEAR, month0, day, 1, 30)), "{body}");
    }
    callcard_widget::widget_destroy(this);
}
