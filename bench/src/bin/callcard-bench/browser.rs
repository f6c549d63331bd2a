//! Benchmarks 1 (call-pop latency), 1b (named first pop-ups) and 5b (widget
//! startup), in headless Chromium against the whole product in-process (as
//! the end-to-end tests run it).
//!
//! The host page is served from a copy of `www/` whose `index.html` first
//! loads `bench-probe.js`: a MutationObserver that stamps every
//! `.notification-popup[data-type=call]` with `performance.timeOrigin +
//! performance.now()` (wall-clock ms, the same clock the driver stamps the
//! webhook with), and a wrapper around `WebSocket` that records when the
//! feed socket opens (for startup). The widget itself is untouched.

use crate::{Outcome, Params};
use anyhow::{bail, Context, Result};
use callcard_bench::report::{Row, Verdict};
use callcard_bench::stats::{ms, Summary};
use callcard_bench::wire;
use callcard_demo::{Demo, DemoConfig};
use callcard_e2e::{Browser, Chromedriver};
use futures::StreamExt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const PROBE: &str = r#"(function () {
  var B = (window.__bench = { pops: [], sockets: [], frames: [] });
  function now() { return performance.timeOrigin + performance.now(); }
  var SEL = '.notification-popup[data-type="call"]';
  new MutationObserver(function (muts) {
    var t = now();
    for (var i = 0; i < muts.length; i++) {
      var added = muts[i].addedNodes;
      for (var j = 0; j < added.length; j++) {
        var n = added[j];
        if (n.nodeType !== 1) continue;
        var hits = n.matches(SEL) ? [n] : Array.prototype.slice.call(n.querySelectorAll(SEL));
        for (var k = 0; k < hits.length; k++) {
          var mark = hits[k].querySelector('[data-callcard-call]');
          B.pops.push({ t: t, text: hits[k].textContent, call: mark && mark.getAttribute('data-callcard-call') });
        }
      }
    }
  }).observe(document.documentElement, { childList: true, subtree: true });
  // Where the page's main thread goes: localStorage writes (the widget's
  // notification ledger is saved before every pop-up) and long tasks.
  B.storage = { calls: 0, ms: 0, maxMs: 0, maxLen: 0 };
  var setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (k, v) {
    var t0 = performance.now();
    try { return setItem.call(this, k, v); } finally {
      var d = performance.now() - t0;
      B.storage.calls++; B.storage.ms += d; B.storage.maxMs = Math.max(B.storage.maxMs, d);
      B.storage.maxLen = Math.max(B.storage.maxLen, String(v).length);
    }
  };
  B.longTasks = [];
  try {
    new PerformanceObserver(function (l) {
      l.getEntries().forEach(function (e) { B.longTasks.push({ start: e.startTime, ms: e.duration }); });
    }).observe({ entryTypes: ['longtask'] });
  } catch (e) {}
  var WS = window.WebSocket;
  var Wrapped = function (url, protocols) {
    var ws = protocols === undefined ? new WS(url) : new WS(url, protocols);
    var rec = { url: String(url), created: performance.now(), open: null };
    B.sockets.push(rec);
    ws.addEventListener('open', function () { rec.open = performance.now(); });
    // Registered before the widget's own handler: stamps the frame's arrival.
    ws.addEventListener('message', function (e) {
      var m = typeof e.data === 'string' && /"call_id":"(pop-[^"]+)"/.exec(e.data);
      if (m) B.frames.push({ t: now(), id: m[1] });
    });
    return ws;
  };
  Wrapped.prototype = WS.prototype;
  ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'].forEach(function (k) { Wrapped[k] = WS[k]; });
  window.WebSocket = Wrapped;
})();
"#;

/// Anna (ext 101): the WebSocket run; Bruno (ext 102): polling; Chen (ext
/// 103): the native baseline client and the startup loads.
const ANNA: u64 = 8_320_148;
const BRUNO: u64 = 8_375_357;
const CHEN: u64 = 8_390_001;

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_name() == "node_modules" {
            std::os::unix::fs::symlink(&src, &dst)?;
        } else if entry.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// The product with the probed host page, and a browser driver.
