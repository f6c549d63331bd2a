//! Click-to-call: Kommo's `phone` action.
//!
//! script.js registers `self.add_action('phone', fn)` in `init`; Kommo
//! calls `fn({value: "<number>"})` when the manager clicks a phone number
//! anywhere, and script.js hands that to [`crate::widget_phone`]. The
//! widget posts `POST /widget/calls/originate` ([`crate::api`]); the
//! backend asks the PBX to ring the manager's extension, then the number.
//! The widget says "Calling …" at once; the call itself then arrives
//! through the feed like any other (the outgoing-call pop-up, the Call
//! summary), so nothing here keeps state. A refusal is shown with the
//! backend's reason (problem+json `detail`), never swallowed.

use crate::api::Backend;
use crate::escape::escape_html;
use crate::kommo::{AjaxError, KommoWidget, Notifications};
use crate::texts::Texts;
use serde::Deserialize;

/// What Kommo passes the `phone` action.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PhoneAction {
    pub value: Option<String>,
}

impl PhoneAction {
    /// The number to call, trimmed; `None` when there is none.
    pub fn number(&self) -> Option<&str> {
        self.value.as_deref().map(str::trim).filter(|n| !n.is_empty())
    }
}

/// The message after the backend answered: `Ok` "Calling …", `Err` why not
/// (the texts escaped: Kommo renders them as HTML).
pub fn outcome_text(texts: &dyn Texts, number: &str, answer: &Result<(), AjaxError>) -> Result<String, String> {
    let number = escape_html(number);
    match answer {
        Ok(()) => Ok(texts.fill("dial.calling", &[("number", &number)])),
        Err(e) => Err(texts.fill("dial.failed", &[("number", &number), ("reason", &escape_html(&e.message))])),
    }
}

/// Places the call for `action` and tells the manager how it went.
pub async fn call(widget: KommoWidget, action: PhoneAction) {
    let Some(notifications) = Notifications::get() else { return };
    let header = escape_html(&widget.text("dial.header"));
    let Some(number) = action.number().map(str::to_owned) else {
        let _ = notifications.show_message_error(&header, &escape_html(&widget.text("dial.no_number")));
        return;
    };
    let answer = Backend::from_page().originate(&widget, &number).await.map(drop);
    let _ = match outcome_text(&widget, &number, &answer) {
        Ok(text) => notifications.show_message(&header, &text),
        Err(text) => notifications.show_message_error(&header, &text),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::texts::English;

    #[test]
    fn the_action_gives_the_trimmed_number_or_none() {
        assert_eq!(PhoneAction { value: Some(" +1 830 570 3077 ".into()) }.number(), Some("+1 830 570 3077"));
        assert_eq!(PhoneAction { value: Some("  ".into()) }.number(), None);
        assert_eq!(PhoneAction::default().number(), None);
    }

    #[test]
    fn the_outcome_is_said_with_the_number_and_the_backends_reason_escaped() {
        assert_eq!(outcome_text(&English, "+1 830", &Ok(())).unwrap(), "Calling +1 830… Pick up your phone.");
        let refused = Err(AjaxError::new(409, "you have <no> extension"));
        assert_eq!(
            outcome_text(&English, "<b>1</b>", &refused).unwrap_err(),
            "The call to &lt;b&gt;1&lt;/b&gt; was not placed: you have &lt;no&gt; extension"
        );
    }
}
