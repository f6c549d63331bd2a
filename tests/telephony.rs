//! The telephony flows end to end, through the host page, the widget, the
//! backend, the PBX simulator and the Kommo sandbox:
//!
//! - click-to-call: Kommo's click on a number (the widget's `phone` action,
//!   as the host page's PBX panel plays it) makes the backend ask the
//!   simulator to originate; the outgoing call pops up and is logged as
//!   `call_out`;
//! - a ring group: one call rings Anna and Bruno, Bruno answers, Anna's
//!   pop-up comes down, and only Bruno gets the finished call;
//! - a transfer: Anna answers, transfers to Bruno, whose card pops; Anna's
//!   comes down; the call is logged once, for Bruno, with the path;
//! - routing: the panel rings a call with the extension left to routing;
//!   the simulator asks the backend's signed route and rings the caller's
//!   responsible manager (Bruno, not Anna, the page's own user), and an
//!   unknown number rings the default group, the panel saying why;
//! - missed-call follow-up: with the account's setting on (the settings
//!   page's switch, or the API with an admin's token), a call that rings and
//!   is hung up unanswered gets one task on the record it is logged on, and
//!   keeps one when the PBX delivers its end again; a group call nobody
//!   answers is logged once as missed, with one task, for the account's
//!   `unanswered_group_user_id`.

use callcard_calls::route::NoRoute;
use callcard_calls::{EntityKind, EntityRef};
use callcard_demo::pbx_simulator::PanelRequest;
use callcard_e2e::{users, Browser, Chromedriver, Product};
use fantoccini::Locator;
use kommo_sandbox::seed::numbers;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MARIA: &str = "+1 830 570 3077";
/// Where Maria's calls are logged: her one active lead (Anna's).
const LEAD: EntityRef = EntityRef { kind: EntityKind::Lead, id: 5_756_100 };
/// Northwind Traders: its one active lead is Bruno's.
const NORTHWIND: &str = numbers::COMPANY_ONE_ACTIVE_LEAD;
/// Chen Wei, extension 103 (the seed's third user).
const CHEN: u64 = 8_390_001;

fn panel(event: &str, call_id: Option<&str>) -> PanelRequest {
    PanelRequest {
        event: event.into(),
        call_id: call_id.map(Into::into),
        direction: Some(callcard_calls::Direction::Inbound),
        external_number: Some(MARIA.into()),
        ..PanelRequest::default()
    }
}

async fn play(product: &Product, req: PanelRequest) -> anyhow::Result<String> {
    Ok(product.demo.pbx.play(&req).await?.call_id)
}

