//! `cargo xtask screenshots`: the widget's states as a manager sees them,
//! rendered through the whole product (sandbox Kommo, host page, widget,
//! backend, PBX) in headless Chromium at 1024 and 1440 px wide, written as
//! PNG files into the folder given as the first argument (`docs/screenshots/`).
//!
//! States, each reached as a manager would reach it:
//! - `ringing-known-<w>.png`: a known caller's ringing card, named on the
//!   first pop-up;
//! - `ringing-unknown-<w>.png`: an unknown caller's, with "Create contact";
//! - `summary-<w>.png`: the Call summary in Kommo's modal after the call, the
//!   recording still processing;
//! - `summary-recording-<w>.png`: the same summary once the PBX delivered the
//!   recording: the player and the download link;
//! - `logged-<w>.png`: the message once the saved result is logged in Kommo
//!   (the cancelled unknown call is listed as "no result" beside it);
//! - `summary-pending-<w>.png`: three calls ended one after another: "1 of 3"
//!   with Previous and Next;
//! - `summary-company-<w>.png`: Next, to the call from a company (Northwind
//!   Traders, whose lead Kommo's rule picked);
//! - `saving-<w>.png` and `failed-<w>.png`: a result Kommo refuses: the
//!   backend took it, then its lead was deleted in Kommo before the job wrote
//!   the note (Kommo's answers are held by the sandbox's fault injection
//!   meanwhile, so "Saving…" lasts long enough to be seen); then the reason
//!   with Retry. Retry is then taken with the lead restored, and the result
//!   is logged.
//!
//! Needs a built widget (`CALLCARD_WIDGET_DIR`, as the end-to-end tests).

use anyhow::{Context, Result};
use callcard_calls::event::{CallEventKind, Outcome};
use callcard_calls::{EntityKind, EntityRef};
use callcard_e2e::{product::call_event, users, Browser, Chromedriver, Product};
use kommo_sandbox::FaultConfig;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MARIA: &str = "+1 830 570 3077";
/// The calls that end one after another (the seed's Daniel Kim, with a
/// customer; Northwind Traders, a company with one lead; Sofia Rossi, with
/// two leads), with how long each was talked.
const PENDING: [(&str, u32); 3] = [("+1 305 555 0188", 95), ("+1 512 555 0176", 130), ("+1 212 555 0147", 48)];
/// Emma Johnson, whose one active lead "Fleet tracking pilot" is deleted
/// while her result is saved.
const EMMA: &str = "+1 646 555 0199";

/// Kommo slowed down: every answer held 4 s, while "Saving…" is shot.
fn slow_kommo() -> FaultConfig {
    FaultConfig { delay_rate: 1.0, delay_ms: Some(4_000), ..FaultConfig::default() }
}
/// Numbers nobody has, one per width: the first width's missed call makes
/// its number known (the backend files it as an incoming lead with a contact).
const UNKNOWN: [&str; 2] = ["+1 503 555 0111", "+1 503 555 0112"];
const WIDTHS: [u32; 2] = [1024, 1440];
const HEIGHT: u32 = 860;
/// A named pop-up: the caller's record links to its card.
const NAMED_POPUP: &str = ".notification-popup[data-type=call] a.callcard-record";
/// An unknown caller's pop-up offers to create the contact.
const UNKNOWN_POPUP: &str = ".notification-popup[data-type=call] a[href^='/contacts/add/']";

#[tokio::main]
async fn main() -> Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).context("usage: screenshots <output folder>")?);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let product = Product::start().await?;
    let driver = Chromedriver::start().await?;
    // One browser (one ledger of what was shown), resized for each width.
    let anna = Browser::open(&driver).await?;
    anna.client.goto(&product.page_for(users::ANNA)).await?;
    anna.wait_for("#callcard-root[data-feed=live]", 30).await?;
    for (width, unknown) in WIDTHS.into_iter().zip(UNKNOWN) {
        anna.client.set_window_size(width, HEIGHT).await?;
        shoot_at(&product, &anna, width, unknown, &out).await.with_context(|| format!("at {width} px"))?;
    }
    anna.close().await?;
    product.shutdown().await
}

