//! Models by name: `zhishi encode --model hf:ORG/NAME` over a Hugging Face cache laid out as
//! hf-hub does gives the outputs `--model DIR` gives; offline, an uncached id says how to get
//! it and sends no request; `zhishi download` (and an id's first use) fetches a model from a
//! loopback server that serves it the way the hub does.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::str::contains;
use serde_json::Value;

use crate::support::hub::{hub_env, lay_out, HubServer, COMMIT};
use crate::support::tiny;

const CHARS: &str = "张三住在北京上海";
const INPUT: &str = "{\"text\": \"张三住在北京\"}\n{\"text\": \"上海\"}\n";

/// A tiny BERT directory with its vocabulary, under `root/model`.
fn tiny_model(root: &Path) -> PathBuf {
    let dir = root.join("model");
    let vocab = tiny::char_vocab(CHARS);
    tiny::write_encoder(&dir, &tiny::tiny_config(vocab.len(), 16), &vocab);
    dir
}

/// `zhishi encode --model MODEL` over [`INPUT`] with the cache `cache` and hub `endpoint`.
fn encode(
    model: &str,
    cache: &Path,
    endpoint: Option<&str>,
    offline: bool,
) -> assert_cmd::assert::Assert {
    let mut cmd = Command::cargo_bin("zhishi").unwrap();
    hub_env(&mut cmd, cache, endpoint, offline);
    cmd.args(["encode", "--model", model])
        .write_stdin(INPUT)
        .assert()
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(a.get_output().stdout.clone()).unwrap()
}

#[test]
fn an_hf_id_over_a_laid_out_cache_encodes_as_its_directory_does() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path());
    let cache = tmp.path().join("cache");
    let snapshot = lay_out(&cache, "test/tiny-bert", &model);
    assert!(
        std::fs::symlink_metadata(snapshot.join("model.safetensors"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    let from_dir = stdout(&encode(model.to_str().unwrap(), &cache, None, true).success());
    assert_eq!(from_dir.lines().count(), 2);
    let v: Value = serde_json::from_str(from_dir.lines().next().unwrap()).unwrap();
    assert_eq!(
        v["last_hidden_state"].as_array().unwrap().len(),
        8,
        "[CLS] 6 chars [SEP]"
    );
    for id in [
        "hf:test/tiny-bert".to_string(),
        "hf:test/tiny-bert@main".to_string(),
        format!("hf:test/tiny-bert@{COMMIT}"),
    ] {
        let from_id = stdout(&encode(&id, &cache, None, true).success());
        assert_eq!(from_id, from_dir, "{id}");
    }

    // HF_HOME/hub is the cache when HF_HUB_CACHE is not set.
    let home = tmp.path().join("hf-home");
    lay_out(&home.join("hub"), "test/tiny-bert", &model);
    let mut cmd = Command::cargo_bin("zhishi").unwrap();
    hub_env(&mut cmd, &cache, None, true);
    cmd.env_remove("HF_HUB_CACHE").env("HF_HOME", &home);
    let a = cmd
        .args(["encode", "--model", "hf:test/tiny-bert"])
        .write_stdin(INPUT)
        .assert()
        .success();
    assert_eq!(stdout(&a), from_dir);
}

#[test]
fn offline_an_uncached_id_says_how_to_get_it_and_sends_no_request() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path());
    let hub = HubServer::start("test/tiny-bert", &model);
    let cache = tmp.path().join("empty-cache");
    encode("hf:test/tiny-bert", &cache, Some(&hub.endpoint()), true)
        .failure()
        .stderr(contains(
            "hf:test/tiny-bert is not in the Hugging Face cache",
        ))
        .stderr(contains("HF_HUB_OFFLINE is set"))
        .stderr(contains("fetch it with `zhishi download test/tiny-bert`"))
        .stderr(contains("or set HF_HUB_CACHE"));
    encode("hf:test/tiny-bert@v2", &cache, Some(&hub.endpoint()), true)
        .failure()
        .stderr(contains("`zhishi download test/tiny-bert --revision v2`"));
    let mut cmd = Command::cargo_bin("zhishi").unwrap();
    hub_env(&mut cmd, &cache, Some(&hub.endpoint()), true);
    cmd.args(["download", "test/tiny-bert", "--quiet"])
        .assert()
        .failure()
        .stderr(contains("HF_HUB_OFFLINE is set"));
    assert_eq!(hub.requested(), Vec::<String>::new(), "no request offline");
    assert!(!cache.exists(), "nothing written offline");

    encode("hf:test", &cache, None, true)
        .failure()
        .stderr(contains("bad model id \"hf:test\""));
}

