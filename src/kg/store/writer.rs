//! The write side: [`StoreWriter`] sessions that build a new generation, intern names into
//! ids, buffer triples and merge them into the packed adjacency lists, write aliases,
//! compact, and commit the generation by rewriting the manifest.
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use super::codec::{
    be, check_name, derived_aliases, encode_term_info, pack_pairs, pair, unpack_pairs,
};
use super::error::io_err;
use super::manifest::{
    copy_dir, generation_dir, lock_dir, read_manifest, remove_stale_generations, write_manifest,
};
use super::trees::Trees;
use super::{
    NamedTriple, PredId, Stats, StoreError, StoreOptions, TermId, TermKind, Triple, FORMAT_VERSION,
    LOCK_FILE,
};

/// An open write session: batches go to a fresh generation that becomes current on
/// [`StoreWriter::commit`]. Dropping it without committing discards the work.
pub struct StoreWriter {
    dir: PathBuf,
    old_generation: Option<u64>,
    new_generation: u64,
    trees: Trees,
    stats: Stats,
    alias_predicates: Vec<String>,
    options: StoreOptions,
    interner: Interner,
    pending: Vec<Triple>,
    pending_limit: usize,
    _lock: fs::File,
}

/// Triples buffered by a writer before they are merged into the indexes (12 bytes each).
pub const DEFAULT_PENDING_TRIPLES: usize = 8_000_000;

/// Predicates whose objects are alternative names of the subject.
pub const DEFAULT_ALIAS_PREDICATES: &[&str] = &[
    "别名",
    "中文名",
    "中文名称",
    "简称",
    "又名",
    "外文名",
    "英文名",
    "英文名称",
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://www.w3.org/2004/02/skos/core#altLabel",
    "http://www.w3.org/2004/02/skos/core#prefLabel",
];

impl StoreWriter {
    /// Starts a write session on `dir`, creating the store if the directory is empty or
    /// missing. Fails if `dir` exists, is not empty and is not a store.
    pub fn begin(dir: &Path) -> Result<StoreWriter, StoreError> {
        Self::begin_with(dir, &StoreOptions::default())
    }

