//! Classification metrics: accuracy, macro-F1, each class's precision, recall and F1, and the
//! confusion matrix (single-label), or with several labels per example the exact-match
//! accuracy, macro- and micro-F1 over the labels. `confusion_svg` draws the matrix.
use plotters::prelude::*;
use serde::Serialize;

use crate::stages::charts::{short, CJK_FONTS};

/// One class's scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    /// The label.
    pub label: String,
    /// Of the examples predicted as it, the share that are.
    pub precision: f64,
    /// Of the examples that are it, the share predicted.
    pub recall: f64,
    /// Harmonic mean of the two (0 when both are 0).
    pub f1: f64,
    /// Examples that are it.
    pub support: usize,
}

/// Gold rows against predicted columns, in label order.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Confusion {
    /// The labels, in row and column order.
    pub labels: Vec<String>,
    /// `matrix[gold][predicted]`: examples.
    pub matrix: Vec<Vec<usize>>,
}

/// What `zhishi eval` reports for classification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassifyMetrics {
    /// Share of examples whose label (every label, with `multi_label`) is right.
    pub accuracy: f64,
    /// Mean of the classes' F1 (every class of the model counts, as scikit-learn's macro
    /// average over the label set).
    pub macro_f1: f64,
    /// F1 over all (example, label) decisions (multi-label only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub micro_f1: Option<f64>,
    /// Examples scored.
    pub examples: usize,
    /// Each class's scores, in label order.
    pub per_class: Vec<ClassScore>,
    /// The confusion matrix (single-label only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Confusion>,
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn class_score(label: &str, tp: usize, predicted: usize, gold: usize) -> ClassScore {
    let (p, r) = (ratio(tp, predicted), ratio(tp, gold));
    ClassScore {
        label: label.to_string(),
        precision: p,
        recall: r,
        f1: f1(p, r),
        support: gold,
    }
}

/// Scores single-label predictions (`gold[i]`, `predicted[i]` are label ids into `labels`).
pub fn score(labels: &[String], gold: &[u32], predicted: &[u32]) -> ClassifyMetrics {
    let k = labels.len();
    let mut matrix = vec![vec![0usize; k]; k];
    for (&g, &p) in gold.iter().zip(predicted) {
        if let Some(cell) = matrix
            .get_mut(g as usize)
            .and_then(|row| row.get_mut(p as usize))
        {
            *cell += 1;
        }
    }
    let per_class: Vec<ClassScore> = (0..k)
        .map(|c| {
            let tp = matrix[c][c];
            let predicted = matrix.iter().map(|row| row[c]).sum();
            let gold = matrix[c].iter().sum();
            class_score(&labels[c], tp, predicted, gold)
        })
        .collect();
    let correct = gold.iter().zip(predicted).filter(|(g, p)| g == p).count();
    ClassifyMetrics {
        accuracy: ratio(correct, gold.len()),
        macro_f1: mean_f1(&per_class),
        micro_f1: None,
        examples: gold.len(),
        per_class,
        confusion: Some(Confusion {
            labels: labels.to_vec(),
            matrix,
        }),
    }
}

/// Scores multi-label predictions (sets of label ids per example).
pub fn score_multi(
    labels: &[String],
    gold: &[Vec<u32>],
    predicted: &[Vec<u32>],
) -> ClassifyMetrics {
    let k = labels.len();
    let (mut tp, mut pred, mut want) = (vec![0usize; k], vec![0usize; k], vec![0usize; k]);
    let mut exact = 0;
    for (g, p) in gold.iter().zip(predicted) {
        let mut g = g.clone();
        let mut p = p.clone();
        g.sort_unstable();
        p.sort_unstable();
        exact += usize::from(g == p);
        for &l in &g {
            if let Some(w) = want.get_mut(l as usize) {
                *w += 1;
            }
            if p.contains(&l) {
                if let Some(t) = tp.get_mut(l as usize) {
                    *t += 1;
                }
            }
        }
        for &l in &p {
            if let Some(c) = pred.get_mut(l as usize) {
                *c += 1;
            }
        }
    }
    let per_class: Vec<ClassScore> = (0..k)
        .map(|c| class_score(&labels[c], tp[c], pred[c], want[c]))
        .collect();
    let (all_tp, all_pred, all_gold) = (
        tp.iter().sum::<usize>(),
        pred.iter().sum::<usize>(),
        want.iter().sum::<usize>(),
    );
    ClassifyMetrics {
        accuracy: ratio(exact, gold.len()),
        macro_f1: mean_f1(&per_class),
        micro_f1: Some(f1(ratio(all_tp, all_pred), ratio(all_tp, all_gold))),
        examples: gold.len(),
        per_class,
        confusion: None,
    }
}

