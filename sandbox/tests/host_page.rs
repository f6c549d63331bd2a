//! The host page's side: static files, session, widget settings, one-time tokens.
mod common;

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

#[tokio::test]
async fn one_time_token_claims_verify_with_the_secret() {
    let k = common::start().await;
    let r = k.client.post(k.url("/sandbox/one-time-token")).json(&json!({"user_id": 8375357})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let token = v["token"].as_str().unwrap();
    let cfg = k.sandbox.config();
    let mut val = Validation::new(Algorithm::HS256);
    val.set_audience(&[&cfg.backend_base_url]);
    val.set_issuer(&[&k.base]);
    let claims =
        decode::<Value>(token, &DecodingKey::from_secret(cfg.integration_secret.as_bytes()), &val).unwrap().claims;
    assert_eq!(claims["iss"], k.base.as_str());
    assert_eq!(claims["aud"], format!("{}/backend", k.base));
    assert_eq!(claims["account_id"], 31415926);
    assert_eq!(claims["user_id"], 8375357);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
    let (iat, nbf, exp) =
        (claims["iat"].as_i64().unwrap(), claims["nbf"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
    assert_eq!(nbf, iat);
    assert_eq!(exp - iat, 300);
    // Another secret does not verify it; every token has its own jti.
    assert!(decode::<Value>(token, &DecodingKey::from_secret(b"not the secret"), &val).is_err());
    let again = k.sandbox.one_time_token(8375357).unwrap();
    let c2 =
        decode::<Value>(&again, &DecodingKey::from_secret(cfg.integration_secret.as_bytes()), &val).unwrap().claims;
    assert_ne!(c2["jti"], claims["jti"]);
    // Unknown users get none.
    let r = k.client.post(k.url("/sandbox/one-time-token")).json(&json!({"user_id": 1})).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn session_lists_account_and_users_and_sets_the_cookie() {
    let k = common::start().await;
    let r = k.client.get(k.url("/sandbox/session?user=8390001")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["set-cookie"].to_str().unwrap(), "kommo_sandbox_user=8390001; Path=/; SameSite=Lax");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["account"]["id"], 31415926);
    assert_eq!(v["account"]["subdomain"], "acme");
    assert_eq!(v["account"]["origin"], k.base.as_str());
    assert_eq!(v["current_user_id"], 8390001);
    let users: Vec<(u64, String, String)> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (u["id"].as_u64().unwrap(), u["name"].as_str().unwrap().into(), u["extension"].as_str().unwrap().into())
        })
        .collect();
    assert_eq!(
        users,
        vec![
            (8320148, "Anna Petrova".into(), "101".into()),
            (8375357, "Bruno Costa".into(), "102".into()),
            (8390001, "Chen Wei".into(), "103".into())
        ]
    );
    // Without ?user= the first user.
    let v: Value = k.client.get(k.url("/sandbox/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["current_user_id"], 8320148);
    // Users API agrees.
    let u = k.get_ok("/api/v4/users").await;
    assert_eq!(u["_embedded"]["users"].as_array().unwrap().len(), 3);
    assert_eq!(k.get_ok("/api/v4/users/8375357").await["name"], "Bruno Costa");
}

#[tokio::test]
async fn widget_settings_round_trip() {
    let k = common::start().await;
    let v: Value = k.client.get(k.url("/sandbox/widget-settings")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["phones"], json!({"8320148": "101", "8375357": "102", "8390001": "103"}));
    assert_eq!(v["path"], "/upl/callcard/widget");
    assert_eq!(v["widget_code"], "callcard");
    assert_eq!(v["active"], "Y");
    assert!(v["version"].is_string());
    let r = k
        .client
        .put(k.url("/sandbox/widget-settings"))
        .json(&json!({"phones": {"8320148": "201"}, "path": "/elsewhere", "active": "N"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = k.client.get(k.url("/sandbox/widget-settings")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["phones"], json!({"8320148": "201"}));
    assert_eq!(v["path"], "/upl/callcard/widget", "Kommo owns path");
    assert_eq!(v["active"], "N");
    let r = k.client.put(k.url("/sandbox/widget-settings")).body("[1]").send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn static_files_widget_package_and_vendor_scripts() {
    let www = tempfile::tempdir().unwrap();
    let widget = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "<h1>host page</h1>").unwrap();
    std::fs::create_dir_all(www.path().join("node_modules/requirejs")).unwrap();
    std::fs::create_dir_all(www.path().join("node_modules/jquery/dist")).unwrap();
    std::fs::write(www.path().join("node_modules/requirejs/require.js"), "var requirejs;").unwrap();
    std::fs::write(www.path().join("node_modules/jquery/dist/jquery.min.js"), "var jQuery;").unwrap();
    std::fs::create_dir_all(widget.path().join("pkg")).unwrap();
    std::fs::write(widget.path().join("manifest.json"), r#"{"widget": {"version": "1.2.3"}}"#).unwrap();
    std::fs::write(widget.path().join("script.js"), "define([], function(){});").unwrap();
    std::fs::write(widget.path().join("pkg/callcard_widget_bg.wasm"), b"\0asm").unwrap();
    let (w, p) = (www.path().to_path_buf(), widget.path().to_path_buf());
    let k = common::start_with(move |c| c.with_www_dir(w).with_widget_dir(p)).await;
    let get = |path: &str| k.client.get(k.url(path)).send();
    let r = get("/").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "<h1>host page</h1>");
    assert_eq!(get("/vendor/require.js").await.unwrap().text().await.unwrap(), "var requirejs;");
    assert_eq!(get("/vendor/jquery.js").await.unwrap().text().await.unwrap(), "var jQuery;");
    assert_eq!(
        get("/upl/callcard/widget/script.js?v=1.2.3").await.unwrap().text().await.unwrap(),
        "define([], function(){});"
    );
    let r = get("/upl/callcard/widget/pkg/callcard_widget_bg.wasm").await.unwrap();
    assert_eq!(common::content_type(&r), "application/wasm");
    assert_eq!(get("/nope.html").await.unwrap().status(), 404);
    // The settings follow the package's manifest version.
    let v: Value = get("/sandbox/widget-settings").await.unwrap().json().await.unwrap();
    assert_eq!(v["version"], "1.2.3");
}
