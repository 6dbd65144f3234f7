//! What a training run shows while it runs: a bar on a terminal; a plain line every
//! [`line_every`] otherwise (a log file, CI, `2> train.log`), as `zhishi run` does; nothing
//! with `train.progress = false`. And, when it ends, a plain-words [`verdict`] if the result
//! looks wrong.
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::curves::HistoryPoint;

/// Seconds between progress lines when standard error is not a terminal, for `zhishi train`
/// and `zhishi run` alike: 10, or
/// `$ZHISHI_PROGRESS_EVERY` (seconds, `0` = a line every step).
pub fn line_every() -> Duration {
    std::env::var("ZHISHI_PROGRESS_EVERY")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64)
}

/// The bar or the lines of one run.
pub struct TrainProgress {
    bar: ProgressBar,
    /// Write lines (progress on, standard error not a terminal).
    lines: bool,
    last_line: Instant,
    every: Duration,
    total: usize,
}

impl TrainProgress {
    /// Progress of a run of `total` steps of which `done` are done (a resumed run).
    pub fn new(show: bool, total: usize, done: usize) -> Self {
        let tty = std::io::stderr().is_terminal();
        let target = if show && tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_position(done as u64);
        Self {
            bar,
            lines: show && !tty,
            last_line: Instant::now(),
            every: line_every(),
            total,
        }
    }

    /// One optimiser step done (`step` in total), described by `message`.
    pub fn step(&mut self, step: usize, message: String) {
        self.bar.inc(1);
        if self.lines && self.last_line.elapsed() >= self.every {
            self.last_line = Instant::now();
            let pct = 100.0 * step as f64 / self.total.max(1) as f64;
            eprintln!(
                "zhishi train: step {step}/{} ({pct:.1}%), {message}",
                self.total
            );
        }
        self.bar.set_message(message);
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A plain-words warning when a finished run's result looks wrong, learned from its dev
/// scores, its loss curve and its step count; `None` when nothing looks wrong.
pub fn verdict(
    metric: &str,
    best: Option<f64>,
    steps: usize,
    history: &[HistoryPoint],
) -> Option<String> {
    /// Below this many optimiser steps a fine-tuned encoder has rarely learned a task.
    const FEW_STEPS: usize = 100;
    let first = history.first().map(|h| h.loss);
    let last = history.last().map(|h| h.loss);
    let loss_fell = matches!((first, last), (Some(a), Some(b)) if b < a);
    match best {
        Some(score) if score > 0.0 => None,
        _ if steps < FEW_STEPS => Some(format!(
            "dev {metric} {} after {steps} steps: too few steps for this data; train longer (more train.epochs, e.g. 10 or more, or more data) before judging the model",
            best.map_or("-".into(), |s| format!("{s:.4}"))
        )),
        _ if !loss_fell && history.len() > 1 => Some(format!(
            "dev {metric} {} and the training loss did not fall ({:.4} -> {:.4}) in {steps} steps: lower train.lr, or check that the labels match the data",
            best.map_or("-".into(), |s| format!("{s:.4}")),
            first.unwrap_or(f64::NAN),
            last.unwrap_or(f64::NAN)
        )),
        _ => Some(format!(
            "dev {metric} {} after {steps} steps although the training loss fell: check that the dev set has the training set's labels, and train longer",
            best.map_or("-".into(), |s| format!("{s:.4}"))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step: usize, loss: f64) -> HistoryPoint {
        HistoryPoint {
            step,
            loss,
            dev_score: 0.0,
        }
    }

    #[test]
    fn a_zero_score_after_few_steps_says_to_train_longer() {
        let v = verdict("f1", Some(0.0), 7, &[point(7, 2.0)]).unwrap();
        assert!(
            v.starts_with("dev f1 0.0000 after 7 steps: too few steps"),
            "{v}"
        );
        assert_eq!(verdict("f1", Some(0.79), 7, &[point(7, 2.0)]), None);
        let flat = verdict("f1", Some(0.0), 500, &[point(100, 2.0), point(500, 2.5)]).unwrap();
        assert!(flat.contains("did not fall"), "{flat}");
    }
}
