//! Operations: health, metrics, the OpenAPI document, and the store opening
//! an SQLite file in WAL mode.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn health_metrics_and_openapi_are_served() {
    let db = Db::sqlite().await;
    let node = Instance::start(config(&db)).await;
    let acme = Account::random();
    acme.provision(&node.backend, &[(11, "101")]).await;
    deliver(&node.base, &acme, &event("ringing", "c-1", "101", now_ms())).await;
    deliver(&node.base, &acme, &event("ringing", "c-1", "101", now_ms())).await;

    let health: Value = client().get(format!("{}/healthz", node.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");

    let metrics = client().get(format!("{}/metrics", node.base)).send().await.unwrap();
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    for line in [
        "callcard_events_received_total{result=\"stored\"} 1",
        "callcard_events_received_total{result=\"unchanged\"} 1",
        "callcard_connected_clients 0",
        "callcard_feed_queue_depth 0",
        "# TYPE callcard_feed_events_pushed_total counter",
        "callcard_errors_total{class=\"server\"} 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }

    let doc: Value = client().get(format!("{}/openapi.json", node.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc,
        serde_json::to_value(callcard_backend::openapi_document()).unwrap(),
        "the generated document is served"
    );

    let missing = client().get(format!("{}/no/such/route", node.base)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");

    // The embedded store is a WAL-mode file.
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(node.backend.store().pool()).await.unwrap();
    assert_eq!(mode, "wal");

    let base = node.base.clone();
    node.stop().await;
    let after = client().get(format!("{base}/healthz")).send().await;
    assert!(after.is_err() || after.unwrap().status() != 200);
}
