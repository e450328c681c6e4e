//! The generator G: latent code → image. From 4×4 it doubles the size per stage with SN transposed
//! convolutions, BatchNorm and ReLU (8w, 4w, 2w, w channels at 64×64), self-attention after the 2w
//! and the first w stage, and a plain transposed convolution to one channel with tanh.

use candle::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::blocks::{BatchNormRelu, Conv, ConvSpec, SelfAttention};
use crate::config::ModelConfig;

#[derive(Debug, Clone)]
struct UpStage {
    conv: Conv,
    norm: BatchNormRelu,
    attention: Option<SelfAttention>,
}

#[derive(Debug, Clone)]
pub struct Generator {
    stages: Vec<UpStage>,
    output: Conv,
    latent: usize,
}

impl Generator {
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let channels = config.stage_channels();
        let w = config.width;
        let mut stages = Vec::with_capacity(channels.len());
        let mut in_c = config.latent;
        let mut attended = Vec::new();
        for (i, &out_c) in channels.iter().enumerate() {
            let spec = if i == 0 {
                ConvSpec::K4
            } else {
                ConvSpec::DOWN_UP
            };
            let vs = vb.pp(format!("stage{i}"));
            let conv =
                Conv::conv_transpose2d(in_c, out_c, spec, config.spectral_norm, vs.pp("conv"))?;
            let norm = BatchNormRelu::new(out_c, vs.pp("bn"))?;
            let attend = config.self_attention
                && i > 0
                && (out_c == 2 * w || out_c == w)
                && !attended.contains(&out_c);
            let attention = if attend {
                attended.push(out_c);
                Some(SelfAttention::new(out_c, vs.pp("attention"))?)
            } else {
                None
            };
            stages.push(UpStage {
                conv,
                norm,
                attention,
            });
            in_c = out_c;
        }
        let output = Conv::conv_transpose2d(
            in_c,
            config.channels,
            ConvSpec::DOWN_UP,
            false,
            vb.pp("output"),
        )?;
        Ok(Generator {
            stages,
            output,
            latent: config.latent,
        })
    }

    /// Size of the code it takes.
    pub fn latent(&self) -> usize {
        self.latent
    }

    /// `n` images of prior draws z ~ N(0, 1) seeded by `seed`, in eval mode.
    pub fn generate(&self, n: usize, seed: u64) -> Result<Tensor> {
        let z =
            crate::detector::normal_tensor((n, self.latent), seed, self.output.weight().device())?;
        self.forward_t(&z, false)
    }

    /// `z` is `(B, latent)`; the result `(B, C, S, S)` in [−1, 1].
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_logits_t(z, train)?.tanh()
    }

    /// [`Generator::forward_t`] before its final tanh: unbounded, for an output channel that is
    /// not an image (the autoencoder-u's log-variance).
    pub fn forward_logits_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let b = z.dim(0)?;
        let mut h = z.reshape((b, self.latent, 1, 1))?;
        for stage in &self.stages {
            h = stage.conv.forward_t(&h, train)?;
            h = stage.norm.forward_t(&h, train)?;
            if let Some(attention) = &stage.attention {
                h = attention.forward_t(&h, train)?;
            }
        }
        self.output.forward_t(&h, train)
    }
}
