//! Kommo's webhooks: `GET|POST|DELETE /api/v4/webhooks`, and the deliveries
//! that follow every change to a contact, company, lead or customer.
//!
//! Subscribing (`POST /api/v4/webhooks {"destination": URL, "settings":
//! ["add_contact", "status_lead", ...]}`) names one destination; posting the
//! same destination again replaces its settings (one subscription per
//! destination). `DELETE /api/v4/webhooks {"destination": URL}` ends it.
//!
//! Every change the account's records go through, whoever makes it (the API,
//! accepting an incoming lead, or a person in Kommo's interface, played by
//! `DELETE /sandbox/records/{kind}/{id}` and `POST .../restore`), becomes an
//! event: `add_`, `update_`, `delete_` or `restore_` + `contact`, `company`,
//! `lead`, `customer`, plus `status_lead` when a lead changes status (Kommo
//! sends it together with `update_lead`; unconfirmed whether both always
//! come). The events of one request reach each destination as one
//! `application/x-www-form-urlencoded` POST in Kommo's nested-bracket form:
//!
//! ```text
//! account[id]=31415926&account[subdomain]=acme
//! &contacts[update][0][id]=20100001&contacts[update][0][name]=Maria Gonzalez
//! &contacts[update][0][custom_fields][0][code]=PHONE&contacts[update][0][custom_fields][0][values][0][value]=+18305703077
//! &leads[status][0][id]=5756100&leads[status][0][status_id]=142&leads[status][0][old_status_id]=7100011
//! ```
//!
//! Which fields Kommo puts in each entry is only partly documented: the
//! sandbox sends the ones integrations are seen reading (id, name, status and
//! pipeline, responsible user, times, custom fields with phones) and no links
//! between records, which receivers must fetch themselves.
//!
//! A delivery that does not get a 2xx within the timeout is retried after
//! each of [`crate::SandboxConfig::webhook_retry_delays`], then given up
//! (Kommo retries and eventually disables a failing hook; its exact schedule
//! is unconfirmed). Every attempt is recorded for `GET /sandbox/inspect`.

use crate::oauth::Principal;
use crate::problem::{no_content, ok, Fields, Problem};
use crate::store::{now_secs, Store, ALL_KINDS};
// The subscriptions and the outbox of changes are the store's (it records
// every change as it makes it); this module delivers them.
pub use crate::store::{Action, Change, Subscription};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use callcard_calls::EntityKind;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Mutex;

/// Every event name a subscription may ask for.
pub fn known_events() -> Vec<String> {
    let mut names = Vec::new();
    for kind in ALL_KINDS {
        for action in [Action::Add, Action::Update, Action::Delete, Action::Restore] {
            names.push(format!("{}_{}", action.as_str(), kind.as_str()));
        }
    }
    names.push("status_lead".into());
    names
}

/// One delivery and its attempts, for the inspection view and the tests.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub destination: String,
    pub events: Vec<String>,
    /// The form body as sent.
    pub body: String,
    /// The status of each attempt; 0 when no answer came (refused, timed out).
    pub attempts: Vec<u16>,
    pub delivered: bool,
}

/// The deliveries made so far, in the order they started.
#[derive(Default)]
pub struct DeliveryLog {
    deliveries: Mutex<Vec<Delivery>>,
    /// Woken after every attempt.
    attempted: tokio::sync::Notify,
}

impl DeliveryLog {
    pub fn snapshot(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until the deliveries satisfy `done` (checked after each attempt)
    /// and returns them: how a test knows an answer was recorded.
    pub async fn wait_until(&self, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        loop {
            let attempted = self.attempted.notified();
            let now = self.snapshot();
            if done(&now) {
                return now;
            }
            attempted.await;
        }
    }

    fn start(&self, delivery: Delivery) -> usize {
        let mut all = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        all.push(delivery);
        all.len() - 1
    }

    fn attempt(&self, index: usize, status: u16) {
        let mut all = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        let d = &mut all[index];
        d.attempts.push(status);
        d.delivered = (200..300).contains(&status);
        drop(all);
        self.attempted.notify_waiters();
    }
}

/// The form fields of a batch of changes, in Kommo's bracket notation.
pub fn form_fields(st: &Store, origin: &str, changes: &[&Change]) -> Vec<(String, String)> {
    let mut fields = vec![
        ("account[id]".to_string(), st.account.id.to_string()),
        ("account[subdomain]".to_string(), st.account.subdomain.clone()),
        ("account[_links][self]".to_string(), origin.to_string()),
    ];
    let mut counters: Vec<((EntityKind, Action), usize)> = Vec::new();
    for change in changes {
        let key = (change.entity.kind, change.action);
        let index = match counters.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                counters.push((key, 0));
                0
            }
        };
        let prefix = format!("{}[{}][{index}]", change.entity.kind.api_path(), change.action.as_str());
        entry_fields(&mut fields, &prefix, st.account.id, change);
    }
    fields
}

