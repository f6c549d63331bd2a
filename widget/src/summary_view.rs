//! The Call summary: opened when a call of this user ends without a saved
//! result, inside Kommo's modal window ([`crate::modal`]).
//!
//! [`CallSummary`] opens one Kommo modal while any summary is open and mounts
//! the Leptos form into its body; it closes the modal when none is left, and
//! gives focus back to where it was. With several calls waiting, the modal
//! shows one at a time with "1 of 3" and Previous/Next. Cancel (or Escape)
//! takes the shown call off the modal and keeps it listed as "no result"
//! ([`crate::report_view::NoResultList`]); Kommo's close button does that
//! for all of them. Without Kommo's modal (a page that does not provide it)
//! the same form is drawn in an overlay of the widget's own.
//!
//! Markup (stable for tests and styling):
//! `.modal.callcard-summary-modal .modal-body > #callcard-summary[role=dialog][data-call-id][data-state=editing|error]`,
//! `#callcard-summary-title`, `.callcard-summary-pager` (`#callcard-summary-prev`,
//! `#callcard-summary-position` "1 of 3", `#callcard-summary-next`), the
//! call's facts `#callcard-summary-party` (a `<dl>`,
//! `dd[data-fact=caller|number|direction|time|talked|contact|company]`, the
//! record lines holding `a.callcard-record`), `.callcard-summary-entity` (the
//! chosen record) with `.callcard-summary-meta` (status, responsible user),
//! `#callcard-summary-search` with hits `#callcard-summary-hits
//! .callcard-summary-hit[data-entity-type][data-entity-id]`,
//! `.callcard-summary-recording` (`audio` + `a.callcard-summary-download`, or
//! `.callcard-summary-recording-pending`), `#callcard-summary-subject`, `#callcard-summary-note`,
//! `#callcard-summary-task` (checkbox), `#callcard-summary-task-kind`,
//! `#callcard-summary-task-when`, `#callcard-summary-task-user`,
//! `#callcard-summary-task-text`, `#callcard-summary-save`,
//! `#callcard-summary-cancel`, `.callcard-summary-error[role=alert]`.
//!
//! Styled by the package's `callcard.css` after Kommo's forms (no inline
//! styles). Every control has a label; the dialog is labelled by its title
//! and described by the call's facts. Escape cancels; the form submits with
//! Enter; Tab stays inside the dialog; ArrowDown/ArrowUp move between the
//! search field and its hits, and choosing a hit returns focus to the field.
//!
//! Save checks the fields (a missing one is said in the form, which stays),
//! then closes the summary and reports "Saving…" → "Logged on <record>" or
//! the failure with Retry ([`crate::report`]). A network failure (or a 5xx,
//! 408, 429) queues the result ([`crate::outbox`]). The fields are kept in
//! `localStorage` as they change ([`crate::drafts`]) and come back if the
//! page reloads before Save.

use crate::api::Backend;
use crate::directory::{self, Directory};
use crate::drafts;
use crate::escape::safe_link;
use crate::kommo::{current_user_id, AjaxError, CurrentWidget};
use crate::local_time;
use crate::modal::{self, KommoModal};
use crate::notification::record_card_path;
use crate::outbox;
use crate::report::{SaveReport, SaveReports, SaveState};
use crate::search::{is_searchable, search, SearchHit, DEBOUNCE_MS};
use crate::summary::{ChosenEntity, DraftError, Step, SummaryDraft, SummaryQueue};
use crate::texts::{kind_key, Texts, Translations};
use callcard_calls::feed::{CallView, CallerId};
use callcard_calls::note::format_duration;
use callcard_calls::result::{CallResult, TaskKind};
use callcard_calls::{Direction, EntityKind, EntityRef};
use gloo_timers::future::TimeoutFuture;
use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;

/// The class Kommo's modal root gets.
pub const MODAL_CLASS: &str = "callcard-summary-modal";

/// The selector of everything Tab can reach inside the dialog.
const FOCUSABLE: &str = "button:not([disabled]), input:not([disabled]), textarea:not([disabled]), \
                         select:not([disabled]), a[href], audio[controls], [tabindex]:not([tabindex='-1'])";

