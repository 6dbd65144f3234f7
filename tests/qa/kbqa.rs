//! The KBQA stage end to end on a hand-made NLPCC-style file and a tiny random encoder built
//! here (no downloaded weights): the store is built from the file's gold triples, the scorer
//! trains on the first questions, and unseen questions come back with the right triple; a
//! pipeline answers from its own KG and linker, the model directory moves, and a pipeline
//! that links differently is refused.
use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use zhishi::config::{self, Loaded};
use zhishi::doc::Triple;
use zhishi::kg::store::Store;
use zhishi::model::load::expected_tensors;
use zhishi::model::BertConfig;
use zhishi::model::Precision;
use zhishi::stages::kbqa::{self, KbqaConfig, KbqaModel, Split};
use zhishi::text::Linker;
use zhishi::Pipeline;

use crate::support::tiny;

/// (question, subject, predicate, object): 10 training, 2 dev, 3 test questions.
const QUESTIONS: [(&str, &str, &str, &str); 15] = [
    (
        "《机械设计基础》这本书的作者是谁？",
        "机械设计基础",
        "作者",
        "杨可桢",
    ),
    (
        "机械设计基础是哪个出版社出版的？",
        "机械设计基础",
        "出版社",
        "高等教育出版社",
    ),
    ("《高等数学》的作者是谁？", "高等数学", "作者", "李忠"),
    ("姚明的妻子是谁？", "姚明", "妻子", "叶莉"),
    ("叶莉的身高是多少？", "叶莉", "身高", "190厘米"),
    ("姚明的身高有多少？", "姚明", "身高", "226厘米"),
    ("北京的人口有多少？", "北京", "人口", "2154万"),
    ("北京的面积是多少？", "北京", "面积", "16410平方千米"),
    ("上海的人口是多少？", "上海", "人口", "2487万"),
    ("鲁迅的原名是什么？", "鲁迅", "原名", "周树人"),
    ("鲁迅的出生地是哪里？", "鲁迅", "出生地", "绍兴"),
    ("上海的面积有多大？", "上海", "面积", "6340平方千米"),
    (
        "《高等数学》是哪个出版社出版的？",
        "高等数学",
        "出版社",
        "武汉大学出版社",
    ),
    ("叶莉的丈夫是谁？", "叶莉", "丈夫", "姚明"),
    ("鲁迅的代表作是什么？", "鲁迅", "代表作", "狂人日记"),
];

fn nlpcc_file() -> String {
    let mut out = String::new();
    for (i, (q, s, p, o)) in QUESTIONS.iter().enumerate() {
        let id = i + 1;
        out.push_str(&format!(
            "<question id={id}>\t{q}\n<triple id={id}>\t{s} ||| {p} ||| {o}\n<answer id={id}>\t{o}\n==================================================\n"
        ));
    }
    out
}

