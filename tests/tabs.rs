//! Several Kommo tabs of one manager: exactly one holds the call feed and
//! shows pop-ups, a ringing call pops up once across all of them, and when
//! the leading tab closes another takes over within seconds, without
//! repeating what was already shown.
//!
//! Two windows of one Chromium session (one profile: shared `localStorage`,
//! Web Locks and `BroadcastChannel`), through the host page, the backend and
//! the PBX simulator.

use anyhow::{ensure, Context, Result};
use callcard_calls::event::CallEventKind;
use callcard_e2e::{product::call_event, users, Browser, Chromedriver, Product};
use fantoccini::wd::WindowHandle;
use std::time::{Duration, Instant};

const ROOT_LIVE: &str = "#callcard-root[data-feed=live]";

/// The widget root's `data-role` in the current window.
async fn role(browser: &Browser) -> Result<String> {
    let value = browser
        .client
        .execute("var r = document.getElementById('callcard-root'); return r && r.getAttribute('data-role');", vec![])
        .await?;
    Ok(value.as_str().unwrap_or_default().to_owned())
}

/// 1 if the call whose number has `digits` popped up in the current window,
/// else 0; an error if one of its pop-ups was shown twice. A call pops up
/// with its number and, when caller ID answers later, once more naming the
/// caller (a different text); a repeat (two tabs, a replayed snapshot) is the
/// same text again.
async fn popups(browser: &Browser, digits: &str) -> Result<usize> {
    let shown = browser.notifications("show_notification").await?;
    let texts: Vec<&str> =
        shown.iter().filter_map(|n| n["text"]["text"].as_str()).filter(|t| t.contains(digits)).collect();
    let distinct: std::collections::BTreeSet<&str> = texts.iter().copied().collect();
    ensure!(distinct.len() == texts.len(), "a pop-up was shown twice: {texts:?}");
    Ok(usize::from(!texts.is_empty()))
}

/// Pop-ups mentioning `digits` in every window (ends in the first one).
async fn popups_everywhere(browser: &Browser, windows: &[WindowHandle], digits: &str) -> Result<Vec<usize>> {
    let mut counts = Vec::new();
    for w in windows {
        browser.client.switch_to_window(w.clone()).await?;
        counts.push(popups(browser, digits).await?);
    }
    browser.client.switch_to_window(windows[0].clone()).await?;
    Ok(counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tab_leads_pops_each_call_once_and_hands_over_when_closed() -> Result<()> {
    let product = Product::start().await?;
    let driver = Chromedriver::start().await?;
    let browser = Browser::open(&driver).await?;
    let page = product.page_for(users::ANNA);

    // Two windows with Anna's Kommo.
    browser.client.goto(&page).await?;
    browser.wait_for(ROOT_LIVE, 30).await?;
    let first = browser.client.window().await?;
    let second = browser.client.new_window(false).await?.handle;
    browser.client.switch_to_window(second.clone()).await?;
    browser.client.goto(&page).await?;
    // The follower mirrors the leader's feed state over BroadcastChannel.
    browser.wait_for(ROOT_LIVE, 30).await?;
    let windows = [first.clone(), second.clone()];

    // Exactly one leads.
    let mut roles = Vec::new();
    for w in &windows {
        browser.client.switch_to_window(w.clone()).await?;
        roles.push(role(&browser).await?);
    }
    let mut sorted = roles.clone();
    sorted.sort();
    assert_eq!(sorted, ["follower", "leader"], "one leader, one follower: {roles:?}");
    let leader_at = roles.iter().position(|r| r == "leader").expect("a leader");
    let (leader, follower) = (windows[leader_at].clone(), windows[1 - leader_at].clone());

    // A call rings: one pop-up, in the leading tab.
    product.pbx_sends(&call_event(CallEventKind::Ringing, "tabs-1", "+1 830 570 3077", "101")).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts = popups_everywhere(&browser, &windows, "3077").await?;
        if counts.iter().sum::<usize>() >= 1 {
            break;
        }
        ensure!(Instant::now() < deadline, "no pop-up for the ringing call in 10 s: {counts:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = popups_everywhere(&browser, &windows, "3077").await?;
    assert_eq!(counts[leader_at], 1, "the leader pops the call once: {counts:?}");
    assert_eq!(counts[1 - leader_at], 0, "the follower stays quiet: {counts:?}");

    // The leading tab closes: the other takes over within seconds.
    browser.client.switch_to_window(leader).await?;
    browser.client.close_window().await?;
    browser.client.switch_to_window(follower.clone()).await?;
    let closed = Instant::now();
    loop {
        if role(&browser).await? == "leader" {
            break;
        }
        ensure!(closed.elapsed() < Duration::from_secs(5), "no take-over within 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = closed.elapsed();
    browser.wait_for(ROOT_LIVE, 15).await.context("the new leader's feed goes live")?;

    // The next call pops up once, in the new leader; the first one is not repeated
    // although it still rings (the new leader starts from the current calls).
    product.pbx_sends(&call_event(CallEventKind::Ringing, "tabs-2", "+44 20 7946 0958", "101")).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while popups(&browser, "0958").await? == 0 {
        ensure!(Instant::now() < deadline, "the new leader showed no pop-up for the next call");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(popups(&browser, "0958").await?, 1, "the next call pops up once");
    assert_eq!(popups(&browser, "3077").await?, 0, "the first call is not shown again after the take-over");
    eprintln!("take-over took {took:?}");

    browser.close().await?;
    product.shutdown().await
}
