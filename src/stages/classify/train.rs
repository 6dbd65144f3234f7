//! Training and evaluating a classification model from its TOML file: reads the data, builds
//! the label set, links the texts (K-BERT, ERNIE), featurizes them, creates the network from
//! the pretrained encoder (its pooler when the checkpoint has one) and runs
//! [`crate::train::Trainer`]; the best model's dev confusion matrix is drawn to
//! `OUTPUT/confusion.svg`.
use std::path::Path;

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::config::{ClassWeights, ClassifyConfig};
use super::data::{label_set, read, ClassifyExample, DataFormat, Fields};
use super::features::{Batch, Example, Featurizer};
use super::metrics::{confusion_svg, score, score_multi, ClassifyMetrics, Confusion};
use super::model::{
    build_featurizer, decide, predict_examples, ClassifyModel, ModelMeta, META_FILE, TOML_FILE,
    WEIGHTS_FILE,
};
use super::network::{ClassifyNetwork, LossWeights};
use super::ClassifyError;
use crate::doc::Document;
use crate::knowledge::{DocumentKnowledge, Layout};
use crate::model::{Dropout, Precision};
use crate::stages::task::{
    documents, register, resolve_config, trainable_params, Annotator, ModelDir, Purpose, Resolved,
    Split, Task, TaskKind, Trainable, Trained, TrainingKnowledge, TrainingVars,
};
use crate::train::{BatchLoss, Batching, Evaluation, TrainError, TrainTask, Trainer};

/// Classification as a trainable task.
pub struct Classify;

/// Classification in the trainable-task registry ([`crate::stages::training::TASKS`]).
pub static TASK: Trainable = register::<Classify>();

/// The fields of a configuration's data files.
fn fields(c: &ClassifyConfig) -> Fields {
    let d = &c.data;
    Fields {
        annotations: crate::stages::annotation::ReadOptions {
            offsets: d.offsets,
            use_predictions: d.use_predictions,
        },
        ..Fields::new(
            d.format,
            d.text_field.as_deref(),
            d.text_b_field.as_deref(),
            &d.label_field,
            c.head.multi_label.then_some(d.label_separator.as_str()),
        )
    }
}

/// Linked documents of the examples' first texts and (for pairs) second texts.
pub fn example_documents(
    annotator: Option<&Annotator>,
    examples: &[ClassifyExample],
) -> Result<(Vec<Document>, Vec<Option<Document>>), ClassifyError> {
    let a: Vec<&str> = examples.iter().map(|e| e.text_a.as_str()).collect();
    let docs_a = documents(annotator, &a)?;
    let b: Vec<&str> = examples
        .iter()
        .filter_map(|e| e.text_b.as_deref())
        .collect();
    let mut docs_b = documents(annotator, &b)?.into_iter();
    let docs_b = examples
        .iter()
        .map(|e| e.text_b.as_ref().and_then(|_| docs_b.next()))
        .collect();
    Ok((docs_a, docs_b))
}

/// Encodes labelled examples (in parallel); a label outside `labels` is an error naming the
/// line of `path`.
pub fn featurize(
    featurizer: &Featurizer,
    labels: &[String],
    examples: &[ClassifyExample],
    (docs_a, docs_b): (&[Document], &[Option<Document>]),
    path: &Path,
) -> Result<Vec<Example>, ClassifyError> {
    examples
        .par_iter()
        .enumerate()
        .map(|(i, e)| {
            let ids = e
                .labels
                .iter()
                .map(|l| {
                    labels
                        .iter()
                        .position(|x| x == l)
                        .map(|p| p as u32)
                        .ok_or_else(|| ClassifyError::Data {
                            path: path.to_path_buf(),
                            line: e.line,
                            message: format!(
                                "label {l:?} is not one of the model's labels {labels:?}"
                            ),
                        })
                })
                .collect::<Result<Vec<u32>, _>>()?;
            let a = DocumentKnowledge::new(&docs_a[i]);
            let b = docs_b[i].as_ref().map(DocumentKnowledge::new);
            Ok(featurizer.encode(&a, b.as_ref(), ids)?.0)
        })
        .collect()
}

/// Scores `predicted` probabilities against the examples' gold label ids.
pub fn metrics(meta: &ModelMeta, gold: &[Vec<u32>], probabilities: &[Vec<f32>]) -> ClassifyMetrics {
    let predicted: Vec<Vec<u32>> = probabilities
        .iter()
        .map(|p| decide(p, meta.multi_label, meta.threshold))
        .collect();
    if meta.multi_label {
        score_multi(&meta.labels, gold, &predicted)
    } else {
        let first = |v: &Vec<u32>| v.first().copied().unwrap_or(0);
        let gold: Vec<u32> = gold.iter().map(first).collect();
        let predicted: Vec<u32> = predicted.iter().map(first).collect();
        score(&meta.labels, &gold, &predicted)
    }
}

