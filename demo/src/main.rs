//! `callcard-demo`: what `cargo xtask demo` runs.

use anyhow::{bail, Result};
use callcard_demo::{default_database_url, Demo, DemoConfig};
use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut config = DemoConfig {
        addr: "127.0.0.1:8080".parse()?,
        www_dir: root.join("www"),
        widget_dir: root.join("dist/widget"),
        database_url: std::env::var("DATABASE_URL").unwrap_or_default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.as_str(), value) {
            ("--addr", Some(v)) => config.addr = v.parse()?,
            ("--www", Some(v)) => config.www_dir = v.into(),
            ("--widget-dir", Some(v)) => config.widget_dir = v.into(),
            ("--database-url", Some(v)) => config.database_url = v,
            (other, _) => bail!("usage: callcard-demo [--addr HOST:PORT] [--www DIR] [--widget-dir DIR] [--database-url URL] (got {other})"),
        }
    }
    if config.database_url.is_empty() {
        config.database_url = default_database_url(config.addr);
    }
    if !config.widget_dir.join("manifest.json").is_file() {
        bail!("{} holds no widget package: run `cargo xtask demo`, which builds it", config.widget_dir.display());
    }
    let demo = Demo::start(config).await?;
    let url = &demo.base_url;
    println!(
        "\ncallcard demo is running.\n\n  Open {url}/ : you are Anna Petrova (extension 101) in a local Kommo.\n  \
         In the PBX panel press Ring, then Answer, Hang up and Deliver recording, and watch the widget.\n  \
         {url}/?user=8375357 is Bruno Costa (extension 102): he sees only his own calls.\n  \
         {url}/inspect.html shows what callcard wrote into Kommo.\n  \
         Backend: {}/healthz, {}/metrics, {}/openapi.json\n\n  Ctrl-C stops it.\n",
        demo.backend_url, demo.backend_url, demo.backend_url
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping…");
    demo.shutdown().await
}
