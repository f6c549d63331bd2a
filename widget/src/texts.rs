//! The widget's strings: i18n keys with built-in English fallbacks.
//!
//! Kommo's `self.i18n(group)` returns one top-level object of the widget's
//! `i18n/<lang>.json`; a key here is `group.name` (for example
//! `call.incoming`). [`Texts`] is implemented by the Kommo wrapper (which
//! walks that object) and by plain maps in tests; a missing translation falls
//! back to [`english`], so a stale i18n file never shows a raw key.
//!
//! Templates use `{name}` placeholders, filled by [`fill`]. The template comes
//! from the widget's own i18n files (trusted); the values are escaped by the
//! caller when they come from a CRM or PBX.

use callcard_calls::EntityKind;
use std::collections::HashMap;

/// Every key the widget uses, with its English text.
pub const ENGLISH: &[(&str, &str)] = &[
    ("widget.name", "callcard"),
    ("call.incoming", "Incoming call"),
    ("call.outgoing", "Outgoing call"),
    ("call.header_internal", "Internal number: {number}"),
    ("call.header_incoming", "Incoming call: {number}"),
    ("call.header_outgoing", "Outgoing call: {number}"),
    ("call.go_to_card", "Go to the contact card"),
    ("call.completed_from", "Call from {name}"),
    ("call.completed_to", "Call to {name}"),
    ("call.missed_from", "Missed call from {name}"),
    ("call.create_contact", "Create contact"),
    ("call.unknown_number", "Unknown number {number}"),
    ("call.recording_attached", "Recording attached to {record}"),
    ("feed.connecting", "Connecting to the phone system…"),
    ("feed.live", "Connected to the phone system"),
    ("feed.polling", "Connected (slow mode)"),
    ("feed.offline", "Phone system unreachable, retrying…"),
    ("errors.settings_header", "callcard settings"),
    ("errors.not_an_object", "The extensions setting could not be read."),
    ("errors.bad_user_id", "\"{user}\" is not a Kommo user."),
    ("errors.not_digits", "Extension \"{extension}\" must be 1 to 16 digits."),
    ("errors.duplicate_extension", "Extension {extension} is given to two users."),
    ("errors.settings_not_saved", "The extensions were not sent to the phone system. Please save again."),
    ("settings.hint", "Enter each manager's PBX extension (digits only). Leave it empty for managers without a phone."),
    ("settings.check_connection", "Check connection"),
    ("settings.checking", "Checking…"),
    ("settings.connection_ok", "Connected: the callcard server accepts this account."),
    ("settings.connection_failed", "The callcard server cannot be reached. Try again in a minute."),
    (
        "settings.not_authorized",
        "The callcard server has not authorized this account. Reinstall the widget or contact support.",
    ),
    ("settings.status_unknown", "The callcard server is reachable, but did not report this account's status."),
    ("settings.log_mine", "Your call notes"),
    ("settings.log_mine_hint", "Which parts callcard writes into the notes of your calls."),
    ("settings.log_reset", "Use the account's defaults"),
    ("settings.log_account", "Account defaults"),
    (
        "settings.log_account_hint",
        "What every manager's call notes get unless they choose otherwise. Only an account admin can change these.",
    ),
    ("settings.section_agent_note", "Manager's note"),
    ("settings.section_duration", "Duration"),
    ("settings.section_result", "Result"),
    ("settings.section_recording", "Recording link"),
    ("settings.section_transcript", "Transcript"),
    ("settings.section_ai_summary", "AI summary"),
    ("settings.missed_call_task", "A follow-up task for every missed call"),
    ("settings.log_loading", "Loading the call note settings…"),
    ("settings.log_saving", "Saving…"),
    ("settings.log_saved", "Saved."),
    ("settings.log_not_loaded", "The call note settings could not be loaded. Open the settings again to retry."),
    ("settings.log_not_saved", "Not saved: the callcard server could not be reached. Try again."),
    ("settings.log_admin_only", "Only an account admin can change the account defaults."),
    ("summary.title", "Call summary"),
    ("summary.caller", "Caller"),
    ("summary.number", "Number"),
    ("summary.direction", "Direction"),
    ("summary.time", "Time"),
    ("summary.talked", "Duration"),
    ("summary.linked_entity", "Linked record"),
    ("summary.no_entity", "No record linked yet"),
    ("summary.search_label", "Lead or customer"),
    ("summary.search_placeholder", "Search leads, customers, contacts, companies"),
    ("summary.searching", "Searching…"),
    ("summary.no_matches", "Nothing found"),
    ("summary.kind_lead", "Lead"),
    ("summary.kind_customer", "Customer"),
    ("summary.kind_contact", "Contact"),
    ("summary.kind_company", "Company"),
    ("summary.recording", "Recording"),
    ("summary.recording_pending", "Processing the recording…"),
    ("summary.duration", "Duration: {duration}"),
    ("summary.note_label", "Note"),
    ("summary.add_task", "Add a task"),
    ("summary.task_kind", "Task type"),
    ("summary.task_follow_up", "Follow-up"),
    ("summary.task_meeting", "Meeting"),
    ("summary.task_user", "Responsible"),
    ("summary.me", "You"),
    ("summary.responsible", "Responsible: {user}"),
    ("summary.download", "Download"),
    ("summary.position", "{index} of {count}"),
    ("summary.previous", "Previous call"),
    ("summary.next", "Next call"),
    ("summary.no_result_count", "Calls without a result: {count}"),
    ("summary.no_result_open", "Add results"),
    ("summary.task_when", "Due"),
    ("summary.task_text", "Task"),
    ("summary.save", "Save"),
    ("summary.cancel", "Cancel"),
    ("summary.saving", "Saving…"),
    ("summary.saved", "Call result saved"),
    ("summary.queued", "You are offline: the call result will be sent when the connection is back."),
    ("summary.error", "The call result was not saved: {reason}"),
    ("summary.pick_entity", "Choose the record the call belongs on."),
    ("summary.task_text_required", "Describe the task."),
    ("summary.task_when_required", "Choose when the task is due."),
    ("summary.note_too_long", "The note is too long."),
    ("summary.subject_label", "Subject"),
    ("summary.subject_too_long", "The subject is too long."),
    ("report.logged", "Logged on {record}"),
    ("report.failed", "Not logged on {record}: {reason}"),
    ("report.retry", "Retry"),
    ("report.close", "Close"),
    ("dial.header", "Click-to-call"),
    ("dial.calling", "Calling {number}… Pick up your phone."),
    ("dial.failed", "The call to {number} was not placed: {reason}"),
    ("dial.no_number", "There is no phone number to call."),
];

