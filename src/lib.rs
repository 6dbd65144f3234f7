//! zhishi (知识): knowledge-enhanced Chinese NLP.
pub mod kg;
pub mod model;
