//! Distilling a trained NER model: the labelled and unlabelled sentences are linked and
//! windowed exactly as the teacher's training did (its labels, windowing and knowledge), every
//! batch runs through the teacher (forward only, no gradient) and the student, and the soft
//! labels are each character's tag distribution (the emissions the CRF decodes).
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use super::config::Resolved;
use super::loss::{layer_losses, soft_label_loss};
use super::student::{student_network, write_student_config};
use super::train::{
    refuse_ernie, teacher_annotator, unlabelled_lines, DistillData, DistillReport, Weights,
};
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
use crate::stages::task::{documents, map_weights, read_trained, trainable_params, Split};
use crate::train::{BatchLoss, Batching, Evaluation, TrainError, TrainOutput, TrainTask, Trainer};

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
        self.weights.traced()
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
        let batching_started = std::time::Instant::now();
        let b = Batch::with_layout(&examples, layout, &self.device)?;
        let batching_seconds = batching_started.elapsed().as_secs_f64();
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
            let layer_loss = layer_losses(
                &student,
                &teacher,
                &self.layers,
                (w.hidden, w.attention),
                &b.input.attention_mask,
            )?;
            if let Some(extra) = layer_loss {
                loss = (loss + extra)?;
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
            batching_seconds,
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
    refuse_ernie(dir, &meta.knowledge)?;
    if traced {
        cfg.kernels = Kernels::Differentiable;
    }
    let vb = map_weights(dir, WEIGHTS_FILE, device)?;
    let network = NerNetwork::load(vb, &cfg, &meta.labels, meta.crf)?;
    Ok((meta, network))
}

/// Distils the NER teacher of `r` into its student, trained into `output`.
pub(super) fn train(r: &Resolved, output: TrainOutput) -> Result<DistillReport, DistillError> {
    let c = &r.config;
    let device = Device::Cpu;
    let (meta, teacher) = load_teacher(&r.teacher, c.distill.traced(), &device)?;
    let annotator = teacher_annotator(r, &meta.knowledge)?;
    let featurizer = build_featurizer(&r.teacher, &meta, None)?;
    let format = ner_format(r)?;
    let mut train_sents = read(&r.train, format)?;
    if c.data.max_train > 0 {
        train_sents.truncate(c.data.max_train);
    }
    let dev_sents = read(&r.dev, format)?;
    let train_ids = label_ids(&meta, &train_sents, &r.train)?;
    let docs = documents(annotator.as_ref(), &texts(&train_sents))?;
    let (labelled, _) = featurize(&featurizer, &docs, &chars(&train_sents), &train_ids)?;
    let mut train: Vec<Example> = labelled
        .into_iter()
        .filter(|e| e.labelled().next().is_some())
        .collect();
    let mut is_labelled = vec![true; train.len()];
    let extra = match &r.unlabelled {
        Some(p) => unlabelled_lines(p, c.distill.max_unlabelled)?
            .into_iter()
            .map(|(_, text)| text)
            .collect(),
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
    let (student, varmap, _) =
        student_network(&r.teacher, WEIGHTS_FILE, &r.layers, &device, |vb, cfg| {
            NerNetwork::load(vb, cfg, &meta.labels, meta.crf)
        })?;
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
        weights: Weights::of(&c.distill),
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

/// Evaluates the NER student of `r` (`OUTPUT/best`) on `split` with its dense layers at
/// `precision`.
pub(super) fn evaluate(
    r: &Resolved,
    split: Split,
    precision: Precision,
) -> Result<NerMetrics, DistillError> {
    let mut sentences = read(r.split_file(split)?, ner_format(r)?)?;
    if split == Split::Train && r.config.data.max_train > 0 {
        sentences.truncate(r.config.data.max_train);
    }
    let model = NerModel::load_at(&r.output_dir.join("best"), &Device::Cpu, precision)?;
    let annotator = teacher_annotator(r, model.knowledge())?;
    let docs = documents(annotator.as_ref(), &texts(&sentences))?;
    Ok(model.evaluate(&sentences, &docs)?)
}

/// The NER reader's format of `[data]` (checked against the teacher by `resolve`).
fn ner_format(r: &Resolved) -> Result<crate::stages::ner::data::DataFormat, DistillError> {
    r.config
        .data
        .format
        .ner()
        .ok_or_else(|| r.source.error("data.format", "not an NER format").into())
}

/// Each sentence's characters.
fn chars(sentences: &[Sentence]) -> Vec<Vec<String>> {
    sentences.iter().map(|s| s.chars.clone()).collect()
}

/// Each sentence's text.
fn texts(sentences: &[Sentence]) -> Vec<String> {
    sentences.iter().map(Sentence::text).collect()
}
