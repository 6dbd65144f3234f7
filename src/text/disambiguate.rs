//! Disambiguation features and the calibrated link score.
//!
//! Every (mention, candidate) pair gets a few features — how it matched,
//! mention length, the candidate's prior (degree), context (how much of the
//! candidate's KG neighbourhood, predicates and objects, the sentence names)
//! and coherence (a KG edge to a candidate of another mention) — combined by
//! a logistic model into a probability that the link is right.
use super::candidates::MatchKind;
use super::normalize::{normalize_key, NormalizeOptions};
use crate::kg::source::{EntityId, Fact};
use rustc_hash::FxHashMap;

/// Most facts per entity kept for context scoring.
pub const PROFILE_FACTS: usize = 48;
/// Longest predicate/object (chars) kept for context scoring.
const PROFILE_MAX_CHARS: usize = 16;

/// Function chars that say nothing about a topic and so never count as context.
const STOP_CHARS: &str = "的是了在和与及之其么什吗呢啊吧哪谁个这那有为也都就把被从对中上下里一\
    ,.!?;:'\"()[]<>-_/\\|，。！？；：、“”‘’（）《》【】…·~～ ";

/// One bit per char of the Basic Multilingual Plane: set for [`STOP_CHARS`] and whitespace
/// (every stop char and every whitespace char lies in the BMP). An 8 KiB table, since a
/// search per char of every sentence showed up at several percent of linking time.
fn non_content_table() -> &'static [u64; 1024] {
    static TABLE: std::sync::OnceLock<Box<[u64; 1024]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = Box::new([0u64; 1024]);
        let whitespace = (0..0x1_0000u32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace());
        for c in STOP_CHARS.chars().chain(whitespace) {
            let code = c as usize;
            table[code / 64] |= 1 << (code % 64);
        }
        table
    })
}

/// Whether `c` can carry context.
fn content_char(c: char) -> bool {
    let code = c as usize;
    code >= 0x1_0000 || non_content_table()[code / 64] & (1 << (code % 64)) == 0
}

/// What the linker keeps about one entity.
#[derive(Debug, Clone)]
pub struct EntityProfile {
    /// Canonical name.
    pub name: Box<str>,
    /// Normalised canonical name (to tell names from aliases).
    pub key: Box<str>,
    /// Number of triples touching the entity.
    pub degree: u32,
    /// Content chars of each outgoing predicate (deduplicated), with its rarity weight.
    predicates: Box<[(Box<[char]>, f32)]>,
    /// Content chars of each short object, with its rarity weight.
    objects: Box<[(Box<[char]>, f32)]>,
    /// Object ids (sorted): the entity's KG neighbours.
    pub neighbours: Box<[EntityId]>,
}

fn char_set(s: &str, opts: NormalizeOptions) -> Option<Box<[char]>> {
    let mut chars: Vec<char> = normalize_key(s, opts)
        .chars()
        .filter(|&c| content_char(c))
        .collect();
    if chars.is_empty() || chars.len() > PROFILE_MAX_CHARS {
        return None;
    }
    chars.sort_unstable();
    chars.dedup();
    Some(chars.into_boxed_slice())
}

/// Entity share at or below which a predicate or object counts as fully
/// informative in [`rarity`].
const RARE_SHARE: f64 = 0.01;

/// Weight of a predicate (or object) that `holders` of `entities` profiled
/// entities have, for context overlap: 1 up to [`RARE_SHARE`] of the entities,
/// then falling (log scale) to 0 for one every entity has. HowNet gives every
/// word the single predicate `义原`, so naming it says nothing about which
/// word is meant, while an NLPCC predicate like `建筑面积` does.
pub fn rarity(holders: usize, entities: usize) -> f32 {
    if entities == 0 || holders == 0 {
        return 1.0;
    }
    let share = holders as f64 / entities as f64;
    ((-share.ln()) / (-RARE_SHARE.ln())).clamp(0.0, 1.0) as f32
}

impl EntityProfile {
    /// Builds a profile from the entity's name, degree and facts, every
    /// predicate and object with full weight.
    pub fn new(name: &str, degree: u32, facts: &[Fact], opts: NormalizeOptions) -> Self {
        Self::weighted(name, degree, facts, opts, &|_| (1.0, 1.0))
    }