fn elements(root: &web_sys::Element, selector: &str) -> Vec<web_sys::HtmlElement> {
    let Ok(list) = root.query_selector_all(selector) else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.item(i)?.dyn_into::<web_sys::HtmlElement>().ok()).collect()
}

fn active_element() -> Option<web_sys::Element> {
    web_sys::window()?.document()?.active_element()
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

/// The open modal: Kommo's window and the view mounted into it.
struct OpenModal {
    /// The mounted view (its unmount handle): dropped before the window goes.
    view: Box<dyn std::any::Any>,
    window: KommoModal,
    /// What had focus before the modal opened.
    return_focus: Option<web_sys::HtmlElement>,
}

impl OpenModal {
    fn close(self) {
        let OpenModal { view, window, return_focus } = self;
        drop(view);
        window.close();
        give_focus_back(return_focus);
    }
}

/// What has focus, unless nothing does (the page's body).
fn focused_html() -> Option<web_sys::HtmlElement> {
    let active = active_element()?;
    let body = web_sys::window()?.document()?.body();
    if body.is_some_and(|b| *b == active) {
        return None;
    }
    active.dyn_into().ok()
}

/// Gives focus back to what had it before the summary opened. The change
/// that closed the modal may redraw that element ("Add results" goes while
/// a summary is open and comes back with a new button when one is
/// cancelled): then focus goes, once the page has drawn that change, to
/// the element now holding its id, unless focus has gone somewhere since.
fn give_focus_back(before: Option<web_sys::HtmlElement>) {
    let Some(before) = before else { return };
    if before.is_connected() {
        let _ = before.focus();
        return;
    }
    let id = before.id();
    if id.is_empty() {
        return;
    }
    leptos::task::spawn_local(async move {
        // After the reactive updates of this change (microtasks), before anything the manager does.
        TimeoutFuture::new(0).await;
        let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
        if focused_html().is_some() {
            return;
        }
        if let Some(again) = document.get_element_by_id(&id).and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
            let _ = again.focus();
        }
    });
}

/// The open summary, keyed by its call, so moving to another call starts
/// its own form.
fn shown_dialog(queue: SummaryQueue) -> impl IntoView {
    let open_id = Memo::new(move |_| queue.open_call_id());
    move || open_id.get().map(|call_id| view! { <SummaryDialog call_id=call_id /> })
}

/// Opens Kommo's modal while a summary is open (or draws the summary in the
/// widget's own overlay where the page has no Kommo modal).
#[component]
pub fn CallSummary() -> impl IntoView {
    let queue = expect_context::<SummaryQueue>();
    // The account's users and statuses, asked once per page.
    let directory = LocalResource::new(directory::fetch);
    provide_context(directory);
    let any_open = Memo::new(move |_| queue.open_call_id().is_some());
    if !modal::available() {
        let focus_before: Rc<RefCell<Option<web_sys::HtmlElement>>> = Rc::default();
        Effect::new(move |was_open: Option<bool>| {
            let open = any_open.get();
            match (was_open.unwrap_or(false), open) {
                (false, true) => *focus_before.borrow_mut() = focused_html(),
                (true, false) => give_focus_back(focus_before.borrow_mut().take()),
                _ => {}
            }
            open
        });
        return Either::Left(move || {
            any_open.get().then(|| view! { <div class="callcard-summary-overlay">{shown_dialog(queue)}</div> })
        });
    }
    let owner = Owner::current().expect("a component runs under an owner");
    let open = StoredValue::new_local(None::<OpenModal>);
    Effect::new(move |_| {
        if !any_open.get() {
            if let Some(m) = open.try_update_value(Option::take).flatten() {
                m.close();
            }
            return;
        }
        if open.with_value(Option::is_some) {
            return;
        }
        let return_focus = focused_html();
        // Kommo's close button: every open summary is kept as "no result".
        let Some(window) = KommoModal::open(MODAL_CLASS, move || queue.dismiss_all()) else { return };
        let body = window.body().clone();
        let view = untrack(|| owner.with(|| leptos::mount::mount_to(body, move || shown_dialog(queue))));
        window.loaded();
        open.set_value(Some(OpenModal { view: Box::new(view), window, return_focus }));
    });
    on_cleanup(move || {
        if let Some(m) = open.try_update_value(Option::take).flatten() {
            m.close();
        }
    });
    Either::Right(())
}

