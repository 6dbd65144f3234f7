//! The SQuAD v1 JSON reader (CMRC 2018 uses the same layout): articles hold paragraphs, a
//! paragraph holds a `context` and its questions (`qas`), each with gold `answers`
//! (`text`, `answer_start` in characters). Every answer's `answer_start` is checked against
//! the context: an answer found elsewhere in the context is moved there and an answer not in
//! the context keeps no span, and both are reported as [`AnswerIssue`]s, never silently
//! accepted. Answers without a span still count in evaluation (the metric compares texts)
//! but cannot label training windows.
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::QaError;
use crate::doc::Span;

/// One question about one context, with its gold answers.
#[derive(Debug, Clone, PartialEq)]
pub struct QaRecord {
    /// The question id (e.g. `DEV_0_QUERY_0`).
    pub id: String,
    /// The question.
    pub question: String,
    /// The paragraph the answer comes from.
    pub context: String,
    /// Gold answers (CMRC dev has three per question; the trial file one).
    pub answers: Vec<GoldAnswer>,
}

/// A gold answer: its text and, when it was located in the context, its character span.
#[derive(Debug, Clone, PartialEq)]
pub struct GoldAnswer {
    /// The answer text as annotated.
    pub text: String,
    /// Character span in the context (`context[span] == text`), if located.
    pub span: Option<Span>,
}

/// A gold answer whose `answer_start` does not point at its text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerIssue {
    /// The question id.
    pub id: String,
    /// Index of the answer in the question's `answers`.
    pub answer: usize,
    /// The `answer_start` given in the file.
    pub given_start: i64,
    /// Where the text was found instead (the occurrence nearest `given_start`), if anywhere.
    pub found_start: Option<usize>,
}

impl fmt::Display for AnswerIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.found_start {
            Some(found) => write!(
                f,
                "question {} answer {}: answer_start {} does not match its text; found at {found}",
                self.id, self.answer, self.given_start
            ),
            None => write!(
                f,
                "question {} answer {}: answer_start {}: the text is not in the context (kept for evaluation only)",
                self.id, self.answer, self.given_start
            ),
        }
    }
}

/// A whole SQuAD-format file.
#[derive(Debug, Clone)]
pub struct QaSet {
    /// The file read.
    pub path: PathBuf,
    /// Its questions in file order.
    pub records: Vec<QaRecord>,
    /// Answers whose `answer_start` was wrong.
    pub issues: Vec<AnswerIssue>,
}

/// Counts of what a file held, for reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataSummary {
    /// The file.
    pub path: PathBuf,
    /// Questions read.
    pub questions: usize,
    /// Gold answers read.
    pub answers: usize,
    /// Answers whose text was found away from `answer_start` (moved there).
    pub moved: usize,
    /// Answers whose text is not in the context (no span; evaluation only).
    pub not_in_context: usize,
    /// Questions whose text is empty (evaluated, not trained on).
    pub empty_questions: usize,
}

impl QaSet {
    /// What the file held and how many answers had to be moved or could not be located.
    pub fn summary(&self) -> DataSummary {
        let moved = self
            .issues
            .iter()
            .filter(|i| i.found_start.is_some())
            .count();
        DataSummary {
            path: self.path.clone(),
            questions: self.records.len(),
            answers: self.records.iter().map(|r| r.answers.len()).sum(),
            moved,
            not_in_context: self.issues.len() - moved,
            empty_questions: self
                .records
                .iter()
                .filter(|r| r.question.trim().is_empty())
                .count(),
        }
    }

    /// Logs the answer issues (the first few in full, then a count).
    pub fn log_issues(&self) {
        for issue in self.issues.iter().take(5) {
            tracing::warn!("{}: {issue}", self.path.display());
        }
        if self.issues.len() > 5 {
            let s = self.summary();
            tracing::warn!(
                "{}: {} answers moved to where their text is, {} not in their context",
                self.path.display(),
                s.moved,
                s.not_in_context
            );
        }
    }
}

#[derive(Deserialize)]
struct File {
    data: Vec<Article>,
}

#[derive(Deserialize)]
struct Article {
    paragraphs: Vec<Paragraph>,
}

#[derive(Deserialize)]
struct Paragraph {
    context: String,
    qas: Vec<Question>,
}

#[derive(Deserialize)]
struct Question {
    id: String,
    question: String,
    #[serde(default)]
    answers: Vec<RawAnswer>,
}

#[derive(Deserialize)]
struct RawAnswer {
    text: String,
    answer_start: i64,
}

