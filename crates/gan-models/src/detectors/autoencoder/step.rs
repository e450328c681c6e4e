//! The autoencoder's training step: encoder and decoder together on
//! MSE(x, x̂) + w_ssim·mean (1 − SSIM(x, x̂))/2.

use candle::{Result, Tensor};

use super::Autoencoder;
use crate::detector::{Passes, StepContext, StepLosses, passes};
use crate::optim::Adam;
use crate::statistics::differentiable_structural_dissimilarity;
use crate::training::{mean_squared, scalar};

/// The passes of one step: both networks trained once.
pub const PASSES: [Passes; 2] = [
    passes("encoder", 1.0, 0.0, 0.0),
    passes("decoder", 1.0, 0.0, 0.0),
];

pub(super) fn train_step(
    m: &Autoencoder,
    optimisers: &mut [Adam],
    x: &Tensor,
    _context: &StepContext,
) -> Result<StepLosses> {
    let x_hat = m.reconstruct(x, true)?;
    let mut loss = mean_squared(x, &x_hat)?;
    if m.settings.ssim_weight > 0.0 {
        let dissimilarity = differentiable_structural_dissimilarity(x, &x_hat, 7)?.mean_all()?;
        loss = (loss + (dissimilarity * m.settings.ssim_weight)?)?;
    }
    step_both(optimisers, &loss)
}

/// One step of encoder and decoder together on `loss` (this autoencoder's and the
/// autoencoder-u's).
pub(crate) fn step_both(optimisers: &mut [Adam], loss: &Tensor) -> Result<StepLosses> {
    let [opt_e, opt_d] = optimisers else {
        candle::bail!(
            "an autoencoder needs 2 optimisers (encoder, decoder), got {}",
            optimisers.len()
        )
    };
    let grads = loss.backward()?;
    opt_e.step(&grads)?;
    opt_d.step(&grads)?;
    Ok(vec![("autoencoder", scalar(loss)?)])
}
