//! The knowledge-graph store: terms, predicates and triples in an embedded sled database.
//!
//! This is the only module that talks to sled. Layout of a store directory:
//!
//! ```text
//! DIR/STORE.json   {"format": "zhishi-kg-store", "version": 3, "generation": N}  (commit point)
//! DIR/LOCK         advisory lock: one process at a time opens the store (snapshots share it
//!                  while they copy, see [`Store::open_snapshot`])
//! DIR/gen-N/       the sled database of the current generation
//! DIR/gen-N/artifacts/   derived files (embeddings, ...)
//! ```
//!
//! Writes go through a [`StoreWriter`], which copies the current generation into a new
//! directory, applies the batches there and then atomically rewrites `STORE.json`; an import
//! that fails or is killed leaves the previous generation in place (stale directories are
//! removed on the next write).
//!
//! Key encoding (all ids fixed-width big-endian `u32`, so prefix scans are index seeks):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `terms` | name bytes | term id |
//! | `term_info` | term id | kind (1 byte), degree (u32), name bytes |
//! | `preds` / `pred_names` | name / id | id / name |
//! | `s_po` | subject | sorted (predicate, object) pairs |
//! | `o_sp` | object | sorted (subject, predicate) pairs |
//! | `p_os` | predicate | sorted (object, subject) pairs |
//! | `aliases` | alias bytes, 0x00, term id | empty |
//! | `provenance` | subject, predicate, object ids, record hash | codec version, JSON record (see `provenance`) |
//!
//! Adjacency lists are packed into one value per key, which keeps the number of sled keys
//! (and with it sled's per-key overhead, memory and reopen time) far below one key per triple:
//! sled 0.34 was measured here at ~150 bytes on disk per small key. Keying every index by a
//! single id (instead of id pairs) cut the FB15k-237 store from 53 MB to 20 MB; a bound
//! second position is a binary search inside the sorted list.
mod codec;
mod error;
mod manifest;
mod provenance;
mod trees;
mod types;
mod writer;

use std::fs;
use std::path::{Path, PathBuf};

pub use codec::derived_aliases;
pub use error::StoreError;
pub use provenance::{Provenance, PROVENANCE_CODEC};
pub use types::{
    NameMatch, NamedTriple, Pattern, PredId, Stats, StoreOptions, Term, TermId, TermKind, Triple,
};
pub use writer::{StoreWriter, DEFAULT_ALIAS_PREDICATES, DEFAULT_PENDING_TRIPLES};

use error::io_err;
use manifest::{
    copy_dir, generation_dir, lock_dir, lock_dir_shared, lock_still_absent, read_manifest,
    remove_stale_generations,
};
use trees::Trees;

/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 3;
const FORMAT_NAME: &str = "zhishi-kg-store";
const MANIFEST: &str = "STORE.json";
const LOCK_FILE: &str = "LOCK";
/// Default sled page-cache size (sled's own default is ~1 GiB).
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// A read handle on a store. `Send + Sync`: share it behind an `Arc`.
pub struct Store {
    dir: PathBuf,
    /// The sled database directory: the generation itself, or a snapshot's private copy.
    db_dir: PathBuf,
    trees: Trees,
    stats: Stats,
    /// The content identity, computed on first request (a store handle only reads).
    identity: std::sync::OnceLock<crate::kg::identity::KgIdentity>,
    _hold: Hold,
}

/// What keeps a store's files valid while it is open.
enum Hold {
    /// The store's exclusive lock.
    Lock { _file: fs::File },
    /// A private copy of the generation, deleted when the store is dropped.
    Snapshot { _copy: tempfile::TempDir },
}

