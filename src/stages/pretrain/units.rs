//! The units a sequence's masking strategies hide, found in its text: jieba words (the
//! linker's segmenter when there is a KG, so KG names stay whole), entity mentions linked
//! over the KG (`Linker::link`, exactly what a pipeline's `link` stage finds) and phrase
//! chunks of adjacent words.
use std::ops::Range;
use std::path::Path;

use super::masking::{phrase_chunks, Spans};
use super::PretrainError;
use crate::kg::import::{Format, ImportOptions};
use crate::text::{LinkOptions, Linker, MemoryKg, SegmentOptions, Segmenter};

/// Finds [`Spans`] in texts.
pub struct UnitFinder {
    segmenter: Segmenter,
    linker: Option<Linker<MemoryKg>>,
    phrase_words: usize,
}

impl UnitFinder {
    /// A finder over the KG `kg` (TSV triples, read strictly), linking with `nil_threshold`;
    /// without a KG it finds words and phrases only.
    pub fn new(
        kg: Option<&Path>,
        nil_threshold: f32,
        phrase_words: usize,
    ) -> Result<Self, PretrainError> {
        let linker = kg
            .map(|path| -> Result<_, PretrainError> {
                let options = ImportOptions {
                    format: Format::Tsv,
                    strict: true,
                    ..ImportOptions::default()
                };
                let (kg, _) =
                    MemoryKg::read_files(&[path.to_path_buf()], &options).map_err(|source| {
                        PretrainError::Kg {
                            path: path.to_path_buf(),
                            source,
                        }
                    })?;
                let link = LinkOptions {
                    nil_threshold,
                    ..LinkOptions::default()
                };
                Ok(Linker::build(kg, link)?)
            })
            .transpose()?;
        let segmenter = linker.as_ref().map_or_else(
            || Segmenter::new(SegmentOptions::default()),
            |l| l.segmenter().clone(),
        );
        Ok(Self {
            segmenter,
            linker,
            phrase_words,
        })
    }

    /// Whether entity mentions can be found (a KG is loaded).
    pub fn links(&self) -> bool {
        self.linker.is_some()
    }

    /// The words, entity mentions and phrases of `text` (character spans).
    pub fn spans(&self, text: &str) -> Spans {
        self.find(text).0
    }

    /// The linker (when there is a KG).
    pub fn linker(&self) -> Option<&Linker<MemoryKg>> {
        self.linker.as_ref()
    }

    /// [`UnitFinder::spans`], and each linked mention's character span with its entity's
    /// name.
    pub fn find(&self, text: &str) -> (Spans, Vec<(Range<usize>, String)>) {
        let words: Vec<_> = self
            .segmenter
            .segment(text, false)
            .into_iter()
            .map(|t| t.start..t.end)
            .collect();
        let linked: Vec<(Range<usize>, String)> = self
            .linker
            .as_ref()
            .map(|l| {
                l.link(text)
                    .into_iter()
                    .map(|m| (m.char_start..m.char_end, m.entity.name))
                    .collect()
            })
            .unwrap_or_default();
        let entities = linked.iter().map(|(r, _)| r.clone()).collect();
        let phrases = phrase_chunks(text, &words, self.phrase_words);
        let spans = Spans {
            words,
            entities,
            phrases,
        };
        (spans, linked)
    }
}
