//! `cargo xtask bench [--quick] [--only pop,named,startup,capacity,ingest,budget,index,scaleout]`:
//! every benchmark of issue 7 on this machine, in one run.
//!
//! Installs what it needs (wasm tools, Chromium, npm packages, a running
//! PostgreSQL), builds the release widget package exactly as `dist` does and
//! measures its gzipped size, builds the release backend and the `bench/`
//! binaries, then runs the driver (`callcard-bench`), which prints the table
//! and writes `bench/RESULTS.md`. `--quick` uses development sizes (50
//! calls, 1,000 clients); the default is the sizes.

use crate::shell::run;
use crate::{install, package, repo_root, target_dir, widget_build};
use anyhow::{Context, Result};

/// What was found about the bundle's size; lands in `RESULTS.md` under 5a.
/// (The breakdown is from a one-off analysis, not re-measured by every run.)
const BUNDLE_NOTES: &str = "\
Built by `cargo build --profile widget` (root `Cargo.toml`: `lto = true` (fat), `opt-level = \"z\"` for every crate, \
`codegen-units = 1`, `panic = \"abort\"`, `strip = true`), `wasm-bindgen --target web`, `wasm-opt -Oz --converge` \
(binaryen from npm).

Since issue 11 the widget is built on its design card's libraries: every shape is a serde type (the wire shapes \
shared with the backend in `callcard-calls`), serde-wasm-bindgen crosses between Rust and JavaScript values, JSON text \
is parsed and written by the browser's `JSON` (serde_json's parser and printer are not in the bundle; twiggy finds \
only `serde_json::Error`'s `Display`, under 1 KB, linked through gloo-net's error type), gloo-net does HTTP and the \
WebSocket. The budget is 200 KB (it was 150 KB, which the hand-written JSON of issue 7 met at 147.7 KB).

Where the bytes go (twiggy on the same build with names, before wasm-opt: 679 KB of code and data): serde, serde_core, \
serde-wasm-bindgen and the derived impls ~22 %, of which serde's `Content` buffering ~35 KB (the internally tagged \
`FeedMessage`, `CallerId` and `TabMessage`, `CallView`'s `flatten`); `f64` formatting ~14 KB after wasm-opt (serde's \
\"invalid type: floating point\" messages print floats); Leptos (reactive_graph, tachys) ~18 %; the widget's own code \
~7 %.

Earlier: 251.2 KB with serde, serde_json, serde-wasm-bindgen and gloo-net (2026-11-21), 147.7 KB with a hand-written \
JSON reader and writer, `fetch` and `WebSocket` on web-sys (issue 7, undone by issue 11).";

pub fn bench(args: &[String]) -> Result<()> {
    let root = repo_root();
    install::wasm_target()?;
    install::wasm_bindgen()?;
    install::chromium()?;
    install::npm_packages()?;
    install::postgres_running()?;
    install::perf();
    let wasm_opt = install::wasm_opt()?;

    // 5a: the release package, as `cargo xtask dist` builds it.
    let bundle = widget_build::build_release("/backend", &wasm_opt)?;
    let dist = root.join("dist");
    let report = package::assemble(&root, &bundle, &dist)?;
    package::check_package(&report.zip_path)?;
    println!("{report}");
    let raw: Vec<(String, u64)> = report
        .gzip_sizes
        .iter()
        .map(|(f, _)| (f.clone(), std::fs::metadata(report.widget_dir.join(f)).map(|m| m.len()).unwrap_or(0)))
        .collect();
    let raw_text = raw.iter().map(|(f, n)| format!("`{f}` {n} bytes")).collect::<Vec<_>>().join(", ");
    // The same-run baseline: the same sources with the former profile (`release`).
    let before =
        widget_build::build_bundle("release", "/backend", &wasm_opt, &target_dir().join("widget-bundle-release"))?;
    let mut baseline_gzip = 0;
    for (file, _) in &report.gzip_sizes {
        let bytes = match file.strip_prefix("pkg/") {
            Some(name) => std::fs::read(before.join(name))?,
            None => std::fs::read(report.widget_dir.join(file))?,
        };
        baseline_gzip += package::gzip_len(&bytes)?;
    }
    let bundle_json = target_dir().join("bench-bundle.json");
    std::fs::write(
        &bundle_json,
        serde_json::json!({
            "gzip_sizes": report.gzip_sizes,
            "gzip_total": report.gzip_total(),
            "baseline_gzip_total": baseline_gzip,
            "raw_sizes": raw,
            "notes": format!("{BUNDLE_NOTES}\n\nUncompressed: {raw_text}. Gzip (default level) per file as in the table."),
        })
        .to_string(),
    )
    .context("writing the bundle report")?;

    // The release backend and the bench binaries (driver, load generator).
    run(&root, "cargo", &["build", "--release", "--package", "callcard-backend", "--package", "callcard-bench"], &[])?;
    let driver = target_dir().join("release/callcard-bench").to_string_lossy().to_string();
    let widget_dir = report.widget_dir.to_string_lossy().to_string();
    let bundle_json = bundle_json.to_string_lossy().to_string();
    let command = format!("cargo xtask bench {}", args.join(" ")).trim_end().to_string();
    let mut driver_args: Vec<&str> = vec!["--bundle", &bundle_json, "--widget-dir", &widget_dir, "--command", &command];
    driver_args.extend(args.iter().map(String::as_str));
    run(&root, &driver, &driver_args, &[])
}