pub struct Stand {
    pub demo: Demo,
    driver: Chromedriver,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Stand {
    pub async fn start(root: &Path, widget_dir: &Path) -> Result<Stand> {
        let www = tempfile::tempdir()?;
        copy_dir(&root.join("www"), www.path())?;
        let index = std::fs::read_to_string(www.path().join("index.html"))?;
        let Some(at) = index.find("<head>") else { bail!("www/index.html has no <head>") };
        let probed = format!("{}<head>\n  <script src=\"bench-probe.js\"></script>{}", &index[..at], &index[at + 6..]);
        std::fs::write(www.path().join("index.html"), probed)?;
        std::fs::write(www.path().join("bench-probe.js"), PROBE)?;
        let data = tempfile::tempdir()?;
        let demo = Demo::start(DemoConfig {
            addr: "127.0.0.1:0".parse()?,
            www_dir: www.path().to_path_buf(),
            widget_dir: widget_dir.to_path_buf(),
            database_url: format!("sqlite://{}", data.path().join("callcard.sqlite").display()),
        })
        .await?;
        let driver = Chromedriver::start().await?;
        Ok(Stand { demo, driver, _dirs: (www, data) })
    }

    pub async fn shutdown(self) -> Result<()> {
        drop(self.driver);
        self.demo.shutdown().await
    }

    fn page(&self, user: u64) -> String {
        format!("{}/?user={user}", self.demo.base_url)
    }
}

/// `(t, text)` of every call pop-up the probe saw.
async fn pops(browser: &Browser) -> Result<Vec<(f64, String)>> {
    let v = browser.client.execute("return (window.__bench && window.__bench.pops) || [];", vec![]).await?;
    let items = v.as_array().cloned().unwrap_or_default();
    Ok(items.iter().filter_map(|p| Some((p.get("t")?.as_f64()?, p.get("text")?.as_str()?.to_string()))).collect())
}

async fn pop_count(browser: &Browser) -> Result<usize> {
    let v = browser.client.execute("return (window.__bench && window.__bench.pops.length) || 0;", vec![]).await?;
    Ok(v.as_u64().unwrap_or(0) as usize)
}

/// The page clock minus the driver's, with the WebDriver round trip as its uncertainty.
async fn clock_offset(browser: &Browser) -> Result<(f64, f64)> {
    let mut best = (0.0, f64::MAX);
    for _ in 0..5 {
        let before = wire::now_us() as f64 / 1000.0;
        let page = browser.client.execute("return performance.timeOrigin + performance.now();", vec![]).await?;
        let after = wire::now_us() as f64 / 1000.0;
        let rtt = after - before;
        if rtt < best.1 {
            best = (page.as_f64().unwrap_or(0.0) - (before + after) / 2.0, rtt);
        }
    }
    Ok(best)
}

/// The digits that identify call `seq`'s caller in a pop-up's text.
fn needle(seq: u64) -> String {
    wire::caller_number(seq).trim_start_matches("+1").to_string()
}

/// Sends `count` ringing calls at `rate`/s to `extension`, numbers from
/// `first`; returns each call's send time (wall ms) in order.
async fn ring_calls(demo: &Demo, first: u64, count: usize, rate: u32, extension: &str) -> Result<Vec<f64>> {
    let url = format!("{}/pbx/{}/events", demo.backend_url, demo.sandbox.account_id());
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).timeout(Duration::from_secs(15)).build()?;
    let secret = demo.webhook_secret.clone();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count as u64 {
        tick.tick().await;
        let seq = first + i;
        let body = wire::event_json(
            serde_json::json!({"event": "ringing"}),
            &format!("pop-{seq}-{}", wire::now_us()),
            &wire::caller_number(seq),
            extension,
        );
        let request = wire::signed_request(&client, &url, &secret, &body);
        let sent = wire::now_us() as f64 / 1000.0;
        tasks.push(tokio::spawn(async move {
            let r = request.send().await;
            (sent, r.map(|r| r.status().is_success()).unwrap_or(false))
        }));
    }
    let mut sent = Vec::new();
    for t in tasks {
        let (at, ok) = t.await?;
        sent.push(if ok { at } else { f64::NAN });
    }
    Ok(sent)
}

