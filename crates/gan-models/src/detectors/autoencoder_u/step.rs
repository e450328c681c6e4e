//! The autoencoder-u's training step: encoder and decoder together on the per-pixel Gaussian
//! negative log-likelihood mean(exp(−log σ²)·(x − x̂)² + log σ²) (MedIAnomaly's `AEULoss`).

use candle::{Result, Tensor};

use super::AutoencoderU;
use crate::detector::{Passes, StepContext, StepLosses};
use crate::detectors::autoencoder::step::step_both;
use crate::optim::Adam;

/// The passes of one step: both networks trained once, as the plain autoencoder's.
pub const PASSES: [Passes; 2] = crate::detectors::autoencoder::PASSES;

pub(super) fn train_step(
    m: &AutoencoderU,
    optimisers: &mut [Adam],
    x: &Tensor,
    _context: &StepContext,
) -> Result<StepLosses> {
    let decoded = m.decode(x, true)?;
    let loss = AutoencoderU::negative_log_likelihood(x, &decoded)?.mean_all()?;
    step_both(optimisers, &loss)
}
