//! The commented TOML `zhishi init` writes: every key of a training or pipeline file at its
//! documented default, with its meaning from `docs/config.md` above it (like spaCy's
//! `init config`). Paths are written for the place the file will be read from ([`Place`]):
//! shipped files (the demo KG) and the checkout's `models/` directory are reached from there,
//! and the user's own data get placeholders beside the file (`data/train.tsv`) with a comment
//! on the format expected; optional keys without a default are shown commented out with an
//! example.
use std::path::{Component, Path, PathBuf};

use super::{DefaultValue, Reference, ReferenceError, Scope, TableDoc, TrainingTask};
use crate::stages::task::KnowledgeMode;

/// Why a template cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    /// The task does not take this knowledge mode.
    #[error("--task {task} does not take --knowledge {mode} (expected {expected})")]
    Knowledge {
        /// The task.
        task: &'static str,
        /// The mode asked for.
        mode: &'static str,
        /// The modes it takes.
        expected: &'static str,
    },
    /// The built-in reference is malformed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The reference lacks a table or key the template needs.
    #[error("docs/config.md does not document {what}")]
    Undocumented {
        /// The table or `table.key`.
        what: String,
    },
}

/// Where an entry's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The documented default.
    Default,
    /// A value the file needs (a required key, or the chosen knowledge mode's settings).
    Placeholder,
    /// An optional key with no default, shown commented out with an example value.
    Unset,
}

/// One key of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Its value as a TOML literal.
    pub value: String,
    /// Where the value comes from.
    pub origin: Origin,
    /// Comment lines above it (without `# `).
    pub comment: Vec<String>,
    /// A comment after the value on its line (without `# `): what the user must supply.
    pub note: Option<String>,
}

/// One table of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateTable {
    /// Its dotted name.
    pub name: String,
    /// Written commented out (a table to enable by hand).
    pub commented: bool,
    /// A comment line above the table.
    pub note: Option<String>,
    /// Its keys.
    pub entries: Vec<Entry>,
}

/// A whole generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Comment lines at the top (without `# `).
    pub header: Vec<String>,
    /// The tables in order.
    pub tables: Vec<TemplateTable>,
}

/// A value `zhishi init` puts in for a key: set, or shown commented out as an example.
enum Fill {
    Set(&'static str, &'static str, String),
    Example(&'static str, &'static str, String),
    /// Set to a placeholder for the user's own file, with a note on what it must hold.
    Yours(&'static str, &'static str, String, String),
}

impl Fill {
    fn at(&self) -> (&'static str, &'static str) {
        match self {
            Fill::Set(t, k, _) | Fill::Example(t, k, _) | Fill::Yours(t, k, _, _) => (t, k),
        }
    }
}

/// The demo KG shipped in the checkout, relative to its root.
pub const DEMO_KG: &str = "kg/demo.tsv";

/// Where a generated file will be read from: the paths written in it are made to resolve
/// from its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The directory the file's relative paths resolve against (absolute).
    pub dir: PathBuf,
    /// The root of the zhishi checkout holding the shipped files (absolute), when found.
    pub checkout: Option<PathBuf>,
    /// The file is printed to stdout: `dir` is the current directory, where it will most
    /// likely be saved.
    pub printed: bool,
}

impl Place {
    /// A file in `checkout/pipelines/`, like the shipped configs.
    pub fn pipelines_of(checkout: &Path) -> Place {
        Place {
            dir: checkout.join("pipelines"),
            checkout: Some(checkout.to_path_buf()),
            printed: false,
        }
    }

    /// The checkout path `rel` (`kg/demo.tsv`) as the file should name it: relative to the
    /// file's directory when that lies inside the checkout, else absolute; `rel` itself when
    /// the checkout is unknown.
    fn shipped(&self, rel: &str) -> String {
        match &self.checkout {
            Some(root) => path_from(&root.join(rel), &self.dir, root),
            None => rel.to_string(),
        }
    }

    /// Where a model named `name` (`ner/resume`) goes: the checkout's `models/` when the file
    /// lies inside the checkout (kept out of `target/`, which `cargo clean` deletes), else
    /// `models/NAME` beside the file.
    fn model(&self, name: &str) -> String {
        match &self.checkout {
            Some(root) if self.dir.starts_with(root) => {
                path_from(&root.join("models").join(name), &self.dir, root)
            }
            _ => format!("models/{name}"),
        }
    }

