//! The commands. Each begins with the install steps it needs.

use crate::shell::{run, Background};
use crate::{install, package, repo_root, widget_build, Options};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// `cargo xtask dist`: the widget package, unzipped in `dist/widget/` (what the
/// demo serves) and zipped in `dist/widget.zip` (what Kommo receives).
pub fn dist(options: &Options) -> Result<PathBuf> {
    install::wasm_target()?;
    install::wasm_bindgen()?;
    let wasm_opt = install::wasm_opt()?;
    let bundle = widget_build::build_release(&options.backend_url, &wasm_opt)?;
    let out = repo_root().join("dist");
    let report = package::assemble(&repo_root(), &bundle, &out)?;
    package::check_package(&report.zip_path)?;
    println!("{report}");
    Ok(out)
}

/// `cargo xtask screenshots`: each state of the widget rendered in headless
/// Chromium through the whole product, as PNG files in `docs/screenshots/`.
pub fn screenshots(options: &Options) -> Result<()> {
    install::chromium()?;
    install::npm_packages()?;
    let dist = dist(options)?;
    let root = repo_root();
    let widget_dir = dist.join("widget").to_string_lossy().to_string();
    let out = root.join("docs").join("screenshots").to_string_lossy().to_string();
    run(
        &root,
        "cargo",
        &["run", "--quiet", "--package", "callcard-e2e", "--bin", "screenshots", "--", &out],
        &[("CALLCARD_WIDGET_DIR", &widget_dir)],
    )
}

/// `cargo xtask demo`: the whole product on one address.
pub fn demo(options: &Options) -> Result<()> {
    install::npm_packages()?;
    let dist = dist(options)?;
    let root = repo_root();
    let widget_dir = dist.join("widget").to_string_lossy().to_string();
    let www = root.join("www").to_string_lossy().to_string();
    run(
        &root,
        "cargo",
        &[
            "run",
            "--package",
            "callcard-demo",
            "--",
            "--addr",
            &options.addr,
            "--www",
            &www,
            "--widget-dir",
            &widget_dir,
        ],
        &[],
    )
}

/// The time zone the browser tests run in: one with daylight saving time, so
/// the test of a due time on the day clocks change has such a day.
pub const BROWSER_TIME_ZONE: &str = "Europe/Berlin";

/// `cargo xtask test`: everything CI checks, in order of cost.
pub fn test(options: &Options) -> Result<()> {
    let root = repo_root();
    install::wasm_target()?;
    install::wasm_bindgen()?;
    install::wasm_pack()?;
    install::chromium()?;
    install::firefox()?;
    let geckodriver = install::geckodriver()?;
    let geckodriver = geckodriver.to_string_lossy().to_string();
    install::npm_packages()?;
    install::postgres_running()?;

    run(&root, "cargo", &["fmt", "--all", "--check"], &[])?;
    crate::module_graph::check_workspace(&root)?;
    run(
        &root,
        "cargo",
        &["clippy", "--workspace", "--exclude", "callcard-widget", "--all-targets", "--", "-D", "warnings"],
        &[],
    )?;
    run(
        &root,
        "cargo",
        &[
            "clippy",
            "--package",
            "callcard-widget",
            "--target",
            "wasm32-unknown-unknown",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;

    // The release package first: its structure test and the end-to-end tests use it.
    let dist = dist(options)?;
    let zip = dist.join("widget.zip").to_string_lossy().to_string();
    let widget_dir = dist.join("widget").to_string_lossy().to_string();

    run(
        &root,
        "cargo",
        &["test", "--workspace", "--exclude", "callcard-widget", "--exclude", "callcard-e2e"],
        &[("CALLCARD_DIST_ZIP", &zip)],
    )?;
    api_fuzz(&root)?;
    run(&root, "cargo", &["test", "--package", "callcard-widget", "--lib"], &[])?;
    // The feed's browser tests need a real backend: the widget test server
    // (backend + network gate, `tests/src/widget_server.rs`) on a free port,
    // whose URL is compiled into the wasm tests; stopped when they are done.
    let server = Background::start(
        &root,
        "cargo",
        &["run", "--quiet", "--package", "callcard-e2e", "--bin", "widget_test_server"],
        &[],
        "CALLCARD_TEST_SERVER=",
    )?;
    // In headless Chromium, then in headless Firefox: wasm-bindgen's test
    // runner drives one browser per run (given both drivers it takes
    // geckodriver alone), so `--chrome --firefox` would test Firefox only.
    // Europe/Berlin observes daylight saving time, which the due-time test
    // needs.
    let browsers: [(&str, (&str, &str)); 2] =
        [("--chrome", ("CHROMEDRIVER", "/usr/bin/chromedriver")), ("--firefox", ("GECKODRIVER", &geckodriver))];
    for (browser, driver) in browsers {
        run(
            &root.join("widget"),
            "wasm-pack",
            &["test", "--headless", browser, "--mode", "no-install"],
            &[
                driver,
                ("TZ", BROWSER_TIME_ZONE),
                ("CALLCARD_TEST_SERVER", &server.announced),
                // The feed tests wait for real reconnects (the runner's default is 20 s per binary).
                ("WASM_BINDGEN_TEST_TIMEOUT", "300"),
            ],
        )?;
    }
    drop(server);
    run(
        &root,
        "cargo",
        &["test", "--package", "callcard-e2e", "--", "--test-threads", "1"],
        &[("CALLCARD_WIDGET_DIR", &widget_dir)],
    )?;
    println!("xtask test: everything passed");
    Ok(())
}

/// Schemathesis against the OpenAPI document a real backend serves
/// (`backend/examples/api_fuzz_target.rs`: SQLite, a Kommo sandbox, one
/// installed account), every operation authenticated as the product's callers
/// do (`xtask/schemathesis/hooks.py`). Fails on any 5xx, on any answer the
/// document does not describe (status, content type, headers, body schema),
/// and on an operation that answers 2xx without its declared credentials
/// (one-time token, operator token) or with wrong ones.
/// About a minute.
pub fn api_fuzz(root: &Path) -> Result<()> {
    let schemathesis = install::schemathesis()?;
    let target = Background::start(
        root,
        "cargo",
        &["run", "--quiet", "--package", "callcard-backend", "--example", "api_fuzz_target"],
        &[],
        "CALLCARD_FUZZ_TARGET=",
    )?;
    let described: serde_json::Value = serde_json::from_str(&target.announced).context("the fuzz target's line")?;
    let base = described["backend_url"].as_str().context("the fuzz target names its URL")?;
    let hooks = root.join("xtask/schemathesis");
    run(
        &hooks,
        &schemathesis.to_string_lossy(),
        &[
            "run",
            &format!("{base}/openapi.json"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,ignored_auth",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "50",
            "--workers",
            "2",
            "--seed",
            "20261201",
            "--generation-database",
            "none",
            "--no-color",
        ],
        &[("SCHEMATHESIS_HOOKS", "hooks"), ("CALLCARD_FUZZ_TARGET", &target.announced)],
    )?;
    drop(target);
    Ok(())
}
