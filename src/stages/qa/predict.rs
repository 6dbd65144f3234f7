//! Prediction over whole questions: all windows run through the network in length-sorted
//! batches, each window yields its n-best candidates, and each question keeps the best spans
//! across its windows. Also the CMRC 2018 evaluation of a labelled set.
use candle_core::Device;

use super::config::DecodeOptions;
use super::data::QaRecord;
use super::decode::{best, window_candidates, SpanCandidate};
use super::features::{Batch, QaFeaturizer, Window};
use super::metrics::{QaCounter, QaMetrics};
use super::network::QaNetwork;
use super::QaError;
use crate::model::Dropout;

/// Windows encoded per forward pass at prediction time.
pub const PREDICT_BATCH: usize = 32;

/// Encodes the windows of every `(question, context, answer span)` triple; the span, when
/// given, sets the training labels. Window `record`s count the triples from 0.
pub fn featurize<'a>(
    featurizer: &QaFeaturizer,
    pairs: impl IntoIterator<Item = (&'a str, &'a str, Option<crate::doc::Span>)>,
) -> Result<Vec<Window>, QaError> {
    let mut out = Vec::new();
    for (i, (question, context, answer)) in pairs.into_iter().enumerate() {
        out.extend(featurizer.encode(i, question, context, answer)?);
    }
    Ok(out)
}

/// The best `k` candidates of each of `questions` questions from their windows.
pub fn predict_spans(
    network: &QaNetwork,
    windows: &[Window],
    questions: usize,
    decode: &DecodeOptions,
    k: usize,
    device: &Device,
) -> Result<Vec<Vec<SpanCandidate>>, QaError> {
    let mut per_question: Vec<Vec<SpanCandidate>> = vec![Vec::new(); questions];
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by_key(|&i| windows[i].len());
    let off = Dropout::disabled();
    for chunk in order.chunks(PREDICT_BATCH) {
        let batch_windows: Vec<&Window> = chunk.iter().map(|&i| &windows[i]).collect();
        let batch = Batch::new(&batch_windows, device)?;
        let (start, end) = network.logits(&batch.input, &off)?;
        let (start, end): (Vec<Vec<f32>>, Vec<Vec<f32>>) = (start.to_vec2()?, end.to_vec2()?);
        for ((w, s), e) in batch_windows.iter().zip(&start).zip(&end) {
            let from = w.context_start;
            let to = from + w.offsets.len();
            per_question[w.record].extend(window_candidates(w, &s[from..to], &e[from..to], decode));
        }
    }
    Ok(per_question.into_iter().map(|c| best(c, k)).collect())
}

/// CMRC 2018 scores of the best predicted span of each record (`windows` encoded from
/// `records` in order).
pub fn evaluate(
    network: &QaNetwork,
    records: &[QaRecord],
    windows: &[Window],
    decode: &DecodeOptions,
    device: &Device,
) -> Result<QaMetrics, QaError> {
    let spans = predict_spans(network, windows, records.len(), decode, 1, device)?;
    let mut counter = QaCounter::default();
    for (record, ranked) in records.iter().zip(&spans) {
        let golds: Vec<&str> = record.answers.iter().map(|a| a.text.as_str()).collect();
        let prediction = ranked
            .first()
            .map(|c| super::decode::to_answers(&record.context, std::slice::from_ref(c)))
            .and_then(|a| a.into_iter().next())
            .map(|a| a.text);
        counter.add(&golds, prediction.as_deref());
    }
    Ok(counter.metrics())
}
