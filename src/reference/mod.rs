//! The configuration reference as data. `docs/config.md` documents every table of the pipeline
//! and training TOML files, a heading per table and a row per key; this module reads it
//! ([`Reference`]), lists the structs that read each table with their serde field names
//! ([`schema`]), and writes the commented TOML of `zhishi init` from the two
//! ([`template`]). `tests/docs/config_reference.rs` keeps them equal, so a key added to a
//! configuration struct without a row in the reference (or a row left for a key that is gone)
//! fails the tests, and every key `zhishi init` prints is documented.
//!
//! The format of `docs/config.md`: a table starts at a heading ``### `[name]` (scope)``, where
//! scope is one of [`Scope`]'s names, and holds rows
//! ``| `key` | type | default | allowed values | meaning |``. The default is a TOML literal in
//! backticks, `required`, `table` (a sub-table with its own heading) or `unset` (optionally
//! followed by an example in backticks after `e.g.`).
pub mod fields;
pub mod template;

use std::sync::OnceLock;

use crate::pipeline::spec::{KgSpec, RunSpec};
use crate::stages::{
    classify, distill, facts, kbqa, ner, pretrain, qa, registry, relation, rules, segment, task,
};
use crate::text::disambiguate::ScoreWeights;
use crate::text::{LinkOptions, NormalizeOptions};
use fields::fields_of;

/// `docs/config.md`, built into the binary for `zhishi init`.
pub const CONFIG_MD: &str = include_str!("../../docs/config.md");

/// Which file a table belongs to: the same table name means different things in a pipeline
/// file and in each kind of training file (`[data]`, `[link]`, `[kg]`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// A pipeline file (`zhishi run`, `zhishi serve`).
    Pipeline,
    /// The tables every `ner`, `relation` and `qa` training file shares.
    Training,
    /// A `[task] kind = "ner"` file's own tables.
    Ner,
    /// A `[task] kind = "relation"` file's own tables.
    Relation,
    /// A `[task] kind = "qa"` file's own tables.
    Qa,
    /// A `[task] kind = "kbqa"` file's tables.
    Kbqa,
    /// A `[task] kind = "pretrain"` file's own tables.
    Pretrain,
    /// A `[task] kind = "distill"` file's own tables.
    Distill,
    /// A `[task] kind = "classify"` file's own tables.
    Classify,
}

impl Scope {
    /// Every scope, in the reference's order.
    pub const ALL: [Scope; 9] = [
        Scope::Pipeline,
        Scope::Training,
        Scope::Ner,
        Scope::Relation,
        Scope::Qa,
        Scope::Kbqa,
        Scope::Pretrain,
        Scope::Distill,
        Scope::Classify,
    ];

    /// The name in the reference's headings.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Pipeline => "pipeline",
            Scope::Training => "training",
            Scope::Ner => "ner",
            Scope::Relation => "relation",
            Scope::Qa => "qa",
            Scope::Kbqa => "kbqa",
            Scope::Pretrain => "pretrain",
            Scope::Distill => "distill",
            Scope::Classify => "classify",
        }
    }

    fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A trainable task: the `[task] kind` of a training file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrainingTask {
    /// Named-entity recognition.
    Ner,
    /// Relation extraction.
    Relation,
    /// Extractive question answering.
    Qa,
    /// Question answering over the KG.
    Kbqa,
    /// Sentence and sentence-pair classification.
    Classify,
}

impl TrainingTask {
    /// Every task.
    pub const ALL: [TrainingTask; 5] = [
        TrainingTask::Classify,
        TrainingTask::Ner,
        TrainingTask::Relation,
        TrainingTask::Qa,
        TrainingTask::Kbqa,
    ];

