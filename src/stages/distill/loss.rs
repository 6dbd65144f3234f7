//! The distillation losses, each a candle expression with a gradient path to the student
//! only (the teacher's tensors are detached): the soft-label loss of Hinton et al. (2015)
//! over per-character tag distributions, and TinyBERT's (Jiao et al., 2020) hidden-state
//! and attention-score MSE over real tokens.
use candle_core::{DType, Result, Tensor, D};
use candle_nn::ops::log_softmax;

use crate::model::bert::MASK_BIAS;

/// `KL(teacher_T ‖ student_T) · T²`, averaged over rows: `student` and `teacher` are
/// emission scores `[N, K]` of the same characters, softened by temperature `t`. Zero for
/// no rows.
pub fn soft_label_loss(student: &Tensor, teacher: &Tensor, t: f64) -> Result<Tensor> {
    let n = student.dim(0)?;
    if n == 0 {
        return student.sum_all()?.affine(0.0, 0.0);
    }
    let teacher_log = log_softmax(&teacher.detach().affine(1.0 / t, 0.0)?, D::Minus1)?;
    let student_log = log_softmax(&student.affine(1.0 / t, 0.0)?, D::Minus1)?;
    let kl = teacher_log
        .exp()?
        .mul(&teacher_log.sub(&student_log)?)?
        .sum_all()?;
    kl.affine(t * t / n as f64, 0.0)
}

/// The multi-label form of [`soft_label_loss`]: each label is a yes/no of its own, so the
/// KL is between the teacher's and the student's Bernoulli distributions `sigmoid(x / t)`,
/// summed over labels, averaged over rows and scaled by `T²`. `student` and `teacher` are
/// logits `[N, K]`. Zero for no rows.
pub fn soft_sigmoid_loss(student: &Tensor, teacher: &Tensor, t: f64) -> Result<Tensor> {
    let n = student.dim(0)?;
    if n == 0 {
        return student.sum_all()?.affine(0.0, 0.0);
    }
    // log sigmoid(x) = -softplus(-x), log(1 - sigmoid(x)) = -softplus(x).
    let softplus =
        |x: &Tensor| -> Result<Tensor> { x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()? };
    let teacher = teacher.detach().affine(1.0 / t, 0.0)?;
    let student = student.affine(1.0 / t, 0.0)?;
    let (t_yes, t_no) = (
        softplus(&teacher.neg()?)?.neg()?,
        softplus(&teacher)?.neg()?,
    );
    let (s_yes, s_no) = (
        softplus(&student.neg()?)?.neg()?,
        softplus(&student)?.neg()?,
    );
    let yes = t_yes.exp()?.mul(&t_yes.sub(&s_yes)?)?;
    let no = t_no.exp()?.mul(&t_no.sub(&s_no)?)?;
    (yes + no)?.sum_all()?.affine(t * t / n as f64, 0.0)
}

/// Mean squared difference of two layers' hidden states `[B, L, H]` over the real tokens
/// (`mask [B, L]`, 1 = real), averaged over the hidden width.
pub fn hidden_mse(student: &Tensor, teacher: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?;
    let per_token = student.sub(&teacher.detach())?.sqr()?.mean(D::Minus1)?;
    let real = mask.sum_all()?.to_scalar::<f32>()?.max(1.0);
    per_token
        .mul(&mask)?
        .sum_all()?
        .affine(1.0 / real as f64, 0.0)
}

