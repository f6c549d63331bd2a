//! The Call summary modal: opened when a call of this user ends without a
//! saved result.
//!
//! Markup (stable for tests and styling):
//! `#callcard-summary[role=dialog][data-call-id][data-state=editing|saving|error]`,
//! `#callcard-summary-title`, the call's facts `#callcard-summary-party`
//! (a `<dl>`, `dd[data-fact=caller|number|direction|time|talked]`),
//! `.callcard-summary-entity`,
//! `#callcard-summary-search` with hits `#callcard-summary-hits
//! .callcard-summary-hit[data-entity-type][data-entity-id]`,
//! `.callcard-summary-recording` (an `<audio>` or
//! `.callcard-summary-recording-pending`), `#callcard-summary-note`,
//! `#callcard-summary-task` (checkbox), `#callcard-summary-task-when`,
//! `#callcard-summary-task-text`, `#callcard-summary-save`,
//! `#callcard-summary-cancel`, `.callcard-summary-error[role=alert]`.
//!
//! Styled by the package's `callcard.css` (no inline styles).
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
use crate::kommo::{AjaxError, CurrentWidget, Notifications};
use crate::local_time;
use crate::outbox;
use crate::search::{is_searchable, search, SearchHit, DEBOUNCE_MS};
use crate::summary::{ChosenEntity, DraftError, SummaryDraft, SummaryQueue};
use crate::texts::{kind_key, Texts, Translations};
use callcard_calls::feed::{CallView, CallerId};
use callcard_calls::note::format_duration;
use callcard_calls::result::CallResult;
use callcard_calls::Direction;
use gloo_timers::future::TimeoutFuture;
use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

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

/// The modal for the first queued call, if any.
#[component]
pub fn CallSummary() -> impl IntoView {
    let queue = expect_context::<SummaryQueue>();
    let open_id = Memo::new(move |_| queue.open_call_id());
    move || open_id.get().map(|call_id| view! { <SummaryDialog call_id=call_id /> })
}

/// The fields of one open summary, as signals (copied into every part).
#[derive(Clone, Copy)]
struct SummaryForm {
    entity: RwSignal<Option<ChosenEntity>>,
    note: RwSignal<String>,
    task_on: RwSignal<bool>,
    task_when: RwSignal<String>,
    task_text: RwSignal<String>,
    /// Why the last Save did not go through.
    error: RwSignal<Option<String>>,
}

impl SummaryForm {
    fn new(draft: SummaryDraft) -> Self {
        Self {
            entity: RwSignal::new(draft.entity),
            note: RwSignal::new(draft.note),
            task_on: RwSignal::new(draft.task),
            task_when: RwSignal::new(draft.task_when),
            task_text: RwSignal::new(draft.task_text),
            error: RwSignal::new(None),
        }
    }

    fn draft_untracked(&self) -> SummaryDraft {
        SummaryDraft {
            entity: self.entity.get_untracked(),
            note: self.note.get_untracked(),
            task: self.task_on.get_untracked(),
            task_when: self.task_when.get_untracked(),
            task_text: self.task_text.get_untracked(),
        }
    }

    /// Keeps every change in `localStorage`, so a reload before Save loses nothing.
    fn keep_as_draft(self, call: Memo<Option<CallView>>) {
        Effect::new(move |_| {
            let draft = self.draft();
            if let Some(view) = call.get_untracked() {
                drafts::save(&view, &draft);
            }
        });
    }

    /// Sends the result, or says what is missing.
    fn submit(&self, save: Action<CallResult, ()>, texts: &Translations) {
        match self.draft_untracked().to_result(local_time::to_unix) {
            Ok(result) => {
                self.error.set(None);
                save.dispatch_local(result);
            }
            Err(DraftError(key)) => self.error.set(Some(texts.text(key))),
        }
    }

