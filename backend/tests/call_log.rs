//! The call log as `update-call-log.txt` describes it, against the Kommo
//! sandbox: a transcript that arrives after the manager saved the summary
//! joins the one call note beside the manager's text; a transcript too long
//! for a note becomes an excerpt whose link serves the full text (and
//! nothing without a valid signature); each user's own section switches
//! apply to their calls; the manager's subject replaces the machine's; a
//! missed call gets one follow-up task when the account wants it.

mod common;
mod sandboxed;

use callcard_backend::StoredCall;
use callcard_calls::note::{NoteText, Section};
use callcard_calls::{EntityKind, EntityRef};
use common::Db;
use kommo_sandbox::seed::numbers;
use sandboxed::{Env, ANNA, BRUNO};
use serde_json::{json, Value};

const SUGGESTED: EntityRef = EntityRef { kind: EntityKind::Lead, id: 5_756_100 };

/// A call from Maria to `ext`, answered, ended and logged.
async fn logged_call(env: &Env, call_id: &str, ext: &str) -> StoredCall {
    for kind in ["ringing", "answered", "ended"] {
        env.pbx(kind, call_id, numbers::CONTACT_ONE_ACTIVE_LEAD, ext).await;
    }
    env.call_until(call_id, "the call to be logged", |c| c.note_id.is_some()).await
}

/// The text of the call's one note on `on` (asserting there is exactly one).
fn note_text(env: &Env, on: EntityRef, call_id: &str) -> String {
    let st = env.sandbox.store();
    let notes: Vec<Value> = st
        .notes_of(on)
        .into_iter()
        .filter(|n| n.params["uniq"] == call_id)
        .map(|n| n.params["call_result"].clone())
        .collect();
    assert_eq!(notes.len(), 1, "exactly one note for {call_id}: {notes:#?}");
    notes[0].as_str().unwrap_or_default().to_string()
}

fn transcript_event(call_id: &str, text: &str, summary: Option<&str>) -> Value {
    let mut e = common::event("ended", call_id, "101", common::now_ms());
    e["event"] = json!("transcript_ready");
    e["external_number"] = json!(numbers::CONTACT_ONE_ACTIVE_LEAD);
    e.as_object_mut().unwrap().remove("duration");
    e.as_object_mut().unwrap().remove("outcome");
    e["transcript"] = json!(text);
    if let Some(s) = summary {
        e["summary"] = json!(s);
    }
    e["language"] = json!("en");
    e
}

async fn transcript(env: &Env, call_id: &str, text: &str, summary: Option<&str>) -> Value {
    common::deliver(&env.backend.base, &env.account, &transcript_event(call_id, text, summary)).await
}

