//! Candidate generation over the normalised KG names (exact and alias
//! matches): a double-array char trie (`crawdad`) walked from word starts, an Aho-Corasick automaton
//! for unanchored scans, plus fuzzy keys for typo-tolerant lookup of a text
//! window (same chars in another order, same toneless pinyin).
use aho_corasick::{AhoCorasick, MatchKind as AcMatchKind};
use pinyin::ToPinyin;
use rustc_hash::FxHashMap;

use super::normalize::{normalize_key, NormalizeOptions};
use crate::kg::source::EntityId;

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
/// Maximum name length (chars) for anagram keys.
const ANAGRAM_MAX_CHARS: usize = 16;
/// Minimum name length (chars) for pinyin keys.
const PINYIN_MIN_CHARS: usize = 2;

/// log2 of the bits in each fuzzy-key filter (2^20 bits: 128 KiB, stays in L2).
const FILTER_BITS: u32 = 20;

/// The name index: built once, immutable, shared across threads.
#[derive(Debug)]
pub struct NameIndex {
    automaton: Option<AhoCorasick>,
    /// Entities named by each automaton pattern.
    pattern_entities: Vec<Box<[EntityId]>>,
    /// Names by the hash of their anagram key ([`WindowKey::anagram_hash`]), each with its
    /// sorted chars to confirm a window's match.
    anagram: FuzzyBuckets<char>,
    /// Names by the hash of their pinyin key ([`WindowKey::pinyin_hash`]), each with its
    /// toneless syllables to confirm a window's match.
    pinyin: FuzzyBuckets<u16>,
    /// One bit per hashed anagram key ([`WindowKey::anagram_hash`]): a clear
    /// bit proves a window has no anagram candidate without building its key.
    anagram_filter: Bitset,
    /// The same for pinyin keys ([`WindowKey::pinyin_hash`]).
    pinyin_filter: Bitset,
    /// Double-array char trie of the names; its values index `pattern_entities`.
    /// `None` without names.
    trie: Option<NameTrie>,
    /// One bit per start of a name of two or more chars ([`start_hash`]: its first two
    /// chars): the trie walk is skipped where no such name begins.
    start_filter: Bitset,
    /// The pattern of every one-char name: a direct lookup, so the trie is walked only where
    /// the first two chars can start a longer name (most Chinese chars are one-char names of
    /// some KG, so a one-char start filter would pass almost every word start).
    single_chars: FxHashMap<char, u32>,
    fuzzy: bool,
}

/// Fuzzy keys (sorted chars, or syllable ids) by their hash: the keys sharing one hash, each
/// with the entities it names. A window is looked up by the hash its [`WindowKey`] already
/// holds and confirmed against the key itself, so no key string is built per window.
type FuzzyBuckets<K> = FxHashMap<u64, Box<[(Box<[K]>, Box<[EntityId]>)]>>;

/// [`FuzzyBuckets`] while the index is built.
type GrowingBuckets<K> = FxHashMap<u64, Vec<(Box<[K]>, Vec<EntityId>)>>;

/// Adds `ids` under `key` (hashed `hash`) to buckets being built.
fn add_fuzzy<K: PartialEq + Clone>(
    buckets: &mut GrowingBuckets<K>,
    hash: u64,
    key: &[K],
    ids: &[EntityId],
) {
    let bucket = buckets.entry(hash).or_default();
    match bucket.iter_mut().find(|(k, _)| **k == *key) {
        Some((_, known)) => known.extend_from_slice(ids),
        None => bucket.push((key.into(), ids.to_vec())),
    }
}

/// A Bloom filter with two probes, taken from the top and the bottom bits
/// of a 64-bit hash (with ~65k keys: ~1.4% false positives, against ~6%
/// with one probe).
#[derive(Debug)]
struct Bitset(Box<[u64]>);

impl Bitset {
    fn new() -> Self {
        Bitset(vec![0u64; 1 << (FILTER_BITS - 6)].into_boxed_slice())
    }

    fn slots(hash: u64) -> [(usize, u64); 2] {
        let top = (hash >> (64 - FILTER_BITS)) as usize;
        let bottom = (hash & ((1 << FILTER_BITS) - 1)) as usize;
        [top, bottom].map(|bit| (bit >> 6, 1u64 << (bit & 63)))
    }

    fn insert(&mut self, hash: u64) {
        for (word, mask) in Self::slots(hash) {
            self.0[word] |= mask;
        }
    }

    fn contains(&self, hash: u64) -> bool {
        Self::slots(hash)
            .iter()
            .all(|&(word, mask)| self.0[word] & mask != 0)
    }
}

