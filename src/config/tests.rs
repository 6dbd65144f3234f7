//! Tests of configuration loading: schemas, errors with file/line/key, `${VAR}`, overrides.
use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Schema {
    encoder: Encoder,
    #[serde(default)]
    stage: Vec<Stage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Encoder {
    model: String,
    #[serde(default)]
    layers: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stage {
    kind: String,
    #[serde(default)]
    top_k: usize,
}

const TEXT: &str = "[encoder]\nmodel = \"m3e\"\nlayers = 4\n\n[[stage]]\nkind = \"segment\"\n\n[[stage]]\nkind = \"link\"\ntop_k = 3\n";

fn parse(text: &str, overrides: &[&str]) -> Result<Loaded<Schema>, ConfigError> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    from_str(Path::new("conf/p.toml"), text, &overrides)
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = TEXT.replace("top_k = 3", "top_k = 3\ntopk = 4");
    let err = parse(&text, &[]).unwrap_err().to_string();
    assert!(
        err.starts_with("conf/p.toml:11: key `stage[1].topk`"),
        "{err}"
    );
    assert!(
        err.contains("unknown field `topk`, expected `kind` or `top_k`"),
        "{err}"
    );
}

#[test]
fn wrong_type_names_line_key_and_expected_type() {
    let text = TEXT.replace("layers = 4", "layers = \"four\"");
    let err = parse(&text, &[]).unwrap_err().to_string();
    assert!(
        err.starts_with("conf/p.toml:3: key `encoder.layers`"),
        "{err}"
    );
    assert!(err.contains("expected usize"), "{err}");
}

#[test]
fn missing_key_is_reported_with_its_table() {
    let text = TEXT.replace("model = \"m3e\"\n", "");
    let err = parse(&text, &[]).unwrap_err().to_string();
    assert!(err.contains("missing field `model`"), "{err}");
    assert!(err.starts_with("conf/p.toml:"), "{err}");
}

#[test]
fn syntax_errors_give_the_line() {
    let err = parse("[encoder]\nmodel = \n", &[]).unwrap_err().to_string();
    assert!(err.starts_with("conf/p.toml:2: invalid TOML"), "{err}");
}

#[test]
fn overrides_set_nested_and_array_of_table_keys() {
    let loaded = parse(
        TEXT,
        &[
            "encoder.model=/models/m3e-small",
            "stage[1].top_k=7",
            "encoder.layers=2",
        ],
    )
    .unwrap();
    assert_eq!(loaded.value.encoder.model, "/models/m3e-small");
    assert_eq!(loaded.value.encoder.layers, 2);
    assert_eq!(loaded.value.stage[1].kind, "link");
    assert_eq!(loaded.value.stage[1].top_k, 7);
    let err = parse(TEXT, &["stage[5].top_k=1"]).unwrap_err().to_string();
    assert!(err.contains("`stage` has 2 entries, no [5]"), "{err}");
    let err = parse(TEXT, &["encoder.model"]).unwrap_err().to_string();
    assert!(err.contains("expected dotted.key=value"), "{err}");
}

#[test]
fn an_error_in_an_overridden_value_names_the_set_not_a_line() {
    // A new key lands in the rewritten document at a line the file does not have.
    let err = parse(TEXT, &["stage[0].top_k=many"])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "conf/p.toml: key `stage[0].top_k` (--set stage[0].top_k=many): invalid type: \
             string \"many\""
        ),
        "{err}"
    );
    // A key the overrides did not touch keeps its line in the file.
    let text = TEXT.replace("layers = 4", "layers = \"four\"");
    let err = parse(&text, &["stage[1].top_k=2"]).unwrap_err().to_string();
    assert!(
        err.starts_with("conf/p.toml:3: key `encoder.layers`"),
        "{err}"
    );
    // Later checks through `ConfigSource::error` name the override too.
    let loaded = parse(TEXT, &["encoder.layers=0"]).unwrap();
    let err = loaded.source.error("encoder.layers", "must be at least 1");
    assert_eq!(
        err.to_string(),
        "conf/p.toml: key `encoder.layers` (--set encoder.layers=0): must be at least 1"
    );
    assert_eq!(loaded.source.line_of("stage[1].top_k"), Some(10));
}

