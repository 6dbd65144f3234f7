//! The linker's settings: [`LinkOptions`] with its defaults and range check
//! ([`LinkOptions::problem`]), and the [`OverlapPolicy`] that decides between overlapping
//! mentions.
use crate::text::disambiguate::ScoreWeights;
use crate::text::normalize::NormalizeOptions;

/// What to do when mentions overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// Keep every mention, overlapping or not.
    All,
    /// Prefer the longest mention, then the higher score, then the earlier one.
    Longest,
    /// Prefer the higher score, then the longer mention, then the earlier one.
    BestScore,
}

/// Linker settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkOptions {
    /// Folds applied to text and names before matching.
    pub normalize: NormalizeOptions,
    /// Use jieba's HMM for unknown words.
    pub hmm: bool,
    /// Add every KG name as a jieba user word so names stay whole.
    pub kg_user_words: bool,
    /// Reject mentions inside one word (no `京` in `北京`); mentions cutting
    /// through a word at one end are kept with the `crosses_word` feature.
    pub respect_boundaries: bool,
    /// Overlap resolution.
    pub overlap: OverlapPolicy,
    /// Shortest mention kept, in chars.
    pub min_chars: usize,
    /// Drop single-word mentions whose jieba POS tag is listed; enables tagging. The default,
    /// [`FUNCTION_WORD_TAGS`], keeps pronouns and function words (`我们`, `他`, `这`, `的`)
    /// unlinked even when the KG has an entity of that name (a song called `我们`); `[]`
    /// links them.
    pub exclude_pos: Vec<String>,
    /// Look up typo candidates (swapped chars, same pinyin).
    pub fuzzy: bool,
    /// Candidates reported per mention.
    pub max_candidates: usize,
    /// Mentions whose best score is below this are dropped (NIL). The score
    /// is calibrated as "this is the entity the question is about" on NLPCC
    /// KBQA, which is stricter than "this link is right", hence the low default:
    /// an unambiguous two-char name without context scores ~0.38, a lone
    /// function char (`是`) ~0.01.
    pub nil_threshold: f32,
    /// Score model.
    pub weights: ScoreWeights,
}

/// jieba's tags of pronouns and function words, the default [`LinkOptions::exclude_pos`]:
/// `r` pronoun, `p` preposition, `c` conjunction, `u`/`uj`/`ul`/`uz`/`ud`/`ug`/`uv` particles,
/// `y` modal particle, `e` interjection.
pub const FUNCTION_WORD_TAGS: [&str; 12] = [
    "r", "p", "c", "u", "uj", "ul", "uz", "ud", "ug", "uv", "y", "e",
];

impl LinkOptions {
    /// The first option out of its range, as `(key in [link], what was expected)`: NaN or
    /// infinite scores and weights, a NIL threshold outside 0..=1, no candidates, mentions of
    /// zero characters.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !(0.0..=1.0).contains(&self.nil_threshold) {
            return Some((
                "nil_threshold",
                format!(
                    "{} is not a score; expected a number from 0 to 1",
                    self.nil_threshold
                ),
            ));
        }
        if !(1..=1000).contains(&self.max_candidates) {
            return Some((
                "max_candidates",
                format!("{} candidates; expected 1 to 1000", self.max_candidates),
            ));
        }
        if !(1..=1000).contains(&self.min_chars) {
            return Some((
                "min_chars",
                format!("{} characters; expected 1 to 1000", self.min_chars),
            ));
        }
        if let Some(index) = self.weights.first_non_finite() {
            return Some((
                "weights",
                format!("weight {index} (0 = bias) is not a finite number"),
            ));
        }
        None
    }
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            normalize: NormalizeOptions::default(),
            hmm: true,
            kg_user_words: true,
            respect_boundaries: true,
            overlap: OverlapPolicy::BestScore,
            min_chars: 1,
            exclude_pos: FUNCTION_WORD_TAGS.map(String::from).to_vec(),
            fuzzy: true,
            max_candidates: 5,
            nil_threshold: 0.25,
            weights: ScoreWeights::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{Linker, MemoryKg};

    /// A KG that names songs after pronouns and function words, as real music KGs do.
    fn songs_named_like_pronouns() -> MemoryKg {
        MemoryKg::from_triples([
            ("我们", "类型", "歌曲"),
            ("他", "类型", "歌曲"),
            ("这", "类型", "歌曲"),
            ("的", "类型", "歌曲"),
            ("和", "类型", "歌曲"),
            ("高血压", "义原", "疾病"),
        ])
    }

    fn linked(opts: LinkOptions) -> Vec<String> {
        let linker = Linker::build(songs_named_like_pronouns(), opts).unwrap();
        let text = "我们都知道这和他的高血压有关。";
        linker.link(text).into_iter().map(|m| m.text).collect()
    }

    #[test]
    fn default_options_leave_pronouns_and_function_words_unlinked() {
        // Even with no NIL cut: the tags, not the scores, keep them out.
        let defaults = LinkOptions {
            nil_threshold: 0.0,
            overlap: OverlapPolicy::All,
            ..LinkOptions::default()
        };
        assert_eq!(linked(defaults.clone()), ["高血压"]);
        let every_word = LinkOptions {
            exclude_pos: Vec::new(),
            ..defaults
        };
        assert_eq!(
            linked(every_word),
            ["我们", "这", "和", "他", "的", "高血压"]
        );
    }
}
