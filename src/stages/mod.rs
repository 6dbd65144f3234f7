//! The pipeline's stages, one file (or directory) each: what the stage's TOML table holds, how
//! it is built, and how it fills its part of a [`crate::doc::Document`]. Task stages (`ner`,
//! `kbqa`, `relation`, `qa`) are also trained and evaluated from their own TOML (`zhishi train` /
//! `zhishi eval`).
pub mod annotation;
pub mod calibration;
pub mod charts;
pub mod classify;
pub mod compare;
pub mod distill;
pub mod facts;
pub mod kbqa;
pub mod link;
pub mod ner;
pub mod pretrain;
pub mod qa;
pub mod registry;
pub mod relation;
pub mod rules;
pub mod segment;
pub mod stage;
pub mod task;
pub mod training;

pub use stage::{Field, Stage, StageError};
