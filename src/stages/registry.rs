//! The stage registry: every stage kind a pipeline can list, each declared in its own module
//! (name, what it reads and writes, whether it needs the KG, its options, how it is built)
//! and registered here with one line. The pipeline's checks, its builder, the docs of the
//! stage list (`zhishi run --help`'s reference) and custom stages all go through it.
use std::sync::Arc;

use candle_core::Device;
use serde::de::DeserializeOwned;

use super::stage::{Field, Stage, StageError};
use crate::text::{KgLinker, KnowledgeSource};

/// Why a stage's `[table]` is not acceptable: the dotted key and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct OptionsError {
    /// The dotted key, e.g. `link.nil_threshold`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// What a stage kind declares about itself.
#[derive(Debug, Clone, Copy)]
pub struct StageInfo {
    /// The name in `[pipeline] stages` and of its options table.
    pub name: &'static str,
    /// One line for the docs of the stage list.
    pub summary: &'static str,
    /// Document fields it reads with default options (which an earlier stage must produce).
    pub reads: &'static [Field],
    /// Document fields it writes.
    pub produces: &'static [Field],
    /// Whether it needs the pipeline's `[kg]`.
    pub needs_kg: bool,
}

/// The shared resources a stage is built from.
pub struct StageContext<'a> {
    /// The instance's name in `[pipeline] stages` (the kind's name unless the table names
    /// another kind); the stage reports it as its name and as the `source` of what it adds.
    pub instance: &'a str,
    /// The pipeline's KG, when it has one.
    pub kg: Option<&'a Arc<dyn KnowledgeSource>>,
    /// The pipeline's one linker, when a stage needs the KG.
    pub linker: Option<&'a Arc<KgLinker>>,
    /// Where model stages load.
    pub device: &'a Device,
    /// The arithmetic of model stages' dense layers (`[pipeline] precision`).
    pub precision: crate::model::Precision,
    /// The stages built so far, in order.
    pub earlier: &'a [Box<dyn Stage>],
    /// Every listed stage's options table (checked), by stage name: a model stage compares
    /// its training's knowledge settings with the `facts` stage's, for instance.
    pub tables: &'a std::collections::BTreeMap<String, toml::Value>,
}

/// A kind of stage. Implemented in the stage's own module and listed in [`REGISTRY`].
pub trait StageKind: Sync {
    /// Name, summary, outputs, KG need.
    fn info(&self) -> StageInfo;

    /// Document fields it reads, which an earlier stage must produce, given its options
    /// table (`relation` reads what its `pairs_from` names).
    fn requires(&self, table: Option<&toml::Value>) -> Result<Vec<Field>, OptionsError>;

    /// Checks the options table before anything loads, and resolves the paths in it with
    /// `resolve` (relative to the TOML file), e.g. a model directory that must exist.
    fn check(
        &self,
        table: Option<&mut toml::Value>,
        resolve: &dyn Fn(&str, &std::path::Path) -> Result<std::path::PathBuf, OptionsError>,
    ) -> Result<(), OptionsError>;

    /// Builds the stage from its (checked) options table.
    fn build(
        &self,
        table: Option<&toml::Value>,
        ctx: &StageContext<'_>,
    ) -> Result<Box<dyn Stage>, StageError>;
}

/// The kind of a stage that runs a trained model: its options table `O` names the `model`
/// directory (resolved against the TOML and required to exist) and `load` builds the stage.
pub struct ModelStageKind<O> {
    info: StageInfo,
    requires: fn(&O) -> Vec<Field>,
    load: LoadStage<O>,
}

/// Builds a model stage from its options and the pipeline's shared resources.
pub type LoadStage<O> = fn(&O, &StageContext<'_>) -> Result<Box<dyn Stage>, StageError>;

impl<O> ModelStageKind<O> {
    /// A model stage described by `info`, reading what `requires` says for its options.
    pub const fn new(info: StageInfo, requires: fn(&O) -> Vec<Field>, load: LoadStage<O>) -> Self {
        Self {
            info,
            requires,
            load,
        }
    }
}

impl<O: DeserializeOwned> StageKind for ModelStageKind<O> {
    fn info(&self) -> StageInfo {
        self.info
    }

    fn requires(&self, table: Option<&toml::Value>) -> Result<Vec<Field>, OptionsError> {
        match table {
            Some(_) => Ok((self.requires)(&required_options(self.info.name, table)?)),
            None => Ok(self.info.reads.to_vec()),
        }
    }

    fn check(
        &self,
        table: Option<&mut toml::Value>,
        resolve: &dyn Fn(&str, &std::path::Path) -> Result<std::path::PathBuf, OptionsError>,
    ) -> Result<(), OptionsError> {
        required_options::<O>(self.info.name, table.as_deref())?;
        resolve_path(self.info.name, "model", table, resolve)
    }

    fn build(
        &self,
        table: Option<&toml::Value>,
        ctx: &StageContext<'_>,
    ) -> Result<Box<dyn Stage>, StageError> {
        let opts = required_options::<O>(self.info.name, table)
            .map_err(|e| StageError::new(self.info.name, e))?;
        (self.load)(&opts, ctx)
    }
}

/// Every built-in stage kind, in the order the docs list them.
pub static REGISTRY: &[&dyn StageKind] = &[
    &super::segment::KIND,
    &super::link::KIND,
    &super::facts::KIND,
    &super::rules::KIND,
    &super::ner::stage::KIND,
    &super::relation::stage::KIND,
    &super::qa::stage::KIND,
    &super::kbqa::stage::KIND,
    &super::classify::stage::KIND,
];

/// The registered kind called `name`.
pub fn find(name: &str) -> Option<&'static dyn StageKind> {
    REGISTRY.iter().copied().find(|k| k.info().name == name)
}

