//! Label Studio's JSON, in and out.
//!
//! Read (the JSON export, an array of tasks; a single task object is read too): a task's
//! text is `data.text`; its first annotation that is not cancelled gives the results (with
//! `[data] use_predictions = true`, a task without one is read from its first prediction;
//! otherwise it is skipped). Results: spans `{"id", "type": "labels", "value": {"start",
//! "end", "text", "labels"}}` (one span per label), relations `{"type": "relation",
//! "from_id", "to_id", "labels", "direction"}` (`left` swaps head and tail, `bi` is both
//! ways; a relation needs a label), and classification `{"type": "choices", "value":
//! {"choices"}}`. Other result types are ignored. Offsets count characters unless
//! `[data] offsets = "utf16"`, and a span whose `value.text` matches the text only in the
//! other unit is read in that unit (exports of Label Studio versions before its fix counted
//! UTF-16 code units).
//!
//! Written (pre-annotations, [`to_json`]): `{"data": {"text"}, "predictions": [{"model_version",
//! "score", "result"}]}`, spans from `label`, choices from `choice`, both to `text`, each
//! result with its `score`, offsets in characters.
use crate::error::json_kind;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::export::{Prediction, Shape};
use super::offsets::{OffsetUnit, Offsets};
use super::{
    id_of, label_of, push_span, Annotated, AnnotationError, Location, ReadOptions,
    RelationAnnotation, SpanAnnotation,
};
use crate::doc::Document;

/// The unit of a Label Studio file's offsets unless configured.
pub const DEFAULT_UNIT: OffsetUnit = OffsetUnit::Chars;

/// The `from_name` of written spans (a `<Labels name="label" toName="text">` tag).
pub const SPAN_FROM_NAME: &str = "label";
/// The `from_name` of written labels (a `<Choices name="choice" toName="text">` tag).
pub const CHOICE_FROM_NAME: &str = "choice";
/// The `to_name` of written results (a `<Text name="text" value="$text">` tag).
pub const TO_NAME: &str = "text";

/// Parses a Label Studio JSON export.
pub fn parse(
    text: &str,
    path: &Path,
    options: ReadOptions,
) -> Result<Vec<Annotated>, AnnotationError> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        AnnotationError::record(
            path,
            &Location::Line(e.line()),
            format!("not JSON ({e}); expected Label Studio's JSON export, an array of tasks"),
        )
    })?;
    let tasks = match root {
        Value::Array(tasks) => tasks,
        task @ Value::Object(_) => vec![task],
        other => {
            return Err(AnnotationError::record(
                path,
                &Location::Line(1),
                format!("expected an array of tasks, found {}", json_kind(&other)),
            ))
        }
    };
    let unit = options.offsets.unwrap_or(DEFAULT_UNIT);
    let mut out = Vec::new();
    let mut only_predictions = 0usize;
    for (index, task) in tasks.iter().enumerate() {
        let at = Location::Task {
            index,
            id: task.get("id").and_then(id_of),
        };
        let parsed = parse_task(task, unit, options.use_predictions)
            .map_err(|message| AnnotationError::record(path, &at, message))?;
        match parsed {
            Parsed::Record(record) => out.push(Annotated { at, ..record }),
            Parsed::OnlyPredictions => only_predictions += 1,
            Parsed::Unlabelled => {}
        }
    }
    if out.is_empty() && only_predictions > 0 {
        return Err(AnnotationError::record(
            path,
            &Location::Line(1),
            format!(
                "no task has an annotation ({only_predictions} have only predictions); set \
                 data.use_predictions = true to read the predictions as annotations"
            ),
        ));
    }
    if only_predictions > 0 {
        tracing::info!(
            "{}: {only_predictions} tasks without an annotation skipped (data.use_predictions = false)",
            path.display()
        );
    }
    Ok(out)
}

enum Parsed {
    Record(Annotated),
    OnlyPredictions,
    Unlabelled,
}

