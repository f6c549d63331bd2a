//! # callcard-e2e: the harness for end-to-end tests
//!
//! Each test starts the whole product in-process ([`Product`]: the demo's
//! sandbox, host page, backend on a fresh SQLite file, and PBX simulator on a
//! free port), starts a real `chromedriver`, and drives headless Chromium
//! through it with `fantoccini` ([`Browser`]), one browser per Kommo user.
//!
//! The widget package must be built first (`cargo xtask test` does it and
//! passes its folder in `CALLCARD_WIDGET_DIR`; otherwise `dist/widget/`).
//!
//! [`widget_server`] (binary `widget_test_server`) is the real backend the
//! widget's own browser tests (`wasm-pack test` in `widget/`) connect to.

mod browser;
pub mod product;
pub mod widget_server;

pub use browser::{Browser, Chromedriver};
pub use product::Product;

/// The seeded demo users (docs/design.md).
pub mod users {
    /// Anna Petrova, extension 101.
    pub const ANNA: u64 = 8_320_148;
    /// Bruno Costa, extension 102.
    pub const BRUNO: u64 = 8_375_357;
}
