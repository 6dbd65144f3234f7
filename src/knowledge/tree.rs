//! Sentence trees: the words of a sentence in order, each followed by the knowledge strings
//! injected after it (K-BERT, Liu et al. 2020, <https://arxiv.org/abs/1909.07606>).

/// Padding token; fills inputs up to the maximum length.
pub const PAD_TOKEN: &str = "[PAD]";
/// Unknown-token marker of BERT vocabularies.
pub const UNK_TOKEN: &str = "[UNK]";
/// Sequence-start token; K-BERT prepends it as a word of its own.
pub const CLS_TOKEN: &str = "[CLS]";
/// Separator token; the improved mode closes every sentence with it.
pub const SEP_TOKEN: &str = "[SEP]";

/// Words that K-BERT never splits into characters: a tree word equal to one of these becomes a
/// single token at a single position (K-BERT's `NEVER_SPLIT_TAG`).
pub const SPECIAL_TOKENS: [&str; 9] = [
    PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, "[MASK]", "[ENT]", "[SUB]", "[PRE]", "[OBJ]",
];

/// Whether `word` is one of the [`SPECIAL_TOKENS`] kept whole.
pub fn is_special_token(word: &str) -> bool {
    SPECIAL_TOKENS.contains(&word)
}

/// The string K-BERT injects for a triple `(subject, predicate, object)` after the subject:
/// predicate and object concatenated when `with_predicate` is set, else the object alone.
///
/// ```
/// use zhishi::knowledge::knowledge_string;
/// assert_eq!(knowledge_string("首都", "北京", true), "首都北京");
/// assert_eq!(knowledge_string("首都", "北京", false), "北京");
/// ```
pub fn knowledge_string(predicate: &str, object: &str, with_predicate: bool) -> String {
    if with_predicate {
        format!("{predicate}{object}")
    } else {
        object.to_string()
    }
}

/// One word of a sentence tree and the knowledge strings hung after it, best first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeWord {
    /// The word as it appears in the sentence.
    pub word: String,
    /// Knowledge strings injected after the word, ranked best first (the linker's order).
    pub injected: Vec<String>,
}

/// A sentence as K-BERT sees it: its words in order, each with its injected knowledge.
/// The sentence text is the concatenation of the words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SentenceTree {
    /// The words in sentence order.
    pub words: Vec<TreeWord>,
}

impl SentenceTree {
    /// An empty tree, to be filled with [`SentenceTree::word`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a word with its ranked knowledge strings; chainable.
    ///
    /// ```
    /// use zhishi::knowledge::SentenceTree;
    /// let tree = SentenceTree::new().word("库克", ["苹果公司"]).plain("访问");
    /// assert_eq!(tree.text(), "库克访问");
    /// ```
    pub fn word<I, S>(mut self, word: impl Into<String>, injected: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.words.push(TreeWord {
            word: word.into(),
            injected: injected.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Appends a word without knowledge; chainable.
    pub fn plain(self, word: impl Into<String>) -> Self {
        self.word(word, Vec::<String>::new())
    }

    /// The sentence text: all words concatenated.
    pub fn text(&self) -> String {
        self.words.iter().map(|w| w.word.as_str()).collect()
    }
}
