//! The knowledge graph: the sled store, importers and graph queries.
pub mod dataset;
pub mod eval;
pub mod graph;
pub mod import;
pub mod store;
pub mod transe;

pub use store::{
    Candidate, NamedTriple, Pattern, PredId, Stats, Store, StoreError, StoreOptions, StoreWriter,
    Term, TermId, TermKind, Triple,
};