impl Store {
    /// Opens an existing store with default options.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Self::open_with(dir, &StoreOptions::default())
    }

    /// Opens an existing store.
    pub fn open_with(dir: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let manifest = read_manifest(dir)?;
        let lock = lock_dir(dir)?;
        let gen_dir = generation_dir(dir, manifest.generation);
        if !gen_dir.is_dir() {
            return Err(StoreError::Corrupt {
                path: dir.to_path_buf(),
                detail: format!("generation directory {} is missing", gen_dir.display()),
            });
        }
        remove_stale_generations(dir, Some(manifest.generation))?;
        Self::open_db(dir, gen_dir, options, Hold::Lock { _file: lock })
    }

    /// Opens a private read-only copy of the store's current generation, so any number of
    /// processes can read one store at once (e.g. `zhishi run --shard K/N` workers or Spark
    /// tasks). The copy is made under a shared lock (it fails with [`StoreError::Locked`]
    /// while another process has the store open normally or is importing), lives in the
    /// system temp directory, costs the store's size on disk and start-up time to copy, and is
    /// deleted when the handle is dropped. Artifacts written through a snapshot are discarded.
    ///
    /// Nothing is written into `dir` when its `LOCK` file exists, so a store the user cannot
    /// write (read-only permissions or mount) opens this way. A read-only store without a
    /// `LOCK` file cannot be locked, nor held by anyone: it is copied unlocked, and refused as
    /// [`StoreError::Locked`] if a writer created the file meanwhile.
    pub fn open_snapshot(dir: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        read_manifest(dir)?; // a store at all, before a lock file is created in `dir`
        let lock = lock_dir_shared(dir)?;
        let manifest = read_manifest(dir)?; // the generation current under the lock
        let gen_dir = generation_dir(dir, manifest.generation);
        if !gen_dir.is_dir() {
            return Err(StoreError::Corrupt {
                path: dir.to_path_buf(),
                detail: format!("generation directory {} is missing", gen_dir.display()),
            });
        }
        let copy = tempfile::Builder::new()
            .prefix("zhishi-kg-snapshot-")
            .tempdir()
            .map_err(io_err(&std::env::temp_dir()))?;
        copy_dir(&gen_dir, copy.path())?;
        if lock.is_none() && !lock_still_absent(dir) {
            return Err(StoreError::Locked {
                path: dir.to_path_buf(),
            });
        }
        drop(lock);
        let db_dir = copy.path().to_path_buf();
        Self::open_db(dir, db_dir, options, Hold::Snapshot { _copy: copy })
    }

    fn open_db(
        dir: &Path,
        db_dir: PathBuf,
        options: &StoreOptions,
        hold: Hold,
    ) -> Result<Store, StoreError> {
        let trees = Trees::open(&db_dir, options)?;
        trees.check_version()?;
        let stats = trees.load_stats()?;
        Ok(Store {
            dir: dir.to_path_buf(),
            db_dir,
            trees,
            stats,
            identity: std::sync::OnceLock::new(),
            _hold: hold,
        })
    }

    /// Where this handle keeps its content identity once computed
    /// ([`crate::text::KnowledgeSource::identity`] reads every triple once per handle).
    pub(crate) fn identity_cache(&self) -> &std::sync::OnceLock<crate::kg::identity::KgIdentity> {
        &self.identity
    }

    /// Whether this handle reads a private snapshot ([`Store::open_snapshot`]).
    pub fn is_snapshot(&self) -> bool {
        matches!(self._hold, Hold::Snapshot { .. })
    }

    /// Creates a new, empty store in `dir` (which must not hold a store yet) and opens it.
    pub fn create(dir: &Path) -> Result<Store, StoreError> {
        StoreWriter::begin(dir)?.commit()?;
        Self::open(dir)
    }
}

