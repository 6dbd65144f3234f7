//! The linker's results written into a [`Document`]: its mentions (character offsets, the
//! document model's [`doc::Mention`]) and the facts ranked for each. The pipeline's `link`
//! and `facts` stages call these, and so does training on its own sentences, so a model is
//! trained on exactly the knowledge a pipeline gives it.
use crate::doc::{self, Document};

use super::link::{fact_context, LinkError, LinkedMention, Linker};
use crate::kg::source::KnowledgeSource;

impl From<LinkedMention> for doc::Mention {
    fn from(m: LinkedMention) -> Self {
        doc::Mention {
            start: m.char_start,
            end: m.char_end,
            text: m.text,
            entity: doc::EntityRef {
                id: m.entity.id,
                name: m.entity.name,
            },
            score: m.score,
            candidates: m
                .candidates
                .into_iter()
                .map(|c| doc::Candidate {
                    id: c.id,
                    name: c.name,
                    score: c.score,
                })
                .collect(),
        }
    }
}

/// Links `doc`'s text into `doc.mentions` (replacing them). With `reuse_tokens` the words
/// already in `doc.tokens` are linked instead of segmenting again (see
/// [`Linker::link_words`]); a document without tokens is segmented.
pub fn link_document<S: KnowledgeSource>(
    linker: &Linker<S>,
    doc: &mut Document,
    reuse_tokens: bool,
) {
    let mentions = if reuse_tokens && !doc.tokens.is_empty() {
        let words = doc
            .tokens
            .iter()
            .map(|t| (t.text.as_str(), t.pos.as_deref()));
        linker.link_words(&doc.text, words)
    } else {
        linker.link(&doc.text)
    };
    doc.mentions = mentions.into_iter().map(doc::Mention::from).collect();
}

/// For every mention of `doc`, its `per_mention` facts most relevant to the text around it
/// (best first), ranked against [`fact_context`]: linear in the document's length.
pub fn document_facts<S: KnowledgeSource>(
    linker: &Linker<S>,
    doc: &Document,
    per_mention: usize,
) -> Result<Vec<doc::Fact>, LinkError> {
    let mut out = Vec::new();
    // Byte offset of every char, once per document, so each mention's context window is cut
    // in O(window).
    let bytes: Vec<usize> = doc
        .text
        .char_indices()
        .map(|(b, _)| b)
        .chain([doc.text.len()])
        .collect();
    let chars = bytes.len() - 1;
    for (index, m) in doc.mentions.iter().enumerate() {
        let (start, end) = (m.start.min(chars), m.end.min(chars));
        let context = fact_context(&doc.text, bytes[start], bytes[end.max(start)]);
        let entity = super::EntityRef {
            id: m.entity.id,
            name: m.entity.name.clone(),
        };
        let ranked = linker.select_facts(context, &m.text, &entity, per_mention)?;
        out.extend(ranked.into_iter().map(|k| doc::Fact {
            mention: index,
            subject: m.entity.name.clone(),
            predicate: k.predicate,
            object: k.object,
            score: k.score,
            injected_by: Vec::new(),
        }));
    }
    Ok(out)
}

/// A document for `text` with its mentions and their `per_mention` best facts: what a
/// pipeline's `link` + `facts` stages produce with this linker.
pub fn annotate<S: KnowledgeSource>(
    linker: &Linker<S>,
    text: &str,
    per_mention: usize,
) -> Result<Document, LinkError> {
    let mut doc = Document::new(text);
    link_document(linker, &mut doc, false);
    doc.facts = document_facts(linker, &doc, per_mention)?;
    Ok(doc)
}
