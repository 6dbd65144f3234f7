//! The training loop: epochs of length-bucketed batches, gradient accumulation, clipping,
//! AdamW with a linear schedule, evaluation every N steps (or each epoch) with early stopping,
//! the best model saved by the task to `OUTPUT/best/`, and a resumable state in `OUTPUT/last/`.
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Tensor;
use serde::Serialize;

use super::adamw::{AdamW, AdamWConfig};
use super::batching::Batching;
use super::checkpoint::{self, LoopState};
use super::curves::{write_curves, HistoryPoint};
use super::grads::{clip_scale, GradBuffer};
use super::output::TrainOutput;
use super::param::Param;
use super::phases::{since, PhaseSeconds};
use super::progress::{verdict, TrainProgress};
use super::schedule::LinearSchedule;
use super::TrainError;
use crate::files::StagedDir;
use crate::knowledge::Layout;
use crate::model::Dropout;
use crate::model::Rng;

/// The loss of one training batch and how many tokens it covered.
#[derive(Debug, Clone)]
pub struct BatchLoss {
    /// Scalar loss (mean over the batch) with a gradient path to the parameters.
    pub loss: Tensor,
    /// Real tokens in the batch (no padding).
    pub tokens: usize,
    /// Tokens the encoder ran over, padding included.
    pub padded_tokens: usize,
    /// Seconds spent assembling the batch before the forward pass (reported under
    /// [`PhaseSeconds::batching`]; the rest of `batch_loss` counts as the forward pass).
    pub batching_seconds: f64,
}

/// A dev-set evaluation: the score early stopping watches (higher is better) and every metric.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The score to maximise (e.g. entity F1).
    pub score: f64,
    /// All metrics as JSON (written next to the best model).
    pub metrics: serde_json::Value,
}

/// What a trainable stage provides to the loop.
pub trait TrainTask {
    /// Length in tokens of every training example (for bucketing).
    fn train_lengths(&self) -> Vec<usize>;
    /// Called before each epoch's batches (also when a resumed run re-enters an epoch), e.g.
    /// to mask pretraining sequences afresh per epoch.
    fn start_epoch(&self, _epoch: usize) {}
    /// The training-mode loss of the examples `batch` laid out as `layout`, using `dropout`.
    fn batch_loss(
        &self,
        batch: &[usize],
        layout: Layout,
        dropout: &Dropout,
    ) -> Result<BatchLoss, TrainError>;
    /// Evaluates the current parameters on the dev set (no dropout).
    fn evaluate(&self) -> Result<Evaluation, TrainError>;
    /// Saves a loadable model (weights, configuration, label maps) into `dir`.
    fn save(&self, dir: &Path) -> Result<(), TrainError>;
    /// The name of [`Evaluation::score`] in reports and curves (e.g. `f1`).
    fn metric_name(&self) -> &'static str {
        "score"
    }
}

