//! Starting a sandbox on a random port and talking to it like the backend
//! would: over real HTTP with reqwest.
#![allow(dead_code)]

use kommo_sandbox::{Sandbox, SandboxConfig};
use reqwest::{Client, Response};
use serde_json::{json, Value};

pub struct Kommo {
    pub sandbox: Sandbox,
    pub base: String,
    pub client: Client,
    pub token: String,
}

/// A seeded sandbox on 127.0.0.1:<random>, with no rate limit unless the
/// test asks for one, and an OAuth access token.
pub async fn start() -> Kommo {
    start_with(|c| c.with_rate_limit(None)).await
}

pub async fn start_with(tune: impl FnOnce(SandboxConfig) -> SandboxConfig) -> Kommo {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sandbox = Sandbox::new(tune(SandboxConfig::for_tests(&base)));
    tokio::spawn(sandbox.clone().serve(listener));
    let token = sandbox.issue_tokens(8_320_148).access_token;
    Kommo { sandbox, base, client: Client::new(), token }
}

impl Kommo {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).bearer_auth(&self.token).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client.post(self.url(path)).bearer_auth(&self.token).json(&body).send().await.unwrap()
    }

    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.client.patch(self.url(path)).bearer_auth(&self.token).json(&body).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).bearer_auth(&self.token).send().await.unwrap()
    }

    /// POST and expect 200 hal+json; returns the body.
    pub async fn post_ok(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, body).await;
        assert_eq!(r.status(), 200, "POST {path}");
        assert_eq!(content_type(&r), "application/hal+json");
        r.json().await.unwrap()
    }

    pub async fn get_ok(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        assert_eq!(content_type(&r), "application/hal+json");
        r.json().await.unwrap()
    }

    pub async fn inspect(&self) -> Value {
        self.client.get(self.url("/sandbox/inspect")).send().await.unwrap().json().await.unwrap()
    }

    /// The caller-ID answer items for one number.
    pub async fn caller_id(&self, phone: &str) -> Vec<Value> {
        let v = self
            .post_ok(
                "/api/v2/events",
                json!({"add": [{"type": "phone_call", "phone_number": phone, "users": [8320148]}]}),
            )
            .await;
        v["_embedded"]["items"].as_array().unwrap().clone()
    }

    /// The id of the record of `kind` (api path) whose name is `name`.
    pub async fn id_of(&self, kind: &str, name: &str) -> u64 {
        let doc = self.inspect().await;
        doc[kind].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("{kind} {name}"))
            ["id"]
            .as_u64()
            .unwrap()
    }
}

pub fn content_type(r: &Response) -> String {
    r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}
