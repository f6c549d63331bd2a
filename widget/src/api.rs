//! The backend's HTTP and WebSocket routes, as the widget calls them.
//!
//! The base URL is compiled in from `CALLCARD_BACKEND_URL` (default
//! `/backend`); a relative base is resolved against the page's origin, and
//! the feed's WebSocket URL swaps `http(s)` for `ws(s)`. The URL arithmetic is
//! pure and unit-tested; the calls need a browser.
//!
//! Credentials: `POST /widget/ticket`, `PUT /widget/settings`,
//! `GET /widget/status`, click-to-call, the log settings and the call result go through Kommo's `$authorizedAjax` (which adds the one-time
//! `X-Auth-Token`); the feed routes carry the ticket in the query string.

use crate::convert::{from_js, from_json, to_json};
use crate::escape::encode_component;
use crate::kommo::{AjaxError, AjaxRequest, KommoWidget, ProblemText};
use callcard_calls::extensions::{ExtensionMap, SettingsUpdate};
use callcard_calls::feed::{CurrentCalls, PollAnswer, Ticket};
use callcard_calls::note::{LogSettings, LogSettingsView, UserLogSettings};
use callcard_calls::originate::{OriginateRequest, Originated};
use callcard_calls::result::CallResult;
use callcard_calls::status::WidgetStatus;
use serde::de::DeserializeOwned;

/// The backend base URL this build talks to.
pub fn configured_base() -> &'static str {
    option_env!("CALLCARD_BACKEND_URL").unwrap_or("/backend")
}

/// The backend's routes, from an absolute `http(s)` base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    base: String,
}

impl Backend {
    /// `base` absolute (`https://api.example/callcard`), protocol-relative
    /// (`//api.example`) or a path (`/backend`) resolved against `origin`
    /// (`http://127.0.0.1:8080`).
    pub fn new(base: &str, origin: &str) -> Self {
        let base = base.trim().trim_end_matches('/');
        let origin = origin.trim_end_matches('/');
        let base = if base.starts_with("http://") || base.starts_with("https://") {
            base.to_owned()
        } else if let Some(rest) = base.strip_prefix("//") {
            let scheme = origin.split("://").next().unwrap_or("https");
            format!("{scheme}://{rest}")
        } else if base.starts_with('/') {
            format!("{origin}{base}")
        } else {
            format!("{origin}/{base}")
        };
        Self { base }
    }

    /// The configured backend, resolved against this page's location.
    pub fn from_page() -> Self {
        let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
        Self::new(configured_base(), &origin)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn ticket_url(&self) -> String {
        format!("{}/widget/ticket", self.base)
    }

    /// `ws(s)://…/widget/feed?ticket=…&since=N`.
    pub fn feed_socket_url(&self, ticket: &str, since: u64) -> String {
        let ws = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = self.base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            self.base.clone()
        };
        format!("{ws}/widget/feed?ticket={}&since={since}", encode_component(ticket))
    }

    /// `wait`: seconds the backend may hold the request until an event
    /// arrives (long polling); 0 answers at once.
    pub fn poll_url(&self, ticket: &str, since: u64, wait: u32) -> String {
        let url = format!("{}/widget/feed/poll?ticket={}&since={since}", self.base, encode_component(ticket));
        if wait == 0 {
            url
        } else {
            format!("{url}&wait={wait}")
        }
    }

    pub fn calls_url(&self, ticket: &str) -> String {
        format!("{}/widget/calls?ticket={}", self.base, encode_component(ticket))
    }

    pub fn settings_url(&self) -> String {
        format!("{}/widget/settings", self.base)
    }

    pub fn status_url(&self) -> String {
        format!("{}/widget/status", self.base)
    }

    /// `GET`/`PUT /widget/log-settings` (the user's own section switches).
    pub fn log_settings_url(&self) -> String {
        format!("{}/widget/log-settings", self.base)
    }

    /// `PUT /widget/log-settings/account` (the account's defaults; admins).
    pub fn account_log_settings_url(&self) -> String {
        format!("{}/widget/log-settings/account", self.base)
    }

    pub fn result_url(&self, call_id: &str) -> String {
        format!("{}/widget/calls/{}/result", self.base, encode_component(call_id))
    }

    pub fn originate_url(&self) -> String {
        format!("{}/widget/calls/originate", self.base)
    }

    /// `POST /widget/calls/originate {"number": …}`: click-to-call.
    pub async fn originate(&self, widget: &KommoWidget, number: &str) -> Result<Originated, AjaxError> {
        let body = to_json(&OriginateRequest { number: number.to_owned() });
        let value = widget.authorized_ajax(&AjaxRequest::with_json("POST", self.originate_url(), body)).await?;
        from_js(value).map_err(|e| AjaxError::new(0, format!("bad originate answer: {e}")))
    }

    /// A feed ticket for the current user.
    pub async fn ticket(&self, widget: &KommoWidget) -> Result<Ticket, AjaxError> {
        let value = widget.authorized_ajax(&AjaxRequest::new("POST", self.ticket_url())).await?;
        from_js(value).map_err(|e| AjaxError::new(0, format!("bad ticket: {e}")))
    }

    /// Events after `since`, for when the socket does not work.
    pub async fn poll(&self, ticket: &str, since: u64, wait: u32) -> Result<PollAnswer, AjaxError> {
        get_json(&self.poll_url(ticket, since, wait)).await
    }

