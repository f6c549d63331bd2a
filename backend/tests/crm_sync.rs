//! CRM sync end to end: a real backend (SQLite and PostgreSQL) talking to a
//! real Kommo sandbox on 127.0.0.1:0, with the PBX's signed webhooks as the
//! only input and the sandbox's inspection document as the verdict.
//!
//! Every scenario ends the same way: wait until the job queue is idle, then
//! check that Kommo holds exactly the records the seeds describe, once each,
//! on the right entity.

mod common;

use callcard_backend::CrmChange;
use callcard_backend::JobState;
use callcard_backend::{Backend, Config, Job, QueueConfig};
use common::{deliver, post_signed, Account, Db, Instance};
use kommo_sandbox::seed::numbers;
use kommo_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use serde_json::{json, Value};
use std::time::Duration;

const ANNA: u64 = 8_320_148;
const BRUNO: u64 = 8_375_357;

/// A seeded sandbox served on an ephemeral port.
struct Kommo {
    sandbox: Sandbox,
    origin: String,
    /// Requests to Kommo's API (`/api/...`), as Kommo's budget counts them.
    api_requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Kommo {
    async fn start(tweak: impl FnOnce(SandboxConfig) -> SandboxConfig) -> Kommo {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let config = SandboxConfig::for_tests(origin.clone())
            .with_secret(common::INTEGRATION_SECRET)
            .with_backend_base_url("http://backend.test/backend")
            .with_redirect_uri("http://backend.test/backend/kommo/install")
            .with_seed(true);
        let sandbox = Sandbox::new(tweak(config));
        let api_requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = api_requests.clone();
        let router = sandbox.router().layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                if request.uri().path().starts_with("/api/") {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                next.run(request)
            },
        ));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Kommo { sandbox, origin, api_requests, server }
    }

    fn account(&self) -> Account {
        Account { id: self.sandbox.account_id(), origin: self.origin.clone(), secret: "whsec-crm-sync".into() }
    }

    /// Every call note with this `uniq`: (entity type, entity id, note).
    fn notes(&self, uniq: &str) -> Vec<(String, u64, Value)> {
        let doc = self.sandbox.inspect();
        let mut out = Vec::new();
        for kind in ["contacts", "companies", "leads", "customers"] {
            for record in doc[kind].as_array().into_iter().flatten() {
                for note in record["notes"].as_array().into_iter().flatten() {
                    if note["params"]["uniq"] == uniq {
                        out.push((
                            record["type"].as_str().unwrap().to_string(),
                            record["id"].as_u64().unwrap(),
                            note.clone(),
                        ));
                    }
                }
            }
        }
        out
    }

    /// The one call note of this call; panics unless there is exactly one.
    fn the_note(&self, uniq: &str) -> (String, u64, Value) {
        let notes = self.notes(uniq);
        assert_eq!(notes.len(), 1, "exactly one note for {uniq}: {notes:#?}");
        notes.into_iter().next().unwrap()
    }

    /// Incoming leads whose `source_uid` is this call.
    fn unsorted(&self, call_id: &str) -> Vec<Value> {
        let doc = self.sandbox.inspect();
        doc["unsorted"].as_array().into_iter().flatten().filter(|u| u["source_uid"] == call_id).cloned().collect()
    }

    /// Where Kommo's own call-logging rule puts a call from `phone`.
    fn expected(&self, phone: &str) -> Option<(String, u64)> {
        let st = self.sandbox.store();
        kommo_sandbox::match_call(&st, phone).map(|r| (r.kind.as_str().to_string(), r.id))
    }

    fn stop(self) {
        self.server.abort();
    }
}

fn fast_queue() -> QueueConfig {
    QueueConfig {
        workers: 3,
        max_attempts: 8,
        lease: Duration::from_secs(20),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(400),
        poll_interval: Duration::from_millis(100),
        reauthorization_wait: Duration::from_millis(300),
    }
}

fn config_for(db: &Db, kommo: &Kommo) -> Config {
    let mut config = common::config(db);
    config.kommo_base_url = Some(kommo.origin.clone());
    config.client_id = kommo.sandbox.config().client_id.clone();
    config.redirect_uri = kommo.sandbox.config().redirect_uri.clone();
    config.ops_token = Some("ops-token-for-tests-0123456789".into());
    config.queue = fast_queue();
    config.kommo.request_timeout = Duration::from_millis(1000);
    config.kommo.backoff_base = Duration::from_millis(20);
    config.kommo.backoff_cap = Duration::from_millis(200);
    config.kommo.max_retry_after = Duration::from_secs(2);
    config
}

