//! `zhishi compare CONFIG.toml --knowledge plain,kbert,ernie --seeds N`: "does the KG help?"
//! built in. Trains and evaluates the task of CONFIG once per knowledge arm and seed
//! ([`zhishi::stages::compare`]), prints a table of the headline metric per arm (mean, standard
//! deviation and range over the seeds, gain over `plain`), and writes the comparison as JSON
//! (`--out`) and a bar chart (SVG, next to the JSON or at `--chart`).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use zhishi::stages::compare::{compare, seeds, ArmSummary, Comparison};
use zhishi::stages::task::Split;

/// Arguments of `zhishi compare`.
#[derive(Parser, Debug)]
pub struct Args {
    /// Training configuration (TOML with a `[task] kind` and a `[knowledge]` table).
    pub config: PathBuf,
    /// The knowledge modes to compare (comma-separated, each once).
    #[arg(long, default_value = "plain,kbert,ernie", value_delimiter = ',')]
    pub knowledge: Vec<String>,
    /// Seeds per arm: `train.seed`, `train.seed + 1`, ... (at most 1000).
    #[arg(long, default_value_t = 2, value_parser = super::bounds::count_in::<1, { zhishi::stages::compare::MAX_SEEDS }>)]
    pub seeds: usize,
    /// The split every run is evaluated on.
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Write the comparison (arms and every run) as JSON here.
    #[arg(long, value_name = "JSON")]
    pub out: Option<PathBuf>,
    /// Write the bar chart here (default: `--out` with `.svg`).
    #[arg(long, value_name = "SVG")]
    pub chart: Option<PathBuf>,
    /// Override a value in every run (repeatable), as `zhishi train --set`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Runs `zhishi compare`.
pub fn run(args: Args) -> Result<ExitCode> {
    let chart = args
        .chart
        .clone()
        .or_else(|| args.out.as_ref().map(|o| o.with_extension("svg")));
    let mut plan = super::plan::config_reads(&args.config, &args.set)?;
    if let Some(out) = &args.out {
        plan.write("--out", out);
    }
    if let Some(chart) = &chart {
        plan.write("--chart", chart);
    }
    plan.check()?;
    super::train::peek(&args.config, &args.set)?; // threads, and a trainable task
    let seeds = seeds(&args.config, &args.set, args.seeds)?;
    let mut progress = |r: &zhishi::stages::compare::CompareRun| {
        eprintln!("arm {} seed {}: {:.4}", r.arm, r.seed, r.score);
    };
    let c = compare(
        &args.config,
        &args.set,
        &args.knowledge,
        &seeds,
        args.split,
        zhishi::model::Precision::F32,
        &mut progress,
    )
    .with_context(|| format!("comparing {}", args.config.display()))?;
    print!("{}", table(&c));
    let json = to_json(&c);
    if let Some(out) = &args.out {
        zhishi::files::write_json(out, &json)?;
        eprintln!("wrote {}", out.display());
    }
    if let Some(path) = chart {
        let svg = super::chart::comparison_svg(&json)?;
        zhishi::files::write_file(&path, svg)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The JSON of a comparison, `{"compare": CONFIG-TASK, ...}` with the bench notes `date`
/// and `commit` when the environment gives them (`BENCH_DATE`, `BENCH_COMMIT`).
fn to_json(c: &Comparison) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("compare".into(), serde_json::Value::from(c.task.name()));
        for (key, var) in [
            ("date", "BENCH_DATE"),
            ("commit", "BENCH_COMMIT"),
            ("cpu", "BENCH_CPU"),
        ] {
            if let Ok(value) = std::env::var(var) {
                obj.insert(key.into(), value.into());
            }
        }
    }
    v
}

/// The table `zhishi compare` prints (Markdown).
pub fn table(c: &Comparison) -> String {
    let seeds: Vec<String> = c.seeds.iter().map(u64::to_string).collect();
    let mut out = format!(
        "| arm | {} ({}) per seed {} | mean | std | range | gain over plain |\n|---|---|---|---|---|---|\n",
        c.metric,
        c.split.name(),
        seeds.join("/")
    );
    for ArmSummary {
        arm,
        scores,
        mean,
        std,
        spread,
        gain_over_plain,
    } in &c.arms
    {
        let per: Vec<String> = scores.iter().map(|s| format!("{s:.4}")).collect();
        let gain = gain_over_plain.map_or("-".into(), |g| format!("{g:+.4}"));
        out.push_str(&format!(
            "| {arm} | {} | {mean:.4} | {std:.4} | {spread:.4} | {gain} |\n",
            per.join(" / ")
        ));
    }
    out
}
