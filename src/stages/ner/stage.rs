//! The `ner` pipeline stage: named entities from a trained [`NerModel`] into `entities`. A
//! model trained with knowledge reads the `mentions` (ERNIE) and `facts` (K-BERT) that the
//! pipeline's `link`/`facts` stages wrote, after checking that the pipeline's knowledge
//! settings and KG are the ones it was trained with, and marks the facts it injected. Each
//! entity's `score` is the probability of its span; `min_score` drops the less likely.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::doc::{Document, Entity};
use crate::stages::registry::{ModelStageKind, StageContext, StageInfo};
use crate::stages::task::{mark_injected, recorded_reads, MismatchPolicy};
use crate::stages::{Field, Stage, StageError};

use super::model::META_FILE;
use super::NerModel;

/// `[ner]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NerStageOptions {
    /// A model directory written by `zhishi train` on a `kind = "ner"` config (its `best/`).
    pub model: PathBuf,
    /// When the model's knowledge settings (linker options, facts per mention, KG content)
    /// differ from the pipeline's: `"error"` (refuse to build) or `"warn"` (log and run).
    #[serde(default)]
    pub knowledge_mismatch: MismatchPolicy,
    /// Entities whose probability (the entity's `score`) is below this are dropped (0 to 1).
    #[serde(default, deserialize_with = "crate::config::range::unit_f32")]
    pub min_score: f32,
    /// Where the model's entities overlap entities a `rules` stage listed before this one
    /// found: keep the rules' (`prefer_rules`, the default), the model's (`prefer_model`) or
    /// both.
    #[serde(default)]
    pub merge: Merge,
}

/// `[ner] merge`: which entity stays where a model entity overlaps a rule entity (one of an
/// earlier `rules` stage; character spans that share at least one character overlap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Merge {
    /// Drop the model's entities that overlap a rule entity.
    #[default]
    PreferRules,
    /// Drop the rule entities that overlap one of the model's.
    PreferModel,
    /// Keep both (overlapping entities of both sources stay).
    Both,
}

impl Merge {
    /// Merges `model`'s entities into `existing`, which may hold rule entities (those whose
    /// `source` is in `rule_sources`); the result is sorted by span.
    pub fn apply(self, existing: &mut Vec<Entity>, model: Vec<Entity>, rule_sources: &[String]) {
        let is_rule = |e: &Entity| {
            e.source
                .as_ref()
                .is_some_and(|s| rule_sources.iter().any(|r| r == s))
        };
        let overlaps = |a: &Entity, b: &Entity| a.start < b.end && b.start < a.end;
        match self {
            Merge::Both => existing.extend(model),
            Merge::PreferRules => {
                let kept: Vec<Entity> = model
                    .into_iter()
                    .filter(|m| !existing.iter().any(|e| is_rule(e) && overlaps(e, m)))
                    .collect();
                existing.extend(kept);
            }
            Merge::PreferModel => {
                existing.retain(|e| !is_rule(e) || !model.iter().any(|m| overlaps(e, m)));
                existing.extend(model);
            }
        }
        existing.sort_by_key(|e| (e.start, e.end));
    }
}

impl NerStageOptions {
    /// The stage over the model directory `model`, refusing knowledge mismatches, keeping
    /// every entity.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            knowledge_mismatch: MismatchPolicy::Error,
            min_score: 0.0,
            merge: Merge::default(),
        }
    }
}

/// Tags named entities.
pub struct NerStage {
    model: NerModel,
    min_score: f32,
    merge: Merge,
    /// The earlier `rules` stage instances, whose entities `merge` settles overlaps with.
    rule_sources: Vec<String>,
    /// The instance's name in `[pipeline] stages`.
    instance: String,
}

