//! Kommo's webhooks: subscriptions, form-encoded deliveries of every change,
//! one destination per subscription, retries until a 2xx.

mod common;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A webhook destination on a random port: hands every body it gets to the
/// test, answering 500 to the first `failures` of them.
struct Receiver {
    url: String,
    bodies: mpsc::UnboundedReceiver<Vec<(String, String)>>,
    hits: Arc<AtomicUsize>,
}

async fn receiver(failures: usize) -> Receiver {
    #[derive(Clone)]
    struct Hook {
        tx: mpsc::UnboundedSender<Vec<(String, String)>>,
        hits: Arc<AtomicUsize>,
        failures: usize,
    }
    async fn hook(State(h): State<Hook>, headers: axum::http::HeaderMap, body: String) -> StatusCode {
        assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
        if h.hits.fetch_add(1, Ordering::SeqCst) < h.failures {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        h.tx.send(serde_urlencoded::from_str(&body).unwrap()).unwrap();
        StatusCode::OK
    }
    let (tx, bodies) = mpsc::unbounded_channel();
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/kommo-hook", listener.local_addr().unwrap());
    let app = Router::new().route("/kommo-hook", post(hook)).with_state(Hook { tx, hits: hits.clone(), failures });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, bodies, hits }
}

impl Receiver {
    /// The next delivered body (a test that gets none within 10 s fails).
    async fn next(&mut self) -> Vec<(String, String)> {
        tokio::time::timeout(Duration::from_secs(10), self.bodies.recv())
            .await
            .expect("no webhook arrived")
            .expect("receiver closed")
    }
}

fn field<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

async fn start() -> common::Kommo {
    common::start_with(|c| {
        c.with_rate_limit(None).with_webhook_retry_delays(vec![Duration::from_millis(20), Duration::from_millis(20)])
    })
    .await
}

async fn subscribe(kommo: &common::Kommo, destination: &str, settings: &[&str]) -> Value {
    kommo.post_ok("/api/v4/webhooks", json!({"destination": destination, "settings": settings})).await
}