/// Whether the browser shows a call pop-up of `call_id` (the widget marks
/// its pop-ups' text with the call id).
async fn shows_popup_of(browser: &Browser, call_id: &str) -> anyhow::Result<bool> {
    let marks =
        browser.client.find_all(Locator::Css(".notification-popup[data-type=call] [data-callcard-call]")).await?;
    for mark in marks {
        if mark.attr("data-callcard-call").await?.as_deref() == Some(call_id) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How many call pop-ups the browser shows.
async fn call_popups(browser: &Browser) -> anyhow::Result<usize> {
    Ok(browser.client.find_all(Locator::Css(".notification-popup[data-type=call]")).await?.len())
}

async fn until(what: &str, secs: u64, mut check: impl AsyncFnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await? {
        anyhow::ensure!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The call's notes on Maria's lead: (note type, responsible user, result text).
fn notes(product: &Product, call_id: &str) -> Vec<(String, u64, String)> {
    let st = product.demo.sandbox.store();
    st.notes_of(LEAD)
        .into_iter()
        .filter(|n| n.params["uniq"] == call_id)
        .map(|n| {
            let text = n.params["call_result"].as_str().unwrap_or_default().to_string();
            (n.note_type.clone(), n.responsible_user_id, text)
        })
        .collect()
}

/// Saves what the browser shows as `<name>.png` when `CALLCARD_E2E_SHOTS`
/// names a folder (to look at the flows; the tests assert on the DOM).
async fn shot(browser: &Browser, name: &str) -> anyhow::Result<()> {
    if let Some(dir) = std::env::var_os("CALLCARD_E2E_SHOTS") {
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), browser.client.screenshot().await?)?;
    }
    Ok(())
}

async fn completed_calls(browser: &Browser) -> anyhow::Result<usize> {
    Ok(browser.notifications("add_call").await?.len())
}

/// Whether the page was ever asked to pop up `call_id` (its pop-ups may
/// have closed since; the host page logs every `show_notification`).
async fn was_shown(browser: &Browser, call_id: &str) -> anyhow::Result<bool> {
    let shown = browser.notifications("show_notification").await?;
    Ok(shown.iter().any(|n| n.to_string().contains(call_id)))
}

/// The call the panel acted on last (its selected row).
async fn panel_call(browser: &Browser) -> anyhow::Result<String> {
    let row = browser.wait_for("#pbx-calls tr.pbx-call[aria-selected=true]", 10).await?;
    Ok(row.attr("data-call-id").await?.unwrap_or_default())
}

/// The panel's simulator log, newest first (its text, though the log's
/// box is folded).
async fn panel_log(browser: &Browser) -> anyhow::Result<Vec<String>> {
    let script = "return Array.from(document.querySelectorAll('#pbx-log li.pbx-log-entry'), function (li) { return li.textContent; });";
    Ok(serde_json::from_value(browser.client.execute(script, vec![]).await?)?)
}

/// What the panel says routing did.
async fn routing_notice(browser: &Browser, routed: &str) -> anyhow::Result<String> {
    let notice = browser.wait_for(&format!("#pbx-routing[data-routed={routed}]:not([hidden])"), 10).await?;
    Ok(notice.prop("innerText").await?.unwrap_or_default())
}

/// Saves the account's log settings as the page's user, the way the
/// widget does: `PUT /widget/log-settings/account` through Kommo's
/// `$authorizedAjax` (a fresh one-time token).
async fn save_account_log_settings(browser: &Browser, backend_url: &str, settings: Value) -> anyhow::Result<Value> {
    let script = "var done = arguments[arguments.length - 1];\
        CallcardHost.widget.$authorizedAjax({url: arguments[0] + '/widget/log-settings/account', method: 'PUT',\
            contentType: 'application/json', dataType: 'json', data: JSON.stringify(arguments[1])})\
          .done(function (view) { done({view: view}); })\
          .fail(function (xhr) { done({status: xhr.status, body: xhr.responseText}); });";
    let answer = browser.client.execute_async(script, vec![json!(backend_url), settings]).await?;
    anyhow::ensure!(answer["view"].is_object(), "the log settings were refused: {answer}");
    Ok(answer["view"].clone())
}

/// The follow-up tasks ("Call back …") on a record: (responsible user, text).
fn follow_ups(product: &Product, on: EntityRef) -> Vec<(u64, String)> {
    let st = product.demo.sandbox.store();
    st.tasks_of(on)
        .into_iter()
        .filter(|t| t.text.starts_with("Call back"))
        .map(|t| (t.responsible_user_id, t.text.clone()))
        .collect()
}

/// The call as the backend stores it, once `ready` holds.
async fn stored_call(
    product: &Product,
    call_id: &str,
    what: &str,
    ready: impl Fn(&callcard_backend::StoredCall) -> bool,
) -> anyhow::Result<callcard_backend::StoredCall> {
    let account = product.demo.sandbox.account_id();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(call) = product.demo.backend.call(account, call_id).await? {
            if ready(&call) {
                return Ok(call);
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out after 20 s waiting for {what} of {call_id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until none of the call's background jobs is pending or running.
async fn jobs_done(product: &Product, call_id: &str) -> anyhow::Result<()> {
    let account = product.demo.sandbox.account_id();
    until("the call's jobs to finish", 20, async || {
        let jobs = product.demo.backend.store().jobs(None, Some((account, call_id)), 50).await?;
        Ok(!jobs
            .iter()
            .any(|j| matches!(j.state, callcard_backend::JobState::Pending | callcard_backend::JobState::Running)))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_rings_the_extension_and_logs_an_outbound_call() -> anyhow::Result<()> {
    let product = Product::start().await?;
    let driver = Chromedriver::start().await?;
    let anna = product.live_page(&driver, users::ANNA).await?;
    let registered = anna.client.execute("return CallcardHost.widgetCalls.add_action;", vec![]).await?;
    assert_eq!(registered, serde_json::json!(["phone"]), "init registered the phone action");

    // Anna clicks Maria's number (the PBX panel plays Kommo's click).
    let number = anna.wait_for("#pbx-external-number", 5).await?;
    number.clear().await?;
    number.send_keys(MARIA).await?;
    anna.wait_for("#pbx-originate", 5).await?.click().await?;
    let calling = anna.wait_for(".notification-popup[data-type=message]", 10).await?;
    let text = calling.prop("innerText").await?.unwrap_or_default();
    assert!(text.contains("Calling") && text.contains("3077"), "the widget says it is calling: {text:?}");
    // The simulator rang her extension: the outgoing call pops up.
    let popup = anna.wait_for(".notification-popup[data-type=call]", 10).await?;
    shot(&anna, "click-to-call-anna").await?;
    let text = popup.prop("innerText").await?.unwrap_or_default();
    assert!(text.contains("Outgoing") && text.contains("3077"), "an outgoing call pop-up: {text:?}");
    let call_id = product.demo.pbx.call_ids().first().cloned().expect("the simulator placed the call");
    assert!(call_id.starts_with("cc-"), "the backend's call id: {call_id}");
    // The panel lists the call it did not place.
    anna.wait_for(&format!("#pbx-calls tr.pbx-call[data-call-id='{call_id}']"), 10).await?;

    play(&product, PanelRequest { event: "answered".into(), call_id: Some(call_id.clone()), ..Default::default() })
        .await?;
    play(&product, PanelRequest { event: "ended".into(), call_id: Some(call_id.clone()), ..Default::default() })
        .await?;
    until("the outbound call's note", 20, async || Ok(!notes(&product, &call_id).is_empty())).await?;
    let logged = notes(&product, &call_id);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!((logged[0].0.as_str(), logged[0].1), ("call_out", users::ANNA), "{logged:?}");
    anna.close().await?;
    product.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_call_pops_for_every_agent_and_stays_with_whoever_answers() -> anyhow::Result<()> {
    let product = Product::start().await?;
    let driver = Chromedriver::start().await?;
    let anna = product.live_page(&driver, users::ANNA).await?;
    let bruno = product.live_page(&driver, users::BRUNO).await?;

    let id = play(&product, PanelRequest { extension: Some("101, 102".into()), ..panel("ringing", None) }).await?;
    until("Anna's pop-up", 10, async || shows_popup_of(&anna, &id).await).await?;
    until("Bruno's pop-up", 10, async || shows_popup_of(&bruno, &id).await).await?;
    shot(&anna, "group-ringing-anna").await?;

    // Bruno answers: Anna's pop-up comes down at once (well before the 10 s
    // the host page keeps a pop-up), Bruno's stays.
    play(&product, PanelRequest { agent: Some("102".into()), ..panel("answered", Some(&id)) }).await?;
    until("Anna's pop-up to be withdrawn", 4, async || Ok(call_popups(&anna).await? == 0)).await?;
    assert!(shows_popup_of(&bruno, &id).await?, "Bruno's pop-up stays");
    shot(&anna, "group-answered-anna").await?;
    shot(&bruno, "group-answered-bruno").await?;

    play(&product, panel("ended", Some(&id))).await?;
    until("Bruno's finished call", 10, async || Ok(completed_calls(&bruno).await? == 1)).await?;
    until("the group call's note", 20, async || Ok(!notes(&product, &id).is_empty())).await?;
    let logged = notes(&product, &id);
    assert_eq!(logged.len(), 1, "logged once: {logged:?}");
    assert_eq!(logged[0].1, users::BRUNO, "for the agent who answered");
    assert_eq!(completed_calls(&anna).await?, 0, "no phantom missed call for Anna");
    anna.close().await?;
    bruno.close().await?;
    product.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_moves_the_card_to_the_new_agent_and_credits_them() -> anyhow::Result<()> {
    let product = Product::start().await?;
    let driver = Chromedriver::start().await?;
    let anna = product.live_page(&driver, users::ANNA).await?;
    let bruno = product.live_page(&driver, users::BRUNO).await?;

    let id = play(&product, PanelRequest { extension: Some("101".into()), ..panel("ringing", None) }).await?;
    until("Anna's pop-up", 10, async || shows_popup_of(&anna, &id).await).await?;
    play(&product, panel("answered", Some(&id))).await?;
    play(&product, PanelRequest { agent: Some("102".into()), ..panel("transferred", Some(&id)) }).await?;
    until("the card to pop for Bruno", 10, async || shows_popup_of(&bruno, &id).await).await?;
    play(&product, panel("answered", Some(&id))).await?;
    until("Anna's card to be withdrawn", 4, async || Ok(call_popups(&anna).await? == 0)).await?;

    play(&product, panel("ended", Some(&id))).await?;
    // The summary goes to Bruno, who finished the call.
    bruno.wait_for(&format!("#callcard-summary[data-call-id='{id}']"), 15).await?;
    shot(&bruno, "transfer-summary-bruno").await?;
    until("the transferred call's note", 20, async || Ok(!notes(&product, &id).is_empty())).await?;
    let logged = notes(&product, &id);
    assert_eq!(logged.len(), 1, "one call, one note: {logged:?}");
    assert_eq!(logged[0].1, users::BRUNO, "credited to the agent who finished");
    assert!(logged[0].2.contains("transferred 101 → 102"), "the note records the path: {}", logged[0].2);
    assert_eq!(completed_calls(&anna).await?, 0, "Anna has no finished call of hers");
    assert!(anna.client.find(Locator::Css("#callcard-summary")).await.is_err(), "no Call summary for Anna");
    anna.close().await?;
    bruno.close().await?;
    product.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_call_rings_the_responsible_manager_and_an_unknown_number_the_default_group() -> anyhow::Result<()> {
    let product = Product::start().await?;
    let driver = Chromedriver::start().await?;
    let anna = product.live_page(&driver, users::ANNA).await?;
    let bruno = product.live_page(&driver, users::BRUNO).await?;
    // The route answers from the caller index, built after the install.
    until("the caller index", 30, async || {
        let route = product.demo.pbx.route(NORTHWIND).await.map_err(anyhow::Error::msg)?;
        Ok(route.reason != Some(NoRoute::IndexNotReady))
    })
    .await?;
    let route = product.demo.pbx.route(NORTHWIND).await.map_err(anyhow::Error::msg)?;
    let record = route.record.expect("Northwind's number is in Kommo");
    let responsible = product.demo.sandbox.store().get(record).map(|r| r.responsible_user_id);
    assert_eq!(responsible, Some(users::BRUNO), "the seed gives Northwind's lead to Bruno, not to Anna");

    // On Anna's page (her extension in the field), Northwind calls with the
    // extension left to routing.
    let number = anna.wait_for("#pbx-external-number", 5).await?;
    number.clear().await?;
    number.send_keys(NORTHWIND).await?;
    anna.wait_for("#pbx-extension-pick option[value=route]", 5).await?.click().await?;
    let extension = anna.wait_for("#pbx-extension", 5).await?.prop("value").await?;
    assert_eq!(extension.as_deref(), Some(""), "routing leaves the extension to the PBX");
    anna.wait_for("#pbx-ring", 5).await?.click().await?;
    let said = routing_notice(&anna, "extension").await?;
    assert!(said.contains("Routed to 102") && said.contains("Bruno Costa"), "the panel says where: {said:?}");
    let routed = panel_call(&anna).await?;
    until("Bruno's pop-up", 10, async || shows_popup_of(&bruno, &routed).await).await?;
    shot(&anna, "routed-anna").await?;
    shot(&bruno, "routed-bruno").await?;

    // An unknown number: nobody to route to, the default group rings.
    number.clear().await?;
    number.send_keys(numbers::UNKNOWN).await?;
    anna.wait_for("#pbx-ring", 5).await?.click().await?;
    let said = routing_notice(&anna, "fallback").await?;
    assert!(said.contains("nobody in Kommo has this number"), "the panel says why: {said:?}");
    assert!(said.contains("101, 102, 103"), "and which group rang: {said:?}");
    shot(&anna, "routed-fallback-anna").await?;
    let fallback = panel_call(&anna).await?;
    assert_ne!(fallback, routed);
    until("Anna's pop-up of the unknown caller", 10, async || shows_popup_of(&anna, &fallback).await).await?;
    until("Bruno's pop-up of the unknown caller", 10, async || shows_popup_of(&bruno, &fallback).await).await?;
    // Anna's feed delivered the later call: the routed one never reached her.
    assert!(!was_shown(&anna, &routed).await?, "Northwind's call popped for Anna");

    // Bruno takes Northwind's call: it is logged for him on the routed record.
    play(&product, PanelRequest { event: "answered".into(), call_id: Some(routed.clone()), ..Default::default() })
        .await?;
    play(&product, PanelRequest { event: "ended".into(), call_id: Some(routed.clone()), ..Default::default() }).await?;
    let call = stored_call(&product, &routed, "the note", |c| c.note_id.is_some()).await?;
    assert_eq!(call.note_entity, Some(record), "logged on the record the route named");
    assert_eq!(call.kommo_user_id, Some(users::BRUNO));
    anna.close().await?;
    bruno.close().await?;
    product.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_call_gets_one_follow_up_task_even_when_its_end_is_delivered_twice() -> anyhow::Result<()> {
    let product = Product::start().await?;
    let driver = Chromedriver::start().await?;
    let anna = product.live_page(&driver, users::ANNA).await?;

    // Anna, an admin, turns the follow-up task on in the widget's settings.
    anna.wait_for("#nav-widget-settings", 5).await?.click().await?;
    let switch = anna.wait_for("#callcard-log-account-missed_call_task", 15).await?;
    anna.wait_for(".callcard-log-settings[data-state=ready]", 15).await?;
    assert_eq!(switch.prop("checked").await?.as_deref(), Some("false"), "off unless the account asks");
    switch.click().await?;
    anna.wait_for(".callcard-log-settings[data-state=saved]", 15).await?;
    anna.wait_for(".widget-settings-modal .modal-body__close", 5).await?.click().await?;
    anna.wait_for("body:not(:has(.widget-settings-modal))", 5).await?;

    // Maria calls Anna's extension; it rings, and the PBX hangs up unanswered.
    anna.wait_for("#pbx-ring", 5).await?.click().await?;
    let id = panel_call(&anna).await?;
    until("Anna's pop-up", 10, async || shows_popup_of(&anna, &id).await).await?;
    let outcome = anna.wait_for("#pbx-outcome", 5).await?.prop("value").await?;
    assert_eq!(outcome.as_deref(), Some(""), "hang up ends the call as it went");
    anna.wait_for("#pbx-hangup", 5).await?.click().await?;
    anna.wait_for(&format!("#pbx-calls tr.pbx-call[data-call-id='{id}'][data-state=ended]"), 10).await?;
    shot(&anna, "missed-anna").await?;

    let call = stored_call(&product, &id, "the follow-up task", |c| c.missed_task_id.is_some()).await?;
    let on = call.note_entity.expect("the missed call is logged");
    assert_eq!(on, LEAD, "logged on Maria's lead");
    let logged = notes(&product, &id);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!((logged[0].0.as_str(), logged[0].1), ("call_in", users::ANNA), "{logged:?}");
    let tasks = follow_ups(&product, on);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].0, users::ANNA, "for the manager whose phone rang: {tasks:?}");
    assert!(tasks[0].1.contains("missed call"), "{tasks:?}");

    // Anna closes the Call summary the missed call opened; the PBX delivers
    // the same `ended` again (it did not see the backend's answer).
    anna.wait_for(&format!("#callcard-summary[data-call-id='{id}']"), 15).await?;
    anna.client.active_element().await?.send_keys(&fantoccini::key::Key::Escape.to_string()).await?;
    anna.wait_for("body:not(:has(#callcard-summary))", 5).await?;
    anna.wait_for(&format!("#pbx-calls tr.pbx-call[data-call-id='{id}'] .pbx-row-resend"), 5).await?.click().await?;
    until("the resend to be delivered", 10, async || {
        Ok(panel_log(&anna).await?.iter().any(|l| l.contains(&format!("resend {id} → 200"))))
    })
    .await?;
    jobs_done(&product, &id).await?;
    assert_eq!(follow_ups(&product, on).len(), 1, "still one task");
    assert_eq!(notes(&product, &id).len(), 1, "still one note");
    anna.close().await?;
    product.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_call_nobody_answers_is_logged_once_as_missed_with_one_task() -> anyhow::Result<()> {
    let product = Product::start().await?;
    let driver = Chromedriver::start().await?;
    let anna = product.live_page(&driver, users::ANNA).await?;
    let bruno = product.live_page(&driver, users::BRUNO).await?;
    // Anna (an admin) asks for follow-up tasks and gives unanswered group
    // calls to Chen, who is not in the group.
    let settings = json!({"missed_call_task": true, "unanswered_group_user_id": CHEN});
    let view = save_account_log_settings(&anna, &product.demo.backend_url, settings).await?;
    assert_eq!(view["account"]["unanswered_group_user_id"], json!(CHEN), "{view}");

    let ring = anna.wait_for("#pbx-extension", 5).await?;
    ring.clear().await?;
    ring.send_keys("101, 102").await?;
    anna.wait_for("#pbx-ring", 5).await?.click().await?;
    let id = panel_call(&anna).await?;
    until("Anna's pop-up", 10, async || shows_popup_of(&anna, &id).await).await?;
    until("Bruno's pop-up", 10, async || shows_popup_of(&bruno, &id).await).await?;
    anna.wait_for("#pbx-hangup", 5).await?.click().await?;
    // Withdrawn from both at once (well before the host page's 10 s).
    until("Anna's pop-up to be withdrawn", 4, async || Ok(call_popups(&anna).await? == 0)).await?;
    until("Bruno's pop-up to be withdrawn", 4, async || Ok(call_popups(&bruno).await? == 0)).await?;
    shot(&anna, "group-missed-anna").await?;

    let call = stored_call(&product, &id, "the follow-up task", |c| c.missed_task_id.is_some()).await?;
    assert_eq!(call.note_entity, Some(LEAD), "logged on Maria's lead");
    jobs_done(&product, &id).await?;
    let logged = notes(&product, &id);
    assert_eq!(logged.len(), 1, "logged once: {logged:?}");
    assert_eq!((logged[0].0.as_str(), logged[0].1), ("call_in", CHEN), "for the account's choice: {logged:?}");
    let note =
        product.demo.sandbox.store().notes_of(LEAD).into_iter().find(|n| n.params["uniq"] == id.as_str()).cloned();
    let params = note.map(|n| n.params).unwrap_or_default();
    assert_eq!(params["duration"], 0, "missed: zero seconds: {params}");
    let tasks = follow_ups(&product, LEAD);
    assert_eq!(tasks.len(), 1, "one task: {tasks:?}");
    assert_eq!(tasks[0].0, CHEN, "{tasks:?}");
    assert_eq!(completed_calls(&anna).await?, 0, "no phantom missed call for Anna");
    assert_eq!(completed_calls(&bruno).await?, 0, "no phantom missed call for Bruno");
    anna.close().await?;
    bruno.close().await?;
    product.shutdown().await
}
