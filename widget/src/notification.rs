//! What the widget hands to `APP.notifications`, composed from a call.
//!
//! - [`CallPopup`] for `show_notification({text:{header, text}, type:"call"})`
//!   while a call rings: the header says incoming or outgoing in the user's
//!   language, the text names the caller's record (linking to its card), its
//!   kind and the number when caller ID knows them, says "Unknown number"
//!   and offers "Create contact" when it knows nobody, else is the number.
//!   Shown again when caller ID answers after the first pop-up (see
//!   [`crate::ledger::Notice::Identified`]).
//! - [`CompletedCall`] for `add_call({...})` when a call ends, following
//!   Kommo's documented example (`call-notification.txt`): `from` is the
//!   other party (Kommo: "the contact name or phone number"), `to` the
//!   manager's extension; `header` is "Internal number: …" when `from` has
//!   fewer than 4 characters (`from.length < 4`), else "Incoming call: …" or
//!   "Outgoing call: …"; `element` points at the record the call is logged
//!   on (or caller ID's record), and then the text ends with the example's
//!   "Go to the contact card", linking to that card; without one, the text ends with a link to
//!   create a contact for the number; `link` is the recording; `date` is
//!   Unix milliseconds (the example passes `Date.now()`).
//!
//! Every name and number is HTML-escaped here (see [`crate::escape`]), so the
//! values are safe whatever the host page does with them.

use crate::directory::Directory;
use crate::escape::{encode_component, escape_html, safe_link};
use crate::texts::{kind_key, Texts};
use callcard_calls::feed::{CallView, CallerId};
use callcard_calls::{Direction, EntityKind, EntityRef, PhoneNumber};
use serde::Serialize;

/// The argument of `show_message` / `show_message_error`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Message<'a> {
    pub header: &'a str,
    pub text: &'a str,
}

/// `{header, text}` of a pop-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PopupText {
    pub header: String,
    pub text: String,
}

/// The argument of `APP.notifications.show_notification`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CallPopup {
    pub text: PopupText,
    /// Always `"call"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Unix seconds of the first ring, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<i64>,
}

/// `element` of `add_call`: the record a click opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct NotificationElement {
    pub id: u64,
    /// `contact`, `lead`, `company` or `customer`.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl From<EntityRef> for NotificationElement {
    fn from(e: EntityRef) -> Self {
        Self { id: e.id, kind: e.kind.as_str() }
    }
}

/// The argument of `APP.notifications.add_call`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CompletedCall {
    pub text: String,
    pub header: String,
    /// Unix milliseconds of the end of the call, as `Date.now()`.
    pub date: i64,
    pub from: String,
    pub to: String,
    /// Seconds talked (zero for a call nobody took).
    pub duration: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<NotificationElement>,
}

/// The caller's name (when caller ID found one) or the external number, escaped.
pub fn display_party(view: &CallView) -> String {
    match &view.caller {
        CallerId::Known { name, .. } if !name.trim().is_empty() => escape_html(name.trim()),
        _ => escape_html(view.call.external_number.as_str()),
    }
}

/// Where a record's card is in Kommo: `/leads/detail/5`. These are
/// amoCRM's card paths, which Kommo kept as far as we know; unconfirmed by
/// the seeds (the host page routes them to its inspector like Kommo's router).
pub fn record_card_path(entity: EntityRef) -> String {
    let section = match entity.kind {
        EntityKind::Lead => "leads",
        EntityKind::Contact => "contacts",
        EntityKind::Company => "companies",
        EntityKind::Customer => "customers",
    };
    format!("/{section}/detail/{}", entity.id)
}

/// `<a href="/contacts/detail/31">label</a>`: the label is escaped here.
fn record_link(entity: EntityRef, label: &str) -> String {
    format!(
        "<a class=\"callcard-record\" href=\"{}\" data-kind=\"{}\">{}</a>",
        record_card_path(entity),
        entity.kind.as_str(),
        escape_html(label)
    )
}

