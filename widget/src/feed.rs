//! The live call feed: ticket, WebSocket, polling fallback, resync.
//!
//! One [`FeedLoop`] runs per leader tab (see [`crate::leader`]):
//!
//! 1. get a ticket through `$authorizedAjax` (again when it is about to
//!    expire, or was refused);
//! 2. without a resume offset (first start, `Gap`, `gap: true`), fetch
//!    `/widget/calls`, announce those calls and continue from its
//!    `latest_offset`;
//! 3. open `…/widget/feed?ticket=&since=` and apply frames; a heartbeat
//!    showing we are behind triggers one catch-up poll; no frame for
//!    [`STALE_MS`] counts as a dead socket;
//! 4. when the socket fails, wait with [`Backoff`]; after
//!    [`Backoff::POLL_AFTER`] failures in a row, long-poll `…/feed/poll`
//!    during that wait (the backend holds each request up to
//!    [`LONG_POLL_SECONDS`] until an event arrives, so a call pops as it
//!    rings, not a period later; a server that does not hold is polled every
//!    [`POLL_EVERY_MS`]), then try the socket again.
//!
//! Offsets are kept by [`FeedCursor`], so nothing is applied twice and
//! nothing is skipped across reconnects; the announcer's ledger makes repeats
//! harmless anyway. The state is reported through a callback
//! ([`FeedState`] → the root's `data-feed`).

use crate::announcer::{now_ms, Announcer};
use crate::api::Backend;
use crate::backoff::Backoff;
use crate::convert::from_json;
use crate::cursor::{FeedCursor, PollNext};
use crate::feed_state::FeedState;
use crate::kommo::KommoWidget;
use callcard_calls::feed::{CallView, FeedMessage, Ticket};
use futures::future::{select, Either};
use futures::StreamExt;
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, State};
use gloo_timers::future::TimeoutFuture;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// No frame (the backend sends heartbeats) for this long: the socket is dead.
pub const STALE_MS: i64 = 45_000;
/// A socket that has not opened after this long has failed.
pub const OPEN_TIMEOUT_MS: i64 = 10_000;
/// A socket open this long before dropping counts as a success.
pub const STABLE_MS: i64 = 10_000;
/// The polling period while the socket is down, when the server answers
/// polls at once instead of holding them.
pub const POLL_EVERY_MS: u32 = 3_000;
/// How long the backend may hold one poll (it accepts up to 25 s; less keeps
/// proxies from timing the request out).
pub const LONG_POLL_SECONDS: i64 = 20;
/// A poll answered faster than this with nothing new was not held.
const HELD_MS: i64 = 500;
/// A ticket this close to expiry is renewed before use.
pub const TICKET_MARGIN_MS: i64 = 15_000;

/// Reports the feed state.
pub type StateSink = Rc<dyn Fn(FeedState)>;
/// Sees every call snapshot applied (for the Call summary and the UI).
pub type CallSink = Rc<dyn Fn(&CallView)>;

/// How a socket session ended.
#[derive(Debug, PartialEq, Eq)]
enum SocketEnd {
    /// It never opened (network, refused ticket, no WebSocket on the path).
    NeverOpened,
    /// It was open for `lived_ms` and then closed or went quiet.
    Dropped { lived_ms: i64 },
    /// The server says our offset is too old.
    Gap,
}

/// Everything one running feed owns.
pub struct FeedLoop {
    widget: Rc<RefCell<KommoWidget>>,
    backend: Backend,
    report: StateSink,
    on_call: Option<CallSink>,
    announcer: Option<Announcer>,
    make_announcer: Box<dyn Fn(u64) -> Announcer>,
    backoff: Backoff,
    cursor: FeedCursor,
    ticket: Option<Ticket>,
    state: Option<FeedState>,
}

fn random() -> f64 {
    js_sys::Math::random()
}

async fn sleep(ms: u32) {
    TimeoutFuture::new(ms).await;
}

impl FeedLoop {
    pub fn new(
        widget: Rc<RefCell<KommoWidget>>,
        backend: Backend,
        report: StateSink,
        on_call: Option<CallSink>,
        make_announcer: Box<dyn Fn(u64) -> Announcer>,
    ) -> Self {
        Self {
            widget,
            backend,
            report,
            on_call,
            announcer: None,
            make_announcer,
            backoff: Backoff::default(),
            cursor: FeedCursor::new(),
            ticket: None,
            state: None,
        }
    }

