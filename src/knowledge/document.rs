//! Knowledge inputs cut from a [`Document`]: the K-BERT sentence tree and the ERNIE entity
//! alignment of any stretch of its text, built from the mentions and facts the pipeline's
//! `link` and `facts` stages wrote (training writes them with the same code, see
//! [`crate::text::annotate`]). Each injected string remembers the fact it came from, so a
//! model stage can mark the facts it fed to its encoder (`Fact::injected_by`).
use std::ops::Range;

use super::ernie::EntityVectors;
use super::kbert::KbertInput;
use super::tree::{knowledge_string, SentenceTree, TreeWord};
use crate::doc::Document;

/// A document prepared for cutting knowledge inputs: its characters and its linked mentions
/// in text order, each with its facts (best first, as the `facts` stage ranks them).
#[derive(Debug, Clone)]
pub struct DocumentKnowledge<'a> {
    doc: &'a Document,
    chars: Vec<char>,
    anchors: Vec<Anchor>,
    /// A fact kept out of every tree (explanations re-run a model without it).
    withheld: Option<usize>,
}

/// A mention that can carry knowledge: its character span, its index in
/// [`Document::mentions`] and the indices of its facts in [`Document::facts`].
#[derive(Debug, Clone)]
struct Anchor {
    span: Range<usize>,
    mention: usize,
    facts: Vec<usize>,
}

/// A sentence tree cut from a document, with the fact behind every injected string.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentTree {
    /// The tree; its words concatenate to the cut text.
    pub tree: SentenceTree,
    /// For each tree word, the index in [`Document::facts`] of each of its injected strings.
    pub facts: Vec<Vec<usize>>,
}

impl DocumentTree {
    /// The document facts whose strings made it into `input` (flattened from this tree),
    /// in tree order.
    pub fn injected_facts(&self, input: &KbertInput) -> Vec<usize> {
        input
            .injected
            .iter()
            .filter_map(|&(word, string)| self.facts.get(word)?.get(string).copied())
            .collect()
    }
}

impl<'a> DocumentKnowledge<'a> {
    /// Prepares `doc` (O(text + mentions + facts)). Mentions outside the text are ignored;
    /// of overlapping mentions (overlap policy `all`) the earlier, then the longer, is kept.
    pub fn new(doc: &'a Document) -> Self {
        let chars: Vec<char> = doc.text.chars().collect();
        let mut order: Vec<usize> = (0..doc.mentions.len())
            .filter(|&i| {
                let m = &doc.mentions[i];
                m.start < m.end && m.end <= chars.len()
            })
            .collect();
        order.sort_by_key(|&i| {
            (
                doc.mentions[i].start,
                std::cmp::Reverse(doc.mentions[i].end),
            )
        });
        let mut facts_of: Vec<Vec<usize>> = vec![Vec::new(); doc.mentions.len()];
        for (index, fact) in doc.facts.iter().enumerate() {
            if let Some(list) = facts_of.get_mut(fact.mention) {
                list.push(index);
            }
        }
        let mut anchors: Vec<Anchor> = Vec::with_capacity(order.len());
        for i in order {
            let m = &doc.mentions[i];
            if anchors.last().is_some_and(|a| m.start < a.span.end) {
                continue;
            }
            anchors.push(Anchor {
                span: m.start..m.end,
                mention: i,
                facts: std::mem::take(&mut facts_of[i]),
            });
        }
        Self {
            doc,
            chars,
            anchors,
            withheld: None,
        }
    }

    /// The same document with the fact `fact` (an index into [`Document::facts`]) withheld:
    /// its trees inject everything they would inject otherwise except that fact (no
    /// lower-ranked fact takes its place), so a model's input differs by that fact alone.
    pub fn without(&self, fact: usize) -> Self {
        Self {
            withheld: Some(fact),
            ..self.clone()
        }
    }

    /// The document these inputs are cut from.
    pub fn document(&self) -> &Document {
        self.doc
    }

