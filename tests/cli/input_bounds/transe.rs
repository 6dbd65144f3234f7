//! TransE files and benchmarks: a truncated file says so, an empty test split is no MRR.
use super::*;

#[test]
fn a_truncated_transe_file_is_named_as_truncated() {
    use zhishi::kg::transe::{Norm, TransE};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("transe.safetensors");
    let model = TransE {
        dim: 4,
        norm: Norm::L1,
        entity: vec![0.5; 12],
        relation: vec![0.25; 8],
        reciprocal: false,
    };
    model.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for keep in [4, bytes.len() / 2, bytes.len() - 3] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let err = TransE::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("transe.safetensors") && err.contains("truncated or corrupt"),
            "{keep} bytes: {err}"
        );
    }
}

#[test]
fn transe_bench_refuses_an_empty_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("toy");
    std::fs::create_dir(&data).unwrap();
    let triples = "a\tr\tb\nb\tr\tc\nc\tr\ta\n";
    std::fs::write(data.join("train.txt"), triples).unwrap();
    std::fs::write(data.join("valid.txt"), triples).unwrap();
    std::fs::write(data.join("test.txt"), "\n").unwrap();
    let out = zhishi()
        .args(["transe", "bench", "--format", "tsv", "--data"])
        .arg(&data)
        .args(["--dim", "4", "--epochs", "1", "--threads", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an empty test split has no MRR");
    let err = stderr(&out);
    assert!(
        err.contains("test.txt") && err.contains("no triples"),
        "{err}"
    );
}
