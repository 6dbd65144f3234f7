//! Token-to-id lookup used when flattening a sentence tree. K-BERT feeds one token per
//! character, so a plain BERT `vocab.txt` lookup is enough; the encoder's tokenizer can plug in
//! through [`TokenIds`].
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::tree::UNK_TOKEN;

/// Maps one token (a character or a special token such as `[CLS]`) to its vocabulary id,
/// returning the unknown-token id for anything it does not know.
pub trait TokenIds {
    /// The id of `token`, or the `[UNK]` id.
    fn token_id(&self, token: &str) -> u32;
}

impl<F: Fn(&str) -> u32> TokenIds for F {
    fn token_id(&self, token: &str) -> u32 {
        self(token)
    }
}

/// Errors reading a vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    /// The vocabulary file could not be read.
    #[error("cannot read vocabulary {path}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The vocabulary file is not UTF-8 (names the line).
    #[error(transparent)]
    Text(#[from] crate::textfile::TextFileError),
    /// The vocabulary has no `[UNK]` entry, so unknown characters would have no id.
    #[error("vocabulary {origin} has no {UNK_TOKEN} line; unknown characters need one")]
    MissingUnk {
        /// Where the vocabulary came from (a path or "in-memory").
        origin: String,
    },
    /// The vocabulary has more entries than fit a `u32` id.
    #[error("vocabulary {origin} has more than u32::MAX entries")]
    TooLarge {
        /// Where the vocabulary came from.
        origin: String,
    },
}

/// An exact-match vocabulary in BERT `vocab.txt` form: the id of a token is its line number
/// (from 0); when a token appears twice the later line wins, as in Hugging Face's loader.
#[derive(Debug, Clone)]
pub struct CharVocab {
    ids: HashMap<String, u32>,
    unk: u32,
    lowercase_fallback: bool,
}

impl CharVocab {
    /// Builds a vocabulary from tokens in id order; one of them must be `[UNK]`.
    ///
    /// ```
    /// use zhishi::knowledge::{CharVocab, TokenIds};
    /// let vocab = CharVocab::from_tokens(["[PAD]", "[UNK]", "北", "京"]).unwrap();
    /// assert_eq!(vocab.token_id("京"), 3);
    /// assert_eq!(vocab.token_id("沪"), 1);
    /// ```
    pub fn from_tokens<I, S>(tokens: I) -> Result<Self, VocabError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::build(tokens.into_iter().map(Into::into), "in-memory".to_string())
    }

    /// Reads a BERT `vocab.txt` (one token per line). `path` may also be a model directory
    /// holding a `vocab.txt`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, VocabError> {
        let mut path = path.as_ref().to_path_buf();
        if path.is_dir() {
            path.push("vocab.txt");
        }
        let bytes = std::fs::read(&path).map_err(|source| VocabError::Io {
            path: path.clone(),
            source,
        })?;
        let text = crate::textfile::decode(&path, bytes)?;
        let lines = text
            .split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line).to_string());
        // A trailing newline leaves one empty last piece that is not a vocabulary line.
        let count = text.split('\n').count() - usize::from(text.ends_with('\n'));
        Self::build(lines.take(count), path.display().to_string())
    }

    fn build(tokens: impl Iterator<Item = String>, origin: String) -> Result<Self, VocabError> {
        let mut ids = HashMap::new();
        for (index, token) in tokens.enumerate() {
            let id = u32::try_from(index).map_err(|_| VocabError::TooLarge {
                origin: origin.clone(),
            })?;
            ids.insert(token, id);
        }
        let unk = *ids
            .get(UNK_TOKEN)
            .ok_or(VocabError::MissingUnk { origin })?;
        Ok(Self {
            ids,
            unk,
            lowercase_fallback: false,
        })
    }

    /// Looks an unknown token up again in lower case before giving `[UNK]`, as uncased BERT
    /// tokenizers (bert-base-chinese and its descendants) do. Off by default: K-BERT's own
    /// lookup is exact, so compat inputs must not use it.
    ///
    /// ```
    /// use zhishi::knowledge::{CharVocab, TokenIds};
    /// let vocab = CharVocab::from_tokens(["[UNK]", "c"]).unwrap();
    /// assert_eq!(vocab.token_id("C"), 0);
    /// assert_eq!(vocab.with_lowercase_fallback(true).token_id("C"), 1);
    /// ```
    pub fn with_lowercase_fallback(mut self, on: bool) -> Self {
        self.lowercase_fallback = on;
        self
    }

    /// One past the largest id (the rows an embedding table needs; more than [`Self::len`]
    /// when a token repeats).
    pub fn id_limit(&self) -> usize {
        self.ids.values().max().map_or(0, |&id| id as usize + 1)
    }

    /// Number of distinct tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the vocabulary is empty (never true for a successfully built one).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl TokenIds for CharVocab {
    fn token_id(&self, token: &str) -> u32 {
        match self.ids.get(token) {
            Some(&id) => id,
            None if self.lowercase_fallback && token.chars().any(char::is_uppercase) => self
                .ids
                .get(&token.to_lowercase())
                .copied()
                .unwrap_or(self.unk),
            None => self.unk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_file_ids_are_line_numbers_and_crlf_is_stripped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("vocab.txt"),
            "[PAD]\r\n[UNK]\r\n[CLS]\r\n北\r\n",
        )
        .unwrap();
        let vocab = CharVocab::from_file(dir.path()).unwrap();
        assert_eq!(vocab.len(), 4);
        assert_eq!(vocab.token_id("[CLS]"), 2);
        assert_eq!(vocab.token_id("北"), 3);
        assert_eq!(vocab.token_id("京"), 1);
    }

    #[test]
    fn vocab_without_unk_is_rejected_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.txt");
        std::fs::write(&path, "[PAD]\n北\n").unwrap();
        let err = CharVocab::from_file(&path).unwrap_err();
        assert!(matches!(err, VocabError::MissingUnk { .. }));
        assert!(err.to_string().contains("v.txt"));
    }
}
