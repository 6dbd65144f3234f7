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
//!
//! Bounded by construction: a line is read only up to the bytes a batch of
//! `--max-batch-tokens` ids can take, rows must fit the model's positions, and a batch of more
//! ids than `--max-batch-tokens` is refused before any tensor is built; the encoder then runs
//! a few rows at a time ([`FORWARD_TOKENS`]), so its attention scores stay small whatever the
//! batch. Every refusal names the stdin line.
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use zhishi::model::{
    self, BertConfig, BertModel, EncoderInput, ErnieInput, ErnieModel, Kernels, Precision,
};

/// Arguments of `zhishi encode`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Hugging Face BERT directory (config.json + model.safetensors or pytorch_model.bin), or
    /// a model id `hf:ORG/NAME[@REVISION]` resolved through the Hugging Face cache.
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
    /// Most token ids in one batch line (rows x row length, 1 to 1,048,576). A larger batch
    /// is refused, and a line longer than such a batch can take is refused before it is
    /// parsed; memory grows linearly with this limit.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_BATCH_TOKENS, value_parser = super::bounds::count_in::<1, { 1 << 20 }>)]
    max_batch_tokens: usize,
}

/// The default `--max-batch-tokens`: 32 rows of 512 tokens.
const DEFAULT_MAX_BATCH_TOKENS: usize = 16_384;

/// Tokens the encoder runs at once: a batch is cut into chunks of whole rows of about this
/// many tokens (at least one row), so the attention scores of one layer, rows x heads x L x L
/// floats, stay near 50 MB for a 12-head model at L = 512.
const FORWARD_TOKENS: usize = 2048;

/// The longest line (bytes) a batch of `max_tokens` ids in rows of at most `max_len` can
/// take: the `[B][L][L]` visible matrix at up to 4 bytes an entry, and every `[B][L]` field
/// at up to 64 bytes a row entry in all (ids, separators, whitespace), plus 1 MiB of slack.
fn line_limit(max_tokens: usize, max_len: usize) -> usize {
    (1 << 20) + max_tokens.saturating_mul(4 * max_len + 64)
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

/// One input line: a text (`{"text": ...}`) or a batch of token ids with optional side inputs.
/// Ids are read as `i32` and 0/1 matrices as `u8`, so parsing a line takes at most a few
/// times its bytes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    text: Option<String>,
    input_ids: Option<Vec<Vec<i32>>>,
    token_type_ids: Option<Vec<Vec<i32>>>,
    attention_mask: Option<Vec<Vec<u8>>>,
    position_ids: Option<Vec<Vec<i32>>>,
    visible_matrix: Option<Vec<Vec<Vec<u8>>>>,
    entity_ids: Option<Vec<Vec<i64>>>,
    entity_mask: Option<Vec<Vec<u8>>>,
}

/// A batch line: `input_ids` `[B][L]` and the side inputs it came with.
#[derive(Debug)]
struct Batch {
    input_ids: Vec<Vec<i32>>,
    token_type_ids: Option<Vec<Vec<i32>>>,
    attention_mask: Option<Vec<Vec<u8>>>,
    position_ids: Option<Vec<Vec<i32>>>,
    visible_matrix: Option<Vec<Vec<Vec<u8>>>>,
    entity_ids: Option<Vec<Vec<i64>>>,
    entity_mask: Option<Vec<Vec<u8>>>,
}

/// What a line asks for.
enum Request {
    Text(String),
    Batch(Batch),
}

