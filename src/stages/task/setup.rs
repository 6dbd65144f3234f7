//! What every encoder-fine-tuning task sets up the same way before its first step: the
//! knowledge of the run (the annotator that links its texts as a pipeline's `link` + `facts`
//! stages would, the ERNIE entity vectors and aggregator layers, a dEA-pretrained encoder's
//! own aggregators) and the encoder's variables (its configuration for training, filled from
//! the pretrained checkpoint, heads seeded).
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

use super::config::KnowledgeTable;
use super::entities::{entity_vectors, PretrainedAggregators};
use super::init::pretrained_varmap;
use super::knowledge::{Annotator, KnowledgeError, KnowledgeRecord};
use crate::knowledge::EntityVectors;
use crate::model::load::{find_weights, read_checkpoint, read_config};
use crate::model::{aggregator_config, BertConfig, EntityTable, Kernels, ModelError};

/// The knowledge a training run feeds its encoder.
pub struct TrainingKnowledge {
    /// Links the run's texts (`None` in plain mode).
    pub annotator: Option<Annotator>,
    /// What the trained model records about its knowledge.
    pub record: KnowledgeRecord,
    /// ERNIE's entity vectors (fixed during fine-tuning).
    pub entities: Option<EntityVectors>,
    /// The aggregators of a dEA-pretrained encoder, when it has them.
    pub pretrained: Option<PretrainedAggregators>,
}

impl TrainingKnowledge {
    /// Sets up the knowledge of `table` (its KG resolved) for fine-tuning `encoder`:
    /// `transe` is a TransE directory to reuse, `seed` trains fresh vectors otherwise.
    pub fn prepare(
        table: &KnowledgeTable,
        encoder: &Path,
        transe: Option<&Path>,
        seed: u64,
    ) -> Result<Self, KnowledgeError> {
        let fuses = table.mode.fuses_entities();
        let pretrained = if fuses {
            PretrainedAggregators::read(encoder)?
        } else {
            None
        };
        let ernie_layers = if fuses {
            let layers = read_config(encoder)
                .map_err(|e| KnowledgeError::Mismatch(crate::error::report(&e)))?
                .num_hidden_layers;
            match pretrained.as_ref().and_then(PretrainedAggregators::layers) {
                Some(n) if table.ernie_layers.is_some_and(|m| m != n) => {
                    return Err(KnowledgeError::Mismatch(format!(
                        "knowledge.ernie_layers = {} but the encoder {} was pretrained with {n} aggregator layers",
                        table.ernie_layers.unwrap_or_default(),
                        encoder.display()
                    )));
                }
                Some(n) => Some(n),
                None => Some(table.aggregator_layers(layers)),
            }
        } else {
            None
        };
        let annotator = Annotator::from_table(table, ernie_layers)?;
        if let (Some(p), Some(a)) = (&pretrained, &annotator) {
            p.check(a.record())?;
        }
        let record = annotator
            .as_ref()
            .map_or_else(KnowledgeRecord::plain, |a| a.record().clone());
        let entities = match &pretrained {
            Some(p) => {
                if transe.is_some() {
                    tracing::warn!(
                        "knowledge.transe is ignored: the pretrained aggregators of {} come with their own TransE vectors",
                        p.dir.display()
                    );
                }
                Some(p.vectors.clone())
            }
            None => entity_vectors(table, table.kg.as_deref(), transe, seed)?.map(|(v, _)| v),
        };
        Ok(Self {
            annotator,
            record,
            entities,
            pretrained,
        })
    }

    /// ERNIE's aggregator layers and entity table on `device`, when the run fuses entities.
    pub fn ernie(
        &self,
        device: &Device,
    ) -> Result<Option<(usize, EntityTable)>, candle_core::Error> {
        match (&self.entities, self.record.ernie_layers) {
            (Some(v), Some(layers)) => Ok(Some((layers, EntityTable::new(&v.tensor(device)?)?))),
            _ => Ok(None),
        }
    }
}

/// A task network's variables at the start of fine-tuning.
pub struct TrainingVars {
    /// Every variable, by checkpoint name.
    pub varmap: VarMap,
    /// The encoder configuration the network was built with (differentiable kernels; ERNIE
    /// aggregators on top when the run fuses entities).
    pub config: BertConfig,
    /// The encoder directory they were filled from.
    pub encoder_dir: PathBuf,
}

impl TrainingVars {
    /// Builds the network with `build` (given a `VarBuilder` over a new `VarMap` and the
    /// training configuration of `encoder_dir`, ERNIE's with `ernie_layers` and the
    /// aggregators of a dEA-`pretrained` encoder), fills the
    /// encoder's variables from the checkpoint and seeds the rest (see
    /// [`pretrained_varmap`]); variables under `optional` prefixes (e.g. `pooler.`) take the
    /// checkpoint's values where it has them with the same shape; a dEA-pretrained encoder's
    /// aggregators replace the fresh ones.
    pub fn build<N>(
        encoder_dir: &Path,
        ernie_layers: Option<usize>,
        pretrained: Option<&PretrainedAggregators>,
        (random, optional): (&[&str], &[&str]),
        seed: u64,
        device: &Device,
        build: impl FnOnce(VarBuilder<'static>, &BertConfig) -> candle_core::Result<N>,
    ) -> Result<(N, Self), TrainingSetupError> {
        let mut config = read_config(encoder_dir)?;
        config.kernels = Kernels::Differentiable;
        config.layer_types = None;
        if let Some(n) = ernie_layers {
            config = aggregator_config(&config, n);
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let network = build(vb, &config)?;
        pretrained_varmap(&varmap, encoder_dir, &config, random, seed, device)?;
        if !optional.is_empty() {
            fill_optional(&varmap, encoder_dir, optional)?;
        }
        if let (Some(p), Some(_)) = (pretrained, ernie_layers) {
            let mut vars = varmap.clone();
            for (name, t) in p.for_config(&config)? {
                vars.set_one(&name, t)?;
            }
            tracing::info!(encoder = %encoder_dir.display(), "ERNIE aggregators: from the encoder's dEA pretraining");
        } else if let Some(n) = ernie_layers {
            tracing::info!(layers = n, "ERNIE aggregators: fresh");
        }
        Ok((
            network,
            Self {
                varmap,
                config,
                encoder_dir: encoder_dir.to_path_buf(),
            },
        ))
    }
}

/// Sets the variables of `varmap` under `prefixes` to the checkpoint's tensors of the same
/// name and shape; returns how many it set (a checkpoint without them leaves them seeded).
pub fn fill_optional(
    varmap: &VarMap,
    encoder_dir: &Path,
    prefixes: &[&str],
) -> Result<usize, ModelError> {
    let checkpoint = read_checkpoint(&find_weights(encoder_dir)?)?;
    let vars = varmap
        .data()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut set = 0;
    for (name, t) in checkpoint {
        let name = crate::model::load::canonical_name(&name);
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        if let Some(var) = vars.get(&name) {
            if var.shape() == t.shape() {
                var.set(&t.to_dtype(DType::F32)?)?;
                set += 1;
            }
        }
    }
    tracing::info!(set, prefixes = ?prefixes, "head weights from the checkpoint");
    Ok(set)
}

/// Why a task network's variables could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TrainingSetupError {
    /// The checkpoint could not be read.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The pretrained aggregators do not fit.
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    /// A tensor operation failed.
    #[error("tensor error")]
    Candle(#[from] candle_core::Error),
}
