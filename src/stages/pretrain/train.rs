//! `zhishi pretrain`: continued masked-LM pretraining of a checkpoint over a streamed corpus
//! through [`crate::train::Trainer`] (gradient accumulation, clipping, AdamW, checkpoints and
//! exact resume, curves), masking each epoch afresh from `(seed, epoch, sequence)`; the best
//! model (highest held-out `mlm_accuracy`) is written as a Hugging Face `BertForMaskedLM`
//! directory that every stage accepts as `encoder.model`.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

use super::batch::{MlmMetrics, Preparer, Sample};
use super::config::PretrainConfig;
use super::corpus::{Corpus, Sequence};
use super::dea::DeaOptions;
use super::masking::Masker;
use super::model::{pretrain_metrics, PretrainModel};
use super::units::UnitFinder;
use super::PretrainError;
use crate::config::{load, Loaded};
use crate::knowledge::{EntityVectors, Layout};
use crate::model::dea::{
    fill_ernie_pretraining_varmap, load_ernie_pretraining, save_ernie_pretraining,
    ErnieForPretraining,
};
use crate::model::load::read_config;
use crate::model::mlm::{fill_masked_lm_varmap, load_masked_lm, save_masked_lm, BertForMaskedLm};
use crate::model::Precision;
use crate::model::{
    aggregator_config, BertConfig, BertTokenizer, Dropout, EntityTable, Kernels, Rng,
};
use crate::stages::task::{
    entity_vectors, trainable_params, KnowledgeMode, KnowledgeRecord, PretrainedRecord, Purpose,
    Split, TransERecord,
};
use crate::train::{
    BatchLoss, Batching, Evaluation, TrainError, TrainOutput, TrainReport, TrainTask, Trainer,
};

/// The training TOML's copy in the model directory.
pub const TOML_FILE: &str = "pretrain.toml";
/// Tokenizer files copied into the model directory when the encoder has them.
const TOKENIZER_FILES: [&str; 3] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];
/// The stream of the held-out slice's (fixed) masking.
const DEV_STREAM: u64 = 0xDE5;

/// The outcome of `zhishi pretrain`.
#[derive(Debug, Clone)]
pub struct PretrainReport {
    /// Held-out metrics of the best model, and before training (`initial`).
    pub dev: serde_json::Value,
    /// The loop's report.
    pub train: TrainReport,
    /// The best model's directory.
    pub model_dir: PathBuf,
}

/// A configuration with its paths resolved.
struct Resolved {
    config: PretrainConfig,
    model: PathBuf,
    corpus: PathBuf,
    dev: Option<PathBuf>,
    kg: Option<PathBuf>,
    transe: Option<PathBuf>,
    output_dir: PathBuf,
    toml: String,
    config_path: PathBuf,
}

/// Loads and checks the configuration `path` (with `overrides`) as [`train_config`] does,
/// without reading the corpus or loading the model.
pub fn check_config(path: &Path, overrides: &[String]) -> Result<(), PretrainError> {
    check_config_for(path, overrides, Purpose::Train)
}

/// [`check_config`] for `purpose`: see [`resolve`].
pub fn check_config_for(
    path: &Path,
    overrides: &[String],
    purpose: Purpose,
) -> Result<(), PretrainError> {
    resolve(path, overrides, purpose).map(drop)
}

