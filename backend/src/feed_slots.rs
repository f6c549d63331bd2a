//! A cap on the feeds one user holds open on this instance.
//!
//! A ticket is valid for a while and opens any number of feeds, so without a
//! cap one ticket could hold thousands of WebSockets (each a descriptor and
//! memory). A feed takes a [`FeedSlot`] before its WebSocket upgrade (or its
//! waiting poll) and gives it back when it ends; past `max_feeds_per_user`
//! the request is refused with 429 problem+json. The count is per instance:
//! several instances behind a balancer allow that many each.

use crate::problem::Problem;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open feeds per (account, user) on this instance.
pub(crate) struct FeedSlots {
    per_user: usize,
    open: Mutex<HashMap<(u64, u64), usize>>,
}

impl FeedSlots {
    pub(crate) fn new(per_user: u32) -> Self {
        Self { per_user: per_user as usize, open: Mutex::default() }
    }

    /// One more feed for the user, or 429 when they hold the most already.
    pub(crate) fn take(self: &Arc<Self>, account_id: u64, user_id: u64) -> Result<FeedSlot, Problem> {
        let key = (account_id, user_id);
        let mut open = self.open.lock().expect("feed slots");
        let count = open.entry(key).or_default();
        if *count >= self.per_user {
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-feeds",
                "Too many open feeds",
                format!("a user may hold at most {} feeds open; close one first", self.per_user),
            )
            .with_field("ticket"));
        }
        *count += 1;
        Ok(FeedSlot { slots: self.clone(), key })
    }
}

/// One open feed's place; given back when dropped.
pub(crate) struct FeedSlot {
    slots: Arc<FeedSlots>,
    key: (u64, u64),
}

impl Drop for FeedSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("feed slots");
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}
