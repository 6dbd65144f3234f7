//! How a task model uses knowledge, from training to a pipeline run, on one code path:
//!
//! * [`Annotator`]: training and evaluation link their own sentences over the `[knowledge]`
//!   table's KG with [`crate::text::annotate`], i.e. exactly what a pipeline's `link` and
//!   `facts` stages write into a [`Document`].
//! * [`Injection`]: what the model feeds its encoder from a document's mentions and facts
//!   (K-BERT trees, ERNIE entity rows), the same whether the document came from the
//!   annotator or from a pipeline.
//! * [`KnowledgeRecord`]: the knowledge settings a model was trained with (linker options,
//!   facts per mention, predicate injection, the KG's content identity; no path), saved in
//!   its directory; [`KnowledgeRecord::check_pipeline`] compares them with a running
//!   pipeline so training/serving skew is never silent.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::{KnowledgeMode, KnowledgeTable};
use crate::doc::Document;
use crate::kg::import::{Format, ImportError, ImportOptions};
use crate::kg::KgIdentity;
use crate::knowledge::{DocumentKnowledge, DocumentTree, EntityVectors};
use crate::stages::facts::FactsOptions;
use crate::stages::registry::{self, StageContext};
use crate::stages::{Field, StageError};
use crate::text::{annotate, KnowledgeSource, LinkError, LinkOptions, Linker, MemoryKg};