/// Loads, checks and resolves the configuration. Evaluating reads the pretrained model's own
/// `config.json` and vocabulary (`train.output_dir/best`) when it is there: the base encoder
/// (`encoder.model`) may then be gone.
fn resolve(path: &Path, overrides: &[String], purpose: Purpose) -> Result<Resolved, PretrainError> {
    let Loaded { value, source } = load::<PretrainConfig>(path, overrides)?;
    let c = &value;
    let err = |key: &str, message: String| -> PretrainError { source.error(key, message).into() };
    if c.task.kind != "pretrain" {
        return Err(err(
            "task.kind",
            format!("expected \"pretrain\", found {:?}", c.task.kind),
        ));
    }
    let output_dir = source.resolve(&c.train.output_dir);
    let best = output_dir.join("best");
    let model = match purpose {
        Purpose::Evaluate if best.join("config.json").is_file() => best,
        _ => source.model_dir("encoder.model", &c.encoder.model)?,
    };
    let max_pos = read_config(&model)?.max_position_embeddings;
    if c.data.max_len < 3 || c.data.max_len > max_pos {
        return Err(err(
            "data.max_len",
            format!("must be between 3 and the encoder's max_position_embeddings {max_pos}"),
        ));
    }
    let m = &c.masking;
    if m.token + m.whole_word + m.entity + m.phrase <= 0.0 {
        return Err(err(
            "masking.whole_word",
            "at least one strategy needs a weight above 0".into(),
        ));
    }
    if m.mask_token + m.random_token > 1.0 {
        return Err(err(
            "masking.random_token",
            "mask_token + random_token must not exceed 1".into(),
        ));
    }
    let ernie = c.knowledge.mode == KnowledgeMode::Ernie;
    if !ernie && c.knowledge.mode != KnowledgeMode::Plain {
        return Err(err(
            "knowledge.mode",
            "pretraining feeds plain text (mode = \"plain\"; the KG then only drives entity masking) or ERNIE-THU fusion with dEA (mode = \"ernie\")"
                .into(),
        ));
    }
    if ernie && c.knowledge.kg.is_none() {
        return Err(err(
            "knowledge.kg",
            "ERNIE pretraining (dEA) needs a KG to link entities".into(),
        ));
    }
    if ernie && read_config(&model)?.albert.is_some() {
        return Err(err(
            "knowledge.mode",
            format!(
                "ERNIE pretraining (dEA) needs a BERT encoder: {} is an ALBERT, whose layers \
                 are shared",
                model.display()
            ),
        ));
    }
    if ernie && c.knowledge.transe_epochs == 0 {
        return Err(err("knowledge.transe_epochs", "must be at least 1".into()));
    }
    if let (true, Some(n)) = (ernie, c.knowledge.ernie_layers) {
        let layers = read_config(&model)?.num_hidden_layers;
        if n == 0 || n > layers {
            return Err(err(
                "knowledge.ernie_layers",
                format!("must be between 1 and the encoder's {layers} layers, found {n}"),
            ));
        }
    }
    if m.dea_mask + m.dea_random > 1.0 {
        return Err(err(
            "masking.dea_random",
            "dea_mask + dea_random must not exceed 1".into(),
        ));
    }
    let kg = c
        .knowledge
        .kg
        .as_ref()
        .map(|p| source.existing_path("knowledge.kg", p))
        .transpose()?;
    if m.entity > 0.0 && kg.is_none() {
        return Err(err(
            "knowledge.kg",
            "entity masking needs a KG (knowledge.kg)".into(),
        ));
    }
    if c.train.batching == Some(Batching::Packed) || c.train.batch_size == 0 || c.train.epochs == 0
    {
        return Err(err(
            "train.batching",
            "sequences are packed from the corpus already: batching must not be \"packed\", and batch_size and epochs must be at least 1".into(),
        ));
    }
    let corpus = source.existing_path("data.corpus", &c.data.corpus)?;
    let dev = c
        .data
        .dev
        .as_ref()
        .map(|p| source.existing_path("data.dev", p))
        .transpose()?;
    let transe = c.knowledge.transe.as_ref().map(|p| source.resolve(p));
    let mut toml = source.text().to_string();
    if !overrides.is_empty() {
        toml = format!("# overrides: {}\n{toml}", overrides.join(" "));
    }
    Ok(Resolved {
        config: value,
        model,
        corpus,
        dev,
        kg,
        transe,
        output_dir,
        toml,
        config_path: source.path().to_path_buf(),
    })
}

/// The pieces every run and evaluation shares: tokenizer, units, masker, the corpus index
/// (training part), the held-out texts and, in ERNIE mode, the entity side.
struct Data {
    tokenizer: BertTokenizer,
    units: UnitFinder,
    masker: Masker,
    corpus: Corpus,
    dev_texts: Vec<String>,
    ernie: Option<ErnieData>,
}

