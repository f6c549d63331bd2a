//! Headless Chromium through a real `chromedriver`.

use anyhow::{bail, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `chromedriver` process on a free port, killed on drop.
pub struct Chromedriver {
    child: Child,
    pub url: String,
}

impl Chromedriver {
    pub async fn start() -> Result<Chromedriver> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (Debian's chromium-driver; `cargo xtask test` installs it)")?;
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Chromedriver { child, url });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("chromedriver did not start listening on port {port}")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium with its own profile, i.e. one person's browser.
pub struct Browser {
    pub client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn open(driver: &Chromedriver) -> Result<Browser> {
        let profile = tempfile::tempdir()?;
        let args = serde_json::json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,900",
            format!("--user-data-dir={}", profile.path().display()),
        ]);
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), serde_json::json!({"args": args, "binary": "/usr/bin/chromium"}));
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .context("opening a Chromium session through chromedriver")?;
        Ok(Browser { client, _profile: profile })
    }

    /// Waits up to `secs` for an element matching `css`.
    pub async fn wait_for(&self, css: &str, secs: u64) -> Result<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(Duration::from_secs(secs))
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("waiting {secs} s for `{css}`"))
    }

    /// The text of every element matching `css`: its `innerText`, not
    /// WebDriver's "visible text", which is empty while a pop-up is still
    /// fading in (opacity 0 counts as invisible there).
    pub async fn texts(&self, css: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in self.client.find_all(Locator::Css(css)).await? {
            out.push(e.prop("innerText").await?.unwrap_or_default());
        }
        Ok(out)
    }

    /// The arguments of every `APP.notifications.<method>` call the page has
    /// seen, oldest first (the host page logs them, pop-ups themselves hide).
    pub async fn notifications(&self, method: &str) -> Result<Vec<serde_json::Value>> {
        let script = "return (window.CallcardHost && CallcardHost.notificationLog || [])\
                      .filter(function (e) { return e.method === arguments[0]; })\
                      .map(function (e) { return e.arg; });";
        let script = script.replace("arguments[0]", &serde_json::to_string(method)?);
        match self.client.execute(&script, vec![]).await? {
            serde_json::Value::Array(items) => Ok(items),
            other => bail!("unexpected notification log: {other}"),
        }
    }

    pub async fn close(self) -> Result<()> {
        self.client.close().await?;
        Ok(())
    }
}
