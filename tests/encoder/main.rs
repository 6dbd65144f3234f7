//! The encoder: parity with PyTorch (BERT and ERNIE-THU), gradients through every kernel set, the
//! bf16 kernels, packed batches, `zhishi encode` and `zhishi quantize`, models by name (`hf:ORG/NAME`,
//! `zhishi download`).
//!
//! One test binary of modules (`cargo test --test encoder -- bf16::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod albert;
mod albert_stages;
mod bf16;
mod cli;
mod ernie;
mod grad;
mod hub;
mod packed_batches;
mod parity;
mod quantize;
