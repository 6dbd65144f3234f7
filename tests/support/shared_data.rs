//! The public data sets (NER, RE, QA, KGs) some tests read are not in the repository: they
//! live in `../shared/data` beside the checkout (as on CI), or wherever the environment
//! variable `ZHISHI_DATA` points (the data root the shipped configs read, laid out as
//! `corpora/fetch_data.sh` writes it, e.g. `ZHISHI_DATA=/data/zhishi/data`). A test that needs a file from there asks
//! [`shared_data`]; when the file is missing the test prints
//! `skipped: <path> not found` and returns early, so `cargo test` passes on a bare clone.
//! `ZHISHI_DATA=/nonexistent cargo test` shows what is skipped without the data.
//!
//! Under CI (`CI=true`, as CI services set it) the data must be there: a missing file fails
//! the test instead of skipping it, so CI cannot go green by skipping.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The data root: `$ZHISHI_DATA` if set, else `<crate>/../shared/data` (as on CI); absolute,
/// so a `zhishi` child given it as `ZHISHI_DATA` reads the same files from any directory.
pub fn root() -> PathBuf {
    let root = match std::env::var_os("ZHISHI_DATA").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    };
    std::path::absolute(&root).unwrap_or(root)
}

/// `rel` (e.g. `re/sanwen/train.txt`) under [`root`] if it exists; otherwise prints
/// `skipped: <path> not found` to stderr and returns `None` (the caller returns early).
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let path = root().join(rel);
    if path.exists() {
        Some(path)
    } else {
        assert!(
            !under_ci(),
            "{} not found, and CI=true: CI runs with ../shared beside the checkout, so the data must be there",
            path.display()
        );
        // Straight to the process's stderr, past the test harness's output capture, so the
        // skip shows in a plain `cargo test` run.
        let _ = writeln!(std::io::stderr(), "skipped: {} not found", path.display());
        None
    }
}

/// Whether the tests run under CI (`CI` set to `true` or `1`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// `rel` under [`root`] if it exists, else the repository's `fixture` (a few hand-written
/// lines under `tests/fixtures/`), saying so on stderr.
pub fn shared_data_or_fixture(rel: &str, fixture: &str) -> PathBuf {
    let path = root().join(rel);
    if path.exists() {
        return path;
    }
    assert!(
        !under_ci(),
        "{} not found, and CI=true: CI runs with ../shared beside the checkout, so the data must be there",
        path.display()
    );
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(fixture);
    let _ = writeln!(
        std::io::stderr(),
        "{} not found: using the fixture {}",
        path.display(),
        fixture.display()
    );
    fixture
}
