//! The Kommo widget archive: assembling `dist/widget/` and `dist/widget.zip`,
//! and checking an archive against Kommo's rules before anyone uploads it.
//!
//! The archive holds exactly (see `docs/design.md`):
//! ```text
//! manifest.json  script.js  callcard.css  i18n/{en,es,pt,tr,id,ru}.json  images/logo*.png
//! pkg/callcard_widget.js  pkg/callcard_widget_bg.wasm
//! ```
//! [`assemble`] copies them from the repository (`manifest.json`,
//! `www/script.js`, `www/callcard.css`, `i18n/`, `images/`) and from the wasm-bindgen output
//! directory, and zips them with `manifest.json` at the root.
//! [`check_package`] (a zip) and [`check_dir`] (an unzipped package) report
//! every rule a package breaks, all at once.

use crate::logo::{LOGOS, MAX_IMAGE_BYTES};
use anyhow::{bail, Context as _};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

/// The locales the widget ships; the manifest's `widget.locale` must list
/// exactly these, and each has `i18n/<locale>.json`.
pub const LOCALES: [&str; 6] = ["en", "es", "pt", "tr", "id", "ru"];

/// The locale every other locale file is compared with.
pub const REFERENCE_LOCALE: &str = "en";

/// The wasm-bindgen output, as found in the bundle directory and as stored
/// under `pkg/` in the package.
pub const GLUE_JS: &str = "callcard_widget.js";
pub const WASM: &str = "callcard_widget_bg.wasm";

/// The functions `script.js` calls on the wasm module (design.md, "The widget
/// package"); the glue must export each of them.
pub const WASM_EXPORTS: [&str; 5] =
    ["widget_init", "widget_bind_actions", "widget_settings", "widget_on_save", "widget_destroy"];

/// Kommo's setting types.
pub const SETTING_TYPES: [&str; 5] = ["text", "pass", "users", "users_lp", "custom"];

/// Above this share of strings identical to English, a locale file counts as
/// an untranslated copy.
const MAX_UNTRANSLATED_SHARE: f64 = 0.25;

/// What [`assemble`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageReport {
    /// `out_dir/widget`, the unzipped package.
    pub widget_dir: PathBuf,
    /// `out_dir/widget.zip`.
    pub zip_path: PathBuf,
    /// The archive's files, by their path inside the archive, sorted.
    pub files: Vec<String>,
    /// Size of the zip file in bytes.
    pub zip_bytes: u64,
    /// Gzipped size (default level) of what a browser downloads to run the
    /// widget: `script.js`, `pkg/callcard_widget.js`, `pkg/callcard_widget_bg.wasm`.
    pub gzip_sizes: Vec<(String, u64)>,
}

impl PackageReport {
    /// The sum of [`PackageReport::gzip_sizes`].
    pub fn gzip_total(&self) -> u64 {
        self.gzip_sizes.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for PackageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({} files, {} bytes)", self.zip_path.display(), self.files.len(), self.zip_bytes)?;
        for file in &self.files {
            writeln!(f, "  {file}")?;
        }
        writeln!(f, "gzipped download:")?;
        for (file, n) in &self.gzip_sizes {
            writeln!(f, "  {file:<32} {n:>9} bytes")?;
        }
        write!(f, "  {:<32} {:>9} bytes", "total", self.gzip_total())
    }
}

/// The widget's stylesheet, beside `script.js` (which loads it).
pub const STYLESHEET: &str = "callcard.css";

/// The files a package holds, by archive path, sorted.
pub fn expected_files() -> Vec<String> {
    let mut files = vec!["manifest.json".to_string(), "script.js".to_string(), STYLESHEET.to_string()];
    files.extend(LOCALES.iter().map(|l| format!("i18n/{l}.json")));
    files.extend(LOGOS.iter().map(|l| format!("images/{}", l.file)));
    files.push(format!("pkg/{GLUE_JS}"));
    files.push(format!("pkg/{WASM}"));
    files.sort();
    files
}