/// Provisions the sandbox's account (Anna 101, Bruno 102) and installs the integration.
async fn install(backend: &Backend, kommo: &Kommo) -> Account {
    let account = kommo.account();
    account.provision(backend, &[(ANNA, "101"), (BRUNO, "102")]).await;
    let code = kommo.sandbox.authorization_code(ANNA);
    backend.install_account(account.id, &code, &kommo.origin).await.expect("installation");
    account
}

/// Waits until no job is pending or running.
async fn idle(backend: &Backend) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let counts = backend.store().job_counts().await.unwrap();
        let busy: i64 =
            counts.iter().filter(|(s, _)| matches!(s, JobState::Pending | JobState::Running)).map(|(_, n)| n).sum();
        if busy == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the queue never drained: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ended(call_id: &str, phone: &str, extension: &str, duration: u32, outcome: &str) -> Value {
    json!({"event": "ended", "call_id": call_id, "direction": "inbound", "external_number": phone,
           "extension": extension, "occurred_at": common::now_ms(), "duration": duration, "outcome": outcome})
}

fn recording(call_id: &str, phone: &str, url: &str) -> Value {
    json!({"event": "recording_ready", "call_id": call_id, "direction": "inbound", "external_number": phone,
           "extension": "101", "occurred_at": common::now_ms(), "recording_url": url})
}

async fn every_branch_lands_once_on_the_right_entity(db: Db) {
    let kommo = Kommo::start(|c| c).await;
    let instance = Instance::start(config_for(&db, &kommo)).await;
    let account = install(&instance.backend, &kommo).await;
    let cases = [
        ("one-lead", numbers::CONTACT_ONE_ACTIVE_LEAD, "lead"),
        ("two-leads", numbers::CONTACT_TWO_ACTIVE_LEADS, "contact"),
        ("company-only", numbers::COMPANY_NO_LEADS, "company"),
        ("company-lead", numbers::COMPANY_ONE_ACTIVE_LEAD, "lead"),
        ("customer", numbers::CONTACT_ONE_CUSTOMER, "customer"),
        ("oldest-contact", numbers::SHARED_BY_TWO_CONTACTS, "lead"),
    ];
    for (id, phone, _) in cases {
        deliver(&instance.base, &account, &ended(id, phone, "101", 62, "answered")).await;
    }
    deliver(&instance.base, &account, &ended("unknown", numbers::UNKNOWN, "101", 30, "answered")).await;
    deliver(&instance.base, &account, &ended("missed", numbers::CONTACT_ONE_ACTIVE_LEAD, "101", 25, "missed")).await;
    deliver(&instance.base, &account, &ended("internal", "102", "101", 40, "answered")).await;
    idle(&instance.backend).await;

    for (id, phone, kind) in cases {
        let (entity_type, entity_id, note) = kommo.the_note(id);
        assert_eq!(Some((entity_type.clone(), entity_id)), kommo.expected(phone), "{id}: Kommo's rule");
        assert_eq!(entity_type, kind, "{id}");
        assert_eq!(note["note_type"], "call_in");
        assert_eq!(note["params"]["duration"], 62);
        assert_eq!(note["params"]["phone"], phone);
        assert_eq!(note["params"]["call_status"], 4);
        let text = note["params"]["call_result"].as_str().unwrap();
        assert!(text.contains("Duration: 1:02") && text.contains("Result: Answered"), "{text}");
        let stored = instance.backend.call(account.id, id).await.unwrap().unwrap();
        assert_eq!(stored.note_id, note["id"].as_u64());
        assert!(stored.entity.is_some(), "the widget learns where the call went");
    }
    // A number nobody has: one incoming lead, the call in its metadata, the note on its lead.
    let unsorted = kommo.unsorted("unknown");
    assert_eq!(unsorted.len(), 1, "{unsorted:#?}");
    assert_eq!(unsorted[0]["metadata"]["uniq"], "unknown");
    assert_eq!(unsorted[0]["metadata"]["from"], numbers::UNKNOWN);
    let (entity_type, entity_id, _) = kommo.the_note("unknown");
    assert_eq!((entity_type.as_str(), entity_id), ("lead", unsorted[0]["leads"][0].as_u64().unwrap()));
    let stored = instance.backend.call(account.id, "unknown").await.unwrap().unwrap();
    assert_eq!(stored.unsorted_uid.as_deref(), unsorted[0]["uid"].as_str());
    // A missed call is logged with zero duration.
    let (_, _, note) = kommo.the_note("missed");
    assert_eq!(note["params"]["duration"], 0);
    assert!(note["params"]["call_result"].as_str().unwrap().contains("Result: Missed"));
    // An internal call is not logged at all.
    assert!(kommo.notes("internal").is_empty());
    assert!(kommo.unsorted("internal").is_empty());
    let stored = instance.backend.call(account.id, "internal").await.unwrap().unwrap();
    assert_eq!(stored.sync_state.as_str(), "skipped");
    // Redelivering the ends changes nothing (a new end time is a correction:
    // the same note is PATCHed, never a second one).
    for (id, phone, _) in cases {
        deliver(&instance.base, &account, &ended(id, phone, "101", 62, "answered")).await;
    }
    idle(&instance.backend).await;
    for (id, _, _) in cases {
        kommo.the_note(id);
    }
    instance.stop().await;
    kommo.stop();
}

