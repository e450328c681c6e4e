//! Alpha-GAN (Rosca et al. 2017): encoder with mean/sd heads, generator, image discriminator and
//! code discriminator, each a player with its own variables.

use candle::{Device, Result, Tensor};

use crate::config::ModelConfig;
use crate::networks::{CodeDiscriminator, Discriminator, Encoder, Generator};
use crate::player::Player;
use crate::score::{ScoreBatch, Statistic, score_reconstruction};

#[derive(Debug, Clone)]
pub struct AlphaGan {
    pub config: ModelConfig,
    pub encoder: Encoder,
    pub generator: Generator,
    pub discriminator: Discriminator,
    pub code_discriminator: CodeDiscriminator,
    /// encoder, generator, discriminator, code_discriminator.
    pub players: [Player; 4],
}

impl AlphaGan {
    pub const STATISTICS: [Statistic; 10] = Statistic::RECONSTRUCTION_AND_DISCRIMINATOR;

    pub fn new(config: &ModelConfig, device: &Device, seed: u64) -> Result<Self> {
        let players = [
            Player::new("encoder", device),
            Player::new("generator", device),
            Player::new("discriminator", device),
            Player::new("code_discriminator", device),
        ];
        let model = AlphaGan {
            config: *config,
            encoder: Encoder::new(config, true, players[0].var_builder())?,
            generator: Generator::new(config, players[1].var_builder())?,
            discriminator: Discriminator::new(config, players[2].var_builder())?,
            code_discriminator: CodeDiscriminator::new(config, players[3].var_builder())?,
            players,
        };
        for p in &model.players {
            p.seed_init(seed)?;
        }
        Ok(model)
    }

    /// All statistics of a batch, in eval mode (deterministic).
    pub fn score(&self, x: &Tensor) -> Result<ScoreBatch> {
        score_reconstruction(
            &Self::STATISTICS,
            x,
            &self.encoder,
            &self.generator,
            &self.discriminator,
            true,
            None,
        )
    }
}