    /// The header lines that say where the paths resolve from.
    fn header(&self) -> Vec<String> {
        let mut lines = vec![if self.printed {
            "Relative paths resolve against this file's directory; they are written for a file saved in the directory `zhishi init` ran in (use --output FILE to write them for another place).".to_string()
        } else {
            "Relative paths resolve against this file's directory.".to_string()
        }];
        if self.checkout.is_none() {
            lines.push(format!(
                "The zhishi checkout was not found from here: `{DEMO_KG}` and the other shipped paths are relative to it; point them at your copy."
            ));
        }
        lines.iter().flat_map(|l| wrap(l, 90)).collect()
    }
}

/// `target` as a file in `dir` should name it: relative when both lie inside `root`, else
/// absolute. Both are absolute.
fn path_from(target: &Path, dir: &Path, root: &Path) -> String {
    if !dir.starts_with(root) || !target.starts_with(root) {
        return target.display().to_string();
    }
    fn normal(p: &Path) -> Vec<Component<'_>> {
        p.components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect()
    }
    let (t, d) = (normal(target), normal(dir));
    let common = t.iter().zip(&d).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..d.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c.as_os_str());
    }
    rel.display().to_string()
}

/// `text` as a TOML string literal.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The training file for `task` with knowledge `mode`, its paths written for `place`.
pub fn training(
    task: TrainingTask,
    mode: KnowledgeMode,
    place: &Place,
) -> Result<Template, InitError> {
    let reference = Reference::bundled()?;
    let fills = training_fills(task, mode, place)?;
    let mut tables = Vec::new();
    for &(scope, name) in task.tables() {
        tables.push(table(reference, scope, name, &fills, false, None)?);
    }
    let mut header = vec![
        format!(
            "A `zhishi train` configuration for {} (`[task] kind = \"{}\"`{}),",
            task_title(task),
            task.name(),
            if matches!(task, TrainingTask::Ner | TrainingTask::Relation) {
                format!(", knowledge `{}`", mode.name())
            } else {
                String::new()
            }
        ),
        "written by `zhishi init config`. Every key is at its default; optional keys without one"
            .into(),
        "are commented out; values marked `your ...` are for your own data.".into(),
        "Reference: docs/config.md.".into(),
    ];
    header.extend(place.header());
    header.push(
        "  M3E_DIR=/path/to/m3e-small zhishi train THIS.toml   (any key: --set train.epochs=1)"
            .into(),
    );
    Ok(Template { header, tables })
}

/// A pipeline file: segment, link and facts over the demo KG in `kg/`, and the model
/// stages' tables commented out, its paths written for `place`.
pub fn pipeline(place: &Place) -> Result<Template, InitError> {
    let reference = Reference::bundled()?;
    let model = |name: &str| quoted(&place.model(name));
    let fills = vec![
        set("pipeline", "stages", r#"["segment", "link", "facts"]"#),
        set(
            "kg",
            "triples",
            &format!("[{}]", quoted(&place.shipped(DEMO_KG))),
        ),
        set(
            "rules",
            "patterns",
            &quoted(&place.shipped("kg/rules-demo.patterns.jsonl")),
        ),
        set("ner", "model", &model("ner/resume/best")),
        set("relation", "model", &model("re/sanwen/best")),
        set("qa", "model", &model("qa/cmrc2018/best")),
        set("kbqa", "model", &model("nlpcc-kbqa/model")),
        set("classify", "model", &model("cls/chnsenticorp/best")),
    ];
    let model_note = |stage: &str, kind: &str| {
        Some(format!(
            "Add \"{stage}\" to pipeline.stages and uncomment to run a model that `zhishi train` made from a `{kind}` training file."
        ))
    };
    let mut tables = Vec::new();
    for name in super::pipeline_tables() {
        let (commented, note) = match name {
            "link.weights" => (
                true,
                Some(
                    "The link score's weights, fitted on NLPCC 2016: uncomment to change them."
                        .to_string(),
                ),
            ),
            "ner" | "relation" | "qa" | "classify" => (true, model_note(name, name)),
            "rules" => (
                true,
                Some("Add \"rules\" to pipeline.stages (before \"ner\") and uncomment to tag entities from a patterns file (pipelines/rules-demo.toml).".to_string()),
            ),
            "kbqa" => (
                true,
                model_note(name, name).map(|note| {
                    format!("{note} It reads the `link` stage's mentions: [link] must then be the training run's linker (overlap = \"all\", nil_threshold = 0.0, max_candidates = its link.candidates) and [kg] its store.")
                }),
            ),
            _ => (false, None),
        };
        tables.push(table(
            reference,
            Scope::Pipeline,
            name,
            &fills,
            commented,
            note,
        )?);
    }
    let mut header = vec![
        "A `zhishi run` / `zhishi serve` pipeline, written by `zhishi init pipeline`. Every key is"
            .into(),
        "at its default; keys without one are commented out. Reference: docs/config.md.".into(),
    ];
    header.extend(place.header());
    header.push("  zhishi run THIS.toml --input corpora/sample.txt --output -".into());
    Ok(Template { header, tables })
}

fn set(table: &'static str, key: &'static str, value: &str) -> Fill {
    Fill::Set(table, key, value.to_string())
}

fn example(table: &'static str, key: &'static str, value: &str) -> Fill {
    Fill::Example(table, key, value.to_string())
}

/// A placeholder `path` (relative to the file) for the user's own file, and what it holds.
fn yours(table: &'static str, key: &'static str, path: &str, what: &str) -> Fill {
    Fill::Yours(table, key, quoted(path), format!("your {what}"))
}

fn task_title(task: TrainingTask) -> &'static str {
    match task {
        TrainingTask::Ner => "named-entity recognition",
        TrainingTask::Relation => "relation extraction",
        TrainingTask::Qa => "extractive question answering",
        TrainingTask::Kbqa => "question answering over the KG",
        TrainingTask::Classify => "sentence and sentence-pair classification",
    }
}

