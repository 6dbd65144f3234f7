//! How well a model's scores are calibrated: do the predictions it scores at 0.8 turn out right
//! four times in five? Predictions are put in equal-width score bins; each bin's precision
//! (the share of its predictions that are right) is set against its mean score, and the
//! expected calibration error (ECE, Naeini et al., 2015) is the mean gap between the two
//! weighted by the bins' counts. [`reliability_svg`] draws the bins as a reliability diagram.
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::Serialize;

use crate::stages::charts::CJK_FONTS;

/// Score bins of the calibration `zhishi eval` reports.
pub const BINS: usize = 10;

/// One score bin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    /// Lowest score of the bin (included).
    pub lower: f64,
    /// Highest score of the bin (excluded, but for the last bin, which holds 1).
    pub upper: f64,
    /// Predictions scored in the bin.
    pub count: usize,
    /// Their mean score (`null` for an empty bin).
    pub mean_score: Option<f64>,
    /// The share of them that are right (`null` for an empty bin).
    pub precision: Option<f64>,
}

/// The calibration of a set of scored predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Expected calibration error: `Σ_bins count / total · |precision − mean_score|`
    /// (0 when there are no predictions).
    pub ece: f64,
    /// The bins, lowest scores first.
    pub bins: Vec<Bin>,
}

impl Calibration {
    /// The calibration of `predictions` (each a score in `[0, 1]` and whether the prediction
    /// is right) over `bins` equal-width bins of `[0, 1]` (at least 1). Scores outside
    /// `[0, 1]` count in the nearest end bin; NaN counts as 0.
    pub fn new(predictions: &[(f32, bool)], bins: usize) -> Self {
        let n = bins.max(1);
        let mut count = vec![0usize; n];
        let mut sum = vec![0f64; n];
        let mut right = vec![0usize; n];
        for &(score, ok) in predictions {
            let s = if score.is_nan() {
                0.0
            } else {
                f64::from(score).clamp(0.0, 1.0)
            };
            let b = ((s * n as f64) as usize).min(n - 1);
            count[b] += 1;
            sum[b] += s;
            right[b] += usize::from(ok);
        }
        let total = predictions.len();
        let mut ece = 0.0;
        let bins = (0..n)
            .map(|b| {
                let (mean_score, precision) = if count[b] == 0 {
                    (None, None)
                } else {
                    let c = count[b] as f64;
                    let (m, p) = (sum[b] / c, right[b] as f64 / c);
                    ece += c / total as f64 * (p - m).abs();
                    (Some(m), Some(p))
                };
                Bin {
                    lower: b as f64 / n as f64,
                    upper: (b + 1) as f64 / n as f64,
                    count: count[b],
                    mean_score,
                    precision,
                }
            })
            .collect();
        Self { ece, bins }
    }
}

/// Why a reliability diagram could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The drawing failed.
    #[error("drawing {}: {message}", path.display())]
    Draw {
        /// The picture's file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The file could not be written.
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
}

/// Draws `calibration` as a reliability diagram (SVG): each non-empty bin's precision as a
/// bar over its score range, its mean score as a point, the diagonal of perfect calibration,
/// each bar labelled with its count; `title` and the ECE above.
pub fn reliability_svg(calibration: &Calibration, title: &str) -> Result<String, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let caption = format!("{title} (ECE {:.3})", calibration.ece);
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (CJK_FONTS, 16))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..1.05f64)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_labels(11)
            .y_labels(11)
            .max_light_lines(1)
            .x_desc("score")
            .y_desc("precision")
            .label_style((CJK_FONTS, 12))
            .draw()
            .map_err(|e| err(&e))?;
        let bar = RGBColor(120, 160, 220);
        let filled: Vec<&Bin> = calibration.bins.iter().filter(|b| b.count > 0).collect();
        chart
            .draw_series(filled.iter().map(|b| {
                let p = b.precision.unwrap_or(0.0);
                Rectangle::new([(b.lower, 0.0), (b.upper, p)], bar.mix(0.7).filled())
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                6,
                4,
                RGBColor(90, 90, 90).stroke_width(1),
            ))
            .map_err(|e| err(&e))?;
        let red = RGBColor(214, 39, 40);
        chart
            .draw_series(filled.iter().map(|b| {
                Circle::new(
                    (b.mean_score.unwrap_or(0.0), b.precision.unwrap_or(0.0)),
                    4,
                    red.filled(),
                )
            }))
            .map_err(|e| err(&e))?;
        let font = (CJK_FONTS, 11).into_font();
        chart
            .draw_series(filled.iter().map(|b| {
                Text::new(
                    b.count.to_string(),
                    (b.lower + 0.01, b.precision.unwrap_or(0.0) + 0.03),
                    font.clone(),
                )
            }))
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// Draws [`reliability_svg`] into the file `path` (written whole, see [`crate::files`]).
pub fn write_reliability(
    path: &Path,
    calibration: &Calibration,
    title: &str,
) -> Result<(), ChartError> {
    let svg = reliability_svg(calibration, title).map_err(|message| ChartError::Draw {
        path: path.to_path_buf(),
        message,
    })?;
    crate::files::write_file(path, svg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_matches_a_hand_computation() {
        // Bin [0.2, 0.3): 0.2 right, 0.25 wrong -> mean 0.225, precision 0.5, gap 0.275.
        // Bin [0.9, 1.0]: 0.92 right, 1.0 right, 0.95 wrong -> mean 2.87 / 3, precision 2/3,
        // gap 0.29. Bin [0.5, 0.6): 0.5 right -> gap 0.5.
        let predictions = [
            (0.2, true),
            (0.25, false),
            (0.92, true),
            (1.0, true),
            (0.95, false),
            (0.5, true),
        ];
        let c = Calibration::new(&predictions, 10);
        let hand = (2.0 * 0.275 + 3.0 * 0.29 + 0.5) / 6.0;
        assert!((c.ece - hand).abs() < 1e-6, "{} against {hand}", c.ece);
        assert_eq!(c.bins.len(), 10);
        let counts: Vec<usize> = c.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, [0, 0, 2, 0, 0, 1, 0, 0, 0, 3]);
        let top = &c.bins[9];
        assert_eq!((top.lower, top.upper), (0.9, 1.0));
        assert!((top.mean_score.unwrap() - 2.87 / 3.0).abs() < 1e-6);
        assert!((top.precision.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.bins[0].mean_score, None);
    }

    #[test]
    fn perfect_and_empty_calibrations() {
        // Half right at 0.55 each: precision 0.5 against mean 0.55.
        let c = Calibration::new(&[(0.55, true), (0.55, false)], 10);
        assert!((c.ece - 0.05).abs() < 1e-6);
        let none = Calibration::new(&[], 10);
        assert_eq!(none.ece, 0.0);
        assert!(none.bins.iter().all(|b| b.count == 0));
    }

    #[test]
    fn the_reliability_diagram_names_the_ece_and_the_counts() {
        // (2 · 0.04 + 0.3) / 3 = 0.127.
        let c = Calibration::new(&[(0.95, true), (0.97, true), (0.3, false)], 10);
        let svg = reliability_svg(&c, "kbert_medical test").unwrap();
        assert!(svg.contains("<svg") && svg.contains("ECE 0.127"), "{svg}");
        assert!(svg.contains(">2<") || svg.contains("\n2\n"), "{svg}");
    }
}
