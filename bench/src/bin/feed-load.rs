//! `feed-load`: the load generator, a process of its own so that its work is
//! not counted in the backend's memory. Every loop is bounded in count and
//! in time, and the process exits by itself.
//!
//! ```text
//! feed-load ws   --url ws://H:P/widget/feed --tickets FILE [--sources 127.0.0.2,127.0.0.3]
//!                [--concurrency 256] [--connect-secs 120] [--hold-secs 120] [--prefix cap]
//!                [--fallback ws://H2:P2/widget/feed]
//! feed-load http --url http://H:P/pbx/ACCOUNT/events --secret S [--extensions 101,102]
//!                [--concurrency 32] [--secs 8] [--warmup-secs 1] [--max-requests 1000000] [--prefix ing]
//! ```
//!
//! `ws` opens one WebSocket per ticket (a line of FILE), spreading the source
//! addresses over `--sources` to get past the ephemeral port range, prints a
//! `connected` JSON line, keeps every socket read (answering pings) until a
//! line `stop` on stdin or `--hold-secs`, then prints a `done` line with the
//! latency of every event whose call id carries its send time
//! (`callcard_bench::wire::timed_call_id`). With `--fallback`, a socket closed
//! under it (its instance died) reconnects there with its ticket and
//! `since` = the last offset it read, as the widget does; each socket counts
//! the timed events it sees twice.
//!
//! `http` posts signed ringing webhooks (each a new call) over HTTP/1.1
//! keep-alive from `--concurrency` workers for `--secs` after a warm-up and
//! prints one [`HttpReport`] line.

use anyhow::{bail, Context, Result};
use callcard_bench::stats::percentile;
use callcard_bench::wire::{self, HttpReport, WsReport};
use futures::StreamExt;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let mut opts = HashMap::new();
    while let Some(flag) = args.next() {
        let Some(key) = flag.strip_prefix("--") else { bail!("unexpected argument {flag}") };
        opts.insert(key.to_string(), args.next().with_context(|| format!("{flag} needs a value"))?);
    }
    let get = |k: &str| opts.get(k).cloned();
    let num = |k: &str, default: u64| -> Result<u64> {
        get(k).map(|v| v.parse().with_context(|| format!("--{k} must be a number"))).unwrap_or(Ok(default))
    };
    match mode.as_str() {
        "ws" => {
            let url = get("url").context("--url")?;
            let tickets = std::fs::read_to_string(get("tickets").context("--tickets")?)?;
            let sources: Vec<IpAddr> = get("sources")
                .unwrap_or_else(|| "127.0.0.1".into())
                .split(',')
                .map(|s| s.trim().parse())
                .collect::<Result<_, _>>()?;
            ws(WsOptions {
                url,
                tickets: tickets.lines().filter(|l| !l.is_empty()).map(String::from).collect(),
                sources,
                concurrency: num("concurrency", 256)? as usize,
                connect_secs: num("connect-secs", 120)?,
                hold_secs: num("hold-secs", 120)?,
                prefix: get("prefix").unwrap_or_else(|| "cap".into()),
                fallback: get("fallback"),
            })
            .await
        }
        "http" => {
            http(HttpOptions {
                url: get("url").context("--url")?,
                secret: get("secret").context("--secret")?,
                extensions: get("extensions").unwrap_or_else(|| "101".into()).split(',').map(String::from).collect(),
                concurrency: num("concurrency", 32)? as usize,
                secs: num("secs", 8)?,
                warmup_secs: num("warmup-secs", 1)?,
                max_requests: num("max-requests", 1_000_000)?,
                prefix: get("prefix").unwrap_or_else(|| format!("ing{}", wire::now_us())),
            })
            .await
        }
        _ => bail!("usage: feed-load ws|http --url … (see the source's doc comment)"),
    }
}

struct WsOptions {
    url: String,
    tickets: Vec<String>,
    sources: Vec<IpAddr>,
    concurrency: usize,
    connect_secs: u64,
    hold_secs: u64,
    prefix: String,
    fallback: Option<String>,
}