/// ERNIE mode's entity side: the fixed vectors, how they were made, the aggregator count,
/// the corruption rates and the record saved with the model.
struct ErnieData {
    vectors: EntityVectors,
    layers: usize,
    dea: DeaOptions,
    record: PretrainedRecord,
}

fn data(r: &Resolved) -> Result<Data, PretrainError> {
    let c = &r.config;
    let cfg = read_config(&r.model)?;
    let tokenizer = BertTokenizer::for_model(&r.model, &cfg)?;
    let vocab = cfg.vocab_size;
    let mask_id = tokenizer
        .token_to_id("[MASK]")
        .ok_or_else(|| PretrainError::Vocab {
            path: r.model.clone(),
            message: "the vocabulary has no [MASK] token".into(),
        })?;
    let max_tokens = c.data.max_len - 2;
    let (f, field) = (c.data.format, c.data.text_field.as_str());
    let mut corpus = Corpus::index(&r.corpus, f, field, &tokenizer, max_tokens)?;
    let dev_texts = match &r.dev {
        Some(path) => {
            let dev = Corpus::index(path, f, field, &tokenizer, max_tokens)?;
            dev.read(&dev.sequences().iter().collect::<Vec<_>>())?
        }
        None => {
            let n = c.data.dev_holdout;
            let len = corpus.sequences().len();
            if n == 0 || n >= len {
                return Err(PretrainError::Data {
                    path: r.corpus.clone(),
                    line: 0,
                    message: format!(
                        "data.dev_holdout = {n} must be at least 1 and below the corpus's {len} sequences (or set data.dev)"
                    ),
                });
            }
            let held: Vec<Sequence> = corpus.split_off(len - n);
            corpus.read(&held.iter().collect::<Vec<_>>())?
        }
    };
    if c.data.max_train > 0 {
        corpus.truncate(c.data.max_train);
    }
    let units = UnitFinder::new(
        r.kg.as_deref(),
        c.knowledge.nil_threshold,
        c.masking.phrase_words,
    )?;
    let masker = Masker::new(c.masking.options(), mask_id, vocab);
    let ernie = ernie_data(r, &units)?;
    Ok(Data {
        tokenizer,
        units,
        masker,
        corpus,
        dev_texts,
        ernie,
    })
}

/// ERNIE mode's entity side (`None` in plain mode): vectors from `knowledge.transe` or
/// trained on the KG, and the knowledge record of the linker the unit finder links with.
fn ernie_data(r: &Resolved, units: &UnitFinder) -> Result<Option<ErnieData>, PretrainError> {
    let c = &r.config;
    let k = &c.knowledge;
    if k.mode != KnowledgeMode::Ernie {
        return Ok(None);
    }
    let knowledge_err =
        |e: crate::stages::task::KnowledgeError| PretrainError::Knowledge(Box::new(e));
    let Some((vectors, transe)): Option<(EntityVectors, TransERecord)> =
        entity_vectors(k, r.kg.as_deref(), r.transe.as_deref(), c.train.seed)
            .map_err(knowledge_err)?
    else {
        return Ok(None);
    };
    let layers = k.aggregator_layers(read_config(&r.model)?.num_hidden_layers);
    let linker = units.linker().ok_or_else(|| {
        PretrainError::Input("ERNIE pretraining needs a KG to link entities".into())
    })?;
    let identity = crate::text::KnowledgeSource::identity(linker.source())
        .map_err(|e| knowledge_err(e.into()))?;
    let knowledge = KnowledgeRecord {
        mode: KnowledgeMode::Ernie,
        max_entities: 0,
        with_predicate: false,
        link: Some(linker.options().clone()),
        kg_identity: identity,
        kg_name: r
            .kg
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned()),
        ernie_layers: Some(layers),
    };
    Ok(Some(ErnieData {
        vectors,
        layers,
        dea: DeaOptions {
            mask: c.masking.dea_mask,
            random: c.masking.dea_random,
        },
        record: PretrainedRecord { knowledge, transe },
    }))
}