/// The fields of one open summary, as signals (copied into every part).
#[derive(Clone, Copy)]
struct SummaryForm {
    entity: RwSignal<Option<ChosenEntity>>,
    subject: RwSignal<String>,
    note: RwSignal<String>,
    task_on: RwSignal<bool>,
    task_kind: RwSignal<TaskKind>,
    task_when: RwSignal<String>,
    task_user: RwSignal<Option<u64>>,
    task_text: RwSignal<String>,
    /// What is missing for Save.
    error: RwSignal<Option<String>>,
}

impl SummaryForm {
    fn new(draft: SummaryDraft) -> Self {
        Self {
            entity: RwSignal::new(draft.entity),
            subject: RwSignal::new(draft.subject),
            note: RwSignal::new(draft.note),
            task_on: RwSignal::new(draft.task),
            task_kind: RwSignal::new(draft.task_kind),
            task_when: RwSignal::new(draft.task_when),
            task_user: RwSignal::new(draft.task_user),
            task_text: RwSignal::new(draft.task_text),
            error: RwSignal::new(None),
        }
    }

    fn draft_untracked(&self) -> SummaryDraft {
        SummaryDraft {
            entity: self.entity.get_untracked(),
            subject: self.subject.get_untracked(),
            note: self.note.get_untracked(),
            task: self.task_on.get_untracked(),
            task_kind: self.task_kind.get_untracked(),
            task_when: self.task_when.get_untracked(),
            task_user: self.task_user.get_untracked(),
            task_text: self.task_text.get_untracked(),
        }
    }

