//! Caller ID through the backend against the Kommo sandbox: every branch of
//! Kommo's rule ends up on the ringing card, the first push never waits for
//! Kommo, a warm cache names the caller in the very first push, and the
//! Kommo requests per ringing call are counted at the sandbox:
//!
//! - cold, unknown number: 1 (`POST /api/v2/events`);
//! - cold, known number: 2 (the events call, and one `GET` of the record
//!   for its name), 1 when the record's name is cached; 3 for a deal
//!   without a name (its contact's name is read too);
//! - warm (same number within `caller_id_cache_ttl`): 0;
//! - fifty phones ringing at once for one caller: 1 events call in all.

mod common;
mod sandboxed;

use callcard_calls::feed::{CallerId, FeedMessage};
use callcard_calls::{EntityKind, EntityRef};
use common::Db;
use kommo_sandbox::seed::numbers;
use sandboxed::{Env, ANNA};
use std::time::{Duration, Instant};

const EVENTS: &str = "/api/v2/events";

/// What the sandbox's own (pure) implementation of Kommo's rule says.
fn expected(env: &Env, number: &str) -> CallerId {
    let st = env.sandbox.store();
    match kommo_sandbox::identify_caller(&st, number) {
        Some(m) => CallerId::known(m.name, m.element),
        None => CallerId::Unknown,
    }
}

async fn identified(env: &Env, call_id: &str) -> CallerId {
    env.call_until(call_id, "caller ID", |c| c.caller != CallerId::Pending).await.caller
}

async fn every_branch_reaches_the_card(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let cases = [
        (numbers::CONTACT_ONE_ACTIVE_LEAD, Some((EntityKind::Lead, "Website redesign"))),
        (numbers::CONTACT_ONE_UNNAMED_LEAD, Some((EntityKind::Lead, "Liam O'Brien"))),
        (numbers::CONTACT_TWO_ACTIVE_LEADS, Some((EntityKind::Contact, "Sofia Rossi"))),
        (numbers::CONTACT_ONE_CUSTOMER, Some((EntityKind::Customer, "Kim Bakery weekly order"))),
        (numbers::COMPANY_NO_LEADS, Some((EntityKind::Company, "Globex Corporation"))),
        (numbers::COMPANY_ONE_ACTIVE_LEAD, Some((EntityKind::Lead, "Northwind 200 headsets"))),
        (numbers::SHARED_BY_TWO_CONTACTS, Some((EntityKind::Lead, "Fleet tracking pilot"))),
        (numbers::UNKNOWN, None),
    ];
    for (i, (number, want)) in cases.into_iter().enumerate() {
        let call_id = format!("branch-{i}");
        env.requests.clear();
        env.pbx("ringing", &call_id, number, "101").await;
        let got = identified(&env, &call_id).await;
        // The lookup, then the record's name (and for a nameless deal its
        // contact's); an unknown number only the lookup.
        let cost = match (&want, number) {
            (None, _) => 1,
            (_, numbers::CONTACT_ONE_UNNAMED_LEAD) => 3,
            _ => 2,
        };
        assert_eq!(env.requests.all().len(), cost, "{number}: {:?}", env.requests.all());
        assert_eq!(got, expected(&env, number), "{number}");
        match (want, &got) {
            (Some((kind, name)), CallerId::Known { name: n, entity, .. }) => {
                assert_eq!((entity.kind, n.as_str()), (kind, name), "{number}");
            }
            (None, CallerId::Unknown) => {}
            other => panic!("{number}: {other:?}"),
        }
        // The widget sees it on the call as well.
        assert_eq!(env.call(&call_id).await.view().caller, got);
    }
    env.stop().await;
}

async fn warm_cache_names_the_caller_in_the_first_push(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let ticket = common::ticket(&env.backend.base, &env.account, ANNA).await;
    // From offset 0, as the widget resumes from /widget/calls: a feed opened
    // without `since` starts wherever the server is when its socket task
    // subscribes, which under load can be after the first ring.
    let mut ws = common::connect(&env.backend, &ticket, Some(0)).await;

    // Cold: the ringing push goes out at once, nameless; the name follows.
    env.pbx("ringing", "cold-1", numbers::CONTACT_ONE_ACTIVE_LEAD, "101").await;
    let first = first_event(&mut ws).await;
    assert_eq!(first.caller, CallerId::Pending);
    let second = first_event(&mut ws).await;
    let maria = CallerId::known("Website redesign", EntityRef::new(EntityKind::Lead, 5_756_100));
    assert_eq!(second.caller, maria);
    let cold = env.requests.all();
    assert_eq!(env.requests.count("POST", EVENTS), 1, "{cold:?}");
    assert_eq!(cold.len(), 2, "cold, known: the events call and the record's name: {cold:?}");
    env.requests.clear();

    // Warm: the same caller again (other formatting, same last 8 digits).
    env.pbx("ringing", "warm-1", "1 (830) 570-30-77", "101").await;
    let first = first_event(&mut ws).await;
    assert_eq!(first.call.call_id, "warm-1");
    assert_eq!(first.caller, maria, "the first push already names the caller");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.requests.all(), vec![], "a warm ring costs no Kommo request");
    assert_eq!(env.call("warm-1").await.caller, maria, "and is recorded on the call");

    // Unknown numbers are cached too: one request cold, none warm.
    env.pbx("ringing", "unknown-1", numbers::UNKNOWN, "101").await;
    assert_eq!(identified(&env, "unknown-1").await, CallerId::Unknown);
    assert_eq!(env.requests.all().len(), 1);
    env.pbx("ringing", "unknown-2", numbers::UNKNOWN, "101").await;
    assert_eq!(first_caller_of(&mut ws, "unknown-2").await, CallerId::Unknown);
    assert_eq!(env.requests.all().len(), 1);
    env.stop().await;
}

