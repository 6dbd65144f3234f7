//! The `rules` stage: entities from a patterns file into `entities`, each with the stage
//! instance's name as its `source` (`"rules"`), like spaCy's EntityRuler.
//!
//! The patterns file is JSON lines, one rule a line (blank lines skipped):
//!
//! ```text
//! {"label": "药物", "pattern": "阿司匹林"}          exact string (case and width as written)
//! {"label": "检查", "regex": "[A-Z]{2,}检查"}      a regex (the `regex` crate's syntax)
//! {"label": "疾病", "kg_type": "疾病"}             every KG entity whose type is 疾病
//! ```
//!
//! An entity's types are the objects of its triples whose predicate is one of
//! `type_predicates` (default `类别`, `类型`, `type`, `rdf:type` and its IRI); a `kg_type`
//! rule matches each of those entities' names and aliases exactly. Exact strings (from
//! `pattern` and `kg_type`) are found with one Aho-Corasick automaton, leftmost-longest;
//! when one string has two labels the earlier line wins. Overlapping matches (an exact string
//! and a regex, or two regexes) are settled the same way: the match starting first wins, then
//! the longer, then the earlier line. Offsets are characters, as everywhere in a document.
//!
//! Rules run before `ner`: the NER stage's `merge` option decides what happens where its
//! entities overlap the rules' (see [`crate::stages::ner::stage::Merge`]); a `rules` stage
//! listed after an `ner` stage whose `merge` is not `"both"` is refused.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::doc::{Document, Entity};
use crate::stages::registry::{self, OptionsError, StageContext, StageInfo, StageKind};
use crate::stages::{Field, Stage, StageError};
use crate::text::KnowledgeSource;

/// The kind's name in `[pipeline] stages` (and the `source` of its entities).
pub const NAME: &str = "rules";

/// Most outgoing triples read per KG entity when looking for its types.
const TYPE_FACTS_LIMIT: usize = 10_000;

/// `[rules]` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesStageOptions {
    /// The patterns file (JSON lines), relative to the TOML file.
    pub patterns: PathBuf,
    /// Predicates whose objects are an entity's types (for `kg_type` rules).
    #[serde(default = "default_type_predicates")]
    pub type_predicates: Vec<String>,
}

impl RulesStageOptions {
    /// The stage over the patterns file `patterns`, with the default type predicates.
    pub fn new(patterns: impl Into<PathBuf>) -> Self {
        Self {
            patterns: patterns.into(),
            type_predicates: default_type_predicates(),
        }
    }
}

fn default_type_predicates() -> Vec<String> {
    ["类别", "类型", "type", "rdf:type", RDF_TYPE]
        .map(String::from)
        .to_vec()
}

const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";

/// Why a patterns file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read as UTF-8 text.
    #[error(transparent)]
    Read(#[from] crate::textfile::TextFileError),
    /// A line is not a rule.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The patterns file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A line's regex does not compile.
    #[error("{}:{line}: the regex does not compile", path.display())]
    Regex {
        /// The patterns file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The regex crate's error.
        source: regex::Error,
    },
    /// The exact strings could not be compiled into one automaton.
    #[error("{}: the exact patterns cannot be compiled", path.display())]
    Automaton {
        /// The patterns file.
        path: PathBuf,
        /// The automaton builder's error.
        source: aho_corasick::BuildError,
    },
    /// The KG could not be read for a `kg_type` rule.
    #[error("{}: reading the KG for its `kg_type` rules", path.display())]
    Kg {
        /// The patterns file.
        path: PathBuf,
        /// The KG's error.
        source: crate::text::SourceError,
    },
}

/// One line of the patterns file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleLine {
    label: String,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    kg_type: Option<String>,
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// An exact string.
    Pattern(String),
    /// A regular expression.
    Regex(String),
    /// Every KG entity of this type.
    KgType(String),
}

/// One rule: its label, what it matches and its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The entity label it gives.
    pub label: String,
    /// What it matches.
    pub matcher: Matcher,
    /// Its line in the patterns file.
    pub line: usize,
}

