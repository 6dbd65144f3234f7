//! The TOML file of `zhishi distill` (`[task] kind = "distill"`): the shared `[task]`,
//! `[knowledge]` and `[train]` tables, plus the teacher (`[teacher]`), the student's depth
//! (`[student]`), the losses and the unlabelled text (`[distill]`) and the labelled data
//! (`[data]`). Checked and resolved by [`resolve`]: errors name the file, line and key.
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{load, ConfigError, ConfigSource, Loaded};
use crate::model::load::read_config;
use crate::stages::task::{
    KnowledgeMode, KnowledgeTable, Purpose, TaskKind, TaskTable, TrainTable,
};

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

/// `[data]`: the labelled examples (labels, windowing and knowledge come from the teacher).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTable {
    /// The files' format: the NER task's (`char_per_line`, `kbert_tsv`) for an NER teacher,
    /// the classification task's (`tsv`, `jsonl`, `csv`) for a classification teacher.
    pub format: DataFormat,
    /// The labelled training file.
    pub train: PathBuf,
    /// The dev file (model selection).
    pub dev: PathBuf,
    /// The test file (`zhishi eval --split test`).
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// Use only the first N training examples (0 = all).
    #[serde(default)]
    pub max_train: usize,
    /// Classification: the column or key of the text (as the classification task's).
    #[serde(default)]
    pub text_field: Option<String>,
    /// Classification: the column or key of a pair's second text.
    #[serde(default)]
    pub text_b_field: Option<String>,
    /// Classification: the column or key of the label.
    #[serde(default)]
    pub label_field: Option<String>,
    /// Classification, multi-label teachers: what separates the labels of a TSV or CSV cell.
    #[serde(default)]
    pub label_separator: Option<String>,
}

/// The format of `[data]`'s files: one of the teacher's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// NER: `char TAG` per line.
    CharPerLine,
    /// NER: K-BERT's TSV.
    KbertTsv,
    /// Classification: tab-separated with a header.
    Tsv,
    /// Classification: JSON lines.
    Jsonl,
    /// Classification: comma-separated with a header.
    Csv,
}

impl DataFormat {
    /// The NER reader's format, for an NER teacher.
    pub fn ner(self) -> Option<crate::stages::ner::data::DataFormat> {
        use crate::stages::ner::data::DataFormat as Ner;
        match self {
            DataFormat::CharPerLine => Some(Ner::CharPerLine),
            DataFormat::KbertTsv => Some(Ner::KbertTsv),
            _ => None,
        }
    }

    /// The classification reader's format, for a classification teacher.
    pub fn classify(self) -> Option<crate::stages::classify::data::DataFormat> {
        use crate::stages::classify::data::DataFormat as Cls;
        match self {
            DataFormat::Tsv => Some(Cls::Tsv),
            DataFormat::Jsonl => Some(Cls::Jsonl),
            DataFormat::Csv => Some(Cls::Csv),
            _ => None,
        }
    }
}

/// What the teacher was trained for: the task its model directory records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeacherKind {
    /// An NER model (`ner.json`).
    Ner,
    /// A classification model (`classify.json`).
    Classify,
}

impl TeacherKind {
    /// The kind of the trained model directory `dir`, from the settings file it holds.
    pub fn of(dir: &Path) -> Option<TeacherKind> {
        if dir.join(crate::stages::ner::model::META_FILE).is_file() {
            Some(TeacherKind::Ner)
        } else if dir
            .join(crate::stages::classify::model::META_FILE)
            .is_file()
        {
            Some(TeacherKind::Classify)
        } else {
            None
        }
    }

    /// The headline dev metric of its task.
    pub fn metric(self) -> &'static str {
        match self {
            TeacherKind::Ner => "f1",
            TeacherKind::Classify => "accuracy",
        }
    }
}