    fn set_state(&mut self, state: FeedState) {
        if self.state != Some(state) {
            self.state = Some(state);
            (self.report)(state);
        }
    }

    /// The state to show while waiting to retry.
    fn waiting_state(&self) -> FeedState {
        if self.backoff.failures() <= 1 {
            FeedState::Connecting
        } else {
            FeedState::Offline
        }
    }

    fn apply(&mut self, view: &CallView) {
        let widget = self.widget.borrow().clone();
        if let Some(a) = &mut self.announcer {
            a.announce(view, &widget);
        }
        if let Some(sink) = &self.on_call {
            sink(view);
        }
    }

    /// Runs until dropped (the session aborts it).
    pub async fn run(mut self) {
        self.set_state(FeedState::Connecting);
        let mut poll_for: Option<u32> = None;
        loop {
            if let Err(delay) = self.ensure_ticket().await {
                self.set_state(FeedState::Offline);
                sleep(delay).await;
                continue;
            }
            if let Err(delay) = self.ensure_synced().await {
                self.set_state(FeedState::Offline);
                sleep(delay).await;
                continue;
            }
            if let Some(ms) = poll_for.take() {
                self.poll_during(ms).await;
                continue;
            }
            let end = self.socket_session().await;
            let delay = match end {
                SocketEnd::Gap => {
                    self.cursor.lose();
                    continue;
                }
                SocketEnd::Dropped { lived_ms } => {
                    // A socket that lived a while starts the backoff over; one
                    // that drops right after opening keeps growing it.
                    if lived_ms > STABLE_MS {
                        self.backoff.reset();
                    }
                    self.backoff.fail(random())
                }
                SocketEnd::NeverOpened => {
                    // Maybe the ticket was refused: get a fresh one next time.
                    self.ticket = None;
                    self.backoff.fail(random())
                }
            };
            if self.backoff.should_poll() {
                poll_for = Some(delay);
            } else {
                let state = self.waiting_state();
                self.set_state(state);
                sleep(delay).await;
            }
        }
    }

    async fn ensure_ticket(&mut self) -> Result<(), u32> {
        let fresh = self.ticket.as_ref().is_some_and(|t| t.expires_at - now_ms() > TICKET_MARGIN_MS);
        if fresh {
            return Ok(());
        }
        let widget = self.widget.borrow().clone();
        match self.backend.ticket(&widget).await {
            Ok(ticket) => {
                if self.announcer.as_ref().is_none_or(|a| a.me() != ticket.user_id) {
                    self.announcer = Some((self.make_announcer)(ticket.user_id));
                }
                self.ticket = Some(ticket);
                Ok(())
            }
            Err(e) => {
                web_sys::console::warn_1(&format!("callcard: no feed ticket: {e}").into());
                Err(self.backoff.fail(random()))
            }
        }
    }

    fn ticket_str(&self) -> String {
        self.ticket.as_ref().map(|t| t.ticket.clone()).unwrap_or_default()
    }

    async fn ensure_synced(&mut self) -> Result<(), u32> {
        if !self.cursor.needs_resync() {
            return Ok(());
        }
        match self.backend.current_calls(&self.ticket_str()).await {
            Ok(current) => {
                for view in &current.calls {
                    self.apply(view);
                }
                self.cursor.restart_at(current.latest_offset);
                Ok(())
            }
            Err(e) => {
                if e.is_auth() {
                    self.ticket = None;
                }
                web_sys::console::warn_1(&format!("callcard: cannot load current calls: {e}").into());
                Err(self.backoff.fail(random()))
            }
        }
    }

    /// One poll the server may hold for `wait` seconds; `Ok(true)` when the
    /// server holds more right away, `Ok(false)` when caught up (with the
    /// number of events applied).
    async fn poll_once(&mut self, wait: u32) -> Result<(bool, usize), ()> {
        let since = self.cursor.since().unwrap_or(0);
        match self.backend.poll(&self.ticket_str(), since, wait).await {
            Ok(answer) => {
                let (events, next) = self.cursor.take_poll(answer);
                for e in &events {
                    self.apply(&e.call);
                }
                match next {
                    PollNext::Wait => Ok((false, events.len())),
                    PollNext::More => Ok((true, events.len())),
                    PollNext::Resync => Err(()),
                }
            }
            Err(e) => {
                if e.is_auth() {
                    self.ticket = None;
                }
                web_sys::console::warn_1(&format!("callcard: poll failed: {e}").into());
                Err(())
            }
        }
    }

