//! The read side: the sled trees of one generation ([`Trees`]: open, point lookups, pattern
//! scans over the packed adjacency lists) and [`Store`]'s queries and `verify` over them.
use std::fs;
use std::path::{Path, PathBuf};

use super::codec::{be, decode_term_info, pair, pairs_with_first, read_u32, unpack_pairs};
use super::error::io_err;
use super::{
    NameMatch, Pattern, PredId, Stats, Store, StoreError, StoreOptions, Term, TermId, TermKind,
    Triple, FORMAT_VERSION,
};

/// The sled trees of one generation.
pub(super) struct Trees {
    pub(super) path: PathBuf,
    pub(super) db: sled::Db,
    pub(super) meta: sled::Tree,
    pub(super) terms: sled::Tree,
    pub(super) term_info: sled::Tree,
    pub(super) preds: sled::Tree,
    pub(super) pred_names: sled::Tree,
    pub(super) s_po: sled::Tree,
    pub(super) o_sp: sled::Tree,
    pub(super) p_os: sled::Tree,
    pub(super) aliases: sled::Tree,
    /// Where triples came from ([`super::provenance`]).
    pub(super) provenance: sled::Tree,
}

impl Trees {
    pub(super) fn open(path: &Path, options: &StoreOptions) -> Result<Trees, StoreError> {
        let db_err = |source| StoreError::Db {
            path: path.to_path_buf(),
            source,
        };
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(options.cache_bytes)
            .mode(sled::Mode::LowSpace)
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    StoreError::Locked {
                        path: path.to_path_buf(),
                    }
                }
                sled::Error::Corruption { .. } | sled::Error::ReportableBug(_) => {
                    StoreError::Corrupt {
                        path: path.to_path_buf(),
                        detail: e.to_string(),
                    }
                }
                other => db_err(other),
            })?;
        let tree = |name: &str| db.open_tree(name).map_err(db_err);
        Ok(Trees {
            meta: tree("meta")?,
            terms: tree("terms")?,
            term_info: tree("term_info")?,
            preds: tree("preds")?,
            pred_names: tree("pred_names")?,
            s_po: tree("s_po")?,
            o_sp: tree("o_sp")?,
            p_os: tree("p_os")?,
            aliases: tree("aliases")?,
            provenance: tree("provenance")?,
            path: path.to_path_buf(),
            db,
        })
    }

    pub(super) fn db_err(&self) -> impl Fn(sled::Error) -> StoreError + '_ {
        move |source| StoreError::Db {
            path: self.path.clone(),
            source,
        }
    }

    pub(super) fn corrupt(&self, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    pub(super) fn load_stats(&self) -> Result<Stats, StoreError> {
        match self.meta.get("stats").map_err(self.db_err())? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| self.corrupt(format!("bad stats record: {e}"))),
            None => Ok(Stats::default()),
        }
    }

    pub(super) fn check_version(&self) -> Result<(), StoreError> {
        if let Some(bytes) = self.meta.get("format_version").map_err(self.db_err())? {
            let found = read_u32(&bytes).ok_or_else(|| self.corrupt("bad format_version"))?;
            if found != FORMAT_VERSION {
                return Err(StoreError::IncompatibleVersion {
                    path: self.path.clone(),
                    found,
                    expected: FORMAT_VERSION,
                });
            }
        }
        Ok(())
    }

    pub(super) fn term_id(&self, name: &str) -> Result<Option<TermId>, StoreError> {
        match self.terms.get(name.as_bytes()).map_err(self.db_err())? {
            Some(v) => Ok(Some(
                read_u32(&v).ok_or_else(|| self.corrupt("bad term id"))?,
            )),
            None => Ok(None),
        }
    }

    pub(super) fn term(&self, id: TermId) -> Result<Option<Term>, StoreError> {
        match self.term_info.get(be(id)).map_err(self.db_err())? {
            Some(v) => {
                Ok(Some(decode_term_info(id, &v).ok_or_else(|| {
                    self.corrupt(format!("bad record for term {id}"))
                })?))
            }
            None => Ok(None),
        }
    }

    pub(super) fn predicate_id(&self, name: &str) -> Result<Option<PredId>, StoreError> {
        match self.preds.get(name.as_bytes()).map_err(self.db_err())? {
            Some(v) => Ok(Some(
                read_u32(&v).ok_or_else(|| self.corrupt("bad predicate id"))?,
            )),
            None => Ok(None),
        }
    }

    pub(super) fn predicate_name(&self, id: PredId) -> Result<Option<String>, StoreError> {
        match self.pred_names.get(be(id)).map_err(self.db_err())? {
            Some(v) => {
                Ok(Some(String::from_utf8(v.to_vec()).map_err(|_| {
                    self.corrupt(format!("bad name for predicate {id}"))
                })?))
            }
            None => Ok(None),
        }
    }

    pub(super) fn candidates(&self, name: &str) -> Result<Vec<NameMatch>, StoreError> {
        let mut ids = Vec::new();
        if let Some(id) = self.term_id(name)? {
            ids.push(id);
        }
        let mut prefix = name.as_bytes().to_vec();
        prefix.push(0);
        for item in self.aliases.scan_prefix(&prefix) {
            let (key, _) = item.map_err(self.db_err())?;
            let id = read_u32(&key[prefix.len()..]).ok_or_else(|| self.corrupt("bad alias key"))?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let term = self
                .term(id)?
                .ok_or_else(|| self.corrupt(format!("name index points to missing term {id}")))?;
            if term.kind == TermKind::Entity {
                out.push(NameMatch {
                    id,
                    degree: term.degree,
                });
            }
        }
        out.sort_by(|a, b| b.degree.cmp(&a.degree).then(a.id.cmp(&b.id)));
        Ok(out)
    }
}