impl NerStage {
    /// Loads the trained model onto the pipeline's device and checks its knowledge against
    /// the pipeline's.
    pub fn load(opts: &NerStageOptions, ctx: &StageContext<'_>) -> Result<Self, StageError> {
        let model = NerModel::load_at(&opts.model, ctx.device, ctx.precision)
            .map_err(|e| StageError::new(ctx.instance, e))?;
        model
            .knowledge()
            .check_pipeline(ctx.instance, ctx, opts.knowledge_mismatch)?;
        let rule_sources = ctx
            .earlier
            .iter()
            .map(|stage| stage.name())
            .filter(|name| {
                crate::stages::registry::kind_name(name, ctx.tables.get(*name))
                    == crate::stages::rules::NAME
            })
            .map(String::from)
            .collect();
        Ok(Self {
            model,
            min_score: opts.min_score,
            merge: opts.merge,
            rule_sources,
            instance: ctx.instance.to_string(),
        })
    }
}

impl Stage for NerStage {
    fn name(&self) -> &str {
        &self.instance
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        let results = self
            .model
            .predict_documents(docs)
            .map_err(|e| StageError::new(&self.instance, e))?;
        self.add(docs, results);
        Ok(())
    }

    fn process_explained(&self, docs: &mut [Document]) -> Result<(), StageError> {
        let results = self
            .model
            .predict_explained(docs)
            .map_err(|e| StageError::new(&self.instance, e))?;
        self.add(docs, results);
        Ok(())
    }
}

impl NerStage {
    /// Adds the model's entities (those scored at least `min_score`) to the documents and
    /// marks the facts it injected.
    fn add(&self, docs: &mut [Document], results: Vec<super::Tagged>) {
        for (doc, tagged) in docs.iter_mut().zip(results) {
            // Instances of one kind (`[ner_drug] kind = "ner"`) add to each other's entities,
            // each saying which produced it.
            let found: Vec<Entity> = tagged
                .entities
                .into_iter()
                .filter(|e| e.score.unwrap_or(1.0) >= self.min_score)
                .map(|e| Entity {
                    source: Some(self.instance.clone()),
                    ..e
                })
                .collect();
            self.merge
                .apply(&mut doc.entities, found, &self.rule_sources);
            mark_injected(doc, &tagged.injected, &self.instance);
        }
    }
}

/// The `ner` stage kind, registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: ModelStageKind<NerStageOptions> = ModelStageKind::new(
    StageInfo {
        name: "ner",
        summary: "named entities (BIO/BMES spans with labels, each scored with its probability) from a trained NER model; a model trained with knowledge also reads `mentions` (and `facts` for K-BERT) and marks the facts it injected",
        reads: &[],
        produces: &[Field::Entities],
        needs_kg: false,
    },
    |opts| recorded_reads(&opts.model, META_FILE),
    |opts, ctx| Ok(Box::new(NerStage::load(opts, ctx)?)),
);

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(start: usize, end: usize, source: &str) -> Entity {
        Entity {
            start,
            end,
            text: String::new(),
            label: source.to_uppercase(),
            score: None,
            source: Some(source.into()),
            evidence: None,
        }
    }

    #[test]
    fn merge_settles_overlaps_between_rule_and_model_entities() {
        let rules = vec!["rules".to_string()];
        let existing = vec![
            entity(0, 3, "rules"),
            entity(5, 7, "rules"),
            entity(8, 9, "other"),
        ];
        let model = || {
            vec![
                entity(2, 4, "ner"),
                entity(8, 9, "ner"),
                entity(10, 12, "ner"),
            ]
        };
        let spans = |merge: Merge| -> Vec<(usize, usize, String)> {
            let mut doc = existing.clone();
            merge.apply(&mut doc, model(), &rules);
            doc.into_iter()
                .map(|e| (e.start, e.end, e.source.unwrap()))
                .collect()
        };
        let s = |a: usize, b: usize, src: &str| (a, b, src.to_string());
        assert_eq!(
            spans(Merge::PreferRules),
            [
                s(0, 3, "rules"),
                s(5, 7, "rules"),
                s(8, 9, "other"),
                s(8, 9, "ner"),
                s(10, 12, "ner")
            ]
        );
        assert_eq!(
            spans(Merge::PreferModel),
            [
                s(2, 4, "ner"),
                s(5, 7, "rules"),
                s(8, 9, "other"),
                s(8, 9, "ner"),
                s(10, 12, "ner")
            ]
        );
        assert_eq!(spans(Merge::Both).len(), 6);
    }
}
