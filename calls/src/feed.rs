//! The live call-state feed: what the backend sends to one user's widget.
//!
//! Every change to a call the user can see becomes a [`FeedEvent`] carrying
//! the *whole* call as it now is ([`CallView`]), with an offset that only
//! grows for that user. Sending snapshots rather than deltas means a widget
//! that sees an event twice, or misses one and sees the next, still shows the
//! truth; the offset lets it resume exactly where it stopped.
//!
//! Endpoints (relative to the backend's base URL):
//! - `POST /widget/ticket` with header `X-Auth-Token` (Kommo's one-time JWT)
//!   → [`Ticket`].
//! - `GET /widget/feed?ticket=…&since=N` upgrades to a WebSocket that sends
//!   [`FeedMessage`]s as JSON text frames, starting after offset `N`.
//! - `GET /widget/feed/poll?ticket=…&since=N` → [`PollAnswer`], the same
//!   events for networks that block WebSockets.
//! - `GET /widget/calls?ticket=…` → [`CurrentCalls`], to start over after a gap.

use crate::call::{Call, CallStatus};
use crate::entity::EntityRef;
use serde::{Deserialize, Serialize};

/// A short-lived credential for the feed, bound to one account and user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ticket {
    pub ticket: String,
    pub account_id: u64,
    pub user_id: u64,
    /// Unix milliseconds after which the ticket no longer opens a feed.
    pub expires_at: i64,
}

/// What caller ID found for the external number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CallerId {
    /// Not looked up yet.
    #[default]
    Pending,
    /// No contact or company has this number.
    Unknown,
    /// The record to open and the name to show: what Kommo's caller-ID rule
    /// picks. `holder` and `deal` are what the local caller index adds for
    /// the caller card (absent when the answer came from Kommo's
    /// `POST /api/v2/events`, which does not tell them).
    Known {
        name: String,
        entity: EntityRef,
        /// The contact or company holding the number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        holder: Option<CallerHolder>,
        /// The company the holder belongs to, when the holder is a contact
        /// linked to one (from the local caller index only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        company: Option<CallerHolder>,
        /// The lead or customer picked, when exactly one was active.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deal: Option<CallerDeal>,
    },
}

/// The contact or company behind a caller-ID answer (or a contact's company).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallerHolder {
    pub entity: EntityRef,
    pub name: String,
}

/// Where the lead or customer behind a caller-ID answer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallerDeal {
    pub status_id: u64,
    pub pipeline_id: u64,
    pub responsible_user_id: u64,
}

impl CallerId {
    /// A caller as Kommo's `POST /api/v2/events` answers it: the record and
    /// its name, nothing more.
    pub fn known(name: impl Into<String>, entity: EntityRef) -> Self {
        Self::Known { name: name.into(), entity, holder: None, company: None, deal: None }
    }
}

impl From<crate::phonebook::Caller> for CallerId {
    /// What the local index says, with the holder and the deal for the card.
    fn from(c: crate::phonebook::Caller) -> Self {
        Self::Known {
            name: c.name,
            entity: c.element,
            holder: Some(CallerHolder { entity: c.holder, name: c.holder_name }),
            company: c.company.map(|(entity, name)| CallerHolder { entity, name }),
            deal: c.deal.map(|d| CallerDeal {
                status_id: d.status_id,
                pipeline_id: d.pipeline_id,
                responsible_user_id: d.responsible_user_id,
            }),
        }
    }
}

/// A call as one user's widget sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallView {
    #[serde(flatten)]
    pub call: Call,
    pub status: CallStatus,
    /// The Kommo user the extension belongs to.
    pub user_id: Option<u64>,
    #[serde(default)]
    pub caller: CallerId,
    /// The record the call is logged on, once it is.
    #[serde(default)]
    pub entity: Option<EntityRef>,
    /// Whether the manager has already saved a call result.
    #[serde(default)]
    pub has_result: bool,
    /// Why the manager's saved result could not be applied in Kommo (e.g. the
    /// chosen record cannot take a call, or no longer exists): the manager
    /// should choose again. `None` once a result is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_error: Option<String>,
    /// Whether the saved result has been applied in Kommo (the job that
    /// moves the note and creates the task finished): the widget's
    /// "Logged on …". False while it waits, and again after a new Save.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub result_logged: bool,
    /// The call is no longer this user's to see: another agent of the ring
    /// group answered it, it was transferred to another agent, or the group
    /// call ended with nobody answering. The widget takes its card down and
    /// shows nothing more for it (no missed call, no summary).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

impl CallView {
    pub fn new(call: Call, user_id: Option<u64>) -> Self {
        let status = call.status();
        Self {
            call,
            status,
            user_id,
            caller: CallerId::Pending,
            entity: None,
            has_result: false,
            result_error: None,
            result_logged: false,
            withdrawn: false,
        }
    }
}

/// One change, numbered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedEvent {
    pub offset: u64,
    pub call: CallView,
}

/// A WebSocket text frame from the backend.
// Messages are built, serialized and dropped at once: boxing the big variant
// would cost an allocation and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedMessage {
    Event(FeedEvent),
    /// The requested offset is older than the kept history: fetch
    /// `/widget/calls` and continue from `latest_offset`.
    Gap {
        latest_offset: u64,
    },
    /// Sent every few seconds so both sides notice a dead connection.
    Heartbeat {
        latest_offset: u64,
    },
}

/// The polling answer: events after `since`, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PollAnswer {
    pub events: Vec<FeedEvent>,
    /// True when `since` is older than the kept history.
    pub gap: bool,
    pub latest_offset: u64,
}

/// The user's calls that still matter (ringing, talking, or ended without a
/// result), to rebuild the widget's state after a gap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrentCalls {
    pub calls: Vec<CallView>,
    pub latest_offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CallEvent, CallEventKind, Direction};

    #[test]
    fn a_feed_event_round_trips_as_flat_json() {
        let call = Call::from_event(&CallEvent {
            kind: CallEventKind::Ringing,
            call_id: "c1".into(),
            direction: Direction::Inbound,
            external_number: "+18305703077".into(),
            extension: "101".into(),
            occurred_at: 1_763_691_600_123,
        });
        let msg = FeedMessage::Event(FeedEvent { offset: 7, call: CallView::new(call, Some(42)) });
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["type"], "event");
        assert_eq!(json["call"]["call_id"], "c1");
        assert_eq!(json["call"]["status"], "ringing");
        assert_eq!(json["call"]["caller"]["state"], "pending");
        let back: FeedMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, msg);
    }
}
