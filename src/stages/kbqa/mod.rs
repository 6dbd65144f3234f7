//! KBQA over the graph: answers a question with an object from the KG and the triple that
//! supports it ([`crate::doc::Answer`] with `triple`).
//!
//! Data flow: the pipeline's `link` stage finds the question's mentions and their candidate
//! entities; every outgoing triple of the best of those entities, read from the pipeline's KG,
//! is a candidate answer with hand features ([`candidates`]); the encoder embeds the question
//! with the mention left out and each predicate ([`embed`]); a scorer trained on NLPCC
//! questions with their gold triples ([`scorer`], [`train`]) ranks the candidates. Training
//! links its questions with the same code and options ([`crate::text::link_document`]). A
//! model directory holds its encoder and names its KG by content ([`ModelMeta`]), so it can
//! move. Metrics are in [`metrics`], the TOML schema in [`config`].
use std::path::{Path, PathBuf};

use candle_core::Device;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::doc::{Answer, Document, Mention};
use crate::kg::import::ImportError;
use crate::kg::store::StoreError;
use crate::kg::KgIdentity;
use crate::model::{ModelError, Precision};
use crate::text::{
    link_document, KnowledgeSource, LinkError, LinkOptions, Linker, OverlapPolicy, SourceError,
};

pub mod candidates;
pub mod config;
pub mod data;
pub mod embed;
pub mod metrics;
pub mod scorer;
pub mod stage;
pub mod train;

pub use config::{CandidateOptions, KbqaConfig};
pub use metrics::Metrics;
pub use stage::{KbqaStage, KbqaStageOptions};
pub use train::{evaluate, train, Split, TrainReport, TASK};

use candidates::{gather, COSINE, FEATURES};
use embed::SentenceEncoder;
use scorer::{softmax, Prepared, Scorer};

/// File names inside a trained model directory.
pub const META_FILE: &str = "kbqa.json";
/// The scorer weights.
pub const WEIGHTS_FILE: &str = "scorer.safetensors";
/// The TOML that trained the model.
pub const CONFIG_FILE: &str = "config.toml";
/// The sub-directory holding the encoder's files (config, weights, tokenizer).
pub const ENCODER_DIR: &str = crate::model::hub::ENCODER_SUBDIR;

