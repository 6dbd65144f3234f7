//! NER from annotation tools: a corpus converted to doccano or Label Studio trains the same
//! model as the original file, and K-BERT's medical corpus survives the conversion span for
//! span.
use std::path::Path;

use zhishi::stages::annotation::{doccano, label_studio, Shape};
use zhishi::stages::ner;
use zhishi::stages::ner::data::{read, read_with, to_documents, DataFormat, SpanReading};
use zhishi::stages::ner::tags::{spans, Tag, TagScheme};
use zhishi::stages::task::Split;

use crate::support::ner_workspace::Workspace;
use crate::support::shared_data::shared_data;
use crate::train::weights;

/// Writes the NER file `from` (in `format`) as `to` in doccano's or Label Studio's format, as
/// `zhishi convert` does.
fn convert(from: &Path, format: DataFormat, to: &Path, tool: DataFormat) {
    let docs = to_documents(&read(from, format).unwrap());
    let shape = Shape {
        entities: true,
        ..Shape::default()
    };
    let lines: Vec<String> = docs
        .iter()
        .map(|d| match tool {
            DataFormat::Doccano => doccano::to_json(d, &shape).to_string(),
            _ => label_studio::task_json(d, &shape, true).to_string(),
        })
        .collect();
    let text = match tool {
        DataFormat::Doccano => lines.join("\n"),
        _ => format!("[{}]", lines.join(",\n")),
    };
    std::fs::write(to, text).unwrap();
}

#[test]
fn a_corpus_converted_to_doccano_or_label_studio_trains_the_same_model() {
    let steps = ["train.epochs=3".to_string(), "train.eval_every=0".into()];
    let original = Workspace::new("");
    let report = ner::train_config(&original.config(), &steps).unwrap();
    let test_f1 = |ws: &Workspace, set: &[String]| {
        ner::evaluate_config(ws.config().as_path(), set, Split::Test)
            .unwrap()
            .micro
            .f1
    };
    let original_f1 = test_f1(&original, &steps);
    for (tool, name, ext) in [
        (DataFormat::Doccano, "doccano", "jsonl"),
        (DataFormat::LabelStudio, "label_studio", "json"),
    ] {
        let ws = Workspace::new("");
        for split in ["train", "dev"] {
            let to = ws.root.join(format!("{split}.{ext}"));
            convert(
                &ws.root.join(format!("{split}.bmes")),
                DataFormat::CharPerLine,
                &to,
                tool,
            );
        }
        let mut set = steps.to_vec();
        set.extend([
            format!("data.format=\"{name}\""),
            "data.scheme=\"bmes\"".into(),
            format!("data.train=\"train.{ext}\""),
            format!("data.dev=\"dev.{ext}\""),
            format!("data.test=\"dev.{ext}\""),
        ]);
        let converted = ner::train_config(&ws.config(), &set).unwrap();
        assert_eq!(converted.dev, report.dev, "{name}");
        assert!(
            weights(&ws.root.join("out/last")) == weights(&original.root.join("out/last")),
            "{name}: same data, same seed, same weights"
        );
        assert_eq!(test_f1(&ws, &set), original_f1, "{name}");
    }
}

#[test]
fn kbert_medical_converted_to_doccano_keeps_every_span() {
    let Some(tsv) = shared_data("ner/kbert_medical/train.tsv") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("train.jsonl");
    convert(&tsv, DataFormat::KbertTsv, &jsonl, DataFormat::Doccano);
    let original = read(&tsv, DataFormat::KbertTsv).unwrap();
    let back = read_with(&jsonl, DataFormat::Doccano, &SpanReading::default()).unwrap();
    assert_eq!(original.len(), back.len());
    let gold = |tags: &[String]| {
        let tags: Vec<Tag> = tags.iter().map(|t| Tag::parse(t).unwrap()).collect();
        spans(TagScheme::Bio, &tags)
    };
    let mut changed = 0;
    for (a, b) in original.iter().zip(&back) {
        assert_eq!(a.chars, b.chars);
        assert_eq!(gold(&a.tags), gold(&b.tags), "line {}", a.line);
        for (x, y) in a.tags.iter().zip(&b.tags) {
            if x != y {
                // Only a span-opening `I-X` (conlleval reads it as `B-X`) is written anew.
                assert_eq!((&x[..2], &y[..2], &x[2..]), ("I-", "B-", &y[2..]));
                changed += 1;
            }
        }
    }
    assert_eq!(changed, 15, "the training file's span-opening I- tags");
}
