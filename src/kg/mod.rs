//! The knowledge graph: the sled store, importers and graph queries.
pub mod graph;
pub mod import;
pub mod store;

pub use store::{
    Candidate, NamedTriple, Pattern, PredId, Stats, Store, StoreError, StoreOptions, StoreWriter,
    Term, TermId, TermKind, Triple,
};