/// The values a training file for `task` and `mode` needs beyond the defaults: the user's
/// data as placeholders beside the file, shipped files and `models/` reached from `place`.
fn training_fills(
    task: TrainingTask,
    mode: KnowledgeMode,
    place: &Place,
) -> Result<Vec<Fill>, InitError> {
    let refuse = |expected| {
        Err(InitError::Knowledge {
            task: task.name(),
            mode: mode.name(),
            expected,
        })
    };
    let model = |name: &str| quoted(&place.model(name));
    let demo_kg = quoted(&place.shipped(DEMO_KG));
    // The three splits of the user's data, `data/{train,dev,test}.EXT`, each a placeholder.
    let splits = |fills: &mut Vec<Fill>, ext: &str, what: &str| {
        for key in ["train", "dev", "test"] {
            let split = match key {
                "train" => "training",
                "dev" => "dev (evaluation while training)",
                _ => "test (`zhishi eval --split test`)",
            };
            fills.push(yours(
                "data",
                key,
                &format!("data/{key}.{ext}"),
                &format!("{split} file: {what}"),
            ));
        }
    };
    let hownet = "data/HowNet.spo";
    let kg_what = "KG: subject<TAB>predicate<TAB>object triples, e.g. K-BERT's HowNet.spo";
    let mut fills = vec![set("task", "kind", &format!("\"{}\"", task.name()))];
    match task {
        TrainingTask::Ner => {
            fills.push(set("encoder", "model", "\"${M3E_DIR}\""));
            if mode == KnowledgeMode::Plain {
                fills.push(example("knowledge", "kg", &demo_kg));
                fills.push(set("data", "format", "\"char_per_line\""));
                let what = "`char TAG` per line (BMES tags), a blank line between sentences";
                splits(&mut fills, "char.bmes", what);
                fills.push(set("train", "output_dir", &model("my-ner")));
            } else {
                fills.push(set("knowledge", "mode", &format!("\"{}\"", mode.name())));
                fills.push(set("knowledge", "kg", &demo_kg));
                if mode.fuses_entities() {
                    fills.push(example("knowledge", "transe", &model("my-ner-transe")));
                }
                fills.push(set("data", "format", "\"kbert_tsv\""));
                let what = "a header line, then per sentence its space-separated characters, a tab and their space-separated tags";
                splits(&mut fills, "tsv", what);
                let out = format!("my-ner-{}", mode.name());
                fills.push(set("train", "output_dir", &model(&out)));
            }
        }
        TrainingTask::Relation => {
            fills.push(set("encoder", "model", "\"${M3E_DIR}\""));
            match mode {
                KnowledgeMode::Plain => {
                    fills.push(example("knowledge", "kg", &quoted(hownet)));
                    fills.push(set("train", "output_dir", &model("my-re")));
                }
                KnowledgeMode::Kbert => {
                    fills.push(set("knowledge", "mode", "\"kbert\""));
                    fills.push(yours("knowledge", "kg", hownet, kg_what));
                    fills.push(set("train", "output_dir", &model("my-re-kbert")));
                }
                // Relation extraction's resolve refuses ERNIE fusion so far.
                KnowledgeMode::Ernie | KnowledgeMode::Both => return refuse("plain or kbert"),
            }
            fills.push(set("data", "format", "\"sanwen\""));
            splits(
                &mut fills,
                "txt",
                "head<TAB>tail<TAB>relation<TAB>sentence per line",
            );
        }
        TrainingTask::Classify => {
            fills.push(set("encoder", "model", "\"${M3E_DIR}\""));
            if mode == KnowledgeMode::Plain {
                fills.push(example("knowledge", "kg", &quoted(hownet)));
            } else {
                fills.push(set("knowledge", "mode", &format!("\"{}\"", mode.name())));
                fills.push(yours("knowledge", "kg", hownet, kg_what));
            }
            fills.push(set("data", "format", "\"tsv\""));
            splits(
                &mut fills,
                "tsv",
                "a header naming the columns (label, text_a), then one example per line",
            );
            let out = format!("my-cls-{}", mode.name());
            fills.push(set("train", "output_dir", &model(&out)));
        }
        TrainingTask::Qa => {
            if mode != KnowledgeMode::Plain {
                return refuse("plain: QA has no [knowledge] table");
            }
            fills.push(set("encoder", "model", "\"${M3E_DIR}\""));
            splits(&mut fills, "json", "SQuAD v1 JSON, e.g. CMRC 2018");
            fills.push(set("train", "output_dir", &model("my-qa")));
        }
        TrainingTask::Kbqa => {
            if mode != KnowledgeMode::Plain {
                return refuse("plain: KBQA has no [knowledge] table");
            }
            fills.push(yours(
                "data",
                "path",
                "data/kbqa.training-data",
                "questions: an NLPCC 2016 KBQA question file (question, gold triple, answer)",
            ));
            fills.push(set("data", "train_questions", "12609"));
            fills.push(set("kg", "store", &model("my-kbqa/store")));
            fills.push(set("encoder", "model", "\"${M3E_DIR}\""));
            fills.push(set("train", "output", &model("my-kbqa/model")));
        }
    }
    Ok(fills)
}

