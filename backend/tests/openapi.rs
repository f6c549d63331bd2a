//! The OpenAPI document is generated from the handlers (utoipa); these tests
//! hold it to the router: the same paths, each with the same methods, and the
//! fields that can be null typed so.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;

/// The router's paths, as axum reports them: its `Debug` lists each route's
/// path, then the fallback router's (not routes). If axum changes that
/// output, the assertion on the count below fails rather than passing.
fn routed_paths(router: &axum::Router) -> BTreeSet<String> {
    let shown = format!("{router:?}");
    let routes = shown.split("fallback_router:").next().unwrap();
    let mut paths = BTreeSet::new();
    let mut rest = routes;
    while let Some(start) = rest.find("\"/") {
        let tail = &rest[start + 1..];
        let end = tail.find('"').expect("a closing quote");
        let path = &tail[..end];
        if !path.contains("__private__axum") {
            paths.insert(path.to_string());
        }
        rest = &tail[end..];
    }
    paths
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn the_document_is_the_router() {
    let db = Db::sqlite().await;
    let mut config = config(&db);
    config.ops_token = Some("an-operator-token-for-tests".into());
    let node = Instance::start(config).await;
    let doc: Value = client().get(format!("{}/openapi.json", node.base)).send().await.unwrap().json().await.unwrap();
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed = routed_paths(&node.backend.router());
    assert!(routed.len() >= 16, "the router's paths were not read: {routed:?}");
    assert_eq!(routed, documented, "routed paths (left) and documented paths (right) differ");

    // Each documented method reaches its handler; every other method is
    // refused by the router (405), so none is routed undocumented.
    for path in &documented {
        let url = format!("{}{}", node.base, path.replace("{account_id}", "1").replace(['{', '}'], ""));
        for method in METHODS {
            let documented = doc["paths"][path][method].is_object();
            let answer = client()
                .request(method.to_uppercase().parse().unwrap(), &url)
                .header("origin", "https://nowhere.test")
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            let body = answer.text().await.unwrap();
            if documented {
                assert_ne!(status, 405, "{method} {path} is documented but not routed: {body}");
                assert!(
                    !body.contains("/problems/not-found\"") || path.starts_with("/ops/"),
                    "{method} {path}: {body}"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} is routed but not documented: {body}");
            }
        }
    }
    node.stop().await;
}

/// A call known only from its end has no ringing or answer time: the
/// document says those fields can be null.
#[test]
fn fields_that_can_be_null_are_nullable() {
    let doc = serde_json::to_value(callcard_backend::openapi_document()).unwrap();
    let call = &doc["components"]["schemas"]["Call"]["properties"];
    for field in ["ringing_at", "answered_at"] {
        let types = call[field]["type"].as_array().unwrap_or_else(|| panic!("{field}: {}", call[field]));
        assert!(types.contains(&Value::from("null")), "{field} is not nullable: {}", call[field]);
    }
    for field in ["ending", "recording"] {
        assert_eq!(call[field]["oneOf"][0]["type"], "null", "{field}: {}", call[field]);
    }
}

/// Every operation documents its problem answers as application/problem+json.
#[test]
fn refusals_are_documented_as_problems() {
    let doc = serde_json::to_value(callcard_backend::openapi_document()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') {
                    assert!(
                        response["content"]["application/problem+json"]["schema"]["$ref"]
                            == "#/components/schemas/Problem",
                        "{method} {path} {status}: {response}"
                    );
                }
            }
        }
    }
    // The body endpoints document malformed JSON (400).
    for (method, path) in [
        ("post", "/pbx/{account_id}/events"),
        ("post", "/pbx/{account_id}/calls"),
        ("put", "/widget/settings"),
        ("post", "/widget/calls/{call_id}/result"),
    ] {
        assert!(doc["paths"][path][method]["responses"]["400"].is_object(), "{method} {path}");
    }
}
