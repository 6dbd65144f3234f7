//! Pipelines from TOML: the quickstart pipeline on real sentences, strict schema errors that
//! name file, line and key, relative paths, the builder, and concurrent use from many threads.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zhishi::pipeline::{Pipeline, PipelineError};
use zhishi::stages::facts::FactsOptions;
use zhishi::stages::segment::SegmentStageOptions;
use zhishi::text::LinkOptions;

use crate::support::{assert_one_passed, rerun_in_child};

const KG: &str = "姚明\t职业\t篮球运动员\n姚明\t出生地\t上海\n姚明\t身高\t226厘米\n上海\t别名\t沪\n上海\t所属国家\t中国\n休斯顿火箭队\t所在城市\t休斯顿\n";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `kg.tsv` and `conf/p.toml` (holding `toml`) into a temp dir; returns the TOML path.
fn write_pipeline(dir: &Path, toml: &str) -> PathBuf {
    std::fs::write(dir.join("kg.tsv"), KG).unwrap();
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    let path = dir.join("conf/p.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

const GOOD: &str = r#"[pipeline]
name = "test"
stages = ["segment", "link", "facts"]
threads = 2

[kg]
triples = ["../kg.tsv"]

[link]
nil_threshold = 0.0

[facts]
per_mention = 1
"#;

fn load_error(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pipeline(dir.path(), toml);
    let err = Pipeline::from_toml(&path).unwrap_err();
    assert!(matches!(err, PipelineError::Config(_)), "{err:?}");
    err.to_string()
        .replace(&format!("{}/", dir.path().display()), "")
}

#[test]
fn quickstart_links_the_sample_corpus_against_the_shipped_kg() {
    let pipeline = Pipeline::from_toml(repo().join("pipelines/quickstart.toml")).unwrap();
    assert_eq!(pipeline.stage_names(), ["segment", "link", "facts"]);
    let doc = pipeline
        .process("腰酸背痛是腰椎间盘突出的常见症状，医生建议他做个腰椎CT检查。")
        .unwrap();
    let linked: Vec<_> = doc
        .mentions
        .iter()
        .map(|m| (m.start, m.end, m.text.as_str(), m.entity.name.as_str()))
        .collect();
    // 他 is in no KG here, but a pronoun would stay unlinked anyway (`[link] exclude_pos`).
    assert_eq!(
        linked,
        [
            (0, 4, "腰酸背痛", "腰酸背痛"),
            (5, 11, "腰椎间盘突出", "腰椎间盘突出"),
            (24, 28, "腰椎CT", "腰椎CT"),
        ]
    );
    // KG names stay whole words.
    assert!(doc
        .tokens
        .iter()
        .any(|t| t.text == "腰椎间盘突出" && t.start == 5 && t.end == 11));
    // Up to 2 facts per mention, the one the sentence speaks of first: both symptoms are
    // 类别 症状, and the sentence says 症状.
    let first_fact = |mention: usize| doc.facts.iter().find(|f| f.mention == mention).unwrap();
    for mention in [0, 1] {
        let f = first_fact(mention);
        assert_eq!((f.predicate.as_str(), f.object.as_str()), ("类别", "症状"));
        assert!(f.score > 0.0, "{f:?}");
    }
    assert_eq!(first_fact(2).object, "检查");
    assert!(doc
        .facts
        .iter()
        .all(|f| f.subject == doc.mentions[f.mention].entity.name));
}

#[test]
fn relative_kg_paths_resolve_next_to_the_toml_and_facts_follow_mentions() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::from_toml(write_pipeline(dir.path(), GOOD)).unwrap();
    let doc = pipeline.process("姚明出生在上海。").unwrap();
    let linked: Vec<_> = doc
        .mentions
        .iter()
        .map(|m| (m.text.as_str(), m.start, m.end))
        .collect();
    assert_eq!(linked, [("姚明", 0, 2), ("上海", 5, 7)]);
    // One fact per mention; for 姚明 in a sentence about birth, 出生地 ranks first.
    assert_eq!(doc.facts.len(), 2);
    assert_eq!(
        (doc.facts[0].mention, doc.facts[0].predicate.as_str()),
        (0, "出生地")
    );
    assert_eq!(doc.facts[1].mention, 1);
}

#[test]
fn unknown_keys_name_the_line_and_key() {
    let err = load_error(&GOOD.replace("nil_threshold = 0.0", "nil_treshold = 0.0"));
    assert!(
        err.starts_with("conf/p.toml:10: key `link.nil_treshold`"),
        "{err}"
    );
    assert!(err.contains("unknown field `nil_treshold`"), "{err}");
}

#[test]
fn wrong_types_name_the_line_key_and_expected_type() {
    let err = load_error(&GOOD.replace("threads = 2", "threads = \"two\""));
    assert!(
        err.starts_with("conf/p.toml:4: key `pipeline.threads`"),
        "{err}"
    );
    assert!(err.contains("expected usize"), "{err}");
}

#[test]
fn unknown_or_unavailable_devices_are_rejected_at_their_key() {
    let err = load_error(&GOOD.replace("threads = 2", "threads = 2\ndevice = \"gpu0\""));
    assert!(
        err.starts_with("conf/p.toml:5: key `pipeline.device`"),
        "{err}"
    );
    assert!(err.contains("expected `cpu`, `cuda` or `cuda:N`"), "{err}");
    let err = load_error(&GOOD.replace("threads = 2", "threads = 2\ndevice = \"cuda:0\""));
    assert!(
        err.starts_with("conf/p.toml:5: key `pipeline.device`"),
        "{err}"
    );
    // Without the feature the message says how to get CUDA; with it (and no GPU here) it says
    // the device cannot be opened.
    let expected = if cfg!(feature = "cuda") {
        "cannot open CUDA device 0"
    } else {
        "--features cuda"
    };
    assert!(err.contains(expected), "{err}");
}

#[test]
fn the_builder_checks_the_device_too() {
    let Err(err) = Pipeline::builder()
        .segment(Default::default())
        .device("tpu")
        .build()
    else {
        panic!("an unknown device must be refused");
    };
    assert!(
        zhishi::error::report(&err).starts_with("pipeline.device: device \"tpu\": expected `cpu`"),
        "{err}"
    );
    let ok = Pipeline::builder()
        .segment(Default::default())
        .device("cpu")
        .build();
    assert!(ok.is_ok());
}

#[test]
fn unknown_stages_are_rejected_with_the_known_ones_listed() {
    let err = load_error(&GOOD.replace("\"facts\"]", "\"parse\"]"));
    assert!(
        err.starts_with("conf/p.toml:3: key `pipeline.stages"),
        "{err}"
    );
    assert!(
        err.contains("unknown stage `parse`, expected one of segment, link, facts"),
        "{err}"
    );
}

#[test]
fn a_stage_whose_input_no_earlier_stage_produces_is_an_error() {
    let err = load_error(&GOOD.replace(
        "[\"segment\", \"link\", \"facts\"]",
        "[\"segment\", \"facts\", \"link\"]",
    ));
    assert!(
        err.starts_with("conf/p.toml:3: key `pipeline.stages[1]`"),
        "{err}"
    );
    assert!(
        err.contains("stage `facts` reads `mentions`, which no earlier stage produces"),
        "{err}"
    );
}

#[test]
fn missing_files_and_missing_kg_are_errors_at_their_key() {
    let err = load_error(&GOOD.replace("../kg.tsv", "../nope.tsv"));
    assert!(
        err.starts_with("conf/p.toml:7: key `kg.triples[0]`"),
        "{err}"
    );
    assert!(err.contains("nope.tsv does not exist"), "{err}");

    let without_kg = GOOD.replace("[kg]\ntriples = [\"../kg.tsv\"]\n", "");
    let err = load_error(&without_kg);
    assert!(
        err.contains("key `pipeline.stages[1]`: stage `link` needs a knowledge graph"),
        "{err}"
    );
}

#[test]
fn options_for_a_stage_that_is_not_listed_are_an_error() {
    let err = load_error(&format!(
        "{}\n[segment]\nhmm = false\n",
        GOOD.replace("\"segment\", ", "")
    ));
    assert!(err.starts_with("conf/p.toml:15: key `segment`"), "{err}");
}

/// The variable [`overrides_and_environment_variables_apply_before_checks`] names the KG with.
const KG_VAR: &str = "ZHISHI_PIPELINE_TEST_KG";

#[test]
fn overrides_and_environment_variables_apply_before_checks() {
    // `${VAR}` expands from the process environment, which every test of this binary shares
    // (and `std::env::set_var` races with their threads): the test runs again in a process of
    // its own, started with the variable set.
    let Some(kg) = std::env::var_os(KG_VAR) else {
        let dir = tempfile::tempdir().unwrap();
        let out = rerun_in_child(
            module_path!(),
            "overrides_and_environment_variables_apply_before_checks",
        )
        .env(KG_VAR, dir.path().join("kg.tsv"))
        .output()
        .unwrap();
        assert_one_passed(&out);
        return;
    };
    let dir = Path::new(&kg).parent().unwrap();
    let path = write_pipeline(
        dir,
        &GOOD.replace("../kg.tsv", "${ZHISHI_PIPELINE_TEST_KG}"),
    );
    let pipeline = Pipeline::from_toml_with(
        &path,
        &[
            "pipeline.stages=[\"link\"]".into(),
            "facts.per_mention=3".into(),
        ],
    );
    // `[facts]` is configured but no longer listed.
    let err = pipeline.unwrap_err().to_string();
    assert!(
        err.contains("[facts] configures a stage that is not in pipeline.stages"),
        "{err}"
    );
    let pipeline =
        Pipeline::from_toml_with(&path, &["pipeline.stages=[\"link\", \"facts\"]".into()]).unwrap();
    assert_eq!(pipeline.stage_names(), ["link", "facts"]);
    assert!(pipeline.process("姚明").unwrap().tokens.is_empty());
}

#[test]
fn the_builder_makes_the_same_pipeline_as_the_toml() {
    let dir = tempfile::tempdir().unwrap();
    let from_toml = Pipeline::from_toml(write_pipeline(dir.path(), GOOD)).unwrap();
    let built = Pipeline::builder()
        .kg_triples([dir.path().join("kg.tsv")])
        .segment(SegmentStageOptions::default())
        .link(LinkOptions {
            nil_threshold: 0.0,
            ..LinkOptions::default()
        })
        .facts(FactsOptions { per_mention: 1 })
        .build()
        .unwrap();
    let texts = ["姚明出生在上海。", "休斯顿火箭队的主场在休斯顿。", ""];
    assert_eq!(
        from_toml.process_batch(&texts).unwrap(),
        built.process_batch(&texts).unwrap()
    );
    let err = Pipeline::builder()
        .link(LinkOptions::default())
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("stage `link` needs a knowledge graph"),
        "{err}"
    );
    let err = Pipeline::builder()
        .kg_triples([dir.path().join("kg.tsv")])
        .facts(FactsOptions::default())
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("stage `facts` reads `mentions`, which no earlier stage produces"),
        "{err}"
    );
}

