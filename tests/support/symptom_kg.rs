//! A two-fact medical KG (头痛 and 发热 are symptoms) for knowledge-input tests: its linker
//! (every name linked, no NIL threshold) and TransE vectors trained on it for two epochs.
use zhishi::kg::store::NamedTriple;
use zhishi::kg::transe::TrainConfig;
use zhishi::knowledge::EntityVectors;
use zhishi::text::{LinkOptions, Linker, MemoryKg};

/// The facts.
pub const SPO: [(&str, &str, &str); 2] = [("头痛", "类别", "症状"), ("发热", "类别", "症状")];

/// A linker over [`SPO`] that links every mention it finds.
pub fn linker() -> Linker<MemoryKg> {
    let options = LinkOptions {
        nil_threshold: 0.0,
        ..LinkOptions::default()
    };
    Linker::build(MemoryKg::from_triples(SPO), options).unwrap()
}

/// TransE vectors of [`SPO`]'s entities (2 epochs, 2 negatives).
pub fn vectors() -> EntityVectors {
    let triples: Vec<NamedTriple> = SPO
        .iter()
        .map(|(s, p, o)| NamedTriple::literal(s, p, o))
        .collect();
    let config = TrainConfig {
        epochs: 2,
        negatives: 2,
        batch_size: 2,
        ..TrainConfig::default()
    };
    EntityVectors::train(&triples, config).unwrap()
}