/// Latencies (ms) of the calls the page popped, matched by caller number.
fn match_pops(first: u64, sent: &[f64], pops: &[(f64, String)]) -> (Vec<f64>, Vec<u64>) {
    let mut by_digits = std::collections::HashMap::new();
    for (t, text) in pops {
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        by_digits.entry(digits).or_insert(*t);
    }
    let mut lat = Vec::new();
    let mut missing = Vec::new();
    for (i, at) in sent.iter().enumerate() {
        let n = needle(first + i as u64);
        match by_digits.iter().find(|(d, _)| d.contains(&n)) {
            Some((_, t)) if !at.is_nan() => lat.push(t - at),
            _ => missing.push(i as u64),
        }
    }
    (lat, missing)
}

/// Splits the WebSocket call-pop latency at the frame's arrival in the page:
/// webhook sent → frame event (backend, network, the page's event loop) and
/// frame event → pop-up in the DOM (the widget: parse, ledger, notification).
async fn ws_stages(browser: &Browser, first: u64, sent: &[f64], pops: &[(f64, String)]) -> Result<String> {
    let v = browser.client.execute("return window.__bench.frames;", vec![]).await?;
    let mut frame_at = std::collections::HashMap::new();
    for f in v.as_array().cloned().unwrap_or_default() {
        let (Some(t), Some(id)) = (f["t"].as_f64(), f["id"].as_str()) else { continue };
        if let Some(seq) = id.split('-').nth(1).and_then(|s| s.parse::<u64>().ok()) {
            frame_at.entry(seq).or_insert(t);
        }
    }
    let mut by_digits = std::collections::HashMap::new();
    for (t, text) in pops {
        by_digits.entry(text.chars().filter(char::is_ascii_digit).collect::<String>()).or_insert(*t);
    }
    let (mut to_frame, mut to_pop) = (Vec::new(), Vec::new());
    for (i, at) in sent.iter().enumerate() {
        let seq = first + i as u64;
        let Some(frame) = frame_at.get(&seq) else { continue };
        to_frame.push(frame - at);
        let n = needle(seq);
        if let Some((_, pop)) = by_digits.iter().find(|(d, _)| d.contains(&n)) {
            to_pop.push(pop - frame);
        }
    }
    let show = |v: &[f64]| Summary::of(v).map(|s| format!("{} (max {})", s.short(), ms(s.max))).unwrap_or("—".into());
    let main_thread = browser
        .client
        .execute(
            "var s = window.__bench.storage, l = window.__bench.longTasks; \
             return [s.calls, s.ms, s.maxMs, s.maxLen, l.length, l.reduce(function (a, e) { return a + e.ms; }, 0), \
             l.reduce(function (a, e) { return Math.max(a, e.ms); }, 0)];",
            vec![],
        )
        .await?;
    let n = |i: usize| main_thread[i].as_f64().unwrap_or(f64::NAN);
    Ok(format!(
        "\n  - by stage (p50 / p95 / p99): webhook sent → frame event in the page {}; frame event → pop-up in the DOM \
         (widget) {}.\n  - page main thread since load: {} `localStorage.setItem` calls took {} ms in all (longest {} \
         ms, largest value {} chars); {} long tasks (> 50 ms) took {} ms in all (longest {} ms).",
        show(&to_frame),
        show(&to_pop),
        n(0),
        ms(n(1)),
        ms(n(2)),
        n(3),
        n(4),
        ms(n(5)),
        ms(n(6))
    ))
}

