//! `zhishi encode`: runs the encoder over JSONL lines of text (`{"text": ...}`, tokenised with
//! the model's own tokenizer; `--pooling mean|cls` gives one sentence vector, `--normalize`
//! makes it unit length) or over batches of token ids (for interoperability and parity checks
//! against PyTorch).
//!
//! Each input line holds one batch: `input_ids` `[B][L]` and optionally `token_type_ids`,
//! `attention_mask`, `position_ids` (`[B][L]`) and `visible_matrix` (`[B][L][L]` of 0/1).
//! Each output line is `{"last_hidden_state": [B][L][H]}`. For an ERNIE-THU model (a config
//! with `layer_types`) lines also carry `entity_ids` `[B][L]` (rows of the
//! `--entity-embeddings` table, `-1` = none) and `entity_mask` `[B][L]`, and the output adds
//! `"entity_hidden_state": [B][L][100]`.
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use zhishi::model::{
    self, BertConfig, BertModel, EncoderInput, ErnieInput, ErnieModel, Kernels, Precision,
};

/// Arguments of `zhishi encode`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Hugging Face BERT directory (config.json + model.safetensors or pytorch_model.bin).
    #[arg(long)]
    model: PathBuf,
    /// ERNIE entity table: a safetensors file holding a single 2-D tensor.
    #[arg(long)]
    entity_embeddings: Option<PathBuf>,
    /// Device: `cpu` or `cuda:N` (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Arithmetic of the dense layers: `f32`; `bf16` (faster on CPUs with AVX512-BF16,
    /// up to ~3e-2 absolute difference in the hidden states; f32 elsewhere); or `int8`
    /// (dynamic quantisation on any CPU, fastest with AVX512-VNNI/AVX-VNNI/AVX2; larger
    /// differences, see docs/encode.md).
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// For text lines: `none` (every token's hidden state), `mean` (the average over the
    /// tokens, `[CLS]`/`[SEP]` included, as sentence-embedding models such as m3e do) or `cls`.
    #[arg(long, value_enum, default_value = "none")]
    pooling: Pooling,
    /// For text lines with pooling: scale each vector to unit length (cosine = dot product).
    #[arg(long)]
    normalize: bool,
}

/// How a text line's hidden states become the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Pooling {
    /// `{"tokens", "last_hidden_state": [L][H]}`.
    None,
    /// `{"embedding": [H]}`: the mean over the tokens.
    Mean,
    /// `{"embedding": [H]}`: the `[CLS]` state.
    Cls,
}

/// A text line: `{"text": "..."}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextLine {
    text: String,
}

/// One input line: a batch of token ids and optional side inputs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    input_ids: Vec<Vec<i64>>,
    token_type_ids: Option<Vec<Vec<i64>>>,
    attention_mask: Option<Vec<Vec<i64>>>,
    position_ids: Option<Vec<Vec<i64>>>,
    visible_matrix: Option<Vec<Vec<Vec<i64>>>>,
    entity_ids: Option<Vec<Vec<i64>>>,
    entity_mask: Option<Vec<Vec<i64>>>,
}

/// The loaded encoder: plain BERT, or ERNIE-THU with its entity table.
enum Encoder {
    Bert(BertModel),
    Ernie(ErnieModel, Tensor),
}

