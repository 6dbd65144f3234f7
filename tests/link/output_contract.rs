//! One output contract: `zhishi link --json`, `zhishi run` and `zhishi serve` write the same
//! `Mention` and `Fact` JSON for the same text (character offsets in `start`/`end`, facts under
//! `facts`), because all three run the pipeline's own link and facts stages.
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::support::server;

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn zhishi(args: &[&str], stdin: &str) -> Vec<u8> {
    let out = assert_cmd::Command::cargo_bin("zhishi")
        .unwrap()
        .args(args)
        .env("RUST_LOG", "error")
        .write_stdin(stdin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn link_run_and_serve_write_the_same_mentions_and_facts() {
    // Mentions after a half-width/full-width mix and an astral character, so byte and
    // character offsets differ.
    let text = "𠀀听说阿司匹林和ＣＴ检查都很常见，我们去问了医生。";
    let quickstart = repo("pipelines/quickstart.toml");
    let demo = repo("kg/demo.tsv");

    let linked: Value = serde_json::from_slice(&zhishi(
        &[
            "link",
            "--db",
            demo.to_str().unwrap(),
            "--json",
            "--knowledge",
            "2",
        ],
        &format!("{text}\n"),
    ))
    .unwrap();
    let run: Value = serde_json::from_slice(&zhishi(
        &[
            "run",
            quickstart.to_str().unwrap(),
            "--input",
            "-",
            "--output",
            "-",
        ],
        &format!("{text}\n"),
    ))
    .unwrap();
    let server = server::Server::start(&[]);
    let served = server::post(server.addr, &json!({ "text": text })).json();

    assert!(
        !run["mentions"].as_array().unwrap().is_empty(),
        "the demo KG links something in {text}: {run}"
    );
    for (name, other) in [("link --json", &linked), ("serve", &served)] {
        assert_eq!(other["mentions"], run["mentions"], "{name} mentions");
        assert_eq!(other["facts"], run["facts"], "{name} facts");
    }
    let chars: Vec<char> = text.chars().collect();
    for m in run["mentions"].as_array().unwrap() {
        let (start, end) = (
            m["start"].as_u64().unwrap() as usize,
            m["end"].as_u64().unwrap() as usize,
        );
        let span: String = chars[start..end].iter().collect();
        assert_eq!(span, m["text"].as_str().unwrap(), "character offsets");
    }
}
