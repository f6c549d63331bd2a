//! `cargo xtask screenshots`: the widget's states as a manager sees them,
//! rendered through the whole product (sandbox Kommo, host page, widget,
//! backend, PBX) in headless Chromium at 1024 and 1440 px wide, written as
//! PNG files into the folder given as the first argument (`docs/screenshots/`).
//!
//! States: a known caller's ringing card (`ringing-known-<w>.png`, named on
//! the first pop-up), an unknown caller's (`ringing-unknown-<w>.png`, with
//! "Create contact"), the Call summary in Kommo's modal after a call
//! (`summary-<w>.png`), and the message once the saved result is logged in
//! Kommo (`logged-<w>.png`; the cancelled unknown call is listed as "no
//! result" beside it).
//! Needs a built widget (`CALLCARD_WIDGET_DIR`, as the end-to-end tests).

use anyhow::{Context, Result};
use callcard_calls::event::{CallEventKind, Outcome};
use callcard_e2e::{product::call_event, users, Browser, Chromedriver, Product};
use std::path::{Path, PathBuf};

const MARIA: &str = "+1 830 570 3077";
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
    product.pbx_sends(&call_event(CallEventKind::Answered, &call_id, MARIA, "101")).await?;
    let mut ended =
        call_event(CallEventKind::Ended { duration: 42, outcome: Outcome::Answered }, &call_id, MARIA, "101");
    ended.occurred_at += 42_000;
    product.pbx_sends(&ended).await?;
    anna.wait_for(&format!("#callcard-summary[data-call-id='{call_id}']"), 15).await?;
    close_popups(anna).await?;
    save(anna, out, &format!("summary-{width}.png")).await?;
    // Saved on the suggested record: "Saving…", then "Logged on …" once the backend's job is done.
    anna.wait_for(&format!("#callcard-summary[data-call-id='{call_id}'] #callcard-summary-save"), 5)
        .await?
        .click()
        .await?;
    let logged = format!(".callcard-message[data-call-id='{call_id}'][data-message-type=success]");
    if let Err(e) = anna.wait_for(&logged, 30).await {
        let said = anna.texts(".callcard-message").await?;
        return Err(e.context(format!("messages: {said:?}")));
    }
    close_popups(anna).await?;
    save(anna, out, &format!("logged-{width}.png")).await?;
    anna.client
        .execute("document.querySelectorAll('.callcard-message-close').forEach(function (b) { b.click(); });", vec![])
        .await?;
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

/// Cancels the call's Call summary once it is open.
async fn cancel_summary(browser: &Browser, call_id: &str) -> Result<()> {
    let summary = format!("#callcard-summary[data-call-id='{call_id}']");
    browser.wait_for(&format!("{summary} #callcard-summary-cancel"), 15).await?.click().await?;
    let clicked = std::time::Instant::now();
    while !browser.texts(&summary).await?.is_empty() {
        anyhow::ensure!(clicked.elapsed().as_secs() < 10, "the Call summary of {call_id} did not close on Cancel");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
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
