//! The widget's life in a page: `init` starts it once, `destroy` ends it.
//!
//! A [`Session`] owns the root element (`<div id="callcard-root">` at the end
//! of `<body>`), the mounted Leptos view, the tab channel and the feed task.
//! `widget_init` on a page that already has a session only refreshes the
//! widget object (Kommo may call `init` again); `widget_destroy` drops the
//! session, which aborts the feed (closing the socket and releasing the
//! leader lock), closes the channel, removes the `online` listener, unmounts
//! the view and removes the root.
//!
//! Call results saved offline ([`crate::outbox`]) are sent by the leader tab
//! as soon as it leads (so after a reload too), when the browser goes
//! `online`, and when the feed is live again. Drafts of Call summaries left
//! open by a reload ([`crate::drafts`]) are reopened at `init`.

use crate::announcer::Announcer;
use crate::api::Backend;
use crate::app::App;
use crate::drafts;
use crate::feed::FeedLoop;
use crate::feed_state::FeedState;
use crate::kommo::{current_user_id, CurrentWidget, KommoWidget};
use crate::leader;
use crate::outbox;
use crate::report::SaveReports;
use crate::summary::SummaryQueue;
use crate::tabs::{TabChannel, TabMessage};
use crate::texts::Translations;
use callcard_calls::feed::CallView;
use futures::future::{abortable, AbortHandle};
use leptos::prelude::*;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};

/// The id of the root element.
pub const ROOT_ID: &str = "callcard-root";

thread_local! {
    /// The one running widget of this page, between Kommo's callbacks (the
    /// exports hold no state of their own). Views never read it: what they
    /// need is provided as context.
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// What the page shows about this tab and its feed.
#[derive(Clone)]
struct Display {
    root: web_sys::HtmlElement,
    state: RwSignal<FeedState>,
    leader: Rc<Cell<bool>>,
}

impl Display {
    fn show_state(&self, state: FeedState) {
        let _ = self.root.set_attribute("data-feed", state.as_str());
        self.state.set(state);
    }

    fn show_role(&self, leader: bool) {
        self.leader.set(leader);
        let _ = self.root.set_attribute("data-role", if leader { "leader" } else { "follower" });
    }
}

/// Sends the queued call results in the background.
fn flush_outbox(sender: &outbox::Sender, widget: &Rc<RefCell<KommoWidget>>) {
    let (sender, widget) = (sender.clone(), widget.borrow().clone());
    wasm_bindgen_futures::spawn_local(async move {
        sender.flush(&widget, &Backend::from_page()).await;
    });
}

/// One running widget.
pub struct Session {
    widget: Rc<RefCell<KommoWidget>>,
    display: Display,
    feed: AbortHandle,
    tabs: Rc<RefCell<Option<TabChannel>>>,
    summaries: SummaryQueue,
    reports: SaveReports,
    view: Option<Box<dyn Any>>,
    online: Option<WindowListenerHandle>,
    /// Owns the signals and contexts; dropped last.
    _owner: Owner,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.feed.abort();
        if let Some(online) = self.online.take() {
            online.remove();
        }
        self.tabs.borrow_mut().take();
        self.view.take();
        self.display.root.remove();
    }
}

/// `widget_init`: starts the widget, or refreshes `self` if it runs already.
pub fn init(this: JsValue) {
    if SESSION.with(|s| s.borrow().is_some()) {
        refresh(&this);
        return;
    }
    match Session::start(KommoWidget::new(this)) {
        Some(session) => {
            SESSION.with(|s| *s.borrow_mut() = Some(session));
            // The lead statuses, so the first ringing pop-up can name a lead's stage.
            if !crate::directory::is_cached() {
                wasm_bindgen_futures::spawn_local(async {
                    crate::directory::fetch().await;
                });
            }
        }
        None => web_sys::console::error_1(&"callcard: no document body to mount into".into()),
    }
}

/// `widget_destroy`: stops everything and removes the root.
pub fn destroy() {
    let session = SESSION.with(|s| s.borrow_mut().take());
    drop(session);
}

/// Updates the widget object if a session runs (`bind_actions`, `settings`…).
pub fn refresh(this: &JsValue) {
    SESSION.with(|s| {
        if let Some(session) = s.borrow().as_ref() {
            *session.widget.borrow_mut() = KommoWidget::new(this.clone());
        }
    });
}

/// What became of the saved summaries of the running session.
pub fn reports() -> Option<SaveReports> {
    SESSION.with(|s| s.borrow().as_ref().map(|session| session.reports))
}

/// The Call summary queue of the running session (open one with
/// [`SummaryQueue::open`]).
pub fn summaries() -> Option<SummaryQueue> {
    SESSION.with(|s| s.borrow().as_ref().map(|session| session.summaries))
}