/// Settings of the loop.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Passes over the training data.
    pub epochs: usize,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// How examples are grouped into batches.
    pub batching: Batching,
    /// Batches per length-sorting pool when bucketed.
    pub bucket_pool: usize,
    /// Micro-batches per optimiser step.
    pub grad_accum: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Fraction of the steps spent warming up.
    pub warmup_ratio: f64,
    /// AdamW hyper-parameters.
    pub adamw: AdamWConfig,
    /// Clip gradients to this global L2 norm (0 disables).
    pub max_grad_norm: f64,
    /// Seed of shuffling and dropout.
    pub seed: u64,
    /// Evaluate every N optimiser steps; 0 evaluates at the end of each epoch.
    pub eval_every: usize,
    /// Stop after this many evaluations without improvement; 0 never stops early.
    pub patience: usize,
    /// Stop (and save the resumable state) after this many optimiser steps in total.
    pub max_steps: Option<usize>,
    /// Where `best/`, `last/`, `final/` and `curves.svg` go: claimed (checked against what
    /// the run reads) and locked before the run.
    pub output: TrainOutput,
    /// Continue from `OUTPUT/last/` when it exists.
    pub resume: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Also save the model as it is when the run ends to `OUTPUT/final/` (with the metrics of
    /// its last evaluation), besides the best one in `OUTPUT/best/`.
    pub save_final: bool,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Optimiser steps taken in total (including before a resume).
    pub steps: usize,
    /// Best dev score.
    pub best_score: Option<f64>,
    /// Step of the best dev score.
    pub best_step: usize,
    /// Training seconds, evaluation excluded.
    pub train_seconds: f64,
    /// Real tokens trained on.
    pub tokens: usize,
    /// Tokens including padding.
    pub padded_tokens: usize,
    /// Real tokens per second.
    pub tokens_per_s: f64,
    /// Tokens per second including padding.
    pub padded_tokens_per_s: f64,
    /// Early stopping ended the run.
    pub stopped_early: bool,
    /// Dev metrics of the best evaluation of this run (`None` if it made none).
    pub best_metrics: Option<serde_json::Value>,
    /// What `best_score` and every `dev_score` of `history` measure (e.g. `f1`).
    pub dev_metric: &'static str,
    /// Mean training loss since the previous evaluation, and the dev score, per evaluation
    /// (also drawn into `output_dir/curves.svg`).
    pub history: Vec<HistoryPoint>,
    /// Where the model as it was at the end went (`OUTPUT/final/`), with `save_final`.
    pub final_dir: Option<PathBuf>,
    /// Wall-clock seconds per phase of this run (this process).
    pub phases: PhaseSeconds,
    /// A plain-words warning when the result looks wrong (e.g. dev F1 0 after a few steps:
    /// "too few steps for this data"), else `None`; `zhishi train` also prints it to stderr.
    pub verdict: Option<String>,
}

/// Runs a [`TrainTask`] over its trainable parameters.
pub struct Trainer {
    params: Vec<Param>,
    options: TrainOptions,
}

impl Trainer {
    /// A trainer updating `params` (frozen parts of the model are simply not listed).
    pub fn new(params: Vec<Param>, options: TrainOptions) -> Self {
        Self { params, options }
    }

    /// The trainable parameters.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The directory holding the best model.
    pub fn best_dir(&self) -> PathBuf {
        self.options.output.best()
    }

