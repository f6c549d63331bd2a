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
    let anna = Browser::open(&driver).await?;
    let bruno = Browser::open(&driver).await?;
    anna.client.goto(&product.page_for(users::ANNA)).await?;
    bruno.client.goto(&product.page_for(users::BRUNO)).await?;
    // The widget marks its root once its feed is live.
    anna.wait_for("#callcard-root[data-feed=live]", 30).await?;
    bruno.wait_for("#callcard-root[data-feed=live]", 30).await?;

    // A caller nobody in the CRM knows rings Anna's extension.
    product.pbx_sends(&call_event(CallEventKind::Ringing, "skeleton-1", "+1 830 570 3077", "101")).await?;
    let popup = anna.wait_for(POPUP, 10).await?;
    // innerText: WebDriver's visible text is empty while the pop-up fades in.
    let text = popup.prop("innerText").await?.unwrap_or_default();
    assert!(text.contains("830") && text.contains("3077"), "Anna's pop-up shows the number: {text:?}");

    // Then one rings Bruno's. He sees his own call and never saw Anna's.
    product.pbx_sends(&call_event(CallEventKind::Ringing, "skeleton-2", "+44 20 7946 0958", "102")).await?;
    bruno.wait_for(POPUP, 10).await?;
    let bruno_seen = bruno.notifications("show_notification").await?;
    assert_eq!(bruno_seen.len(), 1, "Bruno sees exactly his call: {bruno_seen:?}");
    assert!(bruno_seen[0].to_string().contains("7946"), "{bruno_seen:?}");
    let anna_seen = anna.notifications("show_notification").await?;
    assert_eq!(anna_seen.len(), 1, "Anna sees her call once and not Bruno's: {anna_seen:?}");
    assert!(anna_seen[0].to_string().contains("3077"), "{anna_seen:?}");

    anna.close().await?;
    bruno.close().await?;
    product.shutdown().await
}
