//! Fuzzing every reader of user input with proptest (cargo-fuzz needs a nightly toolchain,
//! which cannot be installed here): each reader gets random bytes and random mutations of a
//! valid sample (bytes flipped, inserted, deleted, spliced, a byte-order mark, a huge number),
//! and must return a value or an error, never panic or allocate without bound.
//!
//! `ZHISHI_FUZZ_CASES=N` sets the cases per reader (default 200, what `.ci/run` runs);
//! `cargo test --release --test cli -- fuzz_readers:: --nocapture` with a large N is the long
//! run, and each reader prints how many inputs it executed.
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use zhishi::config;
use zhishi::kg::import::{self, Format, ImportOptions};

fn cases() -> u32 {
    std::env::var("ZHISHI_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// One edit of a mutation.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

/// Inputs that stress parsers: tokens that are numbers, escapes, separators, BOMs.
const TOKENS: &[&[u8]] = &[
    b"\t",
    b"\n",
    b"\r\n",
    b" ||| ",
    b"\xEF\xBB\xBF",
    b"\xff",
    b"\\u12",
    b"\\U0010FFFF",
    b"\"",
    b"18446744073709551615",
    b"99999999999999",
    b"-1",
    b"nan",
    b"[[",
    b"]]",
    b"{",
    b"}",
    b"<question id=1>",
    b"<triple id=1>",
    b"<answer id=1>",
    b"B-",
    b"E-LOC",
    b"\xe5\xa7\x9a",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), prop::sample::select(TOKENS))
            .prop_map(|(p, t)| Edit::Insert(p, t.to_vec())),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(p, b)| Edit::Insert(p, b)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Duplicate(p, n)),
    ]
}

/// Random bytes, or a seed with up to 8 edits.
fn input(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512),
        4 => (prop::sample::select(seeds), prop::collection::vec(edit(), 0..8)).prop_map(|(seed, edits)| {
            let mut bytes = seed.as_bytes().to_vec();
            for e in edits {
                let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
                match e {
                    Edit::Flip(p, b) if !bytes.is_empty() => {
                        let i = p % bytes.len();
                        bytes[i] ^= b;
                    }
                    Edit::Flip(..) => {}
                    Edit::Insert(p, b) => {
                        let i = at(p, bytes.len());
                        bytes.splice(i..i, b);
                    }
                    Edit::Delete(p, n) => {
                        let i = at(p, bytes.len());
                        let end = (i + n).min(bytes.len());
                        bytes.drain(i..end);
                    }
                    Edit::Duplicate(p, n) => {
                        let i = at(p, bytes.len());
                        let end = (i + n).min(bytes.len());
                        let copy = bytes[i..end].to_vec();
                        bytes.splice(end..end, copy);
                    }
                }
            }
            bytes
        }),
    ]
}

/// Runs `check` on every generated input; panics (a crash) fail the test with the input.
fn fuzz(name: &str, seeds: &'static [&'static str], check: impl Fn(&[u8])) {
    let executed = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&input(seeds), |bytes| {
        executed.fetch_add(1, Ordering::Relaxed);
        check(&bytes);
        Ok(())
    });
    eprintln!(
        "fuzz {name}: {} inputs executed, {}",
        executed.load(Ordering::Relaxed),
        if result.is_ok() { "no crash" } else { "CRASH" }
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// Imports `bytes` written to `name` in a temp dir with `format`; any result but a panic is fine.
fn import_bytes(dir: &Path, name: &str, bytes: &[u8], format: Format) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let opts = ImportOptions {
        format,
        ..ImportOptions::default()
    };
    let _ = import::read_files(&[path], &opts);
}

#[test]
fn fuzz_tsv_and_spo() {
    let dir = tempfile::tempdir().unwrap();
    fuzz(
        "tsv/spo",
        &[
            "哈姆雷特\t作者\t莎士比亚\n莎士比亚\t国籍\t英国\n",
            "\u{feff}a\tb\tc\r\n\n# c\n",
        ],
        |b| import_bytes(dir.path(), "kg.tsv", b, Format::Tsv),
    );
}

#[test]
fn fuzz_nlpcc_kb_and_questions() {
    let dir = tempfile::tempdir().unwrap();
    const NLPCC: &str = "<question id=1>\t《机械设计基础》这本书的作者是谁？\n<triple id=1>\t机械设计基础 ||| 作者 ||| 杨可桢，程光蕴，李仲生\n<answer id=1>\t杨可桢，程光蕴，李仲生\n==================================================\n";
    fuzz(
        "nlpcc",
        &[NLPCC, "机械设计基础 ||| 作者 ||| 杨可桢\n"],
        |b| {
            import_bytes(dir.path(), "kb.txt", b, Format::Nlpcc);
            let _ = zhishi::stages::kbqa::data::parse_questions(&String::from_utf8_lossy(b));
        },
    );
}

