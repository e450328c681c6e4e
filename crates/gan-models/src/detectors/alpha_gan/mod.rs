//! Alpha-GAN (Rosca et al. 2017): encoder with mean/sd heads, generator, image discriminator and
//! code discriminator, each a player with its own variables. Its paper has no anomaly score: the
//! seed experiment's statistics are all reported, and the fused two-sided one is primary
//! ([`crate::FUSED_TWO_SIDED`] says why).

mod networks;
mod step;

use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::detector::{
    Detector, FUSED_TWO_SIDED, Passes, counted, discriminator_flops, encoder_flops,
    generator_flops, non_negative,
};
use crate::error::Result;
use crate::networks::{Discriminator, Encoder, Generator};
use crate::player::Player;
use crate::registry::Register;
use crate::statistics::{
    ReconstructionPasses, ScoreBatch, Statistic, compute, none_of_its_own, reconstruction_error,
};

pub use networks::CodeDiscriminator;
pub use step::PASSES;

/// Alpha-GAN's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlphaGanSettings {
    /// λ, the weight of the L1 reconstruction terms of E's and G's losses (the seed's 0.01).
    pub reconstruction_weight: f64,
}

impl Default for AlphaGanSettings {
    fn default() -> Self {
        AlphaGanSettings {
            reconstruction_weight: 0.01,
        }
    }
}

impl crate::detector::Settings for AlphaGanSettings {
    fn validate(&self) -> std::result::Result<(), String> {
        non_negative("reconstruction_weight", self.reconstruction_weight)
    }
}

#[derive(Debug, Clone)]
pub struct AlphaGan {
    pub config: ModelConfig,
    pub settings: AlphaGanSettings,
    pub encoder: Encoder,
    pub generator: Generator,
    pub discriminator: Discriminator,
    pub code_discriminator: CodeDiscriminator,
    /// encoder, generator, discriminator, code_discriminator.
    pub players: [Player; 4],
}

impl AlphaGan {
    pub const STATISTICS: [Statistic; 10] = Statistic::RECONSTRUCTION_AND_DISCRIMINATOR;
}

impl Register for AlphaGan {
    const NAME: &'static str = "alpha-gan";
    const SUMMARY: &'static str =
        "encoder (mean, sd) + generator + image and code discriminators (Rosca et al. 2017)";
    const PRIMARY: &'static str = FUSED_TWO_SIDED;
    type Settings = AlphaGanSettings;
    const LEGACY_KEYS: &'static [(&'static str, &'static str)] =
        &[("reconstruction_weight", "reconstruction_weight")];

    fn build(
        config: &ModelConfig,
        settings: AlphaGanSettings,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let players = [
            Player::new("encoder", device),
            Player::new("generator", device),
            Player::new("discriminator", device),
            Player::new("code_discriminator", device),
        ];
        let model = AlphaGan {
            config: *config,
            settings,
            encoder: Encoder::new(config, true, players[0].var_builder())?,
            generator: Generator::new(config, players[1].var_builder())?,
            discriminator: Discriminator::new(config, players[2].var_builder())?,
            code_discriminator: CodeDiscriminator::new(config, players[3].var_builder())?,
            players,
        };
        Player::seed_all(&model.players, seed)?;
        Ok(model)
    }
}

impl Detector for AlphaGan {
    crate::detector::detector_parts!();

    fn score_statistics(&self, x: &Tensor, wanted: &[Statistic]) -> Result<ScoreBatch> {
        let passes =
            ReconstructionPasses::run(x, &self.encoder, &self.generator, &self.discriminator)?;
        Ok(compute(wanted, passes.inputs(true), &none_of_its_own)?)
    }

    fn validation_error(&self, x: &Tensor) -> Result<Vec<f32>> {
        Ok(reconstruction_error(&self.encoder, &self.generator, x)?)
    }

    fn generate(&self, n: usize, seed: u64) -> Result<Option<Tensor>> {
        Ok(Some(self.generator.generate(n, seed)?))
    }

    fn forward_flops_per_image(&self, device: &Device) -> Result<Vec<(&'static str, u64)>> {
        let x = (self as &dyn Detector).probe_image(device)?;
        let z = Tensor::zeros((1, self.config.latent), candle::DType::F32, device)?;
        Ok(vec![
            ("encoder", encoder_flops(&self.encoder, &x)?),
            ("generator", generator_flops(&self.generator, device)?),
            (
                "discriminator",
                discriminator_flops(&self.discriminator, &x)?,
            ),
            (
                "code_discriminator",
                counted(&|| self.code_discriminator.forward(&z))?,
            ),
        ])
    }

    fn step_passes(&self) -> Vec<Passes> {
        PASSES.to_vec()
    }
}