/// Test helpers shared by the `kg` modules.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A literal-object triple by name.
    pub(crate) fn triple(s: &str, p: &str, o: &str) -> NamedTriple {
        NamedTriple::literal(s, p, o)
    }

    /// A new store in a temporary directory holding `triples` (keep the directory alive).
    pub(crate) fn store_with(triples: &[(&str, &str, &str)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = StoreWriter::begin(dir.path()).unwrap();
        let batch: Vec<NamedTriple> = triples.iter().map(|(s, p, o)| triple(s, p, o)).collect();
        writer.apply(&batch).unwrap();
        writer.commit().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    /// Every triple matching `pattern`, by name, sorted.
    pub(crate) fn names(store: &Store, pattern: Pattern) -> Vec<(String, String, String)> {
        let mut out: Vec<_> = store
            .triples(pattern)
            .map(|t| {
                let t = t.unwrap();
                (
                    store.term(t.subject).unwrap().unwrap().name,
                    store.predicate_name(t.predicate).unwrap().unwrap(),
                    store.term(t.object).unwrap().unwrap().name,
                )
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{names, store_with, triple};
    use super::*;

    #[test]
    fn stores_and_queries_triples_by_every_pattern() {
        let (_dir, store) = store_with(&[
            ("山西大学", "所在地", "太原"),
            ("山西大学", "建筑面积", "100万平方米"),
            ("太原", "所属省份", "山西"),
            ("山西大学", "所在地", "太原"),
        ]);
        let stats = store.stats();
        assert_eq!(stats.triples, 3);
        assert_eq!(stats.relations, 3);
        assert_eq!(stats.terms, 4);
        assert_eq!(stats.entities, 2, "山西大学 and 太原 are subjects");
        assert_eq!(stats.literals, 2);
        let sx = store.term_id("山西大学").unwrap().unwrap();
        let ty = store.term_id("太原").unwrap().unwrap();
        let loc = store.predicate_id("所在地").unwrap().unwrap();
        let by_subject = names(
            &store,
            Pattern {
                subject: Some(sx),
                ..Default::default()
            },
        );
        assert_eq!(by_subject.len(), 2);
        let by_object = names(
            &store,
            Pattern {
                object: Some(ty),
                ..Default::default()
            },
        );
        assert_eq!(
            by_object,
            vec![("山西大学".into(), "所在地".into(), "太原".into())]
        );
        let by_pred = names(
            &store,
            Pattern {
                predicate: Some(loc),
                ..Default::default()
            },
        );
        assert_eq!(by_pred, by_object);
        let sp = names(
            &store,
            Pattern {
                subject: Some(sx),
                predicate: Some(loc),
                object: None,
            },
        );
        assert_eq!(sp, by_object);
        let so = names(
            &store,
            Pattern {
                subject: Some(sx),
                predicate: None,
                object: Some(ty),
            },
        );
        assert_eq!(so, by_object);
        let po = names(
            &store,
            Pattern {
                subject: None,
                predicate: Some(loc),
                object: Some(ty),
            },
        );
        assert_eq!(po, by_object);
        assert_eq!(names(&store, Pattern::default()).len(), 3);
        assert_eq!(store.term(ty).unwrap().unwrap().degree, 2);
    }

    #[test]
    fn name_index_finds_canonical_names_and_aliases() {
        let (_dir, store) = store_with(&[
            ("苹果（水果）", "类别", "水果"),
            ("苹果公司", "简称", "苹果"),
            ("苹果公司", "总部", "库比蒂诺"),
        ]);
        let fruit = store.term_id("苹果（水果）").unwrap().unwrap();
        let company = store.term_id("苹果公司").unwrap().unwrap();
        let candidates: Vec<TermId> = store
            .candidates("苹果")
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(
            candidates,
            vec![company, fruit],
            "company has the higher degree"
        );
        let all: Vec<(String, TermId)> = store.names().map(|n| n.unwrap()).collect();
        assert!(all.contains(&("苹果".to_string(), fruit)));
        assert!(all.contains(&("苹果公司".to_string(), company)));
        assert!(
            !all.iter().any(|(n, _)| n == "水果"),
            "literals are not names"
        );
    }

    #[test]
    fn a_second_open_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let _store = Store::create(dir.path()).unwrap();
        let second = Store::open(dir.path());
        assert!(matches!(second, Err(StoreError::Locked { .. })));
    }

    #[test]
    fn snapshots_let_many_readers_share_a_store_but_not_with_an_exclusive_holder() {
        let (dir, store) = store_with(&[("北京", "首都", "中国"), ("上海", "位于", "中国")]);
        let expected = names(&store, Pattern::default());
        assert!(matches!(
            Store::open_snapshot(dir.path(), &StoreOptions::default()),
            Err(StoreError::Locked { .. })
        ));
        drop(store);
        let a = Store::open_snapshot(dir.path(), &StoreOptions::default()).unwrap();
        let b = Store::open_snapshot(dir.path(), &StoreOptions::default()).unwrap();
        assert!(a.is_snapshot() && b.is_snapshot());
        assert_eq!(names(&a, Pattern::default()), expected);
        assert_eq!(names(&b, Pattern::default()), expected);
        // Snapshots hold no lock once open: a writer may commit meanwhile, and the
        // snapshots keep reading what they copied.
        let mut writer = StoreWriter::begin(dir.path()).unwrap();
        writer.apply(&[triple("广州", "位于", "中国")]).unwrap();
        writer.commit().unwrap();
        assert_eq!(names(&a, Pattern::default()), expected);
        let copy = a.db_dir.clone();
        drop(a);
        assert!(
            !copy.exists(),
            "the private copy is deleted with the handle"
        );
        let fresh = Store::open(dir.path()).unwrap();
        assert_eq!(fresh.stats().triples, 3);
    }

    #[test]
    fn a_snapshot_of_a_missing_store_is_an_error_without_side_effects() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open_snapshot(dir.path(), &StoreOptions::default());
        assert!(matches!(err, Err(StoreError::NotAStore(_))));
        assert!(!dir.path().join(LOCK_FILE).exists());
    }

    #[test]
    fn a_directory_that_is_not_a_store_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::NotAStore(_))
        ));
        assert!(matches!(
            StoreWriter::begin(dir.path()),
            Err(StoreError::NotAStore(_))
        ));
        let missing = dir.path().join("nope");
        assert!(matches!(Store::open(&missing), Err(StoreError::Missing(_))));
    }

    #[test]
    fn an_incompatible_version_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::create(dir.path()).unwrap());
        let manifest = dir.path().join(MANIFEST);
        let text = std::fs::read_to_string(&manifest)
            .unwrap()
            .replace(&format!("\"version\": {FORMAT_VERSION}"), "\"version\": 99");
        std::fs::write(&manifest, text).unwrap();
        match Store::open(dir.path()) {
            Err(StoreError::IncompatibleVersion { found: 99, .. }) => {}
            other => panic!("expected a version error, got {:?}", other.err()),
        }
    }
}
