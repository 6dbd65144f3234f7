//! NER training end to end on a tiny random encoder built in the test: the loss falls, the
//! model learns a toy corpus, training is deterministic and resumable, every parameter gets
//! a gradient, the saved model reloads to the same predictions, and bad TOML is reported
//! with its file, line and key.
use std::path::Path;

use candle_core::Device;
use zhishi::stages::ner::data::{read, DataFormat};
use zhishi::stages::ner::{self, NerModel};

use crate::support::ner_workspace;
use ner_workspace::Workspace;

#[test]
fn training_reduces_the_loss_and_learns_the_toy_corpus() {
    let ws = Workspace::new("");
    let report = ner::train_config(&ws.config(), &[]).unwrap();
    let history = &report.train.history;
    let (first, last) = (history[0].loss, history[history.len() - 1].loss);
    assert!(last < 0.2 * first, "loss {first} -> {last}");
    assert_eq!(report.dev["f1"], 1.0, "{}", report.dev);

    let model = NerModel::load(&report.model_dir).unwrap();
    let entities = model.predict(&["李四住在杭州"]).unwrap();
    let found: Vec<(usize, usize, &str, &str)> = entities[0]
        .iter()
        .map(|e| (e.start, e.end, e.text.as_str(), e.label.as_str()))
        .collect();
    assert_eq!(found, [(0, 2, "李四", "PER"), (4, 6, "杭州", "LOC")]);
}

#[test]
fn a_saved_model_reloads_to_the_predictions_made_during_training() {
    let ws = Workspace::new("");
    let report = ner::train_config(
        &ws.config(),
        &["train.epochs=3".into(), "train.eval_every=0".into()],
    )
    .unwrap();
    // `metrics.json` holds the dev scores of the in-training network (differentiable ops);
    // the reloaded model runs the fused inference kernels.
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report.model_dir.join("metrics.json")).unwrap(),
    )
    .unwrap();
    let a = NerModel::load(&report.model_dir).unwrap();
    let dev = read(&ws.root.join("dev.bmes"), DataFormat::CharPerLine).unwrap();
    let docs: Vec<zhishi::doc::Document> = dev
        .iter()
        .map(|s| zhishi::doc::Document::new(s.chars.concat()))
        .collect();
    let reloaded = ner_workspace::without_calibration(
        serde_json::to_value(a.evaluate(&dev, &docs).unwrap()).unwrap(),
    );
    assert_eq!(saved["dev"], reloaded);
    let b = NerModel::load(&report.model_dir).unwrap();
    let texts = ["张三住在北京", "王五去了上海和杭州工作。"];
    assert_eq!(a.predict(&texts).unwrap(), b.predict(&texts).unwrap());
}

/// A trained model's parameters by name, sorted (to compare two runs bit for bit).
pub(crate) fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let t = candle_core::safetensors::load(dir.join("params.safetensors"), &Device::Cpu).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = t
        .into_iter()
        .map(|(k, v)| (k, v.flatten_all().unwrap().to_vec1().unwrap()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn runs_are_deterministic_and_resume_exactly() {
    let steps = [
        "train.epochs=4".to_string(),
        "encoder.dropout=0.1".to_string(),
    ];
    let full = Workspace::new("");
    ner::train_config(&full.config(), &steps).unwrap();
    let again = Workspace::new("");
    ner::train_config(&again.config(), &steps).unwrap();
    let last = |ws: &Workspace| weights(&ws.root.join("out/last"));
    assert!(
        last(&full) == last(&again),
        "same seed, same threads, same weights"
    );

    let resumed = Workspace::new("");
    let mut first = steps.to_vec();
    first.push("train.max_steps=3".into());
    ner::train_config(&resumed.config(), &first).unwrap();
    assert!(last(&resumed) != last(&full));
    let mut rest = steps.to_vec();
    rest.push("train.resume=true".into());
    ner::train_config(&resumed.config(), &rest).unwrap();
    assert!(
        last(&resumed) == last(&full),
        "stopped at step 3 and resumed"
    );
}

#[test]
fn a_frozen_encoder_only_trains_the_head() {
    let ws = Workspace::new("");
    ner::train_config(
        &ws.config(),
        &["encoder.freeze=true".into(), "train.epochs=2".into()],
    )
    .unwrap();
    let names: Vec<String> = weights(&ws.root.join("out/last"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "classifier.bias",
            "classifier.weight",
            "crf.end",
            "crf.start",
            "crf.transitions"
        ]
    );
}

#[test]
fn toml_errors_name_file_line_and_key() {
    let ws = Workspace::new("");
    let err = ner::train_config(&ws.config(), &["train.epoch=3".into()]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("ner.toml") && msg.contains("epoch"), "{msg}");

    let err = ner::train_config(&ws.config(), &["data.train=missing.bmes".into()]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("data.train") && msg.contains("missing.bmes"),
        "{msg}"
    );

    let err = ner::train_config(&ws.config(), &["knowledge.mode=kbert".into()]).unwrap_err();
    assert!(err.to_string().contains("knowledge.kg"), "{err}");

    let bad = Workspace::new("");
    let text = std::fs::read_to_string(bad.config())
        .unwrap()
        .replace("max_len = 32", "max_len = \"long\"");
    std::fs::write(bad.config(), text).unwrap();
    let msg = ner::train_config(&bad.config(), &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains(":13") && msg.contains("data.max_len"), "{msg}");
}

/// MSRA has no dev file: `data.dev_holdout = N` takes the last N training sentences as dev
/// and leaves them out of training; exactly one of `dev` and `dev_holdout` must be set.
#[test]
fn a_dev_set_can_be_held_out_of_the_training_file() {
    let ws = Workspace::new("");
    let config = ws.config();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("dev = \"dev.bmes\"", "dev_holdout = 2"),
    )
    .unwrap();
    ner::train_config(&config, &["train.epochs=2".into()]).unwrap();
    // The last two toy sentences hold 2 + 3 entities, the first four 2 + 2 + 2 + 3.
    let dev = ner::evaluate_config(&config, &[], zhishi::stages::task::Split::Dev).unwrap();
    assert_eq!(dev.micro.gold, 5);
    let train = ner::evaluate_config(&config, &[], zhishi::stages::task::Split::Train).unwrap();
    assert_eq!(train.micro.gold, 9);

    let too_many = ner::train_config(&config, &["data.dev_holdout=6".into()]).unwrap_err();
    assert!(too_many.to_string().contains("only 6"), "{too_many}");
    let both = ner::train_config(&config, &["data.dev=\"train.bmes\"".into()]).unwrap_err();
    assert!(both.to_string().contains("not both"), "{both}");
    let neither = ner::train_config(&config, &["data.dev_holdout=0".into()]).unwrap_err();
    assert!(neither.to_string().contains("data.dev"), "{neither}");
}

/// The pipeline shares one loaded model between worker threads.
#[test]
fn a_loaded_model_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<NerModel>();
}