    /// Long-polls for about `ms`, then returns so the socket is tried again.
    async fn poll_during(&mut self, ms: u32) {
        let until = now_ms() + i64::from(ms);
        loop {
            let left = until - now_ms();
            if left <= 0 {
                return;
            }
            let wait = (left / 1000).clamp(0, LONG_POLL_SECONDS) as u32;
            if wait == 0 {
                // Less than a second left: not worth a request; try the socket.
                return;
            }
            let asked = now_ms();
            let pause = match self.poll_once(wait).await {
                Ok((true, _)) => continue,
                Ok((false, applied)) => {
                    self.set_state(FeedState::Polling);
                    // Held until an event came, or nothing to hold for: ask
                    // again at once. Answered at once with nothing new: the
                    // server does not hold polls, so keep a period.
                    let held = now_ms() - asked >= HELD_MS;
                    if applied > 0 || held {
                        0
                    } else {
                        POLL_EVERY_MS
                    }
                }
                Err(()) => {
                    if self.ticket.is_none() || self.cursor.needs_resync() {
                        return;
                    }
                    self.set_state(FeedState::Offline);
                    POLL_EVERY_MS
                }
            };
            let left = until - now_ms();
            if left <= 0 {
                return;
            }
            if pause > 0 {
                sleep(left.min(i64::from(pause)) as u32).await;
            }
        }
    }

    async fn socket_session(&mut self) -> SocketEnd {
        let since = self.cursor.since().unwrap_or(0);
        let url = self.backend.feed_socket_url(&self.ticket_str(), since);
        let mut ws = match WebSocket::open(&url) {
            Ok(ws) => ws,
            Err(e) => {
                web_sys::console::warn_1(&format!("callcard: cannot open the feed: {e}").into());
                return SocketEnd::NeverOpened;
            }
        };
        let started = now_ms();
        let mut opened_at = started;
        let mut opened = false;
        let mut last_frame = started;
        loop {
            let step = {
                let next = ws.next();
                let tick = TimeoutFuture::new(1_000);
                match select(next, tick).await {
                    Either::Left((msg, _)) => Some(msg),
                    Either::Right(_) => None,
                }
            };
            match step {
                Some(Some(Ok(Message::Text(text)))) => {
                    last_frame = now_ms();
                    if !opened {
                        opened = true;
                        opened_at = last_frame;
                        self.set_state(FeedState::Live);
                    }
                    match from_json::<FeedMessage>(&text) {
                        Some(FeedMessage::Event(event)) => {
                            if self.cursor.accept(&event) {
                                self.apply(&event.call);
                            }
                        }
                        Some(FeedMessage::Gap { .. }) => return SocketEnd::Gap,
                        Some(FeedMessage::Heartbeat { latest_offset }) => {
                            if self.cursor.is_behind(latest_offset) {
                                // Something was skipped: fetch it by polling.
                                let _ = self.poll_once(0).await;
                                if self.cursor.needs_resync() {
                                    return SocketEnd::Gap;
                                }
                            }
                        }
                        None => {
                            web_sys::console::warn_2(
                                &"callcard: unreadable feed frame".into(),
                                &JsValue::from_str(&text),
                            );
                        }
                    }
                }
                // The feed sends no binary frames; one still shows the socket lives.
                Some(Some(Ok(Message::Bytes(_)))) => {
                    last_frame = now_ms();
                }
                // Failed or closed; nothing follows.
                Some(Some(Err(_)) | None) => {
                    return if opened {
                        SocketEnd::Dropped { lived_ms: now_ms() - opened_at }
                    } else {
                        SocketEnd::NeverOpened
                    };
                }
                None => {
                    let now = now_ms();
                    if !opened && matches!(ws.state(), State::Open) {
                        opened = true;
                        last_frame = now;
                        opened_at = now;
                        self.set_state(FeedState::Live);
                    }
                    if opened && now - last_frame > STALE_MS {
                        return SocketEnd::Dropped { lived_ms: now - opened_at };
                    }
                    if !opened && now - started > OPEN_TIMEOUT_MS {
                        return SocketEnd::NeverOpened;
                    }
                }
            }
        }
    }
}
