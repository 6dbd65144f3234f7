//! `docs/config.md` against the code: every key a configuration struct reads is documented,
//! every documented key exists, the documented defaults are the code's, and the files
//! `zhishi init` writes parse with the real loaders and pass their checks.
use crate::support::shared_data;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::path::Path;
use std::process::Command;

use serde::de::DeserializeOwned;
use shared_data::shared_data;
use zhishi::config;
use zhishi::pipeline::spec::KgSpec;
use zhishi::pipeline::{KgLocation, PipelineSpec, RunSpec};
use zhishi::reference::fields::fields_of;
use zhishi::reference::template::{self, InitError, Origin, Place, Template};
use zhishi::reference::{pipeline_tables, schema, Reference, Scope, TrainingTask};
use zhishi::stages::facts::FactsOptions;
use zhishi::stages::segment::SegmentStageOptions;
use zhishi::stages::task::KnowledgeMode;
use zhishi::stages::{classify, kbqa, ner, qa, registry, relation};
use zhishi::text::LinkOptions;

const MODES: [KnowledgeMode; 4] = [
    KnowledgeMode::Plain,
    KnowledgeMode::Kbert,
    KnowledgeMode::Ernie,
    KnowledgeMode::Both,
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(repo().join("docs/config.md")).unwrap();
    Reference::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_config_key_is_documented_and_every_documented_key_exists() {
    let reference = reference();
    let mut problems = Vec::new();
    let schema = schema();
    for t in &schema {
        let scope = t.scope.name();
        assert!(
            !t.fields.is_empty(),
            "[{}] ({scope}): no serde fields found (a #[serde(flatten)] struct?)",
            t.table
        );
        let Some(doc) = reference.table(t.scope, t.table) else {
            problems.push(format!(
                "docs/config.md has no table ### `[{}]` ({scope})",
                t.table
            ));
            continue;
        };
        for field in t.fields {
            if doc.key(field).is_none() {
                problems.push(format!(
                    "`{}.{field}` ({scope}) is read by the code but not documented in docs/config.md (add a row under line {})",
                    t.table, doc.line
                ));
            }
        }
        for key in &doc.keys {
            if !t.fields.contains(&key.key.as_str()) {
                problems.push(format!(
                    "docs/config.md:{}: `{}.{}` ({scope}) is documented but the code does not read it",
                    key.line, t.table, key.key
                ));
            }
        }
    }
    for doc in &reference.tables {
        if !schema
            .iter()
            .any(|t| t.scope == doc.scope && t.table == doc.table)
        {
            problems.push(format!(
                "docs/config.md:{}: [{}] ({}) is no configuration table (list it in zhishi::reference::schema)",
                doc.line,
                doc.table,
                doc.scope.name()
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_bundled_reference_is_the_docs_file() {
    assert_eq!(Reference::bundled().unwrap(), &reference());
}

#[test]
fn each_training_file_holds_the_tables_init_writes_and_the_schema_lists() {
    let listed: BTreeSet<(Scope, &str)> = schema().iter().map(|t| (t.scope, t.table)).collect();
    for task in TrainingTask::ALL {
        let mut written: Vec<&str> = task.tables().iter().map(|(_, t)| *t).collect();
        let mut read = task.config_fields().to_vec();
        written.sort_unstable();
        read.sort_unstable();
        assert_eq!(written, read, "the tables of a {} file", task.name());
        for table in task.tables() {
            assert!(listed.contains(table), "{table:?} is not in the schema");
        }
    }
}

#[test]
fn pipeline_tables_are_the_run_settings_the_kg_and_every_registered_stage() {
    let top: Vec<&str> = pipeline_tables()
        .into_iter()
        .filter(|t| !t.contains('.'))
        .collect();
    let mut expected = vec!["pipeline", "kg"];
    expected.extend(registry::names());
    assert_eq!(top, expected);
    let listed: BTreeSet<&str> = schema()
        .iter()
        .filter(|t| t.scope == Scope::Pipeline)
        .map(|t| t.table)
        .collect();
    assert_eq!(listed, pipeline_tables().into_iter().collect());
    assert_eq!(fields_of::<RunSpec>()[0], "name");
}

/// The lines `# [table]` and `# key = value` of `text` uncommented: the file with every key
/// `zhishi init` shows.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if is_table_line(rest) || is_key_line(rest) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_table_line(s: &str) -> bool {
    s.starts_with('[') && s.ends_with(']') && !s.contains(' ')
}

fn is_key_line(s: &str) -> bool {
    s.split_once(" = ").is_some_and(|(k, _)| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    })
}

/// Every `(table, key)` of a TOML text, sub-tables as `link.normalize`.
fn keys_of(text: &str) -> Vec<(String, String)> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
        for (k, v) in table {
            match v.as_table() {
                Some(inner) if !prefix.is_empty() => walk(&format!("{prefix}.{k}"), inner, out),
                Some(inner) => walk(k, inner, out),
                None => out.push((prefix.to_string(), k.clone())),
            }
        }
    }
    let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut out = Vec::new();
    walk("", &table, &mut out);
    out
}

fn assert_all_documented(text: &str, scope_of: impl Fn(&str) -> Scope) {
    let reference = reference();
    let keys = keys_of(&uncommented(text));
    assert!(keys.len() > 5, "{keys:?}");
    for (table, key) in keys {
        let scope = scope_of(&table);
        let documented = reference
            .table(scope, &table)
            .is_some_and(|t| t.key(&key).is_some());
        assert!(
            documented,
            "`zhishi init` prints {table}.{key} ({}), which docs/config.md does not document",
            scope.name()
        );
    }
}

/// Parses `text` as `T` the way `zhishi train` does, as if it were `pipelines/init.toml`.
fn parse<T: DeserializeOwned>(text: &str) -> T {
    let path = repo().join("pipelines/init.toml");
    let overrides = ["encoder.model=/models/m3e-small".to_string()];
    match config::from_str::<T>(&path, text, &overrides) {
        Ok(loaded) => loaded.value,
        Err(e) => panic!("{e}\n{text}"),
    }
}

/// The full template and its minimal form parse as `T` to the same value (so every value it
/// prints is the code's default), and so does the file with every example uncommented.
fn assert_defaults_are_the_codes<T: DeserializeOwned + Debug>(template: &Template) {
    let full = template.render();
    let minimal = template.without_defaults().render();
    let (a, b) = (parse::<T>(&full), parse::<T>(&minimal));
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "\n{full}");
    parse::<T>(&uncommented(&full));
}

/// Where the templates are written: a file in the checkout's `pipelines/`.
fn in_pipelines() -> Place {
    Place::pipelines_of(repo())
}

fn templates() -> Vec<(TrainingTask, KnowledgeMode, Template)> {
    templates_for(&in_pipelines())
}

fn templates_for(place: &Place) -> Vec<(TrainingTask, KnowledgeMode, Template)> {
    let mut out = Vec::new();
    for task in TrainingTask::ALL {
        for mode in MODES {
            match template::training(task, mode, place) {
                Ok(t) => out.push((task, mode, t)),
                Err(InitError::Knowledge { .. }) => {
                    let refused = match task {
                        TrainingTask::Ner | TrainingTask::Classify => false,
                        TrainingTask::Relation => mode.fuses_entities(),
                        TrainingTask::Qa | TrainingTask::Kbqa => mode != KnowledgeMode::Plain,
                    };
                    assert!(refused, "{} refuses {}", task.name(), mode.name());
                }
                Err(e) => panic!("{} {}: {e}", task.name(), mode.name()),
            }
        }
    }
    assert_eq!(out.len(), 4 + 4 + 2 + 1 + 1);
    out
}

#[test]
fn init_config_parses_with_each_tasks_loader_at_the_codes_defaults() {
    for (task, mode, template) in templates() {
        let text = template.render();
        match task {
            TrainingTask::Ner => {
                assert_defaults_are_the_codes::<ner::NerConfig>(&template);
                let c: ner::NerConfig = parse(&text);
                assert_eq!(c.knowledge.mode, mode);
            }
            TrainingTask::Relation => {
                assert_defaults_are_the_codes::<relation::RelationConfig>(&template);
                let c: relation::RelationConfig = parse(&text);
                assert_eq!(c.knowledge.mode, mode);
            }
            TrainingTask::Classify => {
                assert_defaults_are_the_codes::<classify::ClassifyConfig>(&template);
                let c: classify::ClassifyConfig = parse(&text);
                assert_eq!(c.knowledge.mode, mode);
            }
            TrainingTask::Qa => assert_defaults_are_the_codes::<qa::QaConfig>(&template),
            TrainingTask::Kbqa => assert_defaults_are_the_codes::<kbqa::KbqaConfig>(&template),
        }
        assert!(text.contains("\"${M3E_DIR}\""), "{text}");
        assert!(text.contains(&format!("kind = \"{}\"", task.name())));
        let scopes = task.tables();
        assert_all_documented(&text, |table| {
            scopes
                .iter()
                .find(|(_, t)| *t == table)
                .map(|(s, _)| *s)
                .unwrap_or_else(|| panic!("{} prints [{table}]", task.name()))
        });
    }
}

/// The shared data file that stands in for the placeholder `rel` (under `data/`) of a
/// template for `task` and `mode`.
fn stand_in(task: TrainingTask, mode: KnowledgeMode, rel: &str) -> &'static str {
    let split = rel.split('.').next().unwrap_or(rel);
    match (task, rel) {
        (TrainingTask::Ner, _) if mode == KnowledgeMode::Plain => match split {
            "train" => "ner/resume/train.char.bmes",
            "dev" => "ner/resume/dev.char.bmes",
            _ => "ner/resume/test.char.bmes",
        },
        (TrainingTask::Ner, _) => match split {
            "train" => "ner/kbert_medical/train.tsv",
            "dev" => "ner/kbert_medical/dev.tsv",
            _ => "ner/kbert_medical/test.tsv",
        },
        (_, "HowNet.spo") => "kg/kbert/HowNet.spo",
        (TrainingTask::Relation, _) => match split {
            "train" => "re/sanwen/train.txt",
            "dev" => "re/sanwen/valid.txt",
            _ => "re/sanwen/test.txt",
        },
        (TrainingTask::Classify, _) => match split {
            "train" => "cls/chnsenticorp/train.tsv",
            "dev" => "cls/chnsenticorp/dev.tsv",
            _ => "cls/chnsenticorp/test.tsv",
        },
        (TrainingTask::Qa, _) => match split {
            "train" => "qa/cmrc2018/cmrc2018_trial.json",
            _ => "qa/cmrc2018/cmrc2018_dev.json",
        },
        (TrainingTask::Kbqa, _) => "kg/nlpcc2016/nlpcc-iccpol-2016.kbqa.training-data",
    }
}

