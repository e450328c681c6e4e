//! BiGAN's joint discriminator D(x, z): an image branch (the shared trunk and an SN conv), a code
//! branch (two 1×1 SN convs) and joint 1×1 layers to a logit; it also returns the trunk features
//! x3 and x4 of the image, for feature-matching scores.

use candle::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::blocks::{Conv, ConvSpec};
use crate::config::ModelConfig;
use crate::networks::{ConvTrunk, DiscriminatorOutput};

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
