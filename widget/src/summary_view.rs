//! The Call summary modal: opened when a call of this user ends without a
//! saved result.
//!
//! Markup (stable for tests and styling):
//! `#callcard-summary[role=dialog][data-call-id][data-state=editing|saving|error]`,
//! `#callcard-summary-title`, `.callcard-summary-entity`,
//! `#callcard-summary-search` with hits `#callcard-summary-hits
//! .callcard-summary-hit[data-entity-type][data-entity-id]`,
//! `.callcard-summary-recording` (an `<audio>` or
//! `.callcard-summary-recording-pending`), `#callcard-summary-note`,
//! `#callcard-summary-task` (checkbox), `#callcard-summary-task-when`,
//! `#callcard-summary-task-text`, `#callcard-summary-save`,
//! `#callcard-summary-cancel`, `.callcard-summary-error[role=alert]`.
//!
//! Every control has a label; the dialog is labelled by its title and
//! described by the call line. Escape cancels; the form submits with Enter;
//! Tab stays inside the dialog; ArrowDown/ArrowUp move between the search
//! field and its hits, and choosing a hit returns focus to the field.
//! Save posts the result; a network failure (or a 5xx, 408, 429) queues it
//! ([`crate::outbox`]) and closes; any other failure keeps the input and
//! shows the reason. The fields are kept in `localStorage` as they change
//! ([`crate::drafts`]) and come back if the page reloads before Save.

use crate::api::Backend;
use crate::drafts;
use crate::escape::safe_link;
use crate::kommo::Notifications;
use crate::outbox;
use crate::search::{is_searchable, search, SearchHit, DEBOUNCE_MS};
use crate::session;
use crate::summary::{
    days_to_next_working_day, format_duration, kind_key, naive_seconds, ChosenEntity, DraftError, LocalDate,
    SummaryDraft, SummaryQueue,
};
use crate::texts::{Texts, Translations};
use callcard_calls::feed::{CallView, CallerId};
use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

/// Where the modal is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Editing,
    Saving,
    Failed(String),
}

impl Phase {
    fn as_str(&self) -> &'static str {
        match self {
            Phase::Editing => "editing",
            Phase::Saving => "saving",
            Phase::Failed(_) => "error",
        }
    }
}

/// A `datetime-local` value in the browser's time zone, as Unix seconds.
fn local_to_unix(value: &str) -> Option<i64> {
    let naive = naive_seconds(value)?;
    let offset_min = js_sys::Date::new(&JsValue::from_f64(naive as f64 * 1000.0)).get_timezone_offset();
    Some(naive + (offset_min * 60.0) as i64)
}

/// The selector of everything Tab can reach inside the dialog.
const FOCUSABLE: &str = "button:not([disabled]), input:not([disabled]), textarea:not([disabled]), \
                         audio[controls], [tabindex]:not([tabindex='-1'])";

fn elements(root: &web_sys::Element, selector: &str) -> Vec<web_sys::HtmlElement> {
    let Ok(list) = root.query_selector_all(selector) else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.item(i)?.dyn_into::<web_sys::HtmlElement>().ok()).collect()
}

fn active_element() -> Option<web_sys::Element> {
    web_sys::window()?.document()?.active_element()
}

/// Where focus goes when Tab (or Shift+Tab) leaves the dialog's last (first)
/// control: around to the other end, so focus never leaves the modal.
pub fn wrap_index(len: usize, current: Option<usize>, backwards: bool) -> Option<usize> {
    match (len, current, backwards) {
        (0, _, _) => None,
        (_, None, false) => Some(0),
        (_, None, true) => Some(len - 1),
        (_, Some(0), true) => Some(len - 1),
        (_, Some(i), false) if i + 1 == len => Some(0),
        _ => None,
    }
}

/// The hit to focus for ArrowUp/ArrowDown from `current` (`None`: the search
/// field); `None` as the answer means the search field.
pub fn step_hit(len: usize, current: Option<usize>, down: bool) -> Option<usize> {
    match (current, down) {
        (_, _) if len == 0 => None,
        (None, true) => Some(0),
        (None, false) => None,
        (Some(i), true) => Some((i + 1).min(len - 1)),
        (Some(0), false) => None,
        (Some(i), false) => Some(i - 1),
    }
}

