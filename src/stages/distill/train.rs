//! Distilling a trained NER model (the teacher) into a student with fewer layers through
//! [`crate::train::Trainer`]: the labelled and unlabelled sentences are linked and featurized
//! exactly as the teacher's training did (its labels, windowing and knowledge), every batch
//! runs through the teacher (forward only, no gradient) and the student, and the student
//! learns from the teacher's soft labels, the gold labels where there are some, and
//! optionally the teacher's hidden states and attention scores.
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::Serialize;

use super::config::{resolve, Resolved};
use super::loss::{attention_mse, hidden_mse, soft_label_loss};
use super::student::{student_network, write_student_config};
use super::DistillError;
use crate::knowledge::Layout;
use crate::model::{Dropout, Kernels, Precision};
use crate::stages::ner::data::{read, Sentence};
use crate::stages::ner::features::{Batch, Example};
use crate::stages::ner::model::{
    build_featurizer, model_dir, ModelMeta, NerModel, META_FILE, WEIGHTS_FILE,
};
use crate::stages::ner::network::NerNetwork;
use crate::stages::ner::predict::{dev_evaluation, featurize};
use crate::stages::ner::NerMetrics;
use crate::stages::task::{
    documents, map_weights, read_trained, register, trainable_params, Annotator, ConfigFile,
    Purpose, Split, Task, TaskKind, Trainable, Trained,
};
use crate::train::{BatchLoss, Batching, Evaluation, TrainError, TrainReport, TrainTask, Trainer};

/// What a distillation run trained on.
#[derive(Debug, Clone, Serialize)]
pub struct DistillData {
    /// The teacher layers the student kept, one per student layer.
    pub layers: Vec<usize>,
    /// Labelled training sentences.
    pub labelled: usize,
    /// Unlabelled sentences (soft labels only).
    pub unlabelled: usize,
    /// Encoder windows trained on (labelled and unlabelled).
    pub windows: usize,
}

/// The outcome of `zhishi distill`.
#[derive(Debug, Clone)]
pub struct DistillReport {
    /// Dev metrics of the best student (as [`NerMetrics`] serialises them).
    pub dev: serde_json::Value,
    /// Steps, throughput, early stopping.
    pub train: TrainReport,
    /// Where the best student was saved.
    pub model_dir: PathBuf,
    /// What it trained on.
    pub data: DistillData,
}

/// The weights of the loss terms.
#[derive(Debug, Clone, Copy)]
struct Weights {
    temperature: f64,
    alpha: f64,
    hidden: f64,
    attention: f64,
}

/// Everything one distillation run holds.
struct DistillTask {
    teacher: NerNetwork,
    student: NerNetwork,
    varmap: VarMap,
    layers: Vec<usize>,
    weights: Weights,
    meta: ModelMeta,
    teacher_dir: PathBuf,
    toml: String,
    train: Vec<Example>,
    labelled: Vec<bool>,
    dev_sentences: Vec<Sentence>,
    dev_examples: Vec<Example>,
    device: Device,
}

impl DistillTask {
    fn traced(&self) -> bool {
        self.weights.hidden > 0.0 || self.weights.attention > 0.0
    }

    /// The hard-label loss of the labelled examples among `batch` (zero when none is).
    fn hard_loss(
        &self,
        emissions: &Tensor,
        batch: &[usize],
        b: &Batch,
    ) -> Result<Tensor, TrainError> {
        if batch.iter().all(|&i| self.labelled[i]) {
            return Ok(self
                .student
                .emission_loss(emissions, &b.char_counts, &b.labels)?);
        }
        let (mut rows, mut counts, mut labels) = (Vec::new(), Vec::new(), Vec::new());
        let mut at = 0u32;
        for (j, &i) in batch.iter().enumerate() {
            let n = b.char_counts[j] as u32;
            if self.labelled[i] && n > 0 {
                rows.extend(at..at + n);
                counts.push(n as usize);
                labels.push(b.labels[j].clone());
            }
            at += n;
        }
        if rows.is_empty() {
            return Ok(emissions.sum_all()?.affine(0.0, 0.0)?);
        }
        let n = rows.len();
        let kept = emissions.index_select(&Tensor::from_vec(rows, n, &self.device)?, 0)?;
        Ok(self.student.emission_loss(&kept, &counts, &labels)?)
    }
}

