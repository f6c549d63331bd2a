//! The widget package: `assemble` builds it from the repository's real files
//! (manifest.json, www/script.js, i18n/, images/) and a bundle; `check_package`
//! accepts it, and refuses each way of breaking it with a message that names
//! the problem.

use serde_json::Value;
use std::path::{Path, PathBuf};
use xtask::package::{assemble, check_dir, check_package, read_zip, zip_dir, PackageReport};

/// The archive's files, spelled out here on purpose (not taken from the
/// crate) so a change to the package layout has to change this test too.
const EXPECTED: [&str; 16] = [
    "callcard.css",
    "i18n/en.json",
    "i18n/es.json",
    "i18n/id.json",
    "i18n/pt.json",
    "i18n/ru.json",
    "i18n/tr.json",
    "images/logo.png",
    "images/logo_main.png",
    "images/logo_medium.png",
    "images/logo_min.png",
    "images/logo_small.png",
    "manifest.json",
    "pkg/callcard_widget.js",
    "pkg/callcard_widget_bg.wasm",
    "script.js",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// A stand-in for the wasm-bindgen output: a wasm header and glue that loads
/// it and exports what script.js calls.
fn fake_bundle(dir: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend_from_slice(&[0x00, 0x04, 0x03, b'f', b'o', b'o']); // a custom section
    std::fs::write(bundle.join("callcard_widget_bg.wasm"), wasm).unwrap();
    let glue = "let wasm;\n\
        export function widget_init(self) { wasm.widget_init(self); }\n\
        export function widget_bind_actions(self) { wasm.widget_bind_actions(self); }\n\
        export function widget_settings(self, el) { wasm.widget_settings(self, el); }\n\
        export function widget_on_save(self, data) { return wasm.widget_on_save(self, data) !== 0; }\n\
        export function widget_destroy(self) { wasm.widget_destroy(self); }\n\
        async function __wbg_init(m) { m = m ?? new URL('callcard_widget_bg.wasm', import.meta.url); }\n\
        export default __wbg_init;\n";
    std::fs::write(bundle.join("callcard_widget.js"), glue).unwrap();
    bundle
}

struct Built {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    report: PackageReport,
}

fn build() -> Built {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = fake_bundle(tmp.path());
    let report = assemble(&repo_root(), &bundle, &tmp.path().join("dist")).expect("assemble");
    let dir = tmp.path().to_path_buf();
    Built { _tmp: tmp, dir, report }
}

fn names_in(zip: &Path) -> Vec<String> {
    read_zip(zip).expect("readable zip").into_keys().collect()
}

/// Assembles a good package, lets `break_it` spoil the unzipped copy, zips
/// that, and returns `check_package`'s complaint (failing if there is none).
fn complaint(break_it: impl FnOnce(&Path)) -> String {
    let built = build();
    break_it(&built.report.widget_dir);
    let zip = built.dir.join("broken.zip");
    zip_dir(&built.report.widget_dir, &zip).unwrap();
    let err = check_package(&zip).expect_err("a broken package must be refused");
    let dir_err = check_dir(&built.report.widget_dir).expect_err("check_dir must refuse it too");
    let text = format!("{err:#}");
    assert_eq!(text.split_once(": ").map(|p| p.1), format!("{dir_err:#}").split_once(": ").map(|p| p.1));
    text
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

fn write_png(path: &Path, w: u32, h: u32, rgba: &[u8]) {
    std::fs::write(path, xtask::logo::encode_png(w, h, rgba).unwrap()).unwrap();
}

fn assert_mentions(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected the complaint to mention {needle:?}, got:\n{text}");
}

#[test]
fn the_real_files_and_a_bundle_make_a_valid_package() {
    let built = build();
    let report = &built.report;
    check_package(&report.zip_path).expect("the assembled package passes the checks");
    check_dir(&report.widget_dir).expect("the unzipped package passes the checks");

    assert_eq!(report.zip_path, built.dir.join("dist/widget.zip"));
    assert_eq!(report.widget_dir, built.dir.join("dist/widget"));
    assert_eq!(names_in(&report.zip_path), EXPECTED);
    assert_eq!(report.files, EXPECTED);
    // The unzipped copy holds the same files (and, by check_dir, nothing else).
    for name in EXPECTED {
        assert!(report.widget_dir.join(name).is_file(), "{name} missing from the widget dir");
    }
    // The files are the repository's, unchanged.
    let zipped = read_zip(&report.zip_path).unwrap();
    let root = repo_root();
    assert_eq!(zipped["manifest.json"], std::fs::read(root.join("manifest.json")).unwrap());
    assert_eq!(zipped["script.js"], std::fs::read(root.join("www/script.js")).unwrap());
    assert_eq!(zipped["callcard.css"], std::fs::read(root.join("www/callcard.css")).unwrap());
    assert_eq!(zipped["i18n/ru.json"], std::fs::read(root.join("i18n/ru.json")).unwrap());
    assert_eq!(zipped["images/logo_main.png"], std::fs::read(root.join("images/logo_main.png")).unwrap());
    assert_eq!(&zipped["pkg/callcard_widget_bg.wasm"][..4], b"\0asm");

    let gzipped: Vec<&str> = report.gzip_sizes.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(gzipped, ["script.js", "pkg/callcard_widget.js", "pkg/callcard_widget_bg.wasm"]);
    assert!(report.gzip_sizes.iter().all(|(_, n)| *n > 0));
    assert_eq!(report.gzip_total(), report.gzip_sizes.iter().map(|(_, n)| n).sum::<u64>());
    assert!(report.to_string().contains("total"));
}

#[test]
fn assembling_twice_gives_the_same_zip_and_drops_stale_files() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = fake_bundle(tmp.path());
    let out = tmp.path().join("dist");
    let first = assemble(&repo_root(), &bundle, &out).unwrap();
    let first_bytes = std::fs::read(&first.zip_path).unwrap();
    std::fs::write(out.join("widget/stale.txt"), "left over from an old build").unwrap();
    let second = assemble(&repo_root(), &bundle, &out).unwrap();
    assert_eq!(std::fs::read(&second.zip_path).unwrap(), first_bytes, "the zip is reproducible");
    assert!(!out.join("widget/stale.txt").exists());
    assert_eq!(names_in(&second.zip_path), EXPECTED);
}

#[test]
fn assembling_without_the_wasm_names_the_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = fake_bundle(tmp.path());
    std::fs::remove_file(bundle.join("callcard_widget_bg.wasm")).unwrap();
    let err = assemble(&repo_root(), &bundle, &tmp.path().join("dist")).expect_err("no wasm, no package");
    assert_mentions(&format!("{err:#}"), "callcard_widget_bg.wasm");
}

