//! Every source path the docs name exists: a `src/...` or `tests/...` path in backticks in
//! `README.md` or `docs/*.md` (a file with an extension, or a folder ending in `/`) must be in
//! the repository, so the docs never send a reader to a file that moved.
use std::path::Path;

fn named_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, piece) in text.split('`').enumerate() {
        if i % 2 == 0 {
            continue; // outside backticks
        }
        let candidate = piece.trim();
        let is_source = candidate.starts_with("src/") || candidate.starts_with("tests/");
        // Lower-case only: `tests/AREA/main.rs` is a pattern, not a path.
        let plain = candidate
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "/_.-".contains(c));
        let shaped = candidate.ends_with('/')
            || Path::new(candidate)
                .extension()
                .is_some_and(|e| e == "rs" || e == "md" || e == "html" || e == "py" || e == "sh");
        if is_source && plain && shaped {
            out.push(candidate.to_string());
        }
    }
    out
}

#[test]
fn every_source_path_the_docs_name_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    let mut missing = Vec::new();
    let mut named = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for path in named_paths(&text) {
            named += 1;
            if !root.join(&path).exists() {
                missing.push(format!(
                    "{}: {path}",
                    file.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        named > 20,
        "the docs name only {named} source paths: is the scan broken?"
    );
    assert!(
        missing.is_empty(),
        "paths named in the docs that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_scan_finds_paths_in_backticks_only() {
    let text =
        "see `src/doc.rs` and `tests/layers.rs`, not src/x.rs or `cargo test` or `src/a b.rs`";
    assert_eq!(named_paths(text), ["src/doc.rs", "tests/layers.rs"]);
}
