//! Fused per-channel layers for the CPU: bias + LeakyReLU (the trunk's stages) and BatchNorm +
//! ReLU in training and evaluation mode (the generator's stages).
//!
//! Composed from candle's tensor ops, bias + LeakyReLU keeps five full-size tensors in the graph
//! (the sum, the two halves, the scaled half, the result) and BatchNorm + ReLU eight (the
//! transposed copy, centred, squared, normalised, scaled, shifted, rectified, the copy back):
//! most of a training step's memory. Fused, each keeps its input and its output, and the backward
//! pass computes the gradients in two passes over them (per-channel sums, then the input
//! gradient). Other devices and dtypes use the composition, which is also the reference the tests
//! compare with.

use candle::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{contiguous_f32, with_avx2, with_f32};

fn fused_applies(x: &Tensor) -> bool {
    super::fused_kernels_apply(&[x])
}

/// (batch, channels, positions per channel) of a `(B, C, …)` tensor.
pub(crate) fn planes(shape: &Shape) -> Result<(usize, usize, usize)> {
    let dims = shape.dims();
    if dims.len() < 2 {
        candle::bail!("per-channel layer: input of shape {dims:?} has no channel dimension");
    }
    Ok((dims[0], dims[1], dims[2..].iter().product()))
}

/// The data ranges of channel `ch`'s planes, one per image, in a contiguous `(b, c, n)` tensor.
fn channel_planes(
    (b, c, n): (usize, usize, usize),
    ch: usize,
) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..b).map(move |i| (i * c + ch) * n..(i * c + ch + 1) * n)
}

/// LeakyReLU(x + bias), bias per channel (dimension 1).
pub fn bias_leaky_relu(x: &Tensor, bias: &Tensor, slope: f64) -> Result<Tensor> {
    if !fused_applies(x) {
        let shape: Vec<usize> = (0..x.rank())
            .map(|d| if d == 1 { bias.elem_count() } else { 1 })
            .collect();
        return candle_nn::ops::leaky_relu(&x.broadcast_add(&bias.reshape(shape)?)?, slope);
    }
    x.contiguous()?
        .apply_op2(&bias.contiguous()?, BiasLeakyRelu { slope })
}

struct BiasLeakyRelu {
    slope: f64,
}

/// One plane of LeakyReLU(x + b). The sign of a value is a coin toss, so this must be a
/// vectorised select, not a branch: compiled for AVX2 (a blend) it took 0.8 ms on 4.2 M values
/// where the baseline x86-64 build, which branched, took 12.8 ms (`examples/trunk_time.rs`); the
/// same operations, so the same bits.
#[inline(always)]
fn leaky_plane(dst: &mut [f32], src: &[f32], b: f32, slope: f32) {
    for (d, &v) in dst.iter_mut().zip(src) {
        let v = v + b;
        *d = if v > 0.0 { v } else { slope * v };
    }
}

/// One plane of LeakyReLU's input gradient from its output's sign (see [`leaky_plane`]).
#[inline(always)]
fn leaky_gradient_plane(dst: &mut [f32], y: &[f32], g: &[f32], slope: f32) {
    for ((d, &yv), &gv) in dst.iter_mut().zip(y).zip(g) {
        *d = if yv > 0.0 { gv } else { slope * gv };
    }
}

