//! What the manager sees of saved and cancelled summaries, beside Kommo's
//! page (in the widget's root):
//!
//! - [`SaveMessages`]: one message per saved summary, as
//!   [`crate::report::ReturnMessage`] says: `.callcard-message[data-call-id]
//!   [data-message-type=success|warning|danger]` with its text
//!   (`.callcard-message-text`), a Retry button on a failure
//!   (`.callcard-message-retry`, which reopens the summary with what was
//!   saved) and a close button (`.callcard-message-close`). A success goes
//!   after its `ttl`.
//! - [`NoResultList`]: the calls whose summary was cancelled, "Calls without
//!   a result: 2" with a button that opens them again
//!   (`.callcard-no-result`, `#callcard-no-result-open`).

use crate::drafts;
use crate::report::{SaveReport, SaveReports, SaveState};
use crate::summary::SummaryQueue;
use crate::texts::{Texts, Translations};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;

/// Retry: the summary opens again with what was saved.
fn retry(reports: SaveReports, queue: SummaryQueue, call_id: &str) {
    if let Some(report) = reports.remove(call_id) {
        drafts::save(&report.view, &report.draft);
        queue.open(&report.view);
    }
}

/// One message.
#[component]
fn SaveMessage(report: SaveReport) -> impl IntoView {
    let reports = expect_context::<SaveReports>();
    let queue = expect_context::<SummaryQueue>();
    let texts = expect_context::<Translations>();
    let message = report.message(&texts);
    let call_id = report.call_id.clone();
    if let Some(ttl) = message.ttl {
        let id = call_id.clone();
        leptos::task::spawn_local(async move {
            TimeoutFuture::new(ttl).await;
            if reports.state_of(&id) == Some(SaveState::Logged) {
                reports.remove(&id);
            }
        });
    }
    let failed = matches!(report.state, SaveState::Failed(_));
    let retry_button = failed.then(|| {
        let id = call_id.clone();
        view! {
            <button type="button" class="callcard-message-retry button-input button-input_blue"
                on:click=move |_| retry(reports, queue, &id)>
                {texts.text("report.retry")}
            </button>
        }
    });
    let close = {
        let id = call_id.clone();
        move |_| drop(reports.remove(&id))
    };
    view! {
        <div class="callcard-message" data-call-id=call_id data-message-type=message.message_type.as_str()
            role=if failed { "alert" } else { "status" }>
            <p class="callcard-message-text">{message.message}</p>
            {retry_button}
            <button type="button" class="callcard-message-close" aria-label=texts.text("report.close")
                title=texts.text("report.close") on:click=close>"×"</button>
        </div>
    }
}

/// The messages of the saved summaries, newest last.
#[component]
pub fn SaveMessages() -> impl IntoView {
    let reports = expect_context::<SaveReports>();
    view! {
        <div class="callcard-messages">
            {move || reports.all().into_iter().map(|report| view! { <SaveMessage report=report /> }).collect_view()}
        </div>
    }
}

/// The calls listed as "no result", and the way back to them.
#[component]
pub fn NoResultList() -> impl IntoView {
    let queue = expect_context::<SummaryQueue>();
    let texts = expect_context::<Translations>();
    move || {
        let count = queue.dismissed().len();
        (count > 0 && queue.open_call_id().is_none()).then(|| {
            view! {
                <div class="callcard-no-result" role="status">
                    <span>{texts.fill("summary.no_result_count", &[("count", &count.to_string())])}</span>
                    <button type="button" id="callcard-no-result-open" class="button-input"
                        on:click=move |_| queue.reopen_dismissed()>
                        {texts.text("summary.no_result_open")}
                    </button>
                </div>
            }
        })
    }
}
