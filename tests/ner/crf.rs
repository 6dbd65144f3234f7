//! The CRF never decodes a tag sequence its scheme forbids, whatever the scores, and its
//! Viterbi path and likelihood equal brute force over every sequence.
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use proptest::prelude::*;
use zhishi::stages::ner::crf::{Crf, CrfScores};
use zhishi::stages::ner::{LabelMap, TagScheme};

fn scheme(i: u8) -> TagScheme {
    [TagScheme::Bio, TagScheme::Bioes, TagScheme::Bmes][i as usize % 3]
}

fn labels(s: TagScheme, types: usize) -> LabelMap {
    LabelMap::new(s, (0..types).map(|t| format!("T{t}")))
}

fn crf(map: &LabelMap) -> Crf {
    let varmap = VarMap::new();
    Crf::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        map,
    )
    .unwrap()
}

fn valid(map: &LabelMap, path: &[u32]) -> bool {
    let p: Vec<usize> = path.iter().map(|&x| x as usize).collect();
    p.is_empty()
        || (map.allowed_start(p[0])
            && map.allowed_end(p[p.len() - 1])
            && p.windows(2).all(|w| map.allowed(w[0], w[1])))
}

/// Path score with the CRF's scores (no constraint).
fn path_score(s: &CrfScores, e: &[f32], k: usize, p: &[u32]) -> f32 {
    let mut total = s.start[p[0] as usize] + s.end[p[p.len() - 1] as usize];
    for (t, &y) in p.iter().enumerate() {
        total += e[t * k + y as usize];
        if t > 0 {
            total += s.transitions[p[t - 1] as usize * k + y as usize];
        }
    }
    total
}

fn all_paths(k: usize, len: usize) -> Vec<Vec<u32>> {
    (0..k.pow(len as u32))
        .map(|mut code| {
            (0..len)
                .map(|_| {
                    let y = (code % k) as u32;
                    code /= k;
                    y
                })
                .collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn viterbi_never_emits_an_invalid_sequence(
        s in 0u8..3,
        types in 1usize..4,
        len in 1usize..12,
        seed in proptest::collection::vec(-20.0f32..20.0, 12 * 13 + 13 * 13 + 26),
    ) {
        let map = labels(scheme(s), types);
        let k = map.len();
        let emissions: Vec<f32> = seed.iter().cycle().take(len * k).copied().collect();
        let t: Vec<f32> = seed.iter().rev().cycle().take(k * k).copied().collect();
        let scores = CrfScores { transitions: t, start: seed[..k].to_vec(), end: seed[k..2 * k].to_vec() };
        let path = crf(&map).viterbi(&emissions, len, &scores);
        prop_assert_eq!(path.len(), len);
        prop_assert!(valid(&map, &path), "{:?} decodes to {:?}", map.labels, path);
    }

    #[test]
    fn viterbi_is_the_best_valid_path(
        s in 0u8..3,
        len in 1usize..5,
        seed in proptest::collection::vec(-5.0f32..5.0, 5 * 5 + 25 + 10),
    ) {
        let map = labels(scheme(s), 1);
        let k = map.len();
        let emissions = seed[..len * k].to_vec();
        let scores = CrfScores {
            transitions: seed[25..25 + k * k].to_vec(),
            start: seed[50..50 + k].to_vec(),
            end: seed[..k].to_vec(),
        };
        let path = crf(&map).viterbi(&emissions, len, &scores);
        let best = all_paths(k, len)
            .into_iter()
            .filter(|p| valid(&map, p))
            .map(|p| path_score(&scores, &emissions, k, &p))
            .fold(f32::NEG_INFINITY, f32::max);
        prop_assert!((path_score(&scores, &emissions, k, &path) - best).abs() < 1e-4);
    }
}

#[test]
fn likelihood_equals_brute_force_over_valid_sequences() {
    // BIO with one type: O, B-T0, I-T0. Two sentences of lengths 3 and 2.
    let map = labels(TagScheme::Bio, 1);
    let k = map.len();
    let crf = crf(&map);
    let emissions: Vec<f32> = (0..2 * 3 * k)
        .map(|i| ((i * 7) % 5) as f32 * 0.3 - 0.6)
        .collect();
    let tags = vec![vec![1u32, 2, 0], vec![0u32, 1]];
    let e = Tensor::from_vec(emissions.clone(), (2, 3, k), &Device::Cpu).unwrap();
    let nll = crf.nll(&e, &tags).unwrap().to_scalar::<f32>().unwrap();
    // Zero transitions: a path scores its emissions; forbidden paths (O -> I, start on I)
    // carry -10000 and vanish from the sum.
    let zero = CrfScores {
        transitions: vec![0.0; k * k],
        start: vec![0.0; k],
        end: vec![0.0; k],
    };
    let mut expected = 0.0f64;
    for (b, gold) in tags.iter().enumerate() {
        let len = gold.len();
        let e = &emissions[b * 3 * k..b * 3 * k + len * k];
        let log_z = all_paths(k, len)
            .iter()
            .filter(|p| valid(&map, p))
            .map(|p| f64::from(path_score(&zero, e, k, p)).exp())
            .sum::<f64>()
            .ln();
        expected += log_z - f64::from(path_score(&zero, e, k, gold));
    }
    expected /= 2.0;
    assert!(
        (f64::from(nll) - expected).abs() < 1e-4,
        "{nll} vs {expected}"
    );
}
