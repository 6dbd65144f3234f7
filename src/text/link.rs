//! The entity linker: finds KG names in text (respecting word boundaries),
//! adds fuzzy candidates, scores every candidate with the calibrated model of
//! `disambiguate.rs`, drops weak links (NIL) and resolves overlaps.
//!
//! A [`Linker`] is built once from a [`KnowledgeSource`] and is `Send + Sync`;
//! `link` takes `&self`, so one linker serves any number of threads.
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::candidates::{IndexError, MatchKind, NameIndex, WindowKey};
use super::disambiguate::{
    rarity, EntityProfile, Features, ProfileTable, ScoreWeights, SentenceChars, PROFILE_FACTS,
};
use super::normalize::{
    is_han, normalize, normalize_into, normalize_key, NormalizeOptions, Normalized,
};
use super::segment::{NormToken, SegmentOptions, Segmenter};
use super::source::{derived_aliases, EntityId, EntityInfo, Fact, KnowledgeSource, SourceError};
use crate::kg::transe::TransE;

/// Sentences longer than this (chars) are cut into windows for context and coherence.
const MAX_SENTENCE_CHARS: usize = 128;
/// Fuzzy windows span at most this many tokens.
const FUZZY_MAX_TOKENS: usize = 3;
/// Fuzzy windows are at most this many chars long.
const FUZZY_MAX_CHARS: usize = 10;

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
    /// Drop single-word mentions whose POS tag is listed (e.g. `r`, `v`); enables tagging.
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
            exclude_pos: Vec::new(),
            fuzzy: true,
            max_candidates: 5,
            nil_threshold: 0.25,
            weights: ScoreWeights::default(),
        }
    }
}

/// Failure building a linker.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The knowledge graph could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The name automaton could not be built.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// An option is out of its range (`link.KEY` and what was expected).
    #[error("link.{key}: {message}")]
    Options {
        /// The option's key in `[link]`.
        key: &'static str,
        /// What was expected.
        message: String,
    },
}

/// A linked entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityRef {
    /// Entity id in the store.
    pub id: EntityId,
    /// Canonical name.
    pub name: String,
}

/// One candidate entity of a mention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Entity id in the store.
    pub id: EntityId,
    /// Canonical name.
    pub name: String,
    /// Calibrated probability that this is the right entity.
    pub score: f32,
    /// How the candidate was found.
    #[serde(rename = "match")]
    pub kind: MatchKind,
    /// The features behind the score (for calibration and debugging).
    #[serde(skip)]
    pub features: Features,
}

/// A mention linked to an entity. `start`/`end` are byte offsets into the
/// input (`&text[start..end] == text`), `char_start`/`char_end` Unicode-scalar offsets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mention {
    /// Byte offset of the mention in the input.
    pub start: usize,
    /// Byte end of the mention in the input.
    pub end: usize,
    /// Char offset of the mention.
    pub char_start: usize,
    /// Char end of the mention.
    pub char_end: usize,
    /// The mention as written in the input.
    pub text: String,
    /// The best candidate.
    pub entity: EntityRef,
    /// Score of the best candidate.
    pub score: f32,
    /// Best candidates, best first (at most `max_candidates`).
    pub candidates: Vec<Candidate>,
}

/// A triple of a linked entity, ranked for knowledge injection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Knowledge {
    /// Predicate name.
    pub predicate: String,
    /// Object name.
    pub object: String,
    /// Relevance to the sentence (higher first).
    pub score: f32,
}

/// The entity linker.
pub struct Linker<S> {
    source: S,
    opts: LinkOptions,
    segmenter: Segmenter,
    index: NameIndex,
    profiles: ProfileTable,
    /// TransE entity vectors scaled to unit length, when the KG has them.
    vectors: Option<UnitVectors>,
}

/// TransE entity vectors scaled to unit length, so relatedness is a dot product.
struct UnitVectors {
    dim: usize,
    rows: Vec<f32>,
}

impl UnitVectors {
    fn new(model: TransE) -> Self {
        let dim = model.dim.max(1);
        let mut rows = model.entity;
        for row in rows.chunks_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|x| *x /= norm);
            }
        }
        UnitVectors { dim, rows }
    }

    /// Cosine of the two entities' vectors clamped at 0; 0 if either has none.
    fn relatedness(&self, a: EntityId, b: EntityId) -> f32 {
        let row = |id: EntityId| {
            self.rows
                .get(id as usize * self.dim..(id as usize + 1) * self.dim)
        };
        match (row(a), row(b)) {
            (Some(x), Some(y)) => x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>().max(0.0),
            _ => 0.0,
        }
    }
}

