//! Talking to the widget in the other tabs of this browser.
//!
//! A `BroadcastChannel("callcard")` carries [`TabMessage`]s as plain
//! objects (serde-wasm-bindgen; the channel clones them structurally): a new
//! tab says [`TabMessage::Hello`]; the leader answers, and announces every
//! change, with [`TabMessage::State`], so every tab's `data-feed` shows the
//! real connection.

use crate::convert::{from_js, to_js};
use crate::feed_state::FeedState;
use serde::{Deserialize, Serialize};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// The channel name.
pub const CHANNEL: &str = "callcard";

/// A message between tabs: `{"type":"hello"}` or
/// `{"type":"state","state":"live"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TabMessage {
    /// A tab started and would like the current state.
    Hello,
    /// The leader's feed state.
    State { state: FeedState },
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
            if let Ok(msg) = from_js::<TabMessage>(e.data()) {
                on_message(msg);
            }
        });
        channel.set_onmessage(Some(handler.as_ref().unchecked_ref()));
        Some(Self { channel, _on_message: handler })
    }

    pub fn post(&self, msg: &TabMessage) {
        let _ = self.channel.post_message(&to_js(msg));
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
        assert!(serde_json::from_str::<TabMessage>(r#"{"type":"state","state":"asleep"}"#).is_err());
    }
}
