//! The rule "dependencies point one way", checked: within every crate of the
//! workspace, no top-level module reaches back into a module that reaches
//! it (directly or through others).
//!
//! A crate here is each root file of a member: `src/lib.rs`, `src/main.rs`,
//! `src/bin/*.rs` and `src/bin/*/main.rs`. Its top-level modules are the
//! `mod x;` items of that root; the files of module `x` are `x.rs` and
//! everything under `x/`. Module `a` depends on module `b` when code in one of
//! `a`'s files names a `crate::b…` path (`use crate::b::…`, `crate::b::f()`,
//! `use crate::{b, …}`), or a name the root re-exports from `b`
//! (`crate::Backend` with `pub use backend::Backend;` in the root).
//! Comments and string literals are skipped, so a doc link is not a
//! dependency; `super::` paths stay inside their module and are not followed.
//!
//! Tarjan's algorithm finds the strongly connected components; any with more
//! than one module is a cycle, reported with the edges that close it.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Members whose cycles are reported but do not fail the check yet, and why.
/// Remove an entry once its crate is untangled.
const NOT_YET_ENFORCED: &[(&str, &str)] = &[];

/// Module name to the modules it names.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// Fails, naming every cycle, if any crate of the workspace at `root` has
/// one between its top-level modules.
pub fn check_workspace(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    let mut crates = 0;
    for member in workspace_members(root)? {
        let pending = NOT_YET_ENFORCED.iter().find(|(m, _)| *m == member).map(|(_, why)| why);
        for crate_root in crate_roots(&root.join(&member)) {
            crates += 1;
            let graph = crate_graph(&crate_root)?;
            for cycle in cycles(&graph) {
                let edges: Vec<String> = cycle
                    .iter()
                    .flat_map(|from| {
                        graph[from].iter().filter(|to| cycle.contains(*to)).map(move |to| format!("{from} → {to}"))
                    })
                    .collect();
                let problem = format!(
                    "{}: modules {{{}}} depend on each other ({})",
                    crate_root.strip_prefix(root).unwrap_or(&crate_root).display(),
                    cycle.iter().cloned().collect::<Vec<_>>().join(", "),
                    edges.join(", ")
                );
                match pending {
                    Some(why) => println!("module graph: not enforced yet ({why}): {problem}"),
                    None => problems.push(problem),
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!("module dependency cycles:\n  {}", problems.join("\n  "));
    }
    println!("module graph: {crates} crates checked, no cycles between top-level modules");
    Ok(())
}

/// The `members` of the workspace's `Cargo.toml`.
fn workspace_members(root: &Path) -> Result<Vec<String>> {
    let manifest = fs::read_to_string(root.join("Cargo.toml")).context("reading the workspace Cargo.toml")?;
    let start = manifest.find("members").context("no workspace members")?;
    let list = &manifest[start..];
    let open = list.find('[').context("members is not a list")?;
    let close = list.find(']').context("members is not a list")?;
    Ok(list[open + 1..close]
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect())
}

/// The root files of the crates of one package.
fn crate_roots(package: &Path) -> Vec<PathBuf> {
    let src = package.join("src");
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"].iter().map(|f| src.join(f)).filter(|p| p.is_file()).collect();
    if let Ok(entries) = fs::read_dir(src.join("bin")) {
        let mut bins: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .map(|p| if p.is_dir() { p.join("main.rs") } else { p })
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "rs"))
            .collect();
        bins.sort();
        roots.extend(bins);
    }
    roots
}

/// The dependencies between the top-level modules of the crate rooted at `root_file`.
pub fn crate_graph(root_file: &Path) -> Result<Graph> {
    let root_text = code_only(&read(root_file)?);
    let modules = declared_modules(&root_text);
    let reexports = root_reexports(&root_text, &modules);
    let dir = root_file.parent().context("crate root without a folder")?;
    // `src/bin/x/main.rs` and `src/lib.rs` keep modules beside them;
    // `src/bin/x.rs` would keep them in `src/bin/x/`.
    let module_dir = match root_file.file_name().and_then(|n| n.to_str()) {
        Some("lib.rs" | "main.rs" | "mod.rs") => dir.to_path_buf(),
        _ => dir.join(root_file.file_stem().unwrap_or_default()),
    };
    let mut graph = Graph::new();
    for module in &modules {
        let mut named = BTreeSet::new();
        for file in module_files(&module_dir, module) {
            for name in crate_paths(&code_only(&read(&file)?)) {
                let target = if modules.contains(&name) { Some(&name) } else { reexports.get(&name) };
                if let Some(target) = target.filter(|t| *t != module) {
                    named.insert(target.clone());
                }
            }
        }
        graph.insert(module.clone(), named);
    }
    Ok(graph)
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `x.rs` or `x/mod.rs`, and every file under `x/`.
fn module_files(dir: &Path, module: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [dir.join(format!("{module}.rs")), dir.join(module).join("mod.rs")]
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    let mut pending = vec![dir.join(module)];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = fs::read_dir(&folder) else { continue };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !files.contains(&path) {
                files.push(path);
            }
        }
    }
    files
}

