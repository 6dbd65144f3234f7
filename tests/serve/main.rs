//! `zhishi serve`: loopback HTTP, hardening against misuse, latency under abuse (ignored), the demo
//! page (and in Chromium, ignored).
//!
//! One test binary of modules (`cargo test --test serve -- abuse::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod abuse;
mod browser;
mod hardening;
mod http;
mod page;
