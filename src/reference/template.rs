//! The commented TOML `zhishi init` writes: every key of a training or pipeline file at its
//! documented default, with its meaning from `docs/config.md` above it (like spaCy's
//! `init config`). Required keys get placeholders pointing at the public data sets the shipped
//! configs in `pipelines/` use (`../../shared/data/...`, relative to a file in `pipelines/`);
//! optional keys without a default are shown commented out with an example.
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
}

const DATA: &str = "../../shared/data";

/// The training file for `task` with knowledge `mode`.
pub fn training(task: TrainingTask, mode: KnowledgeMode) -> Result<Template, InitError> {
    let reference = Reference::bundled()?;
    let fills = training_fills(task, mode)?;
    let mut tables = Vec::new();
    for &(scope, name) in task.tables() {
        tables.push(table(reference, scope, name, &fills, false, None)?);
    }
    let header = vec![
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
        "are commented out.".into(),
        "Reference: docs/config.md. Relative paths resolve against this file's directory: the"
            .into(),
        "data paths are those of the shipped configs in pipelines/ (../../shared/data).".into(),
        "  M3E_DIR=/path/to/m3e-small zhishi train THIS.toml   (any key: --set train.epochs=1)"
            .into(),
    ];
    Ok(Template { header, tables })
}

/// A pipeline file: segment, link and facts over the demo KG in `kg/`, and the model
/// stages' tables commented out.
pub fn pipeline() -> Result<Template, InitError> {
    let reference = Reference::bundled()?;
    let fills = vec![
        set("pipeline", "stages", r#"["segment", "link", "facts"]"#),
        set("kg", "triples", r#"["../kg/demo.tsv"]"#),
        set("ner", "model", r#""../target/ner/resume/best""#),
        set("relation", "model", r#""../target/re/sanwen/best""#),
        set("qa", "model", r#""../target/qa/cmrc2018/best""#),
        set("kbqa", "model", r#""../target/nlpcc-kbqa/model""#),
        set("classify", "model", r#""../target/cls/chnsenticorp/best""#),
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
    let header = vec![
        "A `zhishi run` / `zhishi serve` pipeline, written by `zhishi init pipeline`. Every key is"
            .into(),
        "at its default; keys without one are commented out. Reference: docs/config.md.".into(),
        "Relative paths resolve against this file's directory (here: a file in pipelines/).".into(),
        "  zhishi run THIS.toml --input corpora/sample.txt --output -".into(),
    ];
    Ok(Template { header, tables })
}

fn set(table: &'static str, key: &'static str, value: &str) -> Fill {
    Fill::Set(table, key, value.to_string())
}

fn example(table: &'static str, key: &'static str, value: &str) -> Fill {
    Fill::Example(table, key, value.to_string())
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

/// The values a training file for `task` and `mode` needs beyond the defaults.
fn training_fills(task: TrainingTask, mode: KnowledgeMode) -> Result<Vec<Fill>, InitError> {
    let refuse = |expected| {
        Err(InitError::Knowledge {
            task: task.name(),
            mode: mode.name(),
            expected,
        })
    };
    let path = |rel: &str| format!("\"{DATA}/{rel}\"");
    let mut fills = vec![set("task", "kind", &format!("\"{}\"", task.name()))];
    match task {
        TrainingTask::Ner => {
            fills.push(set("encoder", "model", "\"${M3E_DIR}\""));
            if mode == KnowledgeMode::Plain {
                fills.push(example("knowledge", "kg", &path("kg/kbert/Medical.spo")));
                fills.push(set("data", "format", "\"char_per_line\""));
                for (key, file) in [("train", "train"), ("dev", "dev"), ("test", "test")] {
                    fills.push(set(
                        "data",
                        key,
                        &path(&format!("ner/resume/{file}.char.bmes")),
                    ));
                }
                fills.push(set("train", "output_dir", "\"../target/ner/resume\""));
            } else {
                fills.push(set("knowledge", "mode", &format!("\"{}\"", mode.name())));
                fills.push(set("knowledge", "kg", &path("kg/kbert/Medical.spo")));
                if mode.fuses_entities() {
                    fills.push(example(
                        "knowledge",
                        "transe",
                        "\"../target/ner/medical-transe\"",
                    ));
                }
                fills.push(set("data", "format", "\"kbert_tsv\""));
                for key in ["train", "dev", "test"] {
                    fills.push(set(
                        "data",
                        key,
                        &path(&format!("ner/kbert_medical/{key}.tsv")),
                    ));
                }
                let out = format!("\"../target/ner/{}-medical\"", mode.name());
                fills.push(set("train", "output_dir", &out));
            }
        }
        TrainingTask::Relation => {
            fills.push(set("encoder", "model", "\"${M3E_DIR}\""));
            let hownet = path("kg/kbert/HowNet.spo");
            match mode {
                KnowledgeMode::Plain => {
                    fills.push(example("knowledge", "kg", &hownet));
                    fills.push(set("train", "output_dir", "\"../target/re/sanwen\""));
                }
                KnowledgeMode::Kbert => {
                    fills.push(set("knowledge", "mode", "\"kbert\""));
                    fills.push(set("knowledge", "kg", &hownet));
                    fills.push(set("train", "output_dir", "\"../target/re/sanwen-kbert\""));
                }
                // Relation extraction's resolve refuses ERNIE fusion so far.
                KnowledgeMode::Ernie | KnowledgeMode::Both => return refuse("plain or kbert"),
            }
            fills.push(set("data", "format", "\"sanwen\""));
            for (key, file) in [("train", "train"), ("dev", "valid"), ("test", "test")] {
                fills.push(set("data", key, &path(&format!("re/sanwen/{file}.txt"))));
            }
        }
        TrainingTask::Classify => {
            fills.push(set("encoder", "model", "\"${M3E_DIR}\""));
            let hownet = path("kg/kbert/HowNet.spo");
            if mode == KnowledgeMode::Plain {
                fills.push(example("knowledge", "kg", &hownet));
            } else {
                fills.push(set("knowledge", "mode", &format!("\"{}\"", mode.name())));
                fills.push(set("knowledge", "kg", &hownet));
            }
            fills.push(set("data", "format", "\"tsv\""));
            for key in ["train", "dev", "test"] {
                fills.push(set(
                    "data",
                    key,
                    &path(&format!("cls/chnsenticorp/{key}.tsv")),
                ));
            }
            let out = format!("\"../target/cls/chnsenticorp-{}\"", mode.name());
            fills.push(set("train", "output_dir", &out));
        }
        TrainingTask::Qa => {
            if mode != KnowledgeMode::Plain {
                return refuse("plain: QA has no [knowledge] table");
            }
            fills.push(set("encoder", "model", "\"${M3E_DIR}\""));
            fills.push(set(
                "data",
                "train",
                &path("qa/cmrc2018/cmrc2018_trial.json"),
            ));
            // The CMRC 2018 test split is not public: the dev file doubles as the test.
            for key in ["dev", "test"] {
                fills.push(set("data", key, &path("qa/cmrc2018/cmrc2018_dev.json")));
            }
            fills.push(set("train", "output_dir", "\"../target/qa/cmrc2018\""));
        }
        TrainingTask::Kbqa => {
            if mode != KnowledgeMode::Plain {
                return refuse("plain: KBQA has no [knowledge] table");
            }
            let questions = path("kg/nlpcc2016/nlpcc-iccpol-2016.kbqa.training-data");
            fills.push(set("data", "path", &questions));
            fills.push(set("data", "train_questions", "12609"));
            fills.push(set("kg", "store", "\"../target/nlpcc-kbqa/store\""));
            fills.push(set("encoder", "model", "\"${M3E_DIR}\""));
            fills.push(set("train", "output", "\"../target/nlpcc-kbqa/model\""));
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
        let (Fill::Set(t, k, _) | Fill::Example(t, k, _)) = fill;
        if *t == name && doc.key(k).is_none() {
            return Err(InitError::Undocumented {
                what: format!("{t}.{k} ({})", scope.name()),
            });
        }
    }
    let fill_of = |key: &str| {
        fills.iter().find(|f| {
            let (Fill::Set(t, k, _) | Fill::Example(t, k, _)) = f;
            *t == name && *k == key
        })
    };
    let mut entries = Vec::new();
    for key in &doc.keys {
        let (value, origin) = match (fill_of(&key.key), &key.default) {
            (_, DefaultValue::Table) => continue, // written as its own table
            (Some(Fill::Set(_, _, v)), _) => (v.clone(), Origin::Placeholder),
            (Some(Fill::Example(_, _, v)), _) => (v.clone(), Origin::Unset),
            (None, DefaultValue::Literal(v)) => (v.clone(), Origin::Default),
            (None, DefaultValue::Unset { example: Some(v) }) => (v.clone(), Origin::Unset),
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
                out.push_str(&format!("{off}{} = {}\n", entry.key, entry.value));
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
    fn qa_takes_no_knowledge() {
        let err = training(TrainingTask::Qa, KnowledgeMode::Kbert).unwrap_err();
        assert!(err.to_string().contains("--knowledge kbert"), "{err}");
    }
}
