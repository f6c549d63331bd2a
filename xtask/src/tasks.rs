//! The commands. Each begins with the install steps it needs.

use crate::shell::{run, Background};
use crate::{install, package, repo_root, widget_build, Options};
use anyhow::Result;
use std::path::PathBuf;

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
