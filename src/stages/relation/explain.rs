//! The facts behind each relation of a K-BERT model: every candidate pair is classified once
//! with all its facts and once more per fact injected into its input, with that fact withheld
//! ([`DocumentKnowledge::without`]). A pair's label is pooled from its input's tokens, so
//! every fact injected into that input can reach it.
use rayon::prelude::*;

use super::features::Example;
use super::model::{predict_logits, Prediction, RelationModel};
use super::RelationError;
use crate::doc::{Document, Evidence, Span};
use crate::knowledge::DocumentKnowledge;

/// A classified pair, the facts fed to the encoder for it and, for a model that injects
/// K-BERT facts, the evidence of its label.
pub type ExplainedPair = (Prediction, Vec<usize>, Option<Vec<Evidence>>);

impl RelationModel {
    /// [`RelationModel::predict_in_documents`] with each prediction's evidence: the drop of
    /// its label's probability when each fact injected for the pair is withheld. All the
    /// variants run through the network in the same length-sorted batches, `N + 1`
    /// encodings for a pair with `N` injected facts.
    pub fn predict_explained(
        &self,
        docs: &[Document],
        pairs: &[(usize, Span, Span)],
    ) -> Result<Vec<ExplainedPair>, RelationError> {
        let injects = self.meta.knowledge.mode.injects();
        let cuts: Vec<DocumentKnowledge<'_>> =
            docs.par_iter().map(DocumentKnowledge::new).collect();
        let cut = |d: usize| {
            cuts.get(d).ok_or(RelationError::NoSuchDocument {
                index: d,
                len: docs.len(),
            })
        };
        let encoded: Vec<(Example, Vec<usize>)> = pairs
            .par_iter()
            .map(|&(d, head, tail)| self.featurizer.encode_in(cut(d)?, head, tail, 0))
            .collect::<Result<_, _>>()?;
        // (pair, fact) of every variant.
        let variants: Vec<(usize, usize)> = if injects {
            encoded
                .iter()
                .enumerate()
                .flat_map(|(p, (_, facts))| {
                    let mut facts = facts.clone();
                    facts.sort_unstable();
                    facts.dedup();
                    facts.into_iter().map(move |f| (p, f))
                })
                .collect()
        } else {
            Vec::new()
        };
        let variant_examples: Vec<Example> = variants
            .par_iter()
            .map(|&(p, f)| {
                let (d, head, tail) = pairs[p];
                let without = cut(d)?.without(f);
                Ok(self.featurizer.encode_in(&without, head, tail, 0)?.0)
            })
            .collect::<Result<_, RelationError>>()?;
        let (mut examples, injected): (Vec<Example>, Vec<Vec<usize>>) = encoded.into_iter().unzip();
        let n = examples.len();
        examples.extend(variant_examples);
        let mut logits = predict_logits(&self.network, &examples, &self.device)?;
        let variant_logits = logits.split_off(n);
        let predictions: Vec<Prediction> =
            logits.iter().map(|l| Prediction::from_logits(l)).collect();
        let mut without: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
        for (&(p, f), l) in variants.iter().zip(&variant_logits) {
            without[p].push((f, Prediction::probability_of(l, predictions[p].label)));
        }
        Ok(predictions
            .into_iter()
            .zip(injected)
            .zip(without)
            .map(|((p, facts), w)| {
                let evidence = injects.then(|| Evidence::ranked(p.score, w));
                (p, facts, evidence)
            })
            .collect())
    }
}
