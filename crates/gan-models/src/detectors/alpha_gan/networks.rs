//! Alpha-GAN's code discriminator C(z): a small MLP from a latent code to a logit, telling the
//! encoder's codes from prior draws.

use candle::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::blocks::linear;
use crate::config::ModelConfig;

#[derive(Debug, Clone)]
pub struct CodeDiscriminator {
    layers: [Linear; 3],
    slope: f64,
}

impl CodeDiscriminator {
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        Ok(CodeDiscriminator {
            layers: [
                linear(config.latent, 64, vb.pp("fc0"))?,
                linear(64, 32, vb.pp("fc1"))?,
                linear(32, 1, vb.pp("fc2"))?,
            ],
            slope: config.leaky_slope,
        })
    }

    /// `z` `(B, latent)` → logits `(B,)`.
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let h = candle_nn::ops::leaky_relu(&self.layers[0].forward(z)?, self.slope)?;
        let h = candle_nn::ops::leaky_relu(&self.layers[1].forward(&h)?, self.slope)?;
        self.layers[2].forward(&h)?.flatten_all()
    }
}
