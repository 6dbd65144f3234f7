//! Builds a K-BERT sentence tree from raw text: the linker finds and disambiguates the
//! mentions, ranks each linked entity's triples against the sentence, and the best `k` become
//! the branches of the mention's word. Unlike K-BERT, which injects every string match with
//! an arbitrary choice of triples, only linked mentions above the NIL threshold get knowledge.
use crate::knowledge::tree::{knowledge_string, SentenceTree, TreeWord};
use crate::text::{KnowledgeSource, LinkError, Linker};

/// Segments `text` into words, making each linked mention one word carrying its `k` most
/// relevant facts (best first) as `predicate + object` (`with_predicate`) or `object`.
/// The words always concatenate to `text`.
pub fn tree_from_text<S: KnowledgeSource>(
    linker: &Linker<S>,
    text: &str,
    k: usize,
    with_predicate: bool,
) -> Result<SentenceTree, LinkError> {
    let mut mentions = linker.link(text);
    mentions.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
    let mut words = Vec::new();
    let mut cursor = 0;
    for mention in &mentions {
        if mention.start < cursor {
            continue; // overlaps a mention already placed (overlap policy `all`)
        }
        push_plain_words(linker, &text[cursor..mention.start], &mut words);
        let injected = linker
            .select_knowledge(text, mention, k)?
            .into_iter()
            .map(|fact| knowledge_string(&fact.predicate, &fact.object, with_predicate))
            .collect();
        words.push(TreeWord {
            word: text[mention.start..mention.end].to_string(),
            injected,
        });
        cursor = mention.end;
    }
    push_plain_words(linker, &text[cursor..], &mut words);
    Ok(SentenceTree { words })
}

/// Segments a stretch of text without mentions into knowledge-free words.
fn push_plain_words<S: KnowledgeSource>(linker: &Linker<S>, gap: &str, words: &mut Vec<TreeWord>) {
    if gap.is_empty() {
        return;
    }
    let tokens = linker.segmenter().segment(gap, false);
    let spelled: String = tokens.iter().map(|t| t.text).collect();
    if spelled == gap {
        words.extend(tokens.iter().map(|t| TreeWord {
            word: t.text.to_string(),
            injected: Vec::new(),
        }));
    } else {
        words.push(TreeWord {
            word: gap.to_string(),
            injected: Vec::new(),
        });
    }
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
