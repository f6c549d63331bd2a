//! Ring groups and transfers, against the Kommo sandbox: one call id rings
//! several extensions (each `ringing` naming its own); every ringing agent's
//! feed gets the call, the others' cards are withdrawn when one answers, and
//! the call is logged once, for the agent who answered (after a transfer,
//! the one who finished it, the note recording the path). A group call
//! nobody answers is logged once as missed, zero seconds, for the account's
//! `unanswered_group_user_id`, and no agent gets it as their missed call.

mod common;
mod sandboxed;

use callcard_calls::feed::{CallView, FeedMessage};
use callcard_calls::note::LogSettings;
use callcard_calls::{CallStatus, EntityKind, EntityRef};
use common::{connect, next, ticket, Db, QUIET, SOON};
use kommo_sandbox::seed::numbers;
use sandboxed::{Env, ANNA, BRUNO};
use serde_json::json;

on_both_stores!(
    a_group_call_rings_everyone_and_is_logged_once_for_whoever_answers,
    a_group_call_nobody_answers_is_one_missed_call_for_the_configured_user,
    a_transfer_moves_the_card_and_credits_the_agent_who_finished
);

/// Where the calls from Maria's number are logged (her one active lead).
const LEAD: EntityRef = EntityRef { kind: EntityKind::Lead, id: 5_756_100 };

/// From offset 0, as the widget does after `/widget/calls`: without `since`
/// the socket starts where the server is when it subscribes, which on a
/// loaded machine can be after the first ring.
async fn feed(env: &Env, user: u64) -> common::Ws {
    connect(&env.backend, &ticket(&env.backend.base, &env.account, user).await, Some(0)).await
}

/// The next view of `call_id` in this feed (other calls' events skipped).
async fn view(ws: &mut common::Ws, call_id: &str) -> CallView {
    loop {
        match next(ws, SOON).await {
            Some(FeedMessage::Event(e)) if e.call.call.call_id == call_id => return e.call,
            Some(FeedMessage::Event(_)) => continue,
            other => panic!("expected a view of {call_id}, got {other:?}"),
        }
    }
}

/// The call's notes on the lead: (responsible user, call_result text).
fn notes(env: &Env, call_id: &str) -> Vec<(u64, String)> {
    let st = env.sandbox.store();
    st.notes_of(LEAD)
        .into_iter()
        .filter(|n| n.params["uniq"] == call_id)
        .map(|n| (n.responsible_user_id, n.params["call_result"].as_str().unwrap_or_default().to_string()))
        .collect()
}

async fn ended(env: &Env, call_id: &str, ext: &str, duration: u32, outcome: &str) {
    let mut e = common::event("ended", call_id, ext, common::now_ms());
    e["external_number"] = json!(numbers::CONTACT_ONE_ACTIVE_LEAD);
    e["duration"] = json!(duration);
    e["outcome"] = json!(outcome);
    common::deliver(&env.backend.base, &env.account, &e).await;
}

async fn a_group_call_rings_everyone_and_is_logged_once_for_whoever_answers(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let (mut anna, mut bruno) = (feed(&env, ANNA).await, feed(&env, BRUNO).await);
    let maria = numbers::CONTACT_ONE_ACTIVE_LEAD;
    // The queue rings 101, 102 and 103 (an agent with no Kommo user).
    for ext in ["101", "102", "103"] {
        env.pbx("ringing", "q-1", maria, ext).await;
    }
    let rings_anna = view(&mut anna, "q-1").await;
    assert_eq!((rings_anna.status, rings_anna.user_id), (CallStatus::Ringing, Some(ANNA)));
    assert!(!rings_anna.withdrawn);
    let rings_bruno = view(&mut bruno, "q-1").await;
    assert_eq!((rings_bruno.status, rings_bruno.user_id), (CallStatus::Ringing, Some(BRUNO)));

    // Bruno answers: his call; Anna's card is withdrawn.
    env.pbx("answered", "q-1", maria, "102").await;
    let his = loop {
        let v = view(&mut bruno, "q-1").await;
        if v.status == CallStatus::Answered {
            break v;
        }
    };
    assert_eq!(his.user_id, Some(BRUNO));
    assert!(!his.withdrawn);
    let gone = loop {
        let v = view(&mut anna, "q-1").await;
        if v.withdrawn {
            break v;
        }
    };
    assert_eq!(gone.user_id, Some(ANNA));

    // The end (the PBX may name any extension of the call) reaches Bruno only.
    ended(&env, "q-1", "101", 30, "answered").await;
    assert_eq!(view(&mut bruno, "q-1").await.status, CallStatus::Ended);
    assert!(next(&mut anna, QUIET).await.is_none(), "Anna hears nothing more of a call she did not take");

    let call = env.call_until("q-1", "the group call to be logged", |c| c.note_id.is_some()).await;
    assert_eq!((call.kommo_user_id, call.call.extension.as_str()), (Some(BRUNO), "102"));
    let logged = notes(&env, "q-1");
    assert_eq!(logged.len(), 1, "logged once: {logged:?}");
    assert_eq!(logged[0].0, BRUNO, "for the agent who answered");
    assert!(logged[0].1.contains("Duration: 0:30"), "{}", logged[0].1);
    // Bruno's Call summary is his; Anna has nothing waiting.
    assert!(current_call_ids(&env, BRUNO).await.contains(&"q-1".to_string()));
    assert!(!current_call_ids(&env, ANNA).await.contains(&"q-1".to_string()));
    env.stop().await;
}

