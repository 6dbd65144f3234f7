//! Mention detection: exact name matches on word boundaries, fuzzy windows of up to three
//! tokens, the unscored mentions they yield, and the token and sentence windows detection
//! runs on (a caller's words tiled over the normalised text, context windows).
use super::Linker;
use crate::kg::source::{EntityId, KnowledgeSource};
use crate::text::candidates::{MatchKind, WindowKey};
use crate::text::normalize::{is_han, normalize_into, NormalizeOptions};
use crate::text::segment::NormToken;

/// Sentences longer than this (chars) are cut into windows for context and coherence.
const MAX_SENTENCE_CHARS: usize = 128;
/// Fuzzy windows span at most this many tokens.
const FUZZY_MAX_TOKENS: usize = 3;
/// Fuzzy windows are at most this many chars long.
const FUZZY_MAX_CHARS: usize = 10;

/// Candidates of an unscored mention: exact matches borrow the index's
/// slice (no allocation per match, most text positions have one).
pub(super) enum RawCands<'i> {
    Exact(&'i [EntityId]),
    Fuzzy(Vec<(EntityId, MatchKind)>),
}

impl RawCands<'_> {
    pub(super) fn iter(&self) -> impl Iterator<Item = (EntityId, MatchKind)> + '_ {
        let (exact, fuzzy) = match self {
            RawCands::Exact(ids) => (*ids, &[][..]),
            RawCands::Fuzzy(v) => (&[][..], v.as_slice()),
        };
        exact
            .iter()
            .map(|&id| (id, MatchKind::Exact))
            .chain(fuzzy.iter().copied())
    }
}

/// A mention before scoring: a normalised byte span and its candidates.
pub(super) struct Raw<'i> {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) chars: usize,
    pub(super) pos: Option<usize>,
    pub(super) crosses: bool,
    pub(super) cands: RawCands<'i>,
    pub(super) sentence: usize,
}

impl<S: KnowledgeSource> Linker<S> {
    /// Mention detection: exact name matches on word boundaries, then fuzzy windows.
    pub(super) fn detect(
        &self,
        s: &str,
        tokens: &[NormToken<'_>],
        sentences: &[(usize, usize)],
    ) -> Vec<Raw<'_>> {
        // Token index by start byte (u32::MAX: none), the token holding each
        // byte, and end flags: O(1) boundary checks per match.
        let mut starts = vec![u32::MAX; s.len() + 1];
        let mut tok_at = vec![0u32; s.len()];
        let mut is_end = vec![false; s.len() + 1];
        // Inside an unknown word the HMM guessed (not in the dictionary, all
        // Han) a cut costs nothing: such guesses often glue a name to the next
        // char (`阿兰戈是`), while dictionary words are trusted (`北京`).
        let mut soft = vec![false; s.len() + 1];
        for (i, t) in tokens.iter().enumerate() {
            starts[t.start] = i as u32;
            is_end[t.end] = true;
            tok_at[t.start..t.end].fill(i as u32);
            let word = &s[t.start..t.end];
            if word.chars().nth(1).is_some()
                && word.chars().all(is_han)
                && !self.segmenter.has_word(word)
            {
                for (k, _) in word.char_indices().skip(1) {
                    soft[t.start + k] = true;
                }
            }
        }
        // `None`: the span lies inside one word (`京` in `北京`), rejected;
        // `Some(true)`: it ends inside a word (a scored feature).
        let boundary = |st: usize, en: usize| -> Option<bool> {
            let start_ok = starts[st] != u32::MAX || soft[st];
            let end_ok = is_end[en] || soft[en];
            if start_ok && end_ok {
                Some(false)
            } else if tok_at[st] == tok_at[en - 1] {
                None
            } else {
                Some(true)
            }
        };
        let sentence_of = |pos: usize| sentences.partition_point(|&(_, e)| e <= pos);
        let mut raws = Vec::new();
        let mut on_match = |st: usize, en: usize, ids| {
            let crosses = if self.opts.respect_boundaries {
                match boundary(st, en) {
                    Some(c) => c,
                    None => return,
                }
            } else {
                false
            };
            let chars = s[st..en].chars().count();
            if chars < self.opts.min_chars {
                return;
            }
            raws.push(Raw {
                start: st,
                end: en,
                chars,
                pos: single_token(&starts, tokens, st, en),
                crosses,
                cands: RawCands::Exact(ids),
                sentence: sentence_of(st),
            });
        };
        if self.opts.respect_boundaries {
            // Mentions start at a word start (or inside an HMM-guessed word).
            for st in (0..s.len()).filter(|&p| starts[p] != u32::MAX || soft[p]) {
                self.index
                    .matches_at(s, st, |en, ids| on_match(st, en, ids));
            }
        } else {
            self.index.exact_matches(s, &mut on_match);
        }
        // Exact matches by span (the unanchored scan reports them by end); a span is one
        // string, so one name pattern: no span is reported twice.
        raws.sort_unstable_by_key(|r| (r.start, r.end));
        let exact = raws.len();
        if self.index.has_fuzzy() {
            let mut found = Vec::new();
            // Key hashes per token, combined per window: most windows fail
            // the index's filters after a few arithmetic operations.
            let keys: Vec<WindowKey> = tokens
                .iter()
                .map(|t| WindowKey::of(&s[t.start..t.end]))
                .collect();
            for i in 0..tokens.len() {
                let mut key = WindowKey::default();
                for j in i..tokens.len().min(i + FUZZY_MAX_TOKENS) {
                    let (st, en) = (tokens[i].start, tokens[j].end);
                    key.extend(&keys[j]);
                    let window = &s[st..en];
                    let chars = key.chars();
                    if chars > FUZZY_MAX_CHARS {
                        break;
                    }
                    if chars < self.opts.min_chars.max(2)
                        || !self.index.may_fuzzy_match(&key)
                        || raws[..exact]
                            .binary_search_by_key(&(st, en), |r| (r.start, r.end))
                            .is_ok()
                    {
                        continue;
                    }
                    found.clear();
                    self.index.fuzzy_matches(window, &key, &mut found);
                    found.retain(|(id, _)| {
                        self.profiles.get(*id).is_some_and(|p| &*p.key != window)
                    });
                    if found.is_empty() {
                        continue;
                    }
                    raws.push(Raw {
                        start: st,
                        end: en,
                        chars,
                        pos: (i == j).then_some(i),
                        crosses: false,
                        cands: RawCands::Fuzzy(found.clone()),
                        sentence: sentence_of(st),
                    });
                }
            }
        }
        if !self.opts.exclude_pos.is_empty() {
            raws.retain(|r| {
                let tag = r.pos.and_then(|i| tokens[i].pos).unwrap_or("");
                !self.opts.exclude_pos.iter().any(|p| p == tag)
            });
        }
        raws
    }
}

