//! The demo page in headless Chromium: a processed sentence shows highlighted mentions, their
//! candidates and injected facts, served at the root and nested under a path prefix. Needs `/usr/bin/chromium` (Debian: `apt-get install
//! chromium`), so it is ignored by default: `cargo test --test serve -- browser:: --ignored`.
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

#[test]
#[ignore = "needs Chromium: apt-get install chromium"]
fn the_demo_page_shows_the_document_at_the_root_and_under_a_prefix() {
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
    let root = dump_dom(&format!("http://{addr}/?text={SENTENCE}"));
    let _ = server.kill();
    let _ = server.wait();
    assert_page_shows_the_document(&root);

    // The same routes nested under a prefix, as examples/axum_service.rs mounts them: the
    // page's relative URLs reach them.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = runtime.block_on(async {
        let app = axum::Router::new().nest(
            "/zhishi",
            zhishi::serve::router(
                zhishi::pipeline::Pipeline::from_toml(&pipeline).unwrap(),
                zhishi::serve::ServeOptions::default(),
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    let nested = dump_dom(&format!("http://{addr}/zhishi?text={SENTENCE}"));
    assert_page_shows_the_document(&nested);
}

/// 胰岛素是治疗糖尿病的药物。, percent-encoded.
const SENTENCE: &str = "%E8%83%B0%E5%B2%9B%E7%B4%A0%E6%98%AF%E6%B2%BB%E7%96%97%E7%B3%96%E5%B0%BF%E7%97%85%E7%9A%84%E8%8D%AF%E7%89%A9%E3%80%82";

/// The page's DOM after its scripts ran, from headless Chromium.
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
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
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_page_shows_the_document(dom: &str) {
    assert!(
        dom.contains("data-state=\"done\""),
        "page did not finish: {dom}"
    );
    assert!(
        dom.contains("pipeline quickstart: segment → link → facts"),
        "{dom}"
    );
    // Both mentions highlighted, listed with their candidates, and their facts.
    for name in ["胰岛素", "糖尿病"] {
        assert!(
            dom.contains(&format!(
                "data-entity=\"{name}\">{name}<span class=\"label\">"
            )),
            "{name}: {dom}"
        );
        assert!(dom.contains(&format!("<td>{name}</td>")), "{name}: {dom}");
    }
    assert!(dom.contains("<td>义原</td><td>药物</td>"), "{dom}");
    // Each mention is labelled with its entity's type from an attached fact, not a store id.
    for (name, kind) in [("胰岛素", "药物"), ("糖尿病", "疾病")] {
        assert!(
            dom.contains(&format!("{name}<span class=\"label\">{kind}</span>")),
            "{name}: {dom}"
        );
    }
    assert!(!dom.contains("<span class=\"label\">#"), "{dom}");
    // Stages the pipeline lacks say so instead of showing empty tables.
    assert!(dom.contains("This pipeline has no ner stage."), "{dom}");
    assert!(
        dom.contains("This pipeline has no relation stage."),
        "{dom}"
    );
}