async fn widget(env: &Env, method: reqwest::Method, path: &str, user: u64, body: Option<Value>) -> (u16, Value) {
    let mut request = common::client()
        .request(method, format!("{}{path}", env.backend.base))
        .header("x-auth-token", common::one_time_token(&env.account, user, |_| {}))
        .header("origin", &env.account.origin);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn a_transcript_after_the_summary_joins_the_one_note(db: Db) {
    let env = Env::start(db, |_| {}).await;
    logged_call(&env, "t-1", "101").await;
    let body =
        json!({"entity": SUGGESTED, "note": "Wants 40 seats; call back Monday.", "subject": "Pricing for 40 seats"});
    let (status, answer) = widget(&env, reqwest::Method::POST, "/widget/calls/t-1/result", ANNA, Some(body)).await;
    assert_eq!(status, 202, "{answer}");
    env.call_until("t-1", "the result applied", |c| c.note_params.as_deref().is_some_and(|p| p.contains("40 seats")))
        .await;

    let event = transcript_event("t-1", "Maria: Hi, I need forty seats.\nAnna: Sure.", Some("Quote for 40 seats."));
    let ack = common::deliver(&env.backend.base, &env.account, &event).await;
    assert_eq!((ack["changed"].as_bool(), ack["note_update"].as_bool()), (Some(true), Some(true)), "{ack}");
    env.call_until("t-1", "the transcript written", |c| c.note_params.as_deref().is_some_and(|p| p.contains("forty")))
        .await;
    let note = NoteText::parse(&note_text(&env, SUGGESTED, "t-1"));
    assert_eq!(note.get(Section::AgentNote), Some("Wants 40 seats; call back Monday."), "the manager's text stays");
    assert_eq!(note.get(Section::Subject), Some("Pricing for 40 seats"), "the manager's subject");
    assert_eq!(note.get(Section::Transcript), Some("Maria: Hi, I need forty seats.\nAnna: Sure."));
    assert_eq!(note.get(Section::AiSummary), Some("Quote for 40 seats."));

    // The same delivery again (a PBX retry) changes nothing.
    let again = common::deliver(&env.backend.base, &env.account, &event).await;
    assert_eq!(again["changed"], false, "{again}");
    env.stop().await;
}

async fn a_long_transcript_is_an_excerpt_whose_signed_link_serves_the_full_text(db: Db) {
    let env = Env::start(db, |_| {}).await;
    logged_call(&env, "t-long", "101").await;
    let full: String = (0..3_000).map(|i| format!("word{i} ")).collect();
    transcript(&env, "t-long", &full, None).await;
    let call = env
        .call_until("t-long", "the excerpt written", |c| c.note_params.as_deref().is_some_and(|p| p.contains("word0")))
        .await;
    let on = call.note_entity.unwrap();
    let text = note_text(&env, on, "t-long");
    let excerpt = NoteText::parse(&text).get(Section::Transcript).unwrap().to_string();
    assert!(excerpt.len() < full.len() / 2, "an excerpt, not the whole text");
    let link = excerpt.rsplit("(full transcript: ").next().unwrap().trim_end_matches(')').to_string();
    // The link is the backend's public URL; this test's backend is at its base.
    let local = link.replacen("http://backend.test/backend", &env.backend.base, 1);
    let r = common::client().get(&local).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap().trim(), full.trim(), "the full text");
    // Tampered or unsigned: refused, and says why.
    for bad in [local.replace("signature=", "signature=00"), local.split('?').next().unwrap().to_string()] {
        let r = common::client().get(&bad).send().await.unwrap();
        assert!(matches!(r.status().as_u16(), 403 | 422), "{bad}: {}", r.status());
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    env.stop().await;
}

async fn each_users_own_switches_apply_to_their_calls(db: Db) {
    let env = Env::start(db, |_| {}).await;
    // Bruno switches the duration and the transcript off for himself.
    let mine = json!({"duration": false, "transcript": false});
    let (status, view) = widget(&env, reqwest::Method::PUT, "/widget/log-settings", BRUNO, Some(mine)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["applied"]["duration"].as_bool(), view["account"]["duration"].as_bool()),
        (Some(false), Some(true))
    );
    let (_, read_back) = widget(&env, reqwest::Method::GET, "/widget/log-settings", BRUNO, None).await;
    assert_eq!(read_back, view, "read back as saved");
    let (_, anna) = widget(&env, reqwest::Method::GET, "/widget/log-settings", ANNA, None).await;
    assert_eq!(anna["applied"]["duration"], true, "Anna's follow the account");
    // Only an admin sets the account's defaults (Bruno is not one).
    let defaults = json!({"recording": false});
    let (status, _) = widget(&env, reqwest::Method::PUT, "/widget/log-settings/account", BRUNO, Some(defaults)).await;
    assert_eq!(status, 403);
    let (status, bad) =
        widget(&env, reqwest::Method::PUT, "/widget/log-settings", BRUNO, Some(json!({"durations": false}))).await;
    assert_eq!(status, 422, "{bad}");

    let brunos = logged_call(&env, "t-bruno", "102").await;
    let annas = logged_call(&env, "t-anna", "101").await;
    for call_id in ["t-bruno", "t-anna"] {
        let ack = transcript(&env, call_id, "Hello there.", None).await;
        assert_eq!(ack["note_update"], true, "{ack}");
        until_jobs_done(&env, call_id).await;
    }
    let bruno = NoteText::parse(&note_text(&env, brunos.note_entity.unwrap(), "t-bruno"));
    let anna = NoteText::parse(&note_text(&env, annas.note_entity.unwrap(), "t-anna"));
    assert_eq!((bruno.get(Section::Duration), bruno.get(Section::Transcript)), (None, None), "Bruno's switches");
    assert!(bruno.get(Section::Result).is_some(), "the rest is written");
    assert!(anna.get(Section::Duration).is_some());
    assert_eq!(anna.get(Section::Transcript), Some("Hello there."));
    env.stop().await;
}