#[derive(Default)]
struct Tally {
    received: AtomicU64,
    closed_early: AtomicU64,
    other_frames: AtomicU64,
    reconnected: AtomicU64,
    latencies_ms: Mutex<Vec<(u64, f64)>>,
    duplicate_seqs: Mutex<Vec<u64>>,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens one feed socket from `source` to `url` (`ws://IP:PORT/path?query`).
async fn open(url: &str, source: IpAddr) -> Result<Socket> {
    let target: SocketAddr = {
        let rest = url.strip_prefix("ws://").context("--url must be ws://")?;
        rest.split('/').next().unwrap_or_default().parse().context("--url host must be IP:port")?
    };
    // Keep the generator lean: no write buffering (frames are tiny).
    let config = WebSocketConfig { write_buffer_size: 0, ..WebSocketConfig::default() };
    let attempt = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0))?;
        let stream = socket.connect(target).await?;
        stream.set_nodelay(true)?;
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
        anyhow::Ok(ws)
    };
    tokio::time::timeout(Duration::from_secs(10), attempt).await.context("connect timed out")?
}

/// What one socket's reader needs to reconnect.
struct Reader {
    ticket: String,
    source: IpAddr,
    prefix: String,
    fallback: Option<String>,
    tally: Arc<Tally>,
    hold_deadline: Instant,
}

