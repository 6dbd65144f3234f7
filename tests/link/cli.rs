//! `zhishi link` end to end: a store imported from TSV, lines and JSONL in,
//! one `{"mentions": [...]}` object per input line out, in input order.
use std::io::Write;

use assert_cmd::Command;
use serde_json::Value;

/// A store with a few entities, imported through `zhishi::kg::import`.
fn store(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let tsv = dir.path().join("kg.tsv");
    let mut f = std::fs::File::create(&tsv).unwrap();
    writeln!(f, "山西大学\t所属城市\t太原").unwrap();
    writeln!(f, "山西大学\t建筑面积\t142万平方米").unwrap();
    writeln!(f, "北京\t类别\t城市").unwrap();
    let db = dir.path().join("kg");
    let opts = zhishi::kg::import::ImportOptions {
        format: zhishi::kg::import::Format::Tsv,
        ..Default::default()
    };
    zhishi::kg::import::import_files(&db, &[tsv], &opts, &mut |_| {}).unwrap();
    db
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn mention_texts(v: &Value) -> Vec<&str> {
    v["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect()
}

#[test]
fn each_input_line_gets_one_json_object_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(&dir);
    let out = Command::cargo_bin("zhishi")
        .unwrap()
        .args(["link", "--db", db.to_str().unwrap(), "--json"])
        .write_stdin("山西大学的建筑面积是多少？\n\n我住在北京。\n")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let objs = lines(&out);
    assert_eq!(objs.len(), 3);
    assert_eq!(mention_texts(&objs[0]), ["山西大学"]);
    assert!(mention_texts(&objs[1]).is_empty());
    assert_eq!(mention_texts(&objs[2]), ["北京"]);
    let m = &objs[0]["mentions"][0];
    // Character offsets, as everywhere else (the pipeline's `Mention`).
    assert_eq!((m["start"].as_u64(), m["end"].as_u64()), (Some(0), Some(4)));
    assert_eq!(m["entity"]["name"], "山西大学");
    assert_eq!(m["candidates"][0]["name"], "山西大学");
}

#[test]
fn jsonl_input_links_the_named_field_and_can_add_knowledge() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(&dir);
    let out = Command::cargo_bin("zhishi")
        .unwrap()
        .args([
            "link",
            "--db",
            db.to_str().unwrap(),
            "--json",
            "--text-field",
            "q",
        ])
        .args(["--knowledge", "1"])
        .write_stdin("{\"id\": 1, \"q\": \"山西大学的建筑面积是多少？\"}\n")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let objs = lines(&out);
    let fact = &objs[0]["facts"][0];
    assert_eq!(fact["mention"], 0);
    assert_eq!(fact["subject"], "山西大学");
    assert_eq!(fact["predicate"], "建筑面积");
    assert_eq!(fact["object"], "142万平方米");
}

#[test]
fn a_bad_jsonl_line_is_reported_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(&dir);
    Command::cargo_bin("zhishi")
        .unwrap()
        .args([
            "link",
            "--db",
            db.to_str().unwrap(),
            "--json",
            "--text-field",
            "q",
        ])
        .write_stdin("{\"q\": \"北京\"}\nnot json\n")
        .assert()
        .failure()
        .stderr(predicates::str::contains("line 2: invalid JSON"));
}

#[test]
fn item9_oversize_and_bad_lines_are_reported_with_their_line_and_the_rest_is_linked() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(&dir);
    let long = "北京".repeat(100);
    let input = format!(
        "{{\"text\": \"我住在北京。\"}}\n\n{{\"text\": \"{long}\"}}\nnot json\n{{\"text\": \"山西大学在太原\"}}\n"
    );
    let out = Command::cargo_bin("zhishi")
        .unwrap()
        .args([
            "link",
            "--db",
            db.to_str().unwrap(),
            "--json",
            "--text-field",
            "text",
        ])
        .args(["--max-record-bytes", "200"])
        .write_stdin(input)
        .assert()
        .failure()
        .get_output()
        .clone();
    let got = lines(&out.stdout);
    assert_eq!(got.len(), 5, "one output line per input line");
    assert_eq!(mention_texts(&got[0]), ["北京"]);
    assert_eq!(mention_texts(&got[1]), Vec::<&str>::new());
    assert_eq!(got[2]["line"], 3);
    assert!(got[2]["error"]
        .as_str()
        .unwrap()
        .contains("over the limit of 200 bytes"));
    assert_eq!(got[3]["line"], 4);
    assert!(got[3]["error"].as_str().unwrap().contains("invalid JSON"));
    assert_eq!(mention_texts(&got[4]), ["山西大学"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3: record is"), "{stderr}");
    assert!(stderr.contains("line 4: invalid JSON"), "{stderr}");
}

#[test]
fn item9_a_line_of_20000_mentions_links_every_one() {
    // 20,000 mentions of one name in one line: overlap resolution used to compare every
    // mention with every kept one (O(m^2)); now one ordered lookup each.
    let dir = tempfile::tempdir().unwrap();
    let db = store(&dir);
    let line = "北京，".repeat(20_000);
    let out = Command::cargo_bin("zhishi")
        .unwrap()
        .args([
            "link",
            "--db",
            db.to_str().unwrap(),
            "--json",
            "--knowledge",
            "1",
        ])
        .write_stdin(format!("{line}\n"))
        .assert()
        .success()
        .get_output()
        .clone();
    let got = lines(&out.stdout);
    assert_eq!(got[0]["mentions"].as_array().unwrap().len(), 20_000);
}