    /// The fields as a draft (tracked: an effect reading it reruns on every change).
    fn draft(&self) -> SummaryDraft {
        SummaryDraft {
            entity: self.entity.get(),
            subject: self.subject.get(),
            note: self.note.get(),
            task: self.task_on.get(),
            task_kind: self.task_kind.get(),
            task_when: self.task_when.get(),
            task_user: self.task_user.get(),
            task_text: self.task_text.get(),
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

    /// The dialog's `data-state`.
    fn state(&self) -> &'static str {
        if self.error.with(Option::is_some) {
            "error"
        } else {
            "editing"
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
async fn send_result(widget: Option<crate::kommo::KommoWidget>, call_id: &str, result: CallResult) -> Saved {
    let Some(widget) = widget else {
        return Saved::Refused(AjaxError::new(0, "widget stopped"));
    };
    match Backend::from_page().save_result(&widget, call_id, &result).await {
        Ok(()) => Saved::Sent,
        Err(e) if e.is_transient() => {
            outbox::enqueue(call_id, result);
            Saved::Queued
        }
        Err(e) => Saved::Refused(e),
    }
}

/// Save: checks the fields; then closes the summary, reports "Saving…" and
/// posts the result in the background.
fn save(view: CallView, form: SummaryForm, texts: &Translations) {
    let draft = form.draft_untracked();
    let result = match draft.to_result(local_time::to_unix) {
        Ok(result) => result,
        Err(DraftError(key)) => {
            form.error.set(Some(texts.text(key)));
            return;
        }
    };
    let queue = expect_context::<SummaryQueue>();
    let reports = expect_context::<SaveReports>();
    let widget = expect_context::<CurrentWidget>();
    let call_id = view.call.call_id.clone();
    let record = draft.entity.as_ref().map(|e| e.name.clone()).unwrap_or_default();
    reports.start(SaveReport { call_id: call_id.clone(), record, view, draft, state: SaveState::Saving });
    queue.close(&call_id);
    drafts::discard(&call_id);
    leptos::task::spawn_local(async move {
        let state = match send_result(widget.get(), &call_id, result).await {
            Saved::Sent => SaveState::Accepted,
            Saved::Queued => SaveState::Queued,
            Saved::Refused(e) => SaveState::Failed(e.message),
        };
        reports.set_state(&call_id, state);
    });
}

/// Cancel: the call leaves the modal, listed as "no result" with what was typed.
fn cancel(queue: SummaryQueue, call_id: &str) {
    if let Some(view) = queue.find_untracked(call_id) {
        drafts::dismiss(&view);
    }
    queue.dismiss(call_id);
}

/// Kommo's modal body around the dialog (holding its close ×), else the
/// dialog itself: what Tab cycles through.
fn tab_cycle(dialog: &web_sys::Element) -> Vec<web_sys::HtmlElement> {
    let root = dialog.closest(".modal-body").ok().flatten().unwrap_or_else(|| dialog.clone());
    elements(&root, FOCUSABLE)
}

/// Tab (Shift+Tab) moves to the next (previous) of `controls`, around at
/// the ends: done here rather than left to the browser, whose order would
/// leave the modal from the ×.
fn wrap_focus(ev: &web_sys::KeyboardEvent, controls: &[web_sys::HtmlElement]) {
    let active = active_element();
    let at = controls.iter().position(|c| active.as_ref() == Some(c.as_ref()));
    if let Some(i) = next_index(controls.len(), at, ev.shift_key()) {
        ev.prevent_default();
        let _ = controls[i].focus();
    }
}

/// The control Tab (Shift+Tab: `backwards`) goes to from `current`, around
/// at the ends; from outside the list, its first (last).
pub fn next_index(len: usize, current: Option<usize>, backwards: bool) -> Option<usize> {
    match (len, current) {
        (0, _) => None,
        (_, None) => Some(if backwards { len - 1 } else { 0 }),
        (_, Some(i)) => Some(if backwards { (i + len - 1) % len } else { (i + 1) % len }),
    }
}

/// Tab on Kommo's close × (outside the dialog, so its keys do not reach
/// [`dialog_keys`]): the × is the first stop of the cycle.
fn close_button_keys(ev: &web_sys::KeyboardEvent, dialog_ref: NodeRef<leptos::html::Div>) {
    let Some(dialog) = dialog_ref.get_untracked() else { return };
    let on_close = active_element().is_some_and(|a| {
        a.matches(".modal-body__close").unwrap_or(false)
            && dialog.closest(".modal-body").ok().flatten().is_some_and(|b| b.contains(Some(&a)))
    });
    // Not a Tab the dialog already handled (it bubbles here after moving focus to the ×).
    if ev.key() == "Tab" && on_close && !ev.default_prevented() {
        wrap_focus(ev, &tab_cycle(&dialog));
    }
}

/// Escape cancels (and stops there, so Kommo's modal does not close every
/// summary); Tab stays inside the modal (aria-modal promises it), Kommo's
/// close × included.
fn dialog_keys(ev: &leptos::ev::KeyboardEvent, dialog_ref: NodeRef<leptos::html::Div>, cancel: &impl Fn()) {
    match ev.key().as_str() {
        "Escape" => {
            ev.prevent_default();
            ev.stop_propagation();
            cancel();
        }
        "Tab" => {
            let Some(dialog) = dialog_ref.get_untracked() else { return };
            wrap_focus(ev, &tab_cycle(&dialog));
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
    // What was typed before (a reload, another call shown, a Retry), else the call's suggestion.
    let mut start = drafts::find(&call_id).unwrap_or_else(|| SummaryDraft::for_call(&initial));
    start.task_user = start.task_user.or_else(current_user_id);
    let form = SummaryForm::new(start);
    form.keep_as_draft(current);
    let on_submit = {
        let texts = texts.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            if let Some(view) = current.get_untracked() {
                save(view, form, &texts);
            }
        }
    };
    let cancel = {
        let id = call_id.clone();
        move || cancel(queue, &id)
    };
    let dialog_ref = NodeRef::<leptos::html::Div>::new();
    let on_key = {
        let cancel = cancel.clone();
        move |ev: leptos::ev::KeyboardEvent| dialog_keys(&ev, dialog_ref, &cancel)
    };
    let close_keys = window_event_listener(leptos::ev::keydown, move |ev| close_button_keys(&ev, dialog_ref));
    on_cleanup(move || close_keys.remove());
    let recording = Memo::new(move |_| current.get().and_then(|v| v.call.recording_url().and_then(safe_link)));
    Some(view! {
        <div id="callcard-summary" class="callcard-summary" role="dialog" aria-modal="true"
            aria-labelledby="callcard-summary-title" aria-describedby="callcard-summary-party"
            node_ref=dialog_ref data-call-id=call_id data-state=move || form.state() on:keydown=on_key>
            <form on:submit=on_submit novalidate=true>
                <header class="callcard-summary-head">
                    <h2 id="callcard-summary-title">{texts.text("summary.title")}</h2>
                    <Pager />
                </header>
                <Party view=initial.clone() />
                <EntityPicker form=form dialog_ref=dialog_ref />
                {recording_panel(recording, initial.call.billable_seconds())}
                <SubjectField form=form />
                <NoteField form=form />
                <TaskFields form=form />
                <SummaryActions form=form cancel=cancel />
            </form>
        </div>
    })
}

/// "1 of 3" with Previous and Next, when more than one call waits.
#[component]
fn Pager() -> impl IntoView {
    let queue = expect_context::<SummaryQueue>();
    let texts = expect_context::<Translations>();
    move || {
        let at = queue.position().filter(|p| p.count > 1)?;
        let (index, count) = ((at.index + 1).to_string(), at.count.to_string());
        let position = texts.fill("summary.position", &[("index", &index), ("count", &count)]);
        Some(view! {
            <div class="callcard-summary-pager">
                <button type="button" id="callcard-summary-prev" class="callcard-summary-page"
                    aria-label=texts.text("summary.previous") title=texts.text("summary.previous")
                    disabled=at.index == 0 on:click=move |_| queue.step(Step::Previous)>"‹"</button>
                <span id="callcard-summary-position" aria-live="polite">{position}</span>
                <button type="button" id="callcard-summary-next" class="callcard-summary-page"
                    aria-label=texts.text("summary.next") title=texts.text("summary.next")
                    disabled=at.index + 1 == at.count on:click=move |_| queue.step(Step::Next)>"›"</button>
            </div>
        })
    }
}

/// `<a href="/contacts/detail/7">name</a>`: a record's name opening its card.
fn record_anchor(entity: EntityRef, name: String) -> impl IntoView {
    view! { <a class="callcard-record" href=record_card_path(entity) data-kind=entity.kind.as_str()>{name}</a> }
}

/// The contact and the company behind the caller, from caller ID: the
/// holder of the number (or the record itself when it is one), then the
/// company a contact holder belongs to.
fn caller_records(caller: &CallerId) -> Vec<(EntityRef, String)> {
    let CallerId::Known { name, entity, holder, company, .. } = caller else { return Vec::new() };
    let mut records = Vec::new();
    if let Some(h) = holder {
        records.push((h.entity, h.name.clone()));
    }
    if matches!(entity.kind, EntityKind::Contact | EntityKind::Company) && !records.iter().any(|(e, _)| e == entity) {
        records.push((*entity, name.clone()));
    }
    let has_contact = records.iter().any(|(e, _)| e.kind == EntityKind::Contact);
    if let Some(c) = company.as_ref().filter(|c| has_contact && !records.iter().any(|(e, _)| *e == c.entity)) {
        records.push((c.entity, c.name.clone()));
    }
    records
}

/// The call: who (when caller ID named them), the number, the direction,
/// when it started and how long it was talked, and the contact and company
/// linked to it, each linking to its card. All text: names are never markup.
#[component]
fn Party(view: CallView) -> impl IntoView {
    let texts = expect_context::<Translations>();
    let call = &view.call;
    let mut facts: Vec<(&'static str, AnyView)> = Vec::new();
    let holder_name = match &view.caller {
        CallerId::Known { name, holder, .. } => holder.as_ref().map(|h| h.name.clone()).or(Some(name.clone())),
        _ => None,
    };
    if let Some(name) = holder_name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) {
        facts.push(("caller", name.into_any()));
    }
    facts.push(("number", call.external_number.as_str().to_owned().into_any()));
    let direction = match call.direction {
        Direction::Inbound => "call.incoming",
        Direction::Outbound => "call.outgoing",
    };
    facts.push(("direction", texts.text(direction).into_any()));
    if let Some(at) = call.ringing_at.or(call.answered_at).or(call.ending.as_ref().map(|e| e.at)) {
        facts.push(("time", local_time::wall_clock(at).into_any()));
    }
    facts.push(("talked", format_duration(call.billable_seconds()).into_any()));
    for (entity, name) in caller_records(&view.caller) {
        let fact = if entity.kind == EntityKind::Contact { "contact" } else { "company" };
        facts.push((fact, record_anchor(entity, name).into_any()));
    }
    let rows = facts
        .into_iter()
        .map(|(fact, value)| {
            let label = match fact {
                "caller" => texts.text("summary.caller"),
                "number" => texts.text("summary.number"),
                "direction" => texts.text("summary.direction"),
                "time" => texts.text("summary.time"),
                "talked" => texts.text("summary.talked"),
                "contact" => texts.text("summary.kind_contact"),
                _ => texts.text("summary.kind_company"),
            };
            view! {
                <dt>{label}</dt>
                <dd data-fact=fact>{value}</dd>
            }
        })
        .collect_view();
    view! { <dl id="callcard-summary-party" class="callcard-summary-party">{rows}</dl> }
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

/// "Initial contact · Responsible: Anna": what is known of a record's standing.
fn record_meta(
    status: Option<(u64, u64)>,
    responsible: Option<u64>,
    directory: &Directory,
    texts: &Translations,
) -> String {
    let mut parts = Vec::new();
    if let Some(status) = status.and_then(|(pipeline, status)| directory.status_name(pipeline, status)) {
        parts.push(status);
    }
    if let Some(user) = responsible {
        parts.push(texts.fill("summary.responsible", &[("user", &directory.user_name(user))]));
    }
    parts.join(" · ")
}

/// The directory once Kommo answered (empty until then).
fn directory_now() -> Directory {
    use_context::<LocalResource<Directory>>().and_then(|d| d.get()).unwrap_or_default()
}

/// The record the call goes on (starting on the one caller ID suggested),
/// and the debounced search of leads, customers, contacts and companies that
/// changes it.
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
        form.entity.set(Some(ChosenEntity {
            entity: hit.entity,
            name: hit.name,
            status: hit.status,
            responsible_user_id: hit.responsible_user_id,
        }));
        form.error.set(None);
        query.set(String::new());
        // The chosen button goes away: keep focus in the form.
        if let Some(input) = search_ref.get_untracked() {
            let _ = input.focus();
        }
    };
    let chosen = {
        let texts = texts.clone();
        move || match form.entity.get() {
            Some(ChosenEntity { entity, name, status, responsible_user_id }) => {
                let meta = record_meta(status, responsible_user_id, &directory_now(), &texts);
                Either::Left(view! {
                    <span class="callcard-summary-kind">{texts.text(kind_key(entity.kind))}</span>
                    {record_anchor(entity, name)}
                    <span class="callcard-summary-meta">{meta}</span>
                })
            }
            None => {
                Either::Right(view! { <span class="callcard-summary-none">{texts.text("summary.no_entity")}</span> })
            }
        }
    };
    view! {
        <div class="callcard-summary-field">
            <label for="callcard-summary-search">{texts.text("summary.search_label")}</label>
            <p class="callcard-summary-entity" id="callcard-summary-entity">{chosen}</p>
            <input id="callcard-summary-search" class="text-input" type="search" autocomplete="off" node_ref=search_ref
                placeholder=texts.text("summary.search_placeholder") aria-controls="callcard-summary-hits"
                aria-describedby="callcard-summary-entity"
                prop:value=move || query.get()
                on:keydown=move |ev| arrow_keys(&ev, dialog_ref)
                on:input=move |ev| query.set(event_target_value(&ev)) />
            <ul id="callcard-summary-hits" aria-live="polite">
                <HitList query=query found=found choose=choose dialog_ref=dialog_ref />
            </ul>
        </div>
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

/// One search hit: a button that links the call to it, with the record's
/// kind, name, status and responsible user.
#[component]
fn HitButton(
    hit: SearchHit,
    choose: impl Fn(SearchHit) + Copy + Send + Sync + 'static,
    dialog_ref: NodeRef<leptos::html::Div>,
) -> impl IntoView {
    let texts = expect_context::<Translations>();
    let kind_text = texts.text(kind_key(hit.entity.kind));
    let (kind, id) = (hit.entity.kind.as_str(), hit.entity.id.to_string());
    let name = hit.name.clone();
    let meta = {
        let (status, user, texts) = (hit.status, hit.responsible_user_id, texts.clone());
        move || record_meta(status, user, &directory_now(), &texts)
    };
    view! {
        <li>
            <button type="button" class="callcard-summary-hit" data-entity-type=kind data-entity-id=id
                on:keydown=move |ev| arrow_keys(&ev, dialog_ref)
                on:click=move |_| choose(hit.clone())>
                <span class="callcard-summary-kind">{kind_text}</span>
                <span class="callcard-summary-hit-name">{name}</span>
                <span class="callcard-summary-meta">{meta}</span>
            </button>
        </li>
    }
}

/// How long the call was, and its recording once the PBX has it: the
/// browser's player (play, pause, seek) and a download link. Until then,
/// "processing"; the player replaces it when the recording arrives.
#[component]
fn Recording(recording: Memo<Option<String>>, seconds: u32) -> impl IntoView {
    let texts = expect_context::<Translations>();
    let label = texts.text("summary.recording");
    let pending = texts.text("summary.recording_pending");
    let download = texts.text("summary.download");
    let player = {
        let label = label.clone();
        move || match recording.get() {
            Some(url) => Either::Left(view! {
                <audio class="callcard-summary-audio" controls=true preload="metadata" src=url.clone()
                    aria-label=label.clone()></audio>
                <a class="callcard-summary-download" href=url download="" target="_blank" rel="noopener">
                    {download.clone()}
                </a>
            }),
            None => Either::Right(view! { <p class="callcard-summary-recording-pending">{pending.clone()}</p> }),
        }
    };
    let caption = label.clone();
    view! {
        <section class="callcard-summary-recording" aria-label=label>
            <div class="callcard-summary-recording-head">
                <span class="callcard-summary-caption">{caption}</span>
                <span class="callcard-summary-recording-duration">
                    {texts.fill("summary.duration", &[("duration", &format_duration(seconds))])}
                </span>
            </div>
            {player}
        </section>
    }
}

/// The recording panel, for a call that was talked or has a recording: a
/// call nobody talked on (missed, 0 s) will not be recorded, so it does not
/// say "processing"; a voicemail the PBX sends for it still shows its player.
fn recording_panel(recording: Memo<Option<String>>, seconds: u32) -> impl IntoView {
    move || {
        (seconds > 0 || recording.with(Option::is_some))
            .then(|| view! { <Recording recording=recording seconds=seconds /> })
    }
}

/// The note's subject line, upserted into the call note like the note.
#[component]
fn SubjectField(form: SummaryForm) -> impl IntoView {
    let texts = expect_context::<Translations>();
    view! {
        <div class="callcard-summary-field">
            <label for="callcard-summary-subject">{texts.text("summary.subject_label")}</label>
            <input id="callcard-summary-subject" class="text-input" type="text"
                maxlength=callcard_calls::result::SUBJECT_MAX_CHARS.to_string()
                prop:value=move || form.subject.get()
                on:input=move |ev| form.subject.set(event_target_value(&ev)) />
        </div>
    }
}

/// The manager's note.
#[component]
fn NoteField(form: SummaryForm) -> impl IntoView {
    let texts = expect_context::<Translations>();
    view! {
        <div class="callcard-summary-field">
            <label for="callcard-summary-note">{texts.text("summary.note_label")}</label>
            <textarea id="callcard-summary-note" class="text-input" rows="3"
                prop:value=move || form.note.get()
                on:input=move |ev| form.note.set(event_target_value(&ev))></textarea>
        </div>
    }
}

/// The users a task can go to: the account's, by name, with the manager
/// first (named "You" when Kommo's list is not there).
fn task_users(directory: &Directory, me: Option<u64>, texts: &Translations) -> Vec<(u64, String)> {
    let mut users: Vec<(u64, String)> = directory.users.iter().map(|(id, name)| (*id, name.clone())).collect();
    users.sort_by_key(|a| a.1.to_lowercase());
    if let Some(me) = me {
        let mine = users.iter().position(|(id, _)| *id == me).map(|i| users.remove(i));
        users.insert(0, mine.unwrap_or((me, texts.text("summary.me"))));
    }
    users
}

/// The task: its type, when it is due (ticking proposes the next working
/// day at 10:00), who does it (the manager unless changed) and what to do.
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
    let kinds = [
        (TaskKind::FollowUp, "follow_up", "summary.task_follow_up"),
        (TaskKind::Meeting, "meeting", "summary.task_meeting"),
    ];
    let kind_options = kinds
        .into_iter()
        .map(|(kind, value, key)| {
            view! { <option value=value selected=move || form.task_kind.get() == kind>{texts.text(key)}</option> }
        })
        .collect_view();
    let on_kind = move |ev: leptos::ev::Event| {
        let kind = if event_target_value(&ev) == "meeting" { TaskKind::Meeting } else { TaskKind::FollowUp };
        form.task_kind.set(kind);
    };
    let user_options = {
        let texts = texts.clone();
        move || {
            task_users(&directory_now(), current_user_id(), &texts)
                .into_iter()
                .map(|(id, name)| {
                    view! {
                        <option value=id.to_string() selected=move || form.task_user.get() == Some(id)>{name}</option>
                    }
                })
                .collect_view()
        }
    };
    let on_user = move |ev: leptos::ev::Event| form.task_user.set(event_target_value(&ev).parse().ok());
    let texts_when = texts.clone();
    view! {
        <div class="callcard-summary-check">
            <input id="callcard-summary-task" type="checkbox" prop:checked=move || form.task_on.get()
                on:change=on_tick />
            <label for="callcard-summary-task">{texts.text("summary.add_task")}</label>
        </div>
        <Show when=move || form.task_on.get()>
            <div class="callcard-summary-task">
                <div class="callcard-summary-field">
                    <label for="callcard-summary-task-kind">{texts_when.text("summary.task_kind")}</label>
                    <select id="callcard-summary-task-kind" class="control--select" on:change=on_kind>
                        {kind_options.clone()}
                    </select>
                </div>
                <div class="callcard-summary-field">
                    <label for="callcard-summary-task-when">{texts_when.text("summary.task_when")}</label>
                    <input id="callcard-summary-task-when" class="text-input" type="datetime-local"
                        prop:value=move || form.task_when.get()
                        on:input=move |ev| form.task_when.set(event_target_value(&ev)) />
                </div>
                <div class="callcard-summary-field">
                    <label for="callcard-summary-task-user">{texts_when.text("summary.task_user")}</label>
                    <select id="callcard-summary-task-user" class="control--select" on:change=on_user>
                        {user_options.clone()}
                    </select>
                </div>
                <div class="callcard-summary-field callcard-summary-wide">
                    <label for="callcard-summary-task-text">{texts_when.text("summary.task_text")}</label>
                    <input id="callcard-summary-task-text" class="text-input" type="text"
                        prop:value=move || form.task_text.get()
                        on:input=move |ev| form.task_text.set(event_target_value(&ev)) />
                </div>
            </div>
        </Show>
    }
}

/// What is missing for Save, Save and Cancel.
#[component]
fn SummaryActions(form: SummaryForm, cancel: impl Fn() + Clone + 'static) -> impl IntoView {
    let texts = expect_context::<Translations>();
    let error_line =
        move || form.error.get().map(|msg| view! { <p class="callcard-summary-error" role="alert">{msg}</p> });
    view! {
        {error_line}
        <div class="callcard-summary-actions">
            <button id="callcard-summary-save" type="submit" class="button-input button-input_blue">
                {texts.text("summary.save")}
            </button>
            <button id="callcard-summary-cancel" type="button" class="button-input" on:click=move |_| cancel()>
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
        assert_eq!(next_index(3, Some(2), false), Some(0), "around at the end");
        assert_eq!(next_index(3, Some(0), true), Some(2));
        assert_eq!(next_index(3, Some(1), false), Some(2));
        assert_eq!(next_index(3, Some(1), true), Some(0));
        assert_eq!(next_index(3, None, false), Some(0), "focus outside comes back in");
        assert_eq!(next_index(3, None, true), Some(2));
        assert_eq!(next_index(0, None, false), None);
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
