//! Incoming leads: create (sip), list, get, accept, decline.
mod common;

use kommo_sandbox::seed::numbers::UNKNOWN;
use serde_json::{json, Value};

fn sip(uniq: &str) -> Value {
    json!([{
        "source_uid": "callcard", "source_name": "callcard PBX", "request_id": "x",
        "_embedded": {
            "leads": [{"name": "Call from +15035550111"}],
            "contacts": [{"name": "+15035550111", "custom_fields_values": [{"field_code": "PHONE", "values": [{"value": UNKNOWN}]}]}]
        },
        "metadata": {"uniq": uniq, "from": "+15035550111", "phone": "101", "called_at": 1700000000, "duration": 35,
                     "link": "https://pbx.example/r.mp3", "service_code": "callcard", "is_call_event_needed": true}
    }])
}

async fn create(k: &common::Kommo, uniq: &str) -> (String, u64, u64) {
    let v = k.post_ok("/api/v4/leads/unsorted/sip", sip(uniq)).await;
    let u = &v["_embedded"]["unsorted"][0];
    assert_eq!(u["request_id"], "x");
    assert_eq!(u["account_id"], 31415926);
    (
        u["uid"].as_str().unwrap().to_string(),
        u["_embedded"]["leads"][0]["id"].as_u64().unwrap(),
        u["_embedded"]["contacts"][0]["id"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn create_list_get_accept() {
    let k = common::start().await;
    assert_eq!(k.get("/api/v4/leads/unsorted").await.status(), 204);
    let (uid, lead, contact) = create(&k, "call-1").await;
    let list = k.get_ok("/api/v4/leads/unsorted?filter[category][]=sip").await;
    let items = list["_embedded"]["unsorted"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["uid"], uid.as_str());
    assert_eq!(items[0]["category"], "sip");
    assert_eq!(items[0]["metadata"]["uniq"], "call-1");
    let one = k.get_ok(&format!("/api/v4/leads/unsorted/{uid}")).await;
    assert_eq!(one["_embedded"]["contacts"][0]["id"], contact);
    // The records exist, linked, the lead in "Incoming leads".
    let l = k.get_ok(&format!("/api/v4/leads/{lead}?with=contacts")).await;
    assert_eq!(l["status_id"], 7100010);
    assert_eq!(l["_embedded"]["contacts"][0]["id"], contact);
    // A second call from the number finds the incoming lead.
    let items = k.caller_id(UNKNOWN).await;
    assert_eq!((items[0]["element_type"].as_u64(), items[0]["element_id"].as_u64()), (Some(2), Some(lead)));

    let r = k
        .post(&format!("/api/v4/leads/unsorted/{uid}/accept"), json!({"user_id": 8375357, "status_id": 7100012}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["uid"], uid.as_str());
    assert_eq!(v["_embedded"]["leads"][0]["id"], lead);
    assert_eq!(k.get_ok(&format!("/api/v4/leads/{lead}")).await["status_id"], 7100012);
    assert_eq!(k.get("/api/v4/leads/unsorted").await.status(), 204);
    assert_eq!(k.get(&format!("/api/v4/leads/unsorted/{uid}")).await.status(), 404);
    assert_eq!(k.post(&format!("/api/v4/leads/unsorted/{uid}/accept"), json!({})).await.status(), 404);
    let doc = k.inspect().await;
    assert_eq!(doc["unsorted"][0]["status"], "accepted");
    assert_eq!(doc["unsorted"][0]["processed_by"], 8375357);
}

#[tokio::test]
async fn decline_deletes_what_nobody_adopted() {
    let k = common::start().await;
    let (uid, lead, contact) = create(&k, "call-2").await;
    let r = k.delete(&format!("/api/v4/leads/unsorted/{uid}/decline")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(k.get(&format!("/api/v4/leads/{lead}")).await.status(), 404);
    assert_eq!(k.get(&format!("/api/v4/contacts/{contact}")).await.status(), 404);
    assert!(k.caller_id(UNKNOWN).await.is_empty());
    assert_eq!(k.delete(&format!("/api/v4/leads/unsorted/{uid}/decline")).await.status(), 404);

    // The documented call-result flow: link the incoming contact to the
    // chosen lead, then decline; the contact survives, the lead does not.
    let (uid, lead, contact) = create(&k, "call-3").await;
    let v =
        k.post_ok("/api/v4/leads/5756100/link", json!([{"to_entity_id": contact, "to_entity_type": "contacts"}])).await;
    assert_eq!(v["_embedded"]["links"][0]["to_entity_id"], contact);
    assert_eq!(k.delete(&format!("/api/v4/leads/unsorted/{uid}/decline")).await.status(), 200);
    assert_eq!(k.get(&format!("/api/v4/leads/{lead}")).await.status(), 404);
    assert_eq!(k.get(&format!("/api/v4/contacts/{contact}")).await.status(), 200);
}

#[tokio::test]
async fn incoming_leads_are_validated() {
    let k = common::start().await;
    let r = k
        .post(
            "/api/v4/leads/unsorted/sip",
            json!([{"source_name": "x", "metadata": {"uniq": "u", "duration": "long"}}]),
        )
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let paths: Vec<&str> =
        v["validation-errors"][0]["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "source_uid",
            "metadata.from",
            "metadata.phone",
            "metadata.service_code",
            "metadata.called_at",
            "metadata.duration"
        ]
    );
    assert_eq!(k.inspect().await["unsorted"].as_array().unwrap().len(), 0);
}
