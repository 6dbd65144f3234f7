//! The one data model every stage reads and writes: a [`Document`] is the text plus what the
//! pipeline found in it (tokens, linked mentions, injected facts, named entities, relations,
//! answers). It serialises to the JSON that `zhishi run`, `zhishi serve` and library users see.
//!
//! All offsets are **character** offsets (Unicode scalar values) into [`Document::text`], end
//! exclusive, so `text.chars().skip(start).take(end - start)` is the span's text.
use serde::{Deserialize, Serialize};

/// A processed text and everything the pipeline's stages attached to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The caller's record id (from `--id-field` or the HTTP request), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The text as given (never normalised; offsets point into it).
    pub text: String,
    /// A question about the text (extractive QA), if the input carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// The second text of a pair (sentence-pair classification), if the input carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_b: Option<String>,
    /// Words from segmentation, in text order.
    #[serde(default)]
    pub tokens: Vec<Token>,
    /// Entity mentions linked to the knowledge graph, in text order.
    #[serde(default)]
    pub mentions: Vec<Mention>,
    /// KG facts selected for the linked mentions (what K-BERT injects), best first per mention.
    #[serde(default)]
    pub facts: Vec<Fact>,
    /// Named entities found by the NER stage.
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// Relations between entities or mentions.
    #[serde(default)]
    pub relations: Vec<Relation>,
    /// Answers from extractive QA or QA over the KG, best first.
    #[serde(default)]
    pub answers: Vec<Answer>,
    /// Labels of the whole text (or pair) from classification, best first.
    #[serde(default)]
    pub labels: Vec<Label>,
}

impl Document {
    /// Adds a stage instance's best `top_k` answers to the document's (instances of one kind
    /// add to each other's), each saying which instance produced it; all stay best first.
    pub fn add_answers(&mut self, answers: Vec<Answer>, top_k: usize, instance: &str) {
        self.answers
            .extend(answers.into_iter().take(top_k).map(|a| Answer {
                source: Some(instance.to_string()),
                ..a
            }));
        self.answers.sort_by(|a, b| b.score.total_cmp(&a.score));
    }

    /// A document holding only `text`, ready for the first stage.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// The text of the character span `span`, or `None` if it lies outside the text.
    pub fn span_text(&self, span: Span) -> Option<&str> {
        if span.start > span.end {
            return None;
        }
        let start = char_to_byte(&self.text, span.start)?;
        let len = char_to_byte(&self.text[start..], span.end - span.start)?;
        Some(&self.text[start..start + len])
    }
}

/// The byte offset of character `n` of `text` (`text.len()` for `n` = its length).
fn char_to_byte(text: &str, n: usize) -> Option<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .nth(n)
}

/// A half-open character range `[start, end)` of [`Document::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
}

impl Span {
    /// The span `[start, end)`.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// Its length in characters.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether it covers no character.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A word from segmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// The word as it appears in the text.
    pub text: String,
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
    /// Part-of-speech tag (jieba's tag set), when the segmenter produced one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<String>,
}

/// A KG entity as the outside world sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityRef {
    /// The store's entity id.
    pub id: u32,
    /// Its canonical name.
    pub name: String,
}

/// A candidate entity for a mention, with its calibrated score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The store's entity id.
    pub id: u32,
    /// Its canonical name.
    pub name: String,
    /// Calibrated link probability in `[0, 1]`.
    pub score: f32,
}

/// A span of text linked to a KG entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mention {
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
    /// The mention as it appears in the text.
    pub text: String,
    /// The chosen entity.
    pub entity: EntityRef,
    /// Calibrated link probability of the chosen entity.
    pub score: f32,
    /// All candidates considered, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
}

/// A KG triple about a linked mention's entity, selected for knowledge injection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// Index into [`Document::mentions`] of the mention whose entity is the subject.
    pub mention: usize,
    /// The subject's canonical name.
    pub subject: String,
    /// The predicate.
    pub predicate: String,
    /// The object (entity name or literal).
    pub object: String,
    /// Relevance of the fact to the sentence (higher is more relevant).
    pub score: f32,
    /// The model stages that fed this fact to their encoder (K-BERT injection), e.g.
    /// `["ner"]`; empty when no stage injected it (not selected by the model's
    /// `max_entities`, or cut for length).
    #[serde(default)]
    pub injected_by: Vec<String>,
}

/// One fact behind a prediction: what withholding it from the model does to the prediction's
/// score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Index into [`Document::facts`].
    pub fact: usize,
    /// The prediction's score with every fact minus its score without this one (positive:
    /// the fact supported the prediction).
    pub delta: f32,
}

impl Evidence {
    /// Evidence from the prediction's score with every fact, `base`, and its score without
    /// each fact, `(fact, score)`: largest `|delta|` first (ties in fact order).
    pub fn ranked(base: f32, without: impl IntoIterator<Item = (usize, f32)>) -> Vec<Evidence> {
        let mut out: Vec<Evidence> = without
            .into_iter()
            .map(|(fact, score)| Evidence {
                fact,
                delta: base - score,
            })
            .collect();
        out.sort_by(|a, b| {
            b.delta
                .abs()
                .total_cmp(&a.delta.abs())
                .then(a.fact.cmp(&b.fact))
        });
        out
    }
}