    /// Like [`StoreWriter::begin`] with explicit options.
    pub fn begin_with(dir: &Path, options: &StoreOptions) -> Result<StoreWriter, StoreError> {
        // What the directory is, before anything is created or locked: a directory that is
        // not a store is refused untouched.
        match read_manifest(dir) {
            Ok(_) => {}
            Err(StoreError::Missing(_)) => {
                fs::create_dir_all(dir).map_err(io_err(dir))?;
            }
            Err(StoreError::NotAStore(path)) => {
                let empty = fs::read_dir(dir).map_err(io_err(dir))?.flatten().all(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    // Left behind by a failed first import.
                    name == LOCK_FILE || (name.starts_with("gen-") && name.ends_with(".tmp"))
                });
                if !empty {
                    return Err(StoreError::NotAStore(path));
                }
            }
            Err(e) => return Err(e),
        }
        let lock = lock_dir(dir)?;
        // Read again under the lock: a writer that held it meanwhile may have committed a
        // generation (and removed the one read before), which this session must build on.
        let old_generation = match read_manifest(dir) {
            Ok(manifest) => Some(manifest.generation),
            Err(StoreError::Missing(_) | StoreError::NotAStore(_)) => None,
            Err(e) => return Err(e),
        };
        remove_stale_generations(dir, old_generation)?;
        let new_generation = old_generation.map_or(1, |g| g + 1);
        let work_dir = dir.join(format!("gen-{new_generation}.tmp"));
        if let Some(old) = old_generation {
            copy_dir(&generation_dir(dir, old), &work_dir)?;
        }
        let trees = Trees::open(&work_dir, options)?;
        trees.check_version()?;
        let stats = trees.load_stats()?;
        Ok(StoreWriter {
            dir: dir.to_path_buf(),
            old_generation,
            new_generation,
            trees,
            stats,
            alias_predicates: DEFAULT_ALIAS_PREDICATES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            options: options.clone(),
            interner: Interner {
                terms: HashMap::new(),
                fresh: HashMap::new(),
                preds: HashMap::new(),
            },
            pending: Vec::new(),
            pending_limit: DEFAULT_PENDING_TRIPLES,
            _lock: lock,
        })
    }

    /// The new generation's trees.
    pub(super) fn trees(&self) -> &Trees {
        &self.trees
    }

    /// Counters including everything applied so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Adds a batch of triples; duplicates (within the batch or against the store) count
    /// once. Triples are buffered (at most `pending_limit` ids in memory) and indexed in
    /// large sorted runs; [`StoreWriter::stats`] counts them once they are indexed.
    pub fn apply(&mut self, batch: &[NamedTriple]) -> Result<(), StoreError> {
        for t in batch {
            check_name(&t.subject)?;
            check_name(&t.predicate)?;
            check_name(&t.object)?;
        }
        let trees = &self.trees;
        let mut aliases = Vec::new();
        for t in batch {
            let stats = &mut self.stats;
            let s = self
                .interner
                .term(trees, stats, &mut aliases, &t.subject, TermKind::Entity)?;
            let p = self.interner.predicate(trees, stats, &t.predicate)?;
            let o = self
                .interner
                .term(trees, stats, &mut aliases, &t.object, t.object_kind)?;
            if t.object != t.subject && self.alias_predicates.iter().any(|a| a == &t.predicate) {
                aliases.push((t.object.clone(), s));
            }
            self.pending.push(Triple {
                subject: s,
                predicate: p,
                object: o,
            });
        }
        self.interner.write_fresh(trees)?;
        write_aliases(trees, &mut self.stats, aliases)?;
        if self.pending.len() >= self.pending_limit {
            flush_triples(trees, &mut self.stats, &mut self.pending)?;
        }
        Ok(())
    }

    /// Sets how many triples are buffered before they are merged into the indexes.
    pub fn set_pending_limit(&mut self, triples: usize) {
        self.pending_limit = triples.max(1);
    }

    /// Abandons the write session: the new generation's work directories are removed (while
    /// the store's lock is still held) and the store stays as it was.
    pub fn abort(self) {
        let StoreWriter {
            dir,
            new_generation,
            trees,
            _lock,
            ..
        } = self;
        drop(trees);
        remove_work_dirs(&dir, new_generation);
        drop(_lock);
    }

    /// Flushes the new generation and makes it current; the old one is removed. On failure
    /// (a full disk, say) the new generation's work directories are removed and the store
    /// stays as it was.
    pub fn commit(mut self) -> Result<Stats, StoreError> {
        if let Err(e) = flush_triples(&self.trees, &mut self.stats, &mut self.pending) {
            self.abort();
            return Err(e);
        }
        let (dir, generation) = (self.dir.clone(), self.new_generation);
        let committed = self.commit_flushed();
        if committed.is_err() {
            remove_work_dirs(&dir, generation);
        }
        committed
    }

    /// [`StoreWriter::commit`] after the pending triples are flushed.
    fn commit_flushed(self) -> Result<Stats, StoreError> {
        let trees = self.trees;
        let err = trees.db_err();
        trees
            .meta
            .insert("format_version", &be(FORMAT_VERSION))
            .map_err(&err)?;
        let stats_json =
            serde_json::to_vec(&self.stats).map_err(|e| trees.corrupt(e.to_string()))?;
        trees.meta.insert("stats", stats_json).map_err(&err)?;
        trees.db.flush().map_err(&err)?;
        drop(err);
        let work_dir = self.dir.join(format!("gen-{}.tmp", self.new_generation));
        let compact_dir = self
            .dir
            .join(format!("gen-{}.compact.tmp", self.new_generation));
        compact_into(&trees, &compact_dir, &self.options)?;
        drop(trees);
        let artifacts = work_dir.join("artifacts");
        if artifacts.is_dir() {
            let target = compact_dir.join("artifacts");
            fs::rename(&artifacts, &target).map_err(io_err(&target))?;
        }
        fs::remove_dir_all(&work_dir).map_err(io_err(&work_dir))?;
        let final_dir = generation_dir(&self.dir, self.new_generation);
        fs::rename(&compact_dir, &final_dir).map_err(io_err(&final_dir))?;
        write_manifest(&self.dir, self.new_generation)?;
        if let Some(old) = self.old_generation {
            let old_dir = generation_dir(&self.dir, old);
            fs::remove_dir_all(&old_dir).map_err(io_err(&old_dir))?;
        }
        Ok(self.stats)
    }
}

