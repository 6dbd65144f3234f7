//! Reads NLPCC 2016 KBQA question files: `<question id=N>`, `<triple id=N>` (`s ||| p ||| o`)
//! and `<answer id=N>` lines, blocks separated by `=====` lines.
use std::path::Path;

use crate::doc::Triple;

use super::KbqaError;

/// One question with its gold triple and answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The question text.
    pub text: String,
    /// The gold triple the answer comes from.
    pub triple: Triple,
    /// The gold answer.
    pub answer: String,
}

/// Reads every question of an NLPCC KBQA file, in file order.
pub fn read_questions(path: &Path) -> Result<Vec<Question>, KbqaError> {
    let text = crate::textfile::read(path)?;
    parse_questions(&text).map_err(|(line, message)| KbqaError::Data {
        path: path.to_path_buf(),
        line,
        message,
    })
}

/// Parses NLPCC question blocks; errors carry the 1-based line and what was expected.
pub fn parse_questions(text: &str) -> Result<Vec<Question>, (usize, String)> {
    let mut out = Vec::new();
    let mut question: Option<String> = None;
    let mut triple: Option<Triple> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let lineno = i + 1;
        if line.trim().is_empty() || line.starts_with("=====") {
            continue;
        }
        let (tag, body) = tagged(line).ok_or_else(|| {
            (
                lineno,
                "expected `<question id=N>`, `<triple id=N>` or `<answer id=N>` followed by a tab"
                    .to_string(),
            )
        })?;
        match tag {
            "question" => question = Some(body.to_string()),
            "triple" => {
                let parts: Vec<&str> = body.split("|||").map(str::trim).collect();
                // Empty fields occur in the real file (an empty subject or object); such a
                // question is kept (it still counts in evaluation) but cannot teach.
                if parts.len() != 3 {
                    return Err((lineno, "expected `subject ||| predicate ||| object`".into()));
                }
                triple = Some(Triple {
                    subject: parts[0].into(),
                    predicate: parts[1].into(),
                    object: parts[2].into(),
                });
            }
            "answer" => {
                let (Some(text), Some(triple)) = (question.take(), triple.take()) else {
                    return Err((
                        lineno,
                        "answer without a question and triple before it".into(),
                    ));
                };
                out.push(Question {
                    text,
                    triple,
                    answer: body.to_string(),
                });
            }
            other => return Err((lineno, format!("unknown tag `{other}`"))),
        }
    }
    Ok(out)
}

/// Splits `<tag id=N>\tbody` into `(tag, trimmed body)`.
fn tagged(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('<')?;
    let (head, body) = rest.split_once('>')?;
    let tag = head.split_whitespace().next()?;
    Some((tag, body.trim()))
}

/// The training, dev and test parts of a question list: the first `train` questions minus
/// their last `dev` are training, those `dev` are dev, everything after `train` is test.
pub fn split(questions: &[Question], train: usize, dev: usize) -> [&[Question]; 3] {
    let train = train.min(questions.len());
    let dev = dev.min(train);
    [
        &questions[..train - dev],
        &questions[train - dev..train],
        &questions[train..],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "<question id=1>\t《机械设计基础》这本书的作者是谁？\n<triple id=1>\t机械设计基础 ||| 作者 ||| 杨可桢，程光蕴，李仲生\n<answer id=1>\t杨可桢，程光蕴，李仲生\n==================================================\n<question id=2>\t《高等数学》是哪个出版社出版的？\n<triple id=2>\t高等数学 ||| 出版社 ||| 武汉大学出版社\n<answer id=2>\t武汉大学出版社\n";

    #[test]
    fn reads_question_triple_and_answer_blocks() {
        let qs = parse_questions(FILE).unwrap();
        assert_eq!(qs.len(), 2);
        assert_eq!(qs[1].text, "《高等数学》是哪个出版社出版的？");
        assert_eq!(qs[1].triple.subject, "高等数学");
        assert_eq!(qs[1].triple.predicate, "出版社");
        assert_eq!(qs[1].answer, "武汉大学出版社");
    }

    #[test]
    fn a_broken_triple_names_its_line() {
        let bad = FILE.replace(
            "高等数学 ||| 出版社 ||| 武汉大学出版社",
            "高等数学 ||| 出版社",
        );
        assert_eq!(
            parse_questions(&bad).unwrap_err(),
            (6, "expected `subject ||| predicate ||| object`".to_string())
        );
    }

    #[test]
    fn split_takes_dev_from_the_end_of_training() {
        let qs = parse_questions(FILE).unwrap();
        let [train, dev, test] = split(&qs, 2, 1);
        assert_eq!((train.len(), dev.len(), test.len()), (1, 1, 0));
        assert_eq!(dev[0].triple.subject, "高等数学");
    }
}