#[tokio::test]
async fn one_subscription_per_destination_and_bad_settings_are_named() {
    let kommo = start().await;
    assert_eq!(kommo.get("/api/v4/webhooks").await.status(), 204, "no webhooks yet");
    let first = subscribe(&kommo, "https://callcard.example/kommo/hook", &["add_contact"]).await;
    assert_eq!(first["settings"], json!(["add_contact"]));
    let again = subscribe(&kommo, "https://callcard.example/kommo/hook", &["update_contact", "status_lead"]).await;
    assert_eq!(again["id"], first["id"], "the same destination is the same subscription");
    let list = kommo.get_ok("/api/v4/webhooks").await;
    assert_eq!(list["_embedded"]["webhooks"].as_array().unwrap().len(), 1);
    assert_eq!(list["_embedded"]["webhooks"][0]["settings"], json!(["update_contact", "status_lead"]));

    let bad =
        kommo.post("/api/v4/webhooks", json!({"destination": "https://x.example", "settings": ["explode_lead"]})).await;
    assert_eq!(bad.status(), 400);
    let problem: Value = bad.json().await.unwrap();
    assert_eq!(problem["validation-errors"][0]["errors"][0]["path"], "settings.0");
    let bad = kommo.post("/api/v4/webhooks", json!({"destination": "ftp://x", "settings": ["add_lead"]})).await;
    assert_eq!(bad.status(), 400);

    let gone = kommo
        .client
        .delete(kommo.url("/api/v4/webhooks"))
        .bearer_auth(&kommo.token)
        .json(&json!({"destination": "https://callcard.example/kommo/hook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert_eq!(kommo.get("/api/v4/webhooks").await.status(), 204);
}

#[tokio::test]
async fn changes_arrive_form_encoded_only_for_the_events_asked_for() {
    let kommo = start().await;
    let mut hook = receiver(0).await;
    subscribe(&kommo, &hook.url, &["add_contact", "status_lead"]).await;

    let created = kommo
        .post_ok(
            "/api/v4/contacts",
            json!([{"name": "Nina Park", "custom_fields_values": [{"field_code": "PHONE", "values": [{"value": "+1 555 010 4242"}]}]}]),
        )
        .await;
    let id = created["_embedded"]["contacts"][0]["id"].as_u64().unwrap();
    let form = hook.next().await;
    assert_eq!(field(&form, "contacts[add][0][id]"), Some(id.to_string().as_str()));
    assert_eq!(field(&form, "contacts[add][0][name]"), Some("Nina Park"));
    assert_eq!(field(&form, "contacts[add][0][custom_fields][0][code]"), Some("PHONE"));
    assert_eq!(field(&form, "contacts[add][0][custom_fields][0][values][0][value]"), Some("+1 555 010 4242"));
    assert_eq!(field(&form, "account[subdomain]"), Some(kommo.sandbox.config().subdomain.as_str()));

    // A renamed lead is an update nobody asked for; a won lead is a status change.
    let lead = kommo.post_ok("/api/v4/leads", json!([{"name": "Fleet"}])).await["_embedded"]["leads"][0]["id"]
        .as_u64()
        .unwrap();
    kommo.patch(&format!("/api/v4/leads/{lead}"), json!({"name": "Fleet pilot"})).await;
    kommo.patch(&format!("/api/v4/leads/{lead}"), json!({"status_id": 142})).await;
    let form = hook.next().await;
    assert_eq!(field(&form, "leads[status][0][id]"), Some(lead.to_string().as_str()));
    assert_eq!(field(&form, "leads[status][0][status_id]"), Some("142"));
    assert!(field(&form, "leads[status][0][old_status_id]").is_some());
    assert_eq!(field(&form, "leads[update][0][id]"), None, "update_lead was not subscribed");
    assert_eq!(hook.hits.load(Ordering::SeqCst), 2, "the lead's creation and rename sent nothing");
}

#[tokio::test]
async fn a_failing_destination_is_retried_until_it_answers_2xx() {
    let kommo = start().await;
    let mut hook = receiver(2).await;
    subscribe(&kommo, &hook.url, &["update_contact"]).await;
    let contact = kommo.sandbox.store().contacts.keys().next().copied().unwrap();
    kommo.patch(&format!("/api/v4/contacts/{contact}"), json!({"name": "Renamed"})).await;
    let form = hook.next().await;
    assert_eq!(field(&form, "contacts[update][0][name]"), Some("Renamed"));
    let settled = kommo.sandbox.webhook_log().wait_until(|d| d.iter().all(|d| d.delivered));
    let deliveries = tokio::time::timeout(Duration::from_secs(10), settled).await.expect("the delivery never settled");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].attempts, [500, 500, 200]);
    assert!(deliveries[0].delivered);
}

#[tokio::test]
async fn deleting_and_restoring_in_the_interface_send_their_events() {
    let kommo = start().await;
    let mut hook = receiver(0).await;
    subscribe(&kommo, &hook.url, &["delete_contact", "restore_contact"]).await;
    let contact = kommo.sandbox.store().contacts.keys().next().copied().unwrap();
    let linked_before = kommo.get_ok(&format!("/api/v4/contacts/{contact}/links")).await;

    let deleted = kommo.client.delete(kommo.url(&format!("/sandbox/records/contacts/{contact}"))).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(field(&hook.next().await, "contacts[delete][0][id]"), Some(contact.to_string().as_str()));
    assert_eq!(kommo.get(&format!("/api/v4/contacts/{contact}")).await.status(), 404);

    let restored =
        kommo.client.post(kommo.url(&format!("/sandbox/records/contacts/{contact}/restore"))).send().await.unwrap();
    assert_eq!(restored.status(), 204);
    let form = hook.next().await;
    assert_eq!(field(&form, "contacts[restore][0][id]"), Some(contact.to_string().as_str()));
    assert_eq!(kommo.get_ok(&format!("/api/v4/contacts/{contact}/links")).await, linked_before, "links come back");
    let again =
        kommo.client.post(kommo.url(&format!("/sandbox/records/contacts/{contact}/restore"))).send().await.unwrap();
    assert_eq!(again.status(), 404);
}
