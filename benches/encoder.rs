//! Encoder speed: forward passes of an m3e-small-shaped BERT (4 layers, H 512, 8 heads,
//! FFN 2048) on batch 8 x 128 tokens, plain and with a K-BERT visible matrix, in f32, bf16
//! (`Kernels::FastBf16`, where the CPU has AVX512-BF16) and int8 (`Kernels::FastInt8`, the
//! best int8 kernel of the CPU), on 1 and 2 threads, plus a breakdown
//! of one layer by kernel (the dense layers in both precisions).
//!
//! Weights are random (speed does not depend on their values), or the real checkpoint when
//! `ZHISHI_BENCH_MODEL=DIR` is set. Results go to stdout and to
//! `target/criterion/encoder.json` as one JSON object per measurement, comparable with
//! `shared/reference/bert_forward.py --bench` (median time per batch, tokens/s).
//!
//! Run: `cargo bench --bench encoder` (add `-- --quick` for fewer samples).
use std::io::Write;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use criterion::{criterion_group, criterion_main, Criterion};
use zhishi::model::kernels::{self, bf16::PackedBf16, Act, AttnShape};
use zhishi::model::{load_bert, BertConfig, BertModel, EncoderInput, Kernels};

const BATCH: usize = 8;
const SEQ: usize = 128;

fn m3e_small_shape() -> BertConfig {
    BertConfig {
        vocab_size: 21128,
        hidden_size: 512,
        num_hidden_layers: 4,
        num_attention_heads: 8,
        intermediate_size: 2048,
        ..BertConfig::default()
    }
}

fn model(kernels: Kernels) -> (BertModel, String) {
    if let Ok(dir) = std::env::var("ZHISHI_BENCH_MODEL") {
        let m = load_bert(dir.as_ref(), &Device::Cpu, DType::F32, kernels)
            .expect("ZHISHI_BENCH_MODEL must be a BERT directory");
        return (m, dir);
    }
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let cfg = BertConfig {
        kernels,
        ..m3e_small_shape()
    };
    let m = BertModel::load(vb, &cfg).expect("random model");
    (m, "m3e-small-shape (random weights)".into())
}

/// Deterministic pseudo-random ids in 1000..vocab (like bert_forward.py's bench).
fn input_ids(vocab: usize) -> Tensor {
    let mut x = 12345u64;
    let ids: Vec<u32> = (0..BATCH * SEQ)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1000 + ((x >> 33) as usize % (vocab - 1000)) as u32
        })
        .collect();
    Tensor::from_vec(ids, (BATCH, SEQ), &Device::Cpu).expect("ids")
}

/// A K-BERT-like visible matrix: every 8 tokens, 3 form a branch that sees itself and its anchor.
fn visible_matrix() -> Tensor {
    let mut m = vec![1u8; SEQ * SEQ];
    for block in (0..SEQ).step_by(8) {
        let (anchor, branch) = (block + 4, block + 5..block + 8);
        for i in 0..SEQ {
            for j in branch.clone() {
                let same = branch.contains(&i) || i == anchor;
                m[i * SEQ + j] = same as u8;
                m[j * SEQ + i] = same as u8;
            }
        }
    }
    let one: Vec<u8> = (0..BATCH).flat_map(|_| m.clone()).collect();
    Tensor::from_vec(one, (BATCH, SEQ, SEQ), &Device::Cpu).expect("visible")
}

/// Times `f` with criterion and returns the median seconds per call of its samples
/// (`f` runs its work inside the thread pool being measured).
fn measure(c: &mut Criterion, name: &str, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = Vec::new();
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                f();
                let d = t.elapsed();
                times.push(d.as_secs_f64());
                total += d;
            }
            total
        })
    });
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn bench(c: &mut Criterion) {
    let models = [Kernels::Fast, Kernels::FastBf16, Kernels::FastInt8].map(model);
    let cfg = models[0].0.config().clone();
    let ids = input_ids(cfg.vocab_size);
    let mask = Tensor::ones((BATCH, SEQ), DType::U32, &Device::Cpu).expect("mask");
    let vis = visible_matrix();
    let mut results = Vec::new();
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        for ((model, name), precision) in models.iter().zip(["f32", "bf16", "int8"]) {
            for kbert in [false, true] {
                let input = EncoderInput {
                    attention_mask: Some(&mask),
                    visible_matrix: kbert.then_some(&vis),
                    ..EncoderInput::new(&ids)
                };
                let label = if kbert { "kbert" } else { "plain" };
                let med = measure(
                    c,
                    &format!("encoder/{precision}/{label}/t{threads}"),
                    || {
                        pool.install(|| model.forward(&input).expect("forward"));
                    },
                );
                results.push(serde_json::json!({
                    "impl": "zhishi", "model": name, "precision": precision, "input": label,
                    "batch": BATCH, "seq": SEQ,
                    "threads": threads, "ms_per_batch_median": med * 1e3,
                    "tokens_per_s": (BATCH * SEQ) as f64 / med,
                }));
            }
        }
        results.push(layer_breakdown(c, &pool, threads, &cfg));
    }
    let mut out = std::fs::File::create("target/criterion/encoder.json").ok();
    for r in &results {
        println!("{r}");
        if let Some(f) = out.as_mut() {
            let _ = writeln!(f, "{r}");
        }
    }
}

