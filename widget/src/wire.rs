//! The JSON shapes of the `callcard-calls` types the widget reads and
//! writes, by hand on top of [`crate::json`] (no serde in the bundle).
//!
//! Each reader accepts what the type's serde derive accepts: unknown members
//! are ignored, a missing or `null` `Option` is `None`, a missing
//! `#[serde(default)]` member takes its default, anything else missing or of
//! the wrong type refuses the whole value. Each writer writes the bytes
//! `serde_json` writes for the type (unit tests compare both ways against
//! serde, so the backend's wire format and stored widget data stay as they
//! were).

use crate::json::{Json, Writer};
use callcard_calls::call::{Ending, Recording};
use callcard_calls::feed::{CallView, CallerId, CurrentCalls, FeedEvent, FeedMessage, PollAnswer, Ticket};
use callcard_calls::result::{CallResult, TaskDraft};
use callcard_calls::{Call, CallStatus, Direction, EntityKind, EntityRef, Outcome, PhoneNumber};

// ---------------------------------------------------------------- reading

/// A required string member.
pub fn string(j: &Json, key: &str) -> Option<String> {
    j.get(key)?.as_str().map(str::to_owned)
}

/// An `Option` member (with or without `#[serde(default)]`): missing or
/// `null` is `None`, anything else must read.
pub fn opt<T>(j: &Json, key: &str, read: impl Fn(&Json) -> Option<T>) -> Option<Option<T>> {
    match j.get(key) {
        None | Some(Json::Null) => Some(None),
        Some(v) => read(v).map(Some),
    }
}

/// A `#[serde(default)]` member: missing is the default, anything else must read.
pub fn or_default<T: Default>(j: &Json, key: &str, read: impl Fn(&Json) -> Option<T>) -> Option<T> {
    match j.get(key) {
        None => Some(T::default()),
        Some(v) => read(v),
    }
}

/// An array of which every element must read.
pub fn list<T>(j: &Json, read: impl Fn(&Json) -> Option<T>) -> Option<Vec<T>> {
    j.as_array()?.iter().map(read).collect()
}

fn named<T: Copy>(j: &Json, all: &[T], name: impl Fn(T) -> &'static str) -> Option<T> {
    let s = j.as_str()?;
    all.iter().copied().find(|v| name(*v) == s)
}

pub fn direction(j: &Json) -> Option<Direction> {
    named(j, &[Direction::Inbound, Direction::Outbound], Direction::as_str)
}

pub fn outcome(j: &Json) -> Option<Outcome> {
    Outcome::parse(j.as_str()?)
}

pub fn status_name(s: CallStatus) -> &'static str {
    match s {
        CallStatus::Ringing => "ringing",
        CallStatus::Answered => "answered",
        CallStatus::Ended => "ended",
    }
}

pub fn status(j: &Json) -> Option<CallStatus> {
    named(j, &[CallStatus::Ringing, CallStatus::Answered, CallStatus::Ended], status_name)
}

pub fn entity_kind(j: &Json) -> Option<EntityKind> {
    named(j, &[EntityKind::Contact, EntityKind::Lead, EntityKind::Company, EntityKind::Customer], EntityKind::as_str)
}

pub fn entity_ref(j: &Json) -> Option<EntityRef> {
    Some(EntityRef::new(entity_kind(j.get("kind")?)?, j.get("id")?.as_u64()?))
}

pub fn caller_id(j: &Json) -> Option<CallerId> {
    match j.get("state")?.as_str()? {
        "pending" => Some(CallerId::Pending),
        "unknown" => Some(CallerId::Unknown),
        "known" => Some(CallerId::Known { name: string(j, "name")?, entity: entity_ref(j.get("entity")?)? }),
        _ => None,
    }
}

fn ending(j: &Json) -> Option<Ending> {
    let duration = j.get("duration")?.as_u64()?;
    Some(Ending {
        at: j.get("at")?.as_i64()?,
        duration: u32::try_from(duration).ok()?,
        outcome: outcome(j.get("outcome")?)?,
    })
}

fn recording(j: &Json) -> Option<Recording> {
    Some(Recording { at: j.get("at")?.as_i64()?, url: string(j, "url")? })
}

