//! Distilling a trained classification model: the labelled examples (single texts or pairs)
//! and the unlabelled texts are linked and encoded exactly as the teacher's training did (its
//! labels, `max_len`, pair layout and knowledge), every batch runs through the teacher
//! (forward only, no gradient) and the student, and the soft labels are each example's label
//! distribution: a softmax over the labels, or for a multi-label teacher a sigmoid per label.
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use super::config::Resolved;
use super::loss::{layer_losses, soft_label_loss, soft_sigmoid_loss};
use super::student::{student_network, write_student_config};
use super::train::{
    refuse_ernie, teacher_annotator, unlabelled_lines, DistillData, DistillReport, Weights,
};
use super::DistillError;
use crate::knowledge::Layout;
use crate::model::{Dropout, Kernels, Precision};
use crate::stages::classify::data::{ClassifyExample, Fields};
use crate::stages::classify::features::{Batch, Example};
use crate::stages::classify::model::{
    build_featurizer, predict_examples, ModelMeta, META_FILE, TOML_FILE, WEIGHTS_FILE,
};
use crate::stages::classify::network::{ClassifyNetwork, LossWeights};
use crate::stages::classify::train::{
    evaluate_model, example_documents, featurize, metrics, read_examples,
};
use crate::stages::classify::{ClassifyMetrics, ClassifyModel};
use crate::stages::task::{map_weights, read_trained, trainable_params, ModelDir, Split};
use crate::train::{BatchLoss, Batching, Evaluation, TrainError, TrainOutput, TrainTask, Trainer};

/// Everything one classification distillation run holds.
struct ClassifyDistill {
    teacher: ClassifyNetwork,
    student: ClassifyNetwork,
    varmap: VarMap,
    layers: Vec<usize>,
    weights: Weights,
    meta: ModelMeta,
    teacher_dir: PathBuf,
    toml: String,
    train: Vec<Example>,
    labelled: Vec<bool>,
    dev: Vec<Example>,
    device: Device,
}

impl ClassifyDistill {
    /// The soft-label loss of the student's logits against the teacher's.
    fn soft_loss(&self, student: &Tensor, teacher: &Tensor) -> candle_core::Result<Tensor> {
        let t = self.weights.temperature;
        if self.meta.multi_label {
            soft_sigmoid_loss(student, teacher, t)
        } else {
            soft_label_loss(student, teacher, t)
        }
    }

    /// The hard-label loss of the labelled examples among `batch` (zero when none is).
    fn hard_loss(&self, logits: &Tensor, batch: &[usize], b: &Batch) -> Result<Tensor, TrainError> {
        let rows: Vec<u32> = (0..batch.len() as u32)
            .filter(|&j| self.labelled[batch[j as usize]])
            .collect();
        let none = LossWeights::default();
        if rows.len() == batch.len() {
            return Ok(self.student.logits_loss(logits, &b.labels, &none)?);
        }
        if rows.is_empty() {
            return Ok(logits.sum_all()?.affine(0.0, 0.0)?);
        }
        let labels: Vec<Vec<u32>> = rows.iter().map(|&j| b.labels[j as usize].clone()).collect();
        let n = rows.len();
        let kept = logits.index_select(&Tensor::from_vec(rows, n, &self.device)?, 0)?;
        Ok(self.student.logits_loss(&kept, &labels, &none)?)
    }
}

impl TrainTask for ClassifyDistill {
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
        let student_logits;
        if w.traced() {
            let teacher = self.teacher.encoder().forward_traced(&b.input, &off)?;
            let student = self.student.encoder().forward_traced(&b.input, dropout)?;
            let teacher_logits = self.teacher.head(teacher.last()?, &b, &off)?.detach();
            student_logits = self.student.head(student.last()?, &b, dropout)?;
            loss = self
                .soft_loss(&student_logits, &teacher_logits)?
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
            let teacher_logits = self.teacher.logits(&b, &off)?.detach();
            student_logits = self.student.logits(&b, dropout)?;
            loss = self
                .soft_loss(&student_logits, &teacher_logits)?
                .affine(1.0 - w.alpha, 0.0)?;
        }
        if w.alpha > 0.0 {
            let hard = self.hard_loss(&student_logits, batch, &b)?;
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
        let probabilities =
            predict_examples(&self.student, &self.dev, &self.device).map_err(TrainError::task)?;
        let gold: Vec<Vec<u32>> = self.dev.iter().map(|e| e.labels.clone()).collect();
        let m = metrics(&self.meta, &gold, &probabilities);
        Ok(Evaluation {
            score: m.accuracy,
            metrics: serde_json::to_value(&m).unwrap_or_default(),
        })
    }