async fn shoot_at(product: &Product, anna: &Browser, width: u32, number: &str, out: &Path) -> Result<()> {
    let unknown = format!("unknown-{width}");
    product.pbx_sends(&call_event(CallEventKind::Ringing, &unknown, number, "101")).await?;
    if let Err(e) = anna.wait_for(UNKNOWN_POPUP, 10).await {
        let shown = anna.notifications("show_notification").await?;
        return Err(e.context(format!("pop-ups shown: {shown:?}")));
    }
    save(anna, out, &format!("ringing-unknown-{width}.png")).await?;
    let mut missed =
        call_event(CallEventKind::Ended { duration: 0, outcome: Outcome::NoAnswer }, &unknown, number, "101");
    missed.occurred_at += 1_000;
    product.pbx_sends(&missed).await?;
    close_popups(anna).await?;
    // The missed call asks for a summary too; this shot is of Maria's call.
    cancel_summary(anna, &unknown).await?;

    let call_id = format!("maria-{width}");
    product.pbx_sends(&call_event(CallEventKind::Ringing, &call_id, MARIA, "101")).await?;
    anna.wait_for(NAMED_POPUP, 10).await?;
    save(anna, out, &format!("ringing-known-{width}.png")).await?;
    answer_and_end(product, &call_id, MARIA, 42).await?;
    anna.wait_for(&summary_of(&call_id), 15).await?;
    close_popups(anna).await?;
    save(anna, out, &format!("summary-{width}.png")).await?;

    // The PBX delivers the recording while the summary is open: the player replaces "processing".
    let recording_url = format!("{}/pbx-simulator/recordings/{call_id}.wav", product.demo.base_url);
    product.pbx_sends(&call_event(CallEventKind::RecordingReady { recording_url }, &call_id, MARIA, "101")).await?;
    anna.wait_for(&format!("{} audio.callcard-summary-audio", summary_of(&call_id)), 15).await?;
    let metadata = "var a = document.querySelector('#callcard-summary audio'); return !!a && a.readyState >= 1;";
    wait_until("the player to know the recording's length", || async {
        Ok(anna.client.execute(metadata, vec![]).await?.as_bool() == Some(true))
    })
    .await?;
    close_popups(anna).await?;
    save(anna, out, &format!("summary-recording-{width}.png")).await?;

    // Saved on the suggested record: "Saving…", then "Logged on …" once the backend's job is done.
    anna.wait_for(&format!("{} #callcard-summary-save", summary_of(&call_id)), 5).await?.click().await?;
    wait_for_message(anna, &call_id, "success").await?;
    close_popups(anna).await?;
    save(anna, out, &format!("logged-{width}.png")).await?;
    close_messages(anna).await?;

    shoot_pending(product, anna, width, out).await?;
    shoot_refusal(product, anna, width, out).await
}

/// Three calls end one after another: one modal, "1 of 3"; Next shows the
/// company's call. Kommo's close × then keeps all three as "no result".
async fn shoot_pending(product: &Product, anna: &Browser, width: u32, out: &Path) -> Result<()> {
    let ids: Vec<String> = (1..=PENDING.len()).map(|i| format!("pending-{width}-{i}")).collect();
    for (id, (number, seconds)) in ids.iter().zip(PENDING) {
        product.pbx_sends(&call_event(CallEventKind::Ringing, id, number, "101")).await?;
        answer_and_end(product, id, number, seconds).await?;
    }
    let position = "#callcard-summary-position";
    wait_until("\"1 of 3\"", || async { Ok(anna.texts(position).await? == ["1 of 3"]) }).await?;
    anna.wait_for(&summary_of(&ids[0]), 5).await?;
    close_popups(anna).await?;
    save(anna, out, &format!("summary-pending-{width}.png")).await?;

    anna.wait_for("#callcard-summary-next", 5).await?.click().await?;
    anna.wait_for(&format!("{} dd[data-fact=company] a.callcard-record", summary_of(&ids[1])), 5).await?;
    close_popups(anna).await?;
    save(anna, out, &format!("summary-company-{width}.png")).await?;

    anna.wait_for(".modal.callcard-summary-modal .modal-body__close", 5).await?.click().await?;
    wait_until("the modal to close", || async { Ok(anna.texts("#callcard-summary").await?.is_empty()) }).await
}

