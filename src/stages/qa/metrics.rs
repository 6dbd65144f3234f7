//! The CMRC 2018 evaluation (`cmrc2018_evaluate.py`, v5), reimplemented:
//!
//! - **mixed segmentation**: lower-cased and trimmed; each CJK character (U+4E00..U+9FA5) and
//!   each of the script's punctuation characters is one segment; runs of anything else
//!   (Latin words, digits) go through a word tokenizer (the script uses NLTK's
//!   `word_tokenize`; here: split at whitespace, each remaining symbol on its own, keeping
//!   letters and digits together, and `.`/`,` between digits, as NLTK does for `3.5`, `1,000`);
//! - **F1**: punctuation removed from the segments, the *longest common substring* of the
//!   gold and predicted segments gives precision = lcs / predicted and recall = lcs / gold;
//! - **EM**: gold and prediction equal after lower-casing, trimming and removing the
//!   punctuation characters;
//! - each question takes the maximum over its gold answers, and the corpus the mean over all
//!   questions (unanswered questions count 0).
//!
//! Scores are fractions in `[0, 1]` like the project's other metrics (the official script
//! prints them x100). `precision` and `recall` are the means over questions of those of the
//! gold answer that gives the best F1 (the script does not report them).
use serde::Serialize;

/// The script's punctuation list (`sp_char`). Its two-character entry `……` can never equal a
/// single character, so it has no effect there and is left out here.
const PUNCTUATION: &[char] = &[
    '-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=', '，', '。', '：', '？', '！', '“', '”',
    '；', '’', '《', '》', '·', '、', '「', '」', '（', '）', '－', '～', '『', '』',
];

fn is_punctuation(c: char) -> bool {
    PUNCTUATION.contains(&c)
}

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fa5}').contains(&c)
}

/// Word tokenisation of a non-CJK run (the part NLTK's `word_tokenize` does in the script).
fn word_tokenize(run: &str, out: &mut Vec<String>) {
    for word in run.split_whitespace() {
        let chars: Vec<char> = word.chars().collect();
        let mut token = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let joins_number = (c == '.' || c == ',')
                && i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if c.is_alphanumeric() || joins_number {
                token.push(c);
            } else {
                if !token.is_empty() {
                    out.push(std::mem::take(&mut token));
                }
                out.push(c.to_string());
            }
        }
        if !token.is_empty() {
            out.push(token);
        }
    }
}

/// The script's `mixed_segmentation`: CJK characters one by one, other runs as words;
/// punctuation dropped when `remove_punctuation`.
pub fn segment(text: &str, remove_punctuation: bool) -> Vec<String> {
    let text = text.to_lowercase();
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.trim().chars() {
        if remove_punctuation && is_punctuation(c) {
            continue;
        }
        if is_cjk(c) || is_punctuation(c) {
            word_tokenize(&run, &mut out);
            run.clear();
            out.push(c.to_string());
        } else {
            run.push(c);
        }
    }
    word_tokenize(&run, &mut out);
    out
}

/// The script's `remove_punctuation`: lower-cased, trimmed, punctuation characters removed.
pub fn remove_punctuation(text: &str) -> String {
    text.to_lowercase()
        .trim()
        .chars()
        .filter(|&c| !is_punctuation(c))
        .collect()
}

/// Length of the longest common substring (contiguous run) of two segment lists.
pub fn longest_common_substring(a: &[String], b: &[String]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut best = 0;
    for x in a {
        let mut row = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            if x == y {
                row[j + 1] = prev[j] + 1;
                best = best.max(row[j + 1]);
            }
        }
        prev = row;
    }
    best
}

/// One question's scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct QuestionScore {
    /// 1 if the prediction equals a gold answer (after punctuation removal), else 0.
    pub em: f64,
    /// The best F1 over the gold answers.
    pub f1: f64,
    /// Precision against the gold answer with the best F1.
    pub precision: f64,
    /// Recall against the gold answer with the best F1.
    pub recall: f64,
}

/// Scores `prediction` against the gold answers of one question.
pub fn score(golds: &[&str], prediction: &str) -> QuestionScore {
    let pred = segment(prediction, true);
    let pred_clean = remove_punctuation(prediction);
    let mut out = QuestionScore::default();
    for gold in golds {
        if remove_punctuation(gold) == pred_clean {
            out.em = 1.0;
        }
        let gold_segs = segment(gold, true);
        let lcs = longest_common_substring(&gold_segs, &pred);
        if lcs == 0 {
            continue;
        }
        let p = lcs as f64 / pred.len() as f64;
        let r = lcs as f64 / gold_segs.len() as f64;
        let f1 = 2.0 * p * r / (p + r);
        if f1 > out.f1 {
            (out.f1, out.precision, out.recall) = (f1, p, r);
        }
    }
    out
}

