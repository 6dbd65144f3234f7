//! The weights a network has, read off the network itself: build it over a [`VarBuilder`]
//! that hands out zero-strided zeros and write down every variable asked for, by name and
//! shape. The load tree (`BertModel::load`, `ErnieModel::load`, ...) is then the only
//! description of a model's weights: selecting a checkpoint's tensors, initialising the ones
//! it lacks and counting them all follow from it.
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use super::bert::BertModel;
use super::config::{BertConfig, Kernels, LayerType};
use super::ernie::ErnieModel;

/// A variable's name and shape.
pub type Variable = (String, Vec<usize>);

/// A backend that records every request and answers with zeros that own no memory.
struct Recorder(Arc<Mutex<Vec<Variable>>>);

impl SimpleBackend for Recorder {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _init: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name.to_string(), shape.dims().to_vec()));
        Tensor::zeros((), dtype, dev)?.broadcast_as(shape)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        Err(candle_core::Error::CannotFindTensor {
            path: name.to_string(),
        })
    }

    /// Optional tensors (saved int8 scales) are absent: only the network's own variables count.
    fn contains_tensor(&self, _name: &str) -> bool {
        false
    }
}

/// The variables `build` asks its builder for, in order, by name and shape.
pub fn variables<T>(build: impl FnOnce(VarBuilder<'static>) -> Result<T>) -> Result<Vec<Variable>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let vb = VarBuilder::from_backend(
        Box::new(Recorder(Arc::clone(&seen))),
        DType::F32,
        Device::Cpu,
    );
    build(vb)?;
    let mut out = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    // A shared (ALBERT) layer is asked for once per use: keep the first request of each name.
    let mut names = std::collections::HashSet::new();
    out.retain(|(name, _)| names.insert(name.clone()));
    Ok(out)
}

/// `cfg` for walking: candle ops (nothing packed at load), no ERNIE layer types.
fn walk_config(cfg: &BertConfig) -> BertConfig {
    let mut cfg = cfg.clone();
    cfg.kernels = Kernels::Differentiable;
    cfg
}

/// Every parameter of the plain BERT (or ALBERT) encoder of `cfg`, with its shape.
pub fn bert_variables(cfg: &BertConfig) -> Result<Vec<Variable>> {
    let mut cfg = walk_config(cfg);
    cfg.layer_types = None;
    variables(|vb| BertModel::load(vb, &cfg))
}

/// Every parameter an ERNIE-THU encoder of `cfg` has that the plain BERT of `cfg` lacks (the
/// entity side of its fusion layers), with its shape.
pub fn ernie_only_variables(cfg: &BertConfig) -> Result<Vec<Variable>> {
    // Without aggregator layers there is no entity side (and an ALBERT cannot have one).
    if cfg.layer_kinds().iter().all(|k| *k == LayerType::Sim) {
        return Ok(Vec::new());
    }
    let bert: std::collections::HashSet<String> =
        bert_variables(cfg)?.into_iter().map(|(n, _)| n).collect();
    let cfg = walk_config(cfg);
    let mut all = variables(|vb| ErnieModel::load(vb, &cfg))?;
    all.retain(|(name, _)| !bert.contains(name));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::ernie::aggregator_config;
    use crate::model::AlbertConfig;

    fn tiny() -> BertConfig {
        crate::model::config::micro_config(3)
    }

    fn map(v: Vec<(String, Vec<usize>)>) -> BTreeMap<String, Vec<usize>> {
        v.into_iter().collect()
    }

    #[test]
    fn a_bert_has_its_embeddings_and_sixteen_tensors_per_layer() {
        let vars = map(bert_variables(&tiny()).unwrap());
        assert_eq!(vars.len(), 5 + 3 * 16);
        assert_eq!(vars["embeddings.word_embeddings.weight"], [12, 8]);
        assert_eq!(vars["encoder.layer.2.intermediate.dense.weight"], [16, 8]);
        assert_eq!(vars["encoder.layer.0.output.LayerNorm.bias"], [8]);
    }

    #[test]
    fn an_albert_has_its_narrow_tables_the_projection_and_its_distinct_layers() {
        let cfg = AlbertConfig::parse(
            r#"{"embedding_size":8,"hidden_size":16,"num_attention_heads":2,
                "intermediate_size":32,"num_hidden_layers":6,"num_hidden_groups":2,
                "vocab_size":40,"max_position_embeddings":24}"#,
        )
        .unwrap();
        let vars = map(bert_variables(&cfg).unwrap());
        assert_eq!(vars.len(), 5 + 2 + 2 * 16, "shared layers are listed once");
        assert_eq!(vars["embeddings.word_embeddings.weight"], [40, 8]);
        assert_eq!(vars["encoder.embedding_hidden_mapping_in.weight"], [16, 8]);
    }

    #[test]
    fn an_ernie_adds_its_entity_side() {
        // The top two of three layers become aggregators: each has entity-side attention
        // (3 projections, output dense and LayerNorm: 10 tensors) and the fusion's two denses
        // and LayerNorm (6); the `sim` layer below them has no entity side.
        let cfg = aggregator_config(&tiny(), 2);
        let vars = map(ernie_only_variables(&cfg).unwrap());
        assert_eq!(vars.len(), 2 * 16, "{:?}", vars.keys());
        assert_eq!(
            vars["encoder.layer.2.attention.self_ent.query.weight"],
            [100, 100]
        );
        assert_eq!(
            vars["encoder.layer.1.intermediate.dense_ent.weight"],
            [16, 100]
        );
        assert!(!vars.keys().any(|n| n.starts_with("encoder.layer.0.")));
        assert!(
            ernie_only_variables(&tiny()).unwrap().is_empty(),
            "a plain BERT"
        );
    }
}
