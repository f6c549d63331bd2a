//! OAuth 2.0: code exchange, expiry, single-use rotating refresh tokens, 401s.
mod common;

use serde_json::{json, Value};
use std::time::Duration;

async fn exchange(k: &common::Kommo, body: Value) -> reqwest::Response {
    k.client.post(k.url("/oauth2/access_token")).json(&body).send().await.unwrap()
}

fn grant(k: &common::Kommo, grant_type: &str, key: &str, value: &str) -> Value {
    let c = k.sandbox.config();
    json!({"client_id": c.client_id, "client_secret": c.integration_secret, "grant_type": grant_type,
           key: value, "redirect_uri": c.redirect_uri})
}

async fn account_status(k: &common::Kommo, token: &str) -> u16 {
    k.client.get(k.url("/api/v4/account")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn code_exchange_expiry_and_rotation() {
    let k = common::start_with(|c| c.with_rate_limit(None).with_access_token_ttl(Duration::from_millis(1500))).await;
    let code: Value = k
        .client
        .post(k.url("/sandbox/oauth/authorize"))
        .json(&json!({"user_id": 8375357}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = code["code"].as_str().unwrap().to_string();

    let r = exchange(&k, grant(&k, "authorization_code", "code", &code)).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 1);
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();

    // The code is single use.
    assert_eq!(exchange(&k, grant(&k, "authorization_code", "code", &code)).await.status(), 400);

    let acc: Value =
        k.client.get(k.url("/api/v4/account")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert_eq!(acc["current_user_id"], 8375357);

    // The token really expires.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let r = k.client.get(k.url("/api/v4/account")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(common::content_type(&r), "application/problem+json");

    // Refresh: a new pair, and the used refresh token is burnt.
    let r = exchange(&k, grant(&k, "refresh_token", "refresh_token", &refresh)).await;
    assert_eq!(r.status(), 200);
    let t2: Value = r.json().await.unwrap();
    let access2 = t2["access_token"].as_str().unwrap();
    let refresh2 = t2["refresh_token"].as_str().unwrap();
    assert_ne!(access2, access);
    assert_ne!(refresh2, refresh);
    assert_eq!(account_status(&k, access2).await, 200);
    let r = exchange(&k, grant(&k, "refresh_token", "refresh_token", &refresh)).await;
    assert_eq!(r.status(), 400, "a refresh token can be used once");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["detail"], "invalid_grant");
    // The new refresh token works (once).
    assert_eq!(exchange(&k, grant(&k, "refresh_token", "refresh_token", refresh2)).await.status(), 200);
}

#[tokio::test]
async fn bad_clients_and_grants() {
    let k = common::start().await;
    let code = k.sandbox.authorization_code(8320148);
    let mut body = grant(&k, "authorization_code", "code", &code);
    body["client_secret"] = json!("wrong");
    assert_eq!(exchange(&k, body).await.status(), 401);
    let mut body = grant(&k, "authorization_code", "code", &code);
    body["redirect_uri"] = json!("https://elsewhere.example/cb");
    assert_eq!(exchange(&k, body).await.status(), 400);
    assert_eq!(exchange(&k, grant(&k, "password", "code", &code)).await.status(), 400);
    assert_eq!(exchange(&k, grant(&k, "authorization_code", "code", "nope")).await.status(), 400);
    // Form bodies are accepted too.
    let c = k.sandbox.config();
    let form = format!(
        "client_id={}&client_secret={}&grant_type=authorization_code&code={}&redirect_uri={}",
        c.client_id,
        c.integration_secret,
        code,
        c.redirect_uri.replace(':', "%3A").replace('/', "%2F")
    );
    let r = k
        .client
        .post(k.url("/oauth2/access_token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn api_needs_a_valid_token_or_the_host_page_session() {
    let k = common::start().await;
    // No credentials at all: 401, as from Kommo.
    let r = k.client.get(k.url("/api/v4/account")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(common::content_type(&r), "application/problem+json");
    assert_eq!(account_status(&k, "made-up").await, 401);
    let r = k.client.get(k.url("/api/v4/account")).header("authorization", "Basic Zm9vOmJhcg==").send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Revocation.
    let pair = k.sandbox.issue_tokens(8320148);
    assert_eq!(account_status(&k, &pair.access_token).await, 200);
    let r = k
        .client
        .post(k.url("/sandbox/oauth/revoke"))
        .json(&json!({"access_token": pair.access_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(account_status(&k, &pair.access_token).await, 401);
    assert_eq!(account_status(&k, &k.token).await, 200);
    k.client.post(k.url("/sandbox/oauth/revoke")).json(&json!({})).send().await.unwrap();
    assert_eq!(account_status(&k, &k.token).await, 401);

    // Long-lived tokens.
    let v: Value = k
        .client
        .post(k.url("/sandbox/oauth/long-lived-token"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(account_status(&k, v["access_token"].as_str().unwrap()).await, 200);

    // The host page's session: the cookie, or a same-origin Referer.
    let r = k.client.get(k.url("/api/v4/account")).header("cookie", "kommo_sandbox_user=8390001").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["current_user_id"], 8390001);
    let r = k
        .client
        .get(k.url("/api/v4/leads?query=Website"))
        .header("referer", k.url("/?user=8320148"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = k.client.get(k.url("/api/v4/account")).header("origin", "http://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 401);
}
