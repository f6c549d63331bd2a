//! Turning call snapshots into Kommo notifications, once each.
//!
//! The browser half of [`crate::ledger`]: keeps the ledger in
//! `localStorage` (key `callcard.notices.<user_id>`, merged with what other
//! tabs wrote before every decision and saved *before* anything is shown),
//! composes with [`crate::notification`], and calls `APP.notifications`.

use crate::escape::escape_html;
use crate::kommo::{KommoWidget, Notifications};
use crate::ledger::{Notice, NotificationLedger};
use crate::local_storage;
use crate::notification::{completed_call, recording_attached, ringing_popup};
use crate::texts::Texts;
use callcard_calls::feed::CallView;
use std::rc::Rc;

/// What the widget does when an ended call wants a Call summary.
pub type SummaryOpener = Rc<dyn Fn(&CallView)>;

/// Decides and shows notifications for one user.
pub struct Announcer {
    me: u64,
    ledger: NotificationLedger,
    on_summary: Option<SummaryOpener>,
}

/// The `localStorage` key of a user's ledger.
pub fn storage_key(me: u64) -> String {
    format!("callcard.notices.{me}")
}

/// An invisible mark in a call pop-up's text (Kommo inserts the text as
/// HTML), by which [`withdraw_popups`] finds the pop-ups of a call.
pub fn popup_marker(call_id: &str) -> String {
    format!("<span class=\"callcard-call\" data-callcard-call=\"{}\" hidden></span>", escape_html(call_id))
}

/// Takes down the pop-ups shown for `call_id` (a group call another agent
/// answered, a call transferred away). Kommo documents no way to close a
/// `show_notification` pop-up and its markup is unconfirmed: the pop-up is
/// the marked text's closest `.notification-popup` (the host page's
/// markup, believed to follow Kommo's class names), closed with its close
/// button when it has one, else removed. Where no such element holds the
/// mark, nothing is touched (no guessing at Kommo's page): Kommo hides its
/// pop-ups by itself a few seconds later, and the withdrawn call shows
/// nothing more.
pub fn withdraw_popups(call_id: &str) {
    use wasm_bindgen::JsCast;
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Ok(marks) = document.query_selector_all("[data-callcard-call]") else { return };
    for i in 0..marks.length() {
        let Some(mark) = marks.item(i).and_then(|n| n.dyn_into::<web_sys::Element>().ok()) else { continue };
        if mark.get_attribute("data-callcard-call").as_deref() != Some(call_id) {
            continue;
        }
        let Ok(Some(popup)) = mark.closest(".notification-popup") else { continue };
        match popup
            .query_selector(".notification-close")
            .ok()
            .flatten()
            .and_then(|b| b.dyn_into::<web_sys::HtmlElement>().ok())
        {
            Some(close) => close.click(),
            None => popup.remove(),
        }
    }
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

impl Announcer {
    pub fn new(me: u64, on_summary: Option<SummaryOpener>) -> Self {
        let mut a = Self { me, ledger: NotificationLedger::new(), on_summary };
        a.reload();
        a
    }

    pub fn me(&self) -> u64 {
        self.me
    }

    /// Merges what is stored (other tabs, earlier page loads).
    fn reload(&mut self) {
        if let Some(stored) = local_storage::load::<NotificationLedger>(&storage_key(self.me)) {
            self.ledger.merge(&stored);
        }
    }

    fn save(&self) {
        local_storage::store(&storage_key(self.me), &self.ledger);
    }

    /// Shows what is due for this snapshot; returns what was shown.
    pub fn announce(&mut self, view: &CallView, widget: &KommoWidget) -> Vec<Notice> {
        self.reload();
        let before = self.ledger.len();
        let now = now_ms();
        let due = self.ledger.decide(view, self.me, now);
        if self.ledger.len() != before {
            self.save();
        }
        let notifications = Notifications::get();
        for notice in &due {
            let shown = match notice {
                Notice::Ringing | Notice::Identified => {
                    let mut popup = ringing_popup(view, widget, &crate::directory::cached());
                    popup.text.text.push_str(&popup_marker(&view.call.call_id));
                    notifications.as_ref().map(|n| n.show_notification(&popup))
                }
                Notice::Withdrawn => {
                    withdraw_popups(&view.call.call_id);
                    Some(Ok(()))
                }
                Notice::Completed => notifications.as_ref().map(|n| n.add_call(&completed_call(view, widget, now))),
                Notice::RecordingAttached => match (&notifications, recording_attached(view, widget)) {
                    (Some(n), Some(text)) => Some(n.show_message(&widget.text("widget.name"), &text)),
                    _ => None,
                },
                Notice::Summary => {
                    if let Some(open) = &self.on_summary {
                        open(view);
                    }
                    Some(Ok(()))
                }
            };
            if let Some(Err(e)) = shown {
                web_sys::console::warn_2(&"callcard: notification failed".into(), &e);
            }
        }
        due
    }
}
