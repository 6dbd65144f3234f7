//! Prediction over whole sentences: their windows run through the network in length-sorted
//! batches, each character takes its scores from the window where it is most central, and
//! the sentence is decoded as one sequence (Viterbi with a CRF), so windowing never cuts a
//! decoded entity. Also the entity-level evaluation of a labelled corpus.
use candle_core::Device;

use crate::doc::Document;

use super::data::Sentence;
use rayon::prelude::*;

use super::features::{Batch, Encoded, Example, Featurizer};
use super::metrics::{AtMinScore, NerMetrics, SpanCounter};
use super::network::NerNetwork;
use super::tags::{spans_of_strings, LabelMap};
use super::NerError;
use crate::model::Dropout;
use crate::stages::calibration::{Calibration, BINS};

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

/// Each sentence's scores (`lengths[i] × k`, row-major): every character's from the window
/// where it is most central; a character without a token scores `O` ([`NO_TOKEN_O`]).
pub(crate) fn sentence_emissions(
    network: &NerNetwork,
    examples: &[Example],
    lengths: &[usize],
    k: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>, NerError> {
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
    Ok(scores)
}

/// Label ids of every character of every sentence (`lengths[i]` characters in sentence `i`).
pub fn predict_labels(
    network: &NerNetwork,
    examples: &[Example],
    lengths: &[usize],
    k: usize,
    device: &Device,
) -> Result<Vec<Vec<u32>>, NerError> {
    let scores = sentence_emissions(network, examples, lengths, k, device)?;
    let crf = network.crf_scores()?;
    Ok(scores
        .iter()
        .zip(lengths)
        .map(|(s, &n)| network.decode(s, n, k, crf.as_ref()))
        .collect())
}

/// One sentence as the model decoded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The label id of every character.
    pub ids: Vec<u32>,
    /// The entity spans `(start, end_exclusive, type)` the ids encode.
    pub spans: Vec<(usize, usize, String)>,
    /// The probability of each span (see [`super::confidence`]), in `spans` order.
    pub probabilities: Vec<f32>,
}

/// [`predict_labels`] with the entity spans of every sentence and their probabilities,
/// computed from the same whole-sentence scores the decoding read.
pub fn predict_spans(
    network: &NerNetwork,
    examples: &[Example],
    lengths: &[usize],
    labels: &LabelMap,
    device: &Device,
) -> Result<Vec<Decoded>, NerError> {
    let scores = sentence_emissions(network, examples, lengths, labels.len(), device)?;
    decode_emissions(network, &scores, lengths, labels)
}

/// Decodes each sentence's scores (`lengths[i] × K`, from [`sentence_emissions`]): label
/// ids, entity spans and their probabilities.
pub(crate) fn decode_emissions(
    network: &NerNetwork,
    scores: &[Vec<f32>],
    lengths: &[usize],
    labels: &LabelMap,
) -> Result<Vec<Decoded>, NerError> {
    let k = labels.len();
    let crf = network.crf_scores()?;
    Ok(scores
        .par_iter()
        .zip(lengths)
        .map(|(s, &n)| {
            let ids = network.decode(s, n, k, crf.as_ref());
            let spans = labels.spans(&ids);
            let probabilities = network.span_probabilities(labels, s, &ids, crf.as_ref(), &spans);
            Decoded {
                ids,
                spans,
                probabilities,
            }
        })
        .collect())
}

/// The gold spans of a sentence.
fn gold_spans(labels: &LabelMap, sentence: &Sentence) -> Vec<(usize, usize, String)> {
    spans_of_strings(labels.scheme, &sentence.tags)
}

/// Entity-level metrics of predicted label ids against the sentences' gold tags.
pub fn score(labels: &LabelMap, sentences: &[Sentence], predicted: &[Vec<u32>]) -> NerMetrics {
    let mut counter = SpanCounter::default();
    for (s, pred) in sentences.iter().zip(predicted) {
        counter.add(&gold_spans(labels, s), &labels.spans(pred));
    }
    counter.metrics()
}

/// The `min_score` thresholds evaluation reports scores at, besides none.
pub const EVAL_MIN_SCORES: [f64; 2] = [0.5, 0.9];

/// [`score`] of scored predictions, with the calibration of the entities' probabilities
/// ([`crate::stages::calibration::BINS`] bins) and the micro scores at each of
/// [`EVAL_MIN_SCORES`].
pub fn score_decoded(labels: &LabelMap, sentences: &[Sentence], decoded: &[Decoded]) -> NerMetrics {
    let mut all = SpanCounter::default();
    let mut kept: Vec<SpanCounter> = vec![SpanCounter::default(); EVAL_MIN_SCORES.len()];
    let mut scored = Vec::new();
    for (s, d) in sentences.iter().zip(decoded) {
        let gold = gold_spans(labels, s);
        all.add(&gold, &d.spans);
        for (counter, &min) in kept.iter_mut().zip(&EVAL_MIN_SCORES) {
            let above: Vec<_> = d
                .spans
                .iter()
                .zip(&d.probabilities)
                // As the stage compares: the score against the threshold as an f32.
                .filter(|(_, &p)| p >= min as f32)
                .map(|(span, _)| span.clone())
                .collect();
            counter.add(&gold, &above);
        }
        for (span, &p) in d.spans.iter().zip(&d.probabilities) {
            scored.push((p, gold.contains(span)));
        }
    }
    let mut metrics = all.metrics();
    metrics.calibration = Some(Calibration::new(&scored, BINS));
    metrics.at_min_score = kept
        .iter()
        .zip(EVAL_MIN_SCORES)
        .map(|(counter, min_score)| AtMinScore {
            min_score,
            scores: counter.metrics().micro,
        })
        .collect();
    metrics
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