    fn metric_name(&self) -> &'static str {
        "accuracy"
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        ModelDir {
            weights_file: WEIGHTS_FILE,
            encoder_dir: &self.teacher_dir,
            tokenizer_files: &[],
            required_tokenizer_files: &["vocab.txt"],
            meta: (META_FILE, &self.meta),
            toml: (TOML_FILE, &self.toml),
        }
        .save(dir, &self.varmap)?;
        write_student_config(&self.teacher_dir, dir, self.layers.len()).map_err(TrainError::task)
    }
}

/// The teacher's settings (`classify.json`) and its network, with candle ops when the hidden
/// or attention loss needs its intermediate states, else the fused f32 kernels.
fn load_teacher(
    dir: &Path,
    traced: bool,
    device: &Device,
) -> Result<(ModelMeta, ClassifyNetwork), DistillError> {
    let (meta, mut cfg): (ModelMeta, _) = read_trained(dir, META_FILE, Precision::F32)?;
    refuse_ernie(dir, &meta.knowledge)?;
    if traced {
        cfg.kernels = Kernels::Differentiable;
    }
    let vb = map_weights(dir, WEIGHTS_FILE, device)?;
    let network = ClassifyNetwork::load(
        vb,
        &cfg,
        meta.labels.len(),
        meta.pooling,
        meta.multi_label,
        None,
    )?;
    Ok((meta, network))
}

/// The columns or keys of `[data]`'s files, with the classification task's defaults.
fn fields(r: &Resolved, meta: &ModelMeta) -> Result<Fields, DistillError> {
    let d = &r.config.data;
    let format = d
        .format
        .classify()
        .ok_or_else(|| r.source.error("data.format", "not a classification format"))?;
    Ok(Fields::new(
        format,
        d.text_field.as_deref(),
        d.text_b_field.as_deref(),
        d.label_field.as_deref().unwrap_or("label"),
        meta.multi_label
            .then(|| d.label_separator.as_deref().unwrap_or(",")),
    ))
}

/// Reads the examples of `path` and checks they are pairs exactly when the teacher's are.
fn read_checked(
    r: &Resolved,
    meta: &ModelMeta,
    path: &Path,
) -> Result<Vec<ClassifyExample>, DistillError> {
    let fields = fields(r, meta)?;
    let format = r.config.data.format.classify().ok_or_else(|| {
        DistillError::from(r.source.error("data.format", "not a classification format"))
    })?;
    let examples = read_examples(path, format, &fields)?;
    if let Some(first) = examples.iter().find(|e| e.text_b.is_some() != meta.pairs) {
        let (is, teacher) = if meta.pairs {
            ("a single text", "pairs")
        } else {
            ("a pair", "single texts")
        };
        return Err(crate::stages::classify::ClassifyError::Data {
            path: path.to_path_buf(),
            line: first.line,
            message: format!("{is}, but the teacher classifies {teacher}"),
        }
        .into());
    }
    Ok(examples)
}

/// The unlabelled lines as examples: a text per line, or for a pair teacher the two texts
/// separated by a tab.
fn unlabelled_examples(
    path: &Path,
    max: usize,
    pairs: bool,
) -> Result<Vec<ClassifyExample>, DistillError> {
    unlabelled_lines(path, max)?
        .into_iter()
        .map(|(line, text)| {
            let (a, b) = match (pairs, text.split_once('\t')) {
                (false, _) => (text.as_str(), None),
                (true, Some((a, b))) => (a, Some(b)),
                (true, None) => {
                    return Err(DistillError::Unlabelled {
                        path: path.to_path_buf(),
                        line,
                        message: "the teacher classifies pairs: expected TEXT_A<TAB>TEXT_B".into(),
                    })
                }
            };
            let squeeze = |t: &str| t.chars().filter(|c| !c.is_whitespace()).collect();
            Ok(ClassifyExample {
                text_a: squeeze(a),
                text_b: b.map(squeeze),
                labels: Vec::new(),
                line,
            })
        })
        .collect()
}

