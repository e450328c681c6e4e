//! f-AnoGAN (Schlegl et al., Medical Image Analysis 2019): a WGAN-GP generator G and critic D,
//! then an encoder E trained with G and D frozen so that G(E(x)) reproduces x and the critic's
//! features of it (the izi_f architecture). The critic is the [`Discriminator`] without spectral
//! normalisation (the gradient penalty constrains it instead); its trunk features x4, the layer
//! before its output, are the features f of the paper.

use candle::{Device, Result, Tensor};

use crate::config::ModelConfig;
use crate::networks::{Discriminator, Encoder, Generator};
use crate::player::Player;
use crate::score::{ScoreBatch, Statistic, score_reconstruction};

#[derive(Debug, Clone)]
pub struct FAnogan {
    pub config: ModelConfig,
    pub encoder: Encoder,
    pub generator: Generator,
    pub critic: Discriminator,
    /// encoder, generator, critic.
    pub players: [Player; 3],
}

impl FAnogan {
    /// The paper's score (`izif` = image residual + critic-feature residual) first. No `disc`: a
    /// Wasserstein critic's output is not a probability of being real.
    pub const STATISTICS: [Statistic; 10] = [
        Statistic::Izif,
        Statistic::L2,
        Statistic::FmD4,
        Statistic::L1,
        Statistic::FmD3,
        Statistic::FmE,
        Statistic::L1Top1,
        Statistic::L1Top1Wide,
        Statistic::Dssim,
        Statistic::DssimTop1,
    ];

    pub fn new(config: &ModelConfig, device: &Device, seed: u64) -> Result<Self> {
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
            encoder: Encoder::new(config, false, players[0].var_builder())?,
            generator: Generator::new(config, players[1].var_builder())?,
            critic: Discriminator::new(&critic_config, players[2].var_builder())?,
            players,
        };
        for p in &model.players {
            p.seed_init(seed)?;
        }
        Ok(model)
    }

    /// All statistics of a batch, in eval mode.
    pub fn score(&self, x: &Tensor) -> Result<ScoreBatch> {
        score_reconstruction(
            &Self::STATISTICS,
            x,
            &self.encoder,
            &self.generator,
            &self.critic,
            false,
            None,
        )
    }
}
