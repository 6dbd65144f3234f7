//! Named-entity recognition: the CRF, gradients of every parameter, training end to end (also from an
//! `hf:` model id), ERNIE-THU fusion.
//!
//! One test binary of modules (`cargo test --test ner -- crf::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod annotations;
mod crf;
mod ernie;
mod explain;
mod grad;
mod hub;
mod instances;
mod scores;
mod train;