/// Builds `out_dir/widget/` (replacing whatever was there) and
/// `out_dir/widget.zip` from the repository at `root` and the wasm-bindgen
/// output in `bundle_dir` (`callcard_widget.js`, `callcard_widget_bg.wasm`).
///
/// It copies; it does not judge. Run [`check_package`] on the result.
pub fn assemble(root: &Path, bundle_dir: &Path, out_dir: &Path) -> anyhow::Result<PackageReport> {
    let widget_dir = out_dir.join("widget");
    if widget_dir.exists() {
        std::fs::remove_dir_all(&widget_dir).with_context(|| format!("removing {}", widget_dir.display()))?;
    }
    for file in expected_files() {
        let source = match file.split_once('/') {
            Some(("pkg", name)) => bundle_dir.join(name),
            None if file == "script.js" || file == STYLESHEET => root.join("www").join(&file),
            _ => root.join(&file),
        };
        let target = widget_dir.join(&file);
        std::fs::create_dir_all(target.parent().expect("a file in the widget dir"))
            .with_context(|| format!("creating the folder of {}", target.display()))?;
        std::fs::copy(&source, &target)
            .with_context(|| format!("copying {} into the package as {file}", source.display()))?;
    }

    let zip_path = out_dir.join("widget.zip");
    let files = zip_dir(&widget_dir, &zip_path)?;
    let zip_bytes = std::fs::metadata(&zip_path)?.len();
    let mut gzip_sizes = Vec::new();
    for file in ["script.js".to_string(), format!("pkg/{GLUE_JS}"), format!("pkg/{WASM}")] {
        let bytes = std::fs::read(widget_dir.join(&file))?;
        gzip_sizes.push((file, gzip_len(&bytes)?));
    }
    Ok(PackageReport { widget_dir, zip_path, files, zip_bytes, gzip_sizes })
}

/// Zips every file under `dir` into `zip_path`, paths relative to `dir` with
/// `/` separators (so `dir/manifest.json` is at the zip root), sorted, with
/// fixed timestamps and modes so the same files give the same zip. Returns
/// the archive paths.
pub fn zip_dir(dir: &Path, zip_path: &Path) -> anyhow::Result<Vec<String>> {
    let files = list_files(dir)?;
    if let Some(parent) = zip_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let out = std::fs::File::create(zip_path).with_context(|| format!("creating {}", zip_path.display()))?;
    let mut zip = zip::ZipWriter::new(out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for name in &files {
        let bytes = std::fs::read(dir.join(name))?;
        zip.start_file(name.as_str(), options)?;
        zip.write_all(&bytes)?;
    }
    zip.finish().with_context(|| format!("finishing {}", zip_path.display()))?;
    Ok(files)
}

/// Checks a widget archive against Kommo's rules and the design; the error
/// lists every problem found.
pub fn check_package(zip_path: &Path) -> anyhow::Result<()> {
    let files = read_zip(zip_path)?;
    check_files(&files).with_context(|| format!("{} is not a valid Kommo widget package", zip_path.display()))
}

/// [`check_package`] for an unzipped package directory.
pub fn check_dir(dir: &Path) -> anyhow::Result<()> {
    let mut files = BTreeMap::new();
    for name in list_files(dir)? {
        let bytes = std::fs::read(dir.join(&name))?;
        files.insert(name, bytes);
    }
    check_files(&files).with_context(|| format!("{} is not a valid Kommo widget package", dir.display()))
}

/// The package's files, by archive path. Directory entries are skipped;
/// anything else odd about the zip (absolute or `..` paths, duplicates) is
/// an error.
pub fn read_zip(zip_path: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let file = std::fs::File::open(zip_path).with_context(|| format!("opening {}", zip_path.display()))?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| format!("reading {} as a zip", zip_path.display()))?;
    let mut files = BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let name = entry.name().to_string();
        if entry.is_dir() {
            continue;
        }
        if entry.enclosed_name().is_none() || name.starts_with('/') || name.contains('\\') {
            bail!("{}: entry {name:?} has an unsafe path", zip_path.display());
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).with_context(|| format!("unzipping {name}"))?;
        if files.insert(name.clone(), bytes).is_some() {
            bail!("{}: entry {name:?} appears twice", zip_path.display());
        }
    }
    Ok(files)
}

