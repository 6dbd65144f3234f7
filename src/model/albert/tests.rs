//! ALBERT configs, layouts and names.
use super::*;
use crate::model::load::{canonical_name, expected_tensors};

/// `voidful/albert_chinese_tiny`'s `config.json` shape (values as published; no weights).
const TINY_CHINESE: &str = r#"{"attention_probs_dropout_prob":0.0,"directionality":"bidi",
    "embedding_size":128,"hidden_act":"gelu","hidden_dropout_prob":0.0,"hidden_size":312,
    "initializer_range":0.02,"intermediate_size":1248,"max_position_embeddings":512,
    "model_type":"albert","num_attention_heads":12,"num_hidden_layers":4,
    "num_hidden_groups":1,"inner_group_num":1,"type_vocab_size":2,"vocab_size":21128}"#;

#[test]
fn an_albert_config_becomes_a_bert_config_with_its_layout() {
    assert!(is_albert(TINY_CHINESE).unwrap());
    let cfg = AlbertConfig::parse(TINY_CHINESE).unwrap();
    assert_eq!(cfg.validate(), Ok(()));
    assert_eq!((cfg.hidden_size, cfg.num_hidden_layers), (312, 4));
    assert_eq!(cfg.hidden_act, HiddenAct::Gelu);
    assert_eq!(
        cfg.albert,
        Some(AlbertLayout {
            embedding_size: 128,
            num_hidden_groups: 1
        })
    );
    assert_eq!(cfg.embedding_size(), 128);
    assert_eq!(cfg.distinct_layers(), 1);
    assert_eq!(cfg.layer_schedule(), [0, 0, 0, 0]);
}

#[test]
fn missing_keys_take_albert_config_defaults() {
    let cfg = AlbertConfig::parse(r#"{"model_type":"albert","hidden_size":64}"#).unwrap();
    assert_eq!(cfg.hidden_act, HiddenAct::GeluNew);
    assert_eq!(cfg.embedding_size(), 128);
    assert_eq!(cfg.vocab_size, 30000);
    assert_eq!(cfg.distinct_layers(), 1);
    let pytorch_tanh =
        AlbertConfig::parse(r#"{"hidden_act":"gelu_pytorch_tanh","hidden_size":64}"#).unwrap();
    assert_eq!(pytorch_tanh.hidden_act, HiddenAct::GeluNew);
}

#[test]
fn other_model_types_are_not_albert() {
    assert!(!is_albert(r#"{"model_type":"bert","embedding_size":8}"#).unwrap());
    assert!(!is_albert(r#"{"hidden_size":8}"#).unwrap());
    assert!(is_albert("[1]").is_err());
}

#[test]
fn groups_must_divide_the_depth_and_inner_groups_be_one() {
    let with = |extra: &str| {
        AlbertConfig::parse(&format!(
            r#"{{"hidden_size":32,"num_attention_heads":2,"num_hidden_layers":4{extra}}}"#
        ))
        .and_then(|c| c.validate().map(|_| c))
    };
    assert_eq!(
        with(r#","num_hidden_groups":2"#).unwrap().layer_schedule(),
        [0, 0, 1, 1]
    );
    assert_eq!(
        with(r#","num_hidden_groups":4"#).unwrap().layer_schedule(),
        [0, 1, 2, 3]
    );
    for groups in [0, 3, 5] {
        let e = with(&format!(r#","num_hidden_groups":{groups}"#)).unwrap_err();
        assert!(
            e.contains(&format!("num_hidden_groups {groups} is not supported"))
                && e.contains("divides"),
            "{e}"
        );
    }
    let e = with(r#","inner_group_num":2"#).unwrap_err();
    assert!(e.contains("inner_group_num 2 is not supported"), "{e}");
    let e = with(r#","embedding_size":0"#).unwrap_err();
    assert!(e.contains("embedding_size"), "{e}");
}

#[test]
fn albert_names_map_onto_bert_names() {
    let g = "albert.encoder.albert_layer_groups.1.albert_layers.0";
    for (albert, bert) in [
        (
            format!("{g}.attention.query.weight"),
            "encoder.layer.1.attention.self.query.weight",
        ),
        (
            format!("{g}.attention.key.bias"),
            "encoder.layer.1.attention.self.key.bias",
        ),
        (
            format!("{g}.attention.value.weight_scale"),
            "encoder.layer.1.attention.self.value.weight_scale",
        ),
        (
            format!("{g}.attention.dense.weight"),
            "encoder.layer.1.attention.output.dense.weight",
        ),
        (
            format!("{g}.attention.LayerNorm.gamma"),
            "encoder.layer.1.attention.output.LayerNorm.weight",
        ),
        (
            format!("{g}.ffn.weight"),
            "encoder.layer.1.intermediate.dense.weight",
        ),
        (
            format!("{g}.ffn_output.bias"),
            "encoder.layer.1.output.dense.bias",
        ),
        (
            format!("{g}.full_layer_layer_norm.beta"),
            "encoder.layer.1.output.LayerNorm.bias",
        ),
        (
            "albert.embeddings.word_embeddings.weight".into(),
            "embeddings.word_embeddings.weight",
        ),
        (
            "encoder.embedding_hidden_mapping_in.weight".into(),
            "encoder.embedding_hidden_mapping_in.weight",
        ),
        (
            "predictions.dense.weight".into(),
            "cls.predictions.transform.dense.weight",
        ),
        (
            "predictions.LayerNorm.bias".into(),
            "cls.predictions.transform.LayerNorm.bias",
        ),
        ("predictions.bias".into(), "cls.predictions.bias"),
        (
            "predictions.decoder.bias".into(),
            "cls.predictions.decoder.bias",
        ),
    ] {
        assert_eq!(canonical_name(&albert), bert, "{albert}");
    }
    // A second layer inside a group is not renamed (configs with one are refused), nor is
    // any BERT name.
    let inner = "encoder.albert_layer_groups.0.albert_layers.1.ffn.weight";
    assert_eq!(bert_name(inner), inner);
    for bert in [
        "encoder.layer.0.attention.self.query.weight",
        "cls.predictions.transform.dense.weight",
        "embeddings.LayerNorm.weight",
    ] {
        assert_eq!(bert_name(bert), bert);
    }
}

#[test]
fn an_albert_expects_its_narrow_tables_the_projection_and_one_layer_per_group() {
    let cfg = AlbertConfig::parse(
        r#"{"embedding_size":8,"hidden_size":16,"num_attention_heads":2,
            "intermediate_size":32,"num_hidden_layers":6,"num_hidden_groups":2,
            "vocab_size":40,"max_position_embeddings":24}"#,
    )
    .unwrap();
    let expected = expected_tensors(&cfg).unwrap();
    assert_eq!(expected.len(), 5 + 2 + 2 * 16);
    let shape = |name: &str| {
        expected
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("{name} not expected"))
    };
    assert_eq!(shape("embeddings.word_embeddings.weight"), [40, 8]);
    assert_eq!(shape("embeddings.position_embeddings.weight"), [24, 8]);
    assert_eq!(shape("embeddings.LayerNorm.weight"), [8]);
    assert_eq!(shape("encoder.embedding_hidden_mapping_in.weight"), [16, 8]);
    assert_eq!(shape("encoder.layer.1.intermediate.dense.weight"), [32, 16]);
    assert!(!expected
        .iter()
        .any(|(n, _)| n.starts_with("encoder.layer.2.")));
}