/// Corpus-level CMRC 2018 scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QaMetrics {
    /// Exact match, mean over questions.
    pub em: f64,
    /// F1, mean over questions.
    pub f1: f64,
    /// Precision, mean over questions.
    pub precision: f64,
    /// Recall, mean over questions.
    pub recall: f64,
    /// Questions evaluated.
    pub questions: usize,
    /// Questions the model gave no answer for (scored 0).
    pub unanswered: usize,
}

/// Accumulates question scores.
#[derive(Debug, Clone, Default)]
pub struct QaCounter {
    sum: QuestionScore,
    questions: usize,
    unanswered: usize,
}

impl QaCounter {
    /// Adds one question: its gold answer texts and the predicted text, if any.
    pub fn add(&mut self, golds: &[&str], prediction: Option<&str>) {
        self.questions += 1;
        let Some(prediction) = prediction else {
            self.unanswered += 1;
            return;
        };
        let s = score(golds, prediction);
        self.sum.em += s.em;
        self.sum.f1 += s.f1;
        self.sum.precision += s.precision;
        self.sum.recall += s.recall;
    }

    /// The means so far.
    pub fn metrics(&self) -> QaMetrics {
        let n = self.questions.max(1) as f64;
        QaMetrics {
            em: self.sum.em / n,
            f1: self.sum.f1 / n,
            precision: self.sum.precision / n,
            recall: self.sum.recall / n,
            questions: self.questions,
            unanswered: self.unanswered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(text: &str) -> Vec<String> {
        segment(text, true)
    }

    #[test]
    fn mixed_segmentation_splits_chinese_by_character_and_keeps_latin_words() {
        assert_eq!(
            segment("2010年Nexon开发", false),
            ["2010", "年", "nexon", "开", "发"]
        );
        assert_eq!(segs("《战国无双3》（）"), ["战", "国", "无", "双", "3"]);
        assert_eq!(segment("ω-force", false), ["ω", "-", "force"]);
        assert_eq!(segs("ω-force"), ["ωforce"]);
        assert_eq!(
            segs("  Hello World 3.5 (v2) "),
            ["hello", "world", "3.5", "(", "v2", ")"]
        );
    }

    #[test]
    fn f1_is_over_the_longest_common_substring_of_segments() {
        // gold 北京大学 (4), prediction 北京大学医学部 (7): lcs 4, P 4/7, R 1, F1 8/11.
        let s = score(&["北京大学"], "北京大学医学部");
        assert!((s.f1 - 8.0 / 11.0).abs() < 1e-12, "{s:?}");
        assert!((s.precision - 4.0 / 7.0).abs() < 1e-12 && s.recall == 1.0);
        assert_eq!(s.em, 0.0);
        // Substring, not subsequence: 北大 vs 北京大学 share only 北 or 大 contiguously.
        let s = score(&["北京大学"], "北大");
        assert!((s.f1 - 2.0 * 0.5 * 0.25 / 0.75).abs() < 1e-12, "{s:?}");
        // No overlap.
        assert_eq!(score(&["上海"], "北京").f1, 0.0);
        // Latin words count as one segment each: "Nexon公司" vs "Nexon": lcs 1, P 1, R 1/3.
        let s = score(&["Nexon公司"], "nexon");
        assert!((s.f1 - 0.5).abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn em_ignores_case_edges_and_punctuation_and_takes_the_best_gold() {
        let s = score(&["4分钟", "《4分钟》"], " 4分钟。");
        assert_eq!((s.em, s.f1), (1.0, 1.0));
        let s = score(&["踢爆", "踢爆数"], "踢爆数");
        assert_eq!((s.em, s.f1), (1.0, 1.0));
        // Inner spaces survive EM's normalisation.
        assert_eq!(score(&["New York"], "newyork").em, 0.0);
    }

    #[test]
    fn corpus_scores_average_over_questions_with_unanswered_as_zero() {
        let mut c = QaCounter::default();
        c.add(&["踢爆"], Some("踢爆"));
        c.add(&["北京大学"], Some("北京大学医学部"));
        c.add(&["上海"], None);
        let m = c.metrics();
        assert_eq!((m.questions, m.unanswered), (3, 1));
        assert!((m.em - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.f1 - (1.0 + 8.0 / 11.0) / 3.0).abs() < 1e-12);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
    }
}
