//! Compat mode against K-BERT itself. The fixtures hold the outputs of a re-implementation of
//! the authors' `add_knowledge_with_vm` (dbiir/K-BERT, `brain/knowgraph.py`), given the
//! segmentation and a lookup table in file order:
//! * `compat.json`: hand-made sentences and triples covering two anchors with two branches,
//!   predicates on/off, `max_entities`, truncation after injection (also inside a branch),
//!   special tags, whitespace, unknown characters and duplicate knowledge;
//! * `compat_medical.json`: twelve sentences of K-BERT's medical NER dev set with knowledge
//!   from K-BERT's Medical.spo + HowNet.spo, at L = 48 and 64 (many are cut).
//!
//! Every field must match exactly.
use serde::Deserialize;
use zhishi::knowledge::{
    flatten, knowledge_string, CharVocab, InjectionMode, KbertConfig, KbertInput, SentenceTree,
    TreeWord,
};

#[derive(Deserialize)]
struct Expected {
    tokens: Vec<String>,
    soft_positions: Vec<u32>,
    knowledge_mask: Vec<u8>,
    visible_matrix: Vec<String>,
}

fn assert_matches(input: &KbertInput, expected: &Expected, name: &str) {
    assert_eq!(input.tokens, expected.tokens, "{name}: tokens");
    assert_eq!(
        input.soft_positions, expected.soft_positions,
        "{name}: positions"
    );
    assert_eq!(
        input.knowledge_mask, expected.knowledge_mask,
        "{name}: knowledge"
    );
    let rows: Vec<String> = (0..input.visible.len())
        .map(|r| input.visible.row_string(r))
        .collect();
    assert_eq!(rows, expected.visible_matrix, "{name}: visible matrix");
}

fn compat(max_length: usize, max_entities: usize) -> KbertConfig {
    KbertConfig::new(max_length)
        .max_entities(max_entities)
        .mode(InjectionMode::Compat)
}

#[derive(Deserialize)]
struct HandMade {
    vocab: Vec<String>,
    cases: Vec<HandMadeCase>,
}

#[derive(Deserialize)]
struct HandMadeCase {
    name: String,
    text: String,
    /// Words with `[predicate, object]` pairs in lookup-table order.
    tree: Vec<PairWord>,
    max_entities: usize,
    max_length: usize,
    predicate: bool,
    input_ids: Vec<u32>,
    #[serde(flatten)]
    expected: Expected,
}

#[derive(Deserialize)]
struct PairWord {
    word: String,
    injected: Vec<[String; 2]>,
}

#[test]
fn compat_mode_matches_kbert_on_hand_made_trees() {
    let text = std::fs::read_to_string("tests/fixtures/kbert/compat.json").unwrap();
    let fixture: HandMade = serde_json::from_str(&text).unwrap();
    let vocab = CharVocab::from_tokens(fixture.vocab).unwrap();
    assert_eq!(fixture.cases.len(), 8);
    for case in fixture.cases {
        let words = case.tree.iter().map(|w| TreeWord {
            word: w.word.clone(),
            injected: w
                .injected
                .iter()
                .map(|[p, o]| knowledge_string(p, o, case.predicate))
                .collect(),
        });
        let tree = SentenceTree {
            words: words.collect(),
        };
        assert_eq!(tree.text(), case.text, "{}", case.name);
        let config = compat(case.max_length, case.max_entities);
        let input = flatten(&tree, &vocab, &config).unwrap();
        assert_matches(&input, &case.expected, &case.name);
        assert_eq!(input.input_ids, case.input_ids, "{}: input_ids", case.name);
    }
}

#[derive(Deserialize)]
struct Medical {
    cases: Vec<MedicalCase>,
}

#[derive(Deserialize)]
struct MedicalCase {
    text: String,
    tree: Vec<StringWord>,
    max_entities: usize,
    max_length: usize,
    #[serde(flatten)]
    expected: Expected,
}

#[derive(Deserialize)]
struct StringWord {
    word: String,
    injected: Vec<String>,
}

#[test]
fn compat_mode_matches_kbert_on_medical_sentences() {
    let text = std::fs::read_to_string("tests/fixtures/kbert/compat_medical.json").unwrap();
    let fixture: Medical = serde_json::from_str(&text).unwrap();
    let vocab = CharVocab::from_tokens(["[PAD]", "[UNK]", "[CLS]"]).unwrap();
    assert_eq!(fixture.cases.len(), 12);
    for case in fixture.cases {
        let words = case.tree.into_iter().map(|w| TreeWord {
            word: w.word,
            injected: w.injected,
        });
        let tree = SentenceTree {
            words: words.collect(),
        };
        assert_eq!(tree.text(), case.text);
        let input = flatten(&tree, &vocab, &compat(case.max_length, case.max_entities)).unwrap();
        assert_matches(&input, &case.expected, &case.text);
    }
}
