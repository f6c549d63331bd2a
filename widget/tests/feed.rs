//! Browser tests of the call feed against the real backend.
//!
//! The server is `widget_test_server` from the e2e crate (see
//! `tests/src/widget_server.rs`): the real backend behind a switchable
//! network gate. `cargo xtask test` starts it and compiles its URL in as
//! `CALLCARD_TEST_SERVER`; by hand:
//!
//! ```sh
//! cargo run -p callcard-e2e --bin widget_test_server   # prints CALLCARD_TEST_SERVER=http://127.0.0.1:PORT
//! cd widget && CALLCARD_TEST_SERVER=http://127.0.0.1:PORT WASM_BINDGEN_TEST_TIMEOUT=300 \
//!     CHROMEDRIVER=/usr/bin/chromedriver wasm-pack test --headless --chrome --mode no-install
//! # and again with GECKODRIVER=~/.cargo/bin/geckodriver … --firefox
//! ```
//!
//! Without `CALLCARD_TEST_SERVER` these tests fail and say how to run them:
//! a feed test that checked nothing must not count as passed.
//!
//! Each test provisions a fresh account for this page's origin, runs a real
//! [`FeedLoop`] with the real [`Announcer`] (a fake `APP.notifications`
//! records the pop-ups) and a fake Kommo `self` whose `$authorizedAjax` sends
//! a real one-time token, and plays the PBX through the server. Failures are
//! real: the gate cuts connections, refuses them, or answers WebSocket
//! upgrades with 403 as a corporate proxy would.

#![cfg(target_arch = "wasm32")]

use callcard_widget::announcer::{storage_key, Announcer};
use callcard_widget::api::Backend;
use callcard_widget::feed::FeedLoop;
use callcard_widget::feed_state::FeedState;
use callcard_widget::kommo::KommoWidget;
use futures::future::{abortable, AbortHandle};
use gloo_timers::future::TimeoutFuture;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// `obj[key]` (the tests read what the widget handed to the fake Kommo).
fn prop(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

const SERVER: Option<&str> = option_env!("CALLCARD_TEST_SERVER");
const ME: u64 = 8320148;
/// Connections a browser opens for one request within this many
/// milliseconds of each other are its own retries, not the widget's.
const BROWSER_RETRY_MS: u64 = 50;

fn server() -> &'static str {
    match SERVER {
        Some(s) => s.trim_end_matches('/'),
        None => panic!(
            "CALLCARD_TEST_SERVER was not set at compile time: run `cargo xtask test`, \
             or start `cargo run -p callcard-e2e --bin widget_test_server` and pass its URL"
        ),
    }
}

fn origin() -> String {
    web_sys::window().unwrap().location().origin().unwrap()
}

async fn post(url: &str, body: &Value) -> Value {
    let response = gloo_net::http::Request::post(url).json(body).unwrap().send().await.expect("test server reachable");
    assert!(response.ok(), "{url}: HTTP {} {}", response.status(), response.text().await.unwrap_or_default());
    response.json().await.unwrap_or(Value::Null)
}

async fn get(url: &str) -> Value {
    gloo_net::http::Request::get(url).send().await.expect("test server reachable").json().await.unwrap()
}

/// A fresh account on the test server, for this page's origin.
struct Account {
    server: &'static str,
    id: u64,
    /// The backend base through the gate.
    backend: String,
}

impl Account {
    async fn new(server: &'static str) -> Account {
        let answer = post(&format!("{server}/test/accounts"), &json!({"origin": origin()})).await;
        gate(server, json!({"mode": "open", "drop": true, "clear": true})).await;
        Account {
            server,
            id: answer["account_id"].as_u64().unwrap(),
            backend: answer["backend"].as_str().unwrap().to_owned(),
        }
    }

    /// The PBX says `event` about `call_id` from `number` to extension 101.
    async fn pbx(&self, event: &str, call_id: &str, number: &str) {
        let body = json!({
            "event": event, "call_id": call_id, "direction": "inbound", "external_number": number,
            "extension": "101", "occurred_at": js_sys::Date::now() as i64,
        });
        post(&format!("{}/test/accounts/{}/events", self.server, self.id), &body).await;
    }

