//! The probability of each predicted entity (its `score`).
//!
//! - With a CRF: the marginal probability, under the CRF's distribution over the tag
//!   sequences the scheme allows, that the span carries exactly its decoded tags and ends
//!   where it ends: `P(y[s..=e] = tags, y[e+1] does not continue the span)`. Under BIOES/BMES
//!   the end is implied by the last tag (`E-X`/`S-X`, which nothing of the span may follow);
//!   under BIO the next tag must not be `I-X` of the span's type. The start needs no extra
//!   condition: the scheme's constraints allow no stray `I-X`, so `B-X` always opens a span.
//!   Computed by forward-backward in log space (`f64`), with the same start, end and
//!   transition scores as Viterbi and the scheme's forbidden transitions impossible, so the
//!   decoded path is one of the paths summed over.
//! - Without a CRF (each character's arg-max): the product of the span's tag probabilities,
//!   each the softmax of its character's scores.
//!
//! Both read the scores of the whole sentence that decoding read: a character of a long
//! sentence takes its scores from the window where it is most central
//! ([`super::predict::predict_labels`]), and the sentence is decoded, and scored, as one
//! sequence; a character without a token scores `O` with certainty.
use super::crf::CrfScores;
use super::tags::{LabelMap, TagScheme};

/// `log Σ exp(x)` of the finite values (`-∞` when there are none).
fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Which tags the scheme lets start and end a sequence and follow each other.
#[derive(Debug, Clone, Copy)]
pub struct Constraints<'a> {
    /// `allowed[from * K + to]`.
    pub allowed: &'a [bool],
    /// Tags a sequence may start with.
    pub start: &'a [bool],
    /// Tags a sequence may end with.
    pub end: &'a [bool],
}

/// Forward and backward log scores of one sentence under a CRF.
#[derive(Debug, Clone)]
pub struct Lattice {
    k: usize,
    len: usize,
    /// `len × K`: log score of every allowed prefix ending in tag `j` at `t`, emission
    /// included.
    alpha: Vec<f64>,
    /// `len × K`: log score of every allowed continuation after tag `j` at `t`, end score
    /// included.
    beta: Vec<f64>,
    /// `K × K` transition scores, `-∞` where forbidden.
    trans: Vec<f64>,
    emissions: Vec<f64>,
    log_z: f64,
}

impl Lattice {
    /// The lattice of `emissions` (`len × K`, row-major) under `scores` and `constraints`.
    pub fn new(
        emissions: &[f32],
        len: usize,
        k: usize,
        scores: &CrfScores,
        constraints: Constraints<'_>,
    ) -> Self {
        let neg = f64::NEG_INFINITY;
        let emissions: Vec<f64> = emissions[..len * k].iter().map(|&x| f64::from(x)).collect();
        let trans: Vec<f64> = (0..k * k)
            .map(|i| {
                if constraints.allowed[i] {
                    f64::from(scores.transitions[i])
                } else {
                    neg
                }
            })
            .collect();
        let mut alpha = vec![neg; len * k];
        let mut beta = vec![neg; len * k];
        if len == 0 {
            return Self {
                k,
                len,
                alpha,
                beta,
                trans,
                emissions,
                log_z: neg,
            };
        }
        for j in 0..k {
            if constraints.start[j] {
                alpha[j] = f64::from(scores.start[j]) + emissions[j];
            }
        }
        for t in 1..len {
            for to in 0..k {
                let prev = &alpha[(t - 1) * k..t * k];
                let s = log_sum_exp((0..k).map(|from| prev[from] + trans[from * k + to]));
                alpha[t * k + to] = s + emissions[t * k + to];
            }
        }
        let last = (len - 1) * k;
        for j in 0..k {
            if constraints.end[j] {
                beta[last + j] = f64::from(scores.end[j]);
            }
        }
        for t in (0..len - 1).rev() {
            for from in 0..k {
                let next = (t + 1) * k;
                beta[t * k + from] = log_sum_exp(
                    (0..k).map(|to| trans[from * k + to] + emissions[next + to] + beta[next + to]),
                );
            }
        }
        let log_z = log_sum_exp((0..k).map(|j| alpha[last + j] + beta[last + j]));
        Self {
            k,
            len,
            alpha,
            beta,
            trans,
            emissions,
            log_z,
        }
    }

    /// `log P(y[start + i] = tags[i] for every i, and y[start + tags.len()] is not one of
    /// those `continues` accepts)` (the second condition vanishes at the end of the
    /// sentence). `-∞` for an impossible or empty span.
    pub fn span_log_probability(
        &self,
        start: usize,
        tags: &[u32],
        continues: impl Fn(usize) -> bool,
    ) -> f64 {
        let k = self.k;
        let end = start + tags.len();
        if tags.is_empty() || end > self.len || !self.log_z.is_finite() {
            return f64::NEG_INFINITY;
        }
        let mut score = self.alpha[start * k + tags[0] as usize];
        for (i, pair) in tags.windows(2).enumerate() {
            let t = start + i + 1;
            let (from, to) = (pair[0] as usize, pair[1] as usize);
            score += self.trans[from * k + to] + self.emissions[t * k + to];
        }
        let last = tags[tags.len() - 1] as usize;
        let rest = if end == self.len {
            self.beta[(end - 1) * k + last]
        } else {
            log_sum_exp((0..k).filter(|&j| !continues(j)).map(|j| {
                self.trans[last * k + j] + self.emissions[end * k + j] + self.beta[end * k + j]
            }))
        };
        score + rest - self.log_z
    }

