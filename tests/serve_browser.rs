//! The demo page in headless Chromium: a processed sentence shows highlighted mentions, their
//! linked entities and injected facts. Needs `/usr/bin/chromium` (Debian: `apt-get install
//! chromium`), so it is ignored by default: `cargo test --test serve_browser -- --ignored`.
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

#[test]
#[ignore = "needs Chromium: apt-get install chromium"]
fn the_demo_page_highlights_mentions_entities_and_facts() {
    let pipeline = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.toml");
    let mut server = Command::cargo_bin("zhishi")
        .unwrap()
        .args(["serve", pipeline.to_str().unwrap(), "--addr", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "server exited");
        if let Some(a) = line
            .trim()
            .strip_prefix("zhishi serve: listening on http://")
        {
            break a.to_string();
        }
    };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/?text=%E3%80%8A%E5%93%88%E5%A7%86%E9%9B%B7%E7%89%B9%E3%80%8B%E6%98%AF%E8%8E%8E%E5%A3%AB%E6%AF%94%E4%BA%9A%E7%9A%84%E6%82%B2%E5%89%A7%E3%80%82");
    let out = Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-state=\"done\""),
        "page did not finish: {dom}"
    );
    assert!(
        dom.contains("<mark class=\"mention\" data-entity=\"《哈姆雷特》\""),
        "{dom}"
    );
    assert!(dom.contains("<td>《哈姆雷特》</td>"), "{dom}");
    assert!(
        dom.matches("<tr><td>").count() >= 2,
        "entities and facts tables: {dom}"
    );
}
