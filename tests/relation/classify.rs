//! Sentence and sentence-pair classification end to end on a tiny random encoder: training
//! from TOML (plain, K-BERT pairs, ERNIE, multi-label), the model directory, `zhishi eval`'s
//! JSON, the confusion picture, the `classify` pipeline stage over pairs, and gradients to
//! every parameter (pooler and mean pooling, K-BERT pair inputs with token types), and
//! distilling a classification teacher into a one-layer student.
use crate::support::{grad_check, tiny};

use std::path::PathBuf;

use assert_cmd::Command;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde_json::Value;
use zhishi::doc::Document;
use zhishi::knowledge::{CharVocab, DocumentKnowledge};
use zhishi::model::{BertConfig, Dropout, Kernels};
use zhishi::stages::classify::config::Pooling;
use zhishi::stages::classify::features::{Batch, Featurizer};
use zhishi::stages::classify::network::{ClassifyNetwork, LossWeights};
use zhishi::stages::classify::ClassifyModel;
use zhishi::stages::task::Injection;
use zhishi::text::{LinkOptions, Linker, MemoryKg};

/// Every character of the toy data.
const CHARS: &str = "这家酒店很好差房间干净脏服务热情冷淡价格便宜贵北京上海城市是在吗哪";

fn tiny_config() -> BertConfig {
    tiny::tiny_config(vocab().len(), 64)
}

fn vocab() -> Vec<String> {
    tiny::char_vocab(CHARS)
}

/// Positive reviews say 好/干净/热情/便宜, negative ones 差/脏/冷淡/贵.
const REVIEWS: &[(&str, &str)] = &[
    ("1", "这家酒店很好"),
    ("0", "这家酒店很差"),
    ("1", "房间干净"),
    ("0", "房间很脏"),
    ("1", "服务热情"),
    ("0", "服务冷淡"),
    ("1", "价格便宜"),
    ("0", "价格很贵"),
    ("1", "北京的酒店很好"),
    ("0", "上海的房间很脏"),
];

struct Workspace {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Workspace {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        tiny::write_encoder(&root.join("model"), &tiny_config(), &vocab());
        std::fs::write(
            root.join("kg.spo"),
            "北京\t类型\t城市\n上海\t类型\t城市\n酒店\t类型\t房间\n",
        )
        .unwrap();
        Self { _tmp: tmp, root }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A classify TOML over `train`/`dev` files with `data`/`head`/`knowledge` lines.
    fn config(&self, name: &str, data: &str, extra: &str) -> PathBuf {
        self.write(
            name,
            &format!(
                r#"[task]
kind = "classify"

[encoder]
model = "model"
dropout = 0.0

{extra}

[data]
{data}
max_len = 32

[train]
output_dir = "out-{name}"
epochs = 80
batch_size = 4
lr = 5e-3
warmup_ratio = 0.0
seed = 7
progress = false
"#
            ),
        )
    }
}

fn tsv(rows: &[(&str, &str)]) -> String {
    let mut s = String::from("label\ttext_a\n");
    for (l, t) in rows {
        // K-BERT's files space-separate the characters; the reader drops the spaces.
        let spaced: Vec<String> = t.chars().map(String::from).collect();
        s.push_str(&format!("{l}\t{}\n", spaced.join(" ")));
    }
    s
}

fn zhishi() -> Command {
    let mut cmd = Command::cargo_bin("zhishi").unwrap();
    cmd.env_remove("M3E_DIR");
    cmd
}

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

#[test]
fn single_sentence_training_learns_the_toy_sentiment_and_eval_reports_accuracy_and_macro_f1() {
    let ws = Workspace::new();
    ws.write("train.tsv", &tsv(REVIEWS));
    ws.write("dev.tsv", &tsv(&REVIEWS[..6]));
    let config = ws.config(
        "cls.toml",
        "format = \"tsv\"\ntrain = \"train.tsv\"\ndev = \"dev.tsv\"\ntest = \"dev.tsv\"",
        "",
    );
    let out = zhishi().arg("train").arg(&config).assert().success();
    let report = json(&out.get_output().stdout);
    assert_eq!(report["task"], "classify");
    assert_eq!(report["metric"], "accuracy");
    assert!(report["accuracy"].as_f64().unwrap() >= 0.99, "{report}");
    let out_dir = ws.root.join("out-cls.toml");
    let svg = std::fs::read_to_string(out_dir.join("confusion.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("gold"));
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("best/classify.json")).unwrap())
            .unwrap();
    assert_eq!(meta["labels"], serde_json::json!(["0", "1"]));
    assert_eq!(meta["pairs"], false);

    let out = zhishi()
        .args(["eval"])
        .arg(&config)
        .args(["--split", "test"])
        .assert()
        .success();
    let eval = json(&out.get_output().stdout);
    assert_eq!(eval["split"], "test");
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.99, "{eval}");
    assert!(eval["macro_f1"].as_f64().unwrap() >= 0.99, "{eval}");
    assert_eq!(eval["per_class"].as_array().unwrap().len(), 2);
    assert_eq!(
        eval["confusion"]["matrix"],
        serde_json::json!([[3, 0], [0, 3]])
    );

