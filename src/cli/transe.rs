//! `zhishi transe ...`: train TransE vectors on a store, or benchmark on a link-prediction set.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use zhishi::kg::dataset::{Dataset, Format};
use zhishi::kg::eval::{self, Filter};
use zhishi::kg::transe::{
    Corruption, EntityNorm, Loss, Norm, Optimizer, TrainConfig, Trainer, TransE,
};
use zhishi::kg::{Pattern, Store};
use zhishi::train::{write_curves, HistoryPoint};

/// Arguments of `zhishi transe`.
#[derive(Args, Debug)]
pub struct TranseArgs {
    #[command(subcommand)]
    command: TranseCommand,
}

#[derive(Subcommand, Debug)]
enum TranseCommand {
    /// Train on the triples of a store and save the vectors in it.
    Train(Box<TrainArgs>),
    /// Train on a benchmark's train split, evaluate filtered link prediction on its test split,
    /// print one JSON line.
    Bench(Box<BenchArgs>),
    /// Print the likeliest tails of `(H, R, ?)` or heads of `(?, R, T)` as JSON
    /// (`{"predictions": [{"entity", "score"}]}`, score = minus the TransE distance).
    Predict(super::transe_predict::PredictArgs),
}

/// Hyper-parameters shared by `train` and `bench` (defaults: [`TrainConfig::default`]).
#[derive(Args, Debug, Clone)]
struct Hyper {
    /// Embedding dimension.
    #[arg(long, value_name = "N", value_parser = super::bounds::count_in::<1, 4096>)]
    dim: Option<usize>,
    /// Training epochs (with --resume: the total to reach).
    #[arg(long, value_name = "N", value_parser = super::bounds::count_in::<1, 1_000_000>)]
    epochs: Option<usize>,
    /// Learning rate.
    #[arg(long, value_parser = super::bounds::positive_f32)]
    lr: Option<f32>,
    /// Margin (margin loss) or gamma (self-adversarial loss).
    #[arg(long, value_parser = super::bounds::positive_f32)]
    margin: Option<f32>,
    /// Distance: 1 (L1) or 2 (L2).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    norm: Option<u8>,
    /// Negatives per positive.
    #[arg(long, value_name = "N", value_parser = super::bounds::count_in::<1, 4096>)]
    negatives: Option<usize>,
    /// Positives per batch.
    #[arg(long, value_name = "N", value_parser = super::bounds::count_in::<1, { 1 << 20 }>)]
    batch_size: Option<usize>,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Loss function.
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
    /// Softmax temperature of the self-adversarial loss.
    #[arg(long, value_parser = super::bounds::positive_f32)]
    adversarial_temperature: Option<f32>,
    /// Negative corruption: uniform head/tail or Bernoulli ("bern").
    #[arg(long, value_enum)]
    corruption: Option<CorruptionArg>,
    /// Update rule.
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    /// Entity constraint: unit L2 norm after every update, or none.
    #[arg(long, value_enum)]
    entity_norm: Option<EntityNormArg>,
    /// Learn a vector per inverse relation and answer head questions with it (LibKGE's
    /// reciprocal relations model).
    #[arg(long)]
    reciprocal: bool,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, value_name = "N", value_parser = super::bounds::count_in::<1, 1024>)]
    threads: Option<usize>,
    /// Save a checkpoint to this file every --checkpoint-every epochs.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Epochs between checkpoints.
    #[arg(long, default_value_t = 1)]
    checkpoint_every: usize,
    /// Continue the run saved in this checkpoint (its hyper-parameters win, except --epochs).
    #[arg(long)]
    resume: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum LossArg {
    Margin,
    SelfAdversarial,
    /// Cross-entropy of the positive against its negatives (LibKGE's `kl`).
    Softmax,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum CorruptionArg {
    Uniform,
    Bern,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum OptimizerArg {
    Sgd,
    Adagrad,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum EntityNormArg {
    Unit,
    None,
}

impl Hyper {
    fn config(&self) -> TrainConfig {
        let d = TrainConfig::default();
        TrainConfig {
            dim: self.dim.unwrap_or(d.dim),
            epochs: self.epochs.unwrap_or(d.epochs),
            lr: self.lr.unwrap_or(d.lr),
            margin: self.margin.unwrap_or(d.margin),
            norm: match self.norm {
                Some(2) => Norm::L2,
                Some(_) => Norm::L1,
                None => d.norm,
            },
            negatives: self.negatives.unwrap_or(d.negatives),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            seed: self.seed.unwrap_or(d.seed),
            loss: self.loss.map_or(d.loss, |l| match l {
                LossArg::Margin => Loss::Margin,
                LossArg::SelfAdversarial => Loss::SelfAdversarial,
                LossArg::Softmax => Loss::Softmax,
            }),
            adversarial_temperature: self
                .adversarial_temperature
                .unwrap_or(d.adversarial_temperature),
            corruption: self.corruption.map_or(d.corruption, |c| match c {
                CorruptionArg::Uniform => Corruption::Uniform,
                CorruptionArg::Bern => Corruption::Bernoulli,
            }),
            optimizer: self.optimizer.map_or(d.optimizer, |o| match o {
                OptimizerArg::Sgd => Optimizer::Sgd,
                OptimizerArg::Adagrad => Optimizer::Adagrad,
            }),
            entity_norm: self.entity_norm.map_or(d.entity_norm, |n| match n {
                EntityNormArg::Unit => EntityNorm::Unit,
                EntityNormArg::None => EntityNorm::Free,
            }),
            reciprocal: self.reciprocal || d.reciprocal,
        }
    }

    /// Adds the checkpoint files to `plan`: `--resume` is read, `--checkpoint` written (the
    /// same file for both is how a run continues in place).
    fn declare(&self, plan: &mut zhishi::files::Plan) {
        if let Some(checkpoint) = &self.checkpoint {
            plan.write("--checkpoint", checkpoint);
        }
        if let (Some(resume), false) = (&self.resume, self.checkpoint == self.resume) {
            plan.read("--resume", resume);
        }
    }

    /// A fresh trainer, or the checkpointed one when --resume is given.
    fn trainer(
        &self,
        num_entities: usize,
        num_relations: usize,
        triples: Vec<[u32; 3]>,
    ) -> anyhow::Result<Trainer> {
        let mut trainer = match &self.resume {
            Some(path) => Trainer::resume(path, num_entities, num_relations, triples)?,
            None => Trainer::new(self.config(), num_entities, num_relations, triples)?,
        };
        if let Some(epochs) = self.epochs {
            trainer.set_epochs(epochs);
        }
        Ok(trainer)
    }

    fn pool(&self) -> anyhow::Result<rayon::ThreadPool> {
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        Ok(rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()?)
    }
}

/// Arguments of `zhishi transe train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Store directory.
    #[arg(long)]
    db: PathBuf,
    /// Also write safetensors, id maps and OpenKE `entity2vec.vec` / `relation2vec.vec` here.
    #[arg(long)]
    export: Option<PathBuf>,
    #[command(flatten)]
    hyper: Hyper,
}

/// Arguments of `zhishi transe bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Data set directory.
    #[arg(long)]
    data: PathBuf,
    /// Layout of the data set: openke (`*2id.txt`) or tsv (`train.txt` ...).
    #[arg(long)]
    format: Format,
    /// Evaluate filtered MRR on the validation split every N epochs and test the best vectors.
    #[arg(long)]
    valid_every: Option<usize>,
    /// Draw the loss per epoch (and the validation MRR where measured) into this SVG file.
    #[arg(long, value_name = "SVG")]
    curves: Option<PathBuf>,
    /// Also write the tested vectors here, as `transe train --export` does (with the
    /// training triples as `train2id.txt`), for `zhishi transe predict --model DIR`.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    #[command(flatten)]
    hyper: Hyper,
}

/// Runs a `zhishi transe` subcommand.
pub fn run(args: TranseArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TranseCommand::Train(args) => train(*args),
        TranseCommand::Bench(args) => bench(*args),
        TranseCommand::Predict(args) => super::transe_predict::predict(args),
    }
}

