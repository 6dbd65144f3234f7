//! Saved int8 weights: the quantised file loads to the very integers and scales the int8
//! kernel would compute from the f32 model, and malformed files are refused by name.
use candle_nn::VarMap;

use super::*;
use crate::model::bert::int8_tests::{cosine, inputs, tiny_config};
use crate::model::{BertModel, EncoderInput, Kernels};

/// A tiny random BERT saved as `model.safetensors` in a fresh directory, with its config.
fn tiny_model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    BertModel::load(vb, &tiny_config(Kernels::Fast)).unwrap();
    vm.save(dir.path().join("model.safetensors")).unwrap();
    let cfg = tiny_config(Kernels::Fast);
    let config = serde_json::json!({
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "intermediate_size": cfg.intermediate_size,
        "max_position_embeddings": cfg.max_position_embeddings,
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.path().join("vocab.txt"), "[PAD]\n[UNK]\n").unwrap();
    dir
}

fn hidden(dir: &Path, kernels: Kernels) -> Vec<Vec<Vec<f32>>> {
    let model = crate::model::load_bert(dir, &Device::Cpu, DType::F32, kernels).unwrap();
    let (ids, mask, vis) = inputs();
    let input = EncoderInput {
        attention_mask: Some(&mask),
        visible_matrix: Some(&vis),
        ..EncoderInput::new(&ids)
    };
    model.forward(&input).unwrap().to_vec3::<f32>().unwrap()
}

#[test]
fn dense_layer_weights_and_nothing_else_are_quantizable() {
    for name in [
        "encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.11.output.dense.weight",
        "encoder.layer.3.intermediate.dense_ent.weight",
        "encoder.layer.3.attention.self_ent.value.weight",
    ] {
        assert!(is_quantizable(name), "{name}");
    }
    for name in [
        "encoder.layer.0.attention.self.query.bias",
        "encoder.layer.0.output.LayerNorm.weight",
        "embeddings.word_embeddings.weight",
        "classifier.weight",
        "cls.predictions.transform.dense.weight",
        "encoder.layer.x.output.dense.weight",
    ] {
        assert!(!is_quantizable(name), "{name}");
    }
}

#[test]
fn a_quantised_directory_runs_int8_bit_for_bit_and_is_smaller() {
    let src = tiny_model_dir();
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("int8");
    let report = quantize_dir(src.path(), &dst).unwrap();
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.files[0].1.quantized_tensors, 2 * 6);
    assert_eq!(report.copied_files, 2, "config.json and vocab.txt");
    assert!(report.bytes_after < report.bytes_before);
    assert!(is_quantized(&dst.join("model.safetensors")).unwrap());
    assert_eq!(
        hidden(&dst, Kernels::FastInt8),
        hidden(src.path(), Kernels::FastInt8),
        "the saved integers and scales are the ones quantising at load computes"
    );
    // At f32 the quantised copy multiplies the dequantised weights: close to the original.
    let (a, b) = (
        hidden(&dst, Kernels::Fast),
        hidden(src.path(), Kernels::Fast),
    );
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!(cosine(x, y) > 0.99);
    }
    assert_ne!(a, b);
}

#[test]
fn stage_models_mapping_their_weights_get_the_saved_integers_too() {
    let src = tiny_model_dir();
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("int8");
    quantize_dir(src.path(), &dst).unwrap();
    let run = |dir: &Path| {
        let vb = var_builder(&dir.join("model.safetensors"), &Device::Cpu).unwrap();
        let model = BertModel::load(vb, &tiny_config(Kernels::FastInt8)).unwrap();
        let (ids, mask, vis) = inputs();
        let input = EncoderInput {
            attention_mask: Some(&mask),
            visible_matrix: Some(&vis),
            ..EncoderInput::new(&ids)
        };
        model.forward(&input).unwrap().to_vec3::<f32>().unwrap()
    };
    assert_eq!(run(&dst), run(src.path()));
}

#[test]
fn nested_model_directories_are_quantised_at_every_depth() {
    // A KBQA model keeps its encoder in `encoder/`, beside files of its own.
    let src = tempfile::tempdir().unwrap();
    let tiny = tiny_model_dir();
    std::fs::create_dir(src.path().join("encoder")).unwrap();
    for f in ["model.safetensors", "config.json", "vocab.txt"] {
        std::fs::copy(tiny.path().join(f), src.path().join("encoder").join(f)).unwrap();
    }
    std::fs::write(src.path().join("kbqa.json"), "{}").unwrap();
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("int8");
    let report = quantize_dir(src.path(), &dst).unwrap();
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.files[0].0, Path::new("encoder/model.safetensors"));
    assert_eq!(report.copied_files, 3);
    assert!(dst.join("kbqa.json").is_file());
    assert_eq!(
        hidden(&dst.join("encoder"), Kernels::FastInt8),
        hidden(tiny.path(), Kernels::FastInt8)
    );
}

