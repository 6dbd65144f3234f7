//! Relation-extraction inputs as specifications: the SanWen and DuIE readers (real lines from
//! the shared data, malformed lines reported with file and line), ERNIE-THU entity markers
//! and their token offsets (plain, nested, windowed, with K-BERT knowledge), and the metrics
//! against hand-computed values.
use std::path::Path;

use zhishi::doc::{Document, Span};
use zhishi::knowledge::CharVocab;
use zhishi::stages::relation::data::{parse_duie, parse_sanwen, read, DataFormat};
use zhishi::stages::relation::features::Featurizer;
use zhishi::stages::relation::metrics::score;
use zhishi::stages::task::Injection;
use zhishi::text::{annotate, LinkOptions, Linker, MemoryKg};

use crate::support::shared_data;
use shared_data::shared_data;

fn chars(s: &str) -> Vec<String> {
    s.chars().map(String::from).collect()
}

fn spans(e: &zhishi::stages::relation::RelationExample) -> ((usize, usize), (usize, usize)) {
    ((e.head.start, e.head.end), (e.tail.start, e.tail.end))
}

#[test]
fn reads_real_sanwen_lines_with_character_offsets() {
    let Some(path) = shared_data("re/sanwen/train.txt") else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let first: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
    let corpus = parse_sanwen(&first, &path).unwrap();
    assert_eq!(corpus.examples.len(), 5);
    // 幽兰	山谷	Located	“幽兰在山谷，本自无人识。
    let e = &corpus.examples[0];
    assert_eq!((e.label.as_str(), e.line), ("Located", 1));
    assert_eq!(spans(e), ((1, 3), (4, 6)));
    // 母亲	母亲<N>岁时	unknown: the tail contains the head; both start at 母.
    let e = &corpus.examples[2];
    assert_eq!(spans(e), ((9, 11), (9, 16)));
    assert_eq!(corpus.ambiguous, 0);

    let all = read(&path, DataFormat::Sanwen, "unknown", 0).unwrap();
    assert_eq!(all.examples.len(), 17_227);
}

#[test]
fn a_repeated_name_resolves_to_the_closest_occurrence_and_is_counted() {
    // 母亲 occurs at 0 and 7; 奶奶 at 4: the second 母亲 is nearer.
    let corpus = parse_sanwen(
        "母亲\t奶奶\tFamily\t母亲说，奶奶和母亲都老了\n",
        Path::new("x.txt"),
    )
    .unwrap();
    assert_eq!(spans(&corpus.examples[0]), ((7, 9), (4, 6)));
    assert_eq!(corpus.ambiguous, 1);
    // The same name as head and tail takes two different occurrences.
    let corpus = parse_sanwen(
        "小船\t小船\tunknown\t小船在河里，我们坐在小船上\n",
        Path::new("x.txt"),
    )
    .unwrap();
    assert_eq!(spans(&corpus.examples[0]), ((0, 2), (10, 12)));
}

#[test]
fn malformed_sanwen_lines_are_reported_with_file_and_line() {
    let path = Path::new("bad.txt");
    let err = parse_sanwen(
        "幽兰\t山谷\tLocated\t幽兰在山谷\n\n幽兰\t山谷\tLocated\n",
        path,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad.txt:3: expected 4 tab-separated fields `head<TAB>tail<TAB>relation<TAB>sentence`, found 3"
    );
    let err = parse_sanwen("幽兰\t海洋\tLocated\t幽兰在山谷\n", path).unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad.txt:1: tail \"海洋\" does not occur in the sentence \"幽兰在山谷\""
    );
    let err = parse_sanwen("幽兰\t山谷\t \t幽兰在山谷\n", path).unwrap_err();
    assert_eq!(err.to_string(), "bad.txt:1: empty relation");
}

#[test]
fn reads_duie_spo_lists_with_capped_negatives() {
    // The real first line when the shared data is there; the hand-written lines below run
    // either way.
    if let Some(path) = shared_data("re/duie_sample/train_data_5000.json") {
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap();
        // 《邪少兵王》是冰火未央写的网络小说连载于旗峰天下: 作者(邪少兵王, 冰火未央).
        let corpus = parse_duie(first, &path, "NA", 2).unwrap();
        let labels: Vec<&str> = corpus.examples.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["作者", "NA"]);
        assert_eq!(spans(&corpus.examples[0]), ((1, 5), (7, 11)));
        assert_eq!(spans(&corpus.examples[1]), ((7, 11), (1, 5)));
    }

    let line = r#"{"text": "张三是李四的父亲，住在北京", "spo_list": [{"predicate": "父亲", "subject": "李四", "object": {"@value": "张三"}}, {"predicate": "居住地", "subject": "张三", "object": "北京"}]}"#;
    let corpus = parse_duie(line, Path::new("d.json"), "NA", 2).unwrap();
    let labels: Vec<&str> = corpus.examples.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["父亲", "居住地", "NA", "NA"]);
    // Negatives are the closest unrelated pairs: (张三, 李四), then (李四, 北京).
    assert_eq!(spans(&corpus.examples[2]), ((0, 2), (3, 5)));
    assert_eq!(spans(&corpus.examples[3]), ((3, 5), (11, 13)));
    let none = parse_duie(line, Path::new("d.json"), "NA", 0).unwrap();
    assert_eq!(none.examples.len(), 2);

    let err = parse_duie(
        "{\"text\": \"x\"}\n{\"spo_list\": []}\n",
        Path::new("d.json"),
        "NA",
        2,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("d.json:2: expected a JSON object"),
        "{err}"
    );
}

