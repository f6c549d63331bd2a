//! # xtask: the project's commands
//!
//! `cargo xtask <command>` (an alias in `.cargo/config.toml`) runs this binary.
//! A newcomer needs two commands, and both install whatever is missing first:
//!
//! - `demo [--addr 127.0.0.1:8080]`: builds the widget (release) and runs the
//!   whole product on one address: backend on SQLite, Kommo sandbox, host page.
//! - `test`: formatting, clippy, every native test, the widget's browser tests
//!   and the end-to-end tests in headless Chromium.
//!
//! And for maintainers:
//!
//! - `dist [--backend-url URL]`: `dist/widget.zip`, ready to upload to Kommo.
//! - `logos`: redraws `images/*.png` from code.
//! - `bench [--quick] [--only …]`: the benchmarks of issue 7; prints the table
//!   and writes `bench/RESULTS.md` ([`bench`]).
//!
//! Layout: [`install`] (idempotent install steps), [`widget_build`] (wasm
//! bundle), [`package`] (the Kommo widget package), [`logo`] (the mark),
//! [`tasks`] (the commands themselves), [`shell`] (running programs),
//! [`module_graph`] (no module depends on one that depends on it).

pub mod bench;
pub mod install;
pub mod logo;
pub mod module_graph;
pub mod package;
pub mod shell;
pub mod tasks;
pub mod widget_build;

use std::path::PathBuf;

/// Options shared by the commands, parsed from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the demo listens.
    pub addr: String,
    /// The backend base URL compiled into the widget.
    pub backend_url: String,
}

impl Default for Options {
    fn default() -> Self {
        Self { addr: "127.0.0.1:8080".into(), backend_url: "/backend".into() }
    }
}

/// The repository root (the workspace folder).
///
/// `cargo run` (so `cargo xtask`) sets `CARGO_MANIFEST_DIR` at run time to
/// the checkout it was started in; the compile-time value is only the
/// fallback. Two checkouts sharing one `CARGO_TARGET_DIR` can leave cargo
/// running an `xtask` binary built from the other checkout, and a
/// compile-time path would then build and test the wrong tree.
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Cargo's target folder, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}
