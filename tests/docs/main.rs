//! The docs against the code: the configuration reference, the source layers, the examples of the
//! README and docs.
//!
//! One test binary of modules (`cargo test --test docs -- config_reference::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod config_reference;
mod error_rule;
mod fetch_data;
mod layers;
mod paths;
mod readme_examples;
mod shell_blocks;
