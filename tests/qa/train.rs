//! Extractive QA end to end on a tiny random encoder built in the test (no downloaded
//! weights): the loss falls and the toy questions are learnt, every parameter (embeddings
//! included) gets a gradient, a saved model reloads to the same answers and scores, the `qa`
//! pipeline stage answers documents' questions, `zhishi train`/`eval` print the metrics JSON,
//! and bad TOML is reported with its file, line and key.
use assert_cmd::Command;
use candle_core::{DType, Device, Var};
use candle_nn::{VarBuilder, VarMap};
use zhishi::doc::{Document, Span};
use zhishi::model::Dropout;
use zhishi::model::{BertTokenizer, Kernels};
use zhishi::pipeline::Pipeline;
use zhishi::stages::qa::config::WindowOptions;
use zhishi::stages::qa::data::read;
use zhishi::stages::qa::features::{Batch, QaFeaturizer};
use zhishi::stages::qa::network::QaNetwork;
use zhishi::stages::qa::{self, QaModel, QaStageOptions};

use crate::support::qa_workspace;
use qa_workspace::{encoder_config, Workspace, PARAGRAPHS};

#[test]
fn training_reduces_the_loss_and_learns_the_toy_questions() {
    let ws = Workspace::new("");
    let report = qa::train_config(&ws.config(), &[]).unwrap();
    let history = &report.train.history;
    let (first, last) = (history[0].loss, history[history.len() - 1].loss);
    assert!(last < 0.3 * first, "loss {first} -> {last}");
    assert_eq!(report.dev["em"], 1.0, "{}", report.dev);
    assert_eq!(report.dev["f1"], 1.0, "{}", report.dev);
    assert_eq!(report.train_data.questions, 5);
    assert_eq!((report.train_data.moved, report.skipped_questions), (0, 0));
    assert!(report.train_windows > 5, "long contexts are windowed");
}

#[test]
fn every_parameter_gets_a_gradient_embeddings_included() {
    let ws = Workspace::new("");
    let cfg = zhishi::model::BertConfig {
        kernels: Kernels::Differentiable,
        ..encoder_config()
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = QaNetwork::load(vb, &cfg).unwrap();
    let tokenizer = BertTokenizer::from_dir(&ws.root.join("model")).unwrap();
    let window = WindowOptions {
        max_len: 24,
        doc_stride: 6,
        max_query_len: 10,
    };
    let f = QaFeaturizer::new(tokenizer, window).unwrap();
    let (context, qas) = PARAGRAPHS[0];
    let (question, answer, start) = qas[0];
    let span = Span::new(start, start + answer.chars().count());
    let windows = f.encode(0, question, context, Some(span)).unwrap();
    assert!(windows.iter().any(|w| w.start > 0) && windows.iter().any(|w| w.start == 0));
    let refs: Vec<_> = windows.iter().collect();
    let batch = Batch::new(&refs, &Device::Cpu).unwrap();
    let loss = net.loss(&batch, &Dropout::new(0.1, 3)).unwrap();
    let grads = loss.backward().unwrap();
    let vars = varmap.data().lock().unwrap().clone();
    assert!(vars.len() > 30, "{} parameters", vars.len());
    let mut missing: Vec<String> = vars
        .iter()
        .filter(|(_, v): &(&String, &Var)| {
            grads.get(v.as_tensor()).is_none_or(|g| {
                g.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    == 0.0
            })
        })
        .map(|(n, _)| n.clone())
        .collect();
    missing.sort();
    // The start/end bias adds one constant to every position's logit, which the softmax over
    // positions ignores: its true gradient is zero (as in BertForQuestionAnswering), and what
    // it gets is rounding noise, sometimes exactly 0. Every other parameter must learn.
    missing.retain(|n| n != "qa_outputs.bias");
    assert_eq!(missing, Vec::<String>::new());
    let bias = &vars["qa_outputs.bias"];
    let noise = grads.get(bias.as_tensor()).map_or(0.0, |g| {
        g.abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    });
    assert!(
        noise < 1e-4,
        "qa_outputs.bias gradient {noise} should be ~0"
    );
}

#[test]
fn a_saved_model_reloads_to_the_same_answers_and_scores() {
    let ws = Workspace::new("");
    let report = qa::train_config(
        &ws.config(),
        &["train.epochs=4".into(), "train.eval_every=0".into()],
    )
    .unwrap();
    // `metrics.json` holds the dev scores of the in-training network (differentiable ops);
    // the reloaded model runs the fused inference kernels.
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report.model_dir.join("metrics.json")).unwrap(),
    )
    .unwrap();
    let a = QaModel::load(&report.model_dir).unwrap();
    let dev = read(&ws.root.join("dev.json")).unwrap();
    let reloaded = serde_json::to_value(a.evaluate(&dev.records).unwrap()).unwrap();
    assert_eq!(saved["dev"], reloaded);
    let b = QaModel::load(&report.model_dir).unwrap();
    let pairs: Vec<(&str, &str)> = PARAGRAPHS
        .iter()
        .flat_map(|(c, qas)| qas.iter().map(move |q| (q.0, *c)))
        .collect();
    let answers = a.predict(&pairs, 3).unwrap();
    assert_eq!(answers, b.predict(&pairs, 3).unwrap());
    for ((_, context), answers) in pairs.iter().zip(&answers) {
        assert!(!answers.is_empty() && answers.len() <= 3);
        let doc = Document::new(*context);
        for answer in answers {
            let span = answer.span.unwrap();
            assert_eq!(doc.span_text(span), Some(answer.text.as_str()));
            assert!(span.len() <= 6 * 5, "max_answer_len is 6 tokens");
        }
        assert!(answers.windows(2).all(|w| w[0].score >= w[1].score));
    }
}