#[test]
fn link_after_segment_reuses_its_tokens_and_finds_the_same_mentions() {
    let corpus = std::fs::read_to_string(repo().join("corpora/sample.txt")).unwrap();
    let mut texts: Vec<&str> = corpus.lines().collect();
    texts.push("Ｉ　ｌｏｖｅ 北京 和 Shanghai！\n《哈姆雷特》");
    let build = |segment: bool| {
        let mut builder = Pipeline::builder().kg_triples([repo().join("kg/demo.tsv")]);
        if segment {
            builder = builder.segment(SegmentStageOptions::default());
        }
        builder.link(LinkOptions::default()).build().unwrap()
    };
    let (with_segment, alone) = (build(true), build(false));
    let with_segment = with_segment.process_batch(&texts).unwrap();
    let alone = alone.process_batch(&texts).unwrap();
    assert!(with_segment.iter().any(|d| !d.mentions.is_empty()));
    for ((a, b), text) in with_segment.iter().zip(&alone).zip(&texts) {
        assert!(text.trim().is_empty() || !a.tokens.is_empty(), "{text}");
        assert_eq!(a.mentions, b.mentions, "{text}");
    }
}

#[test]
fn concurrent_process_calls_match_sequential_results() {
    let pipeline = Arc::new(Pipeline::from_toml(repo().join("pipelines/quickstart.toml")).unwrap());
    let corpus = std::fs::read_to_string(repo().join("corpora/sample.txt")).unwrap();
    let texts: Vec<&str> = corpus.lines().filter(|l| !l.trim().is_empty()).collect();
    let sequential = pipeline.process_batch(&texts).unwrap();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (pipeline, texts, sequential) = (Arc::clone(&pipeline), &texts, &sequential);
            scope.spawn(move || {
                for round in 0..5 {
                    for (i, text) in texts.iter().enumerate().skip((t + round) % 3) {
                        assert_eq!(
                            &pipeline.process(text).unwrap(),
                            &sequential[i],
                            "thread {t}"
                        );
                    }
                }
            });
        }
    });
}

