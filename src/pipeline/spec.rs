//! The pipeline TOML schema and its checks.
//!
//! ```toml
//! [pipeline]
//! stages = ["segment", "link", "facts"]   # run in this order
//! threads = 0                             # 0 = all cores
//! batch_size = 64
//! device = "cpu"                          # model stages run on the CPU so far
//!
//! [kg]
//! triples = ["../kg/demo.tsv"]            # loaded into memory, or: store = "DIR"
//!
//! [segment]   # options of each listed stage, all optional
//! [link]
//! [facts]
//! ```
//!
//! Unknown keys, wrong types, unknown stages, options for stages that are not listed, a stage
//! whose input no earlier stage produces, a stage that needs `[kg]` without one, and missing
//! files are errors naming the file, line and key. Paths resolve against the TOML's directory.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, ConfigSource};
use crate::kg::import::Format;
use crate::stages::registry;

use crate::stages::Field;

/// Largest `pipeline.batch_size` (and `zhishi run --batch-size`): documents held at once.
pub const MAX_BATCH_SIZE: usize = 100_000;

/// Largest `pipeline.threads`.
pub const MAX_THREADS: usize = 1024;

/// A whole pipeline file: `[pipeline]`, `[kg]`, and one options table per listed stage,
/// named after it (`[segment]`, `[link]`, ...). Which tables may appear, and what each
/// holds, comes from the stage registry ([`crate::stages::registry`]).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct PipelineSpec {
    /// Stage order and run settings.
    #[serde(default)]
    pub pipeline: RunSpec,
    /// The knowledge graph, for stages that need one.
    pub kg: Option<KgSpec>,
    /// Each stage's options table, by stage name.
    #[serde(flatten)]
    pub tables: BTreeMap<String, toml::Value>,
}

/// `[pipeline]`: which stages run, in which order, and how.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSpec {
    /// A name for logs and the service's health check.
    pub name: String,
    /// Stages in execution order, by registered name.
    pub stages: Vec<String>,
    /// Worker threads for CPU stages; 0 = one per core.
    pub threads: usize,
    /// Documents processed together (model stages batch inference over them).
    pub batch_size: usize,
    /// `cpu`, `cuda` or `cuda:N` for model stages.
    pub device: String,
    /// Arithmetic of the model stages' dense layers: `f32`, `bf16` (AVX512-BF16 kernels) or
    /// `int8` (dynamic quantisation; AVX2 / AVX-VNNI / AVX512-VNNI kernels chosen at run time).
    pub precision: crate::model::Precision,
}

impl Default for RunSpec {
    fn default() -> Self {
        Self {
            name: "pipeline".into(),
            stages: Vec::new(),
            threads: 0,
            batch_size: 64,
            device: "cpu".into(),
            precision: crate::model::Precision::F32,
        }
    }
}

impl RunSpec {
    /// The first problem with the list itself, before any options are read: empty, a stage
    /// listed twice, or a name that is neither registered nor one of `custom`.
    pub fn list_problem(
        &self,
        kinds: &registry::Kinds<'_>,
        tables: &BTreeMap<String, toml::Value>,
        custom: &[(String, Vec<Field>, Vec<Field>)],
    ) -> Option<(String, String)> {
        let stages = &self.stages;
        if stages.is_empty() {
            return Some((
                "pipeline.stages".into(),
                "expected a non-empty list of stages, e.g. [\"segment\", \"link\", \"facts\"]"
                    .into(),
            ));
        }
        for (i, name) in stages.iter().enumerate() {
            let key = format!("pipeline.stages[{i}]");
            if stages[..i].contains(name) {
                return Some((key, format!("stage `{name}` is listed twice")));
            }
            let table = tables.get(name.as_str());
            let kind = registry::kind_name(name, table);
            if kinds.find(kind).is_none() && !custom.iter().any(|c| &c.0 == name) {
                let what = if kind == name {
                    format!("unknown stage `{name}`")
                } else {
                    format!("stage `{name}` names an unknown kind `{kind}`")
                };
                return Some((
                    key,
                    format!(
                        "{what}, expected one of {} (or a table of its own naming one as `kind`)",
                        kinds.names().join(", ")
                    ),
                ));
            }
        }
        None
    }

