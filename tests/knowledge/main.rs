//! Knowledge injection: K-BERT sentence trees (the paper's example, compat mode with K-BERT itself,
//! properties, `zhishi kbert`) and one knowledge path from training to a pipeline run.
//!
//! One test binary of modules (`cargo test --test knowledge -- kbert_cli::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod kbert_cli;
mod kbert_compat;
mod kbert_properties;
mod kbert_tree;
mod path;