    /// The dialog's `data-state`.
    fn state(&self, saving: bool) -> &'static str {
        if saving {
            "saving"
        } else if self.error.with(Option::is_some) {
            "error"
        } else {
            "editing"
        }
    }

    /// The fields as a draft (tracked: an effect reading it reruns on every change).
    fn draft(&self) -> SummaryDraft {
        SummaryDraft {
            entity: self.entity.get(),
            note: self.note.get(),
            task: self.task_on.get(),
            task_when: self.task_when.get(),
            task_text: self.task_text.get(),
        }
    }
}

/// What happened to a result Save sent.
enum Saved {
    Sent,
    /// The backend could not be reached (or is failing): kept in the outbox.
    Queued,
    Refused(AjaxError),
}

/// Posts a result; a transient failure queues it instead.
async fn send_result(widget: Option<crate::kommo::KommoWidget>, call_id: String, result: CallResult) -> Saved {
    let Some(widget) = widget else {
        return Saved::Refused(AjaxError::new(0, "widget stopped"));
    };
    match Backend::from_page().save_result(&widget, &call_id, &result).await {
        Ok(()) => Saved::Sent,
        Err(e) if e.is_transient() => {
            outbox::enqueue(&call_id, result);
            Saved::Queued
        }
        Err(e) => Saved::Refused(e),
    }
}

/// Save: posts the result (or queues it), then closes the summary; a
/// refusal keeps the input and says why.
fn save_action(call_id: String, form: SummaryForm) -> Action<CallResult, ()> {
    let queue = expect_context::<SummaryQueue>();
    let texts = expect_context::<Translations>();
    let widget = expect_context::<CurrentWidget>();
    Action::new_local(move |result: &CallResult| {
        let (id, texts, result) = (call_id.clone(), texts.clone(), result.clone());
        async move {
            let said = match send_result(widget.get(), id.clone(), result).await {
                Saved::Sent => "summary.saved",
                Saved::Queued => "summary.queued",
                Saved::Refused(e) => {
                    form.error.set(Some(texts.fill("summary.error", &[("reason", &e.to_string())])));
                    return;
                }
            };
            queue.close(&id);
            drafts::discard(&id);
            if let Some(n) = Notifications::get() {
                let _ = n.show_message(&texts.text("summary.title"), &texts.text(said));
            }
        }
    })
}

/// Escape cancels; Tab stays inside the modal (aria-modal promises it).
fn dialog_keys(ev: &leptos::ev::KeyboardEvent, dialog_ref: NodeRef<leptos::html::Div>, cancel: &impl Fn()) {
    match ev.key().as_str() {
        "Escape" => {
            ev.prevent_default();
            cancel();
        }
        "Tab" => {
            let Some(dialog) = dialog_ref.get_untracked() else { return };
            let controls = elements(&dialog, FOCUSABLE);
            let active = active_element();
            let at = controls.iter().position(|c| active.as_ref() == Some(c.as_ref()));
            if let Some(i) = wrap_index(controls.len(), at, ev.shift_key()) {
                ev.prevent_default();
                let _ = controls[i].focus();
            }
        }
        _ => {}
    }
}

