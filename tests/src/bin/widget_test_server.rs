//! `widget_test_server [--addr 127.0.0.1:0]`: the real backend the widget's
//! browser tests talk to (see `callcard_e2e::widget_server`).
//!
//! Prints one line, `CALLCARD_TEST_SERVER=http://127.0.0.1:PORT`, once it
//! listens, then serves until stdin closes or Ctrl-C. `cargo xtask test`
//! starts it, compiles that URL into the wasm tests and stops it afterwards.

use anyhow::{bail, Result};
use callcard_e2e::widget_server::WidgetTestServer;
use std::io::Write;
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> Result<()> {
    let mut addr = "127.0.0.1:0".parse()?;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v.parse()?,
            (other, _) => bail!("usage: widget_test_server [--addr HOST:PORT] (got {other})"),
        }
    }
    let server = WidgetTestServer::start(addr).await?;
    println!("CALLCARD_TEST_SERVER={}", server.url);
    std::io::stdout().flush()?;
    eprintln!("widget test server on {} (gate {}); close stdin or press Ctrl-C to stop", server.url, server.gate_url);
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        _ = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    server.shutdown().await;
    Ok(())
}