/// Removes generation `generation`'s work directories (`gen-N.tmp`, `gen-N.compact.tmp`).
fn remove_work_dirs(dir: &Path, generation: u64) {
    for name in [
        format!("gen-{generation}.tmp"),
        format!("gen-{generation}.compact.tmp"),
    ] {
        let path = dir.join(name);
        if path.exists() {
            if let Err(e) = fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), "cannot remove a failed import's work directory: {e}");
            }
        }
    }
}

/// Rewrites every tree in key order into a fresh database at `dir`.
///
/// sled is log-structured: a long import leaves superseded page versions behind (measured
/// here: 50 MB on disk for 81k triples). A sequential rewrite stores each page once, which
/// shrinks the store several-fold and makes the next open faster.
fn compact_into(from: &Trees, dir: &Path, options: &StoreOptions) -> Result<(), StoreError> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(io_err(dir))?;
    }
    let to = Trees::open(dir, options)?;
    let pairs = [
        (&from.meta, &to.meta),
        (&from.terms, &to.terms),
        (&from.term_info, &to.term_info),
        (&from.preds, &to.preds),
        (&from.pred_names, &to.pred_names),
        (&from.s_po, &to.s_po),
        (&from.o_sp, &to.o_sp),
        (&from.p_os, &to.p_os),
        (&from.aliases, &to.aliases),
        (&from.provenance, &to.provenance),
    ];
    for (source, target) in pairs {
        let mut batch = ChunkedBatch::new(target);
        for item in source.iter() {
            let (key, value) = item.map_err(from.db_err())?;
            batch.insert(key, value).map_err(to.db_err())?;
        }
        batch.finish().map_err(to.db_err())?;
    }
    to.db.flush().map_err(to.db_err())?;
    Ok(())
}

/// Writes to one tree in sled batches of bounded size: a single batch of hundreds of
/// thousands of keys is materialised whole by sled and was measured to drive import RSS
/// into gigabytes.
struct ChunkedBatch<'a> {
    tree: &'a sled::Tree,
    batch: sled::Batch,
    pending: usize,
}

/// Keys per sled batch.
const BATCH_KEYS: usize = 10_000;

impl<'a> ChunkedBatch<'a> {
    fn new(tree: &'a sled::Tree) -> Self {
        Self {
            tree,
            batch: sled::Batch::default(),
            pending: 0,
        }
    }

    fn insert(
        &mut self,
        key: impl Into<sled::IVec>,
        value: impl Into<sled::IVec>,
    ) -> sled::Result<()> {
        self.batch.insert(key, value);
        self.pending += 1;
        if self.pending >= BATCH_KEYS {
            self.tree.apply_batch(std::mem::take(&mut self.batch))?;
            self.pending = 0;
        }
        Ok(())
    }

    fn finish(self) -> sled::Result<()> {
        self.tree.apply_batch(self.batch)
    }
}

