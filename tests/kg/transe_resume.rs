//! A run interrupted after a checkpoint and resumed ends with exactly the vectors of the same
//! run done in one go.
use zhishi::kg::dataset::{Dataset, Format};
use zhishi::kg::transe::{Optimizer, TrainConfig, Trainer};

use crate::support::shared_data;

/// Nations from the shared data; without it the hand-made months KG of
/// `tests/fixtures/kg/months` (resuming is exact on any data).
fn nations() -> Dataset {
    let dir = shared_data::shared_data_or_fixture("kg/small/nations", "tests/fixtures/kg/months");
    Dataset::load(&dir, Format::Tsv).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn resume_matches_uninterrupted(optimizer: Optimizer) {
    let data = nations();
    let (e, r) = (data.entities.len(), data.relations.len());
    let config = TrainConfig {
        dim: 16,
        epochs: 4,
        negatives: 8,
        batch_size: 100,
        optimizer,
        ..TrainConfig::default()
    };

    let mut straight = Trainer::new(config.clone(), e, r, data.train.triples.clone()).unwrap();
    while !straight.finished() {
        straight.train_epoch(&mut |_, _| {});
    }

    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("run.ckpt");
    {
        let mut first = Trainer::new(config, e, r, data.train.triples.clone()).unwrap();
        first.train_epoch(&mut |_, _| {});
        first.train_epoch(&mut |_, _| {});
        first.save_checkpoint(&checkpoint).unwrap();
        // Dropped here: the process "dies" after epoch 2.
    }
    let mut resumed = Trainer::resume(&checkpoint, e, r, data.train.triples.clone()).unwrap();
    assert_eq!(resumed.epochs_done(), 2);
    while !resumed.finished() {
        resumed.train_epoch(&mut |_, _| {});
    }
    assert_eq!(resumed.epochs_done(), 4);
    assert_eq!(resumed.model(), straight.model());
}

#[test]
fn resumed_adagrad_run_equals_uninterrupted_run() {
    resume_matches_uninterrupted(Optimizer::Adagrad);
}

#[test]
fn resumed_sgd_run_equals_uninterrupted_run() {
    resume_matches_uninterrupted(Optimizer::Sgd);
}

#[test]
fn resume_refuses_other_triples() {
    let data = nations();
    let (e, r) = (data.entities.len(), data.relations.len());
    let config = TrainConfig {
        dim: 8,
        epochs: 1,
        negatives: 2,
        ..TrainConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("run.ckpt");
    Trainer::new(config, e, r, data.train.triples.clone())
        .unwrap()
        .save_checkpoint(&checkpoint)
        .unwrap();
    let err = Trainer::resume(&checkpoint, e, r, data.valid.triples.clone()).unwrap_err();
    assert!(err.to_string().contains("different triples"), "{err}");
}
