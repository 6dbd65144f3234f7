//! "Bounded by construction; every error names its file and line": each size, count and range
//! read from input is checked before anything is allocated or trained, and the refusal names
//! the input (file and line, `--set key=value`, or stdin line) and the accepted range. One test
//! per item of the safety issue, named after it; one module per command or reader.

mod compare;
mod config;
mod encode;
mod fill_mask;
mod kbert_svg;
mod model_load;
mod text_files;
mod transe;

pub use std::path::{Path, PathBuf};
pub use std::process::Output;

pub use assert_cmd::Command;
pub use candle_core::{DType, Device};
pub use candle_nn::{VarBuilder, VarMap};
pub use zhishi::model::BertConfig;

pub use crate::support::ner_workspace::Workspace;
use crate::support::tiny;

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
    std::fs::write(path, tiny::char_vocab(chars).join("\n") + "\n").unwrap();
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

/// A masked LM (encoder + `cls.predictions`) with random weights over `vocab_chars`.
pub fn write_masked_lm(dir: &Path, vocab_chars: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = BertConfig {
        num_hidden_layers: 1,
        ..tiny::tiny_config(tiny::SPECIALS.len() + vocab_chars.chars().count(), 32)
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    zhishi::model::mlm::BertForMaskedLm::load(vb, &cfg).unwrap();
    zhishi::model::mlm::save_masked_lm(&varmap, dir).unwrap();
    tiny::write_config(dir, &cfg);
    write_vocab(&dir.join("vocab.txt"), vocab_chars);
}
