//! Training needs gradients through the whole encoder: with `Kernels::Differentiable` they
//! reach the word embeddings; the fused inference kernels stop them (which is why the switch
//! exists).
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use zhishi::model::{BertConfig, BertModel, EncoderInput, Kernels};

fn tiny(kernels: Kernels) -> BertConfig {
    BertConfig {
        vocab_size: 20,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 32,
        max_position_embeddings: 12,
        kernels,
        ..BertConfig::default()
    }
}

/// Gradient of `sum(h²)` w.r.t. the word-embedding table, if any reaches it.
fn word_embedding_grad(kernels: Kernels) -> Option<Tensor> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let model = BertModel::load(vb, &tiny(kernels)).unwrap();
    let ids = Tensor::new(&[[2u32, 5, 7, 3], [2, 9, 3, 0]], &dev).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1], [1, 1, 1, 0]], &dev).unwrap();
    let vis = Tensor::ones((2, 4, 4), DType::U32, &dev).unwrap();
    let input = EncoderInput {
        attention_mask: Some(&mask),
        visible_matrix: Some(&vis),
        ..EncoderInput::new(&ids)
    };
    let h = model.forward(&input).unwrap();
    let grads = h.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let table = varmap
        .data()
        .lock()
        .unwrap()
        .get("embeddings.word_embeddings.weight")
        .map(Var::as_tensor)
        .cloned()
        .unwrap();
    grads.get(&table).cloned()
}

#[test]
fn gradients_reach_the_word_embeddings_of_the_tokens_used() {
    let g = word_embedding_grad(Kernels::Differentiable).expect("no gradient");
    let row_norms: Vec<f32> = g.sqr().unwrap().sum(1).unwrap().to_vec1().unwrap();
    for used in [2, 3, 5, 7, 9] {
        assert!(row_norms[used] > 0.0, "token {used} got no gradient");
    }
    // Token 0 only pads the second example's last position; token 11 never occurs.
    assert_eq!(row_norms[11], 0.0);
}

#[test]
fn fused_kernels_do_not_propagate_gradients() {
    assert!(word_embedding_grad(Kernels::Fast).is_none());
}
