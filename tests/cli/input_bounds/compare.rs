//! `zhishi compare`: every value is checked before any arm trains.
use super::*;

#[test]
fn compare_checks_every_arm_before_training_any() {
    let ws = Workspace::new("");
    for arms in ["plain,kbertt", "plain,kbert"] {
        let out = zhishi()
            .arg("compare")
            .arg(ws.config())
            .args(["--knowledge", arms, "--seeds", "1", "--split", "dev"])
            .args(["--set", "train.max_steps=1"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{arms}");
        let err = stderr(&out);
        let bad = arms.split(',').nth(1).unwrap();
        assert!(err.contains(bad), "{arms}: {err}");
        assert!(
            !ws.root.join("out/compare").exists(),
            "{arms}: an arm trained before the bad one was refused: {err}"
        );
    }
}

#[test]
fn compare_refuses_an_arm_given_twice() {
    let ws = Workspace::new("");
    let out = zhishi()
        .arg("compare")
        .arg(ws.config())
        .args([
            "--knowledge",
            "plain,plain",
            "--seeds",
            "1",
            "--split",
            "dev",
        ])
        .args(["--set", "train.max_steps=1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "plain,plain is refused");
    let err = stderr(&out);
    assert!(err.contains("plain") && err.contains("twice"), "{err}");
    assert!(!ws.root.join("out/compare").exists());
}

#[test]
fn compare_bounds_the_number_of_seeds() {
    let ws = Workspace::new("");
    let out = zhishi()
        .arg("compare")
        .arg(ws.config())
        .args(["--knowledge", "plain", "--seeds", "100000000"])
        .args(["--set", "train.epochs=0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("--seeds") && err.contains("1000"), "{err}");
}
