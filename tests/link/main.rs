//! Entity linking: the specification on real sentences, `zhishi link`, sled stores, NLPCC 2016
//! accuracy (ignored), and one output contract across `link`, `run` and `serve`.
//!
//! One test binary of modules (`cargo test --test link -- cli::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod cli;
mod nlpcc;
mod output_contract;
mod spec;
mod store;