fn entry_fields(out: &mut Vec<(String, String)>, prefix: &str, account_id: u64, change: &Change) {
    let e = &change.entity;
    // `key` is a field name, or a nested path in the same notation
    // (`custom_fields[0][code]`): its head gets the brackets.
    let mut put = |key: &str, value: String| {
        let (head, rest) = key.split_once('[').map_or((key, String::new()), |(h, t)| (h, format!("[{t}")));
        out.push((format!("{prefix}[{head}]{rest}"), value));
    };
    put("id", e.id.to_string());
    if change.action == Action::Delete {
        return;
    }
    put("name", e.name.clone());
    put("responsible_user_id", e.responsible_user_id.to_string());
    put("created_user_id", e.created_by.to_string());
    put("modified_user_id", e.updated_by.to_string());
    put("created_at", e.created_at.to_string());
    put("updated_at", e.updated_at.to_string());
    put("account_id", account_id.to_string());
    match e.kind {
        EntityKind::Lead => {
            put("status_id", e.status_id.to_string());
            put("pipeline_id", e.pipeline_id.to_string());
            put("price", e.price.to_string());
            if let Some(old) = change.old_status_id {
                put("old_status_id", old.to_string());
            }
        }
        EntityKind::Customer => {
            put("status_id", e.status_id.to_string());
            put("next_price", e.price.to_string());
        }
        EntityKind::Contact | EntityKind::Company => {
            if !e.phones.is_empty() {
                put("custom_fields[0][id]", crate::store::PHONE_FIELD_ID.to_string());
                put("custom_fields[0][name]", "Phone".into());
                put("custom_fields[0][code]", "PHONE".into());
                for (i, phone) in e.phones.iter().enumerate() {
                    put(&format!("custom_fields[0][values][{i}][value]"), phone.value.clone());
                    put(&format!("custom_fields[0][values][{i}][enum]"), phone.enum_code.clone());
                }
            }
        }
    }
}

/// Middleware on every route: after the request, sends the changes it made
/// to each subscribed destination (in the background: a slow receiver never
/// slows Kommo's answer).
pub async fn deliver_after(State(sb): State<Sandbox>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let batches = {
        let mut st = sb.store();
        let changes = std::mem::take(&mut st.webhook_outbox);
        if changes.is_empty() {
            return response;
        }
        let origin = sb.config().origin.clone();
        st.webhooks
            .iter()
            .filter_map(|sub| {
                let wanted: Vec<&Change> = changes.iter().filter(|c| sub.settings.contains(&c.event_name())).collect();
                if wanted.is_empty() {
                    return None;
                }
                let events = wanted.iter().map(|c| c.event_name()).collect();
                Some((sub.destination.clone(), events, form_fields(&st, &origin, &wanted)))
            })
            .collect::<Vec<_>>()
    };
    for (destination, events, fields) in batches {
        let body = serde_urlencoded::to_string(&fields).unwrap_or_default();
        tokio::spawn(deliver(sb.clone(), destination, events, body));
    }
    response
}

async fn deliver(sb: Sandbox, destination: String, events: Vec<String>, body: String) {
    let log = sb.webhook_log();
    let index = log.start(Delivery {
        destination: destination.clone(),
        events,
        body: body.clone(),
        attempts: Vec::new(),
        delivered: false,
    });
    let delays = sb.config().webhook_retry_delays.clone();
    let timeout = sb.config().webhook_timeout;
    for wait in std::iter::once(None).chain(delays.into_iter().map(Some)) {
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
        let answer = sb
            .http_client()
            .post(&destination)
            .header("content-type", "application/x-www-form-urlencoded")
            .timeout(timeout)
            .body(body.clone())
            .send()
            .await;
        let status = answer.map(|r| r.status().as_u16()).unwrap_or(0);
        log.attempt(index, status);
        if (200..300).contains(&status) {
            return;
        }
        tracing::debug!("webhook to {destination} answered {status}; retrying");
    }
    tracing::warn!("webhook to {destination} given up after every retry");
}

fn webhook_json(st: &Store, sub: &Subscription) -> Value {
    json!({
        "id": sub.id,
        "destination": sub.destination,
        "created_at": sub.created_at,
        "updated_at": sub.updated_at,
        "account_id": st.account.id,
        "created_by": sub.created_by,
        "sort": 1,
        "disabled": false,
        "settings": sub.settings,
    })
}

/// `GET /api/v4/webhooks`.
pub async fn list(State(sb): State<Sandbox>) -> Response {
    let st = sb.store();
    if st.webhooks.is_empty() {
        return no_content();
    }
    let items: Vec<Value> = st.webhooks.iter().map(|s| webhook_json(&st, s)).collect();
    ok(json!({"_total_items": items.len(), "_embedded": {"webhooks": items}}))
}