impl CustomOp2 for BiasLeakyRelu {
    fn name(&self) -> &'static str {
        "xray-gan-bias-leaky-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "bias_leaky_relu")?;
        let bias = contiguous_f32(s2, l2, "bias_leaky_relu")?;
        let (_, c, n) = planes(l1.shape())?;
        if bias.len() != c {
            candle::bail!("bias_leaky_relu: {} biases for {c} channels", bias.len());
        }
        let slope = self.slope as f32;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(n.max(1))
            .zip(x.par_chunks(n.max(1)))
            .enumerate()
            .for_each(|(p, (dst, src))| {
                let b = bias[p % c];
                with_avx2(
                    #[inline(always)]
                    || leaky_plane(dst, src, b, slope),
                );
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    /// The sign of the output is the sign of x + bias (the slope is positive), so the output
    /// alone says which slope applies.
    fn bwd(
        &self,
        _x: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dims = planes(res.shape())?;
        let slope = self.slope as f32;
        let (res, grad) = (res.contiguous()?, grad.contiguous()?);
        let grad_x = with_f32(&res, "bias_leaky_relu", |y| {
            with_f32(&grad, "bias_leaky_relu", |g| {
                let mut grad_x = vec![0f32; g.len()];
                grad_x
                    .par_chunks_mut(dims.2.max(1))
                    .zip(y.par_chunks(dims.2.max(1)))
                    .zip(g.par_chunks(dims.2.max(1)))
                    .for_each(|((dst, y), g)| {
                        with_avx2(
                            #[inline(always)]
                            || leaky_gradient_plane(dst, y, g, slope),
                        )
                    });
                Ok(grad_x)
            })
        })?;
        // ∂bias: the input gradient summed over each channel's planes (none for a frozen bias)
        let grad_bias = match bias.track_op() {
            true => {
                let sums: Vec<f32> = (0..dims.1)
                    .into_par_iter()
                    .map(|ch| {
                        channel_planes(dims, ch)
                            .map(|at| grad_x[at].iter().sum::<f32>() as f64)
                            .sum::<f64>() as f32
                    })
                    .collect();
                Some(Tensor::from_vec(sums, bias.shape(), bias.device())?)
            }
            false => None,
        };
        Ok((
            Some(Tensor::from_vec(grad_x, res.shape(), res.device())?),
            grad_bias,
        ))
    }
}

/// Per-channel mean and biased variance of a contiguous `(B, C, n)` input.
fn channel_statistics(x: &[f32], b: usize, c: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
    let per: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let count = (b * n) as f64;
            let sum: f64 = channel_planes((b, c, n), ch)
                .map(|at| x[at].iter().map(|&v| v as f64).sum::<f64>())
                .sum();
            let mean = sum / count;
            let squares: f64 = channel_planes((b, c, n), ch)
                .map(|at| {
                    x[at]
                        .iter()
                        .map(|&v| (v as f64 - mean).powi(2))
                        .sum::<f64>()
                })
                .sum();
            (mean as f32, (squares / count) as f32)
        })
        .collect();
    per.into_iter().unzip()
}

/// The batch statistics of a training-mode BatchNorm.
pub struct BatchStatistics {
    /// Per channel: the mean and the biased variance over batch and positions.
    pub mean: Tensor,
    pub variance: Tensor,
}

/// ReLU(BatchNorm(x)) in training mode: normalised with the batch's own per-channel statistics,
/// scaled by `weight` and shifted by `bias`. Returns the output and the statistics (for the
/// running averages).
pub fn batch_norm_relu(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<(Tensor, BatchStatistics)> {
    let (b, c, n) = planes(x.shape())?;
    if !fused_applies(x) {
        let flat = x.transpose(0, 1)?.flatten_from(1)?.contiguous()?;
        let mean = flat.mean_keepdim(1)?;
        let centred = flat.broadcast_sub(&mean)?;
        let variance = centred.sqr()?.mean_keepdim(1)?;
        let y = centred
            .broadcast_div(&(&variance + eps)?.sqrt()?)?
            .broadcast_mul(&weight.reshape((c, 1))?)?
            .broadcast_add(&bias.reshape((c, 1))?)?
            .relu()?
            .reshape((c, b, n))?
            .transpose(0, 1)?
            .reshape(x.shape())?;
        let statistics = BatchStatistics {
            mean: mean.flatten_all()?.detach(),
            variance: variance.flatten_all()?.detach(),
        };
        return Ok((y, statistics));
    }
    let x = x.contiguous()?;
    let (mean, variance) = with_f32(&x, "batch_norm_relu", |data| {
        Ok(channel_statistics(data, b, c, n))
    })?;
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect();
    let statistics = BatchStatistics {
        mean: Tensor::from_slice(&mean, c, x.device())?,
        variance: Tensor::from_vec(variance, c, x.device())?,
    };
    let y = x.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        BatchNormReluOp {
            mean,
            inv_std,
            batch_statistics: true,
        },
    )?;
    Ok((y, statistics))
}

/// ReLU(BatchNorm(x)) in evaluation mode, one pass on the CPU: normalised with the running
/// statistics `running_mean` and `running_var` (constants here), scaled by `weight` and shifted
/// by `bias`. `None` where the fused kernels do not apply (the caller composes candle ops).
pub fn batch_norm_relu_eval(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f64,
) -> Result<Option<Tensor>> {
    if !fused_applies(x) {
        return Ok(None);
    }
    let mean = running_mean
        .to_dtype(candle::DType::F32)?
        .to_vec1::<f32>()?;
    let inv_std = running_var
        .to_dtype(candle::DType::F32)?
        .to_vec1::<f32>()?
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect();
    let y = x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        BatchNormReluOp {
            mean,
            inv_std,
            batch_statistics: false,
        },
    )?;
    Ok(Some(y))
}

/// The fused op, with the statistics computed beforehand. In training mode they are the batch's
/// own (constants of the backward formula below, which accounts for their dependence on x); in
/// evaluation mode the running statistics, which do not depend on x.
struct BatchNormReluOp {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    /// Whether `mean` and `inv_std` are this batch's statistics (training mode).
    batch_statistics: bool,
}

