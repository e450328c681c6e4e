//! The autoencoder with a per-pixel uncertainty (AE-U: Mao et al., "Abnormality Detection in
//! Chest X-Ray Images Using Uncertainty Prediction Autoencoders", MICCAI 2020; the strongest
//! reconstruction method of the MedIAnomaly benchmark, Cai et al. 2024, code
//! `caiyu6666/MedIAnomaly`, `networks/aeu.py`). The decoder predicts, beside x̂, a log-variance
//! per pixel; training minimises the Gaussian negative log-likelihood
//! mean(exp(−log σ²)·(x − x̂)² + log σ²), so the network learns where normal images are hard to
//! reconstruct (edges, the collimation border, noise) and down-weights the residual there. Its
//! anomaly score `l2_u` is that weighted residual, mean(exp(−log σ²)·(x − x̂)²): a residual that
//! is large where normal images reconstruct well counts most.
//!
//! Networks as the plain [`super::autoencoder`]'s (the shared encoder and generator without
//! spectral norm, a small bottleneck), the decoder with two output channels: x̂ through tanh,
//! log σ² unbounded ([`Generator::forward_logits_t`]).

mod step;

use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::autoencoder::Autoencoder;
use crate::blocks::per_item_mean;
use crate::config::ModelConfig;
use crate::detector::{Detector, Passes, encoder_flops, generator_flops};
use crate::error::Result;
use crate::networks::{Encoder, Generator};
use crate::player::Player;
use crate::registry::Register;
use crate::statistics::{ScoreBatch, ScoreInputs, Statistic, column, compute};

pub use step::PASSES;

/// The residual weighted by the predicted precision, per image: its primary statistic.
pub const L2_U: Statistic = Statistic::new("l2_u");

/// The autoencoder-u's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoencoderUSettings {
    /// Size of the latent code (MedIAnomaly's default: 16).
    pub bottleneck: usize,
}

impl Default for AutoencoderUSettings {
    fn default() -> Self {
        AutoencoderUSettings { bottleneck: 16 }
    }
}

impl crate::detector::Settings for AutoencoderUSettings {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.bottleneck == 0 {
            return Err("bottleneck must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct AutoencoderU {
    pub config: ModelConfig,
    pub settings: AutoencoderUSettings,
    pub encoder: Encoder,
    /// Two output channels: the image (through tanh) and its log-variance.
    pub decoder: Generator,
    /// encoder, decoder.
    pub players: [Player; 2],
}

/// x̂ `(B, 1, S, S)` in [−1, 1] and log σ² `(B, 1, S, S)`.
pub struct Decoded {
    pub reconstruction: Tensor,
    pub log_variance: Tensor,
}

impl AutoencoderU {
    /// Its own score first, then the plain autoencoder's image statistics.
    pub const STATISTICS: [Statistic; 7] = [
        L2_U,
        Statistic::L2,
        Statistic::L1,
        Statistic::L1_TOP1,
        Statistic::L1_TOP1_WIDE,
        Statistic::DSSIM,
        Statistic::DSSIM_TOP1,
    ];

    pub fn decode(&self, x: &Tensor, train: bool) -> candle::Result<Decoded> {
        let code = self.encoder.forward_t(x, train)?.mean;
        let out = self.decoder.forward_logits_t(&code, train)?;
        let c = self.config.channels;
        Ok(Decoded {
            reconstruction: out.narrow(1, 0, c)?.tanh()?,
            log_variance: out.narrow(1, c, c)?,
        })
    }

    /// exp(−log σ²)·(x − x̂)², per pixel.
    pub fn weighted_residual(x: &Tensor, decoded: &Decoded) -> candle::Result<Tensor> {
        x.sub(&decoded.reconstruction)?
            .sqr()?
            .mul(&decoded.log_variance.neg()?.exp()?)
    }

    /// The per-pixel negative log-likelihood (up to a constant), exp(−log σ²)·(x − x̂)² + log σ².
    pub fn negative_log_likelihood(x: &Tensor, decoded: &Decoded) -> candle::Result<Tensor> {
        Self::weighted_residual(x, decoded)?.add(&decoded.log_variance)
    }
}

impl Register for AutoencoderU {
    const NAME: &'static str = "autoencoder-u";
    const SUMMARY: &'static str = "autoencoder predicting a per-pixel uncertainty, residual weighted by it (AE-U, Mao et al. 2020)";
    const PRIMARY: &'static str = L2_U.name();
    type Settings = AutoencoderUSettings;

    fn build(
        config: &ModelConfig,
        settings: AutoencoderUSettings,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        // the plain autoencoder's networks, with a log-variance channel per image channel
        let (encoder, decoder, players) = Autoencoder::networks(
            config,
            settings.bottleneck,
            2 * config.channels,
            device,
            seed,
        )?;
        Ok(AutoencoderU {
            config: *config,
            encoder,
            decoder,
            settings,
            players,
        })
    }
}

impl Detector for AutoencoderU {
    crate::detector::detector_parts!();

    fn score_statistics(&self, x: &Tensor, wanted: &[Statistic]) -> Result<ScoreBatch> {
        let decoded = self.decode(x, false)?;
        let weighted = Self::weighted_residual(x, &decoded)?;
        let own =
            |statistic: Statistic| (statistic == L2_U).then(|| column(&per_item_mean(&weighted)?));
        let mut scores = compute(
            wanted,
            ScoreInputs {
                x,
                reconstruction: &decoded.reconstruction,
                d_logit: None,
                d_features: None,
                e_features: None,
            },
            &own,
        )?;
        // the map of what the primary averages, in the units of |x − x̂|: pixels where normal
        // images vary (edges, markers) fade, the rest keep their residual
        scores.residual = weighted.sqrt()?;
        Ok(scores)
    }

    /// Mean |x − x̂| on normal images, as for the plain autoencoder (the likelihood its training
    /// minimises can be negative, and `losses.csv` reports this as `calibration_l1`).
    fn validation_error(&self, x: &Tensor) -> Result<Vec<f32>> {
        let decoded = self.decode(x, false)?;
        Ok(column(&per_item_mean(
            &x.sub(&decoded.reconstruction)?.abs()?,
        )?)?)
    }

    /// An autoencoder has no prior to sample from.
    fn generate(&self, _: usize, _: u64) -> Result<Option<Tensor>> {
        Ok(None)
    }

    fn forward_flops_per_image(&self, device: &Device) -> Result<Vec<(&'static str, u64)>> {
        let x = (self as &dyn Detector).probe_image(device)?;
        Ok(vec![
            ("encoder", encoder_flops(&self.encoder, &x)?),
            ("decoder", generator_flops(&self.decoder, device)?),
        ])
    }

    fn step_passes(&self) -> Vec<Passes> {
        PASSES.to_vec()
    }
}