/// All checks, on a package held in memory (archive path → bytes).
pub fn check_files(files: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<()> {
    let mut problems = Problems::default();
    check_file_list(files, &mut problems);
    let locales = check_locales(files, &mut problems);
    check_manifest(files, &locales, &mut problems);
    check_images(files, &mut problems);
    check_bundle(files, &mut problems);
    problems.into_result()
}

// ---------------------------------------------------------------------------

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }
    fn into_result(self) -> anyhow::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut text = format!("{} problem(s):", self.0.len());
        for p in &self.0 {
            text.push_str("\n  - ");
            text.push_str(p);
        }
        bail!(text)
    }
}

fn check_file_list(files: &BTreeMap<String, Vec<u8>>, problems: &mut Problems) {
    let expected: BTreeSet<String> = expected_files().into_iter().collect();
    for missing in expected.iter().filter(|f| !files.contains_key(*f)) {
        problems.add(format!("missing file {missing}"));
    }
    for extra in files.keys().filter(|f| !expected.contains(*f)) {
        problems.add(format!("unexpected file {extra} (not part of the widget package)"));
    }
}

/// Parses the locale files and checks them against the reference locale.
/// Returns the parsed ones, by locale.
fn check_locales(files: &BTreeMap<String, Vec<u8>>, problems: &mut Problems) -> BTreeMap<String, Value> {
    let mut parsed = BTreeMap::new();
    for locale in LOCALES {
        let name = format!("i18n/{locale}.json");
        let Some(bytes) = files.get(&name) else { continue };
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v @ Value::Object(_)) => {
                parsed.insert(locale.to_string(), v);
            }
            Ok(_) => problems.add(format!("{name} is not a JSON object")),
            Err(e) => problems.add(format!("{name} is not valid JSON: {e}")),
        }
    }
    let Some(reference) = parsed.get(REFERENCE_LOCALE) else {
        return parsed;
    };
    let mut reference_leaves = BTreeMap::new();
    leaves(reference, "", &mut reference_leaves);
    for (path, value) in &reference_leaves {
        match value {
            Value::String(s) if !s.trim().is_empty() => {}
            _ => problems.add(format!("i18n/{REFERENCE_LOCALE}.json: {path} must be a non-empty string")),
        }
    }
    for key in ["widget.name", "widget.short_description", "widget.description", "widget.tour_description"] {
        if !reference_leaves.contains_key(key) {
            problems.add(format!("i18n/{REFERENCE_LOCALE}.json: missing key {key}"));
        }
    }
    for (locale, value) in &parsed {
        if locale == REFERENCE_LOCALE {
            continue;
        }
        let file = format!("i18n/{locale}.json");
        let mut structure = Vec::new();
        compare_structure(reference, value, "", &mut structure);
        for p in structure {
            problems.add(format!("{file}: {p} (compared with i18n/{REFERENCE_LOCALE}.json)"));
        }
        let mut these = BTreeMap::new();
        leaves(value, "", &mut these);
        let mut same = 0;
        let mut compared = 0;
        for (path, text) in &these {
            let Some(Value::String(reference_text)) = reference_leaves.get(path) else { continue };
            let Value::String(text) = text else {
                problems.add(format!("{file}: {path} must be a string"));
                continue;
            };
            if text.trim().is_empty() {
                problems.add(format!("{file}: {path} is empty"));
                continue;
            }
            let want = placeholders(reference_text);
            let got = placeholders(text);
            if want != got {
                problems.add(format!(
                    "{file}: {path} has placeholders {{{}}}, i18n/{REFERENCE_LOCALE}.json has {{{}}}",
                    join(&got),
                    join(&want)
                ));
            }
            compared += 1;
            if text == reference_text {
                same += 1;
            }
        }
        if compared > 0 && same as f64 / compared as f64 > MAX_UNTRANSLATED_SHARE {
            problems.add(format!(
                "{file}: {same} of {compared} strings are identical to i18n/{REFERENCE_LOCALE}.json; it looks untranslated"
            ));
        }
    }
    parsed
}

