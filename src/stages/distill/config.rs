//! The TOML file of `zhishi distill` (`[task] kind = "distill"`): the shared `[task]`,
//! `[knowledge]` and `[train]` tables, plus the teacher (`[teacher]`), the student's depth
//! (`[student]`), the losses and the unlabelled text (`[distill]`) and the labelled data
//! (`[data]`). Checked and resolved by [`resolve`]: errors name the file, line and key.
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{load, ConfigError, ConfigSource, Loaded};
use crate::model::load::read_config;
use crate::stages::ner::data::DataFormat;
use crate::stages::task::{KnowledgeMode, KnowledgeTable, TaskKind, TaskTable, TrainTable};

/// A whole distillation file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillConfig {
    /// `[task]`: `kind = "distill"`.
    pub task: TaskTable,
    /// `[teacher]`: the fine-tuned model.
    pub teacher: TeacherTable,
    /// `[student]`: which teacher layers the student keeps.
    pub student: StudentTable,
    /// `[distill]`: the losses and the unlabelled text.
    #[serde(default)]
    pub distill: DistillTable,
    /// `[knowledge]`: the KG the teacher was trained with (its `kg` path; the rest must
    /// match the teacher's record).
    #[serde(default)]
    pub knowledge: KnowledgeTable,
    /// `[data]`: the labelled sentences.
    pub data: DataTable,
    /// `[train]`: the loop.
    pub train: TrainTable,
}

/// `[teacher]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherTable {
    /// A trained NER model directory (`zhishi train`'s `OUTPUT/best`).
    pub model: PathBuf,
}

/// `[student]`: exactly one of `layers` and `num_layers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentTable {
    /// The teacher layers (0-based, ascending) the student starts from, in order.
    #[serde(default)]
    pub layers: Option<Vec<usize>>,
    /// Or: this many evenly spaced teacher layers (TinyBERT's uniform mapping: student layer
    /// `i` takes teacher layer `(i + 1)·n/k − 1`, so the top layer is always kept).
    #[serde(default)]
    pub num_layers: Option<usize>,
    /// Dropout inside the student during training.
    #[serde(
        default = "default_dropout",
        deserialize_with = "crate::config::range::unit_f32"
    )]
    pub dropout: f32,
}

fn default_dropout() -> f32 {
    0.1
}

/// `[distill]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillTable {
    /// Softmax temperature of the soft labels (both teacher and student).
    #[serde(
        default = "default_temperature",
        deserialize_with = "crate::config::range::positive_f64"
    )]
    pub temperature: f64,
    /// Weight of the hard-label loss; the soft-label loss gets `1 - alpha`.
    #[serde(
        default = "default_alpha",
        deserialize_with = "crate::config::range::unit_f64"
    )]
    pub alpha: f64,
    /// Weight of TinyBERT's hidden-state loss (0 = off).
    #[serde(default, deserialize_with = "crate::config::range::non_negative_f64")]
    pub hidden_loss: f64,
    /// Weight of TinyBERT's attention-score loss (0 = off).
    #[serde(default, deserialize_with = "crate::config::range::non_negative_f64")]
    pub attention_loss: f64,
    /// Unlabelled text, one sentence per line (soft labels only).
    #[serde(default)]
    pub unlabelled: Option<PathBuf>,
    /// Use the first N non-empty lines of `unlabelled` (0 = all).
    #[serde(default)]
    pub max_unlabelled: usize,
}

fn default_temperature() -> f64 {
    2.0
}

fn default_alpha() -> f64 {
    0.5
}

impl Default for DistillTable {
    fn default() -> Self {
        Self {
            temperature: default_temperature(),
            alpha: default_alpha(),
            hidden_loss: 0.0,
            attention_loss: 0.0,
            unlabelled: None,
            max_unlabelled: 0,
        }
    }
}

impl DistillTable {
    /// Whether the student needs every layer's states (a hidden or attention loss is on).
    pub fn traced(&self) -> bool {
        self.hidden_loss > 0.0 || self.attention_loss > 0.0
    }
}

/// `[data]`: the labelled sentences (labels, windowing and knowledge come from the teacher).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTable {
    /// `char_per_line` or `kbert_tsv`.
    pub format: DataFormat,
    /// The labelled training file.
    pub train: PathBuf,
    /// The dev file (model selection).
    pub dev: PathBuf,
    /// The test file (`zhishi eval --split test`).
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// Use only the first N training sentences (0 = all).
    #[serde(default)]
    pub max_train: usize,
}

/// A checked distillation configuration with every path resolved.
pub struct Resolved {
    /// The configuration.
    pub config: DistillConfig,
    /// Where it came from.
    pub source: ConfigSource,
    /// The teacher's directory.
    pub teacher: PathBuf,
    /// The teacher layers the student keeps, one per student layer.
    pub layers: Vec<usize>,
    /// The training file.
    pub train: PathBuf,
    /// The dev file.
    pub dev: PathBuf,
    /// The test file, if any.
    pub test: Option<PathBuf>,
    /// The unlabelled text, if any.
    pub unlabelled: Option<PathBuf>,
    /// The `[knowledge]` table with its KG path resolved.
    pub knowledge: KnowledgeTable,
    /// Where `best/` and `last/` are written.
    pub output_dir: PathBuf,
    /// The TOML's text (with the overrides as a comment), kept in the model directory.
    pub toml: String,
}

