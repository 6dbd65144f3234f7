//! The knowledge a task stage adds to its encoder input, built from its `[knowledge]` table:
//! nothing, K-BERT facts about the mentions a linker over the table's KG finds, ERNIE-THU
//! entity rows on those mentions' first tokens, or both.
use std::path::PathBuf;

use super::config::{KnowledgeMode, KnowledgeTable};
use crate::kg::import::{Format, ImportError, ImportOptions};
use crate::knowledge::{tree_from_text, EntityAligner, EntityVectors, SentenceTree, TreeWord};
use crate::text::{LinkError, LinkOptions, Linker, MemoryKg};

/// Why the knowledge of a `[knowledge]` table could not be set up or applied.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// A knowledge mode that links mentions without a `kg` file.
    #[error("knowledge mode {0:?} without a kg file")]
    NoKg(&'static str),
    /// An ERNIE mode without the entity vectors it fuses.
    #[error("knowledge mode {0:?} without entity vectors")]
    NoEntityVectors(&'static str),
    /// The KG file could not be read (strictly: a bad line is an error).
    #[error("reading the KG {path}: {source}")]
    Import {
        /// The KG file.
        path: PathBuf,
        /// What went wrong.
        source: ImportError,
    },
    /// The linker could not be built or failed on a text.
    #[error("entity linking: {0}")]
    Link(#[from] LinkError),
}

/// Knowledge added to the input.
pub enum Knowledge {
    /// Characters only.
    Plain,
    /// K-BERT: each linked mention is followed by its `max_entities` most relevant facts.
    Kbert {
        /// Links mentions in each input's text.
        linker: Box<Linker<MemoryKg>>,
        /// Facts injected per mention.
        max_entities: usize,
        /// Inject `predicate + object` instead of the object alone.
        with_predicate: bool,
    },
    /// ERNIE-THU: linked entities' rows on their mentions' first tokens, optionally with
    /// K-BERT injection through the same linker (mode `both`).
    Ernie {
        /// Links mentions and maps their entities to rows of the entity vectors.
        aligner: Box<EntityAligner<MemoryKg>>,
        /// K-BERT injection as well: `(max_entities, with_predicate)`.
        inject: Option<(usize, bool)>,
    },
}

impl Knowledge {
    /// The knowledge `table` describes; with a linking mode, reads its KG (strictly: a bad line
    /// in a model's KG is an error, not a silently smaller KG) and builds the linker. ERNIE
    /// modes fuse `vectors` (the model's entity table).
    pub fn from_table(
        table: &KnowledgeTable,
        vectors: Option<EntityVectors>,
    ) -> Result<Self, KnowledgeError> {
        let mode = table.mode;
        Ok(match mode {
            KnowledgeMode::Plain => Knowledge::Plain,
            KnowledgeMode::Kbert => Knowledge::Kbert {
                linker: Box::new(linker(table)?),
                max_entities: table.max_entities,
                with_predicate: table.with_predicate,
            },
            KnowledgeMode::Ernie | KnowledgeMode::Both => {
                let vectors = vectors.ok_or(KnowledgeError::NoEntityVectors(mode.name()))?;
                Knowledge::Ernie {
                    aligner: Box::new(EntityAligner::new(linker(table)?, vectors)),
                    inject: mode
                        .injects()
                        .then_some((table.max_entities, table.with_predicate)),
                }
            }
        })
    }

    /// The linker and `(max_entities, with_predicate)` of K-BERT injection, if any.
    fn injection(&self) -> Option<(&Linker<MemoryKg>, usize, bool)> {
        match self {
            Knowledge::Plain => None,
            Knowledge::Kbert {
                linker,
                max_entities,
                with_predicate,
            } => Some((linker, *max_entities, *with_predicate)),
            Knowledge::Ernie { aligner, inject } => {
                inject.map(|(k, with_predicate)| (aligner.linker(), k, with_predicate))
            }
        }
    }

    /// Facts injected per word (0 without knowledge).
    pub fn max_entities(&self) -> usize {
        self.injection().map_or(0, |(_, k, _)| k)
    }

    /// The sentence tree of `chars`: one word per item without knowledge; with K-BERT, the
    /// linker's words with facts hung after linked mentions. The words concatenate to the text.
    pub fn tree(&self, chars: &[String]) -> Result<SentenceTree, KnowledgeError> {
        match self.injection() {
            None => Ok(SentenceTree {
                words: chars
                    .iter()
                    .map(|c| TreeWord {
                        word: c.clone(),
                        injected: Vec::new(),
                    })
                    .collect(),
            }),
            Some((linker, max_entities, with_predicate)) => Ok(tree_from_text(
                linker,
                &chars.concat(),
                max_entities,
                with_predicate,
            )?),
        }
    }
}

/// The linker over `table`'s KG (read strictly).
fn linker(table: &KnowledgeTable) -> Result<Linker<MemoryKg>, KnowledgeError> {
    let path = table
        .kg
        .as_ref()
        .ok_or(KnowledgeError::NoKg(table.mode.name()))?;
    let options = ImportOptions {
        format: Format::Tsv,
        strict: true,
        ..ImportOptions::default()
    };
    let (kg, _) = MemoryKg::read_files(std::slice::from_ref(path), &options).map_err(|source| {
        KnowledgeError::Import {
            path: path.clone(),
            source,
        }
    })?;
    let options = LinkOptions {
        nil_threshold: table.nil_threshold,
        ..LinkOptions::default()
    };
    Ok(Linker::build(kg, options)?)
}
