//! Training curves as SVG: the mean training loss and the dev metric against the optimiser
//! step, one panel each, written to `curves.svg` in a run's output directory so a user can see
//! how training went without any other tool (plotters' SVG backend).
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

/// One evaluation of a training run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// Optimiser steps taken when the evaluation ran.
    pub step: usize,
    /// Mean training loss since the previous evaluation.
    pub loss: f64,
    /// The dev score early stopping watches (see the report's `dev_metric`).
    pub dev_score: f64,
}

/// Why the curves could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {message}")]
pub struct CurvesError {
    /// The SVG file.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// Draws `history` (loss on top, `metric` below, both against the step) into the SVG `path`.
pub fn write_curves(
    path: &Path,
    history: &[HistoryPoint],
    metric: &str,
) -> Result<(), CurvesError> {
    let err = |e: &dyn std::fmt::Display| CurvesError {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut svg = String::new();
    draw(&mut svg, history, metric).map_err(|e| err(&e))?;
    crate::files::write_file(path, svg).map_err(|e| err(&e))
}

/// Draws the curves into the SVG text `svg`.
fn draw(svg: &mut String, history: &[HistoryPoint], metric: &str) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::with_string(svg, (720, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(260);
    let steps = history.iter().map(|h| h.step).max().unwrap_or(1).max(1);
    let panels = [
        (
            &top,
            "training loss".to_string(),
            history.iter().map(|h| (h.step, h.loss)).collect::<Vec<_>>(),
            RGBColor(31, 119, 180),
        ),
        (
            &bottom,
            format!("dev {metric}"),
            history.iter().map(|h| (h.step, h.dev_score)).collect(),
            RGBColor(214, 39, 40),
        ),
    ];
    for (area, label, points, colour) in panels {
        let finite: Vec<f64> = points
            .iter()
            .map(|p| p.1)
            .filter(|v| v.is_finite())
            .collect();
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        } else if lo.is_finite() {
            (lo - 0.5, lo + 0.5)
        } else {
            (0.0, 1.0)
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&label, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(0..steps, lo..hi)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc(&label)
            .draw()
            .map_err(|e| err(&e))?;
        let series: Vec<(usize, f64)> = points.into_iter().filter(|p| p.1.is_finite()).collect();
        chart
            .draw_series(LineSeries::new(series.iter().copied(), &colour))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(series.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_panels_into_an_svg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/curves.svg"); // the directory is made when missing
        let history = [
            HistoryPoint {
                step: 10,
                loss: 2.5,
                dev_score: 0.31,
            },
            HistoryPoint {
                step: 20,
                loss: 1.2,
                dev_score: 0.62,
            },
            HistoryPoint {
                step: 30,
                loss: 0.7,
                dev_score: 0.70,
            },
        ];
        write_curves(&path, &history, "f1").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        assert!(svg.contains("training loss") && svg.contains("dev f1"));
        assert_eq!(svg.matches("<circle").count(), 6);
        // A single evaluation, or none, still draws.
        write_curves(&path, &history[..1], "f1").unwrap();
        write_curves(&path, &[], "f1").unwrap();
    }
}