/// Emma's lead is deleted in Kommo (by a colleague, say) just after she
/// saved: "Saving…" (Kommo slowed, so it can be seen), then the reason with
/// Retry. With the lead restored, Retry reopens the summary as
/// saved and the next Save is logged.
async fn shoot_refusal(product: &Product, anna: &Browser, width: u32, out: &Path) -> Result<()> {
    let call_id = format!("emma-{width}");
    product.pbx_sends(&call_event(CallEventKind::Ringing, &call_id, EMMA, "101")).await?;
    answer_and_end(product, &call_id, EMMA, 64).await?;
    let summary = summary_of(&call_id);
    let chosen = anna.wait_for(&format!("{summary} .callcard-summary-entity a.callcard-record"), 15).await?;
    let href = chosen.attr("href").await?.unwrap_or_default();
    let lead_id: u64 = href
        .strip_prefix("/leads/detail/")
        .and_then(|id| id.parse().ok())
        .with_context(|| format!("Emma's call starts on her lead, not {href:?}"))?;
    let lead = EntityRef::new(EntityKind::Lead, lead_id);
    anna.wait_for(&format!("{summary} #callcard-summary-note"), 5)
        .await?
        .send_keys("Wants the pilot extended to 40 vans")
        .await?;

    // The call is logged on the lead first (its note), as a finished call is.
    let logged = || product.demo.sandbox.store().notes_of(lead).iter().any(|n| n.params["uniq"] == call_id.as_str());
    wait_until("Emma's call note on her lead", || async { Ok(logged()) }).await?;
    product.demo.sandbox.set_faults(slow_kommo());
    anna.wait_for(&format!("{summary} #callcard-summary-save"), 5).await?.click().await?;
    wait_for_message(anna, &call_id, "warning").await?;
    close_popups(anna).await?;
    save(anna, out, &format!("saving-{width}.png")).await?;
    // The backend took the result (the lead existed then); the lead goes
    // while the job's first request to Kommo is held, so the job finds it gone.
    let account_id = product.demo.sandbox.account_id();
    wait_until("the backend to take the result", || async {
        Ok(product.demo.backend.call(account_id, &call_id).await?.is_some_and(|c| c.manager_result.is_some()))
    })
    .await?;
    anyhow::ensure!(product.demo.sandbox.store().trash_record(lead), "no lead {lead_id} to delete");
    product.demo.sandbox.set_faults(FaultConfig::default());
    wait_for_message(anna, &call_id, "danger").await?;
    anna.wait_for(&format!("{} .callcard-message-retry", message_of(&call_id)), 5).await?;
    close_popups(anna).await?;
    save(anna, out, &format!("failed-{width}.png")).await?;

    anyhow::ensure!(product.demo.sandbox.store().restore_record(lead), "lead {lead_id} is not in the trash");
    anna.wait_for(&format!("{} .callcard-message-retry", message_of(&call_id)), 5).await?.click().await?;
    let note = anna.wait_for(&format!("{summary} #callcard-summary-note"), 10).await?;
    let kept = note.prop("value").await?.unwrap_or_default();
    anyhow::ensure!(kept.contains("40 vans"), "Retry reopened the summary without the saved note: {kept:?}");
    anna.wait_for(&format!("{summary} #callcard-summary-save"), 5).await?.click().await?;
    wait_for_message(anna, &call_id, "success").await?;
    close_messages(anna).await
}

/// The call is answered and, `seconds` later, ends.
async fn answer_and_end(product: &Product, call_id: &str, number: &str, seconds: u32) -> Result<()> {
    product.pbx_sends(&call_event(CallEventKind::Answered, call_id, number, "101")).await?;
    let mut ended =
        call_event(CallEventKind::Ended { duration: seconds, outcome: Outcome::Answered }, call_id, number, "101");
    ended.occurred_at += i64::from(seconds) * 1_000;
    product.pbx_sends(&ended).await
}

fn summary_of(call_id: &str) -> String {
    format!("#callcard-summary[data-call-id='{call_id}']")
}

fn message_of(call_id: &str) -> String {
    format!(".callcard-message[data-call-id='{call_id}']")
}

/// Waits for the message about the call's saved result to be of `kind`
/// (`warning` "Saving…", `success` "Logged on …", `danger` the reason).
async fn wait_for_message(browser: &Browser, call_id: &str, kind: &str) -> Result<()> {
    let css = format!("{}[data-message-type={kind}]", message_of(call_id));
    if let Err(e) = browser.wait_for(&css, 30).await {
        let said = browser.texts(".callcard-message").await?;
        return Err(e.context(format!("messages: {said:?}")));
    }
    Ok(())
}

/// Polls `done` for up to 15 s.
async fn wait_until<F, Fut>(what: &str, done: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let asked = Instant::now();
    while !done().await? {
        anyhow::ensure!(asked.elapsed() < Duration::from_secs(15), "waited 15 s for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Closes the pop-ups so they do not cover the next shot.
async fn close_popups(browser: &Browser) -> Result<()> {
    browser
        .client
        .execute("document.querySelectorAll('.notification-popup .notification-close').forEach(function (b) { b.click(); });", vec![])
        .await?;
    Ok(())
}

/// Closes the messages about saved results.
async fn close_messages(browser: &Browser) -> Result<()> {
    browser
        .client
        .execute("document.querySelectorAll('.callcard-message-close').forEach(function (b) { b.click(); });", vec![])
        .await?;
    Ok(())
}

/// Cancels the call's Call summary once it is open.
async fn cancel_summary(browser: &Browser, call_id: &str) -> Result<()> {
    let summary = summary_of(call_id);
    browser.wait_for(&format!("{summary} #callcard-summary-cancel"), 15).await?.click().await?;
    wait_until("the Call summary to close on Cancel", || async { Ok(browser.texts(&summary).await?.is_empty()) }).await
}

/// Shoots the viewport once the host page's pop-up animations have finished.
async fn save(browser: &Browser, out: &Path, name: &str) -> Result<()> {
    let running = "return document.getAnimations().filter(function (a) { return a.playState !== 'finished'; }).length;";
    let asked = std::time::Instant::now();
    while browser.client.execute(running, vec![]).await?.as_u64() != Some(0) {
        anyhow::ensure!(asked.elapsed().as_secs() < 5, "the page kept animating");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let png = browser.client.screenshot().await?;
    let path = out.join(name);
    std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
