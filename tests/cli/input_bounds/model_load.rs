//! Opening a model with its tokenizer and settings (H2, vocabulary and positions): what would fail
//! document by document is refused at load, naming the files and both sizes.
use super::*;

/// A workspace with a model trained for one step; returns it and its `out/best`.
fn trained() -> (Workspace, PathBuf) {
    let ws = Workspace::new("");
    let out = train(&ws, &["train.max_steps=1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let best = ws.root.join("out/best");
    (ws, best)
}

/// Rewrites `key` of the saved model's `ner.json`.
fn set_meta(best: &Path, key: &str, value: serde_json::Value) {
    let path = best.join("ner.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    meta[key] = value;
    std::fs::write(&path, meta.to_string()).unwrap();
}

/// The error loading the NER model in `best` (a panic if it loads).
fn load_error(best: &Path) -> String {
    match zhishi::stages::ner::NerModel::load(best) {
        Ok(_) => panic!("{} loaded", best.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn h2_a_saved_model_with_stride_zero_is_refused_at_load() {
    let (_ws, best) = trained();
    set_meta(&best, "stride", 0.into());
    let err = load_error(&best);
    assert!(
        err.contains("ner.json") && err.contains("stride"),
        "names the file and key: {err}"
    );
}

/// The tiny encoder fixture with `vocab.txt` of `extra` more tokens than its 64 embeddings.
fn model_with_long_vocab(dir: &Path, extra: usize) -> PathBuf {
    let model = dir.join("tiny");
    std::fs::create_dir_all(&model).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(encoder_fixture().join(f), model.join(f)).unwrap();
    }
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(String::from)
        .to_vec();
    while vocab.len() < 64 {
        vocab.push(format!("[unused{}]", vocab.len()));
    }
    vocab.extend("甲乙丙丁戊己庚辛".chars().take(extra).map(String::from));
    std::fs::write(model.join("vocab.txt"), vocab.join("\n") + "\n").unwrap();
    model
}

#[test]
fn a_vocab_longer_than_the_embedding_table_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_with_long_vocab(dir.path(), 3);
    let out = zhishi()
        .arg("encode")
        .arg("--model")
        .arg(&model)
        .write_stdin("{\"text\": \"甲乙\"}\n")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("vocab.txt") && err.contains("config.json"),
        "names both files: {err}"
    );
    assert!(
        err.contains("67") && err.contains("64"),
        "both sizes: {err}"
    );

    // A saved NER model whose vocabulary outgrew its embeddings.
    let (_ws, best) = trained();
    let mut vocab = std::fs::read_to_string(best.join("vocab.txt")).unwrap();
    vocab.push_str("甲\n乙\n");
    std::fs::write(best.join("vocab.txt"), vocab).unwrap();
    let err = load_error(&best);
    assert!(
        err.contains("vocab.txt") && err.contains("config.json"),
        "{err}"
    );
}

#[test]
fn a_max_len_beyond_the_models_positions_is_refused_at_load() {
    // Training: data.max_len against the encoder's 32 positions.
    let ws = Workspace::new("");
    let out = train(&ws, &["data.max_len=64", "train.max_steps=1"]);
    assert!(!out.status.success(), "max_len 64 over 32 positions");
    let err = stderr(&out);
    assert!(
        err.contains("data.max_len") && err.contains("64") && err.contains("32"),
        "{err}"
    );
    // A saved model whose ner.json asks for more positions than it has.
    let (_ws, best) = trained();
    set_meta(&best, "max_len", 64.into());
    let err = load_error(&best);
    assert!(
        err.contains("ner.json") && err.contains("64") && err.contains("32"),
        "{err}"
    );
}