    /// Installs the fake Kommo page: `APP.notifications` records into
    /// `window.calls`; `self.$authorizedAjax` fetches with a real token.
    fn page(&self) -> JsValue {
        let js = format!(
            r#"
            window.calls = [];
            const record = (name) => function (arg) {{ window.calls.push([name, arg]); }};
            window.APP = {{
                notifications: {{
                    show_notification: record('show_notification'), add_call: record('add_call'),
                    show_message: record('show_message'), show_message_error: record('show_message_error'),
                }},
                constant: function (k) {{ return k === 'user' ? {{ id: {ME} }} : {{}}; }},
            }};
            const tokenUrl = '{server}/test/accounts/{id}/token';
            window.feedSelf = {{
                get_settings: function () {{ return {{}}; }},
                i18n: function () {{ return undefined; }},
                // Like Kommo's: a one-time token in X-Auth-Token, jQuery-like
                // rejections ({{status, responseJSON}}).
                $authorizedAjax: function (opts) {{
                    return fetch(tokenUrl, {{ method: 'POST', headers: {{ 'Content-Type': 'application/json' }},
                                             body: JSON.stringify({{ user_id: {ME} }}) }})
                        .then(function (r) {{ return r.json(); }})
                        .then(function (t) {{
                            const headers = {{ 'X-Auth-Token': t.token }};
                            if (opts.data) headers['Content-Type'] = opts.contentType || 'application/json';
                            return fetch(opts.url, {{ method: opts.method || opts.type || 'GET', headers: headers, body: opts.data }});
                        }})
                        .then(function (r) {{
                            return r.text().then(function (text) {{
                                let parsed = null;
                                try {{ parsed = text ? JSON.parse(text) : null; }} catch (e) {{}}
                                if (!r.ok) throw {{ status: r.status, responseText: text, responseJSON: parsed }};
                                return parsed;
                            }});
                        }}, function (e) {{ throw {{ status: 0, statusText: String(e) }}; }});
                }},
            }};
            window.feedSelf
            "#,
            server = self.server,
            id = self.id,
        );
        let this = js_sys::eval(&js).expect("fake page");
        let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
        storage.remove_item(&storage_key(ME)).unwrap();
        this
    }
}

async fn gate(server: &str, change: Value) -> Value {
    post(&format!("{server}/test/gate"), &change).await
}

