//! Install steps. Each checks first and does nothing when the right thing is
//! already there, so `cargo xtask demo` and `cargo xtask test` can call them
//! every time. Everything comes from this machine's package registries:
//! rustup, crates.io, Debian and npm; nothing is downloaded at test time.
//! Node.js and npm come from Debian when missing.

use crate::repo_root;
use crate::shell::{has, output_line, run};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The wasm target for the widget.
pub fn wasm_target() -> Result<()> {
    let installed = output_line_all("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        return Ok(());
    }
    run(&repo_root(), "rustup", &["target", "add", "wasm32-unknown-unknown"], &[])
}

/// `wasm-bindgen` at exactly the version in Cargo.lock: the CLI and the
/// library must agree byte for byte on the generated glue.
pub fn wasm_bindgen() -> Result<()> {
    let wanted = locked_version("wasm-bindgen")?;
    let have = output_line("wasm-bindgen", &["--version"]);
    if have.as_deref() == Some(&format!("wasm-bindgen {wanted}")) {
        return Ok(());
    }
    // Not `--locked`: this machine's registry mirror lacks one of the locked
    // dependencies of wasm-bindgen-cli.
    run(&repo_root(), "cargo", &["install", "wasm-bindgen-cli", "--version", &wanted, "--force"], &[])
}

/// `wasm-opt`, from binaryen on the npm registry (run by Node).
///
/// Not Debian's binaryen: its version 108 predates the reference-types
/// output of today's rustc and wasm-bindgen, and produces a module whose
/// externref table the browser refuses (`WebAssembly.Table.set(): Argument 1
/// is invalid`). The npm build is current and pinned in `www/package.json`.
pub fn wasm_opt() -> Result<PathBuf> {
    npm_packages()?;
    let wasm_opt = repo_root().join("www/node_modules/binaryen/bin/wasm-opt");
    if !wasm_opt.is_file() {
        bail!("{} is missing after `npm ci` in www/", wasm_opt.display());
    }
    Ok(wasm_opt)
}

/// `wasm-pack`, from crates.io.
pub fn wasm_pack() -> Result<()> {
    if has("wasm-pack") {
        return Ok(());
    }
    run(&repo_root(), "cargo", &["install", "wasm-pack"], &[])
}

/// Debian's Chromium and its matching ChromeDriver.
pub fn chromium() -> Result<()> {
    if has("chromium") && has("chromedriver") {
        return Ok(());
    }
    apt_install(&["chromium", "chromium-driver"])
}

/// Debian's Firefox ESR, the second browser the widget's tests run in
/// (`widget/webdriver.json` points geckodriver at `/usr/bin/firefox-esr`).
pub fn firefox() -> Result<()> {
    if has("firefox-esr") {
        return Ok(());
    }
    apt_install(&["firefox-esr"])
}

/// `geckodriver` from crates.io (Debian has none); returns its path for
/// `GECKODRIVER`.
pub fn geckodriver() -> Result<PathBuf> {
    let installed = cargo_bin("geckodriver");
    if installed.is_file() {
        return Ok(installed);
    }
    if let Some(path) = output_line("sh", &["-c", "command -v geckodriver"]) {
        return Ok(PathBuf::from(path));
    }
    run(&repo_root(), "cargo", &["install", "geckodriver"], &[])?;
    if !installed.is_file() {
        bail!("{} is missing after `cargo install geckodriver`", installed.display());
    }
    Ok(installed)
}

/// Where `cargo install` puts `program`: `$CARGO_HOME/bin` (`~/.cargo/bin`).
fn cargo_bin(program: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    home.join("bin").join(program)
}

/// RequireJS and jQuery from the npm registry, for the host page.
/// `perf`, for the ingest benchmark's profile; best effort (the bench says
/// "no profile" without it).
pub fn perf() {
    if !has("perf") {
        if let Err(e) = apt_install(&["linux-perf"]) {
            eprintln!("xtask: perf not installed ({e:#}); the ingest profile will be missing");
        }
    }
}

