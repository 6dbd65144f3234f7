//! Filtered vs raw link-prediction ranks on a hand-built graph whose ranks are known exactly.
use zhishi::kg::eval::{self, Filter, Metrics, Rank};
use zhishi::kg::transe::{Norm, TransE};

/// Entities on a line at 0, 1, 2, 3 and 1 again (entity 4 ties with entity 1); one relation
/// "+1". Every coordinate of the `dim`-dimensional vectors holds the same integer, so all
/// distances are exact and the 1-D picture holds in any dimension.
fn line_model(dim: usize, norm: Norm) -> TransE {
    let positions = [0.0f32, 1.0, 2.0, 3.0, 1.0];
    TransE {
        dim,
        norm,
        entity: positions.iter().flat_map(|&p| vec![p; dim]).collect(),
        relation: vec![1.0; dim],
        reciprocal: false,
    }
}

#[test]
fn ranks_are_exact_filtered_and_raw_with_ties_counted_half() {
    let train = [[0, 0, 4], [2, 0, 3]];
    let test = [[0, 0, 1], [0, 0, 3]];
    let known: Vec<[u32; 3]> = train.iter().chain(&test).copied().collect();
    for dim in [1, 17, 100] {
        for norm in [Norm::L1, Norm::L2] {
            let ranks = eval::rank_triples(&line_model(dim, norm), &test, &Filter::new(&known));
            // (0, +1, ?) answer 1: anchor 1; entity 4 ties with it -> raw 1.5; 4 is a known
            // tail of (0, +1) -> filtered 1.
            assert_eq!(
                ranks[0].tail,
                Rank {
                    raw: 1.5,
                    filtered: 1.0
                },
                "dim {dim} {norm:?}"
            );
            // (?, +1, 1) answer 0: anchor 0; nothing else sits at 0 -> 1 either way.
            assert_eq!(
                ranks[0].head,
                Rank {
                    raw: 1.0,
                    filtered: 1.0
                }
            );
            // (0, +1, ?) answer 3: anchor 1; entities 0, 1, 2, 4 are closer -> raw 5; 1 and 4
            // are known tails of (0, +1) -> filtered 3.
            assert_eq!(
                ranks[1].tail,
                Rank {
                    raw: 5.0,
                    filtered: 3.0
                }
            );
            // (?, +1, 3) answer 0: anchor 2; entities 1, 2, 3, 4 are closer -> raw 5; 2 is a
            // known head of (+1, 3) -> filtered 4.
            assert_eq!(
                ranks[1].head,
                Rank {
                    raw: 5.0,
                    filtered: 4.0
                }
            );
        }
    }
}

#[test]
fn report_summarises_both_sides() {
    let test = [[0, 0, 1], [0, 0, 3]];
    let known = [[0, 0, 4], [2, 0, 3], [0, 0, 1], [0, 0, 3]];
    let report = eval::evaluate(&line_model(4, Norm::L1), &test, &Filter::new(&known)).unwrap();
    assert_eq!(report.filtered, Metrics::from_ranks([1.0, 1.0, 3.0, 4.0]));
    assert_eq!(report.raw, Metrics::from_ranks([1.5, 1.0, 5.0, 5.0]));
    assert_eq!(report.filtered.hits_at_1, 0.5);
    assert_eq!(report.filtered.hits_at_3, 0.75);
}

#[test]
fn diverged_vectors_rank_last() {
    let mut model = line_model(2, Norm::L1);
    model.relation = vec![f32::NAN; 2];
    let ranks = eval::rank_triples(&model, &[[0, 0, 1]], &Filter::new(&[[0, 0, 1]]));
    assert_eq!(ranks[0].tail.filtered, 5.0);
}

#[test]
fn reciprocal_models_answer_head_questions_with_the_inverse_vector() {
    // Same line, but the inverse of "+1" is learned as "-2" instead of being "-1": a head
    // question (?, +1, t) now looks at t - 2.
    let model = TransE {
        relation: [vec![1.0; 4], vec![-2.0; 4]].concat(),
        reciprocal: true,
        ..line_model(4, Norm::L1)
    };
    assert_eq!(model.num_relations(), 1);
    let test = [[0, 0, 2]];
    let ranks = eval::rank_triples(&model, &test, &Filter::new(&test));
    // Tail question (0, +1, ?) answer 2: anchor 1; 1 and 4 sit there, 0 and 2 are 1 away
    // (tie with the answer) -> raw 1 + 2 + 1/2.
    assert_eq!(ranks[0].tail.raw, 3.5);
    // Head question (?, +1, 2) answer 0: anchor 2 - 2 = 0, exactly the answer -> rank 1.
    // (Without the reciprocal vector the anchor would be 1 and the rank 3.5.)
    assert_eq!(
        ranks[0].head,
        Rank {
            raw: 1.0,
            filtered: 1.0
        }
    );
}
