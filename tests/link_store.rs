//! The linker on a sled store: TransE vectors trained for the store
//! (`zhishi transe train --db`, saved in its artifact directory) are picked
//! up for coherence; a damaged vectors file is an error, not a silent fallback.
use std::io::Write;

use zhishi::kg::import::{import_files, Format, ImportOptions};
use zhishi::kg::store::Store;
use zhishi::kg::transe::{Norm, TransE};
use zhishi::text::store_source::TRANSE_VECTORS_FILE;
use zhishi::text::{LinkError, LinkOptions, Linker};

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
