//! Building the widget's wasm bundle: `cargo build --profile widget` for
//! wasm32 (the root `Cargo.toml`: fat LTO, `opt-level = "z"`, one codegen
//! unit, `panic = "abort"`, stripped), then `wasm-bindgen --target web` (an
//! ES module script.js can `import()`), then `wasm-opt -Oz --converge` for
//! size, since every Kommo page load downloads it (see
//! [`crate::install::wasm_opt`] for which wasm-opt).
//!
//! Measured on the same sources (`cargo xtask bench`, 5a): the fat-LTO
//! profile is what moves the size; `wasm-opt` variants (`-Os`, `-O3`,
//! `--gufa`, `--converge`) move the gzipped wasm by well under 1 %.

use crate::shell::run;
use crate::{repo_root, target_dir};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The file stem of the bundle: `pkg/callcard_widget.js` + `_bg.wasm`.
pub const BUNDLE_NAME: &str = "callcard_widget";

/// The cargo profile of the release bundle (root `Cargo.toml`).
pub const PROFILE: &str = "widget";

/// Builds the release bundle and returns the folder holding
/// `callcard_widget.js` and `callcard_widget_bg.wasm`.
pub fn build_release(backend_url: &str, wasm_opt: &Path) -> Result<PathBuf> {
    build_bundle(PROFILE, backend_url, wasm_opt, &target_dir().join("widget-bundle"))
}

/// Builds the bundle with cargo profile `profile` into `out` (replaced).
/// `cargo xtask bench` also builds it with `release`, the profile the bundle
/// was built with before [`PROFILE`], as the same-run baseline of its size.
pub fn build_bundle(profile: &str, backend_url: &str, wasm_opt: &Path, out: &Path) -> Result<PathBuf> {
    let root = repo_root();
    run(
        &root,
        "cargo",
        &["build", "--package", "callcard-widget", "--profile", profile, "--target", "wasm32-unknown-unknown"],
        &[("CALLCARD_BACKEND_URL", backend_url)],
    )?;
    let wasm = target_dir().join(format!("wasm32-unknown-unknown/{profile}/callcard_widget.wasm"));
    let out = out.to_path_buf();
    if out.exists() {
        std::fs::remove_dir_all(&out).context("clearing the old bundle")?;
    }
    let out_str = out.to_string_lossy().to_string();
    let wasm_str = wasm.to_string_lossy().to_string();
    run(
        &root,
        "wasm-bindgen",
        &["--target", "web", "--no-typescript", "--out-name", BUNDLE_NAME, "--out-dir", &out_str, &wasm_str],
        &[],
    )?;
    let bg = out.join(format!("{BUNDLE_NAME}_bg.wasm")).to_string_lossy().to_string();
    let wasm_opt = wasm_opt.to_string_lossy().to_string();
    run(
        &root,
        &wasm_opt,
        &[
            "-Oz",
            "--converge",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
            "--strip-debug",
            "-o",
            &bg,
            &bg,
        ],
        &[],
    )?;
    Ok(out)
}
