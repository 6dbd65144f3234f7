//! `zhishi bench run`: a NER pipeline over a corpus through zhishi at each precision (and any
//! extra model, e.g. a distilled student) and, on the NER stage's exact inputs, through the
//! reference implementations (PyTorch f32, ONNX Runtime int8; `benches/ner_reference.py`),
//! side by side on the same threads, interleaved rounds. Prints one JSON object.
//!
//! First an untimed preparation run (zhishi f32) writes the NER stage's inputs
//! (`zhishi::stages::ner::dump`) and counts the model's tokens. Then every round runs, for
//! each thread count, every arm once as a fresh child process (`zhishi bench run-arm` or the
//! Python script), the arms' order rotating from round to round. The summary is computed by
//! [`super::pipeline_stats`].
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use zhishi::model::{kernels, Precision};

use super::encoder::{child_json, cpu_report};
use super::pipeline_stats::{summarise, Arm, ArmKind, Samples};

/// Arguments of `zhishi bench run`.
#[derive(Args, Debug)]
pub struct RunBenchArgs {
    /// The pipeline TOML (with a `ner` stage), e.g. `pipelines/medical-ner.toml`.
    pub pipeline: PathBuf,
    /// The corpus: one document per non-empty line.
    #[arg(long)]
    pub corpus: PathBuf,
    /// The NER model directory (sets `ner.model`; the references load the same weights).
    #[arg(long)]
    pub model: PathBuf,
    /// zhishi precisions (`f32`, `bf16`, `int8`); bf16 is skipped, and said so, on a CPU
    /// without AVX512-BF16.
    #[arg(long, value_delimiter = ',', default_value = "f32,bf16,int8")]
    pub precision: Vec<Precision>,
    /// Thread counts.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Interleaved rounds; the median round counts.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Reference implementations: `pytorch` (f32), `onnx-int8`, or `none`.
    #[arg(long, value_delimiter = ',', default_value = "pytorch,onnx-int8")]
    pub reference: Vec<String>,
    /// Another zhishi model as an arm, e.g. a distilled student: `NAME=PRECISION:DIR`
    /// (repeatable).
    #[arg(long = "arm", value_name = "NAME=PRECISION:DIR")]
    pub arms: Vec<String>,
    /// Python of the reference venv (default: `$REF_PYTHON`).
    #[arg(long)]
    pub python: Option<String>,
    /// The reference script.
    #[arg(long, default_value = "benches/ner_reference.py")]
    pub script: PathBuf,
    /// Override a pipeline TOML value in every zhishi arm (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Working directory: dumped inputs, entities of each arm, the exported ONNX models.
    #[arg(long, default_value = "target/bench-run")]
    pub work: PathBuf,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the side-by-side benchmark and returns its JSON.
pub fn bench_run(args: &RunBenchArgs) -> anyhow::Result<Value> {
    if args.threads.is_empty() || args.threads.contains(&0) || args.rounds == 0 {
        bail!("--threads must list positive counts and --rounds must be positive");
    }
    let mut plan = crate::cli::plan::config_reads(&args.pipeline, &args.overrides)?;
    plan.read("--corpus", &args.corpus)
        .read("--model", &args.model)
        .read("--script", &args.script)
        .write("--work", &args.work);
    if let Some(out) = &args.out {
        plan.write("--out", out);
    }
    plan.check()?;
    let commit = commit();
    let model = absolute(&args.model)?;
    let (arms, skipped) = arms(args, &model)?;
    let python = match (&args.python, std::env::var("REF_PYTHON")) {
        (Some(p), _) => Some(p.clone()),
        (None, Ok(p)) if !p.is_empty() => Some(p),
        _ => None,
    };
    let has_reference = arms
        .iter()
        .any(|a| matches!(a.kind, ArmKind::Reference { .. }));
    if has_reference && python.is_none() {
        bail!("the references need the reference venv's Python: set $REF_PYTHON or --python (or pass --reference none)");
    }
    std::fs::create_dir_all(&args.work)
        .with_context(|| format!("creating {}", args.work.display()))?;
    let work = absolute(&args.work)?;
    let exe = std::env::current_exe().context("locating the zhishi binary")?;
    let inputs = work.join("inputs.jsonl");
    let max_threads = args.threads.iter().copied().max().unwrap_or(1);
    eprintln!("preparing: zhishi f32 on {max_threads} threads, dumping the NER inputs");
    let prep = child_json(
        arm_command(&exe, args, &model, Precision::F32, max_threads)
            .arg("--dump-inputs")
            .arg(&inputs),
    )?;
    let mut samples = Samples::default();
    for round in 0..args.rounds {
        for &t in &args.threads {
            for i in 0..arms.len() {
                let arm = &arms[(i + round) % arms.len()];
                let out = match &arm.kind {
                    ArmKind::Zhishi { precision, model } => child_json(
                        arm_command(&exe, args, model, *precision, t)
                            .arg("--entities")
                            .arg(work.join(format!("{}-t{t}.entities.jsonl", arm.name))),
                    )?,
                    ArmKind::Reference { script_impl } => child_json(
                        Command::new(python.as_deref().unwrap_or("python3"))
                            .arg(&args.script)
                            .arg("--model")
                            .arg(&model)
                            .arg("--inputs")
                            .arg(&inputs)
                            .args(["--impl", script_impl])
                            .args(["--threads", &t.to_string()])
                            .arg("--labels-out")
                            .arg(work.join(format!("{}-t{t}.labels.jsonl", arm.name)))
                            .arg("--work")
                            .arg(work.join("reference"))
                            .env("OMP_NUM_THREADS", t.to_string()),
                    )
                    .with_context(|| format!("running {}", args.script.display()))?,
                };
                eprintln!(
                    "round {}/{} threads {t} {}: {:.2} s",
                    round + 1,
                    args.rounds,
                    arm.name,
                    out["seconds"].as_f64().unwrap_or(f64::NAN)
                );
                samples.push(&arm.name, t, out);
            }
        }
    }
    let results = summarise(&arms, &args.threads, &samples, &prep, &work, &model)?;
    Ok(json!({
        "bench": "run",
        "pipeline": args.pipeline, "corpus": args.corpus,
        "corpus_bytes": std::fs::metadata(&args.corpus).map(|m| m.len()).ok(),
        "docs": prep["docs"], "chars": prep["chars"], "model_tokens": prep["model_tokens"],
        "windows": prep["windows"], "batch_size": prep["batch_size"],
        "threads": args.threads, "rounds": args.rounds, "skipped": skipped,
        "tokens": "model tokens: wordpieces the encoder runs over ([CLS], [SEP] and injected K-BERT knowledge included, padding excluded); chars are the documents' characters",
        "timing": {
            "zhishi": "seconds: the whole pipeline (segment, link, facts, ner) over the corpus in pipeline batches; ner_seconds: the ner stage alone (featurisation, forward passes, Viterbi); model loading excluded",
            "references": "seconds = ner_seconds: the model stage on zhishi's dumped inputs (batching, forward passes, score gathering, numpy Viterbi); loading, export and quantisation excluded",
            "speedup": "speedup_vs_* compare model stages (zhishi ner stage vs the reference's); *_end_to_end put zhishi's whole pipeline against the reference's model stage",
        },
        "commit": commit,
        "cpu": cpu_report(),
        "results": results,
    }))
}

/// The arms in run order and the ones skipped with the reason.
fn arms(args: &RunBenchArgs, model: &Path) -> anyhow::Result<(Vec<Arm>, Vec<String>)> {
    let mut arms = Vec::new();
    let mut skipped = Vec::new();
    for &precision in &args.precision {
        if precision == Precision::Bf16 && !kernels::bf16::available() {
            skipped.push("zhishi-bf16: the CPU has no AVX512-BF16".to_string());
            continue;
        }
        arms.push(Arm::zhishi(format!("zhishi-{precision}"), precision, model));
    }
    for spec in &args.arms {
        let parsed = spec.split_once('=').and_then(|(name, rest)| {
            let (precision, dir) = rest.split_once(':')?;
            Some((name, precision.parse::<Precision>().ok()?, dir))
        });
        let Some((name, precision, dir)) = parsed else {
            bail!("--arm {spec:?}: expected NAME=PRECISION:DIR, e.g. student=int8:target/distill/best");
        };
        arms.push(Arm::zhishi(
            name.to_string(),
            precision,
            &absolute(Path::new(dir))?,
        ));
    }
    for r in &args.reference {
        match r.as_str() {
            "pytorch" => arms.push(Arm::reference("pytorch-f32", "pytorch")),
            "onnx-int8" => arms.push(Arm::reference("onnx-int8", "onnx-int8")),
            "none" => {}
            other => bail!("--reference {other:?}: expected pytorch, onnx-int8 or none"),
        }
    }
    if !arms.iter().any(|a| a.name == "zhishi-f32") {
        bail!("--precision must include f32: agreement is measured against zhishi f32");
    }
    let mut names: Vec<&str> = arms.iter().map(|a| a.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        bail!("arm names must be distinct: {names:?}");
    }
    Ok((arms, skipped))
}

/// A `zhishi bench run-arm` child of one zhishi arm.
fn arm_command(
    exe: &Path,
    args: &RunBenchArgs,
    model: &Path,
    precision: Precision,
    threads: usize,
) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "run-arm"])
        .arg(&args.pipeline)
        .arg("--corpus")
        .arg(&args.corpus)
        .arg("--model")
        .arg(model)
        .args(["--precision", &precision.to_string()])
        .args(["--threads", &threads.to_string()])
        .env("RAYON_NUM_THREADS", threads.to_string());
    for o in &args.overrides {
        cmd.arg("--set").arg(o);
    }
    cmd
}

/// `path` made absolute against the working directory (children and the script get it).
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// The checkout's short commit (with `-dirty` when it has changes) when the run starts, if
/// git can tell.
fn commit() -> Value {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            json!(if dirty { format!("{hash}-dirty") } else { hash })
        }
        None => Value::Null,
    }
}
