//! Call results end to end: the widget's `POST /widget/calls/{id}/result`,
//! the `ApplyCallResult` job, and what the Kommo sandbox holds afterwards,
//! for every branch of the seed's `UpdateFromModalTask`, with and without
//! injected faults.

mod common;
mod sandboxed;

use callcard_backend::apply_call_result;
use callcard_backend::{CrmChange, StoredCall, SyncState};
use callcard_calls::{EntityKind, EntityRef};
use common::Db;
use kommo_sandbox::seed::numbers;
use kommo_sandbox::UnsortedStatus;
use sandboxed::{Env, ANNA, BRUNO};
use serde_json::{json, Value};

const SUGGESTED: EntityRef = EntityRef { kind: EntityKind::Lead, id: 5_756_100 };

async fn post_result(env: &Env, call_id: &str, user: u64, body: &Value) -> (u16, Value) {
    let r = common::client()
        .post(format!("{}/widget/calls/{call_id}/result", env.backend.base))
        .header("x-auth-token", common::one_time_token(&env.account, user, |_| {}))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body: Value = r.json().await.unwrap();
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{body}");
    }
    (status, body)
}

/// A call from `number` to Anna, answered, ended and logged by the backend.
async fn logged_call(env: &Env, call_id: &str, number: &str) -> StoredCall {
    for kind in ["ringing", "answered", "ended"] {
        env.pbx(kind, call_id, number, "101").await;
    }
    env.call_until(call_id, "the call to be logged", |c| c.note_id.is_some()).await
}

async fn applied(env: &Env, call_id: &str, chosen: EntityRef) -> StoredCall {
    env.call_until(call_id, "the result to be applied", |c| {
        // `result_logged` is what the widget's "Logged on …" waits for.
        c.sync_state == SyncState::Synced
            && c.entity == Some(chosen)
            && c.note_entity == Some(chosen)
            && c.view().result_logged
    })
    .await
}

fn lead_named(env: &Env, name: &str) -> EntityRef {
    let st = env.sandbox.store();
    let lead = st.leads.values().find(|l| l.name == name).unwrap_or_else(|| panic!("no lead {name:?}"));
    lead.entity_ref()
}

fn contact_named(env: &Env, name: &str) -> EntityRef {
    let st = env.sandbox.store();
    let c = st.contacts.values().find(|c| c.name == name).unwrap_or_else(|| panic!("no contact {name:?}"));
    c.entity_ref()
}

/// The call notes on `on` that are this call (by `uniq`).
fn call_notes(env: &Env, on: EntityRef, call_id: &str) -> Vec<Value> {
    let st = env.sandbox.store();
    st.notes_of(on)
        .into_iter()
        .filter(|n| matches!(n.note_type.as_str(), "call_in" | "call_out") && n.params["uniq"] == call_id)
        .map(|n| n.params.clone())
        .collect()
}

fn tasks(env: &Env, on: EntityRef) -> Vec<(String, i64, u64)> {
    let st = env.sandbox.store();
    st.tasks_of(on).into_iter().map(|t| (t.text.clone(), t.complete_till, t.responsible_user_id)).collect()
}

fn result_body(chosen: EntityRef, note: &str, task: Option<(&str, i64)>) -> Value {
    let mut body = json!({"entity": chosen, "note": note});
    if let Some((text, till)) = task {
        body["task"] = json!({"text": text, "complete_till": till});
    }
    body
}