#[test]
fn a_missing_model_directory_names_the_training_command_that_makes_it() {
    // The shipped KG path reads `${ZHISHI_DATA:-../data}`; the test data root stands in.
    let kg = crate::support::shared_data::root().join("kg/kbert/Medical.spo");
    let overrides = [format!("kg.triples=[{:?}]", kg.display().to_string())];
    let err = Pipeline::from_toml_with(&repo().join("pipelines/medical-ner.toml"), &overrides)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    if std::path::Path::new(&repo().join("models/ner/kbert-medical/best")).exists() {
        return; // a trained model is there: nothing to report
    }
    assert!(err.contains("key `ner.model`"), "{err}");
    assert!(
        err.contains("pipelines/kbert-medical-ner.toml` (it writes there)"),
        "{err}"
    );
    assert!(err.contains("--set ner.model=DIR"), "{err}");
}

#[test]
fn item8_facts_are_ranked_against_the_text_around_each_mention() {
    // Ranking used to re-normalise the whole document for every mention (quadratic); it now
    // looks at the 256 characters on each side of the mention, as K-BERT injection does.
    let dir = tempfile::tempdir().unwrap();
    let kg = dir.path().join("kg.tsv");
    std::fs::write(&kg, "山西大学\t所在地\t太原\n山西大学\t类型\t综合性大学\n").unwrap();
    let pipeline = Pipeline::builder()
        .kg_triples([&kg])
        .segment(SegmentStageOptions::default())
        .link(LinkOptions {
            nil_threshold: 0.0,
            ..LinkOptions::default()
        })
        .facts(FactsOptions { per_mention: 1 })
        .build()
        .unwrap();
    let near = pipeline.process("山西大学在太原。").unwrap();
    assert_eq!(near.facts[0].object, "太原");
    assert!(near.facts[0].score > 0.0);
    let filler = "今天天气很好，我们一起去公园散步。".repeat(20); // 340 characters
    let far = pipeline
        .process(&format!("山西大学。{filler}太原。"))
        .unwrap();
    let first = far.facts.iter().find(|f| f.mention == 0).unwrap();
    assert_eq!(
        first.score, 0.0,
        "太原 is beyond the mention's window: {first:?}"
    );
    let window = zhishi::text::fact_context("甲乙山西大学丙丁", 6, 18);
    assert_eq!(window, "甲乙山西大学丙丁", "a short text is its own window");
}

