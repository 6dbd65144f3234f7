//! `zhishi bench ...`: reproducible benchmarks that print (and optionally save) JSON.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::json;
use zhishi::kg::import::{import_files, ImportOptions};
use zhishi::kg::{Pattern, Store, StoreOptions};

mod encoder;
mod link;
mod pipeline_arm;
mod pipeline_run;
mod pipeline_stats;
mod train;

/// Arguments of `zhishi bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// KG store: import throughput and disk size (FB15k-237 train and a synthetic file),
    /// open time, point-lookup latency by subject and resident memory.
    Kg(KgBenchArgs),
    /// Entity linking: chars/s of jieba-rs segmentation alone and of the linker on 1 and 2
    /// threads, against Python jieba on the same corpus.
    Link(link::LinkBenchArgs),
    /// Encoder forward passes (plain and K-BERT input) on 1 and 2 threads against PyTorch
    /// `transformers` (`shared/reference/bert_forward.py --bench`), interleaved rounds.
    Encoder(encoder::EncoderBenchArgs),
    /// A pipeline (e.g. `pipelines/medical-ner.toml`) over a corpus at each `--precision`
    /// against PyTorch f32 and ONNX Runtime int8 on the NER stage's exact inputs (the
    /// `benches/ner_reference.py` script), on 1 and 2 threads, interleaved rounds.
    Run(pipeline_run::RunBenchArgs),
    /// Training: tokens/s and seconds per phase of the steps (batching, forward, backward,
    /// optimizer, ...) on each thread count, and the encoder's multiply-adds per second
    /// against an estimate of the cores' f32 peak; one `zhishi train` child per thread count.
    Train(train::TrainBenchArgs),
    /// The CPU model, the features the encoder's kernels look for and the kernel each
    /// `--precision` runs on it (one JSON object).
    Cpu,
    /// (internal) time the encoder on one thread count; run as a child process.
    #[command(hide = true)]
    EncoderRun(encoder::EncoderRunArgs),
    /// (internal) one pipeline run at one precision and thread count; run as a child process.
    #[command(hide = true)]
    RunArm(pipeline_arm::RunArmArgs),
    /// (internal) open a store, time lookups and report memory; run as a child process.
    #[command(hide = true)]
    KgOpen(KgOpenArgs),
}

#[derive(Args, Debug)]
struct KgBenchArgs {
    /// OpenKE directory of FB15k-237 (default: `kg/openke/FB15K237` under `$ZHISHI_DATA`, else
    /// under `data/`, as `corpora/fetch_data.sh fb15k237` writes it).
    #[arg(long)]
    fb15k: Option<PathBuf>,
    /// Number of triples in the synthetic file (at most 100 million, ~4 GB).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    synthetic: u64,
    /// Working directory for generated files and stores (deleted and recreated).
    #[arg(long, default_value = "target/bench-kg")]
    work: PathBuf,
    /// Point lookups per store.
    #[arg(long, default_value_t = 20_000)]
    lookups: usize,
    /// sled page-cache size in MiB.
    #[arg(long, default_value_t = 64)]
    cache_mb: u64,
    /// Also write the JSON result to this file.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct KgOpenArgs {
    #[arg(long)]
    db: PathBuf,
    #[arg(long)]
    lookups: usize,
    #[arg(long)]
    cache_mb: u64,
}

/// Runs a `zhishi bench` subcommand.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        BenchCommand::Kg(a) => bench_kg(a),
        BenchCommand::KgOpen(a) => bench_kg_open(a),
        BenchCommand::Link(a) => print_result(&link::bench_link(&a)?, a.output.as_deref()),
        BenchCommand::Encoder(mut a) => {
            a.model = super::model_dir(&a.model)?;
            print_result(&encoder::bench_encoder(&a)?, a.output.as_deref())
        }
        BenchCommand::EncoderRun(a) => print_result(&encoder::run_child(&a)?, None),
        BenchCommand::Run(a) => print_result(&pipeline_run::bench_run(&a)?, a.out.as_deref()),
        BenchCommand::RunArm(a) => print_result(&pipeline_arm::run_arm(&a)?, None),
        BenchCommand::Cpu => print_result(&encoder::cpu_report(), None),
        BenchCommand::Train(a) => print_result(&train::bench_train(&a)?, a.output.as_deref()),
    }
}

