//! doccano's JSONL, one text per line, in and out.
//!
//! Read (an export): `{"text", "label": [[start, end, "TYPE"], ...]}` (sequence labeling),
//! `{"text", "entities": [{"id", "label", "start_offset", "end_offset"}], "relations":
//! [{"id", "from_id", "to_id", "type"}]}` (relation extraction; `entities` may also be
//! `[start, end, "TYPE"]` triples, as the intent-detection project writes them), and
//! `{"text", "label": ["A", ...]}` (text classification; `cats` is read too). Other keys are
//! ignored. Offsets count UTF-16 code units unless `[data] offsets = "chars"` (see the
//! module documentation of [`super`]).
//!
//! Written (pre-annotations, [`to_json`]): the same shapes, offsets in UTF-16 code units.
use std::path::Path;

use serde_json::{json, Map, Value};

use super::export::{Prediction, Shape};
use super::offsets::{OffsetUnit, Offsets};
use super::{
    id_of, label_of, push_span, Annotated, AnnotationError, Location, ReadOptions,
    RelationAnnotation, SpanAnnotation,
};
use crate::doc::Document;

/// The unit of a doccano file's offsets unless configured.
pub const DEFAULT_UNIT: OffsetUnit = OffsetUnit::Utf16;

const EXPECTED: &str = "expected a JSON object {\"text\", \"label\": [[start, end, TYPE], ...]} \
     (or \"entities\" and \"relations\", or \"label\": [LABEL, ...])";

/// Parses doccano JSONL (blank lines skipped).
pub fn parse(
    text: &str,
    path: &Path,
    options: ReadOptions,
) -> Result<Vec<Annotated>, AnnotationError> {
    let unit = options.offsets.unwrap_or(DEFAULT_UNIT);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = Location::Line(i + 1);
        let record = parse_line(line, unit)
            .map_err(|message| AnnotationError::record(path, &at, message))?;
        out.push(Annotated { at, ..record });
    }
    Ok(out)
}

fn parse_line(line: &str, unit: OffsetUnit) -> Result<Annotated, String> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON ({e}); {EXPECTED}"))?;
    let Value::Object(obj) = value else {
        return Err(format!("not a JSON object; {EXPECTED}"));
    };
    let text = match obj.get("text") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(format!("no string at \"text\"; {EXPECTED}")),
    };
    let offsets = Offsets::new(&text);
    let mut record = Annotated::new(text);
    let chars = offsets.chars();
    for key in ["label", "entities", "cats"] {
        let items = match obj.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => items.as_slice(),
            Some(v @ Value::String(_)) if key != "entities" => std::slice::from_ref(v),
            Some(other) => return Err(format!("\"{key}\" must be a list, found {other}")),
        };
        for (j, item) in items.iter().enumerate() {
            match item {
                Value::Array(_) if key != "cats" => {
                    let span = triple(item, &offsets, unit)
                        .map_err(|m| format!("\"{key}\"[{j}]: {m}"))?;
                    push_span(&mut record.spans, span, chars)
                        .map_err(|m| format!("\"{key}\"[{j}]: {m}"))?;
                }
                Value::Object(entity) if key == "entities" => {
                    let span = entity_object(entity, &offsets, unit)
                        .map_err(|m| format!("\"entities\"[{j}]: {m}"))?;
                    push_span(&mut record.spans, span, chars)
                        .map_err(|m| format!("\"entities\"[{j}]: {m}"))?;
                }
                other if key != "entities" => {
                    let label = label_of(other).ok_or_else(|| {
                        format!("\"{key}\"[{j}]: expected [start, end, TYPE] or a label string, found {other}")
                    })?;
                    if !record.labels.contains(&label) {
                        record.labels.push(label);
                    }
                }
                other => {
                    return Err(format!(
                        "\"entities\"[{j}]: expected {{\"id\", \"label\", \"start_offset\", \"end_offset\"}}, found {other}"
                    ))
                }
            }
        }
    }
    if let Some(relations) = obj.get("relations").filter(|v| !v.is_null()) {
        let Value::Array(items) = relations else {
            return Err(format!("\"relations\" must be a list, found {relations}"));
        };
        for (j, item) in items.iter().enumerate() {
            let relation = relation_object(item, &record.spans)
                .map_err(|m| format!("\"relations\"[{j}]: {m}"))?;
            record.relations.push(relation);
        }
    }
    Ok(record)
}

