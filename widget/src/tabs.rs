//! Talking to the widget in the other tabs of this browser.
//!
//! A `BroadcastChannel("callcard")` carries [`TabMessage`]s as JSON: a new
//! tab says [`TabMessage::Hello`]; the leader answers, and announces every
//! change, with [`TabMessage::State`], so every tab's `data-feed` shows the
//! real connection.

use crate::feed_state::FeedState;
use crate::json::{self, Json, Writer};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// The channel name.
pub const CHANNEL: &str = "callcard";

/// A message between tabs: `{"type":"hello"}` or
/// `{"type":"state","state":"live"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize, serde::Deserialize), serde(tag = "type", rename_all = "snake_case"))]
pub enum TabMessage {
    /// A tab started and would like the current state.
    Hello,
    /// The leader's feed state.
    State { state: FeedState },
}

impl TabMessage {
    pub fn to_json(&self) -> String {
        let mut w = Writer::new();
        match self {
            Self::Hello => w.open().key("type").str("hello"),
            Self::State { state } => w.open().key("type").str("state").key("state").str(state.as_str()),
        };
        w.close();
        w.finish()
    }

    pub fn from_json(j: &Json) -> Option<Self> {
        match j.get("type")?.as_str()? {
            "hello" => Some(Self::Hello),
            "state" => Some(Self::State { state: FeedState::parse(j.get("state")?.as_str()?)? }),
            _ => None,
        }
    }
}

/// An open channel; closed when dropped.
pub struct TabChannel {
    channel: web_sys::BroadcastChannel,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

impl TabChannel {
    /// Opens the channel, calling `on_message` for every message from another tab.
    pub fn open(on_message: impl Fn(TabMessage) + 'static) -> Option<Self> {
        let channel = web_sys::BroadcastChannel::new(CHANNEL).ok()?;
        let handler = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            if let Some(msg) = e.data().as_string().and_then(|s| TabMessage::from_json(&json::parse(&s)?)) {
                on_message(msg);
            }
        });
        channel.set_onmessage(Some(handler.as_ref().unchecked_ref()));
        Some(Self { channel, _on_message: handler })
    }

    pub fn post(&self, msg: &TabMessage) {
        let _ = self.channel.post_message(&msg.to_json().into());
    }
}

impl Drop for TabChannel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_json() {
        let json = serde_json::to_string(&TabMessage::State { state: FeedState::Polling }).unwrap();
        assert_eq!(json, r#"{"type":"state","state":"polling"}"#);
        assert_eq!(serde_json::from_str::<TabMessage>(r#"{"type":"hello"}"#).unwrap(), TabMessage::Hello);
        for m in [TabMessage::Hello, TabMessage::State { state: FeedState::Live }] {
            assert_eq!(m.to_json(), serde_json::to_string(&m).unwrap());
            assert_eq!(TabMessage::from_json(&json::parse(&m.to_json()).unwrap()), Some(m));
        }
        assert_eq!(TabMessage::from_json(&json::parse(r#"{"type":"state","state":"asleep"}"#).unwrap()), None);
    }
}
