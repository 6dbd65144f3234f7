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
//! * [`grad_check`] and [`symptom_kg`]: gradient coverage and a two-fact KG.
// Every test binary compiles this whole module but uses only part of it; without this,
// each binary would warn about the helpers only the others call.
#![allow(dead_code)]

pub mod grad_check;
pub mod ner_workspace;
pub mod pretrain_workspace;
pub mod qa_workspace;
pub mod re_workspace;
pub mod run_cli;
pub mod server;
pub mod shared_data;
pub mod symptom_kg;
pub mod tiny;