    /// The `kind` in `[task]`.
    pub fn name(self) -> &'static str {
        match self {
            TrainingTask::Ner => "ner",
            TrainingTask::Relation => "relation",
            TrainingTask::Qa => "qa",
            TrainingTask::Kbqa => "kbqa",
            TrainingTask::Classify => "classify",
        }
    }

    /// The tables of its training file, in the order `zhishi init` writes them.
    pub fn tables(self) -> &'static [(Scope, &'static str)] {
        use Scope::{Classify, Kbqa, Ner, Qa, Relation, Training};
        match self {
            TrainingTask::Ner => &[
                (Training, "task"),
                (Training, "encoder"),
                (Training, "knowledge"),
                (Ner, "data"),
                (Ner, "head"),
                (Training, "train"),
            ],
            TrainingTask::Classify => &[
                (Training, "task"),
                (Training, "encoder"),
                (Training, "knowledge"),
                (Classify, "data"),
                (Classify, "head"),
                (Training, "train"),
            ],
            TrainingTask::Relation => &[
                (Training, "task"),
                (Training, "encoder"),
                (Training, "knowledge"),
                (Relation, "data"),
                (Training, "train"),
            ],
            TrainingTask::Qa => &[
                (Training, "task"),
                (Training, "encoder"),
                (Qa, "data"),
                (Qa, "decode"),
                (Training, "train"),
            ],
            TrainingTask::Kbqa => &[
                (Kbqa, "task"),
                (Kbqa, "data"),
                (Kbqa, "kg"),
                (Kbqa, "encoder"),
                (Kbqa, "link"),
                (Kbqa, "train"),
            ],
        }
    }

    /// The top-level keys (tables) its configuration struct accepts.
    pub fn config_fields(self) -> &'static [&'static str] {
        match self {
            TrainingTask::Ner => fields_of::<ner::NerConfig>(),
            TrainingTask::Relation => fields_of::<relation::RelationConfig>(),
            TrainingTask::Qa => fields_of::<qa::QaConfig>(),
            TrainingTask::Kbqa => fields_of::<kbqa::KbqaConfig>(),
            TrainingTask::Classify => fields_of::<classify::ClassifyConfig>(),
        }
    }
}

impl std::str::FromStr for TrainingTask {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrainingTask::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                format!("unknown task {s:?}; expected classify, ner, relation, qa or kbqa")
            })
    }
}

/// The tables of a pipeline file in the order `zhishi init pipeline` writes them: run
/// settings, the KG, then every registered stage's table (with the linker's sub-tables).
pub fn pipeline_tables() -> Vec<&'static str> {
    let mut tables = vec!["pipeline", "kg"];
    for name in registry::names() {
        tables.push(name);
        if name == "link" {
            tables.extend(["link.normalize", "link.weights"]);
        }
    }
    tables
}

/// One configuration table and the keys its struct accepts.
#[derive(Debug, Clone, Copy)]
pub struct SchemaTable {
    /// Which file.
    pub scope: Scope,
    /// The table's dotted name (`train`, `link.weights`).
    pub table: &'static str,
    /// The serde field names of the struct that reads it.
    pub fields: &'static [&'static str],
}

/// Every configuration table the code reads, with the keys it accepts.
pub fn schema() -> Vec<SchemaTable> {
    use Scope::{Classify, Distill, Kbqa, Ner, Pipeline, Pretrain, Qa, Relation, Training};
    let t = |scope, table, fields| SchemaTable {
        scope,
        table,
        fields,
    };
    vec![
        t(Pipeline, "pipeline", fields_of::<RunSpec>()),
        t(Pipeline, "kg", fields_of::<KgSpec>()),
        t(
            Pipeline,
            "segment",
            fields_of::<segment::SegmentStageOptions>(),
        ),
        t(Pipeline, "link", fields_of::<LinkOptions>()),
        t(Pipeline, "link.normalize", fields_of::<NormalizeOptions>()),
        t(Pipeline, "link.weights", fields_of::<ScoreWeights>()),
        t(Pipeline, "facts", fields_of::<facts::FactsOptions>()),
        t(Pipeline, "rules", fields_of::<rules::RulesStageOptions>()),
        t(Pipeline, "ner", fields_of::<ner::NerStageOptions>()),
        t(
            Pipeline,
            "relation",
            fields_of::<relation::RelationStageOptions>(),
        ),
        t(Pipeline, "qa", fields_of::<qa::QaStageOptions>()),
        t(Pipeline, "kbqa", fields_of::<kbqa::KbqaStageOptions>()),
        t(
            Pipeline,
            "classify",
            fields_of::<classify::ClassifyStageOptions>(),
        ),
        t(Training, "task", fields_of::<task::TaskTable>()),
        t(Training, "encoder", fields_of::<task::EncoderTable>()),
        t(Training, "knowledge", fields_of::<task::KnowledgeTable>()),
        t(Training, "train", fields_of::<task::TrainTable>()),
        t(Ner, "data", fields_of::<ner::config::DataTable>()),
        t(Ner, "head", fields_of::<ner::config::HeadTable>()),
        t(Relation, "data", fields_of::<relation::config::DataTable>()),
        t(Classify, "data", fields_of::<classify::config::DataTable>()),
        t(Classify, "head", fields_of::<classify::config::HeadTable>()),
        t(Qa, "data", fields_of::<qa::config::DataTable>()),
        t(Qa, "decode", fields_of::<qa::config::DecodeOptions>()),
        t(Kbqa, "task", fields_of::<kbqa::config::TaskSection>()),
        t(Kbqa, "data", fields_of::<kbqa::config::DataSection>()),
        t(Kbqa, "kg", fields_of::<kbqa::config::KgSection>()),
        t(Kbqa, "encoder", fields_of::<kbqa::config::EncoderSection>()),
        t(Kbqa, "link", fields_of::<kbqa::CandidateOptions>()),
        t(Kbqa, "train", fields_of::<kbqa::config::TrainSection>()),
        t(Pretrain, "data", fields_of::<pretrain::config::DataTable>()),
        t(
            Pretrain,
            "masking",
            fields_of::<pretrain::config::MaskingTable>(),
        ),
        t(
            Distill,
            "teacher",
            fields_of::<distill::config::TeacherTable>(),
        ),
        t(
            Distill,
            "student",
            fields_of::<distill::config::StudentTable>(),
        ),
        t(
            Distill,
            "distill",
            fields_of::<distill::config::DistillTable>(),
        ),
        t(Distill, "data", fields_of::<distill::config::DataTable>()),
    ]
}