fn check_manifest(files: &BTreeMap<String, Vec<u8>>, locales: &BTreeMap<String, Value>, problems: &mut Problems) {
    let Some(bytes) = files.get("manifest.json") else { return };
    let manifest: Value = match serde_json::from_slice(bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return problems.add("manifest.json is not a JSON object"),
        Err(e) => return problems.add(format!("manifest.json is not valid JSON: {e}")),
    };
    let at = |path: &str| -> Option<&Value> { path.split('.').try_fold(&manifest, |v, k| v.get(k)) };
    // Keys into the locale files that the manifest names.
    let mut i18n_refs: Vec<(String, String)> = Vec::new();

    for field in ["name", "description", "short_description"] {
        let path = format!("widget.{field}");
        match at(&path) {
            Some(Value::String(key)) => i18n_refs.push((format!("manifest.json {path}"), key.clone())),
            _ => problems.add(format!("manifest.json: {path} must be a string naming an i18n key")),
        }
    }
    match at("widget.version").and_then(Value::as_str) {
        Some(v) if is_version(v) => {}
        Some(v) => problems.add(format!("manifest.json: widget.version {v:?} must look like 1.2.3")),
        None => problems.add("manifest.json: widget.version is missing"),
    }
    for (path, want) in [
        ("widget.interface_version", Value::from(2)),
        ("widget.init_once", Value::Bool(true)),
        ("widget.installation", Value::Bool(true)),
    ] {
        match at(path) {
            Some(v) if *v == want => {}
            Some(v) => problems.add(format!("manifest.json: {path} is {v}, must be {want}")),
            None => problems.add(format!("manifest.json: {path} is missing (must be {want})")),
        }
    }
    match at("widget.locale").and_then(Value::as_array) {
        Some(list) => {
            let listed: BTreeSet<&str> = list.iter().filter_map(Value::as_str).collect();
            let want: BTreeSet<&str> = LOCALES.into_iter().collect();
            if listed != want || list.len() != want.len() {
                problems.add(format!(
                    "manifest.json: widget.locale is {}, must list each of {} once",
                    Value::Array(list.clone()),
                    LOCALES.join(", ")
                ));
            }
        }
        None => problems.add("manifest.json: widget.locale is missing (a list of locales)"),
    }
    match at("widget.support.link").and_then(Value::as_str) {
        Some(link) if link.starts_with("https://") => {}
        _ => problems.add("manifest.json: widget.support.link must be an https:// address"),
    }
    match at("widget.support.email").and_then(Value::as_str) {
        Some(email) if email.contains('@') && !email.contains(' ') => {}
        _ => problems.add("manifest.json: widget.support.email must be an e-mail address"),
    }
    match at("locations").and_then(Value::as_array) {
        Some(list) => {
            let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            if names.len() != list.len() {
                problems.add("manifest.json: locations must hold strings only");
            }
            if !names.contains(&"everywhere") {
                problems.add(format!(
                    "manifest.json: locations {} must include \"everywhere\" (a telephony widget runs on every page)",
                    Value::Array(list.clone())
                ));
            }
        }
        None => problems.add("manifest.json: locations is missing (a list that includes \"everywhere\")"),
    }
    if let Some(tour) = at("tour") {
        match tour.get("is_tour") {
            Some(Value::Bool(is_tour)) => {
                if *is_tour {
                    let images = tour.get("tour_images").and_then(Value::as_object);
                    for image in
                        images.into_iter().flat_map(|m| m.values()).flat_map(|v| v.as_array().into_iter().flatten())
                    {
                        let path = image.as_str().unwrap_or_default().trim_start_matches('/');
                        if !files.contains_key(path) {
                            problems.add(format!("manifest.json: tour image {image} is not in the package"));
                        }
                    }
                }
            }
            _ => problems.add("manifest.json: tour.is_tour must be true or false"),
        }
        if let Some(d) = tour.get("tour_description") {
            match d.as_str() {
                Some(key) => i18n_refs.push(("manifest.json tour.tour_description".into(), key.to_string())),
                None => problems.add("manifest.json: tour.tour_description must name an i18n key"),
            }
        }
    }
    match at("settings").and_then(Value::as_object) {
        Some(settings) => {
            let mut has_users = false;
            for (key, setting) in settings {
                match setting.get("name").and_then(Value::as_str) {
                    Some(name) => i18n_refs.push((format!("manifest.json settings.{key}.name"), name.to_string())),
                    None => problems.add(format!("manifest.json: settings.{key}.name must name an i18n key")),
                }
                match setting.get("type").and_then(Value::as_str) {
                    Some(t) if SETTING_TYPES.contains(&t) => has_users |= t == "users",
                    Some(t) => problems.add(format!(
                        "manifest.json: settings.{key}.type is {t:?}, must be one of {}",
                        SETTING_TYPES.join(", ")
                    )),
                    None => problems.add(format!(
                        "manifest.json: settings.{key}.type is missing (one of {})",
                        SETTING_TYPES.join(", ")
                    )),
                }
                if !matches!(setting.get("required"), Some(Value::Bool(_))) {
                    problems.add(format!("manifest.json: settings.{key}.required must be true or false"));
                }
            }
            if !has_users {
                problems
                    .add("manifest.json: settings has no setting of type \"users\" (the PBX extension of each user)");
            }
        }
        None => problems.add("manifest.json: settings is missing (it needs a \"users\" setting)"),
    }
    for (locale, value) in locales {
        for (where_, key) in &i18n_refs {
            match key.split('.').try_fold(value, |v, k| v.get(k)) {
                Some(Value::String(s)) if !s.trim().is_empty() => {}
                _ => problems.add(format!("{where_} names i18n key {key:?}, which i18n/{locale}.json lacks")),
            }
        }
    }
}

