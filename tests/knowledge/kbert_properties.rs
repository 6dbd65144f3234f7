//! Properties of K-BERT flattening over random sentence trees: the improved mode never gives
//! up sentence tokens for knowledge, visible matrices are symmetric with a true diagonal on
//! real tokens, and sentence tokens have strictly increasing soft positions.
use proptest::prelude::*;
use zhishi::knowledge::{flatten, CharVocab, InjectionMode, KbertConfig, SentenceTree, TreeWord};

const ALPHABET: &[char] = &['北', '京', '库', '克', '苹', '果', '城', '市', ' '];

fn text(max_len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ALPHABET), 0..=max_len)
        .prop_map(|chars| chars.into_iter().collect())
}

fn tree() -> impl Strategy<Value = SentenceTree> {
    let word = prop_oneof![
        9 => text(4).prop_filter("words are non-empty", |w| !w.is_empty()),
        1 => Just("[SEP]".to_string()),
    ];
    let tree_word = (word, prop::collection::vec(text(6), 0..4))
        .prop_map(|(word, injected)| TreeWord { word, injected });
    prop::collection::vec(tree_word, 0..10).prop_map(|words| SentenceTree { words })
}

fn vocab() -> CharVocab {
    CharVocab::from_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "北", "京"]).unwrap()
}

fn mode() -> impl Strategy<Value = InjectionMode> {
    prop_oneof![Just(InjectionMode::Improved), Just(InjectionMode::Compat)]
}

/// Sentence tokens the improved mode produces: `[CLS]`, non-whitespace characters (special
/// words count once), `[SEP]`.
fn improved_sentence_len(tree: &SentenceTree) -> usize {
    let words: usize = tree
        .words
        .iter()
        .map(|w| match w.word.as_str() {
            "[SEP]" => 1,
            word => word.chars().filter(|c| !c.is_whitespace()).count(),
        })
        .sum();
    words + 2
}

proptest! {
    #[test]
    fn improved_mode_never_drops_sentence_tokens_for_knowledge(
        tree in tree(), max_length in 2usize..40, max_entities in 0usize..4,
    ) {
        let config = KbertConfig::new(max_length).max_entities(max_entities);
        let input = flatten(&tree, &vocab(), &config).unwrap();
        let sentence_len = improved_sentence_len(&tree);
        let sentence_tokens = input.knowledge_mask[..input.real_len]
            .iter()
            .filter(|&&k| k == 0)
            .count();
        prop_assert_eq!(sentence_tokens, sentence_len.min(max_length));
        prop_assert_eq!(input.tokens[0].as_str(), "[CLS]");
        prop_assert_eq!(input.tokens[input.real_len - 1].as_str(), "[SEP]");
        if sentence_len <= max_length {
            // Every non-whitespace character keeps its own token, spelled the same; a
            // special word is one token found through its first character.
            let mut first_char = 0;
            for word in &tree.words {
                for (offset, c) in word.word.chars().enumerate() {
                    let mapped = input.char_to_token[first_char + offset];
                    let expected = if word.word == "[SEP]" {
                        (offset == 0).then(|| word.word.clone())
                    } else {
                        (!c.is_whitespace()).then(|| c.to_string())
                    };
                    prop_assert_eq!(mapped.map(|t| input.tokens[t].clone()), expected);
                    if let Some(token) = mapped {
                        prop_assert_eq!(input.knowledge_mask[token], 0);
                    }
                }
                first_char += word.word.chars().count();
            }
        }
    }

    #[test]
    fn visible_matrix_is_symmetric_with_a_true_diagonal(
        tree in tree(), max_length in 2usize..40, max_entities in 0usize..4, mode in mode(),
    ) {
        let config = KbertConfig::new(max_length).max_entities(max_entities).mode(mode);
        let input = flatten(&tree, &vocab(), &config).unwrap();
        prop_assert_eq!(input.visible.len(), max_length);
        prop_assert!(input.visible.is_symmetric());
        for i in 0..input.real_len {
            prop_assert!(input.visible.get(i, i), "token {} does not see itself", i);
        }
    }

    #[test]
    fn sentence_soft_positions_strictly_increase(
        tree in tree(), max_length in 2usize..40, max_entities in 0usize..4, mode in mode(),
    ) {
        let config = KbertConfig::new(max_length).max_entities(max_entities).mode(mode);
        let input = flatten(&tree, &vocab(), &config).unwrap();
        let positions: Vec<u32> = (0..input.real_len)
            .filter(|&i| input.knowledge_mask[i] == 0)
            .map(|i| input.soft_positions[i])
            .collect();
        prop_assert!(positions.windows(2).all(|p| p[0] < p[1]), "{:?}", positions);
        // Without knowledge in the way, sentence tokens sit at 0, 1, 2, ...
        prop_assert!(positions.iter().zip(0u32..).all(|(&p, i)| p == i));
    }
}
