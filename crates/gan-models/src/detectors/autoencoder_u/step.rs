//! The autoencoder-u's training step: encoder and decoder together on the per-pixel Gaussian
//! negative log-likelihood mean(exp(−log σ²)·(x − x̂)² + log σ²) (MedIAnomaly's `AEULoss`).

use candle::{Result, Tensor};

use super::AutoencoderU;
use crate::detector::{Passes, StepContext, StepLosses, passes};
use crate::optim::Adam;
use crate::training::scalar;

/// The passes of one step: both networks trained once.
pub const PASSES: [Passes; 2] = [
    passes("encoder", 1.0, 0.0, 0.0),
    passes("decoder", 1.0, 0.0, 0.0),
];

pub(super) fn train_step(
    m: &AutoencoderU,
    optimisers: &mut [Adam],
    x: &Tensor,
    _context: &StepContext,
) -> Result<StepLosses> {
    let [opt_e, opt_d] = optimisers else {
        candle::bail!(
            "the autoencoder-u needs 2 optimisers, got {}",
            optimisers.len()
        )
    };
    let decoded = m.decode(x, true)?;
    let loss = AutoencoderU::negative_log_likelihood(x, &decoded)?.mean_all()?;
    let grads = loss.backward()?;
    opt_e.step(&grads)?;
    opt_d.step(&grads)?;
    Ok(vec![("autoencoder", scalar(&loss)?)])
}