/// Reads a SQuAD v1 file. Malformed JSON or a missing field is an error naming the file,
/// the JSON path and line; a duplicate question id is an error naming the id. Empty
/// questions (the CMRC trial file has two) are kept and counted in [`DataSummary`].
pub fn read(path: &Path) -> Result<QaSet, QaError> {
    let text = crate::textfile::read(path)?;
    parse(path, &text)
}

/// Parses SQuAD v1 JSON `text` that claims to come from `path`.
pub fn parse(path: &Path, text: &str) -> Result<QaSet, QaError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let file: File = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        QaError::Data {
            path: path.to_path_buf(),
            at: format!("line {} ({at})", inner.line()),
            message: inner.to_string(),
        }
    })?;
    let mut records = Vec::new();
    let mut issues = Vec::new();
    let mut seen = HashSet::new();
    for article in file.data {
        for paragraph in article.paragraphs {
            let chars: Vec<char> = paragraph.context.chars().collect();
            for q in paragraph.qas {
                let bad = |message: String| QaError::Data {
                    path: path.to_path_buf(),
                    at: format!("question {}", q.id),
                    message,
                };
                if !seen.insert(q.id.clone()) {
                    return Err(bad("duplicate question id".into()));
                }
                let mut answers = Vec::with_capacity(q.answers.len());
                for (i, a) in q.answers.iter().enumerate() {
                    let (span, issue) = locate(&chars, &a.text, a.answer_start);
                    if let Some(found_start) = issue {
                        issues.push(AnswerIssue {
                            id: q.id.clone(),
                            answer: i,
                            given_start: a.answer_start,
                            found_start,
                        });
                    }
                    answers.push(GoldAnswer {
                        text: a.text.clone(),
                        span,
                    });
                }
                records.push(QaRecord {
                    id: q.id,
                    question: q.question,
                    context: paragraph.context.clone(),
                    answers,
                });
            }
        }
    }
    if records.is_empty() {
        return Err(QaError::Data {
            path: path.to_path_buf(),
            at: "data".into(),
            message: "no questions; expected SQuAD v1 JSON with data[].paragraphs[].qas[]".into(),
        });
    }
    Ok(QaSet {
        path: path.to_path_buf(),
        records,
        issues,
    })
}

/// The span of `answer` in `context` and, when `start` does not point at it, the issue:
/// `Some(Some(found))` when it was found elsewhere (nearest occurrence), `Some(None)` when it
/// is not in the context (or empty).
fn locate(context: &[char], answer: &str, start: i64) -> (Option<Span>, Option<Option<usize>>) {
    let needle: Vec<char> = answer.chars().collect();
    let n = needle.len();
    if n == 0 {
        return (None, Some(None));
    }
    let at = |s: usize| context.get(s..s + n) == Some(&needle[..]);
    if start >= 0 && at(start as usize) {
        let s = start as usize;
        return (Some(Span::new(s, s + n)), None);
    }
    let nearest = (0..context.len().saturating_sub(n - 1))
        .filter(|&s| at(s))
        .min_by_key(|&s| (s as i64 - start).abs());
    match nearest {
        Some(s) => (Some(Span::new(s, s + n)), Some(Some(s))),
        None => (None, Some(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_against_the_context() {
        let ctx: Vec<char> = "𫚭，俗名龙尖，俗名".chars().collect();
        // Correct offset.
        assert_eq!(locate(&ctx, "俗名龙尖", 2), (Some(Span::new(2, 6)), None));
        // Off by one (UTF-16 counting of the astral 𫚭): moved to the nearest occurrence.
        assert_eq!(
            locate(&ctx, "俗名龙尖", 3),
            (Some(Span::new(2, 6)), Some(Some(2)))
        );
        assert_eq!(
            locate(&ctx, "俗名", 8),
            (Some(Span::new(7, 9)), Some(Some(7)))
        );
        // Not in the context, or -1 as some CMRC dev answers have.
        assert_eq!(locate(&ctx, "鲈鱼", -1), (None, Some(None)));
        assert_eq!(locate(&ctx, "", 0), (None, Some(None)));
    }

    #[test]
    fn a_squad_file_with_a_byte_order_mark_reads_and_an_empty_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trial.json");
        let json = r#"{"version":"v1","data":[{"title":"t","paragraphs":[{"context":"北京是首都",
            "qas":[{"id":"q1","question":"首都？","answers":[{"text":"北京","answer_start":0}]}]}]}]}"#;
        std::fs::write(&path, format!("\u{feff}{json}")).unwrap();
        assert_eq!(read(&path).unwrap().records.len(), 1);
        std::fs::write(&path, "").unwrap();
        assert!(read(&path).is_err());
        std::fs::write(&path, r#"{"version":"v1","data":[]}"#).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("no questions"), "{err}");
    }
}