impl Reader {
    /// Reads `ws` until stopped; a socket closed under it reconnects once
    /// to the fallback, resuming after the last offset it read.
    async fn run(self, mut ws: Socket, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut seen = std::collections::HashSet::new();
        let mut last_offset = None::<u64>;
        let mut fallback = self.fallback.clone();
        loop {
            let closed = tokio::select! {
                _ = stop.changed() => false,
                _ = tokio::time::sleep_until(self.hold_deadline.into()) => false,
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        self.read(&text, &mut seen, &mut last_offset);
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => !*stop.borrow(),
                }
            };
            if !closed {
                let _ = ws.close(None).await;
                return;
            }
            let Some(url) = fallback.take() else {
                self.tally.closed_early.fetch_add(1, Ordering::Relaxed);
                return;
            };
            // As the widget does after a first failure: a random 250–500 ms.
            tokio::time::sleep(Duration::from_millis(250 + rand::random::<u64>() % 250)).await;
            let since = last_offset.map(|o| format!("&since={o}")).unwrap_or_default();
            match open(&format!("{url}?ticket={}{since}", self.ticket), self.source).await {
                Ok(again) => {
                    self.tally.reconnected.fetch_add(1, Ordering::Relaxed);
                    ws = again;
                }
                Err(_) => {
                    self.tally.closed_early.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    fn read(&self, text: &str, seen: &mut std::collections::HashSet<u64>, last_offset: &mut Option<u64>) {
        let Some(call_id) = wire::frame_call_id(text) else {
            self.tally.other_frames.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if let Some(offset) = wire::frame_offset(text) {
            *last_offset = Some(last_offset.map_or(offset, |l| l.max(offset)));
        }
        let Some((seq, sent_us)) = wire::parse_timed_call_id(&self.prefix, call_id) else {
            self.tally.other_frames.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if !seen.insert(seq) {
            self.tally.duplicate_seqs.lock().unwrap().push(seq);
            return;
        }
        let ms = (wire::now_us() - sent_us) as f64 / 1000.0;
        self.tally.received.fetch_add(1, Ordering::Relaxed);
        self.tally.latencies_ms.lock().unwrap().push((seq, ms));
    }
}

fn raise_fd_limit() {
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let want = hard.max(1_048_576);
        if rlimit::Resource::NOFILE.set(want, want).is_err() {
            let _ = rlimit::Resource::NOFILE.set(hard, hard);
        }
    }
}

async fn ws(o: WsOptions) -> Result<()> {
    raise_fd_limit();
    let started = Instant::now();
    let connect_deadline = started + Duration::from_secs(o.connect_secs);
    let hold_deadline = started + Duration::from_secs(o.connect_secs + o.hold_secs);
    let tally = Arc::new(Tally::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let failed = AtomicU64::new(0);
    let first_error = Mutex::new(None::<String>);
    let mut readers = Vec::with_capacity(o.tickets.len());

    let attempts = futures::stream::iter(o.tickets.iter().enumerate())
        .map(|(i, ticket)| {
            let source = o.sources[i % o.sources.len()];
            let url = format!("{}?ticket={ticket}", o.url);
            async move {
                if Instant::now() >= connect_deadline {
                    anyhow::bail!("connect phase over");
                }
                open(&url, source).await.map(|ws| (ws, ticket.clone(), source))
            }
        })
        .buffer_unordered(o.concurrency.max(1));
    futures::pin_mut!(attempts);
    while let Some(result) = attempts.next().await {
        match result {
            Ok((ws, ticket, source)) => {
                let reader = Reader {
                    ticket,
                    source,
                    prefix: o.prefix.clone(),
                    fallback: o.fallback.clone(),
                    tally: tally.clone(),
                    hold_deadline,
                };
                readers.push(tokio::spawn(reader.run(ws, stop_rx.clone())));
            }
            Err(e) => {
                failed.fetch_add(1, Ordering::Relaxed);
                first_error.lock().unwrap().get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    print_line(&WsReport::Connected {
        ok: readers.len() as u64,
        failed: failed.load(Ordering::Relaxed),
        secs: started.elapsed().as_secs_f64(),
        first_error: first_error.lock().unwrap().clone(),
    });

    // Hold until told to stop, or the hold time is up.
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(hold_deadline.into()) => break,
            line = stdin.next_line() => match line {
                Ok(Some(l)) if l.trim() == "stop" => break,
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(15), futures::future::join_all(readers)).await;
    let (latency_seqs, latencies_ms) = std::mem::take(&mut *tally.latencies_ms.lock().unwrap()).into_iter().unzip();
    let duplicate_seqs = std::mem::take(&mut *tally.duplicate_seqs.lock().unwrap());
    print_line(&WsReport::Done {
        received: tally.received.load(Ordering::Relaxed),
        latencies_ms,
        closed_early: tally.closed_early.load(Ordering::Relaxed),
        other_frames: tally.other_frames.load(Ordering::Relaxed),
        duplicates: duplicate_seqs.len() as u64,
        reconnected: tally.reconnected.load(Ordering::Relaxed),
        latency_seqs,
        duplicate_seqs,
    });
    Ok(())
}

struct HttpOptions {
    url: String,
    secret: String,
    /// Worker `w` rings `extensions[w % len]`.
    extensions: Vec<String>,
    concurrency: usize,
    secs: u64,
    warmup_secs: u64,
    max_requests: u64,
    prefix: String,
}

async fn http(o: HttpOptions) -> Result<()> {
    raise_fd_limit();
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(o.concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()?;
    let started = Instant::now();
    let measure_from = started + Duration::from_secs(o.warmup_secs);
    let deadline = measure_from + Duration::from_secs(o.secs);
    let issued = Arc::new(AtomicU64::new(0));
    let o = Arc::new(o);
    let mut workers = Vec::new();
    for w in 0..o.concurrency {
        let (client, o, issued) = (client.clone(), o.clone(), issued.clone());
        workers.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut lat, mut first_error) = (0u64, 0u64, Vec::new(), None::<String>);
            let mut seq = 0u64;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < o.max_requests {
                seq += 1;
                let call_id = format!("{}-{w}-{seq}", o.prefix);
                let number = wire::caller_number(seq);
                let extension = &o.extensions[w % o.extensions.len()];
                let (body, ts, sig) = wire::signed_event(&o.secret, "ringing", &call_id, &number, extension);
                let sent = Instant::now();
                let result = client
                    .post(&o.url)
                    .header("content-type", "application/json")
                    .header("x-callcard-timestamp", ts)
                    .header("x-callcard-signature", sig)
                    .body(body)
                    .send()
                    .await;
                let result = match result {
                    Ok(r) if r.status().is_success() => r.bytes().await.map(|_| ()).map_err(|e| e.to_string()),
                    Ok(r) => {
                        let status = r.status();
                        Err(format!("{status}: {}", r.text().await.unwrap_or_default()))
                    }
                    Err(e) => Err(e.to_string()),
                };
                if sent < measure_from {
                    continue;
                }
                let done = Instant::now();
                if done > deadline {
                    break;
                }
                match result {
                    Ok(()) => {
                        ok += 1;
                        lat.push((done - sent).as_secs_f64() * 1000.0);
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (ok, errors, lat, first_error)
        }));
    }
    let (mut ok, mut errors, mut lat, mut first_error) = (0, 0, Vec::new(), None);
    for w in workers {
        let (o, e, l, f) = w.await?;
        ok += o;
        errors += e;
        lat.extend(l);
        first_error = first_error.or(f);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let secs = o.secs as f64;
    print_line(&HttpReport {
        ok,
        errors,
        first_error,
        secs,
        per_second: ok as f64 / secs,
        p50_ms: percentile(&lat, 50.0).unwrap_or(0.0),
        p99_ms: percentile(&lat, 99.0).unwrap_or(0.0),
        per_commit: None,
    });
    Ok(())
}

fn print_line<T: serde::Serialize>(value: &T) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string(value).unwrap_or_default());
    let _ = out.flush();
}
