//! # callcard-bench: `cargo xtask bench`
//!
//! One command measures, on this machine and in one run, what issue 7 asks:
//!
//! | # | benchmark | against (same run) |
//! | --- | --- | --- |
//! | 1 | call-pop latency: webhook sent → ringing pop-up in the DOM of headless Chromium, over the WebSocket and over the polling fallback | the backend's own delivery (webhook → WebSocket frame in a native client) |
//! | 2 | feed capacity: WebSocket clients held by one backend process, RSS per client, delivery p99 while all are connected | delivery p99 with one client connected |
//! | 3 | durable ingest: signed webhooks acknowledged per second on SQLite and PostgreSQL | a bare `axum` handler answering 200 |
//! | 4 | Kommo budget: requests per call for 100 simultaneous calls from 20 numbers, 429s, time until logged | — (counts) |
//! | 5 | widget: gzipped bundle, `script.js` loaded → feed connected | the stages in between |
//!
//! Processes: the driver (`callcard-bench`) runs the product in-process for
//! the browser benchmarks (as the end-to-end tests do), and for capacity and
//! ingest it starts the release `callcard-backend` binary (and a bare axum
//! server, `callcard-bench bare-server`) as separate processes, loaded by
//! the separate load generator `feed-load`, whose loops are bounded in count
//! and time.
//!
//! This library holds the pure parts, unit-tested: [`stats`] (percentiles),
//! [`machine`] (RSS and machine description from `/proc`), [`report`] (the
//! table and `RESULTS.md`), and [`wire`] (what the driver and the load
//! generator agree on).

pub mod machine;
pub mod report;
pub mod stats;
pub mod wire;
