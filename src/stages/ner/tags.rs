//! Tagging schemes (BIO, BIOES, BMES), the label map of a model, the spans a tag sequence
//! encodes, and which tag may follow which (the CRF's constraints).
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// How entity spans are written as per-character tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagScheme {
    /// `B-X` begins, `I-X` continues; `O` outside.
    Bio,
    /// `B-X I-X* E-X` or `S-X` for a single character.
    Bioes,
    /// `B-X M-X* E-X` or `S-X` (Chinese NER's name for BIOES).
    Bmes,
}

impl TagScheme {
    /// The prefixes of the scheme, in label-map order.
    pub fn prefixes(self) -> &'static [char] {
        match self {
            TagScheme::Bio => &['B', 'I'],
            TagScheme::Bioes => &['B', 'I', 'E', 'S'],
            TagScheme::Bmes => &['B', 'M', 'E', 'S'],
        }
    }

    /// The scheme a set of tags is written in: `M-` means BMES, `E-`/`S-` BIOES, else BIO.
    pub fn detect<'a>(tags: impl IntoIterator<Item = &'a str>) -> Self {
        let mut scheme = TagScheme::Bio;
        for t in tags {
            match t.chars().next() {
                Some('M') if t[1..].starts_with('-') => return TagScheme::Bmes,
                Some('E' | 'S') if t[1..].starts_with('-') => scheme = TagScheme::Bioes,
                _ => {}
            }
        }
        scheme
    }

    /// The prefix continuing a span (`I` or `M`).
    fn inside(self) -> char {
        match self {
            TagScheme::Bmes => 'M',
            _ => 'I',
        }
    }
}

/// A tag split into its prefix (`B`, `I`, `M`, `E`, `S`, or `O`) and entity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    /// `O` or the scheme prefix.
    pub prefix: char,
    /// The entity type (empty for `O`).
    pub kind: &'a str,
}

impl<'a> Tag<'a> {
    /// Parses `B-PER`, `O`, …; `None` for anything else.
    pub fn parse(tag: &'a str) -> Option<Self> {
        if tag == "O" {
            return Some(Tag {
                prefix: 'O',
                kind: "",
            });
        }
        let mut chars = tag.chars();
        let prefix = chars.next()?;
        let kind = chars.as_str().strip_prefix('-')?;
        (!kind.is_empty() && "BIMES".contains(prefix)).then_some(Tag { prefix, kind })
    }
}

/// The labels a model predicts: `O` first, then every prefix of every entity type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMap {
    /// The tagging scheme.
    pub scheme: TagScheme,
    /// Entity types, sorted.
    pub types: Vec<String>,
    /// Label strings by id.
    pub labels: Vec<String>,
}

impl LabelMap {
    /// All labels of `scheme` for the given entity types.
    pub fn new(scheme: TagScheme, types: impl IntoIterator<Item = String>) -> Self {
        let types: Vec<String> = types
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut labels = vec!["O".to_string()];
        for t in &types {
            for p in scheme.prefixes() {
                labels.push(format!("{p}-{t}"));
            }
        }
        Self {
            scheme,
            types,
            labels,
        }
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no labels (never: `O` is always there).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The id of a tag string.
    pub fn id(&self, tag: &str) -> Option<u32> {
        self.labels.iter().position(|l| l == tag).map(|i| i as u32)
    }

    /// The parsed label of id `i`.
    pub fn tag(&self, i: usize) -> Tag<'_> {
        Tag::parse(&self.labels[i]).unwrap_or(Tag {
            prefix: 'O',
            kind: "",
        })
    }

    /// Whether label `to` may follow label `from`.
    pub fn allowed(&self, from: usize, to: usize) -> bool {
        let (f, t) = (self.tag(from), self.tag(to));
        let inside = self.scheme.inside();
        let open = f.prefix == 'B' || f.prefix == inside;
        match self.scheme {
            TagScheme::Bio => t.prefix != inside || (open && f.kind == t.kind),
            _ => {
                if open {
                    (t.prefix == inside || t.prefix == 'E') && t.kind == f.kind
                } else {
                    t.prefix == 'O' || t.prefix == 'B' || t.prefix == 'S'
                }
            }
        }
    }

    /// Whether a sequence may start with label `i`.
    pub fn allowed_start(&self, i: usize) -> bool {
        let p = self.tag(i).prefix;
        p != self.scheme.inside() && p != 'E'
    }

    /// Whether a sequence may end with label `i`.
    pub fn allowed_end(&self, i: usize) -> bool {
        let p = self.tag(i).prefix;
        self.scheme == TagScheme::Bio || !(p == 'B' || p == self.scheme.inside())
    }

    /// The entity spans `(start, end_exclusive, type)` of a sequence of label ids.
    pub fn spans(&self, ids: &[u32]) -> Vec<(usize, usize, String)> {
        let tags: Vec<Tag> = ids.iter().map(|&i| self.tag(i as usize)).collect();
        spans(self.scheme, &tags)
    }
}

