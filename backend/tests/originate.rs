//! Click-to-call, `POST /widget/calls/originate`: the widget's one-time
//! token, a signed originate request to the account's PBX (verified here
//! with the webhook secret, as a PBX would), the PBX's refusals and
//! silence told apart, and bad input named by field.

mod common;

use callcard_backend::AccountSetup;
use callcard_calls::extensions::ExtensionMap;
use callcard_calls::originate::Originate;
use callcard_calls::signature;
use common::{one_time_token, Account, Db, Instance};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

on_both_stores!(a_click_sends_the_pbx_a_signed_originate_and_answers_its_call_id, refusals_name_what_is_wrong);

const ANNA: u64 = 8_320_148;
const BRUNO: u64 = 8_375_357;

/// A PBX's originate endpoint: checks the signature with `secret`, keeps
/// what it took, and answers `status`.
struct FakePbx {
    url: String,
    taken: Arc<Mutex<Vec<Originate>>>,
}

async fn fake_pbx(secret: &str, status: u16) -> FakePbx {
    let taken: Arc<Mutex<Vec<Originate>>> = Arc::default();
    let (secret, kept) = (secret.to_string(), taken.clone());
    let app = axum::Router::new().route(
        "/originate",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (secret, kept) = (secret.clone(), kept.clone());
            async move {
                let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
                let now = common::now_s();
                let verified = signature::verify(
                    secret.as_bytes(),
                    header(signature::TIMESTAMP_HEADER),
                    header(signature::SIGNATURE_HEADER),
                    &body,
                    now,
                );
                if verified.is_err() {
                    return axum::http::StatusCode::UNAUTHORIZED;
                }
                kept.lock().unwrap().push(serde_json::from_slice(&body).expect("an Originate"));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/originate", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakePbx { url, taken }
}

async fn provision(instance: &Instance, account: &Account, originate_url: Option<String>) {
    instance
        .backend
        .provision_account(AccountSetup {
            account_id: account.id,
            origin: account.origin.clone(),
            webhook_secret: account.secret.clone(),
            extensions: None,
            pbx_originate_url: originate_url,
        })
        .await
        .unwrap();
    let map = ExtensionMap::parse(&json!({ANNA.to_string(): "101"})).unwrap();
    instance.backend.set_extensions(account.id, map).await.unwrap();
}

async fn originate(instance: &Instance, account: &Account, user: u64, body: &str) -> (u16, Value) {
    let r = common::client()
        .post(format!("{}/widget/calls/originate", instance.base))
        .header("x-auth-token", one_time_token(account, user, |_| {}))
        .header("origin", &account.origin)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status != 202 {
        assert_eq!(r.headers()["content-type"], "application/problem+json", "status {status}");
    }
    (status, r.json().await.unwrap())
}

async fn a_click_sends_the_pbx_a_signed_originate_and_answers_its_call_id(db: Db) {
    let instance = Instance::start(common::config(&db)).await;
    let account = Account::random();
    let pbx = fake_pbx(&account.secret, 200).await;
    provision(&instance, &account, Some(pbx.url.clone())).await;

    let (status, answer) = originate(&instance, &account, ANNA, r#"{"number":" +1 (830) 570-3077 "}"#).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["extension"], "101");
    assert_eq!(answer["number"], "+1 (830) 570-3077");
    let taken = pbx.taken.lock().unwrap().clone();
    assert_eq!(taken.len(), 1, "one signed request reached the PBX");
    let sent = &taken[0];
    assert_eq!(sent.call_id, answer["call_id"].as_str().unwrap(), "the PBX reports the call under the answered id");
    assert_eq!((sent.account_id, sent.user_id), (account.id, ANNA));
    assert_eq!((sent.extension.as_str(), sent.number.as_str()), ("101", "+1 (830) 570-3077"));

    // The PBX reports it as any call: outbound, under that id, to Anna.
    // From offset 0, as the widget does: without `since` the socket starts
    // where the server is when it subscribes, which under load can be after the ring.
    let mut ws = common::connect(&instance, &common::ticket(&instance.base, &account, ANNA).await, Some(0)).await;
    let mut ring = common::event("ringing", &sent.call_id, "101", common::now_ms());
    ring["direction"] = json!("outbound");
    ring["external_number"] = json!(sent.number);
    common::deliver(&instance.base, &account, &ring).await;
    match common::next(&mut ws, common::SOON).await {
        Some(callcard_calls::feed::FeedMessage::Event(e)) => {
            assert_eq!(e.call.call.call_id, sent.call_id);
            assert_eq!(e.call.call.direction, callcard_calls::Direction::Outbound);
            assert_eq!(e.call.user_id, Some(ANNA));
        }
        other => panic!("expected the originated call in Anna's feed, got {other:?}"),
    }

    // Each click is its own call.
    let (status, again) = originate(&instance, &account, ANNA, r#"{"number":"+18305703077"}"#).await;
    assert_eq!(status, 202, "{again}");
    assert_ne!(again["call_id"], answer["call_id"]);
    instance.stop().await;
}

async fn refusals_name_what_is_wrong(db: Db) {
    let instance = Instance::start(common::config(&db)).await;
    let account = Account::random();
    let pbx = fake_pbx(&account.secret, 200).await;
    provision(&instance, &account, Some(pbx.url.clone())).await;

    // Bad input, named by field; nothing reaches the PBX.
    let (status, p) = originate(&instance, &account, ANNA, r#"{"number":"call me"}"#).await;
    assert_eq!((status, p["field"].as_str()), (422, Some("number")), "{p}");
    let (status, p) = originate(&instance, &account, ANNA, r#"{"number":"1","extension":"102"}"#).await;
    assert_eq!(status, 422, "a caller cannot pick another extension: {p}");
    let (status, _) = originate(&instance, &account, ANNA, r#"{"number":"#).await;
    assert_eq!(status, 400);
    // Bruno has no extension.
    let (status, p) = originate(&instance, &account, BRUNO, r#"{"number":"+18305703077"}"#).await;
    assert_eq!((status, p["field"].as_str()), (409, Some("extension")), "{p}");
    // No token, or a used one.
    let r = common::client()
        .post(format!("{}/widget/calls/originate", instance.base))
        .header("content-type", "application/json")
        .body(r#"{"number":"+18305703077"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(pbx.taken.lock().unwrap().is_empty(), "no refused request reached the PBX");

    // The PBX refuses: 502, and says no call was placed.
    let refusing = fake_pbx(&account.secret, 500).await;
    provision(&instance, &account, Some(refusing.url.clone())).await;
    let (status, p) = originate(&instance, &account, ANNA, r#"{"number":"+18305703077"}"#).await;
    assert_eq!((status, p["type"].as_str()), (502, Some("/problems/pbx-refused")), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("no call was placed"), "{p}");

    // Nobody listens there: 503, retry.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/originate", closed.local_addr().unwrap());
    drop(closed);
    provision(&instance, &account, Some(dead)).await;
    let (status, p) = originate(&instance, &account, ANNA, r#"{"number":"+18305703077"}"#).await;
    assert_eq!((status, p["type"].as_str()), (503, Some("/problems/pbx-unreachable")), "{p}");

    // An account without a PBX originate URL says click-to-call is not set up.
    let bare = Account::random();
    provision(&instance, &bare, None).await;
    let (status, p) = originate(&instance, &bare, ANNA, r#"{"number":"+18305703077"}"#).await;
    assert_eq!((status, p["field"].as_str()), (409, Some("pbx_originate_url")), "{p}");
    instance.stop().await;
}
