//! Kommo's webhooks: `POST /api/v4/webhooks` subscribes a destination to
//! events (`add_contact`, `status_lead`, ...), `DELETE` ends it, `GET` lists.
//!
//! Kommo keeps one subscription per destination: subscribing again replaces
//! its events. What Kommo then posts (form-encoded, `contacts[update][0][id]`)
//! is read by the receiver, not by this client.

use crate::http::{ApiRequest, KommoClient};
use crate::KommoError;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One subscription as Kommo answers it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Webhook {
    pub id: u64,
    pub destination: String,
    #[serde(default)]
    pub settings: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Serialize)]
struct Subscribe<'a> {
    destination: &'a str,
    settings: &'a [&'a str],
}

#[derive(Serialize)]
struct Unsubscribe<'a> {
    destination: &'a str,
}

impl KommoClient {
    /// Subscribes `destination` to `events`, or replaces the events of its
    /// existing subscription; repeating it changes nothing more.
    pub async fn subscribe_webhook(&self, destination: &str, events: &[&str]) -> Result<Webhook, KommoError> {
        let req = ApiRequest::post_idempotent("/api/v4/webhooks", &Subscribe { destination, settings: events })?;
        self.send_expect(&req).await
    }

    /// Ends the subscription of `destination`; `Ok` also when there was none.
    pub async fn unsubscribe_webhook(&self, destination: &str) -> Result<(), KommoError> {
        let req = ApiRequest::patch("/api/v4/webhooks", &Unsubscribe { destination })?.with_method(Method::DELETE);
        match self.send::<Value>(&req).await {
            Ok(_) | Err(KommoError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every subscription of the account (Kommo answers 204 for none).
    pub async fn webhooks(&self) -> Result<Vec<Webhook>, KommoError> {
        match self.send::<Value>(&ApiRequest::get("/api/v4/webhooks")).await? {
            None => Ok(Vec::new()),
            Some(answer) => crate::http::embedded(&answer, "webhooks"),
        }
    }
}
