//! The linker on a sled store: TransE vectors trained for the store
//! (`zhishi transe train --db`, saved in its artifact directory) are picked
//! up for coherence; a damaged vectors file is an error, not a silent fallback; a store the
//! user cannot write is read through `[kg] snapshot = true`.
use std::io::Write;
use std::path::Path;

use zhishi::kg::import::{import_files, Format, ImportOptions};
use zhishi::kg::store::Store;
use zhishi::kg::store_source::TRANSE_VECTORS_FILE;
use zhishi::kg::transe::{Norm, TransE};
use zhishi::text::{LinkError, LinkOptions, Linker};

#[cfg(unix)]
use crate::support::{assert_one_passed, rerun_in_child};

fn store(dir: &tempfile::TempDir) -> Store {
    let tsv = dir.path().join("kg.tsv");
    let mut f = std::fs::File::create(&tsv).unwrap();
    writeln!(f, "山西大学\t所属城市\t太原").unwrap();
    writeln!(f, "北京\t类别\t城市").unwrap();
    let db = dir.path().join("kg");
    let opts = ImportOptions {
        format: Format::Tsv,
        ..ImportOptions::default()
    };
    import_files(&db, &[tsv], &opts, &mut |_| {}).unwrap();
    Store::open(&db).unwrap()
}

#[test]
fn vectors_in_the_store_artifacts_are_used_for_coherence() {
    let dir = tempfile::tempdir().unwrap();
    let kg = store(&dir);
    let plain = Linker::build(kg, LinkOptions::default()).unwrap();
    assert!(!plain.has_embeddings());
    let mentions = plain.link("山西大学在太原，不在北京。");
    let coherence: Vec<f32> = mentions
        .iter()
        .map(|m| m.candidates[0].features.coherence)
        .collect();
    assert_eq!(coherence, [0.0, 0.0]);
    let kg = plain.source();
    let terms = kg.stats().terms as usize;
    // Every entity on the same vector: any two are fully related.
    let vectors = TransE {
        dim: 4,
        norm: Norm::L1,
        entity: vec![0.5; terms * 4],
        relation: vec![0.0; kg.stats().relations as usize * 4],
        reciprocal: false,
    };
    let artifacts = kg.artifact_dir().unwrap();
    drop(plain); // releases the store's lock
    vectors.save(&artifacts.join(TRANSE_VECTORS_FILE)).unwrap();
    let kg = Store::open(&dir.path().join("kg")).unwrap();
    let linker = Linker::build(kg, LinkOptions::default()).unwrap();
    assert!(linker.has_embeddings());
    let mentions = linker.link("山西大学在太原，不在北京。");
    let linked: Vec<(&str, f32)> = mentions
        .iter()
        .map(|m| (m.entity.name.as_str(), m.candidates[0].features.coherence))
        .collect();
    assert_eq!(linked, [("山西大学", 1.0), ("北京", 1.0)]);
}

#[test]
fn a_damaged_vectors_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let kg = store(&dir);
    let path = kg.artifact_dir().unwrap().join(TRANSE_VECTORS_FILE);
    std::fs::write(&path, b"not safetensors").unwrap();
    let err = Linker::build(kg, LinkOptions::default()).unwrap_err();
    assert!(matches!(err, LinkError::Source(_)));
    assert!(err.to_string().contains("TransE vectors"), "{err}");
}

/// Makes `path` and everything under it read-only (`chmod -R a-w`), or writable by its owner
/// again (`chmod -R u+w`).
#[cfg(unix)]
fn set_writable(path: &Path, writable: bool) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).unwrap();
    if meta.is_dir() && writable {
        set_mode(path, meta.permissions().mode() | 0o200);
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            set_writable(&entry.unwrap().path(), writable);
        }
    }
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    set_mode(
        path,
        if writable {
            mode | 0o200
        } else {
            mode & !0o222
        },
    );
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Set in the copy of this test binary that [`a_read_only_store_opens_with_snapshot_true`]
/// starts as an unprivileged user.
const UNPRIVILEGED_RUN: &str = "ZHISHI_TEST_UNPRIVILEGED_RUN";

/// Runs the test `name` of this binary again as user and group 65534 (`nobody`); `false`
/// (with the reason printed) when that is not possible here.
#[cfg(unix)]
fn rerun_unprivileged(name: &str) -> bool {
    use std::os::unix::process::CommandExt;
    let out = rerun_in_child(module_path!(), name)
        .env(UNPRIVILEGED_RUN, "1")
        .env("TMPDIR", std::env::temp_dir())
        .uid(65534)
        .gid(65534)
        .output();
    match out {
        Ok(out) => {
            assert_one_passed(&out);
            true
        }
        Err(e) => {
            let exe = std::env::current_exe().unwrap();
            println!("skipped: permissions are not enforced for this user, and {exe:?} cannot run as nobody: {e}");
            false
        }
    }
}

#[cfg(unix)]
#[test]
fn a_read_only_store_opens_with_snapshot_true() {
    let dir = tempfile::tempdir().unwrap();
    drop(store(&dir));
    let db = dir.path().join("kg");
    assert!(
        db.join("LOCK").exists(),
        "an imported store has its LOCK file"
    );
    set_writable(&db, false);
    // Root (and CAP_DAC_OVERRIDE) may write anyway: then run this test as nobody.
    let probe = db.join("probe");
    if std::fs::write(&probe, b"").is_ok() {
        let _ = std::fs::remove_file(&probe);
        set_writable(&db, true);
        if std::env::var_os(UNPRIVILEGED_RUN).is_some() {
            println!("skipped: permissions are not enforced even as an unprivileged user");
        } else {
            rerun_unprivileged("a_read_only_store_opens_with_snapshot_true");
        }
        return;
    }
    let toml = dir.path().join("pipeline.toml");
    std::fs::write(
        &toml,
        "[pipeline]\nstages = [\"link\"]\n\n[kg]\nstore = \"kg\"\nsnapshot = true\n",
    )
    .unwrap();
    let opened = zhishi::Pipeline::from_toml(&toml);
    let linked = opened
        .as_ref()
        .map(|p| p.process("山西大学在太原，不在北京。"));
    // Without the snapshot the store cannot be opened: it is not ours to write.
    let plain = Store::open(&db).err();
    set_writable(&db, true);
    let doc = linked
        .map_err(|e| e.to_string())
        .unwrap_or_else(|e| panic!("a read-only store with snapshot = true: {e}"))
        .unwrap();
    let names: Vec<&str> = doc
        .mentions
        .iter()
        .map(|m| m.entity.name.as_str())
        .collect();
    assert_eq!(names, ["山西大学", "北京"]);
    assert!(plain.is_some(), "a read-only store opened for writing");
    // The store directory is as it was: nothing written into it.
    let mut entries: Vec<String> = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["LOCK", "STORE.json", "gen-1"], "{db:?}");
    // A read-only store without a LOCK file (copied without it): nobody can hold it.
    std::fs::remove_file(db.join("LOCK")).unwrap();
    set_writable(&db, false);
    let linked = zhishi::Pipeline::from_toml(&toml).map(|p| p.process("山西大学在太原。"));
    set_writable(&db, true);
    let doc = linked
        .map_err(|e| e.to_string())
        .unwrap_or_else(|e| panic!("a read-only store without LOCK: {e}"))
        .unwrap();
    assert_eq!(doc.mentions[0].entity.name, "山西大学");
    assert!(!db.join("LOCK").exists());
}
