//! What the test binaries share: each `tests/AREA/main.rs` declares `mod support;` and uses
//! the parts it needs.
//!
//! * [`tiny`]: the one tiny BERT shape and its model-directory writer, used by every test
//!   that builds an encoder;
//! * the throw-away task workspaces built on it ([`ner_workspace`], [`pretrain_workspace`],
//!   [`qa_workspace`], [`re_workspace`]);
//! * [`shared_data`]: the public data sets in `../shared` (skipped without them, except
//!   under CI);
//! * [`run_cli`] and [`server`]: the `zhishi` binary for `zhishi run` and `zhishi serve`;
//! * [`grad_check`] and [`symptom_kg`]: gradient coverage and a two-fact KG;
//! * [`rerun_in_child`]: one test run again in a process of its own.
// Every test binary compiles this whole module but uses only part of it; without this,
// each binary would warn about the helpers only the others call.
#![allow(dead_code)]

pub mod grad_check;
pub mod hub;
pub mod ner_workspace;
pub mod pretrain_workspace;
pub mod qa_workspace;
pub mod re_workspace;
pub mod run_cli;
pub mod server;
pub mod shared_data;
pub mod symptom_kg;
pub mod tiny;
pub mod tiny_albert;

/// A command that runs the test `name` of this binary again, alone, in a process of its own
/// (`--exact`, one thread, output not captured); `module_path` is the caller's
/// `module_path!()`. For what must not touch the test process shared by every test of the
/// binary: an environment variable the library reads (`std::env::set_var` races with the
/// other tests' threads), or another user id. Check the run with [`assert_one_passed`].
pub fn rerun_in_child(module_path: &str, name: &str) -> std::process::Command {
    // `module_path!()` starts with the binary's own name, which test names do not.
    let test = match module_path.split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    };
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", &test, "--nocapture", "--test-threads=1"]);
    cmd
}

/// Asserts that a run of [`rerun_in_child`] succeeded and ran its one test (a name that
/// matches nothing passes with `0 passed`); prints its output.
pub fn assert_one_passed(out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child run:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "child run:\n{stdout}\n{stderr}"
    );
    print!("{stdout}");
}
