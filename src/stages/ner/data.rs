//! Readers for NER data: char-per-line files (`char TAG`, blank line between sentences; BMES or
//! BIO tags, as in MSRA and Resume), K-BERT's TSV (header `text_a<TAB>label`, then
//! space-separated characters and tags), and the span exports of doccano and Label Studio
//! ([`crate::stages::annotation`]), whose spans become tags of the task's scheme (`[data]
//! scheme`, BIO when unset) as [`span_tags`] writes them.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tags::{Tag, TagScheme};
use super::NerError;
use crate::stages::annotation::{AnnotationError, ReadOptions, Tool};

/// One annotated sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// The characters (one string each; usually one `char`).
    pub chars: Vec<String>,
    /// One tag per character.
    pub tags: Vec<String>,
    /// 1-based line where the sentence starts, for error messages.
    pub line: usize,
}

impl Sentence {
    /// The sentence text (characters concatenated).
    pub fn text(&self) -> String {
        self.chars.concat()
    }
}

/// The on-disk format of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// `char TAG` per line, blank line between sentences (BMES or BIO tags).
    CharPerLine,
    /// K-BERT's TSV: header, then `c h a r s<TAB>T A G S`.
    KbertTsv,
    /// doccano's JSONL export (`{"text", "label": [[start, end, TYPE], ...]}`).
    Doccano,
    /// Label Studio's JSON export (`annotations[].result[]` spans).
    LabelStudio,
}

impl DataFormat {
    /// The annotation tool of a span format.
    pub fn tool(self) -> Option<Tool> {
        match self {
            DataFormat::Doccano => Some(Tool::Doccano),
            DataFormat::LabelStudio => Some(Tool::LabelStudio),
            DataFormat::CharPerLine | DataFormat::KbertTsv => None,
        }
    }
}

/// How span formats are read: the scheme their spans are tagged in and the tool options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanReading {
    /// The tagging scheme of the produced tags.
    pub scheme: TagScheme,
    /// `[data] offsets` and `use_predictions`.
    pub options: ReadOptions,
}

impl Default for SpanReading {
    fn default() -> Self {
        Self {
            scheme: TagScheme::Bio,
            options: ReadOptions::default(),
        }
    }
}

/// The tags of `spans` (sorted, non-overlapping, in characters) over `len` characters, in
/// `scheme`: `B-X I-X*` (BIO), `B-X (I|M)-X* E-X` or `S-X` (BIOES, BMES), `O` elsewhere.
pub fn span_tags(len: usize, spans: &[(usize, usize, &str)], scheme: TagScheme) -> Vec<String> {
    let mut tags = vec!["O".to_string(); len];
    let inside = if scheme == TagScheme::Bmes { 'M' } else { 'I' };
    for &(start, end, kind) in spans {
        for (i, tag) in tags.iter_mut().enumerate().take(end.min(len)).skip(start) {
            let prefix = match scheme {
                TagScheme::Bio if i == start => 'B',
                TagScheme::Bio => 'I',
                _ if end - start == 1 => 'S',
                _ if i == start => 'B',
                _ if i + 1 == end => 'E',
                _ => inside,
            };
            *tag = format!("{prefix}-{kind}");
        }
    }
    tags
}

/// The sentences of an annotation export: one per text, a character each, spans tagged.
fn from_annotations(
    path: &Path,
    tool: Tool,
    reading: &SpanReading,
) -> Result<Vec<Sentence>, NerError> {
    let records = crate::stages::annotation::read(path, tool, reading.options)?;
    records
        .iter()
        .map(|r| {
            let spans = r
                .sorted_disjoint_spans()
                .map_err(|m| NerError::Annotation(AnnotationError::record(path, &r.at, m)))?;
            let spans: Vec<(usize, usize, &str)> = spans
                .iter()
                .map(|s| (s.start, s.end, s.label.as_str()))
                .collect();
            let chars: Vec<String> = r.text.chars().map(String::from).collect();
            let tags = span_tags(chars.len(), &spans, reading.scheme);
            if chars.is_empty() {
                return Err(NerError::Annotation(AnnotationError::record(
                    path,
                    &r.at,
                    "the text is empty",
                )));
            }
            Ok(Sentence {
                chars,
                tags,
                line: r.at.line(),
            })
        })
        .collect()
}

/// Reads a data file in `format`; tags are checked to be `O` or `P-TYPE` (span formats are
/// tagged in BIO).
pub fn read(path: &Path, format: DataFormat) -> Result<Vec<Sentence>, NerError> {
    read_with(path, format, &SpanReading::default())
}

/// [`read`], span formats read as `reading` says.
pub fn read_with(
    path: &Path,
    format: DataFormat,
    reading: &SpanReading,
) -> Result<Vec<Sentence>, NerError> {
    let sentences = match format.tool() {
        Some(tool) => from_annotations(path, tool, reading)?,
        None => {
            let text = crate::textfile::read(path)?;
            match format {
                DataFormat::KbertTsv => parse_kbert_tsv(&text, path)?,
                _ => parse_char_per_line(&text, path)?,
            }
        }
    };
    if sentences.is_empty() {
        return Err(NerError::Data {
            path: path.to_path_buf(),
            line: 1,
            message: "no sentences".into(),
        });
    }
    Ok(sentences)
}

