//! `zhishi kg import --from-run OUT.jsonl`: the relations of a `zhishi run` output into a
//! store, as triples with provenance ([`zhishi::kg::from_run`]).
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use zhishi::kg::from_run::{import_run, FromRunOptions};
use zhishi::kg::StoreOptions;

/// The `--from-run` flags of `zhishi kg import`.
#[derive(Args, Debug)]
pub struct FromRunArgs {
    /// Import the relations of this `zhishi run` output (JSON lines) instead of triple files:
    /// each relation becomes a triple (an argument's linked entity where it has one, else its
    /// text) with its provenance (document, score, stage, model, time). Importing the same
    /// run again changes nothing.
    #[arg(long, value_name = "OUT.jsonl")]
    pub from_run: Option<PathBuf>,
    /// Skip relations scored below this (0 to 1).
    #[arg(long, value_name = "S", default_value_t = 0.0, requires = "from_run", value_parser = unit_interval)]
    pub min_score: f32,
    /// Print what would be added without writing the store.
    #[arg(long, requires = "from_run")]
    pub dry_run: bool,
    /// The pipeline TOML the run used: the provenance's model is the `model` of the stage
    /// that produced each relation.
    #[arg(long, value_name = "TOML", requires = "from_run")]
    pub pipeline: Option<PathBuf>,
    /// The model to record for relations whose stage the pipeline does not name.
    #[arg(long, value_name = "NAME", requires = "from_run")]
    pub model: Option<String>,
}

fn unit_interval(s: &str) -> Result<f32, String> {
    let x: f32 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!("{x} is out of range; expected a score from 0 to 1"))
    }
}

/// The `model` of every stage table of the pipeline TOML at `path`, resolved against its
/// directory.
fn stage_models(path: &Path) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let text = zhishi::textfile::read(path)?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{}: not a TOML file", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = std::collections::BTreeMap::new();
    for (name, value) in &table {
        if let Some(model) = value.get("model").and_then(toml::Value::as_str) {
            let resolved = if model.starts_with("hf:") || Path::new(model).is_absolute() {
                model.to_string()
            } else {
                dir.join(model).display().to_string()
            };
            out.insert(name.clone(), resolved);
        }
    }
    Ok(out)
}

/// Runs `zhishi kg import --from-run`.
pub fn import(db: &Path, cache_mb: u64, args: &FromRunArgs) -> anyhow::Result<ExitCode> {
    let Some(run) = &args.from_run else {
        anyhow::bail!("--from-run is required here");
    };
    let mut plan = zhishi::files::Plan::new();
    plan.read("--from-run", run);
    if let Some(pipeline) = &args.pipeline {
        plan.read("--pipeline", pipeline);
    }
    if !args.dry_run {
        plan.write("--db", db);
    }
    plan.check()?;
    let models = match &args.pipeline {
        Some(p) => stage_models(p)?,
        None => Default::default(),
    };
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let options = FromRunOptions {
        min_score: args.min_score,
        dry_run: args.dry_run,
        models,
        model: args.model.clone(),
        time,
        store: StoreOptions {
            cache_bytes: cache_mb * 1024 * 1024,
        },
    };
    let report = import_run(db, run, &options).with_context(|| {
        format!(
            "importing the relations of {} into {}",
            run.display(),
            db.display()
        )
    })?;
    eprintln!(
        "{} {} documents: {} relations, {} below --min-score, {} distinct triples, {} new, {} new provenance records; store has {} triples",
        if report.dry_run { "would import from" } else { "imported from" },
        report.documents,
        report.relations,
        report.below_min_score,
        report.triples,
        report.new_triples,
        report.new_provenance,
        report.stats.triples
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}
