//! The store's value types: term and predicate ids, terms, triples by id and by name,
//! triple patterns, counters, name candidates and open options.
use serde::{Deserialize, Serialize};

use super::DEFAULT_CACHE_BYTES;

/// Dense id of a term (an entity or a literal): `0..stats().terms`.
pub type TermId = u32;
/// Dense id of a predicate (relation): `0..stats().relations`.
pub type PredId = u32;

/// Whether a term is an entity or a literal value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TermKind {
    /// A node used as a subject somewhere (or an IRI / OpenKE entity).
    Entity,
    /// A value that only occurs as an object (`air drying`, `2013-12-30`).
    Literal,
}

/// One term of the store with its popularity prior.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Term {
    /// Dense id.
    pub id: TermId,
    /// Canonical name.
    pub name: String,
    /// Entity or literal.
    pub kind: TermKind,
    /// Number of triples in which the term is subject or object.
    pub degree: u32,
}

/// A triple of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Triple {
    /// Subject term.
    pub subject: TermId,
    /// Predicate.
    pub predicate: PredId,
    /// Object term.
    pub object: TermId,
}

/// A triple pattern; `None` matches anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pattern {
    /// Required subject.
    pub subject: Option<TermId>,
    /// Required predicate.
    pub predicate: Option<PredId>,
    /// Required object.
    pub object: Option<TermId>,
}

/// Counts kept as counters, so reading them is O(1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Terms that are entities.
    pub entities: u64,
    /// Terms that are literals.
    pub literals: u64,
    /// All terms (entities + literals).
    pub terms: u64,
    /// Distinct predicates.
    pub relations: u64,
    /// Distinct (subject, predicate, object) triples.
    pub triples: u64,
    /// Distinct (alias, entity) pairs in the name index, canonical names excluded.
    pub aliases: u64,
}

/// A candidate entity for a surface name, with its popularity prior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NameMatch {
    /// The entity.
    pub id: TermId,
    /// Its degree (number of triples touching it).
    pub degree: u32,
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled page-cache size in bytes.
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// One parsed input triple, by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedTriple {
    /// Subject name.
    pub subject: String,
    /// Predicate name.
    pub predicate: String,
    /// Object name or literal value.
    pub object: String,
    /// Whether the object is known to be an entity (IRI, OpenKE id) or may be a literal.
    pub object_kind: TermKind,
}

impl NamedTriple {
    /// A triple whose object may be a literal (the kind every text importer gives), from names
    /// taken as they are.
    pub fn literal(subject: &str, predicate: &str, object: &str) -> Self {
        NamedTriple {
            subject: subject.to_string(),
            predicate: predicate.to_string(),
            object: object.to_string(),
            object_kind: TermKind::Literal,
        }
    }
}