/// A checked distillation configuration with every path resolved.
pub struct Resolved {
    /// The configuration.
    pub config: DistillConfig,
    /// Where it came from.
    pub source: ConfigSource,
    /// The teacher's directory (resolved for evaluation, it may be gone).
    pub teacher: PathBuf,
    /// What the teacher was trained for.
    pub teacher_kind: TeacherKind,
    /// The teacher layers the student keeps, one per student layer (empty when resolved for
    /// evaluation from the student alone).
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
    /// The data file of `split` (an error naming `data.test` when none is configured).
    pub fn split_file(&self, split: crate::stages::task::Split) -> Result<&Path, ConfigError> {
        use crate::stages::task::Split;
        match split {
            Split::Train => Ok(&self.train),
            Split::Dev => Ok(&self.dev),
            Split::Test => self
                .test
                .as_deref()
                .ok_or_else(|| self.source.error("data.test", "no test file is configured")),
        }
    }

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

/// Loads `path` with `overrides`, checks it and resolves its paths, for training.
pub fn resolve(path: &Path, overrides: &[String]) -> Result<Resolved, ConfigError> {
    resolve_for(path, overrides, Purpose::Train)
}

/// [`resolve`] for `purpose`: evaluating needs only the student (`train.output_dir/best`, an
/// ordinary NER or classification model directory), so the teacher may be gone.
pub fn resolve_for(
    path: &Path,
    overrides: &[String],
    purpose: Purpose,
) -> Result<Resolved, ConfigError> {
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
    let output_dir = source.resolve(&c.train.output_dir);
    let student = TeacherKind::of(&output_dir.join("best"));
    let (teacher, teacher_kind, layers) = match (purpose, student) {
        (Purpose::Evaluate, Some(kind)) => {
            check_data(&c.data, kind, &source)?;
            (source.resolve(&c.teacher.model), kind, Vec::new())
        }
        _ => {
            let teacher = source.model_dir("teacher.model", &c.teacher.model)?;
            let Some(teacher_kind) = TeacherKind::of(&teacher) else {
                return Err(source.error(
                    "teacher.model",
                    format!(
                        "{} is not a trained NER or classification model directory (no {} or {})",
                        teacher.display(),
                        crate::stages::ner::model::META_FILE,
                        crate::stages::classify::model::META_FILE
                    ),
                ));
            };
            check_data(&c.data, teacher_kind, &source)?;
            let teacher_cfg = read_config(&teacher)
                .map_err(|e| source.error("teacher.model", crate::error::report(&e)))?;
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
            (teacher, teacher_kind, layers)
        }
    };
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
    let mut toml = source.text().to_string();
    if !overrides.is_empty() {
        toml = format!("# overrides: {}\n{toml}", overrides.join(" "));
    }
    Ok(Resolved {
        config: c,
        source,
        teacher,
        teacher_kind,
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

/// Checks that `[data]` is written for the teacher's task: its format, and the classification
/// keys only for a classification teacher.
fn check_data(d: &DataTable, kind: TeacherKind, source: &ConfigSource) -> Result<(), ConfigError> {
    match kind {
        TeacherKind::Ner => {
            if d.format.ner().is_none() {
                return Err(source.error(
                    "data.format",
                    "the teacher is an NER model: expected \"char_per_line\" or \"kbert_tsv\"",
                ));
            }
            let classify_keys = [
                ("data.text_field", d.text_field.is_some()),
                ("data.text_b_field", d.text_b_field.is_some()),
                ("data.label_field", d.label_field.is_some()),
                ("data.label_separator", d.label_separator.is_some()),
            ];
            if let Some((key, _)) = classify_keys.iter().find(|(_, set)| *set) {
                return Err(source.error(
                    key,
                    "only a classification teacher's data has fields; the teacher is an NER model",
                ));
            }
        }
        TeacherKind::Classify => {
            if d.format.classify().is_none() {
                return Err(source.error(
                    "data.format",
                    "the teacher is a classification model: expected \"tsv\", \"jsonl\" or \"csv\"",
                ));
            }
        }
    }
    Ok(())
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