impl Data {
    fn preparer(&self, max_len: usize) -> Preparer<'_> {
        Preparer {
            tokenizer: &self.tokenizer,
            units: &self.units,
            masker: &self.masker,
            max_len,
            entities: self.ernie.as_ref().map(|e| (&e.vectors, e.dea)),
        }
    }

    /// The encoder config: ERNIE mode turns the top layers into aggregators.
    fn model_config(&self, cfg: &BertConfig) -> BertConfig {
        let cfg = BertConfig {
            layer_types: None,
            ..cfg.clone()
        };
        match &self.ernie {
            Some(e) => aggregator_config(&cfg, e.layers),
            None => cfg,
        }
    }

    /// The held-out texts masked the same way every time.
    fn dev_masked(&self, max_len: usize, seed: u64) -> Result<Vec<Sample>, PretrainError> {
        let p = self.preparer(max_len);
        self.dev_texts
            .iter()
            .enumerate()
            .map(|(i, t)| p.prepare(t, &mut Rng::derive(seed ^ DEV_STREAM, i as u64)))
            .collect()
    }
}

/// One pretraining run.
struct PretrainTask {
    model: PretrainModel,
    varmap: VarMap,
    cfg: BertConfig,
    data: Data,
    dev: Vec<Sample>,
    max_len: usize,
    batch_size: usize,
    seed: u64,
    epoch: AtomicUsize,
    encoder_dir: PathBuf,
    toml: String,
    device: Device,
}

impl TrainTask for PretrainTask {
    fn train_lengths(&self) -> Vec<usize> {
        self.data
            .corpus
            .sequences()
            .iter()
            .map(|s| s.tokens + 2)
            .collect()
    }

    fn start_epoch(&self, epoch: usize) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    fn batch_loss(
        &self,
        batch: &[usize],
        _: Layout,
        dropout: &Dropout,
    ) -> Result<BatchLoss, TrainError> {
        let task = |e: PretrainError| TrainError::task(e);
        let batching_started = std::time::Instant::now();
        let seqs = self.data.corpus.sequences();
        let texts = self
            .data
            .corpus
            .read(&batch.iter().map(|&i| &seqs[i]).collect::<Vec<_>>())
            .map_err(task)?;
        let epoch = self.epoch.load(Ordering::Relaxed) as u64;
        let p = self.data.preparer(self.max_len);
        let masked = batch
            .iter()
            .zip(&texts)
            .map(|(&i, t)| p.prepare(t, &mut Rng::derive(self.seed, (epoch << 32) | i as u64)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(task)?;
        let batching_seconds = batching_started.elapsed().as_secs_f64();
        let out = self
            .model
            .forward(&masked.iter().collect::<Vec<_>>(), dropout, &self.device)
            .map_err(task)?;
        Ok(BatchLoss {
            loss: out.loss()?,
            tokens: out.mlm.tokens,
            padded_tokens: out.mlm.padded_tokens,
            batching_seconds,
        })
    }

    fn evaluate(&self) -> Result<Evaluation, TrainError> {
        let m = pretrain_metrics(&self.model, &self.dev, self.batch_size, &self.device)
            .map_err(TrainError::task)?;
        Ok(Evaluation {
            score: m.mlm_accuracy,
            metrics: serde_json::to_value(&m).unwrap_or_default(),
        })
    }

    fn metric_name(&self) -> &'static str {
        "mlm_accuracy"
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let Some(e) = &self.data.ernie else {
            return save_model_dir(dir, &self.varmap, &self.encoder_dir, &self.toml);
        };
        write_model_files(dir, &self.encoder_dir, &self.toml)?;
        save_ernie_pretraining(&self.varmap, &self.cfg, dir)?;
        e.vectors.save(dir).map_err(TrainError::task)?;
        e.record.save(dir).map_err(TrainError::task)
    }
}

/// Writes a Hugging Face `BertForMaskedLM` directory: `model.safetensors` (`bert.*` and
/// `cls.predictions.*`), the encoder's `config.json` (architectures set to
/// `BertForMaskedLM`), `vocab.txt` and its other tokenizer files, and the training TOML.
pub fn save_model_dir(
    dir: &Path,
    varmap: &VarMap,
    encoder_dir: &Path,
    toml: &str,
) -> Result<(), TrainError> {
    write_model_files(dir, encoder_dir, toml)?;
    Ok(save_masked_lm(varmap, dir)?)
}

/// The files of a pretrained directory besides its weights: `config.json` (architectures
/// `BertForMaskedLM`), `vocab.txt` and the other tokenizer files, and the training TOML;
/// creates `dir`.
fn write_model_files(dir: &Path, encoder_dir: &Path, toml: &str) -> Result<(), TrainError> {
    let io = |path: PathBuf| move |source| TrainError::Io { path, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let config_path = encoder_dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(io(config_path.clone()))?;
    let mut config: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| TrainError::Json {
            path: config_path.clone(),
            source,
        })?;
    if let Some(obj) = config.as_object_mut() {
        obj.insert(
            "architectures".into(),
            serde_json::json!(["BertForMaskedLM"]),
        );
        // The Hugging Face name of the model it was built from, when it came from the cache.
        if let Some(id) = crate::model::hub::snapshot_id(encoder_dir) {
            obj.insert("_name_or_path".into(), id.to_string().into());
        }
    }
    let out = dir.join("config.json");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&config).unwrap_or_default(),
    )
    .map_err(io(out))?;
    let vocab = encoder_dir.join("vocab.txt");
    std::fs::copy(&vocab, dir.join("vocab.txt")).map_err(io(vocab))?;
    for name in TOKENIZER_FILES {
        let from = encoder_dir.join(name);
        if from.is_file() {
            std::fs::copy(&from, dir.join(name)).map_err(io(from))?;
        }
    }
    std::fs::write(dir.join(TOML_FILE), toml).map_err(io(dir.join(TOML_FILE)))
}