    /// The document's length in characters.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the document has no text.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The anchors lying wholly inside `range`, with their start relative to the cut text
    /// (`base` = characters of the cut before `range`).
    fn anchors_in(&self, range: &Range<usize>) -> impl Iterator<Item = &Anchor> + '_ {
        let first = self.anchors.partition_point(|a| a.span.start < range.start);
        let end = range.end;
        self.anchors[first..]
            .iter()
            .take_while(move |a| a.span.start < end)
            .filter(move |a| a.span.end <= end)
    }

    /// The K-BERT tree of the characters `ranges` (concatenated in order: NER's window is one
    /// range, a relation window may be two). A mention wholly inside one range becomes a word
    /// carrying its first `k` facts (less a withheld one, see [`DocumentKnowledge::without`])
    /// as `predicate + object` (`with_predicate`) or `object`;
    /// every other character is a word of its own. Ranges are clamped to the text.
    pub fn tree(&self, ranges: &[Range<usize>], k: usize, with_predicate: bool) -> DocumentTree {
        let mut words = Vec::new();
        let mut facts = Vec::new();
        let n = self.chars.len();
        for range in ranges {
            let range = range.start.min(n)..range.end.min(n);
            let mut cursor = range.start;
            let anchors: Vec<&Anchor> = if k == 0 {
                Vec::new()
            } else {
                self.anchors_in(&range).collect()
            };
            for anchor in anchors {
                self.push_chars(cursor..anchor.span.start, &mut words, &mut facts);
                let chosen: Vec<usize> = anchor
                    .facts
                    .iter()
                    .take(k)
                    .copied()
                    .filter(|&f| Some(f) != self.withheld)
                    .collect();
                words.push(TreeWord {
                    word: self.chars[anchor.span.clone()].iter().collect(),
                    injected: chosen
                        .iter()
                        .map(|&f| {
                            let fact = &self.doc.facts[f];
                            knowledge_string(&fact.predicate, &fact.object, with_predicate)
                        })
                        .collect(),
                });
                facts.push(chosen);
                cursor = anchor.span.end;
            }
            self.push_chars(cursor..range.end, &mut words, &mut facts);
        }
        DocumentTree {
            tree: SentenceTree { words },
            facts,
        }
    }

    fn push_chars(
        &self,
        range: Range<usize>,
        words: &mut Vec<TreeWord>,
        facts: &mut Vec<Vec<usize>>,
    ) {
        for c in &self.chars[range] {
            words.push(TreeWord {
                word: c.to_string(),
                injected: Vec::new(),
            });
            facts.push(Vec::new());
        }
    }

    /// ERNIE-THU's alignment of the characters `ranges` (concatenated, as in
    /// [`DocumentKnowledge::tree`]) flattened to `len` tokens, where `char_to_token[c]` is the
    /// token of cut character `c`: each mention wholly inside a range puts its entity's row of
    /// `vectors` on the first of its characters that has a token (`-1` elsewhere; a mention
    /// whose entity has no vector puts nothing).
    pub fn entity_rows(
        &self,
        ranges: &[Range<usize>],
        vectors: &EntityVectors,
        char_to_token: &[Option<usize>],
        len: usize,
    ) -> Vec<i64> {
        let mut rows = vec![-1i64; len];
        let n = self.chars.len();
        let mut base = 0;
        for range in ranges {
            let range = range.start.min(n)..range.end.min(n);
            for anchor in self.anchors_in(&range) {
                let name = &self.doc.mentions[anchor.mention].entity.name;
                let Some(row) = vectors.row(name) else {
                    continue;
                };
                let local =
                    anchor.span.start - range.start + base..anchor.span.end - range.start + base;
                let first = local
                    .clone()
                    .find_map(|c| char_to_token.get(c).copied().flatten())
                    .filter(|&t| t < len);
                if let Some(t) = first {
                    if rows[t] < 0 {
                        rows[t] = i64::from(row);
                    }
                }
            }
            base += range.len();
        }
        rows
    }
}
