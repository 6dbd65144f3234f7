//! The knowledge graph: `zhishi kg` and TransE (`zhishi transe`, filtered ranks, quality on UMLS,
//! exact resume).
//!
//! One test binary of modules (`cargo test --test kg -- cli::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod cli;
mod loop_cli;
mod transe_cli;
mod transe_eval;
mod transe_quality;
mod transe_resume;