impl TrainTask for DistillTask {
    fn train_lengths(&self) -> Vec<usize> {
        self.train.iter().map(Example::len).collect()
    }

    fn batch_loss(
        &self,
        batch: &[usize],
        layout: Layout,
        dropout: &Dropout,
    ) -> Result<BatchLoss, TrainError> {
        let examples: Vec<&Example> = batch.iter().map(|&i| &self.train[i]).collect();
        let b = Batch::with_layout(&examples, layout, &self.device)?;
        let off = Dropout::disabled();
        let w = self.weights;
        let mut loss;
        let student_emissions;
        if self.traced() {
            let teacher = self.teacher.encoder().forward_traced(&b.input, &off)?;
            let student = self.student.encoder().forward_traced(&b.input, dropout)?;
            let teacher_emissions = self.teacher.head(teacher.last()?, &b, &off)?.detach();
            student_emissions = self.student.head(student.last()?, &b, dropout)?;
            loss = soft_label_loss(&student_emissions, &teacher_emissions, w.temperature)?
                .affine(1.0 - w.alpha, 0.0)?;
            let k = self.layers.len() as f64;
            for (i, &t) in self.layers.iter().enumerate() {
                if w.hidden > 0.0 {
                    let mse = hidden_mse(
                        &student.hidden[i],
                        &teacher.hidden[t],
                        &b.input.attention_mask,
                    )?;
                    loss = (loss + mse.affine(w.hidden / k, 0.0)?)?;
                }
                if w.attention > 0.0 {
                    let mse = attention_mse(
                        &student.scores[i],
                        &teacher.scores[t],
                        student.bias.tensor(),
                        &b.input.attention_mask,
                    )?;
                    loss = (loss + mse.affine(w.attention / k, 0.0)?)?;
                }
            }
        } else {
            let teacher_emissions = self.teacher.emissions(&b, &off)?.detach();
            student_emissions = self.student.emissions(&b, dropout)?;
            loss = soft_label_loss(&student_emissions, &teacher_emissions, w.temperature)?
                .affine(1.0 - w.alpha, 0.0)?;
        }
        if w.alpha > 0.0 {
            let hard = self.hard_loss(&student_emissions, batch, &b)?;
            loss = (loss + hard.affine(w.alpha, 0.0)?)?;
        }
        Ok(BatchLoss {
            loss,
            tokens: b.input.tokens,
            padded_tokens: b.input.padded_tokens,
        })
    }

    fn evaluate(&self) -> Result<Evaluation, TrainError> {
        dev_evaluation(
            &self.student,
            &self.dev_examples,
            &self.dev_sentences,
            &self.meta.labels,
            &self.device,
        )
    }

    fn metric_name(&self) -> &'static str {
        "f1"
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        model_dir(&self.teacher_dir, &self.meta, &self.toml).save(dir, &self.varmap)?;
        write_student_config(&self.teacher_dir, dir, self.layers.len()).map_err(TrainError::task)
    }
}

/// The teacher's settings (`ner.json`) and its network, with candle ops when the hidden or
/// attention loss needs its intermediate states, else the fused f32 kernels.
fn load_teacher(
    dir: &Path,
    traced: bool,
    device: &Device,
) -> Result<(ModelMeta, NerNetwork), DistillError> {
    let (meta, mut cfg): (ModelMeta, _) = read_trained(dir, META_FILE, Precision::F32)?;
    if meta.knowledge.mode.fuses_entities() {
        return Err(DistillError::Teacher {
            path: dir.to_path_buf(),
            message: "ERNIE teachers (entity fusion) cannot be distilled".into(),
        });
    }
    if traced {
        cfg.kernels = Kernels::Differentiable;
    }
    let vb = map_weights(dir, WEIGHTS_FILE, device)?;
    let network = NerNetwork::load(vb, &cfg, &meta.labels, meta.crf)?;
    Ok((meta, network))
}

