//! Pipelines: stages declared in TOML (or with [`PipelineBuilder`]), built once, then run over
//! any number of documents from any number of threads.
//!
//! Data flow: [`Pipeline::from_toml`] loads and checks a [`PipelineSpec`] (strict schema,
//! stage order), loads the KG once, builds the shared linker and each listed stage, and
//! [`Pipeline::process_batch`] passes a batch of [`Document`]s through the stages in order.
//! `Pipeline` is `Send + Sync` and cheap to clone (an `Arc` inside).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{self, ConfigError};
use crate::doc::Document;
use crate::kg::import::{self, ImportError, ImportOptions};
use crate::kg::store::{Store, StoreError, StoreOptions};
use crate::stages::facts::FactsOptions;
use crate::stages::kbqa::KbqaStageOptions;
use crate::stages::ner::NerStageOptions;
use crate::stages::qa::QaStageOptions;
use crate::stages::registry::{self, StageContext};
use crate::stages::relation::RelationStageOptions;
use crate::stages::segment::SegmentStageOptions;
use crate::text::{KnowledgeSource, LinkError, LinkOptions, Linker, MemoryKg, SourceError};

pub mod spec;

pub use crate::stages::{Field, Stage, StageError};
pub use crate::text::KgLinker;
pub use spec::{KgLocation, PipelineSpec, RunSpec};