impl Resolved {
    /// Claims `train.output_dir` for a run over what this configuration reads (the teacher,
    /// the data, the KG): checked and locked before any work.
    pub fn claim_output(&self) -> Result<crate::train::TrainOutput, crate::files::FilesError> {
        let mut reads = crate::files::Plan::new();
        reads
            .read("the configuration", self.source.path())
            .read("teacher.model", &self.teacher)
            .read("data.train", &self.train)
            .read("data.dev", &self.dev);
        for (role, path) in [
            ("data.test", &self.test),
            ("data.unlabelled", &self.unlabelled),
            ("knowledge.kg", &self.knowledge.kg),
        ] {
            if let Some(path) = path {
                reads.read(role, path);
            }
        }
        crate::train::TrainOutput::claim(&self.output_dir, &reads)
    }
}

/// The teacher layers `num_layers` evenly spaced student layers take out of `teacher`:
/// student layer `i` takes teacher layer `(i + 1)·teacher/num_layers − 1`.
pub fn evenly_spaced(num_layers: usize, teacher: usize) -> Vec<usize> {
    (0..num_layers)
        .map(|i| ((i + 1) * teacher / num_layers).saturating_sub(1))
        .collect()
}

/// Loads `path` with `overrides`, checks it and resolves its paths.
pub fn resolve(path: &Path, overrides: &[String]) -> Result<Resolved, ConfigError> {
    let Loaded { value: c, source } = load::<DistillConfig>(path, overrides)?;
    let kind = TaskKind::Distill.name();
    if c.task.kind != kind {
        return Err(source.error(
            "task.kind",
            format!("expected \"{kind}\", found {:?}", c.task.kind),
        ));
    }
    if c.knowledge.mode.fuses_entities() {
        return Err(source.error(
            "knowledge.mode",
            "distillation covers plain and K-BERT teachers, not ERNIE entity fusion",
        ));
    }
    let teacher = source.model_dir("teacher.model", &c.teacher.model)?;
    if !teacher.join(crate::stages::ner::model::META_FILE).is_file() {
        return Err(source.error(
            "teacher.model",
            format!(
                "{} is not a trained NER model directory (no {})",
                teacher.display(),
                crate::stages::ner::model::META_FILE
            ),
        ));
    }
    let teacher_cfg =
        read_config(&teacher).map_err(|e| source.error("teacher.model", e.to_string()))?;
    if teacher_cfg.albert.is_some() {
        return Err(source.error(
            "teacher.model",
            format!(
                "{} has an ALBERT encoder: its layers are shared, so a student of fewer \
                 layers saves no parameters (distil a BERT teacher)",
                teacher.display()
            ),
        ));
    }
    let depth = teacher_cfg.num_hidden_layers;
    let layers = student_layers(&c.student, depth, &source)?;
    let train = source.existing_path("data.train", &c.data.train)?;
    let dev = source.existing_path("data.dev", &c.data.dev)?;
    let test = c
        .data
        .test
        .as_ref()
        .map(|p| source.existing_path("data.test", p))
        .transpose()?;
    let unlabelled = c
        .distill
        .unlabelled
        .as_ref()
        .map(|p| source.existing_path("distill.unlabelled", p))
        .transpose()?;
    let kg = match (&c.knowledge.mode, &c.knowledge.kg) {
        (KnowledgeMode::Plain, _) => None,
        (_, Some(p)) => Some(source.existing_path("knowledge.kg", p)?),
        (mode, None) => {
            return Err(source.error(
                "knowledge.kg",
                format!("a triples file is required when mode = {:?}", mode.name()),
            ))
        }
    };
    let knowledge = KnowledgeTable {
        kg,
        ..c.knowledge.clone()
    };
    let output_dir = source.resolve(&c.train.output_dir);
    let mut toml = source.text().to_string();
    if !overrides.is_empty() {
        toml = format!("# overrides: {}\n{toml}", overrides.join(" "));
    }
    Ok(Resolved {
        config: c,
        source,
        teacher,
        layers,
        train,
        dev,
        test,
        unlabelled,
        knowledge,
        output_dir,
        toml,
    })
}

/// The teacher layers of `[student]`, checked against a teacher of `depth` layers.
fn student_layers(
    s: &StudentTable,
    depth: usize,
    source: &ConfigSource,
) -> Result<Vec<usize>, ConfigError> {
    match (&s.layers, s.num_layers) {
        (Some(layers), None) => {
            if layers.is_empty() {
                return Err(source.error("student.layers", "must name at least one layer"));
            }
            if let Some(&bad) = layers.iter().find(|&&l| l >= depth) {
                return Err(source.error(
                    "student.layers",
                    format!(
                        "layer {bad} does not exist: the teacher has layers 0 to {}",
                        depth - 1
                    ),
                ));
            }
            if layers.windows(2).any(|w| w[0] >= w[1]) {
                return Err(source.error(
                    "student.layers",
                    format!("must be strictly ascending, found {layers:?}"),
                ));
            }
            Ok(layers.clone())
        }
        (None, Some(n)) => {
            if n == 0 || n > depth {
                return Err(source.error(
                    "student.num_layers",
                    format!("must be between 1 and the teacher's {depth} layers, found {n}"),
                ));
            }
            Ok(evenly_spaced(n, depth))
        }
        (Some(_), Some(_)) => Err(source.error(
            "student.num_layers",
            "set either student.layers or student.num_layers, not both",
        )),
        (None, None) => Err(source.error(
            "student.layers",
            "set student.layers (e.g. [1, 3]) or student.num_layers",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::evenly_spaced;

    #[test]
    fn evenly_spaced_layers_keep_the_top_one() {
        assert_eq!(evenly_spaced(2, 4), [1, 3]);
        assert_eq!(evenly_spaced(4, 12), [2, 5, 8, 11]);
        assert_eq!(evenly_spaced(1, 4), [3]);
        assert_eq!(evenly_spaced(3, 3), [0, 1, 2]);
    }
}
