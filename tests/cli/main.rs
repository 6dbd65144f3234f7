//! The command line as a whole: every command safe by construction, input bounds, validated sizes,
//! the kill loop (ignored), fuzzed readers, `zhishi train`/`eval`, `compare`, `bench run` and
//! `chart`.
//!
//! One test binary of modules (`cargo test --test cli -- bench_chart::` runs one module);
//! `support` is shared by every binary.

// Shared by every test binary. `mod support;` alone would look for `support.rs` beside this
// file: the one path attribute per binary points it at `tests/support/`.
#[path = "../support/mod.rs"]
mod support;

mod bench_chart;
mod bench_run;
mod command_safety;
mod compare;
mod convert;
mod fuzz_readers;
mod init;
mod input_bounds;
mod kill_loop;
mod train;
mod validated_sizes;