impl Resolved {
    /// Claims `train.output_dir` for a run over what this configuration reads.
    fn claim_output(&self) -> Result<TrainOutput, crate::files::FilesError> {
        let mut reads = crate::files::Plan::new();
        reads
            .read("the configuration", &self.config_path)
            .read("encoder.model", &self.model)
            .read("data.corpus", &self.corpus);
        for (role, path) in [
            ("data.dev", &self.dev),
            ("knowledge.kg", &self.kg),
            ("knowledge.transe", &self.transe),
        ] {
            if let Some(path) = path {
                reads.read(role, path);
            }
        }
        TrainOutput::claim(&self.output_dir, &reads)
    }
}

/// Pretrains as a configuration describes; `overrides` are `--set` values.
pub fn train_config(path: &Path, overrides: &[String]) -> Result<PretrainReport, PretrainError> {
    let r = resolve(path, overrides, Purpose::Train)?;
    let output = r.claim_output().map_err(TrainError::from)?;
    let c = &r.config;
    let data = data(&r)?;
    if data.corpus.sequences().is_empty() {
        return Err(PretrainError::Data {
            path: r.corpus.clone(),
            line: 0,
            message: "no training sequence (the corpus is empty or all held out)".into(),
        });
    }
    let device = Device::Cpu;
    let mut cfg = data.model_config(&read_config(&r.model)?);
    cfg.kernels = Kernels::Differentiable;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let (model, fresh) = match &data.ernie {
        None => {
            let model = BertForMaskedLm::load(vb, &cfg)?;
            let fresh = fill_masked_lm_varmap(&varmap, &r.model, &cfg, c.train.seed)?;
            (PretrainModel::Plain(model), fresh)
        }
        Some(e) => {
            let model = ErnieForPretraining::load(vb, &cfg)?;
            let fresh = fill_masked_lm_varmap(&varmap, &r.model, &cfg, c.train.seed)?;
            let fresh_entity =
                fill_ernie_pretraining_varmap(&varmap, &r.model, &cfg, c.train.seed)?;
            tracing::info!(
                layers = e.layers,
                entities = e.vectors.len(),
                fresh_entity_side = fresh_entity,
                "ERNIE pretraining: masked LM + dEA over fixed TransE vectors"
            );
            let entities = EntityTable::new(&e.vectors.tensor(&device)?)?;
            (PretrainModel::Ernie { model, entities }, fresh)
        }
    };
    if fresh > 0 {
        tracing::info!(
            fresh,
            "the checkpoint has no MLM head: initialised from the seed"
        );
    }
    let dev = data.dev_masked(c.data.max_len, c.train.seed)?;
    let initial = pretrain_metrics(&model, &dev, c.train.batch_size, &device)?;
    let params = trainable_params(&varmap, c.encoder.freeze, &["cls."], &[]);
    let options = c.train.options(output, Batching::Bucketed);
    let task = PretrainTask {
        model,
        varmap,
        cfg,
        data,
        dev,
        max_len: c.data.max_len,
        batch_size: c.train.batch_size,
        seed: c.train.seed,
        epoch: AtomicUsize::new(0),
        encoder_dir: r.model.clone(),
        toml: r.toml.clone(),
        device,
    };
    let trainer = Trainer::new(params, options);
    let dropout = Dropout::new(c.encoder.dropout, c.train.seed.wrapping_add(1));
    let report = trainer.run(&task, &dropout)?;
    let mut dev = report.best_metrics.clone().unwrap_or_default();
    if let Some(obj) = dev.as_object_mut() {
        obj.insert(
            "initial".into(),
            serde_json::to_value(&initial).unwrap_or_default(),
        );
        obj.insert("fresh_head_tensors".into(), fresh.into());
    }
    Ok(PretrainReport {
        dev,
        train: report,
        model_dir: trainer.best_dir(),
    })
}

