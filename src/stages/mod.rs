//! The pipeline's stages, one file each: what the stage's TOML table holds, how it is built,
//! and how it fills its part of a [`crate::doc::Document`].
pub mod facts;
pub mod link;
pub mod segment;
