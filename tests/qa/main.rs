//! Question answering: the SQuAD reader, featurization, extractive QA training end to end, the KBQA
//! stage.
//!
//! One test binary of modules (`cargo test --test qa -- data::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod data;
mod features;
mod kbqa;
mod train;
