//! Entity scores: every predicted entity carries the probability of its span (the CRF's
//! marginal, or the product of the linear head's tag probabilities); `[ner] min_score` drops
//! the less likely; `zhishi eval` reports their calibration, the scores at two thresholds, and
//! draws the reliability diagram.
use zhishi::doc::Entity;
use zhishi::pipeline::Pipeline;
use zhishi::stages::ner::{self, NerModel};
use zhishi::stages::task::Split;

use crate::support::ner_workspace::Workspace;

const TEXTS: [&str; 4] = [
    "李四住在杭州",
    "王五去了北京和上海工作。",
    "张三在上海",
    "上海和北京",
];

/// A model trained briefly on the toy corpus (far from certain of everything), with or
/// without a CRF (the linear head, without the CRF's large learning rate, needs longer).
fn trained(ws: &Workspace, crf: bool) -> std::path::PathBuf {
    let epochs = if crf { 10 } else { 40 };
    ner::train_config(
        &ws.config(),
        &[
            format!("head.crf={crf}"),
            format!("train.epochs={epochs}"),
            "train.eval_every=0".into(),
        ],
    )
    .unwrap()
    .model_dir
}

#[test]
fn every_entity_is_scored_with_a_probability_under_both_heads() {
    for crf in [true, false] {
        let ws = Workspace::new("");
        let model = NerModel::load(&trained(&ws, crf)).unwrap();
        let found = model.predict(&TEXTS).unwrap();
        let all: Vec<&Entity> = found.iter().flatten().collect();
        assert!(!all.is_empty(), "crf {crf}: no entity predicted");
        for e in all {
            let p = e
                .score
                .unwrap_or_else(|| panic!("crf {crf}: {e:?} has no score"));
            assert!(p > 0.0 && p <= 1.0, "crf {crf}: {e:?}");
        }
    }
}

#[test]
fn the_ner_stage_drops_entities_below_min_score() {
    let ws = Workspace::new("");
    let model_dir = trained(&ws, true);
    let pipeline = |min_score: f32| {
        let toml = ws.root.join(format!("run-{min_score}.toml"));
        std::fs::write(
            &toml,
            format!(
                "[pipeline]\nstages = [\"ner\"]\n\n[ner]\nmodel = \"{}\"\nmin_score = {min_score:?}\n",
                model_dir.display()
            ),
        )
        .unwrap();
        Pipeline::from_toml(&toml).unwrap()
    };
    let entities = |p: &Pipeline| -> Vec<Entity> {
        TEXTS
            .iter()
            .flat_map(|t| p.process(t).unwrap().entities)
            .collect()
    };
    let all = entities(&pipeline(0.0));
    let mut scores: Vec<f32> = all.iter().map(|e| e.score.unwrap()).collect();
    scores.sort_by(f32::total_cmp);
    assert!(scores.len() >= 2, "{all:?}");
    // The median score as the threshold: entities below it go, the others stay.
    let threshold = scores[scores.len() / 2];
    let kept = entities(&pipeline(threshold));
    let want: Vec<Entity> = all
        .iter()
        .filter(|e| e.score.unwrap() >= threshold)
        .cloned()
        .collect();
    assert_eq!(kept, want);
    assert!(
        kept.len() < all.len() || scores[0] == threshold,
        "{scores:?}"
    );
}

#[test]
fn evaluation_reports_the_calibration_of_entity_scores_and_draws_it() {
    let ws = Workspace::new("");
    trained(&ws, true);
    let m = ner::evaluate_config(&ws.config(), &[], Split::Test).unwrap();
    let c = m.calibration.as_ref().expect("calibration");
    assert_eq!(c.bins.len(), 10);
    let counted: usize = c.bins.iter().map(|b| b.count).sum();
    assert_eq!(counted, m.micro.predicted);
    assert!((0.0..=1.0).contains(&c.ece), "{}", c.ece);
    // The ECE is the bins' count-weighted gap between precision and mean score.
    let gap: f64 = c
        .bins
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| b.count as f64 * (b.precision.unwrap() - b.mean_score.unwrap()).abs())
        .sum::<f64>()
        / counted.max(1) as f64;
    assert!((gap - c.ece).abs() < 1e-9);
    let thresholds: Vec<f64> = m.at_min_score.iter().map(|a| a.min_score).collect();
    assert_eq!(thresholds, [0.5, 0.9]);
    let (half, most) = (&m.at_min_score[0].scores, &m.at_min_score[1].scores);
    assert!(most.predicted <= half.predicted && half.predicted <= m.micro.predicted);
    assert_eq!(half.gold, m.micro.gold);

    let json = serde_json::to_value(&m).unwrap();
    assert!(
        json["calibration"]["bins"][0].get("mean_score").is_some(),
        "{json}"
    );
    assert!(json["at_min_score"][1]["f1"].is_number(), "{json}");
    assert_eq!(json["at_min_score"][1]["min_score"], 0.9);

    let svg =
        std::fs::read_to_string(ws.root.join("out").join(ner::train::RELIABILITY_FILE)).unwrap();
    assert!(svg.contains("<svg") && svg.contains("ECE"), "{svg}");
}
