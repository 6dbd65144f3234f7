//! Every parameter of the NER network — embeddings, every encoder layer, classifier and CRF —
//! receives a non-zero gradient from the training loss, with and without the CRF and with
//! K-BERT inputs (soft positions and a visible matrix), and through ERNIE-THU aggregators
//! (word embeddings and entity-side weights alike). candle-nn's LayerNorm and
//! `softmax_last_dim` would silently stop these gradients.
use crate::support::grad_check;
use crate::support::symptom_kg;
use crate::support::tiny::tiny_config;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use zhishi::knowledge::CharVocab;
use zhishi::model::Dropout;
use zhishi::model::{aggregator_config, BertConfig, EntityTable, Kernels};
use zhishi::stages::ner::features::{Batch, Featurizer};
use zhishi::stages::ner::network::NerNetwork;
use zhishi::stages::ner::{LabelMap, TagScheme};
use zhishi::stages::task::Injection;
use zhishi::text::annotate;

const VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "患", "者", "头", "痛", "发", "热", "症", "状",
];

fn chars(s: &str) -> Vec<String> {
    s.chars().map(String::from).collect()
}

/// Names of the parameters whose gradient is missing or all zero.
fn params_without_gradient(crf: bool, knowledge: Injection) -> Vec<String> {
    params_without_gradient_in(crf, knowledge, None)
}

/// The same with an ERNIE encoder of `n` aggregator layers over `table`.
fn params_without_gradient_in(
    crf: bool,
    knowledge: Injection,
    ernie: Option<(usize, EntityTable)>,
) -> Vec<String> {
    let cfg = BertConfig {
        kernels: Kernels::Differentiable,
        ..tiny_config(VOCAB.len(), 16)
    };
    let labels = LabelMap::new(TagScheme::Bio, ["Symptom".to_string()]);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let (cfg, table) = match ernie {
        Some((n, table)) => (aggregator_config(&cfg, n), Some(table)),
        None => (cfg, None),
    };
    let net = NerNetwork::load_with_entities(vb, &cfg, &labels, crf, table).unwrap();
    let vocab = CharVocab::from_tokens(VOCAB.iter().copied()).unwrap();
    let f = Featurizer::new(vocab, 12, 6, knowledge);
    // 患者头痛发热: O O B I B I (头痛, 发热 are symptoms).
    // The documents as the pipeline's link + facts stages write them (one fact per mention).
    let linker = symptom_kg::linker();
    let doc = |text: &str| annotate(&linker, text, 1).unwrap();
    let a = f
        .encode(
            0,
            &doc("患者头痛发热"),
            &chars("患者头痛发热"),
            &[0, 0, 1, 2, 1, 2],
        )
        .unwrap()
        .examples;
    let b = f
        .encode(1, &doc("头痛"), &chars("头痛"), &[1, 2])
        .unwrap()
        .examples;
    let batch = Batch::new(&[&a[0], &b[0]], &Device::Cpu).unwrap();
    let loss = net.loss(&batch, &Dropout::new(0.1, 3)).unwrap();
    let grads = loss.backward().unwrap();
    grad_check::params_without_gradient(&varmap, &grads)
}

#[test]
fn every_parameter_gets_a_gradient_through_the_crf() {
    assert_eq!(
        params_without_gradient(true, Injection::plain()),
        Vec::<String>::new()
    );
}

#[test]
fn every_parameter_gets_a_gradient_through_the_softmax_head() {
    assert_eq!(
        params_without_gradient(false, Injection::plain()),
        Vec::<String>::new()
    );
}

#[test]
fn every_parameter_gets_a_gradient_with_kbert_knowledge() {
    let knowledge = Injection::kbert(1, false);
    assert_eq!(
        params_without_gradient(true, knowledge),
        Vec::<String>::new()
    );
}

#[test]
fn gradients_reach_word_embeddings_and_ernie_entity_weights_through_the_crf() {
    let vectors = symptom_kg::vectors();
    let table = EntityTable::new(&vectors.tensor(&Device::Cpu).unwrap()).unwrap();
    let knowledge = Injection::kbert(0, false).with_vectors(vectors);
    // Both layers aggregate. 头痛 and 发热 each carry an entity, so the entity attention of
    // the first layer mixes two entities and its output feeds the second layer. Only the
    // second (last) layer's entity output is unused by the head: its entity-side output
    // projection and LayerNorm are the one place no gradient can reach. (A key bias adds the
    // same amount to every score of a softmax row, so its true gradient is zero; whether
    // rounding leaves it a tiny non-zero one is not what this test is about.)
    let missing: Vec<String> = params_without_gradient_in(true, knowledge, Some((2, table)))
        .into_iter()
        .filter(|n| !n.ends_with("key.bias"))
        .collect();
    assert_eq!(
        missing,
        [
            "encoder.layer.1.output.LayerNorm_ent.bias",
            "encoder.layer.1.output.LayerNorm_ent.weight",
            "encoder.layer.1.output.dense_ent.bias",
            "encoder.layer.1.output.dense_ent.weight",
        ]
    );
}
