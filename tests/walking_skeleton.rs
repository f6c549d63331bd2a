//! The walking skeleton: a signed PBX webhook makes the widget, loaded into
//! the host page through RequireJS like Kommo loads it, pop an incoming-call
//! notification for the right user, and only for that user.

use callcard_calls::event::CallEventKind;
use callcard_e2e::{product::call_event, users, Browser, Chromedriver, Product};

const POPUP: &str = ".notification-popup[data-type=call]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ringing_webhook_pops_the_call_for_its_user_only() -> anyhow::Result<()> {
    let product = Product::start().await?;
    let driver = Chromedriver::start().await?;
    let anna = product.live_page(&driver, users::ANNA).await?;
    let bruno = product.live_page(&driver, users::BRUNO).await?;

    // script.js added the package's stylesheet once, cache-busted, and it applies.
    let styles = anna
        .client
        .execute(
            "return Array.from(document.querySelectorAll('link[rel=stylesheet]'))\
               .map(function (l) { return l.getAttribute('href'); })\
               .filter(function (h) { return h.indexOf('callcard.css') >= 0; });",
            vec![],
        )
        .await?;
    let styles: Vec<String> = serde_json::from_value(styles)?;
    assert_eq!(styles.len(), 1, "one stylesheet link: {styles:?}");
    assert!(styles[0].contains("/callcard.css?v="), "from the widget's path, cache-busted: {styles:?}");
    let applied = "return getComputedStyle(document.querySelector('.callcard-status')).position;";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while anna.client.execute(applied, vec![]).await?.as_str() != Some("absolute") {
        anyhow::ensure!(std::time::Instant::now() < deadline, "callcard.css never hid the feed status line");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // A caller nobody in the CRM knows rings Anna's extension.
    product.pbx_sends(&call_event(CallEventKind::Ringing, "skeleton-1", "+1 830 570 3077", "101")).await?;
    let popup = anna.wait_for(POPUP, 10).await?;
    // innerText: WebDriver's visible text is empty while the pop-up fades in.
    let text = popup.prop("innerText").await?.unwrap_or_default();
    assert!(text.contains("830") && text.contains("3077"), "Anna's pop-up shows the number: {text:?}");

    // Then one rings Bruno's. He sees his own call and never saw Anna's.
    product.pbx_sends(&call_event(CallEventKind::Ringing, "skeleton-2", "+44 20 7946 0958", "102")).await?;
    bruno.wait_for(POPUP, 10).await?;
    // Each sees a pop-up for their own call only. A second pop-up per call
    // is right when caller ID answered after the first one (it names the
    // caller, or says the number is unknown), but none is ever repeated.
    let bruno_seen = popup_texts(&bruno).await?;
    assert!(bruno_seen.iter().all(|t| t.contains("7946")), "Bruno sees only his call: {bruno_seen:?}");
    assert_once_each(&bruno_seen);
    let anna_seen = popup_texts(&anna).await?;
    assert!(anna_seen.iter().all(|t| t.contains("3077")), "Anna sees only her call, not Bruno's: {anna_seen:?}");
    assert_once_each(&anna_seen);

    anna.close().await?;
    bruno.close().await?;
    product.shutdown().await
}

/// The texts of the call pop-ups shown in a browser.
async fn popup_texts(browser: &Browser) -> anyhow::Result<Vec<String>> {
    let shown = browser.notifications("show_notification").await?;
    Ok(shown.iter().map(|n| n["text"]["text"].as_str().unwrap_or_default().to_owned()).collect())
}

/// One or two pop-ups (the number, then the caller once identified), never the same twice.
fn assert_once_each(texts: &[String]) {
    assert!((1..=2).contains(&texts.len()), "one pop-up, or one more naming the caller: {texts:?}");
    assert!(texts.len() < 2 || texts[0] != texts[1], "a pop-up repeated: {texts:?}");
}
