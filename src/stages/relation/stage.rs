//! The `relation` pipeline stage: relations between the document's NER entities or linked
//! mentions (`pairs_from`) into `relations`. Every ordered pair of non-overlapping arguments
//! at most `max_distance` characters apart is a candidate (closest pairs first, at most
//! `max_pairs` per document); candidates are classified in batches, and those the model does
//! not call no-relation, scored at least `min_score`, are kept.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::explain::ExplainedPair;
use super::model::{RelationModel, META_FILE};
use crate::doc::{Argument, Document, Relation, Span};
use crate::stages::registry::{ModelStageKind, StageContext, StageInfo};
use crate::stages::task::{mark_injected, recorded_reads, MismatchPolicy};
use crate::stages::{Field, Stage, StageError};

/// Where candidate arguments come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairSource {
    /// `entities` from the `ner` stage.
    #[default]
    Entities,
    /// `mentions` from the `link` stage (arguments carry the linked entity).
    Mentions,
}

impl PairSource {
    /// The document field the stage reads.
    pub fn field(self) -> Field {
        match self {
            PairSource::Entities => Field::Entities,
            PairSource::Mentions => Field::Mentions,
        }
    }
}

/// `[relation]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationStageOptions {
    /// A model directory written by `zhishi train` on a `kind = "relation"` config (its `best/`).
    pub model: PathBuf,
    /// `entities` (NER) or `mentions` (linking).
    #[serde(default)]
    pub pairs_from: PairSource,
    /// Candidates whose arguments are more characters apart are not classified.
    #[serde(default = "default_max_distance")]
    pub max_distance: usize,
    /// At most this many candidates per document, closest first.
    #[serde(default = "default_max_pairs")]
    pub max_pairs: usize,
    /// Relations scored below this are dropped.
    #[serde(default, deserialize_with = "crate::config::range::unit_f32")]
    pub min_score: f32,
    /// When the model's knowledge settings (linker options, facts per mention, KG content)
    /// differ from the pipeline's: `"error"` (refuse to build) or `"warn"` (log and run).
    #[serde(default)]
    pub knowledge_mismatch: MismatchPolicy,
}

impl RelationStageOptions {
    /// The stage over the model directory `model` with the default candidate settings.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            pairs_from: PairSource::default(),
            max_distance: default_max_distance(),
            max_pairs: default_max_pairs(),
            min_score: 0.0,
            knowledge_mismatch: MismatchPolicy::Error,
        }
    }
}

fn default_max_distance() -> usize {
    64
}

fn default_max_pairs() -> usize {
    64
}

/// Classifies the relation of argument pairs.
pub struct RelationStage {
    model: RelationModel,
    options: RelationStageOptions,
    /// The instance's name in `[pipeline] stages`.
    instance: String,
}

/// The candidate pairs `(head, tail)` among `args`: ordered, non-overlapping, at most
/// `max_distance` characters apart, closest first (then in text order), at most `max_pairs`.
pub fn candidate_pairs(
    args: &[Argument],
    max_distance: usize,
    max_pairs: usize,
) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(usize, usize, usize)> = Vec::new();
    for (i, a) in args.iter().enumerate() {
        for (j, b) in args.iter().enumerate() {
            if i == j || (a.start < b.end && b.start < a.end) {
                continue;
            }
            let gap = b.start.saturating_sub(a.end) + a.start.saturating_sub(b.end);
            if gap <= max_distance {
                pairs.push((gap, i, j));
            }
        }
    }
    pairs.sort_by_key(|&(gap, i, j)| (gap, args[i].start.min(args[j].start), i, j));
    pairs
        .into_iter()
        .take(max_pairs)
        .map(|(_, i, j)| (i, j))
        .collect()
}

/// The arguments of a document: its entities or its linked mentions.
pub fn arguments(doc: &Document, source: PairSource) -> Vec<Argument> {
    match source {
        PairSource::Entities => doc
            .entities
            .iter()
            .map(|e| Argument {
                start: e.start,
                end: e.end,
                text: e.text.clone(),
                entity: None,
            })
            .collect(),
        PairSource::Mentions => doc
            .mentions
            .iter()
            .map(|m| Argument {
                start: m.start,
                end: m.end,
                text: m.text.clone(),
                entity: Some(m.entity.clone()),
            })
            .collect(),
    }
}

