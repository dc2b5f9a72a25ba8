//! Every import in src/ points down the layer order written in
//! docs/architecture.md (the ```layers block), and no two parts of the
//! code import each other, directly or around a circle.
//!
//! The check reads the sources: each `crate::…`, `super::…` and `self::…`
//! path in a file is resolved to the module it names, and that module to
//! its part (the longest prefix listed in the layer table).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The parts whose files may still import each other in a circle, with
/// the reason. Each entry is debt: remove it when its files are untangled.
const FILE_CYCLES_ALLOWED: &[(&str, &str)] = &[];

struct Layers {
    /// Part (module path prefix) → layer number (1 = top).
    parts: BTreeMap<String, usize>,
}

impl Layers {
    fn load(root: &Path) -> Self {
        let doc = std::fs::read_to_string(root.join("docs/architecture.md"))
            .expect("docs/architecture.md");
        let block = doc
            .split("```layers\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/architecture.md has a ```layers block");
        let mut parts = BTreeMap::new();
        for line in block.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            let mut words = line.split_whitespace();
            let Some(n) = words.next() else { continue };
            let n: usize = n.parse().expect("a layer line starts with its number");
            for part in words {
                assert!(
                    parts.insert(part.to_owned(), n).is_none(),
                    "{part} is listed twice in the layer table"
                );
            }
        }
        Self { parts }
    }

    /// The part a module belongs to: the longest listed prefix.
    fn part_of(&self, module: &str) -> Option<&str> {
        let mut best: Option<&str> = None;
        for part in self.parts.keys() {
            let matches = module == part || module.starts_with(&format!("{part}::"));
            if matches && best.is_none_or(|b| part.len() > b.len()) {
                best = Some(part);
            }
        }
        best
    }
}

/// `src/chat/discord/render.rs` → `chat::discord::render`; `lib.rs` and
/// `main.rs` → `crate`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("a file under src/");
    let mut segs: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if segs.last().is_some_and(|l| l == "mod") {
        segs.pop();
    }
    if segs == ["lib"] || segs == ["main"] {
        return "crate".into();
    }
    segs.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code without comments, string and char literals, and inline
/// `#[cfg(test)]` modules, so that paths in docs and messages are not
/// taken for imports (and a test module's `super` is not its parent's).
fn code_only(text: &str) -> String {
    strip_inline_tests(&strip_literals(text))
}

