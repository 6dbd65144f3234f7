//! Readers for classification data. Every example is a text (or a pair of texts) and its
//! label (or labels, with `multi_label`); labels are strings.
//!
//! - **TSV** (K-BERT's and UER's layout): a header line naming the columns (`label`,
//!   `text_a`, optional `text_b`, any order, other columns ignored), then one example per
//!   line. Characters may be space-separated.
//! - **JSONL** (CLUE's layout): one object per line; the text, second text and label keys are
//!   configured (`text`, none and `label` by default); a label may be a string, a number or,
//!   with `multi_label`, a list.
//! - **CSV**: RFC 4180 with a header, read like TSV (quoted cells may hold commas and line
//!   breaks).
//! - **doccano** (JSONL, `{"text", "label": ["A", ...]}`) and **Label Studio** (JSON,
//!   `choices` results) exports ([`crate::stages::annotation`]): single texts; one label per
//!   text, or any number with `multi_label`.
//!
//! Whitespace is dropped from every text as it is read: the encoder never sees it (one token
//! per character, as K-BERT's and the reference's tokenisation do), and a K-BERT file's
//! space-separated characters link as the words they spell.
use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ClassifyError;
use crate::stages::annotation::{Annotated, AnnotationError, ReadOptions, Tool};

/// One labelled text or pair of texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifyExample {
    /// The text (whitespace dropped).
    pub text_a: String,
    /// The second text of a pair.
    pub text_b: Option<String>,
    /// The label, or the labels of a multi-label example.
    pub labels: Vec<String>,
    /// 1-based line of the file (of the record's first line in CSV), for error messages.
    pub line: usize,
}

/// The on-disk format of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// Tab-separated with a header.
    Tsv,
    /// JSON lines.
    Jsonl,
    /// Comma-separated with a header.
    Csv,
    /// doccano's JSONL export.
    Doccano,
    /// Label Studio's JSON export.
    #[serde(rename = "label_studio")]
    LabelStudio,
}

/// Which columns or keys hold what, and how labels are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The text's column or key.
    pub text: String,
    /// The second text's, for pairs (TSV/CSV: used when the header has it).
    pub text_b: Option<String>,
    /// The label's.
    pub label: String,
    /// With `Some(sep)`, several labels per example, separated by `sep` in TSV and CSV.
    pub multi_label: Option<String>,
    /// doccano and Label Studio: `[data] offsets` and `use_predictions`.
    pub annotations: ReadOptions,
}

impl Fields {
    /// The fields of `format` with the configured names (`None`: the format's defaults:
    /// `text_a`/`text_b` in TSV and CSV, `text` and no second text in JSONL).
    pub fn new(
        format: DataFormat,
        text: Option<&str>,
        text_b: Option<&str>,
        label: &str,
        multi_label: Option<&str>,
    ) -> Self {
        let (default_a, default_b) = match format {
            DataFormat::Tsv | DataFormat::Csv => ("text_a", Some("text_b")),
            DataFormat::Jsonl | DataFormat::Doccano | DataFormat::LabelStudio => ("text", None),
        };
        Self {
            text: text.unwrap_or(default_a).to_string(),
            text_b: text_b.or(default_b).map(str::to_string),
            label: label.to_string(),
            multi_label: multi_label.map(str::to_string),
            annotations: ReadOptions::default(),
        }
    }
}

/// Reads a data file.
pub fn read(
    path: &Path,
    format: DataFormat,
    fields: &Fields,
) -> Result<Vec<ClassifyExample>, ClassifyError> {
    let tool = match format {
        DataFormat::Doccano => Some(Tool::Doccano),
        DataFormat::LabelStudio => Some(Tool::LabelStudio),
        _ => None,
    };
    let examples = match tool {
        Some(tool) => {
            let records = crate::stages::annotation::read(path, tool, fields.annotations)?;
            from_annotations(path, &records, fields)?
        }
        None => {
            let text = crate::textfile::read(path)?;
            match format {
                DataFormat::Tsv => read_tsv(path, &text, fields)?,
                DataFormat::Csv => read_csv(path, &text, fields)?,
                _ => read_jsonl(path, &text, fields)?,
            }
        }
    };
    if examples.is_empty() {
        return Err(data_error(
            path,
            1,
            "no examples: expected a header line and at least one example",
        ));
    }
    Ok(examples)
}

/// The examples of annotated texts: whitespace dropped from the text, its labels (exactly
/// one unless `multi_label`).
fn from_annotations(
    path: &Path,
    records: &[Annotated],
    fields: &Fields,
) -> Result<Vec<ClassifyExample>, ClassifyError> {
    records
        .iter()
        .map(|r| {
            let error = |m: String| ClassifyError::from(AnnotationError::record(path, &r.at, m));
            let text_a = strip_whitespace(&r.text);
            if text_a.is_empty() {
                return Err(error("the text is empty".into()));
            }
            if fields.multi_label.is_none() && r.labels.len() != 1 {
                return Err(error(format!(
                    "{} labels {:?}; expected exactly one (several need head.multi_label = true)",
                    r.labels.len(),
                    r.labels
                )));
            }
            Ok(ClassifyExample {
                text_a,
                text_b: None,
                labels: r.labels.clone(),
                line: r.at.line(),
            })
        })
        .collect()
}

