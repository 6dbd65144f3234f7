//! The one error rule (`src/error.rs`): an error's message describes its own layer and reaches
//! its cause through `source()`, never printing it as well. This test reads every
//! `#[error("...")]` under `src/`, finds the item it describes (an enum variant or a struct) and
//! its source field (named `source`, or marked `#[from]` / `#[source]`), and fails when the
//! message interpolates that field, naming the file and line.
use std::path::{Path, PathBuf};

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

/// The text from `open` (an opening bracket) to its closing bracket, inclusive.
fn balanced(text: &str, open: usize) -> &str {
    let bytes = text.as_bytes();
    let (up, down) = match bytes[open] {
        b'(' => (b'(', b')'),
        b'{' => (b'{', b'}'),
        b'[' => (b'[', b']'),
        _ => return "",
    };
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if b == b'"' {
            in_string = true;
        } else if b == up {
            depth += 1;
        } else if b == down {
            depth -= 1;
            if depth == 0 {
                return &text[open..=i];
            }
        }
    }
    &text[open..]
}

/// The item after an `#[error(...)]` attribute: skips doc comments and other attributes, then
/// takes the variant or struct head up to its fields (`{ .. }`, `( .. )` or none).
fn described_item(rest: &str) -> &str {
    let mut at = 0;
    loop {
        let line_end = rest[at..].find('\n').map_or(rest.len(), |n| at + n + 1);
        let line = rest[at..line_end].trim_start();
        if line.starts_with("///") || line.starts_with("//") || line.is_empty() {
            at = line_end;
        } else if line.starts_with("#[") {
            let open = at + rest[at..].find('[').unwrap();
            let end = open + balanced(rest, open).len();
            at = rest[end..].find('\n').map_or(rest.len(), |n| end + n + 1);
        } else {
            break;
        }
    }
    let body = &rest[at..];
    let stop = body.find([',', '{', '(', ';']).unwrap_or(body.len());
    if stop < body.len() && matches!(body.as_bytes()[stop], b'{' | b'(') {
        &body[..stop + balanced(body, stop).len()]
    } else {
        &body[..stop]
    }
}

/// The names by which a message can show the item's source field: `source`, or the field
/// marked `#[from]`/`#[source]` (`0`, `1`.. for tuple fields).
fn source_names(item: &str) -> Vec<String> {
    let Some(open) = item.find(['{', '(']) else {
        return Vec::new();
    };
    let tuple = item.as_bytes()[open] == b'(';
    let fields = &item[open + 1..item.len().saturating_sub(1)];
    let mut names = Vec::new();
    let mut depth = 0i32;
    let mut field = String::new();
    let mut index = 0;
    let mut push = |field: &str, index: usize| {
        let marked = field.contains("#[from]") || field.contains("#[source]");
        let cleaned: String = field
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let name = if tuple {
            index.to_string()
        } else {
            let head = cleaned.split(':').next().unwrap_or("");
            head.rsplit(|c: char| c.is_whitespace() || c == ']')
                .next()
                .unwrap_or("")
                .to_string()
        };
        if marked || (!tuple && name == "source") {
            names.push(name);
        }
    };
    for c in fields.chars() {
        match c {
            '(' | '<' | '[' | '{' => depth += 1,
            ')' | '>' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                push(&field, index);
                index += 1;
                field.clear();
                continue;
            }
            _ => {}
        }
        field.push(c);
    }
    if !field.trim().is_empty() {
        push(&field, index);
    }
    names
}

#[test]
fn no_error_message_prints_its_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (at, _) in text.match_indices("#[error(") {
            let attribute = balanced(&text, at + "#[error".len());
            if attribute.contains("transparent") {
                continue;
            }
            let after = at + "#[error".len() + attribute.len();
            let item = described_item(&text[after..]);
            checked += 1;
            for name in source_names(item) {
                let shown = [
                    format!("{{{name}}}"),
                    format!("{{{name}:"),
                    format!(".{name}"),
                ];
                if shown.iter().any(|s| attribute.contains(s.as_str())) {
                    let line = text[..at].lines().count() + 1;
                    let path = file.strip_prefix(root).unwrap().display().to_string();
                    broken.push(format!("{path}:{line}: {attribute} prints `{name}`"));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} error messages found: is the scan broken?"
    );
    assert!(
        broken.is_empty(),
        "error messages that print their source (drop it from the message; `zhishi::error::report` prints the chain):\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_scan_finds_a_printed_source() {
    let item = described_item("\n    /// Doc.\n    Io {\n        path: PathBuf,\n        #[source]\n        source: std::io::Error,\n    },\n");
    assert_eq!(source_names(item), ["source"]);
    let tuple = described_item(" Candle(#[from] candle_core::Error),\n");
    assert_eq!(source_names(tuple), ["0"]);
    let plain = described_item(" Input(String),\n");
    assert!(source_names(plain).is_empty());
}
