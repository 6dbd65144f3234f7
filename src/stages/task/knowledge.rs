//! The knowledge a task stage injects into its encoder input, built from its `[knowledge]`
//! table: nothing, or K-BERT facts about the mentions a linker over the table's KG finds.
use std::path::PathBuf;

use super::config::{KnowledgeMode, KnowledgeTable};
use crate::kg::import::{Format, ImportError, ImportOptions};
use crate::knowledge::{tree_from_text, SentenceTree, TreeWord};
use crate::text::{LinkError, LinkOptions, Linker, MemoryKg};

/// Why the knowledge of a `[knowledge]` table could not be set up or applied.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// `mode = "kbert"` without a `kg` file.
    #[error("K-BERT knowledge without a kg file")]
    NoKg,
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
}

impl Knowledge {
    /// The knowledge `table` describes; with K-BERT, reads its KG (strictly: a bad line in a
    /// model's KG is an error, not a silently smaller KG) and builds the linker.
    pub fn from_table(table: &KnowledgeTable) -> Result<Self, KnowledgeError> {
        match table.mode {
            KnowledgeMode::Plain => Ok(Knowledge::Plain),
            KnowledgeMode::Kbert => {
                let path = table.kg.as_ref().ok_or(KnowledgeError::NoKg)?;
                let options = ImportOptions {
                    format: Format::Tsv,
                    strict: true,
                    ..ImportOptions::default()
                };
                let (kg, _) = MemoryKg::read_files(std::slice::from_ref(path), &options).map_err(
                    |source| KnowledgeError::Import {
                        path: path.clone(),
                        source,
                    },
                )?;
                let options = LinkOptions {
                    nil_threshold: table.nil_threshold,
                    ..LinkOptions::default()
                };
                Ok(Knowledge::Kbert {
                    linker: Box::new(Linker::build(kg, options)?),
                    max_entities: table.max_entities,
                    with_predicate: table.with_predicate,
                })
            }
        }
    }

    /// Facts injected per word (0 without knowledge).
    pub fn max_entities(&self) -> usize {
        match self {
            Knowledge::Plain => 0,
            Knowledge::Kbert { max_entities, .. } => *max_entities,
        }
    }

    /// The sentence tree of `chars`: one word per item without knowledge; with K-BERT, the
    /// linker's words with facts hung after linked mentions. The words concatenate to the text.
    pub fn tree(&self, chars: &[String]) -> Result<SentenceTree, KnowledgeError> {
        match self {
            Knowledge::Plain => Ok(SentenceTree {
                words: chars
                    .iter()
                    .map(|c| TreeWord {
                        word: c.clone(),
                        injected: Vec::new(),
                    })
                    .collect(),
            }),
            Knowledge::Kbert {
                linker,
                max_entities,
                with_predicate,
            } => Ok(tree_from_text(
                linker,
                &chars.concat(),
                *max_entities,
                *with_predicate,
            )?),
        }
    }
}