#[test]
fn fuzz_ntriples() {
    let dir = tempfile::tempdir().unwrap();
    fuzz(
        "ntriples",
        &[
            "<http://x/a> <http://x/name> \"北京\\u5E02\"@zh .\n<a> <p> _:b1 .\n",
            "<a> <p> \"42\"^^<http://www.w3.org/2001/XMLSchema#integer> . # c\n",
        ],
        |b| import_bytes(dir.path(), "kg.nt", b, Format::Ntriples),
    );
}

#[test]
fn fuzz_openke() {
    let dir = tempfile::tempdir().unwrap();
    let kg = dir.path().join("openke");
    std::fs::create_dir_all(&kg).unwrap();
    fuzz(
        "openke",
        &["2\n北京\t0\n中国\t1\n", "1\n首都\t0\n", "2\n1 0 0\n0 1 0\n"],
        |b| {
            // Each of the three files in turn gets the fuzzed bytes; the others stay valid.
            let files = ["entity2id.txt", "relation2id.txt", "train2id.txt"];
            let which = b.first().map_or(0, |x| *x as usize % 3);
            for (i, f) in files.iter().enumerate() {
                let valid: &[u8] = match i {
                    0 => "2\n北京\t0\n中国\t1\n".as_bytes(),
                    1 => b"1\n\xe9\xa6\x96\xe9\x83\xbd\t0\n",
                    _ => b"1\n1 0 0\n",
                };
                std::fs::write(kg.join(f), if i == which { b } else { valid }).unwrap();
            }
            let opts = ImportOptions {
                format: Format::Openke,
                ..ImportOptions::default()
            };
            let _ = import::read_files(std::slice::from_ref(&kg), &opts);
        },
    );
}

#[test]
fn fuzz_bmes_bio_and_kbert_tsv() {
    use zhishi::stages::ner::data::{parse_char_per_line, parse_kbert_tsv};
    fuzz(
        "bmes/bio",
        &[
            "高 B-NAME\n勇 E-NAME\n： O\n\n男 O\n",
            "中 B-LOC\n国 I-LOC\n\n",
        ],
        |b| {
            let _ = parse_char_per_line(&String::from_utf8_lossy(b), Path::new("x.bmes"));
        },
    );
    fuzz(
        "kbert tsv",
        &["text_a\tlabel\n头 痛\tB-Symptom I-Symptom\n"],
        |b| {
            let _ = parse_kbert_tsv(&String::from_utf8_lossy(b), Path::new("x.tsv"));
        },
    );
}

#[test]
fn fuzz_doccano_and_label_studio() {
    use zhishi::stages::annotation::{doccano, label_studio, ReadOptions};
    const DOCCANO: &[&str] = &[
        r#"{"text": "🙂姚明出生于上海", "label": [[2, 4, "PER"], [7, 9, "LOC"]]}"#,
        r#"{"text": "姚明出生于上海", "entities": [{"id": 1, "label": "PER", "start_offset": 0, "end_offset": 2}, {"id": 2, "label": "LOC", "start_offset": 5, "end_offset": 7}], "relations": [{"id": 3, "from_id": 1, "to_id": 2, "type": "出生地"}]}"#,
    ];
    fuzz("doccano", DOCCANO, |b| {
        let _ = doccano::parse(
            &String::from_utf8_lossy(b),
            Path::new("x.jsonl"),
            ReadOptions::default(),
        );
    });
    const LABEL_STUDIO: &str = r#"[{"id": 1, "data": {"text": "𠀀姚明在上海"}, "annotations": [{"result": [{"id": "a", "type": "labels", "value": {"start": 1, "end": 3, "text": "姚明", "labels": ["PER"]}}, {"id": "b", "type": "labels", "value": {"start": 4, "end": 6, "labels": ["LOC"]}}, {"type": "relation", "from_id": "a", "to_id": "b", "direction": "bi", "labels": ["在"]}, {"type": "choices", "value": {"choices": ["x"]}}]}]}]"#;
    let options = ReadOptions {
        offsets: None,
        use_predictions: true,
    };
    fuzz("label studio", &[LABEL_STUDIO], |b| {
        let _ = label_studio::parse(&String::from_utf8_lossy(b), Path::new("x.json"), options);
    });
}

#[test]
fn fuzz_squad() {
    const SQUAD: &str = r#"{"version":"v1","data":[{"title":"t","paragraphs":[{"context":"𫚭，俗名龙尖","qas":[{"id":"q1","question":"俗名？","answers":[{"text":"龙尖","answer_start":4}]}]}]}]}"#;
    fuzz("squad", &[SQUAD], |b| {
        let _ = zhishi::stages::qa::data::parse(Path::new("x.json"), &String::from_utf8_lossy(b));
    });
}