fn data_error(path: &Path, line: usize, message: impl Into<String>) -> ClassifyError {
    ClassifyError::Data {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// The text without whitespace.
pub fn strip_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Where each field sits in a header row.
struct Columns {
    text: usize,
    text_b: Option<usize>,
    label: usize,
    count: usize,
}

impl Columns {
    fn find(path: &Path, header: &[&str], fields: &Fields) -> Result<Self, ClassifyError> {
        let at: HashMap<&str, usize> = header
            .iter()
            .enumerate()
            .map(|(i, c)| (c.trim(), i))
            .collect();
        let need = |name: &str| {
            at.get(name).copied().ok_or_else(|| {
                data_error(
                    path,
                    1,
                    format!(
                        "the header has no column {name:?} (found {:?}); expected a header naming the columns, e.g. \"label<TAB>text_a\"",
                        header
                    ),
                )
            })
        };
        Ok(Self {
            text: need(&fields.text)?,
            text_b: fields.text_b.as_deref().and_then(|b| at.get(b).copied()),
            label: need(&fields.label)?,
            count: header.len(),
        })
    }

    fn example(
        &self,
        path: &Path,
        line: usize,
        cells: &[&str],
        fields: &Fields,
    ) -> Result<ClassifyExample, ClassifyError> {
        if cells.len() != self.count {
            return Err(data_error(
                path,
                line,
                format!(
                    "expected {} cells as the header has, found {}",
                    self.count,
                    cells.len()
                ),
            ));
        }
        let text_a = strip_whitespace(cells[self.text]);
        if text_a.is_empty() {
            return Err(data_error(path, line, "the text is empty"));
        }
        let text_b = self.text_b.map(|i| strip_whitespace(cells[i]));
        if text_b.as_deref() == Some("") {
            return Err(data_error(path, line, "the second text is empty"));
        }
        let labels = split_labels(cells[self.label], fields.multi_label.as_deref());
        if labels.is_empty() && fields.multi_label.is_none() {
            return Err(data_error(path, line, "the label is empty"));
        }
        Ok(ClassifyExample {
            text_a,
            text_b,
            labels,
            line,
        })
    }
}

fn split_labels(cell: &str, separator: Option<&str>) -> Vec<String> {
    match separator {
        Some(sep) => cell
            .split(sep)
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        None => Some(cell.trim())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .into_iter()
            .collect(),
    }
}

fn read_tsv(
    path: &Path,
    text: &str,
    fields: &Fields,
) -> Result<Vec<ClassifyExample>, ClassifyError> {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let header: Vec<&str> = header.split('\t').collect();
    let columns = Columns::find(path, &header, fields)?;
    lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let cells: Vec<&str> = l.strip_suffix('\r').unwrap_or(l).split('\t').collect();
            columns.example(path, i + 1, &cells, fields)
        })
        .collect()
}

fn read_csv(
    path: &Path,
    text: &str,
    fields: &Fields,
) -> Result<Vec<ClassifyExample>, ClassifyError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| data_error(path, 1, format!("not a CSV header: {e}")))?
        .clone();
    let header: Vec<&str> = header.iter().collect();
    let columns = Columns::find(path, &header, fields)?;
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            data_error(path, line, format!("not a CSV record: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let cells: Vec<&str> = record.iter().collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        out.push(columns.example(path, line, &cells, fields)?);
    }
    Ok(out)
}

fn read_jsonl(
    path: &Path,
    text: &str,
    fields: &Fields,
) -> Result<Vec<ClassifyExample>, ClassifyError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(l)
            .map_err(|e| data_error(path, line, format!("not a JSON object: {e}")))?;
        let text_of = |key: &str| -> Result<Option<String>, ClassifyError> {
            match value.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(strip_whitespace(s))),
                Some(other) => Err(data_error(
                    path,
                    line,
                    format!("{key:?} must be a string, found {other}"),
                )),
            }
        };
        let text_a = text_of(&fields.text)?
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                data_error(
                    path,
                    line,
                    format!("expected a non-empty string at {:?}", fields.text),
                )
            })?;
        let text_b = match &fields.text_b {
            Some(key) => Some(text_of(key)?.filter(|t| !t.is_empty()).ok_or_else(|| {
                data_error(
                    path,
                    line,
                    format!("expected a non-empty string at {key:?}"),
                )
            })?),
            None => None,
        };
        let labels = json_labels(value.get(&fields.label), fields.multi_label.as_deref())
            .map_err(|m| data_error(path, line, format!("{:?}: {m}", fields.label)))?;
        out.push(ClassifyExample {
            text_a,
            text_b,
            labels,
            line,
        });
    }
    Ok(out)
}

