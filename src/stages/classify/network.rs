//! The classifier: the encoder ([`Encoder`]: BERT, with or without K-BERT inputs, or ERNIE-THU
//! with a fixed entity table), a pooled vector per example (`[CLS]` through the pooler's
//! dense layer and tanh, or the mean of the tokens), dropout, and a linear layer. Parameter names are the
//! encoder checkpoint's (`embeddings.*`, `encoder.*`, `pooler.dense.*`, ERNIE's `*_ent.*`) plus
//! `classifier.*`, as transformers' `BertForSequenceClassification` names them.
use candle_core::{DType, Result, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

use super::config::Pooling;
use super::features::Batch;
use crate::model::{BertConfig, Dropout, Encoder, EntityTable};

/// Encoder + pooling + linear classifier.
#[derive(Debug, Clone)]
pub struct ClassifyNetwork {
    encoder: Encoder,
    pooler: Option<Linear>,
    classifier: Linear,
    multi_label: bool,
    freeze_encoder: bool,
}

/// How the loss weighs examples.
#[derive(Debug, Clone, Default)]
pub struct LossWeights {
    /// Single-label: the weight of each class (`[K]`); multi-label: the weight of each label's
    /// positives (`[K]`, negatives weigh 1).
    pub classes: Option<Tensor>,
}

impl ClassifyNetwork {
    /// Loads (or, from a `VarMap`, creates) every parameter: the encoder at the root (ERNIE-THU
    /// with `entities`), `pooler.dense.*` with [`Pooling::Pooler`], `classifier.*`
    /// (`[labels, hidden]`).
    pub fn load(
        vb: VarBuilder,
        cfg: &BertConfig,
        labels: usize,
        pooling: Pooling,
        multi_label: bool,
        entities: Option<EntityTable>,
    ) -> Result<Self> {
        let encoder = Encoder::load(vb.clone(), cfg, entities)?;
        let h = cfg.hidden_size;
        let pooler = match pooling {
            Pooling::Pooler => Some(candle_nn::linear(h, h, vb.pp("pooler").pp("dense"))?),
            Pooling::Mean => None,
        };
        let classifier = candle_nn::linear(h, labels, vb.pp("classifier"))?;
        Ok(Self {
            encoder,
            pooler,
            classifier,
            multi_label,
            freeze_encoder: false,
        })
    }

    /// Stops gradients at the encoder output (a frozen encoder trains only the head).
    pub fn freeze_encoder(mut self, freeze: bool) -> Self {
        self.freeze_encoder = freeze;
        self
    }

    /// Whether each label is a yes/no of its own (sigmoid) rather than one of all (softmax).
    pub fn multi_label(&self) -> bool {
        self.multi_label
    }

    /// The encoder under the head.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// `[N, K]` label scores (logits) of a batch.
    pub fn logits(&self, batch: &Batch, dropout: &Dropout) -> Result<Tensor> {
        let hidden = self.encoder.forward_train(&batch.input, dropout)?;
        self.head(&hidden, batch, dropout)
    }

    /// `[N, K]` label scores from the encoder's output `hidden` (`[rows, L, H]`) of a batch:
    /// pooling, dropout and the linear layer.
    pub fn head(&self, hidden: &Tensor, batch: &Batch, dropout: &Dropout) -> Result<Tensor> {
        let hidden = if self.freeze_encoder {
            hidden.detach()
        } else {
            hidden.clone()
        };
        let (rows, l, h) = hidden.dims3()?;
        let flat = hidden.reshape((rows * l, h))?;
        let pooled = match &self.pooler {
            Some(dense) => dense
                .forward(&flat.index_select(&batch.cls_index, 0)?)?
                .tanh()?,
            None => batch.mean_weights.matmul(&flat)?,
        };
        self.classifier.forward(&dropout.forward(&pooled)?)
    }

    /// The training loss of a batch: weighted cross-entropy (single label) or weighted
    /// binary cross-entropy over every label (multi-label), each averaged as PyTorch does.
    pub fn loss(&self, batch: &Batch, dropout: &Dropout, weights: &LossWeights) -> Result<Tensor> {
        let logits = self.logits(batch, dropout)?;
        self.logits_loss(&logits, &batch.labels, weights)
    }

    /// The training loss of `logits` (`[N, K]`) against each row's gold label ids.
    pub fn logits_loss(
        &self,
        logits: &Tensor,
        labels: &[Vec<u32>],
        weights: &LossWeights,
    ) -> Result<Tensor> {
        if self.multi_label {
            multi_label_loss(logits, labels, weights.classes.as_ref())
        } else {
            single_label_loss(logits, labels, weights.classes.as_ref())
        }
    }
}

/// Mean cross-entropy; with class weights, `Σ w_y · nll / Σ w_y`.
fn single_label_loss(
    logits: &Tensor,
    labels: &[Vec<u32>],
    classes: Option<&Tensor>,
) -> Result<Tensor> {
    let gold: Vec<u32> = labels
        .iter()
        .map(|l| l.first().copied().unwrap_or(0))
        .collect();
    let n = gold.len();
    let gold = Tensor::from_vec(gold, n, logits.device())?;
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let nll = log_p.gather(&gold.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
    match classes {
        None => nll.mean_all(),
        Some(w) => {
            let w = w.index_select(&gold, 0)?;
            (nll * &w)?.sum_all()?.broadcast_div(&w.sum_all()?)
        }
    }
}

/// Mean binary cross-entropy with logits, `max(x, 0) - x·y + log(1 + e^-|x|)` per cell;
/// positives of label `k` weigh `pos[k]`.
fn multi_label_loss(logits: &Tensor, labels: &[Vec<u32>], pos: Option<&Tensor>) -> Result<Tensor> {
    let (n, k) = logits.dims2()?;
    let mut targets = vec![0f32; n * k];
    for (i, row) in labels.iter().enumerate() {
        for &l in row {
            if let Some(cell) = targets.get_mut(i * k + l as usize) {
                *cell = 1.0;
            }
        }
    }
    let y = Tensor::from_vec(targets, (n, k), logits.device())?;
    let soft = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    match pos {
        None => ((logits.relu()? - (logits * &y)?)? + soft)?.mean_all(),
        Some(pos) => {
            // PyTorch's pos_weight: l = (1 - y)·x + (1 + (p - 1)·y)·(log(1 + e^-|x|) + max(-x, 0)).
            let p = pos.to_dtype(DType::F32)?.unsqueeze(0)?;
            let scale = ((y.broadcast_mul(&(p - 1.0)?))? + 1.0)?;
            let term = (soft + logits.neg()?.relu()?)?;
            let one_minus = (y.neg()? + 1.0)?;
            ((one_minus * logits)? + (scale * term)?)?.mean_all()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32], shape: (usize, usize)) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn single_label_loss_matches_cross_entropy_and_its_weighted_form() {
        let logits = t(&[2.0, 0.0, -1.0, 0.5, 0.5, 3.0], (2, 3));
        let labels = vec![vec![0], vec![2]];
        let plain = single_label_loss(&logits, &labels, None).unwrap();
        let gold = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
        let want = candle_nn::loss::cross_entropy(&logits, &gold).unwrap();
        let (a, b) = (
            plain.to_scalar::<f32>().unwrap(),
            want.to_scalar::<f32>().unwrap(),
        );
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        // Weights 1 and 3: (1·nll0 + 3·nll1) / 4.
        let w = Tensor::new(&[1f32, 1.0, 3.0], &Device::Cpu).unwrap();
        let weighted = single_label_loss(&logits, &labels, Some(&w))
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let nll = |row: [f32; 3], y: usize| {
            let m = row.iter().cloned().fold(f32::MIN, f32::max);
            let z: f32 = row.iter().map(|x| (x - m).exp()).sum();
            -(row[y] - m - z.ln())
        };
        let want = (nll([2.0, 0.0, -1.0], 0) + 3.0 * nll([0.5, 0.5, 3.0], 2)) / 4.0;
        assert!((weighted - want).abs() < 1e-5, "{weighted} vs {want}");
    }

    #[test]
    fn multi_label_loss_is_binary_cross_entropy_with_logits() {
        let logits = t(&[1.0, -2.0, 0.0, 3.0], (2, 2));
        let labels = vec![vec![0], vec![0, 1]];
        let got = multi_label_loss(&logits, &labels, None)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let bce = |x: f32, y: f32| {
            -(y * (1.0 / (1.0 + (-x).exp())).ln() + (1.0 - y) * (1.0 / (1.0 + x.exp())).ln())
        };
        let want = (bce(1.0, 1.0) + bce(-2.0, 0.0) + bce(0.0, 1.0) + bce(3.0, 1.0)) / 4.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        let pos = Tensor::new(&[2f32, 1.0], &Device::Cpu).unwrap();
        let got = multi_label_loss(&logits, &labels, Some(&pos))
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let want =
            (2.0 * bce(1.0, 1.0) + bce(-2.0, 0.0) + 2.0 * bce(0.0, 1.0) + bce(3.0, 1.0)) / 4.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
}