/// The `data/...` placeholders of a rendered template (the user's own files).
fn placeholders(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains("  # your "))
        .filter_map(|l| l.split('"').nth(1))
        .filter_map(|p| p.strip_prefix("data/"))
        .map(str::to_string)
        .collect()
}

#[test]
#[cfg(unix)]
fn init_config_passes_each_tasks_checks_on_the_shipped_data() {
    let needed = [
        "ner/resume/dev.char.bmes",
        "ner/kbert_medical/dev.tsv",
        "kg/kbert/HowNet.spo",
        "cls/chnsenticorp/dev.tsv",
        "re/sanwen/valid.txt",
        "qa/cmrc2018/cmrc2018_dev.json",
        "kg/nlpcc2016/nlpcc-iccpol-2016.kbqa.training-data",
    ];
    if needed.iter().any(|rel| shared_data(rel).is_none()) {
        return;
    }
    // Each file is written outside the checkout, as `zhishi init config --output` would
    // write it there, with its `data/` placeholders linked to the shared data.
    let scratch = tempfile::tempdir().unwrap();
    let place = Place {
        dir: scratch.path().join("files"),
        checkout: Some(repo().to_path_buf()),
        printed: false,
    };
    // The tiny fixture stands in for the encoder, its config widened to the templates'
    // `max_len` (checked against the encoder's positions; the weights are never loaded).
    let encoder = scratch.path().join("encoder");
    std::fs::create_dir_all(&encoder).unwrap();
    let fixture = repo().join("tests/fixtures/encoder/tiny-bert");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("config.json")).unwrap())
            .unwrap();
    cfg["max_position_embeddings"] = 512.into();
    std::fs::write(encoder.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(
        fixture.join("model.safetensors"),
        encoder.join("model.safetensors"),
    )
    .unwrap();
    let overrides = [format!("encoder.model={}", encoder.display())];
    for (task, mode, template) in templates_for(&place) {
        let what = format!("{} {}", task.name(), mode.name());
        let dir = scratch.path().join(what.replace(' ', "-"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let text = template.render();
        for rel in placeholders(&text) {
            let Some(shared) = shared_data(stand_in(task, mode, &rel)) else {
                return; // a split not in this copy of the shared data
            };
            std::os::unix::fs::symlink(shared, dir.join("data").join(&rel)).unwrap();
        }
        let path = dir.join("init.toml");
        std::fs::write(&path, text).unwrap();
        // `zhishi eval` resolves and checks the whole file, reads the split, then stops at the
        // model directory, which nothing has trained: any error before that is the file's.
        let message = match task {
            TrainingTask::Ner => {
                match ner::evaluate_config(&path, &overrides, zhishi::stages::task::Split::Dev) {
                    Err(ner::NerError::Config(e)) => panic!("{what}: {e}"),
                    other => format!("{:?}", other.err()),
                }
            }
            TrainingTask::Relation => {
                match relation::evaluate_config(&path, &overrides, zhishi::stages::task::Split::Dev)
                {
                    Err(relation::RelationError::Config(e)) => panic!("{what}: {e}"),
                    other => format!("{:?}", other.err()),
                }
            }
            TrainingTask::Qa => {
                match qa::evaluate_config(&path, &overrides, zhishi::stages::task::Split::Dev) {
                    Err(qa::QaError::Config(e)) => panic!("{what}: {e}"),
                    other => format!("{:?}", other.err()),
                }
            }
            TrainingTask::Classify => {
                let err = (classify::TASK.evaluate)(
                    &path,
                    &overrides,
                    zhishi::stages::task::Split::Dev,
                    zhishi::model::Precision::F32,
                )
                .err();
                format!("{err:?}")
            }
            TrainingTask::Kbqa => {
                // Evaluating would build the store; check the question file instead.
                let loaded =
                    config::load::<kbqa::KbqaConfig>(&path, &overrides).unwrap_or_else(|e| {
                        panic!("{what}: {e}");
                    });
                let c = &loaded.value;
                loaded
                    .source
                    .existing_path("data.path", &c.data.path)
                    .unwrap();
                continue;
            }
        };
        assert!(message.contains("best"), "{what}: {message}");
    }
}

#[test]
fn init_pipeline_passes_the_pipeline_check_at_the_codes_defaults() {
    let template = template::pipeline(&in_pipelines()).unwrap();
    let text = template.render();
    let path = repo().join("pipelines/init.toml");
    let mut loaded = config::from_str::<PipelineSpec>(&path, &text, &[]).unwrap();
    let location = loaded.value.check(&loaded.source).unwrap();
    match location {
        Some(KgLocation::Triples { files, .. }) => {
            assert!(files[0].ends_with("kg/demo.tsv"), "{files:?}")
        }
        other => panic!("{other:?}"),
    }
    let spec = &loaded.value;
    assert_eq!(spec.pipeline.stages, ["segment", "link", "facts"]);
    let run = RunSpec {
        stages: spec.pipeline.stages.clone(),
        ..RunSpec::default()
    };
    assert_eq!(format!("{:?}", spec.pipeline), format!("{run:?}"));
    let option = |name: &str| spec.tables.get(name).cloned().unwrap();
    let same = |a: &dyn Debug, b: &dyn Debug| assert_eq!(format!("{a:?}"), format!("{b:?}"));
    same(
        &option("segment").try_into::<SegmentStageOptions>().unwrap(),
        &SegmentStageOptions::default(),
    );
    same(
        &option("link").try_into::<LinkOptions>().unwrap(),
        &LinkOptions::default(),
    );
    same(
        &option("facts").try_into::<FactsOptions>().unwrap(),
        &FactsOptions::default(),
    );
    // The commented-out tables (the link weights, the model stages) hold the defaults too.
    let mut shown = template.clone();
    for table in &mut shown.tables {
        table.entries.retain(|e| e.origin != Origin::Unset);
    }
    let full: toml::Table = uncommented(&shown.render()).parse().unwrap();
    let minimal: toml::Table = uncommented(&template.without_defaults().render())
        .parse()
        .unwrap();
    fn same_as<T: DeserializeOwned + Debug>(full: &toml::Table, minimal: &toml::Table, t: &str) {
        let read =
            |table: &toml::Table| -> T { table.get(t).cloned().unwrap().try_into().unwrap() };
        assert_eq!(
            format!("{:?}", read(full)),
            format!("{:?}", read(minimal)),
            "[{t}]"
        );
    }
    same_as::<KgSpec>(&full, &minimal, "kg");
    same_as::<LinkOptions>(&full, &minimal, "link");
    same_as::<ner::NerStageOptions>(&full, &minimal, "ner");
    same_as::<relation::RelationStageOptions>(&full, &minimal, "relation");
    same_as::<qa::QaStageOptions>(&full, &minimal, "qa");
    same_as::<kbqa::KbqaStageOptions>(&full, &minimal, "kbqa");
    assert_all_documented(&text, |_| Scope::Pipeline);
}

/// A file printed by `zhishi init` run from the test's directory (the checkout).
fn printed_here() -> Place {
    Place {
        dir: std::env::current_dir().unwrap(),
        checkout: Some(std::fs::canonicalize(repo()).unwrap()),
        printed: true,
    }
}

fn zhishi(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zhishi"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn init_cli_prints_writes_and_refuses_to_overwrite_without_force() {
    let out = zhishi(&["init", "config", "--task", "qa"]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        printed,
        template::training(TrainingTask::Qa, KnowledgeMode::Plain, &printed_here())
            .unwrap()
            .render()
    );
    let dir = std::env::temp_dir().join(format!("zhishi-init-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p.toml");
    let _ = std::fs::remove_file(&file);
    let file_arg = file.to_str().unwrap();
    let out = zhishi(&["init", "pipeline", "--output", file_arg]);
    assert!(out.status.success(), "{out:?}");
    let written = std::fs::read_to_string(&file).unwrap();
    let place = Place {
        dir: std::fs::canonicalize(&dir).unwrap(),
        checkout: Some(std::fs::canonicalize(repo()).unwrap()),
        printed: false,
    };
    assert_eq!(written, template::pipeline(&place).unwrap().render());
    std::fs::write(&file, "mine").unwrap();
    let out = zhishi(&["init", "pipeline", "--output", file_arg]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already exists; pass --force"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    let out = zhishi(&[
        "init",
        "config",
        "--task",
        "ner",
        "--knowledge",
        "kbert",
        "-o",
        file_arg,
        "--force",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("mode = \"kbert\""));
    let out = zhishi(&[
        "init",
        "config",
        "--task",
        "relation",
        "--knowledge",
        "ernie",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected plain or kbert"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
