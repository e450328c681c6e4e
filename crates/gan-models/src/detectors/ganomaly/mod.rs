//! GANomaly (Akcay et al., ACCV 2018): the generator is an encoder E → decoder G → second encoder
//! E′ chain, x ↦ (z = E(x), x̂ = G(z), ẑ = E′(x̂)), judged by an image discriminator D. Built from
//! the shared networks: E and E′ are [`Encoder`]s with one linear head, G is the [`Generator`],
//! D the [`Discriminator`] whose trunk features x4 carry the feature-matching loss. Its anomaly
//! score, `latent` = mean (E(x) − E′(x̂))², is primary.

mod step;

use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::detector::{
    Detector, Passes, discriminator_flops, encoder_flops, generator_flops, non_negative,
};
use crate::error::Result;
use crate::networks::{Discriminator, Encoder, Generator};
use crate::optim::OptimiserConfig;
use crate::player::Player;
use crate::registry::Register;
use crate::statistics::{
    ReconstructionPasses, ScoreBatch, Statistic, column, compute, per_item_mean_squared,
    reconstruction_error,
};

pub use step::PASSES;

/// GANomaly's anomaly score: the mean squared distance between the code of x and the second
/// encoder's code of x̂.
pub const LATENT: Statistic = Statistic::new("latent");

/// GANomaly's loss weights (the paper's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GanomalySettings {
    /// w_con, the weight of the contextual L1 loss |x − x̂|.
    pub contextual_weight: f64,
    /// w_adv, the weight of the adversarial feature-matching loss.
    pub adversarial_weight: f64,
    /// w_enc, the weight of the latent loss ‖E(x) − E′(x̂)‖².
    pub latent_weight: f64,
}

impl Default for GanomalySettings {
    fn default() -> Self {
        GanomalySettings {
            contextual_weight: 50.0,
            adversarial_weight: 1.0,
            latent_weight: 1.0,
        }
    }
}

impl crate::detector::Settings for GanomalySettings {
    fn validate(&self) -> std::result::Result<(), String> {
        non_negative("contextual_weight", self.contextual_weight)?;
        non_negative("adversarial_weight", self.adversarial_weight)?;
        non_negative("latent_weight", self.latent_weight)
    }
}

#[derive(Debug, Clone)]
pub struct Ganomaly {
    pub config: ModelConfig,
    pub settings: GanomalySettings,
    pub encoder: Encoder,
    pub generator: Generator,
    pub second_encoder: Encoder,
    pub discriminator: Discriminator,
    /// encoder, generator, second_encoder, discriminator.
    pub players: [Player; 4],
}

/// One pass through the generator chain.
pub struct GanomalyPass {
    pub code: Tensor,
    pub reconstruction: Tensor,
    pub second_code: Tensor,
}

impl Ganomaly {
    /// The paper's score first, then the image statistics.
    pub const STATISTICS: [Statistic; 11] = [
        LATENT,
        Statistic::L1,
        Statistic::L2,
        Statistic::FM_D3,
        Statistic::FM_D4,
        Statistic::FM_E,
        Statistic::DISC,
        Statistic::L1_TOP1,
        Statistic::L1_TOP1_WIDE,
        Statistic::DSSIM,
        Statistic::DSSIM_TOP1,
    ];

    /// z = E(x), x̂ = G(z), ẑ = E′(x̂).
    pub fn pass(&self, x: &Tensor, train: bool) -> candle::Result<GanomalyPass> {
        let code = self.encoder.forward_t(x, train)?.mean;
        let reconstruction = self.generator.forward_t(&code, train)?;
        let second_code = self.second_encoder.forward_t(&reconstruction, train)?.mean;
        Ok(GanomalyPass {
            code,
            reconstruction,
            second_code,
        })
    }
}

impl Register for Ganomaly {
    const NAME: &'static str = "ganomaly";
    const SUMMARY: &'static str = "encoder → decoder → encoder with an image discriminator; score ‖E(x) − E′(x̂)‖² (Akcay et al. 2018)";
    const PRIMARY: &'static str = LATENT.name();
    type Settings = GanomalySettings;
    const LEGACY_KEYS: &'static [(&'static str, &'static str)] =
        &[("reconstruction_weight", "contextual_weight")];

    /// GANomaly's: Adam lr 2e-4, betas 0.5 / 0.999.
    fn optimiser() -> OptimiserConfig {
        OptimiserConfig {
            learning_rate: 2e-4,
            ..OptimiserConfig::default()
        }
    }

    fn build(
        config: &ModelConfig,
        settings: GanomalySettings,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let players = [
            Player::new("encoder", device),
            Player::new("generator", device),
            Player::new("second_encoder", device),
            Player::new("discriminator", device),
        ];
        let model = Ganomaly {
            config: *config,
            settings,
            encoder: Encoder::new(config, false, players[0].var_builder())?,
            generator: Generator::new(config, players[1].var_builder())?,
            second_encoder: Encoder::new(config, false, players[2].var_builder())?,
            discriminator: Discriminator::new(config, players[3].var_builder())?,
            players,
        };
        Player::seed_all(&model.players, seed)?;
        Ok(model)
    }
}

impl Detector for Ganomaly {
    crate::detector::detector_parts!();

    /// All statistics of a batch, in eval mode; `latent` = mean (E(x) − E′(x̂))².
    fn score_statistics(&self, x: &Tensor, wanted: &[Statistic]) -> Result<ScoreBatch> {
        let passes =
            ReconstructionPasses::run(x, &self.encoder, &self.generator, &self.discriminator)?;
        let second_code = self
            .second_encoder
            .forward_t(&passes.reconstruction, false)?
            .mean;
        let own = |statistic: Statistic| {
            (statistic == LATENT)
                .then(|| column(&per_item_mean_squared(&passes.code.mean, &second_code)?))
        };
        Ok(compute(wanted, passes.inputs(true), &own)?)
    }

    fn validation_error(&self, x: &Tensor) -> Result<Vec<f32>> {
        Ok(reconstruction_error(&self.encoder, &self.generator, x)?)
    }

    fn generate(&self, n: usize, seed: u64) -> Result<Option<Tensor>> {
        Ok(Some(self.generator.generate(n, seed)?))
    }

    fn forward_flops_per_image(&self, device: &Device) -> Result<Vec<(&'static str, u64)>> {
        let x = (self as &dyn Detector).probe_image(device)?;
        Ok(vec![
            ("encoder", encoder_flops(&self.encoder, &x)?),
            ("generator", generator_flops(&self.generator, device)?),
            ("second_encoder", encoder_flops(&self.second_encoder, &x)?),
            (
                "discriminator",
                discriminator_flops(&self.discriminator, &x)?,
            ),
        ])
    }

    fn step_passes(&self) -> Vec<Passes> {
        PASSES.to_vec()
    }
}