async fn late_data_patches_the_same_note_and_keeps_the_managers_words(db: Db) {
    let kommo = Kommo::start(|c| c).await;
    let instance = Instance::start(config_for(&db, &kommo)).await;
    let backend = &instance.backend;
    let account = install(backend, &kommo).await;
    let phone = numbers::CONTACT_ONE_ACTIVE_LEAD;
    deliver(&instance.base, &account, &ended("late", phone, "101", 62, "answered")).await;
    idle(backend).await;
    let (_, lead, first) = kommo.the_note("late");
    assert!(first["params"]["link"].is_null());

    // The manager writes a note (what the call-result side stores), and the
    // log is brought up to date.
    backend
        .store()
        .update_call_crm(
            account.id,
            "late",
            CrmChange { manager_note: Some("Wants 40 seats".into()), ..Default::default() },
        )
        .await
        .unwrap();
    backend.queue().enqueue(account.id, Job::UpdateCallLog { call_id: "late".into() }).await.unwrap();
    idle(backend).await;
    // The recording arrives: the same note gets the link.
    deliver(&instance.base, &account, &recording("late", phone, "https://pbx.test/late.mp3")).await;
    idle(backend).await;
    // A corrected end: better duration.
    deliver(&instance.base, &account, &ended("late", phone, "101", 65, "answered")).await;
    idle(backend).await;

    let (_, lead_after, note) = kommo.the_note("late");
    assert_eq!((lead_after, note["id"].clone()), (lead, first["id"].clone()), "the same note, PATCHed");
    assert_eq!(note["params"]["link"], "https://pbx.test/late.mp3");
    assert_eq!(note["params"]["duration"], 65);
    let text = note["params"]["call_result"].as_str().unwrap();
    assert!(text.contains("Recording: https://pbx.test/late.mp3"), "{text}");
    assert!(text.contains("Duration: 1:05") && !text.contains("Duration: 1:02"), "{text}");
    assert!(text.contains("Agent note: Wants 40 seats"), "machine updates keep the manager's note: {text}");
    assert_eq!(text.matches("Recording:").count(), 1);

    // Switched-off sections are not written.
    backend
        .store()
        .set_log_settings(account.id, &callcard_calls::note::LogSettings { recording: false, ..Default::default() })
        .await
        .unwrap();
    deliver(&instance.base, &account, &ended("quiet", phone, "101", 5, "answered")).await;
    deliver(&instance.base, &account, &recording("quiet", phone, "https://pbx.test/quiet.mp3")).await;
    idle(backend).await;
    let (_, _, quiet) = kommo.the_note("quiet");
    assert!(quiet["params"]["link"].is_null());
    assert!(!quiet["params"]["call_result"].as_str().unwrap().contains("Recording:"));
    instance.stop().await;
    kommo.stop();
}

