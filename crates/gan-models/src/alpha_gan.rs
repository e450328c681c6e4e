//! Alpha-GAN (Rosca et al. 2017): encoder with mean/sd heads, generator, image discriminator and
//! code discriminator, each a player with its own variables.

use candle::{Device, Result, Tensor};

use crate::config::ModelConfig;
use crate::networks::{CodeDiscriminator, Discriminator, Encoder, Generator};
use crate::player::Player;
use crate::score::{ScoreBatch, ScoreInputs, Statistic, compute};

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

    /// x̂ = G(mean of E(x)).
    pub fn reconstruct(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let code = self.encoder.forward_t(x, train)?;
        self.generator.forward_t(&code.mean, train)
    }

    /// All statistics of a batch, in eval mode (deterministic).
    pub fn score(&self, x: &Tensor) -> Result<ScoreBatch> {
        let code = self.encoder.forward_t(x, false)?;
        let x_hat = self.generator.forward_t(&code.mean, false)?;
        let code_hat = self.encoder.forward_t(&x_hat, false)?;
        let d = self.discriminator.forward_t(x, false)?;
        let d_hat = self.discriminator.forward_t(&x_hat, false)?;
        compute(
            &Self::STATISTICS,
            ScoreInputs {
                x,
                reconstruction: &x_hat,
                d_logit: Some(&d.logit),
                d_features: Some([
                    (&d.features.x3, &d_hat.features.x3),
                    (&d.features.x4, &d_hat.features.x4),
                ]),
                e_features: Some((&code.features.x4, &code_hat.features.x4)),
                codes: None,
            },
        )
    }
}
