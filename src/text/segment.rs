//! Word segmentation with jieba-rs: default dictionary plus optional user
//! words (e.g. every KG name), optional POS tags and HMM, and offsets into the
//! original text (byte and Unicode-scalar) even though jieba runs on the
//! normalised text.
use jieba_rs::Jieba;
use serde::Serialize;

use super::normalize::{normalize, normalize_key, NormalizeOptions, Normalized};

/// POS tag given to user words the default dictionary does not know.
pub const USER_WORD_TAG: &str = "nz";

/// Largest frequency a user-dictionary line may give (jieba's own dictionary tops out near
/// 900,000; a larger one would swamp every other word).
pub const MAX_USER_FREQ: usize = 1_000_000_000;

/// Why a user dictionary could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum UserDictError {
    /// The file could not be read as UTF-8 text.
    #[error(transparent)]
    Read(#[from] crate::textfile::TextFileError),
    /// A line is not `word [frequency] [tag]`.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The dictionary file.
        path: std::path::PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
}

/// How the segmenter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentOptions {
    /// Use jieba's HMM to join unknown words.
    pub hmm: bool,
    /// Folds applied before segmentation (offsets still refer to the original text).
    pub normalize: NormalizeOptions,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            hmm: true,
            normalize: NormalizeOptions {
                strip_whitespace: false,
                ..NormalizeOptions::default()
            },
        }
    }
}

/// One word of the original text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token<'a> {
    /// The word as it appears in the original text.
    pub text: &'a str,
    /// POS tag (jieba's tag set) when requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos: Option<String>,
    /// Unicode-scalar offset of the first char.
    pub start: usize,
    /// Unicode-scalar offset one past the last char.
    pub end: usize,
    /// Byte offset of the first char.
    pub byte_start: usize,
    /// Byte offset one past the last char.
    pub byte_end: usize,
}

/// A token of a normalised text: byte span in the normalised string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormToken<'a> {
    /// Byte offset in the normalised text.
    pub start: usize,
    /// Byte end in the normalised text.
    pub end: usize,
    /// POS tag when requested.
    pub pos: Option<&'a str>,
}

/// A jieba segmenter; `Send + Sync`, build once and share.
#[derive(Clone)]
pub struct Segmenter {
    jieba: Jieba,
    opts: SegmentOptions,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter")
            .field("opts", &self.opts)
            .finish()
    }
}

impl Segmenter {
    /// A segmenter with jieba's default dictionary.
    pub fn new(opts: SegmentOptions) -> Self {
        Segmenter {
            jieba: Jieba::new(),
            opts,
        }
    }

    /// Adds user words (normalised like the text) so they are kept whole;
    /// words already in the dictionary keep their frequency and tag.
    /// Returns how many words were new.
    pub fn add_words<'w>(&mut self, words: impl IntoIterator<Item = &'w str>) -> usize {
        let mut added = 0;
        for word in words {
            let key = normalize_key(word, self.opts.normalize);
            if key.chars().count() < 2 || self.jieba.has_word(&key) {
                continue;
            }
            self.jieba.add_word(&key, None, Some(USER_WORD_TAG));
            added += 1;
        }
        added
    }

    /// Loads a user dictionary in jieba's format (`zhishi` `[segment] user_dict`): one word a
    /// line, then optionally its frequency and then optionally its POS tag, separated by
    /// whitespace (`云计算 5 n`, `韩玉赏鉴`, `创新办 3 i`, `蓝翔 nz`); blank lines are skipped. A
    /// word without a frequency gets the one that keeps it whole (jieba's `suggest_freq`).
    /// Returns how many words were loaded; a bad line is an error naming the file and line.
    pub fn load_user_dict(&mut self, path: &std::path::Path) -> Result<usize, UserDictError> {
        let text = crate::textfile::read(path)?;
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let bad = |message: String| UserDictError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                message,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (word, freq, tag) = match fields.as_slice() {
                [] => continue,
                [word] => (*word, None, None),
                [word, second] => match second.parse::<usize>() {
                    Ok(freq) => (*word, Some(freq), None),
                    Err(_) => (*word, None, Some(*second)),
                },
                [word, freq, tag] => {
                    let freq = freq.parse::<usize>().map_err(|_| {
                        bad(format!(
                            "frequency `{freq}` is not a whole number; expected `word [frequency] [tag]`"
                        ))
                    })?;
                    (*word, Some(freq), Some(*tag))
                }
                more => {
                    return Err(bad(format!(
                        "{} fields; expected `word [frequency] [tag]` (at most 3, whitespace-separated)",
                        more.len()
                    )))
                }
            };
            if let Some(tag) = tag.filter(|t| !t.chars().all(|c| c.is_ascii_alphanumeric())) {
                return Err(bad(format!(
                    "tag `{tag}` is not a POS tag; expected ASCII letters such as `n` or `nz`"
                )));
            }
            if freq.is_some_and(|f| f > MAX_USER_FREQ) {
                return Err(bad(format!(
                    "frequency {} is too large; expected at most {MAX_USER_FREQ}",
                    freq.unwrap_or_default()
                )));
            }
            entries.push((normalize_key(word, self.opts.normalize), freq, tag));
        }
        for (word, freq, tag) in &entries {
            self.jieba.add_word(word, *freq, *tag);
        }
        Ok(entries.len())
    }

    /// The options this segmenter runs with.
    pub fn options(&self) -> SegmentOptions {
        self.opts
    }

    /// Whether the dictionary holds `word` (already normalised).
    pub fn has_word(&self, word: &str) -> bool {
        self.jieba.has_word(word)
    }

    /// Segments already-normalised text; spans are byte offsets into it.
    pub fn segment_normalized<'s>(&'s self, text: &'s str, pos: bool) -> Vec<NormToken<'s>> {
        if pos {
            self.jieba
                .tag(text, self.opts.hmm)
                .into_iter()
                .map(|t| NormToken {
                    start: t.byte_start,
                    end: t.byte_end,
                    pos: Some(t.tag),
                })
                .collect()
        } else {
            self.jieba
                .cut(text, self.opts.hmm)
                .into_iter()
                .map(|t| NormToken {
                    start: t.byte_start,
                    end: t.byte_end,
                    pos: None,
                })
                .collect()
        }
    }

    /// Segments `text`, reporting every token with offsets into `text`.
    /// Tokens made only of dropped chars (whitespace, when stripped) vanish.
    pub fn segment<'a>(&'a self, text: &'a str, pos: bool) -> Vec<Token<'a>> {
        let norm = normalize(text, self.opts.normalize);
        let raw = self.segment_normalized(norm.as_str(), pos);
        map_tokens(text, &norm, &raw)
    }
}