/// The seed's scenario: a known contact calls, the call is logged on the
/// suggested lead, the manager picks another lead with a note and a task,
/// the recording arrives later. Kommo ends with the note (recording and
/// manager's text), and the task on the chosen lead, and nothing of the
/// call left on the suggested one.
async fn a_known_caller_moved_to_another_lead(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let call = logged_call(&env, "move-1", numbers::CONTACT_ONE_ACTIVE_LEAD).await;
    assert_eq!(call.note_entity, Some(SUGGESTED));
    assert_eq!(call_notes(&env, SUGGESTED, "move-1").len(), 1);

    let chosen = lead_named(&env, "Office chairs x40");
    let till = common::now_s() + 86_400;
    env.requests.clear();
    let (status, view) = post_result(
        &env,
        "move-1",
        ANNA,
        &result_body(chosen, "Wants a quote for 40 seats", Some(("Send quote", till))),
    )
    .await;
    assert_eq!(status, 202, "{view}");
    assert_eq!(view["has_result"], true);
    assert_eq!(view.get("result_logged"), None, "saved, not applied yet: {view}");
    assert_eq!(view["call_id"], "move-1");

    applied(&env, "move-1", chosen).await;
    // The Kommo requests of the save (the record check) and the job: check the
    // record, look for the note, create it, retire the old one, look for the
    // task, create it.
    let spent = env.requests.all();
    assert_eq!(spent.len(), 6, "{spent:#?}");
    env.pbx("recording_ready", "move-1", numbers::CONTACT_ONE_ACTIVE_LEAD, "101").await;
    let recording = "https://pbx.test/move-1.mp3";
    env.call_until("move-1", "the recording to be logged", |c| {
        c.note_params.as_deref().is_some_and(|p| p.contains(recording))
    })
    .await;

    let on_chosen = call_notes(&env, chosen, "move-1");
    assert_eq!(on_chosen.len(), 1, "{on_chosen:?}");
    assert_eq!(on_chosen[0]["link"], recording);
    assert_eq!(on_chosen[0]["duration"], 42);
    let text = on_chosen[0]["call_result"].as_str().unwrap();
    assert!(text.contains("Agent note: Wants a quote for 40 seats"), "{text}");
    assert!(text.contains("Recording: https://pbx.test/move-1.mp3"), "{text}");
    assert_eq!(tasks(&env, chosen), vec![("Send quote".to_string(), till, ANNA)]);

    // Nothing of the call is left on the suggested lead: its old note is
    // retired (no longer this call, no time, no recording) and no task.
    assert_eq!(call_notes(&env, SUGGESTED, "move-1"), Vec::<Value>::new());
    {
        let st = env.sandbox.store();
        let retired: Vec<_> =
            st.notes_of(SUGGESTED).into_iter().filter(|n| n.params["uniq"] == "move-1:moved").collect();
        assert_eq!(retired.len(), 1);
        assert_eq!(retired[0].params["duration"], 0);
        assert!(retired[0].params["link"].as_str().unwrap_or("").is_empty());
        assert!(st.notes_of(SUGGESTED).iter().all(|n| !n.params.to_string().contains(recording)));
        assert!(st.tasks_of(SUGGESTED).iter().all(|t| t.text != "Send quote"));
        // Maria stays linked to her own deal: the call moved, not the customer.
        assert!(st.is_linked(SUGGESTED, contact_named_in(&st, "Maria Gonzalez")));
    }

    // The job running again changes nothing: one note, one task.
    let ctx = env.backend.backend.sync_context(env.account.id).await.unwrap();
    apply_call_result(&ctx, "move-1").await.unwrap();
    apply_call_result(&ctx, "move-1").await.unwrap();
    assert_eq!(call_notes(&env, chosen, "move-1").len(), 1);
    assert_eq!(tasks(&env, chosen).len(), 1);
    assert_eq!(call_notes(&env, SUGGESTED, "move-1").len(), 0);
    env.stop().await;
}

fn contact_named_in(st: &kommo_sandbox::Store, name: &str) -> EntityRef {
    st.contacts.values().find(|c| c.name == name).unwrap().entity_ref()
}

