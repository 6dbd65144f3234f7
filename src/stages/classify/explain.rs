//! The facts behind each label of a K-BERT model: the text is classified once with all its
//! facts and once more per injected fact with that fact withheld
//! ([`DocumentKnowledge::without`]). A label is a decision about the whole text, pooled from
//! every token, so every fact injected into the first text can reach it (facts of a pair's
//! second text, linked by the stage itself, are not among the document's facts and are always
//! kept).
use rayon::prelude::*;

use super::features::{Example, Injected};
use super::model::{predict_examples, ClassifyModel, Scored};
use super::ClassifyError;
use crate::doc::Document;
use crate::knowledge::DocumentKnowledge;

/// A document's scores with every fact and, per injected fact, its label probabilities
/// without that fact.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// The scores with every fact.
    pub scored: Scored,
    /// `(fact, probability of each label without it)`, in fact order.
    pub without: Vec<(usize, Vec<f32>)>,
}

impl ClassifyModel {
    /// [`ClassifyModel::predict_documents`] with, for a model that injects K-BERT facts, the
    /// label probabilities without each injected fact of each document (empty otherwise):
    /// all the variants run through the network in the same length-sorted batches as the
    /// documents, `N + 1` encodings for a document with `N` injected facts.
    pub fn predict_explained(
        &self,
        docs: &[Document],
        pairs: &[Option<Document>],
    ) -> Result<Vec<Explained>, ClassifyError> {
        let injects = self.knowledge().mode.injects();
        let second = |i: usize| {
            pairs
                .get(i)
                .and_then(Option::as_ref)
                .map(DocumentKnowledge::new)
        };
        let encoded: Vec<(Example, Injected)> = docs
            .par_iter()
            .enumerate()
            .map(|(i, d)| {
                self.featurizer()
                    .encode(&DocumentKnowledge::new(d), second(i).as_ref(), Vec::new())
            })
            .collect::<Result<_, _>>()?;
        let variants: Vec<(usize, usize)> = if injects {
            encoded
                .iter()
                .enumerate()
                .flat_map(|(i, (_, inj))| {
                    let mut facts = inj.a.clone();
                    facts.sort_unstable();
                    facts.dedup();
                    facts.into_iter().map(move |f| (i, f))
                })
                .collect()
        } else {
            Vec::new()
        };
        let variant_examples: Vec<Example> = variants
            .par_iter()
            .map(|&(i, f)| {
                let a = DocumentKnowledge::new(&docs[i]).without(f);
                Ok(self
                    .featurizer()
                    .encode(&a, second(i).as_ref(), Vec::new())?
                    .0)
            })
            .collect::<Result<_, ClassifyError>>()?;
        let (mut examples, injected): (Vec<Example>, Vec<Injected>) = encoded.into_iter().unzip();
        let n = examples.len();
        examples.extend(variant_examples);
        let mut probs = predict_examples(self.network(), &examples, self.device())?;
        let variant_probs = probs.split_off(n);
        let mut out: Vec<Explained> = probs
            .into_iter()
            .zip(injected)
            .map(|(probabilities, injected)| Explained {
                scored: Scored {
                    probabilities,
                    injected,
                },
                without: Vec::new(),
            })
            .collect();
        for (&(i, f), p) in variants.iter().zip(variant_probs) {
            out[i].without.push((f, p));
        }
        Ok(out)
    }
}