const OVERLAY: &str = "position:fixed;inset:0;background:rgba(0,0,0,.35);z-index:10000;display:flex;\
                       align-items:center;justify-content:center;";
const DIALOG: &str = "background:#fff;color:#222;max-width:32rem;width:100%;max-height:90vh;overflow:auto;\
                      padding:1.25rem;border-radius:6px;font:14px/1.4 sans-serif;";

/// The modal for the first queued call, if any.
#[component]
pub fn CallSummary(queue: SummaryQueue, texts: Translations) -> impl IntoView {
    let q = queue.clone();
    let open_id = Memo::new(move |_| q.open_call_id());
    move || {
        open_id.get().map(|call_id| {
            view! { <SummaryDialog call_id=call_id queue=queue.clone() texts=texts.clone() /> }
        })
    }
}

#[component]
fn SummaryDialog(call_id: String, queue: SummaryQueue, texts: Translations) -> impl IntoView {
    let initial = queue.0.with_untracked(|q| q.iter().find(|v| v.call.call_id == call_id).cloned());
    initial.map(|initial| dialog(call_id, queue, texts, initial))
}

/// The dialog for the queued call `initial`. (No `.into_any()` in this file:
/// the component answers an `Option` of the dialog and the switches inside
/// pick with `Either`; type-erasing these views cost 3.3 KB of the gzipped
/// bundle.)
fn dialog(call_id: String, queue: SummaryQueue, texts: Translations, initial: CallView) -> impl IntoView {
    let current = {
        let queue = queue.clone();
        let id = call_id.clone();
        Memo::new(move |_| queue.find(&id))
    };
    let recording = Memo::new(move |_| current.get().and_then(|v| v.call.recording_url().and_then(safe_link)));

    // What was typed before a reload, else the call's suggestion.
    let draft = drafts::find(&call_id).unwrap_or_else(|| SummaryDraft::for_call(&initial));
    let entity = ArcRwSignal::new(draft.entity);
    let note = RwSignal::new(draft.note);
    let task_on = RwSignal::new(draft.task);
    let task_when = RwSignal::new(draft.task_when);
    let task_text = RwSignal::new(draft.task_text);
    // Every change is kept, so a reload before Save loses nothing.
    Effect::new({
        let entity = entity.clone();
        move |_| {
            let draft = SummaryDraft {
                entity: entity.get(),
                note: note.get(),
                task: task_on.get(),
                task_when: task_when.get(),
                task_text: task_text.get(),
            };
            if let Some(view) = current.get_untracked() {
                drafts::save(&view, &draft);
            }
        }
    });
    let query = RwSignal::new(String::new());
    let hits = ArcRwSignal::new(Vec::<SearchHit>::new());
    let searching = ArcRwSignal::new(false);
    let search_gen = ArcRwSignal::new(0u32);
    let phase = ArcRwSignal::new(Phase::Editing);
    let search_ref = NodeRef::<leptos::html::Input>::new();
    let dialog_ref = NodeRef::<leptos::html::Div>::new();
    // ArrowUp/ArrowDown between the search field and its hits.
    let arrow_keys = move |ev: &leptos::ev::KeyboardEvent| {
        let down = match ev.key().as_str() {
            "ArrowDown" => true,
            "ArrowUp" => false,
            _ => return,
        };
        let Some(dialog) = dialog_ref.get_untracked() else { return };
        let hits = elements(&dialog, ".callcard-summary-hit");
        let active = active_element();
        let current = hits.iter().position(|h| active.as_ref() == Some(h.as_ref()));
        if hits.is_empty() {
            return;
        }
        ev.prevent_default();
        match step_hit(hits.len(), current, down) {
            Some(i) => {
                let _ = hits[i].focus();
            }
            None => {
                if let Some(input) = search_ref.get_untracked() {
                    let _ = input.focus();
                }
            }
        }
    };

    Effect::new(move |_| {
        if let Some(input) = search_ref.get() {
            let _ = input.focus();
        }
    });

    let party = match &initial.caller {
        CallerId::Known { name, .. } if !name.trim().is_empty() => name.trim().to_owned(),
        _ => initial.call.external_number.as_str().to_owned(),
    };
    let duration = initial.call.billable_seconds();

    let cancel = {
        let queue = queue.clone();
        let phase = phase.clone();
        let id = call_id.clone();
        move || {
            if phase.get_untracked() != Phase::Saving {
                queue.close(&id);
                drafts::discard(&id);
            }
        }
    };

    let save = {
        let queue = queue.clone();
        let phase = phase.clone();
        let entity = entity.clone();
        let texts = texts.clone();
        let id = call_id.clone();
        move || {
            if phase.get_untracked() == Phase::Saving {
                return;
            }
            let draft = SummaryDraft {
                entity: entity.get_untracked(),
                note: note.get_untracked(),
                task: task_on.get_untracked(),
                task_when: task_when.get_untracked(),
                task_text: task_text.get_untracked(),
            };
            let result = match draft.to_result(local_to_unix) {
                Ok(r) => r,
                Err(DraftError(key)) => {
                    phase.set(Phase::Failed(texts.text(key)));
                    return;
                }
            };
            phase.set(Phase::Saving);
            let (queue, phase, texts, id) = (queue.clone(), phase.clone(), texts.clone(), id.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let Some(widget) = session::current_widget() else {
                    phase.set(Phase::Failed(texts.fill("summary.error", &[("reason", "widget stopped")])));
                    return;
                };
                let notifications = Notifications::get();
                match Backend::from_page().save_result(&widget, &id, &result).await {
                    Ok(()) => {
                        queue.close(&id);
                        drafts::discard(&id);
                        if let Some(n) = notifications {
                            let _ = n.show_message(&texts.text("summary.title"), &texts.text("summary.saved"));
                        }
                    }
                    Err(e) if e.is_transient() => {
                        // The backend cannot be reached (or is failing):
                        // keep the result and send it when it is back.
                        outbox::enqueue(&id, result);
                        queue.close(&id);
                        drafts::discard(&id);
                        if let Some(n) = notifications {
                            let _ = n.show_message(&texts.text("summary.title"), &texts.text("summary.queued"));
                        }
                    }
                    Err(e) => phase.set(Phase::Failed(texts.fill("summary.error", &[("reason", &e.to_string())]))),
                }
            });
        }
    };

    let on_search = {
        let (hits, searching, search_gen) = (hits.clone(), searching.clone(), search_gen.clone());
        move |ev: leptos::ev::Event| {
            let q = event_target_value(&ev);
            query.set(q.clone());
            let generation = search_gen.get_untracked().wrapping_add(1);
            search_gen.set(generation);
            if !is_searchable(&q) {
                hits.set(Vec::new());
                searching.set(false);
                return;
            }
            searching.set(true);
            let (hits, searching, search_gen) = (hits.clone(), searching.clone(), search_gen.clone());
            wasm_bindgen_futures::spawn_local(async move {
                gloo_timers::future::TimeoutFuture::new(DEBOUNCE_MS).await;
                if search_gen.get_untracked() != generation {
                    return;
                }
                let found = search(&q).await;
                if search_gen.get_untracked() != generation {
                    return;
                }
                hits.set(found);
                searching.set(false);
            });
        }
    };

    let entity_line = {
        let (entity, texts) = (entity.clone(), texts.clone());
        move || match entity.get() {
            Some(ChosenEntity { entity, name }) => format!("{} · {name}", texts.text(kind_key(entity.kind))),
            None => texts.text("summary.no_entity"),
        }
    };

    let hit_list = {
        let (hits, searching, search_gen, entity, texts) =
            (hits.clone(), searching.clone(), search_gen.clone(), entity.clone(), texts.clone());
        move || {
            let list = hits.get();
            if searching.get() {
                let line = view! { <li class="callcard-summary-searching">{texts.text("summary.searching")}</li> };
                return EitherOf3::A(line);
            }
            if list.is_empty() {
                let typed = query.with(|q| is_searchable(q));
                let none = texts.text("summary.no_matches");
                return EitherOf3::B(typed.then(|| view! { <li class="callcard-summary-no-matches">{none}</li> }));
            }
            let buttons = list
                .into_iter()
                .map(|hit| {
                    let label = format!("{} · {}", texts.text(kind_key(hit.entity.kind)), hit.name);
                    let (entity, hits, search_gen) = (entity.clone(), hits.clone(), search_gen.clone());
                    let chosen = ChosenEntity { entity: hit.entity, name: hit.name.clone() };
                    view! {
                        <li>
                            <button type="button" class="callcard-summary-hit"
                                data-entity-type=hit.entity.kind.as_str() data-entity-id=hit.entity.id.to_string()
                                on:keydown=move |ev| arrow_keys(&ev)
                                on:click=move |_| {
                                    entity.set(Some(chosen.clone()));
                                    search_gen.set(search_gen.get_untracked().wrapping_add(1));
                                    hits.set(Vec::new());
                                    query.set(String::new());
                                    // The chosen button goes away: keep focus in the form.
                                    if let Some(input) = search_ref.get_untracked() {
                                        let _ = input.focus();
                                    }
                                }>
                                {label}
                            </button>
                        </li>
                    }
                })
                .collect_view();
            EitherOf3::C(buttons)
        }
    };

    let recording_panel = {
        let texts = texts.clone();
        move || match recording.get() {
            Some(url) => Either::Left(view! {
                <audio class="callcard-summary-audio" controls=true preload="none" src=url
                    aria-label=texts.text("summary.recording")></audio>
            }),
            None => Either::Right(view! {
                <p class="callcard-summary-recording-pending">{texts.text("summary.recording_pending")}</p>
            }),
        }
    };

    let error_line = {
        let phase = phase.clone();
        move || match phase.get() {
            Phase::Failed(msg) => Some(view! { <p class="callcard-summary-error" role="alert">{msg}</p> }),
            _ => None,
        }
    };

    let t = |k: &str| texts.text(k);
    let state_attr = {
        let phase = phase.clone();
        move || phase.get().as_str()
    };
    let saving = {
        let phase = phase.clone();
        move || phase.get() == Phase::Saving
    };
    let saving_label = saving.clone();
    let saving_cancel = saving.clone();
    let (task_when_label, task_text_label) = (t("summary.task_when"), t("summary.task_text"));
    let (save_text, saving_text) = (t("summary.save"), t("summary.saving"));
    let on_key = {
        let cancel = cancel.clone();
        move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
            "Escape" => {
                ev.prevent_default();
                cancel();
            }
            "Tab" => {
                // Keep Tab inside the modal (aria-modal promises it).
                let Some(dialog) = dialog_ref.get_untracked() else { return };
                let controls = elements(&dialog, FOCUSABLE);
                let active = active_element();
                let current = controls.iter().position(|c| active.as_ref() == Some(c.as_ref()));
                if let Some(i) = wrap_index(controls.len(), current, ev.shift_key()) {
                    ev.prevent_default();
                    let _ = controls[i].focus();
                }
            }
            _ => {}
        }
    };
    let on_submit = {
        let save = save.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            save();
        }
    };

    view! {
        <div class="callcard-summary-overlay" style=OVERLAY>
            <div id="callcard-summary" class="callcard-summary" role="dialog" aria-modal="true"
                aria-labelledby="callcard-summary-title" aria-describedby="callcard-summary-party" style=DIALOG
                node_ref=dialog_ref
                data-call-id=call_id.clone() data-state=state_attr on:keydown=on_key>
                <form on:submit=on_submit>
                    <h2 id="callcard-summary-title">{t("summary.title")}</h2>
                    <p id="callcard-summary-party" class="callcard-summary-party">{texts.fill("summary.with", &[("name", &party)])}</p>
                    <p>
                        <strong>{t("summary.linked_entity")}": "</strong>
                        <span class="callcard-summary-entity">{entity_line}</span>
                    </p>
                    <label for="callcard-summary-search">{t("summary.search_label")}</label>
                    <input id="callcard-summary-search" type="search" autocomplete="off"
                        node_ref=search_ref
                        placeholder=t("summary.search_placeholder")
                        aria-controls="callcard-summary-hits"
                        prop:value=move || query.get()
                        on:keydown=move |ev| arrow_keys(&ev)
                        on:input=on_search />
                    <ul id="callcard-summary-hits" aria-live="polite">{hit_list}</ul>
                    <section class="callcard-summary-recording" aria-label=t("summary.recording")>
                        <p>{texts.fill("summary.duration", &[("duration", &format_duration(duration))])}</p>
                        {recording_panel}
                    </section>
                    <label for="callcard-summary-note">{t("summary.note_label")}</label>
                    <textarea id="callcard-summary-note" rows="3"
                        prop:value=move || note.get()
                        on:input=move |ev| note.set(event_target_value(&ev))></textarea>
                    <div>
                        <input id="callcard-summary-task" type="checkbox"
                            prop:checked=move || task_on.get()
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                if on && task_when.get_untracked().trim().is_empty() {
                                    let mut draft = SummaryDraft::default();
                                    draft.enable_task(next_working_day());
                                    task_when.set(draft.task_when);
                                }
                                task_on.set(on);
                            } />
                        <label for="callcard-summary-task">{t("summary.add_task")}</label>
                    </div>
                    <Show when=move || task_on.get()>
                        <label for="callcard-summary-task-when">{task_when_label.clone()}</label>
                        <input id="callcard-summary-task-when" type="datetime-local"
                            prop:value=move || task_when.get()
                            on:input=move |ev| task_when.set(event_target_value(&ev)) />
                        <label for="callcard-summary-task-text">{task_text_label.clone()}</label>
                        <input id="callcard-summary-task-text" type="text"
                            prop:value=move || task_text.get()
                            on:input=move |ev| task_text.set(event_target_value(&ev)) />
                    </Show>
                    {error_line}
                    <div class="callcard-summary-actions">
                        <button id="callcard-summary-save" type="submit" disabled=saving>
                            {move || if saving_label() { saving_text.clone() } else { save_text.clone() }}
                        </button>
                        <button id="callcard-summary-cancel" type="button" disabled=saving_cancel
                            on:click=move |_| cancel()>
                            {t("summary.cancel")}
                        </button>
                    </div>
                </form>
            </div>
        </div>
    }
}

