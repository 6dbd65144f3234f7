//! One configuration resolution for every task trained through [`crate::train::Trainer`]
//! (NER, relation extraction, extractive QA): the TOML is loaded with `--set` overrides,
//! the shared tables are checked the same way (`task.kind`, `encoder.dropout`; the counts
//! of `[train]` are checked as they are read), the task adds its own checks, `data.max_len`
//! must fit the encoder's positions, and every path is resolved against the TOML's
//! directory and required to exist (encoder, data files, the KG of a knowledge mode). The
//! model directory keeps the TOML's original text.
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::config::{EncoderTable, KnowledgeMode, KnowledgeTable, TaskTable, TrainTable};
use super::kind::{Split, TaskKind};
use crate::config::{load, ConfigError, ConfigSource, Loaded};
use crate::files::{FilesError, Plan};
use crate::model::load::{config_file, read_config};
use crate::train::TrainOutput;

/// The data files of a task's `[data]` table, as written in the TOML.
pub struct DataPaths<'a> {
    /// `data.train`.
    pub train: &'a Path,
    /// `data.dev`, when the task has one (NER may hold out part of `train` instead).
    pub dev: Option<&'a Path>,
    /// `data.test`, if any.
    pub test: Option<&'a Path>,
}

/// A task's training configuration: its shared tables, its data files and its own checks.
pub trait TaskConfig: DeserializeOwned {
    /// The `[task] kind` it is read for.
    const KIND: TaskKind;
    /// `[task]`.
    fn task(&self) -> &TaskTable;
    /// `[encoder]`.
    fn encoder(&self) -> &EncoderTable;
    /// `[train]`.
    fn train(&self) -> &TrainTable;
    /// `[knowledge]`, for tasks that take knowledge.
    fn knowledge(&self) -> Option<&KnowledgeTable> {
        None
    }
    /// `data.max_len`, for tasks whose inputs it bounds: it must fit the encoder's
    /// positions.
    fn max_len(&self) -> Option<usize> {
        None
    }
    /// The `[data]` files.
    fn data_paths(&self) -> DataPaths<'_>;
    /// The task's own checks, after the shared ones; errors name the key.
    fn check(&self, source: &ConfigSource) -> Result<(), ConfigError>;
}

/// A checked configuration with every path resolved.
pub struct Resolved<C> {
    /// The configuration.
    pub config: C,
    /// Where it came from (for errors naming file, line and key).
    pub source: ConfigSource,
    /// The pretrained encoder's directory.
    pub encoder: PathBuf,
    /// The training file.
    pub train: PathBuf,
    /// The dev file, if the task names one.
    pub dev: Option<PathBuf>,
    /// The test file, if any.
    pub test: Option<PathBuf>,
    /// The KG file of a knowledge mode (`None` in plain mode).
    pub kg: Option<PathBuf>,
    /// Where `best/` and `last/` are written.
    pub output_dir: PathBuf,
    /// The TOML's original text (with the overrides as a comment), kept in the model directory.
    pub toml: String,
}

impl<C> Resolved<C> {
    /// What a training run of this configuration reads: the TOML, the encoder, the data
    /// files and the KG (a task adds its own, e.g. NER's TransE vectors).
    pub fn reads(&self) -> Plan {
        let mut plan = Plan::new();
        plan.read("the configuration", self.source.path())
            .read("encoder.model", &self.encoder)
            .read("data.train", &self.train);
        if let Some(dev) = &self.dev {
            plan.read("data.dev", dev);
        }
        if let Some(test) = &self.test {
            plan.read("data.test", test);
        }
        if let Some(kg) = &self.kg {
            plan.read("knowledge.kg", kg);
        }
        plan
    }

    /// Claims `train.output_dir` for a run that reads [`Resolved::reads`] and `extra`:
    /// checked and locked before any work (see [`TrainOutput::claim`]).
    pub fn claim_output(&self, extra: &Plan) -> Result<TrainOutput, FilesError> {
        let mut plan = self.reads();
        plan.extend(extra);
        TrainOutput::claim(&self.output_dir, &plan)
    }

    /// The dev file (an error at `data.dev` for a task configured without one).
    pub fn dev_file(&self) -> Result<&Path, ConfigError> {
        self.dev
            .as_deref()
            .ok_or_else(|| self.source.error("data.dev", "a dev file is required"))
    }