type TripleIter<'a> = Box<dyn Iterator<Item = Result<Triple, StoreError>> + Send + 'a>;

impl Trees {
    fn pair_list(&self, tree: &sled::Tree, id: u32) -> Result<Vec<u64>, StoreError> {
        Ok(match tree.get(be(id)).map_err(self.db_err())? {
            Some(value) => unpack_pairs(&value).collect(),
            None => Vec::new(),
        })
    }

    pub(super) fn triples(&self, pattern: Pattern) -> TripleIter<'_> {
        let triple = |subject, predicate, object| Triple {
            subject,
            predicate,
            object,
        };
        let result: Result<Vec<Triple>, StoreError> =
            match (pattern.subject, pattern.predicate, pattern.object) {
                (Some(s), p, o @ None) | (Some(s), p @ Some(_), o) => {
                    self.pair_list(&self.s_po, s).map(|list| {
                        let list = match p {
                            Some(p) => pairs_with_first(&list, p),
                            None => &list[..],
                        };
                        list.iter()
                            .map(|&x| pair(x))
                            .filter(|&(_, obj)| o.is_none_or(|o| o == obj))
                            .map(|(p, o)| triple(s, p, o))
                            .collect()
                    })
                }
                (s, None, Some(o)) => self.pair_list(&self.o_sp, o).map(|list| {
                    let list = match s {
                        Some(s) => pairs_with_first(&list, s),
                        None => &list[..],
                    };
                    list.iter()
                        .map(|&x| pair(x))
                        .map(|(s, p)| triple(s, p, o))
                        .collect()
                }),
                (None, Some(p), o) => self.pair_list(&self.p_os, p).map(|list| {
                    let list = match o {
                        Some(o) => pairs_with_first(&list, o),
                        None => &list[..],
                    };
                    list.iter()
                        .map(|&x| pair(x))
                        .map(|(o, s)| triple(s, p, o))
                        .collect()
                }),
                (None, None, None) => {
                    let err = self.db_err();
                    let corrupt = || self.corrupt("bad subject index key");
                    return Box::new(self.s_po.iter().flat_map(move |item| {
                        let rows: Vec<Result<Triple, StoreError>> = match item {
                            Err(e) => vec![Err(err(e))],
                            Ok((key, value)) => match read_u32(&key) {
                                Some(s) => unpack_pairs(&value)
                                    .map(pair)
                                    .map(|(p, o)| Ok(triple(s, p, o)))
                                    .collect(),
                                None => vec![Err(corrupt())],
                            },
                        };
                        rows
                    }));
                }
            };
        match result {
            Ok(rows) => Box::new(rows.into_iter().map(Ok)),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
}

impl Store {
    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counts of entities, literals, relations, triples and aliases (O(1)).
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Looks up a term by its exact canonical name.
    pub fn term_id(&self, name: &str) -> Result<Option<TermId>, StoreError> {
        self.trees.term_id(name)
    }

    /// Reads a term's name, kind and degree.
    pub fn term(&self, id: TermId) -> Result<Option<Term>, StoreError> {
        self.trees.term(id)
    }

    /// Looks up a predicate by name.
    pub fn predicate_id(&self, name: &str) -> Result<Option<PredId>, StoreError> {
        self.trees.predicate_id(name)
    }

    /// Reads a predicate's name.
    pub fn predicate_name(&self, id: PredId) -> Result<Option<String>, StoreError> {
        self.trees.predicate_name(id)
    }

    /// Triples matching a pattern; every combination of bound positions is an index seek.
    pub fn triples(
        &self,
        pattern: Pattern,
    ) -> impl Iterator<Item = Result<Triple, StoreError>> + '_ {
        self.trees.triples(pattern)
    }

    /// Entities whose canonical name or alias is exactly `name`, most popular first.
    pub fn candidates(&self, name: &str) -> Result<Vec<NameMatch>, StoreError> {
        self.trees.candidates(name)
    }

