//! `zhishi bench encoder`: forward-pass speed of the encoder against PyTorch `transformers`,
//! side by side in one invocation.
//!
//! Each round runs, for every thread count, a fresh `zhishi bench encoder-run` child per
//! `--precision` (plain and K-BERT input at the same shape) and then `shared/reference/bert_forward.py --bench` on the
//! same model, batch and length. Rounds interleave the two implementations so machine noise
//! hits both alike; the result is the median of the rounds' medians per configuration, with
//! the zhishi/PyTorch ratio. Prints one JSON object.
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clap::Args;
use serde_json::{json, Value};
use zhishi::model::kernels::{self, int8::Variant};
use zhishi::model::{load_bert, BertConfig, BertModel, EncoderInput, Kernels, Precision};

/// Arguments of `zhishi bench encoder`.
#[derive(Args, Debug)]
pub struct EncoderBenchArgs {
    /// Hugging Face BERT directory (e.g. m3e-small), or a model id `hf:ORG/NAME[@REVISION]`;
    /// PyTorch needs it too.
    #[arg(long)]
    pub model: PathBuf,
    /// Thread counts to time.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Sequences per batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Timed forward passes per measurement (after 3 warm-up passes).
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    /// zhishi precisions to time (`f32`, `bf16`, `int8`), each against the same PyTorch run.
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    pub precision: Vec<Precision>,
    /// Interleaved rounds of every measurement; the median round counts.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Python of the reference venv (`shared/reference/setup.sh`).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// The reference script.
    #[arg(long, default_value = "../shared/reference/bert_forward.py")]
    pub script: PathBuf,
    /// PyTorch attention implementation (`sdpa` or `eager`).
    #[arg(long, default_value = "sdpa")]
    pub attn: String,
    /// Skip PyTorch.
    #[arg(long)]
    pub no_python: bool,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Arguments of the hidden child `zhishi bench encoder-run` (one thread count).
#[derive(Args, Debug)]
pub struct EncoderRunArgs {
    /// BERT directory; random weights of m3e-small's shape when absent.
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long)]
    threads: usize,
    #[arg(long)]
    batch: usize,
    #[arg(long)]
    seq: usize,
    #[arg(long)]
    iters: usize,
    #[arg(long, default_value = "f32")]
    precision: Precision,
}

/// One measured configuration: implementation, precision, input kind, threads.
type Key = (String, String, String, usize);

/// Runs the side-by-side benchmark and returns its JSON.
pub fn bench_encoder(args: &EncoderBenchArgs) -> anyhow::Result<Value> {
    let mut plan = zhishi::files::Plan::new();
    plan.read("--model", &args.model);
    if let Some(output) = &args.output {
        plan.write("--output", output);
    }
    plan.check()?;
    if args.threads.is_empty() || args.precision.is_empty() || args.rounds == 0 || args.iters == 0 {
        bail!("--threads, --precision, --rounds and --iters must be non-empty / positive");
    }
    let exe = std::env::current_exe().context("locating the zhishi binary")?;
    // rows[(impl, precision, input, threads)] = per-round medians in ms.
    let mut rows: Vec<(Key, Vec<f64>)> = Vec::new();
    let mut push = |key: Key, ms: f64| match rows.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => v.push(ms),
        None => rows.push((key, vec![ms])),
    };
    let mut torch_version = Value::Null;
    let mut kernel_of = std::collections::BTreeMap::<String, Value>::new();
    for round in 0..args.rounds {
        for &t in &args.threads {
            for &precision in &args.precision {
                let out = child_json(
                    Command::new(&exe)
                        .args(["bench", "encoder-run", "--model"])
                        .arg(&args.model)
                        .args([
                            "--threads",
                            &t.to_string(),
                            "--batch",
                            &args.batch.to_string(),
                        ])
                        .args([
                            "--seq",
                            &args.seq.to_string(),
                            "--iters",
                            &args.iters.to_string(),
                            "--precision",
                            &precision.to_string(),
                        ])
                        .env("RAYON_NUM_THREADS", t.to_string()),
                )?;
                kernel_of.insert(precision.to_string(), out["kernel"].clone());
                for input in ["plain", "kbert"] {
                    let ms = out[input]["ms_per_batch_median"]
                        .as_f64()
                        .unwrap_or(f64::NAN);
                    push(
                        ("zhishi".into(), precision.to_string(), input.into(), t),
                        ms,
                    );
                }
            }
            if !args.no_python {
                let py = child_json(
                    Command::new(&args.python)
                        .arg(&args.script)
                        .arg("--model")
                        .arg(&args.model)
                        .args(["--bench", "--batch-size", &args.batch.to_string()])
                        .args(["--seq-len", &args.seq.to_string()])
                        .args(["--iters", &args.iters.to_string()])
                        .args(["--threads", &t.to_string(), "--attn", &args.attn]),
                )
                .with_context(|| format!("running {} (--no-python skips it)", args.python))?;
                torch_version = py["torch"].clone();
                let ms = py["ms_per_batch_median"].as_f64().unwrap_or(f64::NAN);
                push(("pytorch".into(), "f32".into(), "plain".into(), t), ms);
            }
            eprintln!("round {}/{} threads {t} done", round + 1, args.rounds);
        }
    }
    let tokens = (args.batch * args.seq) as f64;
    let median_of =
        |key: &Key| -> Option<f64> { rows.iter().find(|(k, _)| k == key).map(|(_, v)| median(v)) };
    let mut results = Vec::new();
    for ((imp, precision, input, t), rounds) in &rows {
        let ms = median(rounds);
        let mut row = json!({
            "impl": imp, "precision": precision, "input": input, "threads": t,
            "ms_per_batch_median": ms, "tokens_per_s": tokens / ms * 1e3, "rounds_ms": rounds,
        });
        if imp == "zhishi" {
            row["kernel"] = kernel_of.get(precision).cloned().unwrap_or(Value::Null);
            let torch_key = ("pytorch".into(), "f32".into(), "plain".into(), *t);
            if let Some(torch) = median_of(&torch_key) {
                row["speedup_vs_pytorch_plain"] = json!(torch / ms);
            }
            if input == "kbert" {
                let plain_key = ("zhishi".into(), precision.clone(), "plain".into(), *t);
                if let Some(plain) = median_of(&plain_key) {
                    row["cost_vs_plain"] = json!(ms / plain);
                }
            }
        }
        results.push(row);
    }
    Ok(json!({
        "bench": "encoder", "model": args.model, "batch": args.batch, "seq": args.seq,
        "iters": args.iters, "rounds": args.rounds, "torch": torch_version,
        "pytorch_attn": args.attn, "cpu": cpu_report(), "results": results,
    }))
}

