//! How the widget is connected to the call feed, as shown on the root
//! element's `data-feed` attribute.

/// The feed connection as people (and tests) see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    /// Getting a ticket or opening the socket.
    #[default]
    Connecting,
    /// The WebSocket is open.
    Live,
    /// The socket keeps failing; events arrive by polling.
    Polling,
    /// Neither works; retrying with backoff.
    Offline,
}

impl FeedState {
    /// The `data-feed` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Polling => "polling",
            Self::Offline => "offline",
        }
    }

    /// The i18n key describing the state.
    pub fn text_key(self) -> &'static str {
        match self {
            Self::Connecting => "feed.connecting",
            Self::Live => "feed.live",
            Self::Polling => "feed.polling",
            Self::Offline => "feed.offline",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde() {
        for s in [FeedState::Connecting, FeedState::Live, FeedState::Polling, FeedState::Offline] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(serde_json::from_value::<FeedState>(s.as_str().into()).unwrap(), s);
        }
    }
}
