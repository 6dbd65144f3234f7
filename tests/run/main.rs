//! Pipelines and corpora: pipelines from TOML, `zhishi run` (input order, resume after `kill -9`,
//! shards, streaming), its data-loss regressions, and Spark (ignored).
//!
//! One test binary of modules (`cargo test --test run -- cli::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod cli;
mod pipeline_toml;
mod preannotate;
mod registered;
mod rules;
mod safety;
mod spark_pipe;