/// What can go wrong building or running a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The TOML is invalid (file, line, key and what was expected).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The KG's triple files could not be read.
    #[error("loading the knowledge graph")]
    KgImport(#[from] ImportError),
    /// The KG store could not be opened or read.
    #[error("opening the knowledge graph store")]
    KgStore(#[from] StoreError),
    /// The KG failed while a stage read it.
    #[error(transparent)]
    KgRead(#[from] SourceError),
    /// The linker could not be built or failed.
    #[error("entity linking")]
    Link(#[from] LinkError),
    /// The worker thread pool could not be started.
    #[error("cannot start {threads} worker threads: {message}")]
    Threads {
        /// Threads asked for.
        threads: usize,
        /// The OS's reason.
        message: String,
    },
    /// A pipeline assembled with the builder is inconsistent.
    #[error("pipeline {key}: {message}")]
    Invalid {
        /// The dotted key the problem is about, e.g. `pipeline.stages[1]`.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The compute device named by `pipeline.device` is unknown or unavailable.
    #[error("pipeline.device")]
    Device(#[from] crate::model::ModelError),
    /// A stage failed to load or to run.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// A builder was asked for a stage that needs a KG without one.
    #[error("stage `{stage}` needs a knowledge graph; give the builder one (kg_triples, kg_store or kg_source)")]
    NoKg {
        /// The stage.
        stage: &'static str,
    },
}

/// A built pipeline: `Send + Sync`, cheap to clone, safe to share across request handlers.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    fingerprint: String,
    batch_size: usize,
    stages: Vec<Box<dyn Stage>>,
    /// The document fields the stages write, in stage order.
    produces: Vec<Field>,
    pool: Option<rayon::ThreadPool>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.inner.name)
            .field("stages", &self.stage_names())
            .field("batch_size", &self.inner.batch_size)
            .finish()
    }
}

impl Pipeline {
    /// Loads, checks and builds the pipeline declared in `path`.
    pub fn from_toml(path: impl AsRef<Path>) -> Result<Self, PipelineError> {
        Self::from_toml_with(path.as_ref(), &[])
    }

    /// Like [`Pipeline::from_toml`] with `--set dotted.key=value` overrides applied first.
    pub fn from_toml_with(path: &Path, overrides: &[String]) -> Result<Self, PipelineError> {
        Self::from_toml_with_kinds(path, overrides, &[])
    }

    /// Like [`Pipeline::from_toml_with`], the file may also list stages of the kinds `kinds`
    /// (a library's own [`registry::StageKind`]s, as [`PipelineBuilder::register`] adds them).
    pub fn from_toml_with_kinds(
        path: &Path,
        overrides: &[String],
        kinds: &[&'static dyn registry::StageKind],
    ) -> Result<Self, PipelineError> {
        let kinds = registry::Kinds::with(kinds);
        let mut loaded = config::load::<PipelineSpec>(path, overrides)?;
        let kg = loaded.value.check_with(&loaded.source, &kinds)?;
        build(&loaded.value, kg.map(KgInput::Location), Vec::new(), &kinds)
    }

    /// A builder for pipelines assembled in code.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// The pipeline's name (`[pipeline] name`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The stages in execution order.
    pub fn stage_names(&self) -> Vec<&str> {
        self.inner.stages.iter().map(|s| s.name()).collect()
    }

    /// A hash of every setting that shapes the output (stages and their options, KG location;
    /// not `threads` or `batch_size`): a resumed run refuses to continue under other settings.
    pub fn fingerprint(&self) -> &str {
        &self.inner.fingerprint
    }

    /// The document fields its stages write (what an export of its documents holds).
    pub fn produces(&self) -> &[Field] {
        &self.inner.produces
    }

    /// The batch size the TOML asked for (what `zhishi run` feeds at once).
    pub fn batch_size(&self) -> usize {
        self.inner.batch_size
    }

    /// Processes one text.
    pub fn process(&self, text: &str) -> Result<Document, PipelineError> {
        let mut docs = [Document::new(text)];
        self.run(&mut docs)?;
        let [doc] = docs;
        Ok(doc)
    }

    /// Processes texts together (parallel CPU stages, batched model inference); the output
    /// order is the input order.
    pub fn process_batch<S: AsRef<str>>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Document>, PipelineError> {
        let mut docs: Vec<Document> = texts.iter().map(|t| Document::new(t.as_ref())).collect();
        self.run(&mut docs)?;
        Ok(docs)
    }

    /// Runs `f` on the pipeline's worker pool (`[pipeline] threads`), so callers' own rayon
    /// work (e.g. serialising results) respects the same thread budget.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.inner.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// Like [`Pipeline::run`], returning each stage's wall time in seconds (in
    /// [`Pipeline::stage_names`] order). For benchmarks.
    pub fn run_timed(&self, docs: &mut [Document]) -> Result<Vec<f64>, PipelineError> {
        let stages = &self.inner.stages;
        self.install(move || {
            let mut seconds = Vec::with_capacity(stages.len());
            for stage in stages {
                let start = std::time::Instant::now();
                stage.process(docs)?;
                seconds.push(start.elapsed().as_secs_f64());
            }
            Ok(seconds)
        })
    }

    /// Runs the stages over documents that already carry ids or questions.
    pub fn run(&self, docs: &mut [Document]) -> Result<(), PipelineError> {
        self.run_with(docs, false)
    }

    /// [`Pipeline::run`], with `explain` the facts behind each prediction of the stages that
    /// injected knowledge (`evidence`, see [`Stage::process_explained`]; one forward pass
    /// more per fact that can reach a prediction).
    pub fn run_with(&self, docs: &mut [Document], explain: bool) -> Result<(), PipelineError> {
        let stages = &self.inner.stages;
        self.install(move || {
            for stage in stages {
                if explain {
                    stage.process_explained(docs)?;
                } else {
                    stage.process(docs)?;
                }
            }
            Ok(())
        })
    }
}

/// Where a pipeline's KG comes from: a checked TOML location or a source built in code.
enum KgInput {
    Location(KgLocation),
    Source(Arc<dyn KnowledgeSource>),
}

/// Assembles a pipeline in code; the TOML path's stage-order checks apply. Registered stages
/// are added with their options ([`PipelineBuilder::stage`], or the named shortcuts), stages
/// of your own with [`PipelineBuilder::custom_stage`].
#[derive(Default)]
pub struct PipelineBuilder {
    spec: PipelineSpec,
    kg: Option<KgInput>,
    custom: Vec<CustomStage>,
    /// Stage kinds of the library user's, listed like the built-in ones.
    kinds: Vec<&'static dyn registry::StageKind>,
    /// The first options that could not be turned into a table, reported by `build`.
    invalid: Option<registry::OptionsError>,
}

/// A stage built by the library user, with what it reads and writes.
struct CustomStage {
    stage: Arc<dyn Stage>,
    requires: Vec<Field>,
    produces: Vec<Field>,
}

impl PipelineBuilder {
    /// Adds a stage kind of your own, so `stage(NAME, &options)` (and a TOML file read with
    /// [`Pipeline::from_toml_with_kinds`]) can list it like a built-in one: declared as the
    /// built-in kinds are (`StageKind`, e.g. [`registry::ModelStageKind`]), checked the same
    /// way, and instances of it may be named (`[mine_a] kind = "mine"`).
    pub fn register(mut self, kind: &'static dyn registry::StageKind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Names the pipeline.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.spec.pipeline.name = name.into();
        self
    }

    /// Uses triple files (any importer format, detected per file) as the KG, in memory.
    pub fn kg_triples(mut self, files: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        self.kg = Some(KgInput::Location(KgLocation::Triples {
            files: files.into_iter().map(Into::into).collect(),
            format: import::Format::Auto,
        }));
        self
    }

    /// Uses a store directory made by `zhishi kg import` as the KG (locked by this process).
    pub fn kg_store(mut self, dir: impl Into<PathBuf>) -> Self {
        self.kg = Some(KgInput::Location(KgLocation::Store {
            dir: dir.into(),
            cache_bytes: StoreOptions::default().cache_bytes,
            snapshot: false,
        }));
        self
    }

    /// Uses a private read-only copy of a store as the KG, so other processes can read the
    /// same store at once (see [`Store::open_snapshot`]).
    pub fn kg_store_snapshot(mut self, dir: impl Into<PathBuf>) -> Self {
        self.kg = Some(KgInput::Location(KgLocation::Store {
            dir: dir.into(),
            cache_bytes: StoreOptions::default().cache_bytes,
            snapshot: true,
        }));
        self
    }

    /// Uses an already-open knowledge source (e.g. a [`MemoryKg`] built in code).
    pub fn kg_source(mut self, source: Arc<dyn KnowledgeSource>) -> Self {
        self.kg = Some(KgInput::Source(source));
        self
    }

    /// Appends the registered stage `name` with `options` (its TOML table's type, e.g.
    /// [`LinkOptions`] for `link`); checked like the TOML when the pipeline is built.
    pub fn stage(mut self, name: &str, options: &impl serde::Serialize) -> Self {
        match registry::to_table(name, options) {
            Ok(table) => {
                self.spec.tables.insert(name.to_string(), table);
            }
            Err(e) => {
                self.invalid.get_or_insert(e);
            }
        }
        self.spec.pipeline.stages.push(name.to_string());
        self
    }

    /// Appends a stage of your own: `stage` reads `requires` (which earlier stages must
    /// produce) and writes `produces`; it runs in order with the registered ones.
    pub fn custom_stage(
        mut self,
        stage: impl Stage + 'static,
        requires: &[Field],
        produces: &[Field],
    ) -> Self {
        self.spec.pipeline.stages.push(stage.name().to_string());
        self.custom.push(CustomStage {
            stage: Arc::new(stage),
            requires: requires.to_vec(),
            produces: produces.to_vec(),
        });
        self
    }

    /// Appends the `segment` stage.
    pub fn segment(self, opts: SegmentStageOptions) -> Self {
        self.stage("segment", &opts)
    }

    /// Appends the `link` stage.
    pub fn link(self, opts: LinkOptions) -> Self {
        self.stage("link", &opts)
    }

    /// Appends the `facts` stage.
    pub fn facts(self, opts: FactsOptions) -> Self {
        self.stage("facts", &opts)
    }

    /// Appends the `ner` stage (a trained model directory).
    pub fn ner(self, opts: NerStageOptions) -> Self {
        self.stage("ner", &opts)
    }

    /// Appends the `kbqa` stage (a trained model directory).
    pub fn kbqa(self, opts: KbqaStageOptions) -> Self {
        self.stage("kbqa", &opts)
    }

    /// Appends the `relation` stage (a trained model directory; pairs from `opts.pairs_from`).
    pub fn relation(self, opts: RelationStageOptions) -> Self {
        self.stage("relation", &opts)
    }

    /// Appends the extractive `qa` stage (a trained model directory).
    pub fn qa(self, opts: QaStageOptions) -> Self {
        self.stage("qa", &opts)
    }

    /// Worker threads for CPU stages (0 = rayon's global pool).
    pub fn threads(mut self, threads: usize) -> Self {
        self.spec.pipeline.threads = threads;
        self
    }

    /// The device model stages run on: `cpu` (default), `cuda` or `cuda:N` (needs a build with
    /// the `cuda` feature and a driver; checked when the pipeline is built).
    pub fn device(mut self, device: impl Into<String>) -> Self {
        self.spec.pipeline.device = device.into();
        self
    }

    /// The arithmetic of model stages' dense layers: f32 (default), bf16 or int8 (see
    /// [`crate::model::Precision`]).
    pub fn precision(mut self, precision: crate::model::Precision) -> Self {
        self.spec.pipeline.precision = precision;
        self
    }

    /// Documents per batch for `zhishi run`-style callers.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.spec.pipeline.batch_size = batch_size.max(1);
        self
    }

    /// Checks the stage order and every stage's options (as the TOML path does), loads
    /// resources and builds the stages.
    pub fn build(mut self) -> Result<Pipeline, PipelineError> {
        if let Some(e) = self.invalid.take() {
            return Err(PipelineError::Invalid {
                key: e.key,
                message: e.message,
            });
        }
        let custom: Vec<(String, Vec<Field>, Vec<Field>)> = self
            .custom
            .iter()
            .map(|c| {
                (
                    c.stage.name().to_string(),
                    c.requires.clone(),
                    c.produces.clone(),
                )
            })
            .collect();
        let kinds = registry::Kinds::with(&self.kinds);
        if let Some((key, message)) =
            self.spec
                .pipeline
                .list_problem(&kinds, &self.spec.tables, &custom)
        {
            return Err(PipelineError::Invalid { key, message });
        }
        // Paths are the caller's own; an `hf:` id becomes its snapshot directory.
        let resolve = |key: &str, path: &Path| {
            crate::model::hub::resolve(path).map_err(|e| registry::OptionsError {
                key: key.to_string(),
                message: e.to_string(),
            })
        };
        for name in self.spec.pipeline.stages.clone() {
            if let Some(kind) = kinds.instance(&name, self.spec.tables.get(&name)) {
                kind.check(self.spec.tables.get_mut(&name), &resolve)
                    .map_err(|e| PipelineError::Invalid {
                        key: e.key,
                        message: e.message,
                    })?;
            }
        }
        let order =
            self.spec
                .pipeline
                .order_problem(&kinds, self.kg.is_some(), &self.spec.tables, &custom);
        if let Some((key, message)) = order {
            return Err(PipelineError::Invalid { key, message });
        }
        build(&self.spec, self.kg, self.custom, &kinds)
    }
}

/// Builds a checked spec: the KG once, the shared linker when any stage needs it, then each
/// stage through its registered kind (or the builder's custom stage), in order.
fn build(
    spec: &PipelineSpec,
    kg: Option<KgInput>,
    custom: Vec<CustomStage>,
    kinds: &registry::Kinds<'_>,
) -> Result<Pipeline, PipelineError> {
    let kg: Option<Arc<dyn KnowledgeSource>> = match kg {
        None => None,
        Some(KgInput::Source(source)) => Some(source),
        Some(KgInput::Location(location)) => Some(load_kg(&location)?),
    };
    let stages_listed = &spec.pipeline.stages;
    let kg_stage = stages_listed.iter().find(|s| {
        kinds
            .instance(s, spec.tables.get(s.as_str()))
            .is_some_and(|k| k.info().needs_kg)
    });
    let linker = match kg_stage {
        None => None,
        Some(stage) => {
            let source = kg.clone().ok_or_else(|| PipelineError::Invalid {
                key: "kg".into(),
                message: format!("stage `{stage}` needs a knowledge graph; give the builder one (kg_triples, kg_store or kg_source)"),
            })?;
            let opts =
                registry::options::<LinkOptions>("link", spec.tables.get("link")).map_err(|e| {
                    PipelineError::Invalid {
                        key: e.key,
                        message: e.message,
                    }
                })?;
            Some(Arc::new(Linker::build(source, opts)?))
        }
    };
    let device = crate::model::parse_device(&spec.pipeline.device)?;
    let mut stages: Vec<Box<dyn Stage>> = Vec::with_capacity(stages_listed.len());
    let mut produces: Vec<Field> = Vec::new();
    for name in stages_listed {
        let stage: Box<dyn Stage> = match custom.iter().find(|c| c.stage.name() == name) {
            Some(c) => {
                produces.extend(&c.produces);
                Box::new(Shared(Arc::clone(&c.stage)))
            }
            None => {
                let table = spec.tables.get(name.as_str());
                let kind = kinds
                    .instance(name, table)
                    .ok_or_else(|| PipelineError::Invalid {
                        key: "pipeline.stages".into(),
                        message: format!("unknown stage `{name}`"),
                    })?;
                let ctx = StageContext {
                    instance: name,
                    kg: kg.as_ref(),
                    linker: linker.as_ref(),
                    device: &device,
                    precision: spec.pipeline.precision,
                    earlier: &stages,
                    tables: &spec.tables,
                };
                produces.extend(kind.info().produces);
                kind.build(table, &ctx)?
            }
        };
        stages.push(stage);
    }
    let threads = spec.pipeline.threads;
    let pool = if threads == 0 {
        None
    } else {
        Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("zhishi-{i}"))
                .build()
                .map_err(|e| PipelineError::Threads {
                    threads,
                    message: e.to_string(),
                })?,
        )
    };
    Ok(Pipeline {
        inner: Arc::new(Inner {
            name: spec.pipeline.name.clone(),
            fingerprint: fingerprint(spec),
            batch_size: spec.pipeline.batch_size,
            stages,
            produces,
            pool,
        }),
    })
}

