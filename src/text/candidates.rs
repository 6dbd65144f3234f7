//! Candidate generation: an Aho-Corasick automaton over the normalised KG
//! names (exact and alias matches) plus fuzzy keys for typo-tolerant lookup
//! of a text window (same chars in another order, same toneless pinyin).
use aho_corasick::automaton::OverlappingState;
use aho_corasick::{AhoCorasick, Anchored, Input, MatchKind as AcMatchKind, StartKind};
use pinyin::ToPinyin;
use rustc_hash::FxHashMap;

use super::normalize::{normalize_key, NormalizeOptions};
use super::source::EntityId;

/// How a candidate was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The window is a (normalised) name or alias of the entity.
    Exact,
    /// The window has the same chars as a name in another order (`西山大学` / `山西大学`).
    Anagram,
    /// The window reads like a name in toneless pinyin (`苦练` / `苦恋`).
    Pinyin,
}

/// Minimum name length (chars) for anagram keys; two-char swaps are mostly other words.
const ANAGRAM_MIN_CHARS: usize = 3;
/// Minimum name length (chars) for pinyin keys.
const PINYIN_MIN_CHARS: usize = 2;

/// The name index: built once, immutable, shared across threads.
#[derive(Debug)]
pub struct NameIndex {
    automaton: Option<AhoCorasick>,
    /// Entities named by each automaton pattern.
    pattern_entities: Vec<Box<[EntityId]>>,
    anagram: FxHashMap<Box<str>, Box<[EntityId]>>,
    pinyin: FxHashMap<Box<str>, Box<[EntityId]>>,
    fuzzy: bool,
}

/// Error building the automaton (too many or too long names).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the name automaton over {names} names: {source}")]
pub struct IndexError {
    names: usize,
    #[source]
    source: aho_corasick::BuildError,
}

impl NameIndex {
    /// Builds the index from `(name, entity)` pairs; names are normalised
    /// with `opts`, empty names are skipped, fuzzy keys only if `fuzzy`.
    pub fn build(
        names: impl IntoIterator<Item = (String, EntityId)>,
        opts: NormalizeOptions,
        fuzzy: bool,
    ) -> Result<NameIndex, IndexError> {
        let mut by_key: FxHashMap<String, Vec<EntityId>> = FxHashMap::default();
        for (name, id) in names {
            let key = normalize_key(&name, opts);
            if key.is_empty() {
                continue;
            }
            let ids = by_key.entry(key).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mut keys: Vec<(String, Vec<EntityId>)> = by_key.into_iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));

        let mut anagram: FxHashMap<String, Vec<EntityId>> = FxHashMap::default();
        let mut pinyin: FxHashMap<String, Vec<EntityId>> = FxHashMap::default();
        if fuzzy {
            let mut buf = String::new();
            for (key, ids) in &keys {
                if anagram_key(key, &mut buf) {
                    anagram.entry(buf.clone()).or_default().extend(ids);
                }
                if pinyin_key(key, &mut buf) {
                    pinyin.entry(buf.clone()).or_default().extend(ids);
                }
            }
        }
        let automaton = if keys.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(AcMatchKind::Standard)
                    .start_kind(StartKind::Both)
                    .build(keys.iter().map(|(k, _)| k.as_str()))
                    .map_err(|source| IndexError {
                        names: keys.len(),
                        source,
                    })?,
            )
        };
        let freeze = |m: FxHashMap<String, Vec<EntityId>>| {
            m.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_slice()))
                .collect()
        };
        Ok(NameIndex {
            automaton,
            pattern_entities: keys
                .into_iter()
                .map(|(_, v)| v.into_boxed_slice())
                .collect(),
            anagram: freeze(anagram),
            pinyin: freeze(pinyin),
            fuzzy,
        })
    }

    /// Number of distinct normalised names.
    pub fn len(&self) -> usize {
        self.pattern_entities.len()
    }

    /// Whether the index holds no names.
    pub fn is_empty(&self) -> bool {
        self.pattern_entities.is_empty()
    }

    /// Whether fuzzy keys were built.
    pub fn has_fuzzy(&self) -> bool {
        self.fuzzy
    }

    /// Calls `f(start, end, entities)` for every occurrence of a name in the
    /// normalised `text` (overlapping occurrences included; byte offsets).
    pub fn exact_matches<'s>(
        &'s self,
        text: &str,
        mut f: impl FnMut(usize, usize, &'s [EntityId]),
    ) {
        let Some(ac) = &self.automaton else { return };
        for m in ac.find_overlapping_iter(text) {
            f(
                m.start(),
                m.end(),
                &self.pattern_entities[m.pattern().as_usize()],
            );
        }
    }

    /// Calls `f(end, entities)` for every name that starts exactly at byte
    /// `start` of the normalised `text`. Walking from word starts only is
    /// about half the cost of an unanchored scan that also reports every
    /// name inside a word, only to reject it.
    pub fn matches_at<'s>(
        &'s self,
        text: &str,
        start: usize,
        mut f: impl FnMut(usize, &'s [EntityId]),
    ) {
        let Some(ac) = &self.automaton else { return };
        let input = Input::new(text)
            .range(start..text.len())
            .anchored(Anchored::Yes);
        let mut state = OverlappingState::start();
        // Anchored searches are supported (StartKind::Both), so this cannot fail.
        while ac.try_find_overlapping(input.clone(), &mut state).is_ok() {
            let Some(m) = state.get_match() else { break };
            f(m.end(), &self.pattern_entities[m.pattern().as_usize()]);
        }
    }

    /// Fuzzy candidates for a normalised window, each with how it matched.
    /// `buf` is scratch space reused across calls.
    pub fn fuzzy_matches(
        &self,
        window: &str,
        buf: &mut String,
        out: &mut Vec<(EntityId, MatchKind)>,
    ) {
        if !self.fuzzy {
            return;
        }
        if anagram_key(window, buf) {
            if let Some(ids) = self.anagram.get(buf.as_str()) {
                out.extend(ids.iter().map(|&id| (id, MatchKind::Anagram)));
            }
        }
        if pinyin_key(window, buf) {
            if let Some(ids) = self.pinyin.get(buf.as_str()) {
                out.extend(ids.iter().map(|&id| (id, MatchKind::Pinyin)));
            }
        }
    }
}

