//! Losses on logits. candle's `binary_cross_entropy_with_logit` returns NaN for large logits
//! (candle issue #2561), so this is the numerically stable form PyTorch uses:
//! `max(x, 0) − x·t + log(1 + exp(−|x|))`, averaged.

use candle::{Result, Tensor};

/// Mean binary cross-entropy of `logits` against `targets` (same shape, values in [0, 1]).
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let softplus_tail = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    (logits.relu()? - logits.mul(targets)?)?
        .add(&softplus_tail)?
        .mean_all()
}

/// Mean binary cross-entropy of `logits` against one target for all (1 = real, 0 = fake).
pub fn bce_with_logits_to(logits: &Tensor, target: f64) -> Result<Tensor> {
    let targets = logits.ones_like()?.affine(target, 0.0)?;
    bce_with_logits(logits, &targets)
}

/// Mean absolute difference.
pub fn l1(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.sub(b)?.abs()?.mean_all()
}
