//! The layering of the crate, enforced: every top-level module of `src/` may reference only the
//! modules the layering list allows it, and no two modules reference each other, directly or
//! around a loop. The list is kept in ONE place, the fenced `text` block of the "# Layout"
//! section of `src/lib.rs`; this test reads it from there, so the documentation and the check
//! cannot disagree.
//!
//! What must always hold: a module of `src/lib.rs` without a line in the list fails (a new
//! module states its place when it is added); a module may name only modules on earlier lines
//! (so the list itself is a layering, lowest first, and has no cycle); a reference is any
//! `crate::name` path (including `crate::{a, b}` groups) or a `super::` path that climbs out of
//! the module to a sibling, in code or tests; comment lines do not count (prose may mention any
//! module).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs");
const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// The modules `src/lib.rs` declares (`pub mod x;` / `mod x;`).
fn declared_modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .map(str::trim)
        .filter_map(|l| {
            let rest = l
                .strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))?;
            Some(rest.strip_suffix(';')?.trim().to_owned())
        })
        .collect()
}

/// The layering list: `(module, allowed modules)` in order, from the first ```` ```text ````
/// block after the "# Layout" heading of lib.rs's doc comment.
fn layering_list(lib: &str) -> Vec<(String, Vec<String>)> {
    let doc: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let layout = doc
        .iter()
        .position(|l| l.trim() == "# Layout")
        .expect("lib.rs has a \"# Layout\" doc section");
    let open = layout
        + doc[layout..]
            .iter()
            .position(|l| l.trim() == "```text")
            .expect("the Layout section has a ```text block with the layering list");
    let mut out = Vec::new();
    for line in &doc[open + 1..] {
        let line = line.trim();
        if line == "```" {
            return out;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, allowed) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("layering line {line:?} is not `module: allowed ...`"));
        out.push((
            name.trim().to_owned(),
            allowed.split_whitespace().map(str::to_owned).collect(),
        ));
    }
    panic!("the layering block in lib.rs is not closed");
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    &s[..s.find(|c: char| !is_ident(c)).unwrap_or(s.len())]
}

/// The top-level modules `code` names through `crate::` (and `crate::{..}` groups), and through
/// `super::` chains of exactly `depth` steps (which climb from a file at that depth to the crate
/// root).
fn references(code: &str, depth: usize) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with(|c: char| is_ident(c) || c == ':' || c == '$') {
            continue; // `$crate::`, `foo_crate::` or a longer path
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: at brace depth 0, after `{` or `,`.
            let mut level = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => level += 1,
                    '}' if level == 0 => break,
                    '}' => level -= 1,
                    ',' if level == 0 => start = true,
                    c if start && is_ident(c) => {
                        out.insert(ident(&group[j..]).to_owned());
                        start = false;
                    }
                    c if !c.is_whitespace() => start = false,
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest).to_owned());
        }
    }
    let climb = "super::".repeat(depth);
    for (i, _) in code.match_indices(&climb) {
        if code[..i].ends_with(|c: char| is_ident(c) || c == ':') {
            continue;
        }
        let rest = &code[i + climb.len()..];
        if !rest.starts_with("super::") {
            out.insert(ident(rest).to_owned());
        }
    }
    out
}

/// For each top-level module, the other top-level modules it references, with the files.
fn module_graph(
    modules: &BTreeSet<String>,
) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(SRC).unwrap();
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let top = parts[0].trim_end_matches(".rs").to_owned();
        if !modules.contains(&top) {
            continue; // lib.rs, main.rs (the binary)
        }
        // src/x.rs and src/x/mod.rs are at depth 1, src/x/y.rs at depth 2, and so on.
        let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod.rs"));
        let text = std::fs::read_to_string(&file).unwrap();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for name in references(&code, depth) {
            if name != top && modules.contains(&name) {
                graph
                    .entry(top.clone())
                    .or_default()
                    .entry(name)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    graph
}

/// A cycle of the graph, if any, as the modules around it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node.as_str()) {
            if let Some(c) = visit(node, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn the_layering_list_covers_every_module_and_is_a_layering() {
    let lib = std::fs::read_to_string(LIB).unwrap();
    let modules = declared_modules(&lib);
    let list = layering_list(&lib);
    let mut seen = BTreeSet::new();
    let mut faults = Vec::new();
    for (name, allowed) in &list {
        if !modules.contains(name) {
            faults.push(format!("{name}: listed but not a module of lib.rs"));
        }
        for a in allowed {
            if !seen.contains(a) {
                faults.push(format!(
                    "{name}: may use {a}, which is not on an earlier line"
                ));
            }
        }
        if !seen.insert(name.clone()) {
            faults.push(format!("{name}: listed twice"));
        }
    }
    for m in &modules {
        if !seen.contains(m) {
            faults.push(format!(
                "{m}: a module of lib.rs with no line in the layering list"
            ));
        }
    }
    assert!(
        faults.is_empty(),
        "layering list in lib.rs:\n{}",
        faults.join("\n")
    );
}

#[test]
fn modules_reference_only_what_the_layering_allows() {
    let lib = std::fs::read_to_string(LIB).unwrap();
    let modules = declared_modules(&lib);
    let allowed: BTreeMap<String, BTreeSet<String>> = layering_list(&lib)
        .into_iter()
        .map(|(m, a)| (m, a.into_iter().collect()))
        .collect();
    let graph = module_graph(&modules);
    assert!(
        graph.len() >= 5,
        "the reader found almost no references; is it reading src/? {graph:?}"
    );
    let mut faults = Vec::new();
    for (from, tos) in &graph {
        for (to, files) in tos {
            let ok = allowed.get(from).is_some_and(|a| a.contains(to));
            if !ok {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                faults.push(format!("{from} -> {to} (in {})", files.join(", ")));
            }
        }
    }
    assert!(
        faults.is_empty(),
        "references the layering list in lib.rs does not allow:\n{}",
        faults.join("\n")
    );
}

#[test]
fn no_cycle_between_modules() {
    let lib = std::fs::read_to_string(LIB).unwrap();
    let modules = declared_modules(&lib);
    let graph: BTreeMap<String, BTreeSet<String>> = module_graph(&modules)
        .into_iter()
        .map(|(m, tos)| (m, tos.into_keys().collect()))
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "modules reference each other in a loop: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_reader_sees_the_paths_it_must() {
    let refs = references(
        "use crate::store::{MessageId, PartId};\nuse crate::{api::x, number, pdu::{a, b}};\n\
         let t = super::super::ids::after(now, d); fn f() { $crate::nope(); }",
        2,
    );
    let want: BTreeSet<String> = ["store", "api", "number", "pdu", "ids"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(refs, want);
    let cycle = find_cycle(
        &[("a", "b"), ("b", "c"), ("c", "a")]
            .into_iter()
            .map(|(x, y)| (x.to_owned(), BTreeSet::from([y.to_owned()])))
            .collect(),
    );
    assert_eq!(cycle.unwrap().len(), 4);
}