/// Distils the classification teacher of `r` into its student, trained into `output`.
pub(super) fn train(r: &Resolved, output: TrainOutput) -> Result<DistillReport, DistillError> {
    let c = &r.config;
    let device = Device::Cpu;
    let weights = Weights::of(&c.distill);
    let (meta, teacher) = load_teacher(&r.teacher, weights.traced(), &device)?;
    let annotator = teacher_annotator(r, &meta.knowledge)?;
    let featurizer = build_featurizer(&r.teacher, &meta, None)?;
    let mut labelled = read_checked(r, &meta, &r.train)?;
    if c.data.max_train > 0 {
        labelled.truncate(c.data.max_train);
    }
    let dev_examples = read_checked(r, &meta, &r.dev)?;
    let unlabelled = match &r.unlabelled {
        Some(p) => unlabelled_examples(p, c.distill.max_unlabelled, meta.pairs)?,
        None => Vec::new(),
    };
    let encode =
        |examples: &[ClassifyExample], path: &Path| -> Result<Vec<Example>, DistillError> {
            let docs = example_documents(annotator.as_ref(), examples)?;
            Ok(featurize(
                &featurizer,
                &meta.labels,
                examples,
                (&docs.0, &docs.1),
                path,
            )?)
        };
    let mut train = encode(&labelled, &r.train)?;
    let mut is_labelled = vec![true; train.len()];
    if let Some(path) = &r.unlabelled {
        train.extend(encode(&unlabelled, path)?);
    }
    is_labelled.resize(train.len(), false);
    let dev = encode(&dev_examples, &r.dev)?;
    let (student, varmap, _) =
        student_network(&r.teacher, WEIGHTS_FILE, &r.layers, &device, |vb, cfg| {
            ClassifyNetwork::load(
                vb,
                cfg,
                meta.labels.len(),
                meta.pooling,
                meta.multi_label,
                None,
            )
        })?;
    let params = trainable_params(&varmap, false, &[], &[]);
    let data = DistillData {
        layers: r.layers.clone(),
        labelled: labelled.len(),
        unlabelled: unlabelled.len(),
        windows: train.len(),
    };
    let task = ClassifyDistill {
        teacher,
        student,
        varmap,
        layers: r.layers.clone(),
        weights,
        meta,
        teacher_dir: r.teacher.clone(),
        toml: r.toml.clone(),
        train,
        labelled: is_labelled,
        dev,
        device,
    };
    let trainer = Trainer::new(params, c.train.options(output, Batching::Packed));
    let dropout = Dropout::new(c.student.dropout, c.train.seed.wrapping_add(1));
    let report = trainer.run(&task, &dropout)?;
    Ok(DistillReport {
        dev: report.best_metrics.clone().unwrap_or_default(),
        train: report,
        model_dir: trainer.best_dir(),
        data,
    })
}

/// Evaluates the classification student of `r` (`OUTPUT/best`) on `split` with its dense
/// layers at `precision`.
pub(super) fn evaluate(
    r: &Resolved,
    split: Split,
    precision: Precision,
) -> Result<ClassifyMetrics, DistillError> {
    let model = ClassifyModel::load_at(&r.output_dir.join("best"), &Device::Cpu, precision)?;
    let file = r.split_file(split)?;
    let mut examples = read_checked(r, model.meta(), file)?;
    if split == Split::Train && r.config.data.max_train > 0 {
        examples.truncate(r.config.data.max_train);
    }
    let annotator = teacher_annotator(r, model.knowledge())?;
    Ok(evaluate_model(&model, &examples, annotator.as_ref(), file)?)
}
