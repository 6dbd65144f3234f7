//! K-BERT sentence trees in the paper's worked-example style ("Tim Cook is visiting Beijing
//! now", here 库克今天访问北京 with two anchors and two branches each): exact tokens, soft
//! positions and visible rows, in both modes.
use zhishi::knowledge::{
    flatten, CharVocab, InjectionMode, KbertConfig, KbertError, KbertInput, SentenceTree,
};

fn vocab() -> CharVocab {
    let mut tokens = vec!["[PAD]", "[UNK]", "[CLS]", "[SEP]"];
    tokens.extend(["库", "克", "今", "天", "访", "问", "北", "京", "苹", "果"]);
    CharVocab::from_tokens(tokens).unwrap()
}

/// 库克 -> {苹果, 美国人}; 北京 -> {首都, 城市}.
fn cook_visits_beijing() -> SentenceTree {
    SentenceTree::new()
        .word("库克", ["苹果", "美国人"])
        .plain("今天")
        .plain("访问")
        .word("北京", ["首都", "城市"])
}

fn rows(input: &KbertInput) -> Vec<String> {
    (0..input.visible.len())
        .map(|r| input.visible.row_string(r))
        .collect()
}

#[test]
fn improved_mode_flattens_the_worked_example() {
    let input = flatten(&cook_visits_beijing(), &vocab(), &KbertConfig::new(20)).unwrap();
    assert_eq!(
        input.tokens.join(" "),
        "[CLS] 库 克 苹 果 美 国 人 今 天 访 问 北 京 首 都 城 市 [SEP] [PAD]"
    );
    // Branches continue from the anchor (克 = 2, 京 = 8), siblings share positions and the
    // sentence goes on as if no knowledge were there.
    assert_eq!(
        input.soft_positions,
        [0, 1, 2, 3, 4, 3, 4, 5, 3, 4, 5, 6, 7, 8, 9, 10, 9, 10, 9, 19]
    );
    assert_eq!(
        input.knowledge_mask,
        [0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    );
    assert_eq!(input.input_ids[..5], [2, 4, 5, 12, 13]);
    assert_eq!(input.input_ids[5], 1, "美 is not in the vocabulary");
    assert_eq!(input.input_ids[19], 0);
    let rows = rows(&input);
    //                    [CLS]库克苹果美国人今天访问北京首都城市[SEP][PAD]
    assert_eq!(rows[0], "11100000111111000010"); // [CLS]: the sentence only
    assert_eq!(rows[1], "11111111111111000010"); // 库: sentence + its branches
    assert_eq!(rows[3], "01111000000000000000"); // 苹: own branch + anchor 库克
    assert_eq!(rows[5], "01100111000000000000"); // 美: own branch + anchor, not 苹果
    assert_eq!(rows[8], "11100000111111000010"); // 今: no branches of its own
    assert_eq!(rows[12], "11100000111111111110"); // 北: sentence + 首都城市
    assert_eq!(rows[16], "00000000000011001100"); // 城: 北京 + 城市
    assert_eq!(rows[18], rows[0]); // [SEP] is a sentence token
    assert_eq!(rows[19], "00000000000000000001"); // padding sees itself only
    assert_eq!(input.char_to_token, [1, 2, 8, 9, 10, 11, 12, 13].map(Some));
    assert_eq!(input.real_len, 19);
}

#[test]
fn improved_mode_drops_lowest_ranked_knowledge_not_sentence() {
    // 10 sentence tokens leave room for 6 knowledge tokens: both best strings (苹果, 首都)
    // fit, the second-ranked 美国人 does not, so every second-ranked string goes.
    let input = flatten(&cook_visits_beijing(), &vocab(), &KbertConfig::new(16)).unwrap();
    assert_eq!(
        input.tokens.join(" "),
        "[CLS] 库 克 苹 果 今 天 访 问 北 京 首 都 [SEP] [PAD] [PAD]"
    );
    assert_eq!(
        input.soft_positions,
        [0, 1, 2, 3, 4, 3, 4, 5, 6, 7, 8, 9, 10, 9, 15, 15]
    );
    // Too short for any knowledge: the whole sentence still fits.
    let input = flatten(&cook_visits_beijing(), &vocab(), &KbertConfig::new(11)).unwrap();
    assert_eq!(
        input.tokens.join(" "),
        "[CLS] 库 克 今 天 访 问 北 京 [SEP] [PAD]"
    );
}

#[test]
fn improved_mode_cuts_an_overlong_sentence_but_keeps_sep() {
    let input = flatten(&cook_visits_beijing(), &vocab(), &KbertConfig::new(5)).unwrap();
    assert_eq!(input.tokens, ["[CLS]", "库", "克", "今", "[SEP]"]);
    assert_eq!(input.soft_positions, [0, 1, 2, 3, 4]);
    assert_eq!(
        input.char_to_token,
        [Some(1), Some(2), Some(3), None, None, None, None, None]
    );
    assert!(rows(&input).iter().all(|r| r == "11111"));
}

#[test]
fn compat_mode_truncates_after_injection_like_kbert() {
    let config = KbertConfig::new(17).mode(InjectionMode::Compat);
    let input = flatten(&cook_visits_beijing(), &vocab(), &config).unwrap();
    // No [SEP]; the sequence is cut at 17 tokens, in the middle of the branch 城市.
    assert_eq!(
        input.tokens.join(" "),
        "[CLS] 库 克 苹 果 美 国 人 今 天 访 问 北 京 首 都 城"
    );
    let config = KbertConfig::new(12).mode(InjectionMode::Compat);
    let input = flatten(&cook_visits_beijing(), &vocab(), &config).unwrap();
    assert_eq!(
        input.tokens.join(" "),
        "[CLS] 库 克 苹 果 美 国 人 今 天 访 问"
    );
    // 北京 was pushed out by knowledge.
    assert_eq!(input.char_to_token[6..], [None, None]);
    // Compat padding: position max_length - 1, visible to nobody, not even itself.
    let config = KbertConfig::new(22).mode(InjectionMode::Compat);
    let input = flatten(&cook_visits_beijing(), &vocab(), &config).unwrap();
    assert_eq!(input.tokens[18..], ["[PAD]"; 4]);
    assert_eq!(input.soft_positions[18..], [21; 4]);
    assert_eq!(rows(&input)[20], "0".repeat(22));
}

#[test]
fn max_entities_keeps_the_best_ranked_strings() {
    let config = KbertConfig::new(14).max_entities(1);
    let input = flatten(&cook_visits_beijing(), &vocab(), &config).unwrap();
    assert_eq!(
        input.tokens.join(" "),
        "[CLS] 库 克 苹 果 今 天 访 问 北 京 首 都 [SEP]"
    );
}

#[test]
fn improved_mode_skips_whitespace_and_keeps_special_tokens_whole() {
    let tree = SentenceTree::new()
        .word("北京", ["首 都"])
        .word(" ", ["空"])
        .plain("[SEP]")
        .plain("好");
    let input = flatten(&tree, &vocab(), &KbertConfig::new(9)).unwrap();
    assert_eq!(
        input.tokens,
        ["[CLS]", "北", "京", "首", "都", "[SEP]", "好", "[SEP]", "[PAD]"]
    );
    assert_eq!(input.soft_positions, [0, 1, 2, 3, 4, 3, 4, 5, 8]);
    // Characters: 北 京 ␠ [ S E P ] 好
    assert_eq!(
        input.char_to_token,
        [
            Some(1),
            Some(2),
            None,
            Some(5),
            None,
            None,
            None,
            None,
            Some(6)
        ]
    );
}

#[test]
fn bad_trees_and_lengths_are_typed_errors() {
    let tree = SentenceTree::new().plain("北京").word("", ["x"]);
    assert_eq!(
        flatten(&tree, &vocab(), &KbertConfig::new(8)),
        Err(KbertError::EmptyWord { index: 1 })
    );
    let err = flatten(&cook_visits_beijing(), &vocab(), &KbertConfig::new(1)).unwrap_err();
    assert!(matches!(err, KbertError::MaxLengthTooSmall { min: 2, .. }));
}

#[test]
fn dense_expansion_matches_the_bit_rows() {
    let input = flatten(&cook_visits_beijing(), &vocab(), &KbertConfig::new(20)).unwrap();
    let dense = input.visible.to_dense_f32();
    assert_eq!(dense.len(), 400);
    let row12: String = dense[12 * 20..13 * 20]
        .iter()
        .map(|&v| if v == 1.0 { '1' } else { '0' })
        .collect();
    assert_eq!(row12, "11100000111111111110");
    assert_eq!(input.attention_mask()[18..], [1, 0]);
}
