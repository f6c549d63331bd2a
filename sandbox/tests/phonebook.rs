//! The local phonebook (`callcard_calls::phonebook`) answers caller ID exactly
//! as the sandbox's `POST /api/v2/events` does, for random accounts: contacts
//! and companies sharing numbers, numbers written with formatting and other
//! prefixes, leads and customers in every status, creation-time ties.
//!
//! The two implementations are independent on purpose: the sandbox's stands
//! for Kommo, so agreeing with it is what "follows Kommo's rule" means.

mod common;

use callcard_calls::phonebook::{Deal, DealState, Holder, Phonebook};
use callcard_calls::{EntityKind, EntityRef};
use proptest::prelude::*;
use serde_json::{json, Value};

/// The sandbox's lead statuses (its default pipeline) and customer statuses;
/// 142/143 are Kommo's fixed closed statuses, the customer "lost" status is
/// the sandbox's reading of an inactive customer.
const LEAD_STATUSES: [u64; 6] = [7_100_010, 7_100_011, 7_100_012, 7_100_013, 142, 143];
const CUSTOMER_STATUSES: [u64; 3] = [9_100_001, 9_100_002, 9_100_003];

/// Numbers whose last 8 digits are few, so holders collide often.
const LINES: [&str; 3] = ["83057030", "55501000", "44412345"];

#[derive(Clone, Debug)]
struct HolderSpec {
    company: bool,
    name: String,
    created_at: i64,
    /// (line index, prefix, formatted?)
    phones: Vec<(usize, u8, bool)>,
}

#[derive(Clone, Debug)]
struct DealSpec {
    customer: bool,
    name: String,
    status: usize,
    holders: Vec<prop::sample::Index>,
}

fn holder_spec() -> impl Strategy<Value = HolderSpec> {
    (any::<bool>(), "[A-Z][a-z]{0,5}", 0i64..3, prop::collection::vec((0..LINES.len(), 0u8..4, any::<bool>()), 0..3))
        .prop_map(|(company, name, created_at, phones)| HolderSpec {
            company,
            name,
            created_at: 1_700_000_000 + created_at,
            phones,
        })
}

fn deal_spec() -> impl Strategy<Value = DealSpec> {
    (
        any::<bool>(),
        prop_oneof![Just(String::new()), "[A-Z][a-z]{0,5}"],
        0usize..6,
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    )
        .prop_map(|(customer, name, status, holders)| DealSpec { customer, name, status, holders })
}

/// A line as a CRM might store it: another country/area prefix (the last 8
/// digits are what counts), with or without punctuation.
fn written(line: usize, prefix: u8, formatted: bool) -> String {
    let d = LINES[line];
    let prefix = ["", "1", "7", "4420"][prefix as usize];
    if formatted {
        format!("+{prefix} ({}) {}-{}", &d[..3], &d[3..6], &d[6..])
    } else {
        format!("{prefix}{d}")
    }
}

fn phone_field(phones: &[String]) -> Value {
    json!([{"field_code": "PHONE", "values": phones.iter().map(|p| json!({"value": p, "enum_code": "WORK"})).collect::<Vec<_>>()}])
}