#[test]
fn zhishi_download_fetches_a_model_as_the_hub_serves_it() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path());
    let hub = HubServer::start("test/tiny-bert", &model);
    let cache = tmp.path().join("cache");
    let download = || {
        let mut cmd = Command::cargo_bin("zhishi").unwrap();
        hub_env(&mut cmd, &cache, Some(&hub.endpoint()), false);
        cmd.args(["download", "test/tiny-bert"]).assert().success()
    };
    let out: Value = serde_json::from_str(&stdout(&download())).unwrap();
    let snapshot = cache.join("models--test--tiny-bert/snapshots").join(COMMIT);
    assert_eq!(out["model"], "hf:test/tiny-bert");
    assert_eq!(out["revision"], "main");
    assert_eq!(out["commit"], COMMIT);
    assert_eq!(out["dir"], snapshot.display().to_string());
    assert_eq!(
        out["files"],
        serde_json::json!(["config.json", "model.safetensors", "vocab.txt"])
    );
    for file in ["config.json", "model.safetensors", "vocab.txt"] {
        let link = snapshot.join(file);
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read(&link).unwrap(),
            std::fs::read(model.join(file)).unwrap()
        );
    }
    assert!(
        !snapshot.join("tf_model.h5").exists(),
        "other frameworks' weights are left"
    );
    let refs = cache.join("models--test--tiny-bert/refs/main");
    assert_eq!(std::fs::read_to_string(refs).unwrap().trim(), COMMIT);
    let requested = hub.requested();
    assert_eq!(requested[0], "/api/models/test/tiny-bert/revision/main");
    assert!(
        requested.iter().any(|p| p.starts_with("/cdn/")),
        "weights redirected: {requested:?}"
    );

    // The fetched model encodes as its directory does, offline.
    let from_dir = stdout(&encode(model.to_str().unwrap(), &cache, None, true).success());
    let from_id = stdout(&encode("hf:test/tiny-bert", &cache, None, true).success());
    assert_eq!(from_id, from_dir);

    // Again: the hub is asked which files the revision has, and nothing is fetched.
    let before = hub.requested().len();
    download();
    assert_eq!(
        hub.requested()[before..],
        ["/api/models/test/tiny-bert/revision/main"]
    );

    // A repository the hub does not have.
    let mut cmd = Command::cargo_bin("zhishi").unwrap();
    hub_env(&mut cmd, &cache, Some(&hub.endpoint()), false);
    cmd.args(["download", "test/absent", "--quiet"])
        .assert()
        .failure()
        .stderr(contains(
            "cannot fetch hf:test/absent from http://127.0.0.1",
        ))
        .stderr(contains("404"));
}

#[test]
fn an_uncached_id_is_fetched_on_first_use_and_read_offline_after() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model(tmp.path());
    let hub = HubServer::start("test/tiny-bert", &model);
    let cache = tmp.path().join("cache");
    let from_dir = stdout(&encode(model.to_str().unwrap(), &cache, None, true).success());
    let first =
        stdout(&encode("hf:test/tiny-bert", &cache, Some(&hub.endpoint()), false).success());
    assert_eq!(first, from_dir);
    let fetched = hub.requested().len();
    assert!(fetched > 1, "{:?}", hub.requested());
    // Cached now: no request even without HF_HUB_OFFLINE.
    let again =
        stdout(&encode("hf:test/tiny-bert", &cache, Some(&hub.endpoint()), false).success());
    assert_eq!(again, from_dir);
    assert_eq!(hub.requested().len(), fetched);
}