    /// The first problem with the stage list, as `(dotted key, message)`: empty, an unknown
    /// stage, a stage listed twice, a stage whose input no earlier stage produces (given its
    /// options table in `tables`), or a KG stage without a KG. Shared by the TOML checks and
    /// [`crate::pipeline::PipelineBuilder`], whose custom stages are `custom`.
    pub fn order_problem(
        &self,
        kinds: &registry::Kinds<'_>,
        has_kg: bool,
        tables: &BTreeMap<String, toml::Value>,
        custom: &[(String, Vec<Field>, Vec<Field>)],
    ) -> Option<(String, String)> {
        if let Some(problem) = self.list_problem(kinds, tables, custom) {
            return Some(problem);
        }
        let stages = &self.stages;
        let mut produced: Vec<Field> = Vec::new();
        for (i, name) in stages.iter().enumerate() {
            let key = format!("pipeline.stages[{i}]");
            let (requires, produces, needs_kg) = match (
                kinds.instance(name, tables.get(name.as_str())),
                custom.iter().find(|c| &c.0 == name),
            ) {
                (_, Some((_, requires, produces))) => (requires.clone(), produces.clone(), false),
                (Some(kind), None) => match kind.requires(tables.get(name.as_str())) {
                    Ok(requires) => (
                        requires,
                        kind.info().produces.to_vec(),
                        kind.info().needs_kg,
                    ),
                    Err(e) => return Some((e.key, e.message)),
                },
                (None, None) => {
                    return Some((
                        key,
                        format!(
                            "unknown stage `{name}`, expected one of {}",
                            kinds.names().join(", ")
                        ),
                    ))
                }
            };
            if let Some(need) = requires.iter().find(|f| !produced.contains(f)) {
                return Some((
                    key,
                    format!(
                        "stage `{name}` reads `{}`, which no earlier stage produces (expected a stage producing it before `{name}`)",
                        need.name()
                    ),
                ));
            }
            if needs_kg && !has_kg {
                return Some((
                    key,
                    format!("stage `{name}` needs a knowledge graph: add a [kg] table (builder: kg_triples, kg_store or kg_source)"),
                ));
            }
            produced.extend(produces);
        }
        None
    }
}

/// `[kg]`: where the knowledge graph comes from (exactly one of `store` and `triples`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KgSpec {
    /// A store directory made by `zhishi kg import` (opened exclusively by this process,
    /// unless `snapshot`).
    pub store: Option<PathBuf>,
    /// Read `store` through a private copy, so many processes can share it (shards, Spark).
    #[serde(default)]
    pub snapshot: bool,
    /// Triple files loaded into memory at start-up (small KGs; any number of processes).
    #[serde(default)]
    pub triples: Vec<PathBuf>,
    /// Format of `triples` files.
    #[serde(default = "default_format")]
    pub format: Format,
    /// sled cache for `store`, in MiB.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
}

fn default_format() -> Format {
    Format::Auto
}

fn default_cache_mb() -> u64 {
    64
}

/// Where the KG of a checked pipeline comes from, with resolved paths.
#[derive(Debug, Clone)]
pub enum KgLocation {
    /// A sled store directory.
    Store {
        /// The directory.
        dir: PathBuf,
        /// sled cache in bytes.
        cache_bytes: u64,
        /// Open a private read-only copy instead of locking the store.
        snapshot: bool,
    },
    /// Triple files read into memory.
    Triples {
        /// The files.
        files: Vec<PathBuf>,
        /// Their format.
        format: Format,
    },
}

impl PipelineSpec {
    /// Checks stage order, stage options and the KG, and resolves model paths (in place) and
    /// the KG's paths against `source`'s directory. Returns where the KG lives, if anywhere.
    pub fn check(&mut self, source: &ConfigSource) -> Result<Option<KgLocation>, ConfigError> {
        self.check_with(source, &registry::Kinds::default())
    }