/// Scores the pretrained model of a configuration (`output_dir/best`) on the held-out slice
/// (`dev` and `test` both name it; `data.dev` or the corpus's last `dev_holdout` sequences).
pub fn evaluate_config(
    path: &Path,
    overrides: &[String],
    split: Split,
) -> Result<MlmMetrics, PretrainError> {
    evaluate_config_at(path, overrides, split, Precision::F32)
}

/// [`evaluate_config`] with the model's dense layers at `precision`.
pub fn evaluate_config_at(
    path: &Path,
    overrides: &[String],
    split: Split,
    precision: Precision,
) -> Result<MlmMetrics, PretrainError> {
    let kernels = Kernels::inference(precision);
    if split == Split::Train {
        return Err(PretrainError::Split(split));
    }
    let r = resolve(path, overrides, Purpose::Evaluate)?;
    let c = &r.config;
    let data = data(&r)?;
    let dev = data.dev_masked(c.data.max_len, c.train.seed)?;
    let device = Device::Cpu;
    let best = r.output_dir.join("best");
    let model = match &data.ernie {
        None => PretrainModel::Plain(load_masked_lm(&best, &device, kernels, c.train.seed)?.0),
        Some(e) => {
            let mut cfg = data.model_config(&read_config(&best)?);
            cfg.kernels = kernels;
            let model = load_ernie_pretraining(&best, &cfg, &device)?;
            // The model's own vectors, which it was trained against.
            let vectors = EntityVectors::load(&best)
                .map_err(|x| PretrainError::Knowledge(Box::new(x.into())))?;
            if vectors.len() != e.vectors.len() {
                return Err(PretrainError::Input(format!(
                    "{}: the model's entity vectors ({}) are not the config's ({})",
                    best.display(),
                    vectors.len(),
                    e.vectors.len()
                )));
            }
            let entities = EntityTable::new(&vectors.tensor(&device)?)?;
            PretrainModel::Ernie { model, entities }
        }
    };
    pretrain_metrics(&model, &dev, c.train.batch_size, &device)
}