/// The template table for the documented table `name` of `scope`, with `fills` applied.
fn table(
    reference: &Reference,
    scope: Scope,
    name: &str,
    fills: &[Fill],
    commented: bool,
    note: Option<String>,
) -> Result<TemplateTable, InitError> {
    let doc: &TableDoc = reference
        .table(scope, name)
        .ok_or_else(|| InitError::Undocumented {
            what: format!("[{name}] ({})", scope.name()),
        })?;
    for fill in fills {
        let (t, k) = fill.at();
        if t == name && doc.key(k).is_none() {
            return Err(InitError::Undocumented {
                what: format!("{t}.{k} ({})", scope.name()),
            });
        }
    }
    let fill_of = |key: &str| fills.iter().find(|f| f.at() == (name, key));
    let mut entries = Vec::new();
    for key in &doc.keys {
        let (value, origin, note) = match (fill_of(&key.key), &key.default) {
            (_, DefaultValue::Table) => continue, // written as its own table
            (Some(Fill::Set(_, _, v)), _) => (v.clone(), Origin::Placeholder, None),
            (Some(Fill::Yours(_, _, v, what)), _) => {
                (v.clone(), Origin::Placeholder, Some(what.clone()))
            }
            (Some(Fill::Example(_, _, v)), _) => (v.clone(), Origin::Unset, None),
            (None, DefaultValue::Literal(v)) => (v.clone(), Origin::Default, None),
            (None, DefaultValue::Unset { example: Some(v) }) => (v.clone(), Origin::Unset, None),
            (None, DefaultValue::Unset { example: None } | DefaultValue::Required) => {
                return Err(InitError::Undocumented {
                    what: format!(
                        "a value for {name}.{} ({}): add `e.g. `VALUE`` to its default",
                        key.key,
                        scope.name()
                    ),
                })
            }
        };
        let mut comment = wrap(&key.meaning, 90);
        if key.allowed != "-" {
            comment.extend(wrap(
                &format!("Allowed: {}.", key.allowed.trim_end_matches('.')),
                90,
            ));
        }
        match &key.default {
            DefaultValue::Required => comment.push("Required.".into()),
            DefaultValue::Unset { .. } => comment.extend(wrap(&unset_note(&key.default_text), 90)),
            DefaultValue::Literal(_) | DefaultValue::Table => {}
        }
        entries.push(Entry {
            key: key.key.clone(),
            value,
            origin,
            comment,
            note,
        });
    }
    Ok(TemplateTable {
        name: name.to_string(),
        commented,
        note,
        entries,
    })
}