#[test]
fn quantising_twice_or_into_a_full_directory_is_refused_and_leaves_nothing() {
    let src = tiny_model_dir();
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("int8");
    quantize_dir(src.path(), &dst).unwrap();
    let again = out.path().join("again");
    let e = quantize_dir(&dst, &again).unwrap_err().to_string();
    assert!(e.contains("is int8 already"), "{e}");
    assert!(!again.exists());
    let names: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary directory left: {names:?}");
    let e = quantize_dir(src.path(), &dst).unwrap_err().to_string();
    assert!(e.contains("exists and is not empty"), "{e}");
    let plain = tempfile::tempdir().unwrap();
    std::fs::write(plain.path().join("vocab.txt"), "x").unwrap();
    let e = quantize_dir(plain.path(), &out.path().join("none"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing") || e.contains("no safetensors"), "{e}");
}

/// A tensor to write: name, dtype, shape, bytes.
type Raw<'a> = (&'a str, Dtype, Vec<usize>, Vec<u8>);

/// Writes a safetensors file of raw tensors.
fn write(path: &Path, tensors: &[Raw]) {
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()));
    safetensors::serialize_to_file(views, &None, path).unwrap();
}

#[test]
fn malformed_quantised_files_name_the_tensor_and_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let w = "encoder.layer.0.output.dense.weight";
    let s = "encoder.layer.0.output.dense.weight_scale";
    let scale = |v: f32| v.to_le_bytes().repeat(2);
    let cases: Vec<(Vec<Raw>, &str)> = vec![
        (vec![(w, Dtype::I8, vec![2, 2], vec![1; 4])], "is missing"),
        (
            vec![
                (w, Dtype::I8, vec![2, 2], vec![1, 2, 3, 100]),
                (s, Dtype::F32, vec![2], scale(0.1)),
            ],
            "holds 100, outside -63..=63",
        ),
        (
            vec![
                (w, Dtype::I8, vec![2, 2], vec![1; 4]),
                (s, Dtype::F32, vec![2], scale(-1.0)),
            ],
            "scales are > 0",
        ),
        (
            vec![
                (w, Dtype::I8, vec![2, 2], vec![1; 4]),
                (s, Dtype::F32, vec![1], 0.1f32.to_le_bytes().to_vec()),
            ],
            "expected F32 [2]",
        ),
        (
            vec![
                (w, Dtype::I8, vec![4], vec![1; 4]),
                (s, Dtype::F32, vec![2], scale(0.1)),
            ],
            "not a matrix",
        ),
        (
            vec![
                (w, Dtype::F32, vec![1], 0.5f32.to_le_bytes().to_vec()),
                (s, Dtype::F32, vec![2], scale(0.1)),
                ("x", Dtype::I8, vec![1, 1], vec![1]),
                (
                    "x_scale",
                    Dtype::F32,
                    vec![1],
                    0.1f32.to_le_bytes().to_vec(),
                ),
            ],
            "has no int8",
        ),
    ];
    for (tensors, want) in cases {
        write(&path, &tensors);
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains(want), "{e} (wanted {want})");
        assert!(e.contains("w.safetensors"), "{e}");
    }
    std::fs::write(&path, b"\x05\x00\x00\x00\x00\x00\x00\x00{oops").unwrap();
    let e = read(&path).unwrap_err().to_string();
    assert!(e.contains("not a valid safetensors file"), "{e}");
}

#[test]
fn saved_scales_pack_the_saved_integers_exactly() {
    let mut x = 7u64;
    for (out, k) in [(1, 1), (3, 5), (17, 33), (40, 7)] {
        let w: Vec<f32> = (0..out * k)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        let packed = PackedInt8::pack(&w, out);
        let again = PackedInt8::pack_with_scales(&packed.dequantized(), packed.scales());
        assert_eq!(again.unpacked(), packed.unpacked());
        assert_eq!(again.scales(), packed.scales());
    }
}

#[test]
fn an_f32_pytorch_file_beside_the_safetensors_is_not_copied_into_the_int8_directory() {
    let src = tiny_model_dir();
    // A checkpoint that ships both formats (as many Hugging Face repositories do).
    std::fs::write(src.path().join("pytorch_model.bin"), b"f32 weights").unwrap();
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("int8");
    quantize_dir(src.path(), &dst).unwrap();
    assert!(dst.join("model.safetensors").is_file());
    assert!(
        !dst.join("pytorch_model.bin").exists(),
        "a loader preferring .bin would get f32"
    );
    assert!(src.path().join("pytorch_model.bin").is_file());
}