    /// Builds a profile whose predicates and objects are weighted by
    /// `weight(fact) -> (predicate weight, object weight)` (see [`rarity`]).
    pub fn weighted(
        name: &str,
        degree: u32,
        facts: &[Fact],
        opts: NormalizeOptions,
        weight: &dyn Fn(&Fact) -> (f32, f32),
    ) -> Self {
        let mut predicates: Vec<(Box<[char]>, f32)> = Vec::new();
        let mut objects = Vec::new();
        let mut neighbours = Vec::new();
        // Only what can raise a context score is kept: a predicate or object weighted 0
        // (one nearly every entity has, like HowNet's `义原`) adds nothing, and an object
        // needs two chars to count at all.
        for fact in facts.iter().take(PROFILE_FACTS) {
            let (wp, wo) = weight(fact);
            if let Some(p) = char_set(&fact.predicate, opts) {
                if !predicates.iter().any(|(q, _)| *q == p) {
                    predicates.push((p, wp));
                }
            }
            if wo > 0.0 {
                if let Some(o) = char_set(&fact.object, opts).filter(|o| o.len() >= 2) {
                    objects.push((o, wo));
                }
            }
            neighbours.push(fact.object_id);
        }
        predicates.retain(|(_, w)| *w > 0.0);
        neighbours.sort_unstable();
        neighbours.dedup();
        EntityProfile {
            name: name.into(),
            key: normalize_key(name, opts).into(),
            degree,
            predicates: predicates.into_boxed_slice(),
            objects: objects.into_boxed_slice(),
            neighbours: neighbours.into_boxed_slice(),
        }
    }

    /// Whether `other` is one of this entity's objects.
    pub fn links_to(&self, other: EntityId) -> bool {
        self.neighbours.binary_search(&other).is_ok()
    }
}

/// The linker's entity profiles by id. Store ids are dense, so an id usually finds its
/// profile through a slot array (one read, no hashing); sparse ids fall back to a hash map.
#[derive(Debug, Default)]
pub struct ProfileTable {
    slots: ProfileSlots,
    profiles: Vec<EntityProfile>,
}

#[derive(Debug)]
enum ProfileSlots {
    /// Index + 1 of each id's profile (0: none).
    Dense(Vec<u32>),
    Sparse(FxHashMap<EntityId, u32>),
}

impl Default for ProfileSlots {
    fn default() -> Self {
        ProfileSlots::Dense(Vec::new())
    }
}

/// Ids up to this many times the number of profiles (plus a little) get a dense slot array.
const DENSE_IDS_PER_PROFILE: usize = 4;

impl ProfileTable {
    /// A table of `(id, profile)` pairs; ids are distinct (the linker profiles each entity once).
    pub fn new(items: Vec<(EntityId, EntityProfile)>) -> Self {
        let max_id = items.iter().map(|(id, _)| *id as usize).max().unwrap_or(0);
        let dense = max_id < DENSE_IDS_PER_PROFILE * items.len() + 1024;
        let mut slots = if dense {
            ProfileSlots::Dense(vec![0; max_id + 1])
        } else {
            ProfileSlots::Sparse(FxHashMap::default())
        };
        let mut profiles = Vec::with_capacity(items.len());
        for (id, profile) in items {
            profiles.push(profile);
            let slot = profiles.len() as u32;
            match &mut slots {
                ProfileSlots::Dense(v) => v[id as usize] = slot,
                ProfileSlots::Sparse(m) => {
                    m.insert(id, slot);
                }
            }
        }
        ProfileTable { slots, profiles }
    }

    /// The profile of entity `id`, if it has one.
    pub fn get(&self, id: EntityId) -> Option<&EntityProfile> {
        let slot = match &self.slots {
            ProfileSlots::Dense(v) => v.get(id as usize).copied().unwrap_or(0),
            ProfileSlots::Sparse(m) => m.get(&id).copied().unwrap_or(0),
        };
        slot.checked_sub(1).map(|i| &self.profiles[i as usize])
    }