/// Index of the token exactly covering `[st, en)`, if one does.
fn single_token(starts: &[u32], tokens: &[NormToken<'_>], st: usize, en: usize) -> Option<usize> {
    let i = *starts.get(st)? as usize;
    tokens.get(i).filter(|t| t.end == en).map(|_| i)
}

/// The normalised tokens of `words` if, normalised one by one, they tile the normalised text
/// `s` exactly (and carry tags when `need_pos`); `None` otherwise.
pub(super) fn tile_words<'w>(
    s: &str,
    opts: NormalizeOptions,
    words: impl IntoIterator<Item = (&'w str, Option<&'w str>)>,
    need_pos: bool,
) -> Option<Vec<NormToken<'w>>> {
    let mut tokens = Vec::new();
    let mut folded = String::new();
    let mut at = 0;
    for (word, pos) in words {
        if need_pos && pos.is_none() {
            return None;
        }
        folded.clear();
        normalize_into(word, opts, &mut folded);
        if folded.is_empty() {
            continue;
        }
        if !s[at..].starts_with(folded.as_str()) {
            return None;
        }
        tokens.push(NormToken {
            start: at,
            end: at + folded.len(),
            pos,
        });
        at += folded.len();
    }
    (at == s.len()).then_some(tokens)
}

/// Splits the normalised text into context windows: sentences ending at
/// terminal punctuation, cut at token boundaries every [`MAX_SENTENCE_CHARS`].
pub(super) fn sentence_windows(s: &str, tokens: &[NormToken<'_>]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = 0;
    for t in tokens {
        let word = &s[t.start..t.end];
        chars += word.chars().count();
        let terminal = matches!(word, "。" | "!" | "?" | "！" | "？" | ";" | "；" | "…");
        if terminal || chars >= MAX_SENTENCE_CHARS {
            out.push((start, t.end));
            start = t.end;
            chars = 0;
        }
    }
    if start < s.len() || out.is_empty() {
        out.push((start, s.len()));
    }
    out
}