/// Deterministic values in [-1, 1).
fn pseudo_random(seed: u64, n: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Writes a 1-layer, 16-wide BERT with a vocabulary of the file's characters into `dir`.
fn tiny_encoder(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let mut chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    chars.sort_unstable();
    chars.dedup();
    let vocab = tiny::char_vocab(&chars.into_iter().collect::<String>());
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n").unwrap();
    let cfg = BertConfig {
        num_hidden_layers: 1,
        ..tiny::tiny_config(vocab.len(), 64)
    };
    tiny::write_config(dir, &cfg);
    let mut tensors = HashMap::new();
    for (i, (name, shape)) in expected_tensors(&cfg).unwrap().into_iter().enumerate() {
        let n: usize = shape.iter().product();
        let values = if name.ends_with("LayerNorm.weight") {
            vec![1.0; n]
        } else if name.ends_with("bias") {
            vec![0.0; n]
        } else {
            pseudo_random(i as u64 + 1, n)
                .into_iter()
                .map(|v| v * 0.5)
                .collect()
        };
        let t = Tensor::from_vec(values, shape, &Device::Cpu).unwrap();
        tensors.insert(name, t);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
}

const TOML: &str = r#"[task]
kind = "kbqa"

[data]
path = "questions.txt"
train_questions = 12
dev_questions = 2

[kg]
store = "store"

[encoder]
model = "encoder"
batch_size = 4

[train]
output = "model"
epochs = 40
lr = 0.05
batch_size = 4
rank = 2
"#;

/// A temp dir holding the question file, the tiny encoder and the config.
fn setup(toml: &str) -> (tempfile::TempDir, Loaded<KbqaConfig>) {
    let dir = tempfile::tempdir().unwrap();
    let file = nlpcc_file();
    std::fs::write(dir.path().join("questions.txt"), &file).unwrap();
    tiny_encoder(&dir.path().join("encoder"), &file);
    let path = dir.path().join("kbqa.toml");
    std::fs::write(&path, toml).unwrap();
    let loaded = config::load(&path, &[]).unwrap();
    (dir, loaded)
}

fn top_triple(model: &KbqaModel, linker: &Linker<Store>, question: &str) -> Option<Triple> {
    model
        .answer(linker, question)
        .unwrap()
        .into_iter()
        .next()?
        .triple
}

/// A linker over the test's store with the model's settings.
fn linker_for(model: &KbqaModel, config: &Loaded<KbqaConfig>) -> Linker<Store> {
    let store = Store::open(&config.source.resolve(Path::new("store"))).unwrap();
    Linker::build(store, model.linker_options().clone()).unwrap()
}

#[test]
fn trains_then_answers_unseen_questions_with_the_gold_triple() {
    let (_dir, config) = setup(TOML);
    let report = kbqa::train(&config).unwrap();
    assert_eq!(report.train_questions, 10);
    assert_eq!(report.train_with_gold, 10);
    assert!(
        report.final_loss < report.initial_loss * 0.5,
        "training did not lower the loss: {} -> {}",
        report.initial_loss,
        report.final_loss
    );

    let model = KbqaModel::load(&config.source.resolve(Path::new("model"))).unwrap();
    let linker = linker_for(&model, &config);
    let answers = model
        .answer(&linker, "《高等数学》是哪个出版社出版的？")
        .unwrap();
    assert_eq!(answers[0].text, "武汉大学出版社");
    assert_eq!(
        answers[0].triple,
        Some(Triple {
            subject: "高等数学".into(),
            predicate: "出版社".into(),
            object: "武汉大学出版社".into(),
        })
    );
    // Weaker alternatives, if any survive the NIL threshold, score lower.
    assert!(answers[1..].iter().all(|a| a.score < answers[0].score));
    assert_eq!(
        top_triple(&model, &linker, "叶莉的丈夫是谁？").map(|t| t.object),
        Some("姚明".to_string())
    );
    assert_eq!(
        top_triple(&model, &linker, "鲁迅的代表作是什么？").map(|t| t.predicate),
        Some("代表作".to_string())
    );
    assert!(model
        .answer(&linker, "今天天气怎么样？")
        .unwrap()
        .is_empty());
}

#[test]
fn a_saved_model_reloads_to_identical_answers_and_metrics() {
    let (_dir, config) = setup(TOML);
    let report = kbqa::train(&config).unwrap();
    // The dev metrics computed with the in-memory scorer equal those of the reloaded model.
    let dev = kbqa::evaluate(&config, Split::Dev, Precision::F32).unwrap();
    assert_eq!(dev, report.dev);
    let dir = config.source.resolve(Path::new("model"));
    let questions: Vec<&str> = QUESTIONS.iter().map(|q| q.0).collect();
    let model = KbqaModel::load(&dir).unwrap();
    let linker = linker_for(&model, &config);
    let first = model.answer_batch(&linker, &questions).unwrap();
    let second = KbqaModel::load(&dir)
        .unwrap()
        .answer_batch(&linker, &questions)
        .unwrap();
    assert_eq!(first, second);
    drop(linker);
    let test = kbqa::evaluate(&config, Split::Test, Precision::F32).unwrap();
    assert_eq!(test.questions, 3);
    assert_eq!(test.accuracy, 1.0);
}

#[test]
fn config_errors_name_the_line_and_key() {
    let (_dir, config) = setup(&TOML.replace("kind = \"kbqa\"", "kind = \"ner\""));
    let err = kbqa::train(&config).unwrap_err().to_string();
    assert!(
        err.ends_with("kbqa.toml:2: key `task.kind`: expected \"kbqa\", found \"ner\""),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, TOML.replace("rank = 2", "rank = 2\nrnak = 3")).unwrap();
    let err = config::load::<KbqaConfig>(&path, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.toml:22: key `train.rnak`"), "{err}");
}

#[test]
fn without_training_the_same_questions_are_not_all_answered() {
    let (dir, _) = setup(TOML);
    let path = dir.path().join("kbqa.toml");
    let untrained: Loaded<KbqaConfig> = config::load(&path, &["train.epochs=0".into()]).unwrap();
    let report = kbqa::train(&untrained).unwrap();
    assert_eq!(report.final_loss, report.initial_loss);
    let test = kbqa::evaluate(&untrained, Split::Test, Precision::F32).unwrap();
    assert!(test.accuracy < 1.0, "{test:?}");
}

/// A pipeline file running `link` + `kbqa` over the test's store with `link` as its
/// `[link]` table.
fn pipeline_toml(dir: &Path, model: &Path, link: &str, kbqa_extra: &str) -> std::path::PathBuf {
    let text = format!(
        "[pipeline]\nstages = [\"link\", \"kbqa\"]\n\n[kg]\nstore = {store:?}\n\n[link]\n{link}\n\n[kbqa]\nmodel = {model:?}\n{kbqa_extra}\n",
        store = dir.join("store"),
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const KBQA_LINK: &str = "overlap = \"all\"\nnil_threshold = 0.0\nmax_candidates = 3";

#[test]
fn a_pipeline_answers_from_its_own_kg_with_a_moved_model_and_refuses_other_linking() {
    let (dir, config) = setup(TOML);
    kbqa::train(&config).unwrap();
    let trained = dir.path().join("model");
    let meta = std::fs::read_to_string(trained.join(kbqa::META_FILE)).unwrap();
    let root = dir.path().to_string_lossy().into_owned();
    assert!(
        !meta.contains(&root),
        "the model directory records a path: {meta}"
    );
    // The answers of the library call over the training store, before the move.
    let questions: Vec<&str> = QUESTIONS.iter().map(|q| q.0).collect();
    let expected = {
        let model = KbqaModel::load(&trained).unwrap();
        let linker = linker_for(&model, &config);
        model.answer_batch(&linker, &questions).unwrap()
    };
    // Move the model and delete the encoder it was trained from: it holds its own.
    let elsewhere = tempfile::tempdir().unwrap();
    let moved = elsewhere.path().join("moved-model");
    std::fs::rename(&trained, &moved).unwrap();
    std::fs::remove_dir_all(dir.path().join("encoder")).unwrap();

    let pipeline = Pipeline::from_toml(pipeline_toml(dir.path(), &moved, KBQA_LINK, "")).unwrap();
    let docs = pipeline.process_batch(&questions).unwrap();
    for (doc, want) in docs.iter().zip(&expected) {
        let got: Vec<_> = doc.answers.iter().map(|a| &a.triple).collect();
        let want: Vec<_> = want.iter().take(1).map(|a| &a.triple).collect();
        assert_eq!(got, want, "{}", doc.text);
    }
    assert_eq!(docs[12].answers[0].text, "武汉大学出版社");
    drop(pipeline);

    // The same model named by a hub id, over a cache laid out as hf-hub does (its encoder in
    // `encoder/`), offline: the same answers.
    let cache = tempfile::tempdir().unwrap();
    crate::support::hub::lay_out(cache.path(), "test/kbqa", &moved);
    let by_id = pipeline_toml(dir.path(), Path::new("hf:test/kbqa"), KBQA_LINK, "");
    let input = dir.path().join("questions.txt");
    std::fs::write(&input, questions.join("\n")).unwrap();
    let mut cmd = assert_cmd::Command::cargo_bin("zhishi").unwrap();
    crate::support::hub::hub_env(&mut cmd, cache.path(), None, true);
    let out = cmd
        .arg("run")
        .arg(&by_id)
        .arg("--input")
        .arg(&input)
        .args(["--output", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), docs.len());
    for (line, doc) in lines.iter().zip(&docs) {
        let want: Vec<_> = doc
            .answers
            .iter()
            .map(|a| serde_json::to_value(&a.triple).unwrap())
            .collect();
        let got: Vec<_> = line["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["triple"].clone())
            .collect();
        assert_eq!(got, want, "{}", doc.text);
    }

    // `min_score` (the median answer score here) drops the answers scored below it.
    let mut scores: Vec<f32> = docs
        .iter()
        .flat_map(|d| d.answers.iter().map(|a| a.score))
        .collect();
    scores.sort_by(f32::total_cmp);
    let threshold = scores[scores.len() / 2];
    let extra = format!("min_score = {threshold:?}");
    let strict = Pipeline::from_toml(pipeline_toml(dir.path(), &moved, KBQA_LINK, &extra)).unwrap();
    let strict_docs = strict.process_batch(&questions).unwrap();
    for (got, all) in strict_docs.iter().zip(&docs) {
        let kept: Vec<_> = got.answers.iter().map(|a| &a.triple).collect();
        let want: Vec<_> = all
            .answers
            .iter()
            .filter(|a| a.score >= threshold)
            .map(|a| &a.triple)
            .collect();
        assert_eq!(kept, want, "{}", all.text);
    }
    drop(strict);

    // Linking with another NIL threshold would feed the scorer other mentions: refused,
    // naming the key, unless told to warn.
    let other = "overlap = \"all\"\nnil_threshold = 0.25\nmax_candidates = 3";
    let err = match Pipeline::from_toml(pipeline_toml(dir.path(), &moved, other, "")) {
        Ok(_) => panic!("a pipeline linking differently is refused"),
        Err(e) => zhishi::error::report(&e),
    };
    assert!(err.contains("link.nil_threshold"), "{err}");
    assert!(err.contains("knowledge_mismatch"), "{err}");
    let warned = pipeline_toml(dir.path(), &moved, other, "knowledge_mismatch = \"warn\"");
    assert!(Pipeline::from_toml(warned).is_ok());
}
