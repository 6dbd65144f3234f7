//! The README's and docs' shell examples run as written and print what the docs say they print.
//!
//! A fenced `bash` block preceded by the line `<!-- runs -->` is run, one command line at a
//! time (a line ending in `\` continues), in a scratch directory that holds the checkout's
//! `pipelines/`, `kg/` and `corpora/` (symlinks), with the built `zhishi` first on the `PATH`.
//! The blocks of one file share the directory, in order, so a later block uses what an earlier
//! one made. A block preceded by `<!-- file: NAME -->` is written to `NAME` there first (the
//! TOML files the walk-throughs ask the reader to save). Skipped lines: comments, `cargo ...`
//! (the build itself), `zhishi serve` (it does not return), `export`/`bash scripts/...`
//! set-up that needs the network.
//!
//! A command's trailing comment that starts with `{` is the output the docs promise: its pieces
//! between `...` must appear, in order, in what the command printed (stdout, then stderr). So
//! must each line of a block preceded by `<!-- prints -->`, in what the last command printed.
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What a marked block holds.
enum Block {
    /// Command lines to run.
    Run { line: usize, commands: Vec<String> },
    /// A file to write before the next run.
    File { name: String, text: String },
    /// Lines the last command's output holds.
    Prints { line: usize, lines: Vec<String> },
}

/// The marked blocks of a Markdown file, in order.
fn blocks(markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        let marker = lines[i].trim();
        let fence = lines[i + 1].trim_start();
        let file = marker
            .strip_prefix("<!-- file: ")
            .and_then(|m| m.strip_suffix(" -->"));
        let known = marker == "<!-- runs -->" || marker == "<!-- prints -->" || file.is_some();
        if known && fence.starts_with("```") {
            let start = i + 2;
            let end = (start..lines.len())
                .find(|&j| lines[j].trim_start().starts_with("```"))
                .unwrap_or_else(|| panic!("line {}: unclosed block", i + 2));
            let body = &lines[start..end];
            match file {
                None if marker == "<!-- prints -->" => out.push(Block::Prints {
                    line: start + 1,
                    lines: body.iter().map(|l| l.to_string()).collect(),
                }),
                Some(name) => out.push(Block::File {
                    name: name.to_string(),
                    text: body.join("\n") + "\n",
                }),
                None => out.push(Block::Run {
                    line: start + 1,
                    commands: commands(body),
                }),
            }
            i = end + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// The command lines of a block, continuations joined, skipped lines left out.
fn commands(body: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in body {
        let line = line.trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let command = std::mem::take(&mut pending);
        let trimmed = command.trim_start();
        let skipped = trimmed.is_empty()
            || trimmed.starts_with('#')
            || trimmed.starts_with("cargo ")
            || trimmed.starts_with("zhishi serve")
            || trimmed.starts_with("export ")
            || trimmed.starts_with("bash scripts/");
        if !skipped {
            out.push(command);
        }
    }
    out
}

/// The output a command's trailing `# {...}` comment promises, as its `...`-separated pieces.
fn promised(command: &str) -> Option<Vec<String>> {
    let (_, comment) = command
        .split_once("  # ")
        .or_else(|| command.split_once(" # "))?;
    let comment = comment.trim();
    if !comment.starts_with('{') {
        return None;
    }
    // The promise ends at `;` (what follows is prose) or at the end of the line.
    let promise = comment.split("; ").next().unwrap_or(comment);
    Some(
        promise
            .split("...")
            .map(|p| p.trim_matches(',').to_string())
            .filter(|p| !p.is_empty() && p != "}")
            .collect(),
    )
}

fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["pipelines", "kg", "corpora"] {
        std::os::unix::fs::symlink(repo().join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn path_with_zhishi() -> std::ffi::OsString {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_zhishi"));
    let mut paths = vec![bin.parent().unwrap().to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

/// Runs the marked blocks of `doc` (relative to the checkout); returns the commands run.
fn run_doc(doc: &str) -> usize {
    let text = std::fs::read_to_string(repo().join(doc)).unwrap();
    let dir = scratch();
    let mut ran = 0;
    let mut last = String::new();
    for block in blocks(&text) {
        match block {
            Block::Prints { line, lines } => {
                for (k, text) in lines.iter().enumerate() {
                    let pieces: Vec<String> = text
                        .split("...")
                        .map(|p| p.trim_matches(',').to_string())
                        .filter(|p| !p.trim().is_empty() && p != "}")
                        .collect();
                    let at = format!("{doc}:{}: the command before", line + k);
                    assert_in_order(&pieces, &last, &at);
                }
            }
            Block::File { name, text } => {
                let path = dir.path().join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            Block::Run { line, commands } => {
                for command in commands {
                    let out = Command::new("bash")
                        .args(["-o", "pipefail", "-c", &command])
                        .current_dir(dir.path())
                        .env("PATH", path_with_zhishi())
                        .env("RUST_LOG", "warn")
                        .env_remove("ZHISHI_PROGRESS_EVERY")
                        .output()
                        .unwrap();
                    let printed = format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    assert!(
                        out.status.success(),
                        "{doc}:{line}: `{command}` failed:\n{printed}"
                    );
                    if let Some(pieces) = promised(&command) {
                        assert_in_order(&pieces, &printed, &format!("{doc}:{line}: `{command}`"));
                    }
                    last = printed;
                    ran += 1;
                }
            }
        }
    }
    ran
}

/// Fails, naming `at`, unless `pieces` occur in `printed` in this order.
fn assert_in_order(pieces: &[String], printed: &str, at: &str) {
    let mut rest = printed;
    for piece in pieces {
        let found = rest.find(piece.as_str()).unwrap_or_else(|| {
            panic!("{at} promises {piece:?} (in this order), which its output lacks:\n{printed}")
        });
        rest = &rest[found + piece.len()..];
    }
}

#[test]
fn the_readme_shell_examples_run_as_written() {
    assert!(
        run_doc("README.md") >= 5,
        "README.md lost its runnable examples"
    );
}

#[test]
fn the_docs_shell_examples_run_as_written() {
    let mut ran = 0;
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            let rel = path
                .strip_prefix(repo())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            ran += run_doc(&rel);
        }
    }
    assert!(ran >= 3, "the docs lost their runnable examples");
}

#[test]
fn promises_are_the_json_before_the_prose() {
    assert_eq!(
        promised(
            r#"zhishi kg stats --db my-kg   # {"entities":2,"triples":4,...}; --verify checks"#
        ),
        Some(vec![r#"{"entities":2,"triples":4"#.to_string()])
    );
    assert_eq!(
        promised("zhishi kg import --db k k.tsv  # creates the store"),
        None
    );
    assert_eq!(
        commands(&["a \\", "  b", "# c", "cargo build", "zhishi serve x"]),
        ["a    b"]
    );
}