/// Mean squared difference of two layers' attention scores `[B, heads, L, L]` over the
/// entries a real query may attend (`bias [B, R, L]` is the batch's additive attention
/// bias, `mask [B, L]` its real tokens): masked entries are left out, as TinyBERT zeroes
/// them.
pub fn attention_mse(
    student: &Tensor,
    teacher: &Tensor,
    bias: &Tensor,
    mask: &Tensor,
) -> Result<Tensor> {
    let (b, heads, l, _) = student.dims4()?;
    // 1 where the bias is 0 (visible), 0 where it is MASK_BIAS (or a sum of them).
    let visible = bias
        .to_dtype(DType::F32)?
        .ge(MASK_BIAS / 2.0)?
        .to_dtype(DType::F32)?
        .broadcast_as((b, l, l))?;
    let queries = mask.to_dtype(DType::F32)?.reshape((b, l, 1))?;
    let weight = visible.broadcast_mul(&queries)?.unsqueeze(1)?;
    let count = weight.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64 * heads as f64;
    student
        .sub(&teacher.detach())?
        .sqr()?
        .broadcast_mul(&weight)?
        .sum_all()?
        .affine(1.0 / count, 0.0)
}

/// TinyBERT's intermediate losses of a traced batch: `hidden` times the hidden-state MSE and
/// `attention` times the attention-score MSE between student layer `i` and teacher layer
/// `layers[i]`, each averaged over the student's layers (`mask [B, L]`: real tokens). Zero
/// weights skip their term; `None` when both are zero.
pub fn layer_losses(
    student: &crate::model::Trace,
    teacher: &crate::model::Trace,
    layers: &[usize],
    (hidden, attention): (f64, f64),
    mask: &Tensor,
) -> Result<Option<Tensor>> {
    let k = layers.len() as f64;
    let mut total: Option<Tensor> = None;
    let mut add = |term: Tensor| -> Result<()> {
        total = Some(match total.take() {
            Some(t) => (t + term)?,
            None => term,
        });
        Ok(())
    };
    for (i, &t) in layers.iter().enumerate() {
        if hidden > 0.0 {
            let mse = hidden_mse(&student.hidden[i], &teacher.hidden[t], mask)?;
            add(mse.affine(hidden / k, 0.0)?)?;
        }
        if attention > 0.0 {
            let mse = attention_mse(
                &student.scores[i],
                &teacher.scores[t],
                student.bias.tensor(),
                mask,
            )?;
            add(mse.affine(attention / k, 0.0)?)?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    fn scalar(t: &Tensor) -> f32 {
        t.to_scalar::<f32>().unwrap()
    }

    #[test]
    fn the_multi_label_soft_loss_is_the_bernoulli_kl_per_label() {
        let dev = Device::Cpu;
        let s = Tensor::new(&[[1.0f32, -2.0], [0.5, 0.0]], &dev).unwrap();
        let t = Tensor::new(&[[2.0f32, -1.0], [-0.5, 3.0]], &dev).unwrap();
        let temp = 2.0f32;
        let sig = |x: f32| 1.0 / (1.0 + (-x / temp).exp());
        let kl = |p: f32, q: f32| p * (p / q).ln() + (1.0 - p) * ((1.0 - p) / (1.0 - q)).ln();
        let pairs = [(1.0, 2.0), (-2.0, -1.0), (0.5, -0.5), (0.0, 3.0)];
        let want: f32 =
            pairs.iter().map(|&(s, t)| kl(sig(t), sig(s))).sum::<f32>() / 2.0 * temp * temp;
        let got = scalar(&soft_sigmoid_loss(&s, &t, temp as f64).unwrap());
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        assert!(scalar(&soft_sigmoid_loss(&t, &t, 2.0).unwrap()).abs() < 1e-6);
    }

    #[test]
    fn the_soft_label_loss_is_the_temperature_scaled_kl() {
        let dev = Device::Cpu;
        let s = Tensor::new(&[[1.0f32, 0.0], [0.0, 0.0]], &dev).unwrap();
        let t = Tensor::new(&[[0.0f32, 1.0], [0.0, 0.0]], &dev).unwrap();
        // Row 1: p = softmax([0, 0.5]), q = softmax([0.5, 0]) at T = 2; row 2 is equal.
        let p = [
            1.0 / (1.0 + 0.5f64.exp()),
            0.5f64.exp() / (1.0 + 0.5f64.exp()),
        ];
        let kl = p[0] * (p[0] / p[1]).ln() + p[1] * (p[1] / p[0]).ln();
        let got = scalar(&soft_label_loss(&s, &t, 2.0).unwrap());
        assert!((got as f64 - kl * 4.0 / 2.0).abs() < 1e-5, "{got} vs {kl}");
        assert!(scalar(&soft_label_loss(&t, &t, 2.0).unwrap()).abs() < 1e-6);
    }

    #[test]
    fn the_mse_losses_skip_padding_and_masked_entries() {
        let dev = Device::Cpu;
        let s = Tensor::new(&[[[1.0f32, 1.0], [5.0, 5.0]]], &dev).unwrap();
        let t = Tensor::zeros((1, 2, 2), DType::F32, &dev).unwrap();
        let mask = Tensor::new(&[[1u32, 0]], &dev).unwrap();
        assert_eq!(scalar(&hidden_mse(&s, &t, &mask).unwrap()), 1.0);
        // One head, L = 2: query 0 sees key 0 only (key 1 is padding).
        let scores = Tensor::new(&[[[[2.0f32, 9.0], [9.0, 9.0]]]], &dev).unwrap();
        let zero = scores.zeros_like().unwrap();
        let bias = Tensor::new(&[[[0.0f32, MASK_BIAS as f32]]], &dev).unwrap();
        let got = scalar(&attention_mse(&scores, &zero, &bias, &mask).unwrap());
        assert_eq!(got, 4.0);
    }

    /// A random BERT of `layers` layers with differentiable kernels, and its variables.
    fn bert(layers: usize, seed: u64) -> (crate::model::BertModel, candle_nn::VarMap) {
        let cfg = crate::model::BertConfig {
            vocab_size: 12,
            hidden_size: 8,
            num_hidden_layers: layers,
            num_attention_heads: 2,
            intermediate_size: 16,
            max_position_embeddings: 16,
            kernels: crate::model::Kernels::Differentiable,
            ..Default::default()
        };
        let varmap = candle_nn::VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = crate::model::BertModel::load(vb, &cfg).unwrap();
        let mut rng = crate::model::Rng::new(seed);
        for var in varmap.all_vars() {
            let values: Vec<f32> = (0..var.elem_count()).map(|_| 0.3 * rng.normal()).collect();
            var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
        }
        (model, varmap)
    }

    #[test]
    fn the_hidden_and_attention_losses_reach_every_student_parameter() {
        let (teacher, _) = bert(2, 1);
        let (student, varmap) = bert(1, 2);
        let ids = Tensor::new(&[[2u32, 5, 6, 7, 3], [2, 8, 9, 3, 0]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 1, 0]], &Device::Cpu).unwrap();
        let input = crate::model::EncoderInput {
            attention_mask: Some(&mask),
            ..crate::model::EncoderInput::new(&ids)
        };
        let off = crate::model::Dropout::disabled();
        let t = teacher.forward_traced(&input, &off).unwrap();
        let s = student
            .forward_traced(&input, &crate::model::Dropout::new(0.1, 3))
            .unwrap();
        let attention = attention_mse(&s.scores[0], &t.scores[1], s.bias.tensor(), &mask).unwrap();
        let loss = (hidden_mse(&s.hidden[0], &t.hidden[1], &mask).unwrap() + &attention).unwrap();
        let missing = |loss: &Tensor| -> Vec<String> {
            let grads = loss.backward().unwrap();
            let vars = varmap.data().lock().unwrap().clone();
            let mut out: Vec<String> = vars
                .iter()
                .filter(|(_, v)| {
                    grads
                        .get(v.as_tensor())
                        .is_none_or(|g| scalar(&g.abs().unwrap().sum_all().unwrap()) == 0.0)
                })
                .map(|(n, _)| n.clone())
                .collect();
            out.sort();
            out
        };
        assert_eq!(missing(&loss), Vec::<String>::new());
        // The attention loss alone reaches the query and key projections.
        let unreached = missing(&attention);
        assert!(
            !unreached
                .iter()
                .any(|n| n.contains("query") || n.contains("key")),
            "{unreached:?}"
        );
    }
}