fn parse_task(task: &Value, unit: OffsetUnit, use_predictions: bool) -> Result<Parsed, String> {
    let Value::Object(task) = task else {
        return Err(format!("expected a task object, found {}", json_kind(task)));
    };
    let text = match task.get("data").and_then(|d| d.get("text")) {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(
            "no string at data.text; expected {\"data\": {\"text\": ...}, \"annotations\": [...]} \
                 (a labeling config whose <Text> tag reads $text)"
                .into(),
        ),
    };
    let list = |key: &str| -> Result<&[Value], String> {
        match task.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(format!(
                "\"{key}\" must be a list, found {}",
                json_kind(other)
            )),
        }
    };
    let annotations = list("annotations")?;
    let predictions = list("predictions")?;
    let annotation = annotations
        .iter()
        .find(|a| a.get("was_cancelled").and_then(Value::as_bool) != Some(true));
    let (source, results) = match (annotation, predictions.first()) {
        (Some(a), _) => ("annotations", a),
        (None, Some(p)) if use_predictions => ("predictions", p),
        (None, Some(_)) => return Ok(Parsed::OnlyPredictions),
        (None, None) => return Ok(Parsed::Unlabelled),
    };
    let results = match results.get("result") {
        Some(Value::Array(r)) => r.as_slice(),
        _ => return Err(format!("{source}[0] has no \"result\" list")),
    };
    let offsets = Offsets::new(&text);
    let mut record = Annotated::new(text);
    let typed = |r: &Value| {
        r.get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for (j, r) in results.iter().enumerate() {
        let here = |m: String| format!("{source}[0].result[{j}]: {m}");
        match typed(r).as_str() {
            "labels" => {
                for span in span_results(r, &record.text, &offsets, unit).map_err(here)? {
                    push_span(&mut record.spans, span, offsets.chars()).map_err(here)?;
                }
            }
            "choices" => {
                let choices = r
                    .get("value")
                    .and_then(|v| v.get("choices"))
                    .and_then(Value::as_array)
                    .ok_or_else(|| here("expected value.choices, a list of labels".into()))?;
                for c in choices {
                    let label = label_of(c)
                        .ok_or_else(|| here(format!("expected a choice string, found {c}")))?;
                    if !record.labels.contains(&label) {
                        record.labels.push(label);
                    }
                }
            }
            _ => {}
        }
    }
    for (j, r) in results.iter().enumerate() {
        if typed(r) == "relation" {
            let relations = relation_results(r, &record.spans)
                .map_err(|m| format!("{source}[0].result[{j}]: {m}"))?;
            record.relations.extend(relations);
        }
    }
    Ok(Parsed::Record(record))
}

/// Whether `value.text` (whitespace ignored: Label Studio may collapse it) is the text of
/// `[start, end)` counted in `unit`.
fn matches(
    text: &str,
    offsets: &Offsets,
    start: usize,
    end: usize,
    unit: OffsetUnit,
    given: &str,
) -> bool {
    let (Ok(s), Ok(e)) = (offsets.to_char(start, unit), offsets.to_char(end, unit)) else {
        return false;
    };
    let slice: String = text.chars().skip(s).take(e.saturating_sub(s)).collect();
    let squeeze = |t: &str| t.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    squeeze(&slice) == squeeze(given)
}

fn span_results(
    r: &Value,
    text: &str,
    offsets: &Offsets,
    unit: OffsetUnit,
) -> Result<Vec<SpanAnnotation>, String> {
    let value = r
        .get("value")
        .and_then(Value::as_object)
        .ok_or("expected a \"value\" object {\"start\", \"end\", \"text\", \"labels\"}")?;
    let offset = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                format!(
                    "value.{key} must be a character offset (a non-negative integer; a <Text> tag, not <HyperText>), found {}",
                    value.get(key).map_or("nothing".to_string(), Value::to_string)
                )
            })
    };
    let (start, end) = (offset("start")?, offset("end")?);
    let unit = match value.get("text").and_then(Value::as_str) {
        Some(given) if !matches(text, offsets, start, end, unit, given) => {
            if matches(text, offsets, start, end, unit.other(), given) {
                unit.other()
            } else {
                let chars: String = match (offsets.to_char(start, unit), offsets.to_char(end, unit))
                {
                    (Ok(s), Ok(e)) => text.chars().skip(s).take(e.saturating_sub(s)).collect(),
                    _ => String::new(),
                };
                return Err(format!(
                    "value.text {given:?} is not the text at [{start}, {end}) ({chars:?} counting {}, nor in {})",
                    unit.name(),
                    unit.other().name()
                ));
            }
        }
        _ => unit,
    };
    let convert = |o: usize| {
        offsets
            .to_char(o, unit)
            .map_err(|m| format!("span [{start}, {end}): {m}"))
    };
    let (start, end) = (convert(start)?, convert(end)?);
    let labels = value
        .get("labels")
        .and_then(Value::as_array)
        .ok_or("expected value.labels, a list of entity types")?;
    if labels.is_empty() {
        return Err(format!(
            "span [{start}, {end}) has no label in value.labels"
        ));
    }
    labels
        .iter()
        .map(|l| {
            Ok(SpanAnnotation {
                id: r.get("id").and_then(id_of),
                start,
                end,
                label: label_of(l).ok_or_else(|| format!("expected a label string, found {l}"))?,
            })
        })
        .collect()
}