#[component]
fn SummaryDialog(call_id: String) -> impl IntoView {
    let queue = expect_context::<SummaryQueue>();
    let texts = expect_context::<Translations>();
    let initial = queue.find_untracked(&call_id)?;
    let current = {
        let id = call_id.clone();
        Memo::new(move |_| queue.find(&id))
    };
    // What was typed before a reload, else the call's suggestion.
    let form = SummaryForm::new(drafts::find(&call_id).unwrap_or_else(|| SummaryDraft::for_call(&initial)));
    form.keep_as_draft(current);
    let save = save_action(call_id.clone(), form);
    let saving = save.pending();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !saving.get_untracked() {
            form.submit(save, &texts);
        }
    };
    let cancel = {
        let id = call_id.clone();
        move || {
            if !saving.get_untracked() {
                queue.close(&id);
                drafts::discard(&id);
            }
        }
    };
    let state = move || form.state(saving.get());
    let dialog_ref = NodeRef::<leptos::html::Div>::new();
    let on_key = {
        let cancel = cancel.clone();
        move |ev: leptos::ev::KeyboardEvent| dialog_keys(&ev, dialog_ref, &cancel)
    };
    let recording = Memo::new(move |_| current.get().and_then(|v| v.call.recording_url().and_then(safe_link)));
    Some(view! {
        <div class="callcard-summary-overlay">
            <div id="callcard-summary" class="callcard-summary" role="dialog" aria-modal="true"
                aria-labelledby="callcard-summary-title" aria-describedby="callcard-summary-party"
                node_ref=dialog_ref data-call-id=call_id data-state=state on:keydown=on_key>
                <form on:submit=on_submit>
                    <Party view=initial.clone() />
                    <EntityPicker form=form dialog_ref=dialog_ref />
                    <Recording recording=recording seconds=initial.call.billable_seconds() />
                    <NoteField form=form />
                    <TaskFields form=form />
                    <SummaryActions form=form saving=saving cancel=cancel />
                </form>
            </div>
        </div>
    })
}

/// The title, and the call: who (when caller ID named them), the number, the
/// direction, when it started and how long it was talked. All text: names
/// are never markup. One row per fact, so more facts about the caller (the
/// company behind a contact) are one more row.
#[component]
fn Party(view: CallView) -> impl IntoView {
    let texts = expect_context::<Translations>();
    let call = &view.call;
    let mut facts: Vec<(&'static str, String)> = Vec::new();
    if let CallerId::Known { name, .. } = &view.caller {
        if !name.trim().is_empty() {
            facts.push(("summary.caller", name.trim().to_owned()));
        }
    }
    facts.push(("summary.number", call.external_number.as_str().to_owned()));
    let direction = match call.direction {
        Direction::Inbound => "call.incoming",
        Direction::Outbound => "call.outgoing",
    };
    facts.push(("summary.direction", texts.text(direction)));
    if let Some(at) = call.ringing_at.or(call.answered_at).or(call.ending.as_ref().map(|e| e.at)) {
        facts.push(("summary.time", local_time::wall_clock(at)));
    }
    facts.push(("summary.talked", format_duration(call.billable_seconds())));
    let rows = facts
        .into_iter()
        .map(|(key, value)| {
            view! {
                <dt>{texts.text(key)}</dt>
                <dd data-fact=key.trim_start_matches("summary.")>{value}</dd>
            }
        })
        .collect_view();
    view! {
        <h2 id="callcard-summary-title">{texts.text("summary.title")}</h2>
        <dl id="callcard-summary-party" class="callcard-summary-party">{rows}</dl>
    }
}

/// ArrowUp/ArrowDown between the search field and its hits.
fn arrow_keys(ev: &leptos::ev::KeyboardEvent, dialog_ref: NodeRef<leptos::html::Div>) {
    let down = match ev.key().as_str() {
        "ArrowDown" => true,
        "ArrowUp" => false,
        _ => return,
    };
    let Some(dialog) = dialog_ref.get_untracked() else { return };
    let hits = elements(&dialog, ".callcard-summary-hit");
    if hits.is_empty() {
        return;
    }
    ev.prevent_default();
    let active = active_element();
    let current = hits.iter().position(|h| active.as_ref() == Some(h.as_ref()));
    let target = match step_hit(hits.len(), current, down) {
        Some(i) => Some(hits[i].clone()),
        None => dialog.query_selector("#callcard-summary-search").ok().flatten().and_then(|e| e.dyn_into().ok()),
    };
    if let Some(target) = target {
        let _ = target.focus();
    }
}

/// The hits for what is typed, with the query they answer. Refetches
/// whenever the query changes; an answer to an older query is dropped by the
/// resource, and a query typed over within [`DEBOUNCE_MS`] is never sent.
fn search_as_typed(query: RwSignal<String>) -> LocalResource<(String, Vec<SearchHit>)> {
    LocalResource::new(move || {
        let q = query.get();
        async move {
            if !is_searchable(&q) {
                return (q, Vec::new());
            }
            TimeoutFuture::new(DEBOUNCE_MS).await;
            if query.try_get_untracked().as_deref() != Some(q.as_str()) {
                return (q, Vec::new());
            }
            let hits = search(&q).await;
            (q, hits)
        }
    })
}

/// The linked record, and the debounced lead/customer search that changes it.
#[component]
fn EntityPicker(form: SummaryForm, dialog_ref: NodeRef<leptos::html::Div>) -> impl IntoView {
    let texts = expect_context::<Translations>();
    let query = RwSignal::new(String::new());
    let found = search_as_typed(query);
    let search_ref = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = search_ref.get() {
            let _ = input.focus();
        }
    });
    let choose = move |hit: SearchHit| {
        form.entity.set(Some(ChosenEntity { entity: hit.entity, name: hit.name }));
        query.set(String::new());
        // The chosen button goes away: keep focus in the form.
        if let Some(input) = search_ref.get_untracked() {
            let _ = input.focus();
        }
    };
    let entity_line = {
        let texts = texts.clone();
        move || match form.entity.get() {
            Some(ChosenEntity { entity, name }) => format!("{} · {name}", texts.text(kind_key(entity.kind))),
            None => texts.text("summary.no_entity"),
        }
    };
    view! {
        <p>
            <strong>{texts.text("summary.linked_entity")}": "</strong>
            <span class="callcard-summary-entity">{entity_line}</span>
        </p>
        <label for="callcard-summary-search">{texts.text("summary.search_label")}</label>
        <input id="callcard-summary-search" type="search" autocomplete="off" node_ref=search_ref
            placeholder=texts.text("summary.search_placeholder") aria-controls="callcard-summary-hits"
            prop:value=move || query.get()
            on:keydown=move |ev| arrow_keys(&ev, dialog_ref)
            on:input=move |ev| query.set(event_target_value(&ev)) />
        <ul id="callcard-summary-hits" aria-live="polite">
            <HitList query=query found=found choose=choose dialog_ref=dialog_ref />
        </ul>
    }
}

