//! `zhishi kbert --svg DIR` (H1): drawings share the served tree's cap, and a symlink at the
//! destination is replaced, never written through.
use super::*;

#[test]
fn h1_kbert_svg_draws_no_more_tokens_than_the_served_tree() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.txt");
    write_vocab(&vocab, "头痛");
    let svg = dir.path().join("svg");
    let out = zhishi()
        .args(["kbert", "--max-length", "400", "--vocab"])
        .arg(&vocab)
        .arg("--svg")
        .arg(&svg)
        .write_stdin(kbert_line(&"头痛".repeat(150)))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let drawn = std::fs::read_to_string(svg.join("1.svg")).unwrap();
    // One heat-map cell per drawn token pair, two boxes per drawn token, the background.
    let cap = zhishi::serve::tree::MAX_TREE_TOKENS;
    let rects = drawn.matches("<rect").count();
    assert!(
        rects <= 1 + cap * cap + 2 * cap,
        "{rects} rectangles: more than {cap} tokens drawn"
    );
    // The JSON output still carries the whole sequence.
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["tokens"].as_array().unwrap().len(), 400);
}

#[cfg(unix)]
#[test]
fn h1_kbert_svg_replaces_a_symlink_instead_of_writing_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.txt");
    write_vocab(&vocab, "头痛");
    let svg = dir.path().join("svg");
    std::fs::create_dir(&svg).unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    std::os::unix::fs::symlink(&victim, svg.join("1.svg")).unwrap();
    let out = zhishi()
        .args(["kbert", "--max-length", "8", "--vocab"])
        .arg(&vocab)
        .arg("--svg")
        .arg(&svg)
        .write_stdin(kbert_line("头痛"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    let meta = std::fs::symlink_metadata(svg.join("1.svg")).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the link is replaced by the SVG"
    );
    assert!(std::fs::read_to_string(svg.join("1.svg"))
        .unwrap()
        .starts_with("<svg"));
    let left: Vec<_> = std::fs::read_dir(&svg).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file is left behind");
}