    /// The file of `split` (an error at `data.dev` / `data.test` when none is configured).
    pub fn split_file(&self, split: Split) -> Result<&Path, ConfigError> {
        match split {
            Split::Train => Ok(&self.train),
            Split::Dev => self.dev_file(),
            Split::Test => self
                .test
                .as_deref()
                .ok_or_else(|| self.source.error("data.test", "no test file is configured")),
        }
    }
}

impl<C: TaskConfig> Resolved<C> {
    /// The `[knowledge]` table with its KG resolved (the default, plain, table for a task
    /// without knowledge).
    pub fn knowledge_table(&self) -> KnowledgeTable {
        let mut table = self.config.knowledge().cloned().unwrap_or_default();
        table.kg = self.kg.clone();
        table
    }
}

/// What a configuration is resolved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Training: the pretrained encoder must be there.
    Train,
    /// Evaluating the trained model of `train.output_dir`, which holds everything it runs
    /// with: the pretrained encoder need not be there any more.
    Evaluate,
}

/// Loads `path` with `overrides` as `C`, checks it and resolves its paths, for training.
pub fn resolve<C: TaskConfig>(
    path: &Path,
    overrides: &[String],
) -> Result<Resolved<C>, ConfigError> {
    resolve_for(path, overrides, Purpose::Train)
}

/// [`resolve`] for `purpose`.
pub fn resolve_for<C: TaskConfig>(
    path: &Path,
    overrides: &[String],
    purpose: Purpose,
) -> Result<Resolved<C>, ConfigError> {
    let Loaded { value, source } = load::<C>(path, overrides)?;
    check_shared(&value, &source)?;
    value.check(&source)?;
    let encoder = match purpose {
        Purpose::Train => source.model_dir("encoder.model", &value.encoder().model)?,
        Purpose::Evaluate => source.resolve(&value.encoder().model),
    };
    if let (Some(max_len), Purpose::Train) = (value.max_len(), purpose) {
        // An unreadable config is reported where the encoder is loaded.
        if let (Ok(file), Ok(cfg)) = (config_file(&encoder), read_config(&encoder)) {
            if max_len > cfg.max_position_embeddings {
                return Err(source.error(
                    "data.max_len",
                    format!(
                        "{max_len} exceeds the {} positions of {} (max_position_embeddings)",
                        cfg.max_position_embeddings,
                        file.display()
                    ),
                ));
            }
        }
    }
    if let (Some(k), Purpose::Train) = (value.knowledge(), purpose) {
        // ERNIE-THU's aggregators need layers of their own; an ALBERT shares its layers.
        if let (true, Ok(cfg)) = (k.mode.fuses_entities(), read_config(&encoder)) {
            if cfg.albert.is_some() {
                return Err(source.error(
                    "knowledge.mode",
                    format!(
                        "{:?} fuses entities (ERNIE-THU), which needs a BERT encoder: {} is an \
                         ALBERT, whose layers are shared",
                        k.mode.name(),
                        encoder.display()
                    ),
                ));
            }
        }
    }
    let data = value.data_paths();
    let train = source.existing_path("data.train", data.train)?;
    let dev = data
        .dev
        .map(|p| source.existing_path("data.dev", p))
        .transpose()?;
    let test = data
        .test
        .map(|p| source.existing_path("data.test", p))
        .transpose()?;
    let kg = match value.knowledge() {
        None => None,
        Some(k) if k.mode == KnowledgeMode::Plain => None,
        Some(k) => match &k.kg {
            Some(p) => Some(source.existing_path("knowledge.kg", p)?),
            None => {
                return Err(source.error(
                    "knowledge.kg",
                    format!("a triples file is required when mode = {:?}", k.mode.name()),
                ))
            }
        },
    };
    let output_dir = source.resolve(&value.train().output_dir);
    let mut toml = source.text().to_string();
    if !overrides.is_empty() {
        toml = format!("# overrides: {}\n{toml}", overrides.join(" "));
    }
    Ok(Resolved {
        config: value,
        source,
        encoder,
        train,
        dev,
        test,
        kg,
        output_dir,
        toml,
    })
}

/// The checks every task's shared tables get.
fn check_shared<C: TaskConfig>(c: &C, source: &ConfigSource) -> Result<(), ConfigError> {
    let kind = C::KIND.name();
    if c.task().kind != kind {
        return Err(source.error(
            "task.kind",
            format!("expected \"{kind}\", found {:?}", c.task().kind),
        ));
    }
    if !(0.0..1.0).contains(&c.encoder().dropout) {
        return Err(source.error("encoder.dropout", "must be in [0, 1)"));
    }
    Ok(())
}