/// Who a ringing call is with, as HTML for the pop-up's text:
/// - caller ID found a record: its name linking to its card, its kind, the
///   number (`<a …>Maria Gonzalez</a> · Contact · +18305703077`); when the
///   local caller index also names the contact or company holding the
///   number and the record is its lead or customer, the holder comes first
///   and the deal after it (`<a …>Maria Gonzalez</a> · Contact · +1830… ·
///   <a …>Website redesign</a> · Lead`); a contact's company, when the index
///   knows it, follows the contact's name, linking to its card
///   (`<a …>Maria Gonzalez</a> · <a …>Gonzalez Design Studio</a> · Contact · …`);
/// - no record has the number: "Unknown number …" and a "Create contact" link;
/// - caller ID has not answered yet: the number.
///
/// One segment per fact, so more facts about the caller (a lead's status)
/// are one more segment.
pub fn ringing_party(view: &CallView, texts: &dyn Texts, directory: &Directory) -> String {
    let number = &view.call.external_number;
    match &view.caller {
        CallerId::Known { name, entity, holder, company, deal } if !name.trim().is_empty() => {
            let kind = |e: &EntityRef| escape_html(&texts.text(kind_key(e.kind)));
            // The company a contact belongs to, right after the contact's name.
            let company = |contact: &EntityRef| {
                company
                    .as_ref()
                    .filter(|c| contact.kind == EntityKind::Contact && !c.name.trim().is_empty())
                    .map(|c| record_link(c.entity, c.name.trim()))
            };
            // A lead's pipeline stage, by name, once Kommo's pipelines were read.
            let status = deal.and_then(|d| directory.status_name(d.pipeline_id, d.status_id));
            let record: Vec<String> = [record_link(*entity, name.trim()), kind(entity)]
                .into_iter()
                .chain(status.map(|s| escape_html(&s)))
                .collect();
            match holder.as_ref().filter(|h| h.entity != *entity && !h.name.trim().is_empty()) {
                // The person (or company) first, then the deal Kommo's rule picked.
                Some(h) => std::iter::once(record_link(h.entity, h.name.trim()))
                    .chain(company(&h.entity))
                    .chain([kind(&h.entity), escape_html(number.as_str())])
                    .chain(record)
                    .collect::<Vec<_>>()
                    .join(" · "),
                None => std::iter::once(record[0].clone())
                    .chain(company(entity))
                    .chain([record[1].clone(), escape_html(number.as_str())])
                    .chain(record.into_iter().skip(2))
                    .collect::<Vec<_>>()
                    .join(" · "),
            }
        }
        CallerId::Unknown if !number.looks_internal() => format!(
            "{} {}",
            texts.fill("call.unknown_number", &[("number", &escape_html(number.as_str()))]),
            create_contact_link(number, texts)
        ),
        _ => escape_html(number.as_str()),
    }
}

/// The page where Kommo creates a contact. The path is amoCRM's; whether
/// Kommo pre-fills the phone from `?phone=` is unconfirmed (the number is
/// also in the notification, so nothing is lost if it does not).
pub const CREATE_CONTACT_PATH: &str = "/contacts/add/";

/// The record a call is logged on, as a message names it: its kind and
/// name (escaped) where caller ID named it, else its kind and id
/// ("Lead Website redesign", "Lead #5").
pub fn logged_record(view: &CallView, texts: &dyn Texts) -> Option<String> {
    let entity = view.entity?;
    let kind = texts.text(kind_key(entity.kind));
    let name = match &view.caller {
        CallerId::Known { name, entity: e, .. } if *e == entity && !name.trim().is_empty() => Some(name.trim()),
        CallerId::Known { holder: Some(h), .. } if h.entity == entity && !h.name.trim().is_empty() => {
            Some(h.name.trim())
        }
        _ => None,
    };
    Some(match name {
        Some(name) => format!("{} {}", escape_html(&kind), escape_html(name)),
        None => format!("{} #{}", escape_html(&kind), entity.id),
    })
}

/// The message for a recording that arrived after the call was announced
/// (`show_message`'s text): "Recording attached to Lead Website redesign".
pub fn recording_attached(view: &CallView, texts: &dyn Texts) -> Option<String> {
    let record = logged_record(view, texts)?;
    Some(texts.fill("call.recording_attached", &[("record", &record)]))
}

/// `<a href="/contacts/add/?phone=…">Create contact</a>`, for a caller no
/// record matched; the number is percent-encoded, the label escaped.
pub fn create_contact_link(number: &PhoneNumber, texts: &dyn Texts) -> String {
    format!(
        "<a href=\"{CREATE_CONTACT_PATH}?phone={}\">{}</a>",
        encode_component(number.as_str()),
        escape_html(&texts.text("call.create_contact"))
    )
}

