//! Turning call snapshots into Kommo notifications, once each.
//!
//! The browser half of [`crate::ledger`]: keeps the ledger in
//! `localStorage` (key `callcard.notices.<user_id>`, merged with what other
//! tabs wrote before every decision and saved *before* anything is shown),
//! composes with [`crate::notification`], and calls `APP.notifications`.

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
                Notice::Ringing | Notice::Identified => notifications
                    .as_ref()
                    .map(|n| n.show_notification(&ringing_popup(view, widget, &crate::directory::cached()))),
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