async fn wait_pops(browser: &Browser, want: usize, within: Duration) -> Result<()> {
    let until = Instant::now() + within;
    while Instant::now() < until && pop_count(browser).await? < want {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// A native WebSocket client of Chen's feed (the backend's own delivery).
async fn native_baseline(stand: &Stand, p: &Params) -> Result<Vec<f64>> {
    let demo = &stand.demo;
    let client = reqwest::Client::new();
    let token: serde_json::Value = client
        .post(format!("{}/sandbox/one-time-token", demo.base_url))
        .json(&serde_json::json!({"user_id": CHEN}))
        .send()
        .await?
        .json()
        .await?;
    let token = token["token"].as_str().context("no token")?.to_string();
    let ticket: callcard_calls::feed::Ticket = client
        .post(format!("{}/widget/ticket", demo.backend_url))
        .header("x-auth-token", token)
        .send()
        .await?
        .json()
        .await?;
    let ws_url = format!("{}/widget/feed?ticket={}", demo.backend_url.replace("http://", "ws://"), ticket.ticket);
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await?;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = seen.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = ws.next().await {
            if let Message::Text(t) = frame {
                let now = wire::now_us() as f64 / 1000.0;
                if let Some(id) = wire::frame_call_id(&t).filter(|id| id.starts_with("pop-")) {
                    into.lock().unwrap_or_else(|e| e.into_inner()).push((id.to_string(), now));
                }
            }
        }
    });
    let sent = ring_calls(demo, 200_000, p.pop_calls, p.pop_rate, "103").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    reader.abort();
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    // Match by the sequence number in the call id; a call's later frames
    // (caller ID found, …) are not its pop.
    let mut first_frame = std::collections::BTreeMap::new();
    for (id, at) in seen {
        if let Some(seq) = id.split('-').nth(1).and_then(|s| s.parse::<u64>().ok()).filter(|s| *s >= 200_000) {
            first_frame.entry(seq).or_insert(at);
        }
    }
    let mut lat = Vec::new();
    for (seq, at) in first_frame {
        if let Some(sent) = sent.get((seq - 200_000) as usize).filter(|s| !s.is_nan()) {
            lat.push(at - sent);
        }
    }
    Ok(lat)
}

pub async fn call_pop(stand: &Stand, p: &Params) -> Result<Outcome> {
    let mut notes = String::new();
    let demo = &stand.demo;
    // The backend's own delivery first, with no browser running.
    let (base_lat, base_error) = match native_baseline(stand, p).await {
        Ok(l) => (l, String::new()),
        Err(e) => (Vec::new(), format!(" (failed: {e:#})")),
    };
    let base = Summary::of(&base_lat);
    let _ = writeln!(
        notes,
        "- Baseline (same product, same run, no browser): webhook sent → frame read by a native WebSocket client of \
         Chen's feed: {} ({} of {} calls){base_error}.",
        base.map(|s| s.short()).unwrap_or_else(|| "failed".into()),
        base_lat.len(),
        p.pop_calls
    );

    let mut rows = Vec::new();
    for (mode, user, ext, first, poll) in
        [("WebSocket", ANNA, "101", 0u64, false), ("polling", BRUNO, "102", 100_000, true)]
    {
        demo.refuse_feed_socket(poll);
        let browser = Browser::open(&stand.driver).await?;
        browser.client.goto(&stand.page(user)).await?;
        let state = if poll { "polling" } else { "live" };
        let ready = Instant::now();
        browser.wait_for(&format!("[data-feed=\"{state}\"]"), 30).await?;
        let ready_secs = ready.elapsed().as_secs_f64();
        let (offset, rtt) = clock_offset(&browser).await?;
        let sent = ring_calls(demo, first, p.pop_calls, p.pop_rate, ext).await?;
        let wait = if poll { Duration::from_secs(8) } else { Duration::from_secs(5) };
        wait_pops(&browser, sent.len(), wait).await?;
        let seen = pops(&browser).await?;
        let (lat, missing_calls) = match_pops(first, &sent, &seen);
        let missing = missing_calls.len();
        let missing_list = if missing_calls.is_empty() {
            String::new()
        } else {
            let shown: Vec<String> = missing_calls.iter().take(25).map(u64::to_string).collect();
            format!(" (call numbers in send order, from 0: {})", shown.join(", "))
        };
        let stages =
            if poll { String::new() } else { ws_stages(&browser, first, &sent, &seen).await.unwrap_or_default() };
        let feed_state: serde_json::Value = browser
            .client
            .execute("var e = document.querySelector('[data-feed]'); return e && e.getAttribute('data-feed');", vec![])
            .await
            .unwrap_or_default();
        browser.close().await.ok();
        demo.refuse_feed_socket(false);
        let s = Summary::of(&lat);
        let limit = if poll { 3000.0 + 25.0 } else { 25.0 };
        let _ = writeln!(
            notes,
            "- {mode}: {} calls at {}/s to ext {ext}; widget reached `data-feed={state}` {ready_secs:.1} s after \
             navigation{}; pop-ups seen {} / missing {missing}{missing_list}; p50/p95/p99/max {} / {} ms; page clock − driver clock \
             = {offset:+.2} ms (± {:.2} ms WebDriver round trip); feed state at the end: {feed_state}.{stages}",
            sent.len(),
            p.pop_rate,
            if poll { " (the demo's switch answers 503 to the /widget/feed upgrade)" } else { "" },
            lat.len(),
            s.map(|s| s.short()).unwrap_or_default(),
            s.map(|s| ms(s.max)).unwrap_or_default(),
            rtt / 2.0
        );
        let verdict = match s {
            Some(s) if missing == 0 => Verdict::at_most(s.p99, limit, "ms"),
            Some(s) => match Verdict::at_most(s.p99, limit, "ms") {
                Verdict::Met => Verdict::Missed(format!("{missing} calls never popped")),
                Verdict::Missed(by) => Verdict::Missed(format!("{by}; {missing} calls never popped")),
                v => v,
            },
            None => Verdict::NotMeasured("no pop-ups seen".into()),
        };
        rows.push(
            Row::new(
                "1",
                &format!("call-pop p50/p95/p99 over {mode} ({} calls, {}/s)", sent.len(), p.pop_rate),
                s.map(|s| s.short()).unwrap_or_else(|| "—".into()),
                format!("backend → native WS {}", base.map(|s| s.short()).unwrap_or_else(|| "—".into())),
            )
            .target(if poll { "p99 ≤ 3000 + 25 ms (poll every 3 s)" } else { "p99 ≤ 25 ms" }, verdict),
        );
    }
    Ok(Outcome { rows, section: ("1. Call-pop latency (headless Chromium)".into(), notes) })
}

