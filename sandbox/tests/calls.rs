//! `POST /api/v4/calls`: matching on 10 digits, per-item errors, notes.
mod common;

use kommo_sandbox::seed::numbers::*;
use serde_json::{json, Value};

fn call(phone: &str, rid: &str) -> Value {
    json!({"direction": "inbound", "duration": 42, "source": "callcard", "phone": phone, "uniq": format!("u-{rid}"),
           "link": "https://pbx.example/rec/1.mp3", "call_status": 4, "call_result": "Talked", "request_id": rid,
           "responsible_user_id": 8375357})
}

async fn target(k: &common::Kommo, phone: &str) -> (String, u64) {
    let v = k.post_ok("/api/v4/calls", json!([call(phone, "r")])).await;
    let c = &v["_embedded"]["calls"][0];
    assert!(v["_embedded"]["errors"].is_null(), "{v}");
    (c["entity_type"].as_str().unwrap().to_string(), c["entity_id"].as_u64().unwrap())
}

#[tokio::test]
async fn matching_branches() {
    let k = common::start().await;
    assert_eq!(target(&k, CONTACT_ONE_ACTIVE_LEAD).await, ("leads".into(), 5756100));
    assert_eq!(
        target(&k, CONTACT_ONE_CUSTOMER).await,
        ("customers".into(), k.id_of("customers", "Kim Bakery weekly order").await)
    );
    assert_eq!(
        target(&k, CONTACT_LEAD_AND_CUSTOMER).await,
        ("contacts".into(), k.id_of("contacts", "Isabella Garcia").await)
    );
    assert_eq!(
        target(&k, CONTACT_TWO_ACTIVE_LEADS).await,
        ("contacts".into(), k.id_of("contacts", "Sofia Rossi").await)
    );
    assert_eq!(target(&k, CONTACT_NO_LEADS).await, ("contacts".into(), k.id_of("contacts", "Oliver Smith").await));
    assert_eq!(
        target(&k, COMPANY_ONE_ACTIVE_LEAD).await,
        ("leads".into(), k.id_of("leads", "Northwind 200 headsets").await)
    );
    assert_eq!(
        target(&k, COMPANY_NO_LEADS).await,
        ("companies".into(), k.id_of("companies", "Globex Corporation").await)
    );
    assert_eq!(target(&k, COMPANY_ONE_CUSTOMER).await.0, "customers");
    assert_eq!(target(&k, "(830) 570-3077").await, ("leads".into(), 5756100));
}

#[tokio::test]
async fn unmatched_calls_are_not_added_and_reported_per_item() {
    let k = common::start().await;
    let before = k.inspect().await["counts"]["calls"].as_u64().unwrap();
    let v = k
        .post_ok(
            "/api/v4/calls",
            json!([call(CONTACT_ONE_ACTIVE_LEAD, "a"), call(UNKNOWN, "b"), call(SAME_LAST_8_OTHER_AREA, "c")]),
        )
        .await;
    let calls = v["_embedded"]["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["request_id"], "a");
    assert_eq!(calls[0]["account_id"], 31415926);
    let errors = v["_embedded"]["errors"].as_array().unwrap();
    let rids: Vec<&str> = errors.iter().map(|e| e["request_id"].as_str().unwrap()).collect();
    assert_eq!(rids, ["b", "c"]);
    assert_eq!(k.inspect().await["counts"]["calls"].as_u64().unwrap(), before + 1);
}

#[tokio::test]
async fn a_call_is_a_note_on_the_record_and_is_not_deduplicated() {
    let k = common::start().await;
    let a = k.post_ok("/api/v4/calls", json!([call(CONTACT_ONE_ACTIVE_LEAD, "1")])).await;
    let b = k.post_ok("/api/v4/calls", json!([call(CONTACT_ONE_ACTIVE_LEAD, "1")])).await;
    let id_a = a["_embedded"]["calls"][0]["id"].as_u64().unwrap();
    let id_b = b["_embedded"]["calls"][0]["id"].as_u64().unwrap();
    assert_ne!(id_a, id_b, "Kommo does not deduplicate calls");
    let note = k.get_ok(&format!("/api/v4/leads/5756100/notes/{id_a}")).await;
    assert_eq!(note["note_type"], "call_in");
    assert_eq!(note["params"]["uniq"], "u-1");
    assert_eq!(note["params"]["duration"], 42);
    assert_eq!(note["params"]["phone"], CONTACT_ONE_ACTIVE_LEAD);
    assert_eq!(note["params"]["link"], "https://pbx.example/rec/1.mp3");
    assert_eq!(note["responsible_user_id"], 8375357);
    let mut out = call(CONTACT_NO_LEADS, "o");
    out["direction"] = json!("outbound");
    let v = k.post_ok("/api/v4/calls", json!([out])).await;
    let c = &v["_embedded"]["calls"][0];
    let note = k.get_ok(&format!("/api/v4/contacts/{}/notes/{}", c["entity_id"], c["id"])).await;
    assert_eq!(note["note_type"], "call_out");
    let doc = k.inspect().await;
    let lead = doc["leads"].as_array().unwrap().iter().find(|l| l["id"] == 5756100).unwrap();
    assert_eq!(lead["calls"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn malformed_calls_refuse_the_request() {
    let k = common::start().await;
    let r = k
        .post("/api/v4/calls", json!([call(CONTACT_ONE_ACTIVE_LEAD, "ok"), {"direction": "sideways", "duration": "long", "request_id": "bad"}]))
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(common::content_type(&r), "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["title"], "Bad Request");
    assert_eq!(v["status"], 400);
    let ve = &v["validation-errors"];
    assert_eq!(ve.as_array().unwrap().len(), 1);
    assert_eq!(ve[0]["request_id"], "bad");
    let paths: Vec<&str> = ve[0]["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["direction", "duration", "source", "phone"]);
    // Nothing from the refused request was added.
    assert_eq!(k.inspect().await["counts"]["calls"], 0);
    let r = k.post("/api/v4/calls", json!({"not": "an array"})).await;
    assert_eq!(r.status(), 400);
}
