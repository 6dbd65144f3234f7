//! Training configurations (H2 and `--set`): every count is checked in its range as it is read,
//! and an error in an overridden value names the `--set`, not a line of the file.
use super::*;

#[test]
fn h2_a_stride_of_zero_is_refused_when_the_config_is_read() {
    let ws = Workspace::new("");
    let out = train(&ws, &["data.stride=0", "train.max_steps=1"]);
    assert!(!out.status.success(), "stride 0 is refused");
    let err = stderr(&out);
    assert!(err.contains("--set data.stride=0"), "{err}");
    assert!(err.contains("expected 1 to"), "names the range: {err}");
    assert!(!ws.root.join("out").exists(), "nothing was trained");

    // In the file, the error names its line.
    let toml = std::fs::read_to_string(ws.config()).unwrap();
    let line = toml.lines().position(|l| l == "max_len = 32").unwrap() + 2;
    std::fs::write(
        ws.config(),
        toml.replace("max_len = 32", "max_len = 32\nstride = 0"),
    )
    .unwrap();
    let err = stderr(&train(&ws, &["train.max_steps=1"]));
    assert!(
        err.contains(&format!("ner.toml:{line}: key `data.stride`")),
        "{err}"
    );
}

#[test]
fn h2_counts_that_make_no_sense_at_zero_are_refused() {
    let ws = Workspace::new("");
    for key in [
        "train.grad_accum",
        "train.bucket_pool",
        "train.max_steps",
        "train.epochs",
        "train.batch_size",
    ] {
        let set = format!("{key}=0");
        let out = train(
            &ws,
            &[&set, "train.epochs=1"][..if key == "train.epochs" { 1 } else { 2 }],
        );
        assert!(!out.status.success(), "{set} is refused");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("--set {set}")) && err.contains("expected 1"),
            "{set}: {err}"
        );
    }
    assert!(!ws.root.join("out").exists(), "nothing was trained");
}

#[test]
fn a_set_error_names_the_override_not_a_line_of_the_file() {
    let ws = Workspace::new("");
    let lines = std::fs::read_to_string(ws.config())
        .unwrap()
        .lines()
        .count();
    for set in ["data.max_train=oops", "train.grad_accum=-1"] {
        let err = stderr(&train(&ws, &[set]));
        assert!(err.contains(&format!("--set {set}")), "{set}: {err}");
        let cites_a_line = err
            .match_indices("ner.toml:")
            .any(|(i, m)| err[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()));
        assert!(
            !cites_a_line,
            "{set}: no line of a file with {lines} lines: {err}"
        );
    }
    // A key the overrides did not touch keeps its own line in the file.
    let toml = std::fs::read_to_string(ws.config()).unwrap();
    std::fs::write(ws.config(), toml.replace("epochs = 40", "epochs = \"x\"")).unwrap();
    let line = toml.lines().position(|l| l == "epochs = 40").unwrap() + 1;
    let err = stderr(&train(&ws, &["data.max_train=2"]));
    assert!(
        err.contains(&format!("ner.toml:{line}: key `train.epochs`")),
        "{err}"
    );
}

#[test]
fn invalid_utf8_in_a_training_toml_names_the_line() {
    let ws = Workspace::new("");
    let mut toml = std::fs::read(ws.config()).unwrap();
    toml.splice(0..0, b"# caf\xe9\n".iter().copied());
    std::fs::write(ws.config(), toml).unwrap();
    let err = stderr(&train(&ws, &[]));
    assert!(
        err.contains("ner.toml:1") && err.contains("invalid UTF-8"),
        "{err}"
    );
}