/// The source with comments, string and char literals blanked out.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && matches!(next, Some('"' | '#')) && !ident_char(out.chars().last()) {
            // Raw string: r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\u{..}'), not a lifetime.
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// The `mod x;` items of a crate root (inline `mod x { … }` are part of the root).
fn declared_modules(root: &str) -> BTreeSet<String> {
    let words: Vec<&str> = root.split(|c: char| c.is_whitespace()).filter(|w| !w.is_empty()).collect();
    words
        .windows(2)
        .filter(|w| w[0] == "mod" && w[1].ends_with(';'))
        .map(|w| w[1].trim_end_matches(';').to_string())
        .collect()
}

/// Names the root re-exports from a module: `pub use config::{Config, QueueConfig};`.
fn root_reexports(root: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for statement in root.split(';') {
        let Some(start) = statement.find("use ") else { continue };
        let path = statement[start + 4..].trim().trim_start_matches("crate::").trim_start_matches("self::");
        let Some((module, rest)) = path.split_once("::") else { continue };
        if !modules.contains(module) {
            continue;
        }
        for item in rest.split([',', '{', '}']).map(str::trim).filter(|i| !i.is_empty()) {
            let name = match item.split_once(" as ") {
                Some((_, alias)) => alias.trim(),
                None => item.rsplit("::").next().unwrap_or(item),
            };
            names.insert(name.to_string(), module.to_string());
        }
    }
    names
}

/// The first segment after every `crate::` (and each of `crate::{a, b::c}`).
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let boundary = !ident_char(rest[..at].chars().last()) && !rest[..at].ends_with('$');
        rest = &rest[at + "crate::".len()..];
        if !boundary {
            continue;
        }
        let after = rest.trim_start();
        if let Some(group) = after.strip_prefix('{') {
            // First-level items of the group.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.extend(first_segment(&item));
        } else {
            found.extend(first_segment(after));
        }
    }
    found
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty() && name != "self").then_some(name)
}

/// The strongly connected components with more than one module (Tarjan).
pub fn cycles(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct Search<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.graph.contains_key(next) {
                    continue;
                }
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = BTreeSet::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.insert(top.to_string());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut search = Search {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !search.index.contains_key(node.as_str()) {
            search.visit(node);
        }
    }
    search.found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Graph {
        edges.iter().map(|(from, to)| (from.to_string(), to.iter().map(|t| t.to_string()).collect())).collect()
    }

    #[test]
    fn finds_direct_and_indirect_cycles_only() {
        let acyclic = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
        assert!(cycles(&acyclic).is_empty());
        let cyclic = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["e"]), ("e", &["d"]), ("f", &[])]);
        let found = cycles(&cyclic);
        assert_eq!(found.len(), 2);
        assert!(found.iter().any(|c| c.len() == 3 && c.contains("a")));
        assert!(found.iter().any(|c| c.len() == 2 && c.contains("d")));
    }

    #[test]
    fn reads_paths_from_code_not_from_comments_or_strings() {
        let code = code_only(
            r##"
            //! See [`crate::ops`].
            use crate::{store::{self, Store}, hub};
            use crate::config::Config;
            /* crate::metrics */
            fn f() { let s = "crate::queue"; let r = r#"crate::ticket"#; crate::sync::run(); let c = 'x'; }
            "##,
        );
        let mut paths = crate_paths(&code);
        paths.sort();
        assert_eq!(paths, ["config", "hub", "store", "sync"]);
    }

    #[test]
    fn root_reexports_resolve_to_their_module() {
        let root = "mod backend;\npub mod config;\npub use backend::Backend;\npub use config::{AccountSetup, Config as Settings};";
        let modules = declared_modules(root);
        assert_eq!(modules.iter().map(String::as_str).collect::<Vec<_>>(), ["backend", "config"]);
        let names = root_reexports(root, &modules);
        assert_eq!(names["Backend"], "backend");
        assert_eq!(names["AccountSetup"], "config");
        assert_eq!(names["Settings"], "config");
    }
}
