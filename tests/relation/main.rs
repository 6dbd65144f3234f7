//! Relation extraction: readers and entity markers, gradients of every parameter, training end to
//! end, SanWen with m3e-small (ignored).
//!
//! One test binary of modules (`cargo test --test relation -- data::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod classify;
mod data;
mod explain;
mod grad;
mod sanwen;
mod train;
