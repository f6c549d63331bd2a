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
//!   comes down; the call is logged once, for Bruno, with the path.

use callcard_calls::{EntityKind, EntityRef};
use callcard_demo::pbx_simulator::PanelRequest;
use callcard_e2e::{users, Browser, Chromedriver, Product};
use fantoccini::Locator;
use std::time::{Duration, Instant};

const MARIA: &str = "+1 830 570 3077";
/// Where Maria's calls are logged: her one active lead.
const LEAD: EntityRef = EntityRef { kind: EntityKind::Lead, id: 5_756_100 };

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_rings_the_extension_and_logs_an_outbound_call() -> anyhow::Result<()> {
    let product = Product::start().await?;
    let driver = Chromedriver::start().await?;
    let anna = Browser::open(&driver).await?;
    anna.client.goto(&product.page_for(users::ANNA)).await?;
    anna.wait_for("#callcard-root[data-feed=live]", 30).await?;
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
    let anna = Browser::open(&driver).await?;
    let bruno = Browser::open(&driver).await?;
    anna.client.goto(&product.page_for(users::ANNA)).await?;
    bruno.client.goto(&product.page_for(users::BRUNO)).await?;
    anna.wait_for("#callcard-root[data-feed=live]", 30).await?;
    bruno.wait_for("#callcard-root[data-feed=live]", 30).await?;

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
    let anna = Browser::open(&driver).await?;
    let bruno = Browser::open(&driver).await?;
    anna.client.goto(&product.page_for(users::ANNA)).await?;
    bruno.client.goto(&product.page_for(users::BRUNO)).await?;
    anna.wait_for("#callcard-root[data-feed=live]", 30).await?;
    bruno.wait_for("#callcard-root[data-feed=live]", 30).await?;

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
