//! Self-attention over spatial positions (SAGAN, Zhang et al. 2019): query/key 1×1 convs C→C/8,
//! value C→C, `out = γ·attention + x` with γ starting at 0, so a new block is the identity.

use candle::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::conv::{Conv, ConvSpec};
use crate::kernels::attention::spatial_attention;

#[derive(Debug, Clone)]
pub struct SelfAttention {
    query: Conv,
    key: Conv,
    value: Conv,
    gamma: Tensor,
}

impl SelfAttention {
    pub fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let inner = (channels / 8).max(1);
        let p = ConvSpec::POINTWISE;
        Ok(SelfAttention {
            query: Conv::conv2d(channels, inner, p, false, vb.pp("query"))?,
            key: Conv::conv2d(channels, inner, p, false, vb.pp("key"))?,
            value: Conv::conv2d(channels, channels, p, false, vb.pp("value"))?,
            gamma: vb.get_with_hints(1, "gamma", Init::Const(0.0))?,
        })
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let n = h * w;
        let q = self.query.forward_t(x, train)?.reshape((b, (), n))?; // (B, C/8, N)
        let k = self.key.forward_t(x, train)?.reshape((b, (), n))?;
        let v = self.value.forward_t(x, train)?.reshape((b, c, n))?;
        // energy (N×C/8 by C/8×N) and output (N×N by N×C) products
        crate::flops::add_multiply_adds(b * n * n * (q.dim(1)? + c));
        let out = spatial_attention(&q, &k, &v)?; // (B, C, N)
        let out = out.reshape((b, c, h, w))?;
        out.broadcast_mul(&self.gamma)?.add(x)
    }
}