    /// [`PipelineSpec::check`] with the stage kinds `kinds` (the built-in ones and those a
    /// library user registered).
    pub fn check_with(
        &mut self,
        source: &ConfigSource,
        kinds: &registry::Kinds<'_>,
    ) -> Result<Option<KgLocation>, ConfigError> {
        if let Some((key, message)) = self.pipeline.list_problem(kinds, &self.tables, &[]) {
            return Err(source.error(&key, message));
        }
        for (table, value) in &self.tables {
            let known = kinds.instance(table, Some(value)).is_some();
            if !known || !value.is_table() {
                return Err(source.error(
                    table,
                    format!(
                        "unknown {} `{table}`, expected [pipeline], [kg] or a stage's table ({}, or an instance naming one as `kind`)",
                        if value.is_table() { "table" } else { "key" },
                        kinds.names().join(", ")
                    ),
                ));
            }
            if !self.pipeline.stages.contains(table) {
                return Err(source.error(
                    table,
                    format!("[{table}] configures a stage that is not in pipeline.stages"),
                ));
            }
        }
        let resolve = |key: &str, path: &Path| -> Result<PathBuf, registry::OptionsError> {
            model_path(source, key, path).map_err(|e| registry::OptionsError {
                key: key.to_string(),
                message: match e {
                    ConfigError::Invalid { message, .. } => message,
                    other => other.to_string(),
                },
            })
        };
        for name in self.pipeline.stages.clone() {
            let Some(kind) = kinds.instance(&name, self.tables.get(&name)) else {
                continue; // reported by order_problem
            };
            kind.check(self.tables.get_mut(&name), &resolve)
                .map_err(|e| source.error(&e.key, e.message))?;
        }
        // After the checks: a model stage's needs depend on its (now resolved) model.
        let order = self
            .pipeline
            .order_problem(kinds, self.kg.is_some(), &self.tables, &[]);
        if let Some((key, message)) = order {
            return Err(source.error(&key, message));
        }
        if let Err(e) = crate::model::parse_device(&self.pipeline.device) {
            return Err(source.error("pipeline.device", e.to_string()));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.pipeline.batch_size) {
            return Err(source.error(
                "pipeline.batch_size",
                format!(
                    "{} documents; expected a batch size from 1 to {MAX_BATCH_SIZE}",
                    self.pipeline.batch_size
                ),
            ));
        }
        if self.pipeline.threads > MAX_THREADS {
            return Err(source.error(
                "pipeline.threads",
                format!(
                    "{} threads; expected 0 (one per core) to {MAX_THREADS}",
                    self.pipeline.threads
                ),
            ));
        }
        self.kg.as_ref().map(|kg| kg.locate(source)).transpose()
    }
}

/// Resolves a stage's `model` path; when it does not exist, the error names the command that
/// makes it: the training TOML beside this one whose output directory holds the path.
fn model_path(source: &ConfigSource, key: &str, model: &Path) -> Result<PathBuf, ConfigError> {
    if !key.ends_with(".model") {
        return source.existing_path(key, model); // a data file (user dictionary, patterns)
    }
    if crate::model::hub::HubId::from_path(model).is_some() {
        return source.model_dir(key, model);
    }
    let stage = key.split('.').next().unwrap_or(key);
    let resolved = source.resolve(model);
    if resolved.exists() {
        return Ok(resolved);
    }
    let hint = match training_config_for(source.dir(), &resolved) {
        Some(config) => format!(
            "train it with `zhishi train {}` (it writes there)",
            config.display()
        ),
        None => format!(
            "train a model with `zhishi train CONFIG.toml` ([task] kind = \"{stage}\"; `zhishi train --help`)"
        ),
    };
    Err(source.error(
        key,
        format!(
            "model directory {} does not exist: {hint}, or point at one with `--set {key}=DIR`",
            resolved.display()
        ),
    ))
}

/// The `*.toml` in `dir` whose `[train] output_dir` (or `output`) contains `model`.
fn training_config_for(dir: &Path, model: &Path) -> Option<PathBuf> {
    let normal = |p: &Path| -> PathBuf {
        let mut out = PathBuf::new();
        for part in p.components() {
            match part {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                other => out.push(other),
            }
        }
        out
    };
    let model = normal(model);
    let mut configs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    configs.sort();
    configs.into_iter().find(|config| {
        let Ok(text) = std::fs::read_to_string(config) else {
            return false;
        };
        let Ok(table) = text.parse::<toml::Table>() else {
            return false;
        };
        let train = table.get("train").and_then(|t| t.as_table());
        let output = train
            .and_then(|t| t.get("output_dir").or_else(|| t.get("output")))
            .and_then(|v| v.as_str());
        output.is_some_and(|out| model.starts_with(normal(&dir.join(out))))
    })
}

impl KgSpec {
    /// Resolves and checks the KG's paths.
    fn locate(&self, source: &ConfigSource) -> Result<KgLocation, ConfigError> {
        match (&self.store, self.triples.is_empty()) {
            (Some(dir), true) => Ok(KgLocation::Store {
                dir: source.existing_path("kg.store", dir)?,
                cache_bytes: self.cache_mb.saturating_mul(1 << 20),
                snapshot: self.snapshot,
            }),
            (None, false) if self.snapshot => Err(source.error(
                "kg.snapshot",
                "`snapshot` applies to a `store`; `triples` are read into memory by every process",
            )),
            (None, false) => {
                let files = self
                    .triples
                    .iter()
                    .enumerate()
                    .map(|(i, f)| source.existing_path(&format!("kg.triples[{i}]"), f))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(KgLocation::Triples {
                    files,
                    format: self.format,
                })
            }
            (Some(_), false) => {
                Err(source.error("kg.store", "expected either `store` or `triples`, not both"))
            }
            (None, true) => Err(source.error(
                "kg",
                "expected `store = \"DIR\"` (from `zhishi kg import`) or `triples = [FILES]`",
            )),
        }
    }
}
