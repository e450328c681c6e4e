//! Softmax over the last dimension with a backward pass, fused on the CPU.
//!
//! candle 0.11 offers a fused `softmax_last_dim` without backward (its gradient is silently
//! missing) and a differentiable `softmax` built from five tensor ops, each a pass over memory.
//! This op computes each row with the CPU kernels' vectorised softmax and the gradient as
//! ∂x = s ⊙ (∂s − Σ(∂s ⊙ s)); other devices use the composite form. Self-attention's tensor-op
//! form uses it (the fused attention kernel is tested against that form).

use candle::{CpuStorage, CustomOp1, D, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{contiguous_f32, softmax_row};

struct SoftmaxLastDim;

impl CustomOp1 for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "xray-gan-softmax-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let data = contiguous_f32(storage, layout, "softmax")?;
        let dim = layout.dims().last().copied().unwrap_or(1).max(1);
        let mut out = data.to_vec();
        out.par_chunks_mut(dim).for_each(softmax_row);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let dot = grad_res.mul(res)?.sum_keepdim(D::Minus1)?;
        Ok(Some(res.mul(&grad_res.broadcast_sub(&dot)?)?))
    }
}

/// Softmax over the last dimension, differentiable.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if super::fused_kernels_apply(&[x]) {
        x.contiguous()?.apply_op1(SoftmaxLastDim)
    } else {
        candle_nn::ops::softmax(x, D::Minus1)
    }
}