    /// Number of profiles.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Whether no entity has a profile.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

/// Bits in [`SentenceChars`]' membership filter (one per `char % FILTER_BITS`).
const FILTER_BITS: usize = 1024;

/// Distinct chars up to which [`SentenceChars`] stays unsorted (a linear scan of a few
/// dozen chars behind the filter beats sorting them for every sentence).
const UNSORTED_MAX: usize = 64;

/// The content chars of a sentence, for context overlap.
#[derive(Debug, Clone)]
pub struct SentenceChars {
    /// Distinct content chars: in sentence order up to [`UNSORTED_MAX`], else sorted.
    chars: Vec<char>,
    /// Bit `c % FILTER_BITS` is set for every char of the sentence: a clear
    /// bit answers most membership tests (the sentence holds a few dozen
    /// chars, an entity's profile hundreds) without a scan.
    filter: [u64; FILTER_BITS / 64],
}

impl Default for SentenceChars {
    fn default() -> Self {
        SentenceChars::new("")
    }
}

impl SentenceChars {
    /// Collects the content chars of a (normalised) sentence.
    pub fn new(sentence: &str) -> Self {
        let mut set = SentenceChars {
            chars: Vec::new(),
            filter: [0u64; FILTER_BITS / 64],
        };
        for c in sentence.chars().filter(|&c| content_char(c)) {
            let bit = c as usize % FILTER_BITS;
            let (word, mask) = (bit / 64, 1u64 << (bit % 64));
            // Past UNSORTED_MAX chars, duplicates are removed by the sort below.
            let long = set.chars.len() > UNSORTED_MAX;
            if long || set.filter[word] & mask == 0 || !set.chars.contains(&c) {
                set.filter[word] |= mask;
                set.chars.push(c);
            }
        }
        if set.chars.len() > UNSORTED_MAX {
            set.chars.sort_unstable();
            set.chars.dedup();
        }
        set
    }

    fn contains(&self, c: char) -> bool {
        let bit = c as usize % FILTER_BITS;
        self.filter[bit / 64] & (1 << (bit % 64)) != 0
            && if self.chars.len() > UNSORTED_MAX {
                self.chars.binary_search(&c).is_ok()
            } else {
                self.chars.contains(&c)
            }
    }

    /// Fraction of `set` found in the sentence outside the mention itself.
    fn coverage(&self, set: &[char], mention: &str) -> (usize, f32) {
        let hit = set
            .iter()
            .filter(|&&c| self.contains(c) && !mention.contains(c))
            .count();
        (hit, hit as f32 / set.len() as f32)
    }

    /// Best predicate coverage and best object coverage of `profile`, each
    /// times its rarity weight (objects need two shared chars to count).
    pub fn context(&self, profile: &EntityProfile, mention: &str) -> (f32, f32) {
        let pred = profile
            .predicates
            .iter()
            .map(|(p, w)| self.coverage(p, mention).1 * w)
            .fold(0.0, f32::max);
        let obj = profile
            .objects
            .iter()
            .map(|(o, w)| (self.coverage(o, mention), w))
            .filter(|((hit, _), _)| *hit >= 2)
            .map(|((_, c), w)| c * w)
            .fold(0.0, f32::max);
        (pred, obj)
    }

    /// Relevance of one fact to the sentence (for knowledge selection).
    pub fn fact_relevance(
        &self,
        predicate: &str,
        object: &str,
        mention: &str,
        opts: NormalizeOptions,
    ) -> f32 {
        let p = char_set(predicate, opts).map_or(0.0, |s| self.coverage(&s, mention).1);
        let o = char_set(object, opts).map_or(0.0, |s| self.coverage(&s, mention).1);
        p + 0.5 * o
    }
}

/// Features of one (mention, candidate) pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Features {
    /// Found by anagram key.
    pub anagram: f32,
    /// Found by pinyin key.
    pub pinyin: f32,
    /// ln(mention length in chars).
    pub log_len: f32,
    /// Mention is one char.
    pub single_char: f32,
    /// ln(1 + degree).
    pub log_degree: f32,
    /// Degree share among the mention's candidates.
    pub prior_share: f32,
    /// Best predicate coverage by the sentence.
    pub context_predicate: f32,
    /// Best object coverage by the sentence.
    pub context_object: f32,
    /// Relatedness to the best-related candidate of another mention in the
    /// same sentence window: 1 for a KG edge, else the cosine of their TransE
    /// vectors (clamped at 0) when the store has them, else 0.
    pub coherence: f32,
    /// Matched through an alias, not the canonical name.
    pub alias: f32,
    /// The mention is only function chars (`是`, `什么`).
    pub function_word: f32,
    /// The mention cuts through a dictionary word at one end (`文庙` in `文/庙里`).
    pub crosses_word: f32,
}