/// The name of the kind of the stage instance `name`: its table's `kind` key (e.g.
/// `[ner_drug] kind = "ner"`), else the instance's own name (`[ner]` is an instance of `ner`).
pub fn kind_name<'a>(name: &'a str, table: Option<&'a toml::Value>) -> &'a str {
    table
        .and_then(|t| t.get(KIND_KEY))
        .and_then(toml::Value::as_str)
        .unwrap_or(name)
}

/// The registered kind of the stage instance `name` whose options table is `table`.
pub fn instance_kind(name: &str, table: Option<&toml::Value>) -> Option<&'static dyn StageKind> {
    find(kind_name(name, table))
}

/// The key of an instance table that names its stage kind.
pub const KIND_KEY: &str = "kind";

/// The stage kinds a pipeline may name: the built-in [`REGISTRY`] and the kinds a library
/// user registered (`PipelineBuilder::register`), which a TOML file can then list like any
/// other (a registered kind of a built-in name takes its place).
#[derive(Clone, Copy, Default)]
pub struct Kinds<'a> {
    extra: &'a [&'static dyn StageKind],
}

impl<'a> Kinds<'a> {
    /// The built-in kinds and `extra`.
    pub fn with(extra: &'a [&'static dyn StageKind]) -> Self {
        Self { extra }
    }

    /// The kind called `name`.
    pub fn find(&self, name: &str) -> Option<&'static dyn StageKind> {
        self.extra
            .iter()
            .copied()
            .find(|k| k.info().name == name)
            .or_else(|| find(name))
    }

    /// The kind of the stage instance `name` whose options table is `table`.
    pub fn instance(
        &self,
        name: &str,
        table: Option<&toml::Value>,
    ) -> Option<&'static dyn StageKind> {
        self.find(kind_name(name, table))
    }

    /// Every kind's name, for "expected one of" messages.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = names();
        for k in self.extra {
            if !names.contains(&k.info().name) {
                names.push(k.info().name);
            }
        }
        names
    }
}

/// The registered names, for "expected one of" messages.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|k| k.info().name).collect()
}

/// Reads a stage's options table as `T` (its defaults when the table is absent); an unknown
/// key or a wrong type is an error at `name.key`.
pub fn options<T: DeserializeOwned + Default>(
    name: &str,
    table: Option<&toml::Value>,
) -> Result<T, OptionsError> {
    match table {
        Some(table) => from_table(name, table),
        None => Ok(T::default()),
    }
}

/// Reads a model stage's options: the table must exist (it names the model).
pub fn required_options<T: DeserializeOwned>(
    name: &str,
    table: Option<&toml::Value>,
) -> Result<T, OptionsError> {
    let table = table.ok_or_else(|| OptionsError {
        key: "pipeline.stages".into(),
        message: format!(
            "stage `{name}` needs a [{name}] table with `model = \"DIR\"` (a trained model)"
        ),
    })?;
    from_table(name, table)
}

/// Deserialises `[name]`'s table (without the instance's `kind` key); errors name the
/// dotted key inside it.
fn from_table<T: DeserializeOwned>(name: &str, table: &toml::Value) -> Result<T, OptionsError> {
    let mut table = table.clone();
    if let Some(t) = table.as_table_mut() {
        t.remove(KIND_KEY);
    }
    serde_path_to_error::deserialize(table).map_err(|e| {
        let path = e.path().to_string();
        OptionsError {
            key: if path == "." {
                name.to_string()
            } else {
                format!("{name}.{path}")
            },
            message: first_line(&e.into_inner().to_string()),
        }
    })
}

/// Resolves the string at `table.key` with `resolve` and writes the result back.
pub fn resolve_path(
    name: &str,
    key: &str,
    table: Option<&mut toml::Value>,
    resolve: &dyn Fn(&str, &std::path::Path) -> Result<std::path::PathBuf, OptionsError>,
) -> Result<(), OptionsError> {
    let Some(value) = table.and_then(|t| t.get_mut(key)) else {
        return Ok(()); // reported by `required_options` at build time, or optional
    };
    let Some(path) = value.as_str() else {
        return Err(OptionsError {
            key: format!("{name}.{key}"),
            message: format!("expected a path string, found {value}"),
        });
    };
    let resolved = resolve(&format!("{name}.{key}"), std::path::Path::new(path))?;
    *value = toml::Value::String(resolved.display().to_string());
    Ok(())
}

/// A stage listed with its options as an options table (the builder's and the TOML's path).
pub fn to_table(name: &str, options: &impl serde::Serialize) -> Result<toml::Value, OptionsError> {
    toml::Value::try_from(options).map_err(|e| OptionsError {
        key: name.to_string(),
        message: format!("the options cannot be written as a TOML table: {e}"),
    })
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}

/// The stage list as Markdown rows (`| name | reads | writes | needs [kg] | summary |`), for
/// the docs; a test keeps `docs/pipelines.md` in step with it.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| stage | reads | writes | needs `[kg]` | what it does |\n|---|---|---|---|---|\n",
    );
    for kind in REGISTRY {
        let info = kind.info();
        let fields = |f: &[Field]| {
            if f.is_empty() {
                "-".to_string()
            } else {
                f.iter()
                    .map(|f| format!("`{}`", f.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let reads = kind.requires(None).map(|r| fields(&r)).unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            info.name,
            reads,
            fields(info.produces),
            if info.needs_kg { "yes" } else { "no" },
            info.summary
        ));
    }
    out
}
