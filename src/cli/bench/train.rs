//! `zhishi bench train CONFIG --threads 1,2 --steps N`: where a training step's time goes and
//! how much of the cores' arithmetic it uses.
//!
//! Each thread count is a `zhishi train` child process (the compute threads are fixed per
//! process) with `train.threads`, `train.max_steps` and a scratch `train.output_dir` set; its
//! report gives tokens/s and the seconds of each phase (`TrainReport::phases`). The encoder's
//! multiply-adds per step are counted from its `config.json` and the batches' padded tokens,
//! and set against an estimated peak of the f32 kernels on this CPU: vector lanes of the widest
//! instruction set the GEMM uses here (AVX-512 or AVX2) x 2 FMA pipes x the clock (measured on
//! x86-64, else read from the system), per thread. Every assumption is written into the JSON beside the numbers.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

/// Arguments of `zhishi bench train`.
#[derive(Args, Debug)]
pub struct TrainBenchArgs {
    /// The training TOML (any task; `zhishi train` reads it).
    pub config: PathBuf,
    /// Thread counts to run, one child process each.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Optimiser steps per run (after one evaluation at the end, which is timed apart).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub steps: u64,
    /// Overrides passed on to each run (`--set data.max_train=1000`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Scratch directory for the runs' output directories (replaced).
    #[arg(long, default_value = "target/bench-train")]
    pub work: PathBuf,
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// The phases of `TrainReport::phases`, in the order tables show them.
const PHASES: [&str; 7] = [
    "batching",
    "forward",
    "backward",
    "accumulate",
    "optimizer",
    "evaluation",
    "saving",
];

/// Runs the benchmark: one `zhishi train` child per thread count.
pub fn bench_train(args: &TrainBenchArgs) -> Result<Value> {
    if args.threads.is_empty() || args.threads.iter().any(|&t| t == 0 || t > 1024) {
        bail!("--threads: give thread counts from 1 to 1024, e.g. 1,2");
    }
    if !args.config.is_file() {
        bail!("{}: no such training file", args.config.display());
    }
    let mut plan = zhishi::files::Plan::new();
    plan.read("CONFIG", &args.config)
        .write("--work", &args.work);
    if let Some(output) = &args.output {
        plan.write("--output", output);
    }
    plan.check()?;
    zhishi::files::prepare_scratch(&args.work)?;
    let _lock = zhishi::files::DirLock::acquire(&args.work)?;
    let peak = PeakEstimate::read();
    let mut runs = Vec::new();
    for &threads in &args.threads {
        let out_dir = std::path::absolute(args.work.join(format!("t{threads}")))?;
        let report = train_child(args, threads, &out_dir)?;
        runs.push(run_row(&report, threads, &out_dir, &peak)?);
    }
    let scaling = match (runs.first(), runs.last()) {
        (Some(a), Some(b)) if runs.len() > 1 => {
            let rate = |r: &Value| r["tokens_per_s"].as_f64().unwrap_or(0.0);
            json!(rate(b) / rate(a).max(1e-9))
        }
        _ => Value::Null,
    };
    Ok(json!({
        "bench": "train",
        "config": args.config.display().to_string(),
        "steps": args.steps,
        "set": args.set,
        "cpu": super::encoder::cpu_report(),
        "peak": peak.to_json(),
        "runs": runs,
        "scaling_last_over_first": scaling,
    }))
}

/// Runs `zhishi train` on `threads` threads into `out_dir` and returns its report.
fn train_child(args: &TrainBenchArgs, threads: usize, out_dir: &Path) -> Result<Value> {
    let exe = std::env::current_exe().context("finding the zhishi binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("train").arg(&args.config);
    for set in &args.set {
        cmd.args(["--set", set]);
    }
    cmd.args(["--set", &format!("train.threads={threads}")])
        .args(["--set", &format!("train.max_steps={}", args.steps)])
        .args(["--set", &format!("train.eval_every={}", args.steps + 1)])
        .args([
            "--set",
            &format!("train.output_dir={:?}", out_dir.display().to_string()),
        ])
        .args(["--set", "train.progress=false"]);
    let out = cmd.output().context("running zhishi train")?;
    if !out.status.success() {
        bail!(
            "zhishi train on {threads} thread(s) failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("zhishi train printed no JSON report")?;
    serde_json::from_str(line).context("reading zhishi train's JSON report")
}

/// One thread count's row: throughput, phases, multiply-adds against the peak.
fn run_row(report: &Value, threads: usize, out_dir: &Path, peak: &PeakEstimate) -> Result<Value> {
    // `zhishi train` prints the loop's report at the top level of its JSON.
    let train = report;
    let phases = &train["phases"];
    let seconds = |k: &str| phases[k].as_f64().unwrap_or(0.0);
    let padded = train["padded_tokens"].as_f64().unwrap_or(0.0);
    let shape = EncoderShape::read(&out_dir.join("best/config.json"))?;
    let attention_len = report["settings"]["data"]["max_len"]
        .as_f64()
        .unwrap_or(128.0);
    // Forward multiply-adds per padded token; training counts forward + backward as 3x.
    let forward_per_token = shape.forward_macs_per_token(attention_len);
    let train_macs = 3.0 * forward_per_token * padded;
    let compute = seconds("forward") + seconds("backward");
    let steps: f64 = PHASES[..5].iter().map(|k| seconds(k)).sum();
    let achieved = train_macs / compute.max(1e-9);
    let peak_macs = peak.macs_per_s_per_thread * threads as f64;
    let table: serde_json::Map<String, Value> = PHASES
        .iter()
        .map(|k| {
            (
                k.to_string(),
                json!({"seconds": seconds(k), "share_of_steps": if k_is_step(k) { json!(seconds(k) / steps.max(1e-9)) } else { Value::Null }}),
            )
        })
        .collect();
    Ok(json!({
        "threads": threads,
        "steps": train["steps"],
        "tokens": train["tokens"],
        "padded_tokens": train["padded_tokens"],
        "train_seconds": train["train_seconds"],
        "tokens_per_s": train["tokens_per_s"],
        "padded_tokens_per_s": train["padded_tokens_per_s"],
        "phases": table,
        "encoder": shape.to_json(),
        "attention_length_assumed": attention_len,
        "train_macs": train_macs,
        "macs_per_s_forward_backward": achieved,
        "peak_macs_per_s_estimate": peak_macs,
        "share_of_peak_forward_backward": achieved / peak_macs.max(1e-9),
        "share_of_peak_steps": train_macs / steps.max(1e-9) / peak_macs.max(1e-9),
    }))
}

/// Whether a phase is part of the optimiser steps (not evaluation or saving).
fn k_is_step(phase: &str) -> bool {
    !matches!(phase, "evaluation" | "saving")
}

/// The sizes of a BERT-family encoder that set its multiply-adds.
struct EncoderShape {
    layers: f64,
    hidden: f64,
    intermediate: f64,
}

impl EncoderShape {
    /// Reads `num_hidden_layers`, `hidden_size`, `intermediate_size` from a `config.json`.
    fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: the trained model's encoder config", path.display()))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        let field = |k: &str| {
            v[k].as_f64()
                .filter(|x| *x > 0.0)
                .with_context(|| format!("{}: no positive `{k}`", path.display()))
        };
        Ok(Self {
            layers: field("num_hidden_layers")?,
            hidden: field("hidden_size")?,
            intermediate: field("intermediate_size")?,
        })
    }

    /// Multiply-adds of one forward pass per token: per layer the Q, K, V and output
    /// projections (4 h^2), the feed-forward pair (2 h i) and attention's scores and weighted
    /// sum over `attention_len` positions (2 h L).
    fn forward_macs_per_token(&self, attention_len: f64) -> f64 {
        let h = self.hidden;
        self.layers * (4.0 * h * h + 2.0 * h * self.intermediate + 2.0 * h * attention_len)
    }

    fn to_json(&self) -> Value {
        json!({"layers": self.layers, "hidden": self.hidden, "intermediate": self.intermediate})
    }
}

/// An estimate of one thread's peak f32 multiply-adds per second.
struct PeakEstimate {
    lanes: f64,
    fma_pipes: f64,
    ghz: f64,
    clock_source: String,
    tier: &'static str,
    macs_per_s_per_thread: f64,
}

impl PeakEstimate {
    /// Lanes of the widest vectors the f32 GEMM uses on this CPU (it is built with AVX-512
    /// kernels and picks them at run time), two FMA pipes, the clock the system reports.
    fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags: Vec<&str> = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .and_then(|l| l.split(':').nth(1))
            .map(|f| f.split_whitespace().collect())
            .unwrap_or_default();
        let has = |f: &str| flags.contains(&f);
        let amd = cpuinfo.contains("AuthenticAMD");
        let (tier, lanes) = if has("avx512f") {
            // Zen 4 runs a 512-bit FMA as two 256-bit halves; Zen 5 (with vp2intersect) and
            // Intel have full-width pipes.
            if amd && !has("avx512_vp2intersect") {
                ("avx512f (256-bit datapaths)", 8.0)
            } else {
                ("avx512f", 16.0)
            }
        } else if has("avx2") && has("fma") {
            ("avx2+fma", 8.0)
        } else {
            ("sse (no FMA)", 4.0)
        };
        let (ghz, clock_source) = clock_ghz(&cpuinfo);
        let fma_pipes = 2.0;
        Self {
            lanes,
            fma_pipes,
            ghz,
            clock_source,
            tier,
            macs_per_s_per_thread: lanes * fma_pipes * ghz * 1e9,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "estimate": true,
            "tier": self.tier,
            "f32_lanes": self.lanes,
            "fma_pipes_assumed": self.fma_pipes,
            "ghz": self.ghz,
            "clock_source": self.clock_source,
            "macs_per_s_per_thread": self.macs_per_s_per_thread,
            "assumptions": "peak = lanes x FMA pipes x clock per thread; training multiply-adds = 3 x the encoder's forward (forward + two backward products) over padded tokens, attention over data.max_len positions; embeddings, heads, softmax and layer norms not counted",
        })
    }
}