/// The next working day in the browser's time zone (see
/// [`days_to_next_working_day`]).
fn next_working_day() -> LocalDate {
    let date = js_sys::Date::new_0();
    let today = LocalDate {
        year: date.get_full_year() as i32,
        month: date.get_month() + 1,
        day: date.get_date(),
        weekday: date.get_day(),
    };
    // `setDate` past the month's end rolls over into the next month, as wanted.
    date.set_date(date.get_date() + days_to_next_working_day(today));
    LocalDate {
        year: date.get_full_year() as i32,
        month: date.get_month() + 1,
        day: date.get_date(),
        weekday: date.get_day(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_wraps_at_both_ends_only() {
        assert_eq!(wrap_index(3, Some(2), false), Some(0));
        assert_eq!(wrap_index(3, Some(0), true), Some(2));
        assert_eq!(wrap_index(3, Some(1), false), None, "the browser moves focus itself");
        assert_eq!(wrap_index(3, None, false), Some(0), "focus outside comes back in");
        assert_eq!(wrap_index(0, None, false), None);
    }

    #[test]
    fn arrows_walk_the_hits_and_back_to_the_field() {
        assert_eq!(step_hit(2, None, true), Some(0));
        assert_eq!(step_hit(2, Some(0), true), Some(1));
        assert_eq!(step_hit(2, Some(1), true), Some(1), "stays on the last hit");
        assert_eq!(step_hit(2, Some(1), false), Some(0));
        assert_eq!(step_hit(2, Some(0), false), None, "up from the first hit: the field");
        assert_eq!(step_hit(0, None, true), None);
    }
}