fn check_images(files: &BTreeMap<String, Vec<u8>>, problems: &mut Problems) {
    for spec in LOGOS {
        let name = format!("images/{}", spec.file);
        let Some(bytes) = files.get(&name) else { continue };
        if bytes.len() >= MAX_IMAGE_BYTES {
            problems.add(format!("{name} is {} bytes; Kommo allows less than {MAX_IMAGE_BYTES}", bytes.len()));
        }
        match png_facts(bytes) {
            Ok((w, h, colours)) => {
                if (w, h) != (spec.width, spec.height) {
                    problems.add(format!("{name} is {w}x{h}, Kommo wants {}x{}", spec.width, spec.height));
                }
                if colours < 16 {
                    problems.add(format!("{name} has only {colours} colours; it is a blank fill, not a logo"));
                }
            }
            Err(e) => problems.add(format!("{name} is not a readable PNG: {e:#}")),
        }
    }
}

fn check_bundle(files: &BTreeMap<String, Vec<u8>>, problems: &mut Problems) {
    let wasm_name = format!("pkg/{WASM}");
    if let Some(wasm) = files.get(&wasm_name) {
        if wasm.len() < 8 || &wasm[..4] != b"\0asm" || wasm[4..8] != [1, 0, 0, 0] {
            problems.add(format!("{wasm_name} is not a WebAssembly module (no \\0asm version 1 header)"));
        }
    }
    let glue_name = format!("pkg/{GLUE_JS}");
    if let Some(glue) = files.get(&glue_name) {
        match std::str::from_utf8(glue) {
            Ok(js) => {
                if !js.contains(WASM) {
                    problems.add(format!("{glue_name} does not load {WASM}; it is not the wasm-bindgen glue for it"));
                }
                for export in WASM_EXPORTS {
                    if !js.contains(&format!("export function {export}(")) {
                        problems.add(format!("{glue_name} does not export {export}, which script.js calls"));
                    }
                }
            }
            Err(_) => problems.add(format!("{glue_name} is not UTF-8 text")),
        }
    }
    if let Some(script) = files.get("script.js") {
        match std::str::from_utf8(script) {
            Ok(js) => {
                if !js.contains("define(") {
                    problems.add("script.js is not an AMD module (no define( call)");
                }
                if !js.contains(GLUE_JS) {
                    problems.add(format!("script.js never loads pkg/{GLUE_JS}"));
                }
                if !js.contains(STYLESHEET) {
                    problems.add(format!("script.js never loads {STYLESHEET}"));
                }
            }
            Err(_) => problems.add("script.js is not UTF-8 text"),
        }
    }
}

