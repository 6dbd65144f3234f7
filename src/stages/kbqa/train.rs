//! Training and evaluation driven by a [`KbqaConfig`]: builds the store from the question file's
//! gold triples when it is missing, links the training questions as a pipeline's `link` stage
//! does ([`link_document`] with [`linker_options`]), prepares their candidates, fits the scorer
//! with the gold triples as supervision (best epoch on the dev split), saves the model
//! directory (with its encoder and its KG's identity), and evaluates a saved model on a split.
use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use serde::Serialize;

use crate::config::Loaded;
use crate::doc::Document;
use crate::files::{DirLock, Plan, StagedDir};
use crate::kg::import::{import_files, Format, ImportOptions};
use crate::kg::store::Store;
use crate::model::Precision;
use crate::text::{link_document, KnowledgeSource, Linker};

use super::candidates::FEATURES;
use super::config::KbqaConfig;
use super::data::{read_questions, split, Question};
use super::metrics::{metrics, Metrics};
use super::scorer::{Example, FitOptions, Prepared, Scorer};
use super::{
    linker_options, rank_answers, KbqaError, KbqaModel, LinkedQuestion, ModelMeta,
    QuestionPreparer, CONFIG_FILE,
};

/// Questions prepared per encoder/linker round (bounds memory, paces progress logs).
const CHUNK: usize = 512;

pub use crate::stages::task::Split;
use crate::stages::task::{register, Purpose, Task, TaskKind, Trainable, Trained};

/// One epoch of training.
#[derive(Debug, Clone, Serialize)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean listwise training loss during the epoch.
    pub loss: f32,
    /// Dev answer accuracy after the epoch.
    pub dev_accuracy: f64,
}

/// What [`train`] did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// The model directory written.
    pub output: PathBuf,
    /// Training questions.
    pub train_questions: usize,
    /// Training questions whose gold triple is among the candidates (the ones that teach).
    pub train_with_gold: usize,
    /// Dev questions.
    pub dev_questions: usize,
    /// Mean training loss (over the questions with a gold candidate) of the untrained scorer,
    /// whose scores are all zero.
    pub initial_loss: f32,
    /// Mean training loss of the kept scorer.
    pub final_loss: f32,
    /// Dev metrics of the untrained scorer (it keeps the first candidate: the first triple of
    /// the linker's best mention), for comparison.
    pub dev_untrained: Metrics,
    /// Per-epoch progress.
    pub epochs: Vec<EpochReport>,
    /// Dev metrics of the kept (best) epoch.
    pub dev: Metrics,
    /// Seconds preparing candidates and embeddings.
    pub prepare_seconds: f64,
    /// Seconds fitting the scorer.
    pub fit_seconds: f64,
}

struct Resolved {
    data: PathBuf,
    store: PathBuf,
    encoder: PathBuf,
    output: PathBuf,
}

fn resolve(config: &Loaded<KbqaConfig>) -> Result<Resolved, KbqaError> {
    let c = &config.value;
    if c.task.kind != "kbqa" {
        return Err(config
            .source
            .error(
                "task.kind",
                format!("expected \"kbqa\", found {:?}", c.task.kind),
            )
            .into());
    }
    let src = &config.source;
    Ok(Resolved {
        data: src.resolve(&c.data.path),
        store: src.resolve(&c.kg.store),
        encoder: match crate::model::hub::HubId::from_path(&c.encoder.model) {
            Some(_) => src.model_dir("encoder.model", &c.encoder.model)?,
            None => src.resolve(&c.encoder.model),
        },
        output: src.resolve(&c.train.output),
    })
}

/// Imports the gold triples of the question file (of its first `kg.gold_questions` questions,
/// when given) into the store unless it already exists or `kg.import_gold` is off.
fn ensure_store(paths: &Resolved, c: &KbqaConfig) -> Result<(), KbqaError> {
    let (store, data, questions) = (&paths.store, &paths.data, c.kg.gold_questions);
    if store.exists() || !c.kg.import_gold {
        return Ok(());
    }
    let opts = ImportOptions {
        format: Format::Nlpcc,
        ..ImportOptions::default()
    };
    let Some(n) = questions else {
        import_files(store, &[data.to_path_buf()], &opts, &mut |_| {})?;
        return Ok(());
    };
    // The first `n` question blocks, in the file's own format, so the importer reads them
    // exactly as it reads the whole file.
    let text = crate::textfile::read(data)?;
    let mut part = String::new();
    let mut seen = 0;
    for line in text.lines() {
        if line.starts_with("<question id=") {
            seen += 1;
            if seen > n {
                break;
            }
        }
        part.push_str(line);
        part.push('\n');
    }
    let mut name = store.as_os_str().to_owned();
    name.push(format!(".first-{n}.kbqa.training-data"));
    let subset = PathBuf::from(name);
    crate::files::write_file(&subset, part)?;
    import_files(store, &[subset], &opts, &mut |_| {})?;
    Ok(())
}

