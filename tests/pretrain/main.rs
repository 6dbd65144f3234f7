//! Pretraining and distillation: masked LM, ERNIE-THU dEA, parity with transformers (ignored),
//! `zhishi distill`.
//!
//! One test binary of modules (`cargo test --test pretrain -- dea::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod dea;
mod distill;
mod mlm;
mod parity;
