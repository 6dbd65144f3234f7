//! zhishi (知识): knowledge-enhanced Chinese NLP.
//!
//! Data flows text -> kg -> knowledge -> model: [`text`] segments and links mentions to the
//! knowledge graph in [`kg`], [`knowledge`] turns linked facts into K-BERT inputs, and
//! [`model`] runs the candle BERT / ERNIE-THU encoders. A [`Pipeline`] runs stages over
//! [`Document`]s; every stage's output is a field of the document.
//!
//! ```
//! use zhishi::{Document, Pipeline};
//!
//! # fn main() -> Result<(), zhishi::PipelineError> {
//! // Segment, link against the shipped demo KG, and attach each entity's relevant facts.
//! let pipeline = Pipeline::from_toml(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/quickstart.toml"))?;
//! let doc: Document = pipeline.process("我们都知道，阿司匹林是一种常用药物。")?;
//! let first = &doc.mentions[0]; // 我们 (a pronoun) is not linked
//! assert_eq!(first.text, "阿司匹林");
//! assert_eq!((first.start, first.end), (6, 10)); // character offsets, end exclusive
//! assert!(doc.facts.iter().any(|f| f.mention == 0)); // facts point at their mention
//!
//! // Many documents at once: CPU stages run in parallel, model stages batch.
//! let docs = pipeline.process_batch(&["青霉素是一种抗生素。", "没有实体的句子"])?;
//! assert_eq!(docs.len(), 2);
//! # Ok(()) }
//! ```
//!
//! Cargo features: `cli` (default; the `zhishi` binary, implies `serve`) and `serve` (the
//! HTTP service, axum + tokio). A service that embeds only the library uses
//! `default-features = false` and compiles neither.
#![deny(missing_docs)]
pub mod config;
pub mod corpus;
pub mod doc;
pub mod error;
pub mod files;
pub mod kg;
pub mod knowledge;
pub mod model;
pub mod pipeline;
pub mod reference;
#[cfg(feature = "serve")]
pub mod serve;
pub mod stages;
pub mod text;
pub mod textfile;
pub mod train;

pub use doc::{Answer, Document, Entity, Fact, Mention, Relation, Token};
pub use pipeline::{Pipeline, PipelineBuilder, PipelineError};
pub use text::{LinkOptions, Linker};