/// `questions` linked by `linker` exactly as a pipeline's `link` stage links a document.
fn link_questions<S: KnowledgeSource + Sync>(
    linker: &Linker<S>,
    questions: &[Question],
) -> Vec<Document> {
    use rayon::prelude::*;
    questions
        .par_iter()
        .map(|q| {
            let mut doc = Document::new(q.text.as_str());
            link_document(linker, &mut doc, false);
            doc
        })
        .collect()
}

/// Candidates and embeddings of `questions`, linked by `linker`, in chunks.
fn prepare_all<S: KnowledgeSource + Sync>(
    pipeline: &QuestionPreparer,
    linker: &Linker<S>,
    questions: &[Question],
) -> Result<Vec<Prepared>, KbqaError> {
    let mut out = Vec::with_capacity(questions.len());
    for chunk in questions.chunks(CHUNK) {
        let docs = link_questions(linker, chunk);
        let linked: Vec<LinkedQuestion<'_>> = docs
            .iter()
            .map(|d| (d.text.as_str(), d.mentions.as_slice()))
            .collect();
        out.extend(pipeline.prepare(linker.source(), &linked)?);
        tracing::info!(
            prepared = out.len(),
            of = questions.len(),
            "kbqa candidates"
        );
    }
    Ok(out)
}

/// Metrics of `scorer` on prepared questions.
fn score_split(scorer: &Scorer, prepared: &[Prepared], questions: &[Question]) -> Metrics {
    use rayon::prelude::*;
    let top: Vec<Option<String>> = prepared
        .par_iter()
        .map(|p| {
            rank_answers(p, &scorer.scores(p))
                .into_iter()
                .next()
                .map(|a| a.text)
        })
        .collect();
    metrics(
        top.iter()
            .zip(questions)
            .map(|(t, q)| (t.as_deref(), q.answer.as_str())),
    )
}

/// Labels each candidate: is it the question's gold triple?
fn example(input: Prepared, gold: &Question) -> Example {
    let positive = input
        .gathered
        .candidates
        .iter()
        .map(|c| c.triple == gold.triple)
        .collect();
    Example { input, positive }
}

/// Trains the scorer on the configuration's training questions and writes the model directory.
pub fn train(config: &Loaded<KbqaConfig>) -> Result<TrainReport, KbqaError> {
    let paths = resolve(config)?;
    let mut plan = Plan::new();
    plan.read("the configuration", config.source.path())
        .read("data.path", &paths.data)
        .read("encoder.model", &paths.encoder)
        .write("train.output", &paths.output);
    if paths.store.exists() {
        plan.read("kg.store", &paths.store);
    } else {
        plan.write("kg.store", &paths.store);
    }
    plan.check()?;
    let _lock = DirLock::acquire_sibling(&paths.output)?;
    let c = &config.value;
    let questions = read_questions(&paths.data)?;
    let [train_qs, dev_qs, _] = split(&questions, c.data.train_questions, c.data.dev_questions);
    ensure_store(&paths, c)?;
    let store = Store::open(&paths.store)?;
    let kg_identity = store.identity()?;
    let linker_settings = linker_options(&c.link);
    let linker = Linker::build(store, linker_settings.clone())?;
    let pipeline = QuestionPreparer::open(
        &paths.encoder,
        c.encoder.max_len,
        c.encoder.batch_size,
        c.link.clone(),
        &Device::Cpu,
        Precision::F32,
    )?;
    let started = Instant::now();
    let examples: Vec<Example> = prepare_all(&pipeline, &linker, train_qs)?
        .into_iter()
        .zip(train_qs)
        .map(|(p, q)| example(p, q))
        .collect();
    let dev = prepare_all(&pipeline, &linker, dev_qs)?;
    drop(linker);
    let prepare_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut scorer = Scorer::new(pipeline.dim(), c.train.rank, c.train.seed);
    let initial_loss = scorer.mean_loss(&examples);
    let dev_untrained = score_split(&scorer, &dev, dev_qs);
    let opts = FitOptions {
        epochs: c.train.epochs,
        lr: c.train.lr,
        l2: c.train.l2,
        batch_size: c.train.batch_size,
        seed: c.train.seed,
    };
    let mut epochs = Vec::new();
    scorer.fit(&examples, &opts, &mut |epoch, s, loss| {
        let m = score_split(s, &dev, dev_qs);
        tracing::info!(epoch, loss, dev_accuracy = m.accuracy, "kbqa epoch");
        epochs.push(EpochReport {
            epoch,
            loss,
            dev_accuracy: m.accuracy,
        });
        m.accuracy as f32
    });
    let fit_seconds = started.elapsed().as_secs_f64();

    let meta = ModelMeta {
        max_len: c.encoder.max_len,
        batch_size: c.encoder.batch_size,
        link: c.link.clone(),
        linker: linker_settings,
        kg_identity,
        kg_name: paths
            .store
            .file_name()
            .map(|n| n.to_string_lossy().into_owned()),
        features: FEATURES.iter().map(|s| s.to_string()).collect(),
        dim: pipeline.dim(),
        rank: c.train.rank,
        encoder: crate::model::hub::snapshot_id(&paths.encoder).map(|id| id.to_string()),
    };
    let staged = StagedDir::new(&paths.output)?;
    KbqaModel::save_parts(staged.path(), &meta, &scorer, &paths.encoder)?;
    let toml_path = staged.path().join(CONFIG_FILE);
    std::fs::write(&toml_path, config.source.text()).map_err(|source| KbqaError::Io {
        path: paths.output.join(CONFIG_FILE),
        source,
    })?;
    staged.commit()?;
    Ok(TrainReport {
        output: paths.output,
        train_questions: train_qs.len(),
        train_with_gold: examples.iter().filter(|e| e.teaches()).count(),
        dev_questions: dev_qs.len(),
        initial_loss,
        final_loss: scorer.mean_loss(&examples),
        dev_untrained,
        epochs,
        dev: score_split(&scorer, &dev, dev_qs),
        prepare_seconds,
        fit_seconds,
    })
}

