//! "Bounded by construction; every error names its file and line": each size, count and range
//! read from input is checked before anything is allocated or trained, and the refusal names
//! the input (file and line, `--set key=value`, or stdin line) and the accepted range. One test
//! per item of the safety issue, named after it; one module per command or reader.

mod compare;
mod config;
mod encode;
mod kbert_svg;
mod model_load;

pub use std::path::{Path, PathBuf};
pub use std::process::Output;

pub use assert_cmd::Command;

#[path = "../support/ner_workspace.rs"]
mod ner_workspace;
pub use ner_workspace::Workspace;

pub fn zhishi() -> Command {
    Command::cargo_bin("zhishi").unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn encoder_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoder/tiny-bert")
}

/// A `vocab.txt` of the special tokens and `chars`.
pub fn write_vocab(path: &Path, chars: &str) {
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(String::from)
        .to_vec();
    vocab.extend(chars.chars().map(String::from));
    std::fs::write(path, vocab.join("\n") + "\n").unwrap();
}

pub fn kbert_line(text: &str) -> String {
    serde_json::json!({"text": text, "tree": [{"word": text, "injected": []}]}).to_string() + "\n"
}

/// `zhishi train` of the workspace's NER config with `sets`.
pub fn train(ws: &Workspace, sets: &[&str]) -> Output {
    let mut cmd = zhishi();
    cmd.arg("train").arg(ws.config());
    for s in sets {
        cmd.args(["--set", s]);
    }
    cmd.output().unwrap()
}