pub fn npm_packages() -> Result<()> {
    let www = repo_root().join("www");
    let present = [
        "node_modules/requirejs/require.js",
        "node_modules/jquery/dist/jquery.min.js",
        "node_modules/binaryen/bin/wasm-opt",
    ]
    .iter()
    .all(|f| www.join(f).is_file());
    if present {
        return Ok(());
    }
    if !has("npm") {
        apt_install(&["nodejs", "npm"])?;
    }
    let args: &[&str] = if www.join("package-lock.json").is_file() {
        &["ci", "--no-audit", "--no-fund"]
    } else {
        &["install", "--no-audit", "--no-fund"]
    };
    run(&www, "npm", args, &[])
}

/// The local PostgreSQL server the store tests use (started if it is down).
pub fn postgres_running() -> Result<()> {
    if output_line("pg_isready", &["-h", "127.0.0.1", "-p", "5432"]).is_some() {
        return Ok(());
    }
    let versions = std::fs::read_dir("/etc/postgresql")
        .context("PostgreSQL is not installed (no /etc/postgresql); the store tests need it on 127.0.0.1:5432")?;
    for version in versions.flatten() {
        let version = version.file_name().to_string_lossy().to_string();
        run(Path::new("/"), "pg_ctlcluster", &["--skip-systemctl-redirect", &version, "main", "start"], &[])?;
    }
    for _ in 0..50 {
        if output_line("pg_isready", &["-h", "127.0.0.1", "-p", "5432"]).is_some() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    bail!("PostgreSQL did not come up on 127.0.0.1:5432")
}

/// The version of `package` recorded in Cargo.lock.
pub fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(repo_root().join("Cargo.lock")).context("reading Cargo.lock")?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock.find(&needle).with_context(|| format!("{package} is not in Cargo.lock"))? + needle.len();
    let end = lock[start..].find('"').context("malformed Cargo.lock")? + start;
    Ok(lock[start..end].to_string())
}

/// The schemathesis version `cargo xtask test` runs (PyPI).
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Schemathesis, from PyPI, in a virtual environment of its own under the
/// target folder (Debian's Python, with its venv module when missing).
pub fn schemathesis() -> Result<PathBuf> {
    let venv = crate::target_dir().join("schemathesis-venv");
    let program = venv.join("bin/schemathesis");
    let wanted = format!("schemathesis, version {SCHEMATHESIS_VERSION}");
    if output_line(&program.to_string_lossy(), &["--version"]).as_deref() == Some(wanted.as_str()) {
        return Ok(program);
    }
    if !venv.join("bin/pip").is_file() {
        if !has("python3") || output_line("python3", &["-c", "import venv, ensurepip"]).is_none() {
            apt_install(&["python3", "python3-venv"])?;
        }
        run(&repo_root(), "python3", &["-m", "venv", &venv.to_string_lossy()], &[])?;
    }
    let pip = venv.join("bin/pip").to_string_lossy().to_string();
    run(&repo_root(), &pip, &["install", "--quiet", &format!("schemathesis=={SCHEMATHESIS_VERSION}")], &[])?;
    Ok(program)
}

fn apt_install(packages: &[&str]) -> Result<()> {
    static UPDATE: Once = Once::new();
    let root = output_line("id", &["-u"]).as_deref() == Some("0");
    let (program, prefix): (&str, &[&str]) = if root { ("apt-get", &[]) } else { ("sudo", &["apt-get"]) };
    let mut update_result = Ok(());
    UPDATE.call_once(|| {
        let args: Vec<&str> = prefix.iter().copied().chain(["update", "-qq"]).collect();
        update_result = run(Path::new("/"), program, &args, &[]);
    });
    update_result?;
    let args: Vec<&str> =
        prefix.iter().copied().chain(["install", "-y", "-qq"]).chain(packages.iter().copied()).collect();
    run(Path::new("/"), program, &args, &[("DEBIAN_FRONTEND", "noninteractive")])
}

fn output_line_all(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_locked_wasm_bindgen_version_is_the_pinned_one() {
        let locked = locked_version("wasm-bindgen").unwrap();
        let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("wasm-bindgen = \"={locked}\"")),
            "Cargo.toml must pin wasm-bindgen exactly to the locked {locked}"
        );
    }
}