/// The comment for an optional key from its default cell (`unset (e.g. `128`): half of
/// `max_len``): what happens when it is left out.
fn unset_note(default_text: &str) -> String {
    let rest = default_text.trim_start_matches("unset").trim_start();
    let rest = match rest.strip_prefix("(e.g.") {
        Some(r) => r.split_once(')').map_or("", |(_, after)| after),
        None => rest,
    };
    let rest = rest.trim_start_matches(':').trim();
    if rest.is_empty() {
        "Optional.".into()
    } else {
        format!("Optional; when unset: {}.", rest.trim_end_matches('.'))
    }
}

/// `text` cut into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

impl Template {
    /// The TOML text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            out.push_str(&format!("# {line}\n"));
        }
        for table in &self.tables {
            let off = if table.commented { "# " } else { "" };
            out.push('\n');
            if let Some(note) = &table.note {
                for line in wrap(note, 90) {
                    out.push_str(&format!("# {line}\n"));
                }
            }
            out.push_str(&format!("{off}[{}]\n", table.name));
            for entry in &table.entries {
                for line in &entry.comment {
                    out.push_str(&format!("# {line}\n"));
                }
                let off = if entry.origin == Origin::Unset {
                    "# "
                } else {
                    off
                };
                out.push_str(&format!("{off}{} = {}", entry.key, entry.value));
                if let Some(note) = &entry.note {
                    out.push_str(&format!("  # {note}"));
                }
                out.push('\n');
            }
        }
        out
    }

    /// The same file with only the values that are not defaults: what a minimal file needs.
    pub fn without_defaults(&self) -> Template {
        let mut minimal = self.clone();
        for table in &mut minimal.tables {
            table.entries.retain(|e| e.origin == Origin::Placeholder);
        }
        minimal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_words_whole() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert!(wrap("", 5).is_empty());
    }

    #[test]
    fn unset_notes_drop_the_example() {
        assert_eq!(
            unset_note("unset (e.g. `128`): half of `max_len`"),
            "Optional; when unset: half of `max_len`."
        );
        assert_eq!(unset_note("unset (e.g. `\"x\"`)"), "Optional.");
        assert_eq!(unset_note("unset"), "Optional.");
    }

    #[test]
    fn paths_reach_the_checkout_from_the_files_directory() {
        let root = Path::new("/repo");
        let at = |dir: &str| Place {
            dir: PathBuf::from(dir),
            checkout: Some(root.to_path_buf()),
            printed: false,
        };
        assert_eq!(at("/repo/pipelines").shipped(DEMO_KG), "../kg/demo.tsv");
        assert_eq!(at("/repo").shipped(DEMO_KG), "kg/demo.tsv");
        assert_eq!(at("/repo/a/b").shipped(DEMO_KG), "../../kg/demo.tsv");
        assert_eq!(at("/tmp/x").shipped(DEMO_KG), "/repo/kg/demo.tsv");
        assert_eq!(at("/repo/pipelines").model("ner/x"), "../models/ner/x");
        assert_eq!(at("/repo").model("ner/x"), "models/ner/x");
        assert_eq!(at("/tmp/x").model("ner/x"), "models/ner/x");
        let lost = Place {
            checkout: None,
            ..at("/tmp/x")
        };
        assert_eq!(lost.shipped(DEMO_KG), DEMO_KG);
        assert!(lost.header().join(" ").contains("not found"));
    }

    #[test]
    fn qa_takes_no_knowledge() {
        let place = Place::pipelines_of(Path::new("/repo"));
        let err = training(TrainingTask::Qa, KnowledgeMode::Kbert, &place).unwrap_err();
        assert!(err.to_string().contains("--knowledge kbert"), "{err}");
    }
}