/// Whether a session runs.
pub fn is_running() -> bool {
    SESSION.with(|s| s.borrow().is_some())
}

/// Opens the tab channel: a leader answers `Hello` with its state; a
/// follower shows the leader's state.
fn open_tabs(display: &Display) -> Rc<RefCell<Option<TabChannel>>> {
    let tabs: Rc<RefCell<Option<TabChannel>>> = Rc::default();
    *tabs.borrow_mut() = TabChannel::open({
        let display = display.clone();
        let tabs = Rc::downgrade(&tabs);
        move |msg| match msg {
            TabMessage::Hello if display.leader.get() => {
                if let Some(tabs) = tabs.upgrade() {
                    if let Some(channel) = tabs.borrow().as_ref() {
                        channel.post(&TabMessage::State { state: display.state.get_untracked() });
                    }
                }
            }
            TabMessage::State { state } if !display.leader.get() => display.show_state(state),
            _ => {}
        }
    });
    if let Some(channel) = tabs.borrow().as_ref() {
        channel.post(&TabMessage::Hello);
    }
    tabs
}

impl Session {
    fn start(widget: KommoWidget) -> Option<Self> {
        let document = web_sys::window()?.document()?;
        let body = document.body()?;
        // A root left by an earlier instance (hot reload) would double the UI.
        while let Some(stale) = document.get_element_by_id(ROOT_ID) {
            stale.remove();
        }
        let root: web_sys::HtmlElement = document.create_element("div").ok()?.dyn_into().ok()?;
        root.set_id(ROOT_ID);
        root.set_class_name("callcard");
        body.append_child(&root).ok()?;

        let owner = Owner::new();
        let texts = Translations::resolve(&widget);
        let widget = Rc::new(RefCell::new(widget));
        let (display, summaries, reports) = owner.with(|| {
            let display =
                Display { root: root.clone(), state: RwSignal::new(FeedState::Connecting), leader: Rc::default() };
            let summaries = SummaryQueue::new();
            let reports = SaveReports::new();
            provide_context(texts);
            provide_context(summaries);
            provide_context(reports);
            provide_context(display.state.read_only());
            provide_context(CurrentWidget::new(widget.clone()));
            (display, summaries, reports)
        });
        display.show_state(FeedState::Connecting);
        display.show_role(false);
        let handle = owner.with(|| leptos::mount::mount_to(root, App));

        let tabs = open_tabs(&display);
        let sender = outbox::Sender::default();
        let report: Rc<dyn Fn(FeedState)> = Rc::new({
            let (display, tabs, widget, sender) = (display.clone(), tabs.clone(), widget.clone(), sender.clone());
            move |state| {
                display.show_state(state);
                if let Some(channel) = tabs.borrow().as_ref() {
                    channel.post(&TabMessage::State { state });
                }
                if state == FeedState::Live {
                    // Back online: send the call results saved meanwhile.
                    flush_outbox(&sender, &widget);
                }
            }
        });
        let online = window_event_listener(leptos::ev::online, {
            let (display, widget, sender) = (display.clone(), widget.clone(), sender.clone());
            move |_| {
                if display.leader.get() {
                    flush_outbox(&sender, &widget);
                }
            }
        });
        // Summaries a reload interrupted come back with what was typed.
        for kept in drafts::restore(current_user_id()) {
            if kept.dismissed {
                summaries.list_dismissed(&kept.view);
            } else {
                summaries.open(&kept.view);
            }
        }
        let on_call: Rc<dyn Fn(&CallView)> = Rc::new(move |view: &CallView| {
            if view.has_result && view.result_error.is_none() {
                drafts::discard(&view.call.call_id);
            }
            summaries.refresh(view);
            reports.observe(view);
        });
        let open_summary = move |me| Announcer::new(me, Some(Rc::new(move |view: &CallView| summaries.open(view))));
        let feed = FeedLoop::new(widget.clone(), Backend::from_page(), report, Some(on_call), Box::new(open_summary));
        let (lead_display, lead_widget) = (display.clone(), widget.clone());
        let task = async move {
            let lease = leader::lead().await;
            lead_display.show_role(true);
            // Results left unsent by an earlier page (or the tab that led
            // before) go out now.
            flush_outbox(&sender, &lead_widget);
            feed.run().await;
            drop(lease);
        };
        let (task, feed_handle) = abortable(task);
        wasm_bindgen_futures::spawn_local(async move {
            let _ = task.await;
        });

        Some(Self {
            widget,
            display,
            feed: feed_handle,
            tabs,
            summaries,
            reports,
            view: Some(Box::new(handle)),
            online: Some(online),
            _owner: owner,
        })
    }
}