fn vocab() -> CharVocab {
    let mut tokens: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "#", "$"]
        .map(String::from)
        .to_vec();
    tokens.extend(chars("幽兰在山谷母亲岁时姥去世了北京大学天安门"));
    CharVocab::from_tokens(tokens).unwrap()
}

fn tokens(
    f: &Featurizer,
    text: &str,
    head: (usize, usize),
    tail: (usize, usize),
) -> (String, usize, usize) {
    tokens_of(f, &Document::new(text), head, tail)
}

/// The tokens of the pair in `doc` (with its knowledge) and the two marker positions.
fn tokens_of(
    f: &Featurizer,
    doc: &Document,
    head: (usize, usize),
    tail: (usize, usize),
) -> (String, usize, usize) {
    let (e, _) = f
        .encode(doc, Span::new(head.0, head.1), Span::new(tail.0, tail.1), 0)
        .unwrap();
    let v = vocab();
    let names: Vec<String> = {
        let mut all: Vec<(u32, String)> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "#", "$"]
            .iter()
            .map(|t| t.to_string())
            .chain(chars("幽兰在山谷母亲岁时姥去世了北京大学天安门"))
            .map(|t| (zhishi::knowledge::TokenIds::token_id(&v, &t), t))
            .collect();
        all.sort();
        all.into_iter().map(|(_, t)| t).collect()
    };
    let text: Vec<&str> = e
        .input
        .input_ids
        .iter()
        .map(|&i| names[i as usize].as_str())
        .collect();
    (text.join(" "), e.head_token, e.tail_token)
}

#[test]
fn markers_wrap_head_and_tail_and_point_the_classifier_at_them() {
    let f = Featurizer::new(vocab(), ["#", "$"], 32, Injection::plain()).unwrap();
    assert_eq!(
        tokens(&f, "幽兰在山谷", (0, 2), (3, 5)),
        ("[CLS] # 幽 兰 # 在 $ 山 谷 $ [SEP]".to_string(), 1, 6)
    );
    // Tail before head.
    assert_eq!(
        tokens(&f, "幽兰在山谷", (3, 5), (0, 2)),
        ("[CLS] $ 幽 兰 $ 在 # 山 谷 # [SEP]".to_string(), 6, 1)
    );
    // Nested: the outer tail opens first and closes last.
    assert_eq!(
        tokens(&f, "母亲岁时", (0, 2), (0, 4)),
        ("[CLS] $ # 母 亲 # 岁 时 $ [SEP]".to_string(), 2, 1)
    );
    let (e, _) = f
        .encode(
            &Document::new("幽兰在山谷"),
            Span::new(0, 2),
            Span::new(3, 5),
            0,
        )
        .unwrap();
    assert_eq!(e.input.positions, (0..11).collect::<Vec<u32>>());
    assert!(e.input.visible.is_none());
    assert!(f
        .encode(&Document::new("幽兰"), Span::new(0, 2), Span::new(1, 3), 0)
        .is_err());
}

#[test]
fn long_sentences_keep_both_arguments_in_the_window() {
    // max_len 14: 8 characters besides [CLS], [SEP] and the four markers.
    let f = Featurizer::new(vocab(), ["#", "$"], 14, Injection::plain()).unwrap();
    let text = "姥姥去世了去世了幽兰在山谷去世了";
    assert_eq!(f.window(16, Span::new(8, 10), Span::new(11, 13)), [(7, 15)]);
    assert_eq!(
        tokens(&f, text, (8, 10), (11, 13)),
        (
            "[CLS] 了 # 幽 兰 # 在 $ 山 谷 $ 去 世 [SEP]".to_string(),
            2,
            7
        )
    );
    // Too far apart for one window: half a window around each argument.
    assert_eq!(
        f.window(16, Span::new(0, 2), Span::new(13, 15)),
        [(0, 4), (12, 16)]
    );
    assert_eq!(
        tokens(&f, text, (0, 2), (13, 15)),
        (
            "[CLS] # 姥 姥 # 去 世 谷 $ 去 世 $ 了 [SEP]".to_string(),
            1,
            8
        )
    );
}