impl Line {
    fn into_request(self) -> anyhow::Result<Request> {
        let Line {
            text,
            input_ids,
            token_type_ids,
            attention_mask,
            position_ids,
            visible_matrix,
            entity_ids,
            entity_mask,
        } = self;
        let side_inputs = token_type_ids.is_some()
            || attention_mask.is_some()
            || position_ids.is_some()
            || visible_matrix.is_some()
            || entity_ids.is_some()
            || entity_mask.is_some();
        match (text, input_ids) {
            (Some(text), None) if !side_inputs => Ok(Request::Text(text)),
            (Some(_), _) => {
                bail!("a line holds \"text\" or \"input_ids\" with its side inputs, not both")
            }
            (None, Some(input_ids)) => Ok(Request::Batch(Batch {
                input_ids,
                token_type_ids,
                attention_mask,
                position_ids,
                visible_matrix,
                entity_ids,
                entity_mask,
            })),
            (None, None) => bail!(r#"expected {{"text": ...}} or {{"input_ids": [[...]], ...}}"#),
        }
    }
}

/// The loaded encoder: plain BERT, or ERNIE-THU with its entity table.
enum Encoder {
    Bert(BertModel),
    Ernie(ErnieModel, Tensor),
}

impl Encoder {
    fn config(&self) -> &BertConfig {
        match self {
            Encoder::Bert(m) => m.config(),
            Encoder::Ernie(m, _) => m.config(),
        }
    }
}

/// The output of a batch line.
#[derive(Serialize)]
struct BatchOutput {
    last_hidden_state: Vec<Vec<Vec<f32>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_hidden_state: Option<Vec<Vec<Vec<f32>>>>,
}

/// Runs `zhishi encode`: stdin JSONL -> stdout JSONL.
pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    args.model = super::model_dir(&args.model)?;
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
    let limit = line_limit(args.max_batch_tokens, cfg.max_position_embeddings);
    let mut stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut tokenizer: Option<model::BertTokenizer> = None;
    let mut buf = Vec::new();
    for number in 1.. {
        let at = || format!("stdin line {number}");
        if !read_line(&mut stdin, &mut buf, limit).with_context(at)? {
            break;
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line: Line = serde_json::from_slice(&buf).with_context(at)?;
        match line.into_request().with_context(at)? {
            Request::Text(text) => {
                if tokenizer.is_none() {
                    tokenizer = Some(
                        model::BertTokenizer::for_model(&args.model, encoder.config())
                            .with_context(|| {
                                format!(
                                    "text input needs the tokenizer of {}",
                                    args.model.display()
                                )
                            })?,
                    );
                }
                let tokenizer = tokenizer.as_ref().context("tokenizer")?;
                let record =
                    encode_text(&encoder, tokenizer, &text, &args, &device).with_context(at)?;
                serde_json::to_writer(&mut out, &record)?;
            }
            Request::Batch(batch) => {
                let record = encode_batch(&encoder, &batch, args.max_batch_tokens, &device)
                    .with_context(at)?;
                serde_json::to_writer(&mut out, &record)?;
            }
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the next line of `input` into `buf` (without its line break), reading at most
/// `limit` bytes of it; `false` at the end of the input, an error when the line is longer.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> anyhow::Result<bool> {
    buf.clear();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let n = input.by_ref().take(cap).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if n as u64 == cap {
        bail!(
            "the line is longer than {limit} bytes, more than a batch of --max-batch-tokens ids \
             can take; split the batch or raise --max-batch-tokens"
        );
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(true)
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

/// Validates one batch against the model's config and `max_tokens`, then runs it a few rows
/// at a time; returns the output record.
fn encode_batch(
    encoder: &Encoder,
    batch: &Batch,
    max_tokens: usize,
    device: &Device,
) -> anyhow::Result<BatchOutput> {
    let cfg = encoder.config();
    let (b, l) = batch_shape(&batch.input_ids, cfg, max_tokens)?;
    let ids = ids_tensor(
        "input_ids",
        &batch.input_ids,
        (b, l),
        cfg.vocab_size,
        device,
    )?;
    let opt = |name, rows: &Option<Vec<Vec<i32>>>, limit| {
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
    let attention_mask = batch
        .attention_mask
        .as_ref()
        .map(|r| ids_tensor("attention_mask", r, (b, l), 2, device))
        .transpose()?;
    let visible_matrix = match &batch.visible_matrix {
        None => None,
        Some(v) => {
            if v.len() != b {
                bail!("visible_matrix has {} examples, input_ids has {b}", v.len());
            }
            let mut flat = Vec::with_capacity(b);
            for (e, m) in v.iter().enumerate() {
                let t = ids_tensor("visible_matrix", m, (l, l), 2, device)
                    .with_context(|| format!("example {e}"))?;
                flat.push(t);
            }
            Some(Tensor::stack(&flat, 0)?)
        }
    };
    let entities = match (encoder, &batch.entity_ids, &batch.entity_mask) {
        (Encoder::Bert(_), None, None) => None,
        (Encoder::Bert(_), _, _) => bail!("entity_ids/entity_mask need an ERNIE model"),
        (Encoder::Ernie(_, table), Some(ids), Some(mask)) => {
            if ids.len() != b || ids.iter().any(|row| row.len() != l) {
                bail!("entity_ids must be [{b}][{l}] like input_ids");
            }
            let entities = model::gather_entities(table, ids)?;
            let entity_mask = ids_tensor("entity_mask", mask, (b, l), 2, device)?;
            Some((entities, entity_mask))
        }
        (Encoder::Ernie(..), _, _) => bail!("an ERNIE model needs entity_ids and entity_mask"),
    };
    let rows = (FORWARD_TOKENS / l).max(1);
    let mut hidden = Vec::with_capacity(b);
    let mut entity_hidden = Vec::new();
    for start in (0..b).step_by(rows) {
        let n = rows.min(b - start);
        let part = |t: &Option<Tensor>| t.as_ref().map(|t| t.narrow(0, start, n)).transpose();
        let (ids, token_type_ids, position_ids, attention_mask, visible_matrix) = (
            ids.narrow(0, start, n)?,
            part(&token_type_ids)?,
            part(&position_ids)?,
            part(&attention_mask)?,
            part(&visible_matrix)?,
        );
        let input = EncoderInput {
            input_ids: &ids,
            token_type_ids: token_type_ids.as_ref(),
            position_ids: position_ids.as_ref(),
            attention_mask: attention_mask.as_ref(),
            visible_matrix: visible_matrix.as_ref(),
        };
        match (encoder, &entities) {
            (Encoder::Ernie(ernie, _), Some((entities, entity_mask))) => {
                let (h, e) = ernie.forward(&ErnieInput {
                    tokens: input,
                    entities: &entities.narrow(0, start, n)?,
                    entity_mask: &entity_mask.narrow(0, start, n)?,
                })?;
                hidden.extend(h.to_vec3::<f32>()?);
                entity_hidden.extend(e.to_vec3::<f32>()?);
            }
            (Encoder::Bert(bert), _) => hidden.extend(bert.forward(&input)?.to_vec3::<f32>()?),
            (Encoder::Ernie(..), None) => bail!("an ERNIE model needs entity_ids and entity_mask"),
        }
    }
    Ok(BatchOutput {
        last_hidden_state: hidden,
        entity_hidden_state: entities.is_some().then_some(entity_hidden),
    })
}

/// The `(rows, row length)` of `input_ids`, checked before any tensor is built: a non-empty
/// `[B][L]` array whose rows fit the model's positions, of at most `max_tokens` ids.
fn batch_shape(
    input_ids: &[Vec<i32>],
    cfg: &BertConfig,
    max_tokens: usize,
) -> anyhow::Result<(usize, usize)> {
    let b = input_ids.len();
    let l = input_ids.first().map_or(0, Vec::len);
    if b == 0 || l == 0 {
        bail!("input_ids must be a non-empty [B][L] array");
    }
    if let Some((i, row)) = input_ids.iter().enumerate().find(|(_, r)| r.len() != l) {
        bail!("input_ids[{i}] has {} entries, expected {l}", row.len());
    }
    if l > cfg.max_position_embeddings {
        bail!(
            "input_ids rows hold {l} tokens but the model has {} positions (max_position_embeddings)",
            cfg.max_position_embeddings
        );
    }
    if b.saturating_mul(l) > max_tokens {
        bail!(
            "the batch holds {b} x {l} = {} ids, more than --max-batch-tokens {max_tokens}; \
             split it into smaller batches or raise the limit",
            b * l
        );
    }
    Ok((b, l))
}

/// A `[rows][cols]` array of integers in `0..limit` as a u32 tensor, or an error naming the
/// field and the offending entry.
fn ids_tensor<T: Copy + Into<i64>>(
    name: &str,
    rows: &[Vec<T>],
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
            let v: i64 = v.into();
            if v < 0 || v as u64 >= limit as u64 {
                bail!("{name}[{i}][{j}] = {v} is outside 0..{limit}");
            }
            flat.push(v as u32);
        }
    }
    Ok(Tensor::from_vec(flat, (r, c), device)?)
}