/// The built-in English text for a key.
pub fn english(key: &str) -> Option<&'static str> {
    ENGLISH.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// The i18n key naming an entity kind.
pub fn kind_key(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Lead => "summary.kind_lead",
        EntityKind::Customer => "summary.kind_customer",
        EntityKind::Contact => "summary.kind_contact",
        EntityKind::Company => "summary.kind_company",
    }
}

/// Looks up translated strings.
pub trait Texts {
    /// The translation of `key` (`group.name`), if the host has one.
    fn lookup(&self, key: &str) -> Option<String>;

    /// The translation, else the English text, else the key itself.
    fn text(&self, key: &str) -> String {
        self.lookup(key)
            .filter(|s| !s.is_empty())
            .or_else(|| english(key).map(str::to_owned))
            .unwrap_or_else(|| key.to_owned())
    }

    /// [`Texts::text`] with `{placeholder}`s filled.
    fn fill(&self, key: &str, vars: &[(&str, &str)]) -> String {
        fill(&self.text(key), vars)
    }
}

/// No translations: English everywhere.
pub struct English;

impl Texts for English {
    fn lookup(&self, _key: &str) -> Option<String> {
        None
    }
}

impl Texts for HashMap<String, String> {
    fn lookup(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

/// Every key of [`ENGLISH`] resolved once through `texts`: a plain,
/// thread-safe value the views can hold (the texts in [`ENGLISH`]'s order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Translations(Vec<String>);

impl Translations {
    pub fn resolve(texts: &dyn Texts) -> Self {
        Self(ENGLISH.iter().map(|(k, _)| texts.text(k)).collect())
    }
}

impl Texts for Translations {
    fn lookup(&self, key: &str) -> Option<String> {
        let i = ENGLISH.iter().position(|(k, _)| *k == key)?;
        self.0.get(i).cloned()
    }
}

/// Replaces each `{name}` in `template` with its value (in one pass, so a
/// value containing `{other}` is left as it is).
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(fill("Call from {name}", &[("name", "{number}")]), "Call from {number}");
        assert_eq!(fill("{a}-{b}-{c}", &[("a", "1"), ("b", "2")]), "1-2-{c}");
        assert_eq!(fill("open { brace", &[]), "open { brace");
    }

