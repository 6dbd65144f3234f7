//! zhishi (知识): knowledge-enhanced Chinese NLP.
pub mod kg;
pub mod knowledge;
pub mod text;