/// `(t, call id, text)` of every call pop-up the probe saw whose call id it read.
async fn marked_pops(browser: &Browser) -> Result<Vec<(f64, String, String)>> {
    let v = browser.client.execute("return (window.__bench && window.__bench.pops) || [];", vec![]).await?;
    Ok(v.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| Some((p["t"].as_f64()?, p["call"].as_str()?.to_string(), p["text"].as_str()?.to_string())))
        .collect())
}

/// Every caller the demo's CRM knows: one number per caller-ID key (the
/// last 8 digits), with the names of everyone holding that key (whichever
/// of them Kommo's rule picks, the pop-up must name one of them).
async fn known_callers(demo: &Demo) -> Result<Vec<(String, Vec<String>)>> {
    let doc: serde_json::Value =
        reqwest::get(format!("{}/sandbox/inspect", demo.base_url)).await?.error_for_status()?.json().await?;
    let mut by_key: std::collections::BTreeMap<String, (String, Vec<String>)> = Default::default();
    for kind in ["contacts", "companies"] {
        for record in doc[kind].as_array().cloned().unwrap_or_default() {
            let name = record["name"].as_str().unwrap_or_default().to_string();
            for phone in record["phones"].as_array().cloned().unwrap_or_default() {
                let Some(phone) = phone.as_str() else { continue };
                let key = callcard_calls::phone::last_digits(phone, callcard_calls::phone::CALLER_ID_DIGITS);
                if key.len() < callcard_calls::phone::CALLER_ID_DIGITS || name.is_empty() {
                    continue;
                }
                let entry = by_key.entry(key).or_insert_with(|| (phone.to_string(), Vec::new()));
                entry.1.push(name.clone());
            }
        }
    }
    Ok(by_key.into_values().collect())
}