/// Writes the sorted chars of `s` to `buf`; false if `s` is too short.
fn anagram_key(s: &str, buf: &mut String) -> bool {
    // Windows are short (<= 10 chars): sort on the stack, no allocation.
    let mut chars = ['\0'; 16];
    let mut n = 0;
    for c in s.chars() {
        if n == chars.len() {
            return false;
        }
        chars[n] = c;
        n += 1;
    }
    if n < ANAGRAM_MIN_CHARS {
        return false;
    }
    chars[..n].sort_unstable();
    buf.clear();
    buf.extend(&chars[..n]);
    true
}

/// Writes the toneless pinyin of `s` (syllables joined by `'`) to `buf`;
/// false unless `s` is all Han chars and long enough.
fn pinyin_key(s: &str, buf: &mut String) -> bool {
    buf.clear();
    if !s.chars().all(|c| ('\u{3400}'..='\u{9FFF}').contains(&c)) {
        return false;
    }
    let mut n = 0;
    for c in s.chars() {
        match c.to_pinyin() {
            Some(p) => {
                if n > 0 {
                    buf.push('\'');
                }
                buf.push_str(p.plain());
                n += 1;
            }
            None => return false,
        }
    }
    n >= PINYIN_MIN_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[(&str, EntityId)]) -> NameIndex {
        NameIndex::build(
            names.iter().map(|(n, id)| (n.to_string(), *id)),
            NormalizeOptions::default(),
            true,
        )
        .unwrap()
    }

    #[test]
    fn exact_matches_report_every_overlapping_name() {
        let idx = index(&[("北京", 0), ("北京大学", 1), ("大学", 2)]);
        let text = "北京大学";
        let mut found = Vec::new();
        idx.exact_matches(text, |s, e, ids| found.push((&text[s..e], ids.to_vec())));
        found.sort();
        assert_eq!(
            found,
            [("北京", vec![0]), ("北京大学", vec![1]), ("大学", vec![2])]
        );
    }

    #[test]
    fn swapped_chars_and_homophones_are_fuzzy_candidates() {
        let idx = index(&[("山西大学", 7), ("苦恋", 8)]);
        let mut buf = String::new();
        let mut out = Vec::new();
        idx.fuzzy_matches("西山大学", &mut buf, &mut out);
        assert_eq!(out, [(7, MatchKind::Anagram)]);
        out.clear();
        idx.fuzzy_matches("苦练", &mut buf, &mut out);
        assert_eq!(out, [(8, MatchKind::Pinyin)]);
    }

    #[test]
    fn an_index_without_names_matches_nothing() {
        let idx = index(&[]);
        let mut n = 0;
        idx.exact_matches("北京大学", |_, _, _| n += 1);
        assert_eq!(n, 0);
    }
}
