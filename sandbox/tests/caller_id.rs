//! `POST /api/v2/events`: Kommo's caller-ID rule, every branch, over HTTP.
mod common;

use kommo_sandbox::seed::numbers::*;
use serde_json::json;

async fn one(k: &common::Kommo, phone: &str) -> (u64, u64) {
    let items = k.caller_id(phone).await;
    assert_eq!(items.len(), 1, "{phone}: {items:?}");
    (items[0]["element_type"].as_u64().unwrap(), items[0]["element_id"].as_u64().unwrap())
}

#[tokio::test]
async fn documented_example_answer_shape() {
    let k = common::start().await;
    let v = k
        .post_ok(
            "/api/v2/events",
            json!({"add": [{"type": "phone_call", "phone_number": "+18305703077", "users": [8320148, 8375357]}]}),
        )
        .await;
    assert_eq!(v["_links"]["self"]["href"], "/api/v2/events/");
    let item = &v["_embedded"]["items"][0];
    assert_eq!(item["element_type"], 2);
    assert_eq!(item["element_id"], 5756100);
    assert_eq!(item["phone_number"], "+18305703077");
    assert_eq!(item["query_string"], "05703077");
    assert_eq!(item["uid"].as_str().unwrap().len(), 36);
    // The trailing-slash spelling of the documentation works too.
    let r = k.post("/api/v2/events/", json!({"add": [{"type": "phone_call", "phone_number": "+18305703077"}]})).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn contact_branches() {
    let k = common::start().await;
    // Exactly one active lead → the lead (element type 2), named after it.
    assert_eq!(one(&k, CONTACT_ONE_ACTIVE_LEAD).await, (2, 5756100));
    let liam_lead = one(&k, CONTACT_ONE_UNNAMED_LEAD).await;
    assert_eq!(liam_lead.0, 2);
    // Two active leads, none, only closed ones, lead + customer → the contact (1).
    assert_eq!(one(&k, CONTACT_TWO_ACTIVE_LEADS).await, (1, k.id_of("contacts", "Sofia Rossi").await));
    assert_eq!(one(&k, CONTACT_NO_LEADS).await, (1, k.id_of("contacts", "Oliver Smith").await));
    assert_eq!(one(&k, CONTACT_ONLY_CLOSED).await, (1, k.id_of("contacts", "Grace Lee").await));
    assert_eq!(one(&k, CONTACT_LEAD_AND_CUSTOMER).await, (1, k.id_of("contacts", "Isabella Garcia").await));
    // Exactly one active customer → the customer (12).
    assert_eq!(one(&k, CONTACT_ONE_CUSTOMER).await, (12, k.id_of("customers", "Kim Bakery weekly order").await));
    // The oldest contact wins.
    assert_eq!(one(&k, SHARED_BY_TWO_CONTACTS).await, (2, k.id_of("leads", "Fleet tracking pilot").await));
    // Contacts come before companies.
    assert_eq!(one(&k, CONTACT_AND_COMPANY).await, (1, k.id_of("contacts", "Lucas Brown").await));

    // The names Kommo shows are recorded for the inspection view.
    let doc = k.inspect().await;
    let names: Vec<(String, String)> = doc["caller_id_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["name"].is_null())
        .map(|e| (e["phone_number"].as_str().unwrap().to_string(), e["name"].as_str().unwrap().to_string()))
        .collect();
    assert!(names.contains(&(CONTACT_ONE_ACTIVE_LEAD.into(), "Website redesign".into())));
    assert!(names.contains(&(CONTACT_ONE_UNNAMED_LEAD.into(), "Liam O'Brien".into())));
}

#[tokio::test]
async fn company_branches() {
    let k = common::start().await;
    assert_eq!(one(&k, COMPANY_ONE_ACTIVE_LEAD).await, (2, k.id_of("leads", "Northwind 200 headsets").await));
    assert_eq!(one(&k, COMPANY_NO_LEADS).await, (3, k.id_of("companies", "Globex Corporation").await));
    assert_eq!(one(&k, COMPANY_TWO_ACTIVE_LEADS).await, (3, k.id_of("companies", "Umbrella Logistics").await));
    assert_eq!(one(&k, COMPANY_ONE_CUSTOMER).await, (12, k.id_of("customers", "Stark Supplies annual support").await));
}

#[tokio::test]
async fn eight_digits_formats_and_unknown_numbers() {
    let k = common::start().await;
    let ava_lead = k.id_of("leads", "Call recording add-on").await;
    assert_eq!(one(&k, CONTACT_SECOND_NUMBER).await, (2, ava_lead));
    assert_eq!(one(&k, SAME_LAST_8_OTHER_AREA).await, (2, ava_lead));
    assert_eq!(one(&k, "8 (830) 570-30-77").await, (2, 5756100));
    assert!(k.caller_id(UNKNOWN).await.is_empty());
    assert!(k.caller_id("anonymous").await.is_empty());
}

#[tokio::test]
async fn new_records_are_found_at_once() {
    let k = common::start().await;
    assert!(k.caller_id(UNKNOWN).await.is_empty());
    let v = k
        .post_ok(
            "/api/v4/contacts",
            json!([{"name": "Pat New", "custom_fields_values": [{"field_code": "PHONE", "values": [{"value": UNKNOWN, "enum_code": "WORK"}]}]}]),
        )
        .await;
    let id = v["_embedded"]["contacts"][0]["id"].as_u64().unwrap();
    assert_eq!(one(&k, UNKNOWN).await, (1, id));
    // A lead linked to the contact takes over.
    let v = k.post_ok("/api/v4/leads", json!([{"name": "Pat's deal", "_embedded": {"contacts": [{"id": id}]}}])).await;
    let lead = v["_embedded"]["leads"][0]["id"].as_u64().unwrap();
    assert_eq!(one(&k, UNKNOWN).await, (2, lead));
    // Closing it (status 143) makes the contact the answer again.
    let r = k.patch(&format!("/api/v4/leads/{lead}"), json!({"status_id": 143})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(one(&k, UNKNOWN).await, (1, id));
}

#[tokio::test]
async fn bad_events_are_validation_errors() {
    let k = common::start().await;
    let r = k.post("/api/v2/events", json!({"add": [{"type": "sms", "users": ["x"]}]})).await;
    assert_eq!(r.status(), 400);
    assert_eq!(common::content_type(&r), "application/problem+json");
    let v: serde_json::Value = r.json().await.unwrap();
    let paths: Vec<&str> =
        v["validation-errors"][0]["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["type", "phone_number", "users.0"]);
    let r = k.post("/api/v2/events", json!({})).await;
    assert_eq!(r.status(), 400);
}