    /// Every entity name and alias with the entity it names (for building a mention matcher).
    pub fn names(&self) -> impl Iterator<Item = Result<(String, TermId), StoreError>> + '_ {
        let trees = &self.trees;
        let canonical = trees.term_info.iter().filter_map(move |item| match item {
            Err(e) => Some(Err(trees.db_err()(e))),
            Ok((key, value)) => {
                let id = match read_u32(&key) {
                    Some(id) => id,
                    None => return Some(Err(trees.corrupt("bad term key"))),
                };
                match decode_term_info(id, &value) {
                    Some(term) if term.kind == TermKind::Entity => Some(Ok((term.name, id))),
                    Some(_) => None,
                    None => Some(Err(trees.corrupt(format!("bad record for term {id}")))),
                }
            }
        });
        let aliases = trees.aliases.iter().map(move |item| {
            let (key, _) = item.map_err(trees.db_err())?;
            let split = key.len().checked_sub(5).filter(|&i| key[i] == 0);
            let split = split.ok_or_else(|| trees.corrupt("bad alias key"))?;
            let name = std::str::from_utf8(&key[..split])
                .map_err(|_| trees.corrupt("alias is not UTF-8"))?
                .to_string();
            let id = read_u32(&key[split + 1..]).ok_or_else(|| trees.corrupt("bad alias key"))?;
            Ok((name, id))
        });
        canonical.chain(aliases)
    }

    /// All predicates, by id.
    pub fn predicates(&self) -> Result<Vec<(PredId, String)>, StoreError> {
        let mut out = Vec::with_capacity(self.stats.relations as usize);
        for item in self.trees.pred_names.iter() {
            let (key, value) = item.map_err(self.trees.db_err())?;
            let id = read_u32(&key).ok_or_else(|| self.trees.corrupt("bad predicate key"))?;
            let name = String::from_utf8(value.to_vec())
                .map_err(|_| self.trees.corrupt("predicate name is not UTF-8"))?;
            out.push((id, name));
        }
        Ok(out)
    }

    /// Directory inside the current generation for derived files (embeddings, ...);
    /// created on first use. Its files are carried over to the next generation by imports.
    /// (In a snapshot it is the copy's, so files written there are discarded.)
    pub fn artifact_dir(&self) -> Result<PathBuf, StoreError> {
        let dir = self.db_dir.join("artifacts");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(dir)
    }

    /// Bytes on disk of the current generation.
    pub fn disk_bytes(&self) -> u64 {
        self.trees.db.size_on_disk().unwrap_or(0)
    }

    /// Reads every record of every tree (sled checks each page it reads) and checks the
    /// trees against each other and the counters: O(store size), unlike [`Store::stats`].
    /// Returns the number of records read, or [`StoreError::Corrupt`] naming the problem.
    pub fn verify(&self) -> Result<u64, StoreError> {
        let t = &self.trees;
        let mut read = 0u64;
        // Records of `tree`, or with `pairs` the (id, id) pairs its adjacency lists hold.
        let mut count = |name: &str, tree: &sled::Tree, pairs: bool| -> Result<u64, StoreError> {
            let mut n = 0u64;
            for entry in tree.iter() {
                let (_, value) = entry.map_err(|e| t.corrupt(format!("tree {name}: {e}")))?;
                read += 1;
                if !pairs {
                    n += 1;
                } else if value.len() % 8 == 0 {
                    n += value.len() as u64 / 8;
                } else {
                    return Err(t.corrupt(format!("tree {name}: a list of {} bytes", value.len())));
                }
            }
            Ok(n)
        };
        let s = self.stats;
        let expect = [
            ("terms", count("terms", &t.terms, false)?, s.terms),
            (
                "term_info",
                count("term_info", &t.term_info, false)?,
                s.terms,
            ),
            ("preds", count("preds", &t.preds, false)?, s.relations),
            (
                "pred_names",
                count("pred_names", &t.pred_names, false)?,
                s.relations,
            ),
            ("s_po", count("s_po", &t.s_po, true)?, s.triples),
            ("o_sp", count("o_sp", &t.o_sp, true)?, s.triples),
            ("p_os", count("p_os", &t.p_os, true)?, s.triples),
        ];
        count("aliases", &t.aliases, false)?;
        count("meta", &t.meta, false)?;
        for (name, found, counted) in expect {
            if found != counted {
                return Err(t.corrupt(format!(
                    "tree {name} holds {found} entries, the store's counters say {counted}"
                )));
            }
        }
        for entry in t.term_info.iter() {
            let (key, _) = entry.map_err(|e| t.corrupt(format!("tree term_info: {e}")))?;
            let id = read_u32(&key).ok_or_else(|| t.corrupt("a term_info key is not a term id"))?;
            t.term(id)?;
        }
        Ok(read)
    }
}