/// What the gate saw of an account's requests: `(at_ms, target, websocket, admitted)`.
async fn gate_log(account: &Account) -> Vec<(u64, String, bool, bool)> {
    let state = get(&format!("{}/test/gate?account={}", account.server, account.id)).await;
    state["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["at_ms"].as_u64().unwrap(),
                a["target"].as_str().unwrap().to_owned(),
                a["websocket"].as_bool().unwrap(),
                a["admitted"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// A running feed with the states it reported; stopped when dropped.
struct Running {
    states: Rc<RefCell<Vec<FeedState>>>,
    stop: AbortHandle,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.abort();
    }
}

impl Running {
    fn start(this: JsValue, backend: &str) -> Running {
        let widget = Rc::new(RefCell::new(KommoWidget::new(this)));
        let states = Rc::new(RefCell::new(Vec::new()));
        let sink = states.clone();
        let report = Rc::new(move |s: FeedState| sink.borrow_mut().push(s));
        let feed = FeedLoop::new(
            widget,
            Backend::new(backend, &origin()),
            report,
            None,
            Box::new(|me| Announcer::new(me, None)),
        );
        let (task, stop) = abortable(feed.run());
        wasm_bindgen_futures::spawn_local(async move {
            let _ = task.await;
        });
        Running { states, stop }
    }

    fn state(&self) -> Option<FeedState> {
        self.states.borrow().last().copied()
    }

    fn saw(&self, state: FeedState) -> bool {
        self.states.borrow().contains(&state)
    }
}

/// How many call pop-ups showed `number`.
fn popups(number: &str) -> usize {
    let calls: js_sys::Array = prop(&js_sys::global(), "calls").into();
    calls
        .iter()
        .filter(|c| {
            let pair: js_sys::Array = c.clone().into();
            let text = prop(&prop(&pair.get(1), "text"), "text").as_string().unwrap_or_default();
            // The text, without the call's invisible mark (`announcer::popup_marker`).
            let shown = text.split("<span class=\"callcard-call\"").next().unwrap_or_default();
            pair.get(0).as_string().as_deref() == Some("show_notification") && shown == number
        })
        .count()
}

async fn wait_until(what: &str, secs: u32, ok: impl Fn() -> bool) {
    let deadline = js_sys::Date::now() + f64::from(secs) * 1000.0;
    while !ok() {
        assert!(js_sys::Date::now() < deadline, "waited {secs} s for {what}");
        TimeoutFuture::new(100).await;
    }
}

#[wasm_bindgen_test]
async fn a_lost_socket_reconnects_with_backoff_and_resumes_without_duplicates() {
    let server = server();
    let account = Account::new(server).await;
    let feed = Running::start(account.page(), &account.backend);
    wait_until("the socket", 15, || feed.state() == Some(FeedState::Live)).await;
    let (a, b) = (format!("+1830555{}01", account.id % 1000), format!("+1830555{}02", account.id % 1000));
    account.pbx("ringing", &format!("a-{}", account.id), &a).await;
    wait_until("the first call's pop-up", 10, || popups(&a) == 1).await;

    // The network goes away: every connection is cut and new ones fail.
    gate(server, json!({"mode": "down", "drop": true, "clear": true})).await;
    wait_until("the loss to be noticed", 5, || feed.state() != Some(FeedState::Live)).await;
    // A call rings meanwhile (the PBX reaches the backend, the widget cannot).
    account.pbx("ringing", &format!("b-{}", account.id), &b).await;
    // Long enough for four tries: delays are drawn from [cap/2, cap] with
    // the cap doubling from 500 ms, so the fourth comes within 7.5 s.
    TimeoutFuture::new(8_000).await;
    let outage = gate_log(&account).await;
    gate(server, json!({"mode": "open"})).await;
    wait_until("the socket to come back", 20, || feed.state() == Some(FeedState::Live)).await;
    wait_until("the missed call's pop-up", 10, || popups(&b) == 1).await;
    TimeoutFuture::new(1_000).await;
    assert_eq!((popups(&a), popups(&b)), (1, 1), "each call popped up exactly once");
    assert!(feed.saw(FeedState::Connecting) || feed.saw(FeedState::Offline));

    // Backoff: refused attempts come further and further apart.
    // Firefox retries a request whose connection is cut before any answer,
    // a few times within milliseconds: such a burst is one try of the widget.
    let mut refused: Vec<u64> = Vec::new();
    let mut previous: Option<u64> = None;
    for at in outage.iter().filter(|a| !a.3).map(|a| a.0) {
        if previous.is_none_or(|p| at > p + BROWSER_RETRY_MS) {
            refused.push(at);
        }
        previous = Some(at);
    }
    assert!(refused.len() >= 4, "at least four tries in 8 s: {outage:?}");
    let gaps: Vec<u64> = refused.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|&g| g >= 200), "never hammering: {gaps:?} {outage:?}");
    assert!(gaps.windows(2).all(|w| w[1] + 100 >= w[0]), "never shrinking: {gaps:?}");
    assert!(gaps.last().unwrap() * 2 >= gaps[0] * 3, "growing: {gaps:?}");
    assert!(gaps.iter().all(|&g| g <= 30_000 + 500), "capped: {gaps:?}");

    // Resume: the new socket asked for what came after the last offset seen,
    // and nothing had to be fetched from scratch.
    let after = gate_log(&account).await;
    let socket = after.iter().find(|a| a.2 && a.3).expect("a socket after the outage");
    assert!(!socket.1.contains("since=0"), "resumed from an offset: {}", socket.1);
    assert!(!after.iter().any(|a| a.1.contains("/widget/calls")), "no refetch: {after:?}");
}

