//! BiGAN (Donahue et al. 2017; EGBAD, Zenati et al. 2018): encoder + generator + a joint
//! discriminator of (image, code) pairs. BiGAN's paper has no anomaly score (EGBAD's, a
//! reconstruction and a feature-matching residual, are both among the statistics here), so the
//! fused two-sided statistic is primary ([`crate::FUSED_TWO_SIDED`] says why).

mod networks;
mod step;

use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::detector::{Detector, FUSED_TWO_SIDED, Passes, counted, encoder_flops, generator_flops};
use crate::error::Result;
use crate::networks::{Encoder, Generator};
use crate::player::Player;
use crate::registry::Register;
use crate::statistics::{
    ScoreBatch, ScoreInputs, Statistic, compute, none_of_its_own, reconstruction_error,
};

pub use networks::JointDiscriminator;
pub use step::PASSES;

/// BiGAN has no settings of its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BiGanSettings {}

impl crate::detector::Settings for BiGanSettings {}

#[derive(Debug, Clone)]
pub struct BiGan {
    pub config: ModelConfig,
    /// Empty: BiGAN has no loss weights to set.
    pub settings: BiGanSettings,
    pub encoder: Encoder,
    pub generator: Generator,
    pub discriminator: JointDiscriminator,
    /// encoder, generator, discriminator.
    pub players: [Player; 3],
}

impl BiGan {
    pub const STATISTICS: [Statistic; 10] = Statistic::RECONSTRUCTION_AND_DISCRIMINATOR;
}

impl Register for BiGan {
    const NAME: &'static str = "bigan";
    const SUMMARY: &'static str =
        "encoder + generator + joint (image, code) discriminator (Donahue et al. 2017)";
    const PRIMARY: &'static str = FUSED_TWO_SIDED;
    type Settings = BiGanSettings;

    fn build(
        config: &ModelConfig,
        settings: BiGanSettings,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let players = [
            Player::new("encoder", device),
            Player::new("generator", device),
            Player::new("discriminator", device),
        ];
        let model = BiGan {
            config: *config,
            settings,
            encoder: Encoder::new(config, false, players[0].var_builder())?,
            generator: Generator::new(config, players[1].var_builder())?,
            discriminator: JointDiscriminator::new(config, players[2].var_builder())?,
            players,
        };
        Player::seed_all(&model.players, seed)?;
        Ok(model)
    }
}

impl Detector for BiGan {
    crate::detector::detector_parts!();

    /// The joint discriminator judges (x, E(x)) and (x̂, E(x)): its features of both pairs give
    /// the feature-matching statistics, its logit of the first the realism one.
    fn score_statistics(&self, x: &Tensor, wanted: &[Statistic]) -> Result<ScoreBatch> {
        let code = self.encoder.forward_t(x, false)?;
        let x_hat = self.generator.forward_t(&code.mean, false)?;
        let code_hat = self.encoder.forward_t(&x_hat, false)?;
        let d = self.discriminator.forward_t(x, &code.mean, false)?;
        let d_hat = self.discriminator.forward_t(&x_hat, &code.mean, false)?;
        Ok(compute(
            wanted,
            ScoreInputs {
                x,
                reconstruction: &x_hat,
                d_logit: Some(&d.logit),
                d_features: Some([
                    (&d.features.x3, &d_hat.features.x3),
                    (&d.features.x4, &d_hat.features.x4),
                ]),
                e_features: Some((&code.features.x4, &code_hat.features.x4)),
            },
            &none_of_its_own,
        )?)
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
                counted(&|| Ok(self.discriminator.forward_t(&x, &z, false)?.logit))?,
            ),
        ])
    }

    fn step_passes(&self) -> Vec<Passes> {
        PASSES.to_vec()
    }
}
