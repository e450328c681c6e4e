//! GANomaly (Akcay et al., ACCV 2018): the generator is an encoder E → decoder G → second encoder
//! E′ chain, x ↦ (z = E(x), x̂ = G(z), ẑ = E′(x̂)), judged by an image discriminator D. Built from
//! the same blocks as the other models: E and E′ are [`Encoder`]s with one linear head, G is the
//! [`Generator`], D the [`Discriminator`] whose trunk features x4 carry the feature-matching loss.

use candle::{Device, Result, Tensor};

use crate::config::ModelConfig;
use crate::networks::{Discriminator, Encoder, Generator};
use crate::player::Player;
use crate::score::{ScoreBatch, Statistic, score_reconstruction};

#[derive(Debug, Clone)]
pub struct Ganomaly {
    pub config: ModelConfig,
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
        Statistic::Latent,
        Statistic::L1,
        Statistic::L2,
        Statistic::FmD3,
        Statistic::FmD4,
        Statistic::FmE,
        Statistic::Disc,
        Statistic::L1Top1,
        Statistic::L1Top1Wide,
        Statistic::Dssim,
        Statistic::DssimTop1,
    ];

    pub fn new(config: &ModelConfig, device: &Device, seed: u64) -> Result<Self> {
        let players = [
            Player::new("encoder", device),
            Player::new("generator", device),
            Player::new("second_encoder", device),
            Player::new("discriminator", device),
        ];
        let model = Ganomaly {
            config: *config,
            encoder: Encoder::new(config, false, players[0].var_builder())?,
            generator: Generator::new(config, players[1].var_builder())?,
            second_encoder: Encoder::new(config, false, players[2].var_builder())?,
            discriminator: Discriminator::new(config, players[3].var_builder())?,
            players,
        };
        for p in &model.players {
            p.seed_init(seed)?;
        }
        Ok(model)
    }

    /// z = E(x), x̂ = G(z), ẑ = E′(x̂).
    pub fn pass(&self, x: &Tensor, train: bool) -> Result<GanomalyPass> {
        let code = self.encoder.forward_t(x, train)?.mean;
        let reconstruction = self.generator.forward_t(&code, train)?;
        let second_code = self.second_encoder.forward_t(&reconstruction, train)?.mean;
        Ok(GanomalyPass {
            code,
            reconstruction,
            second_code,
        })
    }

    /// All statistics of a batch, in eval mode; `latent` = mean (E(x) − E′(x̂))².
    pub fn score(&self, x: &Tensor) -> Result<ScoreBatch> {
        score_reconstruction(
            &Self::STATISTICS,
            x,
            &self.encoder,
            &self.generator,
            &self.discriminator,
            true,
            Some(&self.second_encoder),
        )
    }
}