async fn first_event(ws: &mut common::Ws) -> callcard_calls::feed::CallView {
    match common::next(ws, common::SOON).await {
        Some(FeedMessage::Event(e)) => e.call,
        other => panic!("expected a feed event, got {other:?}"),
    }
}

/// The caller in the first feed event of `call_id` (skipping other calls').
async fn first_caller_of(ws: &mut common::Ws, call_id: &str) -> CallerId {
    loop {
        let view = first_event(ws).await;
        if view.call.call_id == call_id {
            return view.caller;
        }
    }
}

async fn fifty_rings_for_one_caller_cost_one_lookup(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let rings: Vec<_> = (0..50)
        .map(|i| {
            let (base, account) = (env.backend.base.clone(), env.account.clone());
            tokio::spawn(async move {
                let mut e = common::event("ringing", &format!("group-{i}"), "101", common::now_ms());
                e["external_number"] = serde_json::json!(numbers::CONTACT_TWO_ACTIVE_LEADS);
                common::deliver(&base, &account, &e).await;
            })
        })
        .collect();
    for r in rings {
        r.await.unwrap();
    }
    for i in 0..50 {
        let caller = identified(&env, &format!("group-{i}")).await;
        assert!(matches!(&caller, CallerId::Known { name, .. } if name == "Sofia Rossi"), "{caller:?}");
    }
    let seen = env.requests.all();
    assert_eq!(env.requests.count("POST", EVENTS), 1, "{seen:?}");
    assert!(seen.len() <= 2, "50 rings, one lookup: {seen:?}");
    env.stop().await;
}

async fn kommo_failures_never_hold_up_the_ring(db: Db) {
    let env = Env::start(db, |c| c.caller_id_cache_ttl = Duration::from_secs(60)).await;
    let ticket = common::ticket(&env.backend.base, &env.account, ANNA).await;
    // From offset 0, as the widget resumes from /widget/calls: a feed opened
    // without `since` starts wherever the server is when its socket task
    // subscribes, which under load can be after the first ring.
    let mut ws = common::connect(&env.backend, &ticket, Some(0)).await;

    // Kommo answers slowly: the webhook is acknowledged and pushed at once.
    env.faults(serde_json::json!({"delay_rate": 1.0, "delay_ms": 2000})).await;
    let started = Instant::now();
    env.pbx("ringing", "slow-1", numbers::CONTACT_NO_LEADS, "101").await;
    let first = first_event(&mut ws).await;
    let pushed = started.elapsed();
    assert!(pushed < Duration::from_millis(1000), "the ring waited for Kommo: {pushed:?}");
    assert_eq!(first.caller, CallerId::Pending);
    let later = first_event(&mut ws).await;
    assert!(matches!(&later.caller, CallerId::Known { name, .. } if name == "Oliver Smith"), "{later:?}");

    // Kommo is down or throttling: the call keeps the number, nothing fails.
    for (i, faults) in [
        serde_json::json!({"error_rate": 1.0, "error_status": 503}),
        serde_json::json!({"throttle_rate": 1.0, "retry_after": 60}),
        serde_json::json!({"drop_rate": 1.0}),
    ]
    .into_iter()
    .enumerate()
    {
        env.faults(faults).await;
        let call_id = format!("down-{i}");
        // A different number each time: failures are remembered per number.
        let number =
            [numbers::COMPANY_TWO_ACTIVE_LEADS, numbers::CONTACT_LEAD_AND_CUSTOMER, numbers::CONTACT_ONLY_CLOSED][i];
        let ack = env.pbx("ringing", &call_id, number, "101").await;
        assert_eq!(ack["status"], "ringing");
        assert_eq!(first_caller_of(&mut ws, &call_id).await, CallerId::Pending);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(env.call(&call_id).await.caller, CallerId::Pending, "a failure is not an answer");
        // The call goes on normally.
        env.pbx("answered", &call_id, number, "101").await;
    }

    // Kommo is back: the next call from a failed number is identified.
    env.faults(serde_json::json!({})).await;
    tokio::time::sleep(Duration::from_millis(5200)).await; // the failure back-off
    env.pbx("ringing", "back-1", numbers::COMPANY_TWO_ACTIVE_LEADS, "101").await;
    let caller = identified(&env, "back-1").await;
    assert!(matches!(&caller, CallerId::Known { name, .. } if name == "Umbrella Logistics"), "{caller:?}");
    env.stop().await;
}

async fn ended_and_unmapped_calls_are_not_looked_up(db: Db) {
    let env = Env::start(db, |_| {}).await;
    // A call first heard of when it ended (a batch, a lost ringing webhook).
    env.pbx("ended", "late-1", numbers::CONTACT_NO_LEADS, "101").await;
    // A call to an extension nobody has.
    env.pbx("ringing", "nobody-1", numbers::CONTACT_NO_LEADS, "555").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.requests.count("POST", EVENTS), 0);
    env.stop().await;
}

mod sqlite_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_rings_for_one_caller_cost_one_lookup() {
        super::fifty_rings_for_one_caller_cost_one_lookup(crate::common::Db::sqlite().await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kommo_failures_never_hold_up_the_ring() {
        super::kommo_failures_never_hold_up_the_ring(crate::common::Db::sqlite().await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ended_and_unmapped_calls_are_not_looked_up() {
        super::ended_and_unmapped_calls_are_not_looked_up(crate::common::Db::sqlite().await).await
    }
}

on_both_stores!(every_branch_reaches_the_card, warm_cache_names_the_caller_in_the_first_push);
