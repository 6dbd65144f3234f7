//! Every parameter of the relation network — embeddings, every encoder layer and the pooled
//! classifier — receives a non-zero gradient from the training loss, with plain and with
//! K-BERT inputs (soft positions and a visible matrix). candle-nn's LayerNorm and
//! `softmax_last_dim` would silently stop these gradients.
use crate::support::grad_check;
use crate::support::tiny::tiny_config;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use zhishi::doc::Document;
use zhishi::doc::Span;
use zhishi::knowledge::CharVocab;
use zhishi::model::Dropout;
use zhishi::model::{BertConfig, Kernels};
use zhishi::stages::relation::features::{Batch, Featurizer};
use zhishi::stages::relation::network::RelationNetwork;
use zhishi::stages::task::Injection;
use zhishi::text::{LinkOptions, Linker, MemoryKg};

const VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "#", "$", "张", "三", "住", "在", "北", "京", "城", "市",
];

/// Names of the parameters whose gradient is missing or all zero.
fn params_without_gradient(knowledge: Injection, doc: Document) -> Vec<String> {
    let cfg = BertConfig {
        kernels: Kernels::Differentiable,
        ..tiny_config(VOCAB.len(), 24)
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = RelationNetwork::load(vb, &cfg, 3).unwrap();
    let vocab = CharVocab::from_tokens(VOCAB.iter().copied()).unwrap();
    let f = Featurizer::new(vocab, ["#", "$"], 20, knowledge).unwrap();
    let (a, _) = f.encode(&doc, Span::new(0, 2), Span::new(4, 6), 1).unwrap();
    let (b, _) = f.encode(&doc, Span::new(4, 6), Span::new(0, 2), 0).unwrap();
    let batch = Batch::new(&[&a, &b], &Device::Cpu).unwrap();
    let loss = net.loss(&batch, &Dropout::new(0.1, 3)).unwrap();
    let grads = loss.backward().unwrap();
    grad_check::params_without_gradient(&varmap, &grads)
}

#[test]
fn every_parameter_gets_a_gradient_with_plain_inputs() {
    assert_eq!(
        params_without_gradient(Injection::plain(), Document::new("张三住在北京")),
        Vec::<String>::new()
    );
}

#[test]
fn every_parameter_gets_a_gradient_with_kbert_inputs() {
    let kg = MemoryKg::from_triples([("北京", "类型", "城市")]);
    let options = LinkOptions {
        nil_threshold: 0.0,
        ..Default::default()
    };
    let doc =
        zhishi::text::annotate(&Linker::build(kg, options).unwrap(), "张三住在北京", 1).unwrap();
    assert_eq!(doc.facts.len(), 1, "北京 is linked and has its fact");
    assert_eq!(
        params_without_gradient(Injection::kbert(1, false), doc),
        Vec::<String>::new()
    );
}