    #[test]
    fn translations_win_and_english_is_the_fallback() {
        let mut es = HashMap::new();
        es.insert("call.incoming".to_owned(), "Llamada entrante".to_owned());
        es.insert("call.outgoing".to_owned(), String::new());
        assert_eq!(es.text("call.incoming"), "Llamada entrante");
        assert_eq!(es.text("call.outgoing"), "Outgoing call");
        assert_eq!(es.text("no.such"), "no.such");
    }

    /// The shipped locale files, as Kommo gets them.
    const LOCALES: &[(&str, &str)] = &[
        ("en", include_str!("../../i18n/en.json")),
        ("es", include_str!("../../i18n/es.json")),
        ("pt", include_str!("../../i18n/pt.json")),
        ("tr", include_str!("../../i18n/tr.json")),
        ("id", include_str!("../../i18n/id.json")),
        ("ru", include_str!("../../i18n/ru.json")),
    ];

    /// The `{name}` placeholders of a text.
    fn placeholders(text: &str) -> std::collections::BTreeSet<&str> {
        let mut out = std::collections::BTreeSet::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            let name = &after[..close];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.insert(name);
            }
            rest = &after[close + 1..];
        }
        out
    }

    /// `group.name` in a locale file, walked the way the Kommo wrapper does.
    fn locale_text<'a>(root: &'a serde_json::Value, key: &str) -> Option<&'a str> {
        key.split('.').try_fold(root, |node, part| node.get(part))?.as_str()
    }

    #[test]
    fn every_string_is_translated_in_every_locale() {
        let mut problems = Vec::new();
        for (locale, json) in LOCALES {
            let root: serde_json::Value =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("i18n/{locale}.json is not JSON: {e}"));
            for (key, english) in ENGLISH {
                let Some(text) = locale_text(&root, key).filter(|t| !t.trim().is_empty()) else {
                    problems.push(format!("i18n/{locale}.json: {key} is missing or empty"));
                    continue;
                };
                if placeholders(text) != placeholders(english) {
                    problems.push(format!(
                        "i18n/{locale}.json: {key} has placeholders {:?}, English has {:?}",
                        placeholders(text),
                        placeholders(english)
                    ));
                }
                if *locale == "en" && text != *english {
                    problems.push(format!("i18n/en.json: {key} is {text:?}, the built-in English is {english:?}"));
                }
            }
        }
        assert!(problems.is_empty(), "locale files out of step with ENGLISH:\n{}", problems.join("\n"));
    }

    #[test]
    fn translations_hold_every_key() {
        let mut es = HashMap::new();
        es.insert("call.incoming".to_owned(), "Llamada entrante".to_owned());
        let t = Translations::resolve(&es);
        assert_eq!(t.text("call.incoming"), "Llamada entrante");
        assert_eq!(t.text("summary.title"), "Call summary");
        assert_eq!(t.lookup("no.such"), None);
        assert_eq!(Translations::default().text("summary.title"), "Call summary");
    }

    #[test]
    fn keys_are_unique_and_grouped() {
        for (i, (k, _)) in ENGLISH.iter().enumerate() {
            assert!(k.contains('.'), "{k} has no group");
            assert!(ENGLISH[i + 1..].iter().all(|(o, _)| o != k), "{k} twice");
        }
    }
}