/// An unknown number: the call sits in an incoming lead. A chosen lead (or
/// customer) gets the incoming lead's contact linked, then the incoming
/// lead is declined and the contact survives.
async fn incoming_lead_and_a_chosen_lead(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let call = logged_call(&env, "in-lead-1", numbers::UNKNOWN).await;
    let uid = call.unsorted_uid.clone().expect("an unknown number makes an incoming lead");
    let (incoming_lead, contact) = {
        let st = env.sandbox.store();
        let u = &st.unsorted[&uid];
        (EntityRef::new(EntityKind::Lead, u.leads[0]), EntityRef::new(EntityKind::Contact, u.contacts[0]))
    };
    assert_eq!(call.note_entity, Some(incoming_lead));

    let chosen = lead_named(&env, "Standing desks");
    let (status, body) = post_result(&env, "in-lead-1", ANNA, &result_body(chosen, "New buyer for Sofia", None)).await;
    assert_eq!(status, 202, "{body}");
    applied(&env, "in-lead-1", chosen).await;

    {
        let st = env.sandbox.store();
        assert_eq!(st.unsorted[&uid].status, UnsortedStatus::Declined);
        assert!(st.exists(contact), "the incoming lead's contact survives the decline");
        assert!(st.is_linked(chosen, contact), "and is linked to the chosen lead");
        assert!(!st.exists(incoming_lead), "the incoming lead itself is gone");
    }
    assert_eq!(call_notes(&env, chosen, "in-lead-1").len(), 1);
    env.stop().await;
}

/// An unknown number, and the manager chose a contact (or company): the
/// incoming contact's phone is copied onto it.
async fn incoming_lead_and_a_chosen_contact(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let call = logged_call(&env, "in-contact-1", numbers::UNKNOWN).await;
    let uid = call.unsorted_uid.clone().unwrap();
    let oliver = contact_named(&env, "Oliver Smith");
    let (status, body) = post_result(&env, "in-contact-1", ANNA, &result_body(oliver, "His new mobile", None)).await;
    assert_eq!(status, 202, "{body}");
    applied(&env, "in-contact-1", oliver).await;

    {
        let st = env.sandbox.store();
        let phones: Vec<_> = st.get(oliver).unwrap().phones.iter().map(|p| p.value.clone()).collect();
        assert!(phones.contains(&numbers::UNKNOWN.to_string()), "{phones:?}");
        assert!(phones.contains(&numbers::CONTACT_NO_LEADS.to_string()), "the old number is kept: {phones:?}");
        assert_eq!(st.unsorted[&uid].status, UnsortedStatus::Declined);
    }
    assert_eq!(call_notes(&env, oliver, "in-contact-1").len(), 1);

    // A company gets the phone the same way.
    let call = logged_call(&env, "in-company-1", numbers::UNKNOWN).await;
    let uid = call.unsorted_uid.clone().unwrap();
    let globex = {
        let st = env.sandbox.store();
        st.companies.values().find(|c| c.name == "Globex Corporation").unwrap().entity_ref()
    };
    let (status, _) = post_result(&env, "in-company-1", ANNA, &result_body(globex, "", None)).await;
    assert_eq!(status, 202);
    applied(&env, "in-company-1", globex).await;
    {
        let st = env.sandbox.store();
        assert!(st.get(globex).unwrap().phones.iter().any(|p| p.value == numbers::UNKNOWN));
        assert_eq!(st.unsorted[&uid].status, UnsortedStatus::Declined);
    }
    env.stop().await;
}

