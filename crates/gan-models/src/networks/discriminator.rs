//! The discriminators: `Discriminator` D(x) of Alpha-GAN (trunk → SN conv → logit),
//! `JointDiscriminator` D(x, z) of BiGAN (image branch, code branch, joint 1×1 layers) and
//! `CodeDiscriminator` C(z) of Alpha-GAN (a small MLP). Each returns logits; the image ones also
//! return the trunk features x3 and x4 for feature-matching scores.

use candle::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::trunk::{ConvTrunk, TrunkFeatures};
use crate::blocks::{Conv, ConvSpec, linear};
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

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<DiscriminatorOutput> {
        let features = self.trunk.forward_t(x, train)?;
        let logit = self.head.forward_t(&features.x4, train)?.flatten_all()?;
        Ok(DiscriminatorOutput { logit, features })
    }

    pub fn trunk(&self) -> &ConvTrunk {
        &self.trunk
    }
}

#[derive(Debug, Clone)]
pub struct JointDiscriminator {
    trunk: ConvTrunk,
    image_head: Conv,
    code: [Conv; 2],
    joint: [Conv; 2],
    output: Conv,
    latent: usize,
    slope: f64,
}

impl JointDiscriminator {
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let top = 8 * config.width;
        let sn = config.spectral_norm;
        let p = ConvSpec::POINTWISE;
        Ok(JointDiscriminator {
            trunk: ConvTrunk::new(config, vb.pp("trunk"))?,
            image_head: Conv::conv2d(top, top, ConvSpec::K4, sn, vb.pp("image_head"))?,
            code: [
                Conv::conv2d(config.latent, top, p, sn, vb.pp("code0"))?,
                Conv::conv2d(top, top, p, sn, vb.pp("code1"))?,
            ],
            joint: [
                Conv::conv2d(2 * top, 2 * top, p, sn, vb.pp("joint0"))?,
                Conv::conv2d(2 * top, 2 * top, p, sn, vb.pp("joint1"))?,
            ],
            output: Conv::conv2d(2 * top, 1, p, false, vb.pp("output"))?,
            latent: config.latent,
            slope: config.leaky_slope,
        })
    }

    /// `x` `(B, C, S, S)` and `z` `(B, latent)`.
    pub fn forward_t(&self, x: &Tensor, z: &Tensor, train: bool) -> Result<DiscriminatorOutput> {
        let lrelu = |t: Tensor| candle_nn::ops::leaky_relu(&t, self.slope);
        let features = self.trunk.forward_t(x, train)?;
        let x5 = lrelu(self.image_head.forward_t(&features.x4, train)?)?;
        let mut hz = z.reshape((z.dim(0)?, self.latent, 1, 1))?;
        for conv in &self.code {
            hz = lrelu(conv.forward_t(&hz, train)?)?;
        }
        let mut h = Tensor::cat(&[&x5, &hz], 1)?;
        for conv in &self.joint {
            h = lrelu(conv.forward_t(&h, train)?)?;
        }
        let logit = self.output.forward_t(&h, train)?.flatten_all()?;
        Ok(DiscriminatorOutput { logit, features })
    }
}

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