/// A key's default as the reference states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultValue {
    /// A TOML literal (`3`, `"auto"`, `[]`).
    Literal(String),
    /// The file must set it.
    Required,
    /// A sub-table with its own heading.
    Table,
    /// No value (an optional key); `example` is a value to show, commented out.
    Unset {
        /// A TOML literal to show, commented out.
        example: Option<String>,
    },
}

/// One documented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDoc {
    /// The key.
    pub key: String,
    /// Its TOML type, in words.
    pub ty: String,
    /// Its default.
    pub default: DefaultValue,
    /// The default cell as written (`unset (e.g. `128`): half of `max_len``).
    pub default_text: String,
    /// The values it accepts, in words (`-` when any value of the type).
    pub allowed: String,
    /// What it does.
    pub meaning: String,
    /// Its 1-based line in the reference.
    pub line: usize,
}

/// One documented table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDoc {
    /// Which file.
    pub scope: Scope,
    /// Its dotted name.
    pub table: String,
    /// Its keys, in the reference's order.
    pub keys: Vec<KeyDoc>,
    /// The heading's 1-based line.
    pub line: usize,
}

impl TableDoc {
    /// The documented key called `key`.
    pub fn key(&self, key: &str) -> Option<&KeyDoc> {
        self.keys.iter().find(|k| k.key == key)
    }
}

/// A line of the reference that does not follow its format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("docs/config.md:{line}: {message}")]
pub struct ReferenceError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The configuration reference: every documented table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The tables in the reference's order.
    pub tables: Vec<TableDoc>,
}

impl Reference {
    /// Reads the reference's tables from its Markdown.
    pub fn parse(markdown: &str) -> Result<Reference, ReferenceError> {
        let mut tables: Vec<TableDoc> = Vec::new();
        let mut open = false;
        for (i, line) in markdown.lines().enumerate() {
            let line_no = i + 1;
            let err = |message: String| ReferenceError {
                line: line_no,
                message,
            };
            if line.starts_with('#') {
                open = false;
                if let Some(rest) = line.strip_prefix("### `[") {
                    let (table, scope) = parse_heading(rest).ok_or_else(|| {
                        err(format!(
                            "expected a table heading ### `[name]` (scope), scope one of {}",
                            Scope::ALL.map(Scope::name).join(", ")
                        ))
                    })?;
                    if tables.iter().any(|t| t.scope == scope && t.table == table) {
                        return Err(err(format!("[{table}] ({}) twice", scope.name())));
                    }
                    tables.push(TableDoc {
                        scope,
                        table,
                        keys: Vec::new(),
                        line: line_no,
                    });
                    open = true;
                }
                continue;
            }
            let Some(table) = tables.last_mut().filter(|_| open) else {
                continue;
            };
            if !line.starts_with("| `") {
                continue;
            }
            let key = parse_row(line, line_no).map_err(err)?;
            if table.key(&key.key).is_some() {
                return Err(err(format!("key `{}` twice in [{}]", key.key, table.table)));
            }
            table.keys.push(key);
        }
        Ok(Reference { tables })
    }

