//! `zhishi kg ...`: import into, inspect and query a knowledge-graph store.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use zhishi::kg::graph::{self, KgGraph, LoadLimits};
use zhishi::kg::import::{import_files, Format, ImportError, ImportOptions};
use zhishi::kg::{Pattern, Store, StoreOptions, TermId, Triple};

/// Arguments of `zhishi kg`.
#[derive(Args, Debug)]
pub struct KgArgs {
    #[command(subcommand)]
    command: KgCommand,
}

#[derive(Subcommand, Debug)]
enum KgCommand {
    /// Import triples from files, or the relations of a `zhishi run` output (`--from-run`),
    /// into a store (created if missing), atomically.
    Import(ImportArgs),
    /// Print the store's counts as one JSON object.
    Stats(StatsArgs),
    /// Print the triples matching a pattern as JSON lines (with where each came from, for
    /// triples imported from a run).
    Query(QueryArgs),
    /// Print the entities within K hops of an entity as JSON.
    Neighbors(NeighborsArgs),
    /// Print a shortest relation path between two entities as JSON.
    Path(PathArgs),
    /// Print the entities nearest an entity by its TransE vector as JSON.
    Similar(super::transe_predict::SimilarArgs),
}

#[derive(Args, Debug)]
struct StatsArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Read every record and check the trees against the counters (O(store size)); a
    /// damaged store is an error. Without it the counts come from the store's counters.
    #[arg(long)]
    verify: bool,
}

#[derive(Args, Debug)]
struct DbArgs {
    /// Store directory.
    #[arg(long)]
    db: PathBuf,
    /// sled page-cache size in MiB.
    #[arg(long, default_value_t = 64)]
    cache_mb: u64,
}

impl DbArgs {
    fn open(&self) -> anyhow::Result<Store> {
        let options = StoreOptions {
            cache_bytes: self.cache_mb * 1024 * 1024,
        };
        Ok(Store::open_with(&self.db, &options)?)
    }
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// Store directory (created if it does not exist).
    #[arg(long)]
    db: PathBuf,
    /// Input format: auto (from file name and first line), tsv, spo (= tsv), nlpcc,
    /// openke (train2id.txt or its directory, with entity2id.txt and relation2id.txt beside
    /// it) or ntriples.
    #[arg(long, default_value = "auto")]
    format: Format,
    /// Stop at the first bad line and import nothing; by default bad lines are skipped,
    /// counted and the first ones reported.
    #[arg(long)]
    strict: bool,
    /// Lines per parsed and applied batch.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = super::bounds::count_in::<1, 10_000_000>)]
    batch_lines: usize,
    /// sled page-cache size in MiB.
    #[arg(long, default_value_t = 64)]
    cache_mb: u64,
    /// Input files.
    #[arg(required_unless_present = "from_run", conflicts_with = "from_run")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    from_run: super::kg_from_run::FromRunArgs,
}

#[derive(Args, Debug)]
struct QueryArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Subject name (canonical name or alias).
    #[arg(long)]
    subject: Option<String>,
    /// Predicate name.
    #[arg(long)]
    predicate: Option<String>,
    /// Object name or literal value.
    #[arg(long)]
    object: Option<String>,
    /// Print at most N triples.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Args, Debug)]
struct NeighborsArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Entity name (canonical name or alias).
    name: String,
    /// Radius in hops (triples followed in either direction).
    #[arg(long, default_value_t = 1)]
    hops: usize,
    /// Stop loading once this many nodes are reached (protects against hub nodes).
    #[arg(long, default_value_t = 200_000)]
    max_nodes: usize,
    /// `json` (default); `dot`: the neighbourhood's triples as a Graphviz graph
    /// (`zhishi kg neighbors ... --format dot | dot -Tsvg > n.svg`); `svg`: drawn around the
    /// entity, rings by hop distance.
    #[arg(long, value_enum, default_value = "json")]
    format: GraphFormat,
}

/// How `neighbors` and `path` print their result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum GraphFormat {
    /// One JSON object.
    Json,
    /// A Graphviz `digraph`, one edge per triple labelled with its predicate.
    Dot,
    /// An SVG picture: a radial layout around the entity (`neighbors`) or the path's start
    /// (`path`), one arrow per triple labelled with its predicate.
    Svg,
}

#[derive(Args, Debug)]
struct PathArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Start entity name.
    from: String,
    /// End entity name.
    to: String,
    /// Longest path searched, in hops.
    #[arg(long, default_value_t = 4)]
    max_hops: usize,
    /// Stop loading once this many nodes are reached (protects against hub nodes).
    #[arg(long, default_value_t = 200_000)]
    max_nodes: usize,
    /// `json` (default); `dot`: the path's triples as a Graphviz graph; `svg`: drawn around
    /// the start entity.
    #[arg(long, value_enum, default_value = "json")]
    format: GraphFormat,
}