/// Cheap hashes of a text window's fuzzy keys, so that most windows are
/// ruled out by [`NameIndex`]'s filters without sorting chars or spelling out
/// pinyin. Equal keys give equal hashes: the anagram hash is order-free (a
/// sum over chars), the pinyin hash is a polynomial over the syllable
/// sequence. Keys of adjacent spans concatenate in O(1) ([`WindowKey::extend`]),
/// so a window of tokens costs a few arithmetic operations.
#[derive(Debug, Clone, Copy)]
pub struct WindowKey {
    chars: usize,
    anagram: u64,
    pinyin: u64,
    /// `PINYIN_BASE^chars`, to append another key's polynomial.
    pinyin_shift: u64,
    /// Some char has no pinyin (not a Han char, or unknown to the table).
    no_pinyin: bool,
}

impl Default for WindowKey {
    fn default() -> Self {
        WindowKey {
            chars: 0,
            anagram: 0,
            pinyin: 0,
            pinyin_shift: 1,
            no_pinyin: false,
        }
    }
}

/// Base of the pinyin polynomial hash (odd, so powers never vanish mod 2^64).
const PINYIN_BASE: u64 = 0x0000_0100_0000_01B3;

/// The names' double-array trie (a newtype: `crawdad::Trie` has no `Debug`).
struct NameTrie(crawdad::Trie);

impl std::fmt::Debug for NameTrie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameTrie")
            .field("nodes", &self.0.num_elems())
            .field("heap_bytes", &self.0.heap_bytes())
            .finish()
    }
}

/// The char `crawdad` reserves as its end marker: names holding it stay out of the trie
/// (the automaton still finds them) and trie walks stop at it.
const TRIE_END_MARKER: char = crawdad::END_MARKER;

/// Hash of a longer-than-one-char name's start: its first two chars.
fn start_hash(first: char, second: char) -> u64 {
    mix(((first as u64) << 32) | second as u64)
}

/// 64-bit finaliser (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// First and last char of the pinyin table (the range `pinyin_key` accepts).
const HAN_FIRST: u32 = 0x3400;
const HAN_LAST: u32 = 0x9FFF;

/// Toneless pinyin syllable id (1-based; 0: none) of every char in
/// `HAN_FIRST..=HAN_LAST`, built once from the `pinyin` crate.
fn syllables() -> &'static [u16] {
    static TABLE: std::sync::OnceLock<Box<[u16]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut ids: FxHashMap<&'static str, u16> = FxHashMap::default();
        (HAN_FIRST..=HAN_LAST)
            .map(|u| {
                char::from_u32(u)
                    .and_then(|c| c.to_pinyin())
                    .map_or(0, |p| {
                        let next = ids.len() as u16 + 1;
                        *ids.entry(p.plain()).or_insert(next)
                    })
            })
            .collect()
    })
}

/// The toneless pinyin syllable id of `c` (0: none).
fn syllable_of(c: char) -> u16 {
    let code = c as u32;
    if (HAN_FIRST..=HAN_LAST).contains(&code) {
        syllables()[(code - HAN_FIRST) as usize]
    } else {
        0
    }
}

impl WindowKey {
    /// Extends the window by one char.
    pub fn push(&mut self, c: char) {
        self.chars += 1;
        self.anagram = self.anagram.wrapping_add(mix(c as u64));
        let syllable = syllable_of(c);
        self.no_pinyin |= syllable == 0;
        self.pinyin = self
            .pinyin
            .wrapping_mul(PINYIN_BASE)
            .wrapping_add(syllable as u64);
        self.pinyin_shift = self.pinyin_shift.wrapping_mul(PINYIN_BASE);
    }

    /// Extends the window by the span `next` is the key of.
    pub fn extend(&mut self, next: &WindowKey) {
        self.chars += next.chars;
        self.anagram = self.anagram.wrapping_add(next.anagram);
        self.pinyin = self
            .pinyin
            .wrapping_mul(next.pinyin_shift)
            .wrapping_add(next.pinyin);
        self.pinyin_shift = self.pinyin_shift.wrapping_mul(next.pinyin_shift);
        self.no_pinyin |= next.no_pinyin;
    }

    /// Number of chars in the window.
    pub fn chars(&self) -> usize {
        self.chars
    }

    /// The key hashes of a whole string.
    pub fn of(s: &str) -> Self {
        let mut key = WindowKey::default();
        s.chars().for_each(|c| key.push(c));
        key
    }

