//! The examples newcomers copy link something: every example sentence of the README, the
//! library and service docs, the axum example, the demo page and the sample corpus, run
//! through `pipelines/quickstart.toml` (the shipped demo KG, no `../shared`), has at least one
//! linked mention and no linked pronoun or function word. The README's own-KG walk-through is
//! run as written.
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use zhishi::doc::Document;
use zhishi::pipeline::Pipeline;
use zhishi::text::FUNCTION_WORD_TAGS;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap()
}

/// Every `start…end` substring of `s`, in order (`end` searched after each `start`).
fn between<'s>(s: &'s str, start: &str, end: &str) -> Vec<&'s str> {
    let mut found = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(start) {
        rest = &rest[i + start.len()..];
        let Some(j) = rest.find(end) else { break };
        found.push(&rest[..j]);
        rest = &rest[j + end.len()..];
    }
    found
}

/// The sentences a request body carries: `{"text": ...}`, `{"texts": [...]}`, or plain text.
fn body_sentences(body: &str) -> Vec<String> {
    if !body.trim_start().starts_with('{') {
        return vec![body.to_string()];
    }
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| {
        panic!("example request body is not JSON ({e}): {body}");
    });
    let mut out: Vec<String> = value["text"]
        .as_str()
        .map(String::from)
        .into_iter()
        .collect();
    for t in value["texts"].as_array().into_iter().flatten() {
        out.push(t.as_str().unwrap().to_string());
    }
    out
}

/// The example sentences of a Markdown or Rust source: bodies of `curl -d '...'`, documents
/// shown in ```json blocks, and the arguments of `process("...")` and `process_batch(&[...])`.
fn example_sentences(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for body in between(source, " -d '", "'") {
        out.extend(body_sentences(body));
    }
    for block in between(source, "```json\n", "```") {
        // Lines with `...` abbreviate an output (a run summary): not documents.
        for line in block
            .lines()
            .filter(|l| l.starts_with('{') && !l.contains("..."))
        {
            let doc: Document = serde_json::from_str(line).unwrap();
            out.push(doc.text);
        }
    }
    out.extend(
        between(source, "process(\"", "\")")
            .into_iter()
            .map(String::from),
    );
    for list in between(source, "process_batch(&[", "])") {
        out.extend(between(list, "\"", "\"").into_iter().map(String::from));
    }
    out
}

/// Every example sentence, with where it comes from.
fn examples() -> Vec<(String, String)> {
    let mut all = Vec::new();
    for file in [
        "README.md",
        "docs/library.md",
        "docs/serve.md",
        "examples/axum_service.rs",
    ] {
        let found = example_sentences(&read(file));
        assert!(!found.is_empty(), "no example sentence found in {file}");
        all.extend(found.into_iter().map(|s| (file.to_string(), s)));
    }
    let page = read("src/serve/index.html");
    let default = between(&page, "<textarea id=\"input\" rows=\"3\">", "</textarea>");
    assert_eq!(default.len(), 1, "the demo page's default sentence");
    all.push(("src/serve/index.html".into(), default[0].to_string()));
    for line in read("corpora/sample.txt").lines() {
        all.push(("corpora/sample.txt".into(), line.to_string()));
    }
    all
}

/// Mentions that are one word tagged as a pronoun or function word.
fn linked_function_words(doc: &Document) -> Vec<String> {
    doc.mentions
        .iter()
        .filter(|m| {
            doc.tokens.iter().any(|t| {
                (t.start, t.end) == (m.start, m.end)
                    && t.pos
                        .as_deref()
                        .is_some_and(|p| FUNCTION_WORD_TAGS.contains(&p))
            })
        })
        .map(|m| m.text.clone())
        .collect()
}

#[test]
fn every_example_sentence_links_with_the_quickstart_pipeline() {
    let pipeline = Pipeline::from_toml(repo("pipelines/quickstart.toml")).unwrap();
    let examples = examples();
    assert!(examples.len() >= 25, "{examples:?}");
    let texts: Vec<&str> = examples.iter().map(|(_, s)| s.as_str()).collect();
    let docs = pipeline.process_batch(&texts).unwrap();
    let mut failures = Vec::new();
    for ((file, sentence), doc) in examples.iter().zip(&docs) {
        if doc.mentions.is_empty() {
            failures.push(format!("{file}: `{sentence}` links nothing"));
        }
        let pronouns = linked_function_words(doc);
        if !pronouns.is_empty() {
            failures.push(format!("{file}: `{sentence}` links {pronouns:?}"));
        }
        // The facts point at the linked mentions and come from the demo KG.
        for f in &doc.facts {
            assert_eq!(f.subject, doc.mentions[f.mention].entity.name, "{sentence}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pronouns_and_function_words_stay_unlinked() {
    let pipeline = Pipeline::from_toml(repo("pipelines/quickstart.toml")).unwrap();
    let doc = pipeline
        .process("我们都知道，这和他们的高血压有关，你也要注意。")
        .unwrap();
    let linked: Vec<&str> = doc.mentions.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(linked, ["高血压"]);
}

/// The README's "Your own KG" section, run as written: the `printf` KG, `zhishi kg import`,
/// the `my-pipeline.toml` shown, and the `echo` sentence with its promised mentions and fact.
#[test]
fn the_readme_own_kg_walkthrough_links_what_it_promises() {
    let readme = read("README.md");
    let section = &readme[readme.find("## Your own KG").unwrap()..];
    let dir = tempfile::tempdir().unwrap();

    let printf = between(section, "printf '", "' > my-kg.tsv");
    let tsv = printf[0].replace("\\t", "\t").replace("\\n", "\n");
    std::fs::write(dir.path().join("my-kg.tsv"), tsv).unwrap();
    let status = Command::cargo_bin("zhishi")
        .unwrap()
        .current_dir(dir.path())
        .args(["kg", "import", "--db", "my-kg", "my-kg.tsv"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");

    let toml = between(section, "```toml\n", "```");
    std::fs::write(dir.path().join("my-pipeline.toml"), toml[0]).unwrap();
    let pipeline = Pipeline::from_toml(dir.path().join("my-pipeline.toml")).unwrap();

    let echo = between(section, "echo '", "' | zhishi run my-pipeline.toml");
    let doc = pipeline.process(echo[0]).unwrap();
    let linked: Vec<(&str, &str)> = doc
        .mentions
        .iter()
        .map(|m| (m.text.as_str(), m.entity.name.as_str()))
        .collect();
    assert_eq!(linked, [("头痛", "头痛"), ("芬必得", "布洛芬")]);
    assert!(
        doc.facts.iter().any(
            |f| (f.subject.as_str(), f.predicate.as_str(), f.object.as_str())
                == ("布洛芬", "适应症", "头痛")
                && f.score > 0.0
        ),
        "{:?}",
        doc.facts
    );
}