/// The loss weights `class_weights` asks for, from the training examples' label ids.
fn loss_weights(
    rule: ClassWeights,
    multi_label: bool,
    k: usize,
    train: &[Example],
    device: &Device,
) -> candle_core::Result<LossWeights> {
    if rule == ClassWeights::None {
        return Ok(LossWeights::default());
    }
    let mut counts = vec![0usize; k];
    for e in train {
        for &l in &e.labels {
            counts[l as usize] += 1;
        }
    }
    let n = train.len() as f32;
    let weights: Vec<f32> = counts
        .iter()
        .map(|&c| {
            let c = c.max(1) as f32;
            if multi_label {
                (n - c).max(1.0) / c
            } else {
                n / (k as f32 * c)
            }
        })
        .collect();
    Ok(LossWeights {
        classes: Some(Tensor::from_vec(weights, k, device)?),
    })
}

/// Everything one training run holds.
struct ClassifyRun {
    network: ClassifyNetwork,
    vars: TrainingVars,
    meta: ModelMeta,
    toml: String,
    train: Vec<Example>,
    dev: Vec<Example>,
    weights: LossWeights,
    entities: Option<crate::knowledge::EntityVectors>,
    device: Device,
}

impl TrainTask for ClassifyRun {
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
        Ok(BatchLoss {
            loss: self.network.loss(&b, dropout, &self.weights)?,
            tokens: b.input.tokens,
            padded_tokens: b.input.padded_tokens,
            batching_seconds,
        })
    }

    fn evaluate(&self) -> Result<Evaluation, TrainError> {
        let probabilities =
            predict_examples(&self.network, &self.dev, &self.device).map_err(TrainError::task)?;
        let gold: Vec<Vec<u32>> = self.dev.iter().map(|e| e.labels.clone()).collect();
        let m = metrics(&self.meta, &gold, &probabilities);
        Ok(Evaluation {
            score: m.accuracy,
            metrics: serde_json::to_value(&m).unwrap_or_default(),
        })
    }

    fn metric_name(&self) -> &'static str {
        Classify::METRIC
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        ModelDir {
            weights_file: WEIGHTS_FILE,
            encoder_dir: &self.vars.encoder_dir,
            tokenizer_files: &[],
            required_tokenizer_files: &["vocab.txt"],
            meta: (META_FILE, &self.meta),
            toml: (TOML_FILE, &self.toml),
        }
        .save(dir, &self.vars.varmap)?;
        if let Some(vectors) = &self.entities {
            vectors.save(dir).map_err(TrainError::task)?;
        }
        Ok(())
    }
}

/// Reads the examples of a file of the configuration.
fn read_file(c: &ClassifyConfig, path: &Path) -> Result<Vec<ClassifyExample>, ClassifyError> {
    read_examples(path, c.data.format, &fields(c))
}

/// Reads the examples of `path`: all single texts or all pairs (else an error naming the
/// first line of the other kind).
pub fn read_examples(
    path: &Path,
    format: DataFormat,
    fields: &Fields,
) -> Result<Vec<ClassifyExample>, ClassifyError> {
    let examples = read(path, format, fields)?;
    let pairs = examples.iter().filter(|e| e.text_b.is_some()).count();
    if pairs != 0 && pairs != examples.len() {
        return Err(ClassifyError::Data {
            path: path.to_path_buf(),
            line: examples
                .iter()
                .find(|e| e.text_b.is_none())
                .map_or(1, |e| e.line),
            message: "some examples are pairs and some are not; expected one kind per file".into(),
        });
    }
    Ok(examples)
}

/// The metrics of `model` on the labelled `examples` of `file`, linked by `annotator` (which
/// must link as the model's training did).
pub fn evaluate_model(
    model: &ClassifyModel,
    examples: &[ClassifyExample],
    annotator: Option<&Annotator>,
    file: &Path,
) -> Result<ClassifyMetrics, ClassifyError> {
    let (docs_a, docs_b) = example_documents(annotator, examples)?;
    let encoded = featurize(
        model.featurizer(),
        model.labels(),
        examples,
        (&docs_a, &docs_b),
        file,
    )?;
    let probabilities = predict_examples(model.network(), &encoded, model.device())?;
    let gold: Vec<Vec<u32>> = encoded.iter().map(|e| e.labels.clone()).collect();
    Ok(metrics(model.meta(), &gold, &probabilities))
}

impl Task for Classify {
    type Resolved = Resolved<ClassifyConfig>;
    type Metrics = ClassifyMetrics;
    type Error = ClassifyError;
    const KIND: TaskKind = TaskKind::Classify;
    const METRIC: &'static str = "accuracy";

    fn resolve(
        path: &Path,
        overrides: &[String],
        purpose: Purpose,
    ) -> Result<Resolved<ClassifyConfig>, ClassifyError> {
        resolve_config(path, overrides, purpose)
    }

