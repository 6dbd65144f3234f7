//! `train.batching = "packed"` puts several short examples into one encoder row. That must not
//! change what is computed: the loss and every parameter's gradient of a packed batch equal
//! those of the same examples padded one per row (NER with and without CRF, plain, K-BERT and
//! ERNIE inputs; relation extraction), while the batch holds fewer padded tokens.
use crate::support::symptom_kg;
use crate::support::tiny::tiny_config;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use zhishi::doc::Document;
use zhishi::doc::Span;
use zhishi::knowledge::{CharVocab, Layout};
use zhishi::model::Dropout;
use zhishi::model::{aggregator_config, BertConfig, EntityTable, Kernels};
use zhishi::stages::ner::features::{Batch, Example, Featurizer};
use zhishi::stages::ner::network::NerNetwork;
use zhishi::stages::ner::{LabelMap, TagScheme};
use zhishi::stages::relation;
use zhishi::stages::task::Injection;

const VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "患", "者", "头", "痛", "发", "热", "症", "状", "#", "$",
];

/// `text` with its mentions and one fact each, as a pipeline's link + facts stages write it.
fn linked(text: &str) -> Document {
    zhishi::text::annotate(&symptom_kg::linker(), text, 1).unwrap()
}

fn chars(s: &str) -> Vec<String> {
    s.chars().map(String::from).collect()
}

/// The tiny encoder over [`VOCAB`] with the kernels training uses.
fn encoder_config() -> BertConfig {
    BertConfig {
        kernels: Kernels::Differentiable,
        ..tiny_config(VOCAB.len(), 24)
    }
}

/// Loss and gradients (by parameter name) of one batch.
struct Outcome {
    loss: f32,
    grads: Vec<(String, Tensor)>,
    padded_tokens: usize,
}

fn outcome(varmap: &VarMap, loss: Tensor, padded_tokens: usize) -> Outcome {
    let grads = loss.backward().unwrap();
    let vars = varmap.data().lock().unwrap();
    let mut named: Vec<(String, Tensor)> = vars
        .iter()
        .map(|(name, var)| {
            let g = grads
                .get(var.as_tensor())
                .cloned()
                .unwrap_or_else(|| var.as_tensor().zeros_like().unwrap());
            (name.clone(), g)
        })
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Outcome {
        loss: loss.to_scalar::<f32>().unwrap(),
        grads: named,
        padded_tokens,
    }
}

fn assert_same(padded: &Outcome, packed: &Outcome) {
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()));
    assert!(
        close(padded.loss, packed.loss),
        "loss {} vs {}",
        padded.loss,
        packed.loss
    );
    assert_eq!(padded.grads.len(), packed.grads.len());
    let mut nonzero = 0;
    for ((name, a), (_, b)) in padded.grads.iter().zip(&packed.grads) {
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + scale),
                "{name}: gradient {x} (padded) vs {y} (packed)"
            );
        }
        nonzero += usize::from(scale > 0.0);
    }
    assert!(
        nonzero > padded.grads.len() / 2,
        "too few gradients to compare"
    );
    assert!(
        packed.padded_tokens < padded.padded_tokens,
        "packing saved nothing: {} vs {}",
        packed.padded_tokens,
        padded.padded_tokens
    );
}

/// Sentences of very different lengths, so that several short ones fit beside the longest.
fn ner_examples(f: &Featurizer) -> Vec<Example> {
    let sentences: [(&str, &[u32]); 4] = [
        (
            "患者头痛发热患者发热头痛",
            &[0, 0, 1, 2, 1, 2, 0, 0, 1, 2, 1, 2],
        ),
        ("头痛", &[1, 2]),
        ("患者发热", &[0, 0, 1, 2]),
        ("热", &[0]),
    ];
    sentences
        .iter()
        .enumerate()
        .flat_map(|(i, (s, tags))| f.encode(i, &linked(s), &chars(s), tags).unwrap().examples)
        .collect()
}

fn ner_outcomes(crf: bool, knowledge: Injection, ernie: Option<EntityTable>) -> [Outcome; 2] {
    let labels = LabelMap::new(TagScheme::Bio, ["Symptom".to_string()]);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let cfg = match ernie {
        Some(_) => aggregator_config(&encoder_config(), 1),
        None => encoder_config(),
    };
    let net = NerNetwork::load_with_entities(vb, &cfg, &labels, crf, ernie).unwrap();
    let vocab = CharVocab::from_tokens(VOCAB.iter().copied()).unwrap();
    let examples = ner_examples(&Featurizer::new(vocab, 22, 11, knowledge));
    let refs: Vec<&Example> = examples.iter().collect();
    [Layout::Padded, Layout::Packed].map(|layout| {
        let batch = Batch::with_layout(&refs, layout, &Device::Cpu).unwrap();
        let loss = net.loss(&batch, &Dropout::disabled()).unwrap();
        outcome(&varmap, loss, batch.input.padded_tokens)
    })
}

#[test]
fn packed_ner_batches_train_exactly_like_padded_ones() {
    for crf in [false, true] {
        let [padded, packed] = ner_outcomes(crf, Injection::plain(), None);
        assert_same(&padded, &packed);
    }
}

#[test]
fn packed_kbert_batches_keep_each_sentence_tree_to_itself() {
    let knowledge = Injection::kbert(1, false);
    let [padded, packed] = ner_outcomes(true, knowledge, None);
    assert_same(&padded, &packed);
}

#[test]
fn packed_ernie_batches_keep_entities_on_their_tokens() {
    let vectors = symptom_kg::vectors();
    let table = EntityTable::new(&vectors.tensor(&Device::Cpu).unwrap()).unwrap();
    let knowledge = Injection::kbert(0, false).with_vectors(vectors);
    let [padded, packed] = ner_outcomes(false, knowledge, Some(table));
    assert_same(&padded, &packed);
}

#[test]
fn packed_relation_batches_train_exactly_like_padded_ones() {
    use relation::features::{Batch, Featurizer};
    use relation::network::RelationNetwork;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = RelationNetwork::load(vb, &encoder_config(), 3).unwrap();
    let vocab = CharVocab::from_tokens(VOCAB.iter().copied()).unwrap();
    let f = Featurizer::new(vocab, ["#", "$"], 22, Injection::plain()).unwrap();
    let long = Document::new("患者头痛发热患者发热头痛患者头痛");
    let short = Document::new("头痛发热");
    let examples = [
        f.encode(&long, Span::new(2, 4), Span::new(4, 6), 1)
            .unwrap()
            .0,
        f.encode(&short, Span::new(0, 2), Span::new(2, 4), 2)
            .unwrap()
            .0,
        f.encode(&short, Span::new(2, 4), Span::new(0, 2), 0)
            .unwrap()
            .0,
    ];
    let refs: Vec<_> = examples.iter().collect();
    let [padded, packed] = [Layout::Padded, Layout::Packed].map(|layout| {
        let batch = Batch::with_layout(&refs, layout, &Device::Cpu).unwrap();
        let loss = net.loss(&batch, &Dropout::disabled()).unwrap();
        outcome(&varmap, loss, batch.input.padded_tokens)
    });
    assert_same(&padded, &packed);
}