/// Reads a patterns file: one JSON object a line with a `label` and exactly one of
/// `pattern`, `regex` and `kg_type` (regexes are compiled here, so a bad one is reported with
/// its line).
pub fn read_rules(path: &Path) -> Result<Vec<Rule>, RulesError> {
    let text = crate::textfile::read(path)?;
    let mut rules = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let bad = |message: String| RulesError::Line {
            path: path.to_path_buf(),
            line,
            message,
        };
        if raw.trim().is_empty() {
            continue;
        }
        let parsed: RuleLine = serde_json::from_str(raw).map_err(|e| {
            bad(format!(
                "{e}; expected {{\"label\": ..., \"pattern\" | \"regex\" | \"kg_type\": ...}}"
            ))
        })?;
        if parsed.label.trim().is_empty() {
            return Err(bad("`label` is empty; expected an entity label".into()));
        }
        let matcher = match (parsed.pattern, parsed.regex, parsed.kg_type) {
            (Some(p), None, None) => Matcher::Pattern(p),
            (None, Some(r), None) => {
                regex::Regex::new(&r).map_err(|source| RulesError::Regex {
                    path: path.to_path_buf(),
                    line,
                    source,
                })?;
                Matcher::Regex(r)
            }
            (None, None, Some(t)) => Matcher::KgType(t),
            _ => {
                return Err(bad(
                    "expected exactly one of `pattern`, `regex` and `kg_type`".into(),
                ))
            }
        };
        let what = match &matcher {
            Matcher::Pattern(s) | Matcher::Regex(s) | Matcher::KgType(s) => s,
        };
        if what.is_empty() {
            return Err(bad(
                "the pattern is empty; expected at least one character".into()
            ));
        }
        rules.push(Rule {
            label: parsed.label,
            matcher,
            line,
        });
    }
    Ok(rules)
}

/// A compiled rule set.
pub struct RuleSet {
    /// Exact strings, leftmost-longest; pattern `i` has `exact_rules[i]` = (label, rule order).
    exact: Option<AhoCorasick>,
    exact_rules: Vec<(String, usize)>,
    /// Regexes with their label and rule order.
    regexes: Vec<(regex::Regex, String, usize)>,
}

impl RuleSet {
    /// Compiles `rules` read from `path`; `kg_type` rules take their names from `kg` (an
    /// error without one) through `type_predicates`.
    pub fn compile(
        path: &Path,
        rules: &[Rule],
        kg: Option<&Arc<dyn KnowledgeSource>>,
        type_predicates: &[String],
    ) -> Result<Self, RulesError> {
        let mut strings: Vec<String> = Vec::new();
        let mut exact_rules: Vec<(String, usize)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut add = |s: &str, label: &str, order: usize| {
            if !s.is_empty() && seen.insert(s.to_string()) {
                strings.push(s.to_string());
                exact_rules.push((label.to_string(), order));
            }
        };
        let typed = kg_types(path, rules, kg, type_predicates)?;
        let mut regexes = Vec::new();
        for (order, rule) in rules.iter().enumerate() {
            match &rule.matcher {
                Matcher::Pattern(s) => add(s, &rule.label, order),
                Matcher::KgType(t) => {
                    for name in typed.get(t.as_str()).into_iter().flatten() {
                        add(name, &rule.label, order);
                    }
                }
                Matcher::Regex(r) => {
                    let compiled = regex::Regex::new(r).map_err(|source| RulesError::Regex {
                        path: path.to_path_buf(),
                        line: rule.line,
                        source,
                    })?;
                    regexes.push((compiled, rule.label.clone(), order));
                }
            }
        }
        let exact = if strings.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&strings)
                    .map_err(|source| RulesError::Automaton {
                        path: path.to_path_buf(),
                        source,
                    })?,
            )
        };
        Ok(Self {
            exact,
            exact_rules,
            regexes,
        })
    }

    /// Number of exact strings (patterns and KG names) in the automaton.
    pub fn exact_strings(&self) -> usize {
        self.exact_rules.len()
    }

    /// The entities the rules find in `text` (no overlaps, in text order), with `source`.
    pub fn find(&self, text: &str, source: &str) -> Vec<Entity> {
        // (byte start, byte end, rule order, label)
        let mut found: Vec<(usize, usize, usize, &str)> = Vec::new();
        if let Some(ac) = &self.exact {
            for m in ac.find_iter(text) {
                let (label, order) = &self.exact_rules[m.pattern().as_usize()];
                found.push((m.start(), m.end(), *order, label));
            }
        }
        for (re, label, order) in &self.regexes {
            for m in re.find_iter(text).filter(|m| !m.is_empty()) {
                found.push((m.start(), m.end(), *order, label));
            }
        }
        found.sort_by_key(|&(s, e, order, _)| (s, std::cmp::Reverse(e), order));
        let mut out = Vec::new();
        let mut end = 0;
        for (s, e, _, label) in found {
            if s < end {
                continue;
            }
            end = e;
            out.push((s, e, label));
        }
        // Byte offsets to character offsets, in one pass over the text.
        let mut chars = 0;
        let mut byte = 0;
        let mut to_char = |b: usize| {
            chars += text[byte..b].chars().count();
            byte = b;
            chars
        };
        out.into_iter()
            .map(|(s, e, label)| {
                let start = to_char(s);
                let end = to_char(e);
                Entity {
                    start,
                    end,
                    text: text[s..e].to_string(),
                    label: label.to_string(),
                    score: None,
                    source: Some(source.to_string()),
                    evidence: None,
                }
            })
            .collect()
    }
}

