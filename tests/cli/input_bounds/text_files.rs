//! Text read line by line (fill-mask input, pretraining corpus, vocabularies): invalid UTF-8
//! names the file and line.
use super::*;

#[test]
fn invalid_utf8_in_a_fill_mask_input_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlm");
    write_masked_lm(&model, "北京市");
    let input = dir.path().join("lines.txt");
    std::fs::write(&input, b"\xe5\x8c\x97[MASK]\nab\xffc [MASK]\n").unwrap();
    let out = zhishi()
        .arg("fill-mask")
        .arg("--model")
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("lines.txt:2") && err.contains("invalid UTF-8"),
        "{err}"
    );
}

#[test]
fn invalid_utf8_in_a_pretraining_corpus_names_the_file_and_line() {
    use zhishi::stages::pretrain::config::CorpusFormat;
    use zhishi::stages::pretrain::corpus::Corpus;
    let dir = tempfile::tempdir().unwrap();
    write_vocab(&dir.path().join("vocab.txt"), "患者头痛");
    let tokenizer = zhishi::model::BertTokenizer::from_dir(dir.path()).unwrap();
    let path = dir.path().join("corpus.txt");
    std::fs::write(&path, b"\xe6\x82\xa3\xe8\x80\x85\n\n\xe5\xa4\xb4\xff\n").unwrap();
    let err = Corpus::index(&path, CorpusFormat::Txt, "text", &tokenizer, 8)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("corpus.txt:3") && err.contains("invalid UTF-8"),
        "{err}"
    );
}

#[test]
fn invalid_utf8_in_a_vocabulary_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.txt");
    std::fs::write(&vocab, b"[PAD]\n[UNK]\n\xff\n").unwrap();
    let out = zhishi()
        .args(["kbert", "--max-length", "8", "--vocab"])
        .arg(&vocab)
        .write_stdin(kbert_line("头"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("vocab.txt:3") && err.contains("invalid UTF-8"),
        "{err}"
    );
}
