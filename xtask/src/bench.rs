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

The twiggy top 20 (twiggy 0.8 `top -n 20`, 2026-12-01 at e1a46ee, on the same build with its function names kept: \
`strip = false` and `wasm-opt -Oz -g`; 800,272 bytes of code and data, the shipped file is 800,318; the names \
subsection left out). The 20 items are 223.5 KB, 27.9 %; the rest is 3,428 items, none over 5.6 KB:

| # | bytes | share | item |
| --- | --- | --- | --- |
| 1 | 25,123 | 3.14 % | `tachys::reactive_graph::<impl tachys::view::Render for F>::build::{{closure}}` |
| 2 | 22,979 | 2.87 % | `callcard_widget::session::Session::start::{{closure}}` |
| 3 | 18,772 | 2.35 % | `widget_settings externref shim` |
| 4 | 15,268 | 1.91 % | `widget_init externref shim` |
| 5 | 14,365 | 1.80 % | `data segment \".rodata.120\"` |
| 6 | 14,342 | 1.79 % | `data segment \".rodata\"` |
| 7 | 13,909 | 1.74 % | `<f64 as core::fmt::Display>::fmt` |
| 8 | 10,734 | 1.34 % | `<serde::private::de::content::ContentDeserializer<E> as serde_core::de::Deserializer>::deserialize_map` |
| 9 | 9,875 | 1.23 % | `callcard_widget::feed::FeedLoop::apply` |
| 10 | 9,721 | 1.21 % | `callcard_widget::drafts::store` |
| 11 | 9,505 | 1.19 % | `callcard_widget::directory::fetch::{{closure}}` |
| 12 | 8,710 | 1.09 % | `data segment \".rodata.41\"` |
| 13 | 7,387 | 0.92 % | `<serde::private::de::FlatMapDeserializer<E> as serde_core::de::Deserializer>::deserialize_struct` |
| 14 | 6,596 | 0.82 % | `data segment \".rodata.111\"` |
| 15 | 6,390 | 0.80 % | `callcard_widget::settings::parse_users` |
| 16 | 6,339 | 0.79 % | `tachys::reactive_graph::<impl tachys::view::Render for F>::build::{{closure}}` |
| 17 | 6,166 | 0.77 % | `callcard_widget::tabs::TabChannel::open::{{closure}}` |
| 18 | 5,892 | 0.74 % | `tachys::html::event::On<E,F>::attach::{{closure}}` |
| 19 | 5,834 | 0.73 % | `data segment \".rodata.40\"` |
| 20 | 5,594 | 0.70 % | `<tachys::html::element::HtmlElement<E,At,Ch> as tachys::view::Render>::build` |

Monomorphised Leptos view builders (tachys) and the exported entry points, into which fat LTO inlined the session's \
start, lead the list; `f64` formatting (13.9 KB: serde's \"invalid type: floating point\" messages print floats) \
and serde's `Content` buffering (`ContentDeserializer`, `FlatMapDeserializer`: the internally tagged `FeedMessage`, \
`CallerId` and `TabMessage`, `CallView`'s `flatten`) are the largest library items. At bd3cc77 (247.8 KB) a breakdown \
by crate put serde, serde_core, serde-wasm-bindgen and the derived impls at ~22 %, Leptos ~18 %, the widget's own \
code ~7 %. Since c2b0f6b (731,921 bytes of wasm) the settings page's note switches, the Subject field, \
click-to-call, ring groups and the lead's stage in the pop-up added 68 KB to it (uncompressed).

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