/// The lead's `cargo xtask test` sets CALLCARD_DIST_ZIP to the real
/// `dist/widget.zip`; without it this checks a freshly assembled package, so
/// it never passes without checking something.
#[test]
fn the_dist_package_passes_the_checks() {
    let (zip, _keep) = match std::env::var_os("CALLCARD_DIST_ZIP") {
        Some(path) => (PathBuf::from(path), None),
        None => {
            let built = build();
            (built.report.zip_path.clone(), Some(built))
        }
    };
    assert!(zip.is_file(), "{} does not exist", zip.display());
    check_package(&zip).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(names_in(&zip), EXPECTED);
}

#[test]
fn a_locale_missing_a_key_is_refused() {
    let text = complaint(|w| {
        edit_json(&w.join("i18n/tr.json"), |v| {
            v["summary"].as_object_mut().unwrap().remove("title");
        })
    });
    assert_mentions(&text, "i18n/tr.json: missing key summary.title");
}

#[test]
fn a_locale_with_an_extra_or_reshaped_key_is_refused() {
    let text = complaint(|w| {
        edit_json(&w.join("i18n/es.json"), |v| {
            v["call"]["ringtone"] = Value::from("Tono");
            v["summary"]["save"] = serde_json::json!({"label": "Guardar"});
        })
    });
    assert_mentions(&text, "i18n/es.json: extra key call.ringtone");
    assert_mentions(&text, "i18n/es.json: summary.save must be a string, not a section");
}

#[test]
fn a_translation_that_drops_a_placeholder_is_refused() {
    let text = complaint(|w| {
        edit_json(&w.join("i18n/pt.json"), |v| {
            v["call"]["incoming"] = Value::from("Chamada recebida: {numero}");
        })
    });
    assert_mentions(&text, "i18n/pt.json: call.incoming has placeholders {numero}");
}

#[test]
fn an_untranslated_copy_of_english_is_refused() {
    let text = complaint(|w| std::fs::copy(w.join("i18n/en.json"), w.join("i18n/id.json")).map(drop).unwrap());
    assert_mentions(&text, "i18n/id.json");
    assert_mentions(&text, "looks untranslated");
}

#[test]
fn a_manifest_key_missing_from_the_locales_is_refused() {
    let text = complaint(|w| {
        edit_json(&w.join("manifest.json"), |v| {
            v["settings"]["phones"]["name"] = Value::from("settings.extension");
        })
    });
    for locale in ["en", "es", "pt", "tr", "id", "ru"] {
        assert_mentions(&text, &format!("names i18n key \"settings.extension\", which i18n/{locale}.json lacks"));
    }
}