/// What the search found for the query: "searching…", "no matches", or the hits.
#[component]
fn HitList(
    query: RwSignal<String>,
    found: LocalResource<(String, Vec<SearchHit>)>,
    choose: impl Fn(SearchHit) + Copy + Send + Sync + 'static,
    dialog_ref: NodeRef<leptos::html::Div>,
) -> impl IntoView {
    let texts = expect_context::<Translations>();
    move || {
        let q = query.get();
        if !is_searchable(&q) {
            return EitherOf3::A(None);
        }
        match found.get() {
            Some((answered, hits)) if answered == q && hits.is_empty() => EitherOf3::A(Some(
                view! { <li class="callcard-summary-no-matches">{texts.text("summary.no_matches")}</li> },
            )),
            Some((answered, hits)) if answered == q => EitherOf3::B(
                hits.into_iter()
                    .map(|hit| view! { <HitButton hit=hit choose=choose dialog_ref=dialog_ref /> })
                    .collect_view(),
            ),
            _ => EitherOf3::C(view! { <li class="callcard-summary-searching">{texts.text("summary.searching")}</li> }),
        }
    }
}

/// One search hit: a button that links the call to it.
#[component]
fn HitButton(
    hit: SearchHit,
    choose: impl Fn(SearchHit) + Copy + Send + Sync + 'static,
    dialog_ref: NodeRef<leptos::html::Div>,
) -> impl IntoView {
    let texts = expect_context::<Translations>();
    let label = format!("{} · {}", texts.text(kind_key(hit.entity.kind)), hit.name);
    let (kind, id) = (hit.entity.kind.as_str(), hit.entity.id.to_string());
    view! {
        <li>
            <button type="button" class="callcard-summary-hit" data-entity-type=kind data-entity-id=id
                on:keydown=move |ev| arrow_keys(&ev, dialog_ref)
                on:click=move |_| choose(hit.clone())>
                {label}
            </button>
        </li>
    }
}

