//! f-AnoGAN (Schlegl et al., MedIA 2019): a WGAN-GP generator and critic trained first, then an
//! encoder trained against them frozen (izi_f). The critic is the image discriminator without
//! spectral norm (the gradient penalty constrains it instead) and without a realism probability.
//! Its anomaly score, `izif` = `l2` + κ·`fm_d4`, is primary.

mod step;

use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::per_item_mean;
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

pub use step::{FAnoganPhase, gradient_penalty, passes_of_gan_phase};

/// f-AnoGAN's anomaly score: `l2` + κ·`fm_d4`, the image and critic-feature residuals.
pub const IZIF: Statistic = Statistic::new("izif");

/// f-AnoGAN's settings (the paper's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FAnoganSettings {
    /// Critic steps per generator step.
    pub critic_steps: u64,
    /// Weight of the gradient penalty.
    pub gradient_penalty: f64,
    /// κ, the weight of the critic-feature residual in the encoder's loss and in `izif`.
    pub kappa: f64,
    /// How many epochs, the first ones, train the WGAN-GP; the epochs after them train the
    /// encoder. Unset: half of the run's epochs, fixed in `config.json` when the run starts (so
    /// that resuming with more epochs keeps the phases).
    pub gan_epochs: Option<u64>,
}

impl Default for FAnoganSettings {
    fn default() -> Self {
        FAnoganSettings {
            critic_steps: 5,
            gradient_penalty: 10.0,
            kappa: 1.0,
            gan_epochs: None,
        }
    }
}

impl crate::detector::Settings for FAnoganSettings {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.critic_steps == 0 {
            return Err("critic_steps must be at least 1".into());
        }
        non_negative("gradient_penalty", self.gradient_penalty)?;
        non_negative("kappa", self.kappa)
    }

    fn fix_for_run(&mut self, epochs: u64) {
        self.gan_epochs.get_or_insert(epochs / 2);
    }
}

impl FAnoganSettings {
    /// The phase that `epoch` of a run of `epochs` trains.
    pub fn phase(&self, epoch: u64, epochs: u64) -> FAnoganPhase {
        if epoch >= self.gan_epochs.unwrap_or(epochs / 2) {
            FAnoganPhase::Encoder
        } else {
            FAnoganPhase::Gan
        }
    }
}

#[derive(Debug, Clone)]
pub struct FAnogan {
    pub config: ModelConfig,
    pub settings: FAnoganSettings,
    pub encoder: Encoder,
    pub generator: Generator,
    pub critic: Discriminator,
    /// encoder, generator, critic.
    pub players: [Player; 3],
}

impl FAnogan {
    /// The paper's score and its two parts first, then the other image statistics (no `disc`:
    /// a Wasserstein critic's score is not a realism probability).
    pub const STATISTICS: [Statistic; 10] = [
        IZIF,
        Statistic::L2,
        Statistic::FM_D4,
        Statistic::L1,
        Statistic::FM_D3,
        Statistic::FM_E,
        Statistic::L1_TOP1,
        Statistic::L1_TOP1_WIDE,
        Statistic::DSSIM,
        Statistic::DSSIM_TOP1,
    ];
}

impl Register for FAnogan {
    const NAME: &'static str = "f-anogan";
    const SUMMARY: &'static str = "WGAN-GP generator and critic, then an encoder against them frozen; score izi_f (Schlegl et al. 2019)";
    const PRIMARY: &'static str = IZIF.name();
    type Settings = FAnoganSettings;
    const LEGACY_KEYS: &'static [(&'static str, &'static str)] = &[("gan_epochs", "gan_epochs")];

    /// WGAN-GP's: Adam lr 1e-4, betas 0 / 0.9.
    fn optimiser() -> OptimiserConfig {
        OptimiserConfig {
            beta1: 0.0,
            beta2: 0.9,
            ..OptimiserConfig::default()
        }
    }

    fn build(
        config: &ModelConfig,
        settings: FAnoganSettings,
        device: &Device,
        seed: u64,
    ) -> Result<Self> {
        let players = [
            Player::new("encoder", device),
            Player::new("generator", device),
            Player::new("critic", device),
        ];
        let critic_config = ModelConfig {
            spectral_norm: false,
            ..*config
        };
        let model = FAnogan {
            config: *config,
            settings,
            encoder: Encoder::new(config, false, players[0].var_builder())?,
            generator: Generator::new(config, players[1].var_builder())?,
            critic: Discriminator::new(&critic_config, players[2].var_builder())?,
            players,
        };
        Player::seed_all(&model.players, seed)?;
        Ok(model)
    }
}

impl Detector for FAnogan {
    crate::detector::detector_parts!();

    fn score_statistics(&self, x: &Tensor, wanted: &[Statistic]) -> Result<ScoreBatch> {
        let passes = ReconstructionPasses::run(x, &self.encoder, &self.generator, &self.critic)?;
        let kappa = self.settings.kappa;
        let own = |statistic: Statistic| {
            (statistic == IZIF).then(|| {
                let residual = passes.x.sub(&passes.reconstruction)?.abs()?;
                let features = per_item_mean_squared(
                    &passes.d.features.x4,
                    &passes.d_of_reconstruction.features.x4,
                )?;
                column(&(per_item_mean(&residual.sqr()?)? + (features * kappa)?)?)
            })
        };
        Ok(compute(wanted, passes.inputs(false), &own)?)
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
            ("critic", discriminator_flops(&self.critic, &x)?),
        ])
    }

    fn step_passes(&self) -> Vec<Passes> {
        passes_of_gan_phase(self.settings.critic_steps).to_vec()
    }
}