    /// [`Lattice::span_log_probability`] as a probability in `[0, 1]`.
    pub fn span_probability(
        &self,
        start: usize,
        tags: &[u32],
        continues: impl Fn(usize) -> bool,
    ) -> f32 {
        let p = self.span_log_probability(start, tags, continues).exp();
        if p.is_nan() {
            0.0
        } else {
            p.clamp(0.0, 1.0) as f32
        }
    }
}

/// Whether tag `next` continues an entity of type `kind` that the tag before it left open:
/// under BIO, `I-kind`; never under BIOES/BMES, where an entity's last tag closes it.
pub fn continues(labels: &LabelMap, kind: &str, next: usize) -> bool {
    let t = labels.tag(next);
    labels.scheme == TagScheme::Bio && t.prefix == 'I' && t.kind == kind
}

/// The CRF probability of every span `(start, end_exclusive, type)` of the decoded label
/// ids `ids` of a sentence with `emissions` (`ids.len() × K`).
pub fn crf_span_probabilities(
    labels: &LabelMap,
    emissions: &[f32],
    ids: &[u32],
    scores: &CrfScores,
    constraints: Constraints<'_>,
    spans: &[(usize, usize, String)],
) -> Vec<f32> {
    if spans.is_empty() {
        return Vec::new();
    }
    let lattice = Lattice::new(emissions, ids.len(), labels.len(), scores, constraints);
    spans
        .iter()
        .map(|(s, e, kind)| {
            lattice.span_probability(*s, &ids[*s..*e], |j| continues(labels, kind, j))
        })
        .collect()
}

