//! BiGAN (Donahue et al. 2017): encoder, generator and a joint discriminator on (image, code).

use candle::{Device, Result, Tensor};

use crate::config::ModelConfig;
use crate::networks::{Encoder, Generator, JointDiscriminator};
use crate::player::Player;
use crate::score::{ScoreBatch, ScoreInputs, Statistic, compute};

#[derive(Debug, Clone)]
pub struct BiGan {
    pub config: ModelConfig,
    pub encoder: Encoder,
    pub generator: Generator,
    pub discriminator: JointDiscriminator,
    /// encoder, generator, discriminator.
    pub players: [Player; 3],
}

impl BiGan {
    pub const STATISTICS: [Statistic; 10] = Statistic::RECONSTRUCTION_AND_DISCRIMINATOR;

    pub fn new(config: &ModelConfig, device: &Device, seed: u64) -> Result<Self> {
        let players = [
            Player::new("encoder", device),
            Player::new("generator", device),
            Player::new("discriminator", device),
        ];
        let model = BiGan {
            config: *config,
            encoder: Encoder::new(config, false, players[0].var_builder())?,
            generator: Generator::new(config, players[1].var_builder())?,
            discriminator: JointDiscriminator::new(config, players[2].var_builder())?,
            players,
        };
        for p in &model.players {
            p.seed_init(seed)?;
        }
        Ok(model)
    }

    /// All statistics of a batch, in eval mode. The joint discriminator sees (x, E(x)) and
    /// (x̂, E(x)).
    pub fn score(&self, x: &Tensor) -> Result<ScoreBatch> {
        let code = self.encoder.forward_t(x, false)?;
        let x_hat = self.generator.forward_t(&code.mean, false)?;
        let code_hat = self.encoder.forward_t(&x_hat, false)?;
        let d = self.discriminator.forward_t(x, &code.mean, false)?;
        let d_hat = self.discriminator.forward_t(&x_hat, &code.mean, false)?;
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