#[test]
fn a_manifest_missing_required_fields_is_refused() {
    let text = complaint(|w| {
        edit_json(&w.join("manifest.json"), |v| {
            let widget = v["widget"].as_object_mut().unwrap();
            widget.remove("init_once");
            widget.remove("installation");
            widget["interface_version"] = Value::from(1);
            widget["locale"] = serde_json::json!(["en", "es", "pt", "tr", "id"]);
        })
    });
    assert_mentions(&text, "widget.init_once is missing");
    assert_mentions(&text, "widget.installation is missing");
    assert_mentions(&text, "widget.interface_version is 1, must be 2");
    assert_mentions(&text, "widget.locale is [\"en\",\"es\",\"pt\",\"tr\",\"id\"]");
}

#[test]
fn a_manifest_without_everywhere_or_a_users_setting_is_refused() {
    let text = complaint(|w| {
        edit_json(&w.join("manifest.json"), |v| {
            v["locations"] = serde_json::json!(["lcard-1", "settings"]);
            v["settings"] =
                serde_json::json!({"login": {"name": "settings.phones", "type": "checkbox", "required": true}});
        })
    });
    assert_mentions(&text, "must include \"everywhere\"");
    assert_mentions(&text, "settings.login.type is \"checkbox\"");
    assert_mentions(&text, "no setting of type \"users\"");
}

#[test]
fn an_image_of_the_wrong_size_is_refused() {
    let text = complaint(|w| {
        write_png(&w.join("images/logo_min.png"), 80, 84, &xtask::logo::render(80, 84));
    });
    assert_mentions(&text, "images/logo_min.png is 80x84, Kommo wants 84x84");
}

#[test]
fn an_image_of_300_kb_or_more_is_refused() {
    let text = complaint(|w| {
        // Noise does not compress: 400x272 RGBA is about 425 KB.
        let mut state: u32 = 12345;
        let noise: Vec<u8> = (0..400 * 272 * 4)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        write_png(&w.join("images/logo_main.png"), 400, 272, &noise);
    });
    assert_mentions(&text, "images/logo_main.png is ");
    assert_mentions(&text, "Kommo allows less than 307200");
}

#[test]
fn a_blank_or_broken_image_is_refused() {
    let text = complaint(|w| {
        write_png(&w.join("images/logo_small.png"), 108, 108, &[0x1f, 0xc7, 0xa0, 0xff].repeat(108 * 108));
        std::fs::write(w.join("images/logo.png"), b"GIF89a not a png").unwrap();
    });
    assert_mentions(&text, "images/logo_small.png has only 1 colours");
    assert_mentions(&text, "images/logo.png is not a readable PNG");
}

#[test]
fn an_extra_or_missing_file_is_refused() {
    let text = complaint(|w| {
        std::fs::write(w.join(".DS_Store"), b"junk").unwrap();
        std::fs::write(w.join("images/tour_1_en.png"), b"junk").unwrap();
        std::fs::remove_file(w.join("i18n/id.json")).unwrap();
    });
    assert_mentions(&text, "unexpected file .DS_Store");
    assert_mentions(&text, "unexpected file images/tour_1_en.png");
    assert_mentions(&text, "missing file i18n/id.json");
}

#[test]
fn a_bundle_that_is_not_wasm_bindgen_output_is_refused() {
    let text = complaint(|w| {
        std::fs::write(w.join("pkg/callcard_widget_bg.wasm"), b"<html>404</html>").unwrap();
        let glue = std::fs::read_to_string(w.join("pkg/callcard_widget.js")).unwrap();
        std::fs::write(
            w.join("pkg/callcard_widget.js"),
            glue.replace("export function widget_on_save(", "function x("),
        )
        .unwrap();
    });
    assert_mentions(&text, "pkg/callcard_widget_bg.wasm is not a WebAssembly module");
    assert_mentions(&text, "pkg/callcard_widget.js does not export widget_on_save");
}

#[test]
fn a_package_nested_in_a_folder_is_refused() {
    // A zip of the folder instead of its contents: manifest.json not at the root.
    let built = build();
    let nested = built.dir.join("nested");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::rename(&built.report.widget_dir, nested.join("widget")).unwrap();
    let zip = built.dir.join("nested.zip");
    zip_dir(&nested, &zip).unwrap();
    let text = format!("{:#}", check_package(&zip).expect_err("nested package"));
    assert_mentions(&text, "missing file manifest.json");
    assert_mentions(&text, "unexpected file widget/manifest.json");
}