/// The spans of a sequence of tag strings as a data file holds them (an unreadable tag counts
/// as `O`).
pub fn spans_of_strings(scheme: TagScheme, tags: &[String]) -> Vec<(usize, usize, String)> {
    let parsed: Vec<Tag> = tags
        .iter()
        .map(|t| {
            Tag::parse(t).unwrap_or(Tag {
                prefix: 'O',
                kind: "",
            })
        })
        .collect();
    spans(scheme, &parsed)
}

/// The spans `(start, end_exclusive, type)` of a tag sequence. BIO follows conlleval (a stray
/// `I-X` starts a span); BIOES/BMES are strict: only `S-X` and `B-X (I|M-X)* E-X` count.
pub fn spans(scheme: TagScheme, tags: &[Tag]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, &str)> = None;
    match scheme {
        TagScheme::Bio => {
            for (i, t) in tags.iter().enumerate() {
                if let Some((s, k)) = open {
                    if !(t.prefix == 'I' && t.kind == k) {
                        out.push((s, i, k.to_string()));
                        open = None;
                    }
                }
                if t.prefix == 'B' || (t.prefix == 'I' && open.is_none()) {
                    open = Some((i, t.kind));
                }
            }
            if let Some((s, k)) = open {
                out.push((s, tags.len(), k.to_string()));
            }
        }
        TagScheme::Bioes | TagScheme::Bmes => {
            let inside = scheme.inside();
            for (i, t) in tags.iter().enumerate() {
                match (t.prefix, open) {
                    ('S', _) => {
                        out.push((i, i + 1, t.kind.to_string()));
                        open = None;
                    }
                    ('B', _) => open = Some((i, t.kind)),
                    (p, Some((_, k))) if p == inside && k == t.kind => {}
                    ('E', Some((s, k))) if k == t.kind => {
                        out.push((s, i + 1, k.to_string()));
                        open = None;
                    }
                    _ => open = None,
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(tags: &str) -> Vec<Tag<'_>> {
        tags.split(' ').map(|t| Tag::parse(t).unwrap()).collect()
    }

    #[test]
    fn bmes_spans_are_strict() {
        // 高勇：男 — NAME over the first two characters; a dangling B-ORG M-ORG is dropped.
        let tags = parse_all("B-NAME E-NAME O S-RACE B-ORG M-ORG O");
        assert_eq!(
            spans(TagScheme::Bmes, &tags),
            vec![(0, 2, "NAME".to_string()), (3, 4, "RACE".to_string())]
        );
    }

    #[test]
    fn bio_spans_follow_conlleval() {
        let tags = parse_all("B-Symptom I-Symptom O I-Disease I-Disease B-Cure I-Symptom");
        assert_eq!(
            spans(TagScheme::Bio, &tags),
            vec![
                (0, 2, "Symptom".to_string()),
                (3, 5, "Disease".to_string()),
                (5, 6, "Cure".to_string()),
                (6, 7, "Symptom".to_string()),
            ]
        );
    }

    #[test]
    fn detects_schemes_and_builds_labels() {
        assert_eq!(
            TagScheme::detect(["O", "B-X", "M-X", "E-X"]),
            TagScheme::Bmes
        );
        assert_eq!(
            TagScheme::detect(["O", "B-X", "I-X", "S-X"]),
            TagScheme::Bioes
        );
        assert_eq!(TagScheme::detect(["O", "B-X", "I-X"]), TagScheme::Bio);
        let map = LabelMap::new(TagScheme::Bio, ["PER".to_string(), "LOC".to_string()]);
        assert_eq!(map.labels, ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]);
    }

    #[test]
    fn transitions_follow_the_scheme() {
        let map = LabelMap::new(TagScheme::Bmes, ["A".to_string(), "B".to_string()]);
        let id = |t: &str| map.id(t).unwrap() as usize;
        assert!(map.allowed(id("B-A"), id("M-A")));
        assert!(map.allowed(id("B-A"), id("E-A")));
        assert!(!map.allowed(id("B-A"), id("E-B")));
        assert!(!map.allowed(id("B-A"), id("O")));
        assert!(!map.allowed(id("O"), id("M-A")));
        assert!(map.allowed(id("E-A"), id("S-B")));
        assert!(!map.allowed_start(id("E-A")));
        assert!(!map.allowed_end(id("M-A")));
        let bio = LabelMap::new(TagScheme::Bio, ["A".to_string(), "B".to_string()]);
        let id = |t: &str| bio.id(t).unwrap() as usize;
        assert!(!bio.allowed(id("B-A"), id("I-B")));
        assert!(bio.allowed(id("B-A"), id("I-A")));
        assert!(bio.allowed(id("I-A"), id("O")));
        assert!(!bio.allowed_start(id("I-A")));
    }
}
