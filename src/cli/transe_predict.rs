//! `zhishi transe predict` and `zhishi kg similar`: asking trained TransE vectors for the
//! likeliest heads or tails of a question, or for an entity's nearest neighbours.
//!
//! `--model DIR` is either what `zhishi transe train --export DIR` or `zhishi transe bench
//! --export DIR` writes (`transe.safetensors`, `entity2id.txt`, `relation2id.txt` and the
//! training triples `train2id.txt`, the known triples), or a KG store trained with
//! `zhishi transe train --db DIR` (its vectors in the store's artifact directory, its names
//! and triples in the store).
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;

use zhishi::kg::dataset::{read_openke_ids, read_openke_triples};
use zhishi::kg::eval::{self, Filter, Query};
use zhishi::kg::store_source::TRANSE_VECTORS_FILE;
use zhishi::kg::transe::TransE;
use zhishi::kg::{Pattern, Store};

/// Arguments of `zhishi transe predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A `transe train/bench --export` directory, or a store trained with `transe train`.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// The head of a tail question `(H, R, ?)`.
    #[arg(
        long,
        value_name = "H",
        conflicts_with = "tail",
        required_unless_present = "tail"
    )]
    head: Option<String>,
    /// The relation.
    #[arg(long, value_name = "R")]
    relation: String,
    /// The tail of a head question `(?, R, T)`.
    #[arg(long, value_name = "T")]
    tail: Option<String>,
    /// Answers to print.
    #[arg(long, value_name = "K", default_value_t = 10, value_parser = super::bounds::count_in::<1, 1_000_000>)]
    top_k: usize,
    /// Keep answers that form a known triple (one the vectors were trained on).
    #[arg(long)]
    include_known: bool,
}

/// Arguments of `zhishi kg similar`.
#[derive(Args, Debug)]
pub struct SimilarArgs {
    /// The entity (a name of the model's entities; an alias too for a store).
    entity: String,
    /// A `transe train/bench --export` directory, or a store trained with `transe train`.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Neighbours to print.
    #[arg(long, value_name = "K", default_value_t = 10, value_parser = super::bounds::count_in::<1, 1_000_000>)]
    top_k: usize,
}

/// Vectors with the names of their rows and the triples they were trained on.
struct Model {
    vectors: TransE,
    entities: Vec<String>,
    entity_ids: HashMap<String, u32>,
    relation_ids: HashMap<String, u32>,
    /// Store handle, for alias lookups.
    store: Option<Store>,
    known: Vec<[u32; 3]>,
}

impl Model {
    fn load(dir: &Path, need_known: bool) -> anyhow::Result<Model> {
        let mut plan = zhishi::files::Plan::new();
        plan.read("--model", dir);
        plan.check()?;
        if dir.join("STORE.json").is_file() {
            return Self::from_store(dir, need_known);
        }
        let vectors_path = dir.join(TRANSE_VECTORS_FILE);
        if !vectors_path.is_file() {
            bail!(
                "{}: neither a KG store nor a TransE export (no {TRANSE_VECTORS_FILE}); expected the directory of `zhishi transe train --export DIR` or `zhishi transe bench --export DIR`, or a store trained with `zhishi transe train --db DIR`",
                dir.display()
            );
        }
        let vectors = TransE::load(&vectors_path)?;
        let entities = read_openke_ids(&dir.join("entity2id.txt"), "entity")?;
        let relations = read_openke_ids(&dir.join("relation2id.txt"), "relation")?;
        check_rows(&vectors, entities.len(), relations.len(), dir)?;
        let train = dir.join("train2id.txt");
        let known = if need_known && train.is_file() {
            read_openke_triples(&train, entities.len(), relations.len())?.triples
        } else {
            Vec::new()
        };
        Ok(Model {
            entity_ids: ids(&entities),
            relation_ids: ids(&relations),
            entities,
            vectors,
            store: None,
            known,
        })
    }

