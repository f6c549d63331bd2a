//! The widget's root view, mounted into `<div id="callcard-root">`.
//!
//! It renders a screen-reader status line (`.callcard-status`,
//! `role="status"`) describing the feed, and the Call summary modal. The root
//! element itself carries the machine-readable markers (`data-feed`,
//! `data-role`), set by [`crate::session`], which provides what the views
//! use as context: the feed state (`ReadSignal<FeedState>`), the
//! [`Translations`], the [`crate::summary::SummaryQueue`] and the
//! [`crate::kommo::CurrentWidget`].

use crate::feed_state::FeedState;
use crate::summary_view::CallSummary;
use crate::texts::{Texts, Translations};
use leptos::prelude::*;

/// Visually hidden but read by screen readers.
const SR_ONLY: &str =
    "position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);border:0;";

/// The feed status line.
#[component]
pub fn FeedStatus() -> impl IntoView {
    let state = expect_context::<ReadSignal<FeedState>>();
    let texts = expect_context::<Translations>();
    view! {
        <div class="callcard-status" role="status" aria-live="polite" style=SR_ONLY
            data-feed=move || state.get().as_str()>
            {move || texts.text(state.get().text_key())}
        </div>
    }
}

/// Everything the widget draws.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <FeedStatus />
        <CallSummary />
    }
}