fn relation_results(
    r: &Value,
    spans: &[SpanAnnotation],
) -> Result<Vec<RelationAnnotation>, String> {
    let find = |key: &str| -> Result<usize, String> {
        let id = r
            .get(key)
            .and_then(id_of)
            .ok_or_else(|| format!("a relation needs \"{key}\", the id of a span result"))?;
        spans
            .iter()
            .position(|s| s.id.as_deref() == Some(id.as_str()))
            .ok_or_else(|| format!("\"{key}\" {id:?} is not the id of a span of this task"))
    };
    let (from, to) = (find("from_id")?, find("to_id")?);
    let labels: Vec<String> = r
        .get("labels")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(label_of).collect())
        .unwrap_or_default();
    if labels.is_empty() {
        return Err(format!(
            "the relation {} -> {} has no label; expected \"labels\": [TYPE] (a <Relations> tag with <Relation value=...>)",
            spans[from].label, spans[to].label
        ));
    }
    let pairs: Vec<(usize, usize)> = match r.get("direction").and_then(Value::as_str) {
        None | Some("right") => vec![(from, to)],
        Some("left") => vec![(to, from)],
        Some("bi") => vec![(from, to), (to, from)],
        Some(other) => {
            return Err(format!(
                "direction {other:?}; expected \"right\", \"left\" or \"bi\""
            ))
        }
    };
    Ok(pairs
        .into_iter()
        .flat_map(|(from, to)| {
            labels.iter().map(move |label| RelationAnnotation {
                from,
                to,
                label: label.clone(),
            })
        })
        .collect())
}

/// A document's predictions as one Label Studio task with one prediction.
pub fn to_json(doc: &Document, shape: &Shape) -> Value {
    task_json(doc, shape, false)
}

/// A document's entities, relations and labels as one Label Studio task: as its one
/// annotation (`as_annotation`, for converted gold data) or its one prediction.
pub fn task_json(doc: &Document, shape: &Shape, as_annotation: bool) -> Value {
    let p = Prediction::of(doc);
    let mut result = Vec::new();
    for (i, s) in p.spans.iter().enumerate() {
        let mut r = json!({
            "id": format!("s{i}"),
            "from_name": SPAN_FROM_NAME,
            "to_name": TO_NAME,
            "type": "labels",
            "value": {"start": s.start, "end": s.end, "text": s.text, "labels": [s.label]},
        });
        if let Some(score) = s.score {
            r["score"] = json!(score);
        }
        result.push(r);
    }
    for r in &p.relations {
        result.push(json!({
            "from_id": format!("s{}", r.from),
            "to_id": format!("s{}", r.to),
            "type": "relation",
            "direction": "right",
            "labels": [r.label],
            "score": r.score,
        }));
    }
    if shape.labels && !p.labels.is_empty() {
        let choices: Vec<&str> = p.labels.iter().map(|l| l.0.as_str()).collect();
        result.push(json!({
            "id": "c0",
            "from_name": CHOICE_FROM_NAME,
            "to_name": TO_NAME,
            "type": "choices",
            "value": {"choices": choices},
            "score": p.labels[0].1,
        }));
    }
    if as_annotation {
        return json!({"data": {"text": doc.text}, "annotations": [{"result": result}]});
    }
    let mut prediction = Map::new();
    prediction.insert("model_version".into(), json!(shape.model_version));
    if let Some(score) = p.min_score() {
        prediction.insert("score".into(), json!(score));
    }
    prediction.insert("result".into(), Value::Array(result));
    json!({"data": {"text": doc.text}, "predictions": [prediction]})
}