/// Number of features (the score model has one more weight, the bias).
pub const N_FEATURES: usize = 12;

impl Features {
    /// Features as a vector, in [`ScoreWeights`] field order (after the bias).
    pub fn to_vec(&self) -> [f32; N_FEATURES] {
        [
            self.anagram,
            self.pinyin,
            self.log_len,
            self.single_char,
            self.log_degree,
            self.prior_share,
            self.context_predicate,
            self.context_object,
            self.coherence,
            self.alias,
            self.function_word,
            self.crosses_word,
        ]
    }

    /// The non-context features of a candidate.
    pub fn basic(kind: MatchKind, mention: &str, degree: u32, alias: bool) -> Self {
        let mention_chars = mention.chars().count();
        Features {
            anagram: (kind == MatchKind::Anagram) as u8 as f32,
            pinyin: (kind == MatchKind::Pinyin) as u8 as f32,
            log_len: (mention_chars.max(1) as f32).ln(),
            single_char: (mention_chars == 1) as u8 as f32,
            log_degree: (1.0 + degree as f32).ln(),
            alias: alias as u8 as f32,
            function_word: mention.chars().all(|c| !content_char(c)) as u8 as f32,
            ..Features::default()
        }
    }
}

/// Weights of the logistic link score (fitted on the NLPCC 2016 KBQA
/// training questions, never the held-out last 2,000; see tests/link/nlpcc.rs).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreWeights {
    /// Intercept.
    pub bias: f32,
    /// Weight of [`Features::anagram`].
    pub anagram: f32,
    /// Weight of [`Features::pinyin`].
    pub pinyin: f32,
    /// Weight of [`Features::log_len`].
    pub log_len: f32,
    /// Weight of [`Features::single_char`].
    pub single_char: f32,
    /// Weight of [`Features::log_degree`].
    pub log_degree: f32,
    /// Weight of [`Features::prior_share`].
    pub prior_share: f32,
    /// Weight of [`Features::context_predicate`].
    pub context_predicate: f32,
    /// Weight of [`Features::context_object`].
    pub context_object: f32,
    /// Weight of [`Features::coherence`].
    pub coherence: f32,
    /// Weight of [`Features::alias`].
    pub alias: f32,
    /// Weight of [`Features::function_word`].
    pub function_word: f32,
    /// Weight of [`Features::crosses_word`].
    pub crosses_word: f32,
}

impl Default for ScoreWeights {
    /// Fitted by `fit_score_weights` in tests/link/nlpcc.rs (22,267
    /// candidates of the 12,609 training questions), rounded.
    fn default() -> Self {
        ScoreWeights {
            bias: -3.831,
            anagram: -1.523,
            pinyin: -2.201,
            log_len: 2.920,
            single_char: -1.080,
            log_degree: -0.134,
            prior_share: 1.396,
            context_predicate: 4.141,
            context_object: 0.942,
            coherence: 0.980,
            alias: -0.577,
            function_word: -2.166,
            crosses_word: -1.482,
        }
    }
}

impl ScoreWeights {
    /// The position in [`ScoreWeights::to_vec`] order (0 = bias) of the first weight that is
    /// NaN or infinite.
    pub fn first_non_finite(&self) -> Option<usize> {
        self.to_vec().iter().position(|w| !w.is_finite())
    }

    /// Weights as a vector: bias first, then [`Features::to_vec`] order.
    pub fn to_vec(&self) -> [f32; N_FEATURES + 1] {
        [
            self.bias,
            self.anagram,
            self.pinyin,
            self.log_len,
            self.single_char,
            self.log_degree,
            self.prior_share,
            self.context_predicate,
            self.context_object,
            self.coherence,
            self.alias,
            self.function_word,
            self.crosses_word,
        ]
    }

    /// Weights from a vector in [`ScoreWeights::to_vec`] order.
    pub fn from_vec(w: [f32; N_FEATURES + 1]) -> Self {
        ScoreWeights {
            bias: w[0],
            anagram: w[1],
            pinyin: w[2],
            log_len: w[3],
            single_char: w[4],
            log_degree: w[5],
            prior_share: w[6],
            context_predicate: w[7],
            context_object: w[8],
            coherence: w[9],
            alias: w[10],
            function_word: w[11],
            crosses_word: w[12],
        }
    }