/// Runs a `zhishi kg` subcommand.
pub fn run(args: KgArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KgCommand::Import(a) => import(a),
        KgCommand::Stats(a) => stats(a),
        KgCommand::Query(a) => query(a),
        KgCommand::Neighbors(a) => neighbors(a),
        KgCommand::Path(a) => path(a),
        KgCommand::Similar(a) => super::transe_predict::similar(a),
    }
}

/// Inputs larger than this get a progress bar.
const PROGRESS_BAR_BYTES: u64 = 4 * 1024 * 1024;

fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if args.from_run.from_run.is_some() {
        return super::kg_from_run::import(&args.db, args.cache_mb, &args.from_run);
    }
    let mut plan = zhishi::files::Plan::new();
    for file in &args.files {
        plan.read("input", file);
    }
    plan.write("--db", &args.db).check()?;
    let options = ImportOptions {
        format: args.format,
        strict: args.strict,
        batch_lines: args.batch_lines,
        store: StoreOptions {
            cache_bytes: args.cache_mb * 1024 * 1024,
        },
        ..ImportOptions::default()
    };
    let total: u64 = args
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = if total > PROGRESS_BAR_BYTES {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} importing [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let result = import_files(&args.db, &args.files, &options, &mut |p| {
        bar.set_position(p.bytes_done);
        bar.set_message(format!("{} triples", p.parsed_triples));
    });
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(ImportError::NothingImported {
            bad_lines,
            examples,
        }) => {
            for example in &examples {
                eprintln!("bad line: {example}");
            }
            let files: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
            bail!(
                "nothing imported into {} from {}: {bad_lines} bad lines and no valid triple",
                args.db.display(),
                files.join(", ")
            );
        }
        Err(e) => return Err(e).context(format!("importing into {}", args.db.display())),
    };
    for example in &report.examples {
        eprintln!("skipped bad line: {example}");
    }
    eprintln!(
        "imported {} files: {} triples parsed, {} new, {} duplicates, {} bad lines skipped in {:.2} s ({:.0} triples/s); store has {} triples, {} entities, {} relations",
        report.files.len(),
        report.parsed_triples,
        report.new_triples,
        report.duplicate_triples,
        report.bad_lines,
        report.seconds,
        report.parsed_triples as f64 / report.seconds.max(1e-9),
        report.stats.triples,
        report.stats.entities,
        report.stats.relations
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}

