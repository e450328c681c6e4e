//! The encoder E: image → latent code. BiGAN: a deterministic code. Alpha-GAN: a mean and a
//! standard-deviation head (both tanh), ẑ = mean + sd·ε in training; scoring uses the mean.

use candle::{Result, Tensor};
use candle_nn::VarBuilder;

use super::trunk::{ConvTrunk, TrunkFeatures};
use crate::blocks::{Conv, ConvSpec};
use crate::config::ModelConfig;

#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// The code (BiGAN) or its mean (Alpha-GAN), `(B, z)`.
    pub mean: Tensor,
    /// Alpha-GAN only: `(B, z)`.
    pub sd: Option<Tensor>,
    pub features: TrunkFeatures,
}

impl EncoderOutput {
    /// ẑ = mean + sd·ε (the mean when there is no sd head).
    pub fn sample(&self, epsilon: &Tensor) -> Result<Tensor> {
        match &self.sd {
            Some(sd) => self.mean.add(&sd.mul(epsilon)?),
            None => Ok(self.mean.clone()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Encoder {
    trunk: ConvTrunk,
    mean: Conv,
    sd: Option<Conv>,
}

impl Encoder {
    /// `variational`: two heads (Alpha-GAN); otherwise one linear head (BiGAN).
    pub fn new(config: &ModelConfig, variational: bool, vb: VarBuilder) -> Result<Self> {
        let top = 8 * config.width;
        let trunk = ConvTrunk::new(config, vb.pp("trunk"))?;
        let mean = Conv::conv2d(top, config.latent, ConvSpec::K4, false, vb.pp("mean"))?;
        let sd = if variational {
            Some(Conv::conv2d(
                top,
                config.latent,
                ConvSpec::K4,
                false,
                vb.pp("sd"),
            )?)
        } else {
            None
        };
        Ok(Encoder { trunk, mean, sd })
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<EncoderOutput> {
        let features = self.trunk.forward_t(x, train)?;
        let flat = |t: Tensor| -> Result<Tensor> { t.flatten_from(1) };
        let mean = flat(self.mean.forward_t(&features.x4, train)?)?;
        let (mean, sd) = match &self.sd {
            Some(sd) => (
                mean.tanh()?,
                Some(flat(sd.forward_t(&features.x4, train)?)?.tanh()?),
            ),
            None => (mean, None),
        };
        Ok(EncoderOutput { mean, sd, features })
    }

    pub fn trunk(&self) -> &ConvTrunk {
        &self.trunk
    }
}