    /// Trains until the epochs are done, early stopping triggers or `max_steps` is reached.
    pub fn run<T: TrainTask>(
        &self,
        task: &T,
        dropout: &Dropout,
    ) -> Result<TrainReport, TrainError> {
        let o = &self.options;
        let lengths = task.train_lengths();
        let batches_per_epoch = lengths.len().div_ceil(o.batch_size.max(1));
        let accum = o.grad_accum.max(1);
        let steps_per_epoch = batches_per_epoch.div_ceil(accum);
        let total = o.epochs * steps_per_epoch;
        let schedule = LinearSchedule {
            peak: o.lr,
            warmup: (o.warmup_ratio * total as f64) as usize,
            total,
        };
        let mut opt = AdamW::new(&self.params, o.adamw);
        let last_dir = o.output.last();
        let mut state = LoopState::default();
        // A checkpoint is written whole, so one that is there is complete unless tampered
        // with; `load` then says what is missing rather than starting over silently.
        if o.resume && last_dir.exists() {
            state = checkpoint::load(&last_dir, &self.params, &mut opt)?;
            dropout.set_rng_state(state.dropout_rng);
        }
        let mut bar = TrainProgress::new(o.progress, total, state.step);
        let mut grads = GradBuffer::new(&self.params);
        let mut log = EvalLog::default();
        let mut phases = PhaseSeconds::default();
        let mut stopped_early = false;
        'epochs: while state.epoch < o.epochs {
            task.start_epoch(state.epoch);
            let batches = o.batching.batches(
                &lengths,
                o.batch_size,
                o.bucket_pool,
                &mut Rng::derive(o.seed, state.epoch as u64),
            );
            let groups: Vec<&[Vec<usize>]> = batches.chunks(accum).collect();
            while state.step_in_epoch < groups.len() {
                if o.max_steps.is_some_and(|m| state.step >= m) {
                    break 'epochs;
                }
                let group = groups[state.step_in_epoch];
                let started = Instant::now();
                grads.clear();
                let mut group_loss = 0.0;
                for batch in group {
                    let forward_started = Instant::now();
                    let b = task.batch_loss(batch, o.batching.layout(), dropout)?;
                    let value = b.loss.to_scalar::<f32>()?;
                    phases.batching += b.batching_seconds;
                    phases.forward += (since(forward_started) - b.batching_seconds).max(0.0);
                    if !value.is_finite() {
                        return Err(TrainError::NonFinite {
                            step: state.step,
                            loss: value,
                        });
                    }
                    group_loss += f64::from(value) / group.len() as f64;
                    let backward_started = Instant::now();
                    let scaled = (b.loss / group.len() as f64)?;
                    let store = scaled.backward()?;
                    phases.backward += since(backward_started);
                    let accumulate_started = Instant::now();
                    grads.add(&self.params, &store)?;
                    phases.accumulate += since(accumulate_started);
                    state.tokens += b.tokens;
                    state.padded_tokens += b.padded_tokens;
                }
                let optimizer_started = Instant::now();
                let scale = clip_scale(grads.global_norm(), o.max_grad_norm);
                opt.step(&self.params, &grads, schedule.lr(state.step), scale)?;
                phases.optimizer += since(optimizer_started);
                state.step += 1;
                state.step_in_epoch += 1;
                state.train_seconds += started.elapsed().as_secs_f64();
                log.loss_sum += group_loss;
                log.loss_count += 1;
                bar.step(
                    state.step,
                    format!(
                        "epoch {} loss {:.4} dev {} {:.0} tok/s",
                        state.epoch + 1,
                        group_loss,
                        log.last_score
                            .map_or("-".to_string(), |s| format!("{s:.4}")),
                        state.tokens as f64 / state.train_seconds.max(1e-9)
                    ),
                );
                if o.eval_every > 0 && state.step.is_multiple_of(o.eval_every) {
                    let stop = self.evaluate_and_checkpoint(
                        task,
                        (&mut state, &mut log, &mut phases),
                        &opt,
                        dropout,
                        &last_dir,
                    )?;
                    if stop {
                        stopped_early = true;
                        break 'epochs;
                    }
                }
            }
            state.epoch += 1;
            state.step_in_epoch = 0;
            if o.eval_every == 0 {
                let stop = self.evaluate_and_checkpoint(
                    task,
                    (&mut state, &mut log, &mut phases),
                    &opt,
                    dropout,
                    &last_dir,
                )?;
                if stop {
                    stopped_early = true;
                    break;
                }
            }
        }
        if log.loss_count > 0 && !stopped_early {
            // Steps since the last evaluation (max_steps, or eval_every not dividing the total).
            self.evaluate(task, &mut state, &mut log, &mut phases)?;
        }
        state.dropout_rng = dropout.rng_state();
        let saving_started = Instant::now();
        checkpoint::save(&last_dir, &self.params, &opt, &state)?;
        let final_dir = if o.save_final {
            Some(self.save_final(task, &state, &log)?)
        } else {
            None
        };
        phases.saving += since(saving_started);
        bar.finish();
        let secs = state.train_seconds.max(1e-9);
        let verdict = verdict(
            task.metric_name(),
            state.best_score,
            state.step,
            &log.history,
        );
        Ok(TrainReport {
            steps: state.step,
            best_score: state.best_score,
            best_step: state.best_step,
            train_seconds: state.train_seconds,
            tokens: state.tokens,
            padded_tokens: state.padded_tokens,
            tokens_per_s: state.tokens as f64 / secs,
            padded_tokens_per_s: state.padded_tokens as f64 / secs,
            stopped_early,
            best_metrics: log.best_metrics,
            dev_metric: task.metric_name(),
            history: log.history,
            final_dir,
            phases,
            verdict,
        })
    }

    /// The directory holding the model as it was when the run ended (with `save_final`).
    pub fn final_dir(&self) -> PathBuf {
        self.options.output.final_dir()
    }

    /// Saves the model as it is now to [`Trainer::final_dir`], with the metrics of this run's
    /// last evaluation (evaluating once when the run made none, e.g. a finished run resumed).
    fn save_final<T: TrainTask>(
        &self,
        task: &T,
        state: &LoopState,
        log: &EvalLog,
    ) -> Result<PathBuf, TrainError> {
        let dir = self.final_dir();
        let metrics = match &log.last_metrics {
            Some(m) => m.clone(),
            None => task.evaluate()?.metrics,
        };
        let json = serde_json::json!({"step": state.step, "dev": metrics});
        save_whole(task, &dir, &json)?;
        Ok(dir)
    }

    /// [`Trainer::evaluate`], then saves the resumable state into `last_dir`.
    fn evaluate_and_checkpoint<T: TrainTask>(
        &self,
        task: &T,
        (state, log, phases): (&mut LoopState, &mut EvalLog, &mut PhaseSeconds),
        opt: &AdamW,
        dropout: &Dropout,
        last_dir: &Path,
    ) -> Result<bool, TrainError> {
        let stop = self.evaluate(task, state, log, phases)?;
        state.dropout_rng = dropout.rng_state();
        let saving_started = Instant::now();
        checkpoint::save(last_dir, &self.params, opt, state)?;
        phases.saving += since(saving_started);
        Ok(stop)
    }

    /// Evaluates (logging the mean loss since the last evaluation), saves the model when it is
    /// the best so far, and says whether to stop.
    fn evaluate<T: TrainTask>(
        &self,
        task: &T,
        state: &mut LoopState,
        log: &mut EvalLog,
        phases: &mut PhaseSeconds,
    ) -> Result<bool, TrainError> {
        let mean_loss = log.loss_sum / log.loss_count.max(1) as f64;
        (log.loss_sum, log.loss_count) = (0.0, 0);
        let evaluation_started = Instant::now();
        let eval = task.evaluate()?;
        phases.evaluation += since(evaluation_started);
        let saving_started = Instant::now();
        log.history.push(HistoryPoint {
            step: state.step,
            loss: mean_loss,
            dev_score: eval.score,
        });
        let curves = self.options.output.curves();
        if let Err(e) = write_curves(&curves, &log.history, task.metric_name()) {
            tracing::warn!("{}", crate::error::report(&e));
        }
        log.last_score = Some(eval.score);
        log.last_metrics = Some(eval.metrics.clone());
        tracing::info!(
            step = state.step,
            loss = mean_loss,
            score = eval.score,
            "evaluation"
        );
        if state.best_score.is_none_or(|best| eval.score > best) {
            state.best_score = Some(eval.score);
            state.best_step = state.step;
            state.evals_without_improvement = 0;
            let metrics = serde_json::json!({"step": state.step, "dev": eval.metrics});
            save_whole(task, &self.best_dir(), &metrics)?;
            log.best_metrics = Some(eval.metrics.clone());
            phases.saving += since(saving_started);
            Ok(false)
        } else {
            state.evals_without_improvement += 1;
            phases.saving += since(saving_started);
            Ok(self.options.patience > 0
                && state.evals_without_improvement >= self.options.patience)
        }
    }
}

/// Saves the task's model with `metrics.json` as the directory `dir`, whole: built beside it
/// and swapped in, so a reader (or a kill) sees the previous model or this one.
fn save_whole<T: TrainTask>(
    task: &T,
    dir: &Path,
    metrics: &serde_json::Value,
) -> Result<(), TrainError> {
    let staged = StagedDir::new(dir)?;
    task.save(staged.path())?;
    let path = staged.path().join("metrics.json");
    std::fs::write(&path, metrics.to_string()).map_err(|source| TrainError::Io {
        path: dir.join("metrics.json"),
        source,
    })?;
    staged.commit()?;
    Ok(())
}

/// What the loop records between and at evaluations.
#[derive(Default)]
struct EvalLog {
    /// Summed step losses since the last evaluation.
    loss_sum: f64,
    /// Steps since the last evaluation.
    loss_count: usize,
    /// Step, mean loss and dev score per evaluation.
    history: Vec<HistoryPoint>,
    /// The latest dev score (shown in the progress bar).
    last_score: Option<f64>,
    /// Dev metrics of the best evaluation.
    best_metrics: Option<serde_json::Value>,
    /// Dev metrics of the latest evaluation.
    last_metrics: Option<serde_json::Value>,
}
