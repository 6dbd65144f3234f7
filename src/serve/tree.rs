//! `POST /v1/kbert-tree`: the K-BERT sentence tree of a processed document (the JSON that
//! `POST /v1/process` answered) as SVG: its characters on the trunk, the facts hanging from
//! their mentions, soft positions and the visible matrix ([`crate::knowledge::draw`]). When
//! a model stage injected facts (`injected_by`), the tree shows exactly those; otherwise every
//! fact of the document. The page draws it under the tables.
use crate::doc::Document;
/// Longest flattened input drawn (tokens, `[CLS]` included): the drawing's own cap, which
/// `zhishi kbert --svg` shares; the tree is flattened no longer than that.
pub use crate::knowledge::draw::MAX_DRAWN_TOKENS as MAX_TREE_TOKENS;
use crate::knowledge::draw::{tree_svg, DrawError};
use crate::knowledge::{flatten, DocumentKnowledge, InjectionMode, KbertConfig, KbertError};

/// Why a document's tree could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The tree could not be flattened.
    #[error(transparent)]
    Flatten(#[from] KbertError),
    /// The picture could not be drawn.
    #[error(transparent)]
    Draw(#[from] DrawError),
}

/// The document's facts drawn: those a model stage injected, else all of them.
fn drawn(doc: &Document) -> Document {
    let mut shown = doc.clone();
    if doc.facts.iter().any(|f| !f.injected_by.is_empty()) {
        shown.facts.retain(|f| !f.injected_by.is_empty());
    }
    shown
}

/// The SVG of `doc`'s K-BERT tree (`predicate + object` branches), cut at
/// [`MAX_TREE_TOKENS`].
pub fn kbert_tree_svg(doc: &Document) -> Result<String, TreeError> {
    let doc = drawn(doc);
    let mut per_mention = vec![0usize; doc.mentions.len()];
    for fact in &doc.facts {
        if let Some(n) = per_mention.get_mut(fact.mention) {
            *n += 1;
        }
    }
    let k = per_mention.into_iter().max().unwrap_or(0);
    let knowledge = DocumentKnowledge::new(&doc);
    let whole = 0..doc.text.chars().count();
    let tree = knowledge.tree(std::slice::from_ref(&whole), k, true);
    let config = KbertConfig::new(MAX_TREE_TOKENS)
        .mode(InjectionMode::Improved)
        .max_entities(k);
    // Drawing needs tokens, soft positions and visibility, not vocabulary ids.
    let input = flatten(&tree.tree, &|_: &str| 1u32, &config)?;
    Ok(tree_svg(&input)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{EntityRef, Fact, Mention};

    fn document() -> Document {
        let mut doc = Document::new("阿司匹林治疗头痛");
        doc.mentions.push(Mention {
            start: 0,
            end: 4,
            text: "阿司匹林".into(),
            entity: EntityRef {
                id: 0,
                name: "阿司匹林".into(),
            },
            score: 0.9,
            candidates: Vec::new(),
        });
        for (object, injected) in [("解热镇痛药", true), ("拜耳", false)] {
            doc.facts.push(Fact {
                mention: 0,
                subject: "阿司匹林".into(),
                predicate: "类别".into(),
                object: object.into(),
                score: 1.0,
                injected_by: if injected { vec!["ner".into()] } else { vec![] },
            });
        }
        doc
    }

    #[test]
    fn the_tree_shows_the_injected_facts_only_when_a_model_injected_some() {
        let doc = document();
        let svg = kbert_tree_svg(&doc).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains('解') && !svg.contains('拜'), "{svg}");
        let mut none_injected = doc.clone();
        none_injected
            .facts
            .iter_mut()
            .for_each(|f| f.injected_by.clear());
        let svg = kbert_tree_svg(&none_injected).unwrap();
        assert!(svg.contains('解') && svg.contains('拜'));
    }

    #[test]
    fn a_long_text_is_cut_to_the_drawn_length() {
        let doc = Document::new("头".repeat(5000));
        let svg = kbert_tree_svg(&doc).unwrap();
        assert!(svg.len() < 4_000_000, "{} bytes", svg.len());
    }
}