impl<S> std::fmt::Debug for Linker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linker")
            .field("names", &self.index.len())
            .field("entities", &self.profiles.len())
            .field("embeddings", &self.vectors.is_some())
            .field("opts", &self.opts)
            .finish()
    }
}

/// Candidates of an unscored mention: exact matches borrow the index's
/// slice (no allocation per match, most text positions have one).
enum RawCands<'i> {
    Exact(&'i [EntityId]),
    Fuzzy(Vec<(EntityId, MatchKind)>),
}

impl RawCands<'_> {
    fn iter(&self) -> impl Iterator<Item = (EntityId, MatchKind)> + '_ {
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
struct Raw<'i> {
    start: usize,
    end: usize,
    chars: usize,
    pos: Option<usize>,
    crosses: bool,
    cands: RawCands<'i>,
    sentence: usize,
}

/// A scored mention in normalised coordinates.
struct Scored {
    start: usize,
    end: usize,
    chars: usize,
    cands: Vec<Candidate>,
}

impl<S: KnowledgeSource> Linker<S> {
    /// Builds the linker: reads every name and each named entity's facts once.
    pub fn build(source: S, opts: LinkOptions) -> Result<Self, LinkError> {
        if let Some((key, message)) = opts.problem() {
            return Err(LinkError::Options { key, message });
        }
        let mut names: Vec<(String, EntityId)> = Vec::new();
        source.for_each_name(&mut |name, id| {
            names.push((name.to_string(), id));
            for alias in derived_aliases(name) {
                names.push((alias, id));
            }
        })?;
        let mut ids: Vec<EntityId> = names.iter().map(|(_, id)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let norm = opts.normalize;
        type Facts = (EntityId, EntityInfo, Vec<Fact>);
        let entities: Result<Vec<Facts>, SourceError> = ids
            .par_iter()
            .filter_map(|&id| match source.entity(id) {
                Ok(Some(info)) => Some(source.facts(id, PROFILE_FACTS).map(|f| (id, info, f))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            })
            .collect();
        let entities = entities?;
        // How many profiled entities have each predicate and each object,
        // for the rarity weights of context overlap.
        let mut predicate_holders: FxHashMap<&str, usize> = FxHashMap::default();
        let mut object_holders: FxHashMap<EntityId, usize> = FxHashMap::default();
        for (_, _, facts) in &entities {
            let mut seen_p = FxHashSet::default();
            let mut seen_o = FxHashSet::default();
            for f in facts {
                if seen_p.insert(f.predicate.as_str()) {
                    *predicate_holders.entry(f.predicate.as_str()).or_default() += 1;
                }
                if seen_o.insert(f.object_id) {
                    *object_holders.entry(f.object_id).or_default() += 1;
                }
            }
        }
        let n = entities.len();
        let weight = |f: &Fact| {
            (
                rarity(
                    predicate_holders
                        .get(f.predicate.as_str())
                        .copied()
                        .unwrap_or(0),
                    n,
                ),
                rarity(object_holders.get(&f.object_id).copied().unwrap_or(0), n),
            )
        };
        let profiles: Vec<(EntityId, EntityProfile)> = entities
            .par_iter()
            .map(|(id, info, facts)| {
                let profile =
                    EntityProfile::weighted(&info.name, info.degree, facts, norm, &weight);
                (*id, profile)
            })
            .collect();
        let profiles = ProfileTable::new(profiles);
        let vectors = source.embeddings()?.map(UnitVectors::new);
        names.retain(|(_, id)| profiles.get(*id).is_some());

        let mut segmenter = Segmenter::new(SegmentOptions {
            hmm: opts.hmm,
            normalize: norm,
        });
        if opts.kg_user_words {
            segmenter.add_words(names.iter().map(|(n, _)| n.as_str()));
        }
        let index = NameIndex::build(names, norm, opts.fuzzy)?;
        Ok(Linker {
            source,
            opts,
            segmenter,
            index,
            profiles,
            vectors,
        })
    }

    /// The knowledge source the linker was built from.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The options the linker runs with.
    pub fn options(&self) -> &LinkOptions {
        &self.opts
    }

    /// The segmenter (jieba plus the KG names when `kg_user_words`).
    pub fn segmenter(&self) -> &Segmenter {
        &self.segmenter
    }

    /// Number of distinct normalised names the linker matches.
    pub fn name_count(&self) -> usize {
        self.index.len()
    }

    /// Finds and links the mentions of `text`, in text order.
    pub fn link(&self, text: &str) -> Vec<Mention> {
        let norm = normalize(text, self.opts.normalize);
        if norm.as_str().is_empty() || self.index.is_empty() {
            return Vec::new();
        }
        let tokens = self.segment(&norm);
        self.link_segmented(text, &norm, &tokens)
    }

    /// [`Linker::link`] for a text already cut into `words` (each with its POS tag, if tagged),
    /// e.g. by a pipeline's `segment` stage running this linker's [`Linker::segmenter`]: the
    /// words are the text's own slices in order, as [`Segmenter::segment`] returns them, and
    /// their boundaries are the word boundaries mentions respect. Linking then skips its own
    /// segmentation. Words that do not tile the text (whitespace aside, when the linker strips
    /// it), or that lack the POS tags `exclude_pos` needs, are ignored and the text is
    /// segmented as [`Linker::link`] does.
    pub fn link_words<'w>(
        &self,
        text: &str,
        words: impl IntoIterator<Item = (&'w str, Option<&'w str>)>,
    ) -> Vec<Mention> {
        let norm = normalize(text, self.opts.normalize);
        if norm.as_str().is_empty() || self.index.is_empty() {
            return Vec::new();
        }
        let need_pos = !self.opts.exclude_pos.is_empty();
        let tokens = tile_words(norm.as_str(), self.opts.normalize, words, need_pos)
            .unwrap_or_else(|| self.segment(&norm));
        self.link_segmented(text, &norm, &tokens)
    }

    /// The linker's own segmentation of a normalised text (tagged when `exclude_pos` needs it).
    fn segment<'s>(&'s self, norm: &'s Normalized) -> Vec<NormToken<'s>> {
        self.segmenter
            .segment_normalized(norm.as_str(), !self.opts.exclude_pos.is_empty())
    }

    /// Links the normalised text `norm` of `text`, cut into `tokens`.
    fn link_segmented(
        &self,
        text: &str,
        norm: &Normalized,
        tokens: &[NormToken<'_>],
    ) -> Vec<Mention> {
        let s = norm.as_str();
        let sentences = sentence_windows(s, tokens);
        let raws = self.detect(s, tokens, &sentences);
        let mut scored = self.score(s, &sentences, raws);
        scored.retain(|m| m.cands[0].score >= self.opts.nil_threshold);
        let kept = resolve_overlaps(scored, self.opts.overlap);
        let mut mentions = to_mentions(text, norm, kept);
        for m in &mut mentions {
            for c in &mut m.candidates {
                if let Some(p) = self.profiles.get(c.id) {
                    c.name = p.name.to_string();
                }
            }
            m.entity.name = m.candidates[0].name.clone();
        }
        mentions
    }

    /// Mention detection: exact name matches on word boundaries, then fuzzy windows.
    fn detect(
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

    /// Features and calibrated scores for every candidate, coherence included.
    fn score(&self, s: &str, sentences: &[(usize, usize)], raws: Vec<Raw>) -> Vec<Scored> {
        let contexts: Vec<SentenceChars> = sentences
            .iter()
            .map(|&(a, b)| SentenceChars::new(&s[a..b]))
            .collect();
        let w = &self.opts.weights;
        let mut scored: Vec<(usize, Scored)> = Vec::with_capacity(raws.len());
        for raw in raws {
            let mention = &s[raw.start..raw.end];
            let ctx = &contexts[raw.sentence.min(contexts.len().saturating_sub(1))];
            let total: f32 = raw
                .cands
                .iter()
                .filter_map(|(id, _)| self.profiles.get(id))
                .map(|p| p.degree as f32)
                .sum::<f32>()
                .max(1.0);
            let mut cands: Vec<Candidate> = raw
                .cands
                .iter()
                .filter_map(|(id, kind)| {
                    let p = self.profiles.get(id)?;
                    let alias = kind == MatchKind::Exact && &*p.key != mention;
                    let mut f = Features::basic(kind, mention, p.degree, alias);
                    f.prior_share = p.degree as f32 / total;
                    f.crosses_word = raw.crosses as u8 as f32;
                    (f.context_predicate, f.context_object) = ctx.context(p, mention);
                    // The name is filled in for kept mentions only (`to_mentions`).
                    Some(Candidate {
                        id,
                        name: String::new(),
                        score: w.score(&f),
                        kind,
                        features: f,
                    })
                })
                .collect();
            if cands.is_empty() {
                continue;
            }
            sort_candidates(&mut cands);
            cands.truncate(self.opts.max_candidates.max(1));
            scored.push((
                raw.sentence,
                Scored {
                    start: raw.start,
                    end: raw.end,
                    chars: raw.chars,
                    cands,
                },
            ));
        }
        self.add_coherence(&mut scored);
        scored.into_iter().map(|(_, m)| m).collect()
    }

    /// Marks candidates linked in the KG to a candidate of another,
    /// non-overlapping mention of the same sentence window, and rescores them.
    fn add_coherence(&self, scored: &mut [(usize, Scored)]) {
        scored.sort_by_key(|(sent, m)| (*sent, m.start, m.end));
        let w = &self.opts.weights;
        let mut a = 0;
        while a < scored.len() {
            let mut b = a;
            while b < scored.len() && scored[b].0 == scored[a].0 {
                b += 1;
            }
            let group = &mut scored[a..b];
            if group.len() > 1 {
                let mut relatedness: Vec<Vec<f32>> = Vec::with_capacity(group.len());
                for (i, (_, m)) in group.iter().enumerate() {
                    relatedness.push(
                        m.cands
                            .iter()
                            .map(|c| {
                                group
                                    .iter()
                                    .enumerate()
                                    .filter(|(j, (_, o))| {
                                        *j != i && (o.end <= m.start || m.end <= o.start)
                                    })
                                    .flat_map(|(_, (_, o))| o.cands.iter())
                                    .map(|oc| self.related(c.id, oc.id))
                                    .fold(0.0, f32::max)
                            })
                            .collect(),
                    );
                }
                for ((_, m), r) in group.iter_mut().zip(relatedness) {
                    for (c, coh) in m.cands.iter_mut().zip(r) {
                        if coh > 0.0 {
                            c.features.coherence = coh;
                            c.score = w.score(&c.features);
                        }
                    }
                    sort_candidates(&mut m.cands);
                }
            }
            a = b;
        }
    }

    /// Relatedness of two entities in [0, 1]: 1 if they share a KG edge
    /// (either direction), else the cosine of their TransE vectors (clamped
    /// at 0) when the KG has vectors, else 0.
    fn related(&self, a: EntityId, b: EntityId) -> f32 {
        if a == b {
            return 0.0;
        }
        let edge = self.profiles.get(a).is_some_and(|p| p.links_to(b))
            || self.profiles.get(b).is_some_and(|p| p.links_to(a));
        if edge {
            return 1.0;
        }
        self.vectors.as_ref().map_or(0.0, |v| v.relatedness(a, b))
    }

    /// Whether the linker found TransE vectors for coherence.
    pub fn has_embeddings(&self) -> bool {
        self.vectors.is_some()
    }

    /// The triples of a linked entity ranked by relevance to the text around the mention
    /// ([`fact_context`] of `text`), best `k` first. Alias triples that only repeat the
    /// mention are skipped; ties keep store order.
    pub fn select_knowledge(
        &self,
        text: &str,
        mention: &Mention,
        k: usize,
    ) -> Result<Vec<Knowledge>, LinkError> {
        let context = fact_context(text, mention.start, mention.end);
        self.select_facts(context, &mention.text, &mention.entity, k)
    }

    /// [`Linker::select_knowledge`] for a mention known only by its surface text and entity
    /// (e.g. one read back from a serialised document).
    pub fn select_facts(
        &self,
        text: &str,
        mention_text: &str,
        entity: &EntityRef,
        k: usize,
    ) -> Result<Vec<Knowledge>, LinkError> {
        let norm = self.opts.normalize;
        let sentence = SentenceChars::new(normalize(text, norm).as_str());
        let mention_key = normalize_key(mention_text, norm);
        let entity_key = normalize_key(&entity.name, norm);
        let facts = self.source.facts(entity.id, 4096)?;
        let mut seen = FxHashSet::default();
        let mut ranked: Vec<(usize, Knowledge)> = Vec::new();
        for (i, fact) in facts.into_iter().enumerate() {
            let object_key = normalize_key(&fact.object, norm);
            if object_key == mention_key || object_key == entity_key {
                continue;
            }
            if !seen.insert((fact.predicate.clone(), object_key)) {
                continue;
            }
            let score = sentence.fact_relevance(&fact.predicate, &fact.object, &mention_key, norm);
            ranked.push((
                i,
                Knowledge {
                    predicate: fact.predicate,
                    object: fact.object,
                    score,
                },
            ));
        }
        ranked.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
        Ok(ranked.into_iter().take(k).map(|(_, kn)| kn).collect())
    }
}

/// Characters on each side of a mention that its facts are ranked against.
pub const FACT_CONTEXT_CHARS: usize = 256;

/// The text a mention's facts are ranked against: up to [`FACT_CONTEXT_CHARS`] characters on
/// each side of the mention at bytes `start..end` (the whole text when it is that short).
/// Costs O(window), so ranking every mention's facts stays linear in the document's length.
pub fn fact_context(text: &str, start: usize, end: usize) -> &str {
    let before = &text[..start];
    let from = before
        .char_indices()
        .rev()
        .nth(FACT_CONTEXT_CHARS - 1)
        .map_or(0, |(b, _)| b);
    let after = &text[end..];
    let to = after
        .char_indices()
        .nth(FACT_CONTEXT_CHARS)
        .map_or(text.len(), |(b, _)| end + b);
    &text[from..to]
}

/// Index of the token exactly covering `[st, en)`, if one does.
fn single_token(starts: &[u32], tokens: &[NormToken<'_>], st: usize, en: usize) -> Option<usize> {
    let i = *starts.get(st)? as usize;
    tokens.get(i).filter(|t| t.end == en).map(|_| i)
}

fn sort_candidates(cands: &mut [Candidate]) {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
}

/// The normalised tokens of `words` if, normalised one by one, they tile the normalised text
/// `s` exactly (and carry tags when `need_pos`); `None` otherwise.
fn tile_words<'w>(
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
fn sentence_windows(s: &str, tokens: &[NormToken<'_>]) -> Vec<(usize, usize)> {
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

/// Keeps mentions per the overlap policy; returns them in text order.
fn resolve_overlaps(mut mentions: Vec<Scored>, policy: OverlapPolicy) -> Vec<Scored> {
    let by_score = |a: &Scored, b: &Scored| {
        b.cands[0]
            .score
            .total_cmp(&a.cands[0].score)
            .then(b.chars.cmp(&a.chars))
            .then(a.start.cmp(&b.start))
    };
    match policy {
        OverlapPolicy::All => {}
        OverlapPolicy::Longest | OverlapPolicy::BestScore => {
            if policy == OverlapPolicy::Longest {
                mentions.sort_by(|a, b| b.chars.cmp(&a.chars).then_with(|| by_score(a, b)));
            } else {
                mentions.sort_by(by_score);
            }
            // Kept spans are disjoint, so only the one starting last before `m.end` can
            // overlap `m`: one ordered-map lookup per mention keeps this O(m log m) (a scan
            // of every kept span made a line of 320k mentions take minutes).
            let mut taken: std::collections::BTreeMap<usize, usize> = Default::default();
            mentions.retain(|m| {
                let free = taken
                    .range(..m.end)
                    .next_back()
                    .is_none_or(|(_, &end)| end <= m.start);
                if free {
                    taken.insert(m.start, m.end);
                }
                free
            });
        }
    }
    mentions.sort_by_key(|m| (m.start, m.end));
    mentions
}

/// Maps scored mentions back to the original text.
fn to_mentions(text: &str, norm: &Normalized, kept: Vec<Scored>) -> Vec<Mention> {
    let mut out = Vec::with_capacity(kept.len());
    let (mut byte_cursor, mut char_cursor) = (0usize, 0usize);
    for m in kept {
        let (start, end) = norm.original_span(m.start, m.end);
        if start >= byte_cursor {
            char_cursor += text[byte_cursor..start].chars().count();
        } else {
            char_cursor -= text[start..byte_cursor].chars().count();
        }
        byte_cursor = start;
        let char_len = text[start..end].chars().count();
        let best = &m.cands[0];
        out.push(Mention {
            start,
            end,
            char_start: char_cursor,
            char_end: char_cursor + char_len,
            text: text[start..end].to_string(),
            entity: EntityRef {
                id: best.id,
                name: best.name.clone(),
            },
            score: best.score,
            candidates: m.cands,
        });
    }
    out
}