impl RelationStage {
    /// Loads the trained model onto the pipeline's device and checks its knowledge against
    /// the pipeline's.
    pub fn load(
        options: &RelationStageOptions,
        ctx: &StageContext<'_>,
    ) -> Result<Self, StageError> {
        let model = RelationModel::load_at(&options.model, ctx.device, ctx.precision)
            .map_err(|e| StageError::new(ctx.instance, e))?;
        model
            .knowledge()
            .check_pipeline(ctx.instance, ctx, options.knowledge_mismatch)?;
        Ok(Self {
            model,
            options: options.clone(),
            instance: ctx.instance.to_string(),
        })
    }
}

impl Stage for RelationStage {
    fn name(&self) -> &str {
        &self.instance
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        self.run(docs, false)
    }

    fn process_explained(&self, docs: &mut [Document]) -> Result<(), StageError> {
        self.run(docs, true)
    }
}

impl RelationStage {
    /// Classifies the candidate pairs of `docs` and adds their relations (with `explain`,
    /// each with its evidence).
    fn run(&self, docs: &mut [Document], explain: bool) -> Result<(), StageError> {
        let o = &self.options;
        let args: Vec<Vec<Argument>> = docs.iter().map(|d| arguments(d, o.pairs_from)).collect();
        // (document, head, tail) of every candidate, in document order.
        let mut owners: Vec<(usize, usize, usize)> = Vec::new();
        let mut pairs: Vec<(usize, Span, Span)> = Vec::new();
        for (d, args) in args.iter().enumerate() {
            for (h, t) in candidate_pairs(args, o.max_distance, o.max_pairs) {
                owners.push((d, h, t));
                pairs.push((
                    d,
                    Span::new(args[h].start, args[h].end),
                    Span::new(args[t].start, args[t].end),
                ));
            }
        }
        let predictions: Vec<ExplainedPair> = if explain {
            self.model.predict_explained(docs, &pairs)
        } else {
            self.model.predict_in_documents(docs, &pairs).map(|p| {
                p.into_iter()
                    .map(|(prediction, facts)| (prediction, facts, None))
                    .collect()
            })
        }
        .map_err(|e| StageError::new(&self.instance, e))?;
        let mut found: Vec<Vec<Relation>> = vec![Vec::new(); docs.len()];
        let mut injected: Vec<Vec<usize>> = vec![Vec::new(); docs.len()];
        for (&(d, h, t), (p, facts, evidence)) in owners.iter().zip(predictions) {
            injected[d].extend(facts);
            let label = self.model.label(p.label);
            if label == self.model.no_relation() || p.score < o.min_score {
                continue;
            }
            found[d].push(Relation {
                head: args[d][h].clone(),
                tail: args[d][t].clone(),
                label: label.to_string(),
                score: p.score,
                source: Some(self.instance.clone()),
                evidence,
            });
        }
        for ((doc, relations), injected) in docs.iter_mut().zip(found).zip(injected) {
            // Instances of one kind add to each other's relations.
            doc.relations.extend(relations);
            doc.relations.sort_by_key(|r| (r.head.start, r.tail.start));
            mark_injected(doc, &injected, &self.instance);
        }
        Ok(())
    }
}

/// The `relation` stage kind, registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: ModelStageKind<RelationStageOptions> = ModelStageKind::new(
    StageInfo {
        name: "relation",
        summary: "relations between pairs of `entities` or linked `mentions` (`pairs_from`) from a trained model; a K-BERT model also reads `facts` and marks those it injected",
        reads: &[Field::Entities],
        produces: &[Field::Relations],
        needs_kg: false,
    },
    |o| {
        let mut reads = vec![o.pairs_from.field()];
        reads.extend(recorded_reads(&o.model, META_FILE));
        reads.dedup();
        reads
    },
    |opts, ctx| Ok(Box::new(RelationStage::load(opts, ctx)?)),
);