/// The knowledge annotator of `[knowledge]`, checked to be the teacher's.
fn annotator(r: &Resolved, meta: &ModelMeta) -> Result<Option<Annotator>, DistillError> {
    let annotator = Annotator::from_table(&r.knowledge, None)?;
    match &annotator {
        Some(a) => a.record().same_as(&meta.knowledge)?,
        None if meta.knowledge.mode.injects() => {
            return Err(r
                .source
                .error(
                    "knowledge.mode",
                    format!(
                        "the teacher was trained with knowledge (mode {}); set [knowledge] as its training did",
                        meta.knowledge.mode.name()
                    ),
                )
                .into())
        }
        None => {}
    }
    Ok(annotator)
}

/// The first `max` (0 = all) non-empty lines of the unlabelled text.
fn unlabelled_texts(path: &Path, max: usize) -> Result<Vec<String>, DistillError> {
    let text = crate::textfile::read(path).map_err(crate::stages::ner::NerError::from)?;
    let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let take = if max == 0 { usize::MAX } else { max };
    Ok(lines.take(take).map(String::from).collect())
}

/// Distils the teacher a configuration names into its student; `overrides` are `--set`
/// values.
pub fn train_config(path: &Path, overrides: &[String]) -> Result<DistillReport, DistillError> {
    let r = resolve(path, overrides)?;
    let output = r.claim_output().map_err(TrainError::from)?;
    let c = &r.config;
    let device = Device::Cpu;
    let (meta, teacher) = load_teacher(&r.teacher, c.distill.traced(), &device)?;
    let annotator = annotator(&r, &meta)?;
    let featurizer = build_featurizer(&r.teacher, &meta, None)?;
    let mut train_sents = read(&r.train, c.data.format)?;
    if c.data.max_train > 0 {
        train_sents.truncate(c.data.max_train);
    }
    let dev_sents = read(&r.dev, c.data.format)?;
    let train_ids = label_ids(&meta, &train_sents, &r.train)?;
    let docs = documents(annotator.as_ref(), &texts(&train_sents))?;
    let (labelled, _) = featurize(&featurizer, &docs, &chars(&train_sents), &train_ids)?;
    let mut train: Vec<Example> = labelled
        .into_iter()
        .filter(|e| e.labelled().next().is_some())
        .collect();
    let mut is_labelled = vec![true; train.len()];
    let extra = match &r.unlabelled {
        Some(p) => unlabelled_texts(p, c.distill.max_unlabelled)?,
        None => Vec::new(),
    };
    let extra_chars: Vec<Vec<String>> = extra
        .iter()
        .map(|t| t.chars().map(String::from).collect())
        .collect();
    let docs = documents(annotator.as_ref(), &extra)?;
    let (unlabelled, _) = featurize(&featurizer, &docs, &extra_chars, &[])?;
    let unlabelled: Vec<Example> = unlabelled
        .into_iter()
        .filter(|e| e.labelled().next().is_some())
        .collect();
    is_labelled.resize(train.len() + unlabelled.len(), false);
    train.extend(unlabelled);
    let dev_docs = documents(annotator.as_ref(), &texts(&dev_sents))?;
    let (dev_examples, _) = featurize(&featurizer, &dev_docs, &chars(&dev_sents), &[])?;
    let (student, varmap, _) = student_network(&r.teacher, &meta, &r.layers, &device)?;
    let student = student.freeze_encoder(false);
    let params = trainable_params(&varmap, false, &[], &[]);
    let data = DistillData {
        layers: r.layers.clone(),
        labelled: train_sents.len(),
        unlabelled: extra.len(),
        windows: train.len(),
    };
    let task = DistillTask {
        teacher,
        student,
        varmap,
        layers: r.layers.clone(),
        weights: Weights {
            temperature: c.distill.temperature,
            alpha: c.distill.alpha,
            hidden: c.distill.hidden_loss,
            attention: c.distill.attention_loss,
        },
        meta,
        teacher_dir: r.teacher.clone(),
        toml: r.toml.clone(),
        train,
        labelled: is_labelled,
        dev_sentences: dev_sents,
        dev_examples,
        device,
    };
    let options = c.train.options(output, Batching::Packed);
    let trainer = Trainer::new(params, options);
    let dropout = Dropout::new(c.student.dropout, c.train.seed.wrapping_add(1));
    let report = trainer.run(&task, &dropout)?;
    Ok(DistillReport {
        dev: report.best_metrics.clone().unwrap_or_default(),
        train: report,
        model_dir: trainer.best_dir(),
        data,
    })
}