fn stats(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let store = args.db.open()?;
    let open_seconds = started.elapsed().as_secs_f64();
    let s = store.stats();
    let verified_records = if args.verify {
        Some(store.verify()?)
    } else {
        None
    };
    let out = json!({
        "verified_records": verified_records,
        "entities": s.entities,
        "relations": s.relations,
        "triples": s.triples,
        "literals": s.literals,
        "terms": s.terms,
        "aliases": s.aliases,
        "disk_bytes": store.disk_bytes(),
        "open_seconds": open_seconds,
        "format_version": zhishi::kg::store::FORMAT_VERSION,
    });
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// Resolves an entity name: exact canonical name first, then the most popular alias match.
fn resolve_entity(store: &Store, name: &str) -> anyhow::Result<Option<TermId>> {
    if let Some(id) = store.term_id(name)? {
        return Ok(Some(id));
    }
    Ok(store.candidates(name)?.first().map(|c| c.id))
}

fn require_entity(store: &Store, name: &str) -> anyhow::Result<TermId> {
    resolve_entity(store, name)?.with_context(|| {
        format!(
            "no entity or value named {name:?} in {}",
            store.dir().display()
        )
    })
}

fn term_name(store: &Store, id: TermId) -> anyhow::Result<String> {
    Ok(store
        .term(id)?
        .with_context(|| format!("term {id} is missing from the store"))?
        .name)
}

fn triple_json(store: &Store, t: &Triple) -> anyhow::Result<serde_json::Value> {
    Ok(json!({
        "subject": term_name(store, t.subject)?,
        "predicate": store.predicate_name(t.predicate)?.unwrap_or_default(),
        "object": term_name(store, t.object)?,
    }))
}

fn query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let store = args.db.open()?;
    let mut pattern = Pattern::default();
    // A name that is not in the store matches nothing: print nothing and succeed.
    if let Some(name) = &args.subject {
        match resolve_entity(&store, name)? {
            Some(id) => pattern.subject = Some(id),
            None => return Ok(ExitCode::SUCCESS),
        }
    }
    if let Some(name) = &args.predicate {
        match store.predicate_id(name)? {
            Some(id) => pattern.predicate = Some(id),
            None => return Ok(ExitCode::SUCCESS),
        }
    }
    if let Some(name) = &args.object {
        match store.term_id(name)? {
            Some(id) => pattern.object = Some(id),
            None => return Ok(ExitCode::SUCCESS),
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for triple in store
        .triples(pattern)
        .take(args.limit.unwrap_or(usize::MAX))
    {
        let triple = triple?;
        let mut line = triple_json(&store, &triple)?;
        let provenance = store.provenance(&triple)?;
        if !provenance.is_empty() {
            line["provenance"] = serde_json::to_value(provenance)?;
        }
        if writeln!(out, "{line}").is_err() {
            break; // closed pipe (e.g. `| head`)
        }
    }
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

fn neighbors(args: NeighborsArgs) -> anyhow::Result<ExitCode> {
    let store = args.db.open()?;
    let id = require_entity(&store, &args.name)?;
    let limits = LoadLimits {
        max_nodes: args.max_nodes,
    };
    let graph = KgGraph::load_neighbourhood(&store, &[id], args.hops, limits)?;
    match args.format {
        GraphFormat::Dot => {
            print!("{}", dot(&store, graph.triples())?);
            return Ok(ExitCode::SUCCESS);
        }
        GraphFormat::Svg => {
            print!("{}", svg(&store, id, graph.triples())?);
            return Ok(ExitCode::SUCCESS);
        }
        GraphFormat::Json => {}
    }
    let mut neighbours = Vec::new();
    for (other, distance) in graph.neighbours(id, args.hops) {
        neighbours.push(json!({"name": term_name(&store, other)?, "distance": distance}));
    }
    let out = json!({
        "entity": term_name(&store, id)?,
        "hops": args.hops,
        "count": neighbours.len(),
        "truncated": graph.node_count() >= args.max_nodes,
        "neighbors": neighbours,
    });
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn path(args: PathArgs) -> anyhow::Result<ExitCode> {
    let store = args.db.open()?;
    let from = require_entity(&store, &args.from)?;
    let to = require_entity(&store, &args.to)?;
    let limits = LoadLimits {
        max_nodes: args.max_nodes,
    };
    let found = graph::shortest_path(&store, from, to, args.max_hops, limits)?;
    match args.format {
        GraphFormat::Dot => {
            print!("{}", dot(&store, found.iter().flatten())?);
            return Ok(ExitCode::SUCCESS);
        }
        GraphFormat::Svg => {
            print!("{}", svg(&store, from, found.iter().flatten())?);
            return Ok(ExitCode::SUCCESS);
        }
        GraphFormat::Json => {}
    }
    let out = match found {
        Some(path) => {
            let steps: anyhow::Result<Vec<_>> =
                path.iter().map(|t| triple_json(&store, t)).collect();
            json!({"from": term_name(&store, from)?, "to": term_name(&store, to)?, "length": path.len(), "path": steps?})
        }
        None => {
            json!({"from": term_name(&store, from)?, "to": term_name(&store, to)?, "length": null, "path": null})
        }
    };
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// `triples` as a Graphviz digraph: terms as nodes (by name), one edge per triple labelled
/// with its predicate (petgraph's DOT writer does the quoting).
fn dot<'a>(
    store: &Store,
    triples: impl Iterator<Item = &'a zhishi::kg::Triple>,
) -> anyhow::Result<String> {
    let mut graph = petgraph::Graph::<String, String>::new();
    let mut nodes = std::collections::HashMap::new();
    for t in triples {
        let mut node = |id| -> anyhow::Result<petgraph::graph::NodeIndex> {
            if let Some(&n) = nodes.get(&id) {
                return Ok(n);
            }
            let n = graph.add_node(term_name(store, id)?);
            nodes.insert(id, n);
            Ok(n)
        };
        let (s, o) = (node(t.subject)?, node(t.object)?);
        let predicate = store
            .predicate_name(t.predicate)?
            .unwrap_or_else(|| format!("#{}", t.predicate));
        graph.add_edge(s, o, predicate);
    }
    Ok(format!("{}", petgraph::dot::Dot::new(&graph)))
}

/// `triples` drawn as an SVG around the term `centre` (`zhishi::kg::draw`).
fn svg<'a>(
    store: &Store,
    centre: zhishi::kg::TermId,
    triples: impl Iterator<Item = &'a zhishi::kg::Triple>,
) -> anyhow::Result<String> {
    let mut named = Vec::new();
    for t in triples {
        let predicate = store
            .predicate_name(t.predicate)?
            .unwrap_or_else(|| format!("#{}", t.predicate));
        named.push((
            term_name(store, t.subject)?,
            predicate,
            term_name(store, t.object)?,
        ));
    }
    Ok(zhishi::kg::draw::graph_svg(
        &term_name(store, centre)?,
        &named,
    )?)
}