    /// Calibrated probability that the link is right.
    pub fn score(&self, f: &Features) -> f32 {
        let w = self.to_vec();
        let z = w[0]
            + f.to_vec()
                .iter()
                .zip(&w[1..])
                .map(|(x, w)| x * w)
                .sum::<f32>();
        1.0 / (1.0 + (-z).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(p: &str, o: &str) -> Fact {
        Fact {
            predicate: p.into(),
            object: o.into(),
            object_id: 0,
        }
    }

    #[test]
    fn the_content_char_table_agrees_with_its_definition() {
        let stop: std::collections::HashSet<char> = STOP_CHARS.chars().collect();
        for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
            let expected = !c.is_whitespace() && !stop.contains(&c);
            assert_eq!(content_char(c), expected, "{c:?}");
        }
    }

    #[test]
    fn sentence_chars_answer_membership_short_and_long() {
        let short = SentenceChars::new("李明的出生日期是？");
        assert!(short.contains('李') && short.contains('期'));
        assert!(!short.contains('的') && !short.contains('王'));
        // 200 distinct Han chars, each twice: past the unsorted limit.
        let text: String = (0x4E00u32..0x4EC8)
            .chain(0x4E00..0x4EC8)
            .filter_map(char::from_u32)
            .collect();
        let long = SentenceChars::new(&text);
        for c in text.chars() {
            assert_eq!(long.contains(c), content_char(c), "{c}");
        }
        assert!(!long.contains('王'));
        assert_eq!(
            long.chars.len(),
            text.chars().filter(|&c| content_char(c)).count() / 2
        );
    }

    #[test]
    fn profile_tables_find_dense_and_sparse_ids() {
        let opts = NormalizeOptions::default();
        let profile = |name: &str| EntityProfile::new(name, 1, &[], opts);
        let dense = ProfileTable::new(vec![(3, profile("甲")), (0, profile("乙"))]);
        assert_eq!(dense.get(3).map(|p| &*p.name), Some("甲"));
        assert_eq!(dense.get(0).map(|p| &*p.name), Some("乙"));
        assert!(dense.get(1).is_none() && dense.get(99).is_none());
        assert_eq!(dense.len(), 2);
        let sparse = ProfileTable::new(vec![(4_000_000_000, profile("丙"))]);
        assert!(matches!(sparse.slots, ProfileSlots::Sparse(_)));
        assert_eq!(sparse.get(4_000_000_000).map(|p| &*p.name), Some("丙"));
        assert!(sparse.get(0).is_none());
    }

    #[test]
    fn a_question_naming_a_predicate_has_context() {
        let opts = NormalizeOptions::default();
        let profile = EntityProfile::new("李明", 1, &[fact("出生日期", "1963.1")], opts);
        let sentence = SentenceChars::new("李明的出生年月日是什么？");
        let (pred, obj) = sentence.context(&profile, "李明");
        assert_eq!(pred, 0.75);
        assert_eq!(obj, 0.0);
    }

    #[test]
    fn a_predicate_every_entity_has_carries_no_context() {
        assert_eq!(rarity(52_576, 52_576), 0.0);
        assert_eq!(rarity(9, 14_609), 1.0);
        let opts = NormalizeOptions::default();
        let facts = [fact("义原", "人")];
        let common = EntityProfile::weighted("李明", 1, &facts, opts, &|_| (0.0, 1.0));
        let sentence = SentenceChars::new("李明的义原是什么？");
        assert_eq!(sentence.context(&common, "李明"), (0.0, 0.0));
        let rare = EntityProfile::new("李明", 1, &facts, opts);
        assert_eq!(sentence.context(&rare, "李明"), (1.0, 0.0));
    }

    #[test]
    fn longer_exact_mentions_score_higher() {
        let w = ScoreWeights::default();
        let short = w.score(&Features::basic(MatchKind::Exact, "京", 1, false));
        let long = w.score(&Features::basic(MatchKind::Exact, "山西大学", 1, false));
        assert!(long > short);
    }
}