/// Why the knowledge of a model could not be set up or applied.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// A knowledge mode that links mentions without a `kg` file.
    #[error("knowledge mode {0:?} without a kg file")]
    NoKg(&'static str),
    /// An ERNIE mode without the entity vectors it fuses.
    #[error("knowledge mode {0:?} without entity vectors")]
    NoEntityVectors(&'static str),
    /// The KG file could not be read (strictly: a bad line is an error).
    #[error("reading the KG {path}")]
    Import {
        /// The KG file.
        path: PathBuf,
        /// What went wrong.
        source: ImportError,
    },
    /// The KG could not tell its identity.
    #[error("reading the KG's identity")]
    Source(#[from] crate::text::SourceError),
    /// The linker could not be built or failed on a text.
    #[error("entity linking")]
    Link(#[from] LinkError),
    /// The model was trained with other knowledge settings or another KG than the
    /// pipeline's, or with knowledge the pipeline does not produce.
    #[error("{0}")]
    Mismatch(String),
    /// ERNIE entity vectors could not be trained, read or written.
    #[error("entity vectors")]
    Entities(#[from] crate::knowledge::ErnieError),
    /// A knowledge record file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A knowledge record file is not valid JSON of its kind.
    #[error("{}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// Pretrained aggregator weights could not be read.
    #[error("{}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        source: candle_core::Error,
    },
}

/// What to do when a model's knowledge settings differ from the pipeline's (`[ner]` /
/// `[relation]` `knowledge_mismatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MismatchPolicy {
    /// Refuse to build the pipeline (the default).
    #[default]
    Error,
    /// Log a warning and run anyway.
    Warn,
}

/// The knowledge settings a model was trained with, saved in its directory (`knowledge` in
/// `ner.json` / `relation.json`). It names the KG by content, never by path, so the model
/// directory can move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeRecord {
    /// `plain`, `kbert`, `ernie` or `both`.
    pub mode: KnowledgeMode,
    /// Facts injected per linked mention (K-BERT).
    pub max_entities: usize,
    /// Whether `predicate + object` is injected rather than the object alone.
    pub with_predicate: bool,
    /// The linker's settings (`[link]` of a pipeline running the model must equal them).
    #[serde(default)]
    pub link: Option<LinkOptions>,
    /// What the KG held (a pipeline running the model must load the same content).
    #[serde(default)]
    pub kg_identity: Option<KgIdentity>,
    /// The KG file's name, for messages (no directory).
    #[serde(default)]
    pub kg_name: Option<String>,
    /// ERNIE: the number of aggregator layers.
    #[serde(default)]
    pub ernie_layers: Option<usize>,
}

impl KnowledgeRecord {
    /// A model without knowledge.
    pub fn plain() -> Self {
        Self {
            mode: KnowledgeMode::Plain,
            max_entities: 0,
            with_predicate: false,
            link: None,
            kg_identity: None,
            kg_name: None,
            ernie_layers: None,
        }
    }

    /// The number of ERNIE aggregator layers for an encoder of `num_layers` layers.
    pub fn aggregator_layers(&self, num_layers: usize) -> usize {
        self.ernie_layers.unwrap_or(num_layers.div_ceil(2))
    }

    /// Document fields a pipeline must produce before the model runs: `mentions` for ERNIE
    /// fusion, `facts` too for K-BERT injection.
    pub fn reads(&self) -> Vec<Field> {
        let mut out = Vec::new();
        if self.mode != KnowledgeMode::Plain {
            out.push(Field::Mentions);
        }
        if self.mode.injects() {
            out.push(Field::Facts);
        }
        out
    }

    /// Compares the record with the pipeline the model is built into (`stage` names it):
    /// its linker's options, its `facts` stage's `per_mention` (at least `max_entities`)
    /// and its KG's identity. Every difference is listed; under [`MismatchPolicy::Warn`]
    /// they are logged and the stage runs anyway.
    pub fn check_pipeline(
        &self,
        stage: &str,
        ctx: &StageContext<'_>,
        policy: MismatchPolicy,
    ) -> Result<(), StageError> {
        if self.mode == KnowledgeMode::Plain {
            return Ok(());
        }
        let problems = self
            .differences(ctx)
            .map_err(|e| StageError::new(stage, e))?;
        if problems.is_empty() {
            return Ok(());
        }
        let what = format!(
            "mode {}{}",
            self.mode.name(),
            self.kg_name
                .as_ref()
                .map(|n| format!(", KG {n}"))
                .unwrap_or_default()
        );
        refuse_or_warn(stage, &what, &problems, policy)
    }

    /// Checks that `model` (a trained model's record) was trained with this record's
    /// knowledge: e.g. the training config a model is evaluated with still describes it.
    pub fn same_as(&self, model: &KnowledgeRecord) -> Result<(), KnowledgeError> {
        let mut problems = Vec::new();
        if self.mode != model.mode {
            problems.push(format!(
                "knowledge.mode: config {}, model {}",
                self.mode.name(),
                model.mode.name()
            ));
        }
        if (self.max_entities, self.with_predicate) != (model.max_entities, model.with_predicate) {
            problems.push(format!(
                "knowledge.max_entities/with_predicate: config {}/{}, model {}/{}",
                self.max_entities, self.with_predicate, model.max_entities, model.with_predicate
            ));
        }
        if let (Some(config), Some(trained)) = (&self.link, &model.link) {
            problems.extend(link_differences(trained, config));
        }
        if self.kg_identity != model.kg_identity {
            problems.push(format!(
                "knowledge.kg: the config's KG has {}, the model was trained on {}",
                show_identity(&self.kg_identity),
                show_identity(&model.kg_identity)
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(KnowledgeError::Mismatch(format!(
                "the model was trained with other knowledge than the config describes:\n  {}",
                problems.join("\n  ")
            )))
        }
    }

    fn differences(&self, ctx: &StageContext<'_>) -> Result<Vec<String>, KnowledgeError> {
        let mut out = pipeline_differences(self.link.as_ref(), self.kg_identity.as_ref(), ctx)?;
        if ctx.kg.is_some() && self.mode.injects() {
            let facts = registry::options::<FactsOptions>("facts", ctx.tables.get("facts"))
                .map(|f| f.per_mention)
                .unwrap_or_default();
            if facts < self.max_entities {
                out.push(format!(
                    "facts.per_mention: the model injects {} facts per mention, the pipeline selects {facts}",
                    self.max_entities
                ));
            }
        }
        Ok(out)
    }
}

/// How a pipeline's linker and KG differ from those a model was trained with (`link`, the
/// linker's options, and `identity`, its KG's): one line per difference.
pub fn pipeline_differences(
    link: Option<&LinkOptions>,
    identity: Option<&KgIdentity>,
    ctx: &StageContext<'_>,
) -> Result<Vec<String>, KnowledgeError> {
    let mut out = Vec::new();
    let (Some(linker), Some(kg)) = (ctx.linker, ctx.kg) else {
        out.push(
            "the pipeline has no knowledge graph: add a [kg] table and the `link` stage".into(),
        );
        return Ok(out);
    };
    match link {
        None => out.push(
            "the model predates knowledge records (no linker settings saved); retrain it".into(),
        ),
        Some(trained) => out.extend(link_differences(trained, linker.options())),
    }
    match (identity, kg.identity()?) {
        (Some(trained), Some(running)) if *trained != running => out.push(format!(
            "kg: the model was trained on a KG of {trained}; the pipeline's has {running}"
        )),
        (None, _) => out.push("the model does not record its KG's identity; retrain it".into()),
        (Some(_), None) => tracing::warn!(
            "the pipeline's KG cannot tell its identity; the model's KG is not checked"
        ),
        _ => {}
    }
    Ok(out)
}

/// Refuses to build `stage` when `problems` is not empty (listing them; `what` describes the
/// model's knowledge), or under [`MismatchPolicy::Warn`] logs them and goes on.
pub fn refuse_or_warn(
    stage: &str,
    what: &str,
    problems: &[String],
    policy: MismatchPolicy,
) -> Result<(), StageError> {
    if problems.is_empty() {
        return Ok(());
    }
    let message = format!(
        "the model was trained with other knowledge than this pipeline gives it ({what}):\n  {}\n(train with the pipeline's settings, change the pipeline's, or set `{stage}.knowledge_mismatch = \"warn\"` to run anyway)",
        problems.join("\n  ")
    );
    match policy {
        MismatchPolicy::Error => Err(StageError::new(stage, KnowledgeError::Mismatch(message))),
        MismatchPolicy::Warn => {
            tracing::warn!(stage, "{message}");
            Ok(())
        }
    }
}

fn show_identity(identity: &Option<KgIdentity>) -> String {
    identity
        .as_ref()
        .map_or_else(|| "no recorded identity".into(), ToString::to_string)
}

/// `link.KEY: model A, pipeline B` for every linker option that differs.
fn link_differences(trained: &LinkOptions, running: &LinkOptions) -> Vec<String> {
    let (Ok(toml::Value::Table(a)), Ok(toml::Value::Table(b))) = (
        toml::Value::try_from(trained),
        toml::Value::try_from(running),
    ) else {
        return if trained == running {
            Vec::new()
        } else {
            vec!["link: the linker's settings differ".into()]
        };
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&toml::Value>| v.map_or("unset".into(), ToString::to_string);
            format!(
                "link.{k}: model {}, pipeline {}",
                show(a.get(k)),
                show(b.get(k))
            )
        })
        .collect()
}

/// The document fields a trained model directory's knowledge needs (from its settings file
/// `meta_file`); empty when the directory cannot be read (building the stage reports that).
pub fn recorded_reads(model_dir: &Path, meta_file: &str) -> Vec<Field> {
    #[derive(Deserialize)]
    struct Meta {
        knowledge: KnowledgeRecord,
    }
    std::fs::read_to_string(model_dir.join(meta_file))
        .ok()
        .and_then(|text| serde_json::from_str::<Meta>(&text).ok())
        .map(|m| m.knowledge.reads())
        .unwrap_or_default()
}

/// Links training and evaluation sentences over a `[knowledge]` table's KG exactly as a
/// pipeline's `link` + `facts` stages do.
pub struct Annotator {
    linker: Arc<Linker<MemoryKg>>,
    per_mention: usize,
    record: KnowledgeRecord,
}

impl Annotator {
    /// The annotator `table` describes, reading its KG strictly (a bad line is an error, not
    /// a silently smaller KG), with its record (`ernie_layers` as given); `None` in plain mode.
    pub fn from_table(
        table: &KnowledgeTable,
        ernie_layers: Option<usize>,
    ) -> Result<Option<Self>, KnowledgeError> {
        let mode = table.mode;
        if mode == KnowledgeMode::Plain {
            return Ok(None);
        }
        let path = table.kg.as_ref().ok_or(KnowledgeError::NoKg(mode.name()))?;
        let options = ImportOptions {
            format: Format::Tsv,
            strict: true,
            ..ImportOptions::default()
        };
        let (kg, _) =
            MemoryKg::read_files(std::slice::from_ref(path), &options).map_err(|source| {
                KnowledgeError::Import {
                    path: path.clone(),
                    source,
                }
            })?;
        let link = LinkOptions {
            nil_threshold: table.nil_threshold,
            ..LinkOptions::default()
        };
        let record = KnowledgeRecord {
            mode,
            max_entities: if mode.injects() {
                table.max_entities
            } else {
                0
            },
            with_predicate: table.with_predicate,
            link: Some(link.clone()),
            kg_identity: kg.identity()?,
            kg_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
            ernie_layers,
        };
        Ok(Some(Self {
            linker: Arc::new(Linker::build(kg, link)?),
            per_mention: record.max_entities,
            record,
        }))
    }

    /// What a model trained on this annotator's documents records.
    pub fn record(&self) -> &KnowledgeRecord {
        &self.record
    }

    /// Documents for `texts` with their mentions and facts (in parallel).
    pub fn annotate<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Document>, KnowledgeError> {
        texts
            .par_iter()
            .map(|t| Ok(annotate(&*self.linker, t.as_ref(), self.per_mention)?))
            .collect()
    }
}

/// Documents for `texts`: linked by `annotator` when there is one, bare otherwise.
pub fn documents<S: AsRef<str> + Sync>(
    annotator: Option<&Annotator>,
    texts: &[S],
) -> Result<Vec<Document>, KnowledgeError> {
    match annotator {
        Some(a) => a.annotate(texts),
        None => Ok(texts.iter().map(|t| Document::new(t.as_ref())).collect()),
    }
}

/// What a model feeds its encoder from a document's knowledge.
#[derive(Debug, Clone)]
pub struct Injection {
    /// Facts injected per mention (0: no K-BERT injection).
    max_entities: usize,
    with_predicate: bool,
    /// ERNIE's entity vectors (`None`: no fusion).
    vectors: Option<EntityVectors>,
}

impl Injection {
    /// No knowledge.
    pub fn plain() -> Self {
        Self {
            max_entities: 0,
            with_predicate: false,
            vectors: None,
        }
    }

    /// The injection a model's record describes; ERNIE modes fuse `vectors` (the model's
    /// entity table).
    pub fn new(
        record: &KnowledgeRecord,
        vectors: Option<EntityVectors>,
    ) -> Result<Self, KnowledgeError> {
        let vectors = if record.mode.fuses_entities() {
            Some(vectors.ok_or(KnowledgeError::NoEntityVectors(record.mode.name()))?)
        } else {
            None
        };
        Ok(Self {
            max_entities: if record.mode.injects() {
                record.max_entities
            } else {
                0
            },
            with_predicate: record.with_predicate,
            vectors,
        })
    }

    /// K-BERT injection of `max_entities` facts per mention (`predicate + object` with
    /// `with_predicate`), without ERNIE fusion.
    pub fn kbert(max_entities: usize, with_predicate: bool) -> Self {
        Self {
            max_entities,
            with_predicate,
            vectors: None,
        }
    }

    /// The same injection with ERNIE fusion of `vectors` as well.
    pub fn with_vectors(mut self, vectors: EntityVectors) -> Self {
        self.vectors = Some(vectors);
        self
    }

    /// Facts injected per mention (0 without K-BERT injection).
    pub fn max_entities(&self) -> usize {
        self.max_entities
    }

    /// The sentence tree of the characters `ranges` of a prepared document.
    pub fn tree(
        &self,
        doc: &DocumentKnowledge<'_>,
        ranges: &[std::ops::Range<usize>],
    ) -> DocumentTree {
        doc.tree(ranges, self.max_entities, self.with_predicate)
    }

    /// ERNIE entity rows of `len` tokens of the cut `ranges` (empty without fusion).
    pub fn entity_rows(
        &self,
        doc: &DocumentKnowledge<'_>,
        ranges: &[std::ops::Range<usize>],
        char_to_token: &[Option<usize>],
        len: usize,
    ) -> Vec<i64> {
        match &self.vectors {
            Some(v) => doc.entity_rows(ranges, v, char_to_token, len),
            None => Vec::new(),
        }
    }
}

/// Marks the facts `injected` (indices into `doc.facts`) as fed to `stage`'s model.
pub fn mark_injected(doc: &mut Document, injected: &[usize], stage: &str) {
    for &f in injected {
        if let Some(fact) = doc.facts.get_mut(f) {
            if !fact.injected_by.iter().any(|s| s == stage) {
                fact.injected_by.push(stage.to_string());
            }
        }
    }
}