fn strip_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == 'r' && (i == 0 || !ident(chars[i - 1])) && matches!(next, Some('"') | Some('#')) {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                j += 1;
                while j < chars.len() {
                    if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
                continue;
            }
        }
        if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
            continue;
        }
        if c == '\'' {
            // A char literal ('x', '\n', '\u{1F6A8}'); a lifetime has no closing quote.
            if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn strip_inline_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let is_inline_mod = trimmed.starts_with("mod ")
            && trimmed
                .find(['{', ';'])
                .is_some_and(|k| trimmed.as_bytes()[k] == b'{');
        if !is_inline_mod {
            rest = after;
            continue;
        }
        let open = after.find('{').unwrap_or(0);
        let mut depth = 0;
        let mut end = after.len();
        for (k, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Expands `a::{b, c::{d}}` into `a::b`, `a::c::d`.
fn expand(path: &str) -> Vec<String> {
    let Some(open) = path.find('{') else {
        return vec![path.trim().trim_end_matches("::").to_owned()];
    };
    let prefix = &path[..open];
    let inner = &path[open + 1..path.rfind('}').unwrap_or(path.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .flat_map(|item| expand(&format!("{prefix}{item}")))
        .collect()
}

/// Every path in `code` that starts with `crate::`, `super::` or `self::`,
/// with brace groups expanded.
fn paths(code: &str) -> Vec<String> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at = ["crate::", "super::", "self::"]
            .iter()
            .find(|p| code[i..].starts_with(**p));
        let preceded = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let (Some(_), false) = (at, preceded) else {
            i += 1;
            continue;
        };
        let mut j = i;
        let mut depth = 0;
        while j < bytes.len() {
            let c = bytes[j] as char;
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                _ if depth > 0 => {}
                c if c.is_ascii_alphanumeric() || c == '_' || c == ':' => {}
                _ => break,
            }
            j += 1;
            if depth == 0 && bytes[j - 1] == b'}' {
                break;
            }
        }
        out.extend(expand(&code[i..j]));
        i = j.max(i + 1);
    }
    out
}

/// A path as an absolute module path (`crate::` dropped), given the module
/// it is written in.
fn absolute(path: &str, here: &str) -> String {
    let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<&str> = if here == "crate" {
        Vec::new()
    } else {
        here.split("::").collect()
    };
    loop {
        match segs.first() {
            Some(&"crate") => {
                base.clear();
                segs.remove(0);
            }
            Some(&"self") => {
                segs.remove(0);
            }
            Some(&"super") => {
                base.pop();
                segs.remove(0);
            }
            _ => break,
        }
    }
    base.extend(segs);
    base.join("::")
}

struct Graph {
    /// (from part, to part) → an example (file, path) that makes the edge.
    part_edges: BTreeMap<(String, String), (String, String)>,
    /// file module → modules it imports (resolved to known modules).
    file_edges: BTreeMap<String, BTreeSet<String>>,
    upward: Vec<String>,
    unlisted: BTreeSet<String>,
}

fn build(root: &Path) -> (Layers, Graph) {
    let layers = Layers::load(root);
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut g = Graph {
        part_edges: BTreeMap::new(),
        file_edges: BTreeMap::new(),
        upward: Vec::new(),
        unlisted: BTreeSet::new(),
    };
    for file in &files {
        let here = module_of(&src, file);
        if here == "crate" {
            continue; // lib.rs and main.rs declare and wire everything
        }
        let Some(from) = layers.part_of(&here) else {
            g.unlisted.insert(here.clone());
            continue;
        };
        let text = std::fs::read_to_string(file).expect("readable source");
        for p in paths(&code_only(&text)) {
            let abs = absolute(&p, &here);
            // The longest known module the path names.
            let mut target = abs.as_str();
            while !modules.contains(target) {
                match target.rfind("::") {
                    Some(k) => target = &target[..k],
                    None => break,
                }
            }
            if !modules.contains(target) || target == here {
                continue;
            }
            g.file_edges
                .entry(here.clone())
                .or_default()
                .insert(target.to_owned());
            let Some(to) = layers.part_of(target) else {
                g.unlisted.insert(target.to_owned());
                continue;
            };
            if to == from {
                continue;
            }
            let rel = file
                .strip_prefix(root)
                .unwrap_or(file)
                .display()
                .to_string();
            if layers.parts[to] < layers.parts[from] {
                g.upward.push(format!(
                    "{rel}: `{p}` reaches up from {from} (layer {}) to {to} (layer {})",
                    layers.parts[from], layers.parts[to]
                ));
            }
            g.part_edges
                .entry((from.to_owned(), to.to_owned()))
                .or_insert((rel, p));
        }
    }
    (layers, g)
}

/// A cycle in a directed graph, if there is one (depth-first search).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_owned(), 1);
        stack.push(n.to_owned());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if !state.contains_key(n.as_str()) {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, edges, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_module_is_in_the_layer_table() {
    let (_, g) = build(&root());
    assert!(
        g.unlisted.is_empty(),
        "modules missing from docs/architecture.md's layer table: {:?}",
        g.unlisted
    );
}

#[test]
fn no_import_points_up_the_layers() {
    let (_, g) = build(&root());
    assert!(g.upward.is_empty(), "{}", g.upward.join("\n"));
}

#[test]
fn no_two_parts_import_each_other() {
    let (_, g) = build(&root());
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in g.part_edges.keys() {
        edges.entry(from.clone()).or_default().insert(to.clone());
    }
    if let Some(cycle) = find_cycle(&edges) {
        let why: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                let (file, path) = &g.part_edges[&(w[0].clone(), w[1].clone())];
                format!("{} → {} ({file}: `{path}`)", w[0], w[1])
            })
            .collect();
        panic!("import circle between parts:\n{}", why.join("\n"));
    }
}

#[test]
fn no_file_imports_around_a_circle() {
    let (layers, g) = build(&root());
    let allowed = |m: &str| {
        layers
            .part_of(m)
            .is_some_and(|p| FILE_CYCLES_ALLOWED.iter().any(|(a, _)| *a == p))
    };
    let edges: BTreeMap<String, BTreeSet<String>> = g
        .file_edges
        .iter()
        .filter(|(m, _)| !allowed(m))
        .map(|(m, to)| {
            (
                m.clone(),
                to.iter().filter(|t| !allowed(t)).cloned().collect(),
            )
        })
        .collect();
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import circle between files: {}", cycle.join(" → "));
    }
}

#[test]
fn the_checker_sees_grouped_relative_and_inline_paths() {
    let code = code_only(
        "use crate::{chat::{Button, Message}, store};\n\
         // use crate::engine::Engine;\n\
         let s = \"crate::config\"; let c = '\"'; let r = r#\"crate::x\"#;\n\
         fn f<'a>() -> super::Outcome { crate::format::number(1.0) }\n\
         #[cfg(test)]\nmod tests { use super::*; use crate::engine::Engine; }",
    );
    let found = paths(&code);
    assert_eq!(
        found,
        vec![
            "crate::chat::Button",
            "crate::chat::Message",
            "crate::store",
            "super::Outcome",
            "crate::format::number",
        ]
    );
    assert_eq!(
        absolute(
            "super::super::super::chat::Message",
            "engine::actions::throttles"
        ),
        "chat::Message"
    );
    let mut edges = BTreeMap::new();
    edges.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    edges.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert!(find_cycle(&edges).is_some());
}
