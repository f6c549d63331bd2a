//! The local caller index against the Kommo sandbox, on SQLite and
//! PostgreSQL: the first sync builds it and the next ring names the caller
//! in its very first feed event at 0 Kommo requests; Kommo's webhooks keep
//! it current (a lead's status, a contact's name, a deletion and a restore);
//! a missed webhook heals at the next reconciliation; a restart in the
//! middle of the sync resumes at the stored page; the webhook route tells
//! nobody which accounts exist.

mod common;
mod sandboxed;

use callcard_backend::{Config, DealData, HolderData, IndexChange, JobState, SyncPhase};
use callcard_calls::feed::{CallView, CallerId, FeedMessage};
use callcard_calls::{EntityKind, EntityRef};
use common::Db;
use kommo_sandbox::seed::numbers;
use sandboxed::{kommo_api, Env, ANNA};
use serde_json::{json, Value};
use std::time::Duration;

fn indexed(config: &mut Config) {
    config.caller_index = true;
}

/// Waits until the account's first sync finished.
async fn until_ready(env: &Env) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state = env.backend.backend.store().phonebook_sync(env.account.id).await.unwrap();
        if state.as_ref().is_some_and(|s| s.ready) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the caller index never got ready: {state:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until no job is pending or running (link refreshes, the sync).
async fn until_idle(env: &Env) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let store = env.backend.backend.store();
    loop {
        let pending = store.jobs(Some(JobState::Pending), None, 10).await.unwrap();
        let running = store.jobs(Some(JobState::Running), None, 10).await.unwrap();
        if pending.is_empty() && running.is_empty() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "jobs never finished: {pending:?} {running:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What the sandbox's own implementation of Kommo's rule answers: the
/// record and the name.
fn kommo_says(env: &Env, number: &str) -> Option<(EntityRef, String)> {
    let st = env.sandbox.store();
    kommo_sandbox::identify_caller(&st, number).map(|m| (m.element, m.name))
}

fn answer(caller: &CallerId) -> Option<(EntityRef, String)> {
    match caller {
        CallerId::Known { name, entity, .. } => Some((*entity, name.clone())),
        CallerId::Unknown => None,
        CallerId::Pending => panic!("the first push did not say who is calling"),
    }
}

/// The first feed event of `call_id` (skipping other calls').
async fn first_view_of(ws: &mut common::Ws, call_id: &str) -> CallView {
    loop {
        match common::next(ws, common::SOON).await {
            Some(FeedMessage::Event(e)) if e.call.call.call_id == call_id => return e.call,
            Some(FeedMessage::Event(_)) => {}
            other => panic!("expected a feed event, got {other:?}"),
        }
    }
}

/// Rings `number` and answers the caller in the call's first feed event.
async fn ring(env: &Env, ws: &mut common::Ws, call_id: &str, number: &str) -> CallerId {
    env.pbx("ringing", call_id, number, "101").await;
    first_view_of(ws, call_id).await.caller
}

async fn feed(env: &Env) -> common::Ws {
    let ticket = common::ticket(&env.backend.base, &env.account, ANNA).await;
    common::connect(&env.backend, &ticket, Some(0)).await
}

async fn sandbox_admin(env: &Env, method: reqwest::Method, path: &str) {
    let r = common::client().request(method, format!("{}{path}", env.kommo_url)).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

/// Waits until a delivery with `event` was answered 2xx by the backend.
async fn until_delivered(env: &Env, event: &str) {
    let log = env.sandbox.webhook_log();
    let waited = tokio::time::timeout(
        common::SOON,
        log.wait_until(|all| all.iter().any(|d| d.delivered && d.events.iter().any(|e| e == event))),
    )
    .await;
    assert!(waited.is_ok(), "no answered {event} delivery: {:#?}", log.snapshot());
}

const SEEDED: [&str; 15] = [
    numbers::CONTACT_ONE_ACTIVE_LEAD,
    numbers::CONTACT_ONE_UNNAMED_LEAD,
    numbers::CONTACT_TWO_ACTIVE_LEADS,
    numbers::CONTACT_NO_LEADS,
    numbers::CONTACT_ONLY_CLOSED,
    numbers::CONTACT_ONE_CUSTOMER,
    numbers::CONTACT_LEAD_AND_CUSTOMER,
    numbers::SHARED_BY_TWO_CONTACTS,
    numbers::CONTACT_SECOND_NUMBER,
    numbers::SAME_LAST_8_OTHER_AREA,
    numbers::COMPANY_ONE_ACTIVE_LEAD,
    numbers::COMPANY_NO_LEADS,
    numbers::COMPANY_TWO_ACTIVE_LEADS,
    numbers::CONTACT_AND_COMPANY,
    numbers::UNKNOWN,
];

async fn the_first_push_names_the_caller_at_no_kommo_request(db: Db) {
    let env = Env::start(db, indexed).await;
    until_ready(&env).await;
    until_idle(&env).await;
    let mut ws = feed(&env).await;
    env.requests.clear();
    for (i, number) in SEEDED.into_iter().enumerate() {
        let caller = ring(&env, &mut ws, &format!("indexed-{i}"), number).await;
        assert_eq!(answer(&caller), kommo_says(&env, number), "{number}");
    }
    assert_eq!(env.requests.all(), vec![], "ringing asked Kommo");

    // The card gets what Kommo's answer leaves out: the holder, her company
    // and the deal.
    let caller = ring(&env, &mut ws, "maria", numbers::CONTACT_ONE_ACTIVE_LEAD).await;
    let CallerId::Known { entity, holder: Some(holder), company, deal: Some(deal), .. } = caller else {
        panic!("no holder or deal: {caller:?}")
    };
    assert_eq!(entity, EntityRef::new(EntityKind::Lead, 5_756_100));
    assert_eq!((holder.entity.kind, holder.name.as_str()), (EntityKind::Contact, "Maria Gonzalez"));
    let company = company.expect("Maria's company");
    assert_eq!(company.name, "Gonzalez Design Studio");
    assert_eq!(
        env.sandbox.store().get(company.entity).map(|c| c.name.clone()).as_deref(),
        Some("Gonzalez Design Studio")
    );
    let lead = env.sandbox.store().get(entity).cloned().unwrap();
    assert_eq!(
        (deal.status_id, deal.pipeline_id, deal.responsible_user_id),
        (lead.status_id, lead.pipeline_id, lead.responsible_user_id)
    );
    assert_eq!(env.requests.all(), vec![]);
    env.stop().await;
}

/// An unknown caller's call is logged on a new incoming lead; Kommo's
/// webhooks then announce the lead and its contact. The index takes the
/// lead's contact from Kommo's answer to the creation, so no read of the
/// lead follows, and the number's next ring names the new contact and its
/// incoming lead.
async fn an_unknown_callers_new_lead_is_known_at_the_next_ring_without_a_read(db: Db) {
    let env = Env::start(db, indexed).await;
    until_ready(&env).await;
    until_idle(&env).await;
    let mut ws = feed(&env).await;
    assert_eq!(ring(&env, &mut ws, "stranger-1", numbers::UNKNOWN).await, CallerId::Unknown);
    env.requests.clear();
    env.pbx("ended", "stranger-1", numbers::UNKNOWN, "101").await;
    let call = env.call_until("stranger-1", "the call logged", |c| c.note_id.is_some()).await;
    let lead = call.note_entity.expect("logged on a record");
    assert_eq!(lead.kind, EntityKind::Lead, "an incoming lead for an unknown number");
    until_delivered(&env, "add_lead").await;
    until_idle(&env).await;
    let lead_path = format!("/api/v4/leads/{}", lead.id);
    let reads: Vec<_> = env.requests.all().into_iter().filter(|s| s.method == "GET" && s.path == lead_path).collect();
    assert_eq!(reads, vec![], "the new lead's links were read from Kommo");

    let caller = ring(&env, &mut ws, "stranger-2", numbers::UNKNOWN).await;
    let CallerId::Known { entity, holder: Some(holder), .. } = &caller else {
        panic!("the second ring does not name the new contact: {caller:?}")
    };
    assert_eq!(*entity, lead, "Kommo's rule picks the contact's single active lead");
    assert_eq!(holder.entity.kind, EntityKind::Contact);
    assert_eq!(answer(&caller), kommo_says(&env, numbers::UNKNOWN));
    env.stop().await;
}

/// `GET /pbx/{account}/route?number=…`, signed over its query string.
async fn route(env: &Env, number: &str, secret: &str) -> (u16, Value) {
    let query = serde_urlencoded::to_string([("number", number)]).unwrap();
    let ts = common::now_ms() / 1000;
    let sig = callcard_calls::signature::sign(secret.as_bytes(), ts, query.as_bytes());
    let r = common::client()
        .get(format!("{}/pbx/{}/route?{query}", env.backend.base, env.account.id))
        .header("x-callcard-timestamp", ts.to_string())
        .header("x-callcard-signature", sig)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The PBX asks where to ring a caller first: the extension of the
/// responsible user of the record Kommo's caller-ID rule picks, from the
/// index, at no Kommo request; when there is none, the answer says why.
async fn the_pbx_routes_a_caller_to_the_responsible_managers_extension(db: Db) {
    let env = Env::start(db, indexed).await;
    let secret = env.account.secret.clone();
    let (status, early) = route(&env, numbers::CONTACT_ONE_ACTIVE_LEAD, &secret).await;
    if status == 200 && early["reason"] == "index-not-ready" {
        assert_eq!(early["extension"], Value::Null, "{early}");
    }
    until_ready(&env).await;
    until_idle(&env).await;
    // The route learns that the index is ready within a second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while route(&env, numbers::CONTACT_ONE_ACTIVE_LEAD, &secret).await.1["reason"] == "index-not-ready" {
        assert!(tokio::time::Instant::now() < deadline, "the route never saw the index ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.requests.clear();
    let extension_of = |user: u64| match user {
        ANNA => Value::from("101"),
        sandboxed::BRUNO => Value::from("102"),
        _ => Value::Null,
    };
    for number in [numbers::CONTACT_ONE_ACTIVE_LEAD, numbers::CONTACT_NO_LEADS, numbers::COMPANY_NO_LEADS] {
        let (status, answer) = route(&env, number, &secret).await;
        assert_eq!(status, 200, "{answer}");
        let (record, _) = kommo_says(&env, number).expect("seeded");
        let responsible = env.sandbox.store().get(record).unwrap().responsible_user_id;
        assert_eq!(answer["record"], json!({"kind": record.kind.as_str(), "id": record.id}), "{number}");
        assert_eq!(answer["user_id"], json!(responsible), "{number}: {answer}");
        assert_eq!(answer["extension"], extension_of(responsible), "{number}: {answer}");
    }
    let (_, unknown) = route(&env, numbers::UNKNOWN, &secret).await;
    assert_eq!(unknown, json!({"extension": null, "reason": "unknown-number"}));
    assert_eq!(env.requests.all(), vec![], "routing asked Kommo");
    let (status, refused) = route(&env, numbers::UNKNOWN, "not-the-secret").await;
    assert_eq!((status, refused["status"].as_u64()), (401, Some(401)), "{refused}");
    let (status, bad) = route(&env, "<script>", &secret).await;
    assert_eq!((status, bad["field"].as_str()), (422, Some("number")), "{bad}");
    env.stop().await;
}

/// A contact's company is named on the ring, and a company renamed in Kommo
/// is named anew at the next ring (its `update_company` webhook), at no
/// Kommo request.
async fn a_renamed_company_shows_on_the_next_ring(db: Db) {
    let env = Env::start(db, indexed).await;
    until_ready(&env).await;
    until_idle(&env).await;
    let mut ws = feed(&env).await;
    let company_of = |caller: &CallerId| match caller {
        CallerId::Known { company: Some(c), .. } => (c.entity, c.name.clone()),
        other => panic!("no company: {other:?}"),
    };
    let (studio, name) = company_of(&ring(&env, &mut ws, "before", numbers::CONTACT_ONE_ACTIVE_LEAD).await);
    assert_eq!((studio.kind, name.as_str()), (EntityKind::Company, "Gonzalez Design Studio"));

    let path = format!("/api/v4/companies/{}", studio.id);
    kommo_api(&env, reqwest::Method::PATCH, &path, json!({"name": "Gonzalez & Ruiz Studio"})).await;
    until_delivered(&env, "update_company").await;
    env.requests.clear();
    let after = ring(&env, &mut ws, "after", numbers::CONTACT_ONE_ACTIVE_LEAD).await;
    assert_eq!(company_of(&after), (studio, "Gonzalez & Ruiz Studio".to_string()));
    // The company holding no number of its own does not change who is calling.
    assert_eq!(answer(&after), kommo_says(&env, numbers::CONTACT_ONE_ACTIVE_LEAD));
    assert_eq!(env.requests.all(), vec![], "ringing asked Kommo");
    env.stop().await;
}

async fn a_status_and_a_name_changed_in_kommo_show_on_the_next_ring(db: Db) {
    let env = Env::start(db, indexed).await;
    until_ready(&env).await;
    let mut ws = feed(&env).await;
    let before = ring(&env, &mut ws, "before", numbers::CONTACT_ONE_ACTIVE_LEAD).await;
    let CallerId::Known { entity: lead, holder: Some(maria), deal: Some(deal), .. } = before else {
        panic!("{before:?}")
    };
    // Another active status of the default pipeline (negotiation or decision).
    let moved_to = if deal.status_id == 7_100_012 { 7_100_013 } else { 7_100_012 };

    kommo_api(&env, reqwest::Method::PATCH, &format!("/api/v4/leads/{}", lead.id), json!({"status_id": moved_to}))
        .await;
    let path = format!("/api/v4/contacts/{}", maria.entity.id);
    kommo_api(&env, reqwest::Method::PATCH, &path, json!({"name": "Maria Gonzalez-Ruiz"})).await;
    until_delivered(&env, "status_lead").await;
    until_delivered(&env, "update_contact").await;

    let after = ring(&env, &mut ws, "after", numbers::CONTACT_ONE_ACTIVE_LEAD).await;
    let CallerId::Known { entity, holder: Some(holder), deal: Some(deal), .. } = after else { panic!("{after:?}") };
    assert_eq!(entity, lead);
    assert_eq!(holder.name, "Maria Gonzalez-Ruiz");
    assert_eq!(deal.status_id, moved_to);

    // Closing the lead makes the renamed contact the answer, as in Kommo.
    let log = env.sandbox.webhook_log();
    let before_close = log.snapshot().len();
    kommo_api(&env, reqwest::Method::PATCH, &format!("/api/v4/leads/{}", lead.id), json!({"status_id": 142})).await;
    tokio::time::timeout(
        common::SOON,
        log.wait_until(|all| {
            all[before_close..].iter().any(|d| d.delivered && d.events.iter().any(|e| e == "status_lead"))
        }),
    )
    .await
    .expect("the status change is delivered");
    let closed = ring(&env, &mut ws, "closed", numbers::CONTACT_ONE_ACTIVE_LEAD).await;
    assert_eq!(answer(&closed), Some((maria.entity, "Maria Gonzalez-Ruiz".to_string())));
    assert_eq!(answer(&closed), kommo_says(&env, numbers::CONTACT_ONE_ACTIVE_LEAD));
    env.stop().await;
}

async fn a_deleted_contact_is_not_matched_and_a_restored_one_is_again(db: Db) {
    let env = Env::start(db, indexed).await;
    until_ready(&env).await;
    let mut ws = feed(&env).await;
    let number = numbers::CONTACT_NO_LEADS;
    let first = ring(&env, &mut ws, "present", number).await;
    let Some((contact, name)) = answer(&first) else { panic!("{first:?}") };
    assert_eq!(contact.kind, EntityKind::Contact);

    sandbox_admin(&env, reqwest::Method::DELETE, &format!("/sandbox/records/contacts/{}", contact.id)).await;
    until_delivered(&env, "delete_contact").await;
    let deleted = ring(&env, &mut ws, "deleted", number).await;
    assert_eq!(answer(&deleted), kommo_says(&env, number));
    assert_ne!(answer(&deleted), Some((contact, name.clone())), "a deleted contact still answered");

    sandbox_admin(&env, reqwest::Method::POST, &format!("/sandbox/records/contacts/{}/restore", contact.id)).await;
    until_delivered(&env, "restore_contact").await;
    let restored = ring(&env, &mut ws, "restored", number).await;
    assert_eq!(answer(&restored), Some((contact, name)));
    env.stop().await;
}

async fn a_restart_in_the_middle_of_the_sync_resumes_at_the_stored_page(db: Db) {
    // No workers at first: the sync job waits while the account grows.
    let mut env = Env::start(db, |c| {
        indexed(c);
        c.queue.workers = 0;
    })
    .await;
    let contacts: Vec<Value> = (0..600)
        .map(|i| {
            json!({"name": format!("Bulk {i}"), "custom_fields_values": [{"field_code": "PHONE",
                "values": [{"value": format!("+1 555 7{i:06}"), "enum_code": "WORK"}]}]})
        })
        .collect();
    for chunk in contacts.chunks(250) {
        kommo_api(&env, reqwest::Method::POST, "/api/v4/contacts", json!(chunk)).await;
    }
    // The webhook, leads, customers and the first page of contacts succeed;
    // then Kommo fails until the restart.
    env.faults(json!({"script": ["ok", "ok", "ok", "ok"], "error_rate": 1.0, "error_status": 503})).await;
    env.requests.clear();
    let run = |c: &mut Config| {
        c.queue.workers = 1;
        c.queue.max_attempts = 1000;
    };
    env.restart(run).await;
    let store = env.backend.backend.store().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state = store.phonebook_sync(env.account.id).await.unwrap().unwrap();
        let failed_page_2 =
            env.requests.all().iter().any(|s| s.path == "/api/v4/contacts" && s.query.contains("page=2"));
        if (state.phase, state.kind, state.page) == (SyncPhase::Listing, EntityKind::Contact, 2) && failed_page_2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sync did not stop at contacts page 2: {state:?} {:?}",
            env.requests.all()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!store.phonebook_sync(env.account.id).await.unwrap().unwrap().ready);

    // A new process, and Kommo is fine again.
    common::client().delete(format!("{}/sandbox/faults", env.kommo_url)).send().await.unwrap();
    env.restart(run).await;
    until_ready(&env).await;
    let seen = env.requests.all();
    let gets = |path: &str, page: &str| {
        seen.iter()
            .filter(|s| s.method == "GET" && s.path == path && s.query.split('&').any(|q| q == format!("page={page}")))
            .count()
    };
    assert_eq!(seen.iter().filter(|s| s.method == "POST" && s.path == "/api/v4/webhooks").count(), 1, "{seen:?}");
    assert_eq!(gets("/api/v4/leads", "1"), 1, "leads were read again: {seen:?}");
    assert_eq!(gets("/api/v4/contacts", "1"), 1, "contacts page 1 was read again: {seen:?}");
    assert!(gets("/api/v4/contacts", "3") >= 1, "{seen:?}");
    let (holders, _) = env.backend.backend.store().phonebook_size(env.account.id).await.unwrap();
    assert!(holders >= 600, "{holders} holders");

    // A contact from the last page answers the phone by name.
    let mut ws = feed(&env).await;
    let caller = ring(&env, &mut ws, "bulk", "+1 555 7000599").await;
    assert!(matches!(&caller, CallerId::Known { name, .. } if name == "Bulk 599"), "{caller:?}");
    env.stop().await;
}

async fn the_webhook_route_tells_nobody_which_accounts_exist(db: Db) {
    let env = Env::start(db, indexed).await;
    let store = env.backend.backend.store();
    let destination = store.phonebook_sync(env.account.id).await.unwrap().unwrap().hook_destination;
    let secret = destination.rsplit('/').next().unwrap().to_string();
    let base = &env.backend.base;
    let post = |path: String, body: &'static str| async move {
        let r = common::client()
            .post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        (status, content_type, r.json::<Value>().await.unwrap())
    };
    let body = "contacts[update][0][id]=1";
    let wrong_secret = post(format!("/kommo/{}/hooks/not-the-secret", env.account.id), body).await;
    let unknown_account = post(format!("/kommo/{}/hooks/{secret}", env.account.id + 1), body).await;
    let not_an_id = post(format!("/kommo/acme/hooks/{secret}"), body).await;
    assert_eq!(wrong_secret.0, 404);
    assert_eq!(wrong_secret.1, "application/problem+json");
    assert_eq!(wrong_secret, unknown_account);
    assert_eq!(wrong_secret, not_an_id);

    // The right destination: a body that is not Kommo's form is refused by
    // name, a delivery is applied.
    let bad = post(format!("/kommo/{}/hooks/{secret}", env.account.id), "contacts[add][0][name]=Nobody").await;
    assert_eq!((bad.0, bad.2["field"].as_str()), (400, Some("body")), "{bad:?}");
    let good = post(
        format!("/kommo/{}/hooks/{secret}", env.account.id),
        "contacts[add][0][id]=424242&contacts[add][0][name]=Walk-in&contacts[add][0][updated_at]=1700000000\
         &contacts[add][0][custom_fields][0][code]=PHONE&contacts[add][0][custom_fields][0][values][0][value]=%2B15551234567",
    )
    .await;
    assert_eq!(good.0, 200, "{good:?}");
    let book = store.phonebook_for(env.account.id, "+1 555 123 4567").await.unwrap();
    let walk_in = book.identify("5551234567").expect("the added contact is in the index");
    assert_eq!((walk_in.element, walk_in.name.as_str()), (EntityRef::new(EntityKind::Contact, 424_242), "Walk-in"));
    env.stop().await;
}

async fn a_missed_webhook_heals_at_the_next_reconciliation(db: Db) {
    let env = Env::start(db, |c| {
        indexed(c);
        c.caller_index_reconcile_interval = Duration::from_millis(300);
    })
    .await;
    until_ready(&env).await;
    let store = env.backend.backend.store();
    let destination = store.phonebook_sync(env.account.id).await.unwrap().unwrap().hook_destination;
    // Kommo loses the subscription: changes are no longer posted.
    kommo_api(&env, reqwest::Method::DELETE, "/api/v4/webhooks", json!({"destination": destination})).await;
    let number = numbers::CONTACT_NO_LEADS;
    let mut ws = feed(&env).await;
    let Some((contact, _)) = answer(&ring(&env, &mut ws, "before", number).await) else { panic!("not known") };
    let path = format!("/api/v4/contacts/{}", contact.id);
    kommo_api(&env, reqwest::Method::PATCH, &path, json!({"name": "Oliver Smith-Jones"})).await;

    let deadline = tokio::time::Instant::now() + common::SOON;
    loop {
        let book = store.phonebook_for(env.account.id, number).await.unwrap();
        if book.identify(number).is_some_and(|c| c.name == "Oliver Smith-Jones") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the reconciliation never brought the new name");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let log = env.sandbox.webhook_log().snapshot();
    assert!(!log.iter().any(|d| d.events.iter().any(|e| e == "update_contact")), "a webhook came after all: {log:?}");
    let after = ring(&env, &mut ws, "after", number).await;
    assert_eq!(answer(&after), Some((contact, "Oliver Smith-Jones".to_string())));
    env.stop().await;
}

async fn changes_apply_in_any_order_and_a_stale_page_cannot_resurrect(db: Db) {
    let node = common::Instance::start(common::config(&db)).await;
    let store = node.backend.store();
    let account = common::Account::random().id;
    let anna = EntityRef::new(EntityKind::Contact, 1);
    let holder = |name: &str, updated_at: i64, phone: &str| {
        IndexChange::Holder(HolderData {
            entity: anna,
            name: Some(name.into()),
            created_at: Some(100),
            updated_at,
            phones: Some(vec![phone.into()]),
            responsible_user_id: None,
            company: None,
        })
    };
    let who = |number: &'static str| async move {
        store.phonebook_for(account, number).await.unwrap().identify(number).map(|c| c.name)
    };
    const LINE: &str = "+1 830 570 3077";
    store.apply_phonebook(account, &[holder("Anna new", 200, LINE)]).await.unwrap();
    // Older data (a webhook retried late, an old page) changes nothing, numbers included.
    store.apply_phonebook(account, &[holder("Anna old", 150, "+1 999 000 1111")]).await.unwrap();
    assert_eq!(who(LINE).await.as_deref(), Some("Anna new"));
    assert_eq!(who("+1 999 000 1111").await, None);
    store.apply_phonebook(account, &[holder("Anna same second", 200, LINE)]).await.unwrap();
    assert_eq!(who(LINE).await.as_deref(), Some("Anna same second"));

    // Deleted at 300: a page read before (updated 250) does not bring her back...
    store.apply_phonebook(account, &[IndexChange::Delete { record: anna, at: 300 }]).await.unwrap();
    assert_eq!(who(LINE).await, None);
    store.apply_phonebook(account, &[holder("Anna listed", 250, LINE)]).await.unwrap();
    assert_eq!(who(LINE).await, None, "a stale page resurrected a deleted contact");
    // ...a restore does, and so does a change made after the deletion.
    store.apply_phonebook(account, &[IndexChange::Restore { record: anna }]).await.unwrap();
    assert_eq!(who(LINE).await.as_deref(), Some("Anna listed"));
    store.apply_phonebook(account, &[IndexChange::Delete { record: anna, at: 400 }]).await.unwrap();
    store.apply_phonebook(account, &[holder("Anna back", 401, LINE)]).await.unwrap();
    assert_eq!(who(LINE).await.as_deref(), Some("Anna back"));

    // Her company goes with her row: an older page cannot move her to another
    // one, an entry that does not say it keeps it, a deleted company is named
    // nowhere.
    let acme = EntityRef::new(EntityKind::Company, 2);
    let company = |name: &str| {
        IndexChange::Holder(HolderData {
            entity: acme,
            name: Some(name.into()),
            created_at: Some(50),
            updated_at: 100,
            phones: Some(Vec::new()),
            responsible_user_id: None,
            company: None,
        })
    };
    let works_at = |company_id: Option<u64>, updated_at: i64| match holder("Anna back", updated_at, LINE) {
        IndexChange::Holder(h) => IndexChange::Holder(HolderData { company: Some(company_id), ..h }),
        _ => unreachable!(),
    };
    let company_of = || async move {
        store.phonebook_for(account, LINE).await.unwrap().identify(LINE).and_then(|c| c.company).map(|c| c.1)
    };
    store.apply_phonebook(account, &[works_at(Some(acme.id), 402), company("Acme")]).await.unwrap();
    assert_eq!(company_of().await.as_deref(), Some("Acme"));
    store.apply_phonebook(account, &[works_at(None, 401), holder("Anna back", 403, LINE)]).await.unwrap();
    assert_eq!(company_of().await.as_deref(), Some("Acme"), "a stale page or an unsaid company moved her");
    store.apply_phonebook(account, &[IndexChange::Delete { record: acme, at: 500 }]).await.unwrap();
    assert_eq!(company_of().await, None, "a deleted company is named");
    store.apply_phonebook(account, &[IndexChange::Restore { record: acme }]).await.unwrap();
    assert_eq!(company_of().await.as_deref(), Some("Acme"));
    store.apply_phonebook(account, &[works_at(None, 404)]).await.unwrap();
    assert_eq!(company_of().await, None, "she left the company");

    // Deals too: the newer status stays, whatever order they come in.
    let lead = EntityRef::new(EntityKind::Lead, 9);
    let deal = |status_id: u64, updated_at: i64| {
        IndexChange::Deal(DealData {
            entity: lead,
            name: Some("Headsets".into()),
            status_id: Some(status_id),
            pipeline_id: Some(3),
            responsible_user_id: Some(ANNA),
            updated_at,
        })
    };
    let links = IndexChange::HolderLinks { holder: anna, deals: vec![lead] };
    store.apply_phonebook(account, &[deal(7_100_012, 500), links, deal(142, 450)]).await.unwrap();
    let caller = store.phonebook_for(account, LINE).await.unwrap().identify(LINE).unwrap();
    assert_eq!((caller.element, caller.deal.map(|d| d.status_id)), (lead, Some(7_100_012)));
    node.stop().await;
}

on_both_stores!(
    changes_apply_in_any_order_and_a_stale_page_cannot_resurrect,
    a_missed_webhook_heals_at_the_next_reconciliation,
    the_first_push_names_the_caller_at_no_kommo_request,
    an_unknown_callers_new_lead_is_known_at_the_next_ring_without_a_read,
    the_pbx_routes_a_caller_to_the_responsible_managers_extension,
    a_status_and_a_name_changed_in_kommo_show_on_the_next_ring,
    a_renamed_company_shows_on_the_next_ring,
    a_deleted_contact_is_not_matched_and_a_restored_one_is_again,
    a_restart_in_the_middle_of_the_sync_resumes_at_the_stored_page,
    the_webhook_route_tells_nobody_which_accounts_exist,
);