/// Label ids of the labelled sentences in the teacher's label map; a tag outside it is an
/// error naming the sentence.
fn label_ids(
    meta: &ModelMeta,
    sentences: &[Sentence],
    path: &Path,
) -> Result<Vec<Vec<u32>>, DistillError> {
    let labels = &meta.labels;
    let ids = sentences.iter().map(|s| {
        s.tags
            .iter()
            .map(|t| {
                labels
                    .id(t)
                    .ok_or_else(|| crate::stages::ner::NerError::Data {
                        path: path.to_path_buf(),
                        line: s.line,
                        message: format!(
                            "tag {t:?} is not one of the teacher's labels {:?}",
                            labels.labels
                        ),
                    })
            })
            .collect::<Result<Vec<u32>, _>>()
    });
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Evaluates the student of a configuration (`OUTPUT/best`) on `split` with its dense
/// layers at `precision`.
pub fn evaluate_config(
    path: &Path,
    overrides: &[String],
    split: Split,
    precision: Precision,
) -> Result<NerMetrics, DistillError> {
    let r = resolve(path, overrides)?;
    let file = match split {
        Split::Train => r.train.clone(),
        Split::Dev => r.dev.clone(),
        Split::Test => r
            .test
            .clone()
            .ok_or_else(|| r.source.error("data.test", "no test file is configured"))?,
    };
    let mut sentences = read(&file, r.config.data.format)?;
    if split == Split::Train && r.config.data.max_train > 0 {
        sentences.truncate(r.config.data.max_train);
    }
    let model = NerModel::load_at(&r.output_dir.join("best"), &Device::Cpu, precision)?;
    let annotator = Annotator::from_table(&r.knowledge, None)?;
    if let Some(a) = &annotator {
        a.record().same_as(model.knowledge())?;
    }
    let docs = documents(annotator.as_ref(), &texts(&sentences))?;
    Ok(model.evaluate(&sentences, &docs)?)
}

/// Each sentence's characters.
fn chars(sentences: &[Sentence]) -> Vec<Vec<String>> {
    sentences.iter().map(|s| s.chars.clone()).collect()
}

/// Each sentence's text.
fn texts(sentences: &[Sentence]) -> Vec<String> {
    sentences.iter().map(Sentence::text).collect()
}

/// Distillation as a trainable task.
pub struct Distill;

/// Distillation in the trainable-task registry ([`crate::stages::training::TASKS`]).
pub static TASK: Trainable = register::<Distill>();

impl Task for Distill {
    type Resolved = ConfigFile;
    type Metrics = NerMetrics;
    type Error = DistillError;
    const KIND: TaskKind = TaskKind::Distill;
    const METRIC: &'static str = "f1";

    fn resolve(
        path: &Path,
        overrides: &[String],
        _purpose: Purpose,
    ) -> Result<ConfigFile, DistillError> {
        resolve(path, overrides)?;
        Ok(ConfigFile::new(path, overrides))
    }

    fn train(f: ConfigFile) -> Result<Trained, DistillError> {
        let r = train_config(&f.path, &f.overrides)?;
        Ok(Trained {
            details: serde_json::to_value(&r.data).ok(),
            dev: r.dev,
            train: Some(r.train),
            model_dir: r.model_dir,
        })
    }

    fn evaluate(
        f: ConfigFile,
        split: Split,
        precision: Precision,
    ) -> Result<NerMetrics, DistillError> {
        evaluate_config(&f.path, &f.overrides, split, precision)
    }
}
