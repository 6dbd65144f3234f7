//! The SQuAD v1 reader on real CMRC 2018 records and on malformed input: answers keep their
//! character spans, wrong `answer_start`s are reported (and moved where the text is), and
//! bad files are errors naming the file and the question or JSON path.
use std::path::{Path, PathBuf};

use crate::support::shared_data;
use shared_data::shared_data;

use zhishi::doc::{Document, Span};
use zhishi::stages::qa::data::{parse, read};

/// The CMRC 2018 trial set, or `None` (skip) without the shared data.
fn trial() -> Option<PathBuf> {
    shared_data("qa/cmrc2018/cmrc2018_trial.json")
}

#[test]
fn a_real_cmrc_record_reads_with_character_spans() {
    let Some(trial) = trial() else {
        return;
    };
    let set = read(&trial).unwrap();
    assert_eq!(set.records.len(), 1002);
    let q = &set.records[0];
    assert_eq!(q.id, "TRIAL_800_QUERY_0");
    assert_eq!(q.question, "生命数耗完即算为什么？");
    assert_eq!(q.answers.len(), 1);
    assert_eq!(q.answers[0].text, "踢爆");
    assert_eq!(q.answers[0].span, Some(Span::new(127, 129)));
    let doc = Document::new(q.context.clone());
    assert_eq!(doc.span_text(Span::new(127, 129)), Some("踢爆"));
    // Every located answer's span holds its text.
    for r in &set.records {
        let doc = Document::new(r.context.clone());
        for a in &r.answers {
            if let Some(span) = a.span {
                assert_eq!(doc.span_text(span), Some(a.text.as_str()), "{}", r.id);
            }
        }
    }
}

#[test]
fn offsets_counted_past_an_astral_character_are_reported_and_moved() {
    // TRIAL_210's context has 𫚭 (outside the BMP) before the answer; the file's offsets
    // count it twice (UTF-16), so answer_start is one too far.
    let Some(trial) = trial() else {
        return;
    };
    let set = read(&trial).unwrap();
    let issue = set
        .issues
        .iter()
        .find(|i| i.id == "TRIAL_210_QUERY_0")
        .expect("the wrong offset is reported");
    assert_eq!((issue.given_start, issue.found_start), (14, Some(13)));
    assert!(issue.to_string().contains("TRIAL_210_QUERY_0"));
    let q = set
        .records
        .iter()
        .find(|r| r.id == "TRIAL_210_QUERY_0")
        .unwrap();
    assert_eq!(q.answers[0].span, Some(Span::new(13, 17)));
    let summary = set.summary();
    assert_eq!(summary.moved, set.issues.len());
    assert_eq!(summary.not_in_context, 0);
    // TRIAL_20_QUERY_0 and TRIAL_776_QUERY_4 have empty questions: kept, counted.
    assert_eq!(summary.empty_questions, 2);
}

fn squad(qas: &str) -> String {
    format!(
        r#"{{"version": "v1.0", "data": [{{"title": "t", "paragraphs": [
            {{"context": "北京是中国的首都。", "qas": [{qas}]}}]}}]}}"#
    )
}

#[test]
fn answers_not_in_the_context_are_kept_for_evaluation_and_reported() {
    let text = squad(
        r#"{"id": "Q1", "question": "中国的首都是哪里？",
            "answers": [{"text": "北京", "answer_start": 0}, {"text": "北京市", "answer_start": -1}]}"#,
    );
    let set = parse(Path::new("toy.json"), &text).unwrap();
    let answers = &set.records[0].answers;
    assert_eq!(answers[0].span, Some(Span::new(0, 2)));
    assert_eq!(
        (answers[1].text.as_str(), answers[1].span),
        ("北京市", None)
    );
    assert_eq!(set.issues.len(), 1);
    assert_eq!((set.issues[0].answer, set.issues[0].found_start), (1, None));
    assert!(set.issues[0].to_string().contains("not in the context"));
}

#[test]
fn malformed_files_name_the_file_and_where() {
    let err = |text: &str| parse(Path::new("bad.json"), text).unwrap_err().to_string();
    // A missing field: the JSON path of the question.
    let msg = err(&squad(r#"{"id": "Q1", "answers": []}"#));
    assert!(
        msg.contains("bad.json")
            && msg.contains("data[0].paragraphs[0].qas[0]")
            && msg.contains("question"),
        "{msg}"
    );
    // Wrong type.
    let msg = err(&squad(
        r#"{"id": "Q1", "question": "哪里？", "answers": [{"text": "北京", "answer_start": "0"}]}"#,
    ));
    assert!(msg.contains("answer_start"), "{msg}");
    // Not JSON at all: the line.
    let msg = err("{\n\"data\": [\n oops");
    assert!(msg.contains("bad.json") && msg.contains("line 3"), "{msg}");
    // Duplicate ids name the question.
    let q = r#"{"id": "Q1", "question": "哪里？", "answers": []}"#;
    let msg = err(&squad(&format!("{q}, {q}")));
    assert!(
        msg.contains("question Q1") && msg.contains("duplicate"),
        "{msg}"
    );
    // A missing file.
    let msg = read(Path::new("/nonexistent/cmrc.json"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("/nonexistent/cmrc.json"), "{msg}");
}
