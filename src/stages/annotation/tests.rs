//! Round trips (predictions out, annotations back in) and Label Studio's reader.
use std::path::Path;

use super::export::{closing, line, OutputFormat, Shape};
use super::offsets::OffsetUnit;
use super::{label_studio, ReadOptions};
use crate::doc::{Argument, Document, Entity, Label, Relation};

fn entity(text: &str, start: usize, end: usize, label: &str) -> Entity {
    Entity {
        start,
        end,
        text: text.chars().skip(start).take(end - start).collect(),
        label: label.into(),
        score: Some(0.9),
        source: None,
        evidence: None,
    }
}

fn argument(e: &Entity) -> Argument {
    Argument {
        start: e.start,
        end: e.end,
        text: e.text.clone(),
        entity: None,
    }
}

/// A document with astral characters before its entities, a relation and a label.
fn document() -> Document {
    let text = "🙂𠀀姚明出生于上海。";
    let (per, loc) = (entity(text, 2, 4, "PER"), entity(text, 7, 9, "LOC"));
    Document {
        relations: vec![Relation {
            head: argument(&per),
            tail: argument(&loc),
            label: "出生地".into(),
            score: 0.8,
            source: None,
            evidence: None,
        }],
        labels: vec![Label {
            label: "人物".into(),
            score: 0.7,
            source: None,
            evidence: None,
        }],
        entities: vec![per, loc],
        ..Document::new(text)
    }
}

fn shape() -> Shape {
    Shape {
        entities: true,
        relations: true,
        labels: true,
        model_version: "test".into(),
    }
}

/// The lines a run writes for `docs` in `format`.
fn run_output(docs: &[Document], format: OutputFormat, shape: &Shape) -> String {
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        out.extend(line(doc, format, shape, i == 0));
        out.push(b'\n');
    }
    if let Some(c) = closing(format, docs.len() as u64) {
        out.extend(c);
        out.push(b'\n');
    }
    String::from_utf8(out).unwrap()
}

fn spans(a: &super::Annotated) -> Vec<(usize, usize, String)> {
    a.spans
        .iter()
        .map(|s| (s.start, s.end, s.label.clone()))
        .collect()
}