/// Runs `zhishi encode`: stdin JSONL -> stdout JSONL.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let device = model::parse_device(&args.device)?;
    let ctx = || format!("loading model {}", args.model.display());
    let kernels = Kernels::inference(args.precision);
    let cfg = model::load::read_config(&args.model).with_context(ctx)?;
    let encoder = if cfg.is_ernie() {
        let Some(table) = &args.entity_embeddings else {
            bail!(
                "{} is an ERNIE model: give --entity-embeddings",
                args.model.display()
            );
        };
        let (ernie, fresh) =
            model::load_ernie(&args.model, &device, DType::F32, kernels).with_context(ctx)?;
        if fresh > 0 {
            tracing::warn!(
                "{fresh} ERNIE aggregator tensors missing from the checkpoint: initialised fresh"
            );
        }
        let table = model::load_entity_table(table)?.to_device(&device)?;
        Encoder::Ernie(ernie, table)
    } else {
        if args.entity_embeddings.is_some() {
            bail!("--entity-embeddings needs an ERNIE model (layer_types in its config)");
        }
        Encoder::Bert(
            model::load_bert(&args.model, &device, DType::F32, kernels).with_context(ctx)?,
        )
    };
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut tokenizer: Option<model::BertTokenizer> = None;
    for (i, line) in stdin.lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("stdin line {}", i + 1);
        let value: serde_json::Value = serde_json::from_str(&line).with_context(at)?;
        let record = if value.get("text").is_some() {
            let text: TextLine = serde_json::from_value(value).with_context(at)?;
            if tokenizer.is_none() {
                tokenizer = Some(
                    model::BertTokenizer::for_model(&args.model, &cfg).with_context(|| {
                        format!("text input needs the tokenizer of {}", args.model.display())
                    })?,
                );
            }
            let tokenizer = tokenizer.as_ref().context("tokenizer")?;
            encode_text(&encoder, tokenizer, &text.text, &args, &device).with_context(at)?
        } else {
            let batch: Batch = serde_json::from_value(value).with_context(at)?;
            encode_batch(&encoder, &batch, &device).with_context(at)?
        };
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Tokenises one text (cut to the model's longest input, keeping the final `[SEP]`), runs a
/// plain BERT over it and pools as asked.
fn encode_text(
    encoder: &Encoder,
    tokenizer: &model::BertTokenizer,
    text: &str,
    args: &Args,
    device: &Device,
) -> anyhow::Result<serde_json::Value> {
    let Encoder::Bert(bert) = encoder else {
        bail!("text input needs a plain BERT model (an ERNIE model also needs entity ids)");
    };
    let mut encoded = tokenizer.encode(text)?;
    let max = bert.config().max_position_embeddings.max(2);
    if encoded.ids.len() > max {
        let sep = encoded.ids[encoded.ids.len() - 1];
        let sep_token = encoded.tokens[encoded.tokens.len() - 1].clone();
        encoded.ids.truncate(max - 1);
        encoded.tokens.truncate(max - 1);
        encoded.ids.push(sep);
        encoded.tokens.push(sep_token);
    }
    let n = encoded.ids.len();
    let ids = Tensor::from_vec(encoded.ids, (1, n), device)?;
    let hidden = bert.forward(&EncoderInput::new(&ids))?.squeeze(0)?; // [L, H]
    let pooled = match args.pooling {
        Pooling::None => {
            return Ok(serde_json::json!({
                "tokens": encoded.tokens,
                "last_hidden_state": hidden.to_vec2::<f32>()?,
            }))
        }
        Pooling::Mean => hidden.mean(0)?,
        Pooling::Cls => hidden.get(0)?,
    };
    let mut vector = pooled.to_vec1::<f32>()?;
    if args.normalize {
        let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        vector.iter_mut().for_each(|v| *v /= norm);
    }
    Ok(serde_json::json!({ "embedding": vector }))
}

/// Validates one batch against the model's config and runs it; returns the output record.
fn encode_batch(
    encoder: &Encoder,
    batch: &Batch,
    device: &Device,
) -> anyhow::Result<serde_json::Value> {
    let cfg: &BertConfig = match encoder {
        Encoder::Bert(m) => m.config(),
        Encoder::Ernie(m, _) => m.config(),
    };
    let b = batch.input_ids.len();
    let l = batch.input_ids.first().map_or(0, Vec::len);
    if b == 0 || l == 0 {
        bail!("input_ids must be a non-empty [B][L] array");
    }
    let ids = ids_tensor(
        "input_ids",
        &batch.input_ids,
        (b, l),
        cfg.vocab_size,
        device,
    )?;
    let opt = |name, rows: &Option<Vec<Vec<i64>>>, limit| {
        rows.as_ref()
            .map(|r| ids_tensor(name, r, (b, l), limit, device))
            .transpose()
    };
    let token_type_ids = opt("token_type_ids", &batch.token_type_ids, cfg.type_vocab_size)?;
    let position_ids = opt(
        "position_ids",
        &batch.position_ids,
        cfg.max_position_embeddings,
    )?;
    let attention_mask = opt("attention_mask", &batch.attention_mask, 2)?;
    let visible_matrix = match &batch.visible_matrix {
        None => None,
        Some(v) => {
            if v.len() != b {
                bail!("visible_matrix has {} examples, input_ids has {b}", v.len());
            }
            let mut flat = Vec::with_capacity(b * l * l);
            for (e, m) in v.iter().enumerate() {
                let t = ids_tensor("visible_matrix", m, (l, l), 2, device)
                    .with_context(|| format!("example {e}"))?;
                flat.push(t);
            }
            Some(Tensor::stack(&flat, 0)?)
        }
    };
    let input = EncoderInput {
        input_ids: &ids,
        token_type_ids: token_type_ids.as_ref(),
        position_ids: position_ids.as_ref(),
        attention_mask: attention_mask.as_ref(),
        visible_matrix: visible_matrix.as_ref(),
    };
    match encoder {
        Encoder::Bert(bert) => {
            if batch.entity_ids.is_some() || batch.entity_mask.is_some() {
                bail!("entity_ids/entity_mask need an ERNIE model");
            }
            let h = bert.forward(&input)?.to_vec3::<f32>()?;
            Ok(serde_json::json!({ "last_hidden_state": h }))
        }
        Encoder::Ernie(ernie, table) => {
            let (Some(ids), Some(mask)) = (&batch.entity_ids, &batch.entity_mask) else {
                bail!("an ERNIE model needs entity_ids and entity_mask");
            };
            let entities = model::gather_entities(table, ids)?;
            if entities.dims()[..2] != [b, l] {
                bail!("entity_ids must be [{b}][{l}] like input_ids");
            }
            let entity_mask = ids_tensor("entity_mask", mask, (b, l), 2, device)?;
            let (h, e) = ernie.forward(&ErnieInput {
                tokens: input,
                entities: &entities,
                entity_mask: &entity_mask,
            })?;
            Ok(serde_json::json!({
                "last_hidden_state": h.to_vec3::<f32>()?,
                "entity_hidden_state": e.to_vec3::<f32>()?,
            }))
        }
    }
}

/// A `[rows][cols]` array of integers in `0..limit` as a u32 tensor, or an error naming the
/// field and the offending entry.
fn ids_tensor(
    name: &str,
    rows: &[Vec<i64>],
    (r, c): (usize, usize),
    limit: usize,
    device: &Device,
) -> anyhow::Result<Tensor> {
    if rows.len() != r {
        bail!("{name} has {} rows, expected {r}", rows.len());
    }
    let mut flat = Vec::with_capacity(r * c);
    for (i, row) in rows.iter().enumerate() {
        if row.len() != c {
            bail!("{name}[{i}] has {} entries, expected {c}", row.len());
        }
        for (j, &v) in row.iter().enumerate() {
            if v < 0 || v as u64 >= limit as u64 {
                bail!("{name}[{i}][{j}] = {v} is outside 0..{limit}");
            }
            flat.push(v as u32);
        }
    }
    Ok(Tensor::from_vec(flat, (r, c), device)?)
}
