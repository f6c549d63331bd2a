//! The caller index answers as Kommo does, for random accounts (proptest):
//! contacts and companies sharing numbers, numbers written with formatting
//! and other prefixes, leads and customers in every status, creation-time
//! ties. Each account is written into the sandbox through Kommo's API; the
//! backend then builds its index from it exactly as at installation (the
//! paged listings, into SQLite or PostgreSQL), and for every number the
//! index's answer must be the sandbox's (`kommo_sandbox::identify_caller`,
//! the rule behind its `POST /api/v2/events`).
//!
//! `sandbox/tests/phonebook.rs` holds the pure rule to the sandbox; this
//! holds the whole index (sync, store, the store's query, the rule) to it.

mod common;
mod sandboxed;

use callcard_calls::feed::CallerId;
use callcard_calls::{EntityKind, EntityRef};
use common::Db;
use proptest::prelude::*;
use sandboxed::{kommo_api, Env};
use serde_json::{json, Value};
use std::time::Duration;

/// The sandbox's lead statuses (its default pipeline, then Kommo's fixed
/// won/lost 142/143) and customer statuses (the last is its inactive one).
const LEAD_STATUSES: [u64; 6] = [7_100_010, 7_100_011, 7_100_012, 7_100_013, 142, 143];
const CUSTOMER_STATUSES: [u64; 3] = [9_100_001, 9_100_002, 9_100_003];

/// Lines whose last 8 digits are few, so holders collide often.
const LINES: [&str; 3] = ["83057030", "55501000", "44412345"];

#[derive(Clone, Debug)]
struct Holder {
    company: bool,
    name: String,
    created_at: i64,
    /// (line, prefix, written with formatting)
    phones: Vec<(usize, u8, bool)>,
}

#[derive(Clone, Debug)]
struct Deal {
    customer: bool,
    name: String,
    status: usize,
    holders: Vec<prop::sample::Index>,
}

fn holder() -> impl Strategy<Value = Holder> {
    (
        any::<bool>(),
        "[A-Z][a-z]{2,6}",
        1_600_000_000i64..1_600_000_004,
        prop::collection::vec((0..3usize, 0..4u8, any::<bool>()), 1..3),
    )
        .prop_map(|(company, name, created_at, phones)| Holder { company, name, created_at, phones })
}

fn deal() -> impl Strategy<Value = Deal> {
    (any::<bool>(), "[A-Z][a-z]{2,8}", 0..6usize, prop::collection::vec(any::<prop::sample::Index>(), 0..3))
        .prop_map(|(customer, name, status, holders)| Deal { customer, name, status, holders })
}

/// Line `line` as a person might have typed it: another country or area
/// prefix, with or without spaces and dashes.
fn written(line: usize, prefix: u8, formatted: bool) -> String {
    let digits = LINES[line];
    let prefix = ["+1 ", "8 ", "+44 ", ""][prefix as usize];
    if formatted {
        format!("{prefix}({}) {}-{}", &digits[..2], &digits[2..5], &digits[5..])
    } else {
        format!("{}{digits}", prefix.replace(' ', ""))
    }
}

fn created_ids(answer: &Value, kind: &str) -> Vec<u64> {
    answer["_embedded"][kind].as_array().unwrap().iter().map(|e| e["id"].as_u64().unwrap()).collect()
}