#[test]
fn kbert_knowledge_follows_the_mention_and_markers_stay_sentence_tokens() {
    let kg = MemoryKg::from_triples([("北京", "类型", "大学")]);
    let options = LinkOptions {
        nil_threshold: 0.0,
        ..Default::default()
    };
    let doc = annotate(&Linker::build(kg, options).unwrap(), "北京天安门", 1).unwrap();
    let f = Featurizer::new(vocab(), ["#", "$"], 32, Injection::kbert(1, false)).unwrap();
    let (text, head, tail) = tokens_of(&f, &doc, (0, 2), (2, 5));
    // 大学 hangs after 北京's last character, inside the head's markers.
    assert_eq!(text, "[CLS] # 北 京 大 学 # $ 天 安 门 $ [SEP]");
    assert_eq!((head, tail), (1, 7));
    let (e, injected) = f.encode(&doc, Span::new(0, 2), Span::new(2, 5), 0).unwrap();
    assert_eq!(injected, [0], "the fact about 北京 was fed to the model");
    // The branch takes the positions after 京 (4, 5); the sentence continues from 4.
    assert_eq!(e.input.positions, [0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 10]);
    let vis = e.input.visible.unwrap();
    assert!(vis.get(2, 4) && !vis.get(8, 4), "北 sees 大, 天 does not");
    assert!(
        vis.get(1, 8) && vis.get(7, 1),
        "markers are sentence tokens"
    );
}

#[test]
fn metrics_match_hand_computed_values() {
    let labels: Vec<String> = ["unknown", "Family", "Located"].map(String::from).to_vec();
    //            gold:      F  F  L  L  L  u  u
    //            predicted: F  L  L  L  u  u  F
    let gold = [1, 1, 2, 2, 2, 0, 0];
    let predicted = [1, 2, 2, 2, 0, 0, 1];
    let m = score(&labels, 0, &gold, &predicted);
    // Relations: gold 5, predicted 5, correct 3 (F, L, L).
    assert_eq!((m.gold, m.predicted, m.correct), (5, 5, 3));
    assert!((m.precision - 0.6).abs() < 1e-12 && (m.recall - 0.6).abs() < 1e-12);
    assert!((m.f1 - 0.6).abs() < 1e-12);
    assert!((m.accuracy - 4.0 / 7.0).abs() < 1e-12);
    let f = &m.per_label["Family"];
    // Family: gold 2, predicted 2 (one wrong), correct 1.
    assert_eq!((f.gold, f.predicted, f.correct), (2, 2, 1));
    let l = &m.per_label["Located"];
    assert!((l.precision - 2.0 / 3.0).abs() < 1e-12 && (l.recall - 2.0 / 3.0).abs() < 1e-12);
    assert!(!m.per_label.contains_key("unknown"));
    // Nothing predicted: precision 0 (not NaN), F1 0.
    let m = score(&labels, 0, &[1, 2], &[0, 0]);
    assert_eq!(
        (m.precision, m.recall, m.f1, m.accuracy),
        (0.0, 0.0, 0.0, 0.0)
    );
}

#[test]
fn doccano_and_label_studio_relations_become_examples_with_closest_negatives() {
    use zhishi::stages::annotation::{OffsetUnit, ReadOptions};
    use zhishi::stages::relation::data::read_with;
    let dir = tempfile::tempdir().unwrap();
    // 🙂 takes two UTF-16 code units in doccano's offsets: 姚明 is [1, 3) in characters.
    let doccano = dir.path().join("re.jsonl");
    std::fs::write(
        &doccano,
        r#"{"text": "🙂姚明出生于上海，叶莉也是。", "entities": [{"id": 1, "label": "PER", "start_offset": 2, "end_offset": 4}, {"id": 2, "label": "LOC", "start_offset": 7, "end_offset": 9}, {"id": 3, "label": "PER", "start_offset": 10, "end_offset": 12}], "relations": [{"id": 9, "from_id": 1, "to_id": 2, "type": "出生地"}]}"#,
    )
    .unwrap();
    let corpus = read_with(
        &doccano,
        DataFormat::Doccano,
        "unknown",
        2,
        ReadOptions::default(),
    )
    .unwrap();
    let got: Vec<(Span, Span, &str)> = corpus
        .examples
        .iter()
        .map(|e| (e.head, e.tail, e.label.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Span::new(1, 3), Span::new(6, 8), "出生地"),
            (Span::new(6, 8), Span::new(9, 11), "unknown"),
            (Span::new(9, 11), Span::new(6, 8), "unknown"),
        ]
    );
    let chars = ReadOptions {
        offsets: Some(OffsetUnit::Chars),
        use_predictions: false,
    };
    // Read as characters, the same numbers point one character further.
    let shifted = read_with(&doccano, DataFormat::Doccano, "unknown", 2, chars).unwrap();
    assert_eq!(shifted.examples[0].head, Span::new(2, 4));

    let ls = dir.path().join("re.json");
    std::fs::write(
        &ls,
        r#"[{"data": {"text": "姚明出生于上海"}, "annotations": [{"result": [
            {"id": "a", "type": "labels", "value": {"start": 0, "end": 2, "text": "姚明", "labels": ["PER"]}},
            {"id": "b", "type": "labels", "value": {"start": 5, "end": 7, "text": "上海", "labels": ["LOC"]}},
            {"type": "relation", "from_id": "a", "to_id": "b", "labels": ["出生地"]}]}]}]"#,
    )
    .unwrap();
    let corpus = read_with(
        &ls,
        DataFormat::LabelStudio,
        "unknown",
        0,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(corpus.examples.len(), 1);
    assert_eq!(corpus.examples[0].label, "出生地");
}
