//! Builds a K-BERT sentence tree from raw text the way a pipeline does: the linker finds
//! and disambiguates the mentions and ranks each linked entity's triples against the text
//! around it (the `link` and `facts` stages, [`crate::text::annotate`]), and the best `k`
//! become the branches of the mention's word ([`DocumentKnowledge::tree`]). Unlike K-BERT,
//! which injects every string match with an arbitrary choice of triples, only linked mentions
//! above the NIL threshold get knowledge.
use crate::knowledge::document::DocumentKnowledge;
use crate::knowledge::tree::SentenceTree;
use crate::text::{annotate, KnowledgeSource, LinkError, Linker};

/// The tree of `text`: each linked mention is one word carrying its `k` most relevant facts
/// (best first) as `predicate + object` (`with_predicate`) or `object`; every other
/// character is a word of its own. The words always concatenate to `text`.
pub fn tree_from_text<S: KnowledgeSource>(
    linker: &Linker<S>,
    text: &str,
    k: usize,
    with_predicate: bool,
) -> Result<SentenceTree, LinkError> {
    let doc = annotate(linker, text, k)?;
    let cut = DocumentKnowledge::new(&doc);
    let whole = 0..cut.len();
    Ok(cut
        .tree(std::slice::from_ref(&whole), k, with_predicate)
        .tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{LinkOptions, MemoryKg};

    #[test]
    fn linked_mentions_become_words_with_ranked_knowledge() {
        let kg = MemoryKg::from_triples([
            ("山西大学", "创办时间", "1902年"),
            ("山西大学", "类型", "综合性大学"),
            ("山西大学", "所在地", "太原"),
        ]);
        let options = LinkOptions {
            nil_threshold: 0.0,
            ..LinkOptions::default()
        };
        let linker = Linker::build(kg, options).unwrap();
        let text = "山西大学在太原吗";
        let tree = tree_from_text(&linker, text, 2, false).unwrap();
        assert_eq!(tree.text(), text);
        let anchor = tree
            .words
            .iter()
            .find(|w| w.word == "山西大学")
            .expect("mention is one word");
        assert_eq!(anchor.injected.len(), 2);
        assert_eq!(
            anchor.injected[0], "太原",
            "the fact the sentence talks about ranks first"
        );
        assert!(tree
            .words
            .iter()
            .filter(|w| w.word != "山西大学")
            .all(|w| w.injected.is_empty()));
    }

    #[test]
    fn text_without_mentions_is_plain_words() {
        let linker = Linker::build(MemoryKg::default(), LinkOptions::default()).unwrap();
        let tree = tree_from_text(&linker, "今天 天气很好。", 2, true).unwrap();
        assert_eq!(tree.text(), "今天 天气很好。");
        assert!(tree.words.iter().all(|w| w.injected.is_empty()));
    }
}
