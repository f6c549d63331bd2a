//! The widget's root view, mounted into `<div id="callcard-root">`.
//!
//! It renders a screen-reader status line (`.callcard-status`,
//! `role="status"`, visually hidden by the package's `callcard.css`) describing the feed,
//! the Call summary (in Kommo's modal), the calls listed without a result
//! and the messages about saved results. The root
//! element itself carries the machine-readable markers (`data-feed`,
//! `data-role`), set by [`crate::session`], which provides what the views
//! use as context: the feed state (`ReadSignal<FeedState>`), the
//! [`Translations`], the [`crate::summary::SummaryQueue`] and the
//! [`crate::kommo::CurrentWidget`].

use crate::feed_state::FeedState;
use crate::report_view::{NoResultList, SaveMessages};
use crate::summary_view::CallSummary;
use crate::texts::{Texts, Translations};
use leptos::prelude::*;

/// The feed status line.
#[component]
pub fn FeedStatus() -> impl IntoView {
    let state = expect_context::<ReadSignal<FeedState>>();
    let texts = expect_context::<Translations>();
    view! {
        <div class="callcard-status callcard-sr-only" role="status" aria-live="polite"
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
        <NoResultList />
        <SaveMessages />
    }
}