/// The pop-up for a ringing call.
pub fn ringing_popup(view: &CallView, texts: &dyn Texts, directory: &Directory) -> CallPopup {
    let header = match view.call.direction {
        Direction::Inbound => texts.text("call.incoming"),
        Direction::Outbound => texts.text("call.outgoing"),
    };
    CallPopup {
        text: PopupText { header, text: ringing_party(view, texts, directory) },
        kind: "call",
        date: view.call.ringing_at.map(|ms| ms.div_euclid(1000)),
    }
}

/// The record a completed-call notification opens: where the call is logged,
/// else caller ID's record.
pub fn call_element(view: &CallView) -> Option<EntityRef> {
    view.entity.or(match &view.caller {
        CallerId::Known { entity, .. } => Some(*entity),
        _ => None,
    })
}

/// The completed-call notification for an ended call; `now_ms` dates a call
/// the PBX never timed.
pub fn completed_call(view: &CallView, texts: &dyn Texts, now_ms: i64) -> CompletedCall {
    let call = &view.call;
    // Kommo's `from` is the other party, `to` the manager, whichever way the call went.
    let from_raw = call.external_number.as_str();
    let from = escape_html(from_raw);
    let to = escape_html(&call.extension);
    // Kommo's rule, to the letter: `from.length < 4` is an internal number
    // (counted in characters of what the PBX sent, not digits).
    let header_key = if from_raw.chars().count() < 4 {
        "call.header_internal"
    } else {
        match call.direction {
            Direction::Inbound => "call.header_incoming",
            Direction::Outbound => "call.header_outgoing",
        }
    };
    let header = texts.fill(header_key, &[("number", &from)]);
    let party = display_party(view);
    let connected = call.ending.as_ref().is_some_and(|e| e.outcome.was_connected());
    let body = match (call.direction, connected) {
        (Direction::Inbound, true) => texts.fill("call.completed_from", &[("name", &party)]),
        (Direction::Inbound, false) => texts.fill("call.missed_from", &[("name", &party)]),
        (Direction::Outbound, _) => texts.fill("call.completed_to", &[("name", &party)]),
    };
    let widget = texts.text("widget.name");
    let ended_ms = call.ending.as_ref().map_or(now_ms, |e| e.at);
    let element = call_element(view);
    let number = &call.external_number;
    // Nobody in the CRM has this (outside) number: offer to create the contact.
    let tail = match element {
        // The example's "Go to the contact card": a click on the notification opens `element`.
        Some(e) => format!(" {}", record_link(e, &texts.text("call.go_to_card"))),
        None if !number.as_str().trim().is_empty() && !number.looks_internal() => {
            format!(" {}", create_contact_link(number, texts))
        }
        None => String::new(),
    };
    CompletedCall {
        text: format!("{}: {body}{tail}", escape_html(&widget)),
        header,
        date: ended_ms,
        from,
        to,
        duration: call.billable_seconds(),
        link: call.recording_url().and_then(safe_link),
        element: element.map(Into::into),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::texts::English;
    use callcard_calls::{Call, CallEvent, CallEventKind, EntityKind, Outcome};
    use std::collections::HashMap;

    pub(crate) fn view(direction: Direction, number: &str, kinds: &[CallEventKind]) -> CallView {
        let mut at = 1_763_691_600_000;
        let mut call: Option<Call> = None;
        for kind in kinds {
            let e = CallEvent {
                kind: kind.clone(),
                call_id: "c1".into(),
                direction,
                external_number: number.into(),
                extension: "101".into(),
                occurred_at: at,
            };
            at += 10_000;
            match &mut call {
                None => call = Some(Call::from_event(&e)),
                Some(c) => {
                    c.apply(&e);
                }
            }
        }
        CallView::new(call.expect("at least one event"), Some(8320148))
    }

    pub(crate) fn ended(outcome: Outcome, duration: u32) -> CallEventKind {
        CallEventKind::Ended { duration, outcome }
    }

    fn known(name: &str) -> CallerId {
        CallerId::known(name, EntityRef::new(EntityKind::Contact, 77))
    }

    #[test]
    fn a_leads_status_is_named_once_the_pipelines_are_known() {
        let mut v = view(Direction::Inbound, "+18305703077", &[CallEventKind::Ringing]);
        let lead = EntityRef::new(EntityKind::Lead, 31);
        v.caller = CallerId::Known {
            name: "Website redesign".into(),
            entity: lead,
            holder: Some(callcard_calls::feed::CallerHolder {
                name: "Maria Gonzalez".into(),
                entity: EntityRef::new(EntityKind::Contact, 7),
            }),
            company: None,
            deal: Some(callcard_calls::feed::CallerDeal { status_id: 20, pipeline_id: 3, responsible_user_id: 9 }),
        };
        let mut directory = Directory::default();
        directory.statuses.insert((3, 20), "Initial <contact>".into());
        let text = ringing_popup(&v, &English, &directory).text.text;
        assert!(text.ends_with("Website redesign</a> · Lead · Initial &lt;contact&gt;"), "{text}");
        assert!(text.contains("Maria Gonzalez</a> · Contact · +18305703077"), "{text}");
        let without = ringing_popup(&v, &English, &Directory::default()).text.text;
        assert!(without.ends_with("Website redesign</a> · Lead"), "unknown stage: left out, {without}");
    }

    #[test]
    fn a_late_recording_names_the_record_it_went_to() {
        let mut v = view(Direction::Inbound, "+18305703077", &[ended(Outcome::Answered, 5)]);
        assert_eq!(recording_attached(&v, &English), None, "not logged yet");
        let lead = EntityRef::new(EntityKind::Lead, 5);
        v.entity = Some(lead);
        assert_eq!(recording_attached(&v, &English).as_deref(), Some("Recording attached to Lead #5"));
        v.caller = CallerId::known("Quote <b>", lead);
        assert_eq!(recording_attached(&v, &English).as_deref(), Some("Recording attached to Lead Quote &lt;b&gt;"));
    }

    #[test]
    fn ringing_popup_names_the_known_caller() {
        let mut v = view(Direction::Inbound, "+18305703077", &[CallEventKind::Ringing]);
        let p = ringing_popup(&v, &English, &Directory::default());
        assert_eq!(p.text, PopupText { header: "Incoming call".into(), text: "+18305703077".into() });
        assert_eq!(p.kind, "call");
        assert_eq!(p.date, Some(1_763_691_600));
        v.caller = known("Bruno <b>Costa</b>");
        assert_eq!(
            ringing_popup(&v, &English, &Directory::default()).text.text,
            "<a class=\"callcard-record\" href=\"/contacts/detail/77\" data-kind=\"contact\">Bruno &lt;b&gt;Costa&lt;/b&gt;</a> · Contact · +18305703077"
        );
        v.caller = CallerId::known("Quote for ACME", EntityRef::new(EntityKind::Lead, 5));
        assert_eq!(
            ringing_popup(&v, &English, &Directory::default()).text.text,
            "<a class=\"callcard-record\" href=\"/leads/detail/5\" data-kind=\"lead\">Quote for ACME</a> · Lead · +18305703077"
        );
        // The caller index names the person and the lead its rule picked.
        v.caller = CallerId::Known {
            name: "Website redesign".into(),
            entity: EntityRef::new(EntityKind::Lead, 31),
            holder: Some(callcard_calls::feed::CallerHolder {
                entity: EntityRef::new(EntityKind::Contact, 7),
                name: "Maria Gonzalez".into(),
            }),
            company: None,
            deal: Some(callcard_calls::feed::CallerDeal { status_id: 20, pipeline_id: 3, responsible_user_id: 9 }),
        };
        assert_eq!(
            ringing_popup(&v, &English, &Directory::default()).text.text,
            "<a class=\"callcard-record\" href=\"/contacts/detail/7\" data-kind=\"contact\">Maria Gonzalez</a> · Contact · \
             +18305703077 · <a class=\"callcard-record\" href=\"/leads/detail/31\" data-kind=\"lead\">Website redesign</a> · Lead"
        );
        // ...and her company after her name, as text.
        let studio = callcard_calls::feed::CallerHolder {
            entity: EntityRef::new(EntityKind::Company, 9),
            name: "Gonzalez <Design> Studio".into(),
        };
        if let CallerId::Known { company, .. } = &mut v.caller {
            *company = Some(studio.clone());
        }
        assert_eq!(
            ringing_popup(&v, &English, &Directory::default()).text.text,
            "<a class=\"callcard-record\" href=\"/contacts/detail/7\" data-kind=\"contact\">Maria Gonzalez</a> · \
             <a class=\"callcard-record\" href=\"/companies/detail/9\" data-kind=\"company\">Gonzalez &lt;Design&gt; Studio</a> · \
             Contact · +18305703077 · \
             <a class=\"callcard-record\" href=\"/leads/detail/31\" data-kind=\"lead\">Website redesign</a> · Lead"
        );
        // A contact with no active lead is the answer itself: the same order.
        v.caller = CallerId::Known {
            name: "Maria Gonzalez".into(),
            entity: EntityRef::new(EntityKind::Contact, 7),
            holder: None,
            company: Some(studio),
            deal: None,
        };
        assert_eq!(
            ringing_popup(&v, &English, &Directory::default()).text.text,
            "<a class=\"callcard-record\" href=\"/contacts/detail/7\" data-kind=\"contact\">Maria Gonzalez</a> · \
             <a class=\"callcard-record\" href=\"/companies/detail/9\" data-kind=\"company\">Gonzalez &lt;Design&gt; Studio</a> · \
             Contact · +18305703077"
        );
        v.caller = CallerId::Unknown;
        assert_eq!(
            ringing_popup(&v, &English, &Directory::default()).text.text,
            "Unknown number +18305703077 <a href=\"/contacts/add/?phone=%2B18305703077\">Create contact</a>"
        );
        let out = view(Direction::Outbound, "+18305703077", &[CallEventKind::Ringing]);
        assert_eq!(ringing_popup(&out, &English, &Directory::default()).text.header, "Outgoing call");
    }

    #[test]
    fn every_kind_of_record_has_its_card() {
        let path = |kind, id| record_card_path(EntityRef::new(kind, id));
        assert_eq!(path(EntityKind::Contact, 1), "/contacts/detail/1");
        assert_eq!(path(EntityKind::Company, 2), "/companies/detail/2");
        assert_eq!(path(EntityKind::Lead, 3), "/leads/detail/3");
        assert_eq!(path(EntityKind::Customer, 4), "/customers/detail/4");
    }

    #[test]
    fn an_unknown_colleague_is_just_the_extension() {
        let mut v = view(Direction::Inbound, "117", &[CallEventKind::Ringing]);
        v.caller = CallerId::Unknown;
        assert_eq!(
            ringing_popup(&v, &English, &Directory::default()).text.text,
            "117",
            "no contact to create for a colleague"
        );
    }

    #[test]
    fn popup_header_is_translated() {
        let mut es = HashMap::new();
        es.insert("call.incoming".to_owned(), "Llamada entrante".to_owned());
        let v = view(Direction::Inbound, "+18305703077", &[CallEventKind::Ringing]);
        assert_eq!(ringing_popup(&v, &es, &Directory::default()).text.header, "Llamada entrante");
    }

    #[test]
    fn popup_json_has_kommos_shape() {
        let v = view(Direction::Inbound, "+18305703077", &[CallEventKind::Ringing]);
        let popup = ringing_popup(&v, &English, &Directory::default());
        let json = serde_json::to_value(&popup).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"text": {"header": "Incoming call", "text": "+18305703077"}, "type": "call", "date": 1_763_691_600})
        );
        let undated = CallPopup { date: None, ..popup };
        assert_eq!(serde_json::to_value(&undated).unwrap().get("date"), None, "no date rather than null");
    }

    #[test]
    fn completed_inbound_call_follows_the_documented_example() {
        let mut v = view(
            Direction::Inbound,
            "+18305703077",
            &[
                CallEventKind::Ringing,
                CallEventKind::Answered,
                ended(Outcome::Answered, 40),
                CallEventKind::RecordingReady { recording_url: "https://pbx.example/r.mp3".into() },
            ],
        );
        v.caller = known("Anna & Co");
        v.entity = Some(EntityRef::new(EntityKind::Lead, 5));
        let n = completed_call(&v, &English, 0);
        assert_eq!(n.header, "Incoming call: +18305703077");
        assert_eq!(n.from, "+18305703077");
        assert_eq!(n.to, "101");
        assert_eq!(n.duration, 40);
        assert_eq!(n.link.as_deref(), Some("https://pbx.example/r.mp3"));
        assert_eq!(n.element, Some(NotificationElement { id: 5, kind: "lead" }));
        assert_eq!(n.text, "callcard: Call from Anna &amp; Co <a class=\"callcard-record\" href=\"/leads/detail/5\" data-kind=\"lead\">Go to the contact card</a>");
        assert_eq!(n.date, 1_763_691_620_000, "milliseconds, as Date.now()");
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(json["element"], serde_json::json!({"id": 5, "type": "lead"}));
    }

    #[test]
    fn short_from_is_an_internal_number() {
        let v = view(Direction::Inbound, "117", &[CallEventKind::Ringing, ended(Outcome::Missed, 9)]);
        let n = completed_call(&v, &English, 0);
        assert_eq!(n.header, "Internal number: 117");
        assert_eq!(n.duration, 0, "a missed call bills nothing");
        assert_eq!(n.text, "callcard: Missed call from 117", "no contact to create for a colleague");
        assert_eq!(n.link, None);
        assert_eq!(n.element, None);
        // An outbound call: `from` is still the other party, so it is not "Internal number: 101".
        let out = view(Direction::Outbound, "+18305703077", &[ended(Outcome::Answered, 3)]);
        let n = completed_call(&out, &English, 0);
        assert_eq!((n.from.as_str(), n.to.as_str()), ("+18305703077", "101"));
        assert_eq!(n.header, "Outgoing call: +18305703077");
        assert_eq!(
            n.text,
            "callcard: Call to +18305703077 <a href=\"/contacts/add/?phone=%2B18305703077\">Create contact</a>"
        );
    }

    #[test]
    fn internal_means_fewer_than_four_characters_not_digits() {
        // "+1 2" has two digits but four characters: not internal by Kommo's rule.
        let four = view(Direction::Inbound, "+1 2", &[ended(Outcome::Answered, 3)]);
        assert_eq!(completed_call(&four, &English, 0).header, "Incoming call: +1 2");
        let three = view(Direction::Outbound, "1-2", &[ended(Outcome::Answered, 3)]);
        assert_eq!(completed_call(&three, &English, 0).header, "Internal number: 1-2");
        let long_outbound = view(Direction::Outbound, "1234", &[ended(Outcome::Answered, 3)]);
        assert_eq!(completed_call(&long_outbound, &English, 0).header, "Outgoing call: 1234");
    }

    #[test]
    fn an_undated_end_is_dated_now_in_milliseconds() {
        let mut v = view(Direction::Inbound, "+18305703077", &[CallEventKind::Ringing]);
        v.call.ending = None;
        assert_eq!(completed_call(&v, &English, 1_763_700_000_123).date, 1_763_700_000_123);
    }

    #[test]
    fn an_unknown_number_gets_a_create_contact_link() {
        let v = view(Direction::Inbound, "+1 (830) 570", &[ended(Outcome::NoAnswer, 0)]);
        let n = completed_call(&v, &English, 0);
        assert_eq!(n.element, None);
        assert_eq!(n.header, "Incoming call: +1 (830) 570");
        assert_eq!(
            n.text,
            "callcard: Missed call from +1 (830) 570 <a href=\"/contacts/add/?phone=%2B1%20%28830%29%20570\">Create contact</a>"
        );
        let mut es = HashMap::new();
        es.insert("call.create_contact".to_owned(), "Crear <contacto>".to_owned());
        assert!(completed_call(&v, &es, 0).text.ends_with(">Crear &lt;contacto&gt;</a>"));
    }

    #[test]
    fn caller_id_record_is_the_fallback_element_and_hostile_values_are_escaped() {
        let mut v = view(
            Direction::Inbound,
            "<script>1234</script>",
            &[
                ended(Outcome::Answered, 5),
                CallEventKind::RecordingReady { recording_url: "javascript:alert(1)".into() },
            ],
        );
        v.caller = known("\"><img onerror=x>");
        let n = completed_call(&v, &English, 0);
        assert_eq!(n.element, Some(NotificationElement { id: 77, kind: "contact" }));
        assert_eq!(n.from, "&lt;script&gt;1234&lt;/script&gt;");
        assert_eq!(n.header, "Incoming call: &lt;script&gt;1234&lt;/script&gt;");
        assert_eq!(n.text, "callcard: Call from &quot;&gt;&lt;img onerror=x&gt; <a class=\"callcard-record\" href=\"/contacts/detail/77\" data-kind=\"contact\">Go to the contact card</a>");
        assert_eq!(n.link, None);
        assert_eq!(serde_json::to_value(&n).unwrap().get("link"), None);
    }
}
