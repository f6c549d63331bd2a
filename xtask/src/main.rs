//! The `cargo xtask` command line; the commands live in the library.

use anyhow::{bail, Result};
use xtask::{bench, logo, repo_root, tasks, Options};

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "help".into());
    if command == "bench" {
        // Its options go to the benchmark driver as they are.
        return bench::bench(&args.collect::<Vec<_>>());
    }
    let mut options = Options::default();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => options.addr = value()?,
            "--backend-url" => options.backend_url = value()?,
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    match command.as_str() {
        "demo" => tasks::demo(&options),
        "test" => tasks::test(&options),
        "api-fuzz" => tasks::api_fuzz(&repo_root()),
        "dist" => tasks::dist(&options).map(|_| ()),
        "screenshots" => tasks::screenshots(&options),
        "logos" => logo::write_logos(&repo_root().join("images")),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other}\n{USAGE}"),
    }
}

const USAGE: &str = "usage: cargo xtask <command> [options]

commands:
  demo   [--addr 127.0.0.1:8080]   build the widget and run the whole product locally
  test                             fmt, clippy, native, browser and end-to-end tests
  api-fuzz                         only test's schemathesis run against a real backend
  dist   [--backend-url URL]       build dist/widget.zip for Kommo
  screenshots                      render the widget's states in headless Chromium into docs/screenshots/
  logos                            redraw images/*.png
  bench  [--quick] [--only pop,named,startup,capacity,ingest,budget,index,scaleout]
                                   run the benchmarks, print the table, write bench/RESULTS.md";
