//! A trainable parameter as the optimizer and the gradient buffers see it.
use candle_core::Var;

/// One trainable parameter: its checkpoint name, its variable and whether weight decay applies.
#[derive(Debug, Clone)]
pub struct Param {
    /// Checkpoint name, e.g. `encoder.layer.0.attention.self.query.weight`.
    pub name: String,
    /// The variable updated in place.
    pub var: Var,
    /// Weight decay applies (false for biases and LayerNorm weights).
    pub decay: bool,
    /// Multiplies the learning rate for this parameter (e.g. a CRF that starts at zero).
    pub lr_scale: f64,
}

impl Param {
    /// A parameter whose decay follows BERT's rule: no decay for biases and LayerNorm weights.
    pub fn new(name: impl Into<String>, var: Var) -> Self {
        let name = name.into();
        let decay = !(name.ends_with("bias") || name.contains("LayerNorm"));
        Self {
            name,
            var,
            decay,
            lr_scale: 1.0,
        }
    }

    /// The same parameter with its learning rate multiplied by `scale`.
    pub fn with_lr_scale(mut self, scale: f64) -> Self {
        self.lr_scale = scale;
        self
    }
}
