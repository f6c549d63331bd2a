//! Benchmark 4, Kommo budget: a burst of 100 simultaneous calls from 20 numbers against
//! the sandbox (7 rps limit on), counting the integration requests the Kommo
//! side received (the demo's request log: bearer-token requests and
//! `/oauth2/`), the 429s among them, and the time until every call is logged
//! (the backend's `sync_state` is `synced` with a Kommo record or incoming
//! lead, after the call ended).

use crate::{Outcome, Params};
use anyhow::Result;
use callcard_backend::SyncState;
use callcard_bench::report::{Row, Verdict};
use callcard_bench::wire;
use callcard_demo::{Demo, DemoConfig, KommoRequest};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

const CALLS: u64 = 100;
const NUMBERS: u64 = 20;
const EXTENSIONS: [&str; 3] = ["101", "102", "103"];

async fn burst(demo: &Demo, prefix: &str, kind: serde_json::Value) -> Result<usize> {
    let url = format!("{}/pbx/{}/events", demo.backend_url, demo.sandbox.account_id());
    let client = reqwest::Client::builder().pool_max_idle_per_host(128).timeout(Duration::from_secs(15)).build()?;
    let mut tasks = Vec::new();
    for i in 0..CALLS {
        let body = wire::event_json(
            kind.clone(),
            &format!("{prefix}-{i}"),
            &wire::caller_number(900_000 + i % NUMBERS),
            EXTENSIONS[(i % 3) as usize],
        );
        let request = wire::signed_request(&client, &url, &demo.webhook_secret, &body);
        tasks.push(tokio::spawn(async move { request.send().await.is_ok_and(|r| r.status().is_success()) }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap_or(false));
    }
    Ok(ok)
}

/// How many of the burst's calls are logged in Kommo.
async fn logged(demo: &Demo, prefix: &str) -> usize {
    let account = demo.sandbox.account_id();
    let mut n = 0;
    for i in 0..CALLS {
        if let Ok(Some(c)) = demo.backend.call(account, &format!("{prefix}-{i}")).await {
            if c.sync_state == SyncState::Synced && (c.entity.is_some() || c.unsorted_uid.is_some()) {
                n += 1;
            }
        }
    }
    n
}

/// Waits until no new Kommo request arrived for `quiet`, at most `max`.
async fn settle(demo: &Demo, quiet: Duration, max: Duration) -> Vec<KommoRequest> {
    let started = Instant::now();
    let (mut last_len, mut last_change) = (demo.kommo_requests.snapshot().len(), Instant::now());
    while started.elapsed() < max {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let len = demo.kommo_requests.snapshot().len();
        if len != last_len {
            (last_len, last_change) = (len, Instant::now());
        } else if last_change.elapsed() >= quiet {
            break;
        }
    }
    let log = demo.kommo_requests.snapshot();
    demo.kommo_requests.clear();
    log
}

fn describe(log: &[KommoRequest]) -> String {
    let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in log {
        let path =
            r.path.split('/').map(|s| if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() { "{id}" } else { s });
        let e = by.entry(format!("{} {}", r.method, path.collect::<Vec<_>>().join("/"))).or_default();
        e.0 += 1;
        e.1 += usize::from(r.status == 429);
    }
    if by.is_empty() {
        return "none".into();
    }
    by.iter().map(|(k, (n, t))| format!("{k} ×{n} ({t} × 429)")).collect::<Vec<_>>().join(", ")
}

pub async fn run(root: &Path, widget_dir: &Path, _p: &Params) -> Result<Outcome> {
    let data = tempfile::tempdir()?;
    let demo = Demo::start(DemoConfig {
        addr: "127.0.0.1:0".parse()?,
        www_dir: root.join("www"),
        widget_dir: widget_dir.to_path_buf(),
        database_url: format!("sqlite://{}", data.path().join("budget.sqlite").display()),
    })
    .await?;
    demo.kommo_requests.clear();
    let mut notes = String::from(
        "100 calls ring at once, from 20 numbers (5 calls each) to extensions 101/102/103, against the sandbox with \
         its 7 requests/s limit. Counted: every request the Kommo side received with a bearer token or to \
         `/oauth2/` (the demo's request log).\n\n",
    );

    let t0 = Instant::now();
    let rung = burst(&demo, "budget-cold", serde_json::json!({"event": "ringing"})).await?;
    let cold = settle(&demo, Duration::from_secs(2), Duration::from_secs(20)).await;
    let _ = writeln!(notes, "- Ringing, cold cache: {rung} acknowledged; Kommo requests: {}", describe(&cold));

    let t_end = Instant::now();
    burst(&demo, "budget-cold", serde_json::json!({"event": "answered"})).await?;
    burst(&demo, "budget-cold", serde_json::json!({"event": "ended", "duration": 30, "outcome": "answered"})).await?;
    let mut logged_after = None;
    let mut logging = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last_activity = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let new = demo.kommo_requests.snapshot();
        if new.len() > logging.len() {
            last_activity = Instant::now();
        }
        logging = new;
        if logged(&demo, "budget-cold").await >= CALLS as usize {
            logged_after = Some(t_end.elapsed());
            break;
        }
        // Nothing at all is happening: no CRM sync to wait for.
        if logging.is_empty() && last_activity.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    demo.kommo_requests.clear();
    let logged = logged(&demo, "budget-cold").await;
    let _ = writeln!(
        notes,
        "- Answered + ended: {logged} of {CALLS} calls logged in Kommo{}; Kommo requests: {}",
        logged_after.map(|d| format!(" after {:.2} s", d.as_secs_f64())).unwrap_or_default(),
        describe(&logging)
    );

    burst(&demo, "budget-warm", serde_json::json!({"event": "ringing"})).await?;
    let warm = settle(&demo, Duration::from_secs(2), Duration::from_secs(20)).await;
    let _ =
        writeln!(notes, "- Ringing again from the same 20 numbers, warm cache: Kommo requests: {}", describe(&warm));
    let total_secs = t0.elapsed().as_secs_f64();
    demo.shutdown().await?;

    let all: Vec<&KommoRequest> = cold.iter().chain(&logging).chain(&warm).collect();
    let too_many = all.iter().filter(|r| r.status == 429).count();
    let rows = if all.is_empty() && logged == 0 {
        let why = "the backend makes no Kommo requests yet (CRM sync: caller ID and call logging not landed)";
        let _ = writeln!(
            notes,
            "\n**Not measurable yet:** {why}. The harness runs as soon as it lands (bench took {total_secs:.0} s)."
        );
        vec![
            Row::new("4", "Kommo: requests per ringing call (cold / warm cache)", "—", "—")
                .target("≤ 1 cold, 0 warm", Verdict::NotMeasured(why.into())),
            Row::new("4", "Kommo: 429 answers; time until all 100 calls logged", "—", "—")
                .target("0 × 429", Verdict::NotMeasured(why.into())),
        ]
    } else {
        let per_cold = cold.len() as f64 / CALLS as f64;
        let per_warm = warm.len() as f64 / CALLS as f64;
        let cold_v = Verdict::at_most(per_cold, 1.0, "req/call");
        let warm_v = Verdict::at_most(per_warm, 0.0, "req/call");
        let verdict = match (&cold_v, &warm_v) {
            (Verdict::Met, Verdict::Met) => Verdict::Met,
            (Verdict::Missed(a), Verdict::Met) => Verdict::Missed(format!("cold {a}")),
            (Verdict::Met, Verdict::Missed(_)) => Verdict::Missed(format!("warm {per_warm:.2} req/call over 0")),
            _ => Verdict::Missed(format!("cold {per_cold:.2}, warm {per_warm:.2} req/call")),
        };
        vec![
            Row::new(
                "4",
                "Kommo: requests per ringing call (cold / warm cache)",
                format!("{per_cold:.2} / {per_warm:.2}"),
                format!("logging: {:.2} req/call", logging.len() as f64 / CALLS as f64),
            )
            .target("≤ 1 cold, 0 warm (+ logging)", verdict),
            Row::new(
                "4",
                "Kommo: 429 answers; time until all 100 calls logged",
                format!(
                    "{too_many} × 429; {}",
                    logged_after
                        .map(|d| format!("{:.2} s", d.as_secs_f64()))
                        .unwrap_or_else(|| format!("only {logged}/100 logged in 90 s"))
                ),
                format!("{} requests in all", all.len()),
            )
            .target(
                "0 × 429",
                if too_many == 0 && logged_after.is_some() {
                    Verdict::Met
                } else if too_many > 0 {
                    Verdict::Missed(format!("{too_many} × 429"))
                } else {
                    Verdict::Missed(format!("{} calls never logged", CALLS as usize - logged))
                },
            ),
        ]
    };
    Ok(Outcome { rows, section: ("4. Kommo budget".into(), notes) })
}