pub fn call(j: &Json) -> Option<Call> {
    Some(Call {
        call_id: string(j, "call_id")?,
        direction: direction(j.get("direction")?)?,
        external_number: PhoneNumber::new(string(j, "external_number")?),
        extension: string(j, "extension")?,
        ringing_at: opt(j, "ringing_at", Json::as_i64)?,
        answered_at: opt(j, "answered_at", Json::as_i64)?,
        ending: opt(j, "ending", ending)?,
        recording: opt(j, "recording", recording)?,
    })
}

/// A [`CallView`]: the call's members flattened beside the view's own.
pub fn call_view(j: &Json) -> Option<CallView> {
    Some(CallView {
        call: call(j)?,
        status: status(j.get("status")?)?,
        user_id: opt(j, "user_id", Json::as_u64)?,
        caller: or_default(j, "caller", caller_id)?,
        entity: opt(j, "entity", entity_ref)?,
        has_result: or_default(j, "has_result", Json::as_bool)?,
        result_error: opt(j, "result_error", |v| v.as_str().map(str::to_owned))?,
    })
}

pub fn feed_event(j: &Json) -> Option<FeedEvent> {
    Some(FeedEvent { offset: j.get("offset")?.as_u64()?, call: call_view(j.get("call")?)? })
}

/// A WebSocket frame: `{"type": "event" | "gap" | "heartbeat", …}`.
pub fn feed_message(j: &Json) -> Option<FeedMessage> {
    match j.get("type")?.as_str()? {
        "event" => feed_event(j).map(FeedMessage::Event),
        "gap" => Some(FeedMessage::Gap { latest_offset: j.get("latest_offset")?.as_u64()? }),
        "heartbeat" => Some(FeedMessage::Heartbeat { latest_offset: j.get("latest_offset")?.as_u64()? }),
        _ => None,
    }
}

pub fn poll_answer(j: &Json) -> Option<PollAnswer> {
    Some(PollAnswer {
        events: list(j.get("events")?, feed_event)?,
        gap: j.get("gap")?.as_bool()?,
        latest_offset: j.get("latest_offset")?.as_u64()?,
    })
}

pub fn current_calls(j: &Json) -> Option<CurrentCalls> {
    Some(CurrentCalls { calls: list(j.get("calls")?, call_view)?, latest_offset: j.get("latest_offset")?.as_u64()? })
}

pub fn ticket(j: &Json) -> Option<Ticket> {
    Some(Ticket {
        ticket: string(j, "ticket")?,
        account_id: j.get("account_id")?.as_u64()?,
        user_id: j.get("user_id")?.as_u64()?,
        expires_at: j.get("expires_at")?.as_i64()?,
    })
}

fn task_draft(j: &Json) -> Option<TaskDraft> {
    Some(TaskDraft { complete_till: j.get("complete_till")?.as_i64()?, text: string(j, "text")? })
}

pub fn call_result(j: &Json) -> Option<CallResult> {
    Some(CallResult {
        entity: entity_ref(j.get("entity")?)?,
        note: or_default(j, "note", |v| v.as_str().map(str::to_owned))?,
        task: opt(j, "task", task_draft)?,
    })
}

// ---------------------------------------------------------------- writing

pub fn write_entity_ref(w: &mut Writer, e: &EntityRef) {
    w.open().key("kind").str(e.kind.as_str()).key("id").u64(e.id).close();
}

fn write_caller_id(w: &mut Writer, c: &CallerId) {
    w.open().key("state");
    match c {
        CallerId::Pending => {
            w.str("pending");
        }
        CallerId::Unknown => {
            w.str("unknown");
        }
        CallerId::Known { name, entity } => {
            w.str("known").key("name").str(name).key("entity");
            write_entity_ref(w, entity);
        }
    }
    w.close();
}

/// The members of a [`Call`] (inside an open object).
fn write_call_members(w: &mut Writer, c: &Call) {
    w.key("call_id").str(&c.call_id);
    w.key("direction").str(c.direction.as_str());
    w.key("external_number").str(c.external_number.as_str());
    w.key("extension").str(&c.extension);
    w.key("ringing_at").opt_i64(c.ringing_at);
    w.key("answered_at").opt_i64(c.answered_at);
    w.key("ending");
    match &c.ending {
        Some(e) => w
            .open()
            .key("at")
            .i64(e.at)
            .key("duration")
            .u64(e.duration.into())
            .key("outcome")
            .str(e.outcome.as_str())
            .close(),
        None => w.null(),
    };
    w.key("recording");
    match &c.recording {
        Some(r) => w.open().key("at").i64(r.at).key("url").str(&r.url).close(),
        None => w.null(),
    };
}

