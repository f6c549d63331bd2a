//! The widget's root view, mounted into `<div id="callcard-root">`.
//!
//! It renders a screen-reader status line (`.callcard-status`,
//! `role="status"`) describing the feed, and the Call summary modal. The root element itself carries the
//! machine-readable markers (`data-feed`, `data-role`), set by
//! [`crate::session`].

use crate::feed_state::FeedState;
use crate::summary::SummaryQueue;
use crate::summary_view::CallSummary;
use crate::texts::{Texts, Translations};
use leptos::prelude::*;

/// Visually hidden but read by screen readers.
const SR_ONLY: &str =
    "position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);border:0;";

/// The feed status line.
#[component]
pub fn FeedStatus(state: ArcRwSignal<FeedState>, texts: Translations) -> impl IntoView {
    let data_state = state.clone();
    view! {
        <div class="callcard-status" role="status" aria-live="polite" style=SR_ONLY
            data-feed=move || data_state.get().as_str()>
            {move || texts.text(state.get().text_key())}
        </div>
    }
}

/// Everything the widget draws.
#[component]
pub fn App(state: ArcRwSignal<FeedState>, summaries: SummaryQueue, texts: Translations) -> impl IntoView {
    view! {
        <FeedStatus state=state texts=texts.clone() />
        <CallSummary queue=summaries texts=texts />
    }
}
