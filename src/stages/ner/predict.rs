//! Prediction over whole sentences: their windows run through the network in length-sorted
//! batches, each character takes its scores from the window where it is most central, and
//! the sentence is decoded as one sequence (Viterbi with a CRF), so windowing never cuts a
//! decoded entity. Also the entity-level evaluation of a labelled corpus.
use candle_core::Device;

use crate::doc::Document;

use super::data::Sentence;
use rayon::prelude::*;

use super::features::{Batch, Encoded, Example, Featurizer};
use super::metrics::{NerMetrics, SpanCounter};
use super::network::NerNetwork;
use super::tags::{spans, LabelMap, Tag};
use super::NerError;
use crate::model::Dropout;

/// Windows encoded per forward pass at prediction time.
pub const PREDICT_BATCH: usize = 64;

/// Score given to `O` (and its negation to every other label) for characters without a token.
pub(crate) const NO_TOKEN_O: f32 = 1e4;

/// Encodes the windows of every sentence: `items[i]` are the characters of `docs[i]`'s text
/// and `labels[i]` their gold label ids (or `labels` is empty when predicting). Returns the
/// windows of all sentences and, per sentence, the indices of its document's facts that were
/// injected.
pub fn featurize(
    featurizer: &Featurizer,
    docs: &[Document],
    items: &[Vec<String>],
    labels: &[Vec<u32>],
) -> Result<(Vec<Example>, Vec<Vec<usize>>), NerError> {
    let encoded: Vec<Encoded> = docs
        .par_iter()
        .zip(items)
        .enumerate()
        .map(|(i, (doc, chars))| {
            let gold = labels.get(i).map_or(&[][..], Vec::as_slice);
            featurizer.encode(i, doc, chars, gold)
        })
        .collect::<Result<_, _>>()?;
    let mut examples = Vec::new();
    let mut injected = Vec::with_capacity(encoded.len());
    for e in encoded {
        examples.extend(e.examples);
        injected.push(e.injected);
    }
    Ok((examples, injected))
}

/// Label ids of every character of every sentence (`lengths[i]` characters in sentence `i`).
pub fn predict_labels(
    network: &NerNetwork,
    examples: &[Example],
    lengths: &[usize],
    k: usize,
    device: &Device,
) -> Result<Vec<Vec<u32>>, NerError> {
    // Per sentence: scores (len × K) and the centrality of the window each row came from.
    let mut scores: Vec<Vec<f32>> = lengths
        .iter()
        .map(|&n| {
            (0..n * k)
                .map(|i| if i % k == 0 { NO_TOKEN_O } else { -NO_TOKEN_O })
                .collect()
        })
        .collect();
    let mut centrality: Vec<Vec<i64>> = lengths.iter().map(|&n| vec![-1; n]).collect();
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].len());
    let off = Dropout::disabled();
    for chunk in order.chunks(PREDICT_BATCH) {
        let batch_examples: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
        let batch = Batch::new(&batch_examples, device)?;
        let rows: Vec<Vec<f32>> = network.emissions(&batch, &off)?.to_vec2()?;
        let mut row = 0;
        for ex in &batch_examples {
            let n = ex.char_tokens.len();
            for (c, _) in ex.labelled() {
                let pos = ex.offset + c;
                let central = c.min(n - 1 - c) as i64;
                if central > centrality[ex.sentence][pos] {
                    centrality[ex.sentence][pos] = central;
                    scores[ex.sentence][pos * k..(pos + 1) * k].copy_from_slice(&rows[row]);
                }
                row += 1;
            }
        }
    }
    let crf = network.crf_scores()?;
    Ok(scores
        .iter()
        .zip(lengths)
        .map(|(s, &n)| network.decode(s, n, k, crf.as_ref()))
        .collect())
}

/// Entity-level metrics of predicted label ids against the sentences' gold tags.
pub fn score(labels: &LabelMap, sentences: &[Sentence], predicted: &[Vec<u32>]) -> NerMetrics {
    let mut counter = SpanCounter::default();
    for (s, pred) in sentences.iter().zip(predicted) {
        let gold_tags: Vec<Tag> = s
            .tags
            .iter()
            .map(|t| {
                Tag::parse(t).unwrap_or(Tag {
                    prefix: 'O',
                    kind: "",
                })
            })
            .collect();
        counter.add(&spans(labels.scheme, &gold_tags), &labels.spans(pred));
    }
    counter.metrics()
}

/// The dev-set evaluation of a training loop (NER training and distillation): the network's
/// predictions over `examples` (windows of `sentences`) scored against the gold tags; the
/// score is the micro F1.
pub fn dev_evaluation(
    network: &NerNetwork,
    examples: &[Example],
    sentences: &[Sentence],
    labels: &LabelMap,
    device: &Device,
) -> Result<crate::train::Evaluation, crate::train::TrainError> {
    let lengths: Vec<usize> = sentences.iter().map(|s| s.chars.len()).collect();
    let ids = predict_labels(network, examples, &lengths, labels.len(), device)
        .map_err(crate::train::TrainError::task)?;
    let m = score(labels, sentences, &ids);
    Ok(crate::train::Evaluation {
        score: m.micro.f1,
        metrics: serde_json::to_value(&m).unwrap_or_default(),
    })
}
