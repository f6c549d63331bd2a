//! Benchmark 6, the caller index (issue 13): an account of 100,000
//! contacts (with companies, leads and customers, `kommo_sandbox::seed::
//! synthetic`) in the sandbox with its 7 requests/s limit; a backend with
//! the index on (SQLite) installs it and builds the index. Reported:
//!
//! - the initial sync's time and Kommo requests, beside the least a sync at
//!   7 requests/s can take for the same pages;
//! - what the index adds to the database (and this process's RSS growth,
//!   the sandbox's included);
//! - caller-ID latency from the index (the lookup every ring makes), beside
//!   Kommo's own caller-ID call (`POST /api/v2/events`) against the sandbox on
//!   loopback, a floor for the real one over the internet;
//! - the PBX's routing question (`GET /pbx/{account}/route`, issue 14) over
//!   HTTP, which answers from the same index;
//! - Kommo requests made while numbers ring, the first time (cold) and again
//!   (warm).

use crate::{Outcome, Params};
use anyhow::{Context, Result};
use callcard_backend::{AccountSetup, Backend, Config};
use callcard_bench::machine::rss_kib;
use callcard_bench::report::{Row, Verdict};
use callcard_bench::stats::{ms, Summary};
use callcard_bench::wire;
use callcard_calls::extensions::ExtensionMap;
use kommo_sandbox::seed::{synthetic, synthetic_number, synthetic_unknown_number};
use kommo_sandbox::{Sandbox, SandboxConfig};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kommo's largest page.
const PAGE: usize = 250;
const WEBHOOK_SECRET: &str = "bench-index-webhook-secret";