// ---------------------------------------------------------------------------

/// Width, height and (up to 16) distinct pixel values of a PNG, decoding it fully.
fn png_facts(bytes: &[u8]) -> anyhow::Result<(u32, u32, usize)> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf)?;
    let (w, h) = (frame.width, frame.height);
    let bytes_per_pixel = (frame.line_size / w.max(1) as usize).max(1);
    let mut colours = BTreeSet::new();
    for row in buf[..frame.buffer_size()].chunks(frame.line_size) {
        for px in row.chunks(bytes_per_pixel) {
            colours.insert(px.to_vec());
            if colours.len() >= 16 {
                return Ok((w, h, colours.len()));
            }
        }
    }
    Ok((w, h, colours.len()))
}

pub fn gzip_len(bytes: &[u8]) -> anyhow::Result<u64> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len() as u64)
}

/// Every file under `dir`, relative, with `/` separators, sorted.
fn list_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                walk(base, &path, out)?;
            } else {
                let rel = path.strip_prefix(base)?;
                let parts: Vec<String> =
                    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// The string leaves of a JSON object, by dotted path.
fn leaves<'a>(v: &'a Value, prefix: &str, out: &mut BTreeMap<String, &'a Value>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                leaves(v, &format!("{prefix}{k}."), out);
            }
        }
        other => {
            out.insert(prefix.trim_end_matches('.').to_string(), other);
        }
    }
}

/// Differences in key structure between `want` and `got`, recursively.
fn compare_structure(want: &Value, got: &Value, prefix: &str, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let path = format!("{prefix}{k}");
                match g.get(k) {
                    Some(gv) => compare_structure(wv, gv, &format!("{path}."), out),
                    None => out.push(format!("missing key {path}")),
                }
            }
            for k in g.keys().filter(|k| !w.contains_key(*k)) {
                out.push(format!("extra key {prefix}{k}"));
            }
        }
        (Value::Object(_), _) => out.push(format!("{} must be a section, not a string", prefix.trim_end_matches('.'))),
        (_, Value::Object(_)) => out.push(format!("{} must be a string, not a section", prefix.trim_end_matches('.'))),
        _ => {}
    }
}

/// The `{name}` placeholders of a string.
fn placeholders(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = s;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    out.insert(name.to_string());
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

fn is_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn join<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    items.into_iter().map(|s| s.as_ref().to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found() {
        let got = placeholders("Extension {extension} of {name}: {} {not a name} {max}");
        assert_eq!(got.into_iter().collect::<Vec<_>>(), ["extension", "max", "name"]);
    }

    #[test]
    fn structure_differences_are_named() {
        let want = serde_json::json!({"a": {"b": "x", "c": "y"}, "d": "z"});
        let got = serde_json::json!({"a": {"b": "x", "e": "y"}, "d": {"f": "z"}});
        let mut out = Vec::new();
        compare_structure(&want, &got, "", &mut out);
        assert_eq!(out, ["missing key a.c", "extra key a.e", "d must be a string, not a section"]);
    }

    #[test]
    fn expected_files_are_the_design_list() {
        let files = expected_files();
        assert_eq!(files.len(), 3 + 6 + 5 + 2);
        assert!(files.contains(&STYLESHEET.to_string()));
        assert!(files.contains(&"manifest.json".to_string()));
        assert!(files.contains(&"pkg/callcard_widget_bg.wasm".to_string()));
        assert!(files.contains(&"images/logo_main.png".to_string()));
        assert!(files.contains(&"i18n/id.json".to_string()));
    }

    #[test]
    fn versions() {
        assert!(is_version("0.1.0"));
        assert!(!is_version("0.1"));
        assert!(!is_version("0.1.0-beta"));
    }
}
