//! The facts behind each entity of a K-BERT model: the sentence is run once with all its
//! facts and once more per fact that can reach an entity, with that fact withheld
//! ([`DocumentKnowledge::without`]); an entity's evidence is the drop of its span
//! probability (of the tags it was decoded with) in each of those runs.
//!
//! Which facts can reach an entity: a fact's injected tokens are visible only to its anchor
//! (the linked mention it hangs on, [`crate::knowledge::kbert`]), so the first layer carries
//! it to the anchor's tokens, and each further layer to every token that sees a token reached
//! so far ([`crate::knowledge::VisibleMatrix::reach`], as many hops as the encoder has layers
//! after the first). Without a CRF an entity's probability reads only its own characters'
//! scores, so a fact reaches it when it reaches one of them; with a CRF the probability is
//! a marginal over the whole sentence, so a fact that reaches any character reaches every
//! entity. With K-BERT's visibility, two layers already carry a fact to every sentence token
//! of its window.
use rayon::prelude::*;

use super::features::{Encoded, Example};
use super::model::{tagged, NerModel};
use super::predict::{decode_emissions, featurize, sentence_emissions};
use super::{NerError, Tagged};
use crate::doc::{Document, Evidence};
use crate::knowledge::DocumentKnowledge;

impl NerModel {
    /// [`NerModel::predict_documents`] with each entity's evidence (`Some`, possibly empty)
    /// when the model injects K-BERT facts (`None` otherwise): every variant of every
    /// document, each without one fact, runs through the network in the same length-sorted
    /// batches, so a document with `N` facts that can reach its entities costs `N + 1`
    /// encodings.
    pub fn predict_explained(&self, docs: &[Document]) -> Result<Vec<Tagged>, NerError> {
        let items: Vec<Vec<String>> = docs
            .iter()
            .map(|d| d.text.chars().map(String::from).collect())
            .collect();
        let lengths: Vec<usize> = items.iter().map(Vec::len).collect();
        let labels = &self.meta.labels;
        let (examples, injected) = featurize(&self.featurizer, docs, &items, &[])?;
        let scores = sentence_emissions(
            &self.network,
            &examples,
            &lengths,
            labels.len(),
            &self.device,
        )?;
        let decoded = decode_emissions(&self.network, &scores, &lengths, labels)?;
        if !self.meta.knowledge.mode.injects() {
            return Ok(items
                .iter()
                .zip(decoded)
                .zip(injected)
                .map(|((chars, d), inj)| tagged(chars, d, inj, None))
                .collect());
        }
        let mut windows: Vec<Vec<&Example>> = vec![Vec::new(); docs.len()];
        for ex in &examples {
            windows[ex.sentence].push(ex);
        }
        // Per document, per entity: the facts that can reach it.
        let reaching: Vec<Vec<Vec<usize>>> = docs
            .par_iter()
            .enumerate()
            .map(|(i, doc)| {
                let spans: Vec<(usize, usize)> =
                    decoded[i].spans.iter().map(|(s, e, _)| (*s, *e)).collect();
                self.reaching(doc, &windows[i], &injected[i], lengths[i], &spans)
            })
            .collect();
        // Every (document, fact) variant, each encoded without its fact.
        let variants: Vec<(usize, usize)> = reaching
            .iter()
            .enumerate()
            .flat_map(|(i, per_entity)| {
                let mut facts: Vec<usize> = per_entity.iter().flatten().copied().collect();
                facts.sort_unstable();
                facts.dedup();
                facts.into_iter().map(move |f| (i, f))
            })
            .collect();
        let encoded: Vec<Encoded> = variants
            .par_iter()
            .enumerate()
            .map(|(v, &(i, f))| {
                let cut = DocumentKnowledge::new(&docs[i]).without(f);
                self.featurizer.encode_cut(v, &cut, &items[i], &[])
            })
            .collect::<Result<_, _>>()?;
        let variant_examples: Vec<Example> = encoded.into_iter().flat_map(|e| e.examples).collect();
        let variant_lengths: Vec<usize> = variants.iter().map(|&(i, _)| lengths[i]).collect();
        let variant_scores = sentence_emissions(
            &self.network,
            &variant_examples,
            &variant_lengths,
            labels.len(),
            &self.device,
        )?;
        let crf = self.network.crf_scores()?;
        // Each variant's probability of each of its document's decoded spans.
        let without: Vec<Vec<f32>> = variants
            .par_iter()
            .zip(&variant_scores)
            .map(|(&(i, _), s)| {
                let d = &decoded[i];
                self.network
                    .span_probabilities(labels, s, &d.ids, crf.as_ref(), &d.spans)
            })
            .collect();
        let mut first = vec![0; docs.len() + 1];
        for &(i, _) in &variants {
            first[i + 1] += 1;
        }
        for i in 0..docs.len() {
            first[i + 1] += first[i];
        }
        Ok(items
            .iter()
            .zip(decoded)
            .zip(injected)
            .enumerate()
            .map(|(i, ((chars, d), inj))| {
                let mine = first[i]..first[i + 1];
                let evidence = reaching[i]
                    .iter()
                    .enumerate()
                    .map(|(e, facts)| {
                        let scored = facts.iter().filter_map(|&f| {
                            let v = mine.clone().find(|&v| variants[v].1 == f)?;
                            Some((f, without[v][e]))
                        });
                        Evidence::ranked(d.probabilities[e], scored)
                    })
                    .collect();
                tagged(chars, d, inj, Some(evidence))
            })
            .collect())
    }

    /// For each entity `spans[e]` of `doc` (of `n` characters, encoded as `windows`), the
    /// facts of `injected` that can reach it (see the module documentation), ascending.
    fn reaching(
        &self,
        doc: &Document,
        windows: &[&Example],
        injected: &[usize],
        n: usize,
        spans: &[(usize, usize)],
    ) -> Vec<Vec<usize>> {
        let hops = self.layers.saturating_sub(1);
        let crf = self.network.has_crf();
        let mut out = vec![Vec::new(); spans.len()];
        for &f in injected {
            let Some(mention) = doc.facts.get(f).and_then(|x| doc.mentions.get(x.mention)) else {
                continue;
            };
            let mut affected = vec![false; n];
            for ex in windows {
                let window = ex.offset..ex.offset + ex.char_tokens.len();
                if mention.start < window.start || mention.end > window.end {
                    continue;
                }
                let anchor: Vec<usize> = (mention.start..mention.end)
                    .filter_map(|c| ex.char_tokens[c - ex.offset])
                    .collect();
                let reached = match &ex.input.visible {
                    Some(v) => v.reach(&anchor, hops),
                    None => vec![true; ex.len()],
                };
                for (c, token) in ex.char_tokens.iter().enumerate() {
                    if token.is_some_and(|t| reached.get(t).copied().unwrap_or(false)) {
                        affected[ex.offset + c] = true;
                    }
                }
            }
            let any = affected.contains(&true);
            for (e, &(start, end)) in spans.iter().enumerate() {
                let reaches = if crf {
                    any
                } else {
                    affected[start.min(n)..end.min(n)].contains(&true)
                };
                if reaches {
                    out[e].push(f);
                }
            }
        }
        out
    }
}
