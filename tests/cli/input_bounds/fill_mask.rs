//! `zhishi fill-mask` refuses a checkpoint whose MLM head is incomplete.
use super::*;

#[test]
fn fill_mask_refuses_a_checkpoint_missing_mlm_head_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlm");
    write_masked_lm(&model, "北京市");
    let weights = model.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let gone = "cls.predictions.transform.dense.weight";
    assert!(tensors.remove(gone).is_some());
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let out = zhishi()
        .arg("fill-mask")
        .arg("--model")
        .arg(&model)
        .write_stdin("北京[MASK]\n")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a partial head is refused");
    let err = stderr(&out);
    assert!(err.contains(gone), "names the missing tensor: {err}");
}