/// One random account: written into the sandbox, indexed by a backend
/// installed afterwards, then every number compared.
async fn the_index_answers_as_kommo_does(db: Db, holders: Vec<Holder>, deals: Vec<Deal>) {
    // Installed without the index, so the account can be emptied and filled first.
    let mut env = Env::start(db, |c| c.caller_index = false).await;
    env.sandbox.reset(false);
    let mut refs = vec![EntityRef::new(EntityKind::Contact, 0); holders.len()];
    for kind in [EntityKind::Contact, EntityKind::Company] {
        let of_kind: Vec<(usize, &Holder)> =
            holders.iter().enumerate().filter(|(_, h)| h.company == (kind == EntityKind::Company)).collect();
        if of_kind.is_empty() {
            continue;
        }
        let body: Vec<Value> = of_kind
            .iter()
            .map(|(_, h)| {
                let phones: Vec<Value> =
                    h.phones.iter().map(|&(l, p, f)| json!({"value": written(l, p, f), "enum_code": "WORK"})).collect();
                json!({"name": h.name, "created_at": h.created_at,
                       "custom_fields_values": [{"field_code": "PHONE", "values": phones}]})
            })
            .collect();
        let answer = kommo_api(&env, reqwest::Method::POST, &format!("/api/v4/{}", kind.api_path()), json!(body)).await;
        for ((i, _), id) in of_kind.iter().zip(created_ids(&answer, kind.api_path())) {
            refs[*i] = EntityRef::new(kind, id);
        }
    }
    for kind in [EntityKind::Lead, EntityKind::Customer] {
        let body: Vec<Value> = deals
            .iter()
            .filter(|d| d.customer == (kind == EntityKind::Customer))
            .map(|d| {
                let status = if d.customer { CUSTOMER_STATUSES[d.status % 3] } else { LEAD_STATUSES[d.status] };
                let mut linked: Vec<EntityRef> = if refs.is_empty() {
                    Vec::new()
                } else {
                    d.holders.iter().map(|i| refs[i.index(refs.len())]).collect()
                };
                linked.sort_by_key(|r| (r.kind.api_path(), r.id));
                linked.dedup();
                let ids = |k: EntityKind| {
                    linked.iter().filter(|r| r.kind == k).map(|r| json!({"id": r.id})).collect::<Vec<_>>()
                };
                json!({"name": d.name, "status_id": status,
                       "_embedded": {"contacts": ids(EntityKind::Contact), "companies": ids(EntityKind::Company)}})
            })
            .collect();
        if !body.is_empty() {
            kommo_api(&env, reqwest::Method::POST, &format!("/api/v4/{}", kind.api_path()), json!(body)).await;
        }
    }

    // Now the index: the backend with it on, installed again (the first sync).
    env.restart(|c| c.caller_index = true).await;
    env.install().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !env.backend.backend.store().phonebook_sync(env.account.id).await.unwrap().is_some_and(|s| s.ready) {
        assert!(tokio::time::Instant::now() < deadline, "the caller index never got ready");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Every line, written several ways, and a number nobody has.
    let mut numbers: Vec<String> = (0..LINES.len()).flat_map(|l| [written(l, 0, false), written(l, 2, true)]).collect();
    numbers.push("+1 999 000 0000".into());
    for number in numbers {
        let kommo_says = kommo_sandbox::identify_caller(&env.sandbox.store(), &number).map(|m| (m.element, m.name));
        let index_says =
            match callcard_backend::caller_id_from_index(env.backend.backend.store(), env.account.id, &number)
                .await
                .unwrap()
            {
                CallerId::Known { entity, name, .. } => Some((entity, name)),
                _ => None,
            };
        assert_eq!(index_says, kommo_says, "number {number} in {holders:?} / {deals:?}");
    }
    env.stop().await;
}

/// Which store a run of random accounts goes to.
#[derive(Clone, Copy)]
enum Store {
    Sqlite,
    Postgres,
}

impl Store {
    async fn fresh(self) -> Db {
        match self {
            Store::Sqlite => Db::sqlite().await,
            Store::Postgres => Db::postgres().await,
        }
    }
}

/// `cases` random accounts, each on a fresh database of `store`.
fn check(store: Store, cases: u32) {
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(holders in prop::collection::vec(holder(), 0..7), deals in prop::collection::vec(deal(), 0..7))| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async { the_index_answers_as_kommo_does(store.fresh().await, holders, deals).await });
    });
}

#[test]
fn random_accounts_on_sqlite() {
    check(Store::Sqlite, 12);
}

#[test]
fn random_accounts_on_postgres() {
    check(Store::Postgres, 6);
}
