//! The source layers import only downwards (README "Layout"): kg/config/doc/model ->
//! text -> knowledge -> train -> stages -> pipeline -> corpus/serve -> cli. This test reads
//! every file under `src/`, collects the `crate::MODULE` paths its code names (doc comments
//! excluded), and fails on an import of a higher layer, and on a cycle between modules of
//! one layer, naming the files.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of each top-level module (`src/X.rs` or `src/X/`).
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        "kg" | "config" | "doc" | "error" | "files" | "model" | "textfile" => 0,
        "text" => 1,
        "knowledge" => 2,
        "train" => 3,
        "stages" => 4,
        "pipeline" => 5,
        "corpus" | "serve" => 6,
        // The configuration reference describes every layer's config structs for the CLI
        // (`zhishi init`) and the docs test; nothing below the CLI uses it.
        "reference" | "cli" => 7,
        _ => return None,
    })
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

/// The top-level modules named as `crate::NAME` in the code of `text` (comments skipped).
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                // `crate::{a, b::c}` on one line: each item's first segment.
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    if !name.is_empty() {
                        out.insert(name.to_string());
                    }
                }
            }
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

#[test]
fn every_source_layer_imports_only_downwards_and_no_layer_has_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 50,
        "found only {} files under src",
        files.len()
    );
    let mut upward = Vec::new();
    // Same-layer edges between different modules, with a file that makes each.
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        let Some(own) = layer(&module) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for other in named_modules(&text) {
            let Some(theirs) = layer(&other) else {
                continue;
            };
            if other == module {
                continue;
            }
            if theirs > own {
                upward.push(format!("src/{} imports crate::{other}", rel.display()));
            } else if theirs == own {
                edges
                    .entry((module.clone(), other))
                    .or_insert_with(|| format!("src/{}", rel.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports of a higher layer:\n  {}",
        upward.join("\n  ")
    );
    let cycles: Vec<String> = edges
        .iter()
        .filter(|((a, b), _)| edges.contains_key(&(b.clone(), a.clone())))
        .map(|((a, b), file)| format!("{a} -> {b} ({file})"))
        .collect();
    assert!(
        cycles.is_empty(),
        "modules of one layer import each other:\n  {}",
        cycles.join("\n  ")
    );
}

#[test]
fn the_scanner_sees_code_and_skips_comments() {
    let text = "use crate::text::Linker;\n/// see [`crate::cli`]\nlet x = crate::model::load(); // crate::serve\nuse crate::{kg::Store, train};\n";
    let found = named_modules(text);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["kg", "model", "text", "train"]
    );
}
