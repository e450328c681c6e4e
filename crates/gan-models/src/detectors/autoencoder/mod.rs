//! A plain convolutional autoencoder with a small bottleneck, the reconstruction baseline as
//! "Rethinking Autoencoders for Medical Anomaly Detection" (Cai et al., MICCAI 2024, AE4AD) found
//! it works best: a narrow latent code keeps the network from reproducing what it has not seen.
//! Encoder and decoder are the shared [`Encoder`] and [`Generator`] without spectral norm (no
//! adversary to constrain), trained on MSE (optionally plus structural dissimilarity); its
//! anomaly score is the reconstruction error `l2`, the statistic its loss minimises.

pub(crate) mod step;

use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::detector::{Detector, Passes, encoder_flops, generator_flops, non_negative};
use crate::error::Result;
use crate::networks::{Encoder, Generator};
use crate::player::Player;
use crate::registry::Register;
use crate::statistics::{
    ScoreBatch, ScoreInputs, Statistic, compute, none_of_its_own, reconstruction_error,
};

pub use step::PASSES;

/// The autoencoder's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoencoderSettings {
    /// Size of the latent code (AE4AD: small codes detect better; 16 here by default).
    pub bottleneck: usize,
    /// Weight of the structural-dissimilarity term (1 − SSIM)/2 added to the MSE loss (0: MSE only).
    pub ssim_weight: f64,
}

impl Default for AutoencoderSettings {
    fn default() -> Self {
        AutoencoderSettings {
            bottleneck: 16,
            ssim_weight: 0.0,
        }
    }
}

impl crate::detector::Settings for AutoencoderSettings {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.bottleneck == 0 {
            return Err("bottleneck must be at least 1".into());
        }
        non_negative("ssim_weight", self.ssim_weight)
    }
}

#[derive(Debug, Clone)]
pub struct Autoencoder {
    pub config: ModelConfig,
    pub settings: AutoencoderSettings,
    pub encoder: Encoder,
    pub decoder: Generator,
    /// encoder, decoder.
    pub players: [Player; 2],
}

impl Autoencoder {
    /// Its own score first, then the other image statistics (no discriminator, so no feature
    /// matching and no realism).
    pub const STATISTICS: [Statistic; 6] = [
        Statistic::L2,
        Statistic::L1,
        Statistic::L1_TOP1,
        Statistic::L1_TOP1_WIDE,
        Statistic::DSSIM,
        Statistic::DSSIM_TOP1,
    ];

    /// An encoder and a decoder through a code of `bottleneck` (the shared [`Encoder`] and
    /// [`Generator`] without spectral norm), the decoder with `output_channels` channels, as the
    /// players `encoder` and `decoder`, seeded: the networks of this autoencoder and of the
    /// autoencoder-u.
    pub(crate) fn networks(
        config: &ModelConfig,
        bottleneck: usize,
        output_channels: usize,
        device: &Device,
        seed: u64,
    ) -> Result<(Encoder, Generator, [Player; 2])> {
        let players = [
            Player::new("encoder", device),
            Player::new("decoder", device),
        ];
        let shapes = ModelConfig {
            latent: bottleneck,
            spectral_norm: false,
            ..*config
        };
        let decoder_shapes = ModelConfig {
            channels: output_channels,
            ..shapes
        };
        let encoder = Encoder::new(&shapes, false, players[0].var_builder())?;
        let decoder = Generator::new(&decoder_shapes, players[1].var_builder())?;
        Player::seed_all(&players, seed)?;
        Ok((encoder, decoder, players))
    }

    /// x̂ = decoder(encoder(x)).
    pub fn reconstruct(&self, x: &Tensor, train: bool) -> candle::Result<Tensor> {
        let code = self.encoder.forward_t(x, train)?.mean;
        self.decoder.forward_t(&code, train)
    }
}

impl Register for Autoencoder {
    const NAME: &'static str = "autoencoder";
    const SUMMARY: &'static str = "convolutional autoencoder with a small bottleneck, MSE (+ SSIM) loss (AE4AD, Cai et al. 2024)";
    const PRIMARY: &'static str = Statistic::L2.name();
    type Settings = AutoencoderSettings;

    fn build(
        config: &ModelConfig,
        settings: AutoencoderSettings,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let (encoder, decoder, players) =
            Self::networks(config, settings.bottleneck, config.channels, device, seed)?;
        Ok(Autoencoder {
            config: *config,
            encoder,
            decoder,
            settings,
            players,
        })
    }
}

impl Detector for Autoencoder {
    crate::detector::detector_parts!();

    fn score_statistics(&self, x: &Tensor, wanted: &[Statistic]) -> Result<ScoreBatch> {
        let reconstruction = self.reconstruct(x, false)?;
        Ok(compute(
            wanted,
            ScoreInputs {
                x,
                reconstruction: &reconstruction,
                d_logit: None,
                d_features: None,
                e_features: None,
            },
            &none_of_its_own,
        )?)
    }

    fn validation_error(&self, x: &Tensor) -> Result<Vec<f32>> {
        Ok(reconstruction_error(&self.encoder, &self.decoder, x)?)
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