fn offset(value: &Value, what: &str) -> Result<usize, String> {
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("{what} must be a non-negative integer, found {value}"))
}

fn span(
    start: usize,
    end: usize,
    label: String,
    id: Option<String>,
    offsets: &Offsets,
    unit: OffsetUnit,
) -> Result<SpanAnnotation, String> {
    let convert = |o: usize| {
        offsets
            .to_char(o, unit)
            .map_err(|m| format!("span [{start}, {end}) {label}: {m}"))
    };
    Ok(SpanAnnotation {
        start: convert(start)?,
        end: convert(end)?,
        label,
        id,
    })
}

fn triple(item: &Value, offsets: &Offsets, unit: OffsetUnit) -> Result<SpanAnnotation, String> {
    let parts = item.as_array().map(Vec::as_slice).unwrap_or_default();
    let [start, end, label] = parts else {
        return Err(format!("expected [start, end, TYPE], found {item}"));
    };
    let label = label_of(label).ok_or_else(|| format!("expected a TYPE string, found {label}"))?;
    span(
        offset(start, "start")?,
        offset(end, "end")?,
        label,
        None,
        offsets,
        unit,
    )
}

fn entity_object(
    entity: &Map<String, Value>,
    offsets: &Offsets,
    unit: OffsetUnit,
) -> Result<SpanAnnotation, String> {
    let get = |key: &str| {
        entity.get(key).ok_or_else(|| {
            format!(
                "no \"{key}\"; expected {{\"id\", \"label\", \"start_offset\", \"end_offset\"}}"
            )
        })
    };
    let label = get("label")?;
    let label =
        label_of(label).ok_or_else(|| format!("\"label\" must be a string, found {label}"))?;
    let id = entity.get("id").and_then(id_of);
    span(
        offset(get("start_offset")?, "start_offset")?,
        offset(get("end_offset")?, "end_offset")?,
        label,
        id,
        offsets,
        unit,
    )
}

fn relation_object(item: &Value, spans: &[SpanAnnotation]) -> Result<RelationAnnotation, String> {
    let expected = "expected {\"from_id\", \"to_id\", \"type\"}";
    let Value::Object(obj) = item else {
        return Err(format!("{expected}, found {item}"));
    };
    let find = |key: &str| -> Result<usize, String> {
        let id = obj
            .get(key)
            .and_then(id_of)
            .ok_or_else(|| format!("no \"{key}\"; {expected}"))?;
        spans
            .iter()
            .position(|s| s.id.as_deref() == Some(id.as_str()))
            .ok_or_else(|| format!("\"{key}\" {id} is not the id of an entity of this line"))
    };
    let label = obj
        .get("type")
        .and_then(label_of)
        .ok_or_else(|| format!("no relation \"type\" string; {expected}"))?;
    Ok(RelationAnnotation {
        from: find("from_id")?,
        to: find("to_id")?,
        label,
    })
}

