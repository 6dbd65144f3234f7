//! The relation-extraction training configuration, mirroring the TOML file table for table
//! (`[task]`, `[encoder]`, `[knowledge]`, `[data]`, `[train]`); see `pipelines/sanwen-re.toml`.
use std::path::PathBuf;

use serde::Deserialize;

use super::data::DataFormat;
use crate::stages::task::{EncoderTable, KnowledgeTable, TaskTable, TrainTable};

/// A whole relation-extraction training file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationConfig {
    /// `[task]`: `kind = "relation"`.
    pub task: TaskTable,
    /// `[encoder]`: the pretrained model.
    pub encoder: EncoderTable,
    /// `[knowledge]`: what is injected (default: nothing).
    #[serde(default)]
    pub knowledge: KnowledgeTable,
    /// `[data]`: files, labels, markers.
    pub data: DataTable,
    /// `[train]`: the loop's settings.
    pub train: TrainTable,
}

/// `[data]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTable {
    /// `sanwen` (`head<TAB>tail<TAB>relation<TAB>sentence`), `duie` (JSON lines), `doccano`
    /// or `label_studio`.
    pub format: DataFormat,
    /// doccano and Label Studio: the unit of the files' offsets (default: the tool's own).
    #[serde(default)]
    pub offsets: Option<crate::stages::annotation::OffsetUnit>,
    /// Label Studio: read a task without an annotation from its first prediction.
    #[serde(default)]
    pub use_predictions: bool,
    /// Training file.
    pub train: PathBuf,
    /// Dev file (evaluation during training, early stopping).
    pub dev: PathBuf,
    /// Test file (`zhishi eval --split test`).
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// The label meaning "no relation": excluded from precision, recall and F1, and never
    /// written by the pipeline stage.
    #[serde(default = "default_no_relation")]
    pub no_relation: String,
    /// Longest input in tokens (`[CLS]`, `[SEP]` and the four markers included); longer
    /// sentences keep a window around the pair.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Vocabulary tokens marking the head and the tail.
    #[serde(default = "default_markers")]
    pub markers: [String; 2],
    /// Train on N examples spread evenly over the training file (0 = all).
    #[serde(default)]
    pub max_train: usize,
    /// DuIE: no-relation pairs made per sentence, closest first.
    #[serde(default = "default_max_negatives")]
    pub max_negatives: usize,
}

fn default_no_relation() -> String {
    "unknown".into()
}

fn default_max_len() -> usize {
    256
}

fn default_markers() -> [String; 2] {
    ["#".into(), "$".into()]
}

fn default_max_negatives() -> usize {
    2
}

impl crate::stages::task::TaskConfig for RelationConfig {
    const KIND: crate::stages::task::TaskKind = crate::stages::task::TaskKind::Relation;

    fn task(&self) -> &TaskTable {
        &self.task
    }

    fn encoder(&self) -> &EncoderTable {
        &self.encoder
    }

    fn train(&self) -> &TrainTable {
        &self.train
    }

    fn knowledge(&self) -> Option<&KnowledgeTable> {
        Some(&self.knowledge)
    }

    fn max_len(&self) -> Option<usize> {
        Some(self.data.max_len)
    }

    fn data_paths(&self) -> crate::stages::task::DataPaths<'_> {
        crate::stages::task::DataPaths {
            train: &self.data.train,
            dev: Some(&self.data.dev),
            test: self.data.test.as_deref(),
        }
    }

    fn check(
        &self,
        source: &crate::config::ConfigSource,
    ) -> Result<(), crate::config::ConfigError> {
        let d = &self.data;
        if d.max_len < 8 {
            return Err(source.error(
                "data.max_len",
                "must be at least 8 ([CLS], [SEP], four markers and two characters)",
            ));
        }
        if d.no_relation.is_empty() {
            return Err(source.error("data.no_relation", "expected a label, e.g. \"unknown\""));
        }
        if d.markers[0] == d.markers[1] {
            return Err(source.error("data.markers", "the head and tail markers must differ"));
        }
        if self.knowledge.mode.fuses_entities() {
            return Err(source.error(
                "knowledge.mode",
                format!(
                    "{:?} is not available for relation extraction yet (expected \"plain\" or \"kbert\")",
                    self.knowledge.mode.name()
                ),
            ));
        }
        Ok(())
    }
}
