//! `cargo xtask bench [--quick] [--only pop,startup,capacity,ingest,budget]`:
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
const BUNDLE_NOTES: &str = "\
Built by `cargo build --profile widget` (root `Cargo.toml`: `lto = true` (fat), `opt-level = \"z\"`, \
`codegen-units = 1`, `panic = \"abort\"`, `strip = true`, `debug = false`), then `wasm-bindgen --target web`, then \
`wasm-opt -Oz --converge` (binaryen from npm). See the lead's report for the twiggy breakdown and the code-level \
suggestions for the widget.";

pub fn bench(args: &[String]) -> Result<()> {
    let root = repo_root();
    install::wasm_target()?;
    install::wasm_bindgen()?;
    install::chromium()?;
    install::npm_packages()?;
    install::postgres_running()?;
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
    let bundle_json = target_dir().join("bench-bundle.json");
    std::fs::write(
        &bundle_json,
        serde_json::json!({
            "gzip_sizes": report.gzip_sizes,
            "gzip_total": report.gzip_total(),
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