/// SHA-256 (hex, first 16 bytes) of the checked spec without its speed-only settings, over a
/// canonical serialisation (JSON with sorted keys), so it does not change with `Debug`
/// formatting, field order in the file, or the compiler.
fn fingerprint(spec: &PipelineSpec) -> String {
    use sha2::{Digest, Sha256};
    let mut settings = spec.clone();
    settings.pipeline.threads = 0;
    settings.pipeline.batch_size = 0;
    let canonical = serde_json::to_value(&settings)
        .map(|v| v.to_string())
        .unwrap_or_else(|e| format!("unserialisable settings: {e}"));
    let digest = Sha256::digest(canonical.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A custom stage shared by every pipeline built from the same builder settings.
struct Shared(Arc<dyn Stage>);

impl Stage for Shared {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        self.0.process(docs)
    }

    fn process_explained(&self, docs: &mut [Document]) -> Result<(), StageError> {
        self.0.process_explained(docs)
    }
}

/// Opens a store or reads triple files into memory.
fn load_kg(location: &KgLocation) -> Result<Arc<dyn KnowledgeSource>, PipelineError> {
    match location {
        KgLocation::Store {
            dir,
            cache_bytes,
            snapshot,
        } => {
            let options = StoreOptions {
                cache_bytes: *cache_bytes,
            };
            let store = if *snapshot {
                Store::open_snapshot(dir, &options)?
            } else {
                Store::open_with(dir, &options)?
            };
            Ok(Arc::new(store))
        }
        KgLocation::Triples { files, format } => {
            let options = ImportOptions {
                format: *format,
                ..ImportOptions::default()
            };
            let (kg, report) = MemoryKg::read_files(files, &options)?;
            if report.bad_lines > 0 {
                tracing::warn!(
                    bad_lines = report.bad_lines,
                    "skipped bad lines in the KG files; first: {}",
                    report
                        .examples
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                );
            }
            Ok(Arc::new(kg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn pipeline_is_send_sync_and_clone() {
        assert_send_sync::<Pipeline>();
    }

    #[test]
    fn the_resume_fingerprint_hashes_canonical_settings_not_debug_output() {
        let spec = |text: &str| toml::from_str::<PipelineSpec>(text).unwrap();
        let a = spec(
            "[pipeline]\nstages = [\"segment\", \"link\"]\n[kg]\ntriples = [\"x.tsv\"]\n[segment]\n[link]\nnil_threshold = 0.3\ntop_k = 3\n",
        );
        // The same settings in another order, with other speed-only settings.
        let b = spec(
            "[link]\ntop_k = 3\nnil_threshold = 0.3\n[segment]\n[kg]\ntriples = [\"x.tsv\"]\n[pipeline]\nstages = [\"segment\", \"link\"]\nthreads = 7\nbatch_size = 3\n",
        );
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = spec(
            "[pipeline]\nstages = [\"segment\", \"link\"]\n[kg]\ntriples = [\"x.tsv\"]\n[segment]\n[link]\nnil_threshold = 0.4\ntop_k = 3\n",
        );
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert_eq!(fingerprint(&a).len(), 32);
    }
}