/// Trains until the configured epochs are done; calls `after_epoch` after each one (it may
/// return a validation score for the curves). Returns the training seconds (progress and
/// `after_epoch` excluded), the triples trained on, and one history point per epoch.
fn train_loop(
    trainer: &mut Trainer,
    hyper: &Hyper,
    mut after_epoch: impl FnMut(&Trainer) -> anyhow::Result<Option<f64>>,
) -> anyhow::Result<(f64, usize, Vec<HistoryPoint>)> {
    let total = trainer
        .config()
        .epochs
        .saturating_sub(trainer.epochs_done())
        * trainer.num_triples();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(ProgressStyle::with_template(
        "[{elapsed_precise}] {wide_bar} {human_pos}/{human_len} triples, {per_sec} {msg}",
    )?);
    let (mut seconds, mut triples, mut history) = (0.0, 0, Vec::new());
    while !trainer.finished() {
        let epoch = trainer.epochs_done() + 1;
        let start = Instant::now();
        let mut last = 0;
        let stats = trainer.train_epoch(&mut |done, loss| {
            bar.inc((done - last) as u64);
            last = done;
            bar.set_message(format!("epoch {epoch} loss {loss:.4}"));
        });
        seconds += start.elapsed().as_secs_f64();
        triples += stats.triples;
        tracing::info!(epoch, loss = stats.loss, "epoch done");
        if let Some(path) = &hyper.checkpoint {
            if epoch.is_multiple_of(hyper.checkpoint_every.max(1)) || trainer.finished() {
                trainer.save_checkpoint(path)?;
            }
        }
        let valid = bar.suspend(|| after_epoch(trainer))?;
        history.push(HistoryPoint {
            step: epoch,
            loss: stats.loss,
            dev_score: valid.unwrap_or(f64::NAN),
        });
    }
    bar.finish_and_clear();
    Ok((seconds, triples, history))
}

fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let mut plan = zhishi::files::Plan::new();
    plan.read("--data", &args.data);
    args.hyper.declare(&mut plan);
    if let Some(curves) = &args.curves {
        plan.write("--curves", curves);
    }
    if let Some(export) = &args.export {
        plan.write("--export", export);
    }
    plan.check()?;
    let data = Dataset::load(&args.data, args.format)?;
    // Every split the run evaluates must hold triples, checked before training.
    let empty = |split: &str| {
        anyhow::anyhow!(
            "{}: no triples in the {split} split; link prediction needs at least one",
            args.data.join(args.format.split_file(split)).display()
        )
    };
    if data.test.triples.is_empty() {
        return Err(empty("test"));
    }
    if args.valid_every.is_some() && data.valid.triples.is_empty() {
        return Err(empty("valid"));
    }
    let pool = args.hyper.pool()?;
    let filter = Filter::new(&data.all_triples());
    let mut trainer = args.hyper.trainer(
        data.entities.len(),
        data.relations.len(),
        data.train.triples.clone(),
    )?;
    pool.install(|| -> anyhow::Result<ExitCode> {
        let mut best: Option<(f64, usize, TransE)> = None;
        let mut valid_seconds = 0.0;
        let (train_seconds, triples, history) = train_loop(&mut trainer, &args.hyper, |trainer| {
            let Some(every) = args.valid_every else {
                return Ok(None);
            };
            if !trainer.epochs_done().is_multiple_of(every.max(1)) && !trainer.finished() {
                return Ok(None);
            }
            let start = Instant::now();
            let mrr = eval::evaluate(trainer.model(), &data.valid.triples, &filter)?
                .filtered
                .mrr;
            valid_seconds += start.elapsed().as_secs_f64();
            eprintln!(
                "epoch {}: valid filtered MRR {mrr:.4}",
                trainer.epochs_done()
            );
            if best.as_ref().is_none_or(|(b, _, _)| mrr > *b) {
                best = Some((mrr, trainer.epochs_done(), trainer.model().clone()));
            }
            Ok(Some(mrr))
        })?;
        let (model, best_epoch) = match best {
            Some((_, epoch, model)) => (model, epoch),
            None => (trainer.model().clone(), trainer.epochs_done()),
        };
        let start = Instant::now();
        let ranks = eval::rank_triples(&model, &data.test.triples, &filter);
        let report = eval::Report::from_ranks(&ranks);
        let tail = |raw: bool| {
            eval::Metrics::from_ranks(ranks.iter().map(|r| {
                if raw {
                    r.tail.raw
                } else {
                    r.tail.filtered
                }
            }))
        };
        let eval_seconds = start.elapsed().as_secs_f64();
        let m = report.filtered;
        let config = trainer.config();
        let line = json!({
            "dataset": data.name,
            "mrr": round(m.mrr, 4),
            "hits_at_1": round(m.hits_at_1, 4),
            "hits_at_3": round(m.hits_at_3, 4),
            "hits_at_10": round(m.hits_at_10, 4),
            "train_seconds": round(train_seconds, 2),
            "triples_per_second": round(triples as f64 / train_seconds.max(1e-9), 1),
            "mean_rank": round(m.mean_rank, 1),
            "raw_mrr": round(report.raw.mrr, 4),
            "raw_hits_at_10": round(report.raw.hits_at_10, 4),
            "tail_hits_at_10": round(tail(false).hits_at_10, 4),
            "tail_raw_hits_at_10": round(tail(true).hits_at_10, 4),
            "eval_seconds": round(eval_seconds, 2),
            "valid_seconds": round(valid_seconds, 2),
            "best_epoch": best_epoch,
            "threads": pool.current_num_threads(),
            "final_loss": history.last().map(|h| h.loss),
            "config": config,
        });
        if let Some(path) = &args.curves {
            write_curves(path, &history, "MRR (valid, filtered)")?;
        }
        if let Some(dir) = &args.export {
            let staged = zhishi::files::StagedDir::new(dir)?;
            save_export(
                staged.path(),
                &model,
                &data.entities,
                &data.relations,
                &data.train.triples,
            )?;
            staged.commit()?;
        }
        println!("{line}");
        Ok(ExitCode::SUCCESS)
    })
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let mut plan = zhishi::files::Plan::new();
    plan.read("--db", &args.db);
    args.hyper.declare(&mut plan);
    if let Some(export) = &args.export {
        plan.write("--export", export);
    }
    plan.check()?;
    let store =
        Store::open(&args.db).with_context(|| format!("opening store {}", args.db.display()))?;
    let stats = store.stats();
    let triples = store
        .triples(Pattern::default())
        .map(|t| t.map(|t| [t.subject, t.predicate, t.object]))
        .collect::<Result<Vec<[u32; 3]>, _>>()?;
    let (num_terms, num_predicates) = (stats.terms as usize, stats.relations as usize);
    if triples.is_empty() {
        bail!("store {} has no triples to train on", args.db.display());
    }
    let pool = args.hyper.pool()?;
    let mut trainer = args.hyper.trainer(num_terms, num_predicates, triples)?;
    let (train_seconds, trained, history) =
        pool.install(|| train_loop(&mut trainer, &args.hyper, |_| Ok(None)))?;
    let epochs = trainer.epochs_done();
    let config = trainer.config().clone();
    let model = trainer.into_model();
    let vectors = store.artifact_dir()?.join(VECTORS_FILE);
    model.save(&vectors)?;
    if let Some(dir) = &args.export {
        let mut entities = Vec::with_capacity(num_terms);
        for id in 0..num_terms as u32 {
            entities.push(store.term(id)?.map_or_else(|| format!("#{id}"), |t| t.name));
        }
        let mut relations: Vec<String> = (0..num_predicates).map(|id| format!("#{id}")).collect();
        for (id, name) in store.predicates()? {
            if let Some(slot) = relations.get_mut(id as usize) {
                *slot = name;
            }
        }
        let staged = zhishi::files::StagedDir::new(dir)?;
        let known = store
            .triples(Pattern::default())
            .map(|t| t.map(|t| [t.subject, t.predicate, t.object]))
            .collect::<Result<Vec<[u32; 3]>, _>>()?;
        save_export(staged.path(), &model, &entities, &relations, &known)?;
        write_curves(
            &staged.path().join("curves.svg"),
            &history,
            "MRR (not measured)",
        )?;
        staged.commit()?;
    }
    let line = json!({
        "entities": num_terms,
        "relations": num_predicates,
        "triples": stats.triples,
        "epochs": epochs,
        "train_seconds": round(train_seconds, 2),
        "triples_per_second": round(trained as f64 / train_seconds.max(1e-9), 1),
        "vectors": vectors.display().to_string(),
        "export": args.export.as_ref().map(|d| d.display().to_string()),
        "final_loss": history.last().map(|h| h.loss),
        "config": config,
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// File name of the vectors inside the store's artifact directory.
const VECTORS_FILE: &str = "transe.safetensors";

/// Writes `transe.safetensors`, OpenKE-style `entity2id.txt` / `relation2id.txt`,
/// `entity2vec.vec` / `relation2vec.vec` and the training triples `known` as `train2id.txt`
/// (`head tail relation`, the known triples `transe predict` leaves out) into `dir`.
fn save_export(
    dir: &Path,
    model: &TransE,
    entities: &[String],
    relations: &[String],
    known: &[[u32; 3]],
) -> anyhow::Result<()> {
    let mut train = format!("{}\n", known.len());
    for [h, r, t] in known {
        train.push_str(&format!("{h} {t} {r}\n"));
    }
    let path = dir.join("train2id.txt");
    std::fs::write(&path, train).with_context(|| format!("writing {}", path.display()))?;
    model.save(&dir.join(VECTORS_FILE))?;
    model.write_openke_vectors(dir)?;
    for (file, names) in [("entity2id.txt", entities), ("relation2id.txt", relations)] {
        let mut text = format!("{}\n", names.len());
        for (id, name) in names.iter().enumerate() {
            // OpenKE's id files are whitespace-separated: keep names on one field.
            let name: String = name
                .chars()
                .map(|c| if c.is_whitespace() { '_' } else { c })
                .collect();
            text.push_str(&format!("{name}\t{id}\n"));
        }
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
