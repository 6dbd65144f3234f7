//! Checkpoints: [`Trainer::save_checkpoint`] writes the vectors, optimizer state, epoch and
//! settings to a safetensors file, [`Trainer::resume`] continues from one, and a fingerprint
//! of the triples guards against resuming on other data.
use std::collections::HashMap;
use std::path::Path;

use super::{Optimizer, TrainConfig, Trainer};
use crate::kg::transe::model::{write_matrices, TensorFile};
use crate::kg::transe::TransEError;

impl Trainer {
    /// Saves everything needed to continue this run (vectors, optimizer state, epoch, settings).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TransEError> {
        let config =
            serde_json::to_string(&self.config).map_err(|e| TransEError::Config(e.to_string()))?;
        let metadata = HashMap::from([
            ("kind".to_string(), CHECKPOINT_KIND.to_string()),
            ("config".to_string(), config),
            ("epochs_done".to_string(), self.epochs_done.to_string()),
            (
                "fingerprint".to_string(),
                format!("{:016x}", self.fingerprint),
            ),
        ]);
        let relation_rows = self.model.relation.len() / self.config.dim;
        let mut matrices = vec![
            ("entity", &self.model.entity[..], self.model.num_entities()),
            ("relation", &self.model.relation[..], relation_rows),
        ];
        if self.config.optimizer == Optimizer::Adagrad {
            matrices.push((
                "entity_state",
                &self.entity_state[..],
                self.model.num_entities(),
            ));
            matrices.push(("relation_state", &self.relation_state[..], relation_rows));
        }
        write_matrices(path, &matrices, self.config.dim, metadata)
    }

    /// Continues a run from [`Trainer::save_checkpoint`]; the triples must be the ones it was
    /// trained on (checked by a fingerprint).
    pub fn resume(
        path: &Path,
        num_entities: usize,
        num_relations: usize,
        triples: Vec<[u32; 3]>,
    ) -> Result<Trainer, TransEError> {
        let bytes = std::fs::read(path).map_err(|source| TransEError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file = TensorFile::parse(path, &bytes)?;
        let meta = |key: &str| {
            file.metadata
                .get(key)
                .cloned()
                .ok_or_else(|| file.invalid(format!("not a TransE checkpoint (no {key:?})")))
        };
        if meta("kind")? != CHECKPOINT_KIND {
            return Err(file.invalid("not a TransE checkpoint".to_string()));
        }
        let config: TrainConfig = serde_json::from_str(&meta("config")?)
            .map_err(|e| file.invalid(format!("bad config: {e}")))?;
        let epochs_done: usize = meta("epochs_done")?
            .parse()
            .map_err(|_| file.invalid("bad epochs_done".to_string()))?;
        let mut trainer = Trainer::new(config, num_entities, num_relations, triples)?;
        if meta("fingerprint")? != format!("{:016x}", trainer.fingerprint) {
            return Err(file.invalid("checkpoint was trained on different triples".to_string()));
        }
        let load = |name: &str, expected: usize| -> Result<Vec<f32>, TransEError> {
            let (values, cols) = file.matrix(name)?;
            if cols != trainer.config.dim || values.len() != expected {
                return Err(file.invalid(format!("tensor {name:?} has the wrong shape")));
            }
            Ok(values)
        };
        trainer.model.entity = load("entity", trainer.model.entity.len())?;
        trainer.model.relation = load("relation", trainer.model.relation.len())?;
        if trainer.config.optimizer == Optimizer::Adagrad {
            trainer.entity_state = load("entity_state", trainer.entity_state.len())?;
            trainer.relation_state = load("relation_state", trainer.relation_state.len())?;
        }
        trainer.epochs_done = epochs_done;
        Ok(trainer)
    }
}

const CHECKPOINT_KIND: &str = "zhishi-transe-checkpoint";

/// FNV-1a over the sizes and triples: guards against resuming on other data.
pub(super) fn fingerprint(num_entities: usize, num_relations: usize, triples: &[[u32; 3]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(num_entities as u64);
    eat(num_relations as u64);
    for t in triples {
        eat((u64::from(t[0]) << 32) | u64::from(t[1]));
        eat(u64::from(t[2]));
    }
    h
}