/// Waits until no job of `call_id` is pending or running.
async fn until_jobs_done(env: &Env, call_id: &str) {
    let store = env.backend.backend.store();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let jobs = store.jobs(None, Some((env.account.id, call_id)), 10).await.unwrap();
        let busy = jobs
            .iter()
            .any(|j| matches!(j.state, callcard_backend::JobState::Pending | callcard_backend::JobState::Running));
        if !busy {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the jobs of {call_id} never finished: {jobs:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// With the account's `missed_call_task` on (set by an admin), a missed
/// inbound call gets one "Call back …" task for the manager on the record
/// it is logged on, and keeps just one through a late update; an answered
/// call gets none.
async fn a_missed_call_gets_one_follow_up_task(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let on = json!({"missed_call_task": true});
    let (status, view) = widget(&env, reqwest::Method::PUT, "/widget/log-settings/account", ANNA, Some(on)).await;
    assert_eq!((status, &view["account"]["missed_call_task"]), (200, &json!(true)), "{view}");
    let at = common::now_ms();
    for kind in ["ringing", "ended"] {
        let mut e = common::event(kind, "missed-1", "101", at);
        e["external_number"] = json!(numbers::CONTACT_ONE_ACTIVE_LEAD);
        if kind == "ended" {
            e["duration"] = json!(0);
            e["outcome"] = json!("missed");
        }
        common::deliver(&env.backend.base, &env.account, &e).await;
    }
    let call = env.call_until("missed-1", "the follow-up task", |c| c.missed_task_id.is_some()).await;
    let on = call.note_entity.expect("logged");
    let tasks = |env: &Env| -> Vec<(String, i64, u64)> {
        let st = env.sandbox.store();
        st.tasks_of(on).into_iter().map(|t| (t.text.clone(), t.complete_till, t.responsible_user_id)).collect()
    };
    let expected = format!("Call back {}: missed call at ", numbers::CONTACT_ONE_ACTIVE_LEAD);
    let made = tasks(&env);
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(made[0].0.starts_with(&expected), "{made:?}");
    assert_eq!((made[0].1, made[0].2), (at / 1000 + 3600, ANNA), "due an hour after the call, for Anna");
    // A late recording rewrites the note; the task stays one.
    let mut late = common::event("recording_ready", "missed-1", "101", at + 5_000);
    late["external_number"] = json!(numbers::CONTACT_ONE_ACTIVE_LEAD);
    common::deliver(&env.backend.base, &env.account, &late).await;
    env.call_until("missed-1", "the recording", |c| c.note_params.as_deref().is_some_and(|p| p.contains(".mp3"))).await;
    until_jobs_done(&env, "missed-1").await;
    assert_eq!(tasks(&env).len(), 1, "still one task");

    logged_call(&env, "answered-1", "101").await;
    until_jobs_done(&env, "answered-1").await;
    assert_eq!(env.call("answered-1").await.missed_task_id, None, "an answered call has no task");
    env.stop().await;
}

on_both_stores!(
    a_missed_call_gets_one_follow_up_task,
    a_transcript_after_the_summary_joins_the_one_note,
    a_long_transcript_is_an_excerpt_whose_signed_link_serves_the_full_text,
    each_users_own_switches_apply_to_their_calls,
);