#[test]
fn the_qa_stage_answers_each_documents_question_from_its_text() {
    let ws = Workspace::new("");
    let report = qa::train_config(&ws.config(), &[]).unwrap();
    let pipeline = Pipeline::builder()
        .qa(QaStageOptions {
            model: report.model_dir.clone(),
            top_k: 2,
            max_answer_len: None,
            min_score: 0.0,
        })
        .build()
        .unwrap();
    assert_eq!(pipeline.stage_names(), ["qa"]);
    let (context, qas) = PARAGRAPHS[1];
    let mut docs = vec![Document {
        question: Some(qas[1].0.to_string()),
        ..Document::new(context)
    }];
    pipeline.run(&mut docs).unwrap();
    let best = &docs[0].answers[0];
    assert_eq!(best.text, "东京");
    assert_eq!(best.span, Some(Span::new(19, 21)));
    assert!(docs[0].answers.len() <= 2);
    // Each answer's score is its probability among the candidates: at most 1 in all.
    let total: f32 = docs[0].answers.iter().map(|a| a.score).sum();
    assert!(total <= 1.0 + 1e-5 && best.score > 0.0, "{total}");

    // `min_score` at the best answer's score keeps it and drops every lower one.
    let threshold = best.score;
    let strict = Pipeline::builder()
        .qa(QaStageOptions {
            model: report.model_dir.clone(),
            top_k: 2,
            max_answer_len: None,
            min_score: threshold,
        })
        .build()
        .unwrap();
    let mut again = vec![Document {
        question: Some(qas[1].0.to_string()),
        ..Document::new(context)
    }];
    strict.run(&mut again).unwrap();
    let kept: Vec<&str> = again[0].answers.iter().map(|a| a.text.as_str()).collect();
    let want: Vec<&str> = docs[0]
        .answers
        .iter()
        .filter(|a| a.score >= threshold)
        .map(|a| a.text.as_str())
        .collect();
    assert_eq!(kept, want);
    assert_eq!(kept[0], "东京");

    let mut no_question = vec![Document::new(context)];
    let err = zhishi::error::report(&pipeline.run(&mut no_question).unwrap_err());
    assert!(err.contains("question"), "{err}");
}

fn zhishi() -> Command {
    Command::cargo_bin("zhishi").unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "one JSON line: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn train_and_eval_print_em_f1_precision_recall() {
    let ws = Workspace::new("");
    let config = ws.config();
    let out = zhishi()
        .args(["train", config.to_str().unwrap()])
        .output()
        .unwrap();
    let train = json(&out);
    assert_eq!(
        (train["task"].as_str(), train["split"].as_str()),
        (Some("qa"), Some("dev"))
    );
    assert_eq!(train["f1"], 1.0, "{train}");
    assert!(train["tokens_per_s"].as_f64().unwrap() > 0.0);
    let out = zhishi()
        .args(["eval", config.to_str().unwrap(), "--split", "test"])
        .output()
        .unwrap();
    let eval = json(&out);
    assert_eq!(eval["split"], "test");
    for key in ["em", "f1", "precision", "recall"] {
        assert_eq!(eval[key], 1.0, "{key}: {eval}");
    }
    assert_eq!(eval["questions"], 5);
}

#[test]
fn toml_errors_name_file_line_and_key() {
    let ws = Workspace::new("");
    let msg = qa::train_config(&ws.config(), &["data.max_len=8".into()])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("qa.toml") && msg.contains("data.max_len") && msg.contains("max_query_len"),
        "{msg}"
    );
    let msg = qa::train_config(&ws.config(), &["decode.nbest=3".into()])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("nbest"), "{msg}");
    let msg = qa::train_config(&ws.config(), &["data.dev=missing.json".into()])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("data.dev") && msg.contains("missing.json"),
        "{msg}"
    );
    let text = std::fs::read_to_string(ws.config())
        .unwrap()
        .replace("doc_stride = 6", "doc_stride = \"six\"");
    std::fs::write(ws.config(), text).unwrap();
    let msg = qa::train_config(&ws.config(), &[]).unwrap_err().to_string();
    assert!(
        msg.contains(":13") && msg.contains("data.doc_stride"),
        "{msg}"
    );
}

/// The pipeline shares one loaded model between worker threads.
#[test]
fn a_loaded_model_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<QaModel>();
}
