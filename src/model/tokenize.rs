//! BERT WordPiece tokenisation with the `tokenizers` crate, from `tokenizer.json` or
//! `vocab.txt`. Chinese text becomes one token per character; every token keeps its character
//! offsets so predictions map back to the text.
use std::path::{Path, PathBuf};

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::Tokenizer;

use super::ModelError;

/// One tokenised text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token strings, `[CLS]` first and `[SEP]` last.
    pub tokens: Vec<String>,
    /// Vocabulary ids, one per token.
    pub ids: Vec<u32>,
    /// `(start, end)` character offsets of each token in the text (`(0, 0)` for specials).
    pub offsets: Vec<(usize, usize)>,
}

/// A BERT tokenizer: lower-casing, Chinese characters split apart, WordPiece, `[CLS] … [SEP]`.
pub struct BertTokenizer {
    inner: Tokenizer,
    file: PathBuf,
}

impl BertTokenizer {
    /// Loads `tokenizer.json` from `dir` if present, else builds one from `vocab.txt`.
    pub fn from_dir(dir: &Path) -> Result<Self, ModelError> {
        let json = dir.join("tokenizer.json");
        if json.is_file() {
            let inner = Tokenizer::from_file(&json).map_err(|e| ModelError::Tokenizer {
                path: json.clone(),
                message: e.to_string(),
            })?;
            return Ok(Self { inner, file: json });
        }
        let vocab = dir.join("vocab.txt");
        if vocab.is_file() {
            return Self::from_vocab(&vocab);
        }
        Err(ModelError::MissingFile {
            dir: dir.to_path_buf(),
            what: "tokenizer.json or vocab.txt".into(),
        })
    }

    /// Builds the standard (lower-casing) BERT tokenizer from a `vocab.txt`.
    pub fn from_vocab(vocab: &Path) -> Result<Self, ModelError> {
        let err = |message: String| ModelError::Tokenizer {
            path: vocab.to_path_buf(),
            message,
        };
        let path = vocab
            .to_str()
            .ok_or_else(|| err("path is not UTF-8".into()))?;
        let wordpiece = WordPiece::from_file(path)
            .unk_token("[UNK]".into())
            .build()
            .map_err(|e| err(e.to_string()))?;
        let mut inner = Tokenizer::new(wordpiece);
        let id = |t: &str| {
            inner
                .token_to_id(t)
                .ok_or_else(|| err(format!("vocabulary has no {t}")))
        };
        let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
        inner
            .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
            .map_err(|e| err(e.to_string()))?;
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        inner.with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), sep),
            ("[CLS]".into(), cls),
        )));
        Ok(Self {
            inner,
            file: vocab.to_path_buf(),
        })
    }

    /// Loads the tokenizer of the model directory `dir` ([`BertTokenizer::from_dir`]) and
    /// checks that its ids fit the embedding table of `cfg`, the model's config.
    pub fn for_model(dir: &Path, cfg: &super::BertConfig) -> Result<Self, ModelError> {
        let tokenizer = Self::from_dir(dir)?;
        super::check_vocab_fits(dir, cfg, &tokenizer.file, tokenizer.id_limit())?;
        Ok(tokenizer)
    }

    /// The file the tokenizer was read from (`tokenizer.json` or `vocab.txt`).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// One past the largest id the tokenizer gives.
    pub fn id_limit(&self) -> usize {
        self.inner
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&id| id as usize + 1)
    }

    /// Tokenises `text` with `[CLS]`/`[SEP]`, keeping character offsets.
    pub fn encode(&self, text: &str) -> Result<Encoded, ModelError> {
        let enc = self
            .inner
            .encode_char_offsets(text, true)
            .map_err(|e| ModelError::Input(format!("cannot tokenise {text:?}: {e}")))?;
        Ok(Encoded {
            tokens: enc.get_tokens().to_vec(),
            ids: enc.get_ids().to_vec(),
            offsets: enc.get_offsets().to_vec(),
        })
    }

    /// The token of `id`, if it is in the vocabulary.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_vocab() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n北\n京\n是\n首\n都\nbert\n##s\n。\n";
        std::fs::write(dir.path().join("vocab.txt"), vocab).unwrap();
        dir
    }

    #[test]
    fn chinese_is_one_token_per_character_with_char_offsets() {
        let dir = tiny_vocab();
        let tok = BertTokenizer::from_dir(dir.path()).unwrap();
        let e = tok.encode("北京是首都。").unwrap();
        assert_eq!(
            e.tokens,
            ["[CLS]", "北", "京", "是", "首", "都", "。", "[SEP]"]
        );
        assert_eq!(e.ids, [2, 4, 5, 6, 7, 8, 11, 3]);
        assert_eq!(e.offsets[1], (0, 1));
        assert_eq!(e.offsets[6], (5, 6));
    }

    #[test]
    fn latin_words_are_lowercased_wordpieces_and_unknowns_map_to_unk() {
        let dir = tiny_vocab();
        let tok = BertTokenizer::from_dir(dir.path()).unwrap();
        let e = tok.encode("BERTs 在").unwrap();
        assert_eq!(e.tokens, ["[CLS]", "bert", "##s", "[UNK]", "[SEP]"]);
        assert_eq!(e.offsets[1..4], [(0, 4), (4, 5), (6, 7)]);
    }

    #[test]
    fn a_directory_without_vocabulary_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = BertTokenizer::from_dir(dir.path()).err().unwrap();
        assert!(e.to_string().contains("tokenizer.json or vocab.txt"));
    }
}
