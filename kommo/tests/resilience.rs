//! The request pipeline against a small fault-injecting Kommo stand-in: each
//! test scripts the answers, and the server records what reached it and
//! when, so the assertions are about what Kommo would have seen.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use kommo_client::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ACCOUNT: u64 = 31_415_926;

/// What reached the fake server.
#[derive(Clone, Debug)]
struct Hit {
    at: Instant,
    method: Method,
    path: String,
    auth: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Recorder {
    hits: Mutex<Vec<Hit>>,
}

impl Recorder {
    fn api_hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().iter().filter(|h| h.path.starts_with("/api/")).cloned().collect()
    }
    fn oauth_hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().iter().filter(|h| h.path.starts_with("/oauth2/")).cloned().collect()
    }
}

type Handler = Arc<dyn Fn(&Hit, usize) -> Response + Send + Sync>;

/// Serves `handler` on 127.0.0.1:0; it gets each request and how many
/// requests to the same path came before it.
async fn fake_kommo(handler: impl Fn(&Hit, usize) -> Response + Send + Sync + 'static) -> (String, Arc<Recorder>) {
    fake_kommo_async(handler, |_| None).await
}

/// Like [`fake_kommo`], plus a delay per request (for timeouts and
/// overlapping refreshes).
async fn fake_kommo_async(
    handler: impl Fn(&Hit, usize) -> Response + Send + Sync + 'static,
    delay: impl Fn(&Hit) -> Option<Duration> + Send + Sync + 'static,
) -> (String, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let handler: Handler = Arc::new(handler);
    let delay = Arc::new(delay);
    let r = rec.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let (rec, handler, delay) = (r.clone(), handler.clone(), delay.clone());
        async move {
            let hit = Hit {
                at: Instant::now(),
                method,
                path: uri.path().to_string(),
                auth: headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string),
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            };
            let n = {
                let mut hits = rec.hits.lock().unwrap();
                let n = hits.iter().filter(|h| h.path == hit.path).count();
                hits.push(hit.clone());
                n
            };
            if let Some(d) = delay(&hit) {
                tokio::time::sleep(d).await;
            }
            handler(&hit, n)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), rec)
}

fn hal(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/hal+json")], body.to_string()).into_response()
}

fn problem(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), [("content-type", "application/problem+json")], body.to_string())
        .into_response()
}

fn account_json() -> Value {
    json!({"id": ACCOUNT, "name": "Acme", "subdomain": "acme", "current_user_id": 8320148, "customers_mode": "disabled"})
}

fn fast_config() -> ClientConfig {
    ClientConfig {
        max_retries: 3,
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(40),
        request_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

fn client(base: &str, config: ClientConfig) -> KommoClient {
    KommoClient::builder(base, ACCOUNT, Arc::new(StaticToken::new("tok")))
        .budget(Arc::new(Unlimited))
        .config(config)
        .build()
        .unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn a_call() -> NewCall {
    NewCall::new(Direction::Inbound, 30, "callcard", "+18305703077")
}

#[tokio::test]
async fn retries_5xx_then_succeeds() {
    let (base, rec) = fake_kommo(|_, n| {
        if n < 2 {
            problem(503, json!({"title": "Service Unavailable", "status": 503}))
        } else {
            hal(StatusCode::OK, account_json())
        }
    })
    .await;
    let account = client(&base, fast_config()).account().await.unwrap();
    assert_eq!(account.subdomain, "acme");
    assert_eq!(rec.api_hits().len(), 3);
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let (base, rec) = fake_kommo(|_, _| problem(502, json!({"title": "Bad Gateway"}))).await;
    let err = client(&base, fast_config()).account().await.unwrap_err();
    assert!(matches!(err, KommoError::Server { status: 502 }), "{err:?}");
    assert_eq!(rec.api_hits().len(), 4, "1 attempt + max_retries (3)");
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let (base, rec) = fake_kommo(|_, n| {
        if n == 0 {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response()
        } else {
            hal(StatusCode::OK, account_json())
        }
    })
    .await;
    client(&base, fast_config()).account().await.unwrap();
    let hits = rec.api_hits();
    assert_eq!(hits.len(), 2);
    let gap = hits[1].at - hits[0].at;
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}, Retry-After was 1 s");
    assert!(gap < Duration::from_secs(2), "waited {gap:?}");
}

#[tokio::test]
async fn a_retry_after_beyond_patience_goes_back_to_the_caller() {
    let (base, rec) =
        fake_kommo(|_, _| (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "120")], "").into_response()).await;
    let err = client(&base, fast_config()).account().await.unwrap_err();
    match err {
        KommoError::RateLimited { retry_after } => assert_eq!(retry_after, Some(Duration::from_secs(120))),
        other => panic!("{other:?}"),
    }
    assert_eq!(rec.api_hits().len(), 1);
}