/// The probability of each span of the arg-max label ids `ids`: the product over its
/// characters of the softmax probability of the character's tag (`emissions` is
/// `ids.len() × K`).
pub fn linear_span_probabilities(
    emissions: &[f32],
    ids: &[u32],
    k: usize,
    spans: &[(usize, usize, String)],
) -> Vec<f32> {
    spans
        .iter()
        .map(|(s, e, _)| {
            let log_p: f64 = (*s..*e)
                .map(|t| {
                    let row = &emissions[t * k..(t + 1) * k];
                    let log_z = log_sum_exp(row.iter().map(|&x| f64::from(x)));
                    f64::from(row[ids[t] as usize]) - log_z
                })
                .sum();
            log_p.exp().clamp(0.0, 1.0) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Fixed, varied scores: `n` values in about `[-2, 2]`.
    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n)
            .map(|i| 2.0 * ((i as f32 + 1.0) * 1.7 + seed).sin())
            .collect()
    }

    struct Masks {
        allowed: Vec<bool>,
        start: Vec<bool>,
        end: Vec<bool>,
    }

    impl Masks {
        fn new(labels: &LabelMap) -> Self {
            let k = labels.len();
            Self {
                allowed: (0..k * k).map(|i| labels.allowed(i / k, i % k)).collect(),
                start: (0..k).map(|i| labels.allowed_start(i)).collect(),
                end: (0..k).map(|i| labels.allowed_end(i)).collect(),
            }
        }

        fn constraints(&self) -> Constraints<'_> {
            Constraints {
                allowed: &self.allowed,
                start: &self.start,
                end: &self.end,
            }
        }
    }

    /// Every span's probability by enumerating every allowed tag path: the summed weight of
    /// the paths whose spans include it, over the summed weight of all paths; with the tags
    /// the span has in those paths.
    fn brute_force(
        labels: &LabelMap,
        masks: &Masks,
        emissions: &[f32],
        scores: &CrfScores,
        len: usize,
    ) -> HashMap<(usize, usize, String), (f64, Vec<u32>)> {
        let k = labels.len();
        let mut z = 0.0f64;
        let mut found: HashMap<(usize, usize, String), (f64, Vec<u32>)> = HashMap::new();
        for code in 0..k.pow(len as u32) {
            let path: Vec<u32> = (0..len)
                .map(|t| ((code / k.pow(t as u32)) % k) as u32)
                .collect();
            let ok = masks.start[path[0] as usize]
                && masks.end[path[len - 1] as usize]
                && path
                    .windows(2)
                    .all(|w| masks.allowed[w[0] as usize * k + w[1] as usize]);
            if !ok {
                continue;
            }
            let mut score = f64::from(scores.start[path[0] as usize])
                + f64::from(scores.end[path[len - 1] as usize]);
            for (t, &tag) in path.iter().enumerate() {
                score += f64::from(emissions[t * k + tag as usize]);
                if t > 0 {
                    score += f64::from(scores.transitions[path[t - 1] as usize * k + tag as usize]);
                }
            }
            let w = score.exp();
            z += w;
            for span in labels.spans(&path) {
                let tags = path[span.0..span.1].to_vec();
                let entry = found.entry(span).or_insert((0.0, tags.clone()));
                assert_eq!(entry.1, tags, "one span, one tag sequence");
                entry.0 += w;
            }
        }
        for v in found.values_mut() {
            v.0 /= z;
        }
        found
    }

    fn check_against_brute_force(labels: &LabelMap, len: usize) {
        let k = labels.len();
        let masks = Masks::new(labels);
        let scores = CrfScores {
            transitions: values(k * k, 0.3),
            start: values(k, 1.1),
            end: values(k, 2.9),
        };
        let emissions = values(len * k, 0.7);
        let lattice = Lattice::new(&emissions, len, k, &scores, masks.constraints());
        let want = brute_force(labels, &masks, &emissions, &scores, len);
        assert!(want.len() > 5, "{want:?}");
        for ((s, e, kind), (p, tags)) in &want {
            let got = lattice.span_log_probability(*s, tags, |j| continues(labels, kind, j));
            assert!(
                (got.exp() - p).abs() < 1e-9,
                "{:?} span {s}..{e} {kind}: {} against {p}",
                labels.scheme,
                got.exp()
            );
            let f = lattice.span_probability(*s, tags, |j| continues(labels, kind, j));
            assert!((0.0..=1.0).contains(&f));
        }
    }

    #[test]
    fn the_bio_span_marginal_is_the_sum_over_every_path() {
        // O, B-X, I-X; 5 characters: 243 paths.
        check_against_brute_force(&LabelMap::new(TagScheme::Bio, ["X".to_string()]), 5);
        // Two types (I-Y may not follow B-X): 5 tags, 4 characters.
        let two = LabelMap::new(TagScheme::Bio, ["X".to_string(), "Y".to_string()]);
        check_against_brute_force(&two, 4);
    }

    #[test]
    fn the_bioes_and_bmes_span_marginals_are_the_sums_over_every_path() {
        // O, B-X, I-X, E-X, S-X; 4 characters: 625 paths.
        check_against_brute_force(&LabelMap::new(TagScheme::Bioes, ["X".to_string()]), 4);
        check_against_brute_force(&LabelMap::new(TagScheme::Bmes, ["X".to_string()]), 4);
    }

    #[test]
    fn crf_span_probabilities_lie_in_the_unit_interval_even_for_extreme_scores() {
        let labels = LabelMap::new(TagScheme::Bio, ["X".to_string()]);
        let masks = Masks::new(&labels);
        let scores = CrfScores {
            transitions: values(9, 0.5),
            start: values(3, 0.2),
            end: values(3, 0.9),
        };
        // A character without a token scores O at 1e4 (and -1e4 elsewhere); others large.
        let emissions = [
            -1e4, 30.0, -1e4, 1e4, -1e4, -1e4, -5.0, 40.0, 1.0, 0.0, 2.0, 39.0,
        ];
        let ids = [1, 0, 1, 2];
        let spans = labels.spans(&ids);
        assert_eq!(spans, [(0, 1, "X".to_string()), (2, 4, "X".to_string())]);
        let p = crf_span_probabilities(
            &labels,
            &emissions,
            &ids,
            &scores,
            masks.constraints(),
            &spans,
        );
        assert_eq!(p.len(), 2);
        for x in p {
            assert!(x > 0.0 && x <= 1.0, "{x}");
        }
    }

    #[test]
    fn the_linear_head_multiplies_the_tags_softmax_probabilities() {
        // Three labels (O, B-X, I-X), three characters tagged B-X I-X O.
        let emissions = [0.0, 2.0, 1.0, 0.5, -1.0, 1.5, 3.0, 0.0, 0.0];
        let ids = [1, 2, 0];
        let softmax = |row: &[f32], i: usize| {
            let total: f64 = row.iter().map(|&x| f64::from(x).exp()).sum();
            f64::from(row[i]).exp() / total
        };
        let want = softmax(&emissions[0..3], 1) * softmax(&emissions[3..6], 2);
        let got = linear_span_probabilities(&emissions, &ids, 3, &[(0, 2, "X".to_string())]);
        assert!((f64::from(got[0]) - want).abs() < 1e-6, "{got:?} {want}");
        // By hand: e^2/(1+e^2+e) · e^1.5/(e^0.5+e^-1+e^1.5).
        let e = std::f64::consts::E;
        let hand = e.powi(2) / (1.0 + e.powi(2) + e) * e.powf(1.5)
            / (e.powf(0.5) + e.powi(-1) + e.powf(1.5));
        assert!((want - hand).abs() < 1e-12);
    }
}