/// Merges `additions` into the sorted list of id pairs stored under `key`; returns the
/// pairs that were new.
fn merge_list(
    tree: &sled::Tree,
    key: &[u8],
    mut additions: Vec<u64>,
    out: &mut ChunkedBatch<'_>,
) -> sled::Result<Vec<u64>> {
    additions.sort_unstable();
    additions.dedup();
    let existing: Vec<u64> = match tree.get(key)? {
        Some(value) => unpack_pairs(&value).collect(),
        None => Vec::new(),
    };
    let added: Vec<u64> = additions
        .into_iter()
        .filter(|x| existing.binary_search(x).is_err())
        .collect();
    if !added.is_empty() {
        let mut merged = existing;
        merged.extend_from_slice(&added);
        merged.sort_unstable();
        out.insert(key, pack_pairs(&merged))?;
    }
    Ok(added)
}

/// Interns names into ids, writing new term and predicate records (and the aliases they
/// imply) as they appear. Triples themselves are buffered and indexed by [`flush_triples`].
struct Interner {
    /// Names seen in earlier batches (bounded by `INTERN_CACHE_LIMIT`).
    terms: HashMap<String, (TermId, TermKind)>,
    /// Terms created by the current batch, written in one go by `write_fresh` (single
    /// sled inserts per new term were measured at ~60 µs each: HowNet imported at 6k/s).
    fresh: HashMap<String, (TermId, TermKind)>,
    preds: HashMap<String, PredId>,
}

/// Names cached between batches; beyond this the store's own index answers.
const INTERN_CACHE_LIMIT: usize = 4_000_000;

impl Interner {
    fn term(
        &mut self,
        trees: &Trees,
        stats: &mut Stats,
        aliases: &mut Vec<(String, TermId)>,
        name: &str,
        kind: TermKind,
    ) -> Result<TermId, StoreError> {
        let err = trees.db_err();
        if let Some(entry) = self.fresh.get_mut(name) {
            let id = entry.0;
            if kind == TermKind::Entity && entry.1 == TermKind::Literal {
                entry.1 = TermKind::Entity;
                stats.literals -= 1;
                stats.entities += 1;
                aliases.extend(derived_aliases(name).into_iter().map(|a| (a, id)));
            }
            return Ok(id);
        }
        let known = match self.terms.get(name) {
            Some(&entry) => Some(entry),
            None => match trees.term_id(name)? {
                Some(id) => {
                    let term = trees
                        .term(id)?
                        .ok_or_else(|| trees.corrupt(format!("term {id} has no record")))?;
                    Some((id, term.kind))
                }
                None => None,
            },
        };
        let Some((id, current)) = known else {
            let id =
                u32::try_from(stats.terms).map_err(|_| trees.corrupt("more than 2^32 terms"))?;
            stats.terms += 1;
            match kind {
                TermKind::Entity => {
                    stats.entities += 1;
                    aliases.extend(derived_aliases(name).into_iter().map(|a| (a, id)));
                }
                TermKind::Literal => stats.literals += 1,
            }
            self.fresh.insert(name.to_string(), (id, kind));
            return Ok(id);
        };
        let mut now = current;
        if kind == TermKind::Entity && current == TermKind::Literal {
            // A literal used as a subject becomes an entity.
            let term = trees
                .term(id)?
                .ok_or_else(|| trees.corrupt(format!("term {id} has no record")))?;
            trees
                .term_info
                .insert(
                    be(id),
                    encode_term_info(TermKind::Entity, term.degree, name),
                )
                .map_err(&err)?;
            stats.literals -= 1;
            stats.entities += 1;
            aliases.extend(derived_aliases(name).into_iter().map(|a| (a, id)));
            now = TermKind::Entity;
        }
        if self.terms.len() < INTERN_CACHE_LIMIT || self.terms.contains_key(name) {
            self.terms.insert(name.to_string(), (id, now));
        }
        Ok(id)
    }

