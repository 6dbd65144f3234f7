//! What the linker needs from a knowledge graph, as a trait, plus a small
//! in-memory implementation for tests and tiny hand-built KGs.
//!
//! The linker reads names once at build time and facts (outgoing triples)
//! to build its context signatures; the real sled store implements the same
//! trait in `kg/store_source.rs`; aliases follow the store's rules.
use std::collections::HashMap;

use crate::kg::identity::{IdentityHasher, KgIdentity};
pub use crate::kg::store::{derived_aliases, DEFAULT_ALIAS_PREDICATES};
use crate::kg::transe::TransE;

/// Dense id of an entity (the store's `TermId`).
pub type EntityId = u32;

/// An entity's display name and popularity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityInfo {
    /// Canonical name.
    pub name: String,
    /// Number of triples touching the entity (the prior).
    pub degree: u32,
}

/// One outgoing triple of an entity, with names resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// Predicate name.
    pub predicate: String,
    /// Object name (entity or literal).
    pub object: String,
    /// Object id.
    pub object_id: EntityId,
}

/// Failure of the backing knowledge graph.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The store failed while the linker read `what`.
    #[error("knowledge graph error while reading {what}: {message}")]
    Backend {
        /// What was being read (names, an entity, facts).
        what: &'static str,
        /// The store's own message.
        message: String,
    },
}

/// Read access to a knowledge graph, as the linker uses it.
pub trait KnowledgeSource: Send + Sync {
    /// Calls `f` for every entity name and alias, with the entity it names.
    fn for_each_name(&self, f: &mut dyn FnMut(&str, EntityId)) -> Result<(), SourceError>;
    /// Name and degree of an entity, `None` if the id is unknown.
    fn entity(&self, id: EntityId) -> Result<Option<EntityInfo>, SourceError>;
    /// Up to `limit` outgoing triples of `id` in store order.
    fn facts(&self, id: EntityId, limit: usize) -> Result<Vec<Fact>, SourceError>;
    /// TransE vectors of the graph (row = entity id), if any were trained;
    /// the linker then uses them for coherence.
    fn embeddings(&self) -> Result<Option<TransE>, SourceError> {
        Ok(None)
    }
    /// The identity of the graph's content (see [`crate::kg::identity`]), `None` when the
    /// source cannot tell. Trained models record it; pipelines compare it.
    fn identity(&self) -> Result<Option<KgIdentity>, SourceError> {
        Ok(None)
    }
}

/// An in-memory KG built from `(subject, predicate, object)` strings.
#[derive(Debug, Default, Clone)]
pub struct MemoryKg {
    names: Vec<String>,
    ids: HashMap<String, EntityId>,
    degree: Vec<u32>,
    is_entity: Vec<bool>,
    facts: Vec<Vec<(String, EntityId)>>,
    aliases: Vec<(String, EntityId)>,
    embeddings: Option<TransE>,
    identity: IdentityHasher,
}

impl MemoryKg {
    /// Builds a KG; subjects become entities, alias predicates add aliases.
    /// A triple given again is kept once, as `zhishi kg import` keeps it.
    pub fn from_triples<'a>(
        triples: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Self {
        let mut builder = Builder::default();
        for (s, p, o) in triples {
            builder.add(s, p, o);
        }
        builder.kg
    }

    fn intern(&mut self, name: &str) -> EntityId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as EntityId;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        self.degree.push(0);
        self.is_entity.push(false);
        self.facts.push(Vec::new());
        id
    }

    /// Attaches TransE vectors (row = the term id [`MemoryKg::id`] gives).
    pub fn with_embeddings(mut self, vectors: TransE) -> Self {
        self.embeddings = Some(vectors);
        self
    }

    /// Id of a term by exact name.
    pub fn id(&self, name: &str) -> Option<EntityId> {
        self.ids.get(name).copied()
    }

    /// Reads triple files (any importer format, with its validation and bad-line report)
    /// into memory: the KG of a pipeline's `[kg] triples` or of a K-BERT NER model.
    /// Triples are added as each chunk is parsed, and duplicates are kept once, so memory
    /// follows the distinct triples, not the file.
    pub fn read_files(
        files: &[std::path::PathBuf],
        options: &crate::kg::import::ImportOptions,
    ) -> Result<(Self, crate::kg::import::ImportReport), crate::kg::import::ImportError> {
        let mut builder = Builder::default();
        let report = crate::kg::import::read_files_with(files, options, &mut |batch| {
            for t in batch {
                builder.add(&t.subject, &t.predicate, &t.object);
            }
        })?;
        Ok((builder.kg, report))
    }
}

