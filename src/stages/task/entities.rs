//! ERNIE's entity side for a training run: the fixed TransE vectors ([`entity_vectors`]),
//! and what a dEA-pretrained checkpoint (`zhishi pretrain` with `knowledge.mode = "ernie"`)
//! carries besides its Hugging Face files: the aggregator weights
//! ([`crate::model::dea::AGGREGATOR_FILE`]), its own copy of the vectors the aggregators were
//! trained against, and [`PretrainedRecord`] ([`RECORD_FILE`]) naming the KG and the TransE
//! settings, so that fine-tuning can start from those aggregators
//! ([`PretrainedAggregators::read`]) and check it links the same KG.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::config::KnowledgeTable;
use super::knowledge::{KnowledgeError, KnowledgeRecord};
use crate::kg::import::{Format, ImportOptions};
use crate::kg::transe::TrainConfig;
use crate::knowledge::ernie::VECTORS_FILE;
use crate::knowledge::EntityVectors;
use crate::model::dea::{read_entity_side, AGGREGATOR_FILE};
use crate::model::walk::ernie_only_variables;
use crate::model::BertConfig;

/// The record file of a dEA-pretrained directory.
pub const RECORD_FILE: &str = "ernie.json";

/// The ERNIE entity vectors of a run: read from `transe_dir` when it holds them, else TransE
/// trained on `kg` (`table.transe_epochs` epochs, `zhishi transe train`'s other defaults,
/// `seed`) and written to `transe_dir` when it is given. `None` when the mode fuses no entities
/// or there is no KG. Returns how the vectors were obtained as well.
pub fn entity_vectors(
    table: &KnowledgeTable,
    kg: Option<&Path>,
    transe_dir: Option<&Path>,
    seed: u64,
) -> Result<Option<(EntityVectors, TransERecord)>, KnowledgeError> {
    if !table.mode.fuses_entities() {
        return Ok(None);
    }
    if let Some(dir) = transe_dir {
        if dir.join(VECTORS_FILE).is_file() {
            let v = EntityVectors::load(dir)?;
            let record = TransERecord::of(&v, None);
            return Ok(Some((v, record)));
        }
    }
    let Some(kg) = kg else {
        return Ok(None);
    };
    let options = ImportOptions {
        format: Format::Tsv,
        strict: true,
        ..ImportOptions::default()
    };
    let (triples, _) =
        crate::kg::import::read_files(&[kg.to_path_buf()], &options).map_err(|source| {
            KnowledgeError::Import {
                path: kg.to_path_buf(),
                source,
            }
        })?;
    let config = TrainConfig {
        epochs: table.transe_epochs,
        seed,
        ..TrainConfig::default()
    };
    let vectors = EntityVectors::train(&triples, config)?;
    if let Some(dir) = transe_dir {
        vectors.save(dir)?;
    }
    let record = TransERecord::of(&vectors, Some((table.transe_epochs, seed)));
    Ok(Some((vectors, record)))
}

/// How a run's TransE vectors were obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransERecord {
    /// Entities (rows).
    pub entities: usize,
    /// Width of the vectors.
    pub dim: usize,
    /// Epochs, when trained in the run (`None`: read from a `knowledge.transe` directory).
    pub epochs: Option<usize>,
    /// The training seed, when trained in the run.
    pub seed: Option<u64>,
}

impl TransERecord {
    fn of(v: &EntityVectors, trained: Option<(usize, u64)>) -> Self {
        Self {
            entities: v.len(),
            dim: v.transe.dim,
            epochs: trained.map(|t| t.0),
            seed: trained.map(|t| t.1),
        }
    }
}

/// What a dEA-pretrained directory records about its knowledge ([`RECORD_FILE`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainedRecord {
    /// The linker settings, the KG's identity and the number of aggregator layers.
    pub knowledge: KnowledgeRecord,
    /// The TransE vectors (a copy sits in the directory).
    pub transe: TransERecord,
}

impl PretrainedRecord {
    /// Writes the record into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), KnowledgeError> {
        let path = dir.join(RECORD_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|source| KnowledgeError::Record {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, text).map_err(|source| KnowledgeError::Io { path, source })
    }

    /// Reads the record of `dir`.
    pub fn read(dir: &Path) -> Result<Self, KnowledgeError> {
        let path = dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| KnowledgeError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| KnowledgeError::Record { path, source })
    }
}

/// The pretrained entity side of a dEA checkpoint, for fine-tuning.
#[derive(Debug, Clone)]
pub struct PretrainedAggregators {
    /// The directory.
    pub dir: PathBuf,
    /// Its record.
    pub record: PretrainedRecord,
    /// The TransE vectors the aggregators were trained against.
    pub vectors: EntityVectors,
    /// The aggregator tensors (canonical names, f32), the dEA head left out.
    pub tensors: HashMap<String, Tensor>,
}

impl PretrainedAggregators {
    /// The pretrained aggregators of the encoder directory `dir`; `None` when it has no
    /// [`AGGREGATOR_FILE`] (a plain checkpoint: fine-tuning starts them fresh).
    pub fn read(dir: &Path) -> Result<Option<Self>, KnowledgeError> {
        let Some(mut tensors) =
            read_entity_side(dir, &Device::Cpu).map_err(|source| KnowledgeError::Weights {
                path: dir.join(AGGREGATOR_FILE),
                source,
            })?
        else {
            return Ok(None);
        };
        let record = PretrainedRecord::read(dir)?;
        tensors.retain(|name, _| !name.starts_with("cls."));
        let vectors = EntityVectors::load(dir)?;
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            record,
            vectors,
            tensors,
        }))
    }

    /// The number of aggregator layers the checkpoint was pretrained with.
    pub fn layers(&self) -> Option<usize> {
        self.record.knowledge.ernie_layers
    }

    /// Checks that a fine-tuning run's knowledge (`run`: its annotator's record) links the
    /// KG the aggregators were pretrained on, with the same linker settings.
    pub fn check(&self, run: &KnowledgeRecord) -> Result<(), KnowledgeError> {
        let trained = KnowledgeRecord {
            mode: run.mode,
            max_entities: run.max_entities,
            with_predicate: run.with_predicate,
            ..self.record.knowledge.clone()
        };
        run.same_as(&trained).map_err(|e| {
            KnowledgeError::Mismatch(format!(
                "{}: pretrained aggregators from other knowledge than this run's: {e}",
                self.dir.display()
            ))
        })
    }

    /// The tensors of the aggregators of `cfg` (the fine-tuning encoder's layer kinds), each
    /// checked for shape; a tensor `cfg` needs and the checkpoint lacks is an error.
    pub fn for_config(&self, cfg: &BertConfig) -> Result<Vec<(String, Tensor)>, KnowledgeError> {
        let expected = ernie_only_variables(cfg).map_err(|source| KnowledgeError::Weights {
            path: self.dir.join(AGGREGATOR_FILE),
            source,
        })?;
        expected
            .into_iter()
            .map(|(name, shape)| match self.tensors.get(&name) {
                Some(t) if t.dims() == shape.as_slice() => Ok((name, t.clone())),
                found => Err(KnowledgeError::Mismatch(format!(
                    "{}: aggregator tensor {name}: expected shape {shape:?}, found {:?}",
                    self.dir.join(AGGREGATOR_FILE).display(),
                    found.map(|t| t.dims().to_vec())
                ))),
            })
            .collect()
    }
}