#[tokio::test]
async fn creating_post_is_not_retried_after_a_5xx() {
    let (base, rec) = fake_kommo(|_, _| problem(500, json!({"title": "Internal Server Error"}))).await;
    let err = client(&base, fast_config()).add_calls(&[a_call()]).await.unwrap_err();
    assert!(err.may_have_been_applied());
    assert_eq!(rec.api_hits().len(), 1, "a 500 may have logged the call: no blind retry");
}

#[tokio::test]
async fn creating_post_is_retried_after_a_429() {
    let (base, rec) = fake_kommo(|_, n| {
        if n == 0 {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "").into_response()
        } else {
            hal(
                StatusCode::OK,
                json!({"_embedded": {"calls": [{"id": 9, "entity_id": 5, "entity_type": "contact", "request_id": "0"}],
                    "errors": []}}),
            )
        }
    })
    .await;
    let answer = client(&base, fast_config()).add_calls(&[a_call()]).await.unwrap();
    assert_eq!(rec.api_hits().len(), 2);
    let logged = answer.result_for("0").unwrap().unwrap();
    assert_eq!(logged.entity, EntityRef::new(EntityKind::Contact, 5));
    assert_eq!(rec.api_hits()[1].body[0]["request_id"], "0");
}

#[tokio::test]
async fn timeouts_fire_and_reads_are_retried() {
    let (base, rec) =
        fake_kommo_async(|_, _| hal(StatusCode::OK, account_json()), |_| Some(Duration::from_secs(3))).await;
    let config = ClientConfig { request_timeout: Duration::from_millis(200), max_retries: 1, ..fast_config() };
    let started = Instant::now();
    let err = client(&base, config).account().await.unwrap_err();
    assert!(matches!(err, KommoError::Timeout), "{err:?}");
    assert_eq!(rec.api_hits().len(), 2);
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn timed_out_create_is_not_retried() {
    let (base, rec) = fake_kommo_async(
        |_, _| hal(StatusCode::OK, json!({"_embedded": {"tasks": [{"id": 1}]}})),
        |_| Some(Duration::from_secs(3)),
    )
    .await;
    let config = ClientConfig { request_timeout: Duration::from_millis(200), ..fast_config() };
    let task = NewTask::follow_up(EntityRef::new(EntityKind::Lead, 1), "call back", 1_900_000_000);
    let err = client(&base, config).create_tasks(&[task]).await.unwrap_err();
    assert!(matches!(err, KommoError::Timeout) && err.may_have_been_applied());
    assert_eq!(rec.api_hits().len(), 1);
}

#[tokio::test]
async fn refused_connection_is_a_transport_error_that_never_reached_kommo() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = ClientConfig { max_retries: 1, ..fast_config() };
    let err = client(&format!("http://{addr}"), config).add_calls(&[a_call()]).await.unwrap_err();
    match err {
        KommoError::Transport { request_sent, .. } => assert!(!request_sent),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn validation_errors_are_typed() {
    let (base, rec) = fake_kommo(|_, _| {
        problem(
            400,
            json!({"validation-errors": [{"request_id": "0", "errors": [{"code": "NotSupportedChoice",
                "path": "complete_till", "detail": "This value should be greater than now."}]}],
                "title": "Bad Request", "type": "https://httpstatus.es/400", "status": 400,
                "detail": "Request validation failed"}),
        )
    })
    .await;
    let task = NewTask::follow_up(EntityRef::new(EntityKind::Lead, 1), "call back", 1);
    let err = client(&base, fast_config()).create_tasks(&[task]).await.unwrap_err();
    let KommoError::Validation(p) = err else { panic!("{err:?}") };
    assert_eq!(p.status, Some(400));
    assert_eq!(p.validation_errors[0].request_id.as_deref(), Some("0"));
    assert_eq!(p.validation_errors[0].errors[0].path.as_deref(), Some("complete_till"));
    assert_eq!(rec.api_hits().len(), 1, "a 400 is never retried");
}

#[tokio::test]
async fn no_content_lists_are_empty() {
    let (base, _) = fake_kommo(|_, _| StatusCode::NO_CONTENT.into_response()).await;
    let kommo = client(&base, fast_config());
    assert!(kommo.search::<Contact>("+15035550111", &[]).await.unwrap().is_empty());
    assert!(kommo.list_notes(EntityRef::new(EntityKind::Lead, 1), &[]).await.unwrap().is_empty());
    assert!(kommo.list_tasks(None, true).await.unwrap().is_empty());
    assert_eq!(kommo.identify_caller("+15035550111", &[1]).await.unwrap(), None);
}

#[tokio::test]
async fn not_found_is_typed() {
    let (base, _) = fake_kommo(|_, _| problem(404, json!({"title": "Not Found", "status": 404}))).await;
    let err = client(&base, fast_config()).get::<Lead>(5, &[]).await.unwrap_err();
    assert!(matches!(err, KommoError::NotFound), "{err:?}");
}

// ---- OAuth: one refresh on 401, single flight, revoked refresh ----

/// A fake Kommo that accepts only `Bearer new-*` tokens and whose token
/// endpoint hands out `new-N` pairs (after `refresh_delay`), or refuses.
async fn oauth_kommo(refresh_delay: Duration, refuse_refresh: bool) -> (String, Arc<Recorder>) {
    let refreshes = Arc::new(AtomicU32::new(0));
    fake_kommo_async(
        move |hit, _| {
            if hit.path == "/oauth2/access_token" {
                if refuse_refresh {
                    return problem(
                        400,
                        json!({"title": "Bad request", "status": 400, "detail": "invalid_grant", "hint": "Token has been revoked"}),
                    );
                }
                let n = refreshes.fetch_add(1, Ordering::SeqCst) + 1;
                return hal(
                    StatusCode::OK,
                    json!({"token_type": "Bearer", "expires_in": 86400, "access_token": format!("new-{n}"),
                        "refresh_token": format!("refresh-{n}")}),
                );
            }
            match hit.auth.as_deref() {
                Some(a) if a.starts_with("Bearer new-") => hal(StatusCode::OK, account_json()),
                _ => problem(401, json!({"title": "Unauthorized", "status": 401})),
            }
        },
        move |hit| (hit.path == "/oauth2/access_token").then_some(refresh_delay),
    )
    .await
}

fn tokens_for(base: &str, access: &str, expires_at: u64) -> Arc<InMemoryTokens> {
    let app = OAuthApp {
        client_id: "client".into(),
        client_secret: "secret".into(),
        redirect_uri: "https://callcard.example/oauth/callback".into(),
    };
    let tokens = Arc::new(InMemoryTokens::new(Duration::from_secs(300)));
    let oauth = OAuthClient::new(base, app, fast_config()).unwrap();
    tokens.insert(
        ACCOUNT,
        oauth,
        TokenSet { access_token: access.into(), refresh_token: "refresh-0".into(), expires_at },
    );
    tokens
}

fn oauth_client(base: &str, tokens: Arc<InMemoryTokens>) -> KommoClient {
    KommoClient::builder(base, ACCOUNT, tokens).budget(Arc::new(Unlimited)).config(fast_config()).build().unwrap()
}

#[tokio::test]
async fn a_401_refreshes_once_and_the_retry_succeeds() {
    let (base, rec) = oauth_kommo(Duration::ZERO, false).await;
    let tokens = tokens_for(&base, "old", unix_now() + 86_400);
    oauth_client(&base, tokens.clone()).account().await.unwrap();

    let api = rec.api_hits();
    assert_eq!(api.len(), 2);
    assert_eq!(api[0].auth.as_deref(), Some("Bearer old"));
    assert_eq!(api[1].auth.as_deref(), Some("Bearer new-1"));
    let oauth = rec.oauth_hits();
    assert_eq!(oauth.len(), 1);
    assert_eq!(oauth[0].body["grant_type"], "refresh_token");
    assert_eq!(oauth[0].body["refresh_token"], "refresh-0");
    assert_eq!(oauth[0].body["client_id"], "client");
    assert_eq!(oauth[0].body["redirect_uri"], "https://callcard.example/oauth/callback");
    // The rotated pair is kept.
    assert_eq!(tokens.tokens(ACCOUNT).unwrap().refresh_token, "refresh-1");
    assert_eq!(tokens.refresh_count(ACCOUNT), 1);
}

#[tokio::test]
async fn a_second_401_after_refreshing_is_unauthorized() {
    let (base, rec) = fake_kommo(|hit, _| {
        if hit.path == "/oauth2/access_token" {
            hal(StatusCode::OK, json!({"access_token": "also-bad", "refresh_token": "r", "expires_in": 86400}))
        } else {
            problem(401, json!({"title": "Unauthorized"}))
        }
    })
    .await;
    let err = oauth_client(&base, tokens_for(&base, "old", unix_now() + 86_400)).account().await.unwrap_err();
    assert!(matches!(err, KommoError::Unauthorized), "{err:?}");
    assert!(err.needs_reauthorization());
    assert_eq!(rec.api_hits().len(), 2);
    assert_eq!(rec.oauth_hits().len(), 1);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh_before_expiry() {
    let (base, rec) = oauth_kommo(Duration::from_millis(300), false).await;
    // Already expired: every caller wants a refresh.
    let tokens = tokens_for(&base, "old", unix_now() - 10);
    let kommo = oauth_client(&base, tokens.clone());
    let calls = (0..16).map(|_| {
        let k = kommo.clone();
        tokio::spawn(async move { k.account().await })
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
    assert_eq!(rec.oauth_hits().len(), 1, "one refresh for 16 callers");
    assert!(rec.api_hits().iter().all(|h| h.auth.as_deref() == Some("Bearer new-1")));
    assert_eq!(tokens.refresh_count(ACCOUNT), 1);
}

#[tokio::test]
async fn a_401_storm_causes_one_refresh() {
    let (base, rec) = oauth_kommo(Duration::from_millis(200), false).await;
    // Valid by its expiry, but Kommo refuses it (revoked early).
    let tokens = tokens_for(&base, "old", unix_now() + 86_400);
    let kommo = oauth_client(&base, tokens.clone());
    let calls = (0..12).map(|_| {
        let k = kommo.clone();
        tokio::spawn(async move { k.account().await })
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
    assert_eq!(rec.oauth_hits().len(), 1);
    assert_eq!(tokens.refresh_count(ACCOUNT), 1);
}

#[tokio::test]
async fn a_refused_refresh_needs_reauthorization_and_fails_fast_afterwards() {
    let (base, rec) = oauth_kommo(Duration::ZERO, true).await;
    let kommo = oauth_client(&base, tokens_for(&base, "old", unix_now() + 86_400));
    let err = kommo.account().await.unwrap_err();
    assert!(matches!(err, KommoError::ReauthorizationNeeded { .. }), "{err:?}");
    assert!(err.needs_reauthorization());
    assert_eq!(rec.oauth_hits().len(), 1, "a refused grant is not retried");
    let again = kommo.account().await.unwrap_err();
    assert!(again.needs_reauthorization());
    assert_eq!(rec.oauth_hits().len(), 1, "no more refresh attempts once revoked");
    assert_eq!(rec.api_hits().len(), 1, "no more API calls once revoked");
}

// ---- the request budget ----

/// The most arrivals within any half-open window `[t, t + w)`.
fn max_in_window(times: &[Instant], w: Duration) -> usize {
    let mut t = times.to_vec();
    t.sort();
    (0..t.len()).map(|i| t[i..].iter().take_while(|x| **x < t[i] + w).count()).max().unwrap_or(0)
}

#[tokio::test]
async fn the_budget_never_lets_more_than_7_requests_start_in_a_second() {
    let (base, rec) = fake_kommo(|_, _| hal(StatusCode::OK, account_json())).await;
    let budget: Arc<dyn RequestBudget> = Arc::new(LocalBudget::kommo());
    // Two clients of the same account share the budget, as workers do.
    let a = KommoClient::builder(&base, ACCOUNT, Arc::new(StaticToken::new("t")))
        .budget(budget.clone())
        .config(fast_config())
        .build()
        .unwrap();
    let b = KommoClient::builder(&base, ACCOUNT, Arc::new(StaticToken::new("t")))
        .budget(budget.clone())
        .config(fast_config())
        .build()
        .unwrap();
    let started = Instant::now();
    let calls = (0..22).map(|i| {
        let k = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move { k.account().await })
    });
    for r in futures::future::join_all(calls).await {
        r.unwrap().unwrap();
    }
    let times: Vec<Instant> = rec.api_hits().iter().map(|h| h.at).collect();
    assert_eq!(times.len(), 22);
    let worst = max_in_window(&times, Duration::from_secs(1));
    assert!(worst <= 7, "{worst} requests started within one second");
    // And it is not just slow: 22 requests at ~6.4/s take about 3.3 s.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(6), "{elapsed:?}");
}

#[tokio::test]
async fn retries_spend_the_budget_too() {
    let (base, rec) = fake_kommo(|_, _| problem(503, json!({"title": "Service Unavailable"}))).await;
    let budget: Arc<dyn RequestBudget> = Arc::new(LocalBudget::kommo());
    let config = ClientConfig { max_retries: 9, backoff_base: Duration::ZERO, ..fast_config() };
    let kommo = KommoClient::builder(&base, ACCOUNT, Arc::new(StaticToken::new("t")))
        .budget(budget)
        .config(config)
        .build()
        .unwrap();
    kommo.account().await.unwrap_err();
    let times: Vec<Instant> = rec.api_hits().iter().map(|h| h.at).collect();
    assert_eq!(times.len(), 10);
    assert!(max_in_window(&times, Duration::from_secs(1)) <= 7);
}

// ---- idempotent call notes ----

#[tokio::test]
async fn add_call_note_once_does_not_duplicate_after_a_lost_answer() {
    let notes = Arc::new(Mutex::new(Vec::<Value>::new()));
    let n2 = notes.clone();
    let (base, rec) = fake_kommo(move |hit, _| {
        let mut notes = n2.lock().unwrap();
        if hit.method == Method::POST {
            // Kommo stores the note, then the answer is lost (a 502 from a proxy).
            let mut note = hit.body[0].clone();
            note["id"] = json!(100 + notes.len());
            note["entity_id"] = json!(7);
            notes.push(note);
            return problem(502, json!({"title": "Bad Gateway"}));
        }
        if notes.is_empty() {
            StatusCode::NO_CONTENT.into_response()
        } else {
            hal(StatusCode::OK, json!({"_embedded": {"notes": *notes}}))
        }
    })
    .await;
    let note = NewNote::from(NoteBody::CallIn(CallNoteParams {
        uniq: "pbx-call-1".into(),
        duration: 42,
        source: "callcard".into(),
        link: None,
        phone: "+18305703077".into(),
        ..CallNoteParams::default()
    }));
    let lead = EntityRef::new(EntityKind::Lead, 7);
    let (r, created) = client(&base, fast_config()).add_call_note_once(lead, &note).await.unwrap();
    assert_eq!(r.id, 100);
    assert!(!created, "the note was found on the second look, not created twice");
    assert_eq!(notes.lock().unwrap().len(), 1);
    let posts = rec.api_hits().iter().filter(|h| h.method == Method::POST).count();
    assert_eq!(posts, 1);
}
