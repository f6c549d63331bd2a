//! The product under test, started in-process on a free port.

use anyhow::{ensure, Result};
use callcard_calls::event::{CallEvent, CallEventKind, Direction};
use callcard_demo::{Demo, DemoConfig};
use std::path::PathBuf;

/// A running product with its own temporary database.
pub struct Product {
    pub demo: Demo,
    _data: tempfile::TempDir,
}

impl Product {
    pub async fn start() -> Result<Product> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let widget_dir =
            std::env::var_os("CALLCARD_WIDGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("dist/widget"));
        ensure!(
            widget_dir.join("pkg/callcard_widget_bg.wasm").is_file(),
            "no built widget in {}: run `cargo xtask test` (or `cargo xtask dist` first)",
            widget_dir.display()
        );
        let data = tempfile::tempdir()?;
        let database_url = format!("sqlite://{}", data.path().join("callcard.sqlite").display());
        let demo = Demo::start(DemoConfig {
            addr: "127.0.0.1:0".parse()?,
            www_dir: root.join("www"),
            widget_dir,
            database_url,
        })
        .await?;
        Ok(Product { demo, _data: data })
    }

    /// The host page as one Kommo user.
    pub fn page_for(&self, user_id: u64) -> String {
        format!("{}/?user={user_id}", self.demo.base_url)
    }

    /// A browser on `user_id`'s page, once the widget marks its feed live.
    pub async fn live_page(&self, driver: &crate::Chromedriver, user_id: u64) -> Result<crate::Browser> {
        let browser = crate::Browser::open(driver).await?;
        browser.client.goto(&self.page_for(user_id)).await?;
        browser.wait_for("#callcard-root[data-feed=live]", 30).await?;
        Ok(browser)
    }

    /// Plays the PBX: signs `event` with the account's webhook secret and
    /// posts it to the backend, failing unless the backend accepts it.
    pub async fn pbx_sends(&self, event: &CallEvent) -> Result<()> {
        let (status, body) = self.demo.pbx.deliver(event).await?;
        ensure!(status.is_success(), "the backend refused {}: {status} {body}", event.kind.name());
        Ok(())
    }

    /// The PBX's late `transcript_ready` for a call.
    pub async fn pbx_sends_transcript(&self, event: &callcard_calls::event::TranscriptEvent) -> Result<()> {
        let (status, body) = self.demo.pbx.deliver(event).await?;
        ensure!(status.is_success(), "the backend refused transcript_ready: {status} {body}");
        Ok(())
    }

    pub async fn shutdown(self) -> Result<()> {
        self.demo.shutdown().await
    }
}

/// An event of a call from `external_number` to `extension`, happening now.
pub fn call_event(kind: CallEventKind, call_id: &str, external_number: &str, extension: &str) -> CallEvent {
    CallEvent {
        kind,
        call_id: call_id.into(),
        direction: Direction::Inbound,
        external_number: external_number.into(),
        extension: extension.into(),
        occurred_at: callcard_demo::pbx_simulator::now_ms(),
    }
}
