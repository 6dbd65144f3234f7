//! A short TransE training on UMLS (135 entities, 46 relations) must rank test triples far
//! better than the same model at its random initialisation.
use zhishi::kg::dataset::{Dataset, Format};
use zhishi::kg::eval::{self, Filter};
use zhishi::kg::transe::{Corruption, EntityNorm, Loss, Optimizer, TrainConfig, Trainer};

use crate::support::shared_data;
use shared_data::shared_data;

/// UMLS from the shared data, or `None` (skip) without it: the MRR bars are about this data.
fn umls() -> Option<Dataset> {
    let dir = shared_data("kg/small/umls")?;
    Some(Dataset::load(&dir, Format::Tsv).unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
}

/// Filtered test MRR before and after training with `config`.
fn mrr_before_and_after(data: &Dataset, config: TrainConfig) -> (f64, f64) {
    let filter = Filter::new(&data.all_triples());
    let mut trainer = Trainer::new(
        config,
        data.entities.len(),
        data.relations.len(),
        data.train.triples.clone(),
    )
    .unwrap();
    let before = eval::evaluate(trainer.model(), &data.test.triples, &filter)
        .unwrap()
        .filtered
        .mrr;
    while !trainer.finished() {
        trainer.train_epoch(&mut |_, _| {});
    }
    let after = eval::evaluate(trainer.model(), &data.test.triples, &filter)
        .unwrap()
        .filtered
        .mrr;
    (before, after)
}

#[test]
fn self_adversarial_training_beats_random_vectors_by_far() {
    let Some(data) = umls() else {
        return;
    };
    let config = TrainConfig {
        dim: 32,
        epochs: 15,
        negatives: 32,
        batch_size: 256,
        ..TrainConfig::default()
    };
    let (random, trained) = mrr_before_and_after(&data, config);
    assert!(
        trained > random + 0.3,
        "random MRR {random:.3}, trained {trained:.3}"
    );
}

#[test]
fn margin_loss_with_sgd_beats_random_vectors_by_far() {
    let Some(data) = umls() else {
        return;
    };
    let config = TrainConfig {
        dim: 32,
        epochs: 15,
        negatives: 8,
        batch_size: 128,
        loss: Loss::Margin,
        margin: 1.0,
        lr: 1.0,
        optimizer: Optimizer::Sgd,
        corruption: Corruption::Uniform,
        entity_norm: EntityNorm::Unit,
        ..TrainConfig::default()
    };
    let (random, trained) = mrr_before_and_after(&data, config);
    assert!(
        trained > random + 0.3,
        "random MRR {random:.3}, trained {trained:.3}"
    );
}

#[test]
fn softmax_loss_with_reciprocal_relations_beats_random_vectors_by_far() {
    let Some(data) = umls() else {
        return;
    };
    let config = TrainConfig {
        dim: 32,
        epochs: 15,
        negatives: 32,
        batch_size: 256,
        loss: Loss::Softmax,
        lr: 0.1,
        norm: zhishi::kg::transe::Norm::L2,
        entity_norm: EntityNorm::Free,
        reciprocal: true,
        ..TrainConfig::default()
    };
    let (random, trained) = mrr_before_and_after(&data, config);
    assert!(
        trained > random + 0.3,
        "random MRR {random:.3}, trained {trained:.3}"
    );
}