impl CustomOp3 for BatchNormReluOp {
    fn name(&self) -> &'static str {
        "xray-gan-batch-norm-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "batch_norm_relu")?;
        let gamma = contiguous_f32(s2, l2, "batch_norm_relu")?;
        let beta = contiguous_f32(s3, l3, "batch_norm_relu")?;
        let (_, c, n) = planes(l1.shape())?;
        if gamma.len() != c || beta.len() != c || self.mean.len() != c {
            candle::bail!("batch_norm_relu: parameters do not have {c} channels");
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(n.max(1))
            .zip(x.par_chunks(n.max(1)))
            .enumerate()
            .for_each(|(p, (dst, src))| {
                let ch = p % c;
                let scale = gamma[ch] * self.inv_std[ch];
                let shift = beta[ch] - self.mean[ch] * scale;
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = (v * scale + shift).max(0.0);
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    /// With x̂ = (x − μ)·s (s = 1/σ), g = ∂L/∂y masked by y > 0 and m = B·n values per channel:
    /// ∂β = Σg, ∂γ = Σg·x̂, ∂x = γ·s·(g − ∂β/m − x̂·∂γ/m) with the batch's statistics, and
    /// ∂x = γ·s·g with running ones (constants).
    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, c, n) = planes(x.shape())?;
        let m = (b * n) as f64;
        let (x, res, grad) = (x.contiguous()?, res.contiguous()?, grad.contiguous()?);
        let (grad_x, grad_gamma, grad_beta) = with_f32(&x, "batch_norm_relu", |x| {
            with_f32(&res, "batch_norm_relu", |y| {
                with_f32(&grad, "batch_norm_relu", |g| {
                    with_f32(gamma, "batch_norm_relu", |gamma| {
                        Ok(self.backward(x, y, g, gamma, (b, c, n), m))
                    })
                })
            })
        })?;
        let device = x.device();
        Ok((
            Some(Tensor::from_vec(grad_x, x.shape(), device)?),
            Some(Tensor::from_vec(grad_gamma, c, device)?),
            Some(Tensor::from_vec(grad_beta, c, device)?),
        ))
    }
}

impl BatchNormReluOp {
    /// The formula of `bwd` in two passes: per-channel sums (parallel over channels), then ∂x
    /// (parallel over planes). Sums in f64.
    fn backward(
        &self,
        x: &[f32],
        y: &[f32],
        g: &[f32],
        gamma: &[f32],
        (b, c, n): (usize, usize, usize),
        m: f64,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (sums_beta, sums_gamma): (Vec<f64>, Vec<f64>) = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, inv_std) = (self.mean[ch], self.inv_std[ch]);
                let (mut beta, mut gamma_sum) = (0f64, 0f64);
                for at in channel_planes((b, c, n), ch) {
                    let (mut sb, mut sg) = (0f32, 0f32);
                    for ((&xv, &yv), &gv) in x[at.clone()].iter().zip(&y[at.clone()]).zip(&g[at]) {
                        let gv = if yv > 0.0 { gv } else { 0.0 };
                        sb += gv;
                        sg += gv * (xv - mean) * inv_std;
                    }
                    beta += sb as f64;
                    gamma_sum += sg as f64;
                }
                (beta, gamma_sum)
            })
            .unzip();
        let mut grad_x = vec![0f32; x.len()];
        grad_x
            .par_chunks_mut(n.max(1))
            .enumerate()
            .for_each(|(p, dst)| {
                let ch = p % c;
                let at = p * n..(p + 1) * n;
                let (mean, inv_std) = (self.mean[ch], self.inv_std[ch]);
                let scale = gamma[ch] * inv_std;
                let (beta_mean, gamma_mean) = match self.batch_statistics {
                    true => ((sums_beta[ch] / m) as f32, (sums_gamma[ch] / m) as f32),
                    false => (0.0, 0.0),
                };
                // a select per value, not a branch (see `leaky_plane`)
                with_avx2(
                    #[inline(always)]
                    || {
                        for (((d, &xv), &yv), &gv) in dst
                            .iter_mut()
                            .zip(&x[at.clone()])
                            .zip(&y[at.clone()])
                            .zip(&g[at])
                        {
                            let gv = if yv > 0.0 { gv } else { 0.0 };
                            let x_hat = (xv - mean) * inv_std;
                            *d = scale * (gv - beta_mean - x_hat * gamma_mean);
                        }
                    },
                );
            });
        let to_f32 = |v: Vec<f64>| v.into_iter().map(|s| s as f32).collect::<Vec<_>>();
        (grad_x, to_f32(sums_gamma), to_f32(sums_beta))
    }
}
