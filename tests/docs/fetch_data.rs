//! `corpora/fetch_data.sh` against a local copy of its sources: the test data laid out as the
//! upstream repositories publish it (`OWNER/REPO/REF/PATH`) and served through `file://`, so
//! everything but the network is exercised: which file lands where, the checksums, and that a
//! changed source or a user's own file stops the set without writing anything.
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::shared_data::{root, shared_data};

/// One manifest row: set, source path, destination under the data root.
struct Row {
    set: String,
    source: String,
    dest: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora/fetch_data.sh")
}

fn manifest() -> Vec<Row> {
    let text = std::fs::read_to_string(script()).unwrap();
    text.lines()
        .filter(|l| {
            let f: Vec<&str> = l.split('|').collect();
            f.len() == 4 && f[3].len() == 64 && f[3].chars().all(|c| c.is_ascii_hexdigit())
        })
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            Row {
                set: f[0].into(),
                source: f[1].into(),
                dest: f[2].into(),
            }
        })
        .collect()
}

fn fetch(mirror: &Path, dest: &Path, sets: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(script())
        .arg("--mirror")
        .arg(format!("file://{}", mirror.display()))
        .arg("--dest")
        .arg(dest)
        .args(sets)
        .output()
        .unwrap()
}

fn curl_missing() -> bool {
    Command::new("curl").arg("--version").output().is_err()
}

#[test]
fn fetch_data_installs_each_set_where_the_shipped_configs_read_it() {
    let rows = manifest();
    assert!(rows.len() >= 15, "manifest not found in the script");
    if curl_missing() {
        eprintln!("skipped: curl not found");
        return;
    }
    // Every file the script fetches must exist in the test data (CI fails otherwise).
    for row in &rows {
        if shared_data(&row.dest).is_none() {
            return;
        }
    }
    let mirror = tempfile::tempdir().unwrap();
    for row in &rows {
        let to = mirror.path().join(&row.source);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join(&row.dest), &to).unwrap();
    }
    let dest = tempfile::tempdir().unwrap();
    let out = fetch(mirror.path(), dest.path(), &["all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in &rows {
        let got = std::fs::read(dest.path().join(&row.dest)).unwrap();
        let want = std::fs::read(root().join(&row.dest)).unwrap();
        assert!(got == want, "{} differs after fetching", row.dest);
    }
    // Every data path of a shipped config is one the script provides (or a set docs/data.md
    // lists as fetched by hand).
    let provided: Vec<&str> = rows.iter().map(|r| r.dest.as_str()).collect();
    let by_hand = ["ner/msra/", "cls/chnsenticorp/", "kg/nlpcc2016/"];
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines")).unwrap()
    {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for piece in text.split("${ZHISHI_DATA:-../data}/").skip(1) {
            let rel = piece.split('"').next().unwrap();
            assert!(
                provided.contains(&rel) || by_hand.iter().any(|p| rel.starts_with(p)),
                "{}: {rel} is neither fetched by corpora/fetch_data.sh nor listed as by hand",
                path.display()
            );
        }
    }

    // Fetching again changes nothing and succeeds.
    let again = fetch(mirror.path(), dest.path(), &["resume"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn a_changed_source_or_a_users_own_file_stops_the_set_and_writes_nothing() {
    if curl_missing() {
        eprintln!("skipped: curl not found");
        return;
    }
    let rows: Vec<Row> = manifest()
        .into_iter()
        .filter(|r| r.set == "resume")
        .collect();
    for row in &rows {
        if shared_data(&row.dest).is_none() {
            return;
        }
    }
    let mirror = tempfile::tempdir().unwrap();
    for row in &rows {
        let to = mirror.path().join(&row.source);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join(&row.dest), &to).unwrap();
    }
    // A user's own file where the set goes: refused, and kept as it was.
    let dest = tempfile::tempdir().unwrap();
    let own = dest.path().join(&rows[1].dest);
    std::fs::create_dir_all(own.parent().unwrap()).unwrap();
    std::fs::write(&own, "我的数据 O\n").unwrap();
    let out = fetch(mirror.path(), dest.path(), &["resume"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exists with other contents"), "{err}");
    assert_eq!(std::fs::read_to_string(&own).unwrap(), "我的数据 O\n");
    assert!(
        !dest.path().join(&rows[0].dest).exists(),
        "a partial set was installed"
    );

    // A source whose checksum changed: refused, nothing installed, no staging left behind.
    let dest = tempfile::tempdir().unwrap();
    let changed = mirror.path().join(&rows[2].source);
    let mut text = std::fs::read(&changed).unwrap();
    text.extend_from_slice("多 O\n".as_bytes());
    std::fs::write(&changed, text).unwrap();
    let out = fetch(mirror.path(), dest.path(), &["resume"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SHA-256") && err.contains("nothing of 'resume'"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dest.path()).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}
