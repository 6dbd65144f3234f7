//! zhishi (知识): knowledge-enhanced Chinese NLP.
//!
//! Data flows text -> kg -> knowledge -> model: [`text`] segments and links mentions to the
//! knowledge graph in [`kg`], [`knowledge`] turns linked facts into K-BERT inputs, and
//! [`model`] runs the candle BERT / ERNIE-THU encoders.
pub mod config;
pub mod corpus;
pub mod doc;
pub mod kg;
pub mod knowledge;
pub mod model;
pub mod pipeline;
pub mod serve;
pub mod stages;
pub mod text;
pub mod textfile;
pub mod train;