/// Builds a [`MemoryKg`] triple by triple, keeping each distinct triple once.
#[derive(Default)]
struct Builder {
    kg: MemoryKg,
    predicates: HashMap<String, u32>,
    seen: std::collections::HashSet<(EntityId, u32, EntityId)>,
}

impl Builder {
    fn add(&mut self, s: &str, p: &str, o: &str) {
        let (s, p, o) = (s.trim(), p.trim(), o.trim());
        if s.is_empty() || p.is_empty() || o.is_empty() {
            return;
        }
        let kg = &mut self.kg;
        let sid = kg.intern(s);
        let oid = kg.intern(o);
        let next = self.predicates.len() as u32;
        let pid = *self.predicates.entry(p.to_string()).or_insert(next);
        if !self.seen.insert((sid, pid, oid)) {
            return;
        }
        kg.identity.add(s, p, o);
        kg.is_entity[sid as usize] = true;
        kg.degree[sid as usize] += 1;
        if oid != sid {
            kg.degree[oid as usize] += 1;
        }
        kg.facts[sid as usize].push((p.to_string(), oid));
        if DEFAULT_ALIAS_PREDICATES.contains(&p) && o != s {
            kg.aliases.push((o.to_string(), sid));
        }
    }
}

impl KnowledgeSource for MemoryKg {
    fn for_each_name(&self, f: &mut dyn FnMut(&str, EntityId)) -> Result<(), SourceError> {
        for (id, name) in self.names.iter().enumerate() {
            if !self.is_entity[id] {
                continue;
            }
            f(name, id as EntityId);
            for alias in derived_aliases(name) {
                f(&alias, id as EntityId);
            }
        }
        for (alias, id) in &self.aliases {
            f(alias, *id);
        }
        Ok(())
    }

    fn entity(&self, id: EntityId) -> Result<Option<EntityInfo>, SourceError> {
        Ok(self.names.get(id as usize).map(|name| EntityInfo {
            name: name.clone(),
            degree: self.degree[id as usize],
        }))
    }

    fn facts(&self, id: EntityId, limit: usize) -> Result<Vec<Fact>, SourceError> {
        let Some(facts) = self.facts.get(id as usize) else {
            return Ok(Vec::new());
        };
        Ok(facts
            .iter()
            .take(limit)
            .map(|(p, o)| Fact {
                predicate: p.clone(),
                object: self.names[*o as usize].clone(),
                object_id: *o,
            })
            .collect())
    }

    fn embeddings(&self) -> Result<Option<TransE>, SourceError> {
        Ok(self.embeddings.clone())
    }

    fn identity(&self) -> Result<Option<KgIdentity>, SourceError> {
        Ok(Some(self.identity.identity()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item10_duplicate_triples_are_kept_once_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kg.tsv");
        std::fs::write(
            &path,
            "哈姆雷特\t作者\t莎士比亚\n".repeat(1000) + "哈姆雷特\t类型\t悲剧\n",
        )
        .unwrap();
        let (kg, report) =
            MemoryKg::read_files(&[path], &crate::kg::import::ImportOptions::default()).unwrap();
        assert_eq!(report.parsed_triples, 1001);
        let id = kg.id("哈姆雷特").unwrap();
        assert_eq!(kg.facts(id, 100).unwrap().len(), 2);
        assert_eq!(kg.entity(id).unwrap().unwrap().degree, 2);
    }

    #[test]
    fn book_titles_and_qualifiers_give_aliases() {
        assert_eq!(derived_aliases("《哈姆雷特》"), ["哈姆雷特"]);
        assert_eq!(derived_aliases("苹果（水果）"), ["苹果"]);
        assert!(derived_aliases("北京").is_empty());
    }

    #[test]
    fn alias_predicates_name_the_subject() {
        let kg = MemoryKg::from_triples([("万达广场", "外文名", "amoy wanda plaza")]);
        let mut names = Vec::new();
        kg.for_each_name(&mut |n, id| names.push((n.to_string(), id)))
            .unwrap();
        assert_eq!(
            names,
            [
                ("万达广场".to_string(), 0),
                ("amoy wanda plaza".to_string(), 0)
            ]
        );
    }
}
