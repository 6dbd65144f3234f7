//! Compat mode against K-BERT itself: `tests/fixtures/kbert/compat.json` holds the outputs of
//! a re-implementation of the authors' `add_knowledge_with_vm` (dbiir/K-BERT) run on
//! hand-segmented sentences with a hand-made lookup table; every field must match exactly.
use serde::Deserialize;
use zhishi::knowledge::{
    flatten, knowledge_string, CharVocab, InjectionMode, KbertConfig, SentenceTree, TreeWord,
};

#[derive(Deserialize)]
struct Fixture {
    vocab: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    text: String,
    tree: Vec<FixtureWord>,
    max_entities: usize,
    max_length: usize,
    predicate: bool,
    tokens: Vec<String>,
    input_ids: Vec<u32>,
    soft_positions: Vec<u32>,
    knowledge_mask: Vec<u8>,
    visible_matrix: Vec<String>,
}

#[derive(Deserialize)]
struct FixtureWord {
    word: String,
    /// `[predicate, object]` pairs in lookup-table order.
    injected: Vec<[String; 2]>,
}

#[test]
fn compat_mode_matches_kbert_add_knowledge_with_vm() {
    let text = std::fs::read_to_string("tests/fixtures/kbert/compat.json").unwrap();
    let fixture: Fixture = serde_json::from_str(&text).unwrap();
    let vocab = CharVocab::from_tokens(fixture.vocab).unwrap();
    assert_eq!(fixture.cases.len(), 8);
    for case in fixture.cases {
        let tree = SentenceTree {
            words: case
                .tree
                .iter()
                .map(|w| TreeWord {
                    word: w.word.clone(),
                    injected: w
                        .injected
                        .iter()
                        .map(|[p, o]| knowledge_string(p, o, case.predicate))
                        .collect(),
                })
                .collect(),
        };
        assert_eq!(tree.text(), case.text, "{}", case.name);
        let config = KbertConfig::new(case.max_length)
            .max_entities(case.max_entities)
            .mode(InjectionMode::Compat);
        let input = flatten(&tree, &vocab, &config).unwrap();
        assert_eq!(input.tokens, case.tokens, "{}: tokens", case.name);
        assert_eq!(input.input_ids, case.input_ids, "{}: input_ids", case.name);
        assert_eq!(
            input.soft_positions, case.soft_positions,
            "{}: positions",
            case.name
        );
        assert_eq!(
            input.knowledge_mask, case.knowledge_mask,
            "{}: knowledge",
            case.name
        );
        let rows: Vec<String> = (0..input.visible.len())
            .map(|r| input.visible.row_string(r))
            .collect();
        assert_eq!(rows, case.visible_matrix, "{}: visible matrix", case.name);
    }
}