/// Bytes of the SQLite database and its write-ahead log.
fn database_bytes(file: &Path) -> u64 {
    let wal = file.with_extension("sqlite-wal");
    [file, wal.as_path()].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

async fn serve(listener: tokio::net::TcpListener, router: axum::Router) {
    if let Err(e) = axum::serve(listener, router).await {
        eprintln!("index bench server stopped: {e}");
    }
}

pub async fn run(p: &Params) -> Result<Outcome> {
    let contacts = p.index_contacts;
    let data = tempfile::tempdir()?;
    let db_file = data.path().join("index.sqlite");

    // The sandbox, with the requests the integration sends counted.
    let kommo_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let kommo_url = format!("http://{}", kommo_listener.local_addr()?);
    let backend_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let backend_url = format!("http://{}", backend_listener.local_addr()?);
    let integration_secret = "bench-index-integration-secret";
    let sandbox = Sandbox::new(
        SandboxConfig::for_tests(&kommo_url)
            .with_secret(integration_secret)
            .with_backend_base_url(&backend_url)
            .with_redirect_uri(format!("{backend_url}/kommo/install"))
            .with_seed(true),
    );
    let seeded = Instant::now();
    synthetic(&mut sandbox.store(), contacts);
    let seed_secs = seeded.elapsed().as_secs_f64();
    let counts = {
        let st = sandbox.store();
        [st.contacts.len(), st.companies.len(), st.leads.len(), st.customers.len()]
    };
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let router = sandbox.router().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let counted = counted.clone();
            async move {
                if request.headers().contains_key(axum::http::header::AUTHORIZATION)
                    && request.uri().path().starts_with("/api/")
                {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                next.run(request).await
            }
        },
    ));
    let kommo_server = tokio::spawn(serve(kommo_listener, router));

    let backend = Backend::start(Config {
        database_url: format!("sqlite://{}", db_file.display()),
        integration_secret: integration_secret.into(),
        public_base_url: backend_url.clone(),
        webhook_base_url: Some(backend_url.clone()),
        secret_key: Some("17".repeat(32)),
        kommo_base_url: Some(kommo_url.clone()),
        client_id: sandbox.config().client_id.clone(),
        redirect_uri: sandbox.config().redirect_uri.clone(),
        caller_index: true,
        ..Config::default()
    })
    .await?;
    let backend_server = tokio::spawn(serve(backend_listener, backend.router()));
    let account_id = sandbox.account_id();
    let admin = sandbox.store().users.iter().find(|u| u.is_admin).map_or(0, |u| u.id);
    backend
        .provision_account(AccountSetup {
            account_id,
            origin: kommo_url.clone(),
            webhook_secret: WEBHOOK_SECRET.into(),
            extensions: Some(ExtensionMap::from_entries([(admin.to_string().as_str(), "101".to_string())])?),
            pbx_originate_url: None,
        })
        .await?;
    let db_before = database_bytes(&db_file);
    let rss_before = rss_kib(std::process::id()).unwrap_or(0);

    // The initial sync: from the installation until the index is ready.
    requests.store(0, Ordering::Relaxed);
    let started = Instant::now();
    backend
        .install_account(account_id, &sandbox.authorization_code(admin), &kommo_url)
        .await
        .map_err(|e| anyhow::anyhow!("installing: {e:?}"))?;
    let deadline = started + Duration::from_secs(60 + contacts as u64 / 200);
    loop {
        let state = backend.store().phonebook_sync(account_id).await?;
        if state.as_ref().is_some_and(|s| s.ready) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the index was not ready in time: {state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sync_secs = started.elapsed().as_secs_f64();
    let sync_requests = requests.load(Ordering::Relaxed);
    let db_after = database_bytes(&db_file);
    let rss_after = rss_kib(std::process::id()).unwrap_or(0);
    let pages: usize = counts.iter().map(|n| n.div_ceil(PAGE).max(1)).sum();
    let floor_secs = pages as f64 / 7.0;

    // Caller ID from the index: known numbers (spread over the account)
    // and unknown ones, one after another.
    let lookups = p.index_lookups;
    let mut from_index = Vec::with_capacity(lookups);
    let mut named = 0;
    for i in 0..lookups {
        let number = if i % 2 == 0 { synthetic_number((i * 7919) % contacts) } else { synthetic_unknown_number(i) };
        let t = Instant::now();
        let caller = callcard_backend::caller_id_from_index(backend.store(), account_id, &number).await?;
        from_index.push(t.elapsed().as_secs_f64() * 1000.0);
        named += usize::from(matches!(caller, callcard_calls::feed::CallerId::Known { .. }));
    }
    let index_latency = Summary::of(&from_index).context("no lookups")?;

    // The PBX's routing question over HTTP (issue 14): the same rule, the
    // responsible user's extension; signed over its query string.
    let client = reqwest::Client::new();
    let mut routes = Vec::with_capacity(p.index_routes);
    let mut routed = 0;
    for i in 0..p.index_routes {
        let number = if i % 2 == 0 { synthetic_number((i * 6151) % contacts) } else { synthetic_unknown_number(i) };
        let query = serde_urlencoded::to_string([("number", number.as_str())])?;
        let ts = wire::now_us() / 1_000_000;
        let sig = callcard_calls::signature::sign(WEBHOOK_SECRET.as_bytes(), ts, query.as_bytes());
        let t = Instant::now();
        let r = client
            .get(format!("{backend_url}/pbx/{account_id}/route?{query}"))
            .header("x-callcard-timestamp", ts.to_string())
            .header("x-callcard-signature", sig)
            .send()
            .await?;
        let status = r.status();
        let answer: serde_json::Value = r.json().await?;
        routes.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(status.is_success(), "route refused: {status} {answer}");
        routed += usize::from(!answer["user_id"].is_null());
    }
    let route_latency = Summary::of(&routes).context("no routes")?;

    // Kommo's own caller-ID call against the same account (the baseline),
    // spaced to stay inside the 7 requests/s limit.
    let token = backend.kommo().tokens().access_token(account_id).await?;
    let mut from_kommo = Vec::new();
    for i in 0..p.index_kommo_lookups {
        let number = synthetic_number((i * 7919) % contacts);
        let body = serde_json::json!({"add": [{"type": "phone_call", "phone_number": number, "users": [admin]}]});
        let t = Instant::now();
        let r = client.post(format!("{kommo_url}/api/v2/events")).bearer_auth(&token).json(&body).send().await?;
        let status = r.status();
        let _ = r.bytes().await?;
        if status.is_success() {
            from_kommo.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(160)).await;
    }
    let kommo_latency = Summary::of(&from_kommo);

    // Ringing: 200 calls from 100 known numbers, then the same numbers
    // again; the Kommo requests made meanwhile (the index answers).
    let pbx = format!("{backend_url}/pbx/{account_id}/events");
    let mut per_ring = Vec::new();
    for round in ["cold", "warm"] {
        requests.store(0, Ordering::Relaxed);
        for i in 0..p.index_rings {
            let number = synthetic_number((i * 104_729) % contacts);
            let body = wire::event_json(
                serde_json::json!({"event": "ringing"}),
                &format!("index-{round}-{i}"),
                &number,
                "101",
            );
            let r = wire::signed_request(&client, &pbx, WEBHOOK_SECRET, &body).send().await?;
            anyhow::ensure!(r.status().is_success(), "ringing webhook refused: {}", r.status());
        }
        // Caller ID answers before the first push: by now every ring's is done.
        per_ring.push(requests.load(Ordering::Relaxed) as f64 / p.index_rings as f64);
    }

    backend.shutdown().await;
    backend_server.abort();
    kommo_server.abort();

    let mb = |b: u64| b as f64 / 1_048_576.0;
    let per_100k = |v: f64| v * 100_000.0 / contacts as f64;
    let index_mb = mb(db_after.saturating_sub(db_before));
    let rss_mb = (rss_after.saturating_sub(rss_before)) as f64 / 1024.0;
    let mut notes = String::new();
    let _ = writeln!(
        notes,
        "The sandbox account: {} contacts, {} companies, {} leads (every status), {} customers, plus the demo's \
         records (`kommo_sandbox::seed::synthetic`, built in {seed_secs:.1} s); two in ten contacts have a second \
         number. The backend (in this process, SQLite, the index on) installs it and builds the index through the \
         shared 7 requests/s budget.\n",
        counts[0], counts[1], counts[2], counts[3]
    );
    let _ = writeln!(
        notes,
        "- Initial sync: {sync_secs:.1} s and {sync_requests} Kommo requests (the webhook subscription and {pages} \
         pages of {PAGE}); at 7 requests/s those pages take at least {floor_secs:.1} s."
    );
    let _ = writeln!(
        notes,
        "- Size: the database grew by {index_mb:.1} MB ({:.1} MB per 100,000 contacts; before the sync {:.2} MB); the \
         process's RSS (it also holds the sandbox serving the pages) grew by {rss_mb:.1} MB during the sync.",
        per_100k(index_mb),
        mb(db_before),
    );
    let _ = writeln!(
        notes,
        "- Caller ID from the index, {lookups} lookups (half known numbers spread over the account, half unknown; \
         {named} named): {}. Kommo's `POST /api/v2/events` on the same account in the sandbox on loopback, {} \
         lookups: {}.",
        index_latency.short(),
        from_kommo.len(),
        kommo_latency.map_or_else(|| "no answer".into(), |s| s.short())
    );
    let _ = writeln!(
        notes,
        "- The PBX's `GET /pbx/{{account}}/route?number=` over HTTP on loopback (signed, one request after another), \
         {} requests (half known numbers, half unknown; {routed} answered a responsible user): {}.",
        routes.len(),
        route_latency.short()
    );
    let _ = writeln!(
        notes,
        "- Ringing {} calls from known numbers, then the same numbers again: {:.2} and {:.2} Kommo requests per call.",
        p.index_rings, per_ring[0], per_ring[1]
    );
    let rows = vec![
        Row::new(
            "6",
            &format!("caller index: initial sync of {} contacts", counts[0]),
            format!("{sync_secs:.1} s, {sync_requests} requests"),
            format!("{pages} pages at 7 rps: ≥ {floor_secs:.1} s"),
        ),
        Row::new(
            "6",
            "caller index: database size per 100,000 contacts",
            format!("{:.1} MB", per_100k(index_mb)),
            format!("before the sync: {:.2} MB", mb(db_before)),
        ),
        Row::new(
            "6",
            "caller index: caller-ID lookup p50 / p95 / p99",
            index_latency.short(),
            kommo_latency.map_or_else(|| "—".into(), |s| format!("Kommo's caller ID: {}", s.short())),
        )
        .target("p99 ≤ 5 ms", Verdict::at_most(index_latency.p99, 5.0, "ms")),
        Row::new(
            "6",
            "routing: GET /pbx/{account}/route p50 / p95 / p99 (HTTP)",
            route_latency.short(),
            format!("the index lookup alone: {}", index_latency.short()),
        )
        .target("p99 ≤ 5 ms", Verdict::at_most(route_latency.p99, 5.0, "ms")),
        Row::new(
            "6",
            "caller index: Kommo requests per ringing call (cold / warm)",
            format!("{:.2} / {:.2}", per_ring[0], per_ring[1]),
            format!("p99 lookup {} ms", ms(index_latency.p99)),
        )
        .target(
            "0 / 0",
            if per_ring.iter().all(|r| *r == 0.0) {
                Verdict::Met
            } else {
                Verdict::Missed(format!("{:.2} / {:.2} req/call", per_ring[0], per_ring[1]))
            },
        ),
    ];
    Ok(Outcome { rows, section: ("6. Caller index".into(), notes) })
}