async fn batches_log_each_call(db: Db) {
    let kommo = Kommo::start(|c| c).await;
    let instance = Instance::start(config_for(&db, &kommo)).await;
    let account = install(&instance.backend, &kommo).await;
    let now = common::now_ms();
    let body = json!({"calls": [
        {"uuid": "b-1", "direction": "inbound", "external_number": numbers::CONTACT_NO_LEADS, "extension": "101",
         "started_at": now - 60_000, "duration": 50, "outcome": "answered"},
        {"uuid": "b-2", "direction": "outbound", "external_number": numbers::COMPANY_ONE_CUSTOMER, "extension": "102",
         "started_at": now - 30_000, "duration": 0, "outcome": "no_answer"},
    ]});
    let r =
        post_signed(&instance.base, &format!("/pbx/{}/calls", account.id), &account.secret, &body.to_string()).await;
    let status = r.status();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    idle(&instance.backend).await;
    let (t1, id1, n1) = kommo.the_note("b-1");
    assert_eq!(Some((t1, id1)), kommo.expected(numbers::CONTACT_NO_LEADS));
    assert_eq!(n1["params"]["duration"], 50);
    let (t2, id2, n2) = kommo.the_note("b-2");
    assert_eq!(Some((t2, id2)), kommo.expected(numbers::COMPANY_ONE_CUSTOMER));
    assert_eq!(n2["note_type"], "call_out");
    assert_eq!(n2["params"]["duration"], 0);
    instance.stop().await;
    kommo.stop();
}

async fn faults_end_with_one_note_per_call(db: Db) {
    let kommo = Kommo::start(|c| c).await;
    let instance = Instance::start(config_for(&db, &kommo)).await;
    let account = install(&instance.backend, &kommo).await;
    kommo.sandbox.set_faults(FaultConfig {
        error_rate: 0.2,
        error_status: Some(503),
        throttle_rate: 0.1,
        retry_after: Some(1),
        delay_rate: 0.1,
        delay_ms: Some(1500), // beyond the 1 s request timeout
        drop_rate: 0.1,
        ..FaultConfig::default()
    });
    let phones = [
        numbers::CONTACT_ONE_ACTIVE_LEAD,
        numbers::CONTACT_TWO_ACTIVE_LEADS,
        numbers::COMPANY_NO_LEADS,
        numbers::CONTACT_ONE_CUSTOMER,
        numbers::UNKNOWN,
        numbers::CONTACT_NO_LEADS,
    ];
    for (i, phone) in phones.iter().enumerate() {
        deliver(&instance.base, &account, &ended(&format!("f-{i}"), phone, "101", 10 + i as u32, "answered")).await;
        deliver(&instance.base, &account, &recording(&format!("f-{i}"), phone, &format!("https://pbx.test/f-{i}.mp3")))
            .await;
    }
    idle(&instance.backend).await;
    let injected = kommo.sandbox.faults().snapshot();
    kommo.sandbox.faults().reset();
    let dead = instance.backend.store().jobs(Some(JobState::Dead), None, 100).await.unwrap();
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:#?}");
    for (i, phone) in phones.iter().enumerate() {
        let id = format!("f-{i}");
        let (t, e, note) = kommo.the_note(&id);
        assert_eq!(note["params"]["link"], format!("https://pbx.test/f-{i}.mp3"));
        if *phone == numbers::UNKNOWN {
            assert_eq!(kommo.unsorted(&id).len(), 1, "one incoming lead despite faults");
        } else {
            assert_eq!(Some((t, e)), kommo.expected(phone));
        }
    }
    println!("faults injected: {injected}");
    instance.stop().await;
    kommo.stop();
}