#[test]
fn counts_outside_their_range_name_the_range() {
    #[derive(Debug, Deserialize)]
    struct Counts {
        #[serde(deserialize_with = "range::count::<1, 8, _>")]
        n: usize,
        #[serde(default, deserialize_with = "range::opt_count::<1, { usize::MAX }, _>")]
        m: Option<usize>,
    }
    let read = |text: &str| from_str::<Counts>(Path::new("c.toml"), text, &[]);
    let counts = read("n = 8\nm = 3\n").unwrap().value;
    assert_eq!((counts.n, counts.m), (8, Some(3)));
    let err = read("n = 0\n").unwrap_err().to_string();
    assert_eq!(err, "c.toml:1: key `n`: 0 is out of range; expected 1 to 8");
    let err = read("n = 2\nm = 0\n").unwrap_err().to_string();
    assert!(
        err.ends_with("0 is out of range; expected 1 or more"),
        "{err}"
    );
}

#[test]
fn environment_variables_expand_in_strings() {
    std::env::set_var("ZHISHI_CONFIG_TEST_DIR", "/data/models");
    let text = TEXT.replace("\"m3e\"", "\"${ZHISHI_CONFIG_TEST_DIR}/m3e-small $$5\"");
    let loaded = parse(&text, &[]).unwrap();
    assert_eq!(loaded.value.encoder.model, "/data/models/m3e-small $5");
    let text = TEXT.replace("\"m3e\"", "\"${ZHISHI_CONFIG_TEST_UNSET}\"");
    let err = parse(&text, &[]).unwrap_err().to_string();
    assert!(
        err.starts_with("conf/p.toml:2: key `encoder.model`"),
        "{err}"
    );
    assert!(err.contains("ZHISHI_CONFIG_TEST_UNSET"), "{err}");
    // Overriding the key that holds the unset variable replaces it before expansion.
    let loaded = parse(&text, &["encoder.model=/models/m3e"]).unwrap();
    assert_eq!(loaded.value.encoder.model, "/models/m3e");
}

#[test]
fn a_default_stands_in_for_an_unset_or_empty_variable() {
    let with = |value: &str| TEXT.replace("\"m3e\"", &format!("\"{value}\""));
    let model = |text: &str| parse(text, &[]).unwrap().value.encoder.model;
    std::env::remove_var("ZHISHI_CONFIG_TEST_ROOT_UNSET");
    let text = with("${ZHISHI_CONFIG_TEST_ROOT_UNSET:-../data}/ner/x.tsv");
    assert_eq!(model(&text), "../data/ner/x.tsv");
    std::env::set_var("ZHISHI_CONFIG_TEST_ROOT_EMPTY", "");
    let text = with("${ZHISHI_CONFIG_TEST_ROOT_EMPTY:-../data}/x");
    assert_eq!(model(&text), "../data/x");
    std::env::set_var("ZHISHI_CONFIG_TEST_ROOT_SET", "/srv/data");
    let text = with("${ZHISHI_CONFIG_TEST_ROOT_SET:-../data}/x");
    assert_eq!(model(&text), "/srv/data/x");
}

#[test]
fn line_of_finds_keys_in_arrays_of_tables_and_paths_resolve_next_to_the_file() {
    let loaded = parse(TEXT, &[]).unwrap();
    assert_eq!(loaded.source.line_of("encoder.layers"), Some(3));
    assert_eq!(loaded.source.line_of("stage[1].top_k"), Some(10));
    assert_eq!(loaded.source.line_of("stage[1]"), Some(8));
    assert_eq!(loaded.source.line_of("nope"), None);
    assert_eq!(
        loaded.source.resolve(Path::new("kg/demo.tsv")),
        Path::new("conf/kg/demo.tsv")
    );
    assert_eq!(loaded.source.resolve(Path::new("/abs")), Path::new("/abs"));
}

#[test]
fn a_file_in_the_current_folder_resolves_against_dot() {
    let loaded = from_str::<Schema>(Path::new("p.toml"), TEXT, &[]).unwrap();
    let err = loaded
        .source
        .existing_path("encoder.model", Path::new("nope"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("(relative paths resolve against .)"), "{err}");
}
