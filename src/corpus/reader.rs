//! Streaming input records: one per line of a text or JSONL file, read with a bounded buffer
//! (an oversize line is skipped, never loaded whole), each tagged with its line number and
//! byte range so bad records can be reported and a run can resume at an exact offset.
use crate::error::json_kind;
use std::io::{self, BufRead};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::doc::Document;

/// How each input line is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// Each non-blank line is a document's text.
    Txt,
    /// Each non-blank line is a JSON object holding the text in a field.
    Jsonl,
}

impl std::str::FromStr for InputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "txt" | "text" => Ok(InputFormat::Txt),
            "jsonl" | "json" => Ok(InputFormat::Jsonl),
            other => Err(format!(
                "unknown input format {other:?}; expected txt or jsonl"
            )),
        }
    }
}

/// Reader settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderOptions {
    /// Text or JSONL.
    pub format: InputFormat,
    /// JSONL field holding the text.
    pub text_field: String,
    /// JSONL field copied to [`Document::id`], if any (string or number); without one (or
    /// when a record lacks it) the id is the input line number.
    pub id_field: Option<String>,
    /// JSONL field copied to [`Document::question`], if any.
    pub question_field: Option<String>,
    /// JSONL field copied to [`Document::text_b`] (the second text of a pair), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_b_field: Option<String>,
    /// Longest accepted line in bytes; longer lines are reported and skipped.
    pub max_record_bytes: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            format: InputFormat::Txt,
            text_field: "text".into(),
            id_field: None,
            question_field: None,
            text_b_field: None,
            max_record_bytes: 1 << 20,
        }
    }
}

/// Why a line is not a usable record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The line is not UTF-8.
    #[error("invalid UTF-8 at byte {valid_up_to} of the line; expected UTF-8 text")]
    InvalidUtf8 {
        /// Bytes of valid UTF-8 before the first bad byte.
        valid_up_to: usize,
    },
    /// The line is not a JSON object.
    #[error("invalid JSON: {0}; expected one JSON object per line")]
    InvalidJson(String),
    /// The JSON object lacks the text field.
    #[error("missing field `{0}`; expected a string field `{0}` holding the text")]
    MissingField(String),
    /// The field is not a string.
    #[error("field `{field}` is {found}; expected a string")]
    NotAString {
        /// The field.
        field: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// The line is longer than the limit.
    #[error("record is {bytes} bytes, over the limit of {max} bytes (--max-record-bytes)")]
    Oversize {
        /// The line's length.
        bytes: u64,
        /// The limit.
        max: usize,
    },
}

impl RecordError {
    /// A short machine-readable kind for `errors.jsonl`.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordError::InvalidUtf8 { .. } => "invalid_utf8",
            RecordError::InvalidJson(_) => "invalid_json",
            RecordError::MissingField(_) => "missing_field",
            RecordError::NotAString { .. } => "not_a_string",
            RecordError::Oversize { .. } => "oversize",
        }
    }
}

/// One input line that holds a record (blank lines are not records).
#[derive(Debug)]
pub struct Record {
    /// 1-based line number in the input.
    pub line: u64,
    /// Byte offset of the line's start.
    pub offset: u64,
    /// The document, or why the line is unusable.
    pub content: Result<Document, RecordError>,
    /// Up to 200 bytes of the line (lossy UTF-8) for error reports.
    pub excerpt: String,
}