/// Sentences as documents holding their tagged entities (offsets in characters of the
/// concatenated text; tags decoded in the scheme they are written in, BIO as conlleval
/// reads it), for writing them in an annotation tool's format.
pub fn to_documents(sentences: &[Sentence]) -> Vec<crate::doc::Document> {
    let scheme = TagScheme::detect(
        sentences
            .iter()
            .flat_map(|s| s.tags.iter().map(String::as_str)),
    );
    sentences
        .iter()
        .map(|s| {
            // Character offset of each item (an item may hold several characters).
            let mut at = Vec::with_capacity(s.chars.len() + 1);
            let mut n = 0;
            for c in &s.chars {
                at.push(n);
                n += c.chars().count();
            }
            at.push(n);
            let text = s.text();
            let entities = super::tags::spans_of_strings(scheme, &s.tags)
                .into_iter()
                .map(|(start, end, label)| crate::doc::Entity {
                    start: at[start],
                    end: at[end],
                    text: s.chars[start..end].concat(),
                    label,
                    score: None,
                    source: None,
                    evidence: None,
                })
                .collect();
            crate::doc::Document {
                entities,
                ..crate::doc::Document::new(text)
            }
        })
        .collect()
}

fn data_error(path: &Path, line: usize, message: String) -> NerError {
    NerError::Data {
        path: PathBuf::from(path),
        line,
        message,
    }
}

fn check_tag(tag: &str, path: &Path, line: usize) -> Result<(), NerError> {
    Tag::parse(tag).map(|_| ()).ok_or_else(|| {
        data_error(
            path,
            line,
            format!("tag {tag:?} is neither O nor PREFIX-TYPE with prefix B, I, M, E or S"),
        )
    })
}

/// Parses `char TAG` lines (the first field is the character, the last the tag); a line with
/// a single field is an error.
pub fn parse_char_per_line(text: &str, path: &Path) -> Result<Vec<Sentence>, NerError> {
    let mut out = Vec::new();
    let mut current = Sentence {
        chars: Vec::new(),
        tags: Vec::new(),
        line: 1,
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] => {
                if !current.chars.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                current.line = n + 1;
            }
            [ch, .., tag] if fields.len() >= 2 => {
                check_tag(tag, path, n)?;
                current.chars.push((*ch).to_string());
                current.tags.push((*tag).to_string());
            }
            _ => {
                return Err(data_error(
                    path,
                    n,
                    format!("expected `CHAR TAG`, found {line:?}"),
                ))
            }
        }
    }
    if !current.chars.is_empty() {
        out.push(current);
    }
    Ok(out)
}

impl Default for Sentence {
    fn default() -> Self {
        Self {
            chars: Vec::new(),
            tags: Vec::new(),
            line: 1,
        }
    }
}

/// Parses K-BERT's TSV: a `text_a<TAB>label` header, then one sentence per line.
pub fn parse_kbert_tsv(text: &str, path: &Path) -> Result<Vec<Sentence>, NerError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some((chars, tags)) = line.split_once('\t') else {
            return Err(data_error(path, n, "expected `CHARS<TAB>TAGS`".into()));
        };
        let chars: Vec<String> = chars
            .split(' ')
            .map(|c| if c.is_empty() { " " } else { c }.to_string())
            .collect();
        let tags: Vec<String> = tags.split(' ').map(str::to_string).collect();
        if chars.len() != tags.len() {
            return Err(data_error(
                path,
                n,
                format!("{} characters but {} tags", chars.len(), tags.len()),
            ));
        }
        for t in &tags {
            check_tag(t, path, n)?;
        }
        out.push(Sentence {
            chars,
            tags,
            line: n,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_char_per_line_sentences() {
        let text = "高 B-NAME\n勇 E-NAME\n： O\n\n男 O\n";
        let s = parse_char_per_line(text, Path::new("x.bmes")).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].text(), "高勇：");
        assert_eq!(s[0].tags, ["B-NAME", "E-NAME", "O"]);
        assert_eq!((s[1].line, s[1].text()), (5, "男".to_string()));
    }

    #[test]
    fn item7_a_byte_order_mark_keeps_the_first_character_and_bad_utf8_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.bmes");
        std::fs::write(&path, "\u{feff}高 B-NAME\n勇 E-NAME\n\n男 O\n").unwrap();
        let s = read(&path, DataFormat::CharPerLine).unwrap();
        assert_eq!(s[0].chars, ["高", "勇"]);
        std::fs::write(&path, b"\xe9\xab\x98 B-NAME\n\xff E-NAME\n").unwrap();
        let err = read(&path, DataFormat::CharPerLine)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("train.bmes:2: invalid UTF-8 at byte 1 of the line; expected UTF-8 text"),
            "{err}"
        );
    }

    #[test]
    fn reads_kbert_tsv_and_reports_bad_lines() {
        let text = "text_a\tlabel\n头 痛\tB-Symptom I-Symptom\n";
        let s = parse_kbert_tsv(text, Path::new("t.tsv")).unwrap();
        assert_eq!(s[0].text(), "头痛");
        let err = parse_kbert_tsv("h\n头 痛\tO\n", Path::new("t.tsv")).unwrap_err();
        assert_eq!(err.to_string(), "t.tsv:2: 2 characters but 1 tags");
        let err = parse_char_per_line("头 X-Y\n", Path::new("a.bmes")).unwrap_err();
        assert!(
            err.to_string().starts_with("a.bmes:1: tag \"X-Y\""),
            "{err}"
        );
    }
}