/// A document's predictions as one doccano JSONL record of the pipeline's `shape`: relations
/// in the `entities`/`relations` form, else entities as `label` triples (with `cats` for
/// labels next to them), else labels as `label`.
pub fn to_json(doc: &Document, shape: &Shape) -> Value {
    let p = Prediction::of(doc);
    let offsets = Offsets::new(&doc.text);
    let at = |c: usize| offsets.from_char(c, DEFAULT_UNIT);
    let labels: Vec<&str> = p.labels.iter().map(|l| l.0.as_str()).collect();
    let mut out = Map::new();
    out.insert("text".into(), json!(doc.text));
    if shape.relations {
        let entities: Vec<Value> = p
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({"id": i, "label": s.label, "start_offset": at(s.start), "end_offset": at(s.end)})
            })
            .collect();
        let relations: Vec<Value> = p
            .relations
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"id": i, "from_id": r.from, "to_id": r.to, "type": r.label}))
            .collect();
        out.insert("entities".into(), json!(entities));
        out.insert("relations".into(), json!(relations));
        if shape.labels {
            out.insert("label".into(), json!(labels));
        }
    } else if shape.entities {
        let spans: Vec<Value> = p
            .spans
            .iter()
            .map(|s| json!([at(s.start), at(s.end), s.label]))
            .collect();
        out.insert("label".into(), json!(spans));
        if shape.labels {
            out.insert("cats".into(), json!(labels));
        }
    } else {
        out.insert("label".into(), json!(labels));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(line: &str, unit: Option<OffsetUnit>) -> Result<Annotated, String> {
        let options = ReadOptions {
            offsets: unit,
            use_predictions: false,
        };
        parse(line, Path::new("a.jsonl"), options)
            .map(|mut v| v.remove(0))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_sequence_labels_in_utf16_units_by_default() {
        // 🙂 and 𠀀 take two UTF-16 code units each: 北京 is [3, 5) in characters.
        let a = parse_one(r#"{"text": "🙂𠀀在北京", "label": [[5, 7, "LOC"]]}"#, None).unwrap();
        assert_eq!((a.spans[0].start, a.spans[0].end), (3, 5));
        let a = parse_one(
            r#"{"text": "🙂𠀀在北京", "label": [[3, 5, "LOC"]]}"#,
            Some(OffsetUnit::Chars),
        )
        .unwrap();
        assert_eq!((a.spans[0].start, a.spans[0].end), (3, 5));
        let err = parse_one(r#"{"text": "🙂在", "label": [[1, 3, "X"]]}"#, None).unwrap_err();
        assert!(
            err.starts_with("a.jsonl:1: \"label\"[0]: span [1, 3) X: UTF-16 offset 1 falls inside"),
            "{err}"
        );
    }

    #[test]
    fn reads_relations_and_classification_labels() {
        let line = r#"{"id": 7, "text": "姚明出生于上海", "entities": [{"id": 1, "label": "PER", "start_offset": 0, "end_offset": 2}, {"id": 2, "label": "LOC", "start_offset": 5, "end_offset": 7}], "relations": [{"id": 3, "from_id": 1, "to_id": 2, "type": "出生地"}]}"#;
        let a = parse_one(line, None).unwrap();
        assert_eq!(
            a.relations,
            [RelationAnnotation {
                from: 0,
                to: 1,
                label: "出生地".into()
            }]
        );
        let a = parse_one(r#"{"text": "好", "label": ["pos", "neg"]}"#, None).unwrap();
        assert_eq!(a.labels, ["pos", "neg"]);
        let bad = r#"{"text": "姚明", "entities": [], "relations": [{"from_id": 1, "to_id": 2, "type": "x"}]}"#;
        let err = parse_one(bad, None).unwrap_err();
        assert_eq!(
            err,
            "a.jsonl:1: \"relations\"[0]: \"from_id\" 1 is not the id of an entity of this line"
        );
        let err = parse_one(r#"{"text": "姚明", "label": [[0, 3, "PER"]]}"#, None).unwrap_err();
        assert!(
            err.contains("past the end of the text (2 UTF-16 code units)"),
            "{err}"
        );
        let err = parse_one(r#"{"txt": "姚明"}"#, None).unwrap_err();
        assert!(
            err.starts_with("a.jsonl:1: no string at \"text\"; expected a JSON object"),
            "{err}"
        );
    }
}
