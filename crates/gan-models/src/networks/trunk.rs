//! The convolutional trunk shared by the encoder and the discriminators: stride-2 SN convolutions
//! with LeakyReLU from S×S down to 4×4 (w, 2w, 4w, 8w channels at 64×64), self-attention after the
//! 4w stage (feature **x3**) and after the 8w stage (feature **x4**). No normalisation layers.

use candle::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::blocks::{Conv, ConvSpec, SelfAttention};
use crate::config::ModelConfig;

/// Output of the trunk: the 4×4 map and the two feature levels used by feature-matching scores.
#[derive(Debug, Clone)]
pub struct TrunkFeatures {
    /// After the 4w stage (8×8 at 64×64).
    pub x3: Tensor,
    /// After the last stage (8w × 4×4).
    pub x4: Tensor,
}

#[derive(Debug, Clone)]
pub struct ConvTrunk {
    stages: Vec<(Conv, Option<SelfAttention>)>,
    /// Index of the stage whose output is x3.
    x3_stage: usize,
    slope: f64,
}

impl ConvTrunk {
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let mut channels = config.stage_channels();
        channels.reverse();
        let w = config.width;
        let last = channels.len() - 1;
        let x3_stage = channels
            .iter()
            .position(|&c| c == 4 * w)
            .unwrap_or(last.saturating_sub(1));
        let mut stages = Vec::with_capacity(channels.len());
        let mut in_c = config.channels;
        for (i, &out_c) in channels.iter().enumerate() {
            let conv = Conv::conv2d(
                in_c,
                out_c,
                ConvSpec::DOWN_UP,
                config.spectral_norm,
                vb.pp(format!("conv{i}")),
            )?;
            let attention = if config.self_attention && (i == x3_stage || i == last) {
                Some(SelfAttention::new(out_c, vb.pp(format!("attention{i}")))?)
            } else {
                None
            };
            stages.push((conv, attention));
            in_c = out_c;
        }
        Ok(ConvTrunk {
            stages,
            x3_stage,
            slope: config.leaky_slope,
        })
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<TrunkFeatures> {
        let mut h = x.clone();
        let mut x3 = None;
        for (i, (conv, attention)) in self.stages.iter().enumerate() {
            h = conv.forward_leaky_t(&h, train, self.slope)?;
            if let Some(attention) = attention {
                h = attention.forward_t(&h, train)?;
            }
            if i == self.x3_stage {
                x3 = Some(h.clone());
            }
        }
        Ok(TrunkFeatures {
            x3: x3.unwrap_or_else(|| h.clone()),
            x4: h,
        })
    }

    /// The convolutions, in order (for spectral-norm checks).
    pub fn convs(&self) -> impl Iterator<Item = &Conv> {
        self.stages.iter().map(|(c, _)| c)
    }
}