/// The clock in GHz: measured where it can be (x86-64), else the highest the kernel's cpufreq
/// reports, else `cpu MHz` of `/proc/cpuinfo` (a virtual machine's nominal clock, below what a
/// boosting core runs at), else 2.0 (said so).
fn clock_ghz(cpuinfo: &str) -> (f64, String) {
    if let Some(ghz) = measured_ghz() {
        return (ghz, MEASURED_CLOCK.to_string());
    }
    let max = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq";
    if let Some(khz) = std::fs::read_to_string(max)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|k| *k > 0.0)
    {
        return (khz / 1e6, max.to_string());
    }
    if let Some(mhz) = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|m| m.trim().parse::<f64>().ok())
        .filter(|m| *m > 0.0)
    {
        return (mhz / 1e3, "/proc/cpuinfo cpu MHz".to_string());
    }
    (2.0, "unknown: 2.0 GHz assumed".to_string())
}

/// How [`measured_ghz`] reads the clock, as the JSON states it.
const MEASURED_CLOCK: &str =
    "measured: a chain of dependent integer adds (one cycle each), the fastest of 50 timings";

/// The clock the core runs at now, in GHz: 16 dependent `add`s per round take 16 cycles on
/// every x86-64 core, so rounds per second give cycles per second.
/// Timings of about 1 ms each, the fastest of 50, so timings the scheduler interrupted (a
/// loaded machine) do not count.
#[cfg(target_arch = "x86_64")]
fn measured_ghz() -> Option<f64> {
    const ROUNDS: u64 = 200_000;
    const ADDS_PER_ROUND: u64 = 16;
    const TIMINGS: usize = 50;
    let mut fastest = f64::INFINITY;
    for _ in 0..TIMINGS {
        let mut x: u64 = 0;
        let start = std::time::Instant::now();
        for _ in 0..ROUNDS {
            // SAFETY: arithmetic on one register; no memory, no stack.
            unsafe {
                std::arch::asm!(
                    "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                    "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                    "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                    "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                    x = inout(reg) x,
                    options(nomem, nostack),
                );
            }
        }
        fastest = fastest.min(start.elapsed().as_secs_f64());
        std::hint::black_box(x);
    }
    let ghz = (ROUNDS * ADDS_PER_ROUND) as f64 / fastest / 1e9;
    (ghz.is_finite() && ghz > 0.0).then_some(ghz)
}

/// No portable way to count cycles elsewhere: the system's figures are used.
#[cfg(not(target_arch = "x86_64"))]
fn measured_ghz() -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_macs_count_projections_feed_forward_and_attention() {
        let shape = EncoderShape {
            layers: 4.0,
            hidden: 512.0,
            intermediate: 2048.0,
        };
        // 4 x (4 * 512^2 + 2 * 512 * 2048 + 2 * 512 * 128) = 4 x (1048576 + 2097152 + 131072)
        assert_eq!(shape.forward_macs_per_token(128.0), 13_107_200.0);
    }

    #[test]
    fn the_peak_estimate_states_its_tier_and_clock() {
        let peak = PeakEstimate::read();
        assert!(peak.macs_per_s_per_thread > 0.0);
        let v = peak.to_json();
        assert_eq!(v["estimate"], true);
        assert!(v["tier"].as_str().is_some_and(|t| !t.is_empty()));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(v["clock_source"], MEASURED_CLOCK);
        }
    }
}
