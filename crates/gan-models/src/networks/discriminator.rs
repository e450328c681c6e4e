//! The image discriminator D(x) (trunk → SN conv → logit) that Alpha-GAN, GANomaly and f-AnoGAN
//! (as its critic) share. It returns the logit and the trunk features x3 and x4 for
//! feature-matching scores. Networks only one detector uses live in its folder (BiGAN's joint
//! discriminator, Alpha-GAN's code discriminator).

use candle::{Result, Tensor};
use candle_nn::VarBuilder;

use super::trunk::{ConvTrunk, TrunkFeatures};
use crate::blocks::{Conv, ConvSpec};
use crate::config::ModelConfig;

#[derive(Debug, Clone)]
pub struct DiscriminatorOutput {
    /// `(B,)`.
    pub logit: Tensor,
    pub features: TrunkFeatures,
}

#[derive(Debug, Clone)]
pub struct Discriminator {
    trunk: ConvTrunk,
    head: Conv,
}

impl Discriminator {
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Discriminator {
            trunk: ConvTrunk::new(config, vb.pp("trunk"))?,
            head: Conv::conv2d(
                8 * config.width,
                1,
                ConvSpec::K4,
                config.spectral_norm,
                vb.pp("head"),
            )?,
        })
    }

    /// D(a) and D(b) in eval mode from one pass over the two batches stacked: every layer in
    /// eval mode works on each image alone, so this is D(a), D(b), with wider matrix products.
    pub fn forward_pair(
        &self,
        a: &Tensor,
        b: &Tensor,
    ) -> Result<(DiscriminatorOutput, DiscriminatorOutput)> {
        let n = a.dim(0)?;
        let both = self.forward_t(&Tensor::cat(&[a, b], 0)?, false)?;
        let part = |start: usize, len: usize| -> Result<DiscriminatorOutput> {
            Ok(DiscriminatorOutput {
                logit: both.logit.narrow(0, start, len)?,
                features: TrunkFeatures {
                    x3: both.features.x3.narrow(0, start, len)?,
                    x4: both.features.x4.narrow(0, start, len)?,
                },
            })
        };
        Ok((part(0, n)?, part(n, b.dim(0)?)?))
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<DiscriminatorOutput> {
        let features = self.trunk.forward_t(x, train)?;
        let logit = self.head.forward_t(&features.x4, train)?.flatten_all()?;
        Ok(DiscriminatorOutput { logit, features })
    }

    pub fn trunk(&self) -> &ConvTrunk {
        &self.trunk
    }
}