    fn train(r: Resolved<ClassifyConfig>) -> Result<Trained, ClassifyError> {
        let transe = r
            .config
            .knowledge
            .transe
            .as_ref()
            .map(|p| r.source.resolve(p));
        let mut extra = crate::files::Plan::new();
        if let Some(t) = &transe {
            extra.read("knowledge.transe", t);
        }
        let output = r.claim_output(&extra).map_err(TrainError::from)?;
        let c = &r.config;
        let mut train_examples = read_file(c, &r.train)?;
        if c.data.max_train > 0 {
            train_examples.truncate(c.data.max_train);
        }
        let dev_file = r.dev_file()?.to_path_buf();
        let dev_examples = read_file(c, &dev_file)?;
        if train_examples[0].text_b.is_some() != dev_examples[0].text_b.is_some() {
            return Err(ClassifyError::Data {
                path: dev_file,
                line: dev_examples[0].line,
                message:
                    "the training file has pairs and this one single texts, or the other way round"
                        .into(),
            });
        }
        let labels = label_set(&[&train_examples, &dev_examples]);
        let knowledge = TrainingKnowledge::prepare(
            &r.knowledge_table(),
            &r.encoder,
            transe.as_deref(),
            c.train.seed,
        )?;
        let meta = ModelMeta {
            labels,
            max_len: c.data.max_len,
            pooling: c.head.pooling,
            multi_label: c.head.multi_label,
            threshold: c.head.threshold,
            pairs: train_examples[0].text_b.is_some(),
            knowledge: knowledge.record.clone(),
        };
        let featurizer = build_featurizer(&r.encoder, &meta, knowledge.entities.clone())?;
        let annotator = knowledge.annotator.as_ref();
        let docs = example_documents(annotator, &train_examples)?;
        let train = featurize(
            &featurizer,
            &meta.labels,
            &train_examples,
            (&docs.0, &docs.1),
            &r.train,
        )?;
        let docs = example_documents(annotator, &dev_examples)?;
        let dev = featurize(
            &featurizer,
            &meta.labels,
            &dev_examples,
            (&docs.0, &docs.1),
            &dev_file,
        )?;
        let device = Device::Cpu;
        let ernie = knowledge.ernie(&device)?;
        let ernie_layers = ernie.as_ref().map(|(n, _)| *n);
        let k = meta.labels.len();
        let (network, vars) = TrainingVars::build(
            &r.encoder,
            ernie_layers,
            knowledge.pretrained.as_ref(),
            (&["classifier", "pooler"], &["pooler."]),
            c.train.seed,
            &device,
            |vb, cfg| {
                ClassifyNetwork::load(
                    vb,
                    cfg,
                    k,
                    meta.pooling,
                    meta.multi_label,
                    ernie.map(|(_, table)| table),
                )
            },
        )?;
        let network = network.freeze_encoder(c.encoder.freeze);
        let params = trainable_params(
            &vars.varmap,
            c.encoder.freeze,
            &["classifier.", "pooler."],
            &[],
        );
        let weights = loss_weights(c.head.class_weights, meta.multi_label, k, &train, &device)?;
        let t = &c.train;
        let output_dir = output.dir().to_path_buf();
        let run = ClassifyRun {
            network,
            vars,
            meta,
            toml: r.toml.clone(),
            train,
            dev,
            weights,
            entities: knowledge.entities,
            device,
        };
        let trainer = Trainer::new(params, t.options(output, Batching::Packed));
        let dropout = Dropout::new(c.encoder.dropout, t.seed.wrapping_add(1));
        let report = trainer.run(&run, &dropout)?;
        let dev_metrics = report.best_metrics.clone().unwrap_or_default();
        if let Some(confusion) = dev_metrics
            .get("confusion")
            .and_then(|v| serde_json::from_value::<Confusion>(v.clone()).ok())
        {
            let path = output_dir.join("confusion.svg");
            let svg = confusion_svg(&confusion, "dev confusion matrix (best model)").map_err(
                |message| ClassifyError::Chart {
                    path: path.clone(),
                    message,
                },
            )?;
            crate::files::write_file(&path, svg)?;
        }
        Ok(Trained {
            details: Some(serde_json::json!({
                "train_examples": run.train.len(),
                "dev_examples": run.dev.len(),
                "labels": run.meta.labels,
                "pairs": run.meta.pairs,
            })),
            dev: dev_metrics,
            train: Some(report),
            model_dir: trainer.best_dir(),
        })
    }

    fn evaluate(
        r: Resolved<ClassifyConfig>,
        split: Split,
        precision: Precision,
    ) -> Result<ClassifyMetrics, ClassifyError> {
        let file = r.split_file(split)?.to_path_buf();
        let examples = read_file(&r.config, &file)?;
        let model = ClassifyModel::load_at(&r.output_dir.join("best"), &Device::Cpu, precision)?;
        let annotator =
            Annotator::from_table(&r.knowledge_table(), model.knowledge().ernie_layers)?;
        if let Some(a) = &annotator {
            a.record().same_as(model.knowledge())?;
        }
        evaluate_model(&model, &examples, annotator.as_ref(), &file)
    }
}
