//! Text front end: normalisation, jieba segmentation and entity linking
//! against the knowledge graph (mention detection, candidates,
//! disambiguation, knowledge selection for injection).
pub mod candidates;
pub mod disambiguate;
pub mod document;
pub mod link;
pub mod normalize;
pub mod segment;

pub use document::{annotate, document_facts, link_document};
pub use link::{
    fact_context, Candidate, EntityRef, LinkError, LinkOptions, LinkedMention, Linker,
    OverlapPolicy, RankedFact, FUNCTION_WORD_TAGS,
};
pub use normalize::{normalize, NormalizeOptions, Normalized};
pub use segment::{SegmentOptions, Segmenter, Token};
// The KG read trait and its implementations live in `kg`; the linker's API names them here.
pub use crate::kg::source::{EntityId, EntityInfo, Fact, KnowledgeSource, MemoryKg, SourceError};

/// The linker every KG stage of a pipeline shares: one per pipeline, over its KG.
pub type KgLinker = Linker<std::sync::Arc<dyn KnowledgeSource>>;
