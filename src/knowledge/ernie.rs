//! ERNIE-THU inputs ([Zhang et al., 2019](https://arxiv.org/abs/1905.07129)): which token
//! carries which knowledge-graph entity, and the entity vectors themselves.
//!
//! * [`EntityVectors`]: TransE vectors of a KG's entities with their names, trained in-process
//!   ([`EntityVectors::train`]) or read from `zhishi transe train --export DIR`
//!   ([`EntityVectors::load`]); a trained model directory keeps its own copy in the same
//!   layout (`transe.safetensors` + `entity2id.txt`). ERNIE-THU keeps them fixed while
//!   fine-tuning, and its fusion layers take exactly [`ENTITY_DIM`] = 100 wide vectors.
//! * The alignment ([`crate::knowledge::DocumentKnowledge::entity_rows`]) puts each linked
//!   mention's entity row on the FIRST token of its mention (ERNIE-THU's convention), `-1` on
//!   every other token. With K-BERT injection as well (mode `both`), injected knowledge tokens carry
//!   no entity: the entity already sits on the mention they hang from, and the injected
//!   strings are mostly literals (types, values) without a vector of their own.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::kg::store::NamedTriple;
use crate::kg::transe::{TrainConfig, Trainer, TransE, TransEError};
use crate::model::ernie::ENTITY_DIM;

/// The vectors file of an entity-vector directory (as `zhishi transe train --export` writes it).
pub const VECTORS_FILE: &str = "transe.safetensors";
/// The OpenKE-style name map of an entity-vector directory (`count`, then `name<TAB>row`).
pub const NAMES_FILE: &str = "entity2id.txt";

/// What can go wrong training, reading or writing entity vectors.
#[derive(Debug, thiserror::Error)]
pub enum ErnieError {
    /// A file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not UTF-8 (names the line).
    #[error(transparent)]
    Text(#[from] crate::textfile::TextFileError),
    /// A line of a file has the wrong content.
    #[error("{}:{line}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// A file as a whole does not fit (width, counts).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// TransE training or its vectors file failed.
    #[error(transparent)]
    TransE(#[from] TransEError),
}

/// TransE vectors of named entities: row `i` belongs to `names[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityVectors {
    /// Entity names in row order (whitespace written as `_`, as in OpenKE id files).
    pub names: Vec<String>,
    /// The vectors (relations included, so the directory is a complete TransE export).
    pub transe: TransE,
    rows: HashMap<String, u32>,
}

/// A name as OpenKE id files hold it: whitespace becomes `_`.
fn id_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

impl EntityVectors {
    /// Vectors for `names` (row order); `transe` must have one row per name and
    /// [`ENTITY_DIM`] columns.
    pub fn new(names: Vec<String>, transe: TransE, origin: &Path) -> Result<Self, ErnieError> {
        let bad = |message: String| ErnieError::Invalid {
            path: origin.to_path_buf(),
            message,
        };
        if transe.dim != ENTITY_DIM {
            return Err(bad(format!(
                "entity vectors are {} wide; ERNIE's fusion layers take {ENTITY_DIM}",
                transe.dim
            )));
        }
        if transe.num_entities() != names.len() {
            return Err(bad(format!(
                "{} entity vectors for {} names",
                transe.num_entities(),
                names.len()
            )));
        }
        let names: Vec<String> = names.iter().map(|n| id_name(n)).collect();
        let rows = names
            .iter()
            .enumerate()
            .rev() // the first row of a repeated name wins
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Ok(Self {
            names,
            transe,
            rows,
        })
    }

    /// Trains TransE on `triples` (subjects and objects are entities, predicates relations,
    /// names trimmed) with `config`, whose `dim` is forced to [`ENTITY_DIM`]. Runs on the
    /// current rayon pool; deterministic for a seed.
    pub fn train(triples: &[NamedTriple], config: TrainConfig) -> Result<Self, ErnieError> {
        let mut entities: HashMap<&str, u32> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        let mut relations: HashMap<&str, u32> = HashMap::new();
        let mut ids = Vec::with_capacity(triples.len());
        fn intern<'a>(
            map: &mut HashMap<&'a str, u32>,
            names: &mut Vec<String>,
            name: &'a str,
        ) -> u32 {
            let next = map.len() as u32;
            *map.entry(name).or_insert_with(|| {
                names.push(name.to_string());
                next
            })
        }
        for t in triples {
            let (s, p, o) = (t.subject.trim(), t.predicate.trim(), t.object.trim());
            if s.is_empty() || p.is_empty() || o.is_empty() {
                continue;
            }
            let h = intern(&mut entities, &mut names, s);
            let t = intern(&mut entities, &mut names, o);
            let next = relations.len() as u32;
            let r = *relations.entry(p).or_insert(next);
            ids.push([h, r, t]);
        }
        let config = TrainConfig {
            dim: ENTITY_DIM,
            ..config
        };
        let mut trainer = Trainer::new(config, names.len(), relations.len(), ids)?;
        while !trainer.finished() {
            trainer.train_epoch(&mut |_, _| {});
        }
        Self::new(names, trainer.into_model(), Path::new("<trained>"))
    }

