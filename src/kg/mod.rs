//! The knowledge graph: the sled store, importers, graph queries, and TransE embeddings
//! (data sets, training, link-prediction evaluation).
pub mod dataset;
pub mod draw;
pub mod eval;
pub mod from_run;
pub mod graph;
pub mod identity;
pub mod import;
pub mod source;
pub mod store;
pub mod store_source;
pub mod transe;

pub use identity::{IdentityHasher, KgIdentity};
pub use store::{
    NameMatch, NamedTriple, Pattern, PredId, Stats, Store, StoreError, StoreOptions, StoreWriter,
    Term, TermId, TermKind, Triple,
};