    fn from_store(dir: &Path, need_known: bool) -> anyhow::Result<Model> {
        let store = Store::open(dir).with_context(|| format!("opening store {}", dir.display()))?;
        let path = store.artifact_dir()?.join(TRANSE_VECTORS_FILE);
        if !path.is_file() {
            bail!(
                "store {} has no TransE vectors; train them with `zhishi transe train --db {}`",
                dir.display(),
                dir.display()
            );
        }
        let vectors = TransE::load(&path)?;
        let stats = store.stats();
        let mut entities = Vec::with_capacity(stats.terms as usize);
        for id in 0..stats.terms as u32 {
            entities.push(store.term(id)?.map_or_else(|| format!("#{id}"), |t| t.name));
        }
        let relations: Vec<(u32, String)> = store.predicates()?;
        check_rows(&vectors, entities.len(), relations.len(), dir)?;
        let known = if need_known {
            store
                .triples(Pattern::default())
                .map(|t| t.map(|t| [t.subject, t.predicate, t.object]))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        Ok(Model {
            entity_ids: ids(&entities),
            relation_ids: relations.into_iter().map(|(id, name)| (name, id)).collect(),
            entities,
            vectors,
            store: Some(store),
            known,
        })
    }

    fn entity(&self, name: &str) -> anyhow::Result<u32> {
        if let Some(&id) = self.entity_ids.get(name) {
            return Ok(id);
        }
        if let Some(store) = &self.store {
            if let Some(c) = store.candidates(name)?.first() {
                return Ok(c.id);
            }
        }
        bail!("no entity named {name:?} in the model's entities")
    }

    fn relation(&self, name: &str) -> anyhow::Result<u32> {
        self.relation_ids
            .get(name)
            .copied()
            .with_context(|| format!("no relation named {name:?} in the model's relations"))
    }

    fn answers(&self, found: Vec<(u32, f32)>) -> Vec<serde_json::Value> {
        found
            .into_iter()
            .map(|(e, distance)| {
                json!({"entity": self.entities.get(e as usize).cloned().unwrap_or_else(|| format!("#{e}")), "score": -distance})
            })
            .collect()
    }
}

fn ids(names: &[String]) -> HashMap<String, u32> {
    let mut out = HashMap::with_capacity(names.len());
    for (id, name) in names.iter().enumerate() {
        out.entry(name.clone()).or_insert(id as u32);
    }
    out
}

fn check_rows(
    vectors: &TransE,
    entities: usize,
    relations: usize,
    dir: &Path,
) -> anyhow::Result<()> {
    if vectors.num_entities() != entities || vectors.num_relations() != relations {
        bail!(
            "{}: the vectors have {} entity and {} relation rows but the names list {entities} entities and {relations} relations (vectors from another KG, or the store changed since `transe train`?)",
            dir.display(),
            vectors.num_entities(),
            vectors.num_relations()
        );
    }
    Ok(())
}

/// Runs `zhishi transe predict`.
pub fn predict(args: PredictArgs) -> anyhow::Result<ExitCode> {
    let model = Model::load(&args.model, !args.include_known)?;
    let relation = model.relation(&args.relation)?;
    let query = match (&args.head, &args.tail) {
        (Some(h), None) => Query {
            head_side: false,
            entity: model.entity(h)?,
            relation,
        },
        (None, Some(t)) => Query {
            head_side: true,
            entity: model.entity(t)?,
            relation,
        },
        _ => bail!("give either --head H or --tail T"),
    };
    let known = if args.include_known {
        Filter::default()
    } else {
        Filter::new(&model.known)
    };
    let found = eval::predict(&model.vectors, &[query], args.top_k, &known)
        .pop()
        .unwrap_or_default();
    println!("{}", json!({"predictions": model.answers(found)}));
    Ok(ExitCode::SUCCESS)
}

/// Runs `zhishi kg similar`.
pub fn similar(args: SimilarArgs) -> anyhow::Result<ExitCode> {
    let model = Model::load(&args.model, false)?;
    let id = model.entity(&args.entity)?;
    let found = eval::nearest(&model.vectors, id, args.top_k);
    println!(
        "{}",
        json!({"entity": model.entities[id as usize], "similar": model.answers(found)})
    );
    Ok(ExitCode::SUCCESS)
}
