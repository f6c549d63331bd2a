//! Secrets stay out of the request log: a feed ticket and an OAuth code in
//! the query string never reach the trace output, even at debug level.

mod common;

use common::*;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the subscriber set below sees everything the router does.
#[tokio::test(flavor = "current_thread")]
async fn query_strings_never_reach_the_request_log() {
    let db = Db::sqlite().await;
    let backend = callcard_backend::Backend::start(config(&db)).await.unwrap();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let ticket = "tkt-7f3a9c2e5b1d4086a0e2c9b7d5f3e1a8";
    let code = "oauth-code-4d2b8e6f0a1c3e5b7d9f";
    for uri in [
        format!("/widget/feed/poll?ticket={ticket}&since=3"),
        format!("/widget/feed?ticket={ticket}"),
        format!("/kommo/install?code={code}&referer=acme.kommo.com"),
        format!("/widget/calls?{ticket}"),
    ] {
        let request = axum::http::Request::get(&uri).body(axum::body::Body::empty()).unwrap();
        // Refused (no such ticket) or failed (no Kommo here): either way logged.
        backend.router().oneshot(request).await.unwrap();
    }
    drop(_guard);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("/widget/feed/poll"), "the request log shows the path:\n{log}");
    assert!(!log.contains(ticket), "a feed ticket reached the log:\n{log}");
    assert!(!log.contains(code), "an OAuth code reached the log:\n{log}");
    backend.shutdown().await;
}