    /// Reads `transe.safetensors` and `entity2id.txt` from `dir` (a `zhishi transe train
    /// --export` directory or a trained model directory).
    pub fn load(dir: &Path) -> Result<Self, ErnieError> {
        let transe = TransE::load(&dir.join(VECTORS_FILE))?;
        let path = dir.join(NAMES_FILE);
        let bytes = std::fs::read(&path).map_err(|source| ErnieError::Io {
            path: path.clone(),
            source,
        })?;
        let text = crate::textfile::decode(&path, bytes)?;
        let bad = |line: usize, message: String| ErnieError::Format {
            path: path.clone(),
            line,
            message,
        };
        let mut lines = text.lines();
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| bad(1, "expected the number of entities".into()))?;
        // Checked before allocating a slot per entity: one name per vector row.
        if count != transe.num_entities() {
            return Err(bad(
                1,
                format!(
                    "{} entity vectors for {count} names (in {VECTORS_FILE})",
                    transe.num_entities()
                ),
            ));
        }
        let mut names = vec![None; count];
        for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let mut fields = line.split(['\t', ' ']).filter(|f| !f.is_empty());
            let parsed = match (
                fields.next(),
                fields.next().map(str::parse::<usize>),
                fields.next(),
            ) {
                (Some(name), Some(Ok(id)), None) if id < count => Some((name, id)),
                _ => None,
            };
            let (name, id) = parsed.ok_or_else(|| {
                bad(
                    i + 2,
                    format!("expected `name<TAB>id` with id below {count}"),
                )
            })?;
            names[id] = Some(name.to_string());
        }
        let names = names
            .into_iter()
            .enumerate()
            .map(|(id, n)| {
                n.ok_or_else(|| ErnieError::Invalid {
                    path: path.clone(),
                    message: format!("no name for entity {id}"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(names, transe, &path)
    }

    /// Writes `transe.safetensors` and `entity2id.txt` into `dir` (created if missing).
    pub fn save(&self, dir: &Path) -> Result<(), ErnieError> {
        let io = |path: PathBuf| move |source| ErnieError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        self.transe.save(&dir.join(VECTORS_FILE))?;
        let mut text = format!("{}\n", self.names.len());
        for (id, name) in self.names.iter().enumerate() {
            text.push_str(&format!("{name}\t{id}\n"));
        }
        let path = dir.join(NAMES_FILE);
        std::fs::write(&path, text).map_err(io(path.clone()))
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no entities.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The row of an entity by name.
    pub fn row(&self, name: &str) -> Option<u32> {
        self.rows.get(&id_name(name)).copied()
    }

    /// The vectors as a `[entities, 100]` f32 tensor.
    pub fn tensor(&self, device: &candle_core::Device) -> candle_core::Result<candle_core::Tensor> {
        candle_core::Tensor::from_slice(&self.transe.entity, (self.len(), ENTITY_DIM), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kg::transe::TrainConfig;
    use crate::text::{LinkOptions, Linker, MemoryKg};

    fn triples(spo: &[(&str, &str, &str)]) -> Vec<NamedTriple> {
        spo.iter()
            .map(|(s, p, o)| NamedTriple::literal(s, p, o))
            .collect()
    }

    const MEDICAL: &[(&str, &str, &str)] = &[
        ("头痛", "类别", "症状"),
        ("发热", "类别", "症状"),
        ("腹部", "类别", "部位"),
        ("阑尾炎", "类别", "疾病"),
    ];

    fn small_config() -> TrainConfig {
        TrainConfig {
            epochs: 3,
            negatives: 2,
            batch_size: 4,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn trained_vectors_name_every_entity_and_reload_identically() {
        let v = EntityVectors::train(&triples(MEDICAL), small_config()).unwrap();
        assert_eq!(
            v.names,
            ["头痛", "症状", "发热", "腹部", "部位", "阑尾炎", "疾病"]
        );
        assert_eq!((v.row("腹部"), v.row("胸痛")), (Some(3), None));
        let dir = tempfile::tempdir().unwrap();
        v.save(dir.path()).unwrap();
        assert_eq!(EntityVectors::load(dir.path()).unwrap(), v);
    }

    #[test]
    fn vectors_of_the_wrong_width_are_refused() {
        let transe = TransE {
            dim: 4,
            norm: crate::kg::transe::Norm::L1,
            entity: vec![0.0; 8],
            relation: vec![0.0; 4],
            reciprocal: false,
        };
        let err =
            EntityVectors::new(vec!["a".into(), "b".into()], transe, Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("4 wide"), "{err}");
    }

    #[test]
    fn entities_sit_on_the_first_token_of_their_mentions() {
        let kg = MemoryKg::from_triples(MEDICAL.iter().copied());
        let linker = Linker::build(
            kg,
            LinkOptions {
                nil_threshold: 0.0,
                ..LinkOptions::default()
            },
        )
        .unwrap();
        let vectors = EntityVectors::train(&triples(MEDICAL), small_config()).unwrap();
        let text = "患者头痛发热，腹部压痛。";
        let doc = crate::text::annotate(&linker, text, 0).unwrap();
        let found: Vec<(usize, usize, Option<u32>)> = doc
            .mentions
            .iter()
            .map(|m| (m.start, m.end, vectors.row(&m.entity.name)))
            .collect();
        assert_eq!(found, [(2, 4, Some(0)), (4, 6, Some(2)), (7, 9, Some(3))]);
        // `[CLS]` is token 0, so character c is token c + 1.
        let char_to_token: Vec<Option<usize>> =
            (0..text.chars().count()).map(|c| Some(c + 1)).collect();
        let cut = crate::knowledge::DocumentKnowledge::new(&doc);
        let whole = 0..cut.len();
        let entities = cut.entity_rows(std::slice::from_ref(&whole), &vectors, &char_to_token, 14);
        assert_eq!(
            entities,
            [-1, -1, -1, 0, -1, 2, -1, -1, 3, -1, -1, -1, -1, -1]
        );
        // A cut that starts inside the text sees the mentions inside it, shifted.
        let part = 4..9;
        let entities = cut.entity_rows(std::slice::from_ref(&part), &vectors, &char_to_token, 8);
        assert_eq!(entities, [-1, 2, -1, -1, 3, -1, -1, -1]);
    }
}