/// A record type the seed does not handle is reported to the manager on the
/// call (`result_error`, sync failed), not retried, not dead-lettered.
async fn unsupported_entity_types_are_reported(db: Db) {
    let env = Env::start(db, |_| {}).await;
    logged_call(&env, "odd-1", numbers::CONTACT_ONE_ACTIVE_LEAD).await;
    // The API refuses kinds it does not know, naming the field...
    let (status, problem) =
        post_result(&env, "odd-1", ANNA, &json!({"entity": {"kind": "catalog_element", "id": 5}, "note": ""})).await;
    assert_eq!((status, problem["field"].as_str()), (422, Some("entity.kind")), "{problem}");
    // ...and a stored result of such a kind (another widget version) fails
    // visibly in the job.
    env.backend
        .backend
        .store()
        .update_call_crm(
            env.account.id,
            "odd-1",
            CrmChange {
                manager_result: Some(r#"{"entity":{"kind":"catalog_element","id":5},"note":"x"}"#.into()),
                has_result: Some(true),
                ..CrmChange::default()
            },
        )
        .await
        .unwrap();
    let ctx = env.backend.backend.sync_context(env.account.id).await.unwrap();
    apply_call_result(&ctx, "odd-1").await.expect("the manager's mistake is not a job failure");
    let call = env.call("odd-1").await;
    assert_eq!(call.sync_state, SyncState::Failed);
    let view = call.view();
    assert!(view.result_error.as_deref().is_some_and(|e| e.contains("catalog_element")), "{view:?}");
    let json = serde_json::to_value(&view).unwrap();
    assert!(json["result_error"].is_string(), "the widget sees the reason: {json}");
    // Nothing was written in Kommo for it.
    assert_eq!(call_notes(&env, SUGGESTED, "odd-1").len(), 1);

    // A good result afterwards clears the error.
    let chosen = lead_named(&env, "Office chairs x40");
    let (status, view) = post_result(&env, "odd-1", ANNA, &result_body(chosen, "ok", None)).await;
    assert_eq!(status, 202);
    assert!(view.get("result_error").is_none(), "{view}");
    applied(&env, "odd-1", chosen).await;
    env.stop().await;
}

/// Every refusal is a problem document naming what is wrong.
async fn refusals_name_the_field(db: Db) {
    let env = Env::start(db, |_| {}).await;
    logged_call(&env, "mine-1", numbers::CONTACT_ONE_ACTIVE_LEAD).await;
    let good = result_body(SUGGESTED, "fine", None);

    let (status, p) = post_result(&env, "no-such-call", ANNA, &good).await;
    assert_eq!((status, p["field"].as_str()), (404, Some("call_id")), "{p}");
    let (status, p) = post_result(&env, "mine-1", BRUNO, &good).await;
    assert_eq!((status, p["field"].as_str()), (403, Some("call_id")), "{p}");
    let (status, p) = post_result(&env, "mine-1", ANNA, &json!({"note": "no entity"})).await;
    assert_eq!((status, p["field"].as_str()), (422, Some("entity")), "{p}");
    let (status, p) =
        post_result(&env, "mine-1", ANNA, &result_body(SUGGESTED, "x", Some(("Call back", 1_763_700_000_000)))).await;
    assert_eq!((status, p["field"].as_str()), (422, Some("task.complete_till")), "{p}");
    let (status, p) =
        post_result(&env, "mine-1", ANNA, &result_body(SUGGESTED, "x", Some(("  ", 1_900_000_000)))).await;
    assert_eq!((status, p["field"].as_str()), (422, Some("task.text")), "{p}");
    let missing = EntityRef::new(EntityKind::Lead, 987_654_321);
    let (status, p) = post_result(&env, "mine-1", ANNA, &result_body(missing, "x", None)).await;
    assert_eq!((status, p["field"].as_str()), (422, Some("entity.id")), "{p}");
    // No token at all.
    let r = common::client()
        .post(format!("{}/widget/calls/mine-1/result", env.backend.base))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(!env.call("mine-1").await.has_result, "nothing was stored by the refusals");
    env.stop().await;
}

/// Kommo failing mid-job (5xx, 429, dropped answers) only delays the
/// result: the queue retries and Kommo ends with one note and one task.
async fn faults_mid_job_still_write_once(db: Db) {
    let env = Env::start(db, |_| {}).await;
    logged_call(&env, "flaky-1", numbers::CONTACT_ONE_ACTIVE_LEAD).await;
    let chosen = lead_named(&env, "Office chairs x40");
    let till = common::now_s() + 3_600;
    env.faults(json!({"script": ["503", "ok", "drop", "429", "ok", "ok", "drop", "ok", "502", "ok", "drop"],
                      "retry_after": 1}))
        .await;
    let (status, _) =
        post_result(&env, "flaky-1", ANNA, &result_body(chosen, "Flaky line", Some(("Call again", till)))).await;
    assert_eq!(status, 202);
    applied(&env, "flaky-1", chosen).await;
    let injected: Value =
        common::client().get(format!("{}/sandbox/faults", env.kommo_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(injected["script_left"], json!([]), "every scripted fault hit the flow: {injected}");
    env.faults(json!({})).await;
    assert_eq!(call_notes(&env, chosen, "flaky-1").len(), 1);
    assert_eq!(tasks(&env, chosen), vec![("Call again".to_string(), till, ANNA)]);
    assert_eq!(call_notes(&env, SUGGESTED, "flaky-1").len(), 0);
    env.stop().await;
}

/// Saving again replaces the result: the call moves on, the first choice is
/// left with nothing of the call, and the job ran idempotently.
async fn a_second_save_moves_the_call_again(db: Db) {
    let env = Env::start(db, |_| {}).await;
    logged_call(&env, "twice-1", numbers::CONTACT_ONE_ACTIVE_LEAD).await;
    let first = lead_named(&env, "Office chairs x40");
    let second = lead_named(&env, "Standing desks");
    assert_eq!(post_result(&env, "twice-1", ANNA, &result_body(first, "first", None)).await.0, 202);
    applied(&env, "twice-1", first).await;
    assert_eq!(post_result(&env, "twice-1", ANNA, &result_body(second, "second thoughts", None)).await.0, 202);
    applied(&env, "twice-1", second).await;
    let notes = call_notes(&env, second, "twice-1");
    assert_eq!(notes.len(), 1);
    assert!(notes[0]["call_result"].as_str().unwrap().contains("Agent note: second thoughts"));
    assert_eq!(call_notes(&env, first, "twice-1").len(), 0);
    assert_eq!(call_notes(&env, SUGGESTED, "twice-1").len(), 0);
    env.stop().await;
}

/// A call the manager did not take is logged, and moved, with zero duration.
async fn a_missed_call_moves_with_zero_duration(db: Db) {
    let env = Env::start(db, |_| {}).await;
    env.pbx("ringing", "missed-1", numbers::CONTACT_ONE_ACTIVE_LEAD, "101").await;
    let mut ended = common::event("ended", "missed-1", "101", common::now_ms());
    ended["external_number"] = json!(numbers::CONTACT_ONE_ACTIVE_LEAD);
    ended["outcome"] = json!("missed");
    ended["duration"] = json!(25);
    common::deliver(&env.backend.base, &env.account, &ended).await;
    env.call_until("missed-1", "logging", |c| c.note_id.is_some()).await;
    let chosen = lead_named(&env, "Office chairs x40");
    assert_eq!(post_result(&env, "missed-1", ANNA, &result_body(chosen, "Call back", None)).await.0, 202);
    applied(&env, "missed-1", chosen).await;
    let notes = call_notes(&env, chosen, "missed-1");
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["duration"], 0);
    env.stop().await;
}

/// A result saved while no worker runs (all busy, or the instance dies right
/// after answering) is applied by the next backend on the same database.
async fn a_result_survives_a_restart(db: Db) {
    let mut env = Env::start(db, |_| {}).await;
    logged_call(&env, "restart-1", numbers::CONTACT_ONE_ACTIVE_LEAD).await;
    env.restart(|c| c.queue.workers = 0).await;
    let chosen = lead_named(&env, "Office chairs x40");
    let till = common::now_s() + 7_200;
    let body = result_body(chosen, "Saved before the crash", Some(("Follow up", till)));
    assert_eq!(post_result(&env, "restart-1", ANNA, &body).await.0, 202);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(env.call("restart-1").await.entity, Some(SUGGESTED), "no worker, nothing applied yet");
    env.restart(|_| {}).await;
    applied(&env, "restart-1", chosen).await;
    assert_eq!(call_notes(&env, chosen, "restart-1").len(), 1);
    assert_eq!(tasks(&env, chosen), vec![("Follow up".to_string(), till, ANNA)]);
    assert_eq!(call_notes(&env, SUGGESTED, "restart-1").len(), 0);
    env.stop().await;
}

on_both_stores!(a_known_caller_moved_to_another_lead, incoming_lead_and_a_chosen_lead, a_result_survives_a_restart);

mod sqlite_only {
    macro_rules! sqlite {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(crate::common::Db::sqlite().await).await
            }
        )*};
    }
    sqlite!(
        incoming_lead_and_a_chosen_contact,
        unsupported_entity_types_are_reported,
        refusals_name_the_field,
        faults_mid_job_still_write_once,
        a_second_save_moves_the_call_again,
        a_missed_call_moves_with_zero_duration,
    );
}