async fn a_group_call_nobody_answers_is_one_missed_call_for_the_configured_user(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let settings = LogSettings { unanswered_group_user_id: Some(BRUNO), ..LogSettings::default() };
    env.backend.backend.store().set_log_settings(env.account.id, &settings).await.unwrap();
    let (mut anna, mut bruno) = (feed(&env, ANNA).await, feed(&env, BRUNO).await);
    let maria = numbers::CONTACT_ONE_ACTIVE_LEAD;
    env.pbx("ringing", "q-2", maria, "101").await;
    env.pbx("ringing", "q-2", maria, "102").await;
    assert_eq!(view(&mut anna, "q-2").await.status, CallStatus::Ringing);
    assert_eq!(view(&mut bruno, "q-2").await.status, CallStatus::Ringing);
    ended(&env, "q-2", "101", 25, "no_answer").await;
    for (who, ws) in [("Anna", &mut anna), ("Bruno", &mut bruno)] {
        let last = loop {
            let v = view(ws, "q-2").await;
            if v.status == CallStatus::Ended || v.withdrawn {
                break v;
            }
        };
        assert!(last.withdrawn, "{who}'s card is withdrawn, no missed call of theirs: {last:?}");
        assert!(next(ws, QUIET).await.is_none(), "{who} hears nothing more");
    }
    let call = env.call_until("q-2", "the unanswered group call to be logged", |c| c.note_id.is_some()).await;
    assert_eq!(call.kommo_user_id, None, "no agent's call");
    let logged = notes(&env, "q-2");
    assert_eq!(logged.len(), 1, "logged once: {logged:?}");
    assert_eq!(logged[0].0, BRUNO, "for the account's unanswered_group_user_id");
    assert!(logged[0].1.contains("Duration: 0:00"), "zero seconds: {}", logged[0].1);
    assert!(logged[0].1.contains("rang 101, 102, nobody answered"), "{}", logged[0].1);
    for user in [ANNA, BRUNO] {
        assert!(!current_call_ids(&env, user).await.contains(&"q-2".to_string()), "no summary waits for {user}");
    }
    env.stop().await;
}

async fn a_transfer_moves_the_card_and_credits_the_agent_who_finished(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let (mut anna, mut bruno) = (feed(&env, ANNA).await, feed(&env, BRUNO).await);
    let maria = numbers::CONTACT_ONE_ACTIVE_LEAD;
    env.pbx("ringing", "t-1", maria, "101").await;
    env.pbx("answered", "t-1", maria, "101").await;
    assert_eq!(view(&mut anna, "t-1").await.call.call_id, "t-1");
    // Anna transfers to 102: it rings Bruno, who sees the card.
    env.pbx("ringing", "t-1", maria, "102").await;
    let rings = view(&mut bruno, "t-1").await;
    assert_eq!((rings.status, rings.user_id), (CallStatus::Ringing, Some(BRUNO)));
    env.pbx("answered", "t-1", maria, "102").await;
    let gone = loop {
        let v = view(&mut anna, "t-1").await;
        if v.withdrawn {
            break v;
        }
    };
    assert_eq!(gone.call.call_id, "t-1", "one call id throughout");
    ended(&env, "t-1", "102", 50, "answered").await;
    let call = env.call_until("t-1", "the transferred call to be logged", |c| c.note_id.is_some()).await;
    assert_eq!(call.kommo_user_id, Some(BRUNO));
    let logged = notes(&env, "t-1");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].0, BRUNO, "credited to the agent who finished the call");
    assert!(logged[0].1.contains("transferred 101 → 102"), "the note records the path: {}", logged[0].1);
    assert!(current_call_ids(&env, BRUNO).await.contains(&"t-1".to_string()), "the summary goes to Bruno");
    assert!(!current_call_ids(&env, ANNA).await.contains(&"t-1".to_string()));
    env.stop().await;
}

/// `GET /widget/calls`: the user's calls that still want a summary.
async fn current_call_ids(env: &Env, user: u64) -> Vec<String> {
    let t = ticket(&env.backend.base, &env.account, user).await;
    let r = common::client().get(format!("{}/widget/calls?ticket={t}", env.backend.base)).send().await.unwrap();
    let calls: callcard_calls::feed::CurrentCalls = r.json().await.unwrap();
    calls.calls.into_iter().map(|c| c.call.call_id).collect()
}