    /// The reference built into this binary (`docs/config.md`).
    pub fn bundled() -> Result<&'static Reference, ReferenceError> {
        static PARSED: OnceLock<Result<Reference, ReferenceError>> = OnceLock::new();
        PARSED
            .get_or_init(|| Reference::parse(CONFIG_MD))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The table `table` of `scope`.
    pub fn table(&self, scope: Scope, table: &str) -> Option<&TableDoc> {
        self.tables
            .iter()
            .find(|t| t.scope == scope && t.table == table)
    }
}

/// `name]` (scope)` -> (name, scope).
fn parse_heading(rest: &str) -> Option<(String, Scope)> {
    let (name, rest) = rest.split_once("]`")?;
    let scope = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    let valid = |c: char| c.is_ascii_lowercase() || c == '_' || c == '.';
    (!name.is_empty() && name.chars().all(valid)).then_some(())?;
    Some((name.to_string(), Scope::parse(scope)?))
}

/// ``| `key` | type | default | allowed | meaning |`` -> a key.
fn parse_row(line: &str, line_no: usize) -> Result<KeyDoc, String> {
    let inner = line
        .trim()
        .strip_prefix('|')
        .and_then(|l| l.strip_suffix('|'))
        .ok_or("a key row starts and ends with `|`")?;
    let cells: Vec<&str> = inner.split(" | ").map(str::trim).collect();
    let [key, ty, default, allowed, meaning] = cells[..] else {
        return Err(format!(
            "expected 5 cells (key, type, default, allowed values, meaning), found {}",
            cells.len()
        ));
    };
    let key = key
        .strip_prefix('`')
        .and_then(|k| k.strip_suffix('`'))
        .filter(|k| !k.is_empty() && !k.contains('`'))
        .ok_or("the key cell is `key` in backticks")?;
    Ok(KeyDoc {
        key: key.to_string(),
        ty: ty.to_string(),
        default: parse_default(default)?,
        default_text: default.to_string(),
        allowed: allowed.to_string(),
        meaning: meaning.to_string(),
        line: line_no,
    })
}

fn parse_default(cell: &str) -> Result<DefaultValue, String> {
    if cell == "required" || cell.starts_with("required ") {
        return Ok(DefaultValue::Required);
    }
    if cell == "table" {
        return Ok(DefaultValue::Table);
    }
    if let Some(rest) = cell.strip_prefix("unset") {
        let example = rest
            .split_once("e.g. `")
            .and_then(|(_, e)| e.split_once('`'))
            .map(|(e, _)| e.to_string());
        return Ok(DefaultValue::Unset { example });
    }
    match cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
        Some(literal) if !literal.contains('`') => Ok(DefaultValue::Literal(literal.to_string())),
        _ => Err(format!(
            "the default {cell:?} is not a `TOML literal`, `required`, `table` or `unset ...`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_and_rows_parse() {
        let md = "# T\n\n### `[train]` (training)\n\nprose | not a row\n\n| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n| `epochs` | integer | `3` | at least 1 | Passes. |\n| `max_steps` | integer | unset (e.g. `1000`): no limit | - | Stop. |\n| `output_dir` | path | required | - | Where. |\n\n## Other\n\n| `ignored` | x | `1` | - | outside a table |\n";
        let r = Reference::parse(md).unwrap();
        assert_eq!(r.tables.len(), 1);
        let t = r.table(Scope::Training, "train").unwrap();
        assert_eq!(t.keys.len(), 3);
        assert_eq!(t.keys[0].default, DefaultValue::Literal("3".into()));
        assert_eq!(
            t.keys[1].default,
            DefaultValue::Unset {
                example: Some("1000".into())
            }
        );
        assert_eq!(t.keys[2].default, DefaultValue::Required);
        assert_eq!(t.keys[0].line, 9);
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let err = Reference::parse("### `[train]` (nope)\n").unwrap_err();
        assert_eq!(err.line, 1);
        let err =
            Reference::parse("### `[train]` (training)\n| `a` | b | 3 | - | x |\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.message.contains("TOML literal"), "{err}");
    }

    #[test]
    fn the_bundled_reference_parses() {
        let r = Reference::bundled().unwrap();
        assert!(r.table(Scope::Pipeline, "link").is_some());
    }
}