pub fn write_call_view(w: &mut Writer, v: &CallView) {
    w.open();
    write_call_members(w, &v.call);
    w.key("status").str(status_name(v.status));
    w.key("user_id").opt_u64(v.user_id);
    w.key("caller");
    write_caller_id(w, &v.caller);
    w.key("entity");
    match &v.entity {
        Some(e) => write_entity_ref(w, e),
        None => {
            w.null();
        }
    }
    w.key("has_result").bool(v.has_result);
    if let Some(error) = &v.result_error {
        w.key("result_error").str(error);
    }
    w.close();
}

pub fn write_call_result(w: &mut Writer, r: &CallResult) {
    w.open().key("entity");
    write_entity_ref(w, &r.entity);
    w.key("note").str(&r.note).key("task");
    match &r.task {
        Some(t) => w.open().key("complete_till").i64(t.complete_till).key("text").str(&t.text).close(),
        None => w.null(),
    };
    w.close();
}

/// A [`CallResult`] as the body of `POST /widget/calls/{id}/result`.
pub fn call_result_json(r: &CallResult) -> String {
    let mut w = Writer::new();
    write_call_result(&mut w, r);
    w.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::json::parse;
    use callcard_calls::CallEvent;
    use callcard_calls::CallEventKind;

    /// Views covering every member and variant.
    pub(crate) fn sample_views() -> Vec<CallView> {
        let mut out = Vec::new();
        let kinds = [
            CallEventKind::Ringing,
            CallEventKind::Answered,
            CallEventKind::Ended { duration: 42, outcome: Outcome::NoAnswer },
            CallEventKind::RecordingReady { recording_url: "https://pbx.example/r.mp3?a=1&b=\"2\"".into() },
        ];
        let mut call: Option<Call> = None;
        for (i, kind) in kinds.into_iter().enumerate() {
            let e = CallEvent {
                kind,
                call_id: "c-\u{1}\"ü".into(),
                direction: if i % 2 == 0 { Direction::Inbound } else { Direction::Outbound },
                external_number: "+1 (830) 570".into(),
                extension: "101".into(),
                occurred_at: 1_763_691_600_123 + i as i64 * 1000,
            };
            match &mut call {
                None => call = Some(Call::from_event(&e)),
                Some(c) => {
                    c.apply(&e);
                }
            }
            let mut v = CallView::new(call.clone().unwrap(), if i == 1 { None } else { Some(8_320_148) });
            match i {
                1 => v.caller = CallerId::Unknown,
                2 => {
                    v.caller = CallerId::Known {
                        name: "Anna <b>\\Petrova\n</b>".into(),
                        entity: EntityRef::new(EntityKind::Customer, 9),
                    };
                    v.entity = Some(EntityRef::new(EntityKind::Company, u64::MAX));
                    v.has_result = true;
                }
                3 => {
                    v.result_error = Some("the lead is gone".into());
                    v.entity = Some(EntityRef::new(EntityKind::Lead, 5));
                }
                _ => {}
            }
            out.push(v);
        }
        let mut before_epoch = out[0].clone();
        before_epoch.call.ringing_at = Some(-5);
        out.push(before_epoch);
        out
    }

    fn view_json(v: &CallView) -> String {
        let mut w = Writer::new();
        write_call_view(&mut w, v);
        w.finish()
    }

    #[test]
    fn call_views_are_written_as_serde_writes_them_and_read_back() {
        for v in sample_views() {
            let json = view_json(&v);
            assert_eq!(json, serde_json::to_string(&v).unwrap());
            assert_eq!(call_view(&parse(&json).unwrap()), Some(v));
        }
    }

    #[test]
    fn feed_messages_read_as_serde_reads_them() {
        let views = sample_views();
        let messages = [
            FeedMessage::Event(FeedEvent { offset: 7, call: views[2].clone() }),
            FeedMessage::Gap { latest_offset: 3 },
            FeedMessage::Heartbeat { latest_offset: u64::MAX },
        ];
        for m in messages {
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(feed_message(&parse(&text).unwrap()), Some(m), "{text}");
        }
        let poll = PollAnswer {
            events: views.iter().enumerate().map(|(i, v)| FeedEvent { offset: i as u64, call: v.clone() }).collect(),
            gap: false,
            latest_offset: 9,
        };
        assert_eq!(poll_answer(&parse(&serde_json::to_string(&poll).unwrap()).unwrap()), Some(poll));
        let current = CurrentCalls { calls: views, latest_offset: 12 };
        assert_eq!(current_calls(&parse(&serde_json::to_string(&current).unwrap()).unwrap()), Some(current));
        let t = Ticket { ticket: "t.1".into(), account_id: 1, user_id: 2, expires_at: 1_763_691_600_000 };
        assert_eq!(ticket(&parse(&serde_json::to_string(&t).unwrap()).unwrap()), Some(t));
    }

    /// Whether serde and the hand-written reader agree on a text.
    fn agree<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        text: &str,
        read: impl Fn(&Json) -> Option<T>,
    ) {
        let theirs = serde_json::from_str::<T>(text).ok();
        let ours = parse(text).and_then(|j| read(&j));
        assert_eq!(ours, theirs, "{text}");
    }

    #[test]
    fn optional_defaulted_and_unknown_members_read_as_serde_reads_them() {
        let base = r#""call_id":"c","direction":"inbound","external_number":"1","extension":"101""#;
        for text in [
            format!("{{{base},\"status\":\"ringing\"}}"),
            format!("{{{base},\"status\":\"ringing\",\"user_id\":null,\"caller\":{{\"state\":\"unknown\",\"x\":1}},\"extra\":[1,{{}}]}}"),
            format!("{{{base},\"status\":\"ended\",\"ending\":{{\"at\":1,\"duration\":2,\"outcome\":\"busy\"}},\"entity\":null,\"has_result\":true}}"),
            format!("{{{base},\"status\":\"ended\",\"ending\":{{\"at\":1,\"duration\":4294967296,\"outcome\":\"busy\"}}}}"),
            format!("{{{base},\"status\":\"ringing\",\"has_result\":null}}"),
            format!("{{{base},\"status\":\"ringing\",\"caller\":null}}"),
            format!("{{{base},\"status\":\"ringing\",\"user_id\":-1}}"),
            format!("{{{base},\"status\":\"ringing\",\"user_id\":1.5}}"),
            format!("{{{base},\"status\":\"ringing\",\"ringing_at\":1e3}}"),
            format!("{{{base},\"status\":\"sleeping\"}}"),
            format!("{{{base},\"status\":\"ringing\",\"caller\":{{\"state\":\"known\",\"name\":\"A\"}}}}"),
            format!("{{{base},\"status\":\"ringing\",\"entity\":{{\"kind\":\"deal\",\"id\":1}}}}"),
            format!("{{{base}}}"),
            format!("{{{},\"status\":\"ringing\"}}", base.replace("inbound", "sideways")),
            "[]".to_owned(),
            "null".to_owned(),
        ] {
            agree(&text, call_view);
        }
        for text in [
            r#"{"type":"heartbeat","latest_offset":5,"other":true}"#,
            r#"{"type":"gap"}"#,
            r#"{"type":"nap","latest_offset":5}"#,
            r#"{"latest_offset":5}"#,
        ] {
            agree(text, feed_message);
        }
        for text in [
            r#"{"entity":{"kind":"lead","id":5}}"#,
            r#"{"entity":{"kind":"lead","id":5},"note":"n","task":null}"#,
            r#"{"entity":{"kind":"lead","id":5},"task":{"complete_till":1763700000,"text":"t"}}"#,
            r#"{"entity":{"kind":"lead","id":5},"note":null}"#,
            r#"{"note":"n"}"#,
        ] {
            agree(text, call_result);
        }
    }

    #[test]
    fn call_results_are_written_as_serde_writes_them() {
        let mut r =
            CallResult { entity: EntityRef::new(EntityKind::Lead, 5), note: "Wants \"a\" quote".into(), task: None };
        assert_eq!(call_result_json(&r), serde_json::to_string(&r).unwrap());
        r.task = Some(TaskDraft { complete_till: 1_763_700_000, text: "Send\tquote".into() });
        assert_eq!(call_result_json(&r), serde_json::to_string(&r).unwrap());
        assert_eq!(call_result(&parse(&call_result_json(&r)).unwrap()), Some(r));
    }
}