    /// The calls that still matter, to start over.
    pub async fn current_calls(&self, ticket: &str) -> Result<CurrentCalls, AjaxError> {
        get_json(&self.calls_url(ticket)).await
    }

    /// `GET /widget/status`: whether the backend has this account authorized.
    pub async fn status(&self, widget: &KommoWidget) -> Result<WidgetStatus, AjaxError> {
        let value = widget.authorized_ajax(&AjaxRequest::new("GET", self.status_url())).await?;
        if value.is_null() {
            return Ok(WidgetStatus::default());
        }
        from_js(value).map_err(|e| AjaxError::new(0, format!("bad status answer: {e}")))
    }

    /// `PUT /widget/settings {"phones": …}`.
    pub async fn save_settings(&self, widget: &KommoWidget, phones: ExtensionMap) -> Result<(), AjaxError> {
        let body = to_json(&SettingsUpdate { phones });
        widget.authorized_ajax(&AjaxRequest::with_json("PUT", self.settings_url(), body)).await.map(drop)
    }

    /// `GET /widget/log-settings`: the account's defaults, the user's own
    /// choices, and what applies to the user.
    pub async fn log_settings(&self, widget: &KommoWidget) -> Result<LogSettingsView, AjaxError> {
        let value = widget.authorized_ajax(&AjaxRequest::new("GET", self.log_settings_url())).await?;
        log_settings_view(value)
    }

    /// `PUT /widget/log-settings`: the user's own choices; answers the view.
    pub async fn save_my_log_settings(
        &self,
        widget: &KommoWidget,
        mine: &UserLogSettings,
    ) -> Result<LogSettingsView, AjaxError> {
        let request = AjaxRequest::with_json("PUT", self.log_settings_url(), to_json(mine));
        log_settings_view(widget.authorized_ajax(&request).await?)
    }

    /// `PUT /widget/log-settings/account`: the account's defaults (403 for
    /// anyone but an admin); answers the view.
    pub async fn save_account_log_settings(
        &self,
        widget: &KommoWidget,
        defaults: &LogSettings,
    ) -> Result<LogSettingsView, AjaxError> {
        let request = AjaxRequest::with_json("PUT", self.account_log_settings_url(), to_json(defaults));
        log_settings_view(widget.authorized_ajax(&request).await?)
    }

    /// `POST /widget/calls/{call_id}/result`.
    pub async fn save_result(&self, widget: &KommoWidget, call_id: &str, result: &CallResult) -> Result<(), AjaxError> {
        let request = AjaxRequest::with_json("POST", self.result_url(call_id), to_json(result));
        widget.authorized_ajax(&request).await.map(drop)
    }
}

fn log_settings_view(value: wasm_bindgen::JsValue) -> Result<LogSettingsView, AjaxError> {
    from_js(value).map_err(|e| AjaxError::new(0, format!("bad log settings answer: {e}")))
}

/// `GET url` answering JSON (gloo-net), with problem+json errors read into
/// [`AjaxError`]. A request that got no answer is status 0.
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, AjaxError> {
    let response = gloo_net::http::Request::get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| AjaxError::new(0, e.to_string()))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| AjaxError::new(status, e.to_string()))?;
    if !response.ok() {
        let message = from_json::<ProblemText>(&text).and_then(ProblemText::message).unwrap_or(text);
        return Err(AjaxError::new(status, message));
    }
    from_json(&text).ok_or_else(|| AjaxError::new(0, format!("bad answer from {url}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_bases_follow_the_page() {
        let b = Backend::new("/backend/", "http://127.0.0.1:8080");
        assert_eq!(b.base(), "http://127.0.0.1:8080/backend");
        assert_eq!(b.ticket_url(), "http://127.0.0.1:8080/backend/widget/ticket");
        assert_eq!(b.feed_socket_url("t 1&x", 7), "ws://127.0.0.1:8080/backend/widget/feed?ticket=t%201%26x&since=7");
        let s = Backend::new("//api.example/cc", "https://acme.kommo.com");
        assert_eq!(s.feed_socket_url("t", 0), "wss://api.example/cc/widget/feed?ticket=t&since=0");
    }

    #[test]
    fn absolute_bases_are_kept() {
        let b = Backend::new("https://callcard.example", "https://acme.kommo.com");
        assert_eq!(b.poll_url("abc", 3, 0), "https://callcard.example/widget/feed/poll?ticket=abc&since=3");
        assert_eq!(b.poll_url("abc", 3, 20), "https://callcard.example/widget/feed/poll?ticket=abc&since=3&wait=20");
        assert_eq!(b.calls_url("abc"), "https://callcard.example/widget/calls?ticket=abc");
        assert_eq!(b.result_url("c/1"), "https://callcard.example/widget/calls/c%2F1/result");
        assert_eq!(b.settings_url(), "https://callcard.example/widget/settings");
        assert_eq!(b.status_url(), "https://callcard.example/widget/status");
        assert_eq!(b.originate_url(), "https://callcard.example/widget/calls/originate");
        assert_eq!(b.log_settings_url(), "https://callcard.example/widget/log-settings");
        assert_eq!(b.account_log_settings_url(), "https://callcard.example/widget/log-settings/account");
        assert_eq!(b.feed_socket_url("t", 1), "wss://callcard.example/widget/feed?ticket=t&since=1");
    }
}