async fn dead_letters_wait_for_an_operator(db: Db) {
    let kommo = Kommo::start(|c| c).await;
    let mut config = config_for(&db, &kommo);
    config.queue.max_attempts = 2;
    config.kommo.max_retries = 0;
    let instance = Instance::start(config).await;
    let account = install(&instance.backend, &kommo).await;
    kommo.sandbox.set_faults(FaultConfig { error_rate: 1.0, error_status: Some(500), ..FaultConfig::default() });
    deliver(&instance.base, &account, &ended("doomed", numbers::CONTACT_ONE_ACTIVE_LEAD, "101", 9, "answered")).await;
    idle(&instance.backend).await;
    let client = common::client();
    let ops = |path: &str| format!("{}{path}", instance.base);
    let r = client.get(ops("/ops/jobs?state=dead")).send().await.unwrap();
    assert_eq!(r.status(), 401, "the operator endpoints need the token");
    let r =
        client.get(ops("/ops/jobs?state=zombie")).bearer_auth("ops-token-for-tests-0123456789").send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "state");
    let list: Value = client
        .get(ops("/ops/jobs?state=dead"))
        .bearer_auth("ops-token-for-tests-0123456789")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{list}");
    assert_eq!(jobs[0]["job"]["call_id"], "doomed");
    assert_eq!(jobs[0]["attempts"], 2);
    assert!(jobs[0]["last_error"].as_str().unwrap().contains("500"), "{list}");
    assert_eq!(list["counts"]["dead"], 1);
    assert!(kommo.notes("doomed").is_empty());
    assert!(instance.backend.metrics_text().contains("callcard_jobs_total{outcome=\"dead\"} 1"));

    kommo.sandbox.faults().reset();
    let id = jobs[0]["id"].as_i64().unwrap();
    let r = client
        .post(ops(&format!("/ops/jobs/{id}/retry")))
        .bearer_auth("ops-token-for-tests-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    idle(&instance.backend).await;
    kommo.the_note("doomed");
    let r = client
        .post(ops(&format!("/ops/jobs/{id}/retry")))
        .bearer_auth("ops-token-for-tests-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "a done job is not retried");
    instance.stop().await;
    kommo.stop();
}

async fn a_worker_that_dies_mid_job_loses_nothing_and_duplicates_nothing(db: Db) {
    let kommo = Kommo::start(|c| c).await;
    // First instance: no workers, so the job stays in the queue.
    let mut config = config_for(&db, &kommo);
    config.queue.workers = 0;
    let first = Instance::start(config.clone()).await;
    let account = install(&first.backend, &kommo).await;
    deliver(&first.base, &account, &ended("crash", numbers::CONTACT_ONE_ACTIVE_LEAD, "101", 30, "answered")).await;
    // A "worker" claims the job with a short lease, does the Kommo side
    // effect, and dies before recording anything.
    let store = first.backend.store();
    let claimed = store.claim_job("ghost-worker", Duration::from_millis(1500)).await.unwrap().expect("a job");
    assert_eq!(claimed.job, Job::LogCall { call_id: "crash".into() });
    assert!(store.claim_job("other", Duration::from_secs(5)).await.unwrap().is_none(), "leased: nobody else gets it");
    let ctx = first.backend.sync_context(account.id).await.unwrap();
    kommo_sandbox_write_note_then_forget(&ctx).await;
    assert_eq!(kommo.notes("crash").len(), 1);
    // A second instance with workers picks the job up once the lease expires.
    config.queue.workers = 2;
    let second = Instance::start(config).await;
    idle(&second.backend).await;
    kommo.the_note("crash");
    let job = store.job(claimed.id).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Done, 2));
    assert!(!store.finish_job(claimed.id, "ghost-worker").await.unwrap(), "the ghost cannot finish it any more");
    first.stop().await;
    second.stop().await;
    kommo.stop();
}

/// What a worker does before it records anything: the note in Kommo.
async fn kommo_sandbox_write_note_then_forget(ctx: &callcard_backend::SyncContext) {
    callcard_backend::sync_call_log(ctx, "crash").await.unwrap();
    // "Forget" what it recorded, as if the commit never happened.
    ctx.store.update_call_crm(ctx.account_id, "crash", CrmChange::default()).await.unwrap();
    sqlx::query("UPDATE calls SET note_id = NULL, note_params = NULL, note_entity_kind = NULL, note_entity_id = NULL, logged_at = NULL")
        .execute(ctx.store.pool())
        .await
        .unwrap();
}

