//! QA featurization: `[CLS] question [SEP] window [SEP]` with segment ids, windows with a
//! stride that cover the whole context, and character offsets that round-trip through
//! Latin word pieces, digits and whitespace back to the original context.
use zhishi::doc::{Document, Span};
use zhishi::model::BertTokenizer;
use zhishi::stages::qa::config::WindowOptions;
use zhishi::stages::qa::features::{token_span, QaFeaturizer, Window};

const VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "nex", "##on", "19", "##94", "年", "在", "东", "京", "成",
    "立", "于", "总", "部", "，", "。", "哪", "？", "公", "司",
];

fn featurizer(
    max_len: usize,
    doc_stride: usize,
    max_query_len: usize,
) -> (tempfile::TempDir, QaFeaturizer) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vocab.txt"), VOCAB.join("\n")).unwrap();
    let tokenizer = BertTokenizer::from_dir(dir.path()).unwrap();
    let window = WindowOptions {
        max_len,
        doc_stride,
        max_query_len,
    };
    (dir, QaFeaturizer::new(tokenizer, window).unwrap())
}

/// Context with a Latin word split into pieces, digits, double spaces and a tab.
const CONTEXT: &str = "Nexon  公司成立于 1994年，\t总部在东京。";

#[test]
fn context_offsets_round_trip_through_pieces_digits_and_whitespace() {
    let (_dir, f) = featurizer(64, 16, 8);
    let pieces = f.pieces(CONTEXT).unwrap();
    let doc = Document::new(CONTEXT);
    let texts: Vec<&str> = pieces
        .offsets
        .iter()
        .map(|&(s, e)| doc.span_text(Span::new(s, e)).unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Nex", "on", "公", "司", "成", "立", "于", "19", "94", "年", "，", "总", "部", "在",
            "东", "京", "。"
        ]
    );
    // The answer 1994年 (characters 13..18) is tokens 7..=9, and back.
    assert_eq!(doc.span_text(Span::new(13, 18)), Some("1994年"));
    let (first, last) = token_span(&pieces.offsets, Span::new(13, 18)).unwrap();
    assert_eq!((first, last), (7, 9));
    let windows = f
        .encode(0, "哪年成立？", CONTEXT, Some(Span::new(13, 18)))
        .unwrap();
    assert_eq!(windows.len(), 1);
    let w = &windows[0];
    let back = w.char_span(
        w.start as usize - w.context_start,
        w.end as usize - w.context_start,
    );
    assert_eq!(back, Span::new(13, 18));
}

#[test]
fn inputs_are_cls_question_sep_window_sep_with_segment_ids() {
    let (_dir, f) = featurizer(64, 16, 3);
    // The question 总部在哪？ (5 tokens) is cut to 3.
    let w = &f.encode(4, "总部在哪？", "东京。", None).unwrap()[0];
    let id = |t: &str| VOCAB.iter().position(|v| *v == t).unwrap() as u32;
    assert_eq!(
        w.input.input_ids,
        [
            id("[CLS]"),
            id("总"),
            id("部"),
            id("在"),
            id("[SEP]"),
            id("东"),
            id("京"),
            id("。"),
            id("[SEP]")
        ]
    );
    assert_eq!(w.input.token_types, [0, 0, 0, 0, 0, 1, 1, 1, 1]);
    assert_eq!(w.input.positions, (0..9).collect::<Vec<u32>>());
    assert_eq!((w.record, w.context_start, w.start, w.end), (4, 5, 0, 0));
}

#[test]
fn long_contexts_are_windowed_with_a_stride_and_labels_point_at_cls_outside() {
    // max_len 10 with a 2-token question leaves 5 context tokens per window.
    let (_dir, f) = featurizer(10, 3, 2);
    assert_eq!(f.windows(17, 2), [(0, 5), (3, 5), (6, 5), (9, 5), (12, 5)]);
    assert_eq!(f.windows(3, 2), [(0, 3)]);
    assert_eq!(f.windows(0, 2), [(0, 0)]);
    // 东京 is context tokens 14..=15.
    let windows: Vec<Window> = f
        .encode(0, "哪？", CONTEXT, Some(Span::new(23, 25)))
        .unwrap();
    assert_eq!(windows.len(), 5);
    let pieces = f.pieces(CONTEXT).unwrap();
    let mut covered = vec![0; pieces.offsets.len()];
    for w in &windows {
        assert!(w.len() <= 10);
        for offsets in &w.offsets {
            let i = pieces.offsets.iter().position(|o| o == offsets).unwrap();
            covered[i] += 1;
        }
    }
    assert!(covered.iter().all(|&c| c >= 1), "{covered:?}");
    // Only the last window (tokens 12..17) holds 东京: labels 4 + (14 - 12) and 4 + (15 - 12).
    let labels: Vec<(u32, u32)> = windows.iter().map(|w| (w.start, w.end)).collect();
    assert_eq!(labels, [(0, 0), (0, 0), (0, 0), (0, 0), (6, 7)]);
    let last = &windows[4];
    let span = last.char_span(2, 3);
    assert_eq!(Document::new(CONTEXT).span_text(span), Some("东京"));
}

#[test]
fn a_window_too_small_for_the_question_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vocab.txt"), VOCAB.join("\n")).unwrap();
    let tokenizer = BertTokenizer::from_dir(dir.path()).unwrap();
    let window = WindowOptions {
        max_len: 10,
        doc_stride: 4,
        max_query_len: 8,
    };
    let err = QaFeaturizer::new(tokenizer, window).err().unwrap();
    assert!(err.contains("max_query_len"), "{err}");
}