/// Median milliseconds of each kernel of one layer at the benchmark's shape.
fn layer_breakdown(
    c: &mut Criterion,
    pool: &rayon::ThreadPool,
    threads: usize,
    cfg: &BertConfig,
) -> serde_json::Value {
    let (h, i, rows) = (cfg.hidden_size, cfg.intermediate_size, BATCH * SEQ);
    let fill =
        |n: usize| -> Vec<f32> { (0..n).map(|k| ((k % 97) as f32 - 48.0) / 480.0).collect() };
    let (x, inter) = (fill(rows * h), fill(rows * i));
    let (w_qkv, w_o, w_i, w_f) = (fill(3 * h * h), fill(h * h), fill(i * h), fill(h * i));
    let (b3, b1, bi) = (fill(3 * h), fill(h), fill(i));
    let qkv = fill(rows * 3 * h);
    let bias = vec![0f32; BATCH * SEQ];
    let shape = AttnShape {
        batch: BATCH,
        len: SEQ,
        heads: cfg.num_attention_heads,
        head_dim: cfg.head_dim(),
        bias_rows: 1,
    };
    let mut t = |name: &str, f: &mut (dyn FnMut() + Send)| {
        measure(c, &format!("layer/{name}/t{threads}"), || {
            pool.install(&mut *f)
        }) * 1e3
    };
    let mut ln = x.clone();
    let mut row = serde_json::json!({
        "impl": "zhishi", "breakdown": "one layer, ms", "threads": threads,
        "qkv_linear": t("qkv", &mut || { kernels::linear(&x, &w_qkv, &b3, None, Act::Identity); }),
        "attention": t("attention", &mut || { kernels::attention(&qkv, &bias, shape); }),
        "attn_out_linear_residual": t("attn_out", &mut || { kernels::linear(&x, &w_o, &b1, Some(&x), Act::Identity); }),
        "ffn_in_linear_gelu": t("ffn_in", &mut || { kernels::linear(&x, &w_i, &bi, None, Act::Gelu); }),
        "ffn_in_linear_only": t("ffn_in_nogelu", &mut || { kernels::linear(&x, &w_i, &bi, None, Act::Identity); }),
        "ffn_out_linear_residual": t("ffn_out", &mut || { kernels::linear(&inter, &w_f, &b1, Some(&x), Act::Identity); }),
        "layer_norm": t("layer_norm", &mut || { kernels::layer_norm_in_place(&mut ln, &b1, &b1, 1e-12); }),
    });
    let packed = |w: &[f32], out: usize| PackedBf16::new(w, out);
    if let (Some(p_qkv), Some(p_o), Some(p_i), Some(p_f)) = (
        packed(&w_qkv, 3 * h),
        packed(&w_o, h),
        packed(&w_i, i),
        packed(&w_f, h),
    ) {
        row["bf16"] = serde_json::json!({
            "qkv_linear": t("qkv_bf16", &mut || { kernels::linear_bf16(&x, &p_qkv, &b3, None, Act::Identity); }),
            "attn_out_linear_residual": t("attn_out_bf16", &mut || { kernels::linear_bf16(&x, &p_o, &b1, Some(&x), Act::Identity); }),
            "ffn_in_linear_gelu": t("ffn_in_bf16", &mut || { kernels::linear_bf16(&x, &p_i, &bi, None, Act::Gelu); }),
            "ffn_out_linear_residual": t("ffn_out_bf16", &mut || { kernels::linear_bf16(&inter, &p_f, &b1, Some(&x), Act::Identity); }),
        });
    }
    row
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
