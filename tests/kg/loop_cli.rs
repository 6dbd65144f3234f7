//! Knowledge out of the KG and back in (issue 33): `kg import --from-run` (idempotent, with
//! provenance shown by `kg query`), `transe predict` and `kg similar` on a trained store and on
//! a `transe bench --export` directory.
use std::path::Path;
use std::process::Command;

use crate::support::shared_data::shared_data;

fn zhishi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zhishi"))
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("zhishi runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap()
}

const RUN: &str = concat!(
    r#"{"id":"d1","text":"母亲住在村庄里","relations":[{"head":{"start":0,"end":2,"text":"母亲"},"tail":{"start":4,"end":6,"text":"村庄"},"label":"Located","score":0.95,"source":"relation"},{"head":{"start":0,"end":2,"text":"母亲"},"tail":{"start":4,"end":6,"text":"村庄","entity":{"id":7,"name":"村庄（聚落）"}},"label":"Near","score":0.4,"source":"relation"}]}"#,
    "\n",
    r#"{"id":"d2","text":"阿司匹林治头痛","relations":[{"head":{"start":0,"end":4,"text":"阿司匹林","entity":{"id":1,"name":"阿司匹林"}},"tail":{"start":5,"end":7,"text":"头痛"},"label":"Use","score":0.91,"source":"relation"}]}"#,
    "\n",
    r#"{"id":"d3","text":"母亲住在村庄里","relations":[{"head":{"start":0,"end":2,"text":"母亲"},"tail":{"start":4,"end":6,"text":"村庄"},"label":"Located","score":0.97,"source":"relation"}]}"#,
    "\n",
);

#[test]
fn relations_from_a_run_become_triples_with_provenance_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kg");
    std::fs::write(dir.path().join("kg.tsv"), "阿司匹林\t类别\t药物\n").unwrap();
    ok(zhishi()
        .args(["kg", "import", "--db"])
        .arg(&db)
        .arg(dir.path().join("kg.tsv")));
    let run = dir.path().join("out.jsonl");
    std::fs::write(&run, RUN).unwrap();
    let import = |extra: &[&str]| {
        json(&ok(zhishi()
            .args(["kg", "import", "--db"])
            .arg(&db)
            .arg("--from-run")
            .arg(&run)
            .args(["--min-score", "0.9", "--model", "re-model"])
            .args(extra)))
    };
    let dry = import(&["--dry-run"]);
    assert_eq!(dry["new_triples"], 2);
    assert_eq!(dry["stats"]["triples"], 1, "a dry run writes nothing");
    let first = import(&[]);
    assert_eq!(
        (
            &first["documents"],
            &first["relations"],
            &first["below_min_score"],
            &first["kept"],
            &first["triples"],
            &first["new_triples"],
            &first["new_provenance"],
        ),
        (
            &3.into(),
            &4.into(),
            &1.into(),
            &3.into(),
            &2.into(),
            &2.into(),
            &3.into()
        )
    );
    assert_eq!(first["stats"]["triples"], 3);
    let generation = std::fs::read_to_string(db.join("STORE.json")).unwrap();
    let second = import(&[]);
    assert_eq!(
        (&second["new_triples"], &second["new_provenance"]),
        (&0.into(), &0.into())
    );
    assert_eq!(second["stats"]["triples"], 3);
    assert_eq!(
        std::fs::read_to_string(db.join("STORE.json")).unwrap(),
        generation,
        "importing the same run again changes nothing"
    );
    let lines = ok(zhishi()
        .args(["kg", "query", "--db"])
        .arg(&db)
        .args(["--subject", "母亲"]));
    let triple = json(&lines);
    assert_eq!(triple["predicate"], "Located");
    assert_eq!(triple["object"], "村庄");
    let provenance = triple["provenance"].as_array().unwrap();
    assert_eq!(provenance.len(), 2);
    let mut docs: Vec<&str> = provenance
        .iter()
        .map(|p| p["document"].as_str().unwrap())
        .collect();
    docs.sort();
    assert_eq!(docs, ["d1", "d3"]);
    assert_eq!(provenance[0]["stage"], "relation");
    assert_eq!(provenance[0]["model"], "re-model");
    assert!(provenance[0]["time"].as_u64().unwrap() > 1_600_000_000);
    // A linked argument is named by its entity: (阿司匹林, Use, 头痛).
    let lines = ok(zhishi()
        .args(["kg", "query", "--db"])
        .arg(&db)
        .args(["--predicate", "Use"]));
    assert_eq!(json(&lines)["subject"], "阿司匹林");
    // Triples from files carry no provenance.
    let lines = ok(zhishi()
        .args(["kg", "query", "--db"])
        .arg(&db)
        .args(["--predicate", "类别"]));
    assert!(json(&lines).get("provenance").is_none());
    // A line that is not a document is an error naming file and line.
    std::fs::write(&run, format!("{RUN}not json\n")).unwrap();
    let out = zhishi()
        .args(["kg", "import", "--db"])
        .arg(&db)
        .arg("--from-run")
        .arg(&run)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("out.jsonl:4:"));
}