    // `zhishi quantize` keeps a classification model's files and its predictions.
    let int8 = ws.root.join("int8");
    zhishi()
        .args(["quantize", "--model"])
        .arg(out_dir.join("best"))
        .arg("--output")
        .arg(&int8)
        .assert()
        .success();
    let q = ClassifyModel::load(&int8).unwrap();
    let f = ClassifyModel::load(&out_dir.join("best")).unwrap();
    let texts = [("房间很干净", None), ("服务很冷淡", None)];
    let (pq, pf) = (q.predict(&texts).unwrap(), f.predict(&texts).unwrap());
    for (a, b) in pq.iter().zip(&pf) {
        assert_eq!(q.decide(a), f.decide(b));
        assert!((a[0] - b[0]).abs() < 0.05, "{a:?} vs {b:?}");
    }

    // The library: bare texts through the trained model.
    let model = ClassifyModel::load(&out_dir.join("best")).unwrap();
    let probs = model
        .predict(&[("房间很干净", None), ("服务很冷淡", None)])
        .unwrap();
    for p in &probs {
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    assert_eq!(model.decide(&probs[0]), [1]);
    assert_eq!(model.decide(&probs[1]), [0]);
}

#[test]
fn bad_rows_name_file_line_and_what_was_expected() {
    let ws = Workspace::new();
    ws.write("train.tsv", "label\ttext_a\n1\t好\n0\t差\textra\n");
    ws.write("dev.tsv", &tsv(&REVIEWS[..2]));
    let config = ws.config(
        "bad.toml",
        "format = \"tsv\"\ntrain = \"train.tsv\"\ndev = \"dev.tsv\"",
        "",
    );
    let out = zhishi().arg("train").arg(&config).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("train.tsv:3: expected 2 cells as the header has, found 3"),
        "{err}"
    );
}

/// Question/predicate pairs: 1 when the predicate is the question's.
const PAIRS: &[(&str, &str, &str)] = &[
    ("1", "北京在哪", "城市"),
    ("0", "北京在哪", "价格"),
    ("1", "酒店价格贵吗", "价格"),
    ("0", "酒店价格贵吗", "城市"),
    ("1", "上海是城市吗", "城市"),
    ("0", "上海是城市吗", "服务"),
    ("1", "服务热情吗", "服务"),
    ("0", "服务热情吗", "房间"),
];

fn pair_tsv(rows: &[(&str, &str, &str)]) -> String {
    let mut s = String::from("text_a\ttext_b\tlabel\n");
    for (l, a, b) in rows {
        s.push_str(&format!("{a}\t{b}\t{l}\n"));
    }
    s
}