#[test]
fn the_stage_list_in_the_docs_is_the_registry() {
    let docs = std::fs::read_to_string(repo().join("docs/pipelines.md")).unwrap();
    let start = docs
        .find("<!-- stages:start -->")
        .expect("marker in docs/pipelines.md")
        + 21;
    let end = docs
        .find("<!-- stages:end -->")
        .expect("marker in docs/pipelines.md");
    let table = zhishi::stages::registry::markdown_table();
    assert_eq!(
        docs[start..end].trim(),
        table.trim(),
        "docs/pipelines.md's stage list differs from the registry; paste:\n{table}"
    );
}

/// A library user's own stage: counts the mentions into `answers`.
struct MentionCount;

impl zhishi::pipeline::Stage for MentionCount {
    fn name(&self) -> &'static str {
        "mention_count"
    }

    fn process(&self, docs: &mut [zhishi::Document]) -> Result<(), zhishi::pipeline::StageError> {
        for doc in docs {
            doc.answers = vec![zhishi::Answer {
                text: doc.mentions.len().to_string(),
                span: None,
                score: 1.0,
                triple: None,
                source: None,
            }];
        }
        Ok(())
    }
}

#[test]
fn a_custom_stage_runs_in_order_and_its_inputs_are_checked() {
    use zhishi::pipeline::Field;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kg.tsv"), KG).unwrap();
    let pipeline = Pipeline::builder()
        .kg_triples([dir.path().join("kg.tsv")])
        .link(LinkOptions::default())
        .custom_stage(MentionCount, &[Field::Mentions], &[Field::Answers])
        .build()
        .unwrap();
    assert_eq!(pipeline.stage_names(), ["link", "mention_count"]);
    let doc = pipeline.process("姚明出生在上海。").unwrap();
    assert_eq!(doc.answers[0].text, doc.mentions.len().to_string());
    assert!(!doc.mentions.is_empty());
    // Before `link`, nothing produces the mentions it reads.
    let Err(err) = Pipeline::builder()
        .kg_triples([dir.path().join("kg.tsv")])
        .custom_stage(MentionCount, &[Field::Mentions], &[Field::Answers])
        .link(LinkOptions::default())
        .build()
    else {
        panic!("a custom stage before its input must be refused");
    };
    assert!(
        err.to_string()
            .contains("stage `mention_count` reads `mentions`"),
        "{err}"
    );
}

#[test]
fn unknown_tables_and_keys_are_rejected_at_their_line() {
    let err = load_error(&format!("{GOOD}\n[parser]\nx = 1\n"));
    assert!(
        err.contains("key `parser`: unknown table `parser`"),
        "{err}"
    );
    let err = load_error(&format!("colour = 1\n{GOOD}"));
    assert!(
        err.starts_with("conf/p.toml:1: key `colour`: unknown key"),
        "{err}"
    );
}

#[test]
fn min_score_outside_0_to_1_is_refused_with_its_key() {
    for kind in ["ner", "relation", "qa", "kbqa", "classify"] {
        for bad in ["1.5", "-0.1", "nan"] {
            let toml = format!(
                "[pipeline]\nstages = [\"{kind}\"]\n\n[{kind}]\nmodel = \"m\"\nmin_score = {bad}\n"
            );
            let err = load_error(&toml);
            assert!(
                err.contains(&format!("key `{kind}.min_score`")) && err.contains("out of range"),
                "{kind} {bad}: {err}"
            );
        }
    }
}