    /// Writes the current batch's new terms and moves them into the cache while it has room.
    fn write_fresh(&mut self, trees: &Trees) -> Result<(), StoreError> {
        let err = trees.db_err();
        let mut fresh: Vec<(String, (TermId, TermKind))> = self.fresh.drain().collect();
        fresh.sort_unstable_by_key(|(_, (id, _))| *id);
        let mut info = ChunkedBatch::new(&trees.term_info);
        for (name, (id, kind)) in &fresh {
            info.insert(&be(*id), encode_term_info(*kind, 0, name))
                .map_err(&err)?;
        }
        info.finish().map_err(&err)?;
        fresh.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut names = ChunkedBatch::new(&trees.terms);
        for (name, (id, _)) in &fresh {
            names.insert(name.as_bytes(), &be(*id)).map_err(&err)?;
        }
        names.finish().map_err(&err)?;
        for (name, entry) in fresh {
            if self.terms.len() >= INTERN_CACHE_LIMIT {
                break;
            }
            self.terms.insert(name, entry);
        }
        Ok(())
    }

    fn predicate(
        &mut self,
        trees: &Trees,
        stats: &mut Stats,
        name: &str,
    ) -> Result<PredId, StoreError> {
        if let Some(&id) = self.preds.get(name) {
            return Ok(id);
        }
        let id = match trees.predicate_id(name)? {
            Some(id) => id,
            None => {
                let id = u32::try_from(stats.relations)
                    .map_err(|_| trees.corrupt("more than 2^32 predicates"))?;
                stats.relations += 1;
                let err = trees.db_err();
                trees.preds.insert(name.as_bytes(), &be(id)).map_err(&err)?;
                trees
                    .pred_names
                    .insert(be(id), name.as_bytes())
                    .map_err(&err)?;
                id
            }
        };
        self.preds.insert(name.to_string(), id);
        Ok(id)
    }
}

/// Adds (alias, entity) pairs to the name index, counting the new ones.
fn write_aliases(
    trees: &Trees,
    stats: &mut Stats,
    mut pairs: Vec<(String, TermId)>,
) -> Result<(), StoreError> {
    let err = trees.db_err();
    pairs.sort();
    pairs.dedup();
    let mut batch = sled::Batch::default();
    for (alias, id) in pairs {
        if check_name(&alias).is_err() {
            continue;
        }
        let mut key = alias.into_bytes();
        key.push(0);
        key.extend_from_slice(&be(id));
        if !trees.aliases.contains_key(&key).map_err(&err)? {
            batch.insert(key, &[]);
            stats.aliases += 1;
        }
    }
    trees.aliases.apply_batch(batch).map_err(&err)
}