/// Prints a benchmark's JSON and also writes it to `output` when given.
fn print_result(out: &serde_json::Value, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    println!("{out}");
    if let Some(path) = output {
        zhishi::files::write_file(path, format!("{out}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Peak and current resident memory of this process in bytes (Linux), else zeros.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Writes `n` deterministic pseudo-random triples over `n / 5` entities and 200 predicates,
/// a quarter of them with literal objects.
fn write_synthetic(path: &Path, n: u64) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let entities = (n / 5).max(1);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..n {
        let s = next() % entities;
        let p = next() % 200;
        let o = next();
        if o % 4 == 0 {
            writeln!(out, "实体{s}\t关系{p}\t数值{}", o % 100_000)?;
        } else {
            writeln!(out, "实体{s}\t关系{p}\t实体{}", o % entities)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn bench_kg(args: KgBenchArgs) -> anyhow::Result<ExitCode> {
    let fb15k_dir = args.fb15k.clone().unwrap_or_else(|| {
        let root = std::env::var_os("ZHISHI_DATA")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("data"), PathBuf::from);
        root.join("kg/openke/FB15K237")
    });
    if !fb15k_dir.join("train2id.txt").is_file() {
        bail!(
            "--fb15k {}: no train2id.txt in it (expected the OpenKE FB15k-237 directory; \
             `bash corpora/fetch_data.sh fb15k237` fetches it)",
            fb15k_dir.display()
        );
    }
    let mut plan = zhishi::files::Plan::new();
    plan.read("--fb15k", &fb15k_dir).write("--work", &args.work);
    if let Some(output) = &args.output {
        plan.write("--output", output);
    }
    plan.check()?;
    zhishi::files::prepare_scratch(&args.work)?;
    let _lock = zhishi::files::DirLock::acquire(&args.work)?;
    let synthetic = args.work.join("synthetic.tsv");
    write_synthetic(&synthetic, args.synthetic)?;
    let mut results = Vec::new();
    for (name, input) in [
        ("fb15k237_train", fb15k_dir.join("train2id.txt")),
        ("synthetic", synthetic),
    ] {
        if !input.exists() {
            bail!("benchmark input {} is missing", input.display());
        }
        let db = args.work.join(format!("{name}.db"));
        let options = ImportOptions {
            store: StoreOptions {
                cache_bytes: args.cache_mb * 1024 * 1024,
            },
            ..ImportOptions::default()
        };
        let started = Instant::now();
        let report = import_files(&db, std::slice::from_ref(&input), &options, &mut |_| {})?;
        let import_seconds = started.elapsed().as_secs_f64();
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .args(["bench", "kg-open", "--db"])
            .arg(&db)
            .args([
                "--lookups",
                &args.lookups.to_string(),
                "--cache-mb",
                &args.cache_mb.to_string(),
            ])
            .output()?;
        if !child.status.success() {
            bail!(
                "lookup benchmark failed: {}",
                String::from_utf8_lossy(&child.stderr)
            );
        }
        let open: serde_json::Value = serde_json::from_slice(&child.stdout)?;
        let input_bytes = std::fs::metadata(&input)?.len();
        results.push(json!({
            "dataset": name,
            "input_bytes": input_bytes,
            "triples": report.stats.triples,
            "entities": report.stats.entities,
            "import_seconds": import_seconds,
            "import_triples_per_second": report.parsed_triples as f64 / import_seconds,
            "disk_bytes": dir_bytes(&db),
            "space_amplification": dir_bytes(&db) as f64 / input_bytes as f64,
            "open": open,
        }));
    }
    let (peak, _) = memory();
    let out = json!({"benchmark": "kg", "cache_mb": args.cache_mb, "import_peak_rss_bytes": peak, "results": results});
    println!("{out}");
    if let Some(path) = args.output {
        zhishi::files::write_file(&path, format!("{out}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_kg_open(args: KgOpenArgs) -> anyhow::Result<ExitCode> {
    let (_, rss_before) = memory();
    let started = Instant::now();
    let store = Store::open_with(
        &args.db,
        &StoreOptions {
            cache_bytes: args.cache_mb * 1024 * 1024,
        },
    )?;
    let open_seconds = started.elapsed().as_secs_f64();
    let (_, rss_open) = memory();
    let terms = store.stats().terms.max(1);
    let mut state = 12345u64;
    let mut latencies = Vec::with_capacity(args.lookups);
    let mut found = 0usize;
    for _ in 0..args.lookups {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let id = ((state >> 33) % terms) as u32;
        let t = Instant::now();
        found += store
            .triples(Pattern {
                subject: Some(id),
                ..Pattern::default()
            })
            .count();
        latencies.push(t.elapsed().as_nanos() as f64 / 1000.0);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let (peak, rss_after) = memory();
    let out = json!({
        "open_seconds": open_seconds,
        "lookup_by_subject_us_p50": pct(0.5),
        "lookup_by_subject_us_p99": pct(0.99),
        "lookups": args.lookups,
        "triples_found": found,
        "rss_after_open_bytes": rss_open.saturating_sub(rss_before),
        "rss_after_lookups_bytes": rss_after,
        "peak_rss_bytes": peak,
    });
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}
