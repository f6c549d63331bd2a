//! Kommo's limits and error conventions, and fault injection.
mod common;

use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn seven_requests_per_second_then_429_with_retry_after() {
    let k = common::start_with(|c| c.with_rate_limit(Some(7))).await;
    let mut statuses = Vec::new();
    for _ in 0..9 {
        statuses.push(k.get("/api/v4/account").await);
    }
    let codes: Vec<u16> = statuses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(&codes[..7], &[200; 7]);
    assert_eq!(&codes[7..], &[429, 429]);
    let r = &statuses[7];
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(common::content_type(r), "application/problem+json");
    // Waiting as told gets through again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(k.get("/api/v4/account").await.status(), 200);
    // The host page's own requests are not billed to the integration.
    for _ in 0..10 {
        k.get("/api/v4/account").await;
    }
    let r = k.client.get(k.url("/api/v4/account")).header("cookie", "kommo_sandbox_user=8320148").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Administration is never limited.
    assert_eq!(k.client.get(k.url("/sandbox/inspect")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn hal_json_problem_json_and_204() {
    let k = common::start().await;
    let r = k.get("/api/v4/contacts?limit=2").await;
    assert_eq!(r.status(), 200);
    assert_eq!(common::content_type(&r), "application/hal+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["_embedded"]["contacts"].as_array().unwrap().len(), 2);
    assert!(v["_links"]["next"]["href"].as_str().unwrap().contains("page=2"));

    // Empty lists are 204 with no body.
    let r = k.get("/api/v4/contacts?query=nobody-has-this-name").await;
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(k.get("/api/v4/contacts?page=999").await.status(), 204);
    assert_eq!(k.get("/api/v4/tasks?filter[entity_id]=1").await.status(), 204);

    // Bad JSON and bad bodies.
    let r = k.client.post(k.url("/api/v4/contacts")).bearer_auth(&k.token).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(common::content_type(&r), "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "https://httpstatus.es/400");
    let r = k.post("/api/v4/contacts", json!([{"name": 5, "custom_fields_values": [{"field_code": "PHONE"}]}])).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["detail"], "Request validation failed");
    let errs = &v["validation-errors"][0];
    assert_eq!(errs["request_id"], "0");
    let paths: Vec<&str> = errs["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"custom_fields_values.0.values"), "{paths:?}");

    // Unknown records are 404 problem+json.
    let r = k.get("/api/v4/leads/1").await;
    assert_eq!(r.status(), 404);
    assert_eq!(common::content_type(&r), "application/problem+json");
}

async fn set_faults(k: &common::Kommo, v: Value) {
    let r = k.client.post(k.url("/sandbox/faults")).json(&v).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn scripted_faults_then_normal_service() {
    let k = common::start().await;
    set_faults(&k, json!({"script": ["503", "429", "drop", "delay", "500"], "delay_ms": 300})).await;
    let r = k.get("/api/v4/account").await;
    assert_eq!(r.status(), 503);
    assert_eq!(common::content_type(&r), "application/problem+json");
    let r = k.get("/api/v4/account").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let dropped = k.client.get(k.url("/api/v4/account")).bearer_auth(&k.token).send().await;
    // No status line at all: the client sees a transport error.
    assert!(dropped.is_err(), "a dropped connection must not deliver a response: {dropped:?}");
    let t = std::time::Instant::now();
    assert_eq!(k.get("/api/v4/account").await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    // Admin routes are never faulted.
    assert_eq!(k.client.get(k.url("/sandbox/inspect")).send().await.unwrap().status(), 200);
    assert_eq!(k.get("/api/v4/account").await.status(), 500);
    assert_eq!(k.get("/api/v4/account").await.status(), 200);
    let f: Value = k.client.get(k.url("/sandbox/faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(f["injected"]["errors"], 2);
    assert_eq!(f["injected"]["drops"], 1);
}

#[tokio::test]
async fn fault_rates_and_reset() {
    let k = common::start().await;
    set_faults(&k, json!({"error_rate": 1.0, "error_status": 502})).await;
    for _ in 0..5 {
        assert_eq!(k.get("/api/v4/account").await.status(), 502);
    }
    let r = k.client.delete(k.url("/sandbox/faults")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(k.get("/api/v4/account").await.status(), 200);
    set_faults(&k, json!({"error_rate": 0.5})).await;
    let mut fails = 0;
    for _ in 0..60 {
        if k.get("/api/v4/account").await.status() == 503 {
            fails += 1;
        }
    }
    assert!((10..=50).contains(&fails), "{fails} of 60 failed at rate 0.5");
}