/// Merges buffered id triples into the three indexes and updates degrees and counters.
/// Buffering many batches before merging means each packed list is rewritten once per
/// flush instead of once per input batch (a random 1M-triple import touched every list in
/// every 100k-line batch: 4k triples/s and 2 GB RSS before this).
fn flush_triples(
    trees: &Trees,
    stats: &mut Stats,
    pending: &mut Vec<Triple>,
) -> Result<(), StoreError> {
    let err = trees.db_err();
    pending.sort_unstable();
    pending.dedup();
    // Subject lists decide which triples are new; the other two indexes follow.
    let mut s_batch = ChunkedBatch::new(&trees.s_po);
    let mut new_triples: Vec<Triple> = Vec::new();
    for group in pending.chunk_by(|a, b| a.subject == b.subject) {
        let s = group[0].subject;
        let pairs = group
            .iter()
            .map(|t| u64::from(t.predicate) << 32 | u64::from(t.object))
            .collect();
        let added = merge_list(&trees.s_po, &be(s), pairs, &mut s_batch).map_err(&err)?;
        new_triples.extend(added.into_iter().map(|x| {
            let (p, o) = pair(x);
            Triple {
                subject: s,
                predicate: p,
                object: o,
            }
        }));
    }
    pending.clear();
    s_batch.finish().map_err(&err)?;

    let mut degree: BTreeMap<TermId, u32> = BTreeMap::new();
    for t in &new_triples {
        *degree.entry(t.subject).or_default() += 1;
        if t.object != t.subject {
            *degree.entry(t.object).or_default() += 1;
        }
    }
    new_triples.sort_unstable_by_key(|t| (t.object, t.subject, t.predicate));
    let mut o_batch = ChunkedBatch::new(&trees.o_sp);
    for group in new_triples.chunk_by(|a, b| a.object == b.object) {
        let pairs = group
            .iter()
            .map(|t| u64::from(t.subject) << 32 | u64::from(t.predicate))
            .collect();
        merge_list(&trees.o_sp, &be(group[0].object), pairs, &mut o_batch).map_err(&err)?;
    }
    o_batch.finish().map_err(&err)?;
    new_triples.sort_unstable_by_key(|t| (t.predicate, t.object, t.subject));
    let mut p_batch = ChunkedBatch::new(&trees.p_os);
    for group in new_triples.chunk_by(|a, b| a.predicate == b.predicate) {
        let pairs = group
            .iter()
            .map(|t| u64::from(t.object) << 32 | u64::from(t.subject))
            .collect();
        merge_list(&trees.p_os, &be(group[0].predicate), pairs, &mut p_batch).map_err(&err)?;
    }
    p_batch.finish().map_err(&err)?;

    let mut info_batch = ChunkedBatch::new(&trees.term_info);
    for (id, delta) in degree {
        let term = trees
            .term(id)?
            .ok_or_else(|| trees.corrupt(format!("term {id} has no record")))?;
        let degree = term.degree.saturating_add(delta);
        info_batch
            .insert(&be(id), encode_term_info(term.kind, degree, &term.name))
            .map_err(&err)?;
    }
    info_batch.finish().map_err(&err)?;
    stats.triples += new_triples.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{names, triple};
    use super::super::{Pattern, Store};
    use super::*;

    #[test]
    fn small_flushes_index_exactly_like_one_large_flush() {
        let triples: Vec<NamedTriple> = (0..50)
            .map(|i| {
                triple(
                    &format!("e{}", i % 7),
                    &format!("p{}", i % 3),
                    &format!("e{}", (i * 5) % 11),
                )
            })
            .collect();
        let dump = |limit: usize| {
            let dir = tempfile::tempdir().unwrap();
            let mut writer = StoreWriter::begin(dir.path()).unwrap();
            writer.set_pending_limit(limit);
            for chunk in triples.chunks(4) {
                writer.apply(chunk).unwrap();
            }
            writer.commit().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let degrees: Vec<u32> = (0..store.stats().terms as u32)
                .map(|id| store.term(id).unwrap().unwrap().degree)
                .collect();
            (store.stats(), names(&store, Pattern::default()), degrees)
        };
        let (stats, all, degrees) = dump(3);
        assert_eq!((stats, all.clone(), degrees.clone()), dump(1_000));
        let distinct: std::collections::HashSet<_> = triples
            .iter()
            .map(|t| (&t.subject, &t.predicate, &t.object))
            .collect();
        assert_eq!(stats.triples, distinct.len() as u64);
        assert_eq!(
            degrees.iter().map(|&d| d as u64).sum::<u64>(),
            2 * stats.triples - all.iter().filter(|t| t.0 == t.2).count() as u64
        );
    }

    #[test]
    fn a_writer_dropped_without_commit_leaves_the_store_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = StoreWriter::begin(dir.path()).unwrap();
        writer.apply(&[triple("a", "p", "b")]).unwrap();
        writer.commit().unwrap();
        let mut writer = StoreWriter::begin(dir.path()).unwrap();
        writer.apply(&[triple("c", "p", "d")]).unwrap();
        drop(writer);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.stats().triples, 1);
        assert_eq!(store.term_id("c").unwrap(), None);
    }
}