/// 1b. Named first pop-ups (issue 12): on a freshly started product (every
/// cache cold, the caller index just built at installation), each number the
/// CRM holds rings Anna once (cold), then once more (warm). A first pop-up
/// is named when its text, as it enters the page, holds the name of someone
/// holding the number; the latency is webhook sent → that pop-up in the DOM.
pub async fn named_pops(stand: &Stand) -> Result<Outcome> {
    let demo = &stand.demo;
    let account = demo.sandbox.account_id();
    let ready_by = Instant::now() + Duration::from_secs(60);
    while !demo.backend.store().phonebook_sync(account).await?.is_some_and(|s| s.ready) {
        anyhow::ensure!(Instant::now() < ready_by, "the demo's caller index was not ready within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let callers = known_callers(demo).await?;
    anyhow::ensure!(!callers.is_empty(), "the demo's CRM holds no numbers");
    let browser = Browser::open(&stand.driver).await?;
    browser.client.goto(&stand.page(ANNA)).await?;
    browser.wait_for("[data-feed=\"live\"]", 30).await?;
    let url = format!("{}/pbx/{}/events", demo.backend_url, account);
    let client = reqwest::Client::new();
    let mut rounds = Vec::new();
    for round in ["cold", "warm"] {
        demo.kommo_requests.clear();
        let mut sent = Vec::with_capacity(callers.len());
        for (i, (number, _)) in callers.iter().enumerate() {
            let call_id = format!("named-{round}-{i}");
            let body = wire::event_json(serde_json::json!({"event": "ringing"}), &call_id, number, "101");
            let request = wire::signed_request(&client, &url, &demo.webhook_secret, &body);
            let at = wire::now_us() as f64 / 1000.0;
            let r = request.send().await?;
            anyhow::ensure!(r.status().is_success(), "ringing webhook refused: {}", r.status());
            sent.push((call_id, at));
            // One ring every 200 ms: each pop-up is a first pop-up of its own.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let until = Instant::now() + Duration::from_secs(10);
        let mut seen = marked_pops(&browser).await?;
        while Instant::now() < until && !sent.iter().all(|(id, _)| seen.iter().any(|(_, c, _)| c == id)) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            seen = marked_pops(&browser).await?;
        }
        let requests = demo.kommo_requests.snapshot().len();
        let (mut named, mut latencies, mut unnamed) = (0, Vec::new(), Vec::new());
        for ((call_id, at), (number, names)) in sent.iter().zip(&callers) {
            // The probe lists pop-ups in the order they entered the page.
            let Some((t, _, text)) = seen.iter().find(|(_, c, _)| c == call_id) else {
                unnamed.push(format!("{number} (no pop-up)"));
                continue;
            };
            latencies.push(t - at);
            if names.iter().any(|n| text.contains(n.as_str())) {
                named += 1;
            } else {
                unnamed.push(format!("{number} (“{}”)", text.trim()));
            }
        }
        rounds.push((round, named, latencies, unnamed, requests));
    }
    browser.close().await.ok();
    let total = callers.len();
    let mut notes = format!(
        "A freshly started demo (SQLite, the caller index built at installation from the seed account), Anna's page \
         in headless Chromium; each of the {total} numbers the CRM holds (one per caller-ID key, contacts and \
         companies) rings ext 101 once, 200 ms apart (cold: no caller ID cached anywhere), then once more (warm). \
         Named: the pop-up's text as it enters the page holds the name of one of the number's holders.\n\n"
    );
    let mut rows = Vec::new();
    for (round, named, latencies, unnamed, requests) in &rounds {
        let lat = Summary::of(latencies);
        let _ = writeln!(
            notes,
            "- {round}: {named} of {total} first pop-ups named; pop latency p50/p95/p99/max {} / {} ms; {requests} \
             Kommo requests during the round.{}",
            lat.map(|s| s.short()).unwrap_or_else(|| "—".into()),
            lat.map(|s| ms(s.max)).unwrap_or_else(|| "—".into()),
            if unnamed.is_empty() { String::new() } else { format!(" Not named: {}.", unnamed.join("; ")) }
        );
        let share = 100.0 * *named as f64 / total as f64;
        rows.push(
            Row::new(
                "1",
                &format!("first pop-ups naming a known caller ({round})"),
                format!("{share:.1} % ({named} of {total})"),
                format!("{requests} Kommo requests in the round"),
            )
            .target(
                "100 %",
                if *named == total { Verdict::Met } else { Verdict::Missed(format!("{} unnamed", total - named)) },
            ),
        );
        rows.push(Row::new(
            "1",
            &format!("call-pop p50/p95/p99 of known callers ({round})"),
            lat.map(|s| s.short()).unwrap_or_else(|| "—".into()),
            format!("{} calls, one every 200 ms", latencies.len()),
        ));
    }
    Ok(Outcome { rows, section: ("1b. Named first pop-ups (known callers, cold and warm)".into(), notes) })
}

/// 5b. `script.js` loaded → feed WebSocket open, by stage (Resource Timing
/// plus the probe's WebSocket open time), cold (first load) and warm.
pub async fn startup(stand: &Stand, p: &Params) -> Result<Outcome> {
    const COLLECT: &str = r#"
      var r = performance.getEntriesByType('resource');
      function find(sub) { for (var i = 0; i < r.length; i++) if (r[i].name.indexOf(sub) >= 0) return r[i]; return null; }
      function span(sub) { var e = find(sub); return e ? [e.startTime, e.responseEnd] : null; }
      var s = (window.__bench.sockets || []).filter(function (x) { return x.url.indexOf('/widget/feed') >= 0 && x.open !== null; })[0];
      return { script: span('/script.js'), glue: span('callcard_widget.js'), wasm: span('_bg.wasm'),
               ticket: span('/widget/ticket'), calls: span('/widget/calls'),
               ws: s ? [s.created, s.open] : null };
    "#;
    let browser = Browser::open(&stand.driver).await?;
    let mut runs: Vec<serde_json::Value> = Vec::new();
    for _ in 0..p.startup_loads {
        browser.client.goto(&stand.page(CHEN)).await?;
        browser.wait_for("[data-feed=\"live\"]", 20).await?;
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let v = browser.client.execute(COLLECT, vec![]).await?;
            if !v["ws"].is_null() || Instant::now() > until {
                runs.push(v);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    browser.close().await.ok();
    let at = |v: &serde_json::Value, k: &str, i: usize| v[k][i].as_f64();
    // Stages, each from the end of the previous.
    let stages: [(&str, &str, usize, &str, usize); 6] = [
        ("script.js loaded → glue (callcard_widget.js) loaded", "script", 1, "glue", 1),
        ("glue loaded → wasm downloaded", "glue", 1, "wasm", 1),
        ("wasm downloaded → ticket requested (compile, instantiate, init)", "wasm", 1, "ticket", 0),
        ("ticket request (one-time token → POST /widget/ticket)", "ticket", 0, "ticket", 1),
        ("ticket → /widget/calls answered", "ticket", 1, "calls", 1),
        ("/widget/calls → WebSocket open", "calls", 1, "ws", 1),
    ];
    let mut totals = Vec::new();
    let mut table = String::from("| load | total | ");
    table.push_str(&stages.iter().map(|s| s.0).collect::<Vec<_>>().join(" | "));
    table.push_str(" |\n|");
    table.push_str(&" --- |".repeat(stages.len() + 2));
    table.push('\n');
    for (i, v) in runs.iter().enumerate() {
        let total = match (at(v, "script", 1), at(v, "ws", 1)) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        };
        totals.push(total);
        let cells: Vec<String> = stages
            .iter()
            .map(|(_, a, ai, b, bi)| match (at(v, a, *ai), at(v, b, *bi)) {
                (Some(x), Some(y)) => ms(y - x),
                _ => "—".into(),
            })
            .collect();
        let _ = writeln!(
            table,
            "| {} | {} | {} |",
            if i == 0 { "1 (cold)".to_string() } else { (i + 1).to_string() },
            ms(total),
            cells.join(" | ")
        );
    }
    let cold = totals.first().copied().unwrap_or(f64::NAN);
    let warm = Summary::of(totals.get(1..).unwrap_or(&[]));
    let notes = format!(
        "{} page loads of Chen's host page in one headless Chromium (the first with an empty cache, the rest \
         revalidating it). Times in ms from the page's Resource Timing (`responseEnd`) and the probe's WebSocket \
         `open`; the WebSocket itself is not in Resource Timing.\n\n{table}",
        runs.len()
    );
    let figure = warm.map(|w| w.p50).unwrap_or(cold);
    let rows = vec![Row::new(
        "5",
        "widget: script.js loaded → feed connected (p50 of warm loads)",
        format!("{} ms (cold {} ms)", ms(figure), ms(cold)),
        format!("warm p95 {}", warm.map(|w| ms(w.p95) + " ms").unwrap_or_else(|| "—".into())),
    )
    .target(
        "≤ 100 ms",
        if figure.is_nan() {
            Verdict::NotMeasured("the feed socket never opened".into())
        } else {
            Verdict::at_most(figure, 100.0, "ms")
        },
    )];
    Ok(Outcome { rows, section: ("5b. Widget startup".into(), notes) })
}

/// Where the built widget package is.
pub fn widget_dir(root: &Path) -> PathBuf {
    std::env::var_os("CALLCARD_WIDGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("dist/widget"))
}