/// A named entity found by NER.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
    /// The entity as it appears in the text.
    pub text: String,
    /// Its type, as named by the model's label set (e.g. `ORG`, `疾病和诊断`).
    pub label: String,
    /// Model confidence in `[0, 1]`, when the model provides one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The stage instance that produced it (its name in `[pipeline] stages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The facts behind it (only when explaining, for a stage that injected knowledge):
    /// each fact that can reach it and how much its score drops when that fact is withheld,
    /// largest change first. Absent unless asked for (`zhishi run --explain`, `"explain":
    /// true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Vec<Evidence>>,
}

/// One argument of a relation: a span of the text, linked to the KG when possible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Argument {
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
    /// The argument as it appears in the text.
    pub text: String,
    /// The KG entity it is linked to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityRef>,
}

/// A relation the text states between two arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relation {
    /// The head (subject) argument.
    pub head: Argument,
    /// The tail (object) argument.
    pub tail: Argument,
    /// The relation label (e.g. `Located`, `父亲`).
    pub label: String,
    /// Model confidence in `[0, 1]`.
    pub score: f32,
    /// The stage instance that produced it (its name in `[pipeline] stages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The facts behind it (only when explaining, for a stage that injected knowledge):
    /// each fact that can reach it and how much its score drops when that fact is withheld,
    /// largest change first. Absent unless asked for (`zhishi run --explain`, `"explain":
    /// true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Vec<Evidence>>,
}

/// A KG triple given as evidence for an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triple {
    /// Subject name.
    pub subject: String,
    /// Predicate name.
    pub predicate: String,
    /// Object name or literal.
    pub object: String,
}

/// An answer to the document's question (extractive QA) or to the document itself when it is a
/// question (QA over the KG).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The answer text.
    pub text: String,
    /// Character span in [`Document::text`] for extractive answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    /// Confidence (higher is better; a probability where the stage can calibrate it).
    pub score: f32,
    /// The supporting KG triple for answers from the graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triple: Option<Triple>,
    /// The stage instance that produced it (its name in `[pipeline] stages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A label of the whole text (or pair of texts) from a classification stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// The label.
    pub label: String,
    /// The model's probability of it (softmax over the labels, or a sigmoid per label for a
    /// multi-label model).
    pub score: f32,
    /// The stage instance that produced it (its name in `[pipeline] stages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The facts behind it (only when explaining, for a stage that injected knowledge):
    /// each fact that can reach it and how much its score drops when that fact is withheld,
    /// largest change first. Absent unless asked for (`zhishi run --explain`, `"explain":
    /// true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Vec<Evidence>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_text_counts_characters_not_bytes() {
        let doc = Document::new("我爱北京天安门🙂ok");
        assert_eq!(doc.span_text(Span::new(2, 4)), Some("北京"));
        assert_eq!(doc.span_text(Span::new(7, 9)), Some("🙂o"));
        assert_eq!(doc.span_text(Span::new(8, 10)), Some("ok"));
        assert_eq!(doc.span_text(Span::new(0, 0)), Some(""));
        assert_eq!(doc.span_text(Span::new(10, 10)), Some(""));
        assert_eq!(doc.span_text(Span::new(9, 11)), None);
        assert_eq!(doc.span_text(Span::new(3, 2)), None);
    }

    #[test]
    fn empty_collections_still_serialise_and_round_trip() {
        let mut doc = Document::new("姚明是篮球运动员");
        doc.answers.push(Answer {
            text: "篮球运动员".into(),
            span: Some(Span::new(3, 8)),
            score: 0.9,
            triple: None,
            source: None,
        });
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["tokens"], serde_json::json!([]));
        assert!(json.get("id").is_none());
        assert_eq!(json["answers"][0]["span"]["start"], 3);
        let back: Document = serde_json::from_value(json).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn evidence_is_ranked_by_absolute_delta_and_absent_unless_given() {
        let ranked = Evidence::ranked(0.5, [(0, 0.45), (1, 0.9), (2, 0.1), (3, 0.5)]);
        let facts: Vec<usize> = ranked.iter().map(|e| e.fact).collect();
        assert_eq!(facts, [2, 1, 0, 3]);
        assert!((ranked[0].delta - 0.4).abs() < 1e-6 && ranked[1].delta < 0.0);
        let label = Label {
            label: "x".into(),
            score: 0.5,
            source: None,
            evidence: None,
        };
        assert!(serde_json::to_value(&label)
            .unwrap()
            .get("evidence")
            .is_none());
        let explained = Label {
            evidence: Some(ranked),
            ..label
        };
        let json = serde_json::to_value(&explained).unwrap();
        assert_eq!(json["evidence"][0]["fact"], 2);
    }
}