fn destination(f: &mut Fields) -> String {
    let d = f.req_str("destination");
    let is_url = d.starts_with("http://") || d.starts_with("https://");
    if !d.is_empty() && !is_url {
        f.error("InvalidValue", "destination", "This value is not a valid URL.");
    }
    d
}

/// `POST /api/v4/webhooks {destination, settings}`: subscribes, or replaces
/// the settings of the destination's subscription.
pub async fn subscribe(State(sb): State<Sandbox>, Extension(p): Extension<Principal>, body: Bytes) -> Response {
    let item = match crate::problem::parse_body(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut f = Fields::new(&item, 0);
    let destination = destination(&mut f);
    let known = known_events();
    let mut settings = Vec::new();
    match f.get("settings") {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, s) in list.iter().enumerate() {
                match s.as_str() {
                    Some(name) if known.iter().any(|k| k == name) => settings.push(name.to_string()),
                    _ => f.error(
                        "NotSupportedChoice",
                        &format!("settings.{i}"),
                        "The value you selected is not a valid choice.",
                    ),
                }
            }
        }
        Some(_) => f.error("InvalidType", "settings", "This value should be a non-empty array of event names."),
        None => f.error("FieldMissing", "settings", "This field is missing."),
    }
    if let Err(e) = f.finish() {
        return Problem::validation(vec![e]).into_response();
    }
    let mut st = sb.store();
    let now = now_secs();
    let next_id = st.webhooks.iter().map(|s| s.id).max().unwrap_or(0) + 1;
    let index = match st.webhooks.iter().position(|s| s.destination == destination) {
        Some(i) => {
            st.webhooks[i].settings = settings;
            st.webhooks[i].updated_at = now;
            i
        }
        None => {
            st.webhooks.push(Subscription {
                id: next_id,
                destination,
                settings,
                created_at: now,
                updated_at: now,
                created_by: p.user_id,
            });
            st.webhooks.len() - 1
        }
    };
    let answer = webhook_json(&st, &st.webhooks[index]);
    ok(answer)
}

/// `DELETE /api/v4/webhooks {destination}` → 204 (404 when not subscribed).
pub async fn unsubscribe(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let item = match crate::problem::parse_body(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut f = Fields::new(&item, 0);
    let destination = destination(&mut f);
    if let Err(e) = f.finish() {
        return Problem::validation(vec![e]).into_response();
    }
    let mut st = sb.store();
    let before = st.webhooks.len();
    st.webhooks.retain(|s| s.destination != destination);
    if st.webhooks.len() == before {
        return Problem::not_found(format!("no webhook for {destination}")).into_response();
    }
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FieldValue;
    use crate::store::{changes_of, Entity};

    fn contact() -> Entity {
        let mut e = Entity::new(EntityKind::Contact, 7, "Maria Gonzalez", 1_700_000_000, 1);
        e.phones = vec![FieldValue { value: "+18305703077".into(), enum_code: "WORK".into() }];
        e
    }

    #[test]
    fn a_status_change_is_an_update_and_a_status_event() {
        let old = Entity::new(EntityKind::Lead, 5, "Deal", 1, 1);
        let mut won = old.clone();
        won.status_id = 142;
        let names: Vec<String> = changes_of(Some(&old), &won).iter().map(Change::event_name).collect();
        assert_eq!(names, ["update_lead", "status_lead"]);
        assert_eq!(changes_of(None, &won)[0].event_name(), "add_lead");
        assert_eq!(changes_of(Some(&old), &old).len(), 1, "same status: no status event");
    }

    #[test]
    fn the_form_uses_kommos_bracket_keys_and_numbers_entries_per_action() {
        let st = crate::seed::empty_account(31_415_926, "acme");
        let a = Change { action: Action::Update, entity: contact(), old_status_id: None };
        let b = Change {
            action: Action::Update,
            entity: Entity::new(EntityKind::Contact, 8, "Bo", 1, 1),
            old_status_id: None,
        };
        let fields = form_fields(&st, "http://x", &[&a, &b]);
        let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("account[subdomain]"), Some("acme"));
        assert_eq!(get("contacts[update][0][id]"), Some("7"));
        assert_eq!(get("contacts[update][1][name]"), Some("Bo"));
        assert_eq!(get("contacts[update][0][custom_fields][0][code]"), Some("PHONE"));
        assert_eq!(get("contacts[update][0][custom_fields][0][values][0][value]"), Some("+18305703077"));
        let body = serde_urlencoded::to_string(&fields).unwrap();
        assert!(body.contains("contacts%5Bupdate%5D%5B0%5D%5Bid%5D=7"), "{body}");
    }
}