fn predictions(out: &str) -> Vec<String> {
    json(out)["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["entity"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn transe_predict_and_similar_answer_from_a_store_and_from_an_export() {
    let Some(nations) = shared_data("kg/small/nations") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    ok(zhishi()
        .args(["transe", "bench", "--format", "tsv", "--data"])
        .arg(&nations)
        .args(["--dim", "16", "--epochs", "5", "--threads", "2", "--export"])
        .arg(&export));
    let train = std::fs::read_to_string(nations.join("train.txt")).unwrap();
    let (h, r, _) = {
        let mut f = train.lines().next().unwrap().split('\t');
        (f.next().unwrap(), f.next().unwrap(), f.next().unwrap())
    };
    let known: Vec<&str> = train
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0] == h && f[1] == r).then_some(f[2])
        })
        .collect();
    let predict = |extra: &[&str]| {
        ok(zhishi()
            .args(["transe", "predict", "--model"])
            .arg(&export)
            .args(["--head", h, "--relation", r, "--top-k", "14"])
            .args(extra))
    };
    let filtered = predictions(&predict(&[]));
    assert_eq!(filtered.len(), 14 - known.len());
    assert!(filtered.iter().all(|e| !known.contains(&e.as_str())));
    let all = predictions(&predict(&["--include-known"]));
    assert_eq!(all.len(), 14, "nations has 14 entities");
    assert!(known.iter().all(|k| all.iter().any(|e| e == k)));
    let scores: Vec<f64> = json(&predict(&["--include-known"]))["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
    // Head questions too, and nearest entities.
    let heads = ok(zhishi()
        .args(["transe", "predict", "--model"])
        .arg(&export)
        .args([
            "--relation",
            r,
            "--tail",
            h,
            "--top-k",
            "3",
            "--include-known",
        ]));
    assert_eq!(predictions(&heads).len(), 3);
    let similar = json(&ok(zhishi()
        .args(["kg", "similar", h, "--top-k", "3", "--model"])
        .arg(&export)));
    assert_eq!(similar["similar"].as_array().unwrap().len(), 3);
    assert!(similar["similar"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["entity"] != h));
    // A store trained with `transe train` answers the same questions by name.
    let db = dir.path().join("kg");
    ok(zhishi()
        .args(["kg", "import", "--db"])
        .arg(&db)
        .arg(nations.join("train.txt")));
    ok(zhishi().args(["transe", "train", "--db"]).arg(&db).args([
        "--dim",
        "8",
        "--epochs",
        "2",
        "--threads",
        "2",
    ]));
    let out = ok(zhishi()
        .args(["transe", "predict", "--model"])
        .arg(&db)
        .args(["--head", h, "--relation", r, "--top-k", "2"]));
    assert_eq!(predictions(&out).len(), 2);
    let bad = zhishi()
        .args(["transe", "predict", "--model"])
        .arg(Path::new(&db).join("gen-1"))
        .args(["--head", h, "--relation", r])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