#[test]
fn kbert_pairs_train_and_the_pipeline_stage_labels_jsonl_pairs_with_probabilities() {
    let ws = Workspace::new();
    ws.write("train.tsv", &pair_tsv(PAIRS));
    ws.write("dev.tsv", &pair_tsv(&PAIRS[..4]));
    let config = ws.config(
        "pairs.toml",
        "format = \"tsv\"\ntrain = \"train.tsv\"\ndev = \"dev.tsv\"",
        "[knowledge]\nmode = \"kbert\"\nkg = \"kg.spo\"\nnil_threshold = 0.0",
    );
    let out = zhishi().arg("train").arg(&config).assert().success();
    let report = json(&out.get_output().stdout);
    assert!(report["accuracy"].as_f64().unwrap() >= 0.99, "{report}");
    let best = ws.root.join("out-pairs.toml/best");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(best.join("classify.json")).unwrap())
            .unwrap();
    assert_eq!(
        (meta["pairs"].clone(), meta["knowledge"]["mode"].clone()),
        (Value::from(true), Value::from("kbert"))
    );

    let pipeline = ws.write(
        "run.toml",
        &format!(
            r#"[pipeline]
stages = ["link", "facts", "classify"]

[kg]
triples = ["kg.spo"]

[link]
nil_threshold = 0.0

[facts]
per_mention = 2

[classify]
model = "{}"
top_k = 2
"#,
            best.display()
        ),
    );
    let input = ws.write(
        "in.jsonl",
        "{\"id\": \"a\", \"text\": \"北京在哪\", \"b\": \"城市\"}\n{\"id\": \"b\", \"text\": \"北京在哪\", \"b\": \"价格\"}\n",
    );
    let out = zhishi()
        .arg("run")
        .arg(&pipeline)
        .arg("--input")
        .arg(&input)
        .args([
            "--format",
            "jsonl",
            "--id-field",
            "id",
            "--text-b-field",
            "b",
        ])
        .assert()
        .success();
    let docs: Vec<Value> = String::from_utf8_lossy(&out.get_output().stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    for (doc, want) in docs.iter().zip(["1", "0"]) {
        let labels = doc["labels"].as_array().unwrap();
        assert_eq!(labels.len(), 2, "{doc}");
        assert_eq!(labels[0]["label"], want, "{doc}");
        let (s0, s1) = (
            labels[0]["score"].as_f64().unwrap(),
            labels[1]["score"].as_f64().unwrap(),
        );
        assert!(s0 >= s1 && (s0 + s1 - 1.0).abs() < 1e-4, "{doc}");
        assert_eq!(labels[0]["source"], "classify");
        // 北京's fact went into the input.
        assert!(
            doc["facts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["injected_by"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s == "classify")),
            "{doc}"
        );
    }

    // `min_score = 0.5` keeps the more likely of the two labels only (their scores sum to 1).
    let strict = ws.write(
        "strict.toml",
        &format!(
            "{}min_score = 0.5\n",
            std::fs::read_to_string(&pipeline).unwrap()
        ),
    );
    let out = zhishi()
        .arg("run")
        .arg(&strict)
        .arg("--input")
        .arg(&input)
        .args([
            "--format",
            "jsonl",
            "--id-field",
            "id",
            "--text-b-field",
            "b",
        ])
        .assert()
        .success();
    let strict_docs: Vec<Value> = String::from_utf8_lossy(&out.get_output().stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (doc, all) in strict_docs.iter().zip(&docs) {
        let labels = doc["labels"].as_array().unwrap();
        assert_eq!(labels.len(), 1, "{doc}");
        assert_eq!(labels[0], all["labels"][0], "{doc}");
    }

    // A pair model given a single text says what is missing.
    let single = ws.write("single.txt", "北京在哪\n");
    let out = zhishi()
        .arg("run")
        .arg(&pipeline)
        .arg("--input")
        .arg(&single)
        .assert();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("has no text_b"), "{stderr}");
}

#[test]
fn multi_label_jsonl_and_ernie_entities_train() {
    let ws = Workspace::new();
    let rows = [
        (r#"["clean"]"#, "房间干净"),
        (r#"["service"]"#, "服务热情"),
        (r#"["clean", "service"]"#, "房间干净服务热情"),
        (r#"["price"]"#, "价格便宜"),
        (r#"["price", "service"]"#, "价格便宜服务热情"),
        (r#"[]"#, "这家酒店"),
    ];
    let jsonl: String = rows
        .iter()
        .map(|(l, t)| format!("{{\"sentence\": \"{t}\", \"tags\": {l}}}\n"))
        .collect();
    ws.write("train.jsonl", &jsonl);
    let config = ws.config(
        "multi.toml",
        "format = \"jsonl\"\ntrain = \"train.jsonl\"\ndev = \"train.jsonl\"\ntext_field = \"sentence\"\nlabel_field = \"tags\"",
        "[head]\nmulti_label = true\npooling = \"mean\"\nclass_weights = \"balanced\"",
    );
    let out = zhishi().arg("train").arg(&config).assert().success();
    let report = json(&out.get_output().stdout);
    assert!(report["accuracy"].as_f64().unwrap() >= 0.99, "{report}");
    assert!(report["micro_f1"].as_f64().unwrap() >= 0.99, "{report}");

    ws.write("train.tsv", &tsv(REVIEWS));
    let config = ws.config(
        "ernie.toml",
        "format = \"tsv\"\ntrain = \"train.tsv\"\ndev = \"train.tsv\"",
        "[knowledge]\nmode = \"ernie\"\nkg = \"kg.spo\"\nnil_threshold = 0.0\ntranse_epochs = 5",
    );
    let out = zhishi().arg("train").arg(&config).assert().success();
    let report = json(&out.get_output().stdout);
    assert!(report["accuracy"].as_f64().unwrap() >= 0.9, "{report}");
    let eval = zhishi()
        .arg("eval")
        .arg(&config)
        .args(["--split", "dev", "--precision", "int8"])
        .assert()
        .success();
    let eval = json(&eval.get_output().stdout);
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.8, "{eval}");
}

/// Names of the parameters whose gradient is missing or all zero.
fn params_without_gradient(
    pooling: Pooling,
    injection: Injection,
    a: Document,
    b: Document,
) -> Vec<String> {
    let vocab_tokens = vocab();
    let cfg = BertConfig {
        kernels: Kernels::Differentiable,
        ..tiny_config()
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = ClassifyNetwork::load(vb, &cfg, 3, pooling, false, None).unwrap();
    let vocab = CharVocab::from_tokens(vocab_tokens.iter().map(String::as_str)).unwrap();
    let f = Featurizer::new(vocab, 32, injection);
    let (ka, kb) = (DocumentKnowledge::new(&a), DocumentKnowledge::new(&b));
    let (x, _) = f.encode(&ka, Some(&kb), vec![1]).unwrap();
    let (y, _) = f.encode(&kb, None, vec![2]).unwrap();
    assert!(x.input.token_types.contains(&1), "pairs carry token types");
    let batch = Batch::new(&[&x, &y], &Device::Cpu).unwrap();
    let loss = net
        .loss(&batch, &Dropout::new(0.1, 3), &LossWeights::default())
        .unwrap();
    let grads = loss.backward().unwrap();
    grad_check::params_without_gradient(&varmap, &grads)
}

#[test]
fn every_parameter_gets_a_gradient_with_pooler_mean_and_kbert_pairs() {
    let kg = MemoryKg::from_triples([("北京", "类型", "城市")]);
    let options = LinkOptions {
        nil_threshold: 0.0,
        ..Default::default()
    };
    let linker = Linker::build(kg, options).unwrap();
    let a = zhishi::text::annotate(&linker, "北京的酒店很好", 1).unwrap();
    assert_eq!(a.facts.len(), 1, "北京 is linked and has its fact");
    for pooling in [Pooling::Pooler, Pooling::Mean] {
        assert_eq!(
            params_without_gradient(
                pooling,
                Injection::kbert(1, false),
                a.clone(),
                Document::new("价格便宜")
            ),
            Vec::<String>::new(),
            "{pooling:?}"
        );
    }
}

#[test]
fn a_pair_keeps_each_texts_knowledge_to_itself_and_cuts_the_longer_text_first() {
    let kg = MemoryKg::from_triples([("北京", "类型", "城市"), ("上海", "类型", "城市")]);
    let options = LinkOptions {
        nil_threshold: 0.0,
        ..Default::default()
    };
    let linker = Linker::build(kg, options).unwrap();
    let a = zhishi::text::annotate(&linker, "北京很好", 1).unwrap();
    let b = zhishi::text::annotate(&linker, "上海很好", 1).unwrap();
    let vocab_tokens = vocab();
    let vocab = CharVocab::from_tokens(vocab_tokens.iter().map(String::as_str)).unwrap();
    let f = Featurizer::new(vocab, 40, Injection::kbert(1, false));
    let (ka, kb) = (DocumentKnowledge::new(&a), DocumentKnowledge::new(&b));
    let (x, injected) = f.encode(&ka, Some(&kb), Vec::new()).unwrap();
    assert_eq!((injected.a.len(), injected.b.len()), (1, 1));
    // [CLS] 北 京 城 市 很 好 [SEP] 上 海 城 市 很 好 [SEP]
    assert_eq!(x.len(), 15);
    assert_eq!(
        x.input.token_types,
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    );
    let visible = x.input.visible.as_ref().unwrap();
    // a's knowledge (城市 after 北京: tokens 3, 4) is seen by 北京 only, not by b's tokens.
    assert!(visible.get(1, 3) && visible.get(3, 2));
    assert!(!visible.get(9, 3) && !visible.get(3, 9) && !visible.get(5, 3));
    // b's knowledge (tokens 10, 11) is not seen by a's tokens.
    assert!(!visible.get(1, 10) && visible.get(9, 10));
    // The sentences see each other.
    assert!(visible.get(1, 9) && visible.get(12, 5));
    // Budget: the longer text is cut first.
    assert_eq!(f.budget(30, Some(10)), (27, 10));
    assert_eq!(f.budget(20, Some(20)), (18, 19));
    assert_eq!(f.budget(50, None), (38, 0));
}

/// A distillation TOML whose teacher is the classification model `teacher`.
fn classify_distill_toml(ws: &Workspace, teacher: &str, data: &str, distill: &str) -> PathBuf {
    ws.write(
        "distill.toml",
        &format!(
            r#"[task]
kind = "distill"

[teacher]
model = "{teacher}"

[student]
num_layers = 1
dropout = 0.0

[distill]
{distill}

[data]
{data}

[train]
output_dir = "out-student"
epochs = 60
batch_size = 4
lr = 5e-3
warmup_ratio = 0.0
seed = 7
progress = false
"#
        ),
    )
}

#[test]
fn a_classification_teacher_distils_into_a_one_layer_classification_model() {
    let ws = Workspace::new();
    ws.write("train.tsv", &tsv(REVIEWS));
    ws.write("dev.tsv", &tsv(&REVIEWS[..6]));
    let config = ws.config(
        "cls.toml",
        "format = \"tsv\"\ntrain = \"train.tsv\"\ndev = \"dev.tsv\"\ntest = \"dev.tsv\"",
        "",
    );
    zhishi().arg("train").arg(&config).assert().success();
    let teacher_dir = ws.root.join("out-cls.toml/best");

    // A student keeping every teacher layer is the teacher: the same logits.
    let teacher = ClassifyModel::load(&teacher_dir).unwrap();
    let meta = teacher.meta().clone();
    let (full, _, cfg) = zhishi::stages::distill::student::student_network(
        &teacher_dir,
        zhishi::stages::classify::model::WEIGHTS_FILE,
        &[0, 1],
        &Device::Cpu,
        |vb, cfg| ClassifyNetwork::load(vb, cfg, 2, meta.pooling, meta.multi_label, None),
    )
    .unwrap();
    assert_eq!(cfg.kernels, Kernels::Differentiable);
    let docs = [Document::new("房间很干净"), Document::new("服务很冷淡")];
    let examples: Vec<_> = docs
        .iter()
        .map(|d| {
            let k = DocumentKnowledge::new(d);
            teacher.featurizer().encode(&k, None, vec![]).unwrap().0
        })
        .collect();
    let refs: Vec<_> = examples.iter().collect();
    let batch = Batch::new(&refs, &Device::Cpu).unwrap();
    let off = Dropout::disabled();
    let (a, b) = (
        full.logits(&batch, &off).unwrap(),
        teacher.network().logits(&batch, &off).unwrap(),
    );
    let diff = (a - b).unwrap().abs().unwrap().flatten_all().unwrap();
    assert!(diff.max(0).unwrap().to_scalar::<f32>().unwrap() < 1e-4);

    // The data is read as the teacher's task reads it: an NER format is refused by key.
    let bad = classify_distill_toml(
        &ws,
        "out-cls.toml/best",
        "format = \"kbert_tsv\"\ntrain = \"train.tsv\"\ndev = \"dev.tsv\"",
        "",
    );
    let out = zhishi().arg("train").arg(&bad).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("data.format") && err.contains("\"tsv\""),
        "{err}"
    );

    // Soft labels (softmax at T = 2), gold labels, TinyBERT's hidden and attention losses,
    // and unlabelled reviews (soft labels only).
    ws.write("unlabelled.txt", "房间很好\n\n服务很差\n价格便宜\n");
    let distill = classify_distill_toml(
        &ws,
        "out-cls.toml/best",
        "format = \"tsv\"\ntrain = \"train.tsv\"\ndev = \"dev.tsv\"\ntest = \"dev.tsv\"",
        "temperature = 2.0\nalpha = 0.5\nhidden_loss = 1.0\nattention_loss = 1.0\nunlabelled = \"unlabelled.txt\"",
    );
    let out = zhishi().arg("train").arg(&distill).assert().success();
    let report = json(&out.get_output().stdout);
    assert_eq!(report["task"], "distill");
    assert_eq!(report["metric"], "accuracy");
    assert_eq!(report["details"]["unlabelled"], 3, "{report}");
    assert_eq!(report["details"]["layers"], serde_json::json!([1]));
    assert!(report["accuracy"].as_f64().unwrap() >= 0.8, "{report}");

    // The student is an ordinary one-layer classification model.
    let student_dir = ws.root.join("out-student/best");
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(student_dir.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["num_hidden_layers"], 1);
    let student = ClassifyModel::load(&student_dir).unwrap();
    assert_eq!(student.labels(), teacher.labels());
    let probs = student.predict(&[("房间很干净", None)]).unwrap();
    assert!((probs[0].iter().sum::<f32>() - 1.0).abs() < 1e-5);

    // `zhishi eval` on the distillation file scores the student, at f32 and int8.
    for precision in ["f32", "int8"] {
        let out = zhishi()
            .arg("eval")
            .arg(&distill)
            .args(["--split", "test", "--precision", precision])
            .assert()
            .success();
        let eval = json(&out.get_output().stdout);
        assert_eq!(eval["metric"], "accuracy", "{eval}");
        assert!(eval["macro_f1"].as_f64().is_some(), "{eval}");
        assert_eq!(eval["confusion"]["matrix"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn classification_reads_doccano_and_label_studio_labels() {
    use zhishi::stages::classify::data::{read, DataFormat, Fields};
    let dir = tempfile::tempdir().unwrap();
    let doccano = dir.path().join("cls.jsonl");
    std::fs::write(
        &doccano,
        "{\"text\": \"这家 酒店很好\", \"label\": [\"1\"]}\n{\"text\": \"房间很脏\", \"label\": [\"0\", \"1\"]}\n",
    )
    .unwrap();
    let single = Fields::new(DataFormat::Doccano, None, None, "label", None);
    let err = read(&doccano, DataFormat::Doccano, &single).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: 2 labels [\"0\", \"1\"]; expected exactly one (several need head.multi_label = true)",
            doccano.display()
        )
    );
    let multi = Fields::new(DataFormat::Doccano, None, None, "label", Some(","));
    let examples = read(&doccano, DataFormat::Doccano, &multi).unwrap();
    assert_eq!(examples[0].text_a, "这家酒店很好");
    assert_eq!(examples[1].labels, ["0", "1"]);
    let ls = dir.path().join("cls.json");
    std::fs::write(
        &ls,
        r#"[{"id": 3, "data": {"text": "服务热情"}, "annotations": [{"result": [{"type": "choices", "value": {"choices": ["1"]}}]}]}]"#,
    )
    .unwrap();
    let examples = read(&ls, DataFormat::LabelStudio, &single).unwrap();
    assert_eq!(
        (examples[0].labels.as_slice(), examples[0].line),
        (&["1".to_string()][..], 1)
    );
}