fn created_ids(answer: &Value, path: &str) -> Vec<u64> {
    answer["_embedded"][path].as_array().unwrap().iter().map(|x| x["id"].as_u64().unwrap()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_phonebook_answers_as_kommo_does(
        holders in prop::collection::vec(holder_spec(), 0..7),
        deals in prop::collection::vec(deal_spec(), 0..7),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async {
            let kommo = common::start().await;
            kommo.sandbox.reset(false);
            let mut book = Phonebook::new();

            // Contacts and companies, each kind in one batch.
            let mut refs = vec![EntityRef::new(EntityKind::Contact, 0); holders.len()];
            for company in [false, true] {
                let kind = if company { EntityKind::Company } else { EntityKind::Contact };
                let of_kind: Vec<(usize, &HolderSpec)> = holders.iter().enumerate().filter(|(_, h)| h.company == company).collect();
                if of_kind.is_empty() {
                    continue;
                }
                let body: Vec<Value> = of_kind.iter().map(|(_, h)| {
                    let phones: Vec<String> = h.phones.iter().map(|&(l, p, f)| written(l, p, f)).collect();
                    json!({"name": h.name, "created_at": h.created_at, "custom_fields_values": phone_field(&phones)})
                }).collect();
                let answer = kommo.post_ok(&format!("/api/v4/{}", kind.api_path()), json!(body)).await;
                for ((i, h), id) in of_kind.iter().zip(created_ids(&answer, kind.api_path())) {
                    refs[*i] = EntityRef::new(kind, id);
                    book.upsert_holder(Holder {
                        entity: refs[*i],
                        name: h.name.clone(),
                        created_at: h.created_at,
                        phones: h.phones.iter().map(|&(l, p, f)| written(l, p, f)).collect(),
                        responsible_user_id: 0,
                        company: None,
                    }).unwrap();
                }
            }

            // Leads and customers, linked on creation as the API allows.
            for d in &deals {
                let kind = if d.customer { EntityKind::Customer } else { EntityKind::Lead };
                let status = if d.customer { CUSTOMER_STATUSES[d.status % 3] } else { LEAD_STATUSES[d.status] };
                let mut linked: Vec<EntityRef> = if refs.is_empty() { Vec::new() } else { d.holders.iter().map(|i| refs[i.index(refs.len())]).collect() };
                linked.sort_by_key(|r| (r.kind.api_path(), r.id));
                linked.dedup();
                let ids = |k: EntityKind| linked.iter().filter(|r| r.kind == k).map(|r| json!({"id": r.id})).collect::<Vec<_>>();
                let body = json!([{"name": d.name, "status_id": status,
                    "_embedded": {"contacts": ids(EntityKind::Contact), "companies": ids(EntityKind::Company)}}]);
                let answer = kommo.post_ok(&format!("/api/v4/{}", kind.api_path()), body).await;
                let id = created_ids(&answer, kind.api_path())[0];
                let closed = if d.customer { status == 9_100_003 } else { status == 142 || status == 143 };
                book.upsert_deal(Deal {
                    entity: EntityRef::new(kind, id),
                    name: d.name.clone(),
                    state: if closed { DealState::Closed } else { DealState::Active },
                    status_id: status,
                    pipeline_id: 0,
                    responsible_user_id: 0,
                    holders: linked,
                }).unwrap();
            }

            // Every line, written several ways, and a number nobody has.
            let mut numbers: Vec<String> = (0..LINES.len()).flat_map(|l| [written(l, 0, false), written(l, 3, true)]).collect();
            numbers.push("+1 999 000 0000".into());
            for number in numbers {
                let answer = kommo.post_ok("/api/v2/events", json!({"add": [{"type": "phone_call", "phone_number": number}]})).await;
                let kommo_says = answer["_embedded"]["items"].as_array().unwrap().first().map(|item| {
                    let kind = EntityKind::from_element_type(item["element_type"].as_u64().unwrap() as u8).unwrap();
                    EntityRef::new(kind, item["element_id"].as_u64().unwrap())
                });
                let local = book.identify(&number);
                prop_assert_eq!(local.as_ref().map(|c| c.element), kommo_says, "number {} in {:?} / {:?}", number, holders, deals);
                if let Some(caller) = local {
                    // The name is the one the sandbox records for Kommo's notification.
                    let inspect: Value = kommo.get("/sandbox/inspect").await.json().await.unwrap();
                    let recorded = inspect["caller_id_events"].as_array().unwrap().last().unwrap()["name"].clone();
                    prop_assert_eq!(json!(caller.name), recorded);
                }
            }
            Ok(())
        })?;
    }
}