/// Loads the model the configuration trained (its encoder at `precision`) and scores it on
/// `split`, answering from the configuration's store with its NIL threshold.
pub fn evaluate(
    config: &Loaded<KbqaConfig>,
    which: Split,
    precision: Precision,
) -> Result<Metrics, KbqaError> {
    let paths = resolve(config)?;
    let c = &config.value;
    let questions = read_questions(&paths.data)?;
    let parts = split(&questions, c.data.train_questions, c.data.dev_questions);
    let part = match which {
        Split::Train => parts[0],
        Split::Dev => parts[1],
        Split::Test => parts[2],
    };
    // The config's store and threshold, which may differ from the training run's (e.g. a store
    // without the test questions' triples, to measure refusals).
    ensure_store(&paths, c)?;
    let model = KbqaModel::load_at(&paths.output, &Device::Cpu, precision)?
        .with_nil_threshold(c.link.nil_threshold);
    let linker = Linker::build(Store::open(&paths.store)?, model.linker_options().clone())?;
    evaluate_model(&model, &linker, part)
}

/// Scores `model` on `questions`, linked by `linker` (over the KG to answer from).
pub fn evaluate_model<S: KnowledgeSource + Sync>(
    model: &KbqaModel,
    linker: &Linker<S>,
    questions: &[Question],
) -> Result<Metrics, KbqaError> {
    let mut top = Vec::with_capacity(questions.len());
    for chunk in questions.chunks(CHUNK) {
        let texts: Vec<&str> = chunk.iter().map(|q| q.text.as_str()).collect();
        for answers in model.answer_batch(linker, &texts)? {
            top.push(answers.into_iter().next().map(|a| a.text));
        }
    }
    Ok(metrics(
        top.iter()
            .zip(questions)
            .map(|(t, q)| (t.as_deref(), q.answer.as_str())),
    ))
}

/// KBQA as a trainable task. It fits its scorer with its own loop (see [`train`]): the
/// encoder is frozen and the scorer is a small listwise model trained by full passes with
/// Adam, so the gradient-step loop of [`crate::train`] (checkpoints, warm-up, dev every N
/// steps) has nothing to offer it; its report goes into `details`. Evaluation runs the
/// question encoder at the given precision.
pub struct Kbqa;

/// KBQA in the trainable-task registry ([`crate::stages::training::TASKS`]).
pub static TASK: Trainable = register::<Kbqa>();

impl Task for Kbqa {
    type Resolved = Loaded<KbqaConfig>;
    type Metrics = Metrics;
    type Error = KbqaError;
    const KIND: TaskKind = TaskKind::Kbqa;
    const METRIC: &'static str = "accuracy";

    fn resolve(
        path: &std::path::Path,
        overrides: &[String],
        _purpose: Purpose,
    ) -> Result<Loaded<KbqaConfig>, KbqaError> {
        let loaded = crate::config::load::<KbqaConfig>(path, overrides)?;
        resolve(&loaded)?;
        Ok(loaded)
    }

    fn train(loaded: Loaded<KbqaConfig>) -> Result<Trained, KbqaError> {
        let r = train(&loaded)?;
        let details = serde_json::to_value(&r).ok();
        Ok(Trained {
            dev: serde_json::to_value(r.dev).unwrap_or_default(),
            train: None,
            model_dir: r.output,
            details,
        })
    }

    fn evaluate(
        loaded: Loaded<KbqaConfig>,
        split: Split,
        precision: Precision,
    ) -> Result<Metrics, KbqaError> {
        evaluate(&loaded, split, precision)
    }
}