    /// Hash of the window's anagram key, if it is long enough to have one.
    fn anagram_hash(&self) -> Option<u64> {
        (ANAGRAM_MIN_CHARS..=ANAGRAM_MAX_CHARS)
            .contains(&self.chars)
            .then(|| mix(self.anagram ^ self.chars as u64))
    }

    /// Hash of the window's pinyin key, if it has one.
    fn pinyin_hash(&self) -> Option<u64> {
        (!self.no_pinyin && self.chars >= PINYIN_MIN_CHARS)
            .then(|| mix(self.pinyin ^ self.chars as u64))
    }
}

/// Error building the name index (too many or too long names).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The Aho-Corasick automaton could not be built.
    #[error("cannot build the name automaton over {names} names")]
    Automaton {
        /// Distinct normalised names.
        names: usize,
        /// The automaton's error.
        #[source]
        source: aho_corasick::BuildError,
    },
    /// The double-array trie could not be built.
    #[error("cannot build the name trie over {names} names: {message}")]
    Trie {
        /// Distinct normalised names.
        names: usize,
        /// The trie builder's error.
        message: String,
    },
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

        let mut anagram = FxHashMap::default();
        let mut pinyin = FxHashMap::default();
        let (mut anagram_filter, mut pinyin_filter) = (Bitset::new(), Bitset::new());
        if fuzzy {
            for (key, ids) in &keys {
                let hashes = WindowKey::of(key);
                if let Some(hash) = hashes.anagram_hash() {
                    let (chars, n) = anagram_key(key);
                    add_fuzzy(&mut anagram, hash, &chars[..n], ids);
                    anagram_filter.insert(hash);
                }
                if let Some(hash) = hashes.pinyin_hash() {
                    let syllables: Vec<u16> = key.chars().map(syllable_of).collect();
                    add_fuzzy(&mut pinyin, hash, &syllables, ids);
                    pinyin_filter.insert(hash);
                }
            }
        }
        // Keys are sorted by bytes, which for UTF-8 is code-point order, as `crawdad` wants.
        let records: Vec<(&str, u32)> = keys
            .iter()
            .enumerate()
            .filter(|(_, (key, _))| !key.contains(TRIE_END_MARKER))
            .map(|(pattern, (key, _))| (key.as_str(), pattern as u32))
            .collect();
        let trie = if records.is_empty() {
            None
        } else {
            let trie = crawdad::Trie::from_records(records).map_err(|e| IndexError::Trie {
                names: keys.len(),
                message: e.to_string(),
            })?;
            Some(NameTrie(trie))
        };
        let mut start_filter = Bitset::new();
        let mut single_chars = FxHashMap::default();
        for (pattern, (key, _)) in keys.iter().enumerate() {
            let mut chars = key.chars();
            if let Some(first) = chars.next() {
                match chars.next() {
                    Some(second) => start_filter.insert(start_hash(first, second)),
                    None => {
                        single_chars.insert(first, pattern as u32);
                    }
                }
            }
        }
        let automaton = if keys.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(AcMatchKind::Standard)
                    .build(keys.iter().map(|(k, _)| k.as_str()))
                    .map_err(|source| IndexError::Automaton {
                        names: keys.len(),
                        source,
                    })?,
            )
        };
        fn freeze<K>(m: GrowingBuckets<K>) -> FuzzyBuckets<K> {
            m.into_iter()
                .map(|(hash, bucket)| {
                    let bucket = bucket
                        .into_iter()
                        .map(|(key, ids)| (key, ids.into_boxed_slice()))
                        .collect();
                    (hash, bucket)
                })
                .collect()
        }
        Ok(NameIndex {
            automaton,
            pattern_entities: keys
                .into_iter()
                .map(|(_, v)| v.into_boxed_slice())
                .collect(),
            anagram: freeze(anagram),
            pinyin: freeze(pinyin),
            anagram_filter,
            pinyin_filter,
            trie,
            start_filter,
            single_chars,
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
    /// name inside a word, only to reject it; the start filter skips the
    /// walk where no name begins with the next one or two chars.
    pub fn matches_at<'s>(
        &'s self,
        text: &str,
        start: usize,
        mut f: impl FnMut(usize, &'s [EntityId]),
    ) {
        let Some(rest) = text.get(start..) else {
            return;
        };
        let mut next = rest.chars();
        let Some(first) = next.next() else { return };
        if let Some(&pattern) = self.single_chars.get(&first) {
            f(
                start + first.len_utf8(),
                &self.pattern_entities[pattern as usize],
            );
        }
        if !next
            .next()
            .is_some_and(|second| self.start_filter.contains(start_hash(first, second)))
        {
            return;
        }
        // A double-array walk: two array reads per char, stopping at the first char no
        // name continues with (an anchored overlapping search of the automaton cost about as
        // much as segmenting the text).
        let Some(trie) = &self.trie else { return };
        let chars = rest.chars().take_while(|&c| c != TRIE_END_MARKER);
        let (mut end, mut end_chars) = (start, 0);
        for (pattern, len) in trie.0.common_prefix_search(chars) {
            if len == 1 {
                continue; // reported above
            }
            end += rest[end - start..]
                .chars()
                .take(len - end_chars)
                .map(char::len_utf8)
                .sum::<usize>();
            end_chars = len;
            f(end, &self.pattern_entities[pattern as usize]);
        }
    }

    /// Whether `key` (the hashes of a window) may have fuzzy candidates;
    /// false proves it has none.
    pub fn may_fuzzy_match(&self, key: &WindowKey) -> bool {
        self.fuzzy
            && (key
                .anagram_hash()
                .is_some_and(|h| self.anagram_filter.contains(h))
                || key
                    .pinyin_hash()
                    .is_some_and(|h| self.pinyin_filter.contains(h)))
    }

    /// Fuzzy candidates for a normalised window whose hashes are `key`, each with how it
    /// matched: names with the same chars in another order (3 to 16 chars), and names that
    /// read the same in toneless pinyin (2 chars or more, all Han).
    pub fn fuzzy_matches(
        &self,
        window: &str,
        key: &WindowKey,
        out: &mut Vec<(EntityId, MatchKind)>,
    ) {
        if !self.fuzzy {
            return;
        }
        if let Some(bucket) = key.anagram_hash().and_then(|h| self.anagram.get(&h)) {
            let (chars, n) = anagram_key(window);
            for (_, ids) in bucket.iter().filter(|(k, _)| **k == chars[..n]) {
                out.extend(ids.iter().map(|&id| (id, MatchKind::Anagram)));
            }
        }
        if let Some(bucket) = key.pinyin_hash().and_then(|h| self.pinyin.get(&h)) {
            let spelled = window.chars().map(syllable_of);
            for (_, ids) in bucket
                .iter()
                .filter(|(k, _)| k.iter().copied().eq(spelled.clone()))
            {
                out.extend(ids.iter().map(|&id| (id, MatchKind::Pinyin)));
            }
        }
    }
}

/// The anagram key of `s`: its first [`ANAGRAM_MAX_CHARS`] chars sorted, and how many there
/// are (a text with an anagram hash has no more).
fn anagram_key(s: &str) -> ([char; ANAGRAM_MAX_CHARS], usize) {
    let mut chars = ['\0'; ANAGRAM_MAX_CHARS];
    let n = chars.iter_mut().zip(s.chars()).map(|(d, c)| *d = c).count();
    chars[..n].sort_unstable();
    (chars, n)
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
    fn anchored_trie_walks_find_what_the_automaton_finds() {
        let idx = index(&[
            ("北京", 0),
            ("北京大学", 1),
            ("大学", 2),
            ("学", 3),
            ("京", 4),
        ]);
        let text = "我在北京大学读书";
        let mut unanchored = Vec::new();
        idx.exact_matches(text, |s, e, ids| unanchored.push((s, e, ids.to_vec())));
        unanchored.sort();
        let mut anchored = Vec::new();
        for (start, _) in text.char_indices() {
            idx.matches_at(text, start, |e, ids| {
                anchored.push((start, e, ids.to_vec()))
            });
        }
        anchored.sort();
        assert_eq!(anchored, unanchored);
        assert_eq!(anchored.len(), 5);
    }

    #[test]
    fn swapped_chars_and_homophones_are_fuzzy_candidates() {
        let idx = index(&[("山西大学", 7), ("苦恋", 8)]);
        let mut out = Vec::new();
        for window in ["西山大学", "苦练"] {
            idx.fuzzy_matches(window, &WindowKey::of(window), &mut out);
        }
        assert_eq!(out, [(7, MatchKind::Anagram), (8, MatchKind::Pinyin)]);
        out.clear();
        for window in ["西山大", "苦", "苦练x", "哭脸了"] {
            idx.fuzzy_matches(window, &WindowKey::of(window), &mut out);
        }
        assert_eq!(out, []);
    }

    #[test]
    fn an_index_without_names_matches_nothing() {
        let idx = index(&[]);
        let mut n = 0;
        idx.exact_matches("北京大学", |_, _, _| n += 1);
        assert_eq!(n, 0);
    }
}