/// Maps normalised tokens back to the original text, adding char offsets.
fn map_tokens<'a>(text: &'a str, norm: &Normalized, raw: &[NormToken<'_>]) -> Vec<Token<'a>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut chars_before = 0usize;
    let mut byte_cursor = 0usize;
    for t in raw {
        let (bs, be) = norm.original_span(t.start, t.end);
        chars_before += text[byte_cursor..bs].chars().count();
        let len = text[bs..be].chars().count();
        out.push(Token {
            text: &text[bs..be],
            pos: t.pos.map(str::to_string),
            start: chars_before,
            end: chars_before + len,
            byte_start: bs,
            byte_end: be,
        });
        chars_before += len;
        byte_cursor = be;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_point_into_the_original_full_width_text() {
        let seg = Segmenter::new(SegmentOptions::default());
        let text = "我在北京用ＡＢＣ";
        let toks = seg.segment(text, false);
        let words: Vec<&str> = toks.iter().map(|t| t.text).collect();
        assert_eq!(words, ["我", "在", "北京", "用", "ＡＢＣ"]);
        let last = toks.last().unwrap();
        assert_eq!((last.start, last.end), (5, 8));
        assert_eq!(&text[last.byte_start..last.byte_end], "ＡＢＣ");
    }

    #[test]
    fn user_words_stay_whole() {
        let mut seg = Segmenter::new(SegmentOptions::default());
        let before: Vec<&str> = seg
            .segment("机械设计基础", false)
            .iter()
            .map(|t| t.text)
            .collect();
        assert_ne!(before, ["机械设计基础"]);
        assert_eq!(seg.add_words(["机械设计基础"]), 1);
        let after: Vec<&str> = seg
            .segment("机械设计基础", false)
            .iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(after, ["机械设计基础"]);
    }

    #[test]
    fn a_user_dictionary_keeps_its_words_whole_and_reports_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user.dict");
        std::fs::write(&path, "机械设计基础\n\n韩玉赏鉴 nz\n创新办 3 i\n").unwrap();
        let mut seg = Segmenter::new(SegmentOptions::default());
        assert_eq!(seg.load_user_dict(&path).unwrap(), 3);
        let toks = seg.segment("机械设计基础和韩玉赏鉴", true);
        let words: Vec<(&str, &str)> = toks
            .iter()
            .map(|t| (t.text, t.pos.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            words,
            [("机械设计基础", ""), ("和", "c"), ("韩玉赏鉴", "nz")]
        );
        std::fs::write(&path, "好词 5 n\n坏词 x n\n").unwrap();
        let err = seg.load_user_dict(&path).unwrap_err().to_string();
        assert!(err.ends_with("user.dict:2: frequency `x` is not a whole number; expected `word [frequency] [tag]`"), "{err}");
        std::fs::write(&path, "a b c d\n").unwrap();
        let err = seg.load_user_dict(&path).unwrap_err().to_string();
        assert!(err.contains("user.dict:1: 4 fields"), "{err}");
    }

    #[test]
    fn pos_tags_come_from_the_dictionary() {
        let seg = Segmenter::new(SegmentOptions::default());
        let toks = seg.segment("我爱北京", true);
        let tags: Vec<(&str, &str)> = toks
            .iter()
            .map(|t| (t.text, t.pos.as_deref().unwrap()))
            .collect();
        assert_eq!(tags, [("我", "r"), ("爱", "v"), ("北京", "ns")]);
    }
}