#[wasm_bindgen_test]
async fn blocked_websockets_fall_back_to_polling_and_the_socket_comes_back() {
    let server = server();
    let account = Account::new(server).await;
    gate(server, json!({"mode": "no_websocket"})).await;
    let feed = Running::start(account.page(), &account.backend);
    wait_until("polling", 20, || feed.state() == Some(FeedState::Polling)).await;
    let (c, d) = (format!("+1830556{}03", account.id % 1000), format!("+1830556{}04", account.id % 1000));
    account.pbx("ringing", &format!("c-{}", account.id), &c).await;
    wait_until("the pop-up by polling", 10, || popups(&c) == 1).await;
    let log = gate_log(&account).await;
    let sockets: Vec<_> = log.iter().filter(|a| a.2).collect();
    assert!(sockets.len() >= 3 && sockets.iter().all(|a| !a.3), "the socket was tried and refused: {log:?}");
    assert!(log.iter().any(|a| a.1.contains("/widget/feed/poll") && a.3), "polls passed: {log:?}");

    // WebSockets work again: the feed goes back to its socket.
    gate(server, json!({"mode": "open"})).await;
    wait_until("the socket", 40, || feed.state() == Some(FeedState::Live)).await;
    account.pbx("ringing", &format!("d-{}", account.id), &d).await;
    wait_until("the pop-up by socket", 10, || popups(&d) == 1).await;
    TimeoutFuture::new(1_000).await;
    assert_eq!((popups(&c), popups(&d)), (1, 1), "each call popped up exactly once");
}

#[wasm_bindgen_test]
async fn a_gap_too_old_to_replay_refetches_the_current_calls() {
    let server = server();
    let account = Account::new(server).await;
    let feed = Running::start(account.page(), &account.backend);
    wait_until("the socket", 15, || feed.state() == Some(FeedState::Live)).await;
    let first = format!("+1830557{}00", account.id % 1000);
    account.pbx("ringing", &format!("g0-{}", account.id), &first).await;
    wait_until("the first pop-up", 10, || popups(&first) == 1).await;

    // Away for longer than the backend keeps history (5 events per user).
    gate(server, json!({"mode": "down", "drop": true, "clear": true})).await;
    wait_until("the loss to be noticed", 5, || feed.state() != Some(FeedState::Live)).await;
    let numbers: Vec<String> = (1..=6).map(|i| format!("+1830557{}{i:02}", account.id % 1000)).collect();
    for (i, n) in numbers.iter().enumerate() {
        account.pbx("ringing", &format!("g{}-{}", i + 1, account.id), n).await;
    }
    gate(server, json!({"mode": "open"})).await;
    wait_until("every missed call's pop-up", 25, || numbers.iter().all(|n| popups(n) == 1)).await;
    TimeoutFuture::new(1_000).await;
    assert_eq!(popups(&first), 1, "the call seen before the gap did not pop up again");
    assert!(numbers.iter().all(|n| popups(n) == 1), "exactly once each");
    let log = gate_log(&account).await;
    assert!(log.iter().any(|a| a.1.contains("/widget/calls") && a.3), "the current calls were refetched: {log:?}");
    assert_eq!(feed.state(), Some(FeedState::Live));
}

#[wasm_bindgen_test]
async fn the_connection_check_reads_the_real_backend() {
    use callcard_widget::settings::ConnectionCheck;
    let server = server();
    let account = Account::new(server).await;
    let widget = KommoWidget::new(account.page());
    let backend = Backend::new(&account.backend, &origin());
    // Reachable, and the token is accepted, but this account never went
    // through Kommo's OAuth installation: not authorized.
    let answer = backend.status(&widget).await;
    let backend_field = answer.as_ref().ok().and_then(|status| status.backend.clone());
    assert_eq!(backend_field.as_deref(), Some("ok"), "{answer:?}");
    assert_eq!(ConnectionCheck::from_answer(answer), ConnectionCheck::NotAuthorized);
    // The network is gone: unreachable.
    gate(server, json!({"mode": "down", "drop": true})).await;
    assert_eq!(ConnectionCheck::from_answer(backend.status(&widget).await), ConnectionCheck::Unreachable);
    gate(server, json!({"mode": "open"})).await;
}
