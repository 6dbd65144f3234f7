//! `zhishi kbert` end to end: JSON lines with a sentence tree in, flattened K-BERT inputs out.
use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

fn vocab_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("vocab.txt");
    std::fs::write(&path, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n北\n京\n首\n都\n好\n").unwrap();
    path
}

/// Runs `zhishi kbert ARGS --vocab VOCAB` on one input line and parses its one output line.
fn kbert_line(dir: &tempfile::TempDir, args: &[&str], input: &str) -> serde_json::Value {
    let output = Command::cargo_bin("zhishi")
        .unwrap()
        .arg("kbert")
        .args(args)
        .arg("--vocab")
        .arg(vocab_file(dir))
        .write_stdin(format!("{input}\n"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&output).unwrap()
}

#[test]
fn tree_input_gives_tokens_positions_and_visible_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = r#"{"text": "北京好", "tree": [{"word": "北京", "injected": [["是", "首都"], "城市"]}, {"word": "好", "injected": []}]}"#;
    let line = kbert_line(&dir, &["--max-length", "8", "--max-entities", "1"], input);
    assert_eq!(
        line,
        serde_json::json!({
            "tokens": ["[CLS]", "北", "京", "首", "都", "好", "[SEP]", "[PAD]"],
            "input_ids": [2, 4, 5, 6, 7, 8, 3, 0],
            "soft_positions": [0, 1, 2, 3, 4, 3, 4, 7],
            "knowledge_mask": [0, 0, 0, 1, 1, 0, 0, 0],
            "visible_matrix": [
                "11100110", "11111110", "11111110", "01111000",
                "01111000", "11100110", "11100110", "00000001"
            ]
        })
    );
}

#[test]
fn predicate_flag_and_compat_mode_follow_kbert() {
    let dir = tempfile::tempdir().unwrap();
    let input = r#"{"text": "北京好", "tree": [{"word": "北京", "injected": [["首", "都"]]}, {"word": "好"}]}"#;
    let line = kbert_line(
        &dir,
        &["--max-length", "6", "--predicate", "--compat"],
        input,
    );
    assert_eq!(
        line["tokens"],
        serde_json::json!(["[CLS]", "北", "京", "首", "都", "好"])
    );
    assert_eq!(
        line["soft_positions"],
        serde_json::json!([0, 1, 2, 3, 4, 3])
    );
}

#[test]
fn smaller_item_compat_trees_may_leave_out_the_texts_spaces_as_kberts_segmenter_does() {
    let dir = tempfile::tempdir().unwrap();
    let input = r#"{"text": "北京 好", "tree": [{"word": "北京", "injected": [["首", "都"]]}, {"word": "好"}]}"#;
    let line = kbert_line(&dir, &["--max-length", "6", "--compat"], input);
    assert_eq!(
        line["tokens"],
        serde_json::json!(["[CLS]", "北", "京", "都", "好", "[PAD]"])
    );
}

#[test]
fn text_only_input_needs_a_store() {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("zhishi")
        .unwrap()
        .args(["kbert", "--max-length", "8", "--vocab"])
        .arg(vocab_file(&dir))
        .write_stdin("{\"text\": \"北京好\"}\n")
        .assert()
        .failure()
        .stderr(contains("line 1").and(contains("text-only input needs --db")));
}

#[test]
fn text_only_input_is_linked_and_gets_the_entity_knowledge() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kg");
    let kg = dir.path().join("kg.tsv");
    std::fs::write(&kg, "北京\t是\t首都\n北京\t人口\t两千万\n").unwrap();
    Command::cargo_bin("zhishi")
        .unwrap()
        .args(["kg", "import", "--db"])
        .arg(&db)
        .arg(&kg)
        .assert()
        .success();
    let db = db.to_str().unwrap();
    let args = ["--max-length", "10", "--max-entities", "1", "--db", db];
    let line = kbert_line(&dir, &args, "{\"text\": \"北京好\"}");
    let tokens: Vec<&str> = line["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(&tokens[..3], &["[CLS]", "北", "京"]);
    let mask: Vec<u64> = line["knowledge_mask"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_u64().unwrap())
        .collect();
    assert_eq!(
        mask[3], 1,
        "the linked entity's top fact follows the mention: {tokens:?}"
    );
    assert_eq!(tokens.iter().filter(|t| **t == "好").count(), 1);
}

#[test]
fn a_tree_that_does_not_spell_the_text_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("zhishi")
        .unwrap()
        .args(["kbert", "--max-length", "8", "--vocab"])
        .arg(vocab_file(&dir))
        .write_stdin("\n{\"text\": \"北京\", \"tree\": [{\"word\": \"南京\"}]}\n")
        .assert()
        .failure()
        .stderr(contains("stdin line 2").and(contains("must concatenate to the text")));
}

#[test]
fn svg_draws_the_tree_and_visible_matrix_of_each_line() {
    let dir = tempfile::tempdir().unwrap();
    let svg_dir = dir.path().join("trees");
    let input = r#"{"text": "北京好", "tree": [{"word": "北京", "injected": [["是", "首都"], "城市"]}, {"word": "好", "injected": []}]}"#;
    Command::cargo_bin("zhishi")
        .unwrap()
        .args(["kbert", "--max-length", "8"])
        .arg("--vocab")
        .arg(vocab_file(&dir))
        .arg("--svg")
        .arg(&svg_dir)
        .write_stdin(format!("{input}\n"))
        .assert()
        .success();
    let svg = std::fs::read_to_string(svg_dir.join("1.svg")).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("visible matrix") && svg.contains("首"));
}