async fn a_revoked_grant_parks_work_until_reinstalled(db: Db) {
    let kommo = Kommo::start(|c| c).await;
    let instance = Instance::start(config_for(&db, &kommo)).await;
    let backend = &instance.backend;
    let account = install(backend, &kommo).await;
    let widget_status = |base: String, account: Account| async move {
        let token = common::one_time_token(&account, ANNA, |_| {});
        let r =
            common::client().get(format!("{base}/widget/status")).header("x-auth-token", token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    assert_eq!(
        widget_status(instance.base.clone(), account.clone()).await,
        json!({"backend": "ok", "authorized": true, "needs_reauthorization": false})
    );
    kommo.sandbox.revoke_all_tokens();
    deliver(&instance.base, &account, &ended("revoked", numbers::CONTACT_ONE_ACTIVE_LEAD, "101", 12, "answered")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = widget_status(instance.base.clone(), account.clone()).await;
        if s["needs_reauthorization"] == true {
            assert_eq!(s["authorized"], false);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never marked: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The job waits (pending, not dead), however long it takes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let jobs = backend.store().jobs(None, Some((account.id, "revoked")), 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(matches!(jobs[0].state, JobState::Pending | JobState::Running), "{jobs:?}");
    assert!(jobs[0].attempts <= 1, "waiting does not spend attempts: {jobs:?}");
    assert!(kommo.notes("revoked").is_empty());
    // The admin installs again: the work completes.
    let code = kommo.sandbox.authorization_code(ANNA);
    backend.install_account(account.id, &code, &kommo.origin).await.unwrap();
    idle(backend).await;
    kommo.the_note("revoked");
    assert_eq!(widget_status(instance.base.clone(), account.clone()).await["authorized"], true);
    instance.stop().await;
    kommo.stop();
}

async fn the_install_endpoint_refuses_clearly(db: Db) {
    let kommo = Kommo::start(|c| c).await;
    let instance = Instance::start(config_for(&db, &kommo)).await;
    let account = kommo.account();
    account.provision(&instance.backend, &[(ANNA, "101")]).await;
    let get = |q: String| {
        let base = instance.base.clone();
        async move { common::client().get(format!("{base}/kommo/install{q}")).send().await.unwrap() }
    };
    let r = get("?referer=acme.kommo.com".into()).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "code");
    let r = get("?code=x".into()).await;
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "referer");
    let r = get("?code=not-a-code&referer=acme.kommo.com".into()).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "code");
    let code = kommo.sandbox.authorization_code(ANNA);
    let r = get(format!("?code={code}&referer=acme.kommo.com")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"account_id": account.id, "authorized": true}));
    // Tokens and webhook secrets are sealed at rest.
    use sqlx::Row;
    let row = sqlx::query("SELECT access_token, refresh_token FROM kommo_tokens")
        .fetch_one(instance.backend.store().pool())
        .await
        .unwrap();
    for column in ["access_token", "refresh_token"] {
        assert!(row.try_get::<String, _>(column).unwrap().starts_with("enc:v1:"), "{column} sealed");
    }
    let row =
        sqlx::query("SELECT webhook_secret FROM accounts").fetch_one(instance.backend.store().pool()).await.unwrap();
    let sealed: String = row.try_get("webhook_secret").unwrap();
    assert!(sealed.starts_with("enc:v1:") && !sealed.contains(&account.secret));
    instance.stop().await;
    kommo.stop();
}

/// How many Kommo requests logging costs (Kommo allows 7 per second).
async fn requests_per_call(db: Db) {
    let kommo = Kommo::start(|c| c).await;
    let instance = Instance::start(config_for(&db, &kommo)).await;
    let account = install(&instance.backend, &kommo).await;
    let count = || kommo.api_requests.load(std::sync::atomic::Ordering::SeqCst);
    let mut measure = Vec::new();
    for (name, call, event) in [
        (
            "known contact, one active lead",
            "r-1",
            ended("r-1", numbers::CONTACT_ONE_ACTIVE_LEAD, "101", 30, "answered"),
        ),
        ("company, no leads", "r-2", ended("r-2", numbers::COMPANY_NO_LEADS, "101", 30, "answered")),
        ("unknown number", "r-3", ended("r-3", numbers::UNKNOWN, "101", 30, "answered")),
        ("late recording", "r-1", recording("r-1", numbers::CONTACT_ONE_ACTIVE_LEAD, "https://pbx.test/r-1.mp3")),
        ("redelivered end (nothing new)", "r-2", ended("r-2", numbers::COMPANY_NO_LEADS, "101", 30, "answered")),
    ] {
        let before = count();
        deliver(&instance.base, &account, &event).await;
        idle(&instance.backend).await;
        measure.push((name, count() - before));
        kommo.the_note(call);
    }
    println!("Kommo requests per call: {measure:?}");
    for (name, n) in &measure {
        assert!(*n <= 8, "{name}: {n} requests");
    }
    instance.stop().await;
    kommo.stop();
}

on_both_stores!(
    requests_per_call,
    every_branch_lands_once_on_the_right_entity,
    late_data_patches_the_same_note_and_keeps_the_managers_words,
    batches_log_each_call,
    faults_end_with_one_note_per_call,
    dead_letters_wait_for_an_operator,
    a_worker_that_dies_mid_job_loses_nothing_and_duplicates_nothing,
    a_revoked_grant_parks_work_until_reinstalled,
    the_install_endpoint_refuses_clearly,
);
