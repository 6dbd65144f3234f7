//! The pretraining corpus, streamed: one pass over the file tokenises each line and packs
//! consecutive lines into sequences of at most `max_len - 2` tokens (a longer line is cut at
//! token boundaries), keeping only each sequence's byte range and token count. A batch reads
//! its sequences back by seeking, so memory holds the index (a few words per sequence), never
//! the text.
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::config::CorpusFormat;
use super::PretrainError;
use crate::model::BertTokenizer;

/// One training sequence: whole lines `bytes` of the file, or part (`chars`) of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// Byte range of its lines in the file.
    pub bytes: Range<u64>,
    /// The character range of the (single) line's text, when the line was cut.
    pub chars: Option<Range<usize>>,
    /// Tokens, without `[CLS]`/`[SEP]`.
    pub tokens: usize,
}

/// A corpus file and its sequences.
#[derive(Debug, Clone)]
pub struct Corpus {
    path: PathBuf,
    format: CorpusFormat,
    text_field: String,
    sequences: Vec<Sequence>,
}

impl Corpus {
    /// Indexes `path`: lines tokenised with `tokenizer`, packed up to `max_tokens` tokens per
    /// sequence. Empty lines are skipped; in JSONL a line without the text field is an error
    /// naming it, and in either format a line that is not UTF-8 is.
    pub fn index(
        path: &Path,
        format: CorpusFormat,
        text_field: &str,
        tokenizer: &BertTokenizer,
        max_tokens: usize,
    ) -> Result<Self, PretrainError> {
        let io = |source| PretrainError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = BufReader::new(File::open(path).map_err(io)?);
        let mut sequences = Vec::new();
        let mut open: Option<Sequence> = None;
        let (mut offset, mut line_no) = (0u64, 0usize);
        let mut raw = Vec::new();
        let max_tokens = max_tokens.max(1);
        loop {
            raw.clear();
            let n = reader.read_until(b'\n', &mut raw).map_err(io)?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let line = crate::textfile::decode_line(path, line_no, std::mem::take(&mut raw))?;
            let bytes = offset..offset + n as u64;
            offset += n as u64;
            let text =
                line_text(&line, format, text_field).map_err(|message| PretrainError::Data {
                    path: path.to_path_buf(),
                    line: line_no,
                    message,
                })?;
            if text.trim().is_empty() {
                continue;
            }
            let enc = tokenizer.encode(&text)?;
            let offsets = &enc.offsets[1..enc.offsets.len() - 1];
            let tokens = offsets.len();
            if tokens == 0 {
                continue;
            }
            if tokens > max_tokens {
                sequences.extend(open.take());
                for chunk in offsets.chunks(max_tokens) {
                    let (start, end) = (chunk[0].0, chunk[chunk.len() - 1].1);
                    sequences.push(Sequence {
                        bytes: bytes.clone(),
                        chars: Some(start..end),
                        tokens: chunk.len(),
                    });
                }
                continue;
            }
            open = match open.take() {
                Some(mut s) if s.tokens + tokens <= max_tokens && s.bytes.end == bytes.start => {
                    s.bytes.end = bytes.end;
                    s.tokens += tokens;
                    Some(s)
                }
                previous => {
                    sequences.extend(previous);
                    Some(Sequence {
                        bytes,
                        chars: None,
                        tokens,
                    })
                }
            };
        }
        sequences.extend(open);
        Ok(Self {
            path: path.to_path_buf(),
            format,
            text_field: text_field.to_string(),
            sequences,
        })
    }

    /// The sequences.
    pub fn sequences(&self) -> &[Sequence] {
        &self.sequences
    }

    /// Keeps the first `n` sequences and returns the rest.
    pub fn split_off(&mut self, n: usize) -> Vec<Sequence> {
        self.sequences.split_off(n.min(self.sequences.len()))
    }

    /// Keeps only the first `n` sequences.
    pub fn truncate(&mut self, n: usize) {
        self.sequences.truncate(n);
    }

    /// The texts of `sequences` (of this corpus), read back from the file: a packed
    /// sequence's lines joined with `\n`.
    pub fn read(&self, sequences: &[&Sequence]) -> Result<Vec<String>, PretrainError> {
        let io = |source| PretrainError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = File::open(&self.path).map_err(io)?;
        let mut out = Vec::with_capacity(sequences.len());
        let mut buf = Vec::new();
        for s in sequences {
            file.seek(SeekFrom::Start(s.bytes.start)).map_err(io)?;
            buf.resize((s.bytes.end - s.bytes.start) as usize, 0);
            file.read_exact(&mut buf).map_err(io)?;
            // Indexing dropped a byte-order mark from line 1: read it back the same way.
            let bytes = if s.bytes.start == 0 {
                crate::textfile::strip_bom_bytes(&buf)
            } else {
                &buf
            };
            let block = String::from_utf8_lossy(bytes);
            let mut texts = Vec::new();
            for line in block.lines() {
                let text = line_text(line, self.format, &self.text_field).map_err(|message| {
                    PretrainError::Data {
                        path: self.path.clone(),
                        line: 0,
                        message,
                    }
                })?;
                if !text.trim().is_empty() {
                    texts.push(text);
                }
            }
            let text = texts.join("\n");
            out.push(match &s.chars {
                Some(r) => text.chars().skip(r.start).take(r.len()).collect(),
                None => text,
            });
        }
        Ok(out)
    }
}

/// The text of one corpus line (without its line break).
fn line_text(line: &str, format: CorpusFormat, field: &str) -> Result<String, String> {
    let line = line.trim_end_matches(['\n', '\r']);
    match format {
        CorpusFormat::Txt => Ok(line.to_string()),
        CorpusFormat::Jsonl => {
            if line.trim().is_empty() {
                return Ok(String::new());
            }
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
            value
                .get(field)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| format!("no string field {field:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> (tempfile::TempDir, BertTokenizer) {
        let dir = tempfile::tempdir().unwrap();
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n患\n者\n头\n痛\n发\n热\n";
        std::fs::write(dir.path().join("vocab.txt"), vocab).unwrap();
        let tok = BertTokenizer::from_dir(dir.path()).unwrap();
        (dir, tok)
    }

    #[test]
    fn lines_pack_up_to_the_budget_and_long_lines_are_cut() {
        let (dir, tok) = tokenizer();
        let path = dir.path().join("c.txt");
        std::fs::write(&path, "患者\n头痛\n\n发热发热发热\n患者头痛发热\n").unwrap();
        let corpus = Corpus::index(&path, CorpusFormat::Txt, "text", &tok, 4).unwrap();
        let all: Vec<&Sequence> = corpus.sequences().iter().collect();
        let texts = corpus.read(&all).unwrap();
        assert_eq!(
            texts,
            ["患者\n头痛", "发热发热", "发热", "患者头痛", "发热"]
        );
        assert_eq!(
            corpus
                .sequences()
                .iter()
                .map(|s| s.tokens)
                .collect::<Vec<_>>(),
            [4, 4, 2, 4, 2]
        );
    }

    #[test]
    fn jsonl_reads_the_text_field_and_names_a_bad_line() {
        let (dir, tok) = tokenizer();
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, "{\"text\":\"患者\"}\n{\"body\":\"头痛\"}\n").unwrap();
        let e = Corpus::index(&path, CorpusFormat::Jsonl, "text", &tok, 8).unwrap_err();
        assert!(
            e.to_string().contains(":2: no string field \"text\""),
            "{e}"
        );
    }
}