/// Reads records one line at a time with at most `max_record_bytes` buffered.
pub struct RecordReader<R> {
    inner: R,
    opts: ReaderOptions,
    offset: u64,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> RecordReader<R> {
    /// A reader positioned at byte `offset`, which is line `line` + 1 of the input (`inner`
    /// must already be positioned there).
    pub fn new(inner: R, opts: ReaderOptions, offset: u64, line: u64) -> Self {
        Self {
            inner,
            opts,
            offset,
            line,
            buf: Vec::new(),
        }
    }

    /// Byte offset of the next unread line.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Lines read so far (including blank lines).
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// The next record, skipping blank lines; `None` at end of input.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            let start = self.offset;
            let Some((consumed, oversize)) = self.read_line()? else {
                return Ok(None);
            };
            self.offset += consumed;
            self.line += 1;
            let excerpt = excerpt(&self.buf);
            if oversize {
                return Ok(Some(Record {
                    line: self.line,
                    offset: start,
                    content: Err(RecordError::Oversize {
                        bytes: consumed,
                        max: self.opts.max_record_bytes,
                    }),
                    excerpt,
                }));
            }
            let mut bytes = self.buf.as_slice();
            if start == 0 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    return Ok(Some(Record {
                        line: self.line,
                        offset: start,
                        content: Err(RecordError::InvalidUtf8 {
                            valid_up_to: e.valid_up_to(),
                        }),
                        excerpt,
                    }))
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            let mut content = match self.opts.format {
                InputFormat::Txt => Ok(Document::new(text)),
                InputFormat::Jsonl => parse_json(text, &self.opts),
            };
            if let Ok(doc) = &mut content {
                // Without an id field the input line number is the id, so output documents
                // line up with input lines even where blank lines were skipped.
                doc.id.get_or_insert_with(|| self.line.to_string());
            }
            return Ok(Some(Record {
                line: self.line,
                offset: start,
                content,
                excerpt,
            }));
        }
    }

    /// Reads one line into `buf` without its line ending, keeping at most the limit.
    /// Returns the bytes consumed and whether the line was over the limit.
    fn read_line(&mut self) -> io::Result<Option<(u64, bool)>> {
        self.buf.clear();
        let max = self.opts.max_record_bytes;
        let mut consumed = 0u64;
        let mut oversize = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            let (chunk, done) = match memchr_newline(available) {
                Some(i) => (&available[..=i], true),
                None => (available, false),
            };
            let n = chunk.len();
            if !oversize && self.buf.len() + n <= max + 2 {
                self.buf.extend_from_slice(chunk);
            } else if !oversize {
                oversize = true;
                self.buf.truncate(200);
            }
            self.inner.consume(n);
            consumed += n as u64;
            if done {
                break;
            }
        }
        if consumed == 0 {
            return Ok(None);
        }
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(Some((consumed, oversize || self.buf.len() > max)))
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

fn excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(200)];
    String::from_utf8_lossy(cut).into_owned()
}

fn parse_json(line: &str, opts: &ReaderOptions) -> Result<Document, RecordError> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| RecordError::InvalidJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(RecordError::InvalidJson(format!(
            "found {}",
            json_kind(&value)
        )));
    };
    let string_field = |field: &str| -> Result<Option<String>, RecordError> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(RecordError::NotAString {
                field: field.to_string(),
                found: json_kind(other),
            }),
        }
    };
    let text = string_field(&opts.text_field)?
        .ok_or_else(|| RecordError::MissingField(opts.text_field.clone()))?;
    let mut doc = Document::new(text);
    if let Some(field) = &opts.id_field {
        doc.id = match map.get(field) {
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => string_field(field)?,
        };
    }
    if let Some(field) = &opts.question_field {
        doc.question = string_field(field)?;
    }
    if let Some(field) = &opts.text_b_field {
        doc.text_b = string_field(field)?;
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], opts: ReaderOptions) -> Vec<Record> {
        let mut reader = RecordReader::new(input, opts, 0, 0);
        let mut out = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            out.push(r);
        }
        assert_eq!(reader.offset(), input.len() as u64);
        out
    }

    #[test]
    fn text_lines_skip_blanks_and_keep_line_numbers_and_offsets() {
        let input = "\u{feff}北京欢迎你\n\n  \r\n上海\r\n最后一行没有换行".as_bytes();
        let records = read_all(input, ReaderOptions::default());
        let texts: Vec<_> = records
            .iter()
            .map(|r| r.content.as_ref().unwrap().text.as_str())
            .collect();
        assert_eq!(texts, ["北京欢迎你", "上海", "最后一行没有换行"]);
        assert_eq!(
            records.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 4, 5]
        );
        assert_eq!(
            records[1].offset,
            "\u{feff}北京欢迎你\n\n  \r\n".len() as u64
        );
    }

    #[test]
    fn bad_records_say_what_is_wrong() {
        let opts = ReaderOptions {
            format: InputFormat::Jsonl,
            id_field: Some("id".into()),
            max_record_bytes: 64,
            ..ReaderOptions::default()
        };
        let long = format!("{{\"text\": \"{}\"}}", "长".repeat(40));
        let input = format!(
            "{{\"text\": \"好\", \"id\": 7}}\n{{\"text\": 3}}\n{{\"txt\": \"x\"}}\nnot json\n{long}\n[1]\n"
        );
        let mut bytes = input.into_bytes();
        bytes.extend_from_slice(b"{\"text\": \"\xff\"}\n");
        let records = read_all(&bytes, opts);
        let ok = records[0].content.as_ref().unwrap();
        assert_eq!((ok.text.as_str(), ok.id.as_deref()), ("好", Some("7")));
        let kinds: Vec<_> = records[1..]
            .iter()
            .map(|r| r.content.as_ref().unwrap_err().kind())
            .collect();
        assert_eq!(
            kinds,
            [
                "not_a_string",
                "missing_field",
                "invalid_json",
                "oversize",
                "invalid_json",
                "invalid_utf8"
            ]
        );
        assert_eq!(records[4].line, 5);
        assert!(records[4].excerpt.len() <= 200);
    }
}