/// The CPU's model name, the features the encoder's kernels look for, and the kernel each
/// precision runs on it.
pub fn cpu_report() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown", str::trim)
        .to_string();
    let features = json!({
        "avx2": detect("avx2"), "fma": detect("fma"), "avx512f": detect("avx512f"),
        "avx512bw": detect("avx512bw"), "avx512vnni": detect("avx512vnni"),
        "avxvnni": detect("avxvnni"), "avx512bf16": detect("avx512bf16"),
    });
    let bf16 = if kernels::bf16::available() {
        "avx512bf16"
    } else {
        "f32 (no AVX512-BF16)"
    };
    json!({
        "model": model,
        "threads_available": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "features": features,
        "kernels": {"f32": "gemm crate", "bf16": bf16, "int8": Variant::best().name()},
    })
}

/// Whether the CPU has an x86 feature (false elsewhere).
fn detect(feature: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        match feature {
            "avx2" => has!("avx2"),
            "fma" => has!("fma"),
            "avx512f" => has!("avx512f"),
            "avx512bw" => has!("avx512bw"),
            "avx512vnni" => has!("avx512vnni"),
            "avxvnni" => has!("avxvnni"),
            "avx512bf16" => has!("avx512bf16"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = feature;
        false
    }
}

/// The hidden child: times plain and K-BERT forward passes on this process's thread count.
pub fn run_child(args: &EncoderRunArgs) -> anyhow::Result<Value> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("building the thread pool")?;
    let kernels = Kernels::inference(args.precision);
    let model = match &args.model {
        Some(dir) => load_bert(dir, &Device::Cpu, DType::F32, kernels)
            .with_context(|| format!("loading {}", dir.display()))?,
        None => {
            let cfg = BertConfig {
                vocab_size: 21128,
                hidden_size: 512,
                num_hidden_layers: 4,
                num_attention_heads: 8,
                intermediate_size: 2048,
                kernels,
                ..BertConfig::default()
            };
            BertModel::load(
                VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu),
                &cfg,
            )?
        }
    };
    let (b, l) = (args.batch, args.seq);
    let ids = pseudo_random_ids(b * l, model.config().vocab_size);
    let ids = Tensor::from_vec(ids, (b, l), &Device::Cpu)?;
    let mask = Tensor::ones((b, l), DType::U32, &Device::Cpu)?;
    let vis = kbert_like_visible(b, l)?;
    let kernel = match args.precision {
        Precision::Int8 => Variant::best().name(),
        Precision::Bf16 if kernels::bf16::available() => "avx512bf16",
        _ => "f32",
    };
    let mut out = json!({
        "threads": args.threads, "precision": args.precision.to_string(), "kernel": kernel,
    });
    for (name, visible) in [("plain", None), ("kbert", Some(&vis))] {
        let input = EncoderInput {
            attention_mask: Some(&mask),
            visible_matrix: visible,
            ..EncoderInput::new(&ids)
        };
        let mut times = Vec::with_capacity(args.iters);
        for i in 0..args.iters + 3 {
            let start = Instant::now();
            pool.install(|| model.forward(&input))?;
            if i >= 3 {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        out[name] = json!({"ms_per_batch_median": median(&times)});
    }
    Ok(out)
}

/// Runs a child that prints one JSON object as its last stdout line.
pub(super) fn child_json(cmd: &mut Command) -> anyhow::Result<Value> {
    let out = cmd.output().context("starting the child process")?;
    if !out.status.success() {
        bail!(
            "child failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("child printed {last:?}"))
}

/// The median (the upper of the two middle values for an even count; NaN when empty).
pub(super) fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Deterministic ids in `1000..vocab`, like the reference script's.
fn pseudo_random_ids(n: usize, vocab: usize) -> Vec<u32> {
    let mut x = 12345u64;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1000 + ((x >> 33) as usize % vocab.saturating_sub(1000).max(1)) as u32
        })
        .collect()
}

/// A K-BERT-like visible matrix: in every block of 8 tokens, 3 form a branch that sees only
/// itself and its anchor (as `benches/encoder.rs` builds it).
fn kbert_like_visible(b: usize, l: usize) -> candle_core::Result<Tensor> {
    let mut m = vec![1u8; l * l];
    for block in (0..l).step_by(8) {
        let (anchor, branch) = (block + 4, (block + 5).min(l)..(block + 8).min(l));
        for i in 0..l {
            for j in branch.clone() {
                let same = branch.contains(&i) || i == anchor;
                m[i * l + j] = u8::from(same);
                m[j * l + i] = u8::from(same);
            }
        }
    }
    let all: Vec<u8> = (0..b).flat_map(|_| m.iter().copied()).collect();
    Tensor::from_vec(all, (b, l, l), &Device::Cpu)
}
