//! Records: create with phones, search, paging, `with=`, links.
mod common;

use serde_json::{json, Value};

#[tokio::test]
async fn create_contact_with_several_phones_and_read_it_back() {
    let k = common::start().await;
    let v = k
        .post_ok(
            "/api/v4/contacts",
            json!([{"first_name": "Rita", "last_name": "Moreno", "request_id": "r",
                    "custom_fields_values": [{"field_code": "PHONE", "values": [
                        {"value": "+1 555 010 2030", "enum_code": "WORK"}, {"value": "+1 555 010 4050", "enum_code": "MOB"}]}]}]),
        )
        .await;
    assert_eq!(v["_embedded"]["contacts"][0]["request_id"], "r");
    let id = v["_embedded"]["contacts"][0]["id"].as_u64().unwrap();
    let c = k.get_ok(&format!("/api/v4/contacts/{id}")).await;
    assert_eq!(c["name"], "Rita Moreno");
    let f = &c["custom_fields_values"][0];
    assert_eq!(f["field_code"], "PHONE");
    assert_eq!(f["values"][1]["value"], "+1 555 010 4050");
    assert_eq!(f["values"][1]["enum_code"], "MOB");
    // PATCH replaces the field's values.
    let r = k
        .patch(
            &format!("/api/v4/contacts/{id}"),
            json!({"custom_fields_values": [{"field_code": "PHONE", "values": [{"value": "+1 555 010 9999"}]}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let c = k.get_ok(&format!("/api/v4/contacts/{id}")).await;
    assert_eq!(c["custom_fields_values"][0]["values"].as_array().unwrap().len(), 1);
    assert!(k.caller_id("+1 555 010 2030").await.is_empty());
    assert_eq!(k.caller_id("+1 555 010 9999").await[0]["element_id"], id);
}

#[tokio::test]
async fn search_by_name_and_phone() {
    let k = common::start().await;
    // Phone search on the last 7 digits, whatever the format.
    let v = k.get_ok("/api/v4/contacts?query=8305703077").await;
    let names: Vec<&str> =
        v["_embedded"]["contacts"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Maria Gonzalez"]);
    let v = k.get_ok("/api/v4/contacts?query=%2B1%20(646)%20555-0199").await;
    assert_eq!(v["_embedded"]["contacts"].as_array().unwrap().len(), 2);
    let v = k.get_ok("/api/v4/leads?query=website").await;
    assert_eq!(v["_embedded"]["leads"][0]["id"], 5756100);
    // Leads are found through their contact's phone.
    let v = k.get_ok("/api/v4/leads?query=%2B12125550147").await;
    assert_eq!(v["_embedded"]["leads"].as_array().unwrap().len(), 2);
    let v = k.get_ok("/api/v4/customers?query=bakery").await;
    assert_eq!(v["_embedded"]["customers"].as_array().unwrap().len(), 1);
    assert_eq!(k.get("/api/v4/companies?query=%2B15035550111").await.status(), 204);
}

#[tokio::test]
async fn paging_and_with() {
    let k = common::start().await;
    let all = k.get_ok("/api/v4/contacts?limit=250").await["_embedded"]["contacts"].as_array().unwrap().len();
    assert!(all >= 30);
    let mut seen = 0;
    let mut page = 1;
    loop {
        let r = k.get(&format!("/api/v4/contacts?limit=10&page={page}")).await;
        if r.status() == 204 {
            break;
        }
        let v: Value = r.json().await.unwrap();
        seen += v["_embedded"]["contacts"].as_array().unwrap().len();
        assert_eq!(v["_page"], page);
        page += 1;
    }
    assert_eq!(seen, all);
    let lead = k.get_ok("/api/v4/leads/5756100?with=contacts").await;
    assert_eq!(lead["_embedded"]["contacts"][0]["is_main"], true);
    assert_eq!(lead["_embedded"]["companies"].as_array().unwrap().len(), 1);
    assert_eq!(lead["status_id"], 7100012);
    assert_eq!(lead["pipeline_id"], 7100001);
    let maria = k.id_of("contacts", "Maria Gonzalez").await;
    let c = k.get_ok(&format!("/api/v4/contacts/{maria}?with=leads")).await;
    assert_eq!(c["_embedded"]["leads"].as_array().unwrap().len(), 2);
    let c = k.get_ok(&format!("/api/v4/contacts/{maria}")).await;
    assert!(c["_embedded"]["leads"].is_null());
    let v = k.get_ok(&format!("/api/v4/contacts?filter[id][]={maria}")).await;
    assert_eq!(v["_embedded"]["contacts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn link_and_unlink() {
    let k = common::start().await;
    let oliver = k.id_of("contacts", "Oliver Smith").await;
    let v = k
        .post_ok(
            &format!("/api/v4/contacts/{oliver}/link"),
            json!([{"to_entity_id": 5756100, "to_entity_type": "leads"}]),
        )
        .await;
    assert_eq!(v["_embedded"]["links"][0]["entity_type"], "contacts");
    let links = k.get_ok(&format!("/api/v4/contacts/{oliver}/links")).await;
    assert_eq!(links["_embedded"]["links"][0]["to_entity_id"], 5756100);
    // One active lead now: caller ID for Oliver's number answers the lead.
    let items = k.caller_id(kommo_sandbox::seed::numbers::CONTACT_NO_LEADS).await;
    assert_eq!(items[0]["element_id"], 5756100);
    let r = k
        .post(
            &format!("/api/v4/contacts/{oliver}/unlink"),
            json!([{"to_entity_id": 5756100, "to_entity_type": "leads"}]),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(k.get(&format!("/api/v4/contacts/{oliver}/links")).await.status(), 204);
    // Batch form, and refusals.
    let r = k
        .post(
            "/api/v4/leads/link",
            json!([{"entity_id": 5756100, "to_entity_id": oliver, "to_entity_type": "contacts"}]),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = k.post("/api/v4/leads/5756100/link", json!([{"to_entity_id": 1, "to_entity_type": "customers"}])).await;
    assert_eq!(r.status(), 400);
    let r = k.post("/api/v4/leads/5756100/link", json!([{"to_entity_id": 1, "to_entity_type": "contacts"}])).await;
    assert_eq!(r.status(), 400);
}
