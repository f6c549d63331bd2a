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
/// (The breakdown is from a one-off analysis, not re-measured by every run.)
const BUNDLE_NOTES: &str = "\
Built by `cargo build --profile widget` (root `Cargo.toml`: `lto = true` (fat), `opt-level = \"z\"` for every crate, \
`codegen-units = 1`, `panic = \"abort\"`, `strip = true`), `wasm-bindgen --target web`, `wasm-opt -Oz --converge` \
(binaryen from npm).

Investigation (2026-11-21, commit 4c83c0b sources):

- Before: the `release` profile (thin LTO; `opt-level = \"z\"` and one codegen unit for the widget crate only): \
  wasm 239.4 KB gzipped + glue 9.7 KB + script.js 2.3 KB = 251.5 KB.
- The `widget` profile: wasm 223.7 KB gzipped, 235.7 KB in all (-6 %). That is what the profile can do; \
  `wasm-opt` variants (`-Os`, `-O3`, `--gufa`, `--converge`, `--strip-producers`) move the gzipped wasm by 0.1-0.6 KB.
- Where the bytes are (twiggy 0.8 on the wasm-bindgen output before wasm-opt, 603 KB of code and data): \
  `core` 14 % (formatting, float printing/parsing `flt2dec` dragon/grisu and `f64::from_str` ~14 KB), `.rodata` 10 % \
  (all six locale JSONs embedded with `include_str!` ~24 KB raw, panic locations ~9 KB of source paths, std::io \
  error strings), `alloc` 9.5 %, serde_json 9 %, serde + serde_core 10 %, serde-wasm-bindgen 1.3 %, the widget's \
  own code 7 %, Leptos (reactive_graph 6.7 % + tachys 5.6 %) 12 %, callcard-calls 3 %, hashbrown 2.6 %, \
  wasm-bindgen + js-sys 4 %, futures 2 %.
- Not reachable by configuration on this toolchain: `panic_immediate_abort` and `-Zlocation-detail=none` need a \
  nightly `-Zbuild-std` (only stable is installed). The 150 KB target needs code changes in `widget/src` \
  (suggested to the lead: drop `#[serde(flatten)]` from the types the widget deserializes (serde's Content \
  buffering is among the biggest serde functions), link one JSON path instead of both serde_json and \
  serde-wasm-bindgen, keep floats out of widget-side (de)serialization and formatting, embed only the active \
  locale, and weigh Leptos for the two small views).";

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