fn json_labels(
    value: Option<&serde_json::Value>,
    multi: Option<&str>,
) -> Result<Vec<String>, String> {
    use serde_json::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "expected a label (a string or number), found {other}"
        )),
    };
    match (value, multi) {
        (None, _) => Err("missing; expected the example's label".into()),
        (Some(Value::Array(items)), Some(_)) => items.iter().map(scalar).collect(),
        (Some(Value::Array(_)), None) => {
            Err("a list of labels needs head.multi_label = true".into())
        }
        (Some(Value::String(s)), Some(sep)) => Ok(split_labels(s, Some(sep))),
        (Some(v), _) => scalar(v).map(|l| vec![l]),
    }
}

/// The sorted label set of `sets`.
pub fn label_set(sets: &[&[ClassifyExample]]) -> Vec<String> {
    let mut labels: Vec<String> = sets
        .iter()
        .flat_map(|s| s.iter())
        .flat_map(|e| e.labels.iter().cloned())
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(format: DataFormat, multi: Option<&str>) -> Fields {
        Fields::new(format, None, None, "label", multi)
    }

    #[test]
    fn tsv_reads_kbert_layout_and_drops_spaces() {
        let text = "label\ttext_a\n1\t好 吃 的 店\n0\t不好\n";
        let ex = read_tsv(Path::new("x.tsv"), text, &fields(DataFormat::Tsv, None)).unwrap();
        assert_eq!(ex[0].text_a, "好吃的店");
        assert_eq!(ex[0].labels, ["1"]);
        assert_eq!((ex[1].line, ex[1].text_b.clone()), (3, None));
    }

    #[test]
    fn tsv_pairs_in_any_column_order() {
        let text = "text_a\ttext_b\tlabel\n今天\t明天\tno\n";
        let ex = read_tsv(Path::new("x.tsv"), text, &fields(DataFormat::Tsv, None)).unwrap();
        assert_eq!(ex[0].text_b.as_deref(), Some("明天"));
        assert_eq!(ex[0].labels, ["no"]);
    }

    #[test]
    fn tsv_errors_name_file_line_and_expectation() {
        let f = fields(DataFormat::Tsv, None);
        let e = read_tsv(Path::new("x.tsv"), "label\ttext_a\n1\ta\tb\n", &f).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.tsv:2: expected 2 cells as the header has, found 3"
        );
        let e = read_tsv(Path::new("x.tsv"), "label\ttext\n1\ta\n", &f).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("x.tsv:1: the header has no column \"text_a\""));
        let e = read_tsv(Path::new("x.tsv"), "label\ttext_a\n\t好\n", &f).unwrap_err();
        assert_eq!(e.to_string(), "x.tsv:2: the label is empty");
    }

    #[test]
    fn jsonl_reads_clue_layout_numbers_and_lists() {
        let f = Fields::new(
            DataFormat::Jsonl,
            Some("sentence1"),
            Some("sentence2"),
            "label",
            None,
        );
        let text = "{\"sentence1\": \"花呗\", \"sentence2\": \"借呗\", \"label\": \"0\"}\n\n{\"sentence1\": \"a\", \"sentence2\": \"b\", \"label\": 1}\n";
        let ex = read_jsonl(Path::new("x.jsonl"), text, &f).unwrap();
        assert_eq!(
            (ex[1].labels.clone(), ex[1].line),
            (vec!["1".to_string()], 3)
        );
        let multi = fields(DataFormat::Jsonl, Some(","));
        let ex = read_jsonl(
            Path::new("x.jsonl"),
            "{\"text\": \"x\", \"label\": [\"a\", \"b\"]}",
            &multi,
        )
        .unwrap();
        assert_eq!(ex[0].labels, ["a", "b"]);
        let e = read_jsonl(
            Path::new("x.jsonl"),
            "{\"text\": \"x\", \"label\": [\"a\"]}",
            &fields(DataFormat::Jsonl, None),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.jsonl:1: \"label\": a list of labels needs head.multi_label = true"
        );
        let e = read_jsonl(
            Path::new("x.jsonl"),
            "{\"label\": 1}",
            &fields(DataFormat::Jsonl, None),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.jsonl:1: expected a non-empty string at \"text\""
        );
    }

    #[test]
    fn csv_keeps_quoted_commas_and_line_numbers() {
        let text = "label,text_a\npos,\"好,很好\"\nneg,\"差\n很差\"\nneg,糟\n";
        let ex = read_csv(Path::new("x.csv"), text, &fields(DataFormat::Csv, None)).unwrap();
        assert_eq!(ex[0].text_a, "好,很好");
        assert_eq!(ex[1].text_a, "差很差");
        assert_eq!(ex[2].line, 5);
    }

    #[test]
    fn multi_label_cells_split_on_the_separator() {
        let text = "label\ttext_a\na, b\t好\n\t空\n";
        let ex = read_tsv(
            Path::new("x.tsv"),
            text,
            &fields(DataFormat::Tsv, Some(",")),
        )
        .unwrap();
        assert_eq!(ex[0].labels, ["a", "b"]);
        assert!(ex[1].labels.is_empty());
        assert_eq!(label_set(&[&ex]), ["a", "b"]);
    }
}