#[test]
fn label_studio_round_trip_gives_the_same_spans_relations_and_labels() {
    let docs = vec![document(), Document::new("没有实体")];
    let text = run_output(&docs, OutputFormat::LabelStudio, &shape());
    let tasks: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(tasks.as_array().unwrap().len(), 2);
    assert_eq!(tasks[0]["predictions"][0]["result"][0]["value"]["start"], 2);
    assert_eq!(
        tasks[0]["predictions"][0]["score"],
        serde_json::json!(0.7f32)
    );
    let path = Path::new("t.json");
    let err = label_studio::parse(&text, path, ReadOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("set data.use_predictions = true"),
        "{err}"
    );
    let read = label_studio::parse(
        &text,
        path,
        ReadOptions {
            use_predictions: true,
            ..ReadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(
        spans(&read[0]),
        [(2, 4, "PER".to_string()), (7, 9, "LOC".to_string())]
    );
    assert_eq!((read[0].relations[0].from, read[0].relations[0].to), (0, 1));
    assert_eq!(read[0].relations[0].label, "出生地");
    assert_eq!(read[0].labels, ["人物"]);
    assert!(read[1].spans.is_empty());
}

#[test]
fn doccano_round_trip_counts_utf16_units_and_gives_the_same_spans() {
    let ner = Shape {
        entities: true,
        ..Shape::default()
    };
    let text = run_output(&[document()], OutputFormat::Doccano, &ner);
    let value: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    // 🙂 and 𠀀 are two UTF-16 code units each: 姚明 starts at unit 4.
    assert_eq!(value["label"][0], serde_json::json!([4, 6, "PER"]));
    let read = super::doccano::parse(&text, Path::new("d.jsonl"), ReadOptions::default()).unwrap();
    assert_eq!(
        spans(&read[0]),
        [(2, 4, "PER".to_string()), (7, 9, "LOC".to_string())]
    );
    let rel = run_output(&[document()], OutputFormat::Doccano, &shape());
    let read = super::doccano::parse(&rel, Path::new("d.jsonl"), ReadOptions::default()).unwrap();
    assert_eq!(read[0].relations.len(), 1);
    assert_eq!(spans(&read[0])[1], (7, 9, "LOC".to_string()));
    assert_eq!(read[0].labels, ["人物"]);
}

fn task(result: &str) -> String {
    format!(
        r#"[{{"id": 5, "data": {{"text": "🙂 姚明在上海"}}, "annotations": [{{"was_cancelled": true, "result": []}}, {{"result": {result}}}]}}]"#
    )
}

fn parse_ls(text: &str) -> Result<Vec<super::Annotated>, String> {
    label_studio::parse(text, Path::new("ls.json"), ReadOptions::default())
        .map_err(|e| e.to_string())
}

#[test]
fn label_studio_reads_code_points_and_falls_back_to_utf16_when_the_text_says_so() {
    let span = |s: usize, e: usize, t: &str| {
        format!(
            r#"{{"id": "a", "type": "labels", "value": {{"start": {s}, "end": {e}, "text": "{t}", "labels": ["PER"]}}}}"#
        )
    };
    let read = parse_ls(&task(&format!("[{}]", span(2, 4, "姚明")))).unwrap();
    assert_eq!(spans(&read[0]), [(2, 4, "PER".to_string())]);
    // An older Label Studio counted UTF-16 code units: 🙂 is two.
    let read = parse_ls(&task(&format!("[{}]", span(3, 5, "姚明")))).unwrap();
    assert_eq!(spans(&read[0]), [(2, 4, "PER".to_string())]);
    let err = parse_ls(&task(&format!("[{}]", span(2, 4, "上海")))).unwrap_err();
    assert!(
        err.starts_with("ls.json: task at index 0 (id 5): annotations[0].result[0]: value.text \"上海\" is not the text at [2, 4) (\"姚明\" counting chars, nor in utf16)"),
        "{err}"
    );
    let forced = label_studio::parse(
        &task(&format!("[{}]", span(3, 5, "姚明"))),
        Path::new("ls.json"),
        ReadOptions {
            offsets: Some(OffsetUnit::Utf16),
            use_predictions: false,
        },
    )
    .unwrap();
    assert_eq!(spans(&forced[0]), [(2, 4, "PER".to_string())]);
}

#[test]
fn label_studio_relations_choices_and_bad_tasks() {
    let result = r#"[{"id": "h", "type": "labels", "value": {"start": 2, "end": 4, "labels": ["PER"]}},
        {"id": "t", "type": "labels", "value": {"start": 5, "end": 7, "labels": ["LOC"]}},
        {"type": "relation", "from_id": "t", "to_id": "h", "direction": "left", "labels": ["位于"]},
        {"type": "choices", "value": {"choices": ["人物"]}}]"#;
    let read = parse_ls(&task(result)).unwrap();
    assert_eq!((read[0].relations[0].from, read[0].relations[0].to), (0, 1));
    assert_eq!(read[0].labels, ["人物"]);
    let unlabelled = r#"[{"id": "h", "type": "labels", "value": {"start": 2, "end": 4, "labels": ["PER"]}},
        {"type": "relation", "from_id": "h", "to_id": "x", "labels": ["位于"]}]"#;
    let err = parse_ls(&task(unlabelled)).unwrap_err();
    assert!(
        err.ends_with("result[1]: \"to_id\" \"x\" is not the id of a span of this task"),
        "{err}"
    );
    let err = parse_ls(r#"[{"data": {"txt": "a"}}]"#).unwrap_err();
    assert!(
        err.starts_with("ls.json: task at index 0: no string at data.text"),
        "{err}"
    );
    let err = parse_ls("[{\"data\": ").unwrap_err();
    assert!(err.starts_with("ls.json:1: not JSON"), "{err}");
    let err = parse_ls(&task(
        r#"[{"id": "h", "type": "labels", "value": {"start": 2, "end": 40, "labels": ["PER"]}}]"#,
    ))
    .unwrap_err();
    assert!(
        err.contains("past the end of the text (7 characters)"),
        "{err}"
    );
}

#[test]
fn overlapping_spans_are_named() {
    let result = r#"[{"id": "a", "type": "labels", "value": {"start": 2, "end": 4, "labels": ["PER"]}},
        {"id": "b", "type": "labels", "value": {"start": 3, "end": 7, "labels": ["LOC"]}}]"#;
    let read = parse_ls(&task(result)).unwrap();
    let err = read[0].sorted_disjoint_spans().unwrap_err();
    assert_eq!(
        err,
        "spans [2, 4) PER \"姚明\" and [3, 7) LOC \"明在上海\" overlap; expected non-overlapping entity spans (one tag per character)"
    );
}