#[test]
fn fuzz_duie_and_sanwen() {
    use zhishi::stages::relation::data::{parse_duie, parse_sanwen};
    const DUIE: &str = r#"{"text":"《哈姆雷特》是莎士比亚的作品","spo_list":[{"predicate":"作者","subject":"哈姆雷特","object":{"@value":"莎士比亚"},"subject_type":"图书作品","object_type":{"@value":"人物"}}]}"#;
    fuzz("duie", &[DUIE], |b| {
        let _ = parse_duie(
            &String::from_utf8_lossy(b),
            Path::new("x.json"),
            "无关系",
            3,
        );
    });
    fuzz(
        "sanwen",
        &["她\t母亲\tFamily\t她的母亲在村里\n", "a\tb\tunknown\tab\n"],
        |b| {
            let _ = parse_sanwen(&String::from_utf8_lossy(b), Path::new("x.txt"));
        },
    );
}

#[test]
fn fuzz_pipeline_and_training_toml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kg.tsv"), "a\tb\tc\n").unwrap();
    let toml = dir.path().join("p.toml");
    const PIPELINE: &str = "[pipeline]\nname = \"t\"\nstages = [\"segment\", \"link\", \"facts\"]\nthreads = 2\nbatch_size = 8\n\n[kg]\ntriples = [\"kg.tsv\"]\n\n[link]\nnil_threshold = 0.25\nmax_candidates = 5\n\n[facts]\nper_mention = 2\n";
    const NER: &str = "[task]\nkind = \"ner\"\n\n[encoder]\nmodel = \"m\"\n\n[data]\ntrain = \"t.bmes\"\nformat = \"char_per_line\"\n\n[train]\nepochs = 1\nbatch_size = 8\nlr = 5e-5\n";
    fuzz("pipeline/training toml", &[PIPELINE, NER], |b| {
        let text = String::from_utf8_lossy(b);
        if let Ok(mut loaded) =
            config::from_str::<zhishi::pipeline::PipelineSpec>(&toml, &text, &[])
        {
            let _ = loaded.value.check(&loaded.source);
        }
        let _ = config::from_str::<zhishi::stages::ner::NerConfig>(&toml, &text, &[]);
        let _ = config::from_str::<zhishi::stages::qa::QaConfig>(&toml, &text, &[]);
        let _ = config::from_str::<zhishi::stages::relation::RelationConfig>(&toml, &text, &[]);
        let _ = config::from_str::<zhishi::stages::kbqa::KbqaConfig>(&toml, &text, &[]);
        let _ = config::from_str::<zhishi::pipeline::PipelineSpec>(
            &toml,
            "",
            &[format!("link.x={text}")],
        );
    });
}

#[test]
fn fuzz_jsonl_records() {
    use zhishi::corpus::reader::RecordReader;
    use zhishi::corpus::{InputFormat, ReaderOptions};
    fuzz(
        "jsonl records",
        &[
            "{\"id\": 1, \"text\": \"姚明\", \"q\": \"谁\"}\n\n{\"text\": 42}\nnot json\n",
            "北京\n\u{feff}上海\r\n",
        ],
        |b| {
            for format in [InputFormat::Jsonl, InputFormat::Txt] {
                let opts = ReaderOptions {
                    format,
                    id_field: Some("id".into()),
                    question_field: Some("q".into()),
                    max_record_bytes: 64,
                    ..ReaderOptions::default()
                };
                let mut reader = RecordReader::new(b, opts, 0, 0);
                while let Ok(Some(_)) = reader.next_record() {}
            }
        },
    );
}

#[test]
fn fuzz_http_bodies() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    let pipeline = zhishi::pipeline::Pipeline::from_toml(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.toml"),
    )
    .unwrap();
    let router = zhishi::serve::router(pipeline, zhishi::serve::ServeOptions::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    fuzz(
        "http bodies",
        &[
            "{\"text\": \"《哈姆雷特》是莎士比亚的悲剧。\"}",
            "{\"texts\": [\"北京\", \"上海\"], \"id\": \"1\"}",
        ],
        |b| {
            let request = Request::post("/v1/process")
                .header("content-type", "application/json")
                .body(Body::from(b.to_vec()))
                .unwrap();
            let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
            let status = response.status();
            assert!(
                !status.is_server_error(),
                "{status} for {:?}",
                String::from_utf8_lossy(b)
            );
            let body = runtime
                .block_on(axum::body::to_bytes(response.into_body(), 1 << 24))
                .unwrap();
            assert!(
                serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
                "a {status} answer that is not JSON"
            );
        },
    );
}
