//! Convolutions as one matrix product each, on the CPU.
//!
//! candle 0.11's CPU `conv_transpose2d` is a direct loop without gemm, parallel only over output
//! channels, and `conv2d`'s backward uses it for the input gradient: a discriminator's first layer
//! (one input channel) then runs on one thread. Here both directions are `im2col` / `col2im` (two
//! adjoint memory passes, fused, parallel) around a single gemm:
//!
//! - conv2d: `y = W · im2col(x)`, W viewed as (out, in·k·k);
//! - conv_transpose2d: `y = col2im(Wᵀ · x)`, W viewed as (in, out·k·k).
//!
//! Each op's gradient is the other op, so every backward pass is gemm plus memory passes too.
//! Other devices and dtypes use candle's own convolutions.

use candle::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::contiguous_f32;

/// Geometry shared by a convolution's image side and its column side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl Geometry {
    fn out_hw(&self) -> Result<(usize, usize)> {
        if self.stride == 0 {
            candle::bail!("convolution: stride must be at least 1");
        }
        let span = |n: usize| {
            (n + 2 * self.padding)
                .checked_sub(self.kernel)
                .map(|v| v / self.stride + 1)
        };
        match (span(self.height), span(self.width)) {
            (Some(h), Some(w)) => Ok((h, w)),
            _ => candle::bail!(
                "convolution: kernel {} larger than padded input {}x{}",
                self.kernel,
                self.height,
                self.width
            ),
        }
    }

    fn rows(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    /// Image offset of column position (oy, ox) under kernel tap (ky, kx), if inside the image.
    #[inline]
    fn source(&self, o: usize, k: usize, n: usize) -> Option<usize> {
        (o * self.stride + k)
            .checked_sub(self.padding)
            .filter(|&i| i < n)
    }
}

/// (B, C, H, W) → (C·k·k, B·OH·OW).
struct Im2Col(Geometry);

/// (C·k·k, B·OH·OW) → (B, C, H, W), summing overlapping taps: the adjoint of [`Im2Col`].
struct Col2Im(Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "xray-gan-im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = contiguous_f32(storage, layout, "im2col")?;
        let (oh, ow) = g.out_hw()?;
        let positions = oh * ow;
        let n = g.batch * positions;
        let plane = g.height * g.width;
        let mut out = vec![0f32; g.rows() * n];
        out.par_chunks_mut(n).enumerate().for_each(|(r, row)| {
            let (c, tap) = (r / (g.kernel * g.kernel), r % (g.kernel * g.kernel));
            let (ky, kx) = (tap / g.kernel, tap % g.kernel);
            for b in 0..g.batch {
                let image = &x[(b * g.channels + c) * plane..][..plane];
                let dst = &mut row[b * positions..][..positions];
                for oy in 0..oh {
                    let Some(iy) = g.source(oy, ky, g.height) else {
                        continue;
                    };
                    let src = &image[iy * g.width..][..g.width];
                    let dst = &mut dst[oy * ow..][..ow];
                    for (ox, d) in dst.iter_mut().enumerate() {
                        if let Some(ix) = g.source(ox, kx, g.width) {
                            *d = src[ix];
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((g.rows(), n))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad_res.contiguous()?.apply_op1(Col2Im(self.0))?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "xray-gan-col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let cols = contiguous_f32(storage, layout, "col2im")?;
        let (oh, ow) = g.out_hw()?;
        let positions = oh * ow;
        let n = g.batch * positions;
        if cols.len() != g.rows() * n {
            candle::bail!(
                "col2im: expected {}x{} columns, got {} values",
                g.rows(),
                n,
                cols.len()
            );
        }
        let plane = g.height * g.width;
        let mut out = vec![0f32; g.batch * g.channels * plane];
        out.par_chunks_mut(plane)
            .enumerate()
            .for_each(|(p, image)| {
                let (b, c) = (p / g.channels, p % g.channels);
                for ky in 0..g.kernel {
                    for kx in 0..g.kernel {
                        let r = (c * g.kernel + ky) * g.kernel + kx;
                        let src = &cols[r * n + b * positions..][..positions];
                        for oy in 0..oh {
                            let Some(iy) = g.source(oy, ky, g.height) else {
                                continue;
                            };
                            let dst = &mut image[iy * g.width..][..g.width];
                            let src = &src[oy * ow..][..ow];
                            for (ox, &v) in src.iter().enumerate() {
                                if let Some(ix) = g.source(ox, kx, g.width) {
                                    dst[ix] += v;
                                }
                            }
                        }
                    }
                }
            });
        Ok((
            CpuStorage::F32(out),
            Shape::from((g.batch, g.channels, g.height, g.width)),
        ))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad_res.contiguous()?.apply_op1(Im2Col(self.0))?))
    }
}

/// Whether the gemm formulation applies (CPU, f32); elsewhere candle's own kernels run.
pub fn gemm_applies(x: &Tensor, weight: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32 && weight.dtype() == DType::F32
}

/// conv2d of `x` (B, Cin, H, W) with `weight` (Cout, Cin, k, k), no bias, differentiable.
pub fn conv2d(x: &Tensor, weight: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    let (batch, channels, height, width) = x.dims4()?;
    let (out_c, in_c, kernel, _) = weight.dims4()?;
    if in_c != channels {
        candle::bail!("conv2d: input has {channels} channels, weight expects {in_c}");
    }
    let g = Geometry {
        batch,
        channels,
        height,
        width,
        kernel,
        stride,
        padding,
    };
    let (oh, ow) = g.out_hw()?;
    let cols = x.contiguous()?.apply_op1(Im2Col(g))?;
    weight
        .reshape((out_c, g.rows()))?
        .matmul(&cols)?
        .reshape((out_c, batch, oh, ow))?
        .transpose(0, 1)?
        .contiguous()
}

/// conv_transpose2d of `x` (B, Cin, H, W) with `weight` (Cin, Cout, k, k), no bias, no output
/// padding, differentiable.
pub fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    padding: usize,
    stride: usize,
) -> Result<Tensor> {
    let (batch, channels, height, width) = x.dims4()?;
    let (in_c, out_c, kernel, _) = weight.dims4()?;
    if in_c != channels {
        candle::bail!("conv_transpose2d: input has {channels} channels, weight expects {in_c}");
    }
    if stride == 0 || height == 0 || width == 0 {
        candle::bail!("conv_transpose2d: stride {stride} on a {height}x{width} input");
    }
    let span = |n: usize| ((n - 1) * stride + kernel).checked_sub(2 * padding);
    let (Some(out_h), Some(out_w)) = (span(height), span(width)) else {
        candle::bail!("conv_transpose2d: padding {padding} too large for a {height}x{width} input");
    };
    let g = Geometry {
        batch,
        channels: out_c,
        height: out_h,
        width: out_w,
        kernel,
        stride,
        padding,
    };
    let columns = x
        .transpose(0, 1)?
        .contiguous()?
        .reshape((in_c, batch * height * width))?;
    weight
        .reshape((in_c, g.rows()))?
        .t()?
        .matmul(&columns)?
        .contiguous()?
        .apply_op1(Col2Im(g))
}