/// The names (canonical and aliases) of the KG entities of each type some `kg_type` rule
/// asks for.
fn kg_types(
    path: &Path,
    rules: &[Rule],
    kg: Option<&Arc<dyn KnowledgeSource>>,
    type_predicates: &[String],
) -> Result<std::collections::HashMap<String, Vec<String>>, RulesError> {
    let wanted: std::collections::HashSet<&str> = rules
        .iter()
        .filter_map(|r| match &r.matcher {
            Matcher::KgType(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    if wanted.is_empty() {
        return Ok(out);
    }
    let Some(kg) = kg else {
        let line = rules
            .iter()
            .find(|r| matches!(r.matcher, Matcher::KgType(_)))
            .map_or(1, |r| r.line);
        return Err(RulesError::Line {
            path: path.to_path_buf(),
            line,
            message: "a `kg_type` rule needs the pipeline's knowledge graph: add a [kg] table"
                .into(),
        });
    };
    let kg_err = |source| RulesError::Kg {
        path: path.to_path_buf(),
        source,
    };
    let mut names: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    kg.for_each_name(&mut |name, id| names.entry(id).or_default().push(name.to_string()))
        .map_err(kg_err)?;
    for (id, entity_names) in names {
        let facts = kg.facts(id, TYPE_FACTS_LIMIT).map_err(kg_err)?;
        for fact in facts {
            if wanted.contains(fact.object.as_str())
                && type_predicates.iter().any(|p| p == &fact.predicate)
            {
                out.entry(fact.object.clone())
                    .or_default()
                    .extend(entity_names.iter().cloned());
            }
        }
    }
    Ok(out)
}

/// Adds rule entities to each document.
pub struct RulesStage {
    rules: RuleSet,
    instance: String,
}

impl Stage for RulesStage {
    fn name(&self) -> &str {
        &self.instance
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        docs.par_iter_mut().for_each(|doc| {
            let found = self.rules.find(&doc.text, &self.instance);
            doc.entities.extend(found);
            doc.entities.sort_by_key(|e| (e.start, e.end));
        });
        Ok(())
    }
}

/// The `rules` stage kind.
pub struct RulesKind;

/// Registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: RulesKind = RulesKind;

fn options(table: Option<&toml::Value>) -> Result<RulesStageOptions, OptionsError> {
    let table = table.ok_or_else(|| OptionsError {
        key: "pipeline.stages".into(),
        message: "stage `rules` needs a [rules] table with `patterns = \"FILE.jsonl\"`".into(),
    })?;
    registry::required_options(NAME, Some(table))
}

impl StageKind for RulesKind {
    fn info(&self) -> StageInfo {
        StageInfo {
            name: NAME,
            summary: "entities from a JSON-lines patterns file (exact strings, regexes, every KG entity of a type), `source: \"rules\"`; list it before `ner`, whose `merge` settles overlaps",
            reads: &[],
            produces: &[Field::Entities],
            needs_kg: false,
        }
    }

    fn requires(&self, _: Option<&toml::Value>) -> Result<Vec<Field>, OptionsError> {
        Ok(Vec::new())
    }

    fn check(
        &self,
        mut table: Option<&mut toml::Value>,
        resolve: &dyn Fn(&str, &std::path::Path) -> Result<std::path::PathBuf, OptionsError>,
    ) -> Result<(), OptionsError> {
        options(table.as_deref())?;
        registry::resolve_path(NAME, "patterns", table.as_deref_mut(), resolve)?;
        let opts = options(table.as_deref())?;
        read_rules(&opts.patterns).map_err(|e| OptionsError {
            key: format!("{NAME}.patterns"),
            message: crate::error::report(&e),
        })?;
        Ok(())
    }

    fn build(
        &self,
        table: Option<&toml::Value>,
        ctx: &StageContext<'_>,
    ) -> Result<Box<dyn Stage>, StageError> {
        let opts = options(table).map_err(|e| StageError::new(ctx.instance, e))?;
        for earlier in ctx.earlier {
            let name = earlier.name();
            let table = ctx.tables.get(name);
            if registry::kind_name(name, table) != "ner" {
                continue;
            }
            let merge = table
                .and_then(|t| t.get("merge"))
                .and_then(toml::Value::as_str)
                .unwrap_or("prefer_rules");
            if merge != "both" {
                return Err(StageError::new(
                    ctx.instance,
                    format!(
                        "`{}` is listed after the NER stage `{name}`, whose merge = \"{merge}\" \
                         settles overlaps with rule entities found before it: list the rules \
                         stage before `{name}` (or set [{name}] merge = \"both\")",
                        ctx.instance
                    ),
                ));
            }
        }
        let rules = read_rules(&opts.patterns).map_err(|e| StageError::new(ctx.instance, e))?;
        let compiled = RuleSet::compile(&opts.patterns, &rules, ctx.kg, &opts.type_predicates)
            .map_err(|e| StageError::new(ctx.instance, e))?;
        tracing::info!(
            rules = rules.len(),
            exact = compiled.exact_strings(),
            "rules stage `{}` ready",
            ctx.instance
        );
        Ok(Box::new(RulesStage {
            rules: compiled,
            instance: ctx.instance.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::MemoryKg;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("patterns.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn exact_regex_and_kg_type_rules_find_character_spans() {
        let (_dir, path) = write(concat!(
            "{\"label\": \"药物\", \"pattern\": \"阿司匹林\"}\n",
            "\n",
            "{\"label\": \"检查\", \"regex\": \"[A-Z]{2,}检查\"}\n",
            "{\"label\": \"疾病\", \"kg_type\": \"疾病\"}\n",
            "{\"label\": \"其他\", \"pattern\": \"糖尿病\"}\n",
        ));
        let kg: Arc<dyn KnowledgeSource> = Arc::new(MemoryKg::from_triples([
            ("糖尿病", "类别", "疾病"),
            ("高血压", "类别", "疾病"),
            ("头痛", "类别", "症状"),
        ]));
        let rules = read_rules(&path).unwrap();
        assert_eq!(rules.len(), 4);
        let set = RuleSet::compile(&path, &rules, Some(&kg), &default_type_predicates()).unwrap();
        let text = "🙂高血压和糖尿病患者吃阿司匹林，做CT检查，头痛";
        let found: Vec<(usize, usize, String, String)> = set
            .find(text, "rules")
            .into_iter()
            .map(|e| (e.start, e.end, e.text, e.label))
            .collect();
        assert_eq!(
            found,
            [
                (1, 4, "高血压".into(), "疾病".into()),
                (5, 8, "糖尿病".into(), "疾病".into()),
                (11, 15, "阿司匹林".into(), "药物".into()),
                (17, 21, "CT检查".into(), "检查".into()),
            ]
        );
        let doc = Document::new(text);
        assert_eq!(doc.span_text(crate::doc::Span::new(17, 21)), Some("CT检查"));
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        for (text, expected) in [
            ("{\"label\": \"X\"}\n", ":1: expected exactly one of"),
            (
                "\n{\"label\": \"X\", \"regex\": \"(\"}\n",
                ":2: the regex does not compile",
            ),
            (
                "{\"label\": \"X\", \"patern\": \"a\"}\n",
                ":1: unknown field `patern`",
            ),
            ("not json\n", ":1: expected ident"),
            (
                "{\"label\": \"\", \"pattern\": \"a\"}\n",
                ":1: `label` is empty",
            ),
        ] {
            let (_dir, path) = write(text);
            let err = crate::error::report(&read_rules(&path).unwrap_err());
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let (_dir, path) = write("{\"label\": \"X\", \"kg_type\": \"T\"}\n");
        let rules = read_rules(&path).unwrap();
        let err = RuleSet::compile(&path, &rules, None, &default_type_predicates())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("patterns.jsonl:1: a `kg_type` rule needs"),
            "{err}"
        );
    }

    #[test]
    fn overlaps_go_to_the_first_then_the_longest_match() {
        let (_dir, path) = write(concat!(
            "{\"label\": \"A\", \"pattern\": \"北京\"}\n",
            "{\"label\": \"B\", \"regex\": \"北京大学\"}\n",
            "{\"label\": \"C\", \"pattern\": \"京大\"}\n",
        ));
        let rules = read_rules(&path).unwrap();
        let set = RuleSet::compile(&path, &rules, None, &[]).unwrap();
        let labels: Vec<String> = set
            .find("北京大学", "rules")
            .into_iter()
            .map(|e| e.label)
            .collect();
        assert_eq!(labels, ["B"]);
    }
}