fn mean_f1(per_class: &[ClassScore]) -> f64 {
    if per_class.is_empty() {
        0.0
    } else {
        per_class.iter().map(|c| c.f1).sum::<f64>() / per_class.len() as f64
    }
}

/// The confusion matrix as an SVG picture: gold rows, predicted columns, each cell shaded by
/// its share of its row and labelled with its count.
pub fn confusion_svg(confusion: &Confusion, title: &str) -> Result<String, String> {
    let k = confusion.labels.len().max(1);
    let cell = (480 / k).clamp(24, 96) as i32;
    let margin = 150i32;
    let side = margin + cell * k as i32 + 20;
    let mut svg = String::new();
    {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let root =
            SVGBackend::with_string(&mut svg, (side as u32, side as u32 + 30)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        // Labels are often Chinese: name CJK families before the generic one.
        let font = (CJK_FONTS, 14).into_font();
        root.draw(&Text::new(title.to_string(), (10, 8), font.clone()))
            .map_err(|e| err(&e))?;
        root.draw(&Text::new(
            "gold \u{2193}  predicted \u{2192}",
            (10, 28),
            font.clone(),
        ))
        .map_err(|e| err(&e))?;
        for (i, row) in confusion.matrix.iter().enumerate() {
            let total: usize = row.iter().sum();
            let y = margin + i as i32 * cell;
            root.draw(&Text::new(
                short(&confusion.labels[i]),
                (10, y + cell / 2 - 7),
                font.clone(),
            ))
            .map_err(|e| err(&e))?;
            for (j, &count) in row.iter().enumerate() {
                let x = margin + j as i32 * cell;
                let share = ratio(count, total);
                let shade = (255.0 - 200.0 * share) as u8;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell - 2, y + cell - 2)],
                    RGBColor(shade, shade, 255).filled(),
                ))
                .map_err(|e| err(&e))?;
                let color = if share > 0.5 { &WHITE } else { &BLACK };
                root.draw(&Text::new(
                    count.to_string(),
                    (x + 4, y + cell / 2 - 7),
                    font.clone().color(color),
                ))
                .map_err(|e| err(&e))?;
            }
        }
        for (j, label) in confusion.labels.iter().enumerate() {
            let x = margin + j as i32 * cell;
            root.draw(&Text::new(short(label), (x + 2, margin - 22), font.clone()))
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn single_label_scores_match_a_hand_count() {
        // gold 0 0 1 1 2, predicted 0 1 1 1 0.
        let m = score(
            &labels(&["a", "b", "c"]),
            &[0, 0, 1, 1, 2],
            &[0, 1, 1, 1, 0],
        );
        assert!((m.accuracy - 0.6).abs() < 1e-12);
        let a = &m.per_class[0];
        assert_eq!((a.precision, a.recall, a.support), (0.5, 0.5, 2));
        let b = &m.per_class[1];
        assert!((b.precision - 2.0 / 3.0).abs() < 1e-12 && b.recall == 1.0);
        assert_eq!(m.per_class[2].f1, 0.0);
        let want = (0.5 + 0.8 + 0.0) / 3.0;
        assert!((m.macro_f1 - want).abs() < 1e-12, "{}", m.macro_f1);
        assert_eq!(
            m.confusion.unwrap().matrix,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]
        );
    }

    #[test]
    fn multi_label_counts_exact_matches_and_each_decision() {
        let m = score_multi(
            &labels(&["x", "y"]),
            &[vec![0, 1], vec![1], vec![]],
            &[vec![1, 0], vec![0], vec![]],
        );
        assert!((m.accuracy - 2.0 / 3.0).abs() < 1e-12);
        // x: tp 1, predicted 2, gold 1; y: tp 1, predicted 1, gold 2.
        assert!((m.per_class[0].precision - 0.5).abs() < 1e-12);
        assert!((m.per_class[1].recall - 0.5).abs() < 1e-12);
        assert!((m.micro_f1.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!(m.confusion.is_none());
    }

    #[test]
    fn the_confusion_picture_names_labels_and_counts() {
        let m = score(&labels(&["正面", "负面"]), &[0, 1, 1], &[0, 0, 1]);
        let svg = confusion_svg(m.confusion.as_ref().unwrap(), "dev").unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("正面") && svg.contains("\n1\n"),
            "{svg}"
        );
    }
}