/// How long the call was, and its recording once the PBX has it.
#[component]
fn Recording(recording: Memo<Option<String>>, seconds: u32) -> impl IntoView {
    let texts = expect_context::<Translations>();
    let label = texts.text("summary.recording");
    let pending = texts.text("summary.recording_pending");
    let player = {
        let label = label.clone();
        move || match recording.get() {
            Some(url) => Either::Left(view! {
                <audio class="callcard-summary-audio" controls=true preload="none" src=url
                    aria-label=label.clone()></audio>
            }),
            None => Either::Right(view! { <p class="callcard-summary-recording-pending">{pending.clone()}</p> }),
        }
    };
    view! {
        <section class="callcard-summary-recording" aria-label=label>
            <p>{texts.fill("summary.duration", &[("duration", &format_duration(seconds))])}</p>
            {player}
        </section>
    }
}

/// The manager's note.
#[component]
fn NoteField(form: SummaryForm) -> impl IntoView {
    let texts = expect_context::<Translations>();
    view! {
        <label for="callcard-summary-note">{texts.text("summary.note_label")}</label>
        <textarea id="callcard-summary-note" rows="3"
            prop:value=move || form.note.get()
            on:input=move |ev| form.note.set(event_target_value(&ev))></textarea>
    }
}

/// The follow-up task: ticking it proposes the next working day at 10:00.
#[component]
fn TaskFields(form: SummaryForm) -> impl IntoView {
    let texts = expect_context::<Translations>();
    let on_tick = move |ev: leptos::ev::Event| {
        let mut draft = form.draft_untracked();
        if event_target_checked(&ev) {
            draft.enable_task(local_time::next_working_day());
            form.task_when.set(draft.task_when);
        }
        form.task_on.set(event_target_checked(&ev));
    };
    let (when_label, text_label) = (texts.text("summary.task_when"), texts.text("summary.task_text"));
    view! {
        <div>
            <input id="callcard-summary-task" type="checkbox" prop:checked=move || form.task_on.get()
                on:change=on_tick />
            <label for="callcard-summary-task">{texts.text("summary.add_task")}</label>
        </div>
        <Show when=move || form.task_on.get()>
            <label for="callcard-summary-task-when">{when_label.clone()}</label>
            <input id="callcard-summary-task-when" type="datetime-local"
                prop:value=move || form.task_when.get()
                on:input=move |ev| form.task_when.set(event_target_value(&ev)) />
            <label for="callcard-summary-task-text">{text_label.clone()}</label>
            <input id="callcard-summary-task-text" type="text"
                prop:value=move || form.task_text.get()
                on:input=move |ev| form.task_text.set(event_target_value(&ev)) />
        </Show>
    }
}

/// Why Save did not go through, Save and Cancel.
#[component]
fn SummaryActions(form: SummaryForm, saving: Memo<bool>, cancel: impl Fn() + Clone + 'static) -> impl IntoView {
    let texts = expect_context::<Translations>();
    let (save_text, saving_text) = (texts.text("summary.save"), texts.text("summary.saving"));
    let error_line =
        move || form.error.get().map(|msg| view! { <p class="callcard-summary-error" role="alert">{msg}</p> });
    view! {
        {error_line}
        <div class="callcard-summary-actions">
            <button id="callcard-summary-save" type="submit" disabled=move || saving.get()>
                {move || if saving.get() { saving_text.clone() } else { save_text.clone() }}
            </button>
            <button id="callcard-summary-cancel" type="button" disabled=move || saving.get()
                on:click=move |_| cancel()>
                {texts.text("summary.cancel")}
            </button>
        </div>
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