/// What can go wrong training, loading or running the KBQA stage.
#[derive(Debug, thiserror::Error)]
pub enum KbqaError {
    /// The run's files could not be planned, locked or written.
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    /// A data file could not be read as UTF-8 text (names the file and line).
    #[error(transparent)]
    Read(#[from] crate::textfile::TextFileError),
    /// The TOML configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file could not be read or written.
    #[error("{path}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The question file is malformed.
    #[error("{path}:{line}: {message}", path = .path.display())]
    Data {
        /// The question file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// A trained model directory is incomplete or inconsistent.
    #[error("{path}: {message}", path = .path.display())]
    ModelDir {
        /// The file inside the model directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model's settings file could not be read or written as JSON.
    #[error("{path}", path = .path.display())]
    Json {
        /// The settings file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The KG store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Building the store from the question file's gold triples failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The linker could not be built.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The KG failed while reading candidate triples.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The encoder failed to load or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A tensor operation (weights I/O) failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// What a trained model directory records besides the weights (`kbqa.json`). No path: the
/// encoder is copied into [`ENCODER_DIR`] and the KG is named by its content.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMeta {
    /// Longest encoder input.
    pub max_len: usize,
    /// Encoder batch size.
    pub batch_size: usize,
    /// CandidateTriple generation settings.
    pub link: CandidateOptions,
    /// The linker settings the training questions were linked with; a pipeline running the
    /// model must link with the same (`[link]`).
    pub linker: LinkOptions,
    /// What the training KG held (distinct triples and content hash).
    #[serde(default)]
    pub kg_identity: Option<KgIdentity>,
    /// The training KG's name, for messages (no directory).
    #[serde(default)]
    pub kg_name: Option<String>,
    /// Feature names, in the order the weights expect.
    pub features: Vec<String>,
    /// Embedding width.
    pub dim: usize,
    /// Rank of the bilinear interaction.
    pub rank: usize,
    /// The encoder's `hf:ORG/NAME@COMMIT` id when it came from the Hugging Face cache (as every
    /// trained stage records it, [`crate::stages::task::model_dir::ENCODER_ID_KEY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
}

/// The linker settings candidate generation relies on: every mention kept (the scorer decides),
/// no NIL cut, enough candidates per mention. A pipeline running a KBQA model links with them
/// (`zhishi init pipeline` and `pipelines/kbqa.toml` show the `[link]` table).
pub fn linker_options(opts: &CandidateOptions) -> LinkOptions {
    LinkOptions {
        overlap: OverlapPolicy::All,
        nil_threshold: 0.0,
        max_candidates: opts.candidates.max(1),
        ..LinkOptions::default()
    }
}

/// A question and the mentions linked over its text.
pub type LinkedQuestion<'a> = (&'a str, &'a [Mention]);

/// The untrained part of the stage: the encoder and the candidate settings.
pub struct QuestionPreparer {
    encoder: SentenceEncoder,
    options: CandidateOptions,
}

impl QuestionPreparer {
    /// Loads the encoder in `encoder` onto `device` at `precision`.
    pub fn open(
        encoder: &Path,
        max_len: usize,
        batch_size: usize,
        options: CandidateOptions,
        device: &Device,
        precision: Precision,
    ) -> Result<Self, KbqaError> {
        let encoder = SentenceEncoder::load(encoder, max_len, batch_size, device, precision)?;
        Ok(Self { encoder, options })
    }

    /// Embedding width of the encoder.
    pub fn dim(&self) -> usize {
        self.encoder.dim()
    }

    /// Candidates (triples of `kg`) and embeddings of each linked question, in input order.
    pub fn prepare<S: KnowledgeSource + ?Sized + Sync>(
        &self,
        kg: &S,
        questions: &[LinkedQuestion<'_>],
    ) -> Result<Vec<Prepared>, KbqaError> {
        let gathered: Result<Vec<_>, SourceError> = questions
            .par_iter()
            .map(|(q, mentions)| gather(kg, q, mentions, &self.options))
            .collect();
        let gathered = gathered?;
        let texts: Vec<&str> = questions.iter().map(|(q, _)| *q).collect();
        let states = self.encoder.token_states(&texts)?;
        let predicates: Vec<&str> = gathered
            .iter()
            .flat_map(|g| g.candidates.iter().map(|c| c.triple.predicate.as_str()))
            .collect();
        let mut embeddings = self.encoder.cached(&predicates)?.into_iter();
        let mut out = Vec::with_capacity(questions.len());
        for (mut gathered, states) in gathered.into_iter().zip(states) {
            let questions: Vec<Vec<f32>> = gathered
                .mentions
                .iter()
                .map(|&span| states.pooled(Some(span)))
                .collect();
            let predicates: Vec<_> = embeddings
                .by_ref()
                .take(gathered.candidates.len())
                .collect();
            for (c, p) in gathered.candidates.iter_mut().zip(&predicates) {
                let q = &questions[c.mention];
                c.features[COSINE] = q.iter().zip(p.iter()).map(|(a, b)| a * b).sum();
            }
            out.push(Prepared {
                gathered,
                questions,
                predicates,
            });
        }
        Ok(out)
    }
}

/// Answers of one question from its candidates and their scores, best first: the candidates'
/// softmax probabilities summed per distinct answer text, each answer with its best triple.
/// An answer's `score` is its confidence: that probability times the linker's score of the
/// triple's subject, so an answer found only through a weak link (`你`, `时间`) scores low even
/// when the scorer is sure of the predicate.
pub fn rank_answers(input: &Prepared, scores: &[f32]) -> Vec<Answer> {
    let probs = softmax(scores);
    let mut answers: Vec<(f32, f32, &candidates::CandidateTriple)> = Vec::new();
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    for i in order {
        let candidate = &input.gathered.candidates[i];
        match answers
            .iter_mut()
            .find(|(_, _, c)| c.triple.object == candidate.triple.object)
        {
            Some(a) => a.0 += probs[i],
            None => answers.push((probs[i], probs[i], candidate)),
        }
    }
    answers.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    answers
        .into_iter()
        .map(|(probability, _, candidate)| Answer {
            text: candidate.triple.object.clone(),
            span: None,
            score: probability * candidate.features[candidates::LINK_SCORE],
            triple: Some(candidate.triple.clone()),
            source: None,
        })
        .collect()
}

/// [`rank_answers`] without the answers whose confidence is below `nil_threshold`.
pub fn confident_answers(input: &Prepared, scores: &[f32], nil_threshold: f32) -> Vec<Answer> {
    let mut answers = rank_answers(input, scores);
    answers.retain(|a| a.score >= nil_threshold);
    answers
}

/// A trained KBQA model: encoder plus scorer; the KG and the linked mentions come from the
/// pipeline (or the caller). `Send + Sync`; answering takes `&self`.
pub struct KbqaModel {
    pipeline: QuestionPreparer,
    scorer: Scorer,
    meta: ModelMeta,
}

impl KbqaModel {
    /// Loads a model directory written by [`train`], with the encoder on the CPU in f32.
    pub fn load(dir: &Path) -> Result<Self, KbqaError> {
        Self::load_at(dir, &Device::Cpu, Precision::F32)
    }

    /// Loads a model directory written by [`train`] with the encoder on `device`, its dense
    /// layers at `precision`.
    pub fn load_at(dir: &Path, device: &Device, precision: Precision) -> Result<Self, KbqaError> {
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&meta_path).map_err(|source| KbqaError::Io {
            path: meta_path.clone(),
            source,
        })?;
        let meta: ModelMeta = serde_json::from_str(&text).map_err(|e| {
            let old = text.contains("\"store\"") && !text.contains("\"linker\"");
            KbqaError::ModelDir {
                path: meta_path.clone(),
                message: if old {
                    "written by an older zhishi that linked through the store path it recorded; retrain it (zhishi train CONFIG.toml)".into()
                } else {
                    e.to_string()
                },
            }
        })?;
        if meta.features != FEATURES {
            return Err(KbqaError::ModelDir {
                path: meta_path,
                message: format!(
                    "trained with features {:?}, this build computes {:?}; retrain",
                    meta.features, FEATURES
                ),
            });
        }
        let pipeline = QuestionPreparer::open(
            &dir.join(ENCODER_DIR),
            meta.max_len,
            meta.batch_size,
            meta.link.clone(),
            device,
            precision,
        )?;
        if pipeline.dim() != meta.dim {
            return Err(KbqaError::ModelDir {
                path: meta_path,
                message: format!(
                    "trained for {}-wide embeddings, the encoder gives {}",
                    meta.dim,
                    pipeline.dim()
                ),
            });
        }
        let scorer = Scorer::load(&dir.join(WEIGHTS_FILE), meta.dim, meta.rank)?;
        Ok(Self {
            pipeline,
            scorer,
            meta,
        })
    }

    /// The model answering with `nil_threshold` instead of the recorded one.
    pub fn with_nil_threshold(mut self, nil_threshold: f32) -> Self {
        self.meta.link.nil_threshold = nil_threshold;
        self
    }

    /// Saves weights and metadata into `dir` (created if missing), with a copy of the encoder
    /// in `encoder` (hard links where the file system allows).
    pub(crate) fn save_parts(
        dir: &Path,
        meta: &ModelMeta,
        scorer: &Scorer,
        encoder: &Path,
    ) -> Result<(), KbqaError> {
        let io = |path: PathBuf| move |source| KbqaError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        copy_encoder(encoder, &dir.join(ENCODER_DIR))?;
        let meta_path = dir.join(META_FILE);
        let json = serde_json::to_string_pretty(meta).map_err(|source| KbqaError::Json {
            path: meta_path.clone(),
            source,
        })?;
        std::fs::write(&meta_path, json).map_err(io(meta_path.clone()))?;
        scorer.save(&dir.join(WEIGHTS_FILE))
    }

    /// What the model directory recorded.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The linker settings questions must be linked with (those of training).
    pub fn linker_options(&self) -> &LinkOptions {
        &self.meta.linker
    }

    /// Answers to each question, best first, each with its supporting triple from `kg` (empty
    /// when no mention links to an entity of the KG, or none confidently enough). The mentions
    /// must come from a linker with [`KbqaModel::linker_options`] over `kg`.
    pub fn answer_linked<S: KnowledgeSource + ?Sized + Sync>(
        &self,
        kg: &S,
        questions: &[LinkedQuestion<'_>],
    ) -> Result<Vec<Vec<Answer>>, KbqaError> {
        let prepared = self.pipeline.prepare(kg, questions)?;
        Ok(prepared
            .par_iter()
            .map(|p| confident_answers(p, &self.scorer.scores(p), self.meta.link.nil_threshold))
            .collect())
    }

    /// Links `questions` with `linker` and answers them from its KG: for a library user
    /// without a pipeline. Build the linker with [`KbqaModel::linker_options`].
    pub fn answer_batch<S: KnowledgeSource + Sync>(
        &self,
        linker: &Linker<S>,
        questions: &[&str],
    ) -> Result<Vec<Vec<Answer>>, KbqaError> {
        let docs: Vec<Document> = questions
            .par_iter()
            .map(|q| {
                let mut doc = Document::new(*q);
                link_document(linker, &mut doc, false);
                doc
            })
            .collect();
        let linked: Vec<LinkedQuestion<'_>> = docs
            .iter()
            .map(|d| (d.text.as_str(), d.mentions.as_slice()))
            .collect();
        self.answer_linked(linker.source(), &linked)
    }

    /// [`KbqaModel::answer_batch`] for one question.
    pub fn answer<S: KnowledgeSource + Sync>(
        &self,
        linker: &Linker<S>,
        question: &str,
    ) -> Result<Vec<Answer>, KbqaError> {
        Ok(self
            .answer_batch(linker, &[question])?
            .pop()
            .unwrap_or_default())
    }
}

/// Copies the encoder checkpoint's config, weights and tokenizer files from `from` into `to`
/// (hard links when possible): the model directory then holds everything it runs with.
fn copy_encoder(from: &Path, to: &Path) -> Result<(), KbqaError> {
    use crate::model::load::{CONFIG_FILES, WEIGHT_FILES};
    let io = |path: PathBuf| move |source| KbqaError::Io { path, source };
    std::fs::create_dir_all(to).map_err(io(to.to_path_buf()))?;
    let first = |names: &[&str]| names.iter().map(|n| from.join(n)).find(|p| p.is_file());
    let required = [
        (first(&CONFIG_FILES), "config.json"),
        (
            first(&WEIGHT_FILES),
            "model.safetensors or pytorch_model.bin",
        ),
        (
            first(&["tokenizer.json", "vocab.txt"]),
            "tokenizer.json or vocab.txt",
        ),
    ];
    let mut files = Vec::new();
    for (found, what) in required {
        files.push(found.ok_or_else(|| KbqaError::ModelDir {
            path: from.to_path_buf(),
            message: format!("the encoder has no {what}"),
        })?);
    }
    for optional in [
        "vocab.txt",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        let path = from.join(optional);
        if path.is_file() && !files.contains(&path) {
            files.push(path);
        }
    }
    for file in files {
        let Some(name) = file.file_name() else {
            continue;
        };
        let target = to.join(name);
        if target.exists() {
            std::fs::remove_file(&target).map_err(io(target.clone()))?;
        }
        if std::fs::hard_link(&file, &target).is_err() {
            std::fs::copy(&file, &target).map_err(io(file.clone()))?;
        }
    }
    Ok(())
}

/// Compile-time check that one model can serve many threads.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<KbqaModel>();
};

#[cfg(test)]
mod tests {
    use super::candidates::{CandidateTriple, Gathered, N_FEATURES};
    use super::*;
    use crate::doc::Triple;

    fn candidate(
        mention: usize,
        link_score: f32,
        predicate: &str,
        object: &str,
    ) -> CandidateTriple {
        let mut features = [0.0; N_FEATURES];
        features[candidates::LINK_SCORE] = link_score;
        CandidateTriple {
            mention,
            entity: mention as u32,
            triple: Triple {
                subject: format!("e{mention}"),
                predicate: predicate.into(),
                object: object.into(),
            },
            features,
        }
    }

    fn prepared(candidates: Vec<CandidateTriple>) -> Prepared {
        Prepared {
            gathered: Gathered {
                mentions: vec![(0, 1), (2, 4)],
                candidates,
            },
            ..Prepared::default()
        }
    }

    #[test]
    fn confidence_is_answer_probability_times_link_score() {
        let input = prepared(vec![
            candidate(0, 0.9, "作者", "甲"),
            candidate(1, 0.5, "作者", "乙"),
        ]);
        // Equal scorer scores: each answer has probability 0.5.
        let answers = rank_answers(&input, &[0.0, 0.0]);
        let scores: Vec<(String, f32)> =
            answers.iter().map(|a| (a.text.clone(), a.score)).collect();
        assert_eq!(scores.len(), 2);
        assert!((scores[0].1 - 0.45).abs() < 1e-6, "{scores:?}");
        assert!((scores[1].1 - 0.25).abs() < 1e-6, "{scores:?}");
    }

    #[test]
    fn a_question_linked_only_weakly_gets_no_answer() {
        // The scorer is sure of the predicate, but the subject came from a weak link (a generic
        // word, as when the question's real topic is not in the KG).
        let input = prepared(vec![
            candidate(0, 0.05, "出版社", "某出版社"),
            candidate(0, 0.05, "作者", "某人"),
        ]);
        let scores = [8.0, 0.0];
        assert_eq!(confident_answers(&input, &scores, 0.0).len(), 2);
        assert!(confident_answers(&input, &scores, 0.1).is_empty());
        let strong = prepared(vec![candidate(1, 0.9, "出版社", "某出版社")]);
        let kept = confident_answers(&strong, &[8.0], 0.1);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].text, "某出版社");
    }

    #[test]
    fn settings_record_the_hub_id_and_older_files_still_load() {
        let options = CandidateOptions::default();
        let meta = ModelMeta {
            max_len: 32,
            batch_size: 8,
            linker: linker_options(&options),
            link: options,
            kg_identity: None,
            kg_name: None,
            features: vec!["link_score".into()],
            dim: 4,
            rank: 2,
            encoder: None,
        };
        let plain = serde_json::to_value(&meta).unwrap();
        assert!(plain.get("encoder").is_none(), "no key without an id");
        let back: ModelMeta = serde_json::from_value(plain.clone()).unwrap();
        assert_eq!(back.encoder, None);
        let mut with_id = plain;
        with_id["encoder"] = "hf:org/name@0123456789abcdef0123456789abcdef01234567".into();
        let back: ModelMeta = serde_json::from_value(with_id).unwrap();
        assert_eq!(
            back.encoder.as_deref(),
            Some("hf:org/name@0123456789abcdef0123456789abcdef01234567")
        );
    }
}
