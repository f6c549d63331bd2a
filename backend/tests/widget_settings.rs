//! `PUT /widget/settings`, the extension map: only an admin of the account
//! (as Kommo says, `GET /api/v4/users/{id}` → `rights.is_admin`) may change
//! it; bad maps are refused naming the field; a saved map routes calls.

mod common;
mod sandboxed;

use common::{connect, event_of, next, one_time_token, ticket, Db, SOON};
use sandboxed::{Env, ANNA, BRUNO};
use serde_json::{json, Value};

on_both_stores!(only_an_admin_may_change_the_settings, settings_map_extensions_and_name_bad_fields);

async fn put(env: &Env, user: u64, body: String) -> (u16, Value) {
    let r = common::client()
        .put(format!("{}/widget/settings", env.backend.base))
        .header("x-auth-token", one_time_token(&env.account, user, |_| {}))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status == 204 {
        return (status, Value::Null);
    }
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    (status, r.json().await.unwrap())
}

/// The attack: Bruno (not an admin) maps Anna's extension to
/// himself. Refused with 403, and the call still rings Anna.
async fn only_an_admin_may_change_the_settings(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let hijack = json!({"users": {BRUNO.to_string(): "101"}}).to_string();
    let (status, body) = put(&env, BRUNO, hijack.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "/problems/admin-required", "{body}");
    assert_eq!(env.requests.count("GET", &format!("/api/v4/users/{BRUNO}")), 1, "rights are Kommo's to say");

    let mut anna = connect(&env.backend, &ticket(&env.backend.base, &env.account, ANNA).await, None).await;
    let mut bruno = connect(&env.backend, &ticket(&env.backend.base, &env.account, BRUNO).await, None).await;
    env.pbx("ringing", "c-101", "+15550100999", "101").await;
    assert_eq!(event_of(next(&mut anna, SOON).await).1, "c-101");
    assert!(next(&mut bruno, common::QUIET).await.is_none(), "Bruno got a call of Anna's extension");

    // Refused again: the answer is cached, not asked again.
    assert_eq!(put(&env, BRUNO, hijack).await.0, 403);
    assert_eq!(env.requests.count("GET", &format!("/api/v4/users/{BRUNO}")), 1, "the rights are cached briefly");

    // Anna, an admin, may; twice costs one rights request.
    let remap = json!({"phones": {ANNA.to_string(): "101", BRUNO.to_string(): "105"}}).to_string();
    assert_eq!(put(&env, ANNA, remap.clone()).await.0, 204);
    assert_eq!(put(&env, ANNA, remap).await.0, 204);
    assert_eq!(env.requests.count("GET", &format!("/api/v4/users/{ANNA}")), 1);
    env.pbx("ringing", "c-105", "+15550100998", "105").await;
    assert_eq!(event_of(next(&mut bruno, SOON).await).1, "c-105");
    env.stop().await;
}

async fn settings_map_extensions_and_name_bad_fields(db: Db) {
    let env = Env::start(db, |_| {}).await;
    let put = |body: Value| put(&env, ANNA, body.to_string());
    let (status, body) = put(json!({"phones": {ANNA.to_string(): "101", BRUNO.to_string(): "101"}})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["field"].as_str().unwrap().starts_with("phones."), "{body}");
    let (status, body) = put(json!({"phones": {ANNA.to_string(): "10a"}})).await;
    assert_eq!((status, body["field"].as_str()), (422, Some(format!("phones.{ANNA}").as_str())), "{body}");
    // The old key, from an older widget, names its own fields.
    let (status, body) = put(json!({"users": {ANNA.to_string(): "10a"}})).await;
    assert_eq!((status, body["field"].as_str()), (422, Some(format!("users.{ANNA}").as_str())), "{body}");
    let (status, body) = put(json!({"people": {}})).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("phones")), "{body}");
    // Bytes after the document refuse it whole.
    let settings = json!({"phones": {ANNA.to_string(): "101"}}).to_string();
    let (status, body) = self::put(&env, ANNA, format!("{settings}{settings}")).await;
    assert_eq!((status, body["type"].as_str()), (400, Some("/problems/malformed-body")), "{body}");

    // Kommo may send the setting as a JSON string; an empty field maps nobody.
    let as_string = format!("{{\"{ANNA}\":\"107\",\"{BRUNO}\":\"\"}}");
    assert_eq!(put(json!({"phones": as_string})).await.0, 204);
    let mut anna = connect(&env.backend, &ticket(&env.backend.base, &env.account, ANNA).await, None).await;
    env.pbx("ringing", "c-1", "+15550100999", "107").await;
    assert_eq!(event_of(next(&mut anna, SOON).await).1, "c-1");

    // Settings saved under the old key: an older widget's body, and a new
    // one whose `phones` field is still empty, both keep the extensions.
    assert_eq!(put(json!({"users": {ANNA.to_string(): "108"}})).await.0, 204);
    env.pbx("ringing", "c-2", "+15550100999", "108").await;
    let mut rung = Vec::new();
    while !rung.contains(&"c-2".to_string()) && rung.len() < 10 {
        rung.push(event_of(next(&mut anna, SOON).await).1);
    }
    assert!(rung.contains(&"c-2".to_string()), "c-2 rings Anna (updates of c-1 may come first): {rung:?}");
    assert_eq!(put(json!({"phones": {ANNA.to_string(): ""}, "users": {ANNA.to_string(): "109"}})).await.0, 204);
    env.pbx("ringing", "c-3", "+15550100999", "109").await;
    while !rung.contains(&"c-3".to_string()) && rung.len() < 20 {
        rung.push(event_of(next(&mut anna, SOON).await).1);
    }
    assert!(rung.contains(&"c-3".to_string()), "c-3 rings Anna: {rung:?}");
    env.stop().await;
}
